/*
 * mk_http: the HTTP/1.1 server's connection machinery on libuv (see mk_http.h).
 *
 * Life of a connection: accepted (or closed at once beyond max_connections), read
 * into the loop's shared buffer, parsed by mk_http_parser (mk_http_parse.c), one
 * request handed to the handler at a time. Bytes that arrive while a request is in
 * flight are kept in `pending` (reading pauses past MK_MAX_PIPELINED_BYTES) and
 * parsed once the response is finished. Reading continues meanwhile so a client
 * that leaves is noticed and the request aborted (EOF counts as leaving).
 *
 * Memory: a connection is ~1 KB with no buffer while idle; a request lives in its
 * own pool. A closed connection is freed only when both handles reported closed AND
 * its request (if any) was finished by its owner, so neither side can see freed
 * memory. The server likewise lives until its last connection is freed.
 *
 * Re-entrancy: user callbacks (handler, on_abort, drain done) are only called from
 * loop callbacks, never from inside a user's own call into this module, so a
 * respond() never runs another handler on its stack.
 *
 * Timers: one uv_timer per connection with a lazily moved deadline: moving a
 * deadline later costs nothing (the timer re-arms when it fires early), so a busy
 * keep-alive connection touches the timer heap about once per timeout period.
 */
#include "net/mk_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "net/mk_busy_poll.h"
#include "net/mk_http_int.h"

/* How long a closing connection waits for the peer's FIN after our last response,
 * discarding its input, so unread request bytes do not turn our close into a RST
 * that destroys the response (e.g. a 413 while the client still uploads). */
#define LINGER_MS 2000
#define LINGER_MAX_DISCARD (1024 * 1024)
#define LISTEN_BACKLOG 4096

static void on_timer(uv_timer_t *t);
static void conn_close(mk_http_conn *c);
static void conn_resume(mk_http_conn *c);
static void restart_read(mk_http_conn *c);
static void on_idle(uv_idle_t *h);
static void maybe_free_server(mk_http_server *s);

/* ---- small helpers --------------------------------------------------------- */

static size_t pick(size_t v, size_t dflt) { return v == 0 || v > dflt ? dflt : v; }

