/* Unit tests for mk_store's PostgreSQL backend, against a real server started by the
 * test binary (tests/support/pg_server.h) on 127.0.0.1: the scenarios every backend
 * passes (store_cases.h), then what is PostgreSQL's own: URLs and masked passwords,
 * session settings, SQLSTATE mapping, aborted transactions, placeholder rewriting
 * around PostgreSQL's quoting, column typing by OID, server-side statement cleanup,
 * the bound pool under 50 concurrent submits (checked in pg_stat_activity), racing
 * migrations, and a server restart mid-test (MK_EUNAVAILABLE, then recovery).
 *
 * One server serves the binary (started in PRE_ALL, published through the
 * environment to the test processes); each test works in its own schema. The restart
 * test starts a private server so it cannot disturb tests running beside it. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "pg_server.h"
#include "store/mk_store.h"
#include "store_cases.h"

/* --- the shared server ------------------------------------------------------------- */

static struct pg_server shared;  /* the runner process's; tests import it */

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

static struct pg_server srv;     /* this test process's view of the shared server */
static char schema[32];

static void setup(void)
{
    const char *skip = getenv("MK_PG_SKIP");
    if (skip) cr_assert_fail("%s: run scripts/install-deps.sh --test", skip); /* never a quiet pass */
    const char *e = getenv("MK_PG_ERROR");
    if (e) cr_assert_fail("PostgreSQL did not start: %s", e);
    cr_assert_eq(pg_server_import(&srv, "MK_PG"), 0);
    snprintf(schema, sizeof schema, "t_%d", (int)getpid());
    char sql[64], err[1024];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    cr_assert_eq(pg_server_psql(&srv, "postgres", sql, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    if (!schema[0]) return;
    char sql[64];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    pg_server_psql(&srv, "postgres", sql, NULL, 0);
}

/* The test's URL: its own schema first on the search path; extra may add parameters. */
static void url_with(char *out, size_t n, const char *extra)
{
    char q[160];
    snprintf(q, sizeof q, "options=-csearch_path%%3D%s%s%s", schema, extra ? "&" : "", extra ? extra : "");
    cr_assert_eq(pg_server_url(&srv, "postgres", q, out, n), 0);
}

static void pg_url(char *out, size_t n) { url_with(out, n, NULL); }

static const struct store_fx pg_fx = {
    .backend = "postgres",
    .url = pg_url,
    .blob = "BYTEA",
    .table_count_sql = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?",
};

TestSuite(store_pg, .init = setup, .fini = teardown, .timeout = 120);

STORE_CASES(store_pg, pg_fx)

/* --- PostgreSQL's own ------------------------------------------------------------------ */

static mk_slice one_text(struct mk_store *s, const char *sql)
{
    static char buf[256];
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, sql, &st), 0, "%s: %s", sql, mk_store_errmsg(c));
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW, "%s", mk_store_errmsg(c));
    mk_slice v = mk_store_column_text(st, 0);
    snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.ptr);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    return mk_slice_cstr(buf);
}

