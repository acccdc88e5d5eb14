/* Store scenarios every backend must pass, included by test_store.c (SQLite) and
 * test_store_postgres.c (PostgreSQL). Each test file defines the fixture: the URL of
 * the current test's empty database and the few words of DDL that differ. The cases
 * use only what the API promises on every backend. */
#ifndef MK_TEST_STORE_CASES_H
#define MK_TEST_STORE_CASES_H

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "store/mk_store.h"

struct store_fx {
    const char *backend;            /* what mk_store_backend_name must say */
    void (*url)(char *out, size_t n);
    const char *blob;               /* "BLOB" / "BYTEA" */
    const char *table_count_sql;    /* one ? (a table name) -> how many such tables */
};

static struct mk_store *fx_open(const struct store_fx *fx, const struct mk_store_options *o)
{
    char url[512];
    fx->url(url, sizeof url);
    struct mk_store *s = NULL;
    mk_buf err = MK_BUF_INIT;
    int rc = mk_store_open(url, o, &s, &err);
    cr_assert_eq(rc, 0, "open: %s (%s)", err.data ? err.data : "", mk_strerror(rc));
    mk_buf_release(&err);
    cr_assert_str_eq(mk_store_backend_name(s), fx->backend);
    return s;
}

static void fx_exec(struct mk_store *s, const char *sql)
{
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    cr_assert_eq(mk_store_exec(c, sql), 0, "%s: %s", sql, mk_store_errmsg(c));
    mk_store_release(s, c);
}

/* Runs a query (with an optional text parameter) returning one integer. */
static int64_t fx_int(struct mk_store *s, const char *sql, const char *arg)
{
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, sql, &st), 0, "%s: %s", sql, mk_store_errmsg(c));
    if (arg) mk_store_bind_cstr(st, 1, arg);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW, "%s: %s", sql, mk_store_errmsg(c));
    int64_t v = mk_store_column_int64(st, 0);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    return v;
}

