/*
 * gigachat: adapter for Sber's GigaChat API.
 *
 * Credentials: GigaChat wants a short-lived OAuth access token (about 30 minutes)
 * fetched with the client's Basic credentials. authorize() keeps one token per
 * provider, refreshes it a minute before it expires, and makes every request that
 * needs a token while a fetch is running wait for that one fetch instead of starting
 * its own. A 401 on a call means the token died early: decode_error drops it so the
 * next authorize fetches a fresh one.
 *
 * Wire format: close to OpenAI's, but tools are GigaChat "functions" (one call per
 * turn, arguments as a JSON object rather than a string, results as role "function"),
 * and finish reasons differ. Both directions are translated here; streamed replies
 * become OpenAI chunks built with mk_openai_chunk_json.
 *
 * Threading: a provider instance and its token belong to the loop that drives the
 * mk_http_client passed to authorize(); callbacks run on that loop.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "provider/mk_provider.h"
#include "provider/provider_int.h"

#define GIGACHAT_DEFAULT_BASE_URL "https://gigachat.devices.sberbank.ru/api/v1"
#define GIGACHAT_DEFAULT_AUTH_URL "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
#define GIGACHAT_DEFAULT_SCOPE "GIGACHAT_API_PERS"
#define GIGACHAT_DEFAULT_EMBED_MODEL "Embeddings"
/* Refresh this long before expiry so a token never dies during a request. */
#define TOKEN_MARGIN_MS 60000
/* A token endpoint that has not answered in this time will not. */
#define TOKEN_TOTAL_TIMEOUT_MS 30000
/* The token reply is a few hundred bytes; anything huge is not a token reply. */
#define TOKEN_REPLY_MAX_BYTES (64 * 1024)
#define TOKEN_MAX_BYTES 16384
/* Inputs per embeddings request: conservative, GigaChat documents no batch limit. */
#define GIGACHAT_EMBED_BATCH 64

extern const struct mk_provider_ops mk_provider_gigachat_ops;

struct waiter {
    void (*done)(int rc, void *arg);
    void *arg;
};

struct token_fetch;

struct gigachat {
    char *token;               /* NULL when none or dropped */
    int64_t expires_at_ms;     /* wall clock, ms since the epoch */
    struct token_fetch *fetch; /* the fetch in flight, NULL when none */
    struct waiter *waiters;
    size_t nwaiters, cap;
};

/* Lives from mk_http_call_start until on_done. Detached (st = NULL) when the provider
 * is freed first, so a late on_done touches nothing that is gone. */
struct token_fetch {
    struct gigachat *st;
    const char *name; /* provider name for logs; owned by the config */
};

static const char *base_url(const mk_provider *p)
{
    return p->config->base_url && p->config->base_url[0] ? p->config->base_url : GIGACHAT_DEFAULT_BASE_URL;
}

static int gigachat_init(mk_provider *p)
{
    struct gigachat *st = calloc(1, sizeof *st);
    if (!st) return MK_ENOMEM;
    p->state = st;
    return 0;
}

/* Takes the waiter list out of st first: a callback may call authorize again (which
 * then queues on a new fetch) or free the provider. */
static void wake_all(struct gigachat *st, int rc)
{
    struct waiter *w = st->waiters;
    size_t n = st->nwaiters;
    st->waiters = NULL;
    st->nwaiters = st->cap = 0;
    for (size_t i = 0; i < n; i++) w[i].done(rc, w[i].arg);
    free(w);
}

static void gigachat_release(mk_provider *p)
{
    struct gigachat *st = p->state;
    if (!st) return;
    if (st->fetch) st->fetch->st = NULL;
    st->fetch = NULL;
    wake_all(st, MK_ECANCELLED);
    free(st->token);
    free(st);
    p->state = NULL;
}

static bool token_fresh(const struct gigachat *st)
{
    return st->token && mk_wall_ms() < st->expires_at_ms - TOKEN_MARGIN_MS;
}

/* The token goes into a header: printable ASCII without spaces only. */
static bool token_ok(const char *s, size_t len)
{
    if (len == 0 || len > TOKEN_MAX_BYTES) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return false;
    return true;
}

static int parse_token_reply(struct gigachat *st, mk_slice body, struct mk_provider_error *err)
{
    json_object *root = mk_json_parse_strict(NULL, body, "token reply", err);
    if (!root) return err->code;
    int rc = 0;
    json_object *tok = mk_json_get(root, "access_token", json_type_string);
    json_object *exp = mk_json_get(root, "expires_at", json_type_int);
    int64_t at = exp ? json_object_get_int64(exp) : 0;
    if (!tok || !token_ok(json_object_get_string(tok), (size_t)json_object_get_string_len(tok))) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "token reply has no usable \"access_token\"");
    } else if (at <= 0 || at > INT64_C(1) << 52) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "token reply has no usable \"expires_at\"");
    } else {
        /* Documented as milliseconds; a value that only makes sense as seconds
         * (before 1973 in ms) is taken as seconds rather than as an expired token. */
        if (at < INT64_C(100000000000)) at *= 1000;
        char *copy = strndup(json_object_get_string(tok), (size_t)json_object_get_string_len(tok));
        if (!copy) {
            rc = mk_perr(err, MK_ENOMEM, true, "out of memory");
        } else {
            free(st->token);
            st->token = copy;
            st->expires_at_ms = at;
        }
    }
    json_object_put(root);
    return rc;
}

