/* mk_upstream (api): attempts, failover, retries and client aborts (see mk_upstream.h). */
#include "mk_upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "metrics/mk_metrics.h"
#include "auth/mk_auth.h"
#include "mk_api.h"

static void start_pick(struct mk_attempt *at, mk_deployment *d);

static uint32_t or_default(uint32_t v, uint32_t def) { return v ? v : def; }

static void count_attempt(struct mk_attempt *at, const char *result)
{
    const char *labels[] = {at->dep ? at->dep->label : "none", result};
    mk_metric_inc(MK_METRIC_UPSTREAM_ATTEMPTS, labels);
}

/* ---- backoff timer: heap-allocated so that closing it never races the pool ---- */

static void timer_closed(uv_handle_t *h) { free(h); }

static void cancel_backoff(struct mk_attempt *at)
{
    if (!at->backoff) return;
    uv_timer_t *t = at->backoff;
    at->backoff = NULL;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, timer_closed);
}

/* ---- finishing --------------------------------------------------------------- */

static void report_neutral(struct mk_attempt *at)
{
    if (at->dep && !at->dep_reported) {
        at->dep_reported = true;
        mk_router_report_neutral(at->dep, mk_now_us());
    }
}

void mk_attempt_cancel_call(struct mk_attempt *at)
{
    if (at->call) {
        mk_http_call_cancel(at->call);
        at->call = NULL;
    }
}

void mk_attempt_abandon(struct mk_attempt *at)
{
    mk_attempt_cancel_call(at);
    cancel_backoff(at);
    report_neutral(at);
}

void mk_attempt_finish_aborted(struct mk_attempt *at)
{
    if (at->finished) return;
    at->finished = true;
    mk_ctx *ctx = at->ctx;
    if (!ctx->error) ctx->error = MK_ECANCELLED;
    if (ctx->stream_started) {
        mk_api_stream_end(ctx, false);
    } else {
        ctx->status = 499; /* nginx's "client closed request": nothing is sent */
        mk_api_send(ctx, 499, "application/json", "", 0);
    }
}

static void on_client_abort(mk_http_req *req, void *arg)
{
    struct mk_attempt *at = arg;
    at->aborted = true;
    mk_attempt_abandon(at);
    if (at->waiting_auth) return; /* finished when the authorization completes */
    if (at->ctx->pipeline_pending) return; /* finished when the waiting filter resumes */
    mk_attempt_finish_aborted(at);
}

static void pool_release(void *arg)
{
    struct mk_attempt *at = arg;
    /* By now the call and timer are gone (the request only finishes after them). */
    cancel_backoff(at);
    if (at->ops->release) at->ops->release(at);
}

void mk_attempt_init(struct mk_attempt *at, mk_ctx *ctx, const struct mk_attempt_ops *ops)
{
    at->ctx = ctx;
    at->ops = ops;
    mk_http_req_on_abort(ctx->req, on_client_abort, at);
    mk_pool_on_free(ctx->pool, pool_release, at);
}

static void give_up(struct mk_attempt *at, int code, const char *message)
{
    mk_ctx *ctx = at->ctx;
    if (at->finished) return;
    at->finished = true;
    mk_api_fail(ctx, code, message);
}

/* ---- timing ------------------------------------------------------------------ */

void mk_attempt_data_arrived(struct mk_attempt *at, uint64_t now_us)
{
    if (at->first_data_us) return;
    at->first_data_us = now_us;
    if (!at->upstream_counted) {
        at->upstream_counted = true;
        at->ctx->upstream_us += now_us - at->attempt_start_us;
    }
}

void mk_attempt_first_byte(struct mk_attempt *at, uint64_t now_us)
{
    if (!at->first_data_us) mk_attempt_data_arrived(at, now_us);
    if (!at->first_byte_us) at->first_byte_us = now_us;
}

void mk_attempt_upstream_done(struct mk_attempt *at, uint64_t now_us)
{
    if (!at->upstream_counted) {
        at->upstream_counted = true;
        at->ctx->upstream_us += now_us - at->attempt_start_us;
    }
}

/* ---- outcomes ---------------------------------------------------------------- */

void mk_attempt_succeeded(struct mk_attempt *at)
{
    uint64_t now = mk_now_us();
    if (!at->upstream_counted) mk_attempt_upstream_done(at, now);
    uint64_t first = at->first_data_us ? at->first_data_us : now;
    if (at->dep && !at->dep_reported) {
        at->dep_reported = true;
        mk_router_report_success(at->dep, first - at->attempt_start_us, now);
        const char *labels[] = {at->dep->label};
        mk_metric_observe(MK_METRIC_UPSTREAM_LATENCY, labels, (double)(first - at->attempt_start_us) / 1e6);
    }
    count_attempt(at, "ok");
    at->finished = true; /* the caller sends the response right after */
}

