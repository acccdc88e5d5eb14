/*
 * loadgen: an open-loop, fixed-rate HTTP/1.1 load generator for Mayak's benchmarks.
 *
 * Why not wrk: wrk is closed-loop (each connection sends its next request when the
 * last reply arrives), so a slow reply delays the requests behind it and they are
 * never measured as late ("coordinated omission"). Debian has no wrk2. Here request i
 * is due at start + i/rate whatever happens; a due request goes out on the first idle
 * keep-alive connection, and its latency is counted from the time it was DUE, so time
 * spent queued behind a slow reply is part of the number.
 *
 * One thread, epoll, N keep-alive connections (no pipelining), http-parser for the
 * replies. Besides latency it can:
 *   - collect a numeric response header (default x-mayak-overhead-us) as a distribution;
 *   - count replies whose body or a header value contains a marker string (which
 *     deployment served it),
 *     and, with --trigger-at, kill a process or run a command at a precise moment and
 *     report the time from then to the first marked reply (failover time) and the
 *     client-visible errors after it.
 * Output: one line per result, "name key=value ...", for the bench scripts to parse.
 * Targets must be loopback (bench_addr refuses anything else).
 */
#include <http_parser.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "bench_util.h"

#define MAX_HEADERS 32
#define MAX_MARK 256
#define READ_BUF (64 * 1024)
#define MAX_STATUS 600
#define RECONNECT_DELAY_NS (20 * 1000000ull)

enum cstate { C_DOWN, C_CONNECTING, C_IDLE, C_BUSY };

struct conn {
    int fd;
    enum cstate state;
    http_parser parser;
    size_t woff;             /* bytes of the request written so far */
    uint64_t sched_ns;       /* when the in-flight request was due */
    uint64_t sent_ns;        /* when it actually went out */
    uint64_t retry_at_ns;    /* C_DOWN: reconnect no earlier than this */
    bool want_out;           /* EPOLLOUT registered */
    bool done;               /* reply complete */
    bool keep_alive;         /* reply allows reuse */
    bool marked;             /* reply body contained the marker */
    bool last_was_value;     /* header callback state */
    bool in_record_header;   /* current header is the one we record */
    char hname[64];
    size_t hname_len;
    char hval[32];
    size_t hval_len;
    bool have_hval;
    char tail[MAX_MARK];     /* last bytes of body, to find a marker across reads */
    size_t tail_len;
    struct conn *next_idle;
};

struct opts {
    const char *host;
    uint64_t port;
    const char *path;
    const char *method;
    char *body;
    size_t body_len;
    const char *headers[MAX_HEADERS];
    size_t nheaders;
    double rate;
    double duration_s;
    double warmup_s;
    uint64_t connections;
    uint64_t timeout_ms;
    const char *record_header;
    const char *mark;
    double trigger_at_s;
    long kill_pid;
    const char *trigger_cmd;
    uint64_t trigger_post_port;
    const char *trigger_path;
    const char *trigger_body;
};

static struct opts O = {
    .host = "127.0.0.1", .path = "/v1/chat/completions", .method = "POST",
    .rate = 1000, .duration_s = 10, .warmup_s = 0, .connections = 32, .timeout_ms = 10000,
    .record_header = "x-mayak-overhead-us", .trigger_at_s = -1, .kill_pid = 0,
};

/* Run-wide state. */
static struct sockaddr_in g_sa;
static int g_ep = -1;
static char *g_req;
static size_t g_req_len;
static struct conn *g_conns;
static struct conn *g_idle;
static uint64_t g_start_ns, g_measure_ns, g_sched_end_ns;
static uint64_t g_total, g_dispatched, g_inflight;
static uint32_t *g_lat, *g_svc, *g_hdr, *g_aft;
static size_t g_nlat, g_nhdr, g_naft;
static uint64_t g_ok, g_ok_measured, g_non2xx, g_err_conn, g_err_proto, g_err_timeout, g_connect_fail;
static uint64_t g_status[MAX_STATUS];
static uint64_t g_trigger_ns, g_first_mark_ns, g_first_ok_after_ns, g_last_err_ns;
static bool g_triggered;
static uint64_t g_marked, g_marked_before, g_err_after;
static size_t g_mark_len;

