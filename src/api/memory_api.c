/*
 * memory_api: the agent-memory HTTP API, /api/v1/memory/... (docs/API.md, "Memory").
 *
 * One handler (mk_api_memory) takes every method under the prefix and dispatches on
 * the path's segments through the table below. Store work (episodes, skills, facts,
 * links, history, erasure) runs on libuv's worker pool through mk_store_submit and
 * answers from the loop; sessions and agent state go to kv on the loop. Every call
 * acts in the caller's tenant (ctx->tenant) and never names another.
 *
 * The memory service is opened on the first memory request of the process (migrations,
 * index load) on a store pool of its own (the same database as the process's store:
 * store.url or <data_dir>/mayak.db) and with the process's kv (kv.url) for sessions,
 * so two processes sharing Redis share sessions. The app frees its services (kv
 * included) when it stops; a prepare handle notices app->stopping, waits for our work
 * in flight, saves the indexes and frees the rest. (Better: open it with the other
 * services; it is here until mk_services has a memory member.) Its settings are the
 * config's `memory:` section (session TTL, retention per kind, sync interval), read
 * when the service opens.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mk_auth.h"
#include "auth/mk_roles.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "kv/mk_kv.h"
#include "memory/mk_memory.h"
#include "mk_api.h"
#include "store/mk_store.h"

void mk_api_memory(mk_ctx *ctx);

/* ---- the process's memory service -------------------------------------------------- */

struct api_mem {
    mk_app *app;
    struct mk_memory *mem;
    struct mk_store *store;        /* our own pool on the process's database */
    uv_prepare_t watch;            /* notices app->stopping */
    uv_timer_t tick;               /* sync, checkpoint and sweep */
    int inflight;                  /* store jobs and kv calls not yet answered */
    bool syncing, sweeping, checkpointing;
    uint64_t last_sweep_ms, last_checkpoint_ms;
    int handles_open;
    bool closing;
};

static struct api_mem *g_mem;     /* one app per process (mk_app_run) */
static bool g_failed;             /* opening failed once: answer 503 without retrying every call */

#define SWEEP_EVERY_MS (10u * 60 * 1000)
#define CHECKPOINT_EVERY_MS (5u * 60 * 1000)

static void handle_closed(uv_handle_t *h)
{
    struct api_mem *am = h->data;
    if (--am->handles_open == 0) {
        if (g_mem == am) g_mem = NULL;
        free(am);
    }
}

/* Work that runs on the pool for the timers. */
static int sync_work(struct mk_store_conn *c, void *arg)
{
    struct api_mem *am = arg;
    return mk_memory_sync(am->mem, c, NULL);
}
static void sync_done(int status, void *arg)
{
    struct api_mem *am = arg;
    am->syncing = false;
    am->inflight--;
    if (status && status != MK_ECANCELLED)
        mk_log(MK_LOG_WARN, "memory_sync_failed", "error", mk_strerror(status), NULL);
}
static int sweep_work(struct mk_store_conn *c, void *arg)
{
    struct api_mem *am = arg;
    json_object *rep = NULL;
    int rc = mk_memory_sweep(am->mem, c, &rep);
    if (rc == 0) mk_log(MK_LOG_INFO, "memory_swept", "report", json_object_to_json_string(rep), NULL);
    json_object_put(rep);
    return rc;
}
static void sweep_done(int status, void *arg)
{
    struct api_mem *am = arg;
    am->sweeping = false;
    am->inflight--;
    if (status && status != MK_ECANCELLED)
        mk_log(MK_LOG_WARN, "memory_sweep_failed", "error", mk_strerror(status), NULL);
}
static int checkpoint_work(struct mk_store_conn *c, void *arg)
{
    (void)c;
    struct api_mem *am = arg;
    return mk_memory_checkpoint(am->mem);
}
static void checkpoint_done(int status, void *arg)
{
    struct api_mem *am = arg;
    am->checkpointing = false;
    am->inflight--;
    if (status && status != MK_ECANCELLED)
        mk_log(MK_LOG_WARN, "memory_checkpoint_failed", "error", mk_strerror(status), NULL);
}

static void on_tick(uv_timer_t *t)
{
    struct api_mem *am = t->data;
    if (am->closing) return;
    uint64_t now = uv_now(am->app->loop);
    if (!am->syncing && mk_store_submit(am->store, am->app->loop, sync_work, sync_done, am) == 0) {
        am->syncing = true;
        am->inflight++;
    }
    if (!am->sweeping && now - am->last_sweep_ms >= SWEEP_EVERY_MS &&
        mk_store_submit(am->store, am->app->loop, sweep_work, sweep_done, am) == 0) {
        am->sweeping = true;
        am->last_sweep_ms = now;
        am->inflight++;
    }
    if (!am->checkpointing && now - am->last_checkpoint_ms >= CHECKPOINT_EVERY_MS &&
        mk_store_submit(am->store, am->app->loop, checkpoint_work, checkpoint_done, am) == 0) {
        am->checkpointing = true;
        am->last_checkpoint_ms = now;
        am->inflight++;
    }
}

/* Runs every loop iteration (cheap: two loads). Once the app stops and nothing of
 * ours is in flight, saves and frees the memory and closes our handles. */
static void on_watch(uv_prepare_t *p)
{
    struct api_mem *am = p->data;
    if (!am->app->stopping || am->inflight > 0 || am->closing) return;
    am->closing = true;
    uv_timer_stop(&am->tick);
    mk_memory_free(am->mem); /* saves the indexes */
    am->mem = NULL;
    mk_store_free(am->store);
    am->store = NULL;
    uv_prepare_stop(p);
    uv_close((uv_handle_t *)&am->tick, handle_closed);
    uv_close((uv_handle_t *)p, handle_closed);
}

