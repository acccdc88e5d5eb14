/*
 * Tests for mk_http_client against a small HTTP/1.1 server defined here: it runs on its
 * own thread and libuv loop on 127.0.0.1, and each path is one behaviour (echo, paced
 * chunks, stalls, truncated bodies, interim 100 responses, ...). It does not use
 * src/net/mk_http.c so the client is tested on its own.
 *
 * The URLs here are plain http:// to 127.0.0.1, so by default they take the client's
 * native path; test_http_client_curl.c compiles this file again with
 * MK_HTTPC_FORCE_CURL, so every test also runs through libcurl.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include "core/mk_error.h"
#include "core/mk_time.h"
#include "net/mk_http_client.h"
#include "net/mk_http_client_int.h"

/* ---------------------------------------------------------------- test server */

struct srv {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_thread_t thread;
    uv_sem_t ready;
    int port;
    atomic_int accepted;
    atomic_int requests;
};

struct sconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct srv *s;
    char *buf;
    size_t len, cap;
    int refs;            /* handles not yet closed */
    bool busy;           /* a paced response is in progress */
    bool closing;
    /* paced response state */
    int step, nsteps, gap_ms;
    int mode;
    bool drop_next;      /* close instead of answering the next request */
};

enum { MODE_STREAM = 1, MODE_FIRST, MODE_STALL };

struct wreq {
    uv_write_t req;
    struct sconn *conn;
    bool close_after;
    char data[];
};

static void sconn_handle_closed(uv_handle_t *h)
{
    struct sconn *conn = h->data;
    if (--conn->refs == 0) {
        free(conn->buf);
        free(conn);
    }
}

static void sconn_close(struct sconn *conn)
{
    if (conn->closing) return;
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->tcp, sconn_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, sconn_handle_closed);
}

static void swritten(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    if (w->close_after || status < 0) sconn_close(w->conn);
    free(w);
}

static void swrite2(struct sconn *conn, const char *data, size_t len, bool close_after)
{
    if (conn->closing) return;
    struct wreq *w = malloc(sizeof(*w) + len);
    cr_assert(w);
    memcpy(w->data, data, len);
    w->conn = conn;
    w->close_after = close_after;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, swritten) < 0) {
        free(w);
        sconn_close(conn);
    }
}

static void swrite(struct sconn *conn, const char *s) { swrite2(conn, s, strlen(s), false); }

static long qparam(const char *target, const char *name, long dflt)
{
    char key[32];
    snprintf(key, sizeof(key), "%s=", name);
    const char *q = strchr(target, '?');
    while (q) {
        q++;
        if (strncmp(q, key, strlen(key)) == 0) return strtol(q + strlen(key), NULL, 10);
        q = strchr(q, '&');
    }
    return dflt;
}

static void try_parse(struct sconn *conn);

static void respond_simple(struct sconn *conn, const char *extra_headers, const char *body, size_t blen)
{
    /* One write per response: two would meet Nagle and delayed ACK (40 ms stalls). */
    char *msg = malloc(512 + blen);
    cr_assert(msg);
    int n = snprintf(msg, 512, "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\n\r\n", extra_headers, blen);
    if (blen) memcpy(msg + n, body, blen);
    swrite2(conn, msg, (size_t)n + blen, false);
    free(msg);
}

static void pace_fired(uv_timer_t *t)
{
    struct sconn *conn = t->data;
    char piece[64];
    if (conn->mode == MODE_STREAM) {
        if (conn->step < conn->nsteps) {
            int n = snprintf(piece, sizeof(piece), "piece-%d\n", conn->step);
            char chunk[96];
            int m = snprintf(chunk, sizeof(chunk), "%x\r\n%s\r\n", n, piece);
            swrite2(conn, chunk, (size_t)m, false);
            conn->step++;
            uv_timer_start(&conn->timer, pace_fired, (uint64_t)conn->gap_ms, 0);
            return;
        }
        swrite(conn, "0\r\n\r\n");
    } else if (conn->mode == MODE_FIRST) {
        swrite(conn, "late-body");
    }
    conn->busy = false;
    conn->mode = 0;
    try_parse(conn);
}

