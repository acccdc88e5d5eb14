/* mk_cli: argument parsing and dispatch to subcommands (see mk_cli.h). */
#include "mk_cli.h"

#include <stdio.h>
#include <string.h>

static int usage(FILE *f)
{
    fprintf(f, "usage: mayak <command> [--config FILE]\n"
               "commands:\n"
               "  serve                 run the server\n"
               "  config check FILE     validate a config file\n"
               "  version               print the version\n");
    return f == stderr ? 2 : 0;
}

int mk_cli_main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("mayak %s\n", MAYAK_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) return usage(stdout);
    fprintf(stderr, "mayak: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
