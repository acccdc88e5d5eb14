/*
 * fake_yandex: the YandexGPT (Yandex Cloud Foundation Models) wire format.
 * Messages carry "text" rather than "content", the model is a URI (gpt://folder/
 * model/version), counts are strings (proto int64 in JSON), and a stream is
 * newline-delimited JSON where each line repeats the WHOLE text so far.
 */
#include "fake.h"

#include <stdlib.h>
#include <string.h>

#define MODEL_VERSION "23.10.2024"
/* Yandex's text-search embeddings have 256 dimensions; ours match so Mayak's
 * configuration for the real service works against the fake. */
#define EMBED_DIMS 256

/* x-folder-id plus "Api-Key ..." or "Bearer ..." (any non-empty key). */
static bool authorized(fake_server *fs, mk_http_req *req)
{
    mk_slice folder = mk_http_req_header(req, "x-folder-id");
    mk_slice auth = mk_http_req_header(req, "Authorization");
    bool ok = folder.len > 0 && ((auth.len > 8 && memcmp(auth.ptr, "Api-Key ", 8) == 0) ||
                                 (auth.len > 7 && memcmp(auth.ptr, "Bearer ", 7) == 0));
    if (!ok) fake_send_error(fs, req, FAKE_WIRE_YANDEX, 401, "Unauthenticated", NULL);
    return ok;
}

static void append_result(mk_buf *b, const char *text, size_t len, bool final, int input, int completion)
{
    mk_buf_append_str(b, "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":");
    mk_buf_append_json_string(b, text, len);
    mk_buf_printf(b,
                  "},\"status\":\"%s\"}],\"usage\":{\"inputTextTokens\":\"%d\",\"completionTokens\":\"%d\","
                  "\"totalTokens\":\"%d\"},\"modelVersion\":\"" MODEL_VERSION "\"}}",
                  final ? "ALTERNATIVE_STATUS_FINAL" : "ALTERNATIVE_STATUS_PARTIAL", input, completion,
                  input + completion);
}

static json_object *parse_body(fake_server *fs, mk_http_req *req, const char *uri_prefix)
{
    json_object *body = fake_parse_json(req->body.ptr, req->body.len);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        fake_send_error(fs, req, FAKE_WIRE_YANDEX, 400, "Request body is not valid JSON", NULL);
        return NULL;
    }
    const char *uri = fake_json_str(body, "modelUri");
    if (!uri || strncmp(uri, uri_prefix, strlen(uri_prefix)) != 0) {
        json_object_put(body);
        char msg[96];
        snprintf(msg, sizeof msg, "modelUri must start with %s", uri_prefix);
        fake_send_error(fs, req, FAKE_WIRE_YANDEX, 400, msg, NULL);
        return NULL;
    }
    return body;
}

void fake_yandex_completion(fake_server *fs, mk_http_req *req)
{
    if (!authorized(fs, req)) return;
    json_object *body = parse_body(fs, req, "gpt://");
    if (!body) return;
    fake_chat c;
    if (fake_chat_prepare(fs, req, FAKE_WIRE_YANDEX, body, "text", &c)) {
        json_object_put(body);
        return;
    }
    json_object *co, *st;
    c.stream = json_object_object_get_ex(body, "completionOptions", &co) && json_object_is_type(co, json_type_object) &&
               json_object_object_get_ex(co, "stream", &st) && json_object_get_boolean(st);
    if (c.opts.status && (c.opts.status < 200 || c.opts.status > 299)) {
        fake_send_error(fs, req, FAKE_WIRE_YANDEX, c.opts.status, "fake provider: scripted failure", &c.opts);
        fake_chat_release(&c);
        json_object_put(body);
        return;
    }
    int status = c.opts.status ? c.opts.status : 200;
    size_t *ends = NULL, nchunks = 0;
    fake_split_chunks(&c.answer, c.opts.chunks, &ends, &nchunks);
    int completion = fake_tokens(c.answer.len);
    const char *answer = c.answer.data ? c.answer.data : "";

    fake_plan p;
    fake_plan_init(&p, status, "application/json", c.stream);
    if (!c.stream) {
        append_result(&p.body, answer, c.answer.len, true, c.prompt_tokens, completion);
    } else {
        for (size_t i = 0; i < nchunks; i++) {
            append_result(&p.body, answer, ends[i], false, c.prompt_tokens, fake_tokens(ends[i]));
            mk_buf_append_char(&p.body, '\n');
            fake_plan_end_piece(&p);
        }
        append_result(&p.body, answer, c.answer.len, true, c.prompt_tokens, completion);
        mk_buf_append_char(&p.body, '\n');
        fake_plan_end_piece(&p);
    }
    fake_send(fs, req, &p, &c.opts);
    free(ends);
    fake_chat_release(&c);
    json_object_put(body);
}

void fake_yandex_embedding(fake_server *fs, mk_http_req *req)
{
    if (!authorized(fs, req)) return;
    json_object *body = parse_body(fs, req, "emb://");
    if (!body) return;
    json_object *t;
    if (!json_object_object_get_ex(body, "text", &t) || !json_object_is_type(t, json_type_string)) {
        json_object_put(body);
        fake_send_error(fs, req, FAKE_WIRE_YANDEX, 400, "text is required", NULL);
        return;
    }
    const char *text = json_object_get_string(t);
    size_t len = (size_t)json_object_get_string_len(t);
    fake_opts o;
    fake_opts_from_mode(fs, &o);
    char err[160];
    if (fake_directive_apply(text, len, &o, err, sizeof err)) {
        json_object_put(body);
        fake_send_error(fs, req, FAKE_WIRE_YANDEX, 400, err, NULL);
        return;
    }
    if (o.status && (o.status < 200 || o.status > 299)) {
        json_object_put(body);
        fake_send_error(fs, req, FAKE_WIRE_YANDEX, o.status, "fake provider: scripted failure", &o);
        return;
    }
    mk_buf clean = MK_BUF_INIT;
    fake_strip_directive(text, len, &clean);
    float vec[EMBED_DIMS];
    fake_embed(clean.data ? clean.data : "", clean.len, EMBED_DIMS, vec);
    mk_buf_release(&clean);
    fake_plan p;
    fake_plan_init(&p, o.status ? o.status : 200, "application/json", false);
    mk_buf_append_str(&p.body, "{\"embedding\":");
    fake_append_vector(&p.body, vec, EMBED_DIMS, false);
    mk_buf_printf(&p.body, ",\"numTokens\":\"%d\",\"modelVersion\":\"" MODEL_VERSION "\"}", fake_tokens(len));
    json_object_put(body);
    fake_send(fs, req, &p, &o);
}