static void token_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    struct token_fetch *f = arg;
    struct gigachat *st = f->st;
    const char *name = f->name ? f->name : "gigachat";
    free(f);
    if (!st) return; /* the provider was freed meanwhile */
    st->fetch = NULL;
    struct mk_provider_error err;
    memset(&err, 0, sizeof err);
    int result;
    if (rc) {
        result = rc == MK_ETOOBIG ? MK_EUPSTREAM_BADREPLY : rc;
        snprintf(err.message, sizeof err.message, "%s", mk_strerror(rc));
    } else if (status < 200 || status > 299) {
        mk_provider_error_from_http(status, body, mk_http_call_response_header(call, "Retry-After"), &err);
        /* A rejected token request means our credentials or scope are wrong. */
        result = (err.code == MK_EUPSTREAM_CLIENT || err.code == MK_EUPSTREAM_AUTH) ? MK_EUPSTREAM_AUTH : err.code;
    } else {
        result = parse_token_reply(st, body, &err);
    }
    if (result) {
        char status_text[16];
        snprintf(status_text, sizeof status_text, "%d", status);
        mk_log(MK_LOG_WARN, "gigachat_token_failed", "provider", name, "status", status_text, "error",
               mk_error_name(result), "message", err.message, NULL);
    }
    wake_all(st, result);
}

/* application/x-www-form-urlencoded value. */
static int append_form_value(mk_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            rc = mk_buf_append_char(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = mk_buf_append(b, esc, 3);
        }
    }
    return rc;
}

static int start_fetch(mk_provider *p, struct gigachat *st, mk_http_client *client)
{
    const struct mk_provider_config *cfg = p->config;
    if (!cfg->credentials || !cfg->credentials[0]) return MK_ECONFIG;
    char rquid[37];
    mk_uuid4(rquid);
    struct mk_upstream_request req;
    memset(&req, 0, sizeof req);
    int rc = mk_upstream_request_add_header(&req, "Authorization: Basic %s", cfg->credentials);
    if (!rc) rc = mk_upstream_request_add_header(&req, "RqUID: %s", rquid);
    if (!rc) rc = mk_upstream_request_add_header(&req, "Content-Type: application/x-www-form-urlencoded");
    if (!rc) rc = mk_upstream_request_add_header(&req, "Accept: application/json");
    if (!rc) rc = mk_buf_append_str(&req.body, "scope=");
    if (!rc) rc = append_form_value(&req.body, cfg->scope && cfg->scope[0] ? cfg->scope : GIGACHAT_DEFAULT_SCOPE);
    struct token_fetch *f = rc ? NULL : calloc(1, sizeof *f);
    if (!rc && !f) rc = MK_ENOMEM;
    if (rc) {
        mk_upstream_request_release(&req);
        return rc;
    }
    f->st = st;
    f->name = cfg->name;
    struct mk_http_call_opts o;
    memset(&o, 0, sizeof o);
    o.method = "POST";
    o.url = cfg->auth_url && cfg->auth_url[0] ? cfg->auth_url : GIGACHAT_DEFAULT_AUTH_URL;
    o.headers = (const char *const *)req.headers;
    o.nheaders = req.nheaders;
    o.body = req.body.data;
    o.body_len = req.body.len;
    o.connect_timeout_ms = MK_DEFAULT_CONNECT_TIMEOUT_MS;
    o.total_timeout_ms = TOKEN_TOTAL_TIMEOUT_MS;
    o.ca_file = cfg->ca_file;
    o.insecure = cfg->insecure;
    o.max_body_bytes = TOKEN_REPLY_MAX_BYTES;
    o.on_done = token_done;
    o.arg = f;
    st->fetch = f; /* set first in case on_done ran inside start */
    rc = mk_http_call_start(client, &o, NULL);
    mk_upstream_request_release(&req);
    if (rc) {
        st->fetch = NULL;
        free(f);
    }
    return rc;
}

static void gigachat_authorize(mk_provider *p, mk_http_client *client, void (*done)(int rc, void *arg), void *arg)
{
    struct gigachat *st = p->state;
    if (token_fresh(st)) {
        done(0, arg);
        return;
    }
    if (st->nwaiters == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 8;
        struct waiter *w = realloc(st->waiters, cap * sizeof *w);
        if (!w) {
            done(MK_ENOMEM, arg);
            return;
        }
        st->waiters = w;
        st->cap = cap;
    }
    st->waiters[st->nwaiters++] = (struct waiter){done, arg};
    if (st->fetch) return; /* one fetch serves everyone */
    int rc = client ? start_fetch(p, st, client) : MK_EINVAL;
    if (rc) wake_all(st, rc);
}