static void backoff_fired(uv_timer_t *t)
{
    struct mk_attempt *at = t->data;
    at->backoff = NULL;
    uv_close((uv_handle_t *)t, timer_closed);
    mk_ctx *ctx = at->ctx;
    mk_deployment *d = mk_router_pick(ctx->group, (const char *const *)ctx->required_tags,
                                      ctx->nrequired_tags, 0, mk_now_us());
    if (!d) {
        give_up(at, at->last_error ? at->last_error : MK_ENO_DEPLOYMENT,
                at->last_message[0] ? at->last_message : NULL);
        return;
    }
    start_pick(at, d);
}

void mk_attempt_failed(struct mk_attempt *at, int code, bool retryable, uint32_t retry_after_ms,
                       const char *message)
{
    mk_ctx *ctx = at->ctx;
    uint64_t now = mk_now_us();
    mk_attempt_cancel_call(at);
    if (!at->upstream_counted) mk_attempt_upstream_done(at, now);
    if (code >= 0) code = MK_EUPSTREAM;
    if (at->dep && !at->dep_reported) {
        at->dep_reported = true;
        if (code == MK_EUPSTREAM_CLIENT || code == MK_ECANCELLED) mk_router_report_neutral(at->dep, now);
        else mk_router_report_failure(at->dep, code, now);
    }
    count_attempt(at, mk_error_name(code));
    at->last_error = code;
    snprintf(at->last_message, sizeof at->last_message, "%s", message ? message : mk_strerror(code));
    if (at->dep)
        mk_log(MK_LOG_WARN, "upstream_failed", "request_id", mk_api_request_id(ctx), "deployment", at->dep->label,
               "error", mk_error_name(code), "message", at->last_message, NULL);

    int max_attempts = ctx->group->config->retry.max_attempts;
    if (max_attempts <= 0) max_attempts = 3;
    if (max_attempts > MK_MAX_ATTEMPTS) max_attempts = MK_MAX_ATTEMPTS;
    if (at->aborted) return; /* the abort path finishes the request */
    if (!retryable || ctx->stream_started || ctx->attempts >= max_attempts || !mk_router_take_retry(ctx->group, now)) {
        give_up(at, code, at->last_message);
        return;
    }
    /* Failover: another deployment, at once — the fastest way to an answer. */
    mk_deployment *d = mk_router_pick(ctx->group, (const char *const *)ctx->required_tags, ctx->nrequired_tags,
                                      at->tried_mask, now);
    if (d) {
        start_pick(at, d);
        return;
    }
    /* Every deployment was tried: back off, then retry whichever is eligible. */
    uint32_t delay = mk_router_backoff_ms(ctx->group, ++at->retries, retry_after_ms);
    uv_timer_t *t = malloc(sizeof *t);
    if (!t) {
        give_up(at, code, at->last_message);
        return;
    }
    mk_app *app = ctx->app;
    uv_timer_init(app->loop, t);
    t->data = at;
    at->backoff = t;
    uv_timer_start(t, backoff_fired, delay, 0);
}

void mk_attempt_decode_error(struct mk_attempt *at, mk_http_call *call, int status, mk_slice body,
                             struct mk_provider_error *err)
{
    memset(err, 0, sizeof *err);
    mk_slice retry_after = call ? mk_http_call_response_header(call, "retry-after") : (mk_slice){NULL, 0};
    mk_provider *p = at->dep->provider;
    if (p->ops->decode_error) p->ops->decode_error(p, status, body, retry_after, err);
    else mk_provider_error_from_http(status, body, retry_after, err);
    if (err->code >= 0) err->code = MK_EUPSTREAM;
}

/* ---- starting a call ---------------------------------------------------------- */

static void buffered_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    struct mk_attempt *at = arg;
    at->call = NULL;
    mk_attempt_upstream_done(at, mk_now_us());
    if (!at->first_data_us) at->first_data_us = mk_now_us();
    if (rc != 0) {
        mk_attempt_failed(at, rc, true, 0, NULL);
        return;
    }
    at->ops->on_reply(at, status, body, call);
}

