/*
 * mk_http_response: answering requests of mk_http (complete and streamed responses),
 * the abort hook, header lookup and the status table.
 *
 * A response head is built in one pass into a stack buffer and goes out with its
 * body in one write (writev through uv_try_write, or one copied uv_write when the
 * socket is full). Finishing a request frees its pool and hands the connection back
 * to mk_http.c. On an aborted request every call does the bookkeeping only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_pool.h"
#include "net/mk_http.h"
#include "net/mk_http_int.h"

/* ---- status table ------------------------------------------------------------ */

const char *mk_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- response heads ---------------------------------------------------------- */

static const char *http_date(mk_http_server *s)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    if (now != s->date_sec) { /* formatted once per second per server */
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(s->date, sizeof s->date, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        s->date_sec = now;
    }
    return s->date;
}

/* Headers the server writes itself; a caller's copy would contradict ours. */
static bool reserved_header(mk_slice n)
{
    switch (n.len) {
    case 4: return mk_slice_eq_nocase(n, MK_SLICE_LIT("Date"));
    case 10: return mk_slice_eq_nocase(n, MK_SLICE_LIT("Connection"));
    case 12: return mk_slice_eq_nocase(n, MK_SLICE_LIT("X-Request-Id"));
    case 14: return mk_slice_eq_nocase(n, MK_SLICE_LIT("Content-Length"));
    case 17: return mk_slice_eq_nocase(n, MK_SLICE_LIT("Transfer-Encoding"));
    default: return false;
    }
}

/* A header that would split the response (CR/LF) or is not a header is dropped. */
static bool header_ok(const mk_http_header *h)
{
    if (!h->name.ptr || h->name.len == 0 || (h->value.len && !h->value.ptr)) return false;
    for (size_t i = 0; i < h->name.len; i++) {
        unsigned char ch = (unsigned char)h->name.ptr[i];
        if (ch <= ' ' || ch == ':' || ch >= 127) return false;
    }
    return !memchr(h->value.ptr ? h->value.ptr : "", '\r', h->value.len) &&
           !memchr(h->value.ptr ? h->value.ptr : "", '\n', h->value.len) &&
           !memchr(h->value.ptr ? h->value.ptr : "", '\0', h->value.len);
}

size_t mk_http__head_bound(const mk_http_server *s, const mk_http_header *headers, size_t nheaders)
{
    size_t n = 320 + (s->server_name ? strlen(s->server_name) : 0);
    for (size_t i = 0; i < nheaders; i++) n += headers[i].name.len + headers[i].value.len + 4;
    return n;
}

struct out {
    char *p, *end;
};

static void put(struct out *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        o->p = o->end + 1; /* overflow marker; checked at the end */
        o->end = o->p;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}
#define PUT_LIT(o, s) put((o), (s), sizeof(s) - 1)
static void put_str(struct out *o, const char *s) { put(o, s, strlen(s)); }
static void put_u64(struct out *o, unsigned long long v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - (size_t)i);
}

size_t mk_http__build_head(mk_http_server *s, char *out, size_t cap, int status,
                           const mk_http_header *headers, size_t nheaders, long long content_length,
                           bool chunked, bool keep_alive, const char *request_id)
{
    if (status < 100 || status > 999) status = 500;
    struct out o = {out, out + cap};
    PUT_LIT(&o, "HTTP/1.1 ");
    put_u64(&o, (unsigned long long)status);
    PUT_LIT(&o, " ");
    put_str(&o, mk_http_status_text(status));
    PUT_LIT(&o, "\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        const mk_http_header *h = &headers[i];
        if (!header_ok(h)) {
            mk_log(MK_LOG_WARN, "http_bad_response_header", "msg", "dropped a header with invalid bytes", NULL);
            continue;
        }
        if (reserved_header(h->name)) continue;
        put(&o, h->name.ptr, h->name.len);
        PUT_LIT(&o, ": ");
        put(&o, h->value.ptr, h->value.len);
        PUT_LIT(&o, "\r\n");
    }
    if (s->server_name) {
        PUT_LIT(&o, "Server: ");
        put_str(&o, s->server_name);
        PUT_LIT(&o, "\r\n");
    }
    if (content_length >= 0) {
        PUT_LIT(&o, "Content-Length: ");
        put_u64(&o, (unsigned long long)content_length);
        PUT_LIT(&o, "\r\n");
    }
    if (chunked) PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
    PUT_LIT(&o, "Date: ");
    put_str(&o, http_date(s));
    if (keep_alive) PUT_LIT(&o, "\r\nConnection: keep-alive\r\n");
    else PUT_LIT(&o, "\r\nConnection: close\r\n");
    PUT_LIT(&o, "X-Request-Id: ");
    put_str(&o, request_id);
    PUT_LIT(&o, "\r\n\r\n");
    if (o.p > o.end) return 0;
    return (size_t)(o.p - out);
}

/* ---- finishing ----------------------------------------------------------------- */

static void finish(mk_http_req *req)
{
    mk_http_conn *c = req->conn;
    c->req = NULL;
    c->abort_fn = NULL;
    c->streaming = false;
    mk_pool_free(req->pool);
    mk_http__conn_after_finish(c);
}

