/*
 * kb_api: the knowledge-base API, /api/v1/kb/... (one handler, dispatching on the path):
 *
 *   GET    /api/v1/kb/documents[?agent=A]            documents in the store   kb.read
 *   POST   /api/v1/kb/documents                      add content or paths     kb.manage
 *          {"name":"vpn.md","content":"..."}  or  {"name":"x.pdf","content_base64":"..."}
 *          or {"paths":["/srv/kb"]} (server paths: also admin.config), with optional
 *          "agent", "lang", "format", "force"
 *   DELETE /api/v1/kb/documents/ID[?lang=&agent=]    remove a document       kb.manage
 *   POST   /api/v1/kb/reindex {"force":bool}         re-read every source    kb.manage
 *   POST   /api/v1/kb/reload                         apply store changes now kb.manage
 *   GET    /api/v1/kb/search?q=...&k=&lang=&agent=&mode=&per_doc=           kb.read
 *   POST   /api/v1/kb/search {"query","k","lang","agent","mode","per_doc"}  kb.read
 *   GET    /api/v1/kb/stats                                                 kb.read
 *
 * The library (documents in the store, index in memory) is the process's one copy,
 * loaded on a worker thread at mk_kb_api_start() or at the first request; requests
 * arriving meanwhile wait for the load. Every operation runs on libuv's worker pool
 * (ingestion parses and embeds; searches embed the query), and answers from the loop.
 * What other processes (`mayak kb add`) write reaches the index within SYNC_EVERY_MS,
 * at once on SIGHUP or POST /reload. The app stopping is noticed by a prepare handle,
 * which waits for work in flight and then frees the library.
 */
#include <json-c/json.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "api/kb_api.h"
#include "cache/mk_cache.h"
#include "auth/mk_auth.h"
#include "auth/mk_roles.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "kb/mk_kb_store.h"
#include "store/mk_store.h"

/* How often the index looks for changes other processes made: one small SELECT. */
#define SYNC_EVERY_MS 1000
/* Requests that may wait for the first load; more get 503 (a load takes seconds). */
#define MAX_PENDING 1024
/* Path segments after /api/v1/kb/. */
#define MAX_SEGS 3

enum state { LOADING, READY, FAILED };

struct api_kb {
    mk_app *app;
    struct mk_store *store;
    struct mk_kb_lib *lib;
    enum state state;
    uv_signal_t hup;
    uv_prepare_t watch;
    uv_timer_t tick;
    int inflight;              /* worker jobs not yet finished (the load included) */
    int holds;                 /* mk_kb_api_hold() not yet released: the close waits */
    bool syncing, closing;
    int handles_open;
    mk_ctx **pending;
    size_t npending;
    mk_buf load_err;
};

static struct api_kb *g_kb;    /* one app per process (mk_app_run) */

struct mk_kb_lib *mk_kb_api_lib(void) { return g_kb && g_kb->state == READY ? g_kb->lib : NULL; }

struct mk_kb_lib *mk_kb_api_hold(void)
{
    struct mk_kb_lib *lib = mk_kb_api_lib();
    if (!lib || g_kb->closing)
        return NULL;
    g_kb->holds++;
    return lib;
}

void mk_kb_api_unhold(void)
{
    if (g_kb && g_kb->holds > 0)
        g_kb->holds--;
}

/* --- helpers -------------------------------------------------------------------------- */

static void send_json(mk_ctx *ctx, int status, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                      &len);
    mk_api_send(ctx, status, "application/json", s, len);
}

