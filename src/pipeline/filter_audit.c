/* The audit filter: every model request ends as one record in the tamper-evident
 * audit log (src/audit): who, what, which deployment, every guard's verdict, digests
 * of the prompt and of the answer as the client received it, and the outcome. */
#include <stdio.h>
#include <string.h>

#include "audit/mk_audit.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "mk_pipeline.h"
#include "mk_services.h"

static bool auditing(mk_ctx *ctx) { return ctx->services && ctx->services->audit; }

static int audit_response(mk_ctx *ctx, mk_buf *body)
{
    if (auditing(ctx)) {
        mk_buf_reset(&ctx->answer);
        mk_buf_append(&ctx->answer, body->data, body->len);
    }
    return 0;
}

static int audit_chunk(mk_ctx *ctx, struct mk_chunk *chunk)
{
    if (auditing(ctx) && chunk->content.len) mk_buf_append_slice(&ctx->answer, chunk->content);
    return 0;
}

static void audit_end(mk_ctx *ctx)
{
    if (!auditing(ctx)) return;
    char outcome[96];
    if (ctx->error) snprintf(outcome, sizeof outcome, "error:%s", mk_error_name(ctx->error));
    else if (ctx->stream_failed) snprintf(outcome, sizeof outcome, "error:stream");
    else snprintf(outcome, sizeof outcome, "ok");
    if (ctx->verdicts.len) mk_buf_append_char(&ctx->verdicts, '}');
    /* The action is the route's name with dots: "chat.completions", "models". */
    char action[64];
    snprintf(action, sizeof action, "%s", ctx->route ? ctx->route : "unknown");
    for (char *p = action; *p; p++)
        if (*p == '_') *p = '.';
    /* An internal call (the desk's LLM turn) has no HTTP body: its prompt is the
     * request it was given, in json-c's compact form. */
    size_t internal_len = 0;
    const char *internal_prompt = !ctx->req && ctx->body
                                      ? json_object_to_json_string_length(ctx->body, JSON_C_TO_STRING_PLAIN,
                                                                          &internal_len)
                                      : NULL;
    struct mk_audit_record r = {
        .request_id = ctx->req ? ctx->req->request_id : ctx->internal_id,
        .principal = ctx->principal,
        .tenant = ctx->tenant,
        .action = action,
        .model_group = ctx->group ? ctx->group->config->name : NULL,
        .deployment = ctx->deployment ? ctx->deployment->label : NULL,
        .verdicts_json = ctx->verdicts.len ? ctx->verdicts.data : "{}",
        .prompt = ctx->req ? ctx->req->body.ptr : internal_prompt,
        .prompt_len = ctx->req ? ctx->req->body.len : internal_len,
        .answer = ctx->answer.data,
        .answer_len = ctx->answer.len,
        .outcome = outcome,
        .status = ctx->status,
    };
    int rc = mk_audit_append(ctx->services->audit, &r, NULL);
    if (rc != 0)
        mk_log(MK_LOG_ERROR, "audit_append_failed", "request_id", r.request_id, "error", mk_strerror(rc), NULL);
}

const struct mk_filter_ops mk_filter_audit = {
    .name = "audit",
    .on_response = audit_response,
    .on_chunk = audit_chunk,
    .on_end = audit_end,
};
