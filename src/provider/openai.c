/*
 * openai: adapter for any OpenAI-compatible server (OpenAI, Azure-style gateways,
 * vLLM, llama.cpp, Ollama's /v1, OpenRouter...).
 *
 * The wire format is already Mayak's, so this adapter mostly checks: replies are
 * validated strictly and streamed chunks are relayed byte for byte. Streaming always
 * asks for usage upstream (stream_options.include_usage) because accounting needs
 * it; the usage-only chunk is flagged so the API layer can drop it when the client
 * did not ask for it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "provider/mk_provider.h"
#include "provider/provider_int.h"

static int add_auth_headers(mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *out,
                            bool stream)
{
    const char *key = p->config->api_key;
    int rc = mk_upstream_request_add_header(out, "Content-Type: application/json");
    if (!rc) rc = mk_upstream_request_add_header(out, "Accept: %s", stream ? "text/event-stream" : "application/json");
    if (!rc && key && key[0]) rc = mk_upstream_request_add_header(out, "Authorization: Bearer %s", key);
    if (!rc) rc = mk_add_common_headers(p, call, out);
    return rc;
}

static int openai_build_chat(mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *out)
{
    if (!call->request || !json_object_is_type(call->request, json_type_object) || !call->model) return MK_EINVAL;
    if (!p->config->base_url) return MK_ECONFIG;
    int rc = mk_url_join(&out->url, p->config->base_url, "chat/completions");
    if (!rc) rc = add_auth_headers(p, call, out, call->stream);
    if (rc) return rc;

    /* A shallow copy: the client's values are shared (reference counted), only the
     * fields we own differ. The client's request itself is never modified. */
    json_object *body = json_object_new_object();
    if (!body) return MK_ENOMEM;
    rc = mk_json_add_str(body, "model", call->model, strlen(call->model));
    json_object_object_foreach(call->request, key, val) {
        if (rc) break;
        if (!strcmp(key, "model") || !strcmp(key, "stream") || !strcmp(key, "stream_options")) continue;
        if (json_object_object_add(body, key, json_object_get(val))) {
            json_object_put(val);
            rc = MK_ENOMEM;
        }
    }
    if (!rc && call->stream) {
        json_object *so = NULL;
        json_object *client_so = mk_json_get(call->request, "stream_options", json_type_object);
        if (client_so) { /* keep other stream options the client set */
            if (json_object_deep_copy(client_so, &so, NULL)) so = NULL;
        } else {
            so = json_object_new_object();
        }
        if (!so) rc = MK_ENOMEM;
        if (!rc) rc = mk_json_add(so, "include_usage", json_object_new_boolean(1));
        if (!rc) rc = mk_json_add(body, "stream", json_object_new_boolean(1));
        if (!rc) {
            rc = mk_json_add(body, "stream_options", so);
            so = NULL;
        }
        json_object_put(so);
    }
    if (!rc) rc = mk_buf_append_json(&out->body, body);
    json_object_put(body);
    return rc;
}

static int openai_decode_chat(mk_provider *p, const struct mk_chat_call *call, mk_slice body, mk_buf *out_json,
                              struct mk_usage *usage, struct mk_provider_error *err)
{
    memset(usage, 0, sizeof *usage);
    json_object *root = mk_json_parse_strict(NULL, body, "reply", err);
    if (!root) return err->code;
    int rc = 0;
    json_object *e = NULL;
    if (json_object_object_get_ex(root, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        rc = mk_error_from_object(e, 0, err);
        goto out;
    }
    const char *object = mk_json_get_str(root, "object");
    if (object && strcmp(object, "chat.completion") != 0) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply is a \"%.64s\", not a chat.completion", object);
        goto out;
    }
    json_object *choices = mk_json_get(root, "choices", json_type_array);
    if (!choices) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply has no \"choices\" array");
        goto out;
    }
    size_t n = json_object_array_length(choices);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(choices, i);
        json_object *msg = mk_json_get(c, "message", json_type_object);
        json_object *content = NULL;
        if (!msg) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply choice %zu has no \"message\" object", i);
            goto out;
        }
        if (json_object_object_get_ex(msg, "content", &content) && content &&
            !json_object_is_type(content, json_type_string) && !json_object_is_type(content, json_type_array)) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply choice %zu has a malformed content", i);
            goto out;
        }
    }
    json_object *u = NULL;
    if (json_object_object_get_ex(root, "usage", &u) && u && !json_object_is_type(u, json_type_null) &&
        !mk_openai_parse_usage(u, usage)) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply has a malformed \"usage\"");
        goto out;
    }
    /* Relayed byte for byte once validated (the common case: no re-serialising);
     * re-serialised only when raw control characters make the bytes invalid JSON for
     * strict clients: json-c's output always escapes them. */
    if (mk_json_has_raw_controls(body)) rc = mk_buf_append_json(out_json, root);
    else rc = mk_buf_append_slice(out_json, body);
    if (rc) mk_perr(err, rc, true, "cannot hold the reply");
out:
    json_object_put(root);
    return rc;
}

/* --- streaming -------------------------------------------------------------- */

