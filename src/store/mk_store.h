/*
 * mk_store: the durable store behind API keys, conversations, memory and the audit log.
 *
 * One small SQL abstraction with one backend per file (store_sqlite.c, store_postgres.c;
 * a new backend is one new file plus one row in mk_store.c, see store_int.h and
 * docs/STORE.md):
 *
 *   struct mk_store *s;
 *   mk_store_open("sqlite:///var/lib/mayak/mayak.db", NULL, &s, &err);
 *   mk_store_migrate(s, "keys", key_migrations, 2);         // versioned, per module
 *   struct mk_store_conn *c; mk_store_acquire(s, &c);
 *   struct mk_store_stmt *st;
 *   mk_store_prepare(c, "SELECT role FROM api_keys WHERE id = ?", &st);   // cached
 *   mk_store_bind_text(st, 1, id, strlen(id));
 *   while (mk_store_step(st) == MK_STORE_ROW) ... mk_store_column_text(st, 0) ...
 *   mk_store_stmt_done(st);
 *   mk_store_release(s, c);
 *
 * SQL dialect: parameters are written `?` or `?NNN` (1-based positions); a backend that
 * spells them differently (PostgreSQL's $1) rewrites them. Use plain SQL that both
 * SQLite and PostgreSQL accept (RETURNING instead of last-insert-id, BIGINT, TEXT,
 * DOUBLE PRECISION, INSERT ... ON CONFLICT DO NOTHING instead of INSERT OR IGNORE);
 * what differs (BLOB vs BYTEA, AUTOINCREMENT vs identity columns) belongs in
 * migrations, which carry one script per backend. mk_store_backend_name tells the rare
 * runtime query that must differ which dialect it talks to.
 *
 * Connections. A store owns a small pool of connections (default MK_STORE_DEFAULT_CONNS).
 * A connection is used by one thread at a time: acquire it, use it, release it. We chose
 * a checked-out pool over one global mutex because SQLite in WAL mode lets readers run
 * beside the one writer, so a mutex would serialise reads for nothing; and over
 * thread-local connections because the same code then serves libuv's worker threads,
 * the audit writer thread and CLI code alike, with a bounded number of open files and
 * no thread-exit destructors. Writers still take turns inside SQLite (one write
 * transaction at a time); the busy timeout makes them wait instead of failing.
 * PostgreSQL gets the same pool: it bounds the server connections a process opens
 * (max_connections per store, never more), and a caller finding every connection busy
 * waits up to acquire_timeout_ms instead of opening another.
 *
 * BLOCKING. Every call here may block on disk (and on other writers for up to the busy
 * timeout). Code running on an event loop must not call them directly: use
 * mk_store_submit(), which runs the work on libuv's thread pool with a connection of
 * its own and reports back on the loop. Calling directly from the loop is acceptable
 * only for measured, rare, small work (start-up, migrations, admin actions).
 *
 * Thread safety: mk_store_* functions taking a store are thread-safe; those taking a
 * connection or statement need the calling thread to hold that connection.
 */
#ifndef MK_STORE_H
#define MK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/mk_buf.h"

/* Limits of the store (candidates for core/mk_limits.h). */
/* Connections per store: libuv's pool has 4 threads by default (UV_THREADPOOL_SIZE);
 * one more lets a dedicated thread (the audit writer) never wait for a pool worker. */
#define MK_STORE_DEFAULT_CONNS 5
/* Above this, SQLite gains nothing (one writer) and file handles are wasted. */
#define MK_STORE_MAX_CONNS 64
/* How long a writer waits for another writer's lock before MK_EBUSY: long enough to
 * ride out a checkpoint or a large batch, short enough that a stuck writer shows up. */
#define MK_STORE_DEFAULT_BUSY_MS 5000
/* Prepared statements cached per connection; a module uses a handful each. */
#define MK_STORE_STMT_CACHE 48
/* How long mk_store_acquire waits for a free connection before MK_EBUSY: far above any
 * healthy query, so only a leak or a stuck server trips it, and then callers fail
 * instead of queueing forever. */
#define MK_STORE_DEFAULT_ACQUIRE_MS 30000
/* Module names in schema_migrations. */
#define MK_STORE_MAX_MODULE_BYTES 64

struct mk_store;
struct mk_store_conn;
struct mk_store_stmt;

enum mk_store_sync {
    MK_STORE_SYNC_FULL = 0,  /* default: a committed transaction survives power loss */
    MK_STORE_SYNC_NORMAL,    /* survives a process crash; the last commits may be lost on power loss */
};