static bool allowed(mk_ctx *ctx, enum mk_perm p)
{
    if (ctx->principal_rec && mk_principal_can(ctx->principal_rec, p))
        return true;
    mk_api_fail_code(ctx, MK_EFORBIDDEN, "forbidden", "your role may not do this");
    return false;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into the pool ('+' as space when form). NULL on a bad escape
 * or a NUL byte. */
static char *decode(mk_pool *pool, const char *s, size_t n, bool form)
{
    char *out = mk_pool_alloc(pool, n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return NULL;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return NULL;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o++] = form && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The decoded value of query parameter `name`; NULL when absent; *bad on a bad escape. */
static const char *query_param(mk_ctx *ctx, const char *name, bool *bad)
{
    mk_slice q = ctx->req->query;
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < q.len) {
        size_t j = i;
        while (j < q.len && q.ptr[j] != '&')
            j++;
        if (j - i > nl && memcmp(q.ptr + i, name, nl) == 0 && q.ptr[i + nl] == '=') {
            char *v = decode(ctx->pool, q.ptr + i + nl + 1, j - i - nl - 1, true);
            if (!v)
                *bad = true;
            return v;
        }
        i = j + 1;
    }
    return NULL;
}

static bool parse_count(const char *s, long lo, long hi, long *out)
{
    if (!s)
        return true;
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* --- jobs on the worker pool ------------------------------------------------------------- */

enum op { OP_LIST, OP_ADD_PATHS, OP_ADD_DATA, OP_REMOVE, OP_REINDEX, OP_RELOAD, OP_SEARCH, OP_STATS, OP_SYNC };

struct job {
    uv_work_t w;
    struct api_kb *ak;
    mk_ctx *ctx;               /* NULL for background syncs */
    enum op op;
    char *s1, *s2, *s3;        /* query / id / name; lang; agent (heap copies) */
    char *data;                /* content (heap) */
    size_t len;
    char **paths;
    size_t npaths;
    enum mk_kb_format format;
    bool force;
    struct mk_kb_search_opts so;
    char mode[8];
    int rc;
    int status;
    json_object *result;
    mk_buf err;
};

static void job_free(struct job *j)
{
    free(j->s1);
    free(j->s2);
    free(j->s3);
    free(j->data);
    for (size_t i = 0; i < j->npaths; i++)
        free(j->paths[i]);
    free(j->paths);
    json_object_put(j->result);
    mk_buf_release(&j->err);
    free(j);
}

static json_object *report_json(const struct mk_kb_report *r)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "files", json_object_new_int64((int64_t)r->files));
    json_object_object_add(o, "added", json_object_new_int64((int64_t)r->added));
    json_object_object_add(o, "updated", json_object_new_int64((int64_t)r->updated));
    json_object_object_add(o, "unchanged", json_object_new_int64((int64_t)r->unchanged));
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)r->skipped));
    json_object_object_add(o, "failed", json_object_new_int64((int64_t)r->failed));
    json_object_object_add(o, "chunks", json_object_new_int64((int64_t)r->chunks));
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)r->bytes));
    json_object_object_add(o, "items", r->items ? json_object_get(r->items) : json_object_new_array());
    return o;
}

static json_object *stats_json(struct mk_kb_lib *lib)
{
    mk_kb *kb = mk_kb_lib_kb(lib);
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "documents", json_object_new_int64((int64_t)mk_kb_document_count(kb)));
    json_object_object_add(o, "chunks", json_object_new_int64((int64_t)mk_kb_chunk_count(kb)));
    json_object_object_add(o, "generation", json_object_new_int64((int64_t)mk_kb_lib_generation(lib)));
    json_object_object_add(o, "vectors", json_object_new_boolean(mk_kb_has_vectors(kb)));
    return o;
}

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct mk_kb_lib *lib = j->ak->lib;
    struct mk_kb_report rep = {0};
    struct mk_kb_add_opts ao = {.agent = j->s3, .lang = j->s2, .force = j->force};
    j->status = 200;
    switch (j->op) {
    case OP_LIST:
        j->rc = mk_kb_lib_list(lib, j->s3, &j->result, &j->err);
        if (!j->rc) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "object", json_object_new_string("list"));
            json_object_object_add(o, "data", j->result);
            j->result = o;
        }
        break;
    case OP_ADD_PATHS:
    case OP_ADD_DATA:
    case OP_REINDEX:
        rep.items = json_object_new_array();
        if (j->op == OP_ADD_DATA) {
            j->rc = mk_kb_lib_add_data(lib, j->s1, j->data, j->len, j->format, &ao, &rep, &j->err);
        } else if (j->op == OP_REINDEX) {
            j->rc = mk_kb_lib_reindex(lib, j->force, &rep, &j->err);
        } else {
            for (size_t i = 0; i < j->npaths && !j->rc; i++)
                j->rc = mk_kb_lib_add_path(lib, j->paths[i], &ao, &rep, &j->err);
        }
        if (!j->rc) {
            j->result = report_json(&rep);
            j->status = rep.added + rep.updated > 0 && j->op != OP_REINDEX ? 201 : 200;
        }
        json_object_put(rep.items);
        break;
    case OP_REMOVE: {
        size_t n = 0;
        j->rc = mk_kb_lib_remove(lib, j->s1, j->s2, j->s3, &n, &j->err);
        if (!j->rc) {
            j->result = json_object_new_object();
            json_object_object_add(j->result, "id", json_object_new_string(j->s1));
            json_object_object_add(j->result, "removed", json_object_new_int64((int64_t)n));
        }
        break;
    }
    case OP_RELOAD:
    case OP_SYNC: {
        bool changed = false;
        j->rc = mk_kb_lib_sync(lib, &changed, &j->err);
        if (!j->rc && j->op == OP_RELOAD) {
            j->result = stats_json(lib);
            json_object_object_add(j->result, "changed", json_object_new_boolean(changed));
        }
        break;
    }
    case OP_STATS:
        j->result = stats_json(lib);
        break;
    case OP_SEARCH:
        j->result = mk_kb_search_json(mk_kb_lib_kb(lib), j->s1, &j->so, true, &j->rc);
        if (j->result && !j->rc)
            json_object_object_add(j->result, "mode", json_object_new_string(j->mode));
        break;
    }
    if (!j->rc && !j->result && j->op != OP_SYNC)
        j->rc = MK_ENOMEM;
}

