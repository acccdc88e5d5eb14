/*
 * mk_http_parse: the connection-less HTTP/1.1 request parser behind mk_http.
 *
 * Wraps http-parser 2.9.4 and builds mk_http_req objects in a per-request pool,
 * enforcing every limit while the bytes arrive (never after buffering them): header
 * bytes and count (431), URL length (414), body size from Content-Length before the
 * body is read and while a chunked body grows (413), HTTP version (505), the rest of
 * the protocol (400). The parser pauses after each complete message, so a caller can
 * answer requests one at a time and keep pipelined bytes for later.
 *
 * Input bytes are never kept: everything a request needs is copied into its pool, so
 * the server can read into one shared buffer per loop.
 */
#include "net/mk_http_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_pool.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"

enum { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

#define HDRS_FIRST_CAP 16

static int fail(mk_http_parser *p, int status, const char *code, const char *msg)
{
    if (!p->err_status) {
        p->err_status = status;
        p->err_code = code;
        p->err_msg = msg;
    }
    return -1; /* makes http_parser stop with HPE_CB_* */
}

static int fail_nomem(mk_http_parser *p)
{
    return fail(p, 500, "server_error", "out of memory");
}

/* The header block so far, measured up to `end` (inside the current feed). */
static int check_header_bytes(mk_http_parser *p, const char *end)
{
    size_t used = p->hdr_bytes + (size_t)(end - p->feed_start);
    if (used > p->lim->max_header_bytes)
        return fail(p, 431, "request_header_fields_too_large", "request header block is too large");
    return 0;
}

/* Appends a piece to the token being assembled. The common case (a whole token in
 * one piece) costs one exact pool allocation; pieces double the capacity so a
 * byte-at-a-time peer costs linear copying, not quadratic. */
static int tok_append(mk_http_parser *p, const char *at, size_t len)
{
    size_t need = p->tok_len + len + 1;
    if (!p->tok || need > p->tok_cap) {
        size_t cap = p->tok ? p->tok_cap * 2 : need;
        if (cap < need) cap = need;
        char *t = mk_pool_alloc(p->req->pool, cap);
        if (!t) return fail_nomem(p);
        if (p->tok_len) memcpy(t, p->tok, p->tok_len);
        p->tok = t;
        p->tok_cap = cap;
    }
    memcpy(p->tok + p->tok_len, at, len);
    p->tok_len += len;
    p->tok[p->tok_len] = '\0';
    return 0;
}

/* Ends the current token; the slice is NUL-terminated pool memory ("" if empty). */
static mk_slice tok_take(mk_http_parser *p)
{
    mk_slice s = {p->tok ? p->tok : "", p->tok_len};
    p->tok = NULL;
    p->tok_len = p->tok_cap = 0;
    return s;
}

/* RFC 9110 token characters. http_parser in its default (non-strict) build lets a
 * space into header names; "Transfer-Encoding : chunked" would then mean one thing
 * to us and another to a proxy in front, so names are checked here (RFC 9112 5.1
 * says to answer 400). */
static bool is_token(mk_slice s)
{
    if (s.len == 0) return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
        if (!strchr("!#$%&'*+-.^_`|~", c) || c == 0) return false;
    }
    return true;
}

static int commit_header(mk_http_parser *p, mk_slice value)
{
    if (!is_token(p->name)) return fail(p, 400, "invalid_request", "invalid header name");
    if (p->nhdrs >= p->lim->max_headers)
        return fail(p, 431, "request_header_fields_too_large", "too many request headers");
    if (p->nhdrs == p->hdrs_cap) {
        size_t cap = p->hdrs_cap ? p->hdrs_cap * 2 : HDRS_FIRST_CAP;
        if (cap > p->lim->max_headers) cap = p->lim->max_headers;
        mk_http_header *h = mk_pool_alloc(p->req->pool, cap * sizeof *h);
        if (!h) return fail_nomem(p);
        if (p->nhdrs) memcpy(h, p->hdrs, p->nhdrs * sizeof *h);
        p->hdrs = h;
        p->hdrs_cap = cap;
    }
    p->hdrs[p->nhdrs].name = p->name;
    p->hdrs[p->nhdrs].value = value;
    p->nhdrs++;
    p->name = (mk_slice){NULL, 0};
    return 0;
}

