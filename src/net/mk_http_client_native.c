/*
 * mk_http_client_native: the upstream client's fast path for plain http:// calls
 * (contract in mk_http_client.h; what is routed here in mk_http_client_int.h).
 *
 * Why: self-hosted model servers (vLLM, llama.cpp, Ollama) and our fake are plain
 * HTTP on a private network, and for a small reply libcurl's per-transfer work
 * (option reset, connection-cache scans, proxy lookups, header callbacks) cost more
 * than the rest of the gateway. Here a call is: one request buffer written with one
 * uv_try_write on a pooled keep-alive connection, http-parser over the reply, and
 * one uv_timer per call for every deadline.
 *
 * Connections: per host:port, opened on demand (at most
 * MK_UPSTREAM_MAX_HOST_CONNECTIONS at once; further calls wait in a FIFO per host),
 * TCP_NODELAY, non-blocking connect under the call's connect timeout. A connection
 * goes back to the idle pool only after a complete response with keep-alive, our
 * request fully written and no stray byte after the response; errors, cancels,
 * timeouts, "Connection: close" and HTTP/1.0 replies close it. Idle connections stay
 * readable, so a server that closes one is noticed at once; at most
 * MK_UPSTREAM_MAX_IDLE_CONNECTIONS are kept (the oldest goes first) and none longer
 * than IDLE_CONN_TIMEOUT_MS. A reused connection that fails before any response byte
 * (closed by the server while idle, a race no client can avoid) is retried once on a
 * fresh connection: nothing of the reply was seen, so nothing is duplicated for the
 * caller.
 *
 * DNS: only IP literals and "localhost" (127.0.0.1, then ::1) come here; other names
 * go to libcurl, which resolves, caches and tries every address. That keeps a
 * blocking or stale resolver out of this file; a provider reached by name pays the
 * libcurl price until an async resolver cache is added here.
 *
 * Callback safety: user callbacks run only from the read callback (on_response,
 * on_data, through http-parser) and from finish() (on_done). A call cancelled inside
 * one of its own callbacks is only marked (in_cb); the dispatcher that ran the
 * callback cleans it up after it returns. Freeing the client while a dispatch is
 * running (busy) is finished when the dispatch unwinds. Handle memory is freed only
 * in uv_close callbacks.
 */
#include "net/mk_http_client_int.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "net/mk_busy_poll.h"

/* Idle connections older than this are closed: servers drop theirs after 5 s
 * (uvicorn, node) to 75 s (nginx); keeping ours longer only hoards descriptors. */
#define IDLE_CONN_TIMEOUT_MS 60000
/* One read buffer shared by every connection: reads are consumed synchronously. */
#define READ_BUF_BYTES (64 * 1024)
/* Host entries kept; hosts come from the config, so more means reloads changed them:
 * entries with no connection and no waiting call are dropped beyond this. */
#define MAX_HOSTS 64
/* Longest host as written in a URL that we route here (an IPv6 literal in brackets). */
#define MAX_HOST_TEXT 63

struct conn;

struct ncall {
    struct mk_http__call_head head;   /* native = true */
    mk_http__native *n;
    struct host *h;
    struct conn *conn;                /* while connecting or exchanging */
    uv_timer_t timer;                 /* every deadline, and deferred failures */
    struct ncall *prev, *next;        /* n->active, or n->pool (next only) */
    struct ncall *wnext;              /* h's wait queue */

    mk_buf req;                       /* the whole request: head and body */
    void (*on_response)(mk_http_call *, int, void *);
    void (*on_data)(mk_http_call *, const char *, size_t, void *);
    void (*on_done)(mk_http_call *, int, int, mk_slice, void *);
    void *arg;
    uint32_t connect_ms, first_byte_ms, idle_ms, total_ms;
    uint64_t start_ms, connect_start_ms, last_data_ms;   /* loop time */
    uint64_t start_us, connect_us, first_byte_us, headers_us;

    mk_buf body;                      /* buffered body when on_data is NULL */
    mk_buf hdrs;                      /* "Name: value\n" lines of the final response */
    int status;
    int fail_rc;                      /* set by a parser callback: why we stopped */
    int deferred_rc;                  /* a failure found inside start(), reported later */
    int in_cb;                        /* inside one of this call's user callbacks */
    bool head_req, connecting, headers_done, got_body, cancelled, done, waiting, retried;
    bool interim, hdr_in_value, starting, in_active;
};

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    http_parser parser;
    mk_http__native *n;
    struct host *h;
    struct ncall *call;
    struct conn *hprev, *hnext;       /* h->idle */
    struct conn *gprev, *gnext;       /* n->idle_head .. n->idle_tail */
    struct conn *aprev, *anext;       /* n->conns (all) */
    mk_buf wbuf;                      /* the unwritten rest of a request */
    uint64_t idle_since_ms;
    int addr_idx;
    bool connected, writing, idle, closing, reused, got_bytes, complete, keep_alive;
};

struct host {
    struct host *next;
    char name[MAX_HOST_TEXT + 1];     /* as in the URL, e.g. "[::1]" */
    size_t name_len;
    uint16_t port;
    char hostline[MAX_HOST_TEXT + 16]; /* "Host: <host>[:port]\r\n" */
    size_t hostline_len;
    struct sockaddr_storage addrs[2];
    int naddrs, good;                 /* good: the address that last connected */
    size_t nconns;
    struct conn *idle;                /* most recently used first */
    struct ncall *wait_head, *wait_tail;
};

