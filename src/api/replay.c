/* replay: answer with a complete chat.completion in the caller's mode. Streaming
 * callers get the same text as SSE chunks (role, content in word-sized pieces,
 * finish, usage when asked), so a local answer or a cache hit looks like any stream. */
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "mk_api.h"

/* Pieces of about this many bytes, cut after a space and never inside a character. */
#define REPLAY_PIECE_BYTES 24

static int emit(mk_ctx *ctx, mk_buf *chunk, const char *content, size_t content_len, bool usage_only)
{
    struct mk_chunk c = {mk_buf_slice(chunk), {content, content_len}, usage_only};
    int rc = mk_pipeline_chunk(ctx, &c);
    if (rc < 0) return rc;
    if (mk_api_stream_event(ctx, c.json.ptr, c.json.len) != 0) return MK_ECANCELLED;
    return rc;
}

void mk_api_reply_completion(mk_ctx *ctx, const char *completion_json, size_t len)
{
    if (!ctx->stream) {
        mk_buf body = MK_BUF_INIT;
        int rc = mk_buf_append(&body, completion_json, len);
        if (rc == 0) rc = mk_pipeline_response(ctx, &body);
        if (rc != 0) mk_api_fail(ctx, rc, NULL);
        else mk_api_send(ctx, 200, "application/json", body.data, body.len);
        mk_buf_release(&body);
        return;
    }
    json_object *root = json_tokener_parse(completion_json);
    json_object *choices, *choice, *message, *content, *id, *model, *created, *finish;
    if (!root || !json_object_object_get_ex(root, "choices", &choices) ||
        !(choice = json_object_array_get_idx(choices, 0)) ||
        !json_object_object_get_ex(choice, "message", &message)) {
        json_object_put(root);
        mk_api_fail(ctx, MK_EINTERNAL, "could not replay the answer as a stream");
        return;
    }
    json_object_object_get_ex(message, "content", &content);
    json_object_object_get_ex(root, "id", &id);
    json_object_object_get_ex(root, "model", &model);
    json_object_object_get_ex(root, "created", &created);
    json_object_object_get_ex(choice, "finish_reason", &finish);
    const char *sid = id ? json_object_get_string(id) : "chatcmpl-mayak";
    const char *smodel = model ? json_object_get_string(model) : ctx->model;
    int64_t screated = created ? json_object_get_int64(created) : 0;
    const char *text = content ? json_object_get_string(content) : "";
    size_t text_len = content ? (size_t)json_object_get_string_len(content) : 0;

    mk_api_stream_start(ctx);
    mk_buf chunk = MK_BUF_INIT;
    int rc = 0;
    json_object *delta = json_object_new_object();
    json_object_object_add(delta, "role", json_object_new_string("assistant"));
    json_object_object_add(delta, "content", json_object_new_string(""));
    mk_openai_chunk_json(&chunk, sid, screated, smodel, delta, NULL);
    json_object_put(delta);
    rc = emit(ctx, &chunk, "", 0, false);

    size_t pos = 0;
    while (rc == 0 && pos < text_len) {
        size_t end = pos + REPLAY_PIECE_BYTES < text_len ? pos + REPLAY_PIECE_BYTES : text_len;
        while (end < text_len && text[end - 1] != ' ' && text[end - 1] != '\n' && end - pos < 4 * REPLAY_PIECE_BYTES)
            end++;
        end = pos + mk_utf8_complete_prefix(text + pos, end - pos);
        if (end == pos) end = text_len; /* cannot happen with valid UTF-8; stay safe */
        delta = json_object_new_object();
        json_object_object_add(delta, "content", json_object_new_string_len(text + pos, (int)(end - pos)));
        mk_buf_reset(&chunk);
        mk_openai_chunk_json(&chunk, sid, screated, smodel, delta, NULL);
        json_object_put(delta);
        rc = emit(ctx, &chunk, text + pos, end - pos, false);
        pos = end;
    }
    if (rc == 0) {
        delta = json_object_new_object();
        mk_buf_reset(&chunk);
        mk_openai_chunk_json(&chunk, sid, screated, smodel, delta, finish ? json_object_get_string(finish) : "stop");
        json_object_put(delta);
        rc = emit(ctx, &chunk, "", 0, false);
    }
    if (rc == 0 && ctx->include_usage && ctx->has_usage) {
        mk_buf_reset(&chunk);
        mk_openai_usage_chunk_json(&chunk, sid, screated, smodel, &ctx->usage);
        rc = emit(ctx, &chunk, "", 0, true);
    }
    mk_buf_release(&chunk);
    json_object_put(root);
    if (rc < 0 && rc != MK_ECANCELLED) {
        mk_api_fail(ctx, rc, NULL);
        return;
    }
    mk_api_stream_end(ctx, rc == 0 || rc == MK_FILTER_DONE);
}