/* One complete request: method, target, raw head (request line + headers) and body. */
static void handle(struct sconn *conn, const char *method, const char *target,
                   const char *raw, size_t rawlen)
{
    (void)method;
    atomic_fetch_add(&conn->s->requests, 1);
    if (strncmp(target, "/echo", 5) == 0) {
        char extra[256];
        snprintf(extra, sizeof(extra), "X-Request-Method: %s\r\nx-multi:   spaced value  \r\n"
                 "Content-Type: text/plain\r\n", method);
        respond_simple(conn, extra, raw, rawlen);
    } else if (strncmp(target, "/count", 6) == 0) {
        char body[32];
        int n = snprintf(body, sizeof(body), "%d", atomic_load(&conn->s->accepted));
        respond_simple(conn, "", body, (size_t)n);
    } else if (strncmp(target, "/stream", 7) == 0) {
        swrite(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: stream\r\n\r\n");
        conn->busy = true;
        conn->mode = MODE_STREAM;
        conn->step = 0;
        conn->nsteps = (int)qparam(target, "n", 5);
        conn->gap_ms = (int)qparam(target, "gap", 10);
        uv_timer_start(&conn->timer, pace_fired, (uint64_t)conn->gap_ms, 0);
    } else if (strncmp(target, "/first", 6) == 0) {
        /* Headers now, the body (9 bytes) after `delay` ms. */
        swrite(conn, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        conn->busy = true;
        conn->mode = MODE_FIRST;
        uv_timer_start(&conn->timer, pace_fired, (uint64_t)qparam(target, "delay", 1000), 0);
    } else if (strncmp(target, "/stall", 6) == 0) {
        swrite(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        conn->busy = true;
        conn->mode = MODE_STALL;
    } else if (strncmp(target, "/hang", 5) == 0) {
        conn->busy = true;   /* never answers */
    } else if (strncmp(target, "/cut-cl", 7) == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-10-by";
        swrite2(conn, r, strlen(r), true);
        conn->busy = true;
    } else if (strncmp(target, "/cut-chunked", 12) == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        swrite2(conn, r, strlen(r), true);
        conn->busy = true;
    } else if (strncmp(target, "/big", 4) == 0) {
        size_t n = (size_t)qparam(target, "n", 1000);
        char *body = malloc(n + 1);
        cr_assert(body);
        memset(body, 'x', n);
        respond_simple(conn, "", body, n);
        free(body);
    } else if (strncmp(target, "/interim", 8) == 0) {
        swrite(conn, "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
                     "HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok");
    } else if (strncmp(target, "/drop-next", 10) == 0) {
        /* Answers, then drops the connection when the next request arrives on it: a
         * keep-alive connection the server closed while the client held it idle. */
        respond_simple(conn, "", "first", 5);
        conn->drop_next = true;
    } else if (strncmp(target, "/close-hdr", 10) == 0) {
        respond_simple(conn, "Connection: close\r\n", "bye", 3);   /* and keeps it open */
    } else if (strncmp(target, "/http10", 7) == 0) {
        const char *r = "HTTP/1.0 200 OK\r\nX-Old: 1\r\n\r\nbody until close";
        swrite2(conn, r, strlen(r), true);
        conn->busy = true;
    } else if (strncmp(target, "/trailers", 9) == 0) {
        swrite(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Head: h\r\n\r\n"
                     "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    } else if (strncmp(target, "/extra", 6) == 0) {
        swrite(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE");
    } else if (strncmp(target, "/head", 5) == 0) {
        swrite(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Head: yes\r\n\r\n");
    } else if (strncmp(target, "/empty", 6) == 0) {
        swrite(conn, "HTTP/1.1 204 No Content\r\nX-Empty: 1\r\n\r\n");
    } else {
        swrite(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

static void try_parse(struct sconn *conn)
{
    while (!conn->busy && !conn->closing && conn->len) {
        char *end = memmem(conn->buf, conn->len, "\r\n\r\n", 4);
        if (!end) return;
        size_t head_len = (size_t)(end - conn->buf) + 4;
        size_t clen = 0;
        for (char *p = conn->buf; p < end; p++) {
            if ((p == conn->buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0)
                clen = (size_t)strtoul(p + 15, NULL, 10);
        }
        if (conn->len < head_len + clen) return;
        char method[16] = "", target[256] = "";
        if (sscanf(conn->buf, "%15s %255s", method, target) != 2 || conn->drop_next) {
            sconn_close(conn);
            return;
        }
        size_t total = head_len + clen;
        char *raw = malloc(total);
        cr_assert(raw);
        memcpy(raw, conn->buf, total);
        memmove(conn->buf, conn->buf + total, conn->len - total);
        conn->len -= total;
        handle(conn, method, target, raw, total);
        free(raw);
    }
}

static void salloc(uv_handle_t *h, size_t sug, uv_buf_t *b)
{
    (void)sug;
    struct sconn *conn = h->data;
    if (conn->cap - conn->len < 65536) {
        conn->cap = conn->cap * 2 + 65536;
        conn->buf = realloc(conn->buf, conn->cap);
        cr_assert(conn->buf);
    }
    *b = uv_buf_init(conn->buf + conn->len, (unsigned)(conn->cap - conn->len));
}

static void sread(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct sconn *conn = st->data;
    if (n < 0) {
        sconn_close(conn);
        return;
    }
    conn->len += (size_t)n;
    try_parse(conn);
}

static void saccept(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    if (status < 0) return;
    struct sconn *conn = calloc(1, sizeof(*conn));
    cr_assert(conn);
    conn->s = s;
    conn->refs = 2;
    uv_tcp_init(&s->loop, &conn->tcp);
    uv_timer_init(&s->loop, &conn->timer);
    conn->tcp.data = conn->timer.data = conn;
    if (uv_accept(l, (uv_stream_t *)&conn->tcp) == 0) {
        atomic_fetch_add(&s->accepted, 1);
        uv_tcp_nodelay(&conn->tcp, 1);
        uv_read_start((uv_stream_t *)&conn->tcp, salloc, sread);
    } else {
        sconn_close(conn);
    }
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h)) return;
    if (h->type == UV_TCP && h->data && h != arg) {
        sconn_close(h->data);   /* closes its timer too */
    } else if (h->type != UV_TCP && h->type != UV_TIMER) {
        uv_close(h, NULL);
    } else if (h->data == NULL) {
        uv_close(h, NULL);
    }
}

static void stop_cb(uv_async_t *a)
{
    struct srv *s = a->data;
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_walk(&s->loop, close_any, &s->listener);
}

static void srv_thread(void *arg)
{
    struct srv *s = arg;
    uv_sem_post(&s->ready);
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

static struct srv *srv_start(void)
{
    struct srv *s = calloc(1, sizeof(*s));
    cr_assert(s);
    cr_assert_eq(uv_loop_init(&s->loop), 0);
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    cr_assert_eq(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&s->listener, 1024, saccept), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(got.sin_port);
    uv_async_init(&s->loop, &s->stop, stop_cb);
    s->stop.data = s;
    uv_sem_init(&s->ready, 0);
    cr_assert_eq(uv_thread_create(&s->thread, srv_thread, s), 0);
    uv_sem_wait(&s->ready);
    return s;
}

static void srv_stop(struct srv *s)
{
    uv_async_send(&s->stop);
    uv_thread_join(&s->thread);
    cr_assert_eq(uv_loop_close(&s->loop), 0);
    uv_sem_destroy(&s->ready);
    free(s);
}

/* A port nothing listens on (bound then closed, so it is very likely free). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---------------------------------------------------------------- harness */

static uv_loop_t loop;
static mk_http_client *client;
static struct srv *server;

static void setup_all(void)
{
    /* The test server writes to peers that hung up (cancelled calls); libuv does not
     * ignore SIGPIPE for us. */
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(mk_http_client_new(&loop, &client), 0);
#ifdef MK_HTTPC_FORCE_CURL
    mk_http_client_set_native(client, false);
#endif
    server = srv_start();
}

static void teardown_all(void)
{
    mk_http_client_free(client);
    client = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0, "handles left open on the client loop");
    if (server) srv_stop(server);
    server = NULL;
}

static char *url(const char *path)
{
    static char buf[8][256];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, sizeof(buf[0]), "http://127.0.0.1:%d%s", server->port, path);
    return b;
}

struct res {
    int done;
    int rc;
    int status;
    char body[256 * 1024];
    size_t body_len;
    int nresp;
    int resp_status;
    int pieces;
    int after_cancel;      /* callbacks seen after we cancelled */
    bool cancelled;
    int cancel_at_piece;   /* cancel from on_data at this piece (1-based), 0 = never */
    bool cancel_on_response;
    bool free_on_data;
    char hdr_final[64];
    char hdr_interim[64];
    char hdr_multi[64];
    uint64_t connect_us, first_byte_us;
};

static void copy_slice(char *dst, size_t cap, mk_slice s)
{
    snprintf(dst, cap, "%.*s", (int)s.len, s.ptr);
}

static void on_response(mk_http_call *call, int status, void *arg)
{
    struct res *r = arg;
    if (r->cancelled) r->after_cancel++;
    r->nresp++;
    r->resp_status = status;
    copy_slice(r->hdr_final, sizeof(r->hdr_final), mk_http_call_response_header(call, "x-final"));
    copy_slice(r->hdr_interim, sizeof(r->hdr_interim), mk_http_call_response_header(call, "X-Interim"));
    copy_slice(r->hdr_multi, sizeof(r->hdr_multi), mk_http_call_response_header(call, "X-MULTI"));
    if (r->cancel_on_response) {
        r->cancelled = true;
        mk_http_call_cancel(call);
    }
}

static void on_data(mk_http_call *call, const char *data, size_t len, void *arg)
{
    struct res *r = arg;
    if (r->cancelled) r->after_cancel++;
    r->pieces++;
    cr_assert_leq(r->body_len + len, sizeof(r->body));
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    if (r->cancel_at_piece && r->pieces == r->cancel_at_piece) {
        r->cancelled = true;
        mk_http_call_cancel(call);
        mk_http_call_cancel(call);   /* twice is harmless */
    }
    if (r->free_on_data) {
        r->cancelled = true;
        mk_http_client_free(client);
        client = NULL;
    }
}

static void on_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    struct res *r = arg;
    if (r->cancelled) r->after_cancel++;
    r->done++;
    r->rc = rc;
    r->status = status;
    if (body.len) {
        cr_assert_leq(body.len, sizeof(r->body));
        memcpy(r->body, body.ptr, body.len);
        r->body_len = body.len;
    }
    r->connect_us = mk_http_call_connect_us(call);
    r->first_byte_us = mk_http_call_first_byte_us(call);
    if (!r->hdr_final[0])
        copy_slice(r->hdr_final, sizeof(r->hdr_final), mk_http_call_response_header(call, "X-Final"));
    mk_http_call_cancel(call);   /* a no-op inside on_done */
}

static struct mk_http_call_opts opts_for(const char *path, struct res *r, bool streaming)
{
    struct mk_http_call_opts o = {0};
    o.url = url(path);
    o.on_response = on_response;
    o.on_data = streaming ? on_data : NULL;
    o.on_done = on_done;
    o.arg = r;
    return o;
}

static int start(const char *path, struct res *r, bool streaming, mk_http_call **out)
{
    struct mk_http_call_opts o = opts_for(path, r, streaming);
    return mk_http_call_start(client, &o, out);
}

static void run(void) { uv_run(&loop, UV_RUN_DEFAULT); }

static bool has(const struct res *r, const char *needle)
{
    return memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

TestSuite(http_client, .init = setup_all, .fini = teardown_all, .timeout = 60);

/* ---------------------------------------------------------------- tests */

Test(http_client, get_echoes_headers)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/echo?x=1", &r, false);
    const char *hdrs[] = {"X-Test: hello", "Authorization: Bearer k"};
    o.headers = hdrs;
    o.nheaders = 2;
    mk_http_call *call = NULL;
    cr_assert_eq(mk_http_call_start(client, &o, &call), 0);
    cr_assert_not_null(call);
    cr_assert_eq(mk_http_client_active(client), 1);
    run();
    cr_assert_eq(r.done, 1);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.nresp, 1);
    cr_assert(has(&r, "GET /echo?x=1 HTTP/1.1\r\n"), "%.*s", (int)r.body_len, r.body);
    cr_assert(has(&r, "X-Test: hello\r\n"));
    cr_assert(has(&r, "Authorization: Bearer k\r\n"));
    cr_assert(!has(&r, "Expect"));
    cr_assert(!has(&r, "Accept-Encoding"));
    cr_assert_str_eq(r.hdr_multi, "spaced value");
    cr_assert_gt(r.connect_us, 0);
    cr_assert_gt(r.first_byte_us, 0);
    cr_assert_eq(mk_http_client_active(client), 0);
}

Test(http_client, post_echoes_body)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/echo", &r, false);
    const char *hdrs[] = {"Content-Type: application/json"};
    o.headers = hdrs;
    o.nheaders = 1;
    o.body = "{\"a\":1}";
    o.body_len = 7;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert(has(&r, "POST /echo HTTP/1.1\r\n"));
    cr_assert(has(&r, "Content-Type: application/json\r\n"));
    cr_assert(has(&r, "Content-Length: 7\r\n"));
    cr_assert(has(&r, "\r\n\r\n{\"a\":1}"));
    cr_assert(!has(&r, "Expect"));
}

Test(http_client, large_post_without_expect_and_other_methods)
{
    static struct res r1, r2, r3;
    size_t n = 200 * 1024;
    char *big = malloc(n);
    cr_assert(big);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    struct mk_http_call_opts o = opts_for("/echo", &r1, false);
    o.body = big;
    o.body_len = n;
    o.method = "PUT";
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    free(big);   /* the body is copied */

    struct mk_http_call_opts o2 = opts_for("/echo", &r2, false);
    o2.body = "x=1";
    o2.body_len = 3;   /* no method: POST; no Content-Type given: none sent */
    cr_assert_eq(mk_http_call_start(client, &o2, NULL), 0);

    struct mk_http_call_opts o3 = opts_for("/echo", &r3, false);
    o3.method = "DELETE";
    cr_assert_eq(mk_http_call_start(client, &o3, NULL), 0);
    run();

    cr_assert_eq(r1.rc, 0);
    cr_assert(has(&r1, "PUT /echo HTTP/1.1\r\n"));
    cr_assert(!has(&r1, "Expect"));
    cr_assert_eq(r1.body_len > n, true);
    cr_assert(has(&r1, "Content-Length: 204800\r\n"));
    cr_assert_eq(memcmp(r1.body + r1.body_len - 26, "opqrstuvwxyzabcdefghijklmn", 26) == 0 ||
                 r1.body[r1.body_len - 1] == (char)('a' + (n - 1) % 26), true);

    cr_assert_eq(r2.rc, 0);
    cr_assert(has(&r2, "POST /echo HTTP/1.1\r\n"));
    cr_assert(!has(&r2, "Content-Type"));
    cr_assert(has(&r2, "\r\n\r\nx=1"));

    cr_assert_eq(r3.rc, 0);
    cr_assert(has(&r3, "DELETE /echo HTTP/1.1\r\n"));
    cr_assert(!has(&r3, "Content-Length"));
}

Test(http_client, streaming_in_paced_pieces)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/stream?n=6&gap=15", &r, true);
    o.idle_timeout_ms = 5000;
    o.first_byte_timeout_ms = 5000;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.done, 1);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.status, 200);
    const char *want = "piece-0\npiece-1\npiece-2\npiece-3\npiece-4\npiece-5\n";
    cr_assert_eq(r.body_len, strlen(want));
    cr_assert_eq(memcmp(r.body, want, r.body_len), 0);
    cr_assert_geq(r.pieces, 2, "paced chunks should arrive in several pieces");
}

Test(http_client, idle_timer_rearms_on_data)
{
    /* The whole stream (about 20 x 30 ms) lasts longer than the idle limit, but no
     * single gap does: it must succeed. */
    static struct res r;
    struct mk_http_call_opts o = opts_for("/stream?n=20&gap=30", &r, true);
    o.idle_timeout_ms = 400;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert(has(&r, "piece-19\n"));
}

struct seq {
    int left;
    int ok;
    int failed;
    uint64_t t0, t1;
    struct res r;
};

static void seq_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg);

