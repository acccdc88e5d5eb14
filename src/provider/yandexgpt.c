/*
 * yandexgpt: adapter for Yandex Cloud's native Foundation Models API
 * (foundationModels/v1/completion and textEmbedding).
 *
 * Differences from OpenAI that this file absorbs:
 * - messages carry "text", not "content"; the model is a URI "gpt://<folder>/<model>";
 *   maxTokens and every token count are JSON strings (int64 in proto3 JSON);
 * - a streamed reply is newline-delimited JSON where each line repeats the WHOLE text
 *   so far. We send the client only the new suffix, cut at UTF-8 boundaries. A line
 *   whose text does not extend what was already sent cannot be expressed as OpenAI
 *   deltas (the client already shows the old text), so it is a malformed reply
 *   (MK_EUPSTREAM_BADREPLY) rather than a silent duplicate or rewrite;
 * - embeddings take one text per call (max_embed_batch = 1) and a doc/query model.
 *
 * Tools are not translated: a request with tools or tool messages is refused with
 * MK_EINVAL rather than answered by a model that silently cannot call them.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"
#include "provider/mk_provider.h"
#include "provider/provider_int.h"

#define YANDEX_DEFAULT_BASE_URL "https://llm.api.cloud.yandex.net"

static const char *base_url(const mk_provider *p)
{
    return p->config->base_url && p->config->base_url[0] ? p->config->base_url : YANDEX_DEFAULT_BASE_URL;
}

static int auth_headers(mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *out)
{
    const struct mk_provider_config *cfg = p->config;
    int rc;
    if (cfg->api_key && cfg->api_key[0])
        rc = mk_upstream_request_add_header(out, "Authorization: Api-Key %s", cfg->api_key);
    else if (cfg->iam_token && cfg->iam_token[0])
        rc = mk_upstream_request_add_header(out, "Authorization: Bearer %s", cfg->iam_token);
    else
        return MK_ECONFIG;
    if (!rc && cfg->folder_id && cfg->folder_id[0])
        rc = mk_upstream_request_add_header(out, "x-folder-id: %s", cfg->folder_id);
    if (!rc) rc = mk_upstream_request_add_header(out, "Content-Type: application/json");
    if (!rc) rc = mk_upstream_request_add_header(out, "Accept: application/json");
    if (!rc) rc = mk_add_common_headers(p, call, out);
    return rc;
}

/* "<scheme>://<folder>/<model>" unless the model is already a full URI. */
static int model_uri(mk_provider *p, const char *scheme, const char *model, mk_buf *out)
{
    size_t slen = strlen(scheme);
    if (!strncmp(model, scheme, slen) && !strncmp(model + slen, "://", 3)) return mk_buf_append_str(out, model);
    const char *folder = p->config->folder_id;
    if (!folder || !folder[0]) return MK_ECONFIG;
    return mk_buf_printf(out, "%s://%s/%s", scheme, folder, model);
}

static int translate_messages(json_object *messages, json_object *out)
{
    size_t n = json_object_array_length(messages);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        const char *role = mk_json_get_str(m, "role");
        if (!role) return MK_EINVAL;
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") != 0 && strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
            return MK_EINVAL; /* tool and function results: see the file comment */
        if (mk_json_get(m, "tool_calls", json_type_array)) return MK_EINVAL;
        json_object *content = NULL;
        json_object_object_get_ex(m, "content", &content);
        mk_buf text = MK_BUF_INIT;
        int rc = mk_openai_content_text(content, &text);
        json_object *y = rc ? NULL : json_object_new_object();
        if (!rc && !y) rc = MK_ENOMEM;
        if (!rc) rc = mk_json_add_str(y, "role", role, strlen(role));
        if (!rc) rc = mk_json_add_str(y, "text", text.data ? text.data : "", text.len);
        if (!rc) rc = json_object_array_add(out, y) ? MK_ENOMEM : 0;
        if (rc) json_object_put(y);
        mk_buf_release(&text);
        if (rc) return rc;
    }
    return 0;
}