static int openai_on_event(void *arg, mk_slice data)
{
    mk_stream_decoder *d = arg;
    struct mk_provider_error *err = d->err;
    if (d->done) return 0; /* nothing counts after [DONE] */
    if (mk_slice_eq(data, MK_SLICE_LIT("[DONE]"))) {
        d->done = true;
        return 0;
    }
    json_object *obj = mk_json_parse_strict(d->tok, data, "stream event", err);
    if (!obj) return mk_stream_fail(d, err);
    int rc = 0;
    json_object *e = NULL;
    if (json_object_object_get_ex(obj, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        mk_error_from_object(e, 0, err);
        rc = mk_stream_fail(d, err);
        goto out;
    }
    struct mk_stream_event ev;
    memset(&ev, 0, sizeof ev);
    json_object *u = NULL;
    if (json_object_object_get_ex(obj, "usage", &u) && u && !json_object_is_type(u, json_type_null)) {
        if (!mk_openai_parse_usage(u, &ev.usage)) {
            mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has a malformed \"usage\"");
            rc = mk_stream_fail(d, err);
            goto out;
        }
        ev.has_usage = true;
    }
    json_object *choices = NULL;
    bool has_choices = json_object_object_get_ex(obj, "choices", &choices) && choices;
    if (has_choices && !json_object_is_type(choices, json_type_array)) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has a malformed \"choices\"");
        rc = mk_stream_fail(d, err);
        goto out;
    }
    if (!has_choices && !ev.has_usage) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has neither choices nor usage");
        rc = mk_stream_fail(d, err);
        goto out;
    }
    size_t n = has_choices ? json_object_array_length(choices) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(choices, i);
        json_object *delta = NULL;
        if (!json_object_is_type(c, json_type_object) ||
            (json_object_object_get_ex(c, "delta", &delta) && delta && !json_object_is_type(delta, json_type_object))) {
            mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk choice %zu is malformed", i);
            rc = mk_stream_fail(d, err);
            goto out;
        }
        if (i > 0) continue;
        json_object *content = mk_json_get(mk_json_get(c, "delta", json_type_object), "content", json_type_string);
        if (content)
            ev.content = (mk_slice){json_object_get_string(content), (size_t)json_object_get_string_len(content)};
        ev.finish_reason = mk_json_get_str(c, "finish_reason");
    }
    ev.usage_only = n == 0 && ev.has_usage;
    if (memchr(data.ptr, '\n', data.len)) {
        /* A multi-line event: relaying it as is would break the client's SSE framing. */
        mk_buf_reset(&d->chunk);
        if (mk_buf_append_json(&d->chunk, obj)) {
            mk_perr(err, MK_ENOMEM, true, "out of memory");
            rc = mk_stream_fail(d, err);
            goto out;
        }
        ev.chunk_json = mk_buf_slice(&d->chunk);
    } else {
        ev.chunk_json = data; /* relayed byte for byte */
    }
    rc = mk_stream_emit(d, &ev);
out:
    json_object_put(obj);
    return rc;
}

static mk_stream_decoder *openai_stream_new(mk_provider *p, const struct mk_chat_call *call)
{
    return mk_stream_decoder_alloc(p, call);
}

static int openai_stream_feed(mk_stream_decoder *d, const char *data, size_t len, mk_stream_sink_fn sink, void *arg,
                              struct mk_provider_error *err)
{
    return mk_sse_decoder_feed(d, data, len, openai_on_event, sink, arg, err);
}

static int openai_stream_finish(mk_stream_decoder *d, mk_stream_sink_fn sink, void *arg,
                                struct mk_provider_error *err)
{
    return mk_sse_decoder_finish(d, openai_on_event, sink, arg, err);
}

/* --- embeddings ------------------------------------------------------------- */

static int openai_build_embed(mk_provider *p, const struct mk_embed_call *call, struct mk_upstream_request *out)
{
    if (!call->model || call->ninputs == 0 || call->ninputs > MK_MAX_EMBED_INPUTS) return MK_EINVAL;
    if (!p->config->base_url) return MK_ECONFIG;
    int rc = mk_url_join(&out->url, p->config->base_url, "embeddings");
    if (!rc) rc = add_auth_headers(p, NULL, out, false);
    if (rc) return rc;
    rc = mk_buf_append_str(&out->body, "{\"model\":");
    if (!rc) rc = mk_buf_append_json_string(&out->body, call->model, strlen(call->model));
    if (!rc) rc = mk_buf_append_str(&out->body, ",\"input\":[");
    for (size_t i = 0; !rc && i < call->ninputs; i++) {
        if (i) rc = mk_buf_append_char(&out->body, ',');
        if (!rc) rc = mk_buf_append_json_string(&out->body, call->inputs[i], strlen(call->inputs[i]));
    }
    if (!rc) rc = mk_buf_append_str(&out->body, "],\"encoding_format\":\"float\"}");
    return rc;
}

static int openai_decode_embed(mk_provider *p, const struct mk_embed_call *call, mk_slice body, json_object *vectors,
                               struct mk_usage *usage, struct mk_provider_error *err)
{
    return mk_decode_openai_embeddings(body, call->ninputs, vectors, usage, err);
}

const struct mk_provider_ops mk_provider_openai_ops = {
    .type = "openai",
    .build_chat = openai_build_chat,
    .decode_chat = openai_decode_chat,
    .stream_new = openai_stream_new,
    .stream_feed = openai_stream_feed,
    .stream_finish = openai_stream_finish,
    .stream_free = mk_stream_decoder_free,
    .max_embed_batch = MK_MAX_EMBED_INPUTS,
    .build_embed = openai_build_embed,
    .decode_embed = openai_decode_embed,
};