static void seq_next(struct seq *s)
{
    struct mk_http_call_opts o = {0};
    o.url = url("/echo");
    o.on_done = seq_done;
    o.arg = s;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
}

static void seq_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    (void)call;
    struct seq *s = arg;
    if (rc == 0 && status == 200 && body.len > 0) s->ok++;
    else s->failed++;
    if (--s->left > 0) seq_next(s);   /* started from inside on_done */
}

Test(http_client, keep_alive_reuses_one_connection)
{
    static struct seq s;
    s.left = 20;
    seq_next(&s);
    run();
    cr_assert_eq(s.ok, 20);
    cr_assert_eq(s.failed, 0);
    cr_assert_eq(atomic_load(&server->accepted), 1, "20 sequential calls should share one connection");
    cr_assert_eq(atomic_load(&server->requests), 20);
}

Test(http_client, connect_refused)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/", &r, false);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", dead_port());
    o.url = u;
    o.connect_timeout_ms = 2000;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.done, 1);
    cr_assert_eq(r.rc, MK_EUPSTREAM);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.nresp, 0);
}

Test(http_client, first_byte_timeout)
{
    static struct res r1, r2;
    /* Headers arrive at once, the body only after 5 s. */
    struct mk_http_call_opts o = opts_for("/first?delay=5000", &r1, false);
    o.first_byte_timeout_ms = 100;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    /* Nothing at all arrives. */
    struct mk_http_call_opts o2 = opts_for("/hang", &r2, true);
    o2.first_byte_timeout_ms = 100;
    cr_assert_eq(mk_http_call_start(client, &o2, NULL), 0);
    run();
    cr_assert_eq(r1.done, 1);
    cr_assert_eq(r1.rc, MK_EUPSTREAM_TIMEOUT);
    cr_assert_eq(r1.status, 200);
    cr_assert_eq(r1.body_len, 0);
    cr_assert_eq(r2.done, 1);
    cr_assert_eq(r2.rc, MK_EUPSTREAM_TIMEOUT);
    cr_assert_eq(r2.status, 0);
}

