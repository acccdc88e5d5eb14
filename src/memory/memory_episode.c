/*
 * memory_episode: reflexion memory — what an agent tried on a task, how it ended and
 * what it thought of it — stored in memory_episodes and searchable by the meaning of
 * the task (vector index, one namespace per tenant) and by filters.
 *
 * Filters split by cost: reward and time live in the index's metadata word and are
 * tested inside the graph walk (no row reads); user, session and tags need the rows,
 * so they pre-select ids in SQL and the vector search is restricted to that set (the
 * index scans small sets exactly instead of walking the graph, so recall holds).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_error.h"
#include "memory/memory_int.h"

static int check_episode(const struct mk_memory_episode *ep, mk_buf *tags, mk_buf *err)
{
    int rc;
    if (!ep) return MK_EINVAL;
    if ((rc = mem_check_id(ep->tenant, "tenant", false, err)) || (rc = mem_check_id(ep->user, "user", true, err)) ||
        (rc = mem_check_id(ep->session, "session", true, err)) ||
        (rc = mem_check_text(ep->task, "task", true, err)) || (rc = mem_check_text(ep->tried, "tried", false, err)) ||
        (rc = mem_check_text(ep->outcome, "outcome", false, err)) ||
        (rc = mem_check_text(ep->critique, "critique", false, err)))
        return rc;
    if (!isfinite(ep->reward)) {
        if (err) mk_buf_printf(err, "reward must be a finite number");
        return MK_EINVAL;
    }
    if (ep->ntags && !ep->tags) return MK_EINVAL;
    return mem_join_tags(ep->tags, ep->ntags, tags, err);
}

struct add_job {
    struct mk_memory *m;
    const struct mk_memory_episode *eps;
    size_t n;
    mk_buf *tags;              /* n joined tag strings */
    int64_t *ids;
    int64_t now;
};

/* Inserts episode i of j and reads its id. The change-log row comes with it (trigger,
 * schema v2). SQLite reads the id with last_insert_rowid(): RETURNING costs SQLite an
 * extra temporary table per row (about 15% of an in-memory insert). */
static int insert_one(struct mk_store_conn *c, struct add_job *j, size_t i)
{
    const struct mk_memory_episode *ep = &j->eps[i];
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c,
                              j->m->postgres
                                  ? "INSERT INTO memory_episodes (tenant, user_id, session, task, tried, outcome,"
                                    " critique, reward, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                                    " RETURNING id"
                                  : "INSERT INTO memory_episodes (tenant, user_id, session, task, tried, outcome,"
                                    " critique, reward, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              &st);
    if (rc) return rc;
    /* borrowed binds: every string outlives the step */
    struct mk_store_value v = {.type = MK_STORE_TEXT, .borrowed = true};
    const char *text[7] = {ep->tenant, mem_str(ep->user), mem_str(ep->session), ep->task,
                           mem_str(ep->tried), mem_str(ep->outcome), mem_str(ep->critique)};
    for (int k = 0; k < 7 && rc == 0; k++) {
        v.ptr = text[k];
        v.len = strlen(text[k]);
        rc = mk_store_bind(st, k + 1, &v);
    }
    v.ptr = j->tags[i].data ? j->tags[i].data : "";
    v.len = j->tags[i].len;
    if (rc == 0) rc = mk_store_bind(st, 9, &v);
    if (rc == 0) rc = mk_store_bind_double(st, 8, ep->reward);
    if (rc == 0) rc = mk_store_bind_int64(st, 10, j->now);
    if (rc == 0) rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) { /* PostgreSQL: RETURNING */
        j->ids[i] = mk_store_column_int64(st, 0);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = j->m->postgres ? MK_EINTERNAL : 0;
    }
    mk_store_stmt_done(st);
    if (rc || j->m->postgres) return rc;
    rc = mk_store_prepare(c, "SELECT last_insert_rowid()", &st);
    if (rc) return rc;
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        j->ids[i] = mk_store_column_int64(st, 0);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_EINTERNAL;
    }
    mk_store_stmt_done(st);
    return rc;
}