struct mk_http__native {
    uv_loop_t *loop;
    uv_timer_t sweep;                 /* closes idle connections past their time */
    char *rbuf;
    struct host *hosts;
    size_t nhosts;
    struct ncall *active;
    size_t nactive;
    struct ncall *pool;
    size_t npool;
    struct conn *conns;
    size_t nconns;
    struct conn *idle_head, *idle_tail;
    size_t nidle;
    int busy;
    size_t closing;
    bool free_requested, freeing;
};

static const http_parser_settings parser_settings;

static mk_http_call *pub(struct ncall *call) { return (mk_http_call *)(void *)call; }
static struct ncall *priv(mk_http_call *call) { return (struct ncall *)(void *)call; }
static const struct ncall *cpriv(const mk_http_call *call) { return (const struct ncall *)(const void *)call; }

/* --- freeing ---------------------------------------------------------------- */

static void do_free(mk_http__native *n);

static void maybe_finish_free(mk_http__native *n)
{
    if (!n->freeing || n->closing) return;
    struct host *h;
    while ((h = n->hosts)) {
        n->hosts = h->next;
        free(h);
    }
    free(n->rbuf);
    free(n);
}

static void leave(mk_http__native *n)
{
    if (--n->busy == 0 && n->free_requested && !n->freeing) do_free(n);
}

static void call_closed(uv_handle_t *h)
{
    struct ncall *call = h->data;
    mk_http__native *n = call->n;
    free(call);
    n->closing--;
    maybe_finish_free(n);
}

static void call_destroy(struct ncall *call)
{
    mk_buf_release(&call->req);
    mk_buf_release(&call->body);
    mk_buf_release(&call->hdrs);
    call->n->closing++;
    uv_close((uv_handle_t *)&call->timer, call_closed);
}

static void trim_buf(mk_buf *b)
{
    if (b->cap > MK_HTTP__KEEP_BUF_BYTES) mk_buf_release(b);
    else mk_buf_reset(b);
}

static void wait_remove(struct ncall *call)
{
    struct host *h = call->h;
    struct ncall **pp = &h->wait_head, *prev = NULL;
    while (*pp && *pp != call) {
        prev = *pp;
        pp = &(*pp)->wnext;
    }
    if (*pp) {
        *pp = call->wnext;
        if (h->wait_tail == call) h->wait_tail = prev;
    }
    call->wnext = NULL;
    call->waiting = false;
}

/* The call is finished or cancelled and has no connection: out of the active list,
 * back to the pool (or freed). */
static void call_recycle(struct ncall *call)
{
    mk_http__native *n = call->n;
    uv_timer_stop(&call->timer);
    if (call->waiting) wait_remove(call);
    if (call->in_active) {
        if (call->prev) call->prev->next = call->next;
        else n->active = call->next;
        if (call->next) call->next->prev = call->prev;
        call->in_active = false;
        n->nactive--;
    }
    call->prev = call->next = NULL;
    if (n->freeing || n->npool >= MK_HTTP__CALL_POOL_MAX) {
        call_destroy(call);
        return;
    }
    trim_buf(&call->req);
    trim_buf(&call->body);
    trim_buf(&call->hdrs);
    call->on_response = NULL;
    call->on_data = NULL;
    call->on_done = NULL;
    call->arg = NULL;
    call->h = NULL;
    call->next = n->pool;
    n->pool = call;
    n->npool++;
}

/* --- connections ------------------------------------------------------------ */

static void conn_closed(uv_handle_t *hd)
{
    struct conn *conn = hd->data;
    mk_http__native *n = conn->n;
    mk_buf_release(&conn->wbuf);
    free(conn);
    n->closing--;
    maybe_finish_free(n);
}

static void idle_unlink(struct conn *conn)
{
    mk_http__native *n = conn->n;
    struct host *h = conn->h;
    if (!conn->idle) return;
    if (conn->hprev) conn->hprev->hnext = conn->hnext;
    else h->idle = conn->hnext;
    if (conn->hnext) conn->hnext->hprev = conn->hprev;
    if (conn->gprev) conn->gprev->gnext = conn->gnext;
    else n->idle_head = conn->gnext;
    if (conn->gnext) conn->gnext->gprev = conn->gprev;
    else n->idle_tail = conn->gprev;
    conn->hprev = conn->hnext = conn->gprev = conn->gnext = NULL;
    conn->idle = false;
    n->nidle--;
    uv_ref((uv_handle_t *)&conn->tcp);
}

static void host_kick(struct host *h, mk_http__native *n);

/* Closes a connection (its call, if any, is detached: the caller finishes it). */
static void conn_close(struct conn *conn)
{
    if (conn->closing) return;
    mk_http__native *n = conn->n;
    struct host *h = conn->h;
    conn->closing = true;
    idle_unlink(conn);
    if (conn->call) {
        conn->call->conn = NULL;
        conn->call->connecting = false;
        conn->call = NULL;
    }
    if (conn->aprev) conn->aprev->anext = conn->anext;
    else n->conns = conn->anext;
    if (conn->anext) conn->anext->aprev = conn->aprev;
    conn->aprev = conn->anext = NULL;
    n->nconns--;
    h->nconns--;
    n->closing++;
    uv_close((uv_handle_t *)&conn->tcp, conn_closed);
    host_kick(h, n);
}

static void send_request(struct ncall *call);
static void call_fail(struct ncall *call, int rc);
static void arm_timer(struct ncall *call);

