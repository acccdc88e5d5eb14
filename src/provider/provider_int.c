/*
 * provider_int: helpers shared by the provider adapters — strict JSON parsing of
 * upstream bytes, line and SSE framing over arbitrary pieces, the stream decoder's
 * common part, and small builders (see provider_int.h).
 */
#include "provider/provider_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"

/* --- errors ----------------------------------------------------------------- */

void mk_perr_message(struct mk_provider_error *err, const char *s, size_t len)
{
    if (len > sizeof err->message - 1) len = sizeof err->message - 1;
    len = mk_utf8_complete_prefix(s, len);
    memcpy(err->message, s, len);
    err->message[len] = '\0';
}

int mk_perr(struct mk_provider_error *err, int code, bool retryable, const char *fmt, ...)
{
    char tmp[sizeof err->message + 8];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    err->code = code;
    err->retryable = retryable;
    err->retry_after_ms = 0;
    if (n < 0) n = 0;
    mk_perr_message(err, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
    return code;
}

/* --- JSON ------------------------------------------------------------------- */

json_tokener *mk_json_tokener_new(void)
{
    json_tokener *tok = json_tokener_new_ex(MK_MAX_JSON_DEPTH);
    if (tok) json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return tok;
}

/* One tokener per thread for callers without their own: a new one costs several
 * allocations and a cleared depth stack, more than parsing a small reply. Freed when
 * its thread ends. mk_json_parse_strict does not re-enter itself, so one is enough. */
static pthread_key_t g_tok_key;
static pthread_once_t g_tok_once = PTHREAD_ONCE_INIT;
static bool g_tok_key_ok;

static void tok_destroy(void *tok) { json_tokener_free(tok); }
static void tok_key_init(void) { g_tok_key_ok = pthread_key_create(&g_tok_key, tok_destroy) == 0; }

static json_tokener *thread_tokener(void)
{
    pthread_once(&g_tok_once, tok_key_init);
    if (!g_tok_key_ok) return NULL;
    json_tokener *tok = pthread_getspecific(g_tok_key);
    if (tok) return tok;
    tok = mk_json_tokener_new();
    if (tok && pthread_setspecific(g_tok_key, tok) != 0) {
        json_tokener_free(tok);
        return NULL;
    }
    return tok;
}

json_object *mk_json_parse_strict(json_tokener *tok, mk_slice in, const char *what, struct mk_provider_error *err)
{
    json_tokener *own = NULL;
    if (!tok) tok = thread_tokener();
    if (!tok) {
        own = tok = mk_json_tokener_new();
        if (!tok) {
            mk_perr(err, MK_ENOMEM, true, "out of memory parsing the %s", what);
            return NULL;
        }
    } else {
        json_tokener_reset(tok);
    }
    json_object *obj = NULL;
    if (in.len == 0) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s is empty", what);
    } else if (in.len > INT_MAX) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s is too large", what);
    } else if (!mk_utf8_valid(in.ptr, in.len)) {
        /* json-c's own check lets overlong forms (C0 80) and surrogates through; a
         * reply is relayed byte for byte, so it must be checked strictly here. */
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s is not valid JSON (invalid UTF-8)", what);
    } else {
        obj = json_tokener_parse_ex(tok, in.ptr, (int)in.len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        if (!obj) {
            if (e == json_tokener_success)
                mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s is not a JSON object", what);
            else if (e == json_tokener_continue)
                mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s is truncated JSON", what);
            else
                mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s is not valid JSON (%s at byte %zu)", what,
                        json_tokener_error_desc(e), json_tokener_get_parse_end(tok));
        } else {
            size_t end = json_tokener_get_parse_end(tok);
            for (size_t i = end; i < in.len && obj; i++) {
                if (!isspace((unsigned char)in.ptr[i])) {
                    mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s has bytes after its JSON", what);
                    json_object_put(obj);
                    obj = NULL;
                }
            }
            if (obj && !json_object_is_type(obj, json_type_object)) {
                mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream %s is not a JSON object", what);
                json_object_put(obj);
                obj = NULL;
            }
        }
    }
    if (own) json_tokener_free(own);
    return obj;
}