static void set_deadline(mk_http_conn *c, enum mk_http_tkind kind, uint64_t ms)
{
    c->tkind = (uint8_t)kind;
    c->deadline = uv_now(c->srv->loop) + ms;
    if (!uv_is_active((uv_handle_t *)&c->timer) || uv_timer_get_due_in(&c->timer) > ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

void mk_http__enqueue_resume(mk_http_conn *c)
{
    mk_http_server *s = c->srv;
    if (c->in_resume || s->freeing) return;
    c->in_resume = true;
    c->resume_next = NULL;
    if (s->resume_tail) s->resume_tail->resume_next = c;
    else s->resume_head = c;
    s->resume_tail = c;
    uv_idle_start(&s->idle, on_idle);
}

static void maybe_free_conn(mk_http_conn *c)
{
    if (c->handles_open || c->req || c->in_resume) return;
    mk_http_server *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    mk_http_parser_release(&c->parser);
    mk_buf_release(&c->pending);
    free(c);
    s->nalive--;
    maybe_free_server(s);
}

static void check_drained(mk_http_server *s)
{
    if (!s->draining || s->drain_notified || s->freeing || s->nconns) return;
    s->drain_notified = true;
    if (s->drain_done) s->drain_done(s->drain_arg); /* may free the server: return */
}

/* ---- closing ---------------------------------------------------------------- */

static void on_timer_close(uv_handle_t *h)
{
    mk_http_conn *c = h->data;
    c->handles_open--;
    maybe_free_conn(c);
}

static void on_tcp_close(uv_handle_t *h)
{
    mk_http_conn *c = h->data;
    mk_http_server *s = c->srv;
    c->tcp_closed = true;
    /* Tell the owner before dropping our handle count: if on_abort finishes the
     * request right away, the connection must still be alive when it returns. */
    if (c->req && c->abort_fn && !c->abort_notified) {
        c->abort_notified = true;
        c->abort_fn(c->req, c->abort_arg);
    }
    if (c->upgraded && c->up_ops) { /* the owner's last word; the handle dies below */
        const struct mk_http_upgrade_ops *ops = c->up_ops;
        c->up_ops = NULL;
        ops->on_close(c->up_arg);
    }
    s->nconns--;
    check_drained(s); /* before the free below, which may free the server too */
    c->handles_open--;
    maybe_free_conn(c);
}

/* Closes now. A request in flight becomes aborted; its owner hears of it from the
 * close callback (never from inside one of its own calls) and must still finish it. */
static void conn_close(mk_http_conn *c)
{
    if (c->state == MK_HTTP_C_CLOSING) return;
    c->state = MK_HTTP_C_CLOSING;
    if (c->req) c->aborted = true;
    mk_buf_release(&c->pending);
    uv_close((uv_handle_t *)&c->tcp, on_tcp_close);
    uv_close((uv_handle_t *)&c->timer, on_timer_close);
}

static void conn_linger(mk_http_conn *c);

void mk_http__conn_close(mk_http_conn *c, bool graceful)
{
    if (graceful) conn_linger(c);
    else conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    mk_http_conn *c = req->data;
    free(req);
    if (status < 0) conn_close(c); /* includes UV_ECANCELED from a close: no-op */
}

/* Graceful close after the last response: FIN after the queued bytes, then read
 * and discard until the peer closes too or LINGER_MS pass. */
static void conn_linger(mk_http_conn *c)
{
    if (c->state != MK_HTTP_C_OPEN) return;
    c->state = MK_HTTP_C_LINGER;
    mk_buf_release(&c->pending);
    uv_shutdown_t *sr = malloc(sizeof *sr);
    if (!sr) {
        conn_close(c);
        return;
    }
    sr->data = c;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(sr);
        conn_close(c);
        return;
    }
    if (c->read_stopped) { /* the peer's FIN must be seen */
        c->read_stopped = false;
        restart_read(c);
    }
    set_deadline(c, MK_HTTP_T_LINGER, LINGER_MS);
}

/* ---- writing ---------------------------------------------------------------- */

struct wreq {
    uv_write_t w;
    mk_http_conn *conn;
    size_t len;
    char data[];
};

static void on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    mk_http_conn *c = wr->conn;
    c->wq_bytes -= wr->len;
    free(wr);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->upgraded && c->up_want_writable && c->wq_bytes == 0 && c->state == MK_HTTP_C_OPEN && c->up_ops) {
        c->up_want_writable = false;
        if (c->up_ops->on_writable) c->up_ops->on_writable(c->up_arg);
    }
}

int mk_http__conn_write(mk_http_conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
    if (c->state == MK_HTTP_C_CLOSING) return MK_ECANCELLED;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++) total += bufs[i].len;
    if (total == 0) return 0;
    size_t done = 0;
    if (c->wq_bytes == 0) {
        /* Nothing queued: write directly, the usual case; order is kept because
         * uv_try_write refuses while libuv has queued writes. */
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (n >= 0) done = (size_t)n;
        else if (n != UV_EAGAIN) {
            conn_close(c);
            return MK_ECANCELLED;
        }
        if (done == total) return 0;
    }
    size_t rest = total - done;
    struct wreq *wr = malloc(sizeof *wr + rest);
    if (!wr) {
        conn_close(c);
        return MK_ECANCELLED;
    }
    wr->conn = c;
    wr->len = rest;
    size_t skip = done, o = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t l = bufs[i].len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(wr->data + o, bufs[i].base + skip, l - skip);
        o += l - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(wr);
        conn_close(c);
        return MK_ECANCELLED;
    }
    c->wq_bytes += rest;
    return 0;
}

