/*
 * store_sqlite: the SQLite backend of mk_store (contract in store_int.h).
 *
 * Each connection is opened with SQLITE_OPEN_NOMUTEX: the pool guarantees a connection
 * is used by one thread at a time, so SQLite's per-connection mutex would be pure cost.
 * Every connection sets: WAL journal (readers do not block the writer and vice versa),
 * the busy timeout (writers queue instead of failing), synchronous FULL or NORMAL per
 * options (FULL: a commit survives power loss; in WAL mode NORMAL survives a process
 * crash only), foreign keys on.
 */
#include <limits.h>
#include <sqlite3.h>
#include <string.h>

#include "core/mk_error.h"
#include "store/store_int.h"

/* SQLite result code -> MK_E*. */
static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: return 0;
    case SQLITE_ROW: return MK_STORE_ROW;
    case SQLITE_DONE: return MK_STORE_DONE;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return MK_EBUSY;
    case SQLITE_NOMEM: return MK_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return MK_ECORRUPT;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM: return MK_EIO;
    case SQLITE_TOOBIG: return MK_ETOOBIG;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return MK_EEXISTS;
        return MK_EINVAL;
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH: return MK_EINVAL;
    default: return MK_EINTERNAL;
    }
}

static int sq_check(const char *target, struct mk_store_options *opt, mk_buf *err)
{
    if (!sqlite3_threadsafe()) {
        if (err) mk_buf_append_str(err, "store: libsqlite3 was built without thread support");
        return MK_ECONFIG;
    }
    /* Every connection to ":memory:" is its own database: keep one. */
    if (strcmp(target, ":memory:") == 0) opt->max_connections = 1;
    return 0;
}

static int sq_exec(void *impl, const char *sql)
{
    return map_rc(sqlite3_exec(impl, sql, NULL, NULL, NULL));
}

static int sq_conn_open(const char *target, const struct mk_store_options *opt, void **impl, mk_buf *err)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    flags |= opt->read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(target, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (err) mk_buf_printf(err, "store: cannot open %s: %s", target, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return rc == SQLITE_NOMEM ? MK_ENOMEM : MK_EIO;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, opt->busy_timeout_ms > INT_MAX ? INT_MAX : (int)opt->busy_timeout_ms);
    const char *pragmas = opt->read_only
        ? "PRAGMA foreign_keys=ON; PRAGMA query_only=ON;"
        : opt->sync == MK_STORE_SYNC_NORMAL
            ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
    rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        /* Reading the schema proves the file is a database (open alone does not). */
        rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        if (err) mk_buf_printf(err, "store: cannot use %s: %s", target, sqlite3_errmsg(db));
        int mrc = map_rc(sqlite3_extended_errcode(db));
        sqlite3_close(db);
        return mrc < 0 ? mrc : MK_EIO;
    }
    *impl = db;
    return 0;
}

static void sq_conn_close(void *impl)
{
    /* close_v2 defers the close if a statement were left behind; the generic layer
     * finalizes its cache first, so this closes at once. */
    sqlite3_close_v2(impl);
}

static const char *sq_errmsg(void *impl) { return sqlite3_errmsg(impl); }
static int64_t sq_changes(void *impl) { return sqlite3_changes64(impl); }

static int sq_prepare(void *impl, const char *sql, void **stmt)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(impl, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) return map_rc(rc) ? map_rc(rc) : MK_EINVAL;
    if (!st) return MK_EINVAL;  /* empty SQL */
    *stmt = st;
    return 0;
}

static void sq_finalize(void *stmt) { sqlite3_finalize(stmt); }

static int sq_reset(void *stmt)
{
    sqlite3_clear_bindings(stmt);
    sqlite3_reset(stmt);  /* returns the last step's error, which was already reported */
    return 0;
}

static int sq_bind(void *stmt, int idx, const struct mk_store_value *v)
{
    int rc;
    switch (v->type) {
    case MK_STORE_NULL: rc = sqlite3_bind_null(stmt, idx); break;
    case MK_STORE_INT: rc = sqlite3_bind_int64(stmt, idx, v->i); break;
    case MK_STORE_REAL: rc = sqlite3_bind_double(stmt, idx, v->d); break;
    case MK_STORE_TEXT:
        rc = sqlite3_bind_text64(stmt, idx, v->ptr ? v->ptr : "", v->len, v->borrowed ? SQLITE_STATIC : SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
        break;
    case MK_STORE_BLOB:
        rc = sqlite3_bind_blob64(stmt, idx, v->ptr ? v->ptr : "", v->len, v->borrowed ? SQLITE_STATIC : SQLITE_TRANSIENT);
        break;
    default: return MK_EINVAL;
    }
    return map_rc(rc);
}

static int sq_step(void *stmt)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return MK_STORE_ROW;
    if (rc == SQLITE_DONE) return MK_STORE_DONE;
    /* The extended code is on the connection. */
    return map_rc(sqlite3_extended_errcode(sqlite3_db_handle(stmt)));
}

static int sq_column_count(void *stmt) { return sqlite3_data_count(stmt); }

static void sq_column(void *stmt, int col, struct mk_store_value *out)
{
    memset(out, 0, sizeof *out);
    switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
        out->type = MK_STORE_INT;
        out->i = sqlite3_column_int64(stmt, col);
        break;
    case SQLITE_FLOAT:
        out->type = MK_STORE_REAL;
        out->d = sqlite3_column_double(stmt, col);
        break;
    case SQLITE_TEXT:
        out->type = MK_STORE_TEXT;
        out->ptr = sqlite3_column_text(stmt, col);  /* before _bytes, per SQLite's rules */
        out->len = (size_t)sqlite3_column_bytes(stmt, col);
        if (!out->ptr) out->ptr = "";
        break;
    case SQLITE_BLOB:
        out->type = MK_STORE_BLOB;
        out->ptr = sqlite3_column_blob(stmt, col);
        out->len = (size_t)sqlite3_column_bytes(stmt, col);
        if (!out->ptr) out->ptr = "";
        break;
    default: out->type = MK_STORE_NULL; break;
    }
}

const struct mk_store_backend mk_store_backend_sqlite = {
    .name = "sqlite",
    .check = sq_check,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .exec = sq_exec,
    .errmsg = sq_errmsg,
    .changes = sq_changes,
    .begin_sql = "BEGIN IMMEDIATE",
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .reset = sq_reset,
    .bind = sq_bind,
    .step = sq_step,
    .column_count = sq_column_count,
    .column = sq_column,
};