static void alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *conn = hd->data;
    *b = uv_buf_init(conn->n->rbuf, READ_BUF_BYTES);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void connect_cb(uv_connect_t *req, int status);

/* Opens a connection for `call` to address `idx` of its host. Failures are the
 * call's (reported later when inside start()). */
static void conn_open(struct ncall *call, int idx)
{
    mk_http__native *n = call->n;
    struct host *h = call->h;
    struct conn *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        mk_log(MK_LOG_ERROR, "upstream_conn_nomem", NULL);
        call_fail(call, MK_EUPSTREAM);
        return;
    }
    int rc = uv_tcp_init(n->loop, &conn->tcp);
    if (rc < 0) {
        free(conn);
        mk_log(MK_LOG_ERROR, "upstream_tcp_init_failed", "error", uv_strerror(rc), NULL);
        call_fail(call, MK_EUPSTREAM);
        return;
    }
    conn->tcp.data = conn;
    conn->creq.data = conn;
    conn->wreq.data = conn;
    conn->parser.data = conn;
    conn->n = n;
    conn->h = h;
    conn->addr_idx = idx;
    mk_buf_init(&conn->wbuf, 0);
    conn->anext = n->conns;
    if (n->conns) n->conns->aprev = conn;
    n->conns = conn;
    n->nconns++;
    h->nconns++;
    conn->call = call;
    call->conn = conn;
    call->connecting = true;
    call->connect_start_ms = uv_now(n->loop);
    uv_tcp_nodelay(&conn->tcp, 1);
    rc = uv_tcp_connect(&conn->creq, &conn->tcp, (const struct sockaddr *)&h->addrs[idx], connect_cb);
    if (rc < 0) {
        mk_log(MK_LOG_DEBUG, "upstream_connect_failed", "error", uv_strerror(rc), NULL);
        conn_close(conn);
        call_fail(call, MK_EUPSTREAM);
        return;
    }
    if (call->connect_ms) arm_timer(call);
}

/* Gives a free connection (fresh or idle) to a call and sends its request. */
static void conn_attach(struct conn *conn, struct ncall *call)
{
    conn->call = call;
    call->conn = conn;
    conn->got_bytes = false;
    conn->complete = false;
    conn->keep_alive = false;
    http_parser_init(&conn->parser, HTTP_RESPONSE);
    conn->parser.data = conn;
}

static void sweep_cb(uv_timer_t *t)
{
    mk_http__native *n = t->data;
    uint64_t now = uv_now(n->loop);
    struct conn *c;
    while ((c = n->idle_tail) && c->idle_since_ms + IDLE_CONN_TIMEOUT_MS <= now) conn_close(c);
    if ((c = n->idle_tail)) uv_timer_start(&n->sweep, sweep_cb, c->idle_since_ms + IDLE_CONN_TIMEOUT_MS - now, 0);
}

/* A connection whose exchange ended cleanly: to the next waiting call of its host,
 * else to the idle pool. */
static void conn_release(struct conn *conn)
{
    mk_http__native *n = conn->n;
    struct host *h = conn->h;
    if (conn->call) conn->call->conn = NULL;
    conn->call = NULL;
    conn->reused = true;
    trim_buf(&conn->wbuf);
    if (n->free_requested) {
        conn_close(conn);
        return;
    }
    struct ncall *w = h->wait_head;
    if (w) {
        wait_remove(w);
        conn_attach(conn, w);
        send_request(w);
        return;
    }
    if (n->nidle >= MK_UPSTREAM_MAX_IDLE_CONNECTIONS && n->idle_tail) conn_close(n->idle_tail);
    conn->idle = true;
    conn->idle_since_ms = uv_now(n->loop);
    /* An idle connection keeps reading (to notice the server closing it) but must not
     * keep the loop alive. */
    uv_unref((uv_handle_t *)&conn->tcp);
    conn->hprev = NULL;
    conn->hnext = h->idle;
    if (h->idle) h->idle->hprev = conn;
    h->idle = conn;
    conn->gprev = NULL;
    conn->gnext = n->idle_head;
    if (n->idle_head) n->idle_head->gprev = conn;
    n->idle_head = conn;
    if (!n->idle_tail) n->idle_tail = conn;
    n->nidle++;
    if (!uv_is_active((uv_handle_t *)&n->sweep))
        uv_timer_start(&n->sweep, sweep_cb, IDLE_CONN_TIMEOUT_MS, 0);
}

/* A slot freed up on h: the first waiting call gets a new connection. */
static void host_kick(struct host *h, mk_http__native *n)
{
    if (n->free_requested) return;
    while (h->wait_head && h->nconns < MK_UPSTREAM_MAX_HOST_CONNECTIONS) {
        struct ncall *w = h->wait_head;
        wait_remove(w);
        conn_open(w, h->good);
    }
}

/* A connection-level failure (connect, write, read error, EOF before the response
 * ended). A reused connection that saw no byte of the reply is retried once on a new
 * connection; anything else fails the call with MK_EUPSTREAM. */
static void conn_failed(struct conn *conn)
{
    struct ncall *call = conn->call;
    bool retry = call && conn->reused && !conn->got_bytes && !call->retried;
    struct host *h = conn->h;
    conn_close(conn);
    if (!call) return;
    if (retry && !call->n->free_requested) {
        call->retried = true;
        mk_log(MK_LOG_DEBUG, "upstream_stale_connection_retry", NULL);
        conn_open(call, h->good);
        return;
    }
    call_fail(call, MK_EUPSTREAM);
}