/* An error the server answers itself, in OpenAI's error shape, then closes. */
static void conn_send_error(mk_http_conn *c, int status, const char *code, const char *msg)
{
    if (c->state != MK_HTTP_C_OPEN) return;
    char body[320];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
                      "\"param\":null,\"code\":\"%s\"}}",
                      msg, code);
    if (bl < 0 || (size_t)bl >= sizeof body) bl = 0;
    static const mk_http_header ct[] = {{MK_SLICE_LIT("Content-Type"), MK_SLICE_LIT("application/json")}};
    char rid[17];
    mk_request_id(rid);
    char head[1024];
    size_t hl = mk_http__build_head(c->srv, head, sizeof head, status, ct, 1, bl, false, false, rid);
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init(body, (unsigned)bl)};
    if (hl && mk_http__conn_write(c, bufs, 2) != 0) return;
    conn_linger(c);
}

static void send_parser_error(mk_http_conn *c)
{
    mk_http_parser *p = &c->parser;
    conn_send_error(c, p->err_status ? p->err_status : 400, p->err_code ? p->err_code : "invalid_request",
                    p->err_msg ? p->err_msg : "malformed HTTP request");
}

/* ---- parsing and dispatch ---------------------------------------------------- */

static void dispatch(mk_http_conn *c, mk_http_req *req)
{
    mk_http_server *s = c->srv;
    c->req = req;
    c->abort_fn = NULL;
    c->abort_arg = NULL;
    c->aborted = c->abort_notified = false;
    c->streaming = c->chunked = false;
    c->is_head = strcmp(req->method, "HEAD") == 0;
    req->conn = c;
    memcpy(req->peer, c->peer, sizeof req->peer);
    if (s->draining) req->keep_alive = false;
    c->tkind = MK_HTTP_T_NONE;
    s->inflight++;
    s->handler(req, s->ctx);
}

static void maybe_send_continue(mk_http_conn *c)
{
    mk_http_parser *p = &c->parser;
    if (!p->expect_continue || p->phase != MK_HTTP_PHASE_BODY) return;
    p->expect_continue = false;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
    mk_http__conn_write(c, &b, 1);
}

/* Parses and dispatches requests one at a time until the data runs out, a request
 * stays in flight, or the connection stops. Returns the bytes consumed. */
static size_t conn_parse(mk_http_conn *c, const char *data, size_t len)
{
    size_t off = 0;
    c->in_process = true;
    while (off < len && c->state == MK_HTTP_C_OPEN && !c->req && !c->upgraded) {
        size_t used = 0;
        enum mk_http_feed_result r = mk_http_parser_feed(&c->parser, data + off, len - off, &used);
        off += used;
        if (r == MK_HTTP_ERROR) {
            send_parser_error(c);
            break;
        }
        maybe_send_continue(c);
        if (r == MK_HTTP_REQUEST) dispatch(c, mk_http_parser_take(&c->parser));
    }
    c->in_process = false;
    return off;
}

/* Arms the timer for whatever the connection now waits for. */
static void update_timer(mk_http_conn *c)
{
    if (c->state != MK_HTTP_C_OPEN || c->req || c->upgraded) return;
    mk_http_server *s = c->srv;
    if (c->parser.phase == MK_HTTP_PHASE_HEADERS && c->tkind != MK_HTTP_T_HEADERS)
        set_deadline(c, MK_HTTP_T_HEADERS, s->header_timeout_ms);
    else if (c->parser.phase == MK_HTTP_PHASE_BODY && c->tkind != MK_HTTP_T_BODY)
        set_deadline(c, MK_HTTP_T_BODY, s->body_timeout_ms);
}

static void process_pending(mk_http_conn *c)
{
    if (c->pending.len == 0) return;
    size_t used = conn_parse(c, c->pending.data, c->pending.len);
    if (c->state != MK_HTTP_C_OPEN) return; /* pending was released */
    mk_buf_consume(&c->pending, used);
    if (c->pending.len == 0) mk_buf_release(&c->pending); /* idle connections hold nothing */
}

