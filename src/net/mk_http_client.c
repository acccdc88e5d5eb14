/*
 * mk_http_client: the upstream HTTP(S) client (contract in mk_http_client.h).
 *
 * libcurl's multi socket API is driven by the libuv loop: curl tells us which sockets
 * to watch (sock_cb -> one uv_poll_t per socket) and when it next needs to run
 * (timer_cb -> one uv_timer_t, or a uv_idle_t for "as soon as possible"); we call
 * curl_multi_socket_action() when either fires and then collect finished transfers.
 *
 * Three rules keep the callbacks safe:
 *  - Nothing that changes the multi (add/remove a handle, clean up) happens while curl
 *    is running one of our callbacks (c->in_curl). A cancel or a start requested there
 *    is queued and carried out right after curl_multi_socket_action() returns.
 *  - Handle memory is freed only in uv_close callbacks, never inside a curl callback.
 *  - mk_http_client_free() asked for while we are dispatching (c->busy) is finished
 *    when the dispatch unwinds.
 *
 * Per-call objects (easy handle, timer, buffers) are pooled: a keep-alive call then
 * costs one curl_easy_reset and a few setopts, no allocation, no new connection.
 *
 * This file is also the dispatcher: plain http:// calls that the native HTTP/1.1 path
 * can serve exactly as libcurl would (mk_http__native_target) go there
 * (mk_http_client_native.c); https, proxies, host names, credentials in URLs and
 * compressed replies stay here. MAYAK_UPSTREAM_CLIENT=curl in the environment (read
 * when a client is created) or mk_http_client_set_native(c, false) sends everything
 * to libcurl.
 *
 * Proxies: the environment (http_proxy, https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY,
 * no_proxy/NO_PROXY, with libcurl's precedence) is read once when the client is
 * created and handed to libcurl explicitly, which otherwise calls getenv several
 * times per transfer.
 */
#include "net/mk_http_client.h"
#include "net/mk_http_client_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "net/mk_busy_poll.h"

/* Idle call objects kept for reuse; more than this are freed. A burst above it costs
 * allocations again, never correctness. */
#define POOL_MAX MK_HTTP__CALL_POOL_MAX
/* Idle connections kept in the cache over all hosts: a few providers, each allowed
 * MK_UPSTREAM_MAX_HOST_CONNECTIONS. curl's own default (4 x handles in use) would
 * drop most of a burst's connections as soon as the burst ends. */
#define MAX_CACHED_CONNECTIONS MK_UPSTREAM_MAX_IDLE_CONNECTIONS
#define MAX_RESPONSE_HEADER_BYTES MK_HTTP__MAX_RESPONSE_HEADER_BYTES
#define KEEP_BUF_BYTES MK_HTTP__KEEP_BUF_BYTES
/* Request header lines per call, caller's plus ours. */
#define MAX_REQUEST_HEADERS 128

/* One socket curl asked us to watch. */
struct sock {
    uv_poll_t poll;
    mk_http_client *c;
    curl_socket_t fd;
    int events;                /* UV_READABLE | UV_WRITABLE we were asked for */
    struct sock *prev, *next;  /* c->socks */
};

struct mk_http_call {
    struct mk_http__call_head head;   /* native = false: a libcurl call */
    mk_http_client *c;
    CURL *easy;
    uv_timer_t timer;             /* first-byte and idle-gap deadline */
    mk_http_call *prev, *next;    /* c->active, or c->pool (next only) */
    mk_http_call *later;          /* c->reap, c->adds or c->fails */

    /* Request: header lines, each NUL-terminated, and the curl_slist nodes over them
     * (our own array, so building the list costs no allocation once warm). */
    mk_buf req_hdrs;
    struct curl_slist *nodes;
    size_t nodes_cap;
    mk_buf req_body;

    void (*on_response)(mk_http_call *, int, void *);
    void (*on_data)(mk_http_call *, const char *, size_t, void *);
    void (*on_done)(mk_http_call *, int, int, mk_slice, void *);
    void *arg;
    uint32_t first_byte_ms, idle_ms;

    /* Response. */
    mk_buf body;                  /* buffered body when on_data is NULL */
    mk_buf hdrs;                  /* "Name: value\n" lines of the last response */
    int status;
    int fail_rc;                  /* our own reason for aborting the transfer */
    uint64_t start_us, connect_us, first_byte_us, headers_us;
    uint64_t last_data_ms;        /* loop time of the latest body bytes */
    bool headers_done, got_body, cancelled, done, in_multi, queued, failing;
    char errbuf[CURL_ERROR_SIZE];
};