bool mk_json_has_raw_controls(mk_slice in)
{
    /* Most replies have no control byte at all: a branch-free count first (the
     * compiler vectorises it), the string-aware walk only when there is one. */
    size_t ctl = 0;
    for (size_t i = 0; i < in.len; i++) ctl += (unsigned char)in.ptr[i] < 0x20;
    if (ctl == 0) return false;
    bool in_string = false;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char ch = (unsigned char)in.ptr[i];
        if (ch < 0x20) {
            if (in_string || (ch != '\t' && ch != '\n' && ch != '\r')) return true;
        } else if (ch == '"') {
            in_string = !in_string;
        } else if (ch == '\\' && in_string && i + 1 < in.len) {
            i++;   /* the escaped byte never ends the string */
            if ((unsigned char)in.ptr[i] < 0x20) return true;
        }
    }
    return false;
}

json_object *mk_json_get(json_object *o, const char *key, enum json_type type)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    if (!json_object_object_get_ex(o, key, &v) || !v) return NULL;
    if (type == json_type_double) /* any number */
        return (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) ? v : NULL;
    return json_object_is_type(v, type) ? v : NULL;
}

const char *mk_json_get_str(json_object *o, const char *key)
{
    json_object *v = mk_json_get(o, key, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

bool mk_json_get_count(json_object *o, const char *key, int64_t *out)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) || !v)
        return false;
    if (json_object_is_type(v, json_type_int)) {
        int64_t n = json_object_get_int64(v); /* json-c clamps out-of-range values */
        if (n < 0 || n > MK_MAX_TOKEN_COUNT) return false;
        *out = n;
        return true;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        if (len == 0 || len > 13) return false;
        for (size_t i = 0; i < len; i++)
            if (s[i] < '0' || s[i] > '9') return false;
        errno = 0;
        long long n = strtoll(s, NULL, 10);
        if (errno || n < 0 || n > MK_MAX_TOKEN_COUNT) return false;
        *out = n;
        return true;
    }
    return false;
}

int mk_buf_append_json(mk_buf *b, json_object *o)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, MK_JSON_PLAIN, &len);
    if (!s) return MK_ENOMEM;
    return mk_buf_append(b, s, len);
}

int mk_json_add(json_object *o, const char *key, json_object *v)
{
    if (!v) return MK_ENOMEM;
    if (json_object_object_add(o, key, v)) {
        json_object_put(v);
        return MK_ENOMEM;
    }
    return 0;
}

int mk_json_add_str(json_object *o, const char *key, const char *s, size_t len)
{
    return mk_json_add(o, key, json_object_new_string_len(s, (int)len));
}

int mk_openai_content_text(json_object *content, mk_buf *out)
{
    if (!content || json_object_is_type(content, json_type_null)) return 0;
    if (json_object_is_type(content, json_type_string))
        return mk_buf_append(out, json_object_get_string(content), (size_t)json_object_get_string_len(content));
    if (!json_object_is_type(content, json_type_array)) return MK_EINVAL;
    size_t n = json_object_array_length(content);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(content, i);
        const char *type = mk_json_get_str(part, "type");
        json_object *text = mk_json_get(part, "text", json_type_string);
        if (!type || strcmp(type, "text") != 0 || !text) return MK_EINVAL;
        /* Parts are separate pieces of text; a newline keeps their words apart. */
        int rc = first ? 0 : mk_buf_append_char(out, '\n');
        if (!rc) rc = mk_buf_append(out, json_object_get_string(text), (size_t)json_object_get_string_len(text));
        if (rc) return rc;
        first = false;
    }
    return 0;
}

/* A vector of finite numbers; its length goes to *dim. */
static bool valid_vector(json_object *v, size_t *dim)
{
    if (!v || !json_object_is_type(v, json_type_array)) return false;
    size_t n = json_object_array_length(v);
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(v, i);
        if (json_object_is_type(x, json_type_int)) continue;
        if (!json_object_is_type(x, json_type_double) || !isfinite(json_object_get_double(x))) return false;
    }
    *dim = n;
    return true;
}

