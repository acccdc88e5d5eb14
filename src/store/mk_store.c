/*
 * mk_store: the backend-independent half of the store (see mk_store.h): URL dispatch,
 * the connection pool, the per-connection prepared-statement cache, transactions,
 * per-module schema migrations and mk_store_submit on libuv's thread pool.
 */
#include "store/mk_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "store/store_int.h"

/* The backend table: scheme prefix -> backend (NULL = known but not built here). */
static const struct {
    const char *scheme;   /* including "://" or ":" */
    const struct mk_store_backend *be;
} backends[] = {
    {"sqlite://", &mk_store_backend_sqlite},
    {"sqlite:", &mk_store_backend_sqlite},
    {"postgres://", &mk_store_backend_postgres},
    {"postgresql://", &mk_store_backend_postgres},
};

/* Finds the backend and the target for url. MK_EINVAL with a sentence in err. */
static int resolve(const char *url, const struct mk_store_backend **be, const char **target, mk_buf *err)
{
    if (!url || !*url) {
        if (err) mk_buf_append_str(err, "store: empty URL");
        return MK_EINVAL;
    }
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        size_t n = strlen(backends[i].scheme);
        if (strncmp(url, backends[i].scheme, n) != 0) continue;
        if (!backends[i].be) {
            if (err) mk_buf_printf(err, "store: backend '%.*s' is not built into this binary", (int)(n - 3), url);
            return MK_EINVAL;
        }
        *be = backends[i].be;
        *target = url + n;
        if (!**target) {
            if (err) mk_buf_printf(err, "store: '%s' names no database", url);
            return MK_EINVAL;
        }
        return 0;
    }
    if (strstr(url, "://")) {
        if (err) mk_buf_printf(err, "store: unknown URL scheme in '%s' (sqlite:// or postgres://)", url);
        return MK_EINVAL;
    }
    *be = &mk_store_backend_sqlite;  /* a plain path */
    *target = url;
    return 0;
}

bool mk_store_url_supported(const char *url)
{
    const struct mk_store_backend *be;
    const char *target;
    return resolve(url, &be, &target, NULL) == 0;
}

int mk_store_open(const char *url, const struct mk_store_options *opt, struct mk_store **out, mk_buf *err)
{
    *out = NULL;
    const struct mk_store_backend *be;
    const char *target;
    int rc = resolve(url, &be, &target, err);
    if (rc) return rc;
    struct mk_store_options o = opt ? *opt : (struct mk_store_options){0};
    if (o.max_connections <= 0) o.max_connections = MK_STORE_DEFAULT_CONNS;
    if (o.max_connections > MK_STORE_MAX_CONNS) o.max_connections = MK_STORE_MAX_CONNS;
    if (o.busy_timeout_ms == 0) o.busy_timeout_ms = MK_STORE_DEFAULT_BUSY_MS;
    if (o.acquire_timeout_ms == 0) o.acquire_timeout_ms = MK_STORE_DEFAULT_ACQUIRE_MS;
    if ((rc = be->check(target, &o, err))) return rc;

    struct mk_store *s = calloc(1, sizeof *s);
    if (!s || !(s->target = strdup(target))) {
        free(s);
        return MK_ENOMEM;
    }
    s->be = be;
    s->opt = o;
    pthread_mutex_init(&s->mu, NULL);
    /* Waits for a free connection are bounded; measure them on the monotonic clock so
     * a wall-clock jump neither cuts them short nor stretches them. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* Open one connection now so a bad path or a non-database fails at open, not at
     * the first request. */
    struct mk_store_conn *c = calloc(1, sizeof *c);
    if (!c) {
        mk_store_free(s);
        return MK_ENOMEM;
    }
    if ((rc = be->conn_open(s->target, &s->opt, &c->impl, err))) {
        free(c);
        mk_store_free(s);
        return rc;
    }
    c->store = s;
    s->free_list = c;
    s->nopen = 1;
    *out = s;
    return 0;
}