struct mk_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;             /* curl's timeout */
    uv_idle_t kick;               /* curl's "timeout 0": run on the next loop turn */
    struct sock *socks;
    mk_http_call *active;         /* started and not finished */
    size_t nactive;
    mk_http_call *pool;
    size_t npool;
    mk_http_call *reap;           /* cancelled inside a curl callback */
    mk_http_call *adds;           /* started inside a curl callback */
    mk_http_call *fails;          /* failed by us inside a curl callback (socket setup) */
    int in_curl;                  /* inside curl_multi_socket_action */
    int busy;                     /* inside any dispatch that may run user callbacks */
    size_t closing;               /* uv handles whose close callback is pending */
    bool free_requested, freeing, warned_insecure;

    mk_http__native *native;      /* the plain-HTTP fast path; NULL after free */
    bool native_on;
    /* Proxy settings from the environment, read once (NULL = none). */
    char *http_proxy, *https_proxy, *no_proxy;
};

/* --- global init ------------------------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* --- freeing ---------------------------------------------------------------- */

static void maybe_finish_free(mk_http_client *c)
{
    if (!c->freeing || c->closing) return;
    free(c->http_proxy);
    free(c->https_proxy);
    free(c->no_proxy);
    free(c);
}

static void client_handle_closed(uv_handle_t *h)
{
    mk_http_client *c = h->data;
    c->closing--;
    maybe_finish_free(c);
}

static void call_closed(uv_handle_t *h)
{
    mk_http_call *call = h->data;
    mk_http_client *c = call->c;
    free(call);
    c->closing--;
    maybe_finish_free(c);
}

/* Frees a call that is in no list and not in the multi. */
static void call_destroy(mk_http_call *call)
{
    curl_easy_cleanup(call->easy);
    call->easy = NULL;
    mk_buf_release(&call->req_hdrs);
    mk_buf_release(&call->req_body);
    mk_buf_release(&call->body);
    mk_buf_release(&call->hdrs);
    free(call->nodes);
    call->nodes = NULL;
    call->c->closing++;
    uv_close((uv_handle_t *)&call->timer, call_closed);
}

static void trim_buf(mk_buf *b)
{
    if (b->cap > KEEP_BUF_BYTES) mk_buf_release(b);
    else mk_buf_reset(b);
}

/* The call is finished or cancelled and out of the multi: unlink it and put it back
 * in the pool (or free it). */
static void call_recycle(mk_http_call *call)
{
    mk_http_client *c = call->c;
    uv_timer_stop(&call->timer);
    if (call->prev) call->prev->next = call->next;
    else c->active = call->next;
    if (call->next) call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->nactive--;

    if (c->freeing || c->npool >= POOL_MAX) {
        call_destroy(call);
        return;
    }
    trim_buf(&call->req_hdrs);
    trim_buf(&call->req_body);
    trim_buf(&call->body);
    trim_buf(&call->hdrs);
    call->on_response = NULL;
    call->on_data = NULL;
    call->on_done = NULL;
    call->arg = NULL;
    call->next = c->pool;
    c->pool = call;
    c->npool++;
}

/* --- socket and timer plumbing (curl -> libuv) ------------------------------ */

static void drive(mk_http_client *c, curl_socket_t fd, int flags);

static void sock_closed(uv_handle_t *h)
{
    struct sock *sk = h->data;
    mk_http_client *c = sk->c;
    free(sk);
    c->closing--;
    maybe_finish_free(c);
}

/* Stops watching at once (uv_close stops the poll synchronously, so the fd number is
 * free for a new socket right away); the memory goes in the close callback. */
static void sock_close(mk_http_client *c, struct sock *sk)
{
    if (sk->prev) sk->prev->next = sk->next;
    else c->socks = sk->next;
    if (sk->next) sk->next->prev = sk->prev;
    sk->prev = sk->next = NULL;
    c->closing++;
    uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct sock *sk = h->data;
    mk_http_client *c = sk->c;
    int flags = 0;
    mk_busy_poll_touch();
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    /* sk's memory stays valid through drive(): it is freed only in a close callback,
     * which runs in a later loop phase. */
    bool restart = status < 0;
    drive(c, sk->fd, flags);
    /* libuv stops a poll handle that reported an error; if curl still wants the
     * socket (it did not say REMOVE), watch it again so the transfer cannot stall. */
    if (restart && !uv_is_closing((uv_handle_t *)&sk->poll) && sk->events &&
        !uv_is_active((uv_handle_t *)&sk->poll))
        uv_poll_start(&sk->poll, sk->events, poll_cb);
}

/* A socket we cannot watch dooms its transfer only: returning -1 to curl would abort
 * every transfer of the multi. The call fails with MK_EUPSTREAM once curl returns. */