static int completion_options(json_object *req, bool stream, json_object *body)
{
    json_object *o = json_object_new_object();
    if (!o) return MK_ENOMEM;
    int rc = mk_json_add(o, "stream", json_object_new_boolean(stream));
    json_object *t = mk_json_get(req, "temperature", json_type_double);
    if (!rc && t) {
        /* OpenAI's range is 0..2, YandexGPT's 0..1: clamp rather than be refused. */
        double v = json_object_get_double(t);
        if (!isfinite(v) || v < 0) v = 0;
        if (v > 1) v = 1;
        rc = mk_json_add(o, "temperature", json_object_new_double(v));
    }
    json_object *mt = mk_json_get(req, "max_tokens", json_type_int);
    if (!mt) mt = mk_json_get(req, "max_completion_tokens", json_type_int);
    if (!rc && mt) {
        int64_t v = json_object_get_int64(mt);
        if (v < 1) {
            rc = MK_EINVAL;
        } else {
            char num[24];
            int len = snprintf(num, sizeof num, "%lld", (long long)v);
            rc = mk_json_add_str(o, "maxTokens", num, (size_t)len); /* proto3 int64: a string */
        }
    }
    if (!rc) return mk_json_add(body, "completionOptions", o);
    json_object_put(o);
    return rc;
}

static int yandex_build_chat(mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *out)
{
    json_object *req = call->request;
    json_object *messages = mk_json_get(req, "messages", json_type_array);
    if (!messages || !call->model || !call->model[0]) return MK_EINVAL;
    json_object *tools = mk_json_get(req, "tools", json_type_array);
    if (tools && json_object_array_length(tools) > 0) return MK_EINVAL;
    mk_buf uri = MK_BUF_INIT;
    int rc = model_uri(p, "gpt", call->model, &uri);
    if (!rc) rc = mk_url_join(&out->url, base_url(p), "foundationModels/v1/completion");
    if (!rc) rc = auth_headers(p, call, out);
    json_object *body = rc ? NULL : json_object_new_object();
    json_object *ym = rc ? NULL : json_object_new_array();
    if (!rc && (!body || !ym)) rc = MK_ENOMEM;
    if (!rc) rc = mk_json_add_str(body, "modelUri", uri.data, uri.len);
    if (!rc) rc = completion_options(req, call->stream, body);
    if (!rc) rc = translate_messages(messages, ym);
    if (!rc) {
        rc = mk_json_add(body, "messages", ym);
        ym = NULL;
    }
    if (!rc) rc = mk_buf_append_json(&out->body, body);
    json_object_put(ym);
    json_object_put(body);
    mk_buf_release(&uri);
    return rc;
}

/* --- replies ---------------------------------------------------------------- */

enum alt_state { ALT_PARTIAL, ALT_FINAL, ALT_BAD };

/* Finish reason for a status; ALT_PARTIAL for the in-progress status and for
 * statuses we do not know (a later line will end the alternative). */
static enum alt_state alt_status(const char *status, const char **finish)
{
    *finish = NULL;
    if (!status) return ALT_BAD;
    if (!strcmp(status, "ALTERNATIVE_STATUS_FINAL")) *finish = "stop";
    else if (!strcmp(status, "ALTERNATIVE_STATUS_TRUNCATED_FINAL")) *finish = "length";
    else if (!strcmp(status, "ALTERNATIVE_STATUS_CONTENT_FILTER")) *finish = "content_filter";
    else if (!strcmp(status, "ALTERNATIVE_STATUS_TOOL_CALLS")) *finish = "tool_calls";
    else return ALT_PARTIAL;
    return ALT_FINAL;
}

/* The "result" object of a reply or stream line ({"result":{..}} or bare). */
static json_object *result_of(json_object *root)
{
    json_object *r = mk_json_get(root, "result", json_type_object);
    return r ? r : root;
}

/* Yandex usage (string counts) into ours. Absent: true with zeros; malformed: false. */
static bool parse_usage(json_object *result, struct mk_usage *u, bool *present)
{
    memset(u, 0, sizeof *u);
    *present = false;
    json_object *us = NULL;
    if (!json_object_object_get_ex(result, "usage", &us) || !us || json_object_is_type(us, json_type_null))
        return true;
    if (!json_object_is_type(us, json_type_object)) return false;
    if (!mk_json_get_count(us, "inputTextTokens", &u->prompt_tokens) ||
        !mk_json_get_count(us, "completionTokens", &u->completion_tokens))
        return false;
    if (!mk_json_get_count(us, "totalTokens", &u->total_tokens))
        u->total_tokens = u->prompt_tokens + u->completion_tokens;
    *present = true;
    return true;
}

/* Text of an alternative; "" when a message has no text (e.g. a tool-call list). */
static bool alt_text(json_object *alt, mk_slice *text)
{
    json_object *msg = mk_json_get(alt, "message", json_type_object);
    if (!msg) return false;
    json_object *t = NULL;
    if (!json_object_object_get_ex(msg, "text", &t) || !t || json_object_is_type(t, json_type_null)) {
        *text = (mk_slice){"", 0};
        return true;
    }
    if (!json_object_is_type(t, json_type_string)) return false;
    *text = (mk_slice){json_object_get_string(t), (size_t)json_object_get_string_len(t)};
    return true;
}

