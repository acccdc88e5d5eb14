/* The audit tests (test_audit.c, unchanged) run again with their store on a real
 * PostgreSQL (tests/support/pg_server.h): every append, verify, tamper, restart,
 * export and CLI case must hold there too.
 *
 * test_audit.c is included whole, with three of its calls redirected by macros:
 * - mk_store_open(path, ...) opens this test's PostgreSQL schema instead of the
 *   SQLite file (the audit API takes any store; only the tests name a file);
 * - mk_store_exec translates the tamper scripts' two SQLite-only spellings
 *   (zeroblob(N), x'..' blob literals) into PostgreSQL's;
 * - mk_audit_cli_main gets --store <url>, since the CLI's default store is the
 *   SQLite file in the data directory.
 * One server serves the binary (PRE_ALL / POST_ALL); each test (a process of its
 * own) gets a schema of its own on first open. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/mk_audit.h"
#include "core/mk_buf.h"
#include "pg_server.h"
#include "store/mk_store.h"

static struct pg_server shared;

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char bindir[192], err[2048];
    if (!pg_server_find(bindir, sizeof bindir)) {
        setenv("MK_PG_SKIP", "PostgreSQL server binaries not installed", 1);
        return;
    }
    if (pg_server_start(&shared, err, sizeof err) != 0) {
        setenv("MK_PG_ERROR", err, 1);
        return;
    }
    pg_server_export(&shared, "MK_PG");
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    pg_server_stop(&shared);
}

/* The URL of this test process's schema, created on first use. */
static const char *pg_test_url(void)
{
    static char url[512];
    if (url[0]) return url;
    const char *skip = getenv("MK_PG_SKIP");
    if (skip) cr_assert_fail("%s: run scripts/install-deps.sh --test", skip); /* never a quiet pass */
    const char *e = getenv("MK_PG_ERROR");
    if (e) cr_assert_fail("PostgreSQL did not start: %s", e);
    struct pg_server srv;
    cr_assert_eq(pg_server_import(&srv, "MK_PG"), 0);
    char sql[64], q[96], err[1024];
    snprintf(sql, sizeof sql, "CREATE SCHEMA a_%d", (int)getpid());
    cr_assert_eq(pg_server_psql(&srv, "postgres", sql, err, sizeof err), 0, "%s", err);
    snprintf(q, sizeof q, "options=-csearch_path%%3Da_%d", (int)getpid());
    cr_assert_eq(pg_server_url(&srv, "postgres", q, url, sizeof url), 0);
    return url;
}

static int pg_store_open(const char *path, const struct mk_store_options *o, struct mk_store **s, mk_buf *err)
{
    (void)path;  /* the SQLite file the test names */
    return mk_store_open(pg_test_url(), o, s, err);
}

/* zeroblob(N) -> decode(repeat('00', N), 'hex'); x'HEX' -> '\xHEX'::bytea. */
static int pg_store_exec(struct mk_store_conn *c, const char *sql)
{
    mk_buf out = MK_BUF_INIT;
    const char *p = sql;
    while (*p) {
        if (strncmp(p, "zeroblob(", 9) == 0) {
            char *end;
            long n = strtol(p + 9, &end, 10);
            if (*end == ')') {
                mk_buf_printf(&out, "decode(repeat('00', %ld), 'hex')", n);
                p = end + 1;
                continue;
            }
        }
        if ((p[0] == 'x' || p[0] == 'X') && p[1] == '\'' && (p == sql || p[-1] == ' ' || p[-1] == '=' || p[-1] == '(')) {
            const char *q = strchr(p + 2, '\'');
            if (q) {
                mk_buf_printf(&out, "'\\x%.*s'::bytea", (int)(q - p - 2), p + 2);
                p = q + 1;
                continue;
            }
        }
        mk_buf_append_char(&out, *p++);
    }
    int rc = mk_store_exec(c, out.data ? out.data : "");
    mk_buf_release(&out);
    return rc;
}

static int pg_cli_main(int argc, char **argv, const char *data_dir)
{
    char *args[32];
    if (argc < 1 || argc > 28) return mk_audit_cli_main(argc, argv, data_dir);
    int n = 0;
    for (int i = 0; i < argc; i++) args[n++] = argv[i];
    /* "pubkey" reads only the key file; the others read the store. */
    if (strcmp(argv[0], "pubkey") != 0) {
        args[n++] = "--store";
        args[n++] = (char *)pg_test_url();
    }
    args[n] = NULL;
    return mk_audit_cli_main(n, args, data_dir);
}

#define mk_store_open pg_store_open
#define mk_store_exec pg_store_exec
#define mk_audit_cli_main pg_cli_main
#include "test_audit.c"