int mk_decode_openai_embeddings(mk_slice body, size_t ninputs, json_object *vectors, struct mk_usage *usage,
                                struct mk_provider_error *err)
{
    memset(usage, 0, sizeof *usage);
    json_object *root = mk_json_parse_strict(NULL, body, "embeddings reply", err);
    if (!root) return err->code;
    int rc = 0;
    json_object **slots = NULL;
    json_object *e = NULL;
    if (json_object_object_get_ex(root, "error", &e) && e && !json_object_is_type(e, json_type_null)) {
        rc = mk_error_from_object(e, 0, err);
        goto out;
    }
    json_object *data = mk_json_get(root, "data", json_type_array);
    if (!data) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embeddings reply has no \"data\" array");
        goto out;
    }
    size_t n = json_object_array_length(data);
    if (n != ninputs) {
        rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embeddings reply has %zu vectors for %zu inputs", n, ninputs);
        goto out;
    }
    slots = calloc(n ? n : 1, sizeof *slots);
    if (!slots) {
        rc = mk_perr(err, MK_ENOMEM, true, "out of memory");
        goto out;
    }
    size_t dim = 0;
    int64_t item_tokens = 0;
    bool have_item_tokens = false;
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(data, i);
        json_object *vec = mk_json_get(item, "embedding", json_type_array);
        size_t d = 0;
        if (!vec || !valid_vector(vec, &d)) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embedding %zu is not an array of numbers", i);
            goto out;
        }
        if (i > 0 && d != dim) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embeddings have different dimensions (%zu, %zu)", dim, d);
            goto out;
        }
        dim = d;
        size_t idx = i;
        json_object *jidx = NULL;
        if (json_object_object_get_ex(item, "index", &jidx) && jidx) {
            int64_t v = json_object_is_type(jidx, json_type_int) ? json_object_get_int64(jidx) : -1;
            if (v < 0 || (uint64_t)v >= n) {
                rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embedding %zu has a bad index", i);
                goto out;
            }
            idx = (size_t)v;
        }
        if (slots[idx]) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embedding index %zu appears twice", idx);
            goto out;
        }
        slots[idx] = vec;
        int64_t t = 0;
        json_object *iu = mk_json_get(item, "usage", json_type_object);
        if (iu && mk_json_get_count(iu, "prompt_tokens", &t) && item_tokens <= MK_MAX_TOKEN_COUNT) {
            item_tokens += t;
            have_item_tokens = true;
        }
    }
    json_object *u = NULL;
    if (json_object_object_get_ex(root, "usage", &u) && u && !json_object_is_type(u, json_type_null)) {
        if (!mk_openai_parse_usage(u, usage)) {
            rc = mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "embeddings reply has a malformed \"usage\"");
            goto out;
        }
    } else if (have_item_tokens) {
        usage->prompt_tokens = usage->total_tokens = item_tokens;
    }
    for (size_t i = 0; i < n; i++) {
        /* The vectors are shared with the parsed reply (reference counted), not copied. */
        if (json_object_array_add(vectors, json_object_get(slots[i]))) {
            json_object_put(slots[i]);
            rc = mk_perr(err, MK_ENOMEM, true, "out of memory");
            goto out;
        }
    }
out:
    free(slots);
    json_object_put(root);
    return rc;
}

int mk_usage_json_add(json_object *out, const struct mk_usage *u)
{
    json_object *o = json_object_new_object();
    if (!o) return MK_ENOMEM;
    int rc = mk_json_add(o, "prompt_tokens", json_object_new_int64(u->prompt_tokens));
    if (!rc) rc = mk_json_add(o, "completion_tokens", json_object_new_int64(u->completion_tokens));
    if (!rc) rc = mk_json_add(o, "total_tokens", json_object_new_int64(u->total_tokens));
    if (!rc) return mk_json_add(out, "usage", o);
    json_object_put(o);
    return rc;
}

int mk_url_join(mk_buf *url, const char *base, const char *path)
{
    size_t blen = base ? strlen(base) : 0;
    while (blen && base[blen - 1] == '/') blen--;
    while (*path == '/') path++;
    int rc = mk_buf_append(url, base, blen);
    if (!rc) rc = mk_buf_append_char(url, '/');
    if (!rc) rc = mk_buf_append_str(url, path);
    return rc;
}

int mk_add_common_headers(const mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *r)
{
    int rc = 0;
    for (size_t i = 0; !rc && p->config && i < p->config->nheaders; i++)
        rc = mk_upstream_request_add_header(r, "%s", p->config->headers[i]);
    if (!rc && call && call->request_id && call->request_id[0])
        rc = mk_upstream_request_add_header(r, "X-Request-Id: %s", call->request_id);
    return rc;
}

/* --- lines ------------------------------------------------------------------ */

void mk_lines_init(struct mk_lines *l)
{
    mk_buf_init(&l->partial, MK_MAX_UPSTREAM_EVENT_BYTES);
    l->last_cr = false;
}

void mk_lines_release(struct mk_lines *l) { mk_buf_release(&l->partial); }