Test(http_client, first_byte_then_body_in_time)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/first?delay=20", &r, false);
    o.first_byte_timeout_ms = 5000;
    o.idle_timeout_ms = 5000;
    o.total_timeout_ms = 10000;
    o.connect_timeout_ms = 5000;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.body_len, 9);
    cr_assert_eq(memcmp(r.body, "late-body", 9), 0);
    cr_assert_geq(r.first_byte_us, r.connect_us);
}

Test(http_client, idle_gap_timeout_mid_stream)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/stall", &r, true);
    o.first_byte_timeout_ms = 5000;
    o.idle_timeout_ms = 150;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.done, 1);
    cr_assert_eq(r.rc, MK_EUPSTREAM_TIMEOUT);
    cr_assert_eq(r.status, 200);
    cr_assert(has(&r, "hello"));
}

Test(http_client, total_timeout)
{
    static struct res r1, r2;
    struct mk_http_call_opts o = opts_for("/hang", &r1, false);
    o.total_timeout_ms = 150;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    /* A stream that keeps flowing (no gap) but lasts too long overall. */
    struct mk_http_call_opts o2 = opts_for("/stream?n=1000&gap=20", &r2, true);
    o2.total_timeout_ms = 200;
    o2.idle_timeout_ms = 5000;
    cr_assert_eq(mk_http_call_start(client, &o2, NULL), 0);
    run();
    cr_assert_eq(r1.rc, MK_EUPSTREAM_TIMEOUT);
    cr_assert_eq(r1.status, 0);
    cr_assert_eq(r2.rc, MK_EUPSTREAM_TIMEOUT);
    cr_assert_eq(r2.status, 200);
    cr_assert(has(&r2, "piece-0\n"));
}