static void fail_transfer(mk_http_client *c, CURL *easy)
{
    char *priv = NULL;
    if (!easy || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv) return;
    mk_http_call *call = (mk_http_call *)(void *)priv;
    if (call->failing || call->cancelled || call->done) return;
    call->failing = true;
    call->later = c->fails;
    c->fails = call;
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    mk_http_client *c = userp;
    struct sock *sk = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (sk) sock_close(c, sk);
        return 0;
    }
    if (c->freeing) return 0;
    if (sk && sk->fd != s) {   /* defensive: a socketp that belongs to another fd */
        sock_close(c, sk);
        sk = NULL;
    }
    if (!sk) {
        /* A watcher left on this fd number (its socket closed without a REMOVE) would
         * make uv_poll_init fail with EEXIST and never see the new socket's events. */
        for (struct sock *x = c->socks; x; x = x->next) {
            if (x->fd == s) {
                sock_close(c, x);
                break;
            }
        }
        sk = calloc(1, sizeof(*sk));
        int rc = sk ? uv_poll_init_socket(c->loop, &sk->poll, s) : UV_ENOMEM;
        if (rc < 0) {
            mk_log(MK_LOG_ERROR, "upstream_poll_init_failed", "error", uv_strerror(rc), NULL);
            free(sk);
            fail_transfer(c, easy);
            return 0;
        }
        sk->poll.data = sk;
        sk->c = c;
        sk->fd = s;
        sk->next = c->socks;
        if (c->socks) c->socks->prev = sk;
        c->socks = sk;
        curl_multi_assign(c->multi, s, sk);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    sk->events = ev;
    int rc = ev ? uv_poll_start(&sk->poll, ev, poll_cb) : uv_poll_stop(&sk->poll);
    if (rc < 0) {
        mk_log(MK_LOG_ERROR, "upstream_poll_start_failed", "error", uv_strerror(rc), NULL);
        fail_transfer(c, easy);
    }
    return 0;
}

static void curl_timer_fired(uv_timer_t *t) { drive(t->data, CURL_SOCKET_TIMEOUT, 0); }