static struct api_mem *memory_service(mk_ctx *ctx, mk_buf *why)
{
    mk_app *app = ctx->app;
    if (g_mem) return g_mem->app == app && !g_mem->closing ? g_mem : NULL;
    if (g_failed || !app || !app->services || !app->gen || app->stopping) return NULL;
    struct api_mem *am = calloc(1, sizeof *am);
    if (!am) return NULL;
    am->app = app;
    const struct mk_config *cfg = app->gen->config;
    mk_buf url = MK_BUF_INIT;
    if (cfg->store_url) mk_buf_append_str(&url, cfg->store_url);
    else mk_buf_printf(&url, "%s/mayak.db", cfg->data_dir);
    int rc = url.data ? mk_store_open(url.data, NULL, &am->store, why) : MK_ENOMEM;
    mk_buf_release(&url);
    struct mk_memory_options o = {.data_dir = cfg->data_dir};
    const struct mk_memory_config *mc = &cfg->memory;
    o.session_ttl_ms = mc->session_ttl_s * 1000u;
    const int per_kind[MK_MEMORY_KIND_COUNT] = {
        [MK_MEMORY_EPISODES] = mc->retention.episodes, [MK_MEMORY_SKILLS] = mc->retention.skills,
        [MK_MEMORY_FACTS] = mc->retention.facts,       [MK_MEMORY_LINKS] = mc->retention.links,
        [MK_MEMORY_HISTORY] = mc->retention.history,
    };
    for (int k = 0; k < MK_MEMORY_KIND_COUNT; k++) {
        int days = per_kind[k] >= 0 ? per_kind[k] : mc->retention_days;
        o.retention_ms[k] = days ? days * 24ll * 3600 * 1000 : -1; /* 0 days = keep */
    }
    if (rc == 0) rc = mk_memory_open(am->store, app->services->kv, &o, &am->mem, why);
    if (rc) {
        mk_log(MK_LOG_ERROR, "memory_unavailable", "error", mk_strerror(rc), "reason", why->data ? why->data : "", NULL);
        mk_memory_free(am->mem);
        mk_store_free(am->store);
        free(am);
        g_failed = true;
        return NULL;
    }
    uv_prepare_init(app->loop, &am->watch);
    am->watch.data = am;
    uv_prepare_start(&am->watch, on_watch);
    uv_timer_init(app->loop, &am->tick);
    am->tick.data = am;
    uv_timer_start(&am->tick, on_tick, mc->sync_ms, mc->sync_ms);
    uv_unref((uv_handle_t *)&am->tick);
    am->last_sweep_ms = am->last_checkpoint_ms = uv_now(app->loop);
    am->handles_open = 2;
    g_mem = am;
    mk_log(MK_LOG_INFO, "memory_ready", "kv", mk_kv_backend_name(app->services->kv), "store", mk_store_backend_name(am->store),
           "embedder", mk_memory_embedder_name(am->mem), NULL);
    return am;
}

/* ---- request helpers ----------------------------------------------------------------- */

static void send_json(mk_ctx *ctx, int status, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    mk_api_send(ctx, status, "application/json", s, len);
}

/* The route already required the general memory permission (routes.c); admin
 * actions check theirs here. No principal (auth did not run) holds nothing. */
static bool allowed(mk_ctx *ctx, enum mk_perm p)
{
    if (ctx->principal_rec && mk_principal_can(ctx->principal_rec, p)) return true;
    mk_api_fail_code(ctx, MK_EFORBIDDEN, "forbidden", "your role may not do this");
    return false;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s into the pool ('+' as space when form). NULL on a bad escape or
 * a NUL byte. */
static char *decode(mk_pool *pool, const char *s, size_t n, bool form)
{
    char *out = mk_pool_alloc(pool, n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) return NULL;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) return NULL;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o++] = form && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* A query parameter's decoded value, or NULL. */
static const char *qparam(mk_ctx *ctx, const char *name)
{
    mk_slice q = ctx->req->query;
    size_t nl = strlen(name), i = 0;
    while (i < q.len) {
        size_t j = i;
        while (j < q.len && q.ptr[j] != '&') j++;
        const char *eq = memchr(q.ptr + i, '=', j - i);
        size_t kl = eq ? (size_t)(eq - (q.ptr + i)) : j - i;
        if (kl == nl && memcmp(q.ptr + i, name, nl) == 0)
            return eq ? decode(ctx->pool, eq + 1, (size_t)(q.ptr + j - eq - 1), true) : "";
        i = j + 1;
    }
    return NULL;
}

static bool qparam_long(mk_ctx *ctx, const char *name, long def, long lo, long hi, long *out)
{
    const char *s = qparam(ctx, name);
    *out = def;
    if (!s) return true;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "query parameter %s must be an integer from %ld to %ld", name, lo, hi);
        mk_api_fail(ctx, MK_EINVAL, msg);
        return false;
    }
    *out = v;
    return true;
}

static bool truthy(const char *s) { return s && (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes")); }

/* JSON body members (the body is the request's; strings live as long as it). */
static json_object *member(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* A string member: *out NULL when absent or null; false (and msg) when not a string. */
static bool opt_str(json_object *body, const char *k, const char **out, mk_buf *err)
{
    json_object *v = member(body, k);
    *out = NULL;
    if (!v) return true;
    if (!json_object_is_type(v, json_type_string)) {
        mk_buf_printf(err, "%s must be a string", k);
        return false;
    }
    *out = json_object_get_string(v);
    return true;
}

static bool opt_num(json_object *body, const char *k, double def, double *out, mk_buf *err)
{
    json_object *v = member(body, k);
    *out = def;
    if (!v) return true;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
        mk_buf_printf(err, "%s must be a number", k);
        return false;
    }
    *out = json_object_get_double(v);
    return true;
}

static bool opt_k(json_object *body, const char *name, uint32_t def, uint32_t *out, mk_buf *err)
{
    json_object *v = member(body, name);
    *out = def;
    if (!v) return true;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
        json_object_get_int64(v) > MK_MEMORY_MAX_K) {
        mk_buf_printf(err, "%s must be an integer from 1 to %d", name, MK_MEMORY_MAX_K);
        return false;
    }
    *out = (uint32_t)json_object_get_int64(v);
    return true;
}

/* tags: an array of strings, into v (room for MK_MEMORY_MAX_TAGS). */
static bool opt_tags(json_object *body, const char *k, const char **v, size_t *n, mk_buf *err)
{
    json_object *a = member(body, k);
    *n = 0;
    if (!a) return true;
    if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > MK_MEMORY_MAX_TAGS) {
        mk_buf_printf(err, "%s must be an array of at most %d strings", k, MK_MEMORY_MAX_TAGS);
        return false;
    }
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *t = json_object_array_get_idx(a, i);
        if (!json_object_is_type(t, json_type_string)) {
            mk_buf_printf(err, "%s[%zu] must be a string", k, i);
            return false;
        }
        v[(*n)++] = json_object_get_string(t);
    }
    return true;
}