/* --- request translation ---------------------------------------------------- */

/* Name of the function an OpenAI tool message answers: its tool_call_id looked up
 * among the earlier assistant tool calls. */
static const char *tool_name_for(json_object *messages, size_t upto, const char *id)
{
    for (size_t i = upto; i-- > 0;) {
        json_object *calls = mk_json_get(json_object_array_get_idx(messages, i), "tool_calls", json_type_array);
        size_t n = calls ? json_object_array_length(calls) : 0;
        for (size_t k = 0; k < n; k++) {
            json_object *tc = json_object_array_get_idx(calls, k);
            const char *tid = mk_json_get_str(tc, "id");
            const char *name = mk_json_get_str(mk_json_get(tc, "function", json_type_object), "name");
            if (name && (!id || (tid && strcmp(tid, id) == 0))) return name;
        }
    }
    return NULL;
}

/* GigaChat expects a function result to be JSON; plain text is wrapped. */
static int function_result(json_object *content, json_object *out_msg)
{
    mk_buf text = MK_BUF_INIT;
    int rc = mk_openai_content_text(content, &text);
    if (rc) goto out;
    struct mk_provider_error scratch;
    json_object *parsed = text.len ? mk_json_parse_strict(NULL, mk_buf_slice(&text), "tool result", &scratch) : NULL;
    if (parsed) {
        json_object_put(parsed);
        rc = mk_json_add_str(out_msg, "content", text.data, text.len);
    } else {
        json_object *wrap = json_object_new_object();
        if (!wrap) {
            rc = MK_ENOMEM;
            goto out;
        }
        rc = mk_json_add_str(wrap, "result", text.data ? text.data : "", text.len);
        mk_buf w = MK_BUF_INIT;
        if (!rc) rc = mk_buf_append_json(&w, wrap);
        if (!rc) rc = mk_json_add_str(out_msg, "content", w.data, w.len);
        mk_buf_release(&w);
        json_object_put(wrap);
    }
out:
    mk_buf_release(&text);
    return rc;
}

/* OpenAI function {name, arguments: "<json text>"} -> GigaChat {name, arguments: {..}}. */
static int function_call_out(json_object *fn, json_object *out_msg)
{
    const char *name = mk_json_get_str(fn, "name");
    if (!name) return MK_EINVAL;
    json_object *fc = json_object_new_object();
    if (!fc) return MK_ENOMEM;
    int rc = mk_json_add_str(fc, "name", name, strlen(name));
    json_object *args = NULL;
    json_object *a = NULL;
    json_object_object_get_ex(fn, "arguments", &a);
    if (!rc) {
        if (a && json_object_is_type(a, json_type_object)) {
            args = json_object_get(a);
        } else if (a && json_object_is_type(a, json_type_string) && json_object_get_string_len(a) > 0) {
            struct mk_provider_error scratch;
            mk_slice s = {json_object_get_string(a), (size_t)json_object_get_string_len(a)};
            args = mk_json_parse_strict(NULL, s, "tool call arguments", &scratch);
            if (!args) rc = MK_EINVAL; /* GigaChat cannot take arguments that are not an object */
        } else if (!a || json_object_is_type(a, json_type_null) || json_object_is_type(a, json_type_string)) {
            args = json_object_new_object();
            if (!args) rc = MK_ENOMEM;
        } else {
            rc = MK_EINVAL;
        }
    }
    if (!rc) rc = mk_json_add(fc, "arguments", args);
    if (!rc) rc = mk_json_add(out_msg, "function_call", fc);
    else json_object_put(fc);
    return rc;
}