static void write_cb(uv_write_t *req, int status)
{
    struct conn *conn = req->data;
    conn->writing = false;
    if (status == UV_ECANCELED || conn->closing) return;
    mk_http__native *n = conn->n;
    if (status < 0) {
        n->busy++;
        conn_failed(conn);
        leave(n);
        return;
    }
    if (conn->wbuf.cap > MK_HTTP__KEEP_BUF_BYTES) mk_buf_release(&conn->wbuf);
    else mk_buf_reset(&conn->wbuf);
}

/* Writes the call's request on its connection: uv_try_write for the usual small
 * request, the rest (if the socket buffer is full) copied and queued. */
static void send_request(struct ncall *call)
{
    struct conn *conn = call->conn;
    uv_buf_t b = uv_buf_init(call->req.data, (unsigned)call->req.len);
    int w = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
    if (w == (int)call->req.len) return;
    if (w < 0 && w != UV_EAGAIN) {
        conn_failed(conn);
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    mk_buf_reset(&conn->wbuf);
    if (mk_buf_append(&conn->wbuf, call->req.data + done, call->req.len - done) != 0) {
        mk_log(MK_LOG_ERROR, "upstream_write_nomem", NULL);
        conn_close(conn);
        call_fail(call, MK_EUPSTREAM);
        return;
    }
    uv_buf_t rest = uv_buf_init(conn->wbuf.data, (unsigned)conn->wbuf.len);
    if (uv_write(&conn->wreq, (uv_stream_t *)&conn->tcp, &rest, 1, write_cb) < 0) {
        conn_failed(conn);
        return;
    }
    conn->writing = true;
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct conn *conn = req->data;
    if (status == UV_ECANCELED || conn->closing) return;
    mk_http__native *n = conn->n;
    struct ncall *call = conn->call;
    n->busy++;
    if (status == 0) status = uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);
    if (status < 0) {
        struct host *h = conn->h;
        int next = conn->addr_idx + 1;
        mk_log(MK_LOG_DEBUG, "upstream_connect_failed", "error", uv_strerror(status), NULL);
        conn_close(conn);
        if (call && next < h->naddrs) conn_open(call, next);
        else if (call) call_fail(call, MK_EUPSTREAM);
        leave(n);
        return;
    }
    conn->connected = true;
    conn->h->good = conn->addr_idx;
    if (!call) {
        conn_release(conn);
    } else {
        call->connecting = false;
        uint64_t d = mk_now_us() - call->start_us;
        call->connect_us = d ? d : 1;
        conn_attach(conn, call);
        send_request(call);
    }
    leave(n);
}

/* --- finishing calls -------------------------------------------------------- */

/* Ends a call that has no connection any more: on_done (unless cancelled or the
 * client is going away), then back to the pool. */
static void finish(struct ncall *call, int rc)
{
    mk_http__native *n = call->n;
    call->done = true;
    uv_timer_stop(&call->timer);
    if (call->waiting) wait_remove(call);
    n->busy++;
    if (call->on_done && !call->cancelled && !n->free_requested) {
        if (!call->got_body && call->headers_done && call->first_byte_us == 0)
            call->first_byte_us = call->headers_us;   /* an empty body: the headers were the first bytes */
        mk_slice body = {"", 0};
        if (rc == 0 && !call->on_data) body = mk_buf_slice(&call->body);
        call->in_cb++;
        call->on_done(pub(call), rc, call->status, body, call->arg);
        call->in_cb--;
    }
    call_recycle(call);
    leave(n);
}

static void timer_cb(uv_timer_t *t);

/* Failures found while start() runs are reported on the next loop turn: on_done must
 * not run before mk_http_call_start returns. */
static void call_fail(struct ncall *call, int rc)
{
    if (call->conn) conn_close(call->conn);
    if (call->starting) {
        call->deferred_rc = rc;
        uv_timer_start(&call->timer, timer_cb, 0, 0);
        return;
    }
    finish(call, rc);
}

static uint64_t deadline(const struct ncall *call)
{
    uint64_t d = UINT64_MAX;
    if (call->total_ms) d = call->start_ms + call->total_ms;
    if (!call->got_body && call->first_byte_ms && call->start_ms + call->first_byte_ms < d)
        d = call->start_ms + call->first_byte_ms;
    if (call->got_body && call->idle_ms && call->last_data_ms + call->idle_ms < d)
        d = call->last_data_ms + call->idle_ms;
    if (call->connecting && call->connect_ms && call->connect_start_ms + call->connect_ms < d)
        d = call->connect_start_ms + call->connect_ms;
    return d;
}

static void arm_timer(struct ncall *call)
{
    if (call->deferred_rc) {
        uv_timer_start(&call->timer, timer_cb, 0, 0);
        return;
    }
    uint64_t d = deadline(call);
    if (d == UINT64_MAX) {
        uv_timer_stop(&call->timer);
        return;
    }
    uint64_t now = uv_now(call->n->loop);
    uv_timer_start(&call->timer, timer_cb, d > now ? d - now : 0, 0);
}

/* Every deadline of a call, and failures deferred out of start(). Body bytes only
 * record their time; the timer re-arms itself here for what is left. */