/* ---- store jobs ---------------------------------------------------------------------- */

struct job;
typedef int (*job_fn)(struct job *j, struct mk_store_conn *c);
typedef void (*job_after_fn)(struct job *j);

struct job {
    mk_ctx *ctx;
    struct api_mem *am;
    struct mk_memory *mem;
    job_fn fn;
    job_after_fn after;            /* optional loop-side continuation instead of answering */
    json_object *body;
    const char *tenant, *principal;
    const char *s1, *s2, *s3;      /* path/query parameters */
    int64_t id;
    long n1, n2;
    double d1;
    bool flag;
    int ok_status;
    json_object *result;           /* owned */
    json_object *extra;            /* owned: e.g. erasure's session ids */
    mk_buf err;
};

static void job_free(struct job *j)
{
    json_object_put(j->result);
    json_object_put(j->extra);
    mk_buf_release(&j->err);
    free(j);
}

static int job_work(struct mk_store_conn *c, void *arg)
{
    struct job *j = arg;
    return j->fn(j, c);
}

static void job_done(int status, void *arg)
{
    struct job *j = arg;
    j->am->inflight--;
    if (status == 0 && j->after) {
        j->after(j); /* takes over: answers and frees */
        return;
    }
    if (status) mk_api_fail(j->ctx, status, j->err.len ? j->err.data : NULL);
    else send_json(j->ctx, j->ok_status, j->result);
    job_free(j);
}

static struct job *job_new(mk_ctx *ctx, struct api_mem *am, job_fn fn)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return NULL;
    }
    j->ctx = ctx;
    j->am = am;
    j->mem = am->mem;
    j->fn = fn;
    j->body = ctx->body;
    j->tenant = ctx->tenant;
    j->principal = ctx->principal;
    j->ok_status = 200;
    return j;
}

static void job_submit(struct job *j)
{
    struct api_mem *am = j->am;
    am->inflight++; /* before: done never runs inside submit today, but need not promise it */
    int rc = mk_store_submit(am->store, am->app->loop, job_work, job_done, j);
    if (rc) {
        am->inflight--;
        mk_api_fail(j->ctx, rc, NULL);
        job_free(j);
    }
}

/* ---- episodes ---------------------------------------------------------------------- */

static int w_episode_add(struct job *j, struct mk_store_conn *c)
{
    json_object *b = j->body;
    struct mk_memory_episode ep = {.tenant = j->tenant};
    const char *tags[MK_MEMORY_MAX_TAGS];
    double reward;
    json_object *rv = member(b, "reward");
    if (!rv) {
        mk_buf_printf(&j->err, "reward is required");
        return MK_EINVAL;
    }
    if (!opt_str(b, "task", &ep.task, &j->err) || !opt_str(b, "tried", &ep.tried, &j->err) ||
        !opt_str(b, "outcome", &ep.outcome, &j->err) || !opt_str(b, "critique", &ep.critique, &j->err) ||
        !opt_str(b, "session", &ep.session, &j->err) || !opt_str(b, "user", &ep.user, &j->err) ||
        !opt_num(b, "reward", 0, &reward, &j->err) || !opt_tags(b, "tags", tags, &ep.ntags, &j->err))
        return MK_EINVAL;
    ep.reward = reward;
    ep.tags = tags;
    int64_t id;
    int rc = mk_memory_episode_add(j->mem, c, &ep, &id, &j->err);
    if (rc) return rc;
    j->result = json_object_new_object();
    json_object_object_add(j->result, "id", json_object_new_int64(id));
    json_object_object_add(j->result, "object", json_object_new_string("memory.episode"));
    j->ok_status = 201;
    return 0;
}

static bool parse_filter(json_object *f, struct mk_memory_episode_filter *flt, const char **tags, mk_buf *err)
{
    memset(flt, 0, sizeof *flt);
    if (!f) return true;
    if (!json_object_is_type(f, json_type_object)) {
        mk_buf_printf(err, "filter must be an object");
        return false;
    }
    json_object *v;
    double d;
    if (!opt_str(f, "user", &flt->user, err) || !opt_str(f, "session", &flt->session, err) ||
        !opt_tags(f, "tags", tags, &flt->ntags, err))
        return false;
    flt->tags = tags;
    if ((v = member(f, "min_reward"))) {
        if (!opt_num(f, "min_reward", 0, &d, err)) return false;
        flt->has_min_reward = true;
        flt->min_reward = d;
    }
    if ((v = member(f, "success"))) {
        if (!json_object_is_type(v, json_type_boolean)) {
            mk_buf_printf(err, "filter.success must be true or false");
            return false;
        }
        if (json_object_get_boolean(v)) flt->success_only = true;
        else flt->failure_only = true;
    }
    if (!opt_num(f, "since", 0, &d, err)) return false;
    flt->since_ms = (int64_t)d;
    if (!opt_num(f, "until", 0, &d, err)) return false;
    flt->until_ms = (int64_t)d;
    return true;
}