static int translate_message(json_object *messages, size_t idx, json_object *out)
{
    json_object *m = json_object_array_get_idx(messages, idx);
    const char *role = mk_json_get_str(m, "role");
    if (!role) return MK_EINVAL;
    json_object *content = NULL;
    json_object_object_get_ex(m, "content", &content);
    json_object *g = json_object_new_object();
    if (!g) return MK_ENOMEM;
    int rc = 0;
    if (!strcmp(role, "tool") || !strcmp(role, "function")) {
        const char *name = mk_json_get_str(m, "name");
        if (!name) name = tool_name_for(messages, idx, mk_json_get_str(m, "tool_call_id"));
        if (!name) name = tool_name_for(messages, idx, NULL); /* an id we do not know: the latest call */
        rc = mk_json_add_str(g, "role", "function", 8);
        if (!rc && name) rc = mk_json_add_str(g, "name", name, strlen(name));
        if (!rc) rc = function_result(content, g);
    } else if (!strcmp(role, "system") || !strcmp(role, "developer") || !strcmp(role, "user") ||
               !strcmp(role, "assistant")) {
        const char *r = !strcmp(role, "developer") ? "system" : role;
        mk_buf text = MK_BUF_INIT;
        rc = mk_json_add_str(g, "role", r, strlen(r));
        if (!rc) rc = mk_openai_content_text(content, &text);
        if (!rc) rc = mk_json_add_str(g, "content", text.data ? text.data : "", text.len);
        mk_buf_release(&text);
        if (!rc && !strcmp(role, "assistant")) {
            /* GigaChat takes one function call per assistant turn: the first one. */
            json_object *calls = mk_json_get(m, "tool_calls", json_type_array);
            json_object *fn = NULL;
            if (calls && json_object_array_length(calls) > 0)
                fn = mk_json_get(json_object_array_get_idx(calls, 0), "function", json_type_object);
            else
                fn = mk_json_get(m, "function_call", json_type_object);
            if (calls && json_object_array_length(calls) > 0 && !fn) rc = MK_EINVAL;
            if (!rc && fn) rc = function_call_out(fn, g);
        }
    } else {
        rc = MK_EINVAL;
    }
    if (!rc) rc = json_object_array_add(out, g) ? MK_ENOMEM : 0;
    else json_object_put(g);
    return rc;
}

static int copy_number(json_object *req, json_object *body, const char *from, const char *to)
{
    json_object *v = mk_json_get(req, from, json_type_double);
    if (!v) return 0;
    return json_object_object_add(body, to, json_object_get(v)) ? (json_object_put(v), MK_ENOMEM) : 0;
}

static int translate_tools(json_object *req, json_object *body)
{
    int rc = 0;
    json_object *tools = mk_json_get(req, "tools", json_type_array);
    json_object *legacy = mk_json_get(req, "functions", json_type_array);
    if (tools && json_object_array_length(tools) > 0) {
        json_object *fns = json_object_new_array();
        if (!fns) return MK_ENOMEM;
        size_t n = json_object_array_length(tools);
        for (size_t i = 0; i < n && !rc; i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            const char *type = mk_json_get_str(t, "type");
            json_object *fn = mk_json_get(t, "function", json_type_object);
            const char *name = mk_json_get_str(fn, "name");
            if (!type || strcmp(type, "function") != 0 || !name) {
                rc = MK_EINVAL; /* only function tools exist in GigaChat */
                break;
            }
            json_object *g = json_object_new_object();
            if (!g) { rc = MK_ENOMEM; break; }
            rc = mk_json_add_str(g, "name", name, strlen(name));
            json_object *v;
            if (!rc && (v = mk_json_get(fn, "description", json_type_string)))
                rc = mk_json_add(g, "description", json_object_get(v));
            if (!rc && (v = mk_json_get(fn, "parameters", json_type_object)))
                rc = mk_json_add(g, "parameters", json_object_get(v));
            if (!rc) rc = json_object_array_add(fns, g) ? MK_ENOMEM : 0;
            else json_object_put(g);
        }
        if (!rc) rc = mk_json_add(body, "functions", fns);
        else json_object_put(fns);
    } else if (legacy) {
        rc = mk_json_add(body, "functions", json_object_get(legacy));
    }
    if (rc) return rc;

    json_object *choice = NULL;
    if (!json_object_object_get_ex(req, "tool_choice", &choice) || !choice)
        json_object_object_get_ex(req, "function_call", &choice);
    if (!choice || json_object_is_type(choice, json_type_null)) return 0;
    if (json_object_is_type(choice, json_type_string)) {
        const char *s = json_object_get_string(choice);
        /* GigaChat has no "required": "auto" is the nearest it understands. */
        const char *g = !strcmp(s, "none") ? "none" : "auto";
        return mk_json_add_str(body, "function_call", g, strlen(g));
    }
    const char *name = mk_json_get_str(mk_json_get(choice, "function", json_type_object), "name");
    if (!name) name = mk_json_get_str(choice, "name");
    if (!name) return MK_EINVAL;
    json_object *fc = json_object_new_object();
    if (!fc) return MK_ENOMEM;
    rc = mk_json_add_str(fc, "name", name, strlen(name));
    if (!rc) rc = mk_json_add(body, "function_call", fc);
    else json_object_put(fc);
    return rc;
}

static int bearer_headers(mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *out,
                          bool stream)
{
    struct gigachat *st = p->state;
    if (!st->token) return MK_EUPSTREAM_AUTH; /* authorize() first, or the token was dropped */
    int rc = mk_upstream_request_add_header(out, "Content-Type: application/json");
    if (!rc) rc = mk_upstream_request_add_header(out, "Accept: %s", stream ? "text/event-stream" : "application/json");
    if (!rc) rc = mk_upstream_request_add_header(out, "Authorization: Bearer %s", st->token);
    if (!rc) rc = mk_add_common_headers(p, call, out);
    return rc;
}