static int add_choice(json_object *choices, size_t i, mk_slice text, const char *finish)
{
    json_object *c = json_object_new_object();
    json_object *m = json_object_new_object();
    int rc = (c && m) ? 0 : MK_ENOMEM;
    if (!rc) rc = mk_json_add(c, "index", json_object_new_int64((int64_t)i));
    if (!rc) rc = mk_json_add_str(m, "role", "assistant", 9);
    if (!rc) rc = mk_json_add_str(m, "content", text.ptr, text.len);
    if (!rc) {
        rc = mk_json_add(c, "message", m); /* takes m, even on failure */
        m = NULL;
    }
    if (!rc) rc = mk_json_add_str(c, "finish_reason", finish, strlen(finish));
    if (!rc) {
        rc = json_object_array_add(choices, c) ? MK_ENOMEM : 0;
        if (!rc) c = NULL;
    }
    json_object_put(m);
    json_object_put(c);
    return rc;
}

static int yandex_decode_chat(mk_provider *p, const struct mk_chat_call *call, mk_slice body, mk_buf *out_json,
                              struct mk_usage *usage, struct mk_provider_error *err)
{
    memset(usage, 0, sizeof *usage);
    json_object *root = mk_json_parse_strict(NULL, body, "reply", err);
    if (!root) return err->code;
    json_object *out = NULL, *choices = NULL;
    int rc = 0;
    json_object *e = NULL;
    if (json_object_object_get_ex(root, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        rc = mk_error_from_object(e, 0, err);
        goto done;
    }
    json_object *result = result_of(root);
    json_object *alts = mk_json_get(result, "alternatives", json_type_array);
    bool has_usage;
    if (!alts) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply has no \"alternatives\" array");
        goto done;
    }
    if (!parse_usage(result, usage, &has_usage)) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply has a malformed \"usage\"");
        goto done;
    }
    out = json_object_new_object();
    choices = json_object_new_array();
    if (!out || !choices) goto nomem;
    if (mk_json_add_str(out, "id", call->response_id ? call->response_id : "",
                        call->response_id ? strlen(call->response_id) : 0) ||
        mk_json_add_str(out, "object", "chat.completion", 15) ||
        mk_json_add(out, "created", json_object_new_int64(call->created)) ||
        mk_json_add_str(out, "model", call->model ? call->model : "", call->model ? strlen(call->model) : 0))
        goto nomem;
    size_t n = json_object_array_length(alts);
    for (size_t i = 0; i < n; i++) {
        json_object *alt = json_object_array_get_idx(alts, i);
        mk_slice text;
        const char *finish;
        if (!alt_text(alt, &text)) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply alternative %zu has no message", i);
            goto done;
        }
        if (alt_status(mk_json_get_str(alt, "status"), &finish) != ALT_FINAL) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply alternative %zu is not final", i);
            goto done;
        }
        if (add_choice(choices, i, text, finish)) goto nomem;
    }
    if (json_object_object_add(out, "choices", choices)) goto nomem;
    choices = NULL;
    if (mk_usage_json_add(out, usage) || mk_buf_append_json(out_json, out)) goto nomem;
    goto done;
nomem:
    rc = mk_perr(err, MK_ENOMEM, true, "out of memory");
done:
    json_object_put(choices);
    json_object_put(out);
    json_object_put(root);
    return rc;
}

/* --- streaming -------------------------------------------------------------- */

static int fail(mk_stream_decoder *d, const char *msg)
{
    mk_perr(d->err, MK_EUPSTREAM_BADREPLY, true, "%s", msg);
    return mk_stream_fail(d, d->err);
}

static int emit(mk_stream_decoder *d, mk_slice content, const char *finish)
{
    json_object *delta = json_object_new_object();
    int rc = delta ? 0 : MK_ENOMEM;
    if (!rc && !d->role_sent) rc = mk_json_add_str(delta, "role", "assistant", 9);
    if (!rc && content.len) rc = mk_json_add_str(delta, "content", content.ptr, content.len);
    mk_buf_reset(&d->chunk);
    if (!rc) rc = mk_openai_chunk_json(&d->chunk, d->id, d->created, d->model, delta, finish);
    json_object_put(delta);
    if (rc) {
        mk_perr(d->err, MK_ENOMEM, true, "out of memory");
        return mk_stream_fail(d, d->err);
    }
    d->role_sent = true;
    struct mk_stream_event ev;
    memset(&ev, 0, sizeof ev);
    ev.chunk_json = mk_buf_slice(&d->chunk);
    ev.content = content;
    ev.finish_reason = finish;
    return mk_stream_emit(d, &ev);
}