static void job_after(uv_work_t *w, int status)
{
    struct job *j = w->data;
    j->ak->inflight--;
    if (j->op == OP_SYNC) {
        j->ak->syncing = false;
        if (j->rc)
            mk_log(MK_LOG_WARN, "kb_sync_failed", "error", j->err.data ? j->err.data : mk_strerror(j->rc), NULL);
    } else if (status == UV_ECANCELED) {
        mk_api_fail(j->ctx, MK_ECANCELLED, NULL);
    } else if (j->rc) {
        mk_api_fail(j->ctx, j->rc, j->err.len ? j->err.data : NULL);
    } else {
        send_json(j->ctx, j->status, j->result);
    }
    job_free(j);
}

/* Queues the job; false when that failed (the request is answered, the job freed). */
static bool submit(struct job *j)
{
    j->w.data = j;
    int rc = uv_queue_work(j->ak->app->loop, &j->w, job_work, job_after);
    if (rc) {
        if (j->ctx)
            mk_api_fail(j->ctx, MK_EUNAVAILABLE, "cannot queue work");
        job_free(j);
        return false;
    }
    j->ak->inflight++;
    return true;
}

static struct job *job_new(struct api_kb *ak, mk_ctx *ctx, enum op op)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        if (ctx)
            mk_api_fail(ctx, MK_ENOMEM, NULL);
        return NULL;
    }
    j->ak = ak;
    j->ctx = ctx;
    j->op = op;
    return j;
}

/* Copies an optional string into the job; false (and answers) when out of memory. */
static bool copy(mk_ctx *ctx, char **dst, const char *s)
{
    if (!s)
        return true;
    *dst = strdup(s);
    if (*dst)
        return true;
    mk_api_fail(ctx, MK_ENOMEM, NULL);
    return false;
}

/* --- request handlers ----------------------------------------------------------------- */

static const char *json_str(json_object *o, const char *key, bool *bad)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    if (!json_object_is_type(v, json_type_string)) {
        *bad = true;
        return NULL;
    }
    return json_object_get_string(v);
}

static bool get_bool(json_object *o, const char *key, bool *bad)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return false;
    if (!json_object_is_type(v, json_type_boolean)) {
        *bad = true;
        return false;
    }
    return json_object_get_boolean(v);
}