static int w_episode_search(struct job *j, struct mk_store_conn *c)
{
    const char *query;
    uint32_t k;
    struct mk_memory_episode_filter flt;
    const char *tags[MK_MEMORY_MAX_TAGS];
    if (!opt_str(j->body, "query", &query, &j->err) || !opt_k(j->body, "k", 5, &k, &j->err) ||
        !parse_filter(member(j->body, "filter"), &flt, tags, &j->err))
        return MK_EINVAL;
    if (!query || !*query) {
        mk_buf_printf(&j->err, "query is required (list episodes with GET /api/v1/memory/episodes)");
        return MK_EINVAL;
    }
    return mk_memory_episode_search(j->mem, c, j->tenant, query, k, &flt, &j->result, &j->err);
}

static int w_episode_list(struct job *j, struct mk_store_conn *c)
{
    struct mk_memory_episode_filter flt = {.user = j->s1, .session = j->s2};
    const char *tag = j->s3;
    if (tag) {
        flt.tags = &tag;
        flt.ntags = 1;
    }
    if (j->flag) flt.success_only = true;
    return mk_memory_episode_search(j->mem, c, j->tenant, NULL, (uint32_t)j->n1, &flt, &j->result, &j->err);
}

static int w_episode_get(struct job *j, struct mk_store_conn *c)
{
    return mk_memory_episode_get(j->mem, c, j->tenant, j->id, &j->result);
}

static int w_episode_delete(struct job *j, struct mk_store_conn *c)
{
    int rc = mk_memory_episode_delete(j->mem, c, j->tenant, j->id);
    if (rc == 0) {
        j->result = json_object_new_object();
        json_object_object_add(j->result, "id", json_object_new_int64(j->id));
        json_object_object_add(j->result, "deleted", json_object_new_boolean(true));
    }
    return rc;
}

/* ---- skills -------------------------------------------------------------------------- */

static int w_skill_put(struct job *j, struct mk_store_conn *c)
{
    struct mk_memory_skill s = {.tenant = j->tenant, .author = j->principal};
    const char *tags[MK_MEMORY_MAX_TAGS];
    if (!opt_str(j->body, "name", &s.name, &j->err) || !opt_str(j->body, "description", &s.description, &j->err) ||
        !opt_str(j->body, "procedure", &s.procedure, &j->err) || !opt_tags(j->body, "tags", tags, &s.ntags, &j->err))
        return MK_EINVAL;
    s.tags = tags;
    int64_t id;
    int version;
    int rc = mk_memory_skill_put(j->mem, c, &s, &id, &version, &j->err);
    if (rc) return rc;
    j->result = json_object_new_object();
    json_object_object_add(j->result, "id", json_object_new_int64(id));
    json_object_object_add(j->result, "name", json_object_new_string(s.name));
    json_object_object_add(j->result, "version", json_object_new_int(version));
    j->ok_status = 201;
    return 0;
}

static int w_skill_search(struct job *j, struct mk_store_conn *c)
{
    const char *query;
    uint32_t k;
    if (!opt_str(j->body, "query", &query, &j->err) || !opt_k(j->body, "k", 5, &k, &j->err)) return MK_EINVAL;
    return mk_memory_skill_search(j->mem, c, j->tenant, query, k, &j->result, &j->err);
}

static int w_skill_promote(struct job *j, struct mk_store_conn *c)
{
    const char *name;
    json_object *ev = member(j->body, "episode");
    if (!opt_str(j->body, "name", &name, &j->err)) return MK_EINVAL;
    if (!ev || !json_object_is_type(ev, json_type_int)) {
        mk_buf_printf(&j->err, "episode (an id) is required");
        return MK_EINVAL;
    }
    int64_t id;
    int version;
    int rc = mk_memory_skill_promote(j->mem, c, j->tenant, json_object_get_int64(ev), name, j->principal, &id, &version,
                                     &j->err);
    if (rc) return rc;
    j->result = json_object_new_object();
    json_object_object_add(j->result, "id", json_object_new_int64(id));
    json_object_object_add(j->result, "name", json_object_new_string(name));
    json_object_object_add(j->result, "version", json_object_new_int(version));
    j->ok_status = 201;
    return 0;
}

static int w_skill_get(struct job *j, struct mk_store_conn *c)
{
    return mk_memory_skill_get(j->mem, c, j->tenant, j->s1, &j->result);
}

static int w_skill_use(struct job *j, struct mk_store_conn *c)
{
    json_object *v = member(j->body, "success");
    if (!v || !json_object_is_type(v, json_type_boolean)) {
        mk_buf_printf(&j->err, "success (true or false) is required");
        return MK_EINVAL;
    }
    int rc = mk_memory_skill_record_use(j->mem, c, j->tenant, j->s1, json_object_get_boolean(v));
    if (rc == 0) rc = mk_memory_skill_get(j->mem, c, j->tenant, j->s1, &j->result);
    return rc;
}

/* ---- facts --------------------------------------------------------------------------- */

static int w_fact_assert(struct job *j, struct mk_store_conn *c)
{
    struct mk_memory_fact f = {.tenant = j->tenant, .asserted_by = j->principal};
    double conf;
    int64_t sup[64];
    json_object *sv = member(j->body, "supersedes");
    if (!opt_str(j->body, "subject", &f.subject, &j->err) || !opt_str(j->body, "text", &f.text, &j->err) ||
        !opt_str(j->body, "predicate", &f.predicate, &j->err) || !opt_str(j->body, "value", &f.value, &j->err) ||
        !opt_str(j->body, "source", &f.source, &j->err) || !opt_num(j->body, "confidence", 1, &conf, &j->err))
        return MK_EINVAL;
    f.confidence = conf;
    if (sv) {
        if (!json_object_is_type(sv, json_type_array) || json_object_array_length(sv) > 64) {
            mk_buf_printf(&j->err, "supersedes must be an array of at most 64 fact ids");
            return MK_EINVAL;
        }
        for (size_t i = 0; i < json_object_array_length(sv); i++) {
            json_object *x = json_object_array_get_idx(sv, i);
            if (!json_object_is_type(x, json_type_int)) {
                mk_buf_printf(&j->err, "supersedes[%zu] must be a fact id", i);
                return MK_EINVAL;
            }
            sup[f.nsupersedes++] = json_object_get_int64(x);
        }
        f.supersedes = sup;
    }
    int rc = mk_memory_fact_assert(j->mem, c, &f, NULL, NULL, &j->result, &j->err);
    if (rc == 0) {
        json_object *st = member(j->result, "status");
        j->ok_status = st && strcmp(json_object_get_string(st), "duplicate") == 0 ? 200 : 201;
    }
    return rc;
}

