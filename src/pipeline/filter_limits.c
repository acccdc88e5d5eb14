/* The limits filter: before a model request, the caller's token buckets (requests
 * and tokens per minute, per key and per tenant) and cost budgets must admit it
 * (429 with Retry-After otherwise); after it, the real tokens and cost are charged.
 * Counters live in the kv: in-process by default, Redis when nodes share them. */
#include <stdio.h>

#include "auth/mk_limits.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "mk_pipeline.h"
#include "mk_services.h"

struct admit_wait {
    mk_ctx *ctx;
    bool returned;     /* the admit call has returned: the verdict resumes the pipeline */
    bool decided;
    int result;        /* MK_FILTER_CONTINUE or an error */
};

static int verdict_result(mk_ctx *ctx, const struct mk_limits_verdict *v)
{
    if (v->rc == 0) return MK_FILTER_CONTINUE;
    if (v->rc == MK_ERATE_LIMITED) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)mk_limits_retry_after_s(v->retry_after_ms));
        mk_ctx_add_header(ctx, "Retry-After", secs);
        if (v->limit && *v->limit) mk_ctx_add_header(ctx, "x-mayak-limit", v->limit);
        char verdict[128];
        snprintf(verdict, sizeof verdict, "{\"limited\":\"%s\"}", v->limit ? v->limit : "");
        mk_ctx_add_verdict(ctx, "limits", verdict);
    }
    return v->rc;
}

static void admitted(const struct mk_limits_verdict *v, void *arg)
{
    struct admit_wait *w = arg;
    w->decided = true;
    w->result = verdict_result(w->ctx, v);
    if (w->returned) {
        w->ctx->pipeline_pending = false;
        mk_pipeline_resume(w->ctx, w->result);
    }
}

static int limits_request(mk_ctx *ctx)
{
    struct mk_services *s = ctx->services;
    if (!s || !s->limits || !ctx->principal_rec) return MK_FILTER_CONTINUE;
    struct admit_wait *w = mk_pool_alloc(ctx->pool, sizeof *w);
    if (!w) return MK_ENOMEM;
    w->ctx = ctx;
    int rc = mk_limits_admit(s->limits, ctx->principal_rec, admitted, w);
    if (rc != 0) return rc;
    w->returned = true;
    if (w->decided) return w->result; /* the in-process kv answers at once */
    ctx->pipeline_pending = true;
    return MK_FILTER_PENDING;
}

static void charged(const struct mk_limits_verdict *v, void *arg)
{
    if (v->rc != 0 && v->rc != MK_ERATE_LIMITED)
        mk_log(MK_LOG_WARN, "limits_charge_failed", "error", mk_strerror(v->rc), NULL);
}

static void limits_end(mk_ctx *ctx)
{
    struct mk_services *s = ctx->services;
    if (!s || !s->limits || !ctx->principal_rec || !ctx->has_usage || ctx->cache_hit) return;
    uint64_t tokens = (uint64_t)(ctx->usage.prompt_tokens + ctx->usage.completion_tokens);
    /* The principal is copied by the charge: the request may end before it lands. */
    mk_limits_charge(s->limits, ctx->principal_rec, tokens, ctx->cost, charged, NULL);
}

const struct mk_filter_ops mk_filter_limits = {
    .name = "limits",
    .on_request = limits_request,
    .on_end = limits_end,
};