static void h_search(struct api_kb *ak, mk_ctx *ctx, bool post)
{
    bool bad = false;
    const char *q, *k, *lang, *agent, *mode, *per_doc;
    long kk = 5, pd = 0;
    json_object *b = NULL;
    if (post) {
        if (mk_api_parse_body(ctx))
            return;
        b = ctx->body;
        if (!json_object_is_type(b, json_type_object)) {
            mk_api_fail(ctx, MK_EINVAL, "the body must be a JSON object");
            return;
        }
        json_object *v;
        q = json_str(b, "query", &bad);
        lang = json_str(b, "lang", &bad);
        agent = json_str(b, "agent", &bad);
        mode = json_str(b, "mode", &bad);
        if (json_object_object_get_ex(b, "k", &v)) {
            if (!json_object_is_type(v, json_type_int)) bad = true;
            else kk = (long)json_object_get_int64(v);
        }
        if (json_object_object_get_ex(b, "per_doc", &v)) {
            if (!json_object_is_type(v, json_type_int)) bad = true;
            else pd = (long)json_object_get_int64(v);
        }
        k = per_doc = NULL;
    } else {
        q = query_param(ctx, "q", &bad);
        k = query_param(ctx, "k", &bad);
        lang = query_param(ctx, "lang", &bad);
        agent = query_param(ctx, "agent", &bad);
        mode = query_param(ctx, "mode", &bad);
        per_doc = query_param(ctx, "per_doc", &bad);
    }
    if (bad || !parse_count(k, 1, MK_KB_MAX_K, &kk) || !parse_count(per_doc, 0, MK_KB_MAX_K, &pd) || kk < 1 ||
        kk > MK_KB_MAX_K || pd < 0 || pd > MK_KB_MAX_K) {
        mk_api_fail(ctx, MK_EINVAL, "bad search parameters (q string, k 1-100, per_doc 0-100, lang, agent, mode)");
        return;
    }
    if (!q || !*q) {
        mk_api_fail(ctx, MK_EINVAL, "a query is required (q=... or {\"query\": ...})");
        return;
    }
    if (strlen(q) > MK_KB_MAX_QUERY_BYTES) {
        mk_api_fail(ctx, MK_ETOOBIG, "the query is longer than 16 KB");
        return;
    }
    struct job *j = job_new(ak, ctx, OP_SEARCH);
    if (!j)
        return;
    if (!mode || !strcmp(mode, "hybrid")) j->so.mode = MK_KB_HYBRID;
    else if (!strcmp(mode, "bm25")) j->so.mode = MK_KB_BM25;
    else if (!strcmp(mode, "vector")) j->so.mode = MK_KB_VECTOR;
    else {
        job_free(j);
        mk_api_fail(ctx, MK_EINVAL, "mode is hybrid, bm25 or vector");
        return;
    }
    snprintf(j->mode, sizeof j->mode, "%s", mode ? mode : "hybrid");
    if (!copy(ctx, &j->s1, q) || !copy(ctx, &j->s2, lang) || !copy(ctx, &j->s3, agent)) {
        job_free(j);
        return;
    }
    j->so.k = (size_t)kk;
    j->so.max_per_doc = (unsigned)pd;
    j->so.lang = j->s2;
    j->so.agent = j->s3;
    submit(j);
}