static int gigachat_build_chat(mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *out)
{
    json_object *req = call->request;
    json_object *messages = mk_json_get(req, "messages", json_type_array);
    if (!messages || !call->model) return MK_EINVAL;
    int rc = mk_url_join(&out->url, base_url(p), "chat/completions");
    if (!rc) rc = bearer_headers(p, call, out, call->stream);
    if (rc) return rc;
    json_object *body = json_object_new_object();
    json_object *gm = json_object_new_array();
    if (!body || !gm) {
        json_object_put(body);
        json_object_put(gm);
        return MK_ENOMEM;
    }
    rc = mk_json_add_str(body, "model", call->model, strlen(call->model));
    size_t n = json_object_array_length(messages);
    for (size_t i = 0; i < n && !rc; i++) rc = translate_message(messages, i, gm);
    if (!rc) rc = mk_json_add(body, "messages", gm);
    else json_object_put(gm);
    if (!rc) rc = copy_number(req, body, "temperature", "temperature");
    if (!rc) rc = copy_number(req, body, "top_p", "top_p");
    if (!rc) {
        rc = mk_json_get(req, "max_tokens", json_type_int) ? copy_number(req, body, "max_tokens", "max_tokens")
                                                             : copy_number(req, body, "max_completion_tokens", "max_tokens");
    }
    if (!rc) rc = copy_number(req, body, "repetition_penalty", "repetition_penalty");
    if (!rc) rc = mk_json_add(body, "stream", json_object_new_boolean(call->stream));
    if (!rc) rc = translate_tools(req, body);
    if (!rc) rc = mk_buf_append_json(&out->body, body);
    json_object_put(body);
    return rc;
}

/* --- reply translation ------------------------------------------------------ */

static const char *map_finish(const char *fr)
{
    if (!fr) return NULL;
    if (!strcmp(fr, "function_call")) return "tool_calls";
    if (!strcmp(fr, "blacklist")) return "content_filter";
    if (!strcmp(fr, "length")) return "length";
    return "stop"; /* "stop" and anything new: OpenAI clients know no other values */
}

/* GigaChat {name, arguments:{..}} -> OpenAI tool call; `index` only for stream deltas. */
static json_object *tool_calls_from(json_object *fc, const char *response_id, int choice, bool with_index)
{
    const char *name = mk_json_get_str(fc, "name");
    if (!name) return NULL;
    json_object *args = NULL;
    json_object_object_get_ex(fc, "arguments", &args);
    mk_buf a = MK_BUF_INIT;
    int rc = 0;
    if (args && json_object_is_type(args, json_type_string))
        rc = mk_buf_append(&a, json_object_get_string(args), (size_t)json_object_get_string_len(args));
    else if (args && json_object_is_type(args, json_type_object))
        rc = mk_buf_append_json(&a, args);
    else if (!args || json_object_is_type(args, json_type_null))
        rc = mk_buf_append_str(&a, "{}");
    else
        rc = MK_EUPSTREAM_BADREPLY;
    char id[32];
    mk_tool_call_id(id, response_id, choice);
    json_object *arr = rc ? NULL : json_object_new_array();
    json_object *tc = rc ? NULL : json_object_new_object();
    json_object *fn = rc ? NULL : json_object_new_object();
    if (!arr || !tc || !fn) rc = rc ? rc : MK_ENOMEM;
    if (!rc && with_index) rc = mk_json_add(tc, "index", json_object_new_int(0));
    if (!rc) rc = mk_json_add_str(tc, "id", id, strlen(id));
    if (!rc) rc = mk_json_add_str(tc, "type", "function", 8);
    if (!rc) rc = mk_json_add_str(fn, "name", name, strlen(name));
    if (!rc) rc = mk_json_add_str(fn, "arguments", a.data ? a.data : "", a.len);
    if (!rc) {
        rc = mk_json_add(tc, "function", fn);
        fn = NULL;
    }
    if (!rc) {
        rc = json_object_array_add(arr, tc) ? MK_ENOMEM : 0;
        if (!rc) tc = NULL;
    }
    mk_buf_release(&a);
    json_object_put(fn);
    json_object_put(tc);
    if (rc) {
        json_object_put(arr);
        return NULL;
    }
    return arr;
}

