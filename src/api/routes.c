/* routes: the route table, dispatch, and the helpers that finish every request
 * (access log line, HTTP metrics, OpenAI-shaped errors, SSE framing). */
#include <stdio.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "metrics/mk_metrics.h"
#include "auth/mk_roles.h"
#include "mk_api.h"

struct route {
    const char *method;
    const char *path;      /* exact path, or a prefix when it ends with '/' */
    const char *name;      /* metrics label, and the audit record's action */
    void (*handler)(mk_ctx *ctx);
    bool audited;          /* API calls are audited; probes and scrapes are not */
    int perm;              /* permission the caller's role needs; NO_AUTH = public */
};

#define NO_AUTH (-1)

void mk_api_memory(mk_ctx *ctx); /* memory_api.c: dispatches /api/v1/memory/... itself */
void mk_api_kb(mk_ctx *ctx);     /* kb_api.c: dispatches /api/v1/kb/... itself */
/* desk_api.c, desk_ws.c: the support desk (authenticates itself: console sessions,
 * conversation tokens, keys in ?access_token= for browsers' WebSockets); web_static.c:
 * the chat page, widget, console and admin page embedded in the binary. */
void mk_api_desk(mk_ctx *ctx);
void mk_api_ws_chat(mk_ctx *ctx);
void mk_api_ws_operator(mk_ctx *ctx);
void mk_api_web(mk_ctx *ctx);
void mk_api_cache_invalidate(mk_ctx *ctx); /* cache_api.c */

/* OpenAI SDKs use base URLs with /v1; some clients omit it, so both are served. */
static const struct route routes[] = {
    {"POST", "/v1/chat/completions", "chat_completions", mk_api_chat, true, MK_PERM_CHAT},
    {"POST", "/chat/completions", "chat_completions", mk_api_chat, true, MK_PERM_CHAT},
    {"POST", "/v1/embeddings", "embeddings", mk_api_embeddings, true, MK_PERM_EMBEDDINGS},
    {"POST", "/embeddings", "embeddings", mk_api_embeddings, true, MK_PERM_EMBEDDINGS},
    {"GET", "/v1/models", "models", mk_api_models, true, MK_PERM_MODELS_LIST},
    {"GET", "/models", "models", mk_api_models, true, MK_PERM_MODELS_LIST},
    {"GET", "/v1/models/", "models", mk_api_model_get, true, MK_PERM_MODELS_LIST},
    {"GET", "/metrics", "metrics", mk_api_metrics, false, NO_AUTH},
    {"GET", "/healthz", "healthz", mk_api_healthz, false, NO_AUTH},
    {"GET", "/readyz", "readyz", mk_api_readyz, false, NO_AUTH},
    {"GET", "/api/v1/usage", "usage", mk_api_usage, true, MK_PERM_USAGE_READ},
    {"POST", "/api/v1/cache/invalidate", "cache_invalidate", mk_api_cache_invalidate, true, MK_PERM_ADMIN_CONFIG},
    /* API keys (keys_api.c): admins only; the secret is in the create/rotate answer, once */
    {"POST", "/api/v1/admin/keys", "admin_keys_create", mk_api_admin_keys_create, true, MK_PERM_KEYS_MANAGE},
    {"GET", "/api/v1/admin/keys", "admin_keys_list", mk_api_admin_keys_list, true, MK_PERM_KEYS_MANAGE},
    {"GET", "/api/v1/admin/keys/", "admin_keys_get", mk_api_admin_keys_get, true, MK_PERM_KEYS_MANAGE},
    {"POST", "/api/v1/admin/keys/", "admin_keys_rotate", mk_api_admin_keys_rotate, true, MK_PERM_KEYS_MANAGE},
    {"DELETE", "/api/v1/admin/keys/", "admin_keys_revoke", mk_api_admin_keys_revoke, true, MK_PERM_KEYS_MANAGE},
    /* agent memory: every role's agents use their tenant's memory; erasure and sweeps
     * check for admin.users inside (memory_api.c) */
    {"GET", "/api/v1/memory/", "memory", mk_api_memory, true, MK_PERM_CHAT},
    {"POST", "/api/v1/memory/", "memory", mk_api_memory, true, MK_PERM_CHAT},
    {"PUT", "/api/v1/memory/", "memory", mk_api_memory, true, MK_PERM_CHAT},
    {"PATCH", "/api/v1/memory/", "memory", mk_api_memory, true, MK_PERM_CHAT},
    {"DELETE", "/api/v1/memory/", "memory", mk_api_memory, true, MK_PERM_CHAT},
    /* knowledge base: reading needs kb.read; adding, removing, reindexing check
     * kb.manage inside (and admin.config for server paths), see kb_api.c */
    {"GET", "/api/v1/kb/", "kb", mk_api_kb, true, MK_PERM_KB_READ},
    {"POST", "/api/v1/kb/", "kb", mk_api_kb, true, MK_PERM_KB_READ},
    {"DELETE", "/api/v1/kb/", "kb", mk_api_kb, true, MK_PERM_KB_MANAGE},
    {"GET", "/api/v1/desk/", "desk", mk_api_desk, true, NO_AUTH},
    {"POST", "/api/v1/desk/", "desk", mk_api_desk, true, NO_AUTH},
    {"GET", "/ws/chat", "ws_chat", mk_api_ws_chat, false, NO_AUTH},
    {"GET", "/ws/operator", "ws_operator", mk_api_ws_operator, false, NO_AUTH},
    /* web pages: public static files (they call the authenticated APIs themselves) */
    {"GET", "/", "web", mk_api_web, false, NO_AUTH},
    {"GET", "/widget.js", "web", mk_api_web, false, NO_AUTH},
    {"GET", "/operator", "web", mk_api_web, false, NO_AUTH},
    {"GET", "/admin", "web", mk_api_web, false, NO_AUTH},
    {"GET", "/web/", "web", mk_api_web, false, NO_AUTH},
};