static int keep_pending(mk_http_conn *c, const char *data, size_t len)
{
    if (mk_buf_append(&c->pending, data, len) != 0) {
        conn_close(c);
        return -1;
    }
    if (c->pending.len >= MK_MAX_PIPELINED_BYTES && !c->read_stopped) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->read_stopped = true;
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mk_http_conn *c = h->data;
    buf->base = c->srv->rbuf;
    buf->len = sizeof c->srv->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    mk_http_conn *c = st->data;
    if (nread == 0) return;
    mk_busy_poll_touch();
    if (nread < 0) { /* EOF or error: the client is gone */
        conn_close(c);
        return;
    }
    size_t n = (size_t)nread;
    if (c->state == MK_HTTP_C_LINGER) {
        c->discarded += n;
        if (c->discarded > LINGER_MAX_DISCARD) conn_close(c);
        return;
    }
    if (c->state != MK_HTTP_C_OPEN) return;
    if (c->upgraded) { /* another protocol now: the owner takes the bytes, in order */
        if (c->pending.len || c->in_resume) {
            keep_pending(c, buf->base, n);
            mk_http__upgraded_resume(c);
        } else if (c->up_ops) {
            c->up_ops->on_data(c->up_arg, buf->base, n);
        }
        return;
    }
    if (c->req) { /* in flight: keep the bytes for later */
        keep_pending(c, buf->base, n);
        return;
    }
    if (c->pending.len) { /* older bytes first */
        if (keep_pending(c, buf->base, n) == 0) process_pending(c);
    } else {
        size_t used = conn_parse(c, buf->base, n);
        if (used < n && c->state == MK_HTTP_C_OPEN) keep_pending(c, buf->base + used, n - used);
    }
    /* Upgraded by a handler that ran above: what followed the request is theirs. */
    if (c->upgraded) mk_http__upgraded_resume(c);
    update_timer(c);
}

static void restart_read(mk_http_conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

void mk_http__restart_read(mk_http_conn *c) { restart_read(c); }

static void conn_resume(mk_http_conn *c)
{
    if (c->state != MK_HTTP_C_OPEN || c->req) return;
    if (c->upgraded) {
        mk_http__upgraded_resume(c);
        return;
    }
    process_pending(c);
    if (c->upgraded) {
        mk_http__upgraded_resume(c);
        return;
    }
    if (c->state == MK_HTTP_C_OPEN && !c->req && c->read_stopped) {
        c->read_stopped = false;
        restart_read(c);
    }
    update_timer(c);
}

void mk_http__conn_after_finish(mk_http_conn *c)
{
    mk_http_server *s = c->srv;
    s->inflight--;
    if (c->state == MK_HTTP_C_CLOSING) {
        maybe_free_conn(c);
        return;
    }
    if (!c->resp_keepalive || c->state != MK_HTTP_C_OPEN) {
        conn_linger(c);
        return;
    }
    set_deadline(c, MK_HTTP_T_IDLE, s->keepalive_timeout_ms);
    /* Inside the parse loop the loop itself goes on; otherwise continue from a loop
     * callback so the next handler never runs inside the caller's respond(). */
    if (!c->in_process && (c->pending.len || c->read_stopped)) mk_http__enqueue_resume(c);
}

static void on_timer(uv_timer_t *t)
{
    mk_http_conn *c = t->data;
    if (c->tkind == MK_HTTP_T_NONE || c->state == MK_HTTP_C_CLOSING) return;
    uint64_t now = uv_now(c->srv->loop);
    if (now < c->deadline) { /* the deadline moved later since the timer was armed */
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    switch (c->tkind) {
    case MK_HTTP_T_UPGRADED:
        c->tkind = MK_HTTP_T_NONE;
        if (c->up_ops && c->up_ops->on_timer) c->up_ops->on_timer(c->up_arg);
        break;
    case MK_HTTP_T_HEADERS:
        conn_send_error(c, 408, "request_timeout", "timed out waiting for the request headers");
        break;
    case MK_HTTP_T_BODY:
        conn_send_error(c, 408, "request_timeout", "timed out waiting for the request body");
        break;
    default:
        conn_close(c);
        break;
    }
}

/* ---- accepting --------------------------------------------------------------- */

static void free_handle(uv_handle_t *h) { free(h); }

static void reject(mk_http_server *s)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(s->loop, t);
    uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, free_handle);
}

