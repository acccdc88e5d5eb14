/*
 * chat: POST /v1/chat/completions. Validates the request, resolves the model group,
 * runs the pipeline, and as its terminal stage makes the upstream attempts:
 * pick a deployment, authorize, build, call, decode; on a retryable failure before
 * the first byte reached the client, fail over to another deployment at once, or
 * retry after a backoff when every deployment has been tried, within max_attempts
 * and the group's retry budget. Once streaming to the client has begun, a failure
 * ends the stream with an error event and no [DONE].
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_rand.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "metrics/mk_metrics.h"
#include "mk_api.h"
#include "mk_upstream.h"
#include "pipeline/mk_guard_filter.h"

struct chat_state {
    struct mk_attempt at;          /* shared attempt machinery (mk_upstream.h); first member */
    struct mk_chat_call call;
    char response_id[48];
    mk_stream_decoder *decoder;
    bool upstream_2xx;
    mk_buf error_body;             /* a non-2xx streamed reply, kept to decode the error */
    struct mk_provider_error stream_err;
    /* A sink never finishes the request itself (the decoder is still on the stack):
     * it records why the stream must stop and the caller acts after the feed. */
    bool stop_stream;
    int stop_code;                 /* 0 clean stop (a filter ended it), MK_ECANCELLED (client gone), or an error */
};

/* ---- streaming --------------------------------------------------------------- */

static int stream_sink(void *arg, const struct mk_stream_event *ev)
{
    struct chat_state *st = arg;
    mk_ctx *ctx = st->at.ctx;
    if (ev->has_usage) {
        ctx->usage = ev->usage;
        ctx->has_usage = true;
    }
    if (ev->usage_only && !ctx->include_usage) return 0;
    struct mk_chunk chunk = {ev->chunk_json, ev->content, ev->usage_only};
    int rc = mk_pipeline_chunk(ctx, &chunk);
    if (rc < 0) {
        st->stop_stream = true;
        st->stop_code = rc;
        return rc;
    }
    if (!ctx->stream_started) {
        uint64_t now = mk_now_us();
        mk_attempt_first_byte(&st->at, now);
        ctx->first_token_us = now;
        mk_api_stream_start(ctx);
    }
    if (mk_api_stream_event(ctx, chunk.json.ptr, chunk.json.len) != 0) {
        st->stop_stream = true;
        st->stop_code = MK_ECANCELLED;
        return MK_ECANCELLED;
    }
    if (rc == MK_FILTER_DONE) {
        st->stop_stream = true;
        st->stop_code = 0;
        return MK_FILTER_DONE;
    }
    return 0;
}

/* Acts on a stop a sink asked for. The request may be finished here: the caller
 * must return right after without touching st. */
static void handle_stop(struct chat_state *st)
{
    mk_ctx *ctx = st->at.ctx;
    mk_attempt_cancel_call(&st->at);
    if (st->stop_code == MK_ECANCELLED) return; /* the client left: the abort path finishes */
    if (st->stop_code == 0) {
        mk_attempt_succeeded(&st->at);
        mk_api_stream_end(ctx, true);
        return;
    }
    mk_attempt_abandon(&st->at);
    st->at.finished = true;
    mk_api_fail(ctx, st->stop_code, NULL);
}

static void stream_on_response(mk_http_call *call, int status, void *arg)
{
    struct chat_state *st = arg;
    st->upstream_2xx = status >= 200 && status < 300;
    if (st->upstream_2xx) {
        const struct mk_provider_ops *ops = st->at.dep->provider->ops;
        st->decoder = ops->stream_new(st->at.dep->provider, &st->call);
    }
}

static void fail_from_stream_error(struct chat_state *st, int rc)
{
    struct mk_provider_error *e = &st->stream_err;
    mk_attempt_failed(&st->at, e->code ? e->code : rc, e->retryable, e->retry_after_ms,
                      e->message[0] ? e->message : NULL);
}

