/* mk_cli: argument parsing and dispatch to subcommands (see mk_cli.h). The table of
 * commands is data; each command gets the parsed options and its positional args. */
#include "mk_cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/mk_api.h"
#include "audit/mk_audit.h"
#include "auth/mk_keys.h"
#include "guard/mk_injection.h"
#include "kb/mk_kb_store.h"
#include "memory/mk_memory.h"
#include "config/mk_config.h"
#include "core/mk_buf.h"
#include "core/mk_error.h"

/* Commands with options of their own get argv untouched (after the command name);
 * --config is still honoured to find data_dir. */
struct passthrough {
    const char *name;
    const char *usage;
    int (*run)(int argc, char **argv, const char *data_dir);
};

static int run_keys(int argc, char **argv, const char *data_dir) { return mk_keys_cli_main(argc, argv, data_dir); }
static int run_audit(int argc, char **argv, const char *data_dir) { return mk_audit_cli_main(argc, argv, data_dir); }
/* guard's parser wants the command word first ("guard train ..."). */
static int run_guard(int argc, char **argv, const char *data_dir)
{
    if (argc < 1 || strcmp(argv[0], "train") != 0) {
        fprintf(stderr, "usage: mayak guard train --data FILE.jsonl [--data FILE...] --out MODEL\n");
        return 2;
    }
    return mk_guard_train_main(argc + 1, argv - 1);
}

static const struct passthrough passthroughs[] = {
    {"keys", "keys create|list|rotate|revoke ...   manage API keys (mayak keys help)", run_keys},
    {"audit", "audit verify|export|pubkey ...       check and export the audit chain", run_audit},
    {"guard", "guard train --data F --out M         train the prompt-injection classifier", run_guard},
    {"memory", "memory stats|search|add|import|facts|erase|sweep|reindex ...  agent memory (mayak memory help)",
     mk_memory_cli_main},
    {"kb", "kb add|list|rm|reindex|search ...    knowledge base (mayak kb help)", mk_kb_cli_main},
    {"ask", "ask [QUESTION] [--json] [--kb F]       answer as the support desk would (stdin: one per line)",
     mk_cli_ask_main},
};

struct cli_opts {
    const char *config_path;
    const char *listen;        /* --listen HOST:PORT overrides the config's listen */
    const char *args[16];
    int nargs;
};

struct command {
    const char *name;
    const char *usage;
    int (*run)(struct cli_opts *o);
};

static int print_usage(FILE *f);

/* Loads --config FILE or the embedded defaults. Prints every problem (errors and
 * warnings, file:line:col) to stderr; NULL when there was an error. */
static struct mk_config *load_config(const char *path)
{
    if (!path) return mk_config_default();
    struct mk_config *cfg = NULL;
    struct mk_config_diags diags = {0};
    int rc = mk_config_load(path, &cfg, &diags);
    mk_buf text = MK_BUF_INIT;
    mk_config_diags_format(&diags, &text);
    if (text.len) fputs(text.data, stderr);
    mk_buf_release(&text);
    if (rc != 0) {
        size_t errors = 0;
        for (size_t i = 0; i < diags.count; i++)
            if (!diags.items[i].warning) errors++;
        if (!diags.count) fprintf(stderr, "%s: %s\n", path, mk_strerror(rc));
        fprintf(stderr, "mayak: %s has %zu error%s; not starting\n", path, errors ? errors : 1,
                errors == 1 ? "" : "s");
        mk_config_diags_release(&diags);
        return NULL;
    }
    mk_config_diags_release(&diags);
    return cfg;
}

/* "127.0.0.1:8080", "[::1]:8080" -> host and port; false when malformed. */
static bool split_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return false;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') return false;
        h++;
        hl -= 2;
    }
    if (hl >= hostlen) return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535) return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return true;
}

static int cmd_serve(struct cli_opts *o)
{
    struct mk_config *cfg = load_config(o->config_path);
    if (!cfg) return 1;
    if (o->listen) {
        char host[256];
        int port;
        if (!split_listen(o->listen, host, sizeof host, &port)) {
            fprintf(stderr, "mayak: --listen wants HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got '%s'\n", o->listen);
            mk_config_free(cfg);
            return 2;
        }
        free(cfg->listen_host);
        cfg->listen_host = strdup(host);
        cfg->listen_port = port;
    }
    return mk_app_run(cfg, o->config_path);
}