static void kick_fired(uv_idle_t *h)
{
    uv_idle_stop(h);
    drive(h->data, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    mk_http_client *c = userp;
    if (c->freeing) return 0;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
        uv_idle_stop(&c->kick);
    } else if (timeout_ms == 0) {
        /* "Now" must not mean "inside this curl callback". An idle handle runs on the
         * next loop turn, after I/O polling; a 0 ms uv_timer could instead re-fire
         * within the same timer phase over and over (libuv 1.44) and starve I/O. */
        uv_timer_stop(&c->timer);
        uv_idle_start(&c->kick, kick_fired);
    } else {
        uv_idle_stop(&c->kick);
        uv_timer_start(&c->timer, curl_timer_fired, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

/* --- finishing calls -------------------------------------------------------- */

static void do_free(mk_http_client *c);

static void leave(mk_http_client *c)
{
    if (--c->busy == 0 && c->free_requested && !c->freeing) do_free(c);
}

/* Ends a call that is out of the multi: on_done (unless the client is going away),
 * then back to the pool. */
static void call_finish(mk_http_call *call, int rc)
{
    mk_http_client *c = call->c;
    call->done = true;
    uv_timer_stop(&call->timer);
    if (call->on_done && !call->cancelled && !c->free_requested) {
        if (call->got_body == false && call->headers_done && call->first_byte_us == 0)
            call->first_byte_us = call->headers_us;   /* an empty body: the headers were the first bytes */
        mk_slice body = {"", 0};
        if (rc == 0 && !call->on_data) body = mk_buf_slice(&call->body);
        call->on_done(call, rc, call->status, body, call->arg);
    }
    call_recycle(call);
}

static int map_result(mk_http_call *call, CURLcode res)
{
    if (call->fail_rc) return call->fail_rc;
    if (res == CURLE_OK) return 0;
    if (mk_log_min_level <= MK_LOG_DEBUG) {
        char *ip = NULL;
        long port = 0;
        curl_easy_getinfo(call->easy, CURLINFO_PRIMARY_IP, &ip);
        curl_easy_getinfo(call->easy, CURLINFO_PRIMARY_PORT, &port);
        char portbuf[16];
        snprintf(portbuf, sizeof(portbuf), "%ld", port);
        /* No URL: query strings of some providers carry API keys. */
        mk_log(MK_LOG_DEBUG, "upstream_transfer_failed", "curl", curl_easy_strerror(res),
               "detail", call->errbuf, "ip", ip ? ip : "", "port", portbuf, NULL);
    }
    return res == CURLE_OPERATION_TIMEDOUT ? MK_EUPSTREAM_TIMEOUT : MK_EUPSTREAM;
}

/* Calls cancelled inside a curl callback leave the multi here. */
static void flush_reap(mk_http_client *c)
{
    mk_http_call *call;
    while ((call = c->reap)) {
        c->reap = call->later;
        call->later = NULL;
        if (call->in_multi) {
            curl_multi_remove_handle(c->multi, call->easy);
            call->in_multi = false;
        }
        call_recycle(call);
    }
}

/* Calls whose socket could not be watched end here. */
static void flush_fails(mk_http_client *c)
{
    mk_http_call *call;
    while ((call = c->fails)) {
        c->fails = call->later;
        call->later = NULL;
        if (call->in_multi) {
            curl_multi_remove_handle(c->multi, call->easy);
            call->in_multi = false;
        }
        if (call->cancelled) call_recycle(call);
        else call_finish(call, MK_EUPSTREAM);
    }
}

/* Calls started inside a curl callback join the multi here. */
static void flush_adds(mk_http_client *c)
{
    mk_http_call *call;
    while ((call = c->adds)) {
        c->adds = call->later;
        call->later = NULL;
        call->queued = false;
        if (call->cancelled) {
            call_recycle(call);
        } else if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
            mk_log(MK_LOG_ERROR, "upstream_add_failed", NULL);
            call_finish(call, MK_EUPSTREAM);
        } else {
            call->in_multi = true;
        }
    }
}

static void read_done(mk_http_client *c)
{
    CURLMsg *m;
    int left;
    while (!c->free_requested && (m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *easy = m->easy_handle;
        CURLcode res = m->data.result;   /* m is invalid once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        mk_http_call *call = (mk_http_call *)(void *)priv;
        curl_multi_remove_handle(c->multi, easy);
        call->in_multi = false;
        if (call->cancelled) call_recycle(call);
        else call_finish(call, map_result(call, res));
    }
}

static void drive(mk_http_client *c, curl_socket_t fd, int flags)
{
    int running = 0;
    c->busy++;
    c->in_curl++;
    CURLMcode mc = curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    if (mc != CURLM_OK)
        mk_log(MK_LOG_ERROR, "upstream_socket_action_failed", "error", curl_multi_strerror(mc), NULL);
    if (!c->free_requested) {
        flush_reap(c);
        flush_fails(c);
        flush_adds(c);
        read_done(c);
    }
    leave(c);
}

/* First-byte and idle-gap deadlines. Body bytes only record the time; the timer
 * re-arms itself here for what is left, so a busy stream costs no timer work. */
static void call_timer_fired(uv_timer_t *t)
{
    mk_http_call *call = t->data;
    mk_http_client *c = call->c;
    if (call->got_body) {
        if (!call->idle_ms) return;
        uint64_t now = uv_now(c->loop), deadline = call->last_data_ms + call->idle_ms;
        if (now < deadline) {
            uv_timer_start(&call->timer, call_timer_fired, deadline - now, 0);
            return;
        }
    }
    c->busy++;
    if (call->in_multi) {
        curl_multi_remove_handle(c->multi, call->easy);
        call->in_multi = false;
    }
    call_finish(call, MK_EUPSTREAM_TIMEOUT);
    leave(c);
}

/* --- curl easy callbacks (run inside curl_multi_socket_action) --------------- */

static int prereq_cb(void *clientp, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    (void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
    mk_http_call *call = clientp;
    if (!call->connect_us) {
        uint64_t d = mk_now_us() - call->start_us;
        call->connect_us = d ? d : 1;
    }
    return CURL_PREREQFUNC_OK;
}

static bool callbacks_off(const mk_http_call *call)
{
    return call->cancelled || call->c->free_requested;
}

/* Parses "HTTP/x.y NNN ..." (or "HTTP/2 NNN"); 0 when malformed. */
static int parse_status(const char *line, size_t len)
{
    size_t i = 5;
    while (i < len && line[i] != ' ') i++;
    while (i < len && line[i] == ' ') i++;
    if (len - i < 3) return 0;
    int st = 0;
    for (size_t k = 0; k < 3; k++) {
        char ch = line[i + k];
        if (ch < '0' || ch > '9') return 0;
        st = st * 10 + (ch - '0');
    }
    return st;
}

static bool headers_complete(mk_http_call *call)
{
    call->headers_done = true;
    uint64_t d = mk_now_us() - call->start_us;
    call->headers_us = d ? d : 1;
    if (!call->on_data) {
        /* Refuse an announced oversized body before reading any of it. */
        mk_slice cl = mk_http_call_response_header(call, "Content-Length");
        if (cl.len) {
            char tmp[32];
            if (cl.len < sizeof(tmp)) {
                memcpy(tmp, cl.ptr, cl.len);
                tmp[cl.len] = '\0';
                char *end = NULL;
                unsigned long long n = strtoull(tmp, &end, 10);
                if (end && *end == '\0' && tmp[0] != '-' && n > call->body.max) {
                    call->fail_rc = MK_ETOOBIG;
                    return false;
                }
            }
        }
    }
    if (call->on_response) {
        call->on_response(call, call->status, call->arg);
        if (callbacks_off(call)) return false;
    }
    return true;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userp)
{
    mk_http_call *call = userp;
    size_t len = size * n;
    if (callbacks_off(call)) return 0;
    if (call->headers_done) return len;   /* trailers: not part of the response headers */
    size_t l = len;
    while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r')) l--;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A new response begins (after a 1xx): forget the previous one's headers. */
        mk_buf_reset(&call->hdrs);
        call->status = parse_status(buf, l);
        return len;
    }
    if (l == 0) {
        if (call->status >= 200 || call->status == 101 || call->status == 0)
            return headers_complete(call) ? len : 0;
        return len;   /* end of an interim 1xx response */
    }
    if (mk_buf_append(&call->hdrs, buf, l) != 0 || mk_buf_append_char(&call->hdrs, '\n') != 0) {
        mk_log(MK_LOG_WARN, "upstream_headers_too_big", NULL);
        call->fail_rc = MK_EUPSTREAM;
        return 0;
    }
    return len;
}

static size_t write_cb(char *ptr, size_t size, size_t n, void *userp)
{
    mk_http_call *call = userp;
    size_t len = size * n;
    if (callbacks_off(call)) return CURL_WRITEFUNC_ERROR;
    if (!call->headers_done && !headers_complete(call)) return CURL_WRITEFUNC_ERROR;
    call->last_data_ms = uv_now(call->c->loop);
    if (!call->got_body) {
        call->got_body = true;
        uint64_t d = mk_now_us() - call->start_us;
        call->first_byte_us = d ? d : 1;
        if (call->idle_ms) uv_timer_start(&call->timer, call_timer_fired, call->idle_ms, 0);
        else uv_timer_stop(&call->timer);
    }
    if (call->on_data) {
        call->on_data(call, ptr, len, call->arg);
        if (callbacks_off(call)) return CURL_WRITEFUNC_ERROR;
        return len;
    }
    int rc = mk_buf_append(&call->body, ptr, len);
    if (rc) {
        if (rc != MK_ETOOBIG) mk_log(MK_LOG_ERROR, "upstream_body_nomem", NULL);
        call->fail_rc = rc == MK_ETOOBIG ? MK_ETOOBIG : MK_EUPSTREAM;
        return CURL_WRITEFUNC_ERROR;
    }
    return len;
}

/* --- proxies --------------------------------------------------------------- */

static int dup_env(char **dst, const char *a, const char *b)
{
    const char *v = getenv(a);
    if ((!v || !*v) && b) v = getenv(b);
    if (!v || !*v) return 0;
    *dst = strdup(v);
    return *dst ? 0 : MK_ENOMEM;
}

/* libcurl's own lookup, once: http_proxy is lower case only (a CGI environment sets
 * HTTP_PROXY from a request header), the others either case; all_proxy for both. */
static int read_proxy_env(mk_http_client *c)
{
    char *all = NULL;
    int rc = dup_env(&c->http_proxy, "http_proxy", NULL);
    if (!rc) rc = dup_env(&c->https_proxy, "https_proxy", "HTTPS_PROXY");
    if (!rc) rc = dup_env(&c->no_proxy, "no_proxy", "NO_PROXY");
    if (!rc) rc = dup_env(&all, "all_proxy", "ALL_PROXY");
    if (!rc && all && !c->http_proxy) rc = (c->http_proxy = strdup(all)) ? 0 : MK_ENOMEM;
    if (!rc && all && !c->https_proxy) rc = (c->https_proxy = strdup(all)) ? 0 : MK_ENOMEM;
    free(all);
    return rc;
}

/* Whether no_proxy surely exempts `host` from the proxy: "*", or an entry equal to
 * the host or a domain suffix of it. Anything subtler (CIDR ranges) answers false,
 * which only sends the call through libcurl, whose own check then decides. */
static bool no_proxy_exempts(const char *no_proxy, mk_slice host)
{
    if (!no_proxy) return false;
    if (host.len > 2 && host.ptr[0] == '[') host = (mk_slice){host.ptr + 1, host.len - 2};
    const char *p = no_proxy;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ') e++;
        mk_slice tok = {p, (size_t)(e - p)};
        p = e;
        if (tok.len == 1 && tok.ptr[0] == '*') return true;
        if (tok.len && tok.ptr[0] == '.') tok = (mk_slice){tok.ptr + 1, tok.len - 1};
        if (!tok.len || tok.len > host.len) continue;
        mk_slice tail = {host.ptr + host.len - tok.len, tok.len};
        if (mk_slice_eq_nocase(tail, tok) && (tok.len == host.len || tail.ptr[-1] == '.')) return true;
    }
    return false;
}

/* --- client ----------------------------------------------------------------- */

int mk_http_client_new(uv_loop_t *loop, mk_http_client **out)
{
    if (!loop || !out) return MK_EINVAL;
    *out = NULL;
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK) {
        mk_log(MK_LOG_ERROR, "curl_global_init_failed", "error", curl_easy_strerror(g_init_rc), NULL);
        return MK_EINTERNAL;
    }
    mk_http_client *c = calloc(1, sizeof(*c));
    if (!c) return MK_ENOMEM;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return MK_ENOMEM;
    }
    CURLMcode mc = CURLM_OK;
    if (!mc) mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    if (!mc) mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    if (!mc) mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    if (!mc) mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if (!mc) mc = curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)MK_UPSTREAM_MAX_HOST_CONNECTIONS);
    if (!mc) mc = curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CACHED_CONNECTIONS);
    if (mc) {
        mk_log(MK_LOG_ERROR, "curl_multi_setopt_failed", "error", curl_multi_strerror(mc), NULL);
        curl_multi_cleanup(c->multi);
        free(c);
        return MK_EINTERNAL;
    }
    if (read_proxy_env(c) != 0 || mk_http__native_new(loop, &c->native) != 0) {
        curl_multi_cleanup(c->multi);
        free(c->http_proxy);
        free(c->https_proxy);
        free(c->no_proxy);
        free(c);
        return MK_ENOMEM;
    }
    const char *mode = getenv("MAYAK_UPSTREAM_CLIENT");
    c->native_on = !(mode && strcmp(mode, "curl") == 0);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_idle_init(loop, &c->kick);
    c->kick.data = c;
    *out = c;
    return 0;
}