Test(store_pg, urls_and_masked_passwords)
{
    struct mk_store *s = NULL;
    mk_buf err = MK_BUF_INIT;
    /* Nothing listens on port 1: unavailable, and the password never shows. */
    cr_expect_eq(mk_store_open("postgres://mayak:hunter2secret@127.0.0.1:1/db?sslmode=disable", NULL, &s, &err),
                 MK_EUNAVAILABLE);
    cr_expect_null(s);
    cr_expect(err.data && strstr(err.data, "hunter2secret") == NULL, "%s", err.data);
    cr_expect(err.data && strstr(err.data, "mayak:***@") != NULL, "%s", err.data);
    mk_buf_reset(&err);
    cr_expect_eq(mk_store_open("postgresql://u@127.0.0.1:1/db?password=hunter2secret&sslmode=disable", NULL, &s, &err),
                 MK_EUNAVAILABLE);
    cr_expect(err.data && strstr(err.data, "hunter2secret") == NULL, "%s", err.data);
    mk_buf_reset(&err);
    /* libpq refuses an unknown parameter before any connection is tried. */
    cr_expect_eq(mk_store_open("postgres://u:pw@127.0.0.1/db?no_such_option=1", NULL, &s, &err), MK_EINVAL);
    cr_expect(err.data && strstr(err.data, "no_such_option") != NULL, "%s", err.data);
    mk_buf_reset(&err);
    /* A wrong password is refused by the server: unavailable, masked. */
    char url[512];
    snprintf(url, sizeof url, "postgres://%s:wrong-password@127.0.0.1:%d/postgres?sslmode=disable", srv.user, srv.port);
    cr_expect_eq(mk_store_open(url, NULL, &s, &err), MK_EUNAVAILABLE);
    cr_expect(err.data && strstr(err.data, "password authentication failed") != NULL, "%s", err.data);
    cr_expect(err.data && strstr(err.data, "wrong-password") == NULL, "%s", err.data);
    mk_buf_release(&err);
    /* Both spellings of the scheme reach the server. */
    pg_url(url, sizeof url);
    cr_assert_eq(mk_store_open(url, NULL, &s, NULL), 0);
    cr_expect_str_eq(mk_store_backend_name(s), "postgres");
    mk_store_free(s);
    char alt[520];
    snprintf(alt, sizeof alt, "postgresql://%s", strstr(url, "://") + 3);
    cr_assert_eq(mk_store_open(alt, NULL, &s, NULL), 0);
    mk_store_free(s);
}

Test(store_pg, session_settings)
{
    struct mk_store_options o = {.busy_timeout_ms = 1234, .sync = MK_STORE_SYNC_NORMAL};
    struct mk_store *s = fx_open(&pg_fx, &o);
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW lock_timeout"), "1234ms"));
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW synchronous_commit"), "off"));
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW default_transaction_read_only"), "off"));
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW application_name"), "mayak"));
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW transaction_isolation"), "read committed"));
    mk_store_free(s);
    s = fx_open(&pg_fx, &(struct mk_store_options){.read_only = true});
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW synchronous_commit"), "on"));
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW default_transaction_read_only"), "on"));
    mk_store_free(s);
    /* The URL's own application_name wins over ours. */
    char url[512];
    url_with(url, sizeof url, "application_name=other");
    cr_assert_eq(mk_store_open(url, NULL, &s, NULL), 0);
    cr_expect(mk_slice_eq_cstr(one_text(s, "SHOW application_name"), "other"));
    mk_store_free(s);
}

static int step_sql(struct mk_store_conn *c, const char *sql)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql, &st);
    if (rc) return rc;
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    return rc;
}

