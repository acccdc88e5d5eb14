/* mk_pipeline: runs the filter chain over one request context (see mk_pipeline.h). */
#include "mk_pipeline.h"

#include <string.h>

#include "core/mk_error.h"

static size_t filter_count(void)
{
    size_t n = 0;
    while (mk_pipeline_filters[n]) n++;
    return n;
}

static void run_from(mk_ctx *ctx)
{
    while (mk_pipeline_filters[ctx->next_filter]) {
        const struct mk_filter_ops *f = mk_pipeline_filters[ctx->next_filter++];
        if (!f->on_request) continue;
        int rc = f->on_request(ctx);
        if (rc == MK_FILTER_CONTINUE) continue;
        if (rc == MK_FILTER_PENDING || rc == MK_FILTER_DONE) return;
        ctx->fail(ctx, rc, NULL);
        return;
    }
    ctx->terminal(ctx);
}

void mk_pipeline_start(mk_ctx *ctx)
{
    ctx->next_filter = 0;
    run_from(ctx);
}

void mk_pipeline_resume(mk_ctx *ctx, int rc)
{
    ctx->pipeline_pending = false;
    if (rc == MK_FILTER_DONE) return;
    if (mk_http_req_aborted(ctx->req)) {
        /* The client left while a filter waited: finish now (nothing is written). */
        ctx->fail(ctx, MK_ECANCELLED, NULL);
        return;
    }
    if (rc < 0) {
        ctx->fail(ctx, rc, NULL);
        return;
    }
    run_from(ctx);
}

int mk_pipeline_response(mk_ctx *ctx, mk_buf *body)
{
    for (size_t i = 0; mk_pipeline_filters[i]; i++) {
        const struct mk_filter_ops *f = mk_pipeline_filters[i];
        if (!f->on_response) continue;
        int rc = f->on_response(ctx, body);
        if (rc < 0) return rc;
    }
    return 0;
}

int mk_pipeline_chunk(mk_ctx *ctx, struct mk_chunk *chunk)
{
    for (size_t i = 0; mk_pipeline_filters[i]; i++) {
        const struct mk_filter_ops *f = mk_pipeline_filters[i];
        if (!f->on_chunk) continue;
        int rc = f->on_chunk(ctx, chunk);
        if (rc != 0) return rc;
    }
    return 0;
}

void mk_pipeline_end(mk_ctx *ctx)
{
    for (size_t i = filter_count(); i > 0; i--) {
        const struct mk_filter_ops *f = mk_pipeline_filters[i - 1];
        if (f->on_end) f->on_end(ctx);
    }
}

void mk_ctx_add_header(mk_ctx *ctx, const char *name, const char *value)
{
    if (ctx->nextra_headers >= sizeof ctx->extra_headers / sizeof ctx->extra_headers[0]) return;
    mk_http_header *h = &ctx->extra_headers[ctx->nextra_headers++];
    h->name = mk_slice_cstr(mk_pool_strdup(ctx->pool, name));
    h->value = mk_slice_cstr(mk_pool_strdup(ctx->pool, value));
}

void mk_ctx_add_verdict(mk_ctx *ctx, const char *name, const char *json_value)
{
    mk_buf_append_char(&ctx->verdicts, ctx->verdicts.len ? ',' : '{');
    mk_buf_append_json_string(&ctx->verdicts, name, strlen(name));
    mk_buf_append_char(&ctx->verdicts, ':');
    mk_buf_append_str(&ctx->verdicts, json_value);
}

void mk_ctx_release(mk_ctx *ctx)
{
    mk_buf_release(&ctx->verdicts);
    mk_buf_release(&ctx->answer);
}