static int add_tx(struct mk_store_conn *c, void *arg)
{
    struct add_job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        int rc = insert_one(c, j, i);
        if (rc) return rc;
    }
    return 0;
}

/* Stores the rows of j: one transaction. A single episode on SQLite is one statement
 * (row and change-log row through the trigger), which SQLite commits as one
 * transaction by itself, as durably as COMMIT: no BEGIN/COMMIT round. */
static int store_rows(struct mk_store_conn *c, struct add_job *j)
{
    if (j->n > 1 || j->m->postgres) return mem_tx(c, add_tx, j);
    if (mk_store_in_transaction(c)) return MK_EINVAL; /* the contract: our own transaction */
    int rc = 0;
    for (int attempt = 0; attempt < 4; attempt++) {
        rc = insert_one(c, j, 0);
        if (rc != MK_EBUSY) break;
        /* another writer held the lock past the busy timeout: nothing was written */
        struct timespec ts = {0, (long)(1 + attempt * 4) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

int mk_memory_episode_add_batch(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_episode *eps,
                                size_t n, int64_t *ids, mk_buf *err)
{
    if (!m || !c || (!eps && n)) return MK_EINVAL;
    if (n == 0) return 0;
    mk_buf *tags = calloc(n, sizeof *tags);
    float *vecs = malloc(sizeof(float) * m->dim * n);
    int64_t *own_ids = ids ? NULL : malloc(sizeof(int64_t) * n);
    int rc = tags && vecs && (ids || own_ids) ? 0 : MK_ENOMEM;
    if (!ids) ids = own_ids;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = check_episode(&eps[i], &tags[i], err);
        if (rc && err && n > 1) mk_buf_printf(err, " (episode %zu)", i);
        /* embedding before the transaction keeps the write lock short */
        if (rc == 0) rc = mem_embed(m, eps[i].task, strlen(eps[i].task), vecs + i * m->dim);
    }
    struct add_job j = {m, eps, n, tags, ids, mem_now_ms(m)};
    if (rc == 0) {
        rc = store_rows(c, &j);
        if (rc) mem_store_err(c, rc, "storing the episode", err);
    }
    /* The rows are committed: an index failure (memory) is repaired by the next
     * rebuild or replay, so the write still succeeds. Large batches (imports) are
     * indexed with every core; single writes stay on the calling worker. */
    if (rc == 0 && n >= 64) {
        uint64_t *keys = malloc(sizeof *keys * n);
        mk_vector_attrs *attrs = malloc(sizeof *attrs * n);
        if (keys && attrs) {
            for (size_t i = 0; i < n; i++) {
                keys[i] = (uint64_t)ids[i];
                attrs[i] = (mk_vector_attrs){mem_ns_tenant(eps[i].tenant), mem_episode_meta(eps[i].reward, j.now)};
            }
            mk_vector_insert_batch(m->idx[MK_MEMORY_EPISODES].ix, n, keys, vecs, m->dim, attrs, 0);
        }
        free(keys);
        free(attrs);
    } else {
        for (size_t i = 0; i < n && rc == 0; i++)
            mem_index_put(m, MK_MEMORY_EPISODES, ids[i], vecs + i * m->dim, mem_ns_tenant(eps[i].tenant),
                          mem_episode_meta(eps[i].reward, j.now));
    }
    if (tags)
        for (size_t i = 0; i < n; i++) mk_buf_release(&tags[i]);
    free(tags);
    free(vecs);
    free(own_ids);
    return rc;
}

int mk_memory_episode_add(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_episode *ep,
                          int64_t *id, mk_buf *err)
{
    int64_t tmp;
    return mk_memory_episode_add_batch(m, c, ep, 1, id ? id : &tmp, err);
}

/* One episode row of tenant; NULL (with *rc) when none. */
static json_object *fetch_episode(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t id,
                                  int *rc)
{
    struct mk_store_stmt *st;
    *rc = mk_store_prepare(c, "SELECT " MEM_EPISODE_COLS " FROM memory_episodes WHERE id = ? AND tenant = ?", &st);
    if (*rc) return NULL;
    mk_store_bind_int64(st, 1, id);
    mk_store_bind_cstr(st, 2, tenant);
    json_object *o = NULL;
    int s = mk_store_step(st);
    if (s == MK_STORE_ROW) {
        o = mem_episode_json(st, m->opt.success_reward);
        *rc = 0;
    } else {
        *rc = s == MK_STORE_DONE ? MK_ENOTFOUND : s;
    }
    mk_store_stmt_done(st);
    return o;
}

int mk_memory_episode_get(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t id,
                          json_object **out)
{
    if (!m || !c || !out || mem_check_id(tenant, "tenant", false, NULL)) return MK_EINVAL;
    int rc;
    *out = fetch_episode(m, c, tenant, id, &rc);
    return rc;
}

struct del_job {
    struct mk_memory *m;
    const char *tenant;
    int64_t id;
};

static int del_tx(struct mk_store_conn *c, void *arg)
{
    struct del_job *j = arg;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "DELETE FROM memory_episodes WHERE id = ? AND tenant = ?", &st);
    if (rc) return rc;
    mk_store_bind_int64(st, 1, j->id);
    mk_store_bind_cstr(st, 2, j->tenant);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc < 0) return rc;
    if (mk_store_changes(c) == 0) return MK_ENOTFOUND;
    return mem_log_change(j->m, c, MK_MEMORY_EPISODES, j->id, MEM_OP_DEL);
}