static int w_fact_list(struct job *j, struct mk_store_conn *c)
{
    return mk_memory_fact_list(j->mem, c, j->tenant, j->s1, j->flag, (uint32_t)j->n1, &j->result);
}

static int w_fact_search(struct job *j, struct mk_store_conn *c)
{
    const char *query, *subject;
    uint32_t k;
    if (!opt_str(j->body, "query", &query, &j->err) || !opt_str(j->body, "subject", &subject, &j->err) ||
        !opt_k(j->body, "k", 5, &k, &j->err))
        return MK_EINVAL;
    return mk_memory_fact_search(j->mem, c, j->tenant, subject, query, k, &j->result, &j->err);
}

static int w_fact_retract(struct job *j, struct mk_store_conn *c)
{
    int rc = mk_memory_fact_retract(j->mem, c, j->tenant, j->id, j->principal);
    if (rc == 0) {
        j->result = json_object_new_object();
        json_object_object_add(j->result, "id", json_object_new_int64(j->id));
        json_object_object_add(j->result, "retracted", json_object_new_boolean(true));
    }
    return rc;
}

/* ---- links --------------------------------------------------------------------------- */

static int w_link_add(struct job *j, struct mk_store_conn *c)
{
    const char *cause, *effect, *user;
    double conf;
    if (!opt_str(j->body, "cause", &cause, &j->err) || !opt_str(j->body, "effect", &effect, &j->err) ||
        !opt_str(j->body, "user", &user, &j->err) || !opt_num(j->body, "confidence", NAN, &conf, &j->err))
        return MK_EINVAL;
    int rc = mk_memory_link_add(j->mem, c, j->tenant, cause, effect, conf, user, &j->result, &j->err);
    if (rc == 0) j->ok_status = 201;
    return rc;
}

static int w_link_causes(struct job *j, struct mk_store_conn *c)
{
    return mk_memory_link_causes(j->mem, c, j->tenant, j->s1, (uint32_t)j->n1, j->d1, (uint32_t)j->n2, &j->result);
}

static int w_link_prune(struct job *j, struct mk_store_conn *c)
{
    double minc, older;
    if (!opt_num(j->body, "min_confidence", 0.1, &minc, &j->err) ||
        !opt_num(j->body, "older_than_days", 0, &older, &j->err))
        return MK_EINVAL;
    if (!(older >= 0 && older <= 36500)) {
        mk_buf_printf(&j->err, "older_than_days must be from 0 to 36500");
        return MK_EINVAL;
    }
    int64_t pruned = 0;
    int rc = mk_memory_link_prune(j->mem, c, j->tenant, minc, (int64_t)(older * 86400000.0), &pruned);
    if (rc == 0) {
        j->result = json_object_new_object();
        json_object_object_add(j->result, "pruned", json_object_new_int64(pruned));
    }
    return rc;
}

/* ---- history ------------------------------------------------------------------------- */

static int append_one(struct job *j, struct mk_store_conn *c, json_object *msg, json_object *out)
{
    const char *role, *content, *user;
    if (!json_object_is_type(msg, json_type_object)) {
        mk_buf_printf(&j->err, "each message must be an object with role and content");
        return MK_EINVAL;
    }
    if (!opt_str(msg, "role", &role, &j->err) || !opt_str(msg, "content", &content, &j->err) ||
        !opt_str(j->body, "user", &user, &j->err))
        return MK_EINVAL;
    int64_t id;
    int tokens;
    int rc = mk_memory_history_append(j->mem, c, j->tenant, j->s1, user, role, content, &id, &tokens, &j->err);
    if (rc == 0) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "tokens", json_object_new_int(tokens));
        json_object_array_add(out, o);
    }
    return rc;
}

static int w_history_append(struct job *j, struct mk_store_conn *c)
{
    json_object *msgs = member(j->body, "messages"), *out = json_object_new_array();
    int rc = 0;
    if (msgs) {
        if (!json_object_is_type(msgs, json_type_array) || json_object_array_length(msgs) == 0 ||
            json_object_array_length(msgs) > MK_MAX_MESSAGES) {
            mk_buf_printf(&j->err, "messages must be a non-empty array of at most %d", MK_MAX_MESSAGES);
            rc = MK_EINVAL;
        }
        /* one transaction: a batch lands whole or not at all */
        if (rc == 0) rc = mk_store_begin(c);
        for (size_t i = 0; rc == 0 && i < json_object_array_length(msgs); i++)
            rc = append_one(j, c, json_object_array_get_idx(msgs, i), out);
        if (rc == 0) rc = mk_store_commit(c);
        else if (mk_store_in_transaction(c)) mk_store_rollback(c);
    } else {
        rc = append_one(j, c, j->body, out);
    }
    if (rc) {
        json_object_put(out);
        return rc;
    }
    j->result = json_object_new_object();
    json_object_object_add(j->result, "session", json_object_new_string(j->s1));
    json_object_object_add(j->result, "data", out);
    j->ok_status = 201;
    return 0;
}

static int w_history_window(struct job *j, struct mk_store_conn *c)
{
    return mk_memory_history_window(j->mem, c, j->tenant, j->s1, (uint32_t)j->n1, &j->result);
}

/* ---- erasure and retention ----------------------------------------------------------- */