static int emit_usage(mk_stream_decoder *d, const struct mk_usage *u)
{
    mk_buf_reset(&d->chunk);
    if (mk_openai_usage_chunk_json(&d->chunk, d->id, d->created, d->model, u)) {
        mk_perr(d->err, MK_ENOMEM, true, "out of memory");
        return mk_stream_fail(d, d->err);
    }
    struct mk_stream_event ev;
    memset(&ev, 0, sizeof ev);
    ev.chunk_json = mk_buf_slice(&d->chunk);
    ev.usage_only = true;
    ev.has_usage = true;
    ev.usage = *u;
    return mk_stream_emit(d, &ev);
}

static int on_result(mk_stream_decoder *d, json_object *result)
{
    json_object *alts = mk_json_get(result, "alternatives", json_type_array);
    if (!alts || json_object_array_length(alts) == 0) return fail(d, "upstream stream line has no alternatives");
    json_object *alt = json_object_array_get_idx(alts, 0);
    mk_slice text;
    const char *finish;
    if (!alt_text(alt, &text)) return fail(d, "upstream stream line has no message text");
    enum alt_state state = alt_status(mk_json_get_str(alt, "status"), &finish);
    if (state == ALT_BAD) return fail(d, "upstream stream line has no status");
    struct mk_usage usage;
    bool has_usage = false;
    if (state == ALT_FINAL && !parse_usage(result, &usage, &has_usage))
        return fail(d, "upstream stream line has a malformed \"usage\"");

    mk_slice sent = mk_buf_slice(&d->text);
    if (text.len < sent.len || memcmp(text.ptr, sent.ptr, sent.len) != 0)
        return fail(d, "upstream stream text does not continue the text already sent");
    mk_slice add = {text.ptr + sent.len, text.len - sent.len};
    /* Whole characters only: a partial one waits for the next line. At the end
     * everything goes out, whatever it is. */
    if (state != ALT_FINAL) add.len = mk_utf8_complete_prefix(add.ptr, add.len);
    if (add.len && mk_buf_append_slice(&d->text, add))
        return fail(d, "upstream stream text is too long");
    int rc = 0;
    if (add.len || state == ALT_FINAL) rc = emit(d, add, finish);
    if (rc || state != ALT_FINAL) return rc;
    d->done = true;
    return has_usage ? emit_usage(d, &usage) : 0;
}