Test(store_pg, error_mapping)
{
    struct mk_store *s = fx_open(&pg_fx, &(struct mk_store_options){.busy_timeout_ms = 100});
    fx_exec(s, "CREATE TABLE e (k TEXT PRIMARY KEY, n BIGINT NOT NULL CHECK (n >= 0))");
    fx_exec(s, "INSERT INTO e VALUES ('a', 1)");
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    cr_expect_eq(step_sql(c, "INSERT INTO e VALUES ('a', 2)"), MK_EEXISTS);
    cr_expect(strstr(mk_store_errmsg(c), "23505") != NULL, "%s", mk_store_errmsg(c));
    cr_expect_eq(step_sql(c, "INSERT INTO e VALUES ('b', NULL)"), MK_EINVAL, "not null");
    cr_expect_eq(step_sql(c, "INSERT INTO e VALUES ('b', -1)"), MK_EINVAL, "check");
    cr_expect_eq(step_sql(c, "SELECT 1 / 0"), MK_EINVAL, "division by zero");
    cr_expect_eq(step_sql(c, "SELECT nosuchcolumn FROM e"), MK_EINVAL);
    cr_expect_eq(mk_store_exec(c, "DROP TABLE nosuchtable"), MK_EINVAL);
    cr_expect(strstr(mk_store_errmsg(c), "42P01") != NULL, "%s", mk_store_errmsg(c));
    /* Text PostgreSQL cannot hold: a NUL (refused at bind), invalid UTF-8 (at step). */
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "SELECT length(?)", &st), 0);
    cr_expect_eq(mk_store_bind_text(st, 1, "a\0b", 3), MK_EINVAL);
    cr_expect(strstr(mk_store_errmsg(c), "NUL") != NULL, "%s", mk_store_errmsg(c));
    cr_expect_eq(mk_store_bind_text(st, 1, "\xff\xfe", 2), 0);
    cr_expect_eq(mk_store_step(st), MK_EINVAL);
    mk_store_stmt_done(st);
    /* Bytes that are no text go in fine as a blob. */
    fx_exec(s, "CREATE TABLE bl (b BYTEA)");
    cr_assert_eq(mk_store_prepare(c, "INSERT INTO bl VALUES (?)", &st), 0);
    cr_expect_eq(mk_store_bind_blob(st, 1, "a\0\xff", 3), 0);
    cr_expect_eq(mk_store_step(st), MK_STORE_DONE, "%s", mk_store_errmsg(c));
    mk_store_stmt_done(st);
    /* A row lock held longer than the busy timeout: MK_EBUSY, like SQLite's. */
    struct mk_store_conn *w;
    cr_assert_eq(mk_store_acquire(s, &w), 0);
    cr_assert_eq(mk_store_begin(w), 0);
    cr_assert_eq(mk_store_exec(w, "UPDATE e SET n = 5 WHERE k = 'a'"), 0);
    cr_expect_eq(mk_store_exec(c, "UPDATE e SET n = 6 WHERE k = 'a'"), MK_EBUSY, "%s", mk_store_errmsg(c));
    cr_assert_eq(mk_store_rollback(w), 0);
    cr_expect_eq(mk_store_exec(c, "UPDATE e SET n = 6 WHERE k = 'a'"), 0);
    /* COPY needs a data channel the API does not have: refused cleanly. */
    cr_expect_eq(mk_store_exec(c, "COPY e TO STDOUT"), MK_EINVAL);
    cr_expect_eq(mk_store_exec(c, "COPY e FROM STDIN"), MK_EINVAL);
    cr_expect_eq(step_sql(c, "SELECT count(*) FROM e"), MK_STORE_ROW, "the connection still works");
    mk_store_release(s, w);
    mk_store_release(s, c);
    mk_store_free(s);
}

Test(store_pg, error_aborts_the_transaction)
{
    struct mk_store *s = fx_open(&pg_fx, NULL);
    fx_exec(s, "CREATE TABLE t (k TEXT PRIMARY KEY)");
    fx_exec(s, "INSERT INTO t VALUES ('a')");
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    cr_assert_eq(mk_store_begin(c), 0);
    cr_assert_eq(step_sql(c, "INSERT INTO t VALUES ('b')"), MK_STORE_DONE);
    cr_expect_eq(step_sql(c, "INSERT INTO t VALUES ('a')"), MK_EEXISTS);
    /* Later statements fail with the error that aborted the transaction... */
    cr_expect_eq(step_sql(c, "INSERT INTO t VALUES ('c')"), MK_EEXISTS);
    cr_expect(strstr(mk_store_errmsg(c), "aborted") != NULL, "%s", mk_store_errmsg(c));
    /* ... and so does COMMIT, which PostgreSQL would answer with a quiet ROLLBACK. */
    cr_expect_eq(mk_store_commit(c), MK_EEXISTS);
    cr_expect(!mk_store_in_transaction(c));
    /* The connection is clean again. */
    cr_expect_eq(step_sql(c, "INSERT INTO t VALUES ('d')"), MK_STORE_DONE);
    mk_store_release(s, c);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM t", NULL), 2, "'a' and 'd' only");
    mk_store_free(s);
}