static void erase_kv_done(int rc, json_object *v, void *arg)
{
    struct job *j = arg;
    j->am->inflight--;
    json_object *erased = member(j->result, "erased");
    json_object_object_add(erased, "kv_sessions", json_object_new_int64(v ? json_object_get_int64(member(v, "sessions")) : 0));
    if (rc) json_object_object_add(j->result, "kv_error", json_object_new_string(mk_strerror(rc)));
    send_json(j->ctx, 200, j->result);
    job_free(j);
}

static void erase_after(struct job *j)
{
    /* the store part is done; now the live sessions in kv (gone once the app stops).
     * The in-process kv calls back before returning, freeing j: count first. */
    struct api_mem *am = j->am;
    am->inflight++;
    int rc = am->app->stopping ? MK_EUNAVAILABLE : mk_memory_erase_sessions(j->mem, j->tenant, j->extra, erase_kv_done, j);
    if (rc) {
        am->inflight--;
        json_object_object_add(j->result, "kv_error", json_object_new_string(mk_strerror(rc)));
        send_json(j->ctx, 200, j->result);
        job_free(j);
    }
}

static int w_erase(struct job *j, struct mk_store_conn *c)
{
    const char *user;
    if (!opt_str(j->body, "user", &user, &j->err)) return MK_EINVAL;
    if (!user || !*user) {
        mk_buf_printf(&j->err, "user is required");
        return MK_EINVAL;
    }
    return mk_memory_erase_user(j->mem, c, j->tenant, user, j->principal, &j->result, &j->extra);
}

static int w_sweep(struct job *j, struct mk_store_conn *c) { return mk_memory_sweep(j->mem, c, &j->result); }

static int w_stats(struct job *j, struct mk_store_conn *c)
{
    static const char *const tables[MK_MEMORY_KIND_COUNT] = {"memory_episodes", "memory_skills", "memory_facts",
                                                              "memory_links", "memory_history"};
    j->result = json_object_new_object();
    for (int k = 0; k < MK_MEMORY_KIND_COUNT; k++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE tenant = ?", tables[k]);
        struct mk_store_stmt *st;
        int rc = mk_store_prepare(c, sql, &st);
        if (rc) return rc;
        mk_store_bind_cstr(st, 1, j->tenant);
        int64_t n = mk_store_step(st) == MK_STORE_ROW ? mk_store_column_int64(st, 0) : 0;
        mk_store_stmt_done(st);
        json_object_object_add(j->result, mk_memory_kind_name((enum mk_memory_kind)k), json_object_new_int64(n));
    }
    json_object_object_add(j->result, "embedder", json_object_new_string(mk_memory_embedder_name(j->mem)));
    return 0;
}

/* ---- sessions (kv, on the loop) ------------------------------------------------------ */

struct kv_call {
    mk_ctx *ctx;
    struct api_mem *am;
    int ok_status;
    /* session creation with a user: registered on the pool first */
    const char *tenant, *user, *agent;
    uint32_t ttl_ms;
    json_object *state;
    char id[24];
};

static void kv_answer(int rc, json_object *v, void *arg)
{
    struct kv_call *k = arg;
    k->am->inflight--;
    if (rc) mk_api_fail(k->ctx, rc, rc == MK_ENOTFOUND ? "no such session (it may have expired)" : NULL);
    else send_json(k->ctx, k->ok_status, v);
    free(k);
}

static struct kv_call *kv_call_new(mk_ctx *ctx, struct api_mem *am, int ok_status)
{
    struct kv_call *k = calloc(1, sizeof *k);
    if (!k) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return NULL;
    }
    k->ctx = ctx;
    k->am = am;
    k->ok_status = ok_status;
    am->inflight++;
    return k;
}

/* Finishes a kv call that failed to start (the callback will not run). */
static void kv_started(struct kv_call *k, int rc)
{
    if (rc == 0) return;
    k->am->inflight--;
    mk_api_fail(k->ctx, rc, rc == MK_EINVAL ? "invalid session, agent or state" : NULL);
    free(k);
}

static int register_work(struct mk_store_conn *c, void *arg)
{
    struct kv_call *k = arg;
    return mk_memory_session_register(k->am->mem, c, k->tenant, k->id, k->user, k->agent);
}

static void register_done(int status, void *arg)
{
    struct kv_call *k = arg;
    if (!status && k->am->app->stopping) status = MK_EUNAVAILABLE; /* the kv is gone */
    if (status) {
        k->am->inflight--;
        mk_api_fail(k->ctx, status, NULL);
        free(k);
        return;
    }
    kv_started(k, mk_memory_session_create_id(k->am->mem, k->tenant, k->id, k->user, k->agent, k->ttl_ms, k->state,
                                              kv_answer, k));
}

static void h_session_create(mk_ctx *ctx, struct api_mem *am)
{
    json_object *b = ctx->body;
    mk_buf err = MK_BUF_INIT;
    const char *user, *agent;
    double ttl_s;
    json_object *state = member(b, "state");
    if (!opt_str(b, "user", &user, &err) || !opt_str(b, "agent", &agent, &err) ||
        !opt_num(b, "ttl_s", 0, &ttl_s, &err) || (state && !json_object_is_type(state, json_type_object)) ||
        !(ttl_s == 0 || (ttl_s >= 60 && ttl_s <= 7 * 24 * 3600))) {
        if (!err.len) mk_buf_printf(&err, "state must be an object and ttl_s between 60 and 604800");
        mk_api_fail(ctx, MK_EINVAL, err.data);
        mk_buf_release(&err);
        return;
    }
    mk_buf_release(&err);
    struct kv_call *k = kv_call_new(ctx, am, 201);
    if (!k) return;
    k->tenant = ctx->tenant;
    k->user = user;
    k->agent = agent;
    k->ttl_ms = (uint32_t)(ttl_s * 1000);
    k->state = state;
    mk_memory_session_new_id(k->id);
    if (user && *user) {
        /* recorded in the store first, so erasure can always find the session */
        int rc = mk_store_submit(am->store, am->app->loop, register_work, register_done, k);
        if (rc) kv_started(k, rc);
        return;
    }
    kv_started(k, mk_memory_session_create_id(am->mem, ctx->tenant, k->id, NULL, agent, k->ttl_ms, state, kv_answer, k));
}