void mk_http_client_set_native(mk_http_client *c, bool on)
{
    if (c) c->native_on = on;
}

/* Everything is cancelled without callbacks; the client's memory goes with the last
 * close callback. */
static void do_free(mk_http_client *c)
{
    c->freeing = true;
    c->reap = NULL;    /* every entry is also on c->active, handled below */
    c->adds = NULL;
    c->fails = NULL;
    while (c->active) {
        mk_http_call *call = c->active;
        call->cancelled = true;
        call->queued = false;
        if (call->in_multi) {
            curl_multi_remove_handle(c->multi, call->easy);
            call->in_multi = false;
        }
        call_recycle(call);   /* destroys, since c->freeing */
    }
    while (c->pool) {
        mk_http_call *call = c->pool;
        c->pool = call->next;
        call->next = NULL;
        c->npool--;
        call_destroy(call);
    }
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks) sock_close(c, c->socks);
    c->closing += 2;
    uv_close((uv_handle_t *)&c->timer, client_handle_closed);
    uv_close((uv_handle_t *)&c->kick, client_handle_closed);
}

void mk_http_client_free(mk_http_client *c)
{
    if (!c || c->free_requested) return;
    c->free_requested = true;
    mk_http__native_free(c->native);   /* defers itself if inside its own dispatch */
    c->native = NULL;
    for (mk_http_call *call = c->active; call; call = call->next) call->cancelled = true;
    if (c->busy) return;   /* finished by leave() when the dispatch unwinds */
    do_free(c);
}