Test(store_pg, placeholders_around_postgres_quoting)
{
    struct mk_store *s = fx_open(&pg_fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    const char *sql = "SELECT E'\\'?' || ?, $$?$$ || ?, $tag$ ? $x$ ? $tag$, \"c?\" /* ? /* nested ? */ ? */"
                      " FROM (SELECT 'q?' AS \"c?\") s";
    cr_assert_eq(mk_store_prepare(c, sql, &st), 0, "%s", mk_store_errmsg(c));
    cr_expect_eq(mk_store_bind_cstr(st, 1, "1"), 0);
    cr_expect_eq(mk_store_bind_cstr(st, 2, "2"), 0);
    cr_expect_eq(mk_store_bind_cstr(st, 3, "3"), MK_EINVAL, "two parameters only");
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW, "%s", mk_store_errmsg(c));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 0), "'?1"));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 1), "?2"));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 2), " ? $x$ ? "));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 3), "q?"));
    mk_store_stmt_done(st);
    /* Native $n works when the SQL has no `?`; mixing the two is refused. */
    cr_assert_eq(mk_store_prepare(c, "SELECT $1::int + $2", &st), 0, "%s", mk_store_errmsg(c));
    mk_store_bind_int64(st, 1, 40);
    mk_store_bind_int64(st, 2, 2);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_int64(st, 0), 42);
    mk_store_stmt_done(st);
    cr_expect_eq(mk_store_prepare(c, "SELECT $1, ?", &st), MK_EINVAL);
    cr_expect_eq(mk_store_prepare(c, "SELECT ?70000", &st), MK_EINVAL);
    /* A casting `::` and an identifier with `$` are left alone. */
    cr_assert_eq(mk_store_prepare(c, "SELECT ?::bigint * 2 AS a$b", &st), 0, "%s", mk_store_errmsg(c));
    mk_store_bind_int64(st, 1, 21);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_int64(st, 0), 42);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_free(s);
}

Test(store_pg, column_types)
{
    struct mk_store *s = fx_open(&pg_fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c,
                                  "SELECT true, false, 7::smallint, 1.25::numeric(10,2), 123456789012345678901234::numeric,"
                                  " 0.5::real, 'v'::varchar, '{\"a\":1}'::json, '2024-01-02'::date, 26::oid,"
                                  " ?::double precision, ?::double precision, ?::double precision, -9::numeric",
                                  &st),
                 0, "%s", mk_store_errmsg(c));
    mk_store_bind_double(st, 1, NAN);
    mk_store_bind_double(st, 2, INFINITY);
    mk_store_bind_double(st, 3, -INFINITY);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW, "%s", mk_store_errmsg(c));
    struct mk_store_value v;
    mk_store_column(st, 0, &v);
    cr_expect(v.type == MK_STORE_INT && v.i == 1);
    mk_store_column(st, 1, &v);
    cr_expect(v.type == MK_STORE_INT && v.i == 0);
    mk_store_column(st, 2, &v);
    cr_expect(v.type == MK_STORE_INT && v.i == 7);
    mk_store_column(st, 3, &v);
    cr_expect(v.type == MK_STORE_REAL && v.d == 1.25);
    mk_store_column(st, 4, &v);
    cr_expect(v.type == MK_STORE_REAL && v.d > 1.2e23, "a numeric beyond int64 reads as a double");
    mk_store_column(st, 5, &v);
    cr_expect(v.type == MK_STORE_REAL && v.d == 0.5);
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 6), "v"));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 7), "{\"a\":1}"));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 8), "2024-01-02"));
    cr_expect_eq(mk_store_column_int64(st, 9), 26);
    cr_expect(isnan(mk_store_column_double(st, 10)));
    cr_expect(isinf(mk_store_column_double(st, 11)) && mk_store_column_double(st, 11) > 0);
    cr_expect(isinf(mk_store_column_double(st, 12)) && mk_store_column_double(st, 12) < 0);
    mk_store_column(st, 13, &v);
    cr_expect(v.type == MK_STORE_INT && v.i == -9);
    cr_expect_eq(mk_store_step(st), MK_STORE_DONE);
    /* Stepping a finished statement runs it again with the same bindings (as SQLite). */
    cr_expect_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect(isnan(mk_store_column_double(st, 10)));
    /* Binding while it runs is refused; after reset it works. */
    cr_expect_eq(mk_store_bind_double(st, 1, 1.0), MK_EINVAL);
    cr_expect_eq(mk_store_reset(st), 0);
    cr_expect_eq(mk_store_bind_double(st, 1, 1.0), 0);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_free(s);
}