static void stmt_destroy(struct mk_store_stmt *st)
{
    if (!st) return;
    st->conn->store->be->finalize(st->impl);
    free(st->sql);
    free(st);
}

static void conn_destroy(struct mk_store_conn *c)
{
    /* Statements go first: a backend may need its connection to finalize them. */
    for (size_t i = 0; i < c->ncache; i++) stmt_destroy(c->cache[i]);
    c->store->be->conn_close(c->impl);
    free(c);
}

void mk_store_free(struct mk_store *s)
{
    if (!s) return;
    if (s->nbusy)
        mk_logf(MK_LOG_ERROR, "store_free", "%d connection(s) still held; closing anyway", s->nbusy);
    struct mk_store_conn *c = s->free_list;
    while (c) {
        struct mk_store_conn *next = c->next_free;
        conn_destroy(c);
        c = next;
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->target);
    free(s);
}

const char *mk_store_backend_name(const struct mk_store *s) { return s->be->name; }

/* Opens a connection into a slot the caller reserved (nopen and nbusy already count
 * it); gives the slot back on failure. Runs outside the lock: opening touches the disk
 * or the network. */
static int open_slot(struct mk_store *s, struct mk_store_conn **out)
{
    struct mk_store_conn *c = calloc(1, sizeof *c);
    mk_buf err = MK_BUF_INIT;
    int rc = c ? s->be->conn_open(s->target, &s->opt, &c->impl, &err) : MK_ENOMEM;
    if (rc) {
        if (err.len) mk_log(MK_LOG_ERROR, "store_connect", "error", err.data, NULL);
        mk_buf_release(&err);
        free(c);
        pthread_mutex_lock(&s->mu);
        s->nopen--;
        s->nbusy--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    c->store = s;
    *out = c;
    return 0;
}

int mk_store_acquire(struct mk_store *s, struct mk_store_conn **out)
{
    *out = NULL;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += s->opt.acquire_timeout_ms / 1000;
    deadline.tv_nsec += (long)(s->opt.acquire_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->free_list) {
            struct mk_store_conn *c = s->free_list;
            s->free_list = c->next_free;
            c->next_free = NULL;
            s->nbusy++;
            pthread_mutex_unlock(&s->mu);
            if (!s->be->conn_ready || s->be->conn_ready(c->impl) == 0) {
                *out = c;
                return 0;
            }
            /* The server dropped it while it sat in the pool (restart, failover, idle
             * timeout): replace it in the same slot rather than fail the caller. */
            mk_logf(MK_LOG_WARN, "store_reconnect", "%s connection was lost; opening a new one", s->be->name);
            conn_destroy(c);
            return open_slot(s, out);
        }
        if (s->nopen < s->opt.max_connections) {
            s->nopen++;
            s->nbusy++;
            pthread_mutex_unlock(&s->mu);
            return open_slot(s, out);
        }
        /* Never more connections than max_connections: a burst waits here instead of
         * exhausting the server's connection limit. */
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT && !s->free_list &&
            s->nopen >= s->opt.max_connections) {
            pthread_mutex_unlock(&s->mu);
            mk_logf(MK_LOG_WARN, "store_acquire", "no free %s connection within %u ms (%d in use)", s->be->name,
                    s->opt.acquire_timeout_ms, s->opt.max_connections);
            return MK_EBUSY;
        }
    }
}

void mk_store_release(struct mk_store *s, struct mk_store_conn *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->ncache; i++) {
        if (c->cache[i]->in_use) {
            /* A statement left running would keep a read snapshot (or a lock) open. */
            mk_logf(MK_LOG_WARN, "store_release", "statement still in use: %s", c->cache[i]->sql);
            mk_store_stmt_done(c->cache[i]);
        }
    }
    if (c->in_tx) mk_store_rollback(c);
    pthread_mutex_lock(&s->mu);
    c->next_free = s->free_list;
    s->free_list = c;
    s->nbusy--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int mk_store_exec(struct mk_store_conn *c, const char *sql) { return c->store->be->exec(c->impl, sql); }