static void timer_cb(uv_timer_t *t)
{
    struct ncall *call = t->data;
    mk_http__native *n = call->n;
    if (call->deferred_rc) {
        int rc = call->deferred_rc;
        call->deferred_rc = 0;
        finish(call, rc);
        return;
    }
    uint64_t d = deadline(call), now = uv_now(n->loop);
    if (d == UINT64_MAX) return;
    if (now < d) {
        uv_timer_start(&call->timer, timer_cb, d - now, 0);
        return;
    }
    n->busy++;
    if (call->conn) conn_close(call->conn);
    finish(call, MK_EUPSTREAM_TIMEOUT);
    leave(n);
}

/* --- the response (http-parser callbacks, inside read_cb) -------------------- */

static bool stopped(const struct ncall *call) { return call->cancelled || call->n->free_requested; }

static int on_message_begin(http_parser *p)
{
    struct ncall *call = ((struct conn *)p->data)->call;
    mk_buf_reset(&call->hdrs);   /* a final response after a 1xx: forget the 1xx's headers */
    call->hdr_in_value = false;
    return 0;
}

static int hdr_append(struct ncall *call, const char *s, size_t len)
{
    if (mk_buf_append(&call->hdrs, s, len) == 0) return 0;
    mk_log(MK_LOG_WARN, "upstream_headers_too_big", NULL);
    call->fail_rc = MK_EUPSTREAM;
    return -1;
}