/* ---- dispatch ---------------------------------------------------------------------------- */

#define MAX_SEGS 4

struct route_in {
    mk_ctx *ctx;
    struct api_mem *am;
    const char *seg[MAX_SEGS];
    int nseg;
};

static bool parse_id(mk_ctx *ctx, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v <= 0) {
        mk_api_fail(ctx, MK_ENOTFOUND, "no such id");
        return false;
    }
    *out = v;
    return true;
}

static bool need_body(mk_ctx *ctx)
{
    if (mk_api_parse_body(ctx) != 0) return false; /* answered */
    if (!json_object_is_type(ctx->body, json_type_object)) {
        mk_api_fail(ctx, MK_EINVAL, "the body must be a JSON object");
        return false;
    }
    return true;
}

static void run_job(struct route_in *r, job_fn fn, bool body)
{
    if (body && !need_body(r->ctx)) return;
    struct job *j = job_new(r->ctx, r->am, fn);
    if (j) job_submit(j);
}

static void h_episodes(struct route_in *r, const char *m)
{
    mk_ctx *ctx = r->ctx;
    if (r->nseg == 1 && !strcmp(m, "POST")) return run_job(r, w_episode_add, true);
    if (r->nseg == 2 && !strcmp(r->seg[1], "search") && !strcmp(m, "POST")) return run_job(r, w_episode_search, true);
    if (r->nseg == 1 && !strcmp(m, "GET")) {
        long limit;
        if (!qparam_long(ctx, "limit", 20, 1, MK_MEMORY_MAX_K, &limit)) return;
        struct job *j = job_new(ctx, r->am, w_episode_list);
        if (!j) return;
        j->n1 = limit;
        j->s1 = qparam(ctx, "user");
        j->s2 = qparam(ctx, "session");
        j->s3 = qparam(ctx, "tag");
        j->flag = truthy(qparam(ctx, "success"));
        return job_submit(j);
    }
    if (r->nseg == 2 && (!strcmp(m, "GET") || !strcmp(m, "DELETE"))) {
        int64_t id;
        if (!parse_id(ctx, r->seg[1], &id)) return;
        struct job *j = job_new(ctx, r->am, !strcmp(m, "GET") ? w_episode_get : w_episode_delete);
        if (!j) return;
        j->id = id;
        return job_submit(j);
    }
    mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
}

static void h_sessions(struct route_in *r, const char *m)
{
    mk_ctx *ctx = r->ctx;
    struct api_mem *am = r->am;
    if (r->nseg == 1 && !strcmp(m, "POST")) {
        if (need_body(ctx)) h_session_create(ctx, am);
        return;
    }
    if (r->nseg == 2 && (!strcmp(m, "GET") || !strcmp(m, "DELETE"))) {
        struct kv_call *k = kv_call_new(ctx, am, 200);
        if (!k) return;
        int rc = !strcmp(m, "GET") ? mk_memory_session_get(am->mem, ctx->tenant, r->seg[1], kv_answer, k)
                                   : mk_memory_session_delete(am->mem, ctx->tenant, r->seg[1], kv_answer, k);
        return kv_started(k, rc);
    }
    if (r->nseg == 3 && !strcmp(r->seg[2], "state") && (!strcmp(m, "PUT") || !strcmp(m, "PATCH"))) {
        if (!need_body(ctx)) return;
        struct kv_call *k = kv_call_new(ctx, am, 200);
        if (!k) return;
        return kv_started(k, mk_memory_session_put_state(am->mem, ctx->tenant, r->seg[1], ctx->body, kv_answer, k));
    }
    if (r->nseg == 3 && !strcmp(r->seg[2], "history")) {
        if (!strcmp(m, "POST")) {
            if (!need_body(ctx)) return;
            struct job *j = job_new(ctx, am, w_history_append);
            if (!j) return;
            j->s1 = r->seg[1];
            return job_submit(j);
        }
        if (!strcmp(m, "GET")) {
            long budget;
            if (!qparam_long(ctx, "budget", 2000, 16, 10000000, &budget)) return;
            struct job *j = job_new(ctx, am, w_history_window);
            if (!j) return;
            j->s1 = r->seg[1];
            j->n1 = budget;
            return job_submit(j);
        }
    }
    mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
}

static void h_agents(struct route_in *r, const char *m)
{
    mk_ctx *ctx = r->ctx;
    struct api_mem *am = r->am;
    if (r->nseg == 3 && !strcmp(r->seg[2], "state")) {
        if (!strcmp(m, "GET")) {
            struct kv_call *k = kv_call_new(ctx, am, 200);
            if (!k) return;
            return kv_started(k, mk_memory_agent_get(am->mem, ctx->tenant, r->seg[1], kv_answer, k));
        }
        if (!strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
            if (!need_body(ctx)) return;
            struct kv_call *k = kv_call_new(ctx, am, 200);
            if (!k) return;
            return kv_started(k, mk_memory_agent_put(am->mem, ctx->tenant, r->seg[1], ctx->body, kv_answer, k));
        }
    }
    mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
}

static void h_skills(struct route_in *r, const char *m)
{
    mk_ctx *ctx = r->ctx;
    if (r->nseg == 1 && !strcmp(m, "POST")) return run_job(r, w_skill_put, true);
    if (r->nseg == 2 && !strcmp(r->seg[1], "search") && !strcmp(m, "POST")) return run_job(r, w_skill_search, true);
    if (r->nseg == 2 && !strcmp(r->seg[1], "promote") && !strcmp(m, "POST")) return run_job(r, w_skill_promote, true);
    if ((r->nseg == 2 && !strcmp(m, "GET")) || (r->nseg == 3 && !strcmp(r->seg[2], "uses") && !strcmp(m, "POST"))) {
        bool use = r->nseg == 3;
        if (use && !need_body(ctx)) return;
        struct job *j = job_new(ctx, r->am, use ? w_skill_use : w_skill_get);
        if (!j) return;
        j->s1 = r->seg[1];
        return job_submit(j);
    }
    mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
}