const char *mk_store_errmsg(const struct mk_store_conn *c) { return c->store->be->errmsg(c->impl); }
int64_t mk_store_changes(struct mk_store_conn *c) { return c->store->be->changes(c->impl); }
bool mk_store_in_transaction(const struct mk_store_conn *c) { return c->in_tx; }

int mk_store_begin(struct mk_store_conn *c)
{
    if (c->in_tx) return MK_EINVAL;
    int rc = c->store->be->exec(c->impl, c->store->be->begin_sql);
    if (rc == 0) c->in_tx = true;
    return rc;
}

int mk_store_commit(struct mk_store_conn *c)
{
    if (!c->in_tx) return MK_EINVAL;
    int rc = c->store->be->exec(c->impl, "COMMIT");
    if (rc) {
        /* SQLite may keep the transaction open after a failed COMMIT (SQLITE_BUSY);
         * the contract says a failed commit leaves nothing behind. */
        c->store->be->exec(c->impl, "ROLLBACK");
    }
    c->in_tx = false;
    return rc;
}

int mk_store_rollback(struct mk_store_conn *c)
{
    if (!c->in_tx) return MK_EINVAL;
    c->in_tx = false;
    return c->store->be->exec(c->impl, "ROLLBACK");
}

int mk_store_prepare(struct mk_store_conn *c, const char *sql, struct mk_store_stmt **out)
{
    *out = NULL;
    c->tick++;
    size_t victim = SIZE_MAX;
    for (size_t i = 0; i < c->ncache; i++) {
        struct mk_store_stmt *st = c->cache[i];
        if (st->in_use) continue;
        if (strcmp(st->sql, sql) == 0) {
            st->in_use = true;
            st->last_used = c->tick;
            *out = st;
            return 0;
        }
        if (victim == SIZE_MAX || st->last_used < c->cache[victim]->last_used) victim = i;
    }
    struct mk_store_stmt *st = calloc(1, sizeof *st);
    if (!st || !(st->sql = strdup(sql))) {
        free(st);
        return MK_ENOMEM;
    }
    st->conn = c;
    int rc = c->store->be->prepare(c->impl, sql, &st->impl);
    if (rc) {
        free(st->sql);
        free(st);
        return rc;
    }
    st->in_use = true;
    st->last_used = c->tick;
    if (c->ncache < MK_STORE_STMT_CACHE) {
        c->cache[c->ncache++] = st;
    } else if (victim != SIZE_MAX) {
        stmt_destroy(c->cache[victim]);
        c->cache[victim] = st;
    } else {
        /* Every cached statement is running: keep this one out of the cache; done
         * finalizes it. Marked by last_used == 0. */
        st->last_used = 0;
    }
    *out = st;
    return 0;
}

void mk_store_stmt_done(struct mk_store_stmt *st)
{
    if (!st) return;
    if (st->last_used == 0) {
        stmt_destroy(st);
        return;
    }
    st->conn->store->be->reset(st->impl);
    st->in_use = false;
}

int mk_store_reset(struct mk_store_stmt *st) { return st->conn->store->be->reset(st->impl); }

int mk_store_bind(struct mk_store_stmt *st, int idx, const struct mk_store_value *v)
{
    return st->conn->store->be->bind(st->impl, idx, v);
}

int mk_store_bind_int64(struct mk_store_stmt *st, int idx, int64_t v)
{
    struct mk_store_value x = {.type = MK_STORE_INT, .i = v};
    return mk_store_bind(st, idx, &x);
}

int mk_store_bind_double(struct mk_store_stmt *st, int idx, double v)
{
    struct mk_store_value x = {.type = MK_STORE_REAL, .d = v};
    return mk_store_bind(st, idx, &x);
}

int mk_store_bind_text(struct mk_store_stmt *st, int idx, const char *s, size_t len)
{
    struct mk_store_value x = {.type = s ? MK_STORE_TEXT : MK_STORE_NULL, .ptr = s, .len = len};
    return mk_store_bind(st, idx, &x);
}