Test(http_client, truncated_bodies_fail)
{
    static struct res r1, r2, r3, r4;
    cr_assert_eq(mk_http_call_start(client, &(struct mk_http_call_opts){
        .url = url("/cut-cl"), .on_done = on_done, .arg = &r1}, NULL), 0);
    cr_assert_eq(mk_http_call_start(client, &(struct mk_http_call_opts){
        .url = url("/cut-chunked"), .on_done = on_done, .arg = &r2}, NULL), 0);
    cr_assert_eq(mk_http_call_start(client, &(struct mk_http_call_opts){
        .url = url("/cut-cl"), .on_data = on_data, .on_done = on_done, .arg = &r3}, NULL), 0);
    cr_assert_eq(mk_http_call_start(client, &(struct mk_http_call_opts){
        .url = url("/cut-chunked"), .on_data = on_data, .on_done = on_done, .arg = &r4}, NULL), 0);
    run();
    struct res *all[] = {&r1, &r2, &r3, &r4};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(all[i]->done, 1, "call %d", i);
        cr_assert_eq(all[i]->rc, MK_EUPSTREAM, "call %d rc %d", i, all[i]->rc);
        cr_assert_eq(all[i]->status, 200);
    }
    /* A failed buffered call hands no partial body. */
    cr_assert_eq(r1.body_len, 0);
    cr_assert(has(&r3, "only-10-by"));
    cr_assert(has(&r4, "hello"));
}

Test(http_client, body_cap)
{
    static struct res r1, r2;
    struct mk_http_call_opts o = opts_for("/big?n=100000", &r1, false);
    o.max_body_bytes = 1000;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    struct mk_http_call_opts o2 = opts_for("/big?n=1000", &r2, false);
    o2.max_body_bytes = 1000;   /* exactly at the cap is fine */
    cr_assert_eq(mk_http_call_start(client, &o2, NULL), 0);
    run();
    cr_assert_eq(r1.rc, MK_ETOOBIG);
    cr_assert_eq(r2.rc, 0);
    cr_assert_eq(r2.body_len, 1000);
}

Test(http_client, cancel_inside_on_data)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/stream?n=50&gap=5", &r, true);
    r.cancel_at_piece = 2;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.pieces, 2);
    cr_assert_eq(r.done, 0, "no on_done after cancel");
    cr_assert_eq(r.after_cancel, 0);
    cr_assert_eq(mk_http_client_active(client), 0);

    /* The client keeps working afterwards. */
    static struct res r2;
    cr_assert_eq(mk_http_call_start(client, &(struct mk_http_call_opts){
        .url = url("/echo"), .on_done = on_done, .arg = &r2}, NULL), 0);
    run();
    cr_assert_eq(r2.rc, 0);
}

Test(http_client, cancel_inside_on_response)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/stream?n=5&gap=5", &r, true);
    r.cancel_on_response = true;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.nresp, 1);
    cr_assert_eq(r.pieces, 0);
    cr_assert_eq(r.done, 0);
    cr_assert_eq(mk_http_client_active(client), 0);
}

static mk_http_call *to_cancel;
static void cancel_later(uv_timer_t *t)
{
    mk_http_call_cancel(to_cancel);
    uv_close((uv_handle_t *)t, NULL);
}

Test(http_client, cancel_from_outside)
{
    static struct res r;
    static uv_timer_t t;
    struct mk_http_call_opts o = opts_for("/stall", &r, true);
    cr_assert_eq(mk_http_call_start(client, &o, &to_cancel), 0);
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, cancel_later, 100, 0);
    run();
    cr_assert_eq(r.done, 0);
    cr_assert(has(&r, "hello"));
    cr_assert_eq(mk_http_client_active(client), 0);

    /* Cancel straight after start, before any I/O. */
    static struct res r2;
    mk_http_call *call;
    cr_assert_eq(start("/echo", &r2, false, &call), 0);
    mk_http_call_cancel(call);
    run();
    cr_assert_eq(r2.done + r2.nresp, 0);
}

/* A call started from inside on_data is queued until curl returns. */
static struct res chained;
static void start_from_data(mk_http_call *call, const char *data, size_t len, void *arg)
{
    struct res *r = arg;
    (void)call, (void)data;
    r->pieces++;
    r->body_len += len;
    if (r->pieces == 1)
        cr_assert_eq(start("/echo", &chained, false, NULL), 0);
}

Test(http_client, start_inside_on_data)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/stream?n=3&gap=5", &r, true);
    o.on_data = start_from_data;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(chained.done, 1);
    cr_assert_eq(chained.rc, 0);
}

#define NCONC 200
Test(http_client, concurrent_calls)
{
    static struct res r[NCONC];
    static char paths[NCONC][32];
    for (int i = 0; i < NCONC; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/echo?i=%d", i);
        struct mk_http_call_opts o = opts_for(paths[i], &r[i], i % 2 == 1);
        o.total_timeout_ms = 30000;
        cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    }
    cr_assert_eq(mk_http_client_active(client), NCONC);
    run();
    for (int i = 0; i < NCONC; i++) {
        char want[48];
        snprintf(want, sizeof(want), "GET /echo?i=%d HTTP", i);
        cr_assert_eq(r[i].done, 1, "call %d", i);
        cr_assert_eq(r[i].rc, 0, "call %d rc %d", i, r[i].rc);
        cr_assert(has(&r[i], want), "call %d", i);
    }
    cr_assert_eq(mk_http_client_active(client), 0);
}