static void format_peer(mk_http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
            snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
            return;
        }
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
            snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip, port);
            return;
        }
    }
    snprintf(c->peer, sizeof c->peer, "unknown");
}

static void on_connection(uv_stream_t *ls, int status)
{
    mk_http_server *s = ls->data;
    mk_busy_poll_touch();
    if (status < 0) {
        mk_log(MK_LOG_WARN, "http_accept_failed", "error", uv_strerror(status), NULL);
        return;
    }
    if (s->draining || s->freeing || s->nconns >= s->max_connections) {
        reject(s);
        return;
    }
    mk_http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        reject(s);
        return;
    }
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_handle); /* tcp is the first member */
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    c->state = MK_HTTP_C_OPEN;
    uv_tcp_nodelay(&c->tcp, 1);
    format_peer(c);
    mk_http_parser_init(&c->parser, &s->lim);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->nalive++;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    /* A new connection must send its request within the header timeout; one that
     * sends nothing is closed silently. */
    set_deadline(c, MK_HTTP_T_IDLE, s->header_timeout_ms);
}

/* ---- the server -------------------------------------------------------------- */

static void on_idle(uv_idle_t *h)
{
    mk_http_server *s = h->data;
    mk_http_conn *q = s->resume_head;
    s->resume_head = s->resume_tail = NULL;
    uv_idle_stop(h);
    while (q) {
        mk_http_conn *c = q;
        q = c->resume_next;
        c->in_resume = false;
        if (c->tcp_closed && c->req && c->abort_fn && !c->abort_notified) {
            /* on_abort was set after the close callback ran */
            c->abort_notified = true;
            c->abort_fn(c->req, c->abort_arg);
        } else {
            conn_resume(c);
        }
        maybe_free_conn(c);
    }
    check_drained(s); /* last: may free the server */
}

int mk_http_server_new(uv_loop_t *loop, const struct mk_http_server_opts *opts,
                       mk_http_handler_fn handler, void *ctx, mk_http_server **out)
{
    if (!out) return MK_EINVAL;
    *out = NULL;
    if (!loop || !handler) return MK_EINVAL;
    static const struct mk_http_server_opts none;
    if (!opts) opts = &none;
    if (opts->server_name &&
        (strpbrk(opts->server_name, "\r\n") || strlen(opts->server_name) > MK_MAX_NAME_BYTES))
        return MK_EINVAL;
    if (mk_rand_init() != 0) return MK_EINTERNAL;
    mk_http_server *s = calloc(1, sizeof *s);
    if (!s) return MK_ENOMEM;
    if (opts->server_name && !(s->server_name = strdup(opts->server_name))) {
        free(s);
        return MK_ENOMEM;
    }
    s->loop = loop;
    s->handler = handler;
    s->ctx = ctx;
    s->lim.max_header_bytes = pick(opts->max_header_bytes, MK_MAX_HEADER_BYTES);
    s->lim.max_headers = pick(opts->max_headers, MK_MAX_HEADERS);
    s->lim.max_body_bytes = pick(opts->max_body_bytes, MK_MAX_BODY_BYTES);
    s->lim.max_url_bytes = MK_MAX_URL_BYTES;
    s->header_timeout_ms = (uint32_t)pick(opts->header_timeout_ms, MK_HEADER_TIMEOUT_MS);
    s->body_timeout_ms = (uint32_t)pick(opts->body_timeout_ms, MK_BODY_TIMEOUT_MS);
    s->keepalive_timeout_ms = (uint32_t)pick(opts->keepalive_timeout_ms, MK_KEEPALIVE_TIMEOUT_MS);
    s->max_connections = pick(opts->max_connections, MK_MAX_CONNECTIONS);
    s->reuse_port = opts->reuse_port;
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    *out = s;
    return 0;
}