int mk_lines_feed(struct mk_lines *l, const char *data, size_t len, mk_line_fn fn, void *arg)
{
    size_t i = 0;
    if (len && l->last_cr) {
        if (data[0] == '\n') i = 1; /* the LF of a CRLF split between two pieces */
        l->last_cr = false;
    }
    size_t start = i;
    while (i < len) {
        char c = data[i];
        if (c != '\n' && c != '\r') {
            i++;
            continue;
        }
        int rc;
        if (l->partial.len) {
            rc = mk_buf_append(&l->partial, data + start, i - start);
            if (rc) return MK_ETOOBIG;
            rc = fn(arg, mk_buf_slice(&l->partial), false);
            mk_buf_reset(&l->partial);
        } else {
            if (i - start > MK_MAX_UPSTREAM_EVENT_BYTES) return MK_ETOOBIG;
            rc = fn(arg, (mk_slice){data + start, i - start}, true);
        }
        if (c == '\r') {
            if (i + 1 < len) {
                if (data[i + 1] == '\n') i++;
            } else {
                l->last_cr = true;
            }
        }
        i++;
        start = i;
        if (rc) return rc;
    }
    if (start < len && mk_buf_append(&l->partial, data + start, len - start)) return MK_ETOOBIG;
    return 0;
}

int mk_lines_finish(struct mk_lines *l, mk_line_fn fn, void *arg)
{
    l->last_cr = false;
    if (!l->partial.len) return 0;
    int rc = fn(arg, mk_buf_slice(&l->partial), false);
    mk_buf_reset(&l->partial);
    return rc;
}

/* --- SSE -------------------------------------------------------------------- */

void mk_sse_init(struct mk_sse *s)
{
    memset(s, 0, sizeof *s);
    mk_lines_init(&s->lines);
    mk_buf_init(&s->data, MK_MAX_UPSTREAM_EVENT_BYTES);
}

void mk_sse_release(struct mk_sse *s)
{
    mk_lines_release(&s->lines);
    mk_buf_release(&s->data);
}

static int sse_dispatch(struct mk_sse *s)
{
    if (!s->has_data) return 0;
    mk_slice data = s->in_buf ? mk_buf_slice(&s->data) : s->borrowed;
    s->has_data = false;
    s->in_buf = false;
    s->borrowed = (mk_slice){NULL, 0};
    /* An event whose data is empty is not dispatched (the SSE processing model). */
    int rc = data.len ? s->fn(s->arg, data) : 0;
    mk_buf_reset(&s->data);
    return rc;
}

static int sse_line(void *arg, mk_slice line, bool stable)
{
    struct mk_sse *s = arg;
    if (line.len == 0) return sse_dispatch(s);
    if (line.ptr[0] == ':') return 0; /* comment, e.g. OpenRouter's ": PROCESSING" keep-alives */
    const char *colon = memchr(line.ptr, ':', line.len);
    mk_slice field = {line.ptr, colon ? (size_t)(colon - line.ptr) : line.len};
    mk_slice value = {"", 0};
    if (colon) {
        value.ptr = colon + 1;
        value.len = line.len - field.len - 1;
        if (value.len && value.ptr[0] == ' ') { value.ptr++; value.len--; }
    }
    if (!mk_slice_eq(field, MK_SLICE_LIT("data"))) return 0; /* event, id, retry: not used */
    if (!s->has_data) {
        s->has_data = true;
        if (stable) {
            s->borrowed = value;
            s->in_buf = false;
            return 0;
        }
        mk_buf_reset(&s->data);
        s->in_buf = true;
        return mk_buf_append_slice(&s->data, value) ? MK_ETOOBIG : 0;
    }
    if (!s->in_buf) {
        mk_buf_reset(&s->data);
        if (mk_buf_append_slice(&s->data, s->borrowed)) return MK_ETOOBIG;
        s->in_buf = true;
    }
    if (mk_buf_append_char(&s->data, '\n') || mk_buf_append_slice(&s->data, value)) return MK_ETOOBIG;
    return 0;
}

int mk_sse_feed(struct mk_sse *s, const char *data, size_t len, mk_sse_fn fn, void *arg)
{
    s->fn = fn;
    s->arg = arg;
    int rc = mk_lines_feed(&s->lines, data, len, sse_line, s);
    /* Borrowed data points into this input: keep a copy before the input goes away. */
    if (s->has_data && !s->in_buf) {
        mk_buf_reset(&s->data);
        if (mk_buf_append_slice(&s->data, s->borrowed) && !rc) rc = MK_ETOOBIG;
        s->in_buf = true;
        s->borrowed = (mk_slice){NULL, 0};
    }
    return rc;
}

int mk_sse_finish(struct mk_sse *s, mk_sse_fn fn, void *arg)
{
    s->fn = fn;
    s->arg = arg;
    int rc = mk_lines_finish(&s->lines, sse_line, s);
    if (!rc) rc = sse_dispatch(s);
    return rc;
}

/* --- stream decoder --------------------------------------------------------- */

