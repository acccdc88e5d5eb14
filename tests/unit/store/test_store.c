/* Unit tests for mk_store (SQLite backend): URL dispatch, WAL and busy settings, and
 * the scenarios every backend passes (store_cases.h: prepared statements and their
 * cache, value round trips, constraint errors, transactions, per-module migrations,
 * concurrent use from threads and from mk_store_submit, the bounded pool).
 * test_store_postgres.c runs the same scenarios on a real PostgreSQL. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "store/mk_store.h"
#include "store_cases.h"

static char dir[64];
static char dbpath[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/mk-store-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/t.db", dir);
}

static void teardown(void)
{
    char p[192];
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, suffix[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/junk", dir);
    unlink(p);
    rmdir(dir);
}

static struct mk_store *open_db(void)
{
    struct mk_store *s = NULL;
    mk_buf err = MK_BUF_INIT;
    char url[192];
    snprintf(url, sizeof url, "sqlite://%s", dbpath);
    int rc = mk_store_open(url, NULL, &s, &err);
    cr_assert_eq(rc, 0, "open: %s", err.data ? err.data : "");
    mk_buf_release(&err);
    return s;
}

/* Runs a query returning one integer. */
static int64_t query_int(struct mk_store *s, const char *sql)
{
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, sql, &st), 0, "%s: %s", sql, mk_store_errmsg(c));
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    int64_t v = mk_store_column_int64(st, 0);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    return v;
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

Test(store, urls)
{
    struct mk_store *s = NULL;
    mk_buf err = MK_BUF_INIT;
    cr_expect_eq(mk_store_open("mysql://x", NULL, &s, &err), MK_EINVAL);
    cr_expect(strstr(err.data, "unknown URL scheme") != NULL, "%s", err.data);
    cr_expect_null(s);
    cr_expect_eq(mk_store_open("", NULL, &s, NULL), MK_EINVAL);
    cr_expect_eq(mk_store_open("sqlite://", NULL, &s, NULL), MK_EINVAL);
    cr_expect_eq(mk_store_open("/nonexistent-dir-mayak/x.db", NULL, &s, NULL), MK_EIO);
    cr_expect(mk_store_url_supported("postgresql://h/db"));
    cr_expect(mk_store_url_supported("postgres://u:p@h:5432/db?sslmode=require"));
    cr_expect(!mk_store_url_supported("postgres://"));
    cr_expect(mk_store_url_supported("sqlite:///tmp/x.db"));
    cr_expect(mk_store_url_supported("relative/x.db"));
    mk_buf_release(&err);

    /* A plain path and sqlite::memory: work too. */
    cr_assert_eq(mk_store_open(dbpath, NULL, &s, NULL), 0);
    cr_expect_str_eq(mk_store_backend_name(s), "sqlite");
    mk_store_free(s);
    cr_assert_eq(mk_store_open("sqlite::memory:", NULL, &s, NULL), 0);
    cr_expect_eq(query_int(s, "SELECT 40 + 2"), 42);
    mk_store_free(s);
    mk_store_free(NULL);
}

Test(store, not_a_database)
{
    char p[192];
    snprintf(p, sizeof p, "%s/junk", dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 200; i++) fputs("this is not an SQLite database file at all\n", f);
    fclose(f);
    struct mk_store *s = NULL;
    mk_buf err = MK_BUF_INIT;
    cr_expect_eq(mk_store_open(p, NULL, &s, &err), MK_ECORRUPT, "%s", err.data ? err.data : "");
    cr_expect_null(s);
    mk_buf_release(&err);
}

Test(store, wal_and_pragmas)
{
    struct mk_store *s = open_db();
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "PRAGMA journal_mode", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    mk_slice mode = mk_store_column_text(st, 0);
    cr_expect(mk_slice_eq_cstr(mode, "wal"), "journal_mode %.*s", (int)mode.len, mode.ptr);
    mk_store_stmt_done(st);
    cr_assert_eq(mk_store_prepare(c, "PRAGMA busy_timeout", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_int64(st, 0), MK_STORE_DEFAULT_BUSY_MS);
    mk_store_stmt_done(st);
    cr_assert_eq(mk_store_prepare(c, "PRAGMA synchronous", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_int64(st, 0), 2, "FULL by default");
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_free(s);
}

static void sqlite_url(char *out, size_t n) { snprintf(out, n, "sqlite://%s", dbpath); }

static const struct store_fx sqlite_fx = {
    .backend = "sqlite",
    .url = sqlite_url,
    .blob = "BLOB",
    .table_count_sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?",
};

STORE_CASES(store, sqlite_fx)