static void stream_on_data(mk_http_call *call, const char *data, size_t len, void *arg)
{
    struct chat_state *st = arg;
    if (!st->upstream_2xx) {
        if (st->error_body.len < 65536) mk_buf_append(&st->error_body, data, len);
        return;
    }
    if (!st->decoder) {
        mk_attempt_failed(&st->at, MK_ENOMEM, false, 0, NULL);
        return;
    }
    mk_attempt_data_arrived(&st->at, mk_now_us());
    const struct mk_provider_ops *ops = st->at.dep->provider->ops;
    memset(&st->stream_err, 0, sizeof st->stream_err);
    int rc = ops->stream_feed(st->decoder, data, len, stream_sink, st, &st->stream_err);
    if (rc == 0) return;
    if (st->stop_stream) {
        handle_stop(st);
        return;
    }
    /* Something we cannot decode, or an error event from the upstream. */
    fail_from_stream_error(st, rc);
}

static void stream_on_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    struct chat_state *st = arg;
    st->at.call = NULL;
    mk_attempt_upstream_done(&st->at, mk_now_us());
    if (rc != 0) {
        mk_attempt_failed(&st->at, rc, true, 0, NULL);
        return;
    }
    if (!st->upstream_2xx) {
        struct mk_provider_error err;
        mk_attempt_decode_error(&st->at, call, status, mk_buf_slice(&st->error_body), &err);
        mk_attempt_failed(&st->at, err.code, err.retryable, err.retry_after_ms, err.message[0] ? err.message : NULL);
        return;
    }
    if (!st->decoder) {
        mk_attempt_failed(&st->at, MK_ENOMEM, false, 0, NULL);
        return;
    }
    mk_provider *p = st->at.dep->provider;
    memset(&st->stream_err, 0, sizeof st->stream_err);
    int frc = p->ops->stream_finish(st->decoder, stream_sink, st, &st->stream_err);
    if (st->stop_stream) {
        handle_stop(st);
        return;
    }
    if (frc != 0) {
        fail_from_stream_error(st, frc);
        return;
    }
    mk_ctx *ctx = st->at.ctx;
    if (!ctx->stream_started) { /* an empty but well-formed stream */
        mk_attempt_first_byte(&st->at, mk_now_us());
        mk_api_stream_start(ctx);
    }
    mk_attempt_succeeded(&st->at);
    mk_api_stream_end(ctx, true);
}

/* ---- attempts ---------------------------------------------------------------- */

static void reset_attempt(struct chat_state *st)
{
    mk_provider *p = st->at.dep ? st->at.dep->provider : NULL;
    if (st->decoder && p) p->ops->stream_free(st->decoder);
    st->decoder = NULL;
    st->upstream_2xx = false;
    mk_buf_reset(&st->error_body);
}

static void on_reply(struct mk_attempt *at, int status, mk_slice body, mk_http_call *call)
{
    struct chat_state *st = (struct chat_state *)at;
    mk_provider *p = at->dep->provider;
    struct mk_provider_error err = {0};
    if (status < 200 || status >= 300) {
        mk_attempt_decode_error(at, call, status, body, &err);
        mk_attempt_failed(at, err.code, err.retryable, err.retry_after_ms, err.message[0] ? err.message : NULL);
        return;
    }
    mk_buf out = MK_BUF_INIT;
    struct mk_usage usage = {0};
    int rc = p->ops->decode_chat(p, &st->call, body, &out, &usage, &err);
    if (rc != 0) {
        mk_buf_release(&out);
        mk_attempt_failed(at, err.code ? err.code : rc, err.retryable, 0, err.message[0] ? err.message : NULL);
        return;
    }
    at->ctx->usage = usage;
    at->ctx->has_usage = true;
    at->ctx->first_token_us = mk_now_us();
    mk_attempt_succeeded(at);
    mk_api_reply_completion(at->ctx, out.data, out.len);
    mk_buf_release(&out);
}

