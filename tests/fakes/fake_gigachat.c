/*
 * fake_gigachat: the GigaChat wire format. A client first trades its authorization
 * key for an access token (POST /api/v2/oauth, form body, RqUID header), then calls
 * /api/v1/... with "Bearer <token>" until expires_at. Chat looks like OpenAI's, but
 * function calling uses the older "functions"/"function_call" shape with the
 * arguments as a JSON object rather than a string.
 */
#include "fake.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_rand.h"
#include "core/mk_time.h"

#define FUNCTION_ARGS "{\"city\":\"Moscow\"}"

static bool is_uuid(mk_slice s)
{
    if (s.len != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s.ptr[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

/* The value of `scope` in an application/x-www-form-urlencoded body (no escapes are
 * needed for the three valid values, so none are decoded). */
static mk_slice form_scope(mk_slice body)
{
    size_t i = 0;
    while (i < body.len) {
        size_t j = i;
        while (j < body.len && body.ptr[j] != '&') j++;
        if (j - i >= 6 && memcmp(body.ptr + i, "scope=", 6) == 0) return (mk_slice){body.ptr + i + 6, j - i - 6};
        i = j + 1;
    }
    return (mk_slice){NULL, 0};
}

static void remember_token(fake_server *fs, const char *token, int64_t expires_at)
{
    char *slot = fs->token_order[fs->token_next];
    if (slot[0]) json_object_object_del(fs->tokens, slot);
    snprintf(slot, sizeof fs->token_order[0], "%s", token);
    fs->token_next = (fs->token_next + 1) % FAKE_MAX_TOKENS;
    json_object_object_add(fs->tokens, token, json_object_new_int64(expires_at));
}

void fake_gigachat_tokens_release(fake_server *fs)
{
    json_object_put(fs->tokens);
    fs->tokens = json_object_new_object();
    if (fs->token_order) memset(fs->token_order, 0, FAKE_MAX_TOKENS * sizeof fs->token_order[0]);
    fs->token_next = 0;
}

void fake_gigachat_oauth(fake_server *fs, mk_http_req *req)
{
    fs->token_requests++;
    mk_slice auth = mk_http_req_header(req, "Authorization");
    if (auth.len <= 6 || memcmp(auth.ptr, "Basic ", 6) != 0) {
        fake_send_error(fs, req, FAKE_WIRE_GIGACHAT, 401, "Unauthorized", NULL);
        return;
    }
    if (!is_uuid(mk_http_req_header(req, "RqUID"))) {
        fake_send_error(fs, req, FAKE_WIRE_GIGACHAT, 400, "RqUID header must be a UUID", NULL);
        return;
    }
    mk_slice scope = form_scope(req->body);
    if (!mk_slice_eq_cstr(scope, "GIGACHAT_API_PERS") && !mk_slice_eq_cstr(scope, "GIGACHAT_API_B2B") &&
        !mk_slice_eq_cstr(scope, "GIGACHAT_API_CORP")) {
        fake_send_error(fs, req, FAKE_WIRE_GIGACHAT, 400, "scope must be GIGACHAT_API_PERS, _B2B or _CORP", NULL);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[24];
    char token[64] = "fake-gc-";
    mk_rand_bytes(raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) {
        token[8 + 2 * i] = hex[raw[i] >> 4];
        token[9 + 2 * i] = hex[raw[i] & 15];
    }
    token[8 + 2 * sizeof raw] = '\0';
    int64_t expires_at = mk_wall_ms() + fs->token_ttl_ms;
    remember_token(fs, token, expires_at);
    char body[160];
    int n = snprintf(body, sizeof body, "{\"access_token\":\"%s\",\"expires_at\":%lld}", token, (long long)expires_at);
    fake_send_json(req, 200, body, (size_t)n);
}

/* "Bearer <token>" with a token we issued that has not expired. */
static bool authorized(fake_server *fs, mk_http_req *req)
{
    mk_slice auth = mk_http_req_header(req, "Authorization");
    char token[64];
    json_object *exp;
    if (auth.len > 7 && auth.len - 7 < sizeof token && memcmp(auth.ptr, "Bearer ", 7) == 0) {
        memcpy(token, auth.ptr + 7, auth.len - 7);
        token[auth.len - 7] = '\0';
        if (json_object_object_get_ex(fs->tokens, token, &exp) && json_object_get_int64(exp) > mk_wall_ms())
            return true;
    }
    fake_send_error(fs, req, FAKE_WIRE_GIGACHAT, 401, "Unauthorized", NULL);
    return false;
}

static const char *first_function(json_object *body)
{
    json_object *fns;
    if (!json_object_object_get_ex(body, "functions", &fns) || !json_object_is_type(fns, json_type_array) ||
        json_object_array_length(fns) == 0)
        return NULL;
    const char *name = fake_json_str(json_object_array_get_idx(fns, 0), "name");
    return name ? name : "function";
}

static void chunk_open(mk_buf *b)
{
    mk_buf_append_str(b, "data: {\"choices\":[{\"delta\":{");
}

/* Everything after the choice's delta: finish reason, created, model, usage. */
static void chunk_tail(fake_plan *p, const char *finish, long created, const mk_buf *model, const char *usage)
{
    mk_buf *b = &p->body;
    mk_buf_append_str(b, "},\"index\":0");
    if (finish) mk_buf_printf(b, ",\"finish_reason\":\"%s\"", finish);
    mk_buf_printf(b, "}],\"created\":%ld,\"model\":", created);
    mk_buf_append(b, model->data, model->len);
    mk_buf_append_str(b, ",\"object\":\"chat.completion\"");
    if (usage) mk_buf_printf(b, ",%s", usage);
    mk_buf_append_str(b, "}\n\n");
    fake_plan_end_piece(p);
}

void fake_gigachat_chat(fake_server *fs, mk_http_req *req)
{
    if (!authorized(fs, req)) return;
    json_object *body = fake_parse_json(req->body.ptr, req->body.len);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        fake_send_error(fs, req, FAKE_WIRE_GIGACHAT, 400, "Invalid params: body is not a JSON object", NULL);
        return;
    }
    fake_chat c;
    if (fake_chat_prepare(fs, req, FAKE_WIRE_GIGACHAT, body, "content", &c)) {
        json_object_put(body);
        return;
    }
    if (c.opts.status && (c.opts.status < 200 || c.opts.status > 299)) {
        fake_send_error(fs, req, FAKE_WIRE_GIGACHAT, c.opts.status, "fake provider: scripted failure", &c.opts);
        fake_chat_release(&c);
        json_object_put(body);
        return;
    }
    int status = c.opts.status ? c.opts.status : 200;
    const char *model_name = fake_json_str(body, "model");
    if (!model_name || !model_name[0]) model_name = "GigaChat";
    const char *fn = first_function(body);
    bool fcall = fn && c.wants_weather && !c.last_is_tool;

    mk_buf model = MK_BUF_INIT, fcall_json = MK_BUF_INIT;
    mk_buf_append_json_string(&model, model_name, strlen(model_name));
    if (fcall) {
        char state[37];
        mk_uuid4(state);
        mk_buf_append_str(&fcall_json, "\"function_call\":{\"name\":");
        mk_buf_append_json_string(&fcall_json, fn, strlen(fn));
        mk_buf_printf(&fcall_json, ",\"arguments\":%s},\"functions_state_id\":\"%s\"", FUNCTION_ARGS, state);
    }
    size_t *ends = NULL, nchunks = 0;
    int completion;
    if (fcall) {
        completion = fake_tokens(strlen(fn) + strlen(FUNCTION_ARGS));
    } else {
        fake_split_chunks(&c.answer, c.opts.chunks, &ends, &nchunks);
        completion = fake_tokens(c.answer.len);
    }
    const char *answer = c.answer.data ? c.answer.data : "";
    char usage[160];
    snprintf(usage, sizeof usage,
             "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,\"precached_prompt_tokens\":0}",
             c.prompt_tokens, completion, c.prompt_tokens + completion);
    long created = (long)time(NULL);

    fake_plan p;
    if (!c.stream) {
        fake_plan_init(&p, status, "application/json", false);
        mk_buf *b = &p.body;
        mk_buf_append_str(b, "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":");
        if (fcall) {
            mk_buf_append_str(b, "\"\",");
            mk_buf_append(b, fcall_json.data, fcall_json.len);
        } else {
            mk_buf_append_json_string(b, answer, c.answer.len);
        }
        mk_buf_printf(b, "},\"index\":0,\"finish_reason\":\"%s\"}],\"created\":%ld,\"model\":",
                      fcall ? "function_call" : "stop", created);
        mk_buf_append(b, model.data, model.len);
        mk_buf_printf(b, ",\"object\":\"chat.completion\",%s}", usage);
    } else {
        fake_plan_init(&p, status, "text/event-stream; charset=utf-8", true);
        mk_buf *b = &p.body;
        if (fcall) {
            chunk_open(b);
            mk_buf_append_str(b, "\"role\":\"assistant\",\"content\":\"\",");
            mk_buf_append(b, fcall_json.data, fcall_json.len);
            chunk_tail(&p, "function_call", created, &model, usage);
        } else {
            for (size_t i = 0; i < nchunks; i++) {
                size_t s = i ? ends[i - 1] : 0;
                chunk_open(b);
                mk_buf_append_str(b, "\"content\":");
                mk_buf_append_json_string(b, answer + s, ends[i] - s);
                if (i == 0) mk_buf_append_str(b, ",\"role\":\"assistant\"");
                chunk_tail(&p, NULL, created, &model, NULL);
            }
            chunk_open(b);
            mk_buf_append_str(b, "\"content\":\"\"");
            chunk_tail(&p, "stop", created, &model, usage);
        }
        mk_buf_append_str(b, "data: [DONE]\n\n");
        fake_plan_end_piece(&p);
    }
    fake_send(fs, req, &p, &c.opts);
    free(ends);
    mk_buf_release(&model);
    mk_buf_release(&fcall_json);
    fake_chat_release(&c);
    json_object_put(body);
}

void fake_gigachat_embeddings(fake_server *fs, mk_http_req *req)
{
    if (!authorized(fs, req)) return;
    fake_embeddings_reply(fs, req, FAKE_WIRE_GIGACHAT);
}

void fake_gigachat_models(fake_server *fs, mk_http_req *req)
{
    static const char body[] =
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"GigaChat\",\"object\":\"model\",\"owned_by\":\"salutedevices\",\"type\":\"chat\"},"
        "{\"id\":\"GigaChat-Pro\",\"object\":\"model\",\"owned_by\":\"salutedevices\",\"type\":\"chat\"},"
        "{\"id\":\"GigaChat-Max\",\"object\":\"model\",\"owned_by\":\"salutedevices\",\"type\":\"chat\"},"
        "{\"id\":\"Embeddings\",\"object\":\"model\",\"owned_by\":\"salutedevices\",\"type\":\"embedder\"}]}";
    if (!authorized(fs, req)) return;
    fake_send_json(req, 200, body, sizeof body - 1);
}
