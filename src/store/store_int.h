/*
 * store_int: the contract between mk_store.c (pool, statement cache, transactions,
 * migrations, async submit) and one backend file (store_sqlite.c,
 * store_postgres.c).
 *
 * Adding a backend: write store_<name>.c defining `const struct mk_store_backend
 * mk_store_backend_<name>` with every operation below, and add one row to the backend
 * table in mk_store.c. The generic layer never touches backend handles; a backend never
 * touches the pool. Each operation works on one connection held by the calling thread,
 * so a backend needs no locking of its own.
 *
 * Network backends (store_postgres.c) also fill the optional hooks: conn_ready lets
 * the pool replace a connection the server dropped while it sat in the pool, and
 * migrate_lock serialises mk_store_migrate across processes where BEGIN alone does not
 * (PostgreSQL's BEGIN takes no lock; SQLite's BEGIN IMMEDIATE does). Blocking calls are
 * fine in every operation: the generic layer runs them on the worker pool via
 * mk_store_submit. docs/STORE.md walks through adding a backend.
 */
#ifndef MK_STORE_INT_H
#define MK_STORE_INT_H

#include <pthread.h>

#include "store/mk_store.h"

struct mk_store_backend {
    const char *name;                          /* "sqlite", "postgres" */
    /* Checks the target (what follows the scheme, or the plain path) once at open and
     * adjusts options (e.g. one connection for an in-memory database). */
    int (*check)(const char *target, struct mk_store_options *opt, mk_buf *err);
    /* Opens one connection into *impl; err gets a sentence on failure. */
    int (*conn_open)(const char *target, const struct mk_store_options *opt, void **impl, mk_buf *err);
    void (*conn_close)(void *impl);
    int (*exec)(void *impl, const char *sql);
    const char *(*errmsg)(void *impl);
    int64_t (*changes)(void *impl);
    const char *begin_sql;                     /* "BEGIN IMMEDIATE" */
    /* Optional (NULL = always ready). Called by mk_store_acquire on a pooled
     * connection before handing it out; cheap (no round trip). Nonzero means the
     * connection is unusable: the pool closes it (with its statements) and opens a
     * new one in its place. */
    int (*conn_ready)(void *impl);
    /* Optional (NULL = BEGIN serialises writers already). lock=true waits for a lock
     * that only one migrating process holds at a time (held across the per-version
     * transactions); lock=false gives it back. */
    int (*migrate_lock)(void *impl, bool lock);

    int (*prepare)(void *impl, const char *sql, void **stmt);
    void (*finalize)(void *stmt);
    int (*reset)(void *stmt);                  /* rewind and clear bindings */
    int (*bind)(void *stmt, int idx, const struct mk_store_value *v);
    int (*step)(void *stmt);                   /* MK_STORE_ROW / MK_STORE_DONE / error */
    int (*column_count)(void *stmt);
    void (*column)(void *stmt, int col, struct mk_store_value *out);
};

struct mk_store_stmt {
    struct mk_store_conn *conn;
    void *impl;
    char *sql;                                 /* cache key (owned) */
    bool in_use;
    uint64_t last_used;                        /* for eviction */
};

struct mk_store_conn {
    struct mk_store *store;
    void *impl;
    bool in_tx;
    struct mk_store_conn *next_free;
    struct mk_store_stmt *cache[MK_STORE_STMT_CACHE];
    size_t ncache;
    uint64_t tick;
};

struct mk_store {
    const struct mk_store_backend *be;
    char *target;
    struct mk_store_options opt;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct mk_store_conn *free_list;
    int nopen;                                 /* connections opened so far */
    int nbusy;                                 /* held by someone */
};

extern const struct mk_store_backend mk_store_backend_sqlite;
extern const struct mk_store_backend mk_store_backend_postgres;

#endif