static void send_call(struct mk_attempt *at)
{
    mk_ctx *ctx = at->ctx;
    mk_app *app = ctx->app;
    struct mk_upstream_request up = {0};
    mk_buf_init(&up.url, 0);
    mk_buf_init(&up.body, 0);
    int rc = at->ops->build(at, &up);
    if (rc == MK_FILTER_DONE) {
        mk_upstream_request_release(&up);
        return;
    }
    if (rc != 0) {
        mk_upstream_request_release(&up);
        mk_attempt_failed(at, rc, false, 0, "could not build the upstream request");
        return;
    }
    const struct mk_model_group_config *gc = ctx->group->config;
    const struct mk_provider_config *pc = at->dep->provider->config;
    struct mk_http_call_opts o = {
        .method = "POST",
        .url = up.url.data,
        .headers = (const char *const *)up.headers,
        .nheaders = up.nheaders,
        .body = up.body.data,
        .body_len = up.body.len,
        .connect_timeout_ms = or_default(gc->timeouts.connect_ms, MK_DEFAULT_CONNECT_TIMEOUT_MS),
        .first_byte_timeout_ms = or_default(gc->timeouts.first_token_ms, MK_DEFAULT_FIRST_TOKEN_TIMEOUT_MS),
        .idle_timeout_ms = or_default(gc->timeouts.chunk_gap_ms, MK_DEFAULT_CHUNK_GAP_TIMEOUT_MS),
        .total_timeout_ms = or_default(gc->timeouts.total_ms, MK_DEFAULT_TOTAL_TIMEOUT_MS),
        .ca_file = pc->ca_file,
        .insecure = pc->insecure,
        .on_done = buffered_done,
        .arg = at,
    };
    if (at->ops->configure) at->ops->configure(at, &o);
    at->attempt_start_us = mk_now_us();
    rc = mk_http_call_start(app->client, &o, &at->call);
    mk_upstream_request_release(&up);
    if (rc != 0) {
        at->call = NULL;
        mk_attempt_failed(at, MK_EUPSTREAM, true, 0, "could not start the upstream call");
    }
}

static void authorized(int rc, void *arg)
{
    struct mk_attempt *at = arg;
    at->waiting_auth = false;
    if (at->aborted) {
        mk_attempt_finish_aborted(at);
        return;
    }
    if (rc != 0) {
        mk_attempt_failed(at, rc, true, 0, "provider authorization failed");
        return;
    }
    send_call(at);
}

static void start_pick(struct mk_attempt *at, mk_deployment *d)
{
    mk_ctx *ctx = at->ctx;
    at->dep = d;
    at->dep_reported = false;
    at->first_data_us = 0;
    at->upstream_counted = false;
    at->tried_mask |= 1ull << (d->index & 63);
    at->attempt_start_us = mk_now_us();
    ctx->deployment = d;
    ctx->attempts++;
    mk_provider *p = d->provider;
    if (p->ops->authorize) {
        at->waiting_auth = true;
        mk_app *app = ctx->app;
        p->ops->authorize(p, app->client, authorized, at);
        return;
    }
    send_call(at);
}

void mk_attempt_begin(struct mk_attempt *at)
{
    mk_ctx *ctx = at->ctx;
    uint64_t now = mk_now_us();
    mk_router_note_request(ctx->group, now);
    mk_deployment *d = mk_router_pick(ctx->group, (const char *const *)ctx->required_tags, ctx->nrequired_tags, 0, now);
    if (!d) {
        give_up(at, MK_ENO_DEPLOYMENT, "no deployment of this model group is available (all failing or excluded)");
        return;
    }
    start_pick(at, d);
}

static void unref_generation(void *gen) { mk_generation_unref(gen); }

int mk_api_bind_group(mk_ctx *ctx)
{
    mk_app *app = ctx->app;
    struct mk_generation *gen = app->gen;
    const char *model = ctx->model;
    if ((!model || !*model) && gen->config->default_model_group) model = gen->config->default_model_group;
    mk_model_group *g = model ? mk_router_group(gen->router, model) : NULL;
    if (!g) {
        char msg[MK_MAX_NAME_BYTES + 64];
        snprintf(msg, sizeof msg, "The model '%.*s' does not exist", MK_MAX_NAME_BYTES, model ? model : "");
        mk_api_fail_code(ctx, MK_ENOTFOUND, "model_not_found", msg);
        return -1;
    }
    if (ctx->principal_rec && !mk_principal_allows_model(ctx->principal_rec, g->config->name)) {
        char msg[MK_MAX_NAME_BYTES + 64];
        snprintf(msg, sizeof msg, "This key may not use the model '%.*s'", MK_MAX_NAME_BYTES, g->config->name);
        mk_api_fail_code(ctx, MK_EFORBIDDEN, "model_not_allowed", msg);
        return -1;
    }
    /* Dropped when the request's pool is freed: after every cleanup registered later
     * (decoders, provider state) has run, since pool cleanups run last-in first-out.
     * The reference is taken together with registering its release. */
    if (mk_pool_on_free(ctx->pool, unref_generation, gen) != 0) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return -1;
    }
    mk_generation_ref(gen);
    ctx->generation = gen;
    ctx->router = gen->router;
    ctx->group = g;
    return 0;
}