static void case_values_statements_and_errors(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    char ddl[256];
    snprintf(ddl, sizeof ddl, "CREATE TABLE t (k TEXT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, b %s, n TEXT)",
             fx->blob);
    cr_assert_eq(mk_store_exec(c, ddl), 0, "%s", mk_store_errmsg(c));
    struct mk_store_stmt *st, *again;
    const char *ins = "INSERT INTO t (k, i, d, b, n) VALUES (?, ?, ?, ?, ?)";
    cr_assert_eq(mk_store_prepare(c, ins, &st), 0, "%s", mk_store_errmsg(c));
    const unsigned char blob[4] = {0, 1, 0xff, 0};
    cr_expect_eq(mk_store_bind_text(st, 1, "ключ", strlen("ключ")), 0);
    cr_expect_eq(mk_store_bind_int64(st, 2, INT64_MIN), 0);
    cr_expect_eq(mk_store_bind_double(st, 3, 0.3), 0);
    cr_expect_eq(mk_store_bind_blob(st, 4, blob, sizeof blob), 0);
    cr_expect_eq(mk_store_bind_cstr(st, 5, NULL), 0);
    cr_expect_eq(mk_store_bind_int64(st, 9, 1), MK_EINVAL, "index out of range");
    cr_expect_eq(mk_store_bind_int64(st, 0, 1), MK_EINVAL, "index out of range");
    cr_expect_eq(mk_store_step(st), MK_STORE_DONE, "%s", mk_store_errmsg(c));
    cr_expect_eq(mk_store_changes(c), 1);
    mk_store_stmt_done(st);
    /* The cache gives the same statement back, rewound and unbound. */
    cr_assert_eq(mk_store_prepare(c, ins, &again), 0);
    cr_expect_eq(again, st);
    mk_store_bind_text(again, 1, "ключ", strlen("ключ"));
    cr_expect_eq(mk_store_step(again), MK_EEXISTS, "duplicate primary key");
    cr_expect(strlen(mk_store_errmsg(c)) > 0);
    mk_store_stmt_done(again);

    cr_assert_eq(mk_store_prepare(c, "SELECT k, i, d, b, n FROM t", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_count(st), 5);
    mk_slice k = mk_store_column_text(st, 0);
    cr_expect(mk_slice_eq_cstr(k, "ключ"));
    cr_expect_eq(k.ptr[k.len], '\0', "text columns are NUL-terminated");
    cr_expect_eq(mk_store_column_int64(st, 1), INT64_MIN);
    cr_expect_eq(mk_store_column_double(st, 2), 0.3);
    struct mk_store_value v;
    mk_store_column(st, 1, &v);
    cr_expect_eq(v.type, MK_STORE_INT);
    mk_store_column(st, 2, &v);
    cr_expect_eq(v.type, MK_STORE_REAL);
    mk_store_column(st, 3, &v);
    cr_expect_eq(v.type, MK_STORE_BLOB);
    mk_slice b = mk_store_column_blob(st, 3);
    cr_expect_eq(b.len, 4);
    cr_expect_eq(memcmp(b.ptr, blob, 4), 0);
    cr_expect(mk_store_column_is_null(st, 4));
    cr_expect(mk_store_column_is_null(st, 99), "a column past the end reads as NULL");
    cr_expect_eq(mk_store_step(st), MK_STORE_DONE);
    mk_store_stmt_done(st);

    /* Two live statements with the same SQL are distinct. */
    struct mk_store_stmt *a1, *a2;
    cr_assert_eq(mk_store_prepare(c, "SELECT 1", &a1), 0);
    cr_assert_eq(mk_store_prepare(c, "SELECT 1", &a2), 0);
    cr_expect_neq(a1, a2);
    mk_store_stmt_done(a1);
    mk_store_stmt_done(a2);

    cr_expect_eq(mk_store_prepare(c, "SELEC nonsense", &st), MK_EINVAL);
    cr_expect(strlen(mk_store_errmsg(c)) > 0);
    cr_expect_eq(mk_store_prepare(c, "   ", &st), MK_EINVAL, "empty SQL");
    cr_expect_eq(mk_store_exec(c, "INSERT INTO missing VALUES (1)"), MK_EINVAL);
    mk_store_release(s, c);
    mk_store_free(s);
}

static void case_empty_and_large_values(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    char ddl[128];
    snprintf(ddl, sizeof ddl, "CREATE TABLE v (id BIGINT PRIMARY KEY, t TEXT, b %s)", fx->blob);
    fx_exec(s, ddl);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "INSERT INTO v (id, t, b) VALUES (?, ?, ?)", &st), 0);
    /* Empty is not NULL, for text and for blobs. */
    mk_store_bind_int64(st, 1, 1);
    mk_store_bind_text(st, 2, "", 0);
    mk_store_bind_blob(st, 3, "", 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_DONE, "%s", mk_store_errmsg(c));
    mk_store_reset(st);
    /* A megabyte of every byte value, borrowed (no copy), and long text. */
    size_t n = 1 << 20;
    unsigned char *big = malloc(n);
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        big[i] = (unsigned char)(i * 7 + 3);
        text[i] = (char)('a' + i % 26);
    }
    text[n] = '\0';
    mk_store_bind_int64(st, 1, 2);
    mk_store_bind_cstr(st, 2, text);
    struct mk_store_value bv = {.type = MK_STORE_BLOB, .ptr = big, .len = n, .borrowed = true};
    cr_assert_eq(mk_store_bind(st, 3, &bv), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_DONE, "%s", mk_store_errmsg(c));
    mk_store_stmt_done(st);

    cr_assert_eq(mk_store_prepare(c, "SELECT t, b FROM v ORDER BY id", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect(!mk_store_column_is_null(st, 0));
    cr_expect(!mk_store_column_is_null(st, 1));
    cr_expect_eq(mk_store_column_text(st, 0).len, 0);
    cr_expect_eq(mk_store_column_blob(st, 1).len, 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    /* Two column values of one row stay valid together until the next step. */
    mk_slice t = mk_store_column_text(st, 0), b = mk_store_column_blob(st, 1);
    cr_expect_eq(t.len, n);
    cr_expect_eq(memcmp(t.ptr, text, n), 0);
    cr_expect_eq(b.len, n);
    cr_expect_eq(memcmp(b.ptr, big, n), 0);
    cr_expect_eq(mk_store_step(st), MK_STORE_DONE);
    mk_store_stmt_done(st);
    free(big);
    free(text);
    mk_store_release(s, c);
    mk_store_free(s);
}

static void case_placeholders(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    /* `?` inside a literal and a comment is text, not a parameter. */
    cr_assert_eq(mk_store_prepare(c, "SELECT '?' || ?, ? + 1 -- ?\n", &st), 0, "%s", mk_store_errmsg(c));
    mk_store_bind_cstr(st, 1, "a");
    mk_store_bind_int64(st, 2, 41);
    cr_expect_eq(mk_store_bind_int64(st, 3, 1), MK_EINVAL, "only two parameters");
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW, "%s", mk_store_errmsg(c));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 0), "?a"));
    cr_expect_eq(mk_store_column_int64(st, 1), 42);
    mk_store_stmt_done(st);
    /* ?NNN numbers explicitly and may repeat. */
    cr_assert_eq(mk_store_prepare(c, "SELECT ?2 || ?1 || ?2", &st), 0, "%s", mk_store_errmsg(c));
    mk_store_bind_cstr(st, 1, "x");
    mk_store_bind_cstr(st, 2, "y");
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW, "%s", mk_store_errmsg(c));
    cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 0), "yxy"));
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_free(s);
}