struct mk_store_options {
    int max_connections;     /* 0 = MK_STORE_DEFAULT_CONNS; capped at MK_STORE_MAX_CONNS */
    uint32_t busy_timeout_ms;/* 0 = MK_STORE_DEFAULT_BUSY_MS */
    enum mk_store_sync sync;
    bool read_only;          /* open existing data read-only (verification, export) */
    uint32_t acquire_timeout_ms; /* 0 = MK_STORE_DEFAULT_ACQUIRE_MS */
};

/* Values crossing the backend boundary. Text and blobs are not owned: a bound value is
 * copied by the backend before the bind call returns (unless marked borrowed); a column value lives until the
 * next step, reset or mk_store_stmt_done on its statement. */
enum mk_store_type { MK_STORE_NULL = 0, MK_STORE_INT, MK_STORE_REAL, MK_STORE_TEXT, MK_STORE_BLOB };
struct mk_store_value {
    enum mk_store_type type;
    int64_t i;
    double d;
    const void *ptr;         /* TEXT (not NUL-terminated on input; NUL-terminated on output) and BLOB */
    size_t len;
    bool borrowed;           /* bind only: the caller keeps ptr valid until the statement is reset or
                                done, so the backend may skip its copy (hot paths: the audit writer) */
};

/* mk_store_step results besides negative errors. */
#define MK_STORE_ROW 1
#define MK_STORE_DONE 0

/* Opens a store. url: "sqlite:///abs/path.db", "sqlite://rel/path.db", "sqlite::memory:",
 * a plain path (SQLite), or "postgres://user:pass@host:port/db?sslmode=..." /
 * "postgresql://..." (a libpq connection URI; see docs/STORE.md). The SQLite file's
 * directory must exist; the file is created (unless read_only) in WAL mode with the
 * busy timeout and foreign keys on. ":memory:" databases get one connection (each
 * SQLite connection would see its own). One connection is opened at once, so a bad
 * path or an unreachable server fails here. opt may be NULL (defaults). On failure
 * returns MK_EINVAL (bad url), MK_EIO (cannot open), MK_ECORRUPT (not a database),
 * MK_EUNAVAILABLE (the server cannot be reached or refused the login), MK_ENOMEM, and
 * appends a sentence to err when err is not NULL (passwords in URLs are masked). On
 * success *out is the caller's, freed with mk_store_free. */
int mk_store_open(const char *url, const struct mk_store_options *opt, struct mk_store **out, mk_buf *err);
/* Closes every connection. All connections must have been released. Accepts NULL. */
void mk_store_free(struct mk_store *s);
/* "sqlite" or "postgres" (static string): the dialect, for the rare query that differs. */
const char *mk_store_backend_name(const struct mk_store *s);
/* True when the URL names a backend this build has (for config checks). */
bool mk_store_url_supported(const char *url);

/* Takes a free connection, waiting for one while all are in use (blocking, at most
 * acquire_timeout_ms). Opens connections lazily, never more than max_connections; a
 * pooled connection the server has dropped is replaced by a new one here. 0, or
 * MK_EBUSY (none freed up in time), MK_EIO / MK_EUNAVAILABLE / MK_ENOMEM when a new
 * connection cannot be opened. */
int mk_store_acquire(struct mk_store *s, struct mk_store_conn **out);
/* Gives the connection back. An open transaction is rolled back first (a forgotten
 * commit must not leak into the next user). Accepts NULL. */
void mk_store_release(struct mk_store *s, struct mk_store_conn *c);

/* Runs a script of one or more statements without parameters or results. */
int mk_store_exec(struct mk_store_conn *c, const char *sql);
/* The last error's text on this connection (never NULL; "" when none). Valid until the
 * next call on the connection. */
const char *mk_store_errmsg(const struct mk_store_conn *c);
/* Rows changed by the last INSERT/UPDATE/DELETE on this connection. */
int64_t mk_store_changes(struct mk_store_conn *c);

/* Transactions. begin starts a write transaction at once (SQLite BEGIN IMMEDIATE), so
 * two writers queue at begin (busy timeout) instead of deadlocking on upgrade later.
 * Nesting is MK_EINVAL. commit returning an error leaves the transaction rolled back.
 * PostgreSQL: begin is a plain BEGIN at READ COMMITTED. Writers do not queue at begin
 * but at the rows they touch (waiting up to the busy timeout, then MK_EBUSY); each
 * statement sees what was committed before it started, so read-then-write must be one
 * conditional statement (UPDATE ... WHERE old value) or SELECT ... FOR UPDATE. A
 * failed statement aborts the whole transaction there: later statements fail and
 * commit returns the first error, so after an error inside a transaction, roll back
 * (retrying inside the same transaction works on SQLite only). */
int mk_store_begin(struct mk_store_conn *c);
int mk_store_commit(struct mk_store_conn *c);
int mk_store_rollback(struct mk_store_conn *c);
bool mk_store_in_transaction(const struct mk_store_conn *c);