int mk_memory_episode_delete(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t id)
{
    if (!m || !c || mem_check_id(tenant, "tenant", false, NULL)) return MK_EINVAL;
    struct del_job j = {m, tenant, id};
    int rc = mem_tx(c, del_tx, &j);
    if (rc == 0) mem_index_del(m, MK_MEMORY_EPISODES, id);
    return rc;
}

/* ---- search ------------------------------------------------------------------------ */

struct pred_ctx {
    const struct mk_memory_episode_filter *f;
    double success;
    const int64_t *ids;          /* sorted pre-selection, or NULL */
    size_t nids;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool episode_pred(uint64_t key, uint32_t ns, uint64_t meta, void *arg)
{
    const struct pred_ctx *p = arg;
    const struct mk_memory_episode_filter *f = p->f;
    double r = mem_meta_reward(meta);
    if (f->has_min_reward && r < f->min_reward) return false;
    if (f->success_only && r < p->success) return false;
    if (f->failure_only && r >= p->success) return false;
    int64_t s = mem_meta_created_s(meta);
    if (f->since_ms && s < f->since_ms / 1000) return false;
    if (f->until_ms && s > f->until_ms / 1000) return false;
    if (p->ids) {
        int64_t k = (int64_t)key;
        return bsearch(&k, p->ids, p->nids, sizeof k, cmp_i64) != NULL;
    }
    return true;
}

static bool has_meta_filter(const struct mk_memory_episode_filter *f)
{
    return f && (f->has_min_reward || f->success_only || f->failure_only || f->since_ms || f->until_ms);
}

static bool has_row_filter(const struct mk_memory_episode_filter *f)
{
    return f && ((f->user && *f->user) || (f->session && *f->session) || f->ntags);
}

/* Builds "WHERE tenant = ? AND ..." for the filter (binds follow the order here). */
static int filter_sql(const struct mk_memory_episode_filter *f, mk_buf *sql, mk_buf *err)
{
    mk_buf_append_str(sql, " WHERE tenant = ?");
    if (!f) return 0;
    if (f->user && *f->user) mk_buf_append_str(sql, " AND user_id = ?");
    if (f->session && *f->session) mk_buf_append_str(sql, " AND session = ?");
    if (f->ntags > MK_MEMORY_MAX_TAGS) return MK_ETOOBIG;
    for (size_t i = 0; i < f->ntags; i++) mk_buf_append_str(sql, " AND tags LIKE ? ESCAPE '!'");
    if (f->has_min_reward) mk_buf_append_str(sql, " AND reward >= ?");
    if (f->success_only) mk_buf_append_str(sql, " AND reward >= ?");
    if (f->failure_only) mk_buf_append_str(sql, " AND reward < ?");
    if (f->since_ms) mk_buf_append_str(sql, " AND created_at >= ?");
    if (f->until_ms) mk_buf_append_str(sql, " AND created_at <= ?");
    return 0;
}

static int filter_bind(struct mk_store_stmt *st, const char *tenant, const struct mk_memory_episode_filter *f,
                       double success, mk_buf *err)
{
    int i = 1;
    mk_store_bind_cstr(st, i++, tenant);
    if (!f) return i;
    if (f->user && *f->user) mk_store_bind_cstr(st, i++, f->user);
    if (f->session && *f->session) mk_store_bind_cstr(st, i++, f->session);
    for (size_t t = 0; t < f->ntags; t++) {
        /* "%,tag,%" with the tag's own LIKE wildcards escaped */
        mk_buf like = MK_BUF_INIT;
        mk_buf_append_str(&like, "%,");
        for (const char *p = f->tags[t] ? f->tags[t] : ""; *p; p++) {
            if (*p == '%' || *p == '_' || *p == '!') mk_buf_append_char(&like, '!');
            mk_buf_append_char(&like, *p);
        }
        mk_buf_append_str(&like, ",%");
        mk_store_bind_text(st, i++, like.data, like.len);
        mk_buf_release(&like);
    }
    if (f->has_min_reward) mk_store_bind_double(st, i++, f->min_reward);
    if (f->success_only) mk_store_bind_double(st, i++, success);
    if (f->failure_only) mk_store_bind_double(st, i++, success);
    if (f->since_ms) mk_store_bind_int64(st, i++, f->since_ms);
    if (f->until_ms) mk_store_bind_int64(st, i++, f->until_ms);
    return i;
}

static int check_filter(const struct mk_memory_episode_filter *f, mk_buf *err)
{
    if (!f) return 0;
    int rc;
    if ((rc = mem_check_id(f->user, "user", true, err)) || (rc = mem_check_id(f->session, "session", true, err)))
        return rc;
    if (f->ntags > MK_MEMORY_MAX_TAGS) return MK_ETOOBIG;
    for (size_t i = 0; i < f->ntags; i++) {
        const char *t = f->tags ? f->tags[i] : NULL;
        if (!t || !*t || strlen(t) > MK_MEMORY_MAX_TAG_BYTES || strchr(t, ',')) {
            if (err) mk_buf_printf(err, "tag filter %zu is not a valid tag", i);
            return MK_EINVAL;
        }
    }
    if (f->has_min_reward && !isfinite(f->min_reward)) return MK_EINVAL;
    if (f->success_only && f->failure_only) {
        if (err) mk_buf_printf(err, "success_only and failure_only exclude each other");
        return MK_EINVAL;
    }
    return 0;
}

/* Newest episodes passing the filter (no query). */
static int list_episodes(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, uint32_t k,
                         const struct mk_memory_episode_filter *f, json_object *data, mk_buf *err)
{
    mk_buf sql = MK_BUF_INIT;
    mk_buf_append_str(&sql, "SELECT " MEM_EPISODE_COLS " FROM memory_episodes");
    int rc = filter_sql(f, &sql, err);
    mk_buf_append_str(&sql, " ORDER BY created_at DESC, id DESC LIMIT ?");
    struct mk_store_stmt *st;
    if (rc == 0) rc = mk_store_prepare(c, sql.data, &st);
    mk_buf_release(&sql);
    if (rc) return rc;
    int i = filter_bind(st, tenant, f, m->opt.success_reward, err);
    mk_store_bind_int64(st, i, k);
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) json_object_array_add(data, mem_episode_json(st, m->opt.success_reward));
    mk_store_stmt_done(st);
    return rc < 0 ? rc : 0;
}