mk_stream_decoder *mk_stream_decoder_alloc(mk_provider *p, const struct mk_chat_call *call)
{
    mk_stream_decoder *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->p = p;
    d->id = strdup(call && call->response_id ? call->response_id : "");
    d->model = strdup(call && call->model ? call->model : "");
    d->created = call ? call->created : 0;
    d->tok = mk_json_tokener_new();
    mk_sse_init(&d->sse);
    mk_lines_init(&d->lines);
    mk_buf_init(&d->chunk, 0);
    mk_buf_init(&d->text, MK_MAX_UPSTREAM_EVENT_BYTES);
    if (!d->id || !d->model || !d->tok) {
        mk_stream_decoder_free(d);
        return NULL;
    }
    return d;
}

void mk_stream_decoder_free(mk_stream_decoder *d)
{
    if (!d) return;
    free(d->id);
    free(d->model);
    if (d->tok) json_tokener_free(d->tok);
    mk_sse_release(&d->sse);
    mk_lines_release(&d->lines);
    mk_buf_release(&d->chunk);
    mk_buf_release(&d->text);
    free(d);
}

int mk_stream_emit(mk_stream_decoder *d, const struct mk_stream_event *ev)
{
    d->emitted = true;
    return d->sink(d->sink_arg, ev);
}

int mk_stream_fail(mk_stream_decoder *d, struct mk_provider_error *err)
{
    d->failed = true;
    d->fail_err = *err;
    return err->code;
}

static int sse_decoder_result(mk_stream_decoder *d, int rc, struct mk_provider_error *err)
{
    if (rc == MK_ETOOBIG && !d->failed) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream event exceeds %d bytes",
                MK_MAX_UPSTREAM_EVENT_BYTES);
        return mk_stream_fail(d, err);
    }
    return rc;
}

int mk_sse_decoder_feed(mk_stream_decoder *d, const char *data, size_t len, mk_sse_fn on_event,
                        mk_stream_sink_fn sink, void *arg, struct mk_provider_error *err)
{
    if (d->failed) {
        *err = d->fail_err;
        return err->code;
    }
    d->sink = sink;
    d->sink_arg = arg;
    d->err = err;
    return sse_decoder_result(d, mk_sse_feed(&d->sse, data, len, on_event, d), err);
}

int mk_sse_decoder_finish(mk_stream_decoder *d, mk_sse_fn on_event, mk_stream_sink_fn sink, void *arg,
                          struct mk_provider_error *err)
{
    if (d->failed) {
        *err = d->fail_err;
        return err->code;
    }
    d->sink = sink;
    d->sink_arg = arg;
    d->err = err;
    int rc = sse_decoder_result(d, mk_sse_finish(&d->sse, on_event, d), err);
    if (rc) return rc;
    if (!d->done) {
        mk_perr(err, MK_EUPSTREAM_BADREPLY, true, "upstream stream ended early (no [DONE])");
        return mk_stream_fail(d, err);
    }
    return 0;
}

int mk_error_from_object(json_object *error, int default_status, struct mk_provider_error *err)
{
    int status = default_status;
    json_object *code = NULL;
    /* YandexGPT says httpCode, GigaChat status, some OpenAI-compatible servers code. */
    static const char *const keys[] = {"httpCode", "status", "code"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        code = mk_json_get(error, keys[i], json_type_int);
        if (code) {
            int64_t v = json_object_get_int64(code);
            if (v >= 400 && v <= 599) {
                status = (int)v;
                break;
            }
        }
    }
    if (status) {
        mk_provider_error_from_http(status, (mk_slice){NULL, 0}, (mk_slice){NULL, 0}, err);
    } else {
        memset(err, 0, sizeof *err);
        err->code = MK_EUPSTREAM;
        err->retryable = true;
    }
    json_object *msg = json_object_is_type(error, json_type_string) ? error
                                                                    : mk_json_get(error, "message", json_type_string);
    if (msg && json_object_get_string_len(msg) > 0)
        mk_perr_message(err, json_object_get_string(msg), (size_t)json_object_get_string_len(msg));
    else if (!status)
        snprintf(err->message, sizeof err->message, "upstream reported an error");
    return err->code;
}

void mk_tool_call_id(char out[32], const char *response_id, int index)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (const char *s = response_id ? response_id : ""; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    for (int i = 0; i < 4; i++) {
        h ^= (unsigned char)((unsigned)index >> (8 * i));
        h *= 1099511628211ull;
    }
    snprintf(out, 32, "call_%016llx", (unsigned long long)h);
}