/* Builds the OpenAI choice for GigaChat choice c; BADREPLY with err on bad shapes. */
static int translate_choice(json_object *c, size_t i, const struct mk_chat_call *call, json_object *choices,
                            struct mk_provider_error *err)
{
    json_object *msg = mk_json_get(c, "message", json_type_object);
    if (!msg) return mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "reply choice %zu has no \"message\" object", i);
    json_object *content = NULL;
    json_object_object_get_ex(msg, "content", &content);
    if (content && !json_object_is_type(content, json_type_string) && !json_object_is_type(content, json_type_null))
        return mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "reply choice %zu has a malformed content", i);
    json_object *fc = NULL;
    json_object_object_get_ex(msg, "function_call", &fc);
    if (fc && json_object_is_type(fc, json_type_null)) fc = NULL;
    if (fc && !mk_json_get_str(fc, "name"))
        return mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "reply choice %zu has a malformed function_call", i);
    json_object *fr = NULL;
    json_object_object_get_ex(c, "finish_reason", &fr);
    if (fr && !json_object_is_type(fr, json_type_string) && !json_object_is_type(fr, json_type_null))
        return mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "reply choice %zu has a malformed finish_reason", i);
    json_object *jidx = mk_json_get(c, "index", json_type_int);
    int64_t index = jidx ? json_object_get_int64(jidx) : (int64_t)i;
    if (index < 0 || index > 1024) index = (int64_t)i;

    json_object *oc = json_object_new_object();
    json_object *om = json_object_new_object();
    int rc = (!oc || !om) ? MK_ENOMEM : 0;
    if (!rc) rc = mk_json_add(oc, "index", json_object_new_int64(index));
    if (!rc) rc = mk_json_add_str(om, "role", "assistant", 9);
    const char *text = content && json_object_is_type(content, json_type_string) ? json_object_get_string(content) : "";
    size_t tlen = content && json_object_is_type(content, json_type_string) ? (size_t)json_object_get_string_len(content) : 0;
    if (!rc) {
        /* OpenAI gives null content next to tool calls when there is no text. */
        if (fc && tlen == 0)
            rc = json_object_object_add(om, "content", NULL) ? MK_ENOMEM : 0;
        else
            rc = mk_json_add_str(om, "content", text, tlen);
    }
    if (!rc && fc) {
        json_object *tcs = tool_calls_from(fc, call->response_id, (int)index, false);
        rc = tcs ? mk_json_add(om, "tool_calls", tcs)
                 : mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "reply choice %zu has malformed arguments", i);
    }
    if (!rc) {
        rc = mk_json_add(oc, "message", om);
        om = NULL;
    }
    const char *mapped = map_finish(fr && json_object_is_type(fr, json_type_string) ? json_object_get_string(fr) : NULL);
    if (!rc) rc = mapped ? mk_json_add_str(oc, "finish_reason", mapped, strlen(mapped))
                         : (json_object_object_add(oc, "finish_reason", NULL) ? MK_ENOMEM : 0);
    if (!rc) {
        rc = json_object_array_add(choices, oc) ? MK_ENOMEM : 0;
        if (!rc) oc = NULL;
    }
    json_object_put(om);
    json_object_put(oc);
    if (rc == MK_ENOMEM) mk_perr(err, MK_ENOMEM, true, "out of memory");
    return rc;
}

static int gigachat_decode_chat(mk_provider *p, const struct mk_chat_call *call, mk_slice body, mk_buf *out_json,
                                struct mk_usage *usage, struct mk_provider_error *err)
{
    memset(usage, 0, sizeof *usage);
    json_object *root = mk_json_parse_strict(NULL, body, "reply", err);
    if (!root) return err->code;
    json_object *out = NULL;
    int rc = 0;
    json_object *e = NULL;
    if (json_object_object_get_ex(root, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        rc = mk_error_from_object(e, 0, err);
        goto done;
    }
    json_object *choices = mk_json_get(root, "choices", json_type_array);
    if (!choices) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply has no \"choices\" array");
        goto done;
    }
    json_object *u = NULL;
    if (json_object_object_get_ex(root, "usage", &u) && u && !json_object_is_type(u, json_type_null) &&
        !mk_openai_parse_usage(u, usage)) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream reply has a malformed \"usage\"");
        goto done;
    }
    json_object *created = mk_json_get(root, "created", json_type_int);
    const char *model = mk_json_get_str(root, "model");
    out = json_object_new_object();
    json_object *oc = json_object_new_array();
    rc = (!out || !oc) ? MK_ENOMEM : 0;
    if (!rc) rc = mk_json_add_str(out, "id", call->response_id ? call->response_id : "",
                                  call->response_id ? strlen(call->response_id) : 0);
    if (!rc) rc = mk_json_add_str(out, "object", "chat.completion", 15);
    if (!rc) rc = mk_json_add(out, "created", json_object_new_int64(created && json_object_get_int64(created) > 0
                                                                        ? json_object_get_int64(created)
                                                                        : call->created));
    if (!model) model = call->model ? call->model : "";
    if (!rc) rc = mk_json_add_str(out, "model", model, strlen(model));
    size_t n = json_object_array_length(choices);
    for (size_t i = 0; i < n && !rc; i++) rc = translate_choice(json_object_array_get_idx(choices, i), i, call, oc, err);
    if (rc) {
        json_object_put(oc);
        if (rc == MK_ENOMEM) mk_perr(err, rc, true, "out of memory");
        goto done;
    }
    rc = mk_json_add(out, "choices", oc);
    if (!rc) rc = mk_usage_json_add(out, usage);
    if (!rc) rc = mk_buf_append_json(out_json, out);
    if (rc) mk_perr(err, rc, true, "out of memory");