static void answer_locally(struct chat_state *st)
{
    mk_ctx *ctx = st->at.ctx;
    mk_provider *p = st->at.dep->provider;
    mk_buf out = MK_BUF_INIT;
    struct mk_usage usage = {0};
    int rc = p->ops->answer_local(p, &st->call, &out, &usage);
    if (rc != 0) {
        mk_buf_release(&out);
        mk_attempt_failed(&st->at, rc, false, 0, NULL);
        return;
    }
    ctx->usage = usage;
    ctx->has_usage = true;
    ctx->first_token_us = mk_now_us();
    mk_attempt_succeeded(&st->at);
    mk_api_reply_completion(ctx, out.data, out.len);
    mk_buf_release(&out);
}

static int build(struct mk_attempt *at, struct mk_upstream_request *up)
{
    struct chat_state *st = (struct chat_state *)at;
    reset_attempt(st);
    st->call.model = at->dep->config->model;
    /* Personal data stays home: deployments outside the jurisdiction get the masked copy. */
    st->call.request = mk_guard_request_for(at->ctx, at->dep);
    mk_provider *p = at->dep->provider;
    if (p->ops->answer_local) {
        answer_locally(st);
        return MK_FILTER_DONE;
    }
    if (!p->ops->build_chat) return MK_EINVAL;
    return p->ops->build_chat(p, &st->call, up);
}

static void configure(struct mk_attempt *at, struct mk_http_call_opts *o)
{
    struct chat_state *st = (struct chat_state *)at;
    if (!st->call.stream) return; /* buffered reply: mk_upstream's defaults */
    o->on_response = stream_on_response;
    o->on_data = stream_on_data;
    o->on_done = stream_on_done;
    o->arg = st;
}

static void release_state(struct mk_attempt *at)
{
    struct chat_state *st = (struct chat_state *)at;
    reset_attempt(st);
    mk_buf_release(&st->error_body);
}

static const struct mk_attempt_ops chat_attempt_ops = {
    .build = build,
    .configure = configure,
    .on_reply = on_reply,
    .release = release_state,
};

static void chat_terminal(mk_ctx *ctx)
{
    struct chat_state *st = ctx->terminal_state;
    mk_attempt_begin(&st->at);
}

void mk_api_chat(mk_ctx *ctx)
{
    if (mk_api_parse_body(ctx) != 0) return;
    mk_api_chat_run(ctx);
}

void mk_api_chat_run(mk_ctx *ctx)
{
    json_object *body = ctx->body;
    char msg[256] = "";
    const char *param = NULL;
    if (mk_api_validate_chat(body, msg, sizeof msg, &param) != 0) {
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error", msg);
        return;
    }
    ctx->kind = MK_CTX_CHAT;
    json_object *v;
    ctx->model = json_object_get_string(json_object_object_get(body, "model"));
    ctx->stream = json_object_object_get_ex(body, "stream", &v) && json_object_get_boolean(v);
    json_object *so;
    if (ctx->stream && json_object_object_get_ex(body, "stream_options", &so) &&
        json_object_object_get_ex(so, "include_usage", &v))
        ctx->include_usage = json_object_get_boolean(v);

    if (mk_api_bind_group(ctx) != 0) return;

    struct chat_state *st = mk_pool_alloc(ctx->pool, sizeof *st);
    if (!st) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    mk_attempt_init(&st->at, ctx, &chat_attempt_ops);
    mk_buf_init(&st->error_body, 0);
    char rid[17];
    mk_request_id(rid);
    snprintf(st->response_id, sizeof st->response_id, "chatcmpl-%s%s", mk_api_request_id(ctx), rid);
    st->call.request = body;
    st->call.stream = ctx->stream;
    st->call.include_usage = ctx->include_usage;
    st->call.response_id = st->response_id;
    st->call.created = (int64_t)time(NULL);
    st->call.request_id = mk_api_request_id(ctx);
    ctx->terminal_state = st;
    ctx->terminal = chat_terminal;
    mk_pipeline_start(ctx);
}
