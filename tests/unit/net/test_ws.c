/* Unit tests for mk_ws (WebSocket on mk_http): a real server on 127.0.0.1 runs on a
 * libuv loop in a second thread; the test thread is a hand-written WebSocket client
 * on a blocking socket (receive timeouts keep every test from hanging), so the
 * frames on the wire are exactly what each test says. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "net/mk_http.h"
#include "net/mk_ws.h"

/* ---- the server fixture (loop thread) ------------------------------------------------ */

struct fx {
    uv_loop_t loop;
    mk_http_server *srv;
    uv_thread_t thread;
    uv_async_t async;
    uv_mutex_t mu;
    uv_cond_t cv;
    void (*job)(void *arg);
    void *job_arg;
    bool job_done;
    int port;
    struct mk_ws_opts opts;
    /* loop-thread state, read through jobs */
    mk_ws *ws;
    int opened, closed, last_code, texts, drained;
    bool handle_drain;
};

static struct fx F;

static void on_async(uv_async_t *a)
{
    uv_mutex_lock(&F.mu);
    void (*job)(void *) = F.job;
    void *arg = F.job_arg;
    F.job = NULL;
    uv_mutex_unlock(&F.mu);
    if (!job) return;
    job(arg);
    uv_mutex_lock(&F.mu);
    F.job_done = true;
    uv_cond_signal(&F.cv);
    uv_mutex_unlock(&F.mu);
}

static void on_loop(void (*fn)(void *), void *arg)
{
    uv_mutex_lock(&F.mu);
    F.job = fn;
    F.job_arg = arg;
    F.job_done = false;
    uv_async_send(&F.async);
    while (!F.job_done)
        if (uv_cond_timedwait(&F.cv, &F.mu, 10ull * 1000 * 1000 * 1000) != 0) break;
    bool ok = F.job_done;
    uv_mutex_unlock(&F.mu);
    cr_assert(ok, "loop job timed out");
}

static void ws_text(mk_ws *ws, const char *data, size_t len, void *arg)
{
    F.texts++;
    cr_assert_eq(data[len], '\0');
    if (strcmp(data, "close-me") == 0) {
        mk_ws_close(ws, 4000, "asked to");
        cr_assert_eq(mk_ws_send_text(ws, "late", 4), MK_ECANCELLED);
        return;
    }
    char out[600];
    int n = snprintf(out, sizeof out, "echo:%.*s", (int)(len > 500 ? 500 : len), data);
    mk_ws_send_text(ws, out, (size_t)n);
}

static void ws_close(mk_ws *ws, int code, void *arg)
{
    F.closed++;
    F.last_code = code;
    if (F.ws == ws) F.ws = NULL;
    cr_assert_eq(mk_ws_send_text(ws, "x", 1), MK_ECANCELLED);
}

static void ws_drain(mk_ws *ws, void *arg)
{
    F.drained++;
    mk_ws_close(ws, 1001, "bye for now");
}

static void handler(mk_http_req *req, void *ctx)
{
    const char *why = NULL;
    if (mk_ws_check_request(req, &why) != 0) {
        mk_http_respond(req, 400, NULL, 0, why, strlen(why));
        return;
    }
    struct mk_ws_handlers h = {.on_text = ws_text, .on_close = ws_close,
                               .on_drain = F.handle_drain ? ws_drain : NULL};
    int rc = mk_ws_accept(req, &F.opts, &h, NULL, &F.ws);
    if (rc != 0) {
        mk_http_respond(req, 500, NULL, 0, NULL, 0);
        return;
    }
    F.opened++;
}

static void loop_thread(void *arg) { uv_run(&F.loop, UV_RUN_DEFAULT); }

static void start(const struct mk_ws_opts *opts)
{
    memset(&F, 0, sizeof F);
    if (opts) F.opts = *opts;
    mk_log_set_level(MK_LOG_OFF);
    cr_assert_eq(uv_loop_init(&F.loop), 0);
    cr_assert_eq(uv_mutex_init(&F.mu), 0);
    cr_assert_eq(uv_cond_init(&F.cv), 0);
    cr_assert_eq(uv_async_init(&F.loop, &F.async, on_async), 0);
    cr_assert_eq(mk_http_server_new(&F.loop, NULL, handler, &F, &F.srv), 0);
    cr_assert_eq(mk_http_server_listen(F.srv, "127.0.0.1", 0), 0);
    F.port = mk_http_server_port(F.srv);
    cr_assert_eq(uv_thread_create(&F.thread, loop_thread, NULL), 0);
}