size_t mk_http_client_active(const mk_http_client *c)
{
    return c ? c->nactive + mk_http__native_active(c->native) : 0;
}

/* --- starting a call -------------------------------------------------------- */

/* RFC 9110 token characters; a table because every header line of every call is
 * checked. */
static const bool tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

static bool is_tchar(unsigned char ch) { return tchar[ch]; }

static bool valid_method(const char *m)
{
    size_t n = 0;
    for (; m[n]; n++)
        if (!is_tchar((unsigned char)m[n])) return false;
    return n > 0 && n <= 32;
}

static bool has_prefix_nocase(const char *s, const char *p)
{
    size_t n = strlen(p);
    return strlen(s) >= n && mk_slice_eq_nocase((mk_slice){s, n}, (mk_slice){p, n});
}

/* http(s) only, no spaces or control bytes (they would be sent as-is or smuggle a
 * second request line). */
static bool valid_url(const char *u)
{
    if (!has_prefix_nocase(u, "http://") && !has_prefix_nocase(u, "https://")) return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return false;
    return true;
}

/* "Name: value", "Name:" (removes a header curl would add) or "Name;" (sends it empty,
 * curl's convention). Returns the name's length, 0 when invalid. */
size_t mk_http__header_name_len(const char *h)
{
    size_t i = 0;
    while (is_tchar((unsigned char)h[i])) i++;
    if (i == 0 || (h[i] != ':' && h[i] != ';')) return 0;
    if (h[i] == ';' && h[i + 1] != '\0') return 0;
    if (h[i + strcspn(h + i, "\r\n")] != '\0') return 0;
    return i;
}

static bool name_is(const char *h, size_t n, const char *name)
{
    return mk_slice_eq_nocase((mk_slice){h, n}, mk_slice_cstr(name));
}

static int add_line(mk_http_call *call, const char *s, size_t len)
{
    int rc = mk_buf_append(&call->req_hdrs, s, len);
    if (!rc) rc = mk_buf_append_char(&call->req_hdrs, '\0');
    return rc;
}

/* Builds the request header list: the caller's lines, then "Expect:" (no 100-continue
 * round trip) and, for a body without a Content-Type, "Content-Type:" so curl does
 * not claim a form. An Accept-Encoding line becomes CURLOPT_ACCEPT_ENCODING so curl
 * decodes the body: callers always see plain bytes. */