static void usage(void)
{
    fprintf(stderr,
        "usage: loadgen --port PORT --rate RPS --duration S [options]\n"
        "  --host 127.0.0.1       target (loopback IPv4 only)\n"
        "  --path P               default /v1/chat/completions\n"
        "  --method M             default POST\n"
        "  --body STR | --body-file F   request body (JSON)\n"
        "  -H 'Name: value'       extra request header (repeatable, up to 32)\n"
        "  --connections N        keep-alive connections (default 32)\n"
        "  --warmup S             leave requests due in the first S seconds out of the stats\n"
        "  --timeout-ms T         per-request timeout (default 10000)\n"
        "  --record-header NAME   numeric reply header to collect (default x-mayak-overhead-us)\n"
        "  --mark STR             count replies whose body or a header value contains STR\n"
        "  --trigger-at S         at S seconds after start: --kill-pid PID (SIGKILL) and/or\n"
        "  --kill-pid PID         --trigger-cmd CMD (run with /bin/sh -c); then report the\n"
        "  --trigger-cmd CMD      time to the first marked reply, the errors after it and the\n"
        "                         latency of the replies in the second after it\n"
        "  --trigger-post PORT    and/or POST --trigger-body to --trigger-path on 127.0.0.1:PORT\n"
        "                         (e.g. the fake's /_fake/mode); the clock starts at its reply\n");
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u = 0;
        if (v == NULL) {
            fprintf(stderr, "option %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--host") == 0) {
            O.host = v;
        } else if (strcmp(a, "--port") == 0) {
            if (bench_parse_u64(v, 1, 65535, &O.port) < 0)
                goto bad;
        } else if (strcmp(a, "--path") == 0) {
            if (v[0] != '/' || strpbrk(v, " \r\n") != NULL)
                goto bad;
            O.path = v;
        } else if (strcmp(a, "--method") == 0) {
            if (strpbrk(v, " \r\n") != NULL || *v == '\0')
                goto bad;
            O.method = v;
        } else if (strcmp(a, "--body") == 0) {
            free(O.body);
            O.body_len = strlen(v);
            O.body = malloc(O.body_len + 1);
            if (O.body == NULL)
                return -1;
            memcpy(O.body, v, O.body_len + 1);
        } else if (strcmp(a, "--body-file") == 0) {
            free(O.body);
            O.body = bench_read_file(v, 8u << 20, &O.body_len);
            if (O.body == NULL)
                return -1;
        } else if (strcmp(a, "-H") == 0) {
            if (O.nheaders == MAX_HEADERS || strchr(v, ':') == NULL || strpbrk(v, "\r\n") != NULL)
                goto bad;
            O.headers[O.nheaders++] = v;
        } else if (strcmp(a, "--rate") == 0) {
            if (bench_parse_double(v, 1, 1e6, &O.rate) < 0)
                goto bad;
        } else if (strcmp(a, "--duration") == 0) {
            if (bench_parse_double(v, 0.1, 3600, &O.duration_s) < 0)
                goto bad;
        } else if (strcmp(a, "--warmup") == 0) {
            if (bench_parse_double(v, 0, 3600, &O.warmup_s) < 0)
                goto bad;
        } else if (strcmp(a, "--connections") == 0) {
            if (bench_parse_u64(v, 1, 10000, &O.connections) < 0)
                goto bad;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (bench_parse_u64(v, 1, 600000, &O.timeout_ms) < 0)
                goto bad;
        } else if (strcmp(a, "--record-header") == 0) {
            if (strlen(v) >= sizeof(((struct conn *)0)->hname))
                goto bad;
            O.record_header = v;
        } else if (strcmp(a, "--mark") == 0) {
            if (strlen(v) == 0 || strlen(v) >= MAX_MARK)
                goto bad;
            O.mark = v;
        } else if (strcmp(a, "--trigger-at") == 0) {
            if (bench_parse_double(v, 0, 3600, &O.trigger_at_s) < 0)
                goto bad;
        } else if (strcmp(a, "--kill-pid") == 0) {
            if (bench_parse_u64(v, 2, 1u << 30, &u) < 0)
                goto bad;
            O.kill_pid = (long)u;
        } else if (strcmp(a, "--trigger-cmd") == 0) {
            O.trigger_cmd = v;
        } else if (strcmp(a, "--trigger-post") == 0) {
            if (bench_parse_u64(v, 1, 65535, &O.trigger_post_port) < 0)
                goto bad;
        } else if (strcmp(a, "--trigger-path") == 0) {
            if (v[0] != '/' || strpbrk(v, " \r\n") != NULL)
                goto bad;
            O.trigger_path = v;
        } else if (strcmp(a, "--trigger-body") == 0) {
            O.trigger_body = v;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "bad value for %s: '%s'\n", a, v);
        return -1;
    }
    if (O.port == 0) {
        fprintf(stderr, "--port is required\n");
        return -1;
    }
    if (O.warmup_s >= O.duration_s) {
        fprintf(stderr, "--warmup must be shorter than --duration\n");
        return -1;
    }
    if (O.trigger_at_s >= 0 && O.kill_pid == 0 && O.trigger_cmd == NULL && O.trigger_post_port == 0) {
        fprintf(stderr, "--trigger-at needs --kill-pid, --trigger-cmd or --trigger-post\n");
        return -1;
    }
    if (O.trigger_post_port != 0 && (O.trigger_path == NULL || O.trigger_body == NULL)) {
        fprintf(stderr, "--trigger-post needs --trigger-path and --trigger-body\n");
        return -1;
    }
    double total = O.rate * O.duration_s;
    if (total > 50e6) {
        fprintf(stderr, "rate x duration above 50 million requests; shorten the run\n");
        return -1;
    }
    g_total = (uint64_t)total;
    if (g_total == 0)
        g_total = 1;
    return 0;
}