static void h_facts(struct route_in *r, const char *m)
{
    mk_ctx *ctx = r->ctx;
    if (r->nseg == 1 && !strcmp(m, "POST")) return run_job(r, w_fact_assert, true);
    if (r->nseg == 2 && !strcmp(r->seg[1], "search") && !strcmp(m, "POST")) return run_job(r, w_fact_search, true);
    if (r->nseg == 1 && !strcmp(m, "GET")) {
        long limit;
        if (!qparam_long(ctx, "limit", 100, 1, MK_MEMORY_MAX_K, &limit)) return;
        struct job *j = job_new(ctx, r->am, w_fact_list);
        if (!j) return;
        j->s1 = qparam(ctx, "subject");
        j->flag = truthy(qparam(ctx, "history"));
        j->n1 = limit;
        return job_submit(j);
    }
    if (r->nseg == 3 && !strcmp(r->seg[2], "retract") && !strcmp(m, "POST")) {
        int64_t id;
        if (!parse_id(ctx, r->seg[1], &id)) return;
        struct job *j = job_new(ctx, r->am, w_fact_retract);
        if (!j) return;
        j->id = id;
        return job_submit(j);
    }
    mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
}

static void h_links(struct route_in *r, const char *m)
{
    mk_ctx *ctx = r->ctx;
    if (r->nseg == 1 && !strcmp(m, "POST")) return run_job(r, w_link_add, true);
    if (r->nseg == 2 && !strcmp(r->seg[1], "prune") && !strcmp(m, "POST")) return run_job(r, w_link_prune, true);
    if (r->nseg == 2 && !strcmp(r->seg[1], "causes") && !strcmp(m, "GET")) {
        long depth, limit;
        const char *effect = qparam(ctx, "effect"), *mins = qparam(ctx, "min_confidence");
        if (!effect || !*effect) {
            mk_api_fail(ctx, MK_EINVAL, "query parameter effect is required");
            return;
        }
        if (!qparam_long(ctx, "depth", 2, 1, MK_MEMORY_MAX_CAUSE_DEPTH, &depth) ||
            !qparam_long(ctx, "limit", 10, 1, MK_MEMORY_MAX_K, &limit))
            return;
        double minc = 0;
        if (mins) {
            char *end;
            minc = strtod(mins, &end);
            if (*end || end == mins || !(minc >= 0 && minc <= 1)) {
                mk_api_fail(ctx, MK_EINVAL, "min_confidence must be a number from 0 to 1");
                return;
            }
        }
        struct job *j = job_new(ctx, r->am, w_link_causes);
        if (!j) return;
        j->s1 = effect;
        j->n1 = depth;
        j->n2 = limit;
        j->d1 = minc;
        return job_submit(j);
    }
    mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
}

static void h_erase(struct route_in *r, const char *m)
{
    if (strcmp(m, "POST") != 0 || r->nseg != 1) {
        mk_api_fail_code(r->ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
        return;
    }
    if (!allowed(r->ctx, MK_PERM_ADMIN_USERS) || !need_body(r->ctx)) return;
    struct job *j = job_new(r->ctx, r->am, w_erase);
    if (!j) return;
    j->after = erase_after;
    job_submit(j);
}

static void h_sweep(struct route_in *r, const char *m)
{
    if (strcmp(m, "POST") != 0 || r->nseg != 1) {
        mk_api_fail_code(r->ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
        return;
    }
    if (allowed(r->ctx, MK_PERM_ADMIN_USERS)) run_job(r, w_sweep, false);
}

static void h_stats(struct route_in *r, const char *m)
{
    if (strcmp(m, "GET") != 0 || r->nseg != 1) {
        mk_api_fail_code(r->ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
        return;
    }
    run_job(r, w_stats, false);
}

static const struct {
    const char *first;
    void (*fn)(struct route_in *r, const char *method);
} sections[] = {
    {"episodes", h_episodes}, {"sessions", h_sessions}, {"agents", h_agents}, {"skills", h_skills},
    {"facts", h_facts},       {"links", h_links},       {"erase", h_erase},   {"sweep", h_sweep},
    {"stats", h_stats},
};

void mk_api_memory(mk_ctx *ctx)
{
    static const char prefix[] = "/api/v1/memory/";
    mk_slice p = ctx->req->path;
    struct route_in r = {.ctx = ctx};
    size_t i = sizeof prefix - 1;
    while (i < p.len) {
        size_t j = i;
        while (j < p.len && p.ptr[j] != '/') j++;
        if (r.nseg == MAX_SEGS || j == i) {
            mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "unknown path");
            return;
        }
        r.seg[r.nseg] = decode(ctx->pool, p.ptr + i, j - i, false);
        if (!r.seg[r.nseg]) {
            mk_api_fail(ctx, MK_EINVAL, "bad percent-encoding in the path");
            return;
        }
        r.nseg++;
        i = j + 1;
    }
    int section = -1;
    for (size_t s = 0; r.nseg && s < sizeof sections / sizeof sections[0]; s++)
        if (!strcmp(r.seg[0], sections[s].first)) section = (int)s;
    if (section < 0) {
        mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "unknown path");
        return;
    }
    mk_buf why = MK_BUF_INIT;
    r.am = memory_service(ctx, &why);
    mk_buf_release(&why);
    if (!r.am) {
        mk_api_fail(ctx, MK_EUNAVAILABLE, "agent memory is not available (see the server log)");
        return;
    }
    const char *method = strcmp(ctx->req->method, "HEAD") == 0 ? "GET" : ctx->req->method;
    sections[section].fn(&r, method);
}