/* Closes whatever token was open when the header block (or a new field) starts. */
static int close_token(mk_http_parser *p)
{
    switch (p->last_cb) {
    case CB_URL: p->url = tok_take(p); break;
    case CB_FIELD: p->name = tok_take(p); return commit_header(p, MK_SLICE_LIT(""));
    case CB_VALUE: return commit_header(p, tok_take(p));
    default: break;
    }
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    mk_http_parser *p = hp->data;
    mk_pool *pool = mk_pool_new(MK_HTTP_POOL_BLOCK);
    mk_http_req *req = pool ? mk_pool_alloc(pool, sizeof *req) : NULL;
    if (!req) {
        mk_pool_free(pool);
        return fail_nomem(p);
    }
    req->pool = pool;
    p->req = req;
    p->phase = MK_HTTP_PHASE_HEADERS;
    p->last_cb = CB_NONE;
    p->tok = NULL;
    p->tok_len = p->tok_cap = 0;
    p->url = p->name = (mk_slice){NULL, 0};
    p->hdrs = NULL;
    p->nhdrs = p->hdrs_cap = 0;
    p->body = NULL;
    p->body_len = 0;
    p->chunked = false;
    p->expect_continue = false;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    mk_http_parser *p = hp->data;
    if (p->tok_len + len > p->lim->max_url_bytes)
        return fail(p, 414, "uri_too_long", "request URL is too long");
    if (check_header_bytes(p, at + len)) return -1;
    p->last_cb = CB_URL;
    return tok_append(p, at, len);
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    mk_http_parser *p = hp->data;
    if (p->phase != MK_HTTP_PHASE_HEADERS) return 0; /* chunked trailers: ignored */
    if (check_header_bytes(p, at + len)) return -1;
    if (p->last_cb != CB_FIELD && close_token(p)) return -1;
    p->last_cb = CB_FIELD;
    return tok_append(p, at, len);
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    mk_http_parser *p = hp->data;
    if (p->phase != MK_HTTP_PHASE_HEADERS) return 0;
    if (check_header_bytes(p, at + len)) return -1;
    if (p->last_cb == CB_FIELD) p->name = tok_take(p);
    p->last_cb = CB_VALUE;
    return tok_append(p, at, len);
}

static mk_slice find_header(const mk_http_header *h, size_t n, const char *name)
{
    mk_slice want = mk_slice_cstr(name);
    for (size_t i = 0; i < n; i++)
        if (mk_slice_eq_nocase(h[i].name, want)) return h[i].value;
    return (mk_slice){NULL, 0};
}