static bool path_matches(const struct route *r, mk_slice path)
{
    size_t n = strlen(r->path);
    /* "/" alone is the chat page, not a prefix of every path */
    if (n > 1 && r->path[n - 1] == '/') return path.len > n && memcmp(path.ptr, r->path, n) == 0;
    return mk_slice_eq_cstr(path, r->path);
}

static void ctx_fail_cb(mk_ctx *ctx, int code, const char *message) { mk_api_fail(ctx, code, message); }

static void ctx_reply_cb(mk_ctx *ctx, const char *json, size_t len) { mk_api_reply_completion(ctx, json, len); }

static void ctx_release(void *ctx) { mk_ctx_release(ctx); }

void mk_api_handle(mk_http_req *req, void *app_arg)
{
    mk_app *app = app_arg;
    mk_ctx *ctx = mk_pool_alloc(req->pool, sizeof *ctx);
    if (!ctx) {
        mk_http_respond(req, 500, NULL, 0, NULL, 0);
        return;
    }
    ctx->req = req;
    ctx->pool = req->pool;
    ctx->app = app;
    ctx->start_us = req->received_us;
    ctx->tenant = "default";
    ctx->principal = "anonymous";
    ctx->fail = ctx_fail_cb;
    ctx->reply = ctx_reply_cb;
    ctx->services = app->services;
    mk_pool_on_free(req->pool, ctx_release, ctx);
    mk_metric_add(MK_METRIC_REQUESTS_INFLIGHT, NULL, 1);
    app->inflight++;

    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!path_matches(&routes[i], req->path)) continue;
        path_known = true;
        bool head_as_get = strcmp(req->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0;
        if (strcmp(req->method, routes[i].method) != 0 && !head_as_get) continue;
        ctx->route = routes[i].name;
        ctx->audited = routes[i].audited;
        if (routes[i].perm == NO_AUTH) routes[i].handler(ctx);
        else mk_api_authenticate(ctx, routes[i].perm, routes[i].handler);
        return;
    }
    ctx->route = path_known ? "method_not_allowed" : "not_found";
    ctx->audited = true;
    if (path_known)
        mk_api_fail_code(ctx, MK_EMETHOD, "method_not_allowed", "method not allowed for this path");
    else
        mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "unknown path");
}