static void h_add(struct api_kb *ak, mk_ctx *ctx)
{
    if (!allowed(ctx, MK_PERM_KB_MANAGE) || mk_api_parse_body(ctx))
        return;
    json_object *b = ctx->body, *paths = NULL;
    if (!json_object_is_type(b, json_type_object)) {
        mk_api_fail(ctx, MK_EINVAL, "the body must be a JSON object");
        return;
    }
    bool bad = false;
    const char *name = json_str(b, "name", &bad), *content = json_str(b, "content", &bad);
    const char *b64 = json_str(b, "content_base64", &bad), *format = json_str(b, "format", &bad);
    const char *lang = json_str(b, "lang", &bad), *agent = json_str(b, "agent", &bad);
    bool force = get_bool(b, "force", &bad);
    json_object_object_get_ex(b, "paths", &paths);
    if (bad) {
        mk_api_fail(ctx, MK_EINVAL, "name, content, content_base64, format, lang and agent are strings; force a bool");
        return;
    }
    enum mk_kb_format f = MK_KB_FORMAT_UNKNOWN;
    if (format && (f = mk_kb_format_parse(format)) == MK_KB_FORMAT_UNKNOWN) {
        mk_api_fail(ctx, MK_EINVAL, "format is markdown, html, text or pdf");
        return;
    }
    struct job *j = NULL;
    if (paths) {
        /* Reading the server's files is an administrator's act, not a kb editor's. */
        if (!allowed(ctx, MK_PERM_ADMIN_CONFIG))
            return;
        size_t n = json_object_is_type(paths, json_type_array) ? json_object_array_length(paths) : 0;
        if (n == 0 || n > 256 || content || b64) {
            mk_api_fail(ctx, MK_EINVAL, "paths is a non-empty array of at most 256 server paths (without content)");
            return;
        }
        if (!(j = job_new(ak, ctx, OP_ADD_PATHS)))
            return;
        j->paths = calloc(n, sizeof *j->paths);
        if (!j->paths) {
            job_free(j);
            mk_api_fail(ctx, MK_ENOMEM, NULL);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(paths, i);
            if (!json_object_is_type(p, json_type_string) || !json_object_get_string(p)[0]) {
                job_free(j);
                mk_api_fail(ctx, MK_EINVAL, "every path is a non-empty string");
                return;
            }
            if (!(j->paths[j->npaths] = strdup(json_object_get_string(p)))) {
                job_free(j);
                mk_api_fail(ctx, MK_ENOMEM, NULL);
                return;
            }
            j->npaths++;
        }
    } else {
        if (!name || (!content == !b64)) {
            mk_api_fail(ctx, MK_EINVAL, "give name and one of content or content_base64 (or paths)");
            return;
        }
        if (!(j = job_new(ak, ctx, OP_ADD_DATA)))
            return;
        if (content) {
            json_object *cv;
            json_object_object_get_ex(b, "content", &cv);
            j->len = (size_t)json_object_get_string_len(cv);
            j->data = malloc(j->len + 1);
            if (j->data)
                memcpy(j->data, content, j->len + 1);
        } else {
            size_t cap = strlen(b64) / 4 * 3 + 3;
            j->data = malloc(cap);
            if (j->data && sodium_base642bin((unsigned char *)j->data, cap, b64, strlen(b64), " \r\n", &j->len, NULL,
                                             sodium_base64_VARIANT_ORIGINAL) != 0) {
                job_free(j);
                mk_api_fail(ctx, MK_EINVAL, "content_base64 is not valid base64");
                return;
            }
        }
        if (!j->data || !copy(ctx, &j->s1, name)) {
            bool no_memory = !j->data; /* copy() answered the request itself otherwise */
            job_free(j);
            if (no_memory) mk_api_fail(ctx, MK_ENOMEM, NULL);
            return;
        }
        j->format = f;
    }
    if (!copy(ctx, &j->s2, lang) || !copy(ctx, &j->s3, agent)) {
        job_free(j);
        return;
    }
    j->force = force;
    submit(j);
}

static void h_documents(struct api_kb *ak, mk_ctx *ctx, const char *method, char **seg, int nseg)
{
    bool bad = false;
    if (nseg == 1 && !strcmp(method, "GET")) {
        const char *agent = query_param(ctx, "agent", &bad);
        if (bad) {
            mk_api_fail(ctx, MK_EINVAL, "bad percent-encoding in the query");
            return;
        }
        struct job *j = job_new(ak, ctx, OP_LIST);
        if (j && copy(ctx, &j->s3, agent))
            submit(j);
        else if (j)
            job_free(j);
        return;
    }
    if (nseg == 1 && !strcmp(method, "POST")) {
        h_add(ak, ctx);
        return;
    }
    if (nseg == 2 && !strcmp(method, "DELETE")) {
        if (!allowed(ctx, MK_PERM_KB_MANAGE))
            return;
        const char *lang = query_param(ctx, "lang", &bad), *agent = query_param(ctx, "agent", &bad);
        if (bad) {
            mk_api_fail(ctx, MK_EINVAL, "bad percent-encoding in the query");
            return;
        }
        struct job *j = job_new(ak, ctx, OP_REMOVE);
        if (!j)
            return;
        if (!copy(ctx, &j->s1, seg[1]) || !copy(ctx, &j->s2, lang) || !copy(ctx, &j->s3, agent)) {
            job_free(j);
            return;
        }
        submit(j);
        return;
    }
    mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
}