static int build_headers(mk_http_call *call, const struct mk_http_call_opts *o, bool has_body,
                         const char **accept_encoding)
{
    bool have_ct = false;
    *accept_encoding = NULL;
    if (o->nheaders > MAX_REQUEST_HEADERS - 2) return MK_EINVAL;
    for (size_t i = 0; i < o->nheaders; i++) {
        const char *h = o->headers[i];
        if (!h) return MK_EINVAL;
        size_t n = mk_http__header_name_len(h);
        if (!n) return MK_EINVAL;
        if (name_is(h, n, "Content-Type")) have_ct = true;
        if (name_is(h, n, "Accept-Encoding") && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ' || *v == '\t') v++;
            if (*v) {
                *accept_encoding = v;   /* o->headers outlives setup; curl copies it */
                continue;
            }
        }
        int rc = add_line(call, h, strlen(h));
        if (rc) return rc;
    }
    int rc = add_line(call, "Expect:", 7);
    if (!rc && has_body && !have_ct) rc = add_line(call, "Content-Type:", 13);
    if (rc) return rc;

    size_t count = 0;
    for (size_t i = 0; i < call->req_hdrs.len; i++)
        if (call->req_hdrs.data[i] == '\0') count++;
    if (count > call->nodes_cap) {
        struct curl_slist *nodes = realloc(call->nodes, count * sizeof(*nodes));
        if (!nodes) return MK_ENOMEM;
        call->nodes = nodes;
        call->nodes_cap = count;
    }
    char *p = call->req_hdrs.data;
    for (size_t i = 0; i < count; i++) {
        call->nodes[i].data = p;
        call->nodes[i].next = i + 1 < count ? &call->nodes[i + 1] : NULL;
        p += strlen(p) + 1;
    }
    return 0;
}

static mk_http_call *call_get(mk_http_client *c)
{
    mk_http_call *call = c->pool;
    if (call) {
        c->pool = call->next;
        c->npool--;
        call->next = NULL;
        curl_easy_reset(call->easy);
        return call;
    }
    call = calloc(1, sizeof(*call));
    if (!call) return NULL;
    call->easy = curl_easy_init();
    if (!call->easy) {
        free(call);
        return NULL;
    }
    call->c = c;
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    return call;
}

static void call_unget(mk_http_client *c, mk_http_call *call)
{
    trim_buf(&call->req_hdrs);
    trim_buf(&call->req_body);
    if (c->npool >= POOL_MAX) {
        call_destroy(call);
        return;
    }
    call->next = c->pool;
    c->pool = call;
    c->npool++;
}

#define SET(opt, val) do { if (!e) e = curl_easy_setopt(easy, opt, val); } while (0)

static int setup(mk_http_client *c, mk_http_call *call, const struct mk_http_call_opts *o)
{
    CURL *easy = call->easy;
    bool has_body = o->body != NULL || o->body_len > 0;
    const char *method = o->method ? o->method : (has_body ? "POST" : "GET");
    bool is_get = strcmp(method, "GET") == 0, is_head = strcmp(method, "HEAD") == 0;
    bool is_post = strcmp(method, "POST") == 0;
    if (is_head && has_body) return MK_EINVAL;
    /* Methods that carry a body send one (maybe empty, with Content-Length: 0). */
    bool send_body = has_body || is_post || !strcmp(method, "PUT") || !strcmp(method, "PATCH");

    const char *accept_encoding = NULL;
    int rc = build_headers(call, o, send_body, &accept_encoding);
    if (rc) return rc;
    if (has_body && (rc = mk_buf_append(&call->req_body, o->body, o->body_len)) != 0) return rc;

    CURLcode e = CURLE_OK;
    call->errbuf[0] = '\0';
    SET(CURLOPT_URL, o->url);
    /* Set explicitly ("" = none), so libcurl does not getenv per transfer. */
    SET(CURLOPT_PROXY, has_prefix_nocase(o->url, "https://") ? (c->https_proxy ? c->https_proxy : "")
                                                             : (c->http_proxy ? c->http_proxy : ""));
    SET(CURLOPT_NOPROXY, c->no_proxy ? c->no_proxy : "");
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_PRIVATE, (void *)call);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_USERAGENT, "mayak/" MAYAK_VERSION);
    SET(CURLOPT_ERRORBUFFER, call->errbuf);
    SET(CURLOPT_HTTPHEADER, call->nodes);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, (void *)call);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, (void *)call);
    SET(CURLOPT_PREREQFUNCTION, prereq_cb);
    SET(CURLOPT_PREREQDATA, (void *)call);
    if (accept_encoding) SET(CURLOPT_ACCEPT_ENCODING, accept_encoding);
    if (o->connect_timeout_ms) SET(CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    if (o->total_timeout_ms) SET(CURLOPT_TIMEOUT_MS, (long)o->total_timeout_ms);
    if (o->ca_file) SET(CURLOPT_CAINFO, o->ca_file);
    if (o->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
        if (!c->warned_insecure) {
            c->warned_insecure = true;
            mk_log(MK_LOG_WARN, "upstream_tls_verification_disabled",
                   "detail", "insecure=true: upstream certificates are NOT checked", NULL);
        }
    }
    if (is_head) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (send_body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->req_body.len);
        SET(CURLOPT_POSTFIELDS, call->req_body.data ? call->req_body.data : "");
        if (!is_post) SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (!is_get) {
        SET(CURLOPT_CUSTOMREQUEST, method);
    }
    if (e == CURLE_OUT_OF_MEMORY) return MK_ENOMEM;
    if (e != CURLE_OK) return MK_EINVAL;
    return 0;
}