static int build_request(void)
{
    size_t cap = 1024 + O.body_len + strlen(O.path);
    for (size_t i = 0; i < O.nheaders; i++)
        cap += strlen(O.headers[i]) + 2;
    g_req = malloc(cap);
    if (g_req == NULL)
        return -1;
    int n = snprintf(g_req, cap, "%s %s HTTP/1.1\r\nHost: %s:%llu\r\n", O.method, O.path, O.host,
                     (unsigned long long)O.port);
    size_t len = (size_t)n;
    bool has_ct = false;
    for (size_t i = 0; i < O.nheaders; i++) {
        if (strncasecmp(O.headers[i], "content-type:", 13) == 0)
            has_ct = true;
        n = snprintf(g_req + len, cap - len, "%s\r\n", O.headers[i]);
        len += (size_t)n;
    }
    if (O.body != NULL) {
        if (!has_ct) {
            n = snprintf(g_req + len, cap - len, "Content-Type: application/json\r\n");
            len += (size_t)n;
        }
        n = snprintf(g_req + len, cap - len, "Content-Length: %zu\r\n", O.body_len);
        len += (size_t)n;
    }
    n = snprintf(g_req + len, cap - len, "\r\n");
    len += (size_t)n;
    if (O.body != NULL) {
        memcpy(g_req + len, O.body, O.body_len);
        len += O.body_len;
    }
    g_req_len = len;
    return 0;
}