static void case_types_and_changes(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    fx_exec(s, "CREATE TABLE n (g TEXT, v BIGINT, x DOUBLE PRECISION)");
    fx_exec(s, "INSERT INTO n VALUES ('a', 1, 0.5), ('a', 2, 1.5), ('b', 4000000000, -2.25)");
    /* Aggregates come back as numbers, whatever type the backend gives them. */
    cr_expect_eq(fx_int(s, "SELECT sum(v) FROM n", NULL), 4000000003LL);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM n WHERE g = ?", "a"), 2);
    cr_expect_eq(fx_int(s, "SELECT max(v) FROM n WHERE g = ?", "zzz"), 0, "NULL reads as 0");
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "SELECT sum(x), max(v) FROM n WHERE g = ?", &st), 0);
    mk_store_bind_cstr(st, 1, "a");
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_double(st, 0), 2.0);
    cr_expect_eq(mk_store_column_double(st, 1), 2.0, "an integer reads as a double too");
    mk_store_stmt_done(st);
    cr_assert_eq(mk_store_prepare(c, "UPDATE n SET v = v + ? WHERE g = ?", &st), 0);
    mk_store_bind_int64(st, 1, 10);
    mk_store_bind_cstr(st, 2, "a");
    cr_assert_eq(mk_store_step(st), MK_STORE_DONE);
    mk_store_stmt_done(st);
    cr_expect_eq(mk_store_changes(c), 2);
    /* A SELECT leaves the count of the last change alone. */
    cr_assert_eq(mk_store_prepare(c, "SELECT count(*) FROM n", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    mk_store_stmt_done(st);
    cr_expect_eq(mk_store_changes(c), 2);
    cr_assert_eq(mk_store_exec(c, "DELETE FROM n"), 0);
    cr_expect_eq(mk_store_changes(c), 3);
    /* RETURNING, the portable way to learn generated values. */
    cr_assert_eq(mk_store_prepare(c, "INSERT INTO n (g, v) VALUES (?, ?) RETURNING v * 2", &st), 0);
    mk_store_bind_cstr(st, 1, "r");
    mk_store_bind_int64(st, 2, 21);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW, "%s", mk_store_errmsg(c));
    cr_expect_eq(mk_store_column_int64(st, 0), 42);
    cr_expect_eq(mk_store_step(st), MK_STORE_DONE);
    mk_store_stmt_done(st);
    cr_expect_eq(mk_store_changes(c), 1);
    /* ON CONFLICT DO NOTHING is the portable INSERT OR IGNORE. */
    fx_exec(s, "CREATE TABLE u (k TEXT PRIMARY KEY)");
    cr_assert_eq(mk_store_exec(c, "INSERT INTO u VALUES ('x') ON CONFLICT DO NOTHING"), 0, "%s", mk_store_errmsg(c));
    cr_assert_eq(mk_store_exec(c, "INSERT INTO u VALUES ('x') ON CONFLICT DO NOTHING"), 0, "%s", mk_store_errmsg(c));
    cr_expect_eq(mk_store_changes(c), 0);
    mk_store_release(s, c);
    mk_store_free(s);
}