int mk_http_call_start(mk_http_client *c, const struct mk_http_call_opts *o, mk_http_call **out)
{
    if (out) *out = NULL;
    if (!c || !o || !o->url || c->free_requested) return MK_EINVAL;
    if (!valid_url(o->url)) return MK_EINVAL;
    if (o->method && !valid_method(o->method)) return MK_EINVAL;
    if (o->body_len && !o->body) return MK_EINVAL;
    if (o->nheaders && !o->headers) return MK_EINVAL;
    if (o->nheaders > MAX_REQUEST_HEADERS - 2) return MK_EINVAL;
    size_t name_lens[MAX_REQUEST_HEADERS];
    for (size_t i = 0; i < o->nheaders; i++)
        if (!o->headers[i] || !(name_lens[i] = mk_http__header_name_len(o->headers[i]))) return MK_EINVAL;
    if (o->method && !strcmp(o->method, "HEAD") && (o->body || o->body_len)) return MK_EINVAL;

    struct mk_http__target t;
    if (c->native_on && c->native && mk_http__native_target(c->native, o, name_lens, &t) &&
        (!c->http_proxy || no_proxy_exempts(c->no_proxy, t.host)))
        return mk_http__native_start(c->native, o, name_lens, &t, out);

    mk_http_call *call = call_get(c);
    if (!call) return MK_ENOMEM;
    /* Only the caps: a pooled call keeps its buffers' memory. */
    call->body.max = o->max_body_bytes ? o->max_body_bytes : MK_MAX_UPSTREAM_BODY_BYTES;
    call->hdrs.max = MAX_RESPONSE_HEADER_BYTES;
    int rc = setup(c, call, o);
    if (rc) {
        call_unget(c, call);
        return rc;
    }
    call->on_response = o->on_response;
    call->on_data = o->on_data;
    call->on_done = o->on_done;
    call->arg = o->arg;
    call->first_byte_ms = o->first_byte_timeout_ms;
    call->idle_ms = o->idle_timeout_ms;
    call->status = 0;
    call->fail_rc = 0;
    call->connect_us = call->first_byte_us = call->headers_us = 0;
    call->last_data_ms = 0;
    call->headers_done = call->got_body = call->cancelled = call->done = false;
    call->in_multi = call->queued = call->failing = false;
    call->later = NULL;
    call->start_us = mk_now_us();

    if (!c->in_curl) {
        if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
            call_unget(c, call);
            return MK_ENOMEM;
        }
        call->in_multi = true;
    } else {
        /* curl refuses add_handle from inside its callbacks: add after it returns. */
        call->queued = true;
        call->later = c->adds;
        c->adds = call;
    }
    call->prev = NULL;
    call->next = c->active;
    if (c->active) c->active->prev = call;
    c->active = call;
    c->nactive++;
    if (call->first_byte_ms) uv_timer_start(&call->timer, call_timer_fired, call->first_byte_ms, 0);
    if (out) *out = call;
    return 0;
}

void mk_http_call_cancel(mk_http_call *call)
{
    if (call && mk_http__call_is_native(call)) {
        mk_http__native_cancel(call);
        return;
    }
    if (!call || call->cancelled || call->done) return;
    mk_http_client *c = call->c;
    call->cancelled = true;
    uv_timer_stop(&call->timer);
    if (c->free_requested) return;   /* do_free() takes it */
    if (c->in_curl) {
        /* Inside curl: our write/header callbacks now fail the transfer; the handle
         * leaves the multi after curl returns (queued adds are dropped there). */
        if (call->in_multi && !call->failing) {   /* a failing call is on c->fails already */
            call->later = c->reap;
            c->reap = call;
        }
        return;
    }
    if (call->in_multi) {
        curl_multi_remove_handle(c->multi, call->easy);
        call->in_multi = false;
    }
    call_recycle(call);
}

mk_slice mk_http_call_response_header(const mk_http_call *call, const char *name)
{
    if (!call || !name) return (mk_slice){"", 0};
    if (mk_http__call_is_native(call)) return mk_http__native_response_header(call, name);
    return mk_http__header_lookup(&call->hdrs, name);
}

mk_slice mk_http__header_lookup(const mk_buf *hdrs, const char *name)
{
    mk_slice none = {"", 0};
    if (!hdrs->data || !name) return none;
    mk_slice want = mk_slice_cstr(name);
    const char *p = hdrs->data, *end = p + hdrs->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        const char *colon = memchr(p, ':', (size_t)(nl - p));
        if (colon && mk_slice_eq_nocase((mk_slice){p, (size_t)(colon - p)}, want)) {
            const char *v = colon + 1, *ve = nl;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            return (mk_slice){v, (size_t)(ve - v)};
        }
        p = nl + 1;
    }
    return none;
}

uint64_t mk_http_call_connect_us(const mk_http_call *call)
{
    if (!call) return 0;
    return mk_http__call_is_native(call) ? mk_http__native_connect_us(call) : call->connect_us;
}

uint64_t mk_http_call_first_byte_us(const mk_http_call *call)
{
    if (!call) return 0;
    return mk_http__call_is_native(call) ? mk_http__native_first_byte_us(call) : call->first_byte_us;
}
