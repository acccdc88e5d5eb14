/*
 * mk_provider: the table of provider backends, provider instances, upstream request
 * objects, the generic HTTP error mapping and the OpenAI chunk builders every
 * adapter shares (see mk_provider.h).
 */
#include "provider/mk_provider.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "provider/provider_int.h"

extern const struct mk_provider_ops mk_provider_openai_ops;
extern const struct mk_provider_ops mk_provider_gigachat_ops;
extern const struct mk_provider_ops mk_provider_yandexgpt_ops;
extern const struct mk_provider_ops mk_provider_local_ops;

const struct mk_provider_ops *mk_provider_ops_for(enum mk_provider_type type)
{
    switch (type) {
    case MK_PROVIDER_OPENAI: return &mk_provider_openai_ops;
    case MK_PROVIDER_GIGACHAT: return &mk_provider_gigachat_ops;
    case MK_PROVIDER_YANDEXGPT: return &mk_provider_yandexgpt_ops;
    case MK_PROVIDER_LOCAL: return &mk_provider_local_ops;
    }
    return NULL;
}

int mk_provider_new(const struct mk_provider_config *cfg, mk_provider **out)
{
    *out = NULL;
    if (!cfg) return MK_EINVAL;
    const struct mk_provider_ops *ops = mk_provider_ops_for(cfg->type);
    if (!ops) return MK_ECONFIG;
    mk_provider *p = calloc(1, sizeof *p);
    if (!p) return MK_ENOMEM;
    p->config = cfg;
    p->ops = ops;
    if (ops->init) {
        int rc = ops->init(p);
        if (rc) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

void mk_provider_free(mk_provider *p)
{
    if (!p) return;
    if (p->ops && p->ops->release) p->ops->release(p);
    free(p);
}

/* --- upstream requests ------------------------------------------------------ */

int mk_upstream_request_add_header(struct mk_upstream_request *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0) return MK_ENOMEM;
    /* A CR or LF in a header (from a token or a config value) would let the value
     * inject further headers or a body; refuse it. */
    if (strpbrk(line, "\r\n") || (size_t)n > MK_MAX_HEADER_BYTES) {
        free(line);
        return MK_EINVAL;
    }
    char **h = realloc(r->headers, (r->nheaders + 1) * sizeof *h);
    if (!h) {
        free(line);
        return MK_ENOMEM;
    }
    r->headers = h;
    r->headers[r->nheaders++] = line;
    return 0;
}

void mk_upstream_request_release(struct mk_upstream_request *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nheaders; i++) free(r->headers[i]);
    free(r->headers);
    r->headers = NULL;
    r->nheaders = 0;
    mk_buf_release(&r->url);
    mk_buf_release(&r->body);
}

/* --- errors ----------------------------------------------------------------- */