/* --- http-parser callbacks ------------------------------------------------ */

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->last_was_value) {
        c->hname_len = 0;
        c->last_was_value = false;
    }
    size_t room = sizeof(c->hname) - 1 - c->hname_len;
    size_t take = len < room ? len : room;
    memcpy(c->hname + c->hname_len, at, take);
    c->hname_len += take;
    c->hname[c->hname_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (!c->last_was_value) {
        c->last_was_value = true;
        c->in_record_header = O.record_header != NULL && strcasecmp(c->hname, O.record_header) == 0;
        if (c->in_record_header)
            c->hval_len = 0;
    }
    /* A marker may also be a header value, e.g. x-mayak-deployment naming the fallback. */
    if (O.mark != NULL && !c->marked && memmem(at, len, O.mark, g_mark_len) != NULL)
        c->marked = true;
    if (c->in_record_header) {
        size_t room = sizeof(c->hval) - 1 - c->hval_len;
        size_t take = len < room ? len : room;
        memcpy(c->hval + c->hval_len, at, take);
        c->hval_len += take;
        c->hval[c->hval_len] = '\0';
        c->have_hval = true;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (O.mark == NULL || c->marked)
        return 0;
    /* Check the seam between the previous read and this one, then this read alone. */
    if (c->tail_len > 0) {
        char seam[2 * MAX_MARK];
        size_t head = len < g_mark_len - 1 ? len : g_mark_len - 1;
        memcpy(seam, c->tail, c->tail_len);
        memcpy(seam + c->tail_len, at, head);
        if (memmem(seam, c->tail_len + head, O.mark, g_mark_len) != NULL)
            c->marked = true;
    }
    if (!c->marked && memmem(at, len, O.mark, g_mark_len) != NULL)
        c->marked = true;
    /* Keep the last mark_len-1 bytes of (tail + this read). */
    size_t keep = g_mark_len - 1;
    if (len >= keep) {
        memcpy(c->tail, at + len - keep, keep);
        c->tail_len = keep;
    } else {
        size_t old = c->tail_len + len > keep ? keep - len : c->tail_len;
        memmove(c->tail, c->tail + c->tail_len - old, old);
        memcpy(c->tail + old, at, len);
        c->tail_len = old + len;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->done = true;
    c->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
}

static http_parser_settings g_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- connections ----------------------------------------------------------- */

static void push_idle(struct conn *c)
{
    c->state = C_IDLE;
    c->next_idle = g_idle;
    g_idle = c;
}

static struct conn *pop_idle(void)
{
    struct conn *c = g_idle;
    if (c != NULL)
        g_idle = c->next_idle;
    return c;
}

static void remove_idle(struct conn *c)
{
    for (struct conn **pp = &g_idle; *pp != NULL; pp = &(*pp)->next_idle) {
        if (*pp == c) {
            *pp = c->next_idle;
            return;
        }
    }
}

static void conn_start(struct conn *c, uint64_t now)
{
    c->fd = bench_connect(&g_sa);
    if (c->fd < 0) {
        g_connect_fail++;
        c->state = C_DOWN;
        c->retry_at_ns = now + RECONNECT_DELAY_NS;
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        c->fd = -1;
        g_connect_fail++;
        c->state = C_DOWN;
        c->retry_at_ns = now + RECONNECT_DELAY_NS;
        return;
    }
    c->want_out = true;
    c->state = C_CONNECTING;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
}

static void note_error_after_trigger(uint64_t now)
{
    if (g_triggered && now >= g_trigger_ns) {
        g_err_after++;
        g_last_err_ns = now;
    }
}

/* Closes the connection; an in-flight request becomes an error of the given kind. */
static void conn_fail(struct conn *c, uint64_t now, uint64_t *kind, bool reconnect_now)
{
    if (c->state == C_BUSY) {
        if (kind != NULL)
            (*kind)++;
        g_inflight--;
        note_error_after_trigger(now);
    } else if (c->state == C_IDLE) {
        remove_idle(c);
    } else if (c->state == C_CONNECTING && kind == &g_err_conn) {
        g_connect_fail++;
        reconnect_now = false;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->state = C_DOWN;
    c->retry_at_ns = reconnect_now ? now : now + RECONNECT_DELAY_NS;
}

/* Closes a connection that has nothing in flight and is not in the idle list (the
 * server ended a reply with Connection: close); reconnects at once. */
static void conn_close(struct conn *c, uint64_t now)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = C_DOWN;
    c->retry_at_ns = now;
}

static void set_out(struct conn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

static void conn_write(struct conn *c, uint64_t now)
{
    while (c->woff < g_req_len) {
        ssize_t n = send(c->fd, g_req + c->woff, g_req_len - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(c, true);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        conn_fail(c, now, &g_err_conn, false);
        return;
    }
    set_out(c, false);
}

static uint64_t sched_of(uint64_t i)
{
    return g_start_ns + (uint64_t)((double)i * 1e9 / O.rate);
}

static void dispatch(struct conn *c, uint64_t seq, uint64_t now)
{
    c->state = C_BUSY;
    c->sched_ns = sched_of(seq);
    c->sent_ns = now;
    c->woff = 0;
    c->done = false;
    c->keep_alive = true;
    c->marked = false;
    c->tail_len = 0;
    c->have_hval = false;
    c->hval_len = 0;
    c->last_was_value = false;
    c->hname_len = 0;
    g_inflight++;
    conn_write(c, now);
}

static void record_reply(struct conn *c, uint64_t now)
{
    unsigned status = c->parser.status_code;
    bool ok = status >= 200 && status < 300;
    bool measured = c->sched_ns >= g_measure_ns;
    if (status < MAX_STATUS)
        g_status[status]++;
    if (ok) {
        g_ok++;
        if (measured) {
            g_ok_measured++;
            uint64_t lat = (now - c->sched_ns) / 1000, svc = (now - c->sent_ns) / 1000;
            g_lat[g_nlat] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
            g_svc[g_nlat] = svc > UINT32_MAX ? UINT32_MAX : (uint32_t)svc;
            g_nlat++;
            if (c->have_hval) {
                uint64_t v = 0;
                char *s = c->hval;
                while (*s == ' ' || *s == '\t')
                    s++;
                if (bench_parse_u64(s, 0, UINT32_MAX, &v) == 0)
                    g_hdr[g_nhdr++] = (uint32_t)v;
            }
        }
    } else {
        g_non2xx++;
        note_error_after_trigger(now);
    }
    if (ok && c->marked) {
        g_marked++;
        if (!g_triggered || now < g_trigger_ns)
            g_marked_before++;
        else if (g_first_mark_ns == 0)
            g_first_mark_ns = now;
    }
    if (ok && g_triggered && now >= g_trigger_ns && g_first_ok_after_ns == 0)
        g_first_ok_after_ns = now;
    /* Replies in the second after the trigger: how the failure felt to clients. */
    if (ok && g_triggered && now >= g_trigger_ns && now - g_trigger_ns < 1000000000ull) {
        uint64_t lat = (now - c->sched_ns) / 1000;
        g_aft[g_naft++] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
    }
}

static void conn_read(struct conn *c, uint64_t now)
{
    static char buf[READ_BUF];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            /* EOF or reset. A reply delimited by close completes on EOF. */
            if (n == 0 && c->state == C_BUSY) {
                http_parser_execute(&c->parser, &g_settings, buf, 0);
                if (c->done) {
                    record_reply(c, now);
                    g_inflight--;
                    conn_close(c, now);
                    return;
                }
            }
            conn_fail(c, now, &g_err_conn, c->state == C_IDLE);
            return;
        }
        if (c->state != C_BUSY) {
            conn_fail(c, now, &g_err_proto, false); /* bytes nobody asked for */
            return;
        }
        size_t used = http_parser_execute(&c->parser, &g_settings, buf, (size_t)n);
        if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || used != (size_t)n) {
            conn_fail(c, now, &g_err_proto, false);
            return;
        }
        if (c->done) {
            record_reply(c, now);
            g_inflight--;
            if (c->keep_alive)
                push_idle(c);
            else
                conn_close(c, now);
            return;
        }
    }
}

static void on_event(struct conn *c, uint32_t events, uint64_t now)
{
    if (c->fd < 0)
        return; /* closed earlier in this batch of events */
    if (c->state == C_CONNECTING) {
        if (events & (EPOLLERR | EPOLLHUP) || bench_socket_error(c->fd) != 0) {
            conn_fail(c, now, &g_err_conn, false);
            return;
        }
        if (events & EPOLLOUT) {
            set_out(c, false);
            push_idle(c);
        }
        return;
    }
    if ((events & EPOLLOUT) && c->state == C_BUSY && c->woff < g_req_len) {
        conn_write(c, now);
        if (c->state != C_BUSY)
            return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(c, now);
}

/* POSTs the trigger body and waits (up to 2 s) for the status line of the reply, so
 * that when this returns the target has acted on it. 0 on a 2xx reply. */
static int trigger_post(void)
{
    struct sockaddr_in sa;
    if (bench_addr(O.host, O.trigger_post_port, &sa) < 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 2};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: %s:%llu\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     O.trigger_path, O.host, (unsigned long long)O.trigger_post_port,
                     strlen(O.trigger_body), O.trigger_body);
    int rc = -1;
    if (n > 0 && (size_t)n < sizeof(req) && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
        char reply[64];
        ssize_t got = recv(fd, reply, sizeof(reply) - 1, 0);
        if (got >= 12) {
            reply[got] = '\0';
            rc = strncmp(reply, "HTTP/1.1 2", 10) == 0 || strncmp(reply, "HTTP/1.0 2", 10) == 0 ? 0 : -1;
        }
    }
    close(fd);
    return rc;
}

static void fire_trigger(uint64_t now)
{
    g_triggered = true;
    g_trigger_ns = now;
    if (O.trigger_post_port != 0) {
        if (trigger_post() < 0)
            fprintf(stderr, "loadgen: trigger POST to port %llu failed or was refused\n",
                    (unsigned long long)O.trigger_post_port);
        g_trigger_ns = bench_now_ns(); /* the switch took effect by the reply */
    }
    if (O.kill_pid > 0 && kill((pid_t)O.kill_pid, SIGKILL) < 0)
        fprintf(stderr, "loadgen: kill %ld: %s\n", O.kill_pid, strerror(errno));
    if (O.trigger_cmd != NULL) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", O.trigger_cmd, (char *)NULL);
            _exit(127);
        }
        if (pid < 0)
            fprintf(stderr, "loadgen: fork: %s\n", strerror(errno));
    }
}

