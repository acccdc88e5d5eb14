/*
 * internal_chat: chat requests from inside Mayak (the support desk's LLM calls) run
 * through the same pipeline as POST /v1/chat/completions — routing, guards, cache,
 * audit, metrics — without a socket.
 *
 * An internal request is an mk_ctx with no mk_http_req (ctx->req == NULL) living in a
 * pool of its own; the API layer's finishing helpers (routes.c) see the missing
 * request and hand the end to mk_api_internal_finish() here instead of writing to a
 * client. Everything else — body validation, model group binding, the attempt
 * machinery, filters — is the HTTP route's code (mk_api_chat_run), unchanged.
 * Internal calls are never streamed, never authenticated (the desk is trusted code)
 * and never aborted by a client.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "metrics/mk_metrics.h"
#include "mk_api.h"

/* The pool's first block: the ctx, the attempt state and a small body fit. */
#define INTERNAL_POOL_BYTES 8192

struct internal_call {
    mk_ctx ctx; /* first member: routes.c gives the ctx back, we find the call */
    void (*done)(int rc, const char *completion_json, size_t len, void *arg);
    void *arg;
    char request_id[17];
};

static struct internal_call *call_of(const mk_ctx *ctx)
{
    return (struct internal_call *)((const char *)ctx - offsetof(struct internal_call, ctx));
}

const char *mk_api_request_id(const mk_ctx *ctx)
{
    if (ctx->req) return ctx->req->request_id;
    return call_of(ctx)->request_id;
}

static void release_ctx(void *ctx) { mk_ctx_release(ctx); }
static void put_json(void *o) { json_object_put(o); }
static void ctx_fail(mk_ctx *ctx, int code, const char *message) { mk_api_fail(ctx, code, message); }

void mk_api_internal_finish(mk_ctx *ctx, int status, const char *body, size_t len)
{
    struct internal_call *ic = call_of(ctx);
    int rc = 0;
    if (status < 200 || status >= 300) rc = ctx->error ? ctx->error : MK_EUPSTREAM;
    ic->done(rc, body, len, ic->arg);
    /* Frees the ctx, the body copy, the generation reference and the attempt state,
     * as finishing an HTTP request frees its pool. */
    mk_pool_free(ctx->pool);
}

/* A copy of the request that is not streamed: the desk wants the answer whole. */
static json_object *unstreamed_copy(json_object *request)
{
    json_object *copy = NULL;
    if (json_object_deep_copy(request, &copy, NULL) != 0) return NULL;
    json_object_object_del(copy, "stream");
    json_object_object_del(copy, "stream_options");
    return copy;
}

int mk_api_internal_chat(struct mk_app *app, json_object *request,
                         void (*done)(int rc, const char *completion_json, size_t len, void *arg), void *arg)
{
    if (!app || !app->gen || !request || !done || !json_object_is_type(request, json_type_object)) return MK_EINVAL;
    char msg[256];
    const char *param = NULL;
    if (mk_api_validate_chat(request, msg, sizeof msg, &param) != 0) return MK_EINVAL;
    mk_pool *pool = mk_pool_new(INTERNAL_POOL_BYTES);
    if (!pool) return MK_ENOMEM;
    struct internal_call *ic = mk_pool_alloc(pool, sizeof *ic);
    json_object *body = ic ? unstreamed_copy(request) : NULL;
    if (!body || mk_pool_on_free(pool, put_json, body) != 0) {
        json_object_put(body);
        mk_pool_free(pool);
        return MK_ENOMEM;
    }
    ic->done = done;
    ic->arg = arg;
    mk_request_id(ic->request_id);
    mk_ctx *ctx = &ic->ctx;
    ctx->req = NULL;
    ctx->pool = pool;
    ctx->app = app;
    ctx->start_us = mk_now_us();
    ctx->tenant = "default";
    ctx->principal = "desk";
    ctx->fail = ctx_fail;
    ctx->services = app->services;
    ctx->route = "internal_chat";
    ctx->audited = true;
    ctx->body = body;
    ctx->internal_id = ic->request_id;
    if (mk_pool_on_free(pool, release_ctx, ctx) != 0) {
        mk_pool_free(pool);
        return MK_ENOMEM;
    }
    /* Counted like an HTTP request: before_finish takes it off again. */
    mk_metric_add(MK_METRIC_REQUESTS_INFLIGHT, NULL, 1);
    app->inflight++;
    mk_api_chat_run(ctx);
    return 0;
}