static void dispatch(struct api_kb *ak, mk_ctx *ctx)
{
    static const char prefix[] = "/api/v1/kb/";
    mk_slice p = ctx->req->path;
    char *seg[MAX_SEGS];
    int nseg = 0;
    size_t i = sizeof prefix - 1;
    while (i < p.len) {
        size_t j = i;
        while (j < p.len && p.ptr[j] != '/')
            j++;
        if (nseg == MAX_SEGS || j == i) {
            mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "unknown path");
            return;
        }
        if (!(seg[nseg] = decode(ctx->pool, p.ptr + i, j - i, false))) {
            mk_api_fail(ctx, MK_EINVAL, "bad percent-encoding in the path");
            return;
        }
        nseg++;
        i = j + 1;
    }
    const char *method = strcmp(ctx->req->method, "HEAD") == 0 ? "GET" : ctx->req->method;
    if (nseg >= 1 && !strcmp(seg[0], "documents") && nseg <= 2) {
        h_documents(ak, ctx, method, seg, nseg);
        return;
    }
    if (nseg == 1 && !strcmp(seg[0], "search") && (!strcmp(method, "GET") || !strcmp(method, "POST"))) {
        h_search(ak, ctx, !strcmp(method, "POST"));
        return;
    }
    if (nseg == 1 && !strcmp(seg[0], "stats") && !strcmp(method, "GET")) {
        struct job *j = job_new(ak, ctx, OP_STATS);
        if (j)
            submit(j);
        return;
    }
    if (nseg == 1 && (!strcmp(seg[0], "reindex") || !strcmp(seg[0], "reload")) && !strcmp(method, "POST")) {
        if (!allowed(ctx, MK_PERM_KB_MANAGE))
            return;
        bool reindex = !strcmp(seg[0], "reindex"), bad = false, force = false;
        if (reindex && ctx->req->body.len) {
            if (mk_api_parse_body(ctx))
                return;
            force = get_bool(ctx->body, "force", &bad);
            if (bad) {
                mk_api_fail(ctx, MK_EINVAL, "force is a bool");
                return;
            }
        }
        struct job *j = job_new(ak, ctx, reindex ? OP_REINDEX : OP_RELOAD);
        if (j) {
            j->force = force;
            submit(j);
        }
        return;
    }
    bool known = nseg == 1 && (!strcmp(seg[0], "search") || !strcmp(seg[0], "stats") || !strcmp(seg[0], "reindex") ||
                               !strcmp(seg[0], "reload"));
    if (known)
        mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
    else
        mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "unknown path");
}

/* --- the service's life ------------------------------------------------------------------ */

static void handle_closed(uv_handle_t *h)
{
    struct api_kb *ak = h->data;
    if (--ak->handles_open == 0) {
        if (g_kb == ak)
            g_kb = NULL;
        mk_buf_release(&ak->load_err);
        free(ak->pending);
        free(ak);
    }
}

static void fail_pending(struct api_kb *ak)
{
    for (size_t i = 0; i < ak->npending; i++)
        mk_api_fail(ak->pending[i], MK_EUNAVAILABLE, "the knowledge base is not available (see the server log)");
    ak->npending = 0;
}

static void on_watch(uv_prepare_t *p)
{
    struct api_kb *ak = p->data;
    if (!ak->app->stopping || ak->inflight > 0 || ak->holds > 0 || ak->closing)
        return;
    ak->closing = true;
    fail_pending(ak);
    mk_kb_lib_free(ak->lib);
    ak->lib = NULL;
    mk_store_free(ak->store);
    ak->store = NULL;
    uv_prepare_stop(p);
    uv_timer_stop(&ak->tick);
    uv_signal_stop(&ak->hup);
    uv_close((uv_handle_t *)&ak->tick, handle_closed);
    uv_close((uv_handle_t *)&ak->hup, handle_closed);
    uv_close((uv_handle_t *)p, handle_closed);
}

static void start_sync(struct api_kb *ak)
{
    if (ak->state != READY || ak->syncing || ak->closing || ak->app->stopping)
        return;
    struct job *j = job_new(ak, NULL, OP_SYNC);
    if (!j)
        return;
    ak->syncing = submit(j);
}

static void on_tick(uv_timer_t *t) { start_sync(t->data); }

static void on_hup(uv_signal_t *s, int signum)
{
    (void)signum;
    struct api_kb *ak = s->data;
    mk_log(MK_LOG_INFO, "kb_reload", "reason", "SIGHUP", NULL);
    start_sync(ak);
}

static void load_work(uv_work_t *w)
{
    struct api_kb *ak = w->data;
    struct mk_kb_lib_options o = {.load = true};
    if (mk_kb_lib_open(ak->store, &o, &ak->lib, &ak->load_err) != 0)
        ak->lib = NULL;
}

/* Cached answers may quote a document that just changed or went away: every cache
 * of the process forgets them (the cache keeps no per-document index, and changes
 * are rare next to questions). Runs on the thread that changed the kb. */