/* ---- finishing --------------------------------------------------------------- */

static void append_kv_str(mk_buf *b, const char *k, const char *v)
{
    mk_buf_printf(b, ",\"%s\":", k);
    if (v) mk_buf_append_json_string(b, v, strlen(v));
    else mk_buf_append(b, "null", 4);
}

static void access_log(mk_ctx *ctx, uint64_t now)
{
    mk_app *app = ctx->app;
    if (app && app->gen && !app->gen->config->access_log) return;
    if (mk_log_min_level > MK_LOG_INFO) return;
    mk_http_req *req = ctx->req;
    if (!req) return; /* internal calls (the desk's): no client, no access line */
    mk_buf b = MK_BUF_INIT;
    char when[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    mk_buf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"info\",\"event\":\"access\"", when, ts.tv_nsec / 1000000);
    append_kv_str(&b, "request_id", req->request_id);
    append_kv_str(&b, "method", req->method);
    mk_buf_append(&b, ",\"path\":", 8);
    mk_buf_append_json_string(&b, req->path.ptr, req->path.len);
    append_kv_str(&b, "peer", req->peer);
    mk_buf_printf(&b, ",\"status\":%d,\"duration_us\":%llu", ctx->status,
                  (unsigned long long)(now - ctx->start_us));
    if (ctx->group) {
        append_kv_str(&b, "model_group", ctx->group->config->name);
        append_kv_str(&b, "deployment", ctx->deployment ? ctx->deployment->label : NULL);
        mk_buf_printf(&b, ",\"attempts\":%d,\"stream\":%s,\"overhead_us\":%llu", ctx->attempts,
                      ctx->stream ? "true" : "false", (unsigned long long)ctx->overhead_us);
        if (ctx->has_usage)
            mk_buf_printf(&b, ",\"prompt_tokens\":%lld,\"completion_tokens\":%lld",
                          (long long)ctx->usage.prompt_tokens, (long long)ctx->usage.completion_tokens);
        if (ctx->stream_failed) mk_buf_append_str(&b, ",\"stream_failed\":true");
    }
    if (ctx->error) append_kv_str(&b, "error", mk_error_name(ctx->error));
    mk_buf_append_char(&b, '}');
    mk_log_raw_json(b.data, b.len);
    mk_buf_release(&b);
}

/* Common end of every request: pipeline on_end (model requests), metrics, log,
 * The caller then finishes req; the generation reference goes with the pool. */
static void before_finish(mk_ctx *ctx)
{
    uint64_t now = mk_now_us();
    if (ctx->group || ctx->audited) mk_pipeline_end(ctx);
    char status[16];
    snprintf(status, sizeof status, "%d", ctx->status);
    const char *labels[] = {ctx->route ? ctx->route : "unknown", ctx->req ? ctx->req->method : "INTERNAL", status};
    mk_metric_inc(MK_METRIC_REQUESTS, labels);
    const char *route_label[] = {labels[0]};
    mk_metric_observe(MK_METRIC_REQUEST_DURATION, route_label, (double)(now - ctx->start_us) / 1e6);
    if (ctx->group) {
        uint64_t total = now - ctx->start_us;
        if (!ctx->stream_started)
            ctx->overhead_us = total > ctx->upstream_us ? total - ctx->upstream_us : 0;
        mk_metric_observe(MK_METRIC_GATEWAY_OVERHEAD, route_label, (double)ctx->overhead_us / 1e6);
    }
    mk_metric_add(MK_METRIC_REQUESTS_INFLIGHT, NULL, -1);
    if (ctx->app) ((mk_app *)ctx->app)->inflight--;
    access_log(ctx, now);
}

