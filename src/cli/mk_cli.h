/*
 * mk_cli: the `mayak` command line. Subcommands:
 *   serve [--config FILE]          run the server (embedded defaults without --config)
 *   config check FILE              report every problem in FILE (file:line:col), exit 1 if any
 *   version
 * Every subcommand accepts --config FILE.
 */
#ifndef MK_CLI_H
#define MK_CLI_H

/* Returns the process exit status. */
int mk_cli_main(int argc, char **argv);

#endif