static void job_stop(void *arg)
{
    if (F.srv) mk_http_server_free(F.srv);
    F.srv = NULL;
    uv_close((uv_handle_t *)&F.async, NULL);
}

static void stop(void)
{
    on_loop(job_stop, NULL);
    uv_thread_join(&F.thread);
    cr_assert_eq(uv_loop_close(&F.loop), 0, "the loop still has handles");
    uv_mutex_destroy(&F.mu);
    uv_cond_destroy(&F.cv);
}

struct snap {
    int opened, closed, last_code, texts, drained;
    size_t conns;
};

static void job_snap(void *arg)
{
    struct snap *s = arg;
    s->opened = F.opened;
    s->closed = F.closed;
    s->last_code = F.last_code;
    s->texts = F.texts;
    s->drained = F.drained;
    s->conns = F.srv ? mk_http_server_connections(F.srv) : 0;
}

static struct snap snap(void)
{
    struct snap s;
    on_loop(job_snap, &s);
    return s;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define WAIT_FOR(pred)                                         \
    do {                                                       \
        int tries_ = 0;                                        \
        for (;;) {                                             \
            struct snap s = snap();                            \
            if (pred) break;                                   \
            cr_assert_lt(++tries_, 500, "timed out: " #pred);  \
            nap_ms(10);                                        \
        }                                                      \
    } while (0)

/* ---- the client (test thread) --------------------------------------------------------- */

static int connect_to(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send failed: %s", strerror(errno));
        c += w;
        n -= (size_t)w;
    }
}

static bool recv_exact(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = recv(fd, c, n, 0);
        if (r <= 0) return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

/* Reads the HTTP head of the answer (up to the blank line) into out. */
static void read_head(int fd, char *out, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, out + n, 1, 0);
        cr_assert_eq(r, 1, "no complete HTTP head");
        n++;
        out[n] = '\0';
        if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0) return;
    }
    cr_assert_fail("HTTP head too long");
}