static double ms_since(uint64_t t, uint64_t base)
{
    return t == 0 ? -1 : ((double)t - (double)base) / 1e6;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage();
        return 0;
    }
    if (argc < 2 || parse_args(argc, argv) < 0) {
        usage();
        return 2;
    }
    if (bench_addr(O.host, O.port, &g_sa) < 0 || build_request() < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN); /* trigger commands reap themselves */
    /* The default 50 us timer slack would delay every scheduled send by about that much. */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    g_mark_len = O.mark != NULL ? strlen(O.mark) : 0;

    g_lat = calloc(g_total + 1, sizeof(uint32_t));
    g_svc = calloc(g_total + 1, sizeof(uint32_t));
    g_hdr = calloc(g_total + 1, sizeof(uint32_t));
    g_aft = calloc(g_total + 1, sizeof(uint32_t));
    g_conns = calloc(O.connections, sizeof(struct conn));
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_lat == NULL || g_svc == NULL || g_hdr == NULL || g_aft == NULL || g_conns == NULL || g_ep < 0) {
        fprintf(stderr, "loadgen: out of memory or epoll failed\n");
        return 1;
    }

    /* Connect everything first, so connection setup is not in the measured latency. */
    uint64_t now = bench_now_ns();
    for (size_t i = 0; i < O.connections; i++) {
        g_conns[i].fd = -1;
        conn_start(&g_conns[i], now);
    }
    struct epoll_event evs[256];
    uint64_t connect_deadline = now + 3000000000ull;
    for (;;) {
        size_t up = 0;
        for (size_t i = 0; i < O.connections; i++)
            up += g_conns[i].state == C_IDLE;
        now = bench_now_ns();
        if (up == O.connections || now >= connect_deadline)
            break;
        int n = epoll_wait(g_ep, evs, 256, 10);
        now = bench_now_ns();
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events, now);
        for (size_t i = 0; i < O.connections; i++)
            if (g_conns[i].state == C_DOWN && now >= g_conns[i].retry_at_ns)
                conn_start(&g_conns[i], now);
    }
    if (g_idle == NULL) {
        fprintf(stderr, "loadgen: could not connect to %s:%llu\n", O.host, (unsigned long long)O.port);
        return 1;
    }

    g_start_ns = bench_now_ns();
    g_measure_ns = g_start_ns + (uint64_t)(O.warmup_s * 1e9);
    g_sched_end_ns = g_start_ns + (uint64_t)(O.duration_s * 1e9);
    uint64_t hard_end = g_sched_end_ns + O.timeout_ms * 1000000ull;
    uint64_t trigger_at = O.trigger_at_s >= 0 ? g_start_ns + (uint64_t)(O.trigger_at_s * 1e9) : 0;
    uint64_t timeout_ns = O.timeout_ms * 1000000ull, last_scan = g_start_ns;

    for (;;) {
        now = bench_now_ns();
        if (trigger_at != 0 && !g_triggered && now >= trigger_at)
            fire_trigger(now);
        uint64_t due = now < g_start_ns ? 0 : (uint64_t)((double)(now - g_start_ns) * O.rate / 1e9) + 1;
        if (due > g_total)
            due = g_total;
        struct conn *c;
        while (g_dispatched < due && (c = pop_idle()) != NULL)
            dispatch(c, g_dispatched++, now);
        if (g_dispatched == g_total && g_inflight == 0)
            break;
        if (now >= hard_end)
            break;
        bool scan_timeouts = now - last_scan >= 5000000ull;
        if (scan_timeouts) {
            last_scan = now;
            /* A request still queued (no connection free, or all down) past its
             * timeout fails like a client would give up on it. */
            while (g_dispatched < due && sched_of(g_dispatched) + timeout_ns < now) {
                g_dispatched++;
                g_err_timeout++;
                note_error_after_trigger(now);
            }
        }
        for (size_t i = 0; i < O.connections; i++) {
            struct conn *k = &g_conns[i];
            if (scan_timeouts && k->state == C_BUSY && now - k->sent_ns > timeout_ns)
                conn_fail(k, now, &g_err_timeout, true);
            if (k->state == C_DOWN && now >= k->retry_at_ns)
                conn_start(k, now);
        }
        /* Sleep until the next request is due (or 5 ms when we are behind and wait for
         * a connection to free up), the trigger, or the end. */
        uint64_t wake = now + 5000000ull;
        if (g_dispatched == due && g_dispatched < g_total && sched_of(g_dispatched) < wake)
            wake = sched_of(g_dispatched);
        if (trigger_at != 0 && !g_triggered && trigger_at < wake)
            wake = trigger_at;
        uint64_t wait_ns = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000ull),
                              .tv_nsec = (long)(wait_ns % 1000000000ull)};
        int n = epoll_pwait2(g_ep, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS) /* kernel before 5.11: millisecond sleeps, rounded up */
            n = epoll_wait(g_ep, evs, 256, (int)((wait_ns + 999999) / 1000000));
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "loadgen: epoll: %s\n", strerror(errno));
            return 1;
        }
        now = bench_now_ns();
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events, now);
    }
    now = bench_now_ns();
    uint64_t unfinished = g_inflight, unsent = g_total - g_dispatched;
    if (g_triggered)
        g_err_after += unfinished + unsent; /* all due after the trigger: it fired before the end */
    for (size_t i = 0; i < O.connections; i++)
        if (g_conns[i].fd >= 0)
            close(g_conns[i].fd);

    double window_s = O.duration_s - O.warmup_s;
    uint64_t errors = g_non2xx + g_err_conn + g_err_proto + g_err_timeout + unfinished + unsent;
    printf("loadgen target=%s:%llu path=%s rate=%.0f duration_s=%.1f warmup_s=%.1f connections=%llu\n",
           O.host, (unsigned long long)O.port, O.path, O.rate, O.duration_s, O.warmup_s,
           (unsigned long long)O.connections);
    printf("result requests=%llu ok=%llu errors=%llu non2xx=%llu conn_errors=%llu proto_errors=%llu "
           "timeouts=%llu unfinished=%llu unsent=%llu connect_failures=%llu achieved_rps=%.1f\n",
           (unsigned long long)g_total, (unsigned long long)g_ok, (unsigned long long)errors,
           (unsigned long long)g_non2xx, (unsigned long long)g_err_conn,
           (unsigned long long)g_err_proto, (unsigned long long)g_err_timeout,
           (unsigned long long)unfinished, (unsigned long long)unsent,
           (unsigned long long)g_connect_fail, (double)g_ok_measured / window_s);
    printf("status");
    for (unsigned s = 0; s < MAX_STATUS; s++)
        if (g_status[s] != 0)
            printf(" %u=%llu", s, (unsigned long long)g_status[s]);
    printf("\n");
    bench_print_dist(stdout, "latency_us", g_lat, g_nlat);
    bench_print_dist(stdout, "service_us", g_svc, g_nlat);
    if (O.record_header != NULL)
        bench_print_dist(stdout, "header_us", g_hdr, g_nhdr);
    if (O.mark != NULL)
        printf("marked total=%llu before_trigger=%llu\n", (unsigned long long)g_marked,
               (unsigned long long)g_marked_before);
    if (g_triggered)
        printf("failover trigger_at_ms=%.1f first_marked_after_ms=%.3f first_ok_after_ms=%.3f "
               "errors_after_trigger=%llu last_error_after_ms=%.3f\n",
               ms_since(g_trigger_ns, g_start_ns), ms_since(g_first_mark_ns, g_trigger_ns),
               ms_since(g_first_ok_after_ns, g_trigger_ns), (unsigned long long)g_err_after,
               g_last_err_ns != 0 ? ms_since(g_last_err_ns, g_trigger_ns) : -1.0);
    if (g_triggered)
        bench_print_dist(stdout, "after_trigger_us", g_aft, g_naft);
    free(g_lat);
    free(g_svc);
    free(g_hdr);
    free(g_aft);
    free(g_conns);
    free(g_req);
    free(O.body);
    close(g_ep);
    return 0;
}