static void case_interleaved_statements(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    fx_exec(s, "CREATE TABLE src (v BIGINT)");
    fx_exec(s, "CREATE TABLE dst (v BIGINT)");
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *ins, *rd, *wr;
    cr_assert_eq(mk_store_begin(c), 0);
    cr_assert_eq(mk_store_prepare(c, "INSERT INTO src (v) VALUES (?)", &ins), 0);
    for (int i = 1; i <= 500; i++) {
        mk_store_bind_int64(ins, 1, i);
        cr_assert_eq(mk_store_step(ins), MK_STORE_DONE, "%s", mk_store_errmsg(c));
        mk_store_reset(ins);
    }
    mk_store_stmt_done(ins);
    cr_assert_eq(mk_store_commit(c), 0);
    /* Read one table while writing another on the same connection, row by row. */
    cr_assert_eq(mk_store_prepare(c, "SELECT v FROM src ORDER BY v", &rd), 0);
    cr_assert_eq(mk_store_prepare(c, "INSERT INTO dst (v) VALUES (?)", &wr), 0);
    int64_t sum = 0, rows = 0;
    int rc;
    while ((rc = mk_store_step(rd)) == MK_STORE_ROW) {
        int64_t v = mk_store_column_int64(rd, 0);
        cr_assert_eq(v, rows + 1, "rows in order");
        mk_store_bind_int64(wr, 1, v * 2);
        cr_assert_eq(mk_store_step(wr), MK_STORE_DONE, "%s", mk_store_errmsg(c));
        mk_store_reset(wr);
        sum += v;
        rows++;
    }
    cr_expect_eq(rc, MK_STORE_DONE);
    cr_expect_eq(rows, 500);
    mk_store_stmt_done(rd);
    mk_store_stmt_done(wr);
    cr_expect_eq(sum, 500 * 501 / 2);
    /* Abandon a result half-way: the connection stays usable. */
    cr_assert_eq(mk_store_prepare(c, "SELECT v FROM src ORDER BY v", &rd), 0);
    cr_assert_eq(mk_store_step(rd), MK_STORE_ROW);
    cr_assert_eq(mk_store_step(rd), MK_STORE_ROW);
    mk_store_stmt_done(rd);
    mk_store_release(s, c);
    cr_expect_eq(fx_int(s, "SELECT sum(v) FROM dst", NULL), 500 * 501);
    mk_store_free(s);
}

static void case_statement_cache_eviction(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    /* More distinct statements than the cache holds: each still works. */
    for (int i = 0; i < MK_STORE_STMT_CACHE * 3; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d", i);
        struct mk_store_stmt *st;
        cr_assert_eq(mk_store_prepare(c, sql, &st), 0);
        cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
        cr_assert_eq(mk_store_column_int64(st, 0), i);
        mk_store_stmt_done(st);
    }
    mk_store_release(s, c);
    mk_store_free(s);
}