/* Header lines are kept as "Name: value\n"; http-parser may hand a name or value in
 * several pieces (split reads), and a value callback always follows its name. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct ncall *call = ((struct conn *)p->data)->call;
    if (call->headers_done) return 0;   /* trailers: not part of the response headers */
    if (call->hdr_in_value) {
        if (hdr_append(call, "\n", 1)) return -1;
        call->hdr_in_value = false;
    }
    return hdr_append(call, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct ncall *call = ((struct conn *)p->data)->call;
    if (call->headers_done) return 0;
    if (!call->hdr_in_value) {
        if (hdr_append(call, ": ", 2)) return -1;
        call->hdr_in_value = true;
    }
    return hdr_append(call, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct ncall *call = ((struct conn *)p->data)->call;
    if (call->hdr_in_value && hdr_append(call, "\n", 1)) return -1;
    call->hdr_in_value = false;
    int status = (int)p->status_code;
    if (status >= 100 && status < 200 && status != 101) {
        call->interim = true;   /* http-parser ends it without a body and parses on */
        return 0;
    }
    call->status = status;
    call->headers_done = true;
    uint64_t d = mk_now_us() - call->start_us;
    call->headers_us = d ? d : 1;
    /* Refuse an announced oversized body before reading any of it. */
    if (!call->on_data && !call->head_req && p->content_length != ULLONG_MAX &&
        p->content_length > call->body.max) {
        call->fail_rc = MK_ETOOBIG;
        return -1;
    }
    if (call->on_response) {
        call->in_cb++;
        call->on_response(pub(call), status, call->arg);
        call->in_cb--;
        if (stopped(call)) return -1;
    }
    return call->head_req ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct ncall *call = ((struct conn *)p->data)->call;
    call->last_data_ms = uv_now(call->n->loop);
    if (!call->got_body) {
        call->got_body = true;
        uint64_t d = mk_now_us() - call->start_us;
        call->first_byte_us = d ? d : 1;
        arm_timer(call);   /* from the first-byte deadline to the idle one */
    }
    if (call->on_data) {
        call->in_cb++;
        call->on_data(pub(call), at, len, call->arg);
        call->in_cb--;
        return stopped(call) ? -1 : 0;
    }
    int rc = mk_buf_append(&call->body, at, len);
    if (rc) {
        if (rc != MK_ETOOBIG) mk_log(MK_LOG_ERROR, "upstream_body_nomem", NULL);
        call->fail_rc = rc == MK_ETOOBIG ? MK_ETOOBIG : MK_EUPSTREAM;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *conn = p->data;
    struct ncall *call = conn->call;
    if (call->interim) {
        call->interim = false;
        return 0;
    }
    conn->complete = true;
    conn->keep_alive = http_should_keep_alive(p) && call->status != 101;
    http_parser_pause(p, 1);   /* whatever follows is not ours: stop here */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* After http-parser ran over `len` bytes (len 0: end of stream) of conn's call. */
static void after_parse(struct conn *conn, struct ncall *call, size_t parsed, size_t len, bool eof)
{
    mk_http__native *n = conn->n;
    if (n->free_requested) return;   /* do_free takes everything */
    if (call->cancelled) {           /* inside its own callback */
        conn_close(conn);
        call_recycle(call);
        return;
    }
    if (conn->complete) {
        bool reuse = conn->keep_alive && !eof && !conn->writing && parsed == len;
        if (reuse) conn_release(conn);   /* before on_done: a follow-up call may take it */
        else conn_close(conn);
        finish(call, 0);
        return;
    }
    if (call->fail_rc) {
        conn_close(conn);
        finish(call, call->fail_rc);
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&conn->parser);
    if (e != HPE_OK || eof) {
        if (e != HPE_OK)
            mk_log(MK_LOG_DEBUG, "upstream_bad_response", "error", http_errno_name(e), NULL);
        conn_failed(conn);   /* EOF with no byte of the reply on a reused connection: retried */
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *conn = s->data;
    mk_http__native *n = conn->n;
    if (conn->closing || nread == 0) return;
    mk_busy_poll_touch();
    struct ncall *call = conn->call;
    if (!call) {
        /* Idle: the server closed it, or sent bytes nobody asked for. */
        conn_close(conn);
        return;
    }
    n->busy++;
    if (nread > 0) {
        conn->got_bytes = true;
        size_t parsed = http_parser_execute(&conn->parser, &parser_settings, b->base, (size_t)nread);
        after_parse(conn, call, parsed, (size_t)nread, false);
    } else if (nread == UV_EOF) {
        /* Ends a body delimited by the close; anything else unfinished is an error. */
        if (!conn->complete && HTTP_PARSER_ERRNO(&conn->parser) == HPE_OK)
            http_parser_execute(&conn->parser, &parser_settings, NULL, 0);
        after_parse(conn, call, 0, 0, true);
    } else {
        mk_log(MK_LOG_DEBUG, "upstream_read_failed", "error", uv_strerror((int)nread), NULL);
        conn_failed(conn);
    }
    leave(n);
}

/* --- hosts ------------------------------------------------------------------ */

static bool host_resolve(struct host *h)
{
    char tmp[MAX_HOST_TEXT + 1];
    memset(h->addrs, 0, sizeof(h->addrs));
    if (h->name_len == 9 && strncasecmp(h->name, "localhost", 9) == 0) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&h->addrs[0];
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&h->addrs[1];
        uv_ip4_addr("127.0.0.1", h->port, a4);
        uv_ip6_addr("::1", h->port, a6);
        h->naddrs = 2;
        return true;
    }
    if (h->name[0] == '[') {
        if (h->name_len < 3) return false;
        memcpy(tmp, h->name + 1, h->name_len - 2);
        tmp[h->name_len - 2] = '\0';
        h->naddrs = 1;
        return uv_ip6_addr(tmp, h->port, (struct sockaddr_in6 *)&h->addrs[0]) == 0;
    }
    h->naddrs = 1;
    return uv_ip4_addr(h->name, h->port, (struct sockaddr_in *)&h->addrs[0]) == 0;
}

static struct host *host_get(mk_http__native *n, const struct mk_http__target *t)
{
    for (struct host *h = n->hosts; h; h = h->next)
        if (h->port == t->port && h->name_len == t->host.len && memcmp(h->name, t->host.ptr, t->host.len) == 0)
            return h;
    if (n->nhosts >= MAX_HOSTS) {
        for (struct host **pp = &n->hosts; *pp; pp = &(*pp)->next) {
            struct host *h = *pp;
            if (h->nconns == 0 && !h->wait_head) {
                *pp = h->next;
                free(h);
                n->nhosts--;
                break;
            }
        }
    }
    struct host *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    memcpy(h->name, t->host.ptr, t->host.len);
    h->name_len = t->host.len;
    h->port = t->port;
    int hl;
    if (t->port_given && t->port != 80)   /* like curl: the default port goes unnamed */
        hl = snprintf(h->hostline, sizeof(h->hostline), "Host: %s:%u\r\n", h->name, (unsigned)t->port);
    else
        hl = snprintf(h->hostline, sizeof(h->hostline), "Host: %s\r\n", h->name);
    h->hostline_len = hl > 0 ? (size_t)hl : 0;
    if (!host_resolve(h)) {   /* mk_http__native_target checked the literal: cannot happen */
        free(h);
        return NULL;
    }
    h->next = n->hosts;
    n->hosts = h;
    n->nhosts++;
    return h;
}

/* --- the request ------------------------------------------------------------ */

static bool name_is(const char *h, size_t n, const char *name)
{
    return mk_slice_eq_nocase((mk_slice){h, n}, mk_slice_cstr(name));
}

/* Headers libcurl would add unless the caller names them ("Name:" removes one). */
static const char *const default_names[] = {"Host", "User-Agent", "Accept"};

static int build_request(struct ncall *call, const struct mk_http_call_opts *o, const size_t *name_lens,
                         const struct mk_http__target *t)
{
    mk_buf *r = &call->req;
    bool has_body = o->body != NULL || o->body_len > 0;
    const char *method = o->method ? o->method : (has_body ? "POST" : "GET");
    bool send_body = has_body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
    call->head_req = strcmp(method, "HEAD") == 0;
    bool given[3] = {false, false, false};
    size_t need = strlen(method) + t->path.len + 160 + (has_body ? o->body_len : 0);
    for (size_t i = 0; i < o->nheaders; i++) {
        const char *h = o->headers[i];
        size_t nl = name_lens[i];
        for (int k = 0; k < 3; k++)
            if (name_is(h, nl, default_names[k])) given[k] = true;
        need += strlen(h) + 2;
    }
    int rc = mk_buf_reserve(r, need);
    if (rc) return rc;
    rc = mk_buf_append_str(r, method);
    if (!rc) rc = mk_buf_append_char(r, ' ');
    if (!rc && (t->path.len == 0 || t->path.ptr[0] == '?')) rc = mk_buf_append_char(r, '/');
    if (!rc) rc = mk_buf_append_slice(r, t->path);
    if (!rc) rc = mk_buf_append(r, " HTTP/1.1\r\n", 11);
    if (!rc && !given[0]) rc = mk_buf_append(r, call->h->hostline, call->h->hostline_len);
    if (!rc && !given[1]) rc = mk_buf_append_str(r, "User-Agent: mayak/" MAYAK_VERSION "\r\n");
    if (!rc && !given[2]) rc = mk_buf_append_str(r, "Accept: */*\r\n");
    for (size_t i = 0; !rc && i < o->nheaders; i++) {
        const char *h = o->headers[i];
        size_t nl = name_lens[i];
        if (h[nl] == ';') {   /* curl's way to send a header with an empty value */
            rc = mk_buf_append(r, h, nl);
            if (!rc) rc = mk_buf_append(r, ":\r\n", 3);
            continue;
        }
        const char *v = h + nl + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (!*v) continue;    /* "Name:" only removes a header we would add */
        rc = mk_buf_append_str(r, h);
        if (!rc) rc = mk_buf_append(r, "\r\n", 2);
    }
    if (!rc && send_body) {
        char num[24];
        size_t k = sizeof(num), v = has_body ? o->body_len : 0;
        do {
            num[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        rc = mk_buf_append(r, "Content-Length: ", 16);
        if (!rc) rc = mk_buf_append(r, num + k, sizeof(num) - k);
        if (!rc) rc = mk_buf_append(r, "\r\n", 2);
    }
    if (!rc) rc = mk_buf_append(r, "\r\n", 2);
    if (!rc && has_body && o->body_len) rc = mk_buf_append(r, o->body, o->body_len);
    return rc;
}

/* --- public (internal) API ------------------------------------------------------ */

static bool hostname_ok(mk_slice host)
{
    char tmp[MAX_HOST_TEXT + 1];
    if (host.len == 0 || host.len > MAX_HOST_TEXT) return false;
    if (host.len == 9 && strncasecmp(host.ptr, "localhost", 9) == 0) return true;
    unsigned char buf[sizeof(struct in6_addr)];
    if (host.ptr[0] == '[') {
        if (host.len < 3 || host.ptr[host.len - 1] != ']' || memchr(host.ptr, '%', host.len)) return false;
        memcpy(tmp, host.ptr + 1, host.len - 2);
        tmp[host.len - 2] = '\0';
        return uv_inet_pton(AF_INET6, tmp, buf) == 0;   /* zones ("%25eth0") go to curl */
    }
    memcpy(tmp, host.ptr, host.len);
    tmp[host.len] = '\0';
    return uv_inet_pton(AF_INET, tmp, buf) == 0;   /* dotted quad only; curl takes "127.1" */
}

/* Header names that change how the message is framed or what the body is: the
 * native path leaves those calls to libcurl. */
static bool routes_to_curl(const char *h, size_t nl)
{
    static const char *const framing[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                          "Upgrade", "TE", "Keep-Alive", "Proxy-Connection"};
    for (size_t k = 0; k < sizeof(framing) / sizeof(framing[0]); k++)
        if (name_is(h, nl, framing[k])) return true;
    if (h[nl] != ':') return false;
    const char *v = h + nl + 1;
    while (*v == ' ' || *v == '\t') v++;
    /* curl decodes what it asked to be encoded; an Expect value wants 100-continue. */
    return *v && (name_is(h, nl, "Accept-Encoding") || name_is(h, nl, "Expect"));
}

static bool host_known(const mk_http__native *n, const struct mk_http__target *t)
{
    for (const struct host *h = n ? n->hosts : NULL; h; h = h->next)
        if (h->port == t->port && h->name_len == t->host.len && memcmp(h->name, t->host.ptr, t->host.len) == 0)
            return true;
    return false;
}

bool mk_http__native_target(const mk_http__native *n, const struct mk_http_call_opts *o, const size_t *name_lens,
                            struct mk_http__target *t)
{
    const char *u = o->url;
    if (strncasecmp(u, "http://", 7) != 0) return false;
    const char *a = u + 7, *ae = a;
    while (*ae && *ae != '/' && *ae != '?' && *ae != '#') ae++;
    if (memchr(a, '@', (size_t)(ae - a))) return false;   /* credentials: curl sends them */
    const char *he;
    if (*a == '[') {
        he = memchr(a, ']', (size_t)(ae - a));
        if (!he) return false;
        he++;
    } else {
        he = a;
        while (he < ae && *he != ':') he++;
    }
    t->host = (mk_slice){a, (size_t)(he - a)};
    t->port = 80;
    t->port_given = false;
    if (he < ae) {
        if (*he != ':' || he + 1 == ae || ae - (he + 1) > 5) return false;
        unsigned long port = 0;
        for (const char *p = he + 1; p < ae; p++) {
            if (*p < '0' || *p > '9') return false;
            port = port * 10 + (unsigned long)(*p - '0');
        }
        if (port == 0 || port > 65535) return false;
        t->port = (uint16_t)port;
        t->port_given = true;
    }
    if (!host_known(n, t) && !hostname_ok(t->host)) return false;
    const char *pe = ae;
    while (*pe && *pe != '#') pe++;
    t->path = (mk_slice){ae, (size_t)(pe - ae)};
    for (size_t i = 0; i < t->path.len; i++) {
        unsigned char ch = (unsigned char)t->path.ptr[i];
        if (ch >= 0x80 || ch == '\\') return false;
        /* curl removes dot segments ("/a/../b"); let it. */
        if (ch == '.' && i > 0 && t->path.ptr[i - 1] == '/') return false;
    }
    for (size_t i = 0; i < o->nheaders; i++)
        if (routes_to_curl(o->headers[i], name_lens[i])) return false;
    return true;
}

int mk_http__native_new(uv_loop_t *loop, mk_http__native **out)
{
    *out = NULL;
    mk_http__native *n = calloc(1, sizeof(*n));
    if (!n) return MK_ENOMEM;
    n->rbuf = malloc(READ_BUF_BYTES);
    if (!n->rbuf) {
        free(n);
        return MK_ENOMEM;
    }
    n->loop = loop;
    uv_timer_init(loop, &n->sweep);
    uv_unref((uv_handle_t *)&n->sweep);   /* only idle connections need it */
    n->sweep.data = n;
    *out = n;
    return 0;
}

static void sweep_closed(uv_handle_t *h)
{
    mk_http__native *n = h->data;
    n->closing--;
    maybe_finish_free(n);
}

static void do_free(mk_http__native *n)
{
    n->freeing = true;
    struct conn *conn;
    while ((conn = n->conns)) conn_close(conn);   /* detaches every call */
    struct ncall *call;
    while ((call = n->active)) {
        call->cancelled = true;
        call_recycle(call);   /* destroys, since n->freeing */
    }
    while ((call = n->pool)) {
        n->pool = call->next;
        n->npool--;
        call_destroy(call);
    }
    n->closing++;
    uv_close((uv_handle_t *)&n->sweep, sweep_closed);
}

void mk_http__native_free(mk_http__native *n)
{
    if (!n || n->free_requested) return;
    n->free_requested = true;
    for (struct ncall *call = n->active; call; call = call->next) call->cancelled = true;
    if (n->busy) return;   /* finished by leave() when the dispatch unwinds */
    do_free(n);
}

static struct ncall *call_get(mk_http__native *n)
{
    struct ncall *call = n->pool;
    if (call) {
        n->pool = call->next;
        n->npool--;
        call->next = NULL;
        return call;
    }
    call = calloc(1, sizeof(*call));
    if (!call) return NULL;
    call->head.native = true;
    call->n = n;
    uv_timer_init(n->loop, &call->timer);
    call->timer.data = call;
    mk_buf_init(&call->req, 0);
    return call;
}

int mk_http__native_start(mk_http__native *n, const struct mk_http_call_opts *o, const size_t *name_lens,
                          const struct mk_http__target *t, mk_http_call **out)
{
    if (out) *out = NULL;
    if (n->free_requested) return MK_EINVAL;
    struct host *h = host_get(n, t);
    if (!h) return MK_ENOMEM;
    struct ncall *call = call_get(n);
    if (!call) return MK_ENOMEM;
    call->h = h;
    int rc = build_request(call, o, name_lens, t);
    if (rc) {
        call_recycle(call);
        return rc == MK_ETOOBIG ? MK_EINVAL : rc;
    }
    call->on_response = o->on_response;
    call->on_data = o->on_data;
    call->on_done = o->on_done;
    call->arg = o->arg;
    call->connect_ms = o->connect_timeout_ms;
    call->first_byte_ms = o->first_byte_timeout_ms;
    call->idle_ms = o->idle_timeout_ms;
    call->total_ms = o->total_timeout_ms;
    call->body.max = o->max_body_bytes ? o->max_body_bytes : MK_MAX_UPSTREAM_BODY_BYTES;
    call->hdrs.max = MK_HTTP__MAX_RESPONSE_HEADER_BYTES;
    call->status = call->fail_rc = call->deferred_rc = call->in_cb = 0;
    call->connect_us = call->first_byte_us = call->headers_us = 0;
    call->last_data_ms = 0;
    call->connecting = call->headers_done = call->got_body = call->cancelled = call->done = false;
    call->waiting = call->retried = call->interim = call->hdr_in_value = false;
    call->conn = NULL;
    call->wnext = NULL;
    call->start_ms = uv_now(n->loop);
    call->start_us = mk_now_us();
    call->prev = NULL;
    call->next = n->active;
    if (n->active) n->active->prev = call;
    n->active = call;
    call->in_active = true;
    n->nactive++;
    if (out) *out = pub(call);

    call->starting = true;
    arm_timer(call);
    struct conn *conn = h->idle;
    if (conn) {
        idle_unlink(conn);
        conn_attach(conn, call);
        call->connect_us = 1;   /* reused: connected from the start */
        send_request(call);
    } else if (h->nconns < MK_UPSTREAM_MAX_HOST_CONNECTIONS) {
        conn_open(call, h->good);
    } else {
        call->waiting = true;
        if (h->wait_tail) h->wait_tail->wnext = call;
        else h->wait_head = call;
        h->wait_tail = call;
    }
    call->starting = false;
    return 0;
}

void mk_http__native_cancel(mk_http_call *pc)
{
    struct ncall *call = priv(pc);
    if (call->cancelled || call->done) return;
    mk_http__native *n = call->n;
    call->cancelled = true;
    uv_timer_stop(&call->timer);
    call->deferred_rc = 0;
    if (n->free_requested) return;   /* do_free takes it */
    if (call->in_cb) return;         /* the dispatcher running the callback cleans up */
    if (call->conn) conn_close(call->conn);
    call_recycle(call);
}

mk_slice mk_http__native_response_header(const mk_http_call *call, const char *name)
{
    return mk_http__header_lookup(&cpriv(call)->hdrs, name);
}

uint64_t mk_http__native_connect_us(const mk_http_call *call) { return cpriv(call)->connect_us; }
uint64_t mk_http__native_first_byte_us(const mk_http_call *call) { return cpriv(call)->first_byte_us; }
size_t mk_http__native_active(const mk_http__native *n) { return n ? n->nactive : 0; }

size_t mk_http__native_connections(const mk_http__native *n, size_t *idle)
{
    if (idle) *idle = n ? n->nidle : 0;
    return n ? n->nconns : 0;
}