/* Retry-After is either delta-seconds or an HTTP-date (RFC 9110 10.2.3). */
static uint32_t parse_retry_after(mk_slice v)
{
    char tmp[64];
    while (v.len && isspace((unsigned char)v.ptr[0])) { v.ptr++; v.len--; }
    while (v.len && isspace((unsigned char)v.ptr[v.len - 1])) v.len--;
    if (v.len == 0 || v.len >= sizeof tmp) return 0;
    memcpy(tmp, v.ptr, v.len);
    tmp[v.len] = '\0';
    if (isdigit((unsigned char)tmp[0])) {
        for (size_t i = 0; i < v.len; i++)
            if (!isdigit((unsigned char)tmp[i])) return 0;
        errno = 0;
        unsigned long long s = strtoull(tmp, NULL, 10);
        if (errno || s > UINT32_MAX / 1000u) return UINT32_MAX;
        return (uint32_t)(s * 1000u);
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return 0;
    time_t at = timegm(&tm);
    time_t now = time(NULL);
    if (at == (time_t)-1 || at <= now) return 0;
    double ms = difftime(at, now) * 1000.0;
    return ms >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* The provider's own message: {"error":{"message":..}}, {"error":"..."} or
 * {"message":..}. Bodies that are not JSON (an HTML page from a proxy) give none. */
static void message_from_body(mk_slice body, struct mk_provider_error *err)
{
    if (body.len == 0 || body.len > MK_MAX_UPSTREAM_BODY_BYTES) return;
    struct mk_provider_error scratch;
    json_object *root = mk_json_parse_strict(NULL, body, "error reply", &scratch);
    if (!root) return;
    const char *msg = NULL;
    size_t len = 0;
    json_object *e = NULL;
    if (json_object_object_get_ex(root, "error", &e) && json_object_is_type(e, json_type_string)) {
        msg = json_object_get_string(e);
        len = (size_t)json_object_get_string_len(e);
    } else {
        json_object *holder = mk_json_get(root, "error", json_type_object);
        if (!holder) holder = json_object_is_type(root, json_type_object) ? root : NULL;
        json_object *m = holder ? mk_json_get(holder, "message", json_type_string) : NULL;
        if (m) {
            msg = json_object_get_string(m);
            len = (size_t)json_object_get_string_len(m);
        }
    }
    if (msg && len) mk_perr_message(err, msg, len);
    json_object_put(root);
}

void mk_provider_error_from_http(int status, mk_slice body, mk_slice retry_after, struct mk_provider_error *err)
{
    memset(err, 0, sizeof *err);
    switch (status) {
    case 400: case 404: case 409: case 413: case 422:
        err->code = MK_EUPSTREAM_CLIENT;
        err->retryable = false;
        break;
    case 401: case 403:
        err->code = MK_EUPSTREAM_AUTH;
        err->retryable = true; /* another deployment has other credentials */
        break;
    case 402: /* quota or billing of this account: others may still work */
        err->code = MK_EUPSTREAM_AUTH;
        err->retryable = true;
        break;
    case 408:
        err->code = MK_EUPSTREAM_TIMEOUT;
        err->retryable = true;
        break;
    case 429:
        err->code = MK_EUPSTREAM_RATE;
        err->retryable = true;
        err->retry_after_ms = parse_retry_after(retry_after);
        break;
    default:
        if (status >= 500 && status <= 599) {
            err->code = MK_EUPSTREAM;
            err->retryable = true;
            err->retry_after_ms = parse_retry_after(retry_after);
        } else if (status >= 400 && status <= 499) {
            err->code = MK_EUPSTREAM_CLIENT;
            err->retryable = false;
        } else {
            /* 1xx/3xx as a final status, or nonsense: the upstream misbehaves. */
            err->code = MK_EUPSTREAM_BADREPLY;
            err->retryable = true;
        }
    }
    message_from_body(body, err);
    if (!err->message[0])
        snprintf(err->message, sizeof err->message, "upstream answered HTTP %d", status);
}

/* --- OpenAI chunk helpers --------------------------------------------------- */

static int chunk_head(mk_buf *out, const char *id, int64_t created, const char *model)
{
    int rc = mk_buf_append_str(out, "{\"id\":");
    if (!rc) rc = mk_buf_append_json_string(out, id ? id : "", id ? strlen(id) : 0);
    if (!rc) rc = mk_buf_printf(out, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                                (long long)created);
    if (!rc) rc = mk_buf_append_json_string(out, model ? model : "", model ? strlen(model) : 0);
    return rc;
}

int mk_openai_chunk_json(mk_buf *out, const char *id, int64_t created, const char *model, json_object *delta,
                         const char *finish_reason)
{
    int rc = chunk_head(out, id, created, model);
    if (!rc) rc = mk_buf_append_str(out, ",\"choices\":[{\"index\":0,\"delta\":");
    if (!rc) rc = delta ? mk_buf_append_json(out, delta) : mk_buf_append_str(out, "{}");
    if (!rc) rc = mk_buf_append_str(out, ",\"finish_reason\":");
    if (!rc) rc = finish_reason ? mk_buf_append_json_string(out, finish_reason, strlen(finish_reason))
                                : mk_buf_append_str(out, "null");
    if (!rc) rc = mk_buf_append_str(out, "}]}");
    return rc;
}

int mk_openai_usage_chunk_json(mk_buf *out, const char *id, int64_t created, const char *model,
                               const struct mk_usage *usage)
{
    int rc = chunk_head(out, id, created, model);
    if (!rc) rc = mk_buf_printf(out,
                                ",\"choices\":[],\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                                "\"total_tokens\":%lld}}",
                                (long long)usage->prompt_tokens, (long long)usage->completion_tokens,
                                (long long)usage->total_tokens);
    return rc;
}

bool mk_openai_parse_usage(json_object *usage, struct mk_usage *out)
{
    if (!usage || !json_object_is_type(usage, json_type_object)) return false;
    struct mk_usage u = {0, 0, 0};
    if (!mk_json_get_count(usage, "prompt_tokens", &u.prompt_tokens)) return false;
    /* Embedding replies carry no completion_tokens; absent means zero. */
    json_object *ct = NULL;
    if (json_object_object_get_ex(usage, "completion_tokens", &ct) && ct &&
        !mk_json_get_count(usage, "completion_tokens", &u.completion_tokens))
        return false;
    json_object *tt = NULL;
    if (json_object_object_get_ex(usage, "total_tokens", &tt) && tt) {
        if (!mk_json_get_count(usage, "total_tokens", &u.total_tokens)) return false;
    } else {
        u.total_tokens = u.prompt_tokens + u.completion_tokens;
    }
    *out = u;
    return true;
}