/* Prepares one statement (or takes it from the connection's cache, keyed by the SQL
 * text). The statement belongs to the connection: give it back with mk_store_stmt_done
 * before releasing the connection. MK_EINVAL with errmsg on bad SQL. Statements of one
 * connection may be stepped in turn; on PostgreSQL, running another statement while one
 * still has rows to give reads that one's remaining rows into memory first, and done or
 * reset on a half-read statement reads (and drops) the rest. */
int mk_store_prepare(struct mk_store_conn *c, const char *sql, struct mk_store_stmt **out);
/* Resets bindings and position and returns the statement to the cache. Accepts NULL. */
void mk_store_stmt_done(struct mk_store_stmt *st);
/* Rewinds for another execution with new bindings (bindings are cleared). */
int mk_store_reset(struct mk_store_stmt *st);

int mk_store_bind(struct mk_store_stmt *st, int idx, const struct mk_store_value *v);
int mk_store_bind_int64(struct mk_store_stmt *st, int idx, int64_t v);
int mk_store_bind_double(struct mk_store_stmt *st, int idx, double v);
/* s may be NULL: binds SQL NULL. PostgreSQL stores text only as valid UTF-8 without NUL
 * bytes: a NUL is MK_EINVAL here, invalid UTF-8 MK_EINVAL at step. Bytes are blobs. */
int mk_store_bind_text(struct mk_store_stmt *st, int idx, const char *s, size_t len);
static inline int mk_store_bind_cstr(struct mk_store_stmt *st, int idx, const char *s)
{
    return mk_store_bind_text(st, idx, s, s ? strlen(s) : 0);
}
int mk_store_bind_blob(struct mk_store_stmt *st, int idx, const void *p, size_t len);
int mk_store_bind_null(struct mk_store_stmt *st, int idx);

/* MK_STORE_ROW (a row is ready), MK_STORE_DONE, or a negative error: MK_EBUSY (lock
 * not obtained within the busy timeout, or a serialisation failure/deadlock: retry the
 * transaction), MK_EEXISTS (unique/primary key violation), MK_EINVAL (other
 * constraint, bad SQL or value), MK_EUNAVAILABLE (the connection to the server was
 * lost: the work may or may not have happened; the connection is replaced at its next
 * acquire), MK_ECORRUPT, MK_EIO, MK_ENOMEM. */
int mk_store_step(struct mk_store_stmt *st);
int mk_store_column_count(struct mk_store_stmt *st);
/* Column values of the current row (0-based). */
void mk_store_column(struct mk_store_stmt *st, int col, struct mk_store_value *out);
int64_t mk_store_column_int64(struct mk_store_stmt *st, int col);
double mk_store_column_double(struct mk_store_stmt *st, int col);
/* NULL reads as {"", 0}; the bytes live until the next step/reset/done. */
mk_slice mk_store_column_text(struct mk_store_stmt *st, int col);
mk_slice mk_store_column_blob(struct mk_store_stmt *st, int col);
bool mk_store_column_is_null(struct mk_store_stmt *st, int col);

/* One schema step of a module. Versions start at 1 and increase by 1. Each script may
 * hold several statements; postgres NULL means the sqlite script serves both. */
struct mk_store_migration {
    int version;
    const char *sqlite;
    const char *postgres;
};

/* Brings module's schema up to the last of the n migrations. Every missing version runs
 * in its own transaction together with its row in schema_migrations(module, version),
 * so a crash leaves the schema at a whole version; running it again is a no-op
 * (idempotent). Several processes may race: the loser sees the version already there.
 * MK_EINVAL when versions are not 1..n in order or module is empty/too long;
 * MK_ECONFIG when the database is at a newer version than this binary knows (refusing
 * to run old code on a newer schema); errors of the SQL otherwise (err gets the text). */
int mk_store_migrate(struct mk_store *s, const char *module, const struct mk_store_migration *m, size_t n,
                     mk_buf *err);
/* The module's current version (0 when none) through a held connection. */
int mk_store_schema_version(struct mk_store_conn *c, const char *module, int *version);

/* Asynchronous use from an event loop. work(conn, arg) runs on libuv's thread pool
 * holding a connection of this store (released afterwards, with any open transaction
 * rolled back); its return value is given to done(status, arg), which runs on `loop`'s
 * thread. A request cancelled before it ran reports MK_ECANCELLED without running work.
 * Returns 0 (done will be called exactly once) or an error (neither will be called).
 * The store must outlive every submitted work. `loop` must be the calling thread's. */
typedef int (*mk_store_work_fn)(struct mk_store_conn *c, void *arg);
typedef void (*mk_store_done_fn)(int status, void *arg);
int mk_store_submit(struct mk_store *s, uv_loop_t *loop, mk_store_work_fn work, mk_store_done_fn done, void *arg);

#endif