int mk_store_bind_blob(struct mk_store_stmt *st, int idx, const void *p, size_t len)
{
    struct mk_store_value x = {.type = p ? MK_STORE_BLOB : MK_STORE_NULL, .ptr = p, .len = len};
    return mk_store_bind(st, idx, &x);
}

int mk_store_bind_null(struct mk_store_stmt *st, int idx)
{
    struct mk_store_value x = {.type = MK_STORE_NULL};
    return mk_store_bind(st, idx, &x);
}

int mk_store_step(struct mk_store_stmt *st) { return st->conn->store->be->step(st->impl); }
int mk_store_column_count(struct mk_store_stmt *st) { return st->conn->store->be->column_count(st->impl); }

void mk_store_column(struct mk_store_stmt *st, int col, struct mk_store_value *out)
{
    st->conn->store->be->column(st->impl, col, out);
}

int64_t mk_store_column_int64(struct mk_store_stmt *st, int col)
{
    struct mk_store_value v;
    mk_store_column(st, col, &v);
    if (v.type == MK_STORE_INT) return v.i;
    if (v.type == MK_STORE_REAL) return (int64_t)v.d;
    return 0;
}

double mk_store_column_double(struct mk_store_stmt *st, int col)
{
    struct mk_store_value v;
    mk_store_column(st, col, &v);
    if (v.type == MK_STORE_REAL) return v.d;
    if (v.type == MK_STORE_INT) return (double)v.i;
    return 0;
}

mk_slice mk_store_column_text(struct mk_store_stmt *st, int col)
{
    struct mk_store_value v;
    mk_store_column(st, col, &v);
    if ((v.type != MK_STORE_TEXT && v.type != MK_STORE_BLOB) || !v.ptr) return (mk_slice){"", 0};
    return (mk_slice){v.ptr, v.len};
}

mk_slice mk_store_column_blob(struct mk_store_stmt *st, int col) { return mk_store_column_text(st, col); }

bool mk_store_column_is_null(struct mk_store_stmt *st, int col)
{
    struct mk_store_value v;
    mk_store_column(st, col, &v);
    return v.type == MK_STORE_NULL;
}

/* --- migrations ----------------------------------------------------------------- */

static const char migrations_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " module TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " applied_ms BIGINT NOT NULL,"
    " PRIMARY KEY (module, version))";

int mk_store_schema_version(struct mk_store_conn *c, const char *module, int *version)
{
    *version = 0;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT MAX(version) FROM schema_migrations WHERE module = ?", &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, module);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        *version = (int)mk_store_column_int64(st, 0);
        rc = 0;
    }
    mk_store_stmt_done(st);
    return rc;
}

/* Applies one migration and its row in one transaction. If another process applied
 * the version meanwhile, the version check inside the transaction sees it. */
static int apply_one(struct mk_store_conn *c, const char *module, const struct mk_store_migration *m, mk_buf *err)
{
    int rc = mk_store_begin(c);
    if (rc) goto fail;
    int have = 0;
    if ((rc = mk_store_schema_version(c, module, &have))) goto fail;
    if (have >= m->version) {
        mk_store_rollback(c);  /* another process got there first */
        return 0;
    }
    if (have != m->version - 1) {
        rc = MK_ECORRUPT;
        if (err) mk_buf_printf(err, "store: module %s is at version %d, cannot apply %d", module, have, m->version);
        mk_store_rollback(c);
        return rc;
    }
    const char *sql = m->sqlite;
    if (strcmp(c->store->be->name, "postgres") == 0 && m->postgres) sql = m->postgres;
    if ((rc = mk_store_exec(c, sql))) goto fail;
    struct mk_store_stmt *st;
    if ((rc = mk_store_prepare(c, "INSERT INTO schema_migrations(module, version, applied_ms) VALUES (?, ?, ?)", &st)))
        goto fail;
    mk_store_bind_cstr(st, 1, module);
    mk_store_bind_int64(st, 2, m->version);
    mk_store_bind_int64(st, 3, mk_wall_ms());
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) goto fail;
    if ((rc = mk_store_commit(c))) goto fail;
    mk_logf(MK_LOG_INFO, "store_migrate", "module %s now at schema version %d", module, m->version);
    return 0;