static bool writable(const mk_http_conn *c) { return c->state == MK_HTTP_C_OPEN && !c->aborted; }

/* Writes the head (and body) through a stack buffer when it fits. */
static int write_head(mk_http_req *req, int status, const mk_http_header *headers, size_t nheaders,
                      long long content_length, bool chunked, const char *body, size_t len)
{
    mk_http_conn *c = req->conn;
    char stackbuf[2048];
    size_t bound = mk_http__head_bound(c->srv, headers, nheaders);
    char *head = bound <= sizeof stackbuf ? stackbuf : malloc(bound);
    if (!head) return MK_ENOMEM;
    size_t hl = mk_http__build_head(c->srv, head, bound, status, headers, nheaders, content_length, chunked,
                                    c->resp_keepalive, req->request_id);
    int rc = MK_EINTERNAL;
    if (hl) {
        uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)body, (unsigned)len)};
        rc = mk_http__conn_write(c, bufs, len ? 2 : 1);
    }
    if (head != stackbuf) free(head);
    return rc;
}

static bool bodyless_status(int status) { return status < 200 || status == 204 || status == 304; }

int mk_http_respond(mk_http_req *req, int status, const mk_http_header *headers, size_t nheaders,
                    const char *body, size_t len)
{
    if (!req) return MK_EINVAL;
    mk_http_conn *c = req->conn;
    if (c->streaming) { /* a started stream can only end as a stream */
        mk_http_stream_end(req);
        return MK_EINVAL;
    }
    if (writable(c)) {
        c->resp_keepalive = req->keep_alive && !c->srv->draining;
        long long cl = (long long)len;
        if (bodyless_status(status)) {
            cl = -1;
            len = 0;
        }
        if (c->is_head) len = 0; /* HEAD: the length of what GET would send, no body */
        if (len > UINT32_MAX) { /* a uv_buf_t holds 32 bits */
            write_head(req, 500, NULL, 0, 0, false, NULL, 0);
        } else {
            write_head(req, status, headers, nheaders, cl, false, body, len);
        }
    }
    finish(req);
    return 0;
}

int mk_http_stream_start(mk_http_req *req, int status, const mk_http_header *headers, size_t nheaders)
{
    if (!req) return MK_EINVAL;
    mk_http_conn *c = req->conn;
    if (c->streaming) return MK_EINVAL;
    c->streaming = true;
    /* HTTP/1.1 gets chunks and may keep the connection; HTTP/1.0 has no chunked
     * encoding, so the end of the body is the end of the connection. */
    c->chunked = req->http_major == 1 && req->http_minor >= 1;
    if (!writable(c)) return 0;
    c->resp_keepalive = c->chunked && req->keep_alive && !c->srv->draining;
    int rc = write_head(req, status, headers, nheaders, -1, c->chunked, NULL, 0);
    return rc == MK_ECANCELLED ? 0 : rc; /* the abort is reported by on_abort */
}

int mk_http_stream_write(mk_http_req *req, const char *data, size_t len)
{
    if (!req) return MK_EINVAL;
    mk_http_conn *c = req->conn;
    if (!c->streaming) return MK_EINVAL;
    if (!writable(c)) return MK_ECANCELLED;
    if (len == 0 || c->is_head) return 0; /* an empty chunk would end the body */
    if (len > UINT32_MAX - 64) return MK_ETOOBIG;
    if (!c->chunked) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        return mk_http__conn_write(c, &b, 1);
    }
    char size_line[24];
    int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    uv_buf_t bufs[3] = {uv_buf_init(size_line, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init((char *)"\r\n", 2)};
    return mk_http__conn_write(c, bufs, 3);
}

int mk_http_stream_end(mk_http_req *req)
{
    if (!req) return MK_EINVAL;
    mk_http_conn *c = req->conn;
    if (!c->streaming) { /* never started: still finish, as a server error */
        mk_http_respond(req, 500, NULL, 0, NULL, 0);
        return MK_EINVAL;
    }
    if (writable(c) && c->chunked && !c->is_head) {
        uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
        mk_http__conn_write(c, &b, 1);
    }
    finish(req);
    return 0;
}

size_t mk_http_req_write_queue_bytes(const mk_http_req *req) { return req ? req->conn->wq_bytes : 0; }

void mk_http_req_on_abort(mk_http_req *req, void (*fn)(mk_http_req *req, void *arg), void *arg)
{
    if (!req) return;
    mk_http_conn *c = req->conn;
    c->abort_fn = fn;
    c->abort_arg = arg;
    /* Set after the close callback already passed: deliver it from the loop. */
    if (fn && c->tcp_closed && !c->abort_notified) mk_http__enqueue_resume(c);
}

bool mk_http_req_aborted(const mk_http_req *req) { return req && req->conn->aborted; }

mk_slice mk_http_req_header(const mk_http_req *req, const char *name)
{
    if (!req || !name) return (mk_slice){NULL, 0};
    mk_slice want = mk_slice_cstr(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (mk_slice_eq_nocase(req->headers[i].name, want)) return req->headers[i].value;
    return (mk_slice){NULL, 0};
}