static void on_listener_close(uv_handle_t *h)
{
    mk_http_server *s = h->data;
    s->listener_closed = true;
    maybe_free_server(s);
}

static void on_idle_close(uv_handle_t *h)
{
    mk_http_server *s = h->data;
    s->idle_closed = true;
    maybe_free_server(s);
}

static void maybe_free_server(mk_http_server *s)
{
    if (!s->freeing || s->nalive || !s->idle_closed) return;
    if (s->listener_init && !s->listener_closed) return;
    free(s->server_name);
    free(s);
}

static void close_listener(mk_http_server *s)
{
    if (s->listener_init && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_close);
}

int mk_http_server_listen(mk_http_server *s, const char *host, int port)
{
    if (!s || !host || port < 0 || port > 65535 || s->listener_init || s->freeing) return MK_EINVAL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) sl = sizeof(struct sockaddr_in);
    else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) sl = sizeof(struct sockaddr_in6);
    else return MK_EINVAL;

    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mk_log(MK_LOG_ERROR, "http_listen_failed", "host", host, "error", strerror(errno), NULL);
        return MK_EIO;
    }
    int one = 1;
    /* SO_REUSEPORT lets one loop per core share the port and the kernel spread
     * connections among them; only on request (see mk_http_server_opts). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (s->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        close(fd);
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        mk_log(MK_LOG_ERROR, "http_listen_failed", "host", host, "port", ps, "error", strerror(e), NULL);
        return MK_EIO;
    }
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listener_init = true;
    int rc = uv_tcp_open(&s->listener, fd);
    if (rc != 0) close(fd); /* not adopted by the handle */
    else rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        close_listener(s);
        mk_log(MK_LOG_ERROR, "http_listen_failed", "host", host, "error", uv_strerror(rc), NULL);
        return MK_EIO;
    }
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &bl) == 0)
        s->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                   : ((struct sockaddr_in6 *)&bound)->sin6_port);
    return 0;
}

int mk_http_server_port(const mk_http_server *s) { return s ? s->port : 0; }
size_t mk_http_server_connections(const mk_http_server *s) { return s ? s->nconns : 0; }
size_t mk_http_server_inflight(const mk_http_server *s) { return s ? s->inflight : 0; }

void mk_http_server_drain(mk_http_server *s, void (*done)(void *arg), void *arg)
{
    if (!s || s->freeing || s->draining) return;
    s->draining = true;
    s->drain_done = done;
    s->drain_arg = arg;
    close_listener(s);
    for (mk_http_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->upgraded) { /* its owner says goodbye in its own protocol, or it goes now */
            if (c->state != MK_HTTP_C_OPEN) continue;
            if (c->up_ops && c->up_ops->on_drain) c->up_ops->on_drain(c->up_arg);
            else conn_close(c);
            continue;
        }
        /* Idle keep-alive connections go now; a connection with a request in flight
         * or partly received finishes it (keep-alive is off from now on). */
        if (c->state == MK_HTTP_C_OPEN && !c->req && c->parser.phase == MK_HTTP_PHASE_IDLE &&
            c->pending.len == 0)
            conn_close(c);
        else if (c->req)
            c->req->keep_alive = false;
    }
    uv_idle_start(&s->idle, on_idle); /* done runs from the loop even when nothing is open */
}

void mk_http_server_free(mk_http_server *s)
{
    if (!s || s->freeing) return;
    s->freeing = true;
    s->drain_done = NULL;
    close_listener(s);
    /* Connections on the resume queue are closing now; let them be freed. */
    for (mk_http_conn *c = s->resume_head; c; c = c->resume_next) c->in_resume = false;
    s->resume_head = s->resume_tail = NULL;
    for (mk_http_conn *c = s->conns; c; c = c->next) conn_close(c);
    uv_close((uv_handle_t *)&s->idle, on_idle_close);
}