static int cmd_config(struct cli_opts *o)
{
    if (o->nargs < 1 || strcmp(o->args[0], "check") != 0) {
        fprintf(stderr, "usage: mayak config check [FILE]\n");
        return 2;
    }
    const char *path = o->nargs >= 2 ? o->args[1] : o->config_path;
    if (!path) {
        fprintf(stderr, "usage: mayak config check FILE\n");
        return 2;
    }
    struct mk_config *cfg = load_config(path);
    if (!cfg) return 1;
    printf("%s: ok (%zu providers, %zu model groups)\n", path, cfg->nproviders, cfg->nmodel_groups);
    mk_config_free(cfg);
    return 0;
}

static int cmd_version(struct cli_opts *o)
{
    printf("mayak %s\n", MAYAK_VERSION);
    return 0;
}

static int cmd_help(struct cli_opts *o) { return print_usage(stdout); }

static const struct command commands[] = {
    {"serve", "serve [--config FILE] [--listen HOST:PORT]\n"
              "                                 run the gateway (embedded defaults without --config)", cmd_serve},
    {"config", "config check FILE              report every problem in FILE; exit 1 if any", cmd_config},
    {"version", "version                        print the version", cmd_version},
    {"help", "help                           this text", cmd_help},
};

static int print_usage(FILE *f)
{
    fprintf(f, "usage: mayak <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %s\n", commands[i].usage);
    for (size_t i = 0; i < sizeof passthroughs / sizeof passthroughs[0]; i++)
        fprintf(f, "  %s\n", passthroughs[i].usage);
    fprintf(f, "\noptions (every command):\n  --config FILE   YAML configuration (see docs/CONFIG.md)\n");
    return f == stderr ? 2 : 0;
}

static int run_passthrough(const struct passthrough *p, int argc, char **argv)
{
    const char *config_path = NULL;
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            config_path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_path = argv[i] + 9;
    }
    struct mk_config *cfg = load_config(config_path);
    if (!cfg) return 1;
    /* The config's store and kv are the defaults of the commands' --store and --kv, so
     * that `mayak keys create --config node.yaml` writes where the server reads. */
    bool has_store = false, has_kv = false;
    for (int i = 2; i < argc; i++) {
        has_store = has_store || !strcmp(argv[i], "--store") || !strncmp(argv[i], "--store=", 8);
        has_kv = has_kv || !strcmp(argv[i], "--kv") || !strncmp(argv[i], "--kv=", 5);
    }
    bool takes_store = strcmp(p->name, "guard") != 0 && strcmp(p->name, "ask") != 0;
    bool takes_kv = strcmp(p->name, "memory") == 0;
    char **args = calloc((size_t)argc + 4, sizeof *args);
    if (!args) {
        mk_config_free(cfg);
        fprintf(stderr, "mayak: out of memory\n");
        return 1;
    }
    int n = 0;
    for (int i = 2; i < argc; i++) args[n++] = argv[i];
    if (takes_store && !has_store && cfg->store_url) {
        args[n++] = "--store";
        args[n++] = cfg->store_url;
    }
    if (takes_kv && !has_kv && cfg->kv_url) {
        args[n++] = "--kv";
        args[n++] = cfg->kv_url;
    }
    int rc = p->run(n, args, cfg->data_dir);
    free(args);
    mk_config_free(cfg);
    return rc;
}

int mk_cli_main(int argc, char **argv)
{
    if (argc >= 2)
        for (size_t i = 0; i < sizeof passthroughs / sizeof passthroughs[0]; i++)
            if (strcmp(argv[1], passthroughs[i].name) == 0) return run_passthrough(&passthroughs[i], argc, argv);
    struct cli_opts o = {0};
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mayak: %s needs a file name\n", a);
                return 2;
            }
            o.config_path = argv[++i];
        } else if (strcmp(a, "--listen") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mayak: --listen needs HOST:PORT\n");
                return 2;
            }
            o.listen = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            o.config_path = a + 9;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return print_usage(stdout);
        } else if (strcmp(a, "--version") == 0) {
            name = "version";
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "mayak: unknown option '%s'\n", a);
            return 2;
        } else if (!name) {
            name = a;
        } else if (o.nargs < (int)(sizeof o.args / sizeof o.args[0])) {
            o.args[o.nargs++] = a;
        } else {
            fprintf(stderr, "mayak: too many arguments\n");
            return 2;
        }
    }
    if (!name) return print_usage(stderr);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].run(&o);
    fprintf(stderr, "mayak: unknown command '%s'\n", name);
    return print_usage(stderr);
}