static int yandex_on_line(void *arg, mk_slice line, bool stable)
{
    mk_stream_decoder *d = arg;
    size_t i = 0;
    while (i < line.len && (line.ptr[i] == ' ' || line.ptr[i] == '\t')) i++;
    if (i == line.len || d->done) return 0; /* blank lines; anything after the final line */
    json_object *obj = mk_json_parse_strict(d->tok, line, "stream line", d->err);
    if (!obj) return mk_stream_fail(d, d->err);
    int rc;
    json_object *e = NULL;
    if (json_object_object_get_ex(obj, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        mk_error_from_object(e, 0, d->err);
        rc = mk_stream_fail(d, d->err);
    } else {
        rc = on_result(d, result_of(obj));
    }
    json_object_put(obj);
    return rc;
}

static mk_stream_decoder *yandex_stream_new(mk_provider *p, const struct mk_chat_call *call)
{
    return mk_stream_decoder_alloc(p, call);
}

static int lines_result(mk_stream_decoder *d, int rc)
{
    if (rc == MK_ETOOBIG && !d->failed) {
        mk_perr(d->err, MK_EUPSTREAM_BADREPLY, true, "upstream stream line exceeds %d bytes",
                MK_MAX_UPSTREAM_EVENT_BYTES);
        return mk_stream_fail(d, d->err);
    }
    return rc;
}

static int yandex_stream_feed(mk_stream_decoder *d, const char *data, size_t len, mk_stream_sink_fn sink, void *arg,
                              struct mk_provider_error *err)
{
    if (d->failed) {
        *err = d->fail_err;
        return err->code;
    }
    d->sink = sink;
    d->sink_arg = arg;
    d->err = err;
    return lines_result(d, mk_lines_feed(&d->lines, data, len, yandex_on_line, d));
}

static int yandex_stream_finish(mk_stream_decoder *d, mk_stream_sink_fn sink, void *arg,
                                struct mk_provider_error *err)
{
    if (d->failed) {
        *err = d->fail_err;
        return err->code;
    }
    d->sink = sink;
    d->sink_arg = arg;
    d->err = err;
    int rc = lines_result(d, mk_lines_finish(&d->lines, yandex_on_line, d));
    if (rc) return rc;
    if (!d->done) return fail(d, "upstream stream ended before a final status");
    return 0;
}

/* --- embeddings ------------------------------------------------------------- */

static int yandex_build_embed(mk_provider *p, const struct mk_embed_call *call, struct mk_upstream_request *out)
{
    if (call->ninputs != 1 || !call->inputs || !call->inputs[0]) return MK_EINVAL;
    const char *model = call->model;
    mk_buf uri = MK_BUF_INIT;
    int rc;
    /* The doc/query pair is one model to the caller; which half depends on the call. */
    if (!model || !model[0] || !strncmp(model, "text-search-", 12))
        rc = model_uri(p, "emb", call->query ? "text-search-query/latest" : "text-search-doc/latest", &uri);
    else
        rc = model_uri(p, "emb", model, &uri);
    if (!rc) rc = mk_url_join(&out->url, base_url(p), "foundationModels/v1/textEmbedding");
    if (!rc) rc = auth_headers(p, NULL, out);
    if (!rc) rc = mk_buf_append_str(&out->body, "{\"modelUri\":");
    if (!rc) rc = mk_buf_append_json_string(&out->body, uri.data, uri.len);
    if (!rc) rc = mk_buf_append_str(&out->body, ",\"text\":");
    if (!rc) rc = mk_buf_append_json_string(&out->body, call->inputs[0], strlen(call->inputs[0]));
    if (!rc) rc = mk_buf_append_char(&out->body, '}');
    mk_buf_release(&uri);
    return rc;
}

/* A vector component: a JSON number or (proto3 JSON for doubles may be) a string. */
static bool component(json_object *x, double *out)
{
    if (json_object_is_type(x, json_type_int) || json_object_is_type(x, json_type_double)) {
        *out = json_object_get_double(x);
        return isfinite(*out);
    }
    if (!json_object_is_type(x, json_type_string)) return false;
    const char *s = json_object_get_string(x);
    size_t len = (size_t)json_object_get_string_len(x);
    if (len == 0 || len > 64 || strlen(s) != len) return false;
    char *end = NULL;
    errno = 0;
    *out = strtod(s, &end);
    return end == s + len && errno == 0 && isfinite(*out);
}

static int yandex_decode_embed(mk_provider *p, const struct mk_embed_call *call, mk_slice body,
                               json_object *vectors, struct mk_usage *usage, struct mk_provider_error *err)
{
    memset(usage, 0, sizeof *usage);
    json_object *root = mk_json_parse_strict(NULL, body, "embeddings reply", err);
    if (!root) return err->code;
    int rc = 0;
    json_object *vec = NULL;
    json_object *e = NULL;
    if (json_object_object_get_ex(root, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        rc = mk_error_from_object(e, 0, err);
        goto out;
    }
    json_object *emb = mk_json_get(root, "embedding", json_type_array);
    size_t n = emb ? json_object_array_length(emb) : 0;
    if (n == 0) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embeddings reply has no \"embedding\" array");
        goto out;
    }
    int64_t tokens = 0;
    json_object *nt = NULL;
    if (json_object_object_get_ex(root, "numTokens", &nt) && nt && !mk_json_get_count(root, "numTokens", &tokens)) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embeddings reply has a malformed \"numTokens\"");
        goto out;
    }
    vec = json_object_new_array_ext((int)n);
    if (!vec) goto nomem;
    for (size_t i = 0; i < n; i++) {
        double v;
        if (!component(json_object_array_get_idx(emb, i), &v)) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embedding component %zu is not a finite number", i);
            goto out;
        }
        json_object *x = json_object_new_double(v);
        if (!x || json_object_array_add(vec, x)) {
            json_object_put(x);
            goto nomem;
        }
    }
    if (json_object_array_add(vectors, vec)) goto nomem;
    vec = NULL;
    usage->prompt_tokens = usage->total_tokens = tokens;
    goto out;
nomem:
    rc = mk_perr(err, MK_ENOMEM, true, "out of memory");
out:
    json_object_put(vec);
    json_object_put(root);
    return rc;
}

const struct mk_provider_ops mk_provider_yandexgpt_ops = {
    .type = "yandexgpt",
    .build_chat = yandex_build_chat,
    .decode_chat = yandex_decode_chat,
    .stream_new = yandex_stream_new,
    .stream_feed = yandex_stream_feed,
    .stream_finish = yandex_stream_finish,
    .stream_free = mk_stream_decoder_free,
    .max_embed_batch = 1,
    .build_embed = yandex_build_embed,
    .decode_embed = yandex_decode_embed,
};