static void case_transactions(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    cr_assert_eq(mk_store_exec(c, "CREATE TABLE t (v BIGINT)"), 0);
    cr_assert_eq(mk_store_begin(c), 0);
    cr_expect(mk_store_in_transaction(c));
    cr_expect_eq(mk_store_begin(c), MK_EINVAL, "no nesting");
    cr_assert_eq(mk_store_exec(c, "INSERT INTO t VALUES (1)"), 0);
    cr_assert_eq(mk_store_rollback(c), 0);
    cr_expect_eq(mk_store_commit(c), MK_EINVAL, "nothing to commit");
    cr_assert_eq(mk_store_begin(c), 0);
    cr_assert_eq(mk_store_exec(c, "INSERT INTO t VALUES (2)"), 0);
    cr_assert_eq(mk_store_commit(c), 0);
    /* A transaction left open at release is rolled back. */
    cr_assert_eq(mk_store_begin(c), 0);
    cr_assert_eq(mk_store_exec(c, "INSERT INTO t VALUES (3)"), 0);
    mk_store_release(s, c);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM t", NULL), 1);
    cr_expect_eq(fx_int(s, "SELECT sum(v) FROM t", NULL), 2);
    /* Another connection does not see uncommitted rows. */
    struct mk_store_conn *w, *r;
    cr_assert_eq(mk_store_acquire(s, &w), 0);
    cr_assert_eq(mk_store_acquire(s, &r), 0);
    cr_assert_eq(mk_store_begin(w), 0);
    cr_assert_eq(mk_store_exec(w, "INSERT INTO t VALUES (5)"), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(r, "SELECT count(*) FROM t", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_int64(st, 0), 1);
    mk_store_stmt_done(st);
    cr_assert_eq(mk_store_commit(w), 0);
    cr_assert_eq(mk_store_prepare(r, "SELECT count(*) FROM t", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(mk_store_column_int64(st, 0), 2);
    mk_store_stmt_done(st);
    mk_store_release(s, r);
    mk_store_release(s, w);
    mk_store_free(s);
}

static const struct mk_store_migration case_mig[] = {
    {1, "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);",
     "CREATE TABLE notes (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body TEXT NOT NULL);"},
    {2, "ALTER TABLE notes ADD COLUMN tenant TEXT; CREATE INDEX notes_tenant ON notes(tenant);", NULL},
    {3, "INSERT INTO notes (body, tenant) VALUES ('seed', 't1');", NULL},
};

static void case_migrations_idempotent(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_store_migrate(s, "notes", case_mig, 2, &err), 0, "%s", err.data ? err.data : "");
    cr_assert_eq(mk_store_migrate(s, "notes", case_mig, 2, &err), 0, "second run is a no-op");
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM schema_migrations WHERE module = 'notes'", NULL), 2);
    /* A later release adds version 3 only. */
    cr_assert_eq(mk_store_migrate(s, "notes", case_mig, 3, &err), 0, "%s", err.data ? err.data : "");
    cr_assert_eq(mk_store_migrate(s, "notes", case_mig, 3, &err), 0);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM notes", NULL), 1, "version 3 ran exactly once");
    cr_expect_eq(fx_int(s, "SELECT max(id) FROM notes", NULL), 1, "the id was generated");
    /* Another module is independent. */
    static const struct mk_store_migration other[] = {{1, "CREATE TABLE other (x BIGINT);", NULL}};
    cr_assert_eq(mk_store_migrate(s, "other", other, 1, &err), 0);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    int v = -1;
    cr_expect_eq(mk_store_schema_version(c, "notes", &v), 0);
    cr_expect_eq(v, 3);
    cr_expect_eq(mk_store_schema_version(c, "nobody", &v), 0);
    cr_expect_eq(v, 0);
    mk_store_release(s, c);
    /* An older binary refuses the newer schema. */
    mk_buf_reset(&err);
    cr_expect_eq(mk_store_migrate(s, "notes", case_mig, 1, &err), MK_ECONFIG);
    cr_expect(err.data && strstr(err.data, "newer") != NULL, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    mk_store_free(s);
    /* Reopening sees the same versions. */
    s = fx_open(fx, NULL);
    cr_assert_eq(mk_store_migrate(s, "notes", case_mig, 3, NULL), 0);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM notes", NULL), 1);
    mk_store_free(s);
}

static void case_migration_failure_is_atomic(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    static const struct mk_store_migration bad[] = {
        {1, "CREATE TABLE a (x BIGINT);", NULL},
        {2, "CREATE TABLE b (x BIGINT); INSERT INTO nowhere VALUES (1);", NULL},
    };
    mk_buf err = MK_BUF_INIT;
    cr_expect_neq(mk_store_migrate(s, "m", bad, 2, &err), 0);
    cr_expect(err.data && strstr(err.data, "m/2") != NULL, "%s", err.data ? err.data : "");
    cr_expect_eq(fx_int(s, "SELECT MAX(version) FROM schema_migrations WHERE module = 'm'", NULL), 1);
    cr_expect_eq(fx_int(s, fx->table_count_sql, "a"), 1);
    cr_expect_eq(fx_int(s, fx->table_count_sql, "b"), 0, "b rolled back");
    static const struct mk_store_migration gap[] = {{1, "SELECT 1;", NULL}, {3, "SELECT 1;", NULL}};
    cr_expect_eq(mk_store_migrate(s, "g", gap, 2, NULL), MK_EINVAL);
    cr_expect_eq(mk_store_migrate(s, "", case_mig, 1, NULL), MK_EINVAL);
    mk_buf_release(&err);
    mk_store_free(s);
}

/* --- concurrency ------------------------------------------------------------------- */

struct case_thread_arg {
    struct mk_store *s;
    int id;
    int failures;
    int last_rc;
};

static void *case_writer_thread(void *p)
{
    struct case_thread_arg *a = p;
    for (int i = 0; i < 100; i++) {
        struct mk_store_conn *c;
        if ((a->last_rc = mk_store_acquire(a->s, &c))) {
            a->failures++;
            continue;
        }
        struct mk_store_stmt *st;
        int rc = mk_store_begin(c);
        if (!rc) rc = mk_store_prepare(c, "INSERT INTO t (who, n) VALUES (?, ?)", &st);
        if (!rc) {
            mk_store_bind_int64(st, 1, a->id);
            mk_store_bind_int64(st, 2, i);
            rc = mk_store_step(st);
            rc = rc == MK_STORE_DONE ? 0 : rc;
            mk_store_stmt_done(st);
        }
        if (!rc) rc = mk_store_commit(c);
        if (rc) {
            a->failures++;
            a->last_rc = rc;
        }
        mk_store_release(a->s, c);
    }
    return NULL;
}

static void case_concurrent_threads(const struct store_fx *fx)
{
    struct mk_store_options o = {.max_connections = 3};
    struct mk_store *s = fx_open(fx, &o);
    fx_exec(s, "CREATE TABLE t (who BIGINT, n BIGINT)");
    pthread_t th[6];
    struct case_thread_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (struct case_thread_arg){s, i, 0, 0};
        pthread_create(&th[i], NULL, case_writer_thread, &args[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(args[i].failures, 0, "thread %d failed %d times (%s)", i, args[i].failures,
                     mk_strerror(args[i].last_rc));
    }
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM t", NULL), 600);
    mk_store_free(s);
}

struct case_submit_ctx {
    int n;
    int done;
    int errors;
    pthread_t loop_thread;
    bool wrong_thread;
};

struct case_job {
    struct case_submit_ctx *ctx;
    int i;
};

static int case_job_work(struct mk_store_conn *c, void *arg)
{
    struct case_job *j = arg;
    int rc = mk_store_begin(c);
    struct mk_store_stmt *st;
    if (!rc) rc = mk_store_prepare(c, "INSERT INTO t (v) VALUES (?)", &st);
    if (rc) return rc;
    mk_store_bind_int64(st, 1, j->i);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) return rc ? rc : MK_EINTERNAL;
    /* Read back inside the same transaction. */
    if ((rc = mk_store_prepare(c, "SELECT count(*) FROM t WHERE v = ?", &st))) return rc;
    mk_store_bind_int64(st, 1, j->i);
    int64_t n = mk_store_step(st) == MK_STORE_ROW ? mk_store_column_int64(st, 0) : -1;
    mk_store_stmt_done(st);
    if (n != 1) return MK_EINTERNAL;
    return mk_store_commit(c);
}

static void case_job_done(int status, void *arg)
{
    struct case_job *j = arg;
    if (!pthread_equal(pthread_self(), j->ctx->loop_thread)) j->ctx->wrong_thread = true;
    if (status) j->ctx->errors++;
    j->ctx->done++;
    free(j);
}

static void case_concurrent_submit(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    fx_exec(s, "CREATE TABLE t (v BIGINT)");
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    struct case_submit_ctx ctx = {.n = 300, .loop_thread = pthread_self()};
    for (int i = 0; i < ctx.n; i++) {
        struct case_job *j = malloc(sizeof *j);
        *j = (struct case_job){&ctx, i};
        cr_assert_eq(mk_store_submit(s, &loop, case_job_work, case_job_done, j), 0);
    }
    cr_expect_eq(mk_store_submit(s, &loop, NULL, case_job_done, NULL), MK_EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(ctx.done, ctx.n);
    cr_expect_eq(ctx.errors, 0);
    cr_expect(!ctx.wrong_thread, "done ran on the loop thread");
    cr_expect_eq(fx_int(s, "SELECT count(DISTINCT v) FROM t", NULL), ctx.n);
    uv_loop_close(&loop);
    mk_store_free(s);
}

struct case_holder {
    struct mk_store *s;
    int rc;
};

static void *case_acquire_thread(void *p)
{
    struct case_holder *h = p;
    struct mk_store_conn *c;
    h->rc = mk_store_acquire(h->s, &c);
    if (h->rc == 0) mk_store_release(h->s, c);
    return NULL;
}

static void case_acquire_timeout(const struct store_fx *fx)
{
    /* One connection, held: a second taker waits, then gives up with MK_EBUSY rather
     * than opening another connection. */
    struct mk_store_options o = {.max_connections = 1, .acquire_timeout_ms = 50};
    struct mk_store *s = fx_open(fx, &o);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct case_holder h = {s, 1};
    pthread_t th;
    pthread_create(&th, NULL, case_acquire_thread, &h);
    pthread_join(th, NULL);
    cr_expect_eq(h.rc, MK_EBUSY);
    mk_store_release(s, c);
    /* Free again: the next taker gets it at once. */
    h.rc = 1;
    pthread_create(&th, NULL, case_acquire_thread, &h);
    pthread_join(th, NULL);
    cr_expect_eq(h.rc, 0);
    mk_store_free(s);
}

static void case_read_only(const struct store_fx *fx)
{
    struct mk_store *s = fx_open(fx, NULL);
    fx_exec(s, "CREATE TABLE t (v BIGINT); INSERT INTO t VALUES (7);");
    mk_store_free(s);
    struct mk_store_options o = {.read_only = true};
    s = fx_open(fx, &o);
    cr_expect_eq(fx_int(s, "SELECT v FROM t", NULL), 7);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    cr_expect_neq(mk_store_exec(c, "INSERT INTO t VALUES (8)"), 0);
    mk_store_release(s, c);
    cr_expect_eq(mk_store_migrate(s, "x", case_mig, 1, NULL), MK_EINVAL);
    mk_store_free(s);
    s = fx_open(fx, NULL);
    cr_expect_eq(fx_int(s, "SELECT count(*) FROM t", NULL), 1);
    mk_store_free(s);
}

/* Declares one Test per shared case for a suite whose fixture is `fx`. */
#define STORE_CASES(suite, fx)                                                              \
    Test(suite, values_statements_and_errors) { case_values_statements_and_errors(&fx); }  \
    Test(suite, empty_and_large_values) { case_empty_and_large_values(&fx); }              \
    Test(suite, placeholders) { case_placeholders(&fx); }                                  \
    Test(suite, types_and_changes) { case_types_and_changes(&fx); }                        \
    Test(suite, interleaved_statements) { case_interleaved_statements(&fx); }              \
    Test(suite, statement_cache_eviction) { case_statement_cache_eviction(&fx); }          \
    Test(suite, transactions) { case_transactions(&fx); }                                  \
    Test(suite, migrations_idempotent) { case_migrations_idempotent(&fx); }                \
    Test(suite, migration_failure_is_atomic) { case_migration_failure_is_atomic(&fx); }    \
    Test(suite, concurrent_threads) { case_concurrent_threads(&fx); }                      \
    Test(suite, concurrent_submit) { case_concurrent_submit(&fx); }                        \
    Test(suite, acquire_timeout) { case_acquire_timeout(&fx); }                            \
    Test(suite, read_only) { case_read_only(&fx); }

#endif