Test(http_client, response_headers_of_final_response_only)
{
    static struct res r, r2;
    cr_assert_eq(start("/interim", &r, false, NULL), 0);
    cr_assert_eq(start("/empty", &r2, false, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.status, 201);
    cr_assert_eq(r.resp_status, 201);
    cr_assert_eq(r.nresp, 1);
    cr_assert_str_eq(r.hdr_final, "yes");
    cr_assert_str_eq(r.hdr_interim, "", "1xx headers must not leak into the final response's");
    cr_assert_eq(r.body_len, 2);
    cr_assert_eq(r2.rc, 0);
    cr_assert_eq(r2.status, 204);
    cr_assert_eq(r2.body_len, 0);
    cr_assert_gt(r2.first_byte_us, 0);
}

static void free_client_later(uv_timer_t *t)
{
    cr_assert_geq(mk_http_client_active(client), 10);
    mk_http_client_free(client);
    client = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

Test(http_client, free_with_calls_in_flight)
{
    static struct res r[10];
    for (int i = 0; i < 10; i++) {
        const char *p = i % 3 == 0 ? "/stall" : i % 3 == 1 ? "/hang" : "/stream?n=1000&gap=5";
        cr_assert_eq(start(p, &r[i], i % 2 == 0, NULL), 0);
    }
    /* Let them get going, then free the client with everything in flight. */
    static uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, free_client_later, 100, 0);
    run();
    cr_assert_null(client);
    for (int i = 0; i < 10; i++) cr_assert_eq(r[i].done, 0, "no on_done after free (call %d)", i);
}

Test(http_client, free_inside_on_data)
{
    static struct res r, other;
    struct mk_http_call_opts o = opts_for("/stream?n=50&gap=5", &r, true);
    r.free_on_data = true;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    cr_assert_eq(start("/hang", &other, false, NULL), 0);
    run();
    cr_assert_eq(r.pieces, 1);
    cr_assert_eq(r.done, 0);
    cr_assert_eq(other.done, 0);
}

Test(http_client, rejects_bad_arguments)
{
    struct mk_http_call_opts o = {0};
    mk_http_call *call = (mk_http_call *)&o;
    cr_assert_eq(mk_http_call_start(NULL, &o, &call), MK_EINVAL);
    cr_assert_null(call);
    cr_assert_eq(mk_http_call_start(client, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);   /* no URL */
    o.url = "ftp://127.0.0.1/x";
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.url = "http://127.0.0.1/a b";
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.url = "http://127.0.0.1/x\r\nX: y";
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.url = url("/echo");
    o.method = "GE T";
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.method = "";
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.method = NULL;
    const char *bad1[] = {"X-Evil: a\r\nInjected: b"};
    o.headers = bad1;
    o.nheaders = 1;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    const char *bad2[] = {"NoColon"};
    o.headers = bad2;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    const char *bad3[] = {NULL};
    o.headers = bad3;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.headers = NULL;   /* nheaders 1 without headers */
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.nheaders = 0;
    o.body_len = 5;     /* length without bytes */
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    o.body = "abcde";
    o.method = "HEAD";  /* HEAD with a body */
    cr_assert_eq(mk_http_call_start(client, &o, NULL), MK_EINVAL);
    cr_assert_eq(mk_http_client_active(client), 0);
    cr_assert_eq(mk_http_client_new(NULL, NULL), MK_EINVAL);
    mk_http_client_free(NULL);
    mk_http_call_cancel(NULL);
    cr_assert_eq(mk_http_call_response_header(NULL, "x").len, 0);
    cr_assert_eq(mk_http_call_connect_us(NULL), 0);
}

Test(http_client, accept_encoding_is_decoded_by_curl)
{
    static struct res r;
    struct mk_http_call_opts o = opts_for("/echo", &r, false);
    const char *hdrs[] = {"Accept-Encoding: gzip"};
    o.headers = hdrs;
    o.nheaders = 1;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert(has(&r, "Accept-Encoding: gzip\r\n"));
}

/* Many calls with random endpoints, timeouts and cancellation points: every call gets
 * exactly one on_done unless cancelled, and nothing at all after a cancel. */
#define NCHAOS 300
struct chaos {
    int idx;
    int action;          /* 0 none, 1 cancel in on_response, 2 cancel in on_data, 3 cancel by timer,
                            4 start a follow-up from on_data */
    int done, after_cancel, pieces;
    bool cancelled, started;
    mk_http_call *call;
};
static struct chaos chaos[NCHAOS + NCHAOS];
static int nchaos;
static unsigned chaos_rng = 12345;
static unsigned rnd(unsigned n)
{
    chaos_rng = chaos_rng * 1103515245u + 12345u;
    return (chaos_rng >> 8) % n;
}

static void chaos_start(struct chaos *x);

static void chaos_resp(mk_http_call *call, int status, void *arg)
{
    (void)status;
    struct chaos *x = arg;
    if (x->cancelled || x->done) x->after_cancel++;
    if (x->action == 1) {
        x->cancelled = true;
        mk_http_call_cancel(call);
    }
}

static void chaos_data(mk_http_call *call, const char *d, size_t n, void *arg)
{
    (void)d, (void)n;
    struct chaos *x = arg;
    if (x->cancelled || x->done) x->after_cancel++;
    x->pieces++;
    if (x->action == 2 && x->pieces == 2) {
        x->cancelled = true;
        mk_http_call_cancel(call);
    } else if (x->action == 4 && x->pieces == 1 && nchaos < NCHAOS + NCHAOS) {
        chaos_start(&chaos[nchaos++]);
    }
}

static void chaos_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    (void)call, (void)rc, (void)status, (void)body;
    struct chaos *x = arg;
    if (x->cancelled) x->after_cancel++;
    x->done++;
}

static void chaos_timer(uv_timer_t *t)
{
    struct chaos *x = t->data;
    if (!x->done && !x->cancelled) {
        x->cancelled = true;
        mk_http_call_cancel(x->call);
    }
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void chaos_start(struct chaos *x)
{
    static const char *paths[] = {"/echo", "/stream?n=20&gap=3", "/stall", "/hang", "/cut-cl",
                                  "/cut-chunked", "/first?delay=30", "/interim", "/big?n=300000"};
    struct mk_http_call_opts o = {0};
    o.url = url(paths[rnd(9)]);
    o.on_response = chaos_resp;
    o.on_data = rnd(2) ? chaos_data : NULL;
    o.on_done = chaos_done;
    o.arg = x;
    o.first_byte_timeout_ms = rnd(2) ? 20 + rnd(200) : 0;
    o.idle_timeout_ms = rnd(2) ? 20 + rnd(100) : 0;
    o.total_timeout_ms = 50 + rnd(400);   /* bounds /hang and /stall */
    o.max_body_bytes = rnd(3) == 0 ? 1000 : 0;
    x->action = (int)rnd(5);
    x->started = true;
    cr_assert_eq(mk_http_call_start(client, &o, &x->call), 0);
    if (x->action == 3) {
        uv_timer_t *t = malloc(sizeof(*t));
        uv_timer_init(&loop, t);
        t->data = x;
        uv_timer_start(t, chaos_timer, rnd(100), 0);
    }
}

Test(http_client, chaos_cancel_timeouts_and_errors)
{
    const char *seed = getenv("MK_HTTPC_SEED");   /* to explore other schedules by hand */
    if (seed) chaos_rng = (unsigned)strtoul(seed, NULL, 10);
    for (nchaos = 0; nchaos < NCHAOS; nchaos++) chaos_start(&chaos[nchaos]);
    run();
    int cancelled = 0, done = 0;
    for (int i = 0; i < nchaos; i++) {
        struct chaos *x = &chaos[i];
        cr_assert_eq(x->after_cancel, 0, "call %d got a callback after cancel/done", i);
        if (x->cancelled) {
            cancelled++;
            cr_assert_leq(x->done, 1);
        } else {
            done++;
            cr_assert_eq(x->done, 1, "call %d: on_done %d times", i, x->done);
        }
    }
    cr_assert_eq(mk_http_client_active(client), 0);
    cr_assert_gt(cancelled, 0);
    cr_assert_gt(done, 0);
}

/* ---------------------------------------------------------------- TLS via openssl s_server */

/* Runs argv; the child dies with this test process whatever happens. */
static pid_t spawn(char *const argv[], bool wait_exit)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (wait_exit) {
        int st = 0;
        waitpid(pid, &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", argv[0]);
    }
    return pid;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

Test(http_client, tls_trust_insecure_and_refusal)
{
    cr_assert_eq(access("/usr/bin/openssl", X_OK), 0, "openssl is missing: run scripts/install-deps.sh --test");
    char dir[] = "/tmp/mk_httpc_tlsXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cert[128], key[128];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    char *gen[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                   "-addext", "subjectAltName=IP:127.0.0.1", NULL};
    spawn(gen, true);
    int port = dead_port();
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    char *srv[] = {"openssl", "s_server", "-quiet", "-www", "-accept", portstr, "-cert", cert,
                   "-key", key, NULL};
    pid_t pid = spawn(srv, false);
    for (int i = 0; i < 500 && !port_open(port); i++) usleep(10000);

    char u[64];
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", port);
    static struct res trusted, untrusted, insecure;
    struct mk_http_call_opts o = opts_for("/", &trusted, false);
    o.url = u;
    o.ca_file = cert;
    o.total_timeout_ms = 10000;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    o.arg = &untrusted;
    o.ca_file = NULL;     /* the system's CAs do not know our certificate */
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    o.arg = &insecure;
    o.insecure = true;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();

    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    cr_assert_eq(trusted.rc, 0, "rc %d", trusted.rc);
    cr_assert_eq(trusted.status, 200);
    cr_assert_gt(trusted.body_len, 0);
    cr_assert_eq(untrusted.rc, MK_EUPSTREAM);
    cr_assert_eq(untrusted.status, 0);
    cr_assert_eq(insecure.rc, 0, "rc %d", insecure.rc);
    cr_assert_eq(insecure.status, 200);
}

static uint64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Not a timing assertion: reports the per-call cost of the client on this machine
 * (wall time includes the test server's thread; CPU is the client loop's thread). */
Test(http_client, sequential_keep_alive_throughput)
{
    static struct seq s;
    int n = 10000;
    const char *e = getenv("MK_HTTPC_BENCH_N");
    if (e) n = (int)strtol(e, NULL, 10);
    s.left = n;
    uint64_t t0 = mk_now_us(), c0 = thread_cpu_us();
    seq_next(&s);
    run();
    uint64_t dt = mk_now_us() - t0, dc = thread_cpu_us() - c0;
    cr_assert_eq(s.ok, n);
    cr_assert_eq(atomic_load(&server->accepted), 1);
    fprintf(stderr, "http_client: %d sequential keep-alive calls: %.0f calls/s, %.1f us/call wall, "
            "%.1f us/call client CPU\n", n, n / ((double)dt / 1e6), (double)dt / n, (double)dc / n);

    /* 32 chains at once: 32 connections, calls overlap. */
    enum { CHAINS = 32 };
    static struct seq ch[CHAINS];
    t0 = mk_now_us();
    c0 = thread_cpu_us();
    for (int i = 0; i < CHAINS; i++) {
        ch[i].left = n / CHAINS;
        seq_next(&ch[i]);
    }
    run();
    dt = mk_now_us() - t0;
    dc = thread_cpu_us() - c0;
    int total = 0;
    for (int i = 0; i < CHAINS; i++) {
        cr_assert_eq(ch[i].failed, 0);
        total += ch[i].ok;
    }
    cr_assert_eq(total, n / CHAINS * CHAINS);
    cr_assert_leq(atomic_load(&server->accepted), 1 + CHAINS);
    fprintf(stderr, "http_client: %d calls over %d keep-alive chains: %.0f calls/s, %.1f us/call client CPU\n",
            total, CHAINS, total / ((double)dt / 1e6), (double)dc / total);
}

/* ---------------------------------------------------------------- connection handling */

/* Two calls one after the other (the second from the loop, not from on_done). */
static void two_calls(const char *p1, const char *p2, struct res *r1, struct res *r2)
{
    cr_assert_eq(start(p1, r1, false, NULL), 0);
    run();
    cr_assert_eq(start(p2, r2, false, NULL), 0);
    run();
}

Test(http_client, stale_keep_alive_connection_is_retried)
{
    static struct res r1, r2;
    two_calls("/drop-next", "/echo", &r1, &r2);
    cr_assert_eq(r1.rc, 0);
    cr_assert_eq(r1.body_len, 5);
    cr_assert_eq(r2.done, 1);
    cr_assert_eq(r2.rc, 0, "a reused connection closed before any reply byte is retried (rc %d)", r2.rc);
    cr_assert_eq(r2.status, 200);
    cr_assert_eq(atomic_load(&server->accepted), 2);
}

Test(http_client, connection_close_is_not_reused)
{
    static struct res r1, r2;
    two_calls("/close-hdr", "/echo", &r1, &r2);
    cr_assert_eq(r1.rc, 0);
    cr_assert_eq(r1.body_len, 3);
    cr_assert_eq(r2.rc, 0);
    cr_assert_eq(atomic_load(&server->accepted), 2);
}

Test(http_client, http10_body_delimited_by_close)
{
    static struct res r, r2;
    cr_assert_eq(start("/http10", &r, false, NULL), 0);
    cr_assert_eq(start("/http10", &r2, true, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, strlen("body until close"));
    cr_assert_eq(memcmp(r.body, "body until close", r.body_len), 0);
    cr_assert_eq(r2.rc, 0);
    cr_assert(has(&r2, "body until close"));
}

Test(http_client, chunk_extensions_and_trailers)
{
    static struct res r;
    cr_assert_eq(start("/trailers", &r, false, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.body_len, 11);
    cr_assert_eq(memcmp(r.body, "hello world", 11), 0);
}

static void check_trailer_headers(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    (void)status, (void)body;
    struct res *r = arg;
    r->done++;
    r->rc = rc;
    copy_slice(r->hdr_final, sizeof(r->hdr_final), mk_http_call_response_header(call, "X-Head"));
    copy_slice(r->hdr_interim, sizeof(r->hdr_interim), mk_http_call_response_header(call, "X-Trailer"));
}

Test(http_client, trailers_are_not_response_headers)
{
    static struct res r;
    cr_assert_eq(mk_http_call_start(client, &(struct mk_http_call_opts){
        .url = url("/trailers"), .on_done = check_trailer_headers, .arg = &r}, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.hdr_final, "h");
    cr_assert_str_eq(r.hdr_interim, "");
}

Test(http_client, stray_bytes_after_reply_are_not_reused)
{
    static struct res r1, r2;
    two_calls("/extra", "/echo", &r1, &r2);
    cr_assert_eq(r1.rc, 0);
    cr_assert_eq(r1.body_len, 2);
    cr_assert_eq(r2.rc, 0);
    cr_assert(has(&r2, "GET /echo"));
    cr_assert_eq(atomic_load(&server->accepted), 2);
}

Test(http_client, head_has_no_body)
{
    static struct res r, r2;
    struct mk_http_call_opts o = opts_for("/head", &r, false);
    o.method = "HEAD";
    o.total_timeout_ms = 5000;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 0);
    /* The connection is still good for the next call. */
    cr_assert_eq(start("/echo", &r2, false, NULL), 0);
    run();
    cr_assert_eq(r2.rc, 0);
    cr_assert_eq(atomic_load(&server->accepted), 1);
}

Test(http_client, localhost_and_header_overrides)
{
    static struct res r;
    char u[96];
    snprintf(u, sizeof(u), "http://LocalHost:%d/echo?q=1#fragment", server->port);
    struct mk_http_call_opts o = opts_for("/", &r, false);
    o.url = u;
    const char *hdrs[] = {"User-Agent: custom/1", "Accept:", "X-Empty;", "Host: example.test"};
    o.headers = hdrs;
    o.nheaders = 4;
    cr_assert_eq(mk_http_call_start(client, &o, NULL), 0);
    run();
    cr_assert_eq(r.rc, 0);
    cr_assert(has(&r, "GET /echo?q=1 HTTP/1.1\r\n"), "%.*s", (int)r.body_len, r.body);
    cr_assert(has(&r, "User-Agent: custom/1\r\n"));
    cr_assert(!has(&r, "mayak/"));
    cr_assert(!has(&r, "Accept:"));
    cr_assert(has(&r, "X-Empty:"));
    cr_assert(has(&r, "Host: example.test\r\n"));
    cr_assert(!has(&r, "fragment"));
}

#ifndef MK_HTTPC_FORCE_CURL
static bool native_target(const struct mk_http_call_opts *o, struct mk_http__target *t)
{
    size_t lens[8];
    for (size_t i = 0; i < o->nheaders; i++) lens[i] = mk_http__header_name_len(o->headers[i]);
    return mk_http__native_target(NULL, o, lens, t);
}

Test(http_client, native_routing)
{
    struct mk_http__target t;
    struct mk_http_call_opts o = {0};
    const char *yes[] = {"http://127.0.0.1:8000/v1/chat/completions", "http://localhost/x", "HTTP://10.0.0.1",
                         "http://[::1]:9000/v1?x=1#frag", "http://127.0.0.1:1?q"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        o.url = yes[i];
        cr_assert(native_target(&o, &t), "%s", yes[i]);
    }
    o.url = "http://[::1]:9000/v1?x=1#frag";
    cr_assert(native_target(&o, &t));
    cr_assert_eq(t.port, 9000);
    cr_assert(mk_slice_eq_cstr(t.host, "[::1]"));
    cr_assert(mk_slice_eq_cstr(t.path, "/v1?x=1"));
    const char *no[] = {"https://127.0.0.1/", "http://example.com/", "http://u:p@127.0.0.1/",
                        "http://127.0.0.1:0/", "http://127.0.0.1:70000/", "http://127.0.0.1:/",
                        "http://127.1/", "http://[fe80::1%25eth0]/", "http://127.0.0.1/a/../b",
                        "http://127.0.0.1/\xc3\xa9"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        o.url = no[i];
        cr_assert(!native_target(&o, &t), "%s", no[i]);
    }
    o.url = "http://127.0.0.1/";
    const char *framing[] = {"Accept-Encoding: gzip", "Transfer-Encoding: chunked", "Connection: close",
                             "Content-Length: 5", "Expect: 100-continue"};
    for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++) {
        o.headers = &framing[i];
        o.nheaders = 1;
        cr_assert(!native_target(&o, &t), "%s", framing[i]);
    }
    const char *fine[] = {"Expect:", "Accept-Encoding:", "Authorization: Bearer x"};
    o.headers = fine;
    o.nheaders = 3;
    cr_assert(native_target(&o, &t));
}

/* The idle pool: connections stay open after a burst, up to the cap, and a server
 * closing them is noticed without any call. */
Test(http_client, native_pool_keeps_and_drops_idle_connections)
{
    enum { N = 20 };
    static struct res r[N];
    for (int i = 0; i < N; i++) cr_assert_eq(start("/echo", &r[i], false, NULL), 0);
    run();
    for (int i = 0; i < N; i++) cr_assert_eq(r[i].rc, 0);
    size_t idle = 0;
    size_t open = mk_http__native_connections(NULL, &idle);
    cr_assert_eq(open, 0);
    cr_assert_eq(atomic_load(&server->accepted), N);
    /* Every connection came back to the pool; 20 more calls reuse them. */
    static struct res again[N];
    for (int i = 0; i < N; i++) cr_assert_eq(start("/echo", &again[i], false, NULL), 0);
    run();
    for (int i = 0; i < N; i++) cr_assert_eq(again[i].rc, 0);
    cr_assert_eq(atomic_load(&server->accepted), N);
}
#endif