static void kb_changed(void *arg, const char *const *doc_ids, size_t n)
{
    (void)arg;
    (void)doc_ids;
    if (n) mk_cache_invalidate_all();
}

static void load_done(uv_work_t *w, int status)
{
    struct api_kb *ak = w->data;
    free(w);
    ak->inflight--;
    if (status || !ak->lib) {
        ak->state = FAILED;
        mk_log(MK_LOG_ERROR, "kb_unavailable", "reason", ak->load_err.data ? ak->load_err.data : "load cancelled",
               NULL);
        fail_pending(ak);
        return;
    }
    ak->state = READY;
    mk_kb_on_change(mk_kb_lib_kb(ak->lib), kb_changed, NULL);
    char d[32], c[32];
    snprintf(d, sizeof d, "%zu", mk_kb_document_count(mk_kb_lib_kb(ak->lib)));
    snprintf(c, sizeof c, "%zu", mk_kb_chunk_count(mk_kb_lib_kb(ak->lib)));
    mk_log(MK_LOG_INFO, "kb_ready", "documents", d, "chunks", c, "store", mk_store_backend_name(ak->store), NULL);
    uv_timer_start(&ak->tick, on_tick, SYNC_EVERY_MS, SYNC_EVERY_MS);
    size_t n = ak->npending;
    ak->npending = 0;
    for (size_t i = 0; i < n; i++)
        dispatch(ak, ak->pending[i]);
}

static struct api_kb *service(mk_app *app)
{
    if (g_kb)
        return g_kb->app == app && !g_kb->closing ? g_kb : NULL;
    if (!app || !app->gen || app->stopping)
        return NULL;
    struct api_kb *ak = calloc(1, sizeof *ak);
    uv_work_t *w = calloc(1, sizeof *w);
    if (ak)
        ak->pending = calloc(MAX_PENDING, sizeof *ak->pending);
    if (!ak || !w || !ak->pending) {
        if (ak)
            free(ak->pending);
        free(ak);
        free(w);
        return NULL;
    }
    ak->app = app;
    mk_buf_init(&ak->load_err, 0);
    const struct mk_config *cfg = app->gen->config;
    mk_buf url = MK_BUF_INIT;
    if (cfg->store_url)
        mk_buf_append_str(&url, cfg->store_url);
    else
        mk_buf_printf(&url, "%s/mayak.db", cfg->data_dir);
    int rc = url.data ? mk_store_open(url.data, NULL, &ak->store, &ak->load_err) : MK_ENOMEM;
    mk_buf_release(&url);
    uv_prepare_init(app->loop, &ak->watch);
    uv_timer_init(app->loop, &ak->tick);
    uv_signal_init(app->loop, &ak->hup);
    ak->watch.data = ak->tick.data = ak->hup.data = ak;
    ak->handles_open = 3;
    uv_prepare_start(&ak->watch, on_watch);
    uv_unref((uv_handle_t *)&ak->tick);
    uv_signal_start(&ak->hup, on_hup, SIGHUP);
    uv_unref((uv_handle_t *)&ak->hup);
    g_kb = ak;
    w->data = ak;
    if (rc == 0)
        rc = uv_queue_work(app->loop, w, load_work, load_done);
    if (rc) {
        free(w);
        ak->state = FAILED;
        mk_log(MK_LOG_ERROR, "kb_unavailable", "error", mk_strerror(rc), "reason",
               ak->load_err.data ? ak->load_err.data : "", NULL);
        return ak;
    }
    ak->state = LOADING;
    ak->inflight++;
    return ak;
}

int mk_kb_api_start(mk_app *app)
{
    struct api_kb *ak = service(app);
    if (!ak)
        return MK_ENOMEM;
    return ak->state == FAILED ? MK_EUNAVAILABLE : 0;
}

void mk_api_kb(mk_ctx *ctx)
{
    struct api_kb *ak = service(ctx->app);
    if (!ak || ak->state == FAILED) {
        mk_api_fail(ctx, MK_EUNAVAILABLE, "the knowledge base is not available (see the server log)");
        return;
    }
    if (ak->state == LOADING) {
        if (ak->npending == MAX_PENDING) {
            mk_api_fail(ctx, MK_EBUSY, "the knowledge base is still loading");
            return;
        }
        ak->pending[ak->npending++] = ctx;
        return;
    }
    dispatch(ak, ctx);
}