/* Response headers Mayak adds to model responses. */
static size_t gateway_headers(mk_ctx *ctx, mk_http_header *h, size_t cap, char *overhead, size_t overhead_len)
{
    size_t n = 0;
    for (size_t i = 0; i < ctx->nextra_headers && n < cap; i++) h[n++] = ctx->extra_headers[i];
    if (ctx->group && n + 4 <= cap) {
        /* overhead holds two numbers: the attempts count after the overhead's NUL */
        char *attempts = overhead + overhead_len / 2;
        snprintf(attempts, overhead_len / 2, "%d", ctx->attempts);
        h[n++] = (mk_http_header){MK_SLICE_LIT("x-mayak-attempts"), mk_slice_cstr(attempts)};
        h[n++] = (mk_http_header){MK_SLICE_LIT("x-mayak-model-group"), mk_slice_cstr(ctx->group->config->name)};
        if (ctx->deployment)
            h[n++] = (mk_http_header){MK_SLICE_LIT("x-mayak-deployment"), mk_slice_cstr(ctx->deployment->label)};
        snprintf(overhead, overhead_len / 2, "%llu", (unsigned long long)ctx->overhead_us);
        h[n++] = (mk_http_header){MK_SLICE_LIT("x-mayak-overhead-us"), mk_slice_cstr(overhead)};
    }
    return n;
}

void mk_api_send(mk_ctx *ctx, int status, const char *content_type, const char *body, size_t len)
{
    ctx->status = status;
    if (ctx->group) {
        uint64_t total = mk_now_us() - ctx->start_us;
        ctx->overhead_us = total > ctx->upstream_us ? total - ctx->upstream_us : 0;
    }
    mk_http_header h[24];
    char overhead[48];
    size_t n = gateway_headers(ctx, h, 22, overhead, sizeof overhead);
    h[n++] = (mk_http_header){MK_SLICE_LIT("Content-Type"), mk_slice_cstr(content_type)};
    before_finish(ctx);
    mk_http_req *req = ctx->req;
    if (!req) { /* an internal call: no socket, the caller's callback gets the body */
        mk_api_internal_finish(ctx, status, body, len);
        return;
    }
    mk_http_respond(req, status, h, n, body, len);
}

static const char *default_code_name(int err)
{
    switch (err) {
    case MK_EBADJSON: return "invalid_json";
    case MK_EBADUTF8: return "invalid_utf8";
    case MK_ETOOBIG: return "request_too_large";
    case MK_ENOTFOUND: return "not_found";
    case MK_EUNAUTHORIZED: return "invalid_api_key";
    case MK_ERATE_LIMITED: return "rate_limit_exceeded";
    case MK_EUPSTREAM_RATE: return "upstream_rate_limited";
    case MK_EUPSTREAM_TIMEOUT: return "upstream_timeout";
    case MK_EUPSTREAM_BADREPLY: return "upstream_bad_reply";
    case MK_EUPSTREAM_AUTH: return "upstream_auth_failed";
    case MK_EUPSTREAM_CLIENT: return "upstream_rejected";
    case MK_EUPSTREAM: return "upstream_error";
    case MK_ENO_DEPLOYMENT: return "no_deployment_available";
    case MK_EGUARD_INJECTION: return "prompt_injection";
    case MK_EGUARD_OUTPUT: return "output_policy";
    case MK_EFORBIDDEN: return "permission_denied";
    default: return NULL;
    }
}