/* Splits the request target into path and query, each NUL-terminated in the pool. */
static int split_url(mk_http_parser *p)
{
    mk_http_req *req = p->req;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (p->url.len == 0 || http_parser_parse_url(p->url.ptr, p->url.len, 0, &u) != 0)
        return fail(p, 400, "invalid_request", "invalid request target");
    if (u.field_set & (1u << UF_PATH)) {
        req->path = (mk_slice){p->url.ptr + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len};
    } else {
        req->path = MK_SLICE_LIT("/"); /* absolute form without a path: "http://host" */
    }
    if (u.field_set & (1u << UF_QUERY))
        req->query = (mk_slice){p->url.ptr + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len};
    else
        req->query = MK_SLICE_LIT("");
    /* The URL copy is ours: terminate path and query in place. The byte after the
     * path is '?', '#' or the URL's own NUL, after the query '#' or NUL; both slices
     * were measured already, so overwriting those separators loses nothing. */
    if (u.field_set & (1u << UF_PATH)) ((char *)req->path.ptr)[req->path.len] = '\0';
    if (req->query.len) ((char *)req->query.ptr)[req->query.len] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    mk_http_parser *p = hp->data;
    if (close_token(p)) return -1;
    p->last_cb = CB_NONE;
    if (hp->http_major != 1)
        return fail(p, 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported");
    if (hp->method == HTTP_CONNECT)
        return fail(p, 400, "invalid_request", "CONNECT is not supported");
    if (split_url(p)) return -1;

    if (hp->flags & F_CHUNKED) {
        p->chunked = true;
        mk_buf_release(&p->cbody);
        mk_buf_init(&p->cbody, p->lim->max_body_bytes);
    } else if (hp->content_length != UINT64_MAX && hp->content_length > 0) {
        if (hp->content_length > p->lim->max_body_bytes)
            return fail(p, 413, "request_too_large", "request body is too large");
        p->body = mk_pool_alloc(p->req->pool, (size_t)hp->content_length + 1);
        if (!p->body) return fail_nomem(p);
    }
    bool has_body = p->chunked || p->body;
    if (has_body && hp->http_minor >= 1) {
        mk_slice e = find_header(p->hdrs, p->nhdrs, "expect");
        p->expect_continue = mk_slice_eq_nocase(e, MK_SLICE_LIT("100-continue"));
    }
    p->phase = MK_HTTP_PHASE_BODY;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    mk_http_parser *p = hp->data;
    if (p->chunked) {
        int rc = mk_buf_append(&p->cbody, at, len);
        if (rc == MK_ETOOBIG) return fail(p, 413, "request_too_large", "request body is too large");
        if (rc) return fail_nomem(p);
        return 0;
    }
    if (!p->body) return fail(p, 400, "invalid_request", "unexpected request body");
    /* http_parser never passes more than Content-Length bytes. */
    memcpy(p->body + p->body_len, at, len);
    p->body_len += len;
    return 0;
}

static bool request_id_ok(mk_slice s, size_t max)
{
    if (s.len == 0 || s.len > max) return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

static void free_data(void *d) { free(d); }

static int on_message_complete(http_parser *hp)
{
    mk_http_parser *p = hp->data;
    mk_http_req *req = p->req;
    if (p->chunked) {
        size_t len = 0;
        char *data = mk_buf_steal(&p->cbody, &len);
        if (data && mk_pool_on_free(req->pool, free_data, data) != 0) {
            free(data);
            return fail_nomem(p);
        }
        req->body = data ? (mk_slice){data, len} : MK_SLICE_LIT("");
    } else if (p->body) {
        p->body[p->body_len] = '\0';
        req->body = (mk_slice){p->body, p->body_len};
    } else {
        req->body = MK_SLICE_LIT("");
    }
    req->method = http_method_str((enum http_method)hp->method);
    req->headers = p->hdrs;
    req->nheaders = p->nhdrs;
    req->http_major = hp->http_major;
    req->http_minor = hp->http_minor;
    req->keep_alive = http_should_keep_alive(hp) != 0;
    mk_slice rid = find_header(p->hdrs, p->nhdrs, "x-request-id");
    if (request_id_ok(rid, sizeof req->request_id - 1)) {
        memcpy(req->request_id, rid.ptr, rid.len);
        req->request_id[rid.len] = '\0';
    } else {
        mk_request_id(req->request_id);
    }
    req->received_us = mk_now_us();
    p->ready = true;
    p->phase = MK_HTTP_PHASE_IDLE;
    p->hdr_bytes = p->idle_bytes = 0;
    http_parser_pause(hp, 1); /* one request at a time: the caller resumes us */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void mk_http_parser_init(mk_http_parser *p, const struct mk_http_limits *lim)
{
    memset(p, 0, sizeof *p);
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    p->lim = lim;
    mk_buf_init(&p->cbody, lim->max_body_bytes);
}

void mk_http_parser_release(mk_http_parser *p)
{
    if (p->req) mk_pool_free(p->req->pool);
    p->req = NULL;
    p->ready = false;
    mk_buf_release(&p->cbody);
}

static int map_parser_error(mk_http_parser *p, enum http_errno e)
{
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        return fail(p, 431, "request_header_fields_too_large", "request header block is too large");
    case HPE_INVALID_METHOD:
        return fail(p, 400, "invalid_request", "invalid or unsupported HTTP method");
    case HPE_INVALID_VERSION:
        return fail(p, 400, "invalid_request", "invalid HTTP version");
    case HPE_INVALID_TRANSFER_ENCODING:
        return fail(p, 400, "invalid_request", "unsupported Transfer-Encoding");
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_CONTENT_LENGTH:
        return fail(p, 400, "invalid_request", "invalid Content-Length");
    case HPE_INVALID_CHUNK_SIZE:
        return fail(p, 400, "invalid_request", "invalid chunk size");
    default:
        return fail(p, 400, "invalid_request", "malformed HTTP request");
    }
}

enum mk_http_feed_result mk_http_parser_feed(mk_http_parser *p, const char *data, size_t len,
                                             size_t *used)
{
    *used = 0;
    if (p->err_status) return MK_HTTP_ERROR;
    if (p->ready || len == 0) return MK_HTTP_NEED_MORE; /* caller must take first */
    if (HTTP_PARSER_ERRNO(&p->hp) == HPE_PAUSED) http_parser_pause(&p->hp, 0);
    p->feed_start = data;
    enum mk_http_phase before = p->phase;
    size_t n = http_parser_execute(&p->hp, &settings, data, len);
    *used = n;
    if (p->ready) return MK_HTTP_REQUEST;
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (e != HPE_OK) {
        if (!p->err_status) map_parser_error(p, e);
        return MK_HTTP_ERROR;
    }
    if (n != len) { /* cannot happen without an error or a complete message */
        fail(p, 400, "invalid_request", "malformed HTTP request");
        return MK_HTTP_ERROR;
    }
    if (p->phase == MK_HTTP_PHASE_HEADERS) {
        /* The whole feed belongs to the header block (it started in this feed or an
         * earlier one); catches bytes no callback reported, e.g. padding. */
        p->hdr_bytes += n;
        if (p->hdr_bytes > p->lim->max_header_bytes) {
            check_header_bytes(p, data);
            return MK_HTTP_ERROR;
        }
    } else if (p->phase == MK_HTTP_PHASE_IDLE && before == MK_HTTP_PHASE_IDLE) {
        /* http_parser skips CR/LF between messages without limit. */
        p->idle_bytes += n;
        if (p->idle_bytes > p->lim->max_header_bytes) {
            fail(p, 400, "invalid_request", "malformed HTTP request");
            return MK_HTTP_ERROR;
        }
    }
    return MK_HTTP_NEED_MORE;
}

mk_http_req *mk_http_parser_take(mk_http_parser *p)
{
    if (!p->ready) return NULL;
    mk_http_req *req = p->req;
    p->req = NULL;
    p->ready = false;
    return req;
}