done:
    json_object_put(out);
    json_object_put(root);
    return rc;
}

/* --- streaming -------------------------------------------------------------- */

static int emit_chunk(mk_stream_decoder *d, json_object *delta, const char *fr, mk_slice content)
{
    mk_buf_reset(&d->chunk);
    if (mk_openai_chunk_json(&d->chunk, d->id, d->created, d->model, delta, fr)) {
        mk_perr(d->err, MK_ENOMEM, true, "out of memory");
        return mk_stream_fail(d, d->err);
    }
    struct mk_stream_event ev;
    memset(&ev, 0, sizeof ev);
    ev.chunk_json = mk_buf_slice(&d->chunk);
    ev.content = content;
    ev.finish_reason = fr;
    return mk_stream_emit(d, &ev);
}

static int emit_usage(mk_stream_decoder *d)
{
    mk_buf_reset(&d->chunk);
    if (mk_openai_usage_chunk_json(&d->chunk, d->id, d->created, d->model, &d->usage)) {
        mk_perr(d->err, MK_ENOMEM, true, "out of memory");
        return mk_stream_fail(d, d->err);
    }
    struct mk_stream_event ev;
    memset(&ev, 0, sizeof ev);
    ev.chunk_json = mk_buf_slice(&d->chunk);
    ev.usage_only = true;
    ev.has_usage = true;
    ev.usage = d->usage;
    return mk_stream_emit(d, &ev);
}

/* One GigaChat chunk's choice 0 as an OpenAI delta + finish reason. */
static int stream_choice(mk_stream_decoder *d, json_object *c)
{
    struct mk_provider_error *err = d->err;
    json_object *delta = mk_json_get(c, "delta", json_type_object);
    json_object *fr = NULL;
    json_object_object_get_ex(c, "finish_reason", &fr);
    if (!delta || (fr && !json_object_is_type(fr, json_type_string) && !json_object_is_type(fr, json_type_null))) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has a malformed choice");
        return mk_stream_fail(d, err);
    }
    json_object *content = NULL, *fc = NULL;
    json_object_object_get_ex(delta, "content", &content);
    json_object_object_get_ex(delta, "function_call", &fc);
    if (fc && json_object_is_type(fc, json_type_null)) fc = NULL;
    if ((content && !json_object_is_type(content, json_type_string) && !json_object_is_type(content, json_type_null)) ||
        (fc && !json_object_is_type(fc, json_type_object))) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has a malformed delta");
        return mk_stream_fail(d, err);
    }
    mk_slice text = {"", 0};
    if (content && json_object_is_type(content, json_type_string))
        text = (mk_slice){json_object_get_string(content), (size_t)json_object_get_string_len(content)};
    json_object *od = json_object_new_object();
    int rc = od ? 0 : MK_ENOMEM;
    const char *role = mk_json_get_str(delta, "role");
    if (!rc && role) rc = mk_json_add_str(od, "role", "assistant", 9);
    if (!rc && (text.len || !fc) && (content || text.len)) rc = mk_json_add_str(od, "content", text.ptr, text.len);
    if (!rc && fc) {
        json_object *tcs = tool_calls_from(fc, d->id, 0, true);
        if (!tcs) {
            json_object_put(od);
            mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has a malformed function_call");
            return mk_stream_fail(d, err);
        }
        rc = mk_json_add(od, "tool_calls", tcs);
    }
    if (rc) {
        json_object_put(od);
        mk_perr(err, MK_ENOMEM, true, "out of memory");
        return mk_stream_fail(d, err);
    }
    rc = emit_chunk(d, od, map_finish(fr && json_object_is_type(fr, json_type_string) ? json_object_get_string(fr)
                                                                                      : NULL),
                    text);
    json_object_put(od);
    return rc;
}

static int gigachat_on_event(void *arg, mk_slice data)
{
    mk_stream_decoder *d = arg;
    struct mk_provider_error *err = d->err;
    if (d->done) return 0;
    if (mk_slice_eq(data, MK_SLICE_LIT("[DONE]"))) {
        d->done = true;
        /* Usage goes last, after the finishing chunk, as OpenAI sends it. */
        return d->has_usage ? emit_usage(d) : 0;
    }
    json_object *obj = mk_json_parse_strict(d->tok, data, "stream event", err);
    if (!obj) return mk_stream_fail(d, err);
    int rc = 0;
    json_object *e = NULL;
    json_object *choices = NULL;
    bool has_choices = json_object_object_get_ex(obj, "choices", &choices) && choices;
    if (json_object_object_get_ex(obj, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        mk_error_from_object(e, 0, err);
        rc = mk_stream_fail(d, err);
        goto out;
    }
    if (!has_choices && mk_json_get(obj, "message", json_type_string)) { /* {"status":..,"message":..} */
        mk_error_from_object(obj, 0, err);
        rc = mk_stream_fail(d, err);
        goto out;
    }
    json_object *u = NULL;
    if (json_object_object_get_ex(obj, "usage", &u) && u && !json_object_is_type(u, json_type_null)) {
        if (!mk_openai_parse_usage(u, &d->usage)) {
            mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has a malformed \"usage\"");
            rc = mk_stream_fail(d, err);
            goto out;
        }
        d->has_usage = true;
    }
    if ((has_choices && !json_object_is_type(choices, json_type_array)) || (!has_choices && !d->has_usage)) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream chunk has no \"choices\" array");
        rc = mk_stream_fail(d, err);
        goto out;
    }
    if (has_choices && json_object_array_length(choices) > 0)
        rc = stream_choice(d, json_object_array_get_idx(choices, 0));