static void error_json(mk_buf *b, int err, const char *code_name, const char *message)
{
    if (!message) message = mk_strerror(err);
    if (!code_name) code_name = default_code_name(err);
    mk_buf_append_str(b, "{\"error\":{\"message\":");
    mk_buf_append_json_string(b, message, strlen(message));
    mk_buf_append_str(b, ",\"type\":");
    const char *type = mk_error_openai_type(err);
    mk_buf_append_json_string(b, type, strlen(type));
    mk_buf_append_str(b, ",\"param\":null,\"code\":");
    if (code_name) mk_buf_append_json_string(b, code_name, strlen(code_name));
    else mk_buf_append_str(b, "null");
    mk_buf_append_str(b, "}}");
}

void mk_api_fail_code(mk_ctx *ctx, int err, const char *code_name, const char *message)
{
    ctx->error = err;
    mk_buf b = MK_BUF_INIT;
    error_json(&b, err, code_name, message);
    if (ctx->stream_started) {
        /* Too late for a status code: the client learns of the failure from an error
         * event, and the missing [DONE] tells it the stream did not end cleanly. */
        ctx->stream_failed = true;
        const char *reason[] = {mk_error_name(err)};
        mk_metric_inc(MK_METRIC_STREAM_ERRORS, reason);
        mk_api_stream_event(ctx, b.data, b.len);
        mk_buf_release(&b);
        mk_api_stream_end(ctx, false);
        return;
    }
    mk_api_send(ctx, mk_error_http_status(err), "application/json", b.data, b.len);
    mk_buf_release(&b);
}

void mk_api_fail(mk_ctx *ctx, int err, const char *message) { mk_api_fail_code(ctx, err, NULL, message); }

/* A request that switched protocols (a WebSocket): logged and counted as 101 before
 * mk_ws_accept finishes it (and frees ctx with the request's pool). */
void mk_api_upgraded(mk_ctx *ctx);
void mk_api_upgraded(mk_ctx *ctx)
{
    ctx->status = 101;
    before_finish(ctx);
}

int mk_api_stream_start(mk_ctx *ctx)
{
    if (ctx->stream_started) return 0;
    if (!ctx->req) return MK_EINVAL; /* internal calls never stream (internal_chat.c) */
    ctx->stream_started = true;
    ctx->status = 200;
    uint64_t total = mk_now_us() - ctx->start_us;
    ctx->overhead_us = total > ctx->upstream_us ? total - ctx->upstream_us : 0;
    mk_http_header h[24];
    char overhead[48];
    size_t n = gateway_headers(ctx, h, 20, overhead, sizeof overhead);
    h[n++] = (mk_http_header){MK_SLICE_LIT("Content-Type"), MK_SLICE_LIT("text/event-stream; charset=utf-8")};
    h[n++] = (mk_http_header){MK_SLICE_LIT("Cache-Control"), MK_SLICE_LIT("no-cache")};
    h[n++] = (mk_http_header){MK_SLICE_LIT("X-Accel-Buffering"), MK_SLICE_LIT("no")};
    mk_metric_add(MK_METRIC_STREAMS_INFLIGHT, NULL, 1);
    return mk_http_stream_start(ctx->req, 200, h, n);
}

int mk_api_stream_event(mk_ctx *ctx, const char *data, size_t len)
{
    /* One write per event keeps the frame whole in one chunk. */
    mk_buf b = MK_BUF_INIT;
    int rc = mk_buf_reserve(&b, len + 8);
    if (rc == 0) {
        mk_buf_append(&b, "data: ", 6);
        mk_buf_append(&b, data, len);
        mk_buf_append(&b, "\n\n", 2);
        rc = mk_http_stream_write(ctx->req, b.data, b.len);
    }
    mk_buf_release(&b);
    return rc;
}

void mk_api_stream_end(mk_ctx *ctx, bool done_marker)
{
    if (done_marker) mk_http_stream_write(ctx->req, "data: [DONE]\n\n", 14);
    mk_metric_add(MK_METRIC_STREAMS_INFLIGHT, NULL, -1);
    before_finish(ctx);
    mk_http_stream_end(ctx->req);
}