Test(store_pg, evicted_statements_are_deallocated)
{
    struct mk_store *s = fx_open(&pg_fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    for (int i = 0; i < MK_STORE_STMT_CACHE * 3; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d", i);
        cr_assert_eq(step_sql(c, sql), MK_STORE_ROW);
    }
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "SELECT count(*) FROM pg_prepared_statements", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    int64_t n = mk_store_column_int64(st, 0);
    mk_store_stmt_done(st);
    /* The cache's statements plus a DEALLOCATE batch still waiting for an idle moment. */
    cr_expect_leq(n, MK_STORE_STMT_CACHE + 1, "%lld server-side statements", (long long)n);
    mk_store_release(s, c);
    mk_store_free(s);
}

/* --- the bounded pool under load --------------------------------------------------- */

struct pool_ctx {
    pthread_mutex_t mu;
    int64_t max_seen;
    int done, errors;
    const char *app;
};

static int pool_work(struct mk_store_conn *c, void *arg)
{
    struct pool_ctx *p = arg;
    struct mk_store_stmt *st;
    /* Hold the connection a moment so the 8 worker threads really compete for 4. */
    int rc = mk_store_prepare(c, "SELECT count(*), pg_sleep(0.02) FROM pg_stat_activity WHERE application_name = ?", &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, p->app);
    rc = mk_store_step(st);
    int64_t n = rc == MK_STORE_ROW ? mk_store_column_int64(st, 0) : -1;
    mk_store_stmt_done(st);
    if (n < 0) return rc < 0 ? rc : MK_EINTERNAL;
    pthread_mutex_lock(&p->mu);
    if (n > p->max_seen) p->max_seen = n;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static void pool_done(int status, void *arg)
{
    struct pool_ctx *p = arg;
    if (status) p->errors++;
    p->done++;
}

Test(store_pg, pool_bounds_server_connections)
{
    /* More worker threads than connections: libuv reads this at its first work item. */
    setenv("UV_THREADPOOL_SIZE", "8", 1);
    char app[32], extra[64], url[512];
    snprintf(app, sizeof app, "mkpool_%d", (int)getpid());
    snprintf(extra, sizeof extra, "application_name=%s", app);
    url_with(url, sizeof url, extra);
    struct mk_store *s;
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_store_open(url, &(struct mk_store_options){.max_connections = 4}, &s, &err), 0, "%s",
                 err.data ? err.data : "");
    mk_buf_release(&err);
    struct pool_ctx p = {.app = app};
    pthread_mutex_init(&p.mu, NULL);
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    for (int i = 0; i < 50; i++) cr_assert_eq(mk_store_submit(s, &loop, pool_work, pool_done, &p), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    cr_expect_eq(p.done, 50);
    cr_expect_eq(p.errors, 0);
    cr_expect_gt(p.max_seen, 0);
    cr_expect_leq(p.max_seen, 4, "the server saw %lld connections of this store", (long long)p.max_seen);
    /* Seen from outside too: still no more than 4 sessions of this store. */
    struct mk_store *mon = fx_open(&pg_fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(mon, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", &st), 0);
    mk_store_bind_cstr(st, 1, app);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_leq(mk_store_column_int64(st, 0), 4);
    mk_store_stmt_done(st);
    mk_store_release(mon, c);
    mk_store_free(mon);
    mk_store_free(s);
    pthread_mutex_destroy(&p.mu);
}

/* --- migrations racing across processes ---------------------------------------------- */

static const struct mk_store_migration race_mig[] = {
    {1, "CREATE TABLE r (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body TEXT);", NULL},
    {2, "INSERT INTO r (body) VALUES ('once');", NULL},
    {3, "CREATE INDEX r_body ON r(body);", NULL},
};

struct race_arg {
    int rc;
    char err[256];
};

static void *race_thread(void *p)
{
    struct race_arg *a = p;
    /* Each thread its own store: separate sessions, as separate processes would have. */
    char url[512];
    pg_url(url, sizeof url);
    struct mk_store *s;
    mk_buf err = MK_BUF_INIT;
    a->rc = mk_store_open(url, NULL, &s, &err);
    if (a->rc == 0) {
        a->rc = mk_store_migrate(s, "race", race_mig, 3, &err);
        mk_store_free(s);
    }
    snprintf(a->err, sizeof a->err, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    return NULL;
}

Test(store_pg, concurrent_migrations_apply_once)
{
    pthread_t th[4];
    struct race_arg args[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, race_thread, &args[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(args[i].rc, 0, "migrator %d: %s", i, args[i].err);
    }
    struct mk_store *s = fx_open(&pg_fx, NULL);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM r", NULL), 1, "version 2 ran once");
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM schema_migrations WHERE module = 'race'", NULL), 3);
    mk_store_free(s);
}

/* --- a server restart mid-test ----------------------------------------------------- */

static struct pg_server priv;

static void stop_private(void)
{
    pg_server_stop(&priv);
    teardown();
}

struct loss_job {
    int status;
    bool called;
};

static int loss_work(struct mk_store_conn *c, void *arg)
{
    (void)arg;
    return step_sql(c, "SELECT 1") == MK_STORE_ROW ? 0 : MK_EINTERNAL;
}

static void loss_done(int status, void *arg)
{
    struct loss_job *j = arg;
    j->status = status;
    j->called = true;
}

Test(store_pg, connection_loss_and_recovery, .fini = stop_private)
{
    char err[2048];
    cr_assert_eq(pg_server_start(&priv, err, sizeof err), 0, "%s", err);
    char url[512];
    cr_assert_eq(pg_server_url(&priv, "postgres", NULL, url, sizeof url), 0);
    struct mk_store *s;
    cr_assert_eq(mk_store_open(url, &(struct mk_store_options){.max_connections = 2}, &s, NULL), 0);
    fx_exec(s, "CREATE TABLE t (v BIGINT)");
    fx_exec(s, "INSERT INTO t VALUES (1)");

    /* c1 is held across the restart, c2 waits idle in the pool. */
    struct mk_store_conn *c1, *c2;
    cr_assert_eq(mk_store_acquire(s, &c1), 0);
    cr_assert_eq(mk_store_acquire(s, &c2), 0);
    cr_assert_eq(step_sql(c2, "SELECT 1"), MK_STORE_ROW);
    mk_store_release(s, c2);
    cr_assert_eq(mk_store_begin(c1), 0);
    cr_assert_eq(mk_store_exec(c1, "INSERT INTO t VALUES (2)"), 0);

    cr_assert_eq(pg_server_halt(&priv, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pg_server_resume(&priv, err, sizeof err), 0, "%s", err);

    /* The held connection reports the loss, on every call, and never reconnects in the
     * middle of its transaction. */
    cr_expect_eq(mk_store_exec(c1, "INSERT INTO t VALUES (3)"), MK_EUNAVAILABLE);
    cr_expect(strstr(mk_store_errmsg(c1), "connection") != NULL, "%s", mk_store_errmsg(c1));
    cr_expect_eq(step_sql(c1, "SELECT 1"), MK_EUNAVAILABLE);
    cr_expect_neq(mk_store_commit(c1), 0);
    cr_expect(!mk_store_in_transaction(c1));
    mk_store_release(s, c1);

    /* Next checkouts replace both dead connections (the idle one noticed without a
     * query) and work at once; nothing of the lost transaction was committed. */
    struct mk_store_conn *a, *b;
    cr_assert_eq(mk_store_acquire(s, &a), 0);
    cr_assert_eq(mk_store_acquire(s, &b), 0);
    cr_expect_eq(step_sql(a, "SELECT 1"), MK_STORE_ROW, "%s", mk_store_errmsg(a));
    cr_expect_eq(step_sql(b, "SELECT 1"), MK_STORE_ROW, "%s", mk_store_errmsg(b));
    mk_store_release(s, a);
    mk_store_release(s, b);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM t", NULL), 1);

    /* While the server is down: acquire and submit fail with MK_EUNAVAILABLE... */
    cr_assert_eq(pg_server_halt(&priv, err, sizeof err), 0, "%s", err);
    struct mk_store_conn *c;
    cr_expect_eq(mk_store_acquire(s, &c), MK_EUNAVAILABLE);
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    struct loss_job j = {0};
    cr_assert_eq(mk_store_submit(s, &loop, loss_work, loss_done, &j), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect(j.called);
    cr_expect_eq(j.status, MK_EUNAVAILABLE);
    /* ... and once it is back, the same store works again. */
    cr_assert_eq(pg_server_resume(&priv, err, sizeof err), 0, "%s", err);
    j = (struct loss_job){0};
    cr_assert_eq(mk_store_submit(s, &loop, loss_work, loss_done, &j), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(j.status, 0);
    uv_loop_close(&loop);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM t", NULL), 1);
    mk_store_free(s);
}