/* Ids of the tenant's episodes passing the row filter, sorted. */
static int preselect(struct mk_memory *m, struct mk_store_conn *c, const char *tenant,
                     const struct mk_memory_episode_filter *f, int64_t **ids, size_t *n, mk_buf *err)
{
    mk_buf sql = MK_BUF_INIT;
    mk_buf_append_str(&sql, "SELECT id FROM memory_episodes");
    int rc = filter_sql(f, &sql, err);
    mk_buf_append_str(&sql, " LIMIT ?");
    struct mk_store_stmt *st;
    if (rc == 0) rc = mk_store_prepare(c, sql.data, &st);
    mk_buf_release(&sql);
    if (rc) return rc;
    int i = filter_bind(st, tenant, f, m->opt.success_reward, err);
    mk_store_bind_int64(st, i, MK_MEMORY_MAX_FILTER_ROWS + 1);
    size_t cap = 256, cnt = 0;
    int64_t *a = malloc(sizeof *a * cap);
    if (!a) rc = MK_ENOMEM;
    while (rc == 0 && (rc = mk_store_step(st)) == MK_STORE_ROW) {
        if (cnt == cap) {
            int64_t *b = realloc(a, sizeof *a * cap * 2);
            if (!b) {
                rc = MK_ENOMEM;
                break;
            }
            a = b;
            cap *= 2;
        }
        a[cnt++] = mk_store_column_int64(st, 0);
        rc = 0;
    }
    mk_store_stmt_done(st);
    if (rc < 0) {
        free(a);
        return rc;
    }
    if (cnt > MK_MEMORY_MAX_FILTER_ROWS) {
        free(a);
        if (err) mk_buf_printf(err, "the filter matches more than %d episodes; narrow it", MK_MEMORY_MAX_FILTER_ROWS);
        return MK_ETOOBIG;
    }
    qsort(a, cnt, sizeof *a, cmp_i64);
    *ids = a;
    *n = cnt;
    return 0;
}