out:
    json_object_put(obj);
    return rc;
}

static mk_stream_decoder *gigachat_stream_new(mk_provider *p, const struct mk_chat_call *call)
{
    return mk_stream_decoder_alloc(p, call);
}

static int gigachat_stream_feed(mk_stream_decoder *d, const char *data, size_t len, mk_stream_sink_fn sink,
                                void *arg, struct mk_provider_error *err)
{
    return mk_sse_decoder_feed(d, data, len, gigachat_on_event, sink, arg, err);
}

static int gigachat_stream_finish(mk_stream_decoder *d, mk_stream_sink_fn sink, void *arg,
                                  struct mk_provider_error *err)
{
    return mk_sse_decoder_finish(d, gigachat_on_event, sink, arg, err);
}

/* --- embeddings and errors -------------------------------------------------- */

static int gigachat_build_embed(mk_provider *p, const struct mk_embed_call *call, struct mk_upstream_request *out)
{
    if (call->ninputs == 0 || call->ninputs > GIGACHAT_EMBED_BATCH) return MK_EINVAL;
    int rc = mk_url_join(&out->url, base_url(p), "embeddings");
    if (!rc) rc = bearer_headers(p, NULL, out, false);
    if (rc) return rc;
    const char *model = call->model && call->model[0] ? call->model : GIGACHAT_DEFAULT_EMBED_MODEL;
    rc = mk_buf_append_str(&out->body, "{\"model\":");
    if (!rc) rc = mk_buf_append_json_string(&out->body, model, strlen(model));
    if (!rc) rc = mk_buf_append_str(&out->body, ",\"input\":[");
    for (size_t i = 0; !rc && i < call->ninputs; i++) {
        if (i) rc = mk_buf_append_char(&out->body, ',');
        if (!rc) rc = mk_buf_append_json_string(&out->body, call->inputs[i], strlen(call->inputs[i]));
    }
    if (!rc) rc = mk_buf_append_str(&out->body, "]}");
    return rc;
}

static int gigachat_decode_embed(mk_provider *p, const struct mk_embed_call *call, mk_slice body,
                                 json_object *vectors, struct mk_usage *usage, struct mk_provider_error *err)
{
    return mk_decode_openai_embeddings(body, call->ninputs, vectors, usage, err);
}

static void gigachat_decode_error(mk_provider *p, int status, mk_slice body, mk_slice retry_after,
                                  struct mk_provider_error *err)
{
    mk_provider_error_from_http(status, body, retry_after, err);
    if (status == 401) {
        /* The token died before its time (revoked, clock skew): fetch a new one. */
        struct gigachat *st = p ? p->state : NULL;
        if (st) {
            free(st->token);
            st->token = NULL;
            st->expires_at_ms = 0;
        }
        err->code = MK_EUPSTREAM_AUTH;
        err->retryable = true;
    }
}

int mk_gigachat_set_token(mk_provider *p, const char *token, int64_t expires_at_ms)
{
    if (!p || p->ops != &mk_provider_gigachat_ops || !p->state || !token || !token_ok(token, strlen(token)))
        return MK_EINVAL;
    struct gigachat *st = p->state;
    char *copy = strdup(token);
    if (!copy) return MK_ENOMEM;
    free(st->token);
    st->token = copy;
    st->expires_at_ms = expires_at_ms;
    return 0;
}

bool mk_gigachat_has_token(const mk_provider *p)
{
    const struct gigachat *st = p && p->ops == &mk_provider_gigachat_ops ? p->state : NULL;
    return st && st->token;
}

const struct mk_provider_ops mk_provider_gigachat_ops = {
    .type = "gigachat",
    .init = gigachat_init,
    .release = gigachat_release,
    .authorize = gigachat_authorize,
    .build_chat = gigachat_build_chat,
    .decode_chat = gigachat_decode_chat,
    .stream_new = gigachat_stream_new,
    .stream_feed = gigachat_stream_feed,
    .stream_finish = gigachat_stream_finish,
    .stream_free = mk_stream_decoder_free,
    .max_embed_batch = GIGACHAT_EMBED_BATCH,
    .build_embed = gigachat_build_embed,
    .decode_embed = gigachat_decode_embed,
    .decode_error = gigachat_decode_error,
};