fail:
    if (err && !err->len)
        mk_buf_printf(err, "store: migration %s/%d failed: %s (%s)", module, m->version, mk_store_errmsg(c),
                      mk_strerror(rc));
    if (c->in_tx) mk_store_rollback(c);
    return rc;
}

int mk_store_migrate(struct mk_store *s, const char *module, const struct mk_store_migration *m, size_t n,
                     mk_buf *err)
{
    if (!module || !*module || strlen(module) > MK_STORE_MAX_MODULE_BYTES) {
        if (err) mk_buf_append_str(err, "store: module name empty or too long");
        return MK_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].version != (int)i + 1 || !m[i].sqlite) {
            if (err) mk_buf_printf(err, "store: %s migration #%zu must have version %zu and SQL", module, i, i + 1);
            return MK_EINVAL;
        }
    }
    if (s->opt.read_only) {
        if (err) mk_buf_append_str(err, "store: opened read-only; cannot migrate");
        return MK_EINVAL;
    }
    struct mk_store_conn *c;
    int rc = mk_store_acquire(s, &c);
    if (rc) return rc;
    /* Where BEGIN takes no lock (PostgreSQL), processes starting together would both
     * create schema_migrations and both apply the same version; one lock orders them. */
    bool locked = false;
    if (s->be->migrate_lock) {
        if ((rc = s->be->migrate_lock(c->impl, true))) {
            if (err) mk_buf_printf(err, "store: cannot take the migration lock: %s", mk_store_errmsg(c));
            goto out;
        }
        locked = true;
    }
    if ((rc = mk_store_exec(c, migrations_table))) {
        if (err) mk_buf_printf(err, "store: cannot create schema_migrations: %s", mk_store_errmsg(c));
        goto out;
    }
    int have = 0;
    if ((rc = mk_store_schema_version(c, module, &have))) goto out;
    if ((size_t)have > n) {
        rc = MK_ECONFIG;
        if (err)
            mk_buf_printf(err, "store: the database holds schema version %d of module %s, newer than this "
                          "binary knows (%zu); refusing to run on it", have, module, n);
        goto out;
    }
    for (size_t i = (size_t)have; i < n; i++)
        if ((rc = apply_one(c, module, &m[i], err))) break;
out:
    if (locked) s->be->migrate_lock(c->impl, false);
    mk_store_release(s, c);
    return rc;
}

/* --- async ------------------------------------------------------------------------- */

struct submit_req {
    uv_work_t req;
    struct mk_store *store;
    mk_store_work_fn work;
    mk_store_done_fn done;
    void *arg;
    int status;
};

static void submit_work(uv_work_t *req)
{
    struct submit_req *r = req->data;
    struct mk_store_conn *c;
    r->status = mk_store_acquire(r->store, &c);
    if (r->status) return;
    r->status = r->work(c, r->arg);
    mk_store_release(r->store, c);
}

static void submit_after(uv_work_t *req, int status)
{
    struct submit_req *r = req->data;
    int st = status == UV_ECANCELED ? MK_ECANCELLED : r->status;
    mk_store_done_fn done = r->done;
    void *arg = r->arg;
    free(r);
    done(st, arg);
}

int mk_store_submit(struct mk_store *s, uv_loop_t *loop, mk_store_work_fn work, mk_store_done_fn done, void *arg)
{
    if (!s || !loop || !work || !done) return MK_EINVAL;
    struct submit_req *r = calloc(1, sizeof *r);
    if (!r) return MK_ENOMEM;
    r->req.data = r;
    r->store = s;
    r->work = work;
    r->done = done;
    r->arg = arg;
    if (uv_queue_work(loop, &r->req, submit_work, submit_after) != 0) {
        free(r);
        return MK_EINTERNAL;
    }
    return 0;
}