/* The vector part shared by both searches: hits of tenant's namespace passing pc. */
static int vector_hits(struct mk_memory *m, const char *tenant, const char *query, uint32_t want,
                       struct pred_ctx *pc, mk_vector_hit *hits, size_t *nhits)
{
    /* the query vector on the stack at the usual sizes: one malloc less per search */
    float stack_q[1024], *q = m->dim <= 1024 ? stack_q : malloc(sizeof(float) * m->dim);
    if (!q) return MK_ENOMEM;
    int rc = mem_embed(m, query, strlen(query), q);
    mk_vector_filter vf = {.use_ns = true, .ns = mem_ns_tenant(tenant)};
    if (pc) {
        vf.pred = episode_pred;
        vf.pred_arg = pc;
    }
    mk_vector_search_opts so = {.filter = &vf};
    if (rc == 0) rc = mk_vector_search(m->idx[MK_MEMORY_EPISODES].ix, q, m->dim, want, &so, hits, nhits);
    if (q != stack_q) free(q);
    return rc;
}

int mk_memory_episode_search_ids(struct mk_memory *m, const char *tenant, const char *query, uint32_t k,
                                 int64_t *ids, float *scores, size_t *n)
{
    if (!m || !query || !ids || !n || k == 0 || k > MK_MEMORY_MAX_K || mem_check_id(tenant, "tenant", false, NULL))
        return MK_EINVAL;
    mk_vector_hit stack_hits[64], *hits = k <= 64 ? stack_hits : malloc(sizeof *hits * k);
    if (!hits) return MK_ENOMEM;
    size_t nh = 0;
    int rc = vector_hits(m, tenant, query, k, NULL, hits, &nh);
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        ids[i] = (int64_t)hits[i].key;
        if (scores) scores[i] = 1.0f - hits[i].distance;
    }
    *n = rc == 0 ? nh : 0;
    if (hits != stack_hits) free(hits);
    return rc;
}

/* Ids per hydration query: one statement text (cached), unused places repeat an id. */
#define HYDRATE_BATCH 16
#define Q8 "?, ?, ?, ?, ?, ?, ?, ?"

/* Appends to data the rows of hits (best first) with their scores, until k are there.
 * Rows are read HYDRATE_BATCH at a time (one statement instead of one per hit); a hit
 * without a row of tenant (deleted since it was indexed, or another tenant's under a
 * colliding namespace) is skipped and the next hits fill in. */