#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* Builds one client frame (masked unless told otherwise). */
static size_t frame(unsigned char *out, bool fin, int opcode, const void *payload, size_t len, bool masked)
{
    size_t o = 0;
    out[o++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    unsigned char mbit = masked ? 0x80 : 0;
    if (len < 126) {
        out[o++] = (unsigned char)(mbit | len);
    } else if (len < 65536) {
        out[o++] = mbit | 126;
        out[o++] = (unsigned char)(len >> 8);
        out[o++] = (unsigned char)len;
    } else {
        out[o++] = mbit | 127;
        for (int i = 7; i >= 0; i--) out[o++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (masked) {
        memcpy(out + o, mask, 4);
        o += 4;
    }
    const unsigned char *p = payload;
    for (size_t i = 0; i < len; i++) out[o + i] = masked ? (unsigned char)(p[i] ^ mask[i % 4]) : p[i];
    return o + len;
}

static void send_frame(int fd, bool fin, int opcode, const void *payload, size_t len)
{
    unsigned char *buf = malloc(len + 16);
    size_t n = frame(buf, fin, opcode, payload, len, true);
    send_all(fd, buf, n);
    free(buf);
}

/* Reads one server frame: returns the payload length and sets *opcode, or -1 when the
 * connection closed or timed out. Server frames must never be masked. */
static long read_frame(int fd, int *opcode, char *payload, size_t cap)
{
    unsigned char h[2];
    if (!recv_exact(fd, h, 2)) return -1;
    cr_assert_eq(h[1] & 0x80, 0, "server frames are not masked");
    *opcode = h[0] & 0x0f;
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        unsigned char e[2];
        if (!recv_exact(fd, e, 2)) return -1;
        len = ((uint64_t)e[0] << 8) | e[1];
    } else if (len == 127) {
        unsigned char e[8];
        if (!recv_exact(fd, e, 8)) return -1;
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | e[i];
    }
    cr_assert_leq(len, cap, "frame larger than the test buffer");
    if (len && !recv_exact(fd, payload, (size_t)len)) return -1;
    if (len < cap) payload[len] = '\0';
    return (long)len;
}

/* Opens a WebSocket: returns the socket after a checked 101. */
static int ws_open(int rcvbuf)
{
    int fd = connect_to(F.port, rcvbuf);
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    char head[1024];
    read_head(fd, head, sizeof head);
    cr_assert(strncmp(head, "HTTP/1.1 101 ", 13) == 0, "got: %s", head);
    return fd;
}

static int close_code_of(const char *payload, long len)
{
    if (len < 2) return 0;
    return ((unsigned char)payload[0] << 8) | (unsigned char)payload[1];
}

/* Reads frames until a close frame (skipping pings); returns its code or -1. */
static int await_close(int fd)
{
    char buf[256];
    int op;
    for (int i = 0; i < 100; i++) {
        long n = read_frame(fd, &op, buf, sizeof buf);
        if (n < 0) return -1;
        if (op == 0x8) return close_code_of(buf, n);
    }
    return -1;
}

/* ---- tests ---------------------------------------------------------------------------- */

Test(ws, accept_key_matches_rfc_example)
{
    char out[29];
    cr_assert_eq(mk_ws_accept_key(mk_slice_cstr(SAMPLE_KEY), out), 0);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws, handshake_headers_and_echo)
{
    start(NULL);
    int fd = connect_to(F.port, 0);
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    char head[1024];
    read_head(fd, head, sizeof head);
    cr_assert(strstr(head, "HTTP/1.1 101 Switching Protocols\r\n") == head);
    cr_assert(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    cr_assert(strstr(head, "Upgrade: websocket\r\n"));
    cr_assert(strstr(head, "Connection: Upgrade\r\n"));
    cr_assert_null(strstr(head, "Content-Length"));
    send_frame(fd, true, 0x1, "привет", strlen("привет"));
    char buf[256];
    int op;
    long n = read_frame(fd, &op, buf, sizeof buf);
    cr_assert_eq(op, 0x1);
    cr_assert_str_eq(buf, "echo:привет");
    cr_assert_eq(n, (long)strlen("echo:привет"));
    close(fd);
    WAIT_FOR(s.closed == 1);
    cr_assert_eq(snap().last_code, 1006, "a dropped connection reports 1006");
    stop();
}

Test(ws, bad_handshakes_get_http_errors)
{
    start(NULL);
    const char *reqs[] = {
        "GET /c HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET /c HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
        "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n\r\n",
        "POST /c HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: " SAMPLE_KEY "\r\nContent-Length: 0\r\n\r\n",
        "GET /c HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: c2hvcnQ=\r\n\r\n",
        "GET /c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        int fd = connect_to(F.port, 0);
        send_all(fd, reqs[i], strlen(reqs[i]));
        char head[1024];
        read_head(fd, head, sizeof head);
        cr_assert(strncmp(head, "HTTP/1.1 400 ", 13) == 0, "case %zu: %s", i, head);
        close(fd);
    }
    cr_assert_eq(snap().opened, 0);
    stop();
}

Test(ws, frames_sent_with_the_handshake_are_not_lost)
{
    start(NULL);
    int fd = connect_to(F.port, 0);
    unsigned char buf[512];
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n\r\n";
    memcpy(buf, req, sizeof req - 1);
    size_t n = sizeof req - 1;
    n += frame(buf + n, true, 0x1, "one", 3, true);
    n += frame(buf + n, true, 0x1, "two", 3, true);
    send_all(fd, buf, n); /* one write: the frames arrive with the request */
    char head[1024];
    read_head(fd, head, sizeof head);
    cr_assert(strncmp(head, "HTTP/1.1 101 ", 13) == 0);
    char p[64];
    int op;
    cr_assert_geq(read_frame(fd, &op, p, sizeof p), 0);
    cr_assert_str_eq(p, "echo:one");
    cr_assert_geq(read_frame(fd, &op, p, sizeof p), 0);
    cr_assert_str_eq(p, "echo:two");
    close(fd);
    WAIT_FOR(s.closed == 1);
    stop();
}

Test(ws, fragmented_message_is_reassembled_and_pings_answered)
{
    start(NULL);
    int fd = ws_open(0);
    send_frame(fd, false, 0x1, "frag", 4);
    send_frame(fd, true, 0x9, "hi", 2); /* a control frame between fragments */
    send_frame(fd, false, 0x0, "men", 3);
    send_frame(fd, true, 0x0, "ted", 3);
    char p[64];
    int op;
    long n = read_frame(fd, &op, p, sizeof p);
    cr_assert_eq(op, 0xA, "pong first");
    cr_assert_eq(n, 2);
    cr_assert_str_eq(p, "hi");
    read_frame(fd, &op, p, sizeof p);
    cr_assert_eq(op, 0x1);
    cr_assert_str_eq(p, "echo:fragmented");
    close(fd);
    WAIT_FOR(s.closed == 1);
    stop();
}

Test(ws, client_close_is_answered_and_reported)
{
    start(NULL);
    int fd = ws_open(0);
    unsigned char code[2] = {0x03, 0xE8}; /* 1000 */
    send_frame(fd, true, 0x8, code, 2);
    cr_assert_eq(await_close(fd), 1000);
    char b;
    cr_assert_eq(recv(fd, &b, 1, 0), 0, "the server closes TCP after the handshake");
    close(fd);
    WAIT_FOR(s.closed == 1);
    cr_assert_eq(snap().last_code, 1000);
    stop();
}

Test(ws, server_close_sends_code_and_reason)
{
    start(NULL);
    int fd = ws_open(0);
    send_frame(fd, true, 0x1, "close-me", 8);
    char p[256];
    int op;
    long n = read_frame(fd, &op, p, sizeof p);
    cr_assert_eq(op, 0x8);
    cr_assert_eq(close_code_of(p, n), 4000);
    cr_assert_eq(n, 2 + 8);
    cr_assert(memcmp(p + 2, "asked to", 8) == 0);
    unsigned char code[2] = {0x0F, 0xA0};
    send_frame(fd, true, 0x8, code, 2);
    char b;
    cr_assert_eq(recv(fd, &b, 1, 0), 0);
    close(fd);
    WAIT_FOR(s.closed == 1);
    cr_assert_eq(snap().last_code, 4000);
    stop();
}

Test(ws, oversized_message_gets_1009)
{
    struct mk_ws_opts o = {.max_message_bytes = 1000};
    start(&o);
    int fd = ws_open(0);
    char big[2000];
    memset(big, 'a', sizeof big);
    send_frame(fd, true, 0x1, big, sizeof big);
    cr_assert_eq(await_close(fd), 1009);
    close(fd);
    WAIT_FOR(s.closed == 1);
    cr_assert_eq(snap().texts, 0);
    stop();
}

Test(ws, invalid_utf8_gets_1007)
{
    start(NULL);
    int fd = ws_open(0);
    send_frame(fd, true, 0x1, "\xc3\x28", 2);
    cr_assert_eq(await_close(fd), 1007);
    close(fd);
    WAIT_FOR(s.closed == 1);
    cr_assert_eq(snap().texts, 0);
    stop();
}

Test(ws, binary_gets_1003)
{
    start(NULL);
    int fd = ws_open(0);
    send_frame(fd, true, 0x2, "\x01\x02", 2);
    cr_assert_eq(await_close(fd), 1003);
    close(fd);
    WAIT_FOR(s.closed == 1);
    stop();
}

Test(ws, unmasked_client_frame_is_a_protocol_error)
{
    start(NULL);
    int fd = ws_open(0);
    unsigned char buf[32];
    size_t n = frame(buf, true, 0x1, "plain", 5, false);
    send_all(fd, buf, n);
    cr_assert_eq(await_close(fd), 1002);
    close(fd);
    WAIT_FOR(s.closed == 1);
    cr_assert_eq(snap().texts, 0);
    stop();
}

Test(ws, garbage_after_handshake_never_crashes)
{
    start(NULL);
    int fd = ws_open(0);
    unsigned char junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37 + 11);
    send_all(fd, junk, sizeof junk);
    int code = await_close(fd);
    cr_assert(code == 1002 || code == -1, "code %d", code);
    close(fd);
    WAIT_FOR(s.closed == 1);
    stop();
}

static void job_send_burst(void *arg)
{
    int *result = arg;
    static char msg[8192];
    memset(msg, 'z', sizeof msg);
    *result = 0;
    for (int i = 0; i < 100000 && F.ws; i++) {
        int rc = mk_ws_send_text(F.ws, msg, sizeof msg);
        if (rc == MK_EBUSY) {
            *result = i + 1;
            return;
        }
        cr_assert_eq(rc, 0);
    }
}

static void job_send_after(void *arg)
{
    int *rc = arg;
    *rc = F.ws ? mk_ws_send_text(F.ws, "after", 5) : MK_ECANCELLED;
}

Test(ws, slow_reader_hits_the_queue_cap_then_recovers)
{
    struct mk_ws_opts o = {.max_queue_bytes = 64 * 1024};
    start(&o);
    int fd = ws_open(4096);
    int accepted = 0;
    on_loop(job_send_burst, &accepted);
    cr_assert_gt(accepted, 0, "the sender was never told to back off");
    /* The reader catches up: every queued message arrives, then new ones go through. */
    static char p[9000];
    int op, got = 0;
    for (int i = 0; i < accepted - 1; i++) {
        long n = read_frame(fd, &op, p, sizeof p);
        cr_assert_eq(n, 8192, "message %d", i);
        got++;
    }
    cr_assert_eq(got, accepted - 1);
    int rc = -1;
    on_loop(job_send_after, &rc);
    cr_assert_eq(rc, 0);
    long n = read_frame(fd, &op, p, sizeof p);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(p, "after");
    close(fd);
    WAIT_FOR(s.closed == 1);
    stop();
}

Test(ws, silent_peer_is_pinged_then_dropped)
{
    struct mk_ws_opts o = {.ping_interval_ms = 50, .idle_timeout_ms = 200};
    start(&o);
    int fd = ws_open(0);
    char p[64];
    int op, pings = 0;
    for (;;) {
        long n = read_frame(fd, &op, p, sizeof p);
        if (n < 0) break; /* dropped */
        if (op == 0x9) pings++;
    }
    cr_assert_geq(pings, 1);
    close(fd);
    WAIT_FOR(s.closed == 1);
    cr_assert_eq(snap().last_code, 1006);
    stop();
}

Test(ws, pong_keeps_a_quiet_peer_alive)
{
    struct mk_ws_opts o = {.ping_interval_ms = 50, .idle_timeout_ms = 200};
    start(&o);
    int fd = ws_open(0);
    char p[64];
    int op;
    for (int pings = 0; pings < 8;) { /* well past the idle timeout, answering each ping */
        long n = read_frame(fd, &op, p, sizeof p);
        cr_assert_geq(n, 0, "dropped although the peer answered pings");
        if (op == 0x9) {
            send_frame(fd, true, 0xA, p, (size_t)n);
            pings++;
        }
    }
    cr_assert_eq(snap().closed, 0);
    close(fd);
    WAIT_FOR(s.closed == 1);
    stop();
}

static void job_drain(void *arg) { mk_http_server_drain(F.srv, NULL, NULL); }

Test(ws, drain_tells_the_owner_and_closes)
{
    start(NULL);
    F.handle_drain = true;
    int fd = ws_open(0);
    on_loop(job_drain, NULL);
    cr_assert_eq(await_close(fd), 1001);
    unsigned char code[2] = {0x03, 0xE9};
    send_frame(fd, true, 0x8, code, 2);
    char b;
    cr_assert_eq(recv(fd, &b, 1, 0), 0);
    close(fd);
    WAIT_FOR(s.closed == 1 && s.conns == 0);
    cr_assert_eq(snap().drained, 1);
    stop();
}

Test(ws, drain_without_handler_says_going_away)
{
    start(NULL);
    int fd = ws_open(0);
    on_loop(job_drain, NULL);
    cr_assert_eq(await_close(fd), 1001);
    close(fd); /* never answers: the server cuts it off after its wait */
    WAIT_FOR(s.closed == 1 && s.conns == 0);
    stop();
}

Test(ws, server_free_closes_open_sockets)
{
    start(NULL);
    int fd = ws_open(0);
    WAIT_FOR(s.opened == 1);
    stop(); /* frees the server with the ws open: on_close runs, nothing leaks */
    cr_assert_eq(F.closed, 1);
    char b;
    cr_assert_leq(recv(fd, &b, 1, 0), 0);
    close(fd);
}

Test(ws, plain_http_still_works_beside_websockets)
{
    start(NULL);
    int ws = ws_open(0);
    int fd = connect_to(F.port, 0);
    static const char req[] = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    char head[1024];
    read_head(fd, head, sizeof head);
    cr_assert(strncmp(head, "HTTP/1.1 400 ", 13) == 0, "the fixture answers non-WebSocket requests 400");
    close(fd);
    close(ws);
    WAIT_FOR(s.closed == 1);
    stop();
}
