/* request_json: decoding and checking OpenAI request bodies within Mayak's limits.
 * Every message here reaches the client, so each names what is wrong and where. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"
#include "mk_api.h"

/* One strict tokener per thread (a loop parses one body at a time): creating one per
 * request cost more allocations than parsing a small body. Freed when the thread ends. */
static pthread_key_t g_tok_key;
static pthread_once_t g_tok_once = PTHREAD_ONCE_INIT;
static bool g_tok_key_ok;

static void tok_destroy(void *tok) { json_tokener_free(tok); }
static void tok_key_init(void) { g_tok_key_ok = pthread_key_create(&g_tok_key, tok_destroy) == 0; }

static json_tokener *request_tokener(void)
{
    pthread_once(&g_tok_once, tok_key_init);
    json_tokener *tok = g_tok_key_ok ? pthread_getspecific(g_tok_key) : NULL;
    if (tok) {
        json_tokener_reset(tok);
        return tok;
    }
    tok = json_tokener_new_ex(MK_MAX_JSON_DEPTH);
    if (!tok) return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    if (!g_tok_key_ok || pthread_setspecific(g_tok_key, tok) != 0) {
        json_tokener_free(tok);
        return NULL;
    }
    return tok;
}

int mk_api_parse_json(mk_slice body, json_object **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (body.len == 0) {
        snprintf(msg, msglen, "request body is empty; expected a JSON object");
        return MK_EBADJSON;
    }
    if (body.len > MK_MAX_BODY_BYTES) {
        snprintf(msg, msglen, "request body exceeds %d bytes", MK_MAX_BODY_BYTES);
        return MK_ETOOBIG;
    }
    /* Checked up front over the raw bytes: it also covers bytes outside strings,
     * and gives one clear error instead of a tokenizer position. */
    if (!mk_utf8_valid(body.ptr, body.len)) {
        snprintf(msg, msglen, "request body is not valid UTF-8");
        return MK_EBADUTF8;
    }
    json_tokener *tok = request_tokener();
    if (!tok) return MK_ENOMEM;
    json_object *obj = json_tokener_parse_ex(tok, body.ptr, (int)body.len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_reset(tok);   /* drops a half-built value of a failed parse now */
    if (!obj || jerr != json_tokener_success) {
        json_object_put(obj);
        if (jerr == json_tokener_error_depth)
            snprintf(msg, msglen, "JSON nesting deeper than %d levels", MK_MAX_JSON_DEPTH);
        else if (jerr == json_tokener_continue)
            snprintf(msg, msglen, "JSON ends early (truncated body?)");
        else
            snprintf(msg, msglen, "malformed JSON at byte %zu: %s", used, json_tokener_error_desc(jerr));
        return MK_EBADJSON;
    }
    for (size_t i = used; i < body.len; i++) {
        char c = body.ptr[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            json_object_put(obj);
            snprintf(msg, msglen, "unexpected data after the JSON value at byte %zu", i);
            return MK_EBADJSON;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        snprintf(msg, msglen, "request body must be a JSON object");
        return MK_EBADJSON;
    }
    *out = obj;
    return 0;
}

static bool known_role(const char *r)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(r, roles[i]) == 0) return true;
    return false;
}

static int fail(char *msg, size_t msglen, const char **param, const char *p, const char *text)
{
    snprintf(msg, msglen, "%s", text);
    *param = p;
    return MK_EINVAL;
}

int mk_api_validate_chat(json_object *body, char *msg, size_t msglen, const char **param)
{
    json_object *v;
    *param = NULL;
    if (!json_object_object_get_ex(body, "model", &v) || !json_object_is_type(v, json_type_string))
        return fail(msg, msglen, param, "model", "'model' is required and must be a string");
    if (json_object_get_string_len(v) == 0 || json_object_get_string_len(v) > MK_MAX_NAME_BYTES)
        return fail(msg, msglen, param, "model", "'model' must be 1 to 256 characters");
    if (!json_object_object_get_ex(body, "messages", &v) || !json_object_is_type(v, json_type_array))
        return fail(msg, msglen, param, "messages", "'messages' is required and must be an array");
    size_t n = json_object_array_length(v);
    if (n == 0) return fail(msg, msglen, param, "messages", "'messages' must not be empty");
    if (n > MK_MAX_MESSAGES) return fail(msg, msglen, param, "messages", "too many messages");
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(v, i), *role, *content;
        if (!json_object_is_type(m, json_type_object)) {
            snprintf(msg, msglen, "messages[%zu] must be an object", i);
            *param = "messages";
            return MK_EINVAL;
        }
        if (!json_object_object_get_ex(m, "role", &role) || !json_object_is_type(role, json_type_string) ||
            !known_role(json_object_get_string(role))) {
            snprintf(msg, msglen, "messages[%zu].role must be one of system, developer, user, assistant, tool", i);
            *param = "messages";
            return MK_EINVAL;
        }
        if (json_object_object_get_ex(m, "content", &content) && content &&
            !json_object_is_type(content, json_type_string) && !json_object_is_type(content, json_type_array)) {
            snprintf(msg, msglen, "messages[%zu].content must be a string, an array of parts or null", i);
            *param = "messages";
            return MK_EINVAL;
        }
    }
    if (json_object_object_get_ex(body, "stream", &v) && v && !json_object_is_type(v, json_type_boolean))
        return fail(msg, msglen, param, "stream", "'stream' must be a boolean");
    if (json_object_object_get_ex(body, "stream_options", &v) && v && !json_object_is_type(v, json_type_object))
        return fail(msg, msglen, param, "stream_options", "'stream_options' must be an object");
    if (json_object_object_get_ex(body, "n", &v) && v && json_object_get_int64(v) != 1)
        return fail(msg, msglen, param, "n", "only n = 1 is supported");
    if (json_object_object_get_ex(body, "tools", &v) && v && !json_object_is_type(v, json_type_array))
        return fail(msg, msglen, param, "tools", "'tools' must be an array");
    return 0;
}

static void put_json(void *obj) { json_object_put(obj); }

int mk_api_parse_body(mk_ctx *ctx)
{
    char msg[256] = "";
    json_object *body = NULL;
    int rc = mk_api_parse_json(ctx->req->body, &body, msg, sizeof msg);
    if (rc != 0) {
        mk_api_fail(ctx, rc, msg);
        return rc;
    }
    if (mk_pool_on_free(ctx->pool, put_json, body) != 0) {
        json_object_put(body);
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return MK_ENOMEM;
    }
    ctx->body = body;
    return 0;
}