static int hydrate(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const mk_vector_hit *hits,
                   size_t nh, uint32_t k, json_object *data)
{
    size_t next = 0;
    while (next < nh && json_object_array_length(data) < k) {
        size_t want = k - json_object_array_length(data), take = nh - next;
        if (take > want) take = want;
        if (take > HYDRATE_BATCH) take = HYDRATE_BATCH;
        struct mk_store_stmt *st;
        /* by primary key only: with "tenant = ?" in the WHERE clause SQLite may pick the
         * tenant index and scan the tenant's rows; the tenant is compared here instead */
        int rc = mk_store_prepare(c, "SELECT " MEM_EPISODE_COLS " FROM memory_episodes WHERE id IN (" Q8 ", " Q8 ")",
                                  &st);
        if (rc) return rc;
        for (size_t j = 0; j < HYDRATE_BATCH; j++)
            mk_store_bind_int64(st, (int)j + 1, (int64_t)hits[next + (j < take ? j : 0)].key);
        json_object *rows[HYDRATE_BATCH] = {0};
        size_t tlen = strlen(tenant);
        while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
            int64_t id = mk_store_column_int64(st, 0);
            mk_slice t = mk_store_column_text(st, 1);
            if (t.len != tlen || memcmp(t.ptr, tenant, tlen) != 0) continue; /* another tenant's row */
            for (size_t j = 0; j < take; j++)
                if ((int64_t)hits[next + j].key == id && !rows[j]) {
                    rows[j] = mem_episode_json(st, m->opt.success_reward);
                    break;
                }
        }
        mk_store_stmt_done(st);
        for (size_t j = 0; j < take; j++) {
            if (!rows[j]) continue;
            if (rc < 0) {
                json_object_put(rows[j]);
                continue;
            }
            json_object_object_add_ex(rows[j], "score", json_object_new_double(1.0 - (double)hits[next + j].distance),
                                      JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
            json_object_array_add(data, rows[j]);
        }
        if (rc < 0) return rc;
        next += take;
    }
    return 0;
}

int mk_memory_episode_search(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *query,
                             uint32_t k, const struct mk_memory_episode_filter *f, json_object **out, mk_buf *err)
{
    if (!m || !c || !out) return MK_EINVAL;
    *out = NULL;
    int rc;
    if ((rc = mem_check_id(tenant, "tenant", false, err))) return rc;
    if (k == 0 || k > MK_MEMORY_MAX_K) {
        if (err) mk_buf_printf(err, "k must be between 1 and %d", MK_MEMORY_MAX_K);
        return MK_EINVAL;
    }
    if ((rc = check_filter(f, err))) return rc;
    if (query && (rc = mem_check_text(query, "query", false, err))) return rc;
    json_object *data = json_object_new_array();
    if (!query || !*query) {
        rc = list_episodes(m, c, tenant, k, f, data, err);
    } else {
        struct pred_ctx pc = {.f = f, .success = m->opt.success_reward};
        if (has_row_filter(f)) rc = preselect(m, c, tenant, f, (int64_t **)&pc.ids, &pc.nids, err);
        /* a few spare hits cover rows deleted since they were indexed */
        uint32_t want = k + 4 > MK_VECTOR_MAX_K ? MK_VECTOR_MAX_K : k + 4;
        mk_vector_hit *hits = malloc(sizeof *hits * want);
        size_t nh = 0;
        if (rc == 0 && !hits) rc = MK_ENOMEM;
        bool filtered = has_meta_filter(f) || pc.ids;
        if (rc == 0 && !(pc.ids && pc.nids == 0))
            rc = vector_hits(m, tenant, query, want, filtered ? &pc : NULL, hits, &nh);
        if (rc == 0) rc = hydrate(m, c, tenant, hits, nh, k, data);
        free(hits);
        free((void *)pc.ids);
    }
    if (rc) {
        json_object_put(data);
        if (err && !err->len) mem_store_err(c, rc, "searching episodes", err);
        return rc;
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("list"));
    json_object_object_add(res, "data", data);
    *out = res;
    return 0;
}
