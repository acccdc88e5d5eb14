/*
 * streams: a driver for Mayak's streaming benchmarks (server-sent events over HTTP/1.1).
 *
 * Two modes:
 *   --ttft M     closed loop: M streaming requests, one at a time per connection, each
 *                timed from the send to the first `data:` event carrying a non-empty
 *                "content" (time to first token; a role-only first chunk does not
 *                count), to the first data event of any kind, and to the end of the
 *                stream. Run once direct to the fake and once through Mayak; the
 *                difference is Mayak's added TTFT.
 *   --hold N     opens N streams (paced by --connect-rate), waits until every one has
 *                delivered its first event, then holds them --hold-s seconds while
 *                sampling VmRSS/VmHWM and the open fd count of --pid (Mayak), and
 *                reports memory per held stream and how many streams stayed healthy.
 * A "stream" only counts as ready once a real data event has arrived, so a server that
 * sends headers early and then stalls is not counted as holding it.
 * Output: "name key=value ..." lines for the bench scripts. Loopback targets only.
 */
#include <dirent.h>
#include <http_parser.h>
#include <signal.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "bench_util.h"

#define MAX_HEADERS 32
#define READ_BUF (64 * 1024)
#define LINE_PREFIX 16

enum sstate { S_NEW, S_CONNECTING, S_SENDING, S_WAITING, S_IDLE, S_FAILED, S_ENDED };

struct stream {
    int fd;
    enum sstate state;
    http_parser parser;
    size_t woff;
    uint64_t sent_ns, first_data_ns, first_token_ns, end_ns;
    uint64_t events;
    bool done;             /* http message complete */
    bool keep_alive;
    char line[LINE_PREFIX]; /* first bytes of the current SSE line */
    size_t line_len;       /* bytes seen on the current line (may exceed LINE_PREFIX) */
    int tok;               /* token matcher state on the current line, see scan_token */
};

/* A data event carries a token when it has `"content":"` followed by something other
 * than the closing quote (OpenAI chunks; the role-only first chunk has content ""). */
static const char TOKEN_KEY[] = "\"content\":";
#define TOKEN_KEY_LEN ((int)sizeof(TOKEN_KEY) - 1)
#define TOK_WS TOKEN_KEY_LEN          /* matched the key, skipping spaces */
#define TOK_QUOTE (TOKEN_KEY_LEN + 1) /* inside the value's opening quote */
#define TOK_FOUND (TOKEN_KEY_LEN + 2)

struct opts {
    const char *host;
    uint64_t port;
    const char *path;
    char *body;
    size_t body_len;
    const char *headers[MAX_HEADERS];
    size_t nheaders;
    uint64_t ttft_requests;
    uint64_t ttft_warmup;
    uint64_t hold_streams;
    uint64_t connections;
    double connect_rate;
    double ready_timeout_s;
    double hold_s;
    uint64_t timeout_ms;
    long pid;
};

static struct opts O = {
    .host = "127.0.0.1", .path = "/v1/chat/completions", .ttft_warmup = 20, .connections = 1,
    .connect_rate = 2000, .ready_timeout_s = 60, .hold_s = 5, .timeout_ms = 30000,
};

static struct sockaddr_in g_sa;
static int g_ep = -1;
static char *g_req;
static size_t g_req_len;
static uint64_t g_events_total;

static void usage(void)
{
    fprintf(stderr,
        "usage: streams --port PORT (--ttft M | --hold N) --body JSON|--body-file F [options]\n"
        "  --host 127.0.0.1     target (loopback IPv4 only)\n"
        "  --path P             default /v1/chat/completions\n"
        "  -H 'Name: value'     extra request header (repeatable)\n"
        " ttft mode:\n"
        "  --ttft M             measured requests; --warmup W more before them (default 20)\n"
        "  --connections C      concurrent closed-loop connections (default 1)\n"
        "  --timeout-ms T       per-request timeout (default 30000)\n"
        " hold mode:\n"
        "  --hold N             streams to open and hold\n"
        "  --connect-rate R     new streams per second (default 2000)\n"
        "  --ready-timeout S    give up waiting for first events after S s (default 60)\n"
        "  --hold-s S           hold this long once ready (default 5)\n"
        "  --pid PID            process whose VmRSS/VmHWM/fds to report (Mayak)\n");
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
        } else if (strcmp(a, "--ttft") == 0) {
            if (bench_parse_u64(v, 1, 10000000, &O.ttft_requests) < 0)
                goto bad;
        } else if (strcmp(a, "--warmup") == 0) {
            if (bench_parse_u64(v, 0, 1000000, &O.ttft_warmup) < 0)
                goto bad;
        } else if (strcmp(a, "--connections") == 0) {
            if (bench_parse_u64(v, 1, 1000, &O.connections) < 0)
                goto bad;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (bench_parse_u64(v, 1, 600000, &O.timeout_ms) < 0)
                goto bad;
        } else if (strcmp(a, "--hold") == 0) {
            if (bench_parse_u64(v, 1, 200000, &O.hold_streams) < 0)
                goto bad;
        } else if (strcmp(a, "--connect-rate") == 0) {
            if (bench_parse_double(v, 1, 1e6, &O.connect_rate) < 0)
                goto bad;
        } else if (strcmp(a, "--ready-timeout") == 0) {
            if (bench_parse_double(v, 0.1, 3600, &O.ready_timeout_s) < 0)
                goto bad;
        } else if (strcmp(a, "--hold-s") == 0) {
            if (bench_parse_double(v, 0, 3600, &O.hold_s) < 0)
                goto bad;
        } else if (strcmp(a, "--pid") == 0) {
            if (bench_parse_u64(v, 1, 1u << 30, &u) < 0)
                goto bad;
            O.pid = (long)u;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "bad value for %s: '%s'\n", a, v);
        return -1;
    }
    if (O.port == 0 || O.body == NULL) {
        fprintf(stderr, "--port and --body/--body-file are required\n");
        return -1;
    }
    if ((O.ttft_requests == 0) == (O.hold_streams == 0)) {
        fprintf(stderr, "give exactly one of --ttft and --hold\n");
        return -1;
    }
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
    int n = snprintf(g_req, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%llu\r\nAccept: text/event-stream\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                     O.path, O.host, (unsigned long long)O.port, O.body_len);
    size_t len = (size_t)n;
    for (size_t i = 0; i < O.nheaders; i++) {
        n = snprintf(g_req + len, cap - len, "%s\r\n", O.headers[i]);
        len += (size_t)n;
    }
    n = snprintf(g_req + len, cap - len, "\r\n");
    len += (size_t)n;
    memcpy(g_req + len, O.body, O.body_len);
    g_req_len = len + O.body_len;
    return 0;
}

/* --- replies ---------------------------------------------------------------- */

/* Feeds one byte of the current line to the token matcher. */
static void scan_token(struct stream *s, char ch)
{
    if (s->tok == TOK_FOUND)
        return;
    if (s->tok < TOKEN_KEY_LEN) {
        if (ch == TOKEN_KEY[s->tok])
            s->tok++;
        else
            s->tok = ch == '"' ? 1 : 0;
    } else if (s->tok == TOK_WS) {
        if (ch == '"')
            s->tok = TOK_QUOTE;
        else if (ch != ' ')
            s->tok = 0;
    } else if (s->tok == TOK_QUOTE) {
        s->tok = ch != '"' ? TOK_FOUND : 0;
    }
}

static void end_line(struct stream *s)
{
    size_t n = s->line_len < LINE_PREFIX ? s->line_len : LINE_PREFIX;
    if (n >= 5 && memcmp(s->line, "data:", 5) == 0) {
        const char *p = s->line + 5;
        size_t rest = n - 5;
        if (rest > 0 && *p == ' ') {
            p++;
            rest--;
        }
        bool is_done = rest >= 6 && memcmp(p, "[DONE]", 6) == 0 && s->line_len <= n;
        if (!is_done) {
            s->events++;
            g_events_total++;
            uint64_t now = bench_now_ns();
            if (s->first_data_ns == 0)
                s->first_data_ns = now;
            if (s->first_token_ns == 0 && s->tok == TOK_FOUND)
                s->first_token_ns = now;
        }
    }
    s->line_len = 0;
    s->tok = 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct stream *s = p->data;
    if (p->status_code != 200)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = at[i];
        if (ch == '\n') {
            end_line(s);
        } else if (ch != '\r') {
            if (s->line_len < LINE_PREFIX)
                s->line[s->line_len] = ch;
            s->line_len++;
            scan_token(s, ch);
        }
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct stream *s = p->data;
    s->done = true;
    s->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
}

static http_parser_settings g_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void stream_close(struct stream *s, enum sstate st)
{
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    s->state = st;
}

static int stream_connect(struct stream *s)
{
    s->fd = bench_connect(&g_sa);
    if (s->fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    s->state = S_CONNECTING;
    return 0;
}

static void stream_send(struct stream *s)
{
    s->state = S_SENDING;
    s->woff = 0;
    s->done = false;
    s->first_data_ns = 0;
    s->first_token_ns = 0;
    s->end_ns = 0;
    s->events = 0;
    s->line_len = 0;
    s->tok = 0;
    http_parser_init(&s->parser, HTTP_RESPONSE);
    s->parser.data = s;
    s->sent_ns = bench_now_ns();
}

/* Writes what is left of the request. 0, or -1 on a dead connection. */
static int stream_write(struct stream *s)
{
    while (s->woff < g_req_len) {
        ssize_t n = send(s->fd, g_req + s->woff, g_req_len - s->woff, MSG_NOSIGNAL);
        if (n > 0) {
            s->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    (void)epoll_ctl(g_ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->state = S_WAITING;
    return 0;
}

/* Handles readiness. Returns true when the stream finished (ended or failed) now. */
static bool stream_event(struct stream *s, uint32_t events)
{
    static char buf[READ_BUF];
    if (s->fd < 0)
        return false; /* closed earlier in this batch of events */
    if (s->state == S_CONNECTING) {
        if ((events & (EPOLLERR | EPOLLHUP)) || bench_socket_error(s->fd) != 0) {
            stream_close(s, S_FAILED);
            return true;
        }
        stream_send(s);
    }
    if (s->state == S_SENDING) {
        if (stream_write(s) < 0) {
            stream_close(s, S_FAILED);
            return true;
        }
        if (s->state == S_SENDING)
            return false;
    }
    for (;;) {
        ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n <= 0 && s->state == S_IDLE) {
            /* The server closed a keep-alive connection between requests: not a failure
             * and not a reply. */
            stream_close(s, S_ENDED);
            return false;
        }
        if (n <= 0) {
            if (n == 0 && s->state == S_WAITING)
                http_parser_execute(&s->parser, &g_settings, buf, 0);
            bool ok = s->state == S_WAITING && s->done && s->parser.status_code == 200;
            s->end_ns = bench_now_ns();
            stream_close(s, ok ? S_ENDED : S_FAILED);
            return s->state == S_ENDED || s->state == S_FAILED;
        }
        if (s->state != S_WAITING) {
            stream_close(s, S_FAILED);
            return true;
        }
        size_t used = http_parser_execute(&s->parser, &g_settings, buf, (size_t)n);
        if (HTTP_PARSER_ERRNO(&s->parser) != HPE_OK || used != (size_t)n) {
            stream_close(s, S_FAILED);
            return true;
        }
        if (s->done) {
            s->end_ns = bench_now_ns();
            if (s->parser.status_code != 200) {
                stream_close(s, S_FAILED);
                return true;
            }
            if (s->keep_alive) {
                s->state = S_IDLE;
            } else {
                stream_close(s, S_ENDED);
            }
            return true;
        }
    }
}

/* --- ttft mode ---------------------------------------------------------------- */

static int run_ttft(void)
{
    uint64_t total = O.ttft_requests + O.ttft_warmup;
    uint32_t *ttft = calloc(O.ttft_requests, sizeof(uint32_t));
    uint32_t *first = calloc(O.ttft_requests, sizeof(uint32_t));
    uint32_t *whole = calloc(O.ttft_requests, sizeof(uint32_t));
    struct stream *ss = calloc(O.connections, sizeof(struct stream));
    if (ttft == NULL || first == NULL || whole == NULL || ss == NULL)
        return 1;
    uint64_t started = 0, finished = 0, errors = 0, no_token = 0;
    size_t nmeas = 0;
    uint64_t timeout_ns = O.timeout_ms * 1000000ull;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < O.connections; i++) {
        ss[i].fd = -1;
        ss[i].state = S_NEW;
    }
    struct epoll_event evs[64];
    while (finished < total) {
        uint64_t now = bench_now_ns();
        for (size_t i = 0; i < O.connections && started < total; i++) {
            struct stream *s = &ss[i];
            if (s->state == S_NEW || s->state == S_ENDED || s->state == S_FAILED) {
                if (stream_connect(s) < 0) {
                    errors++;
                    finished++;
                    started++;
                    s->state = S_FAILED;
                    continue;
                }
                started++;
                s->sent_ns = now; /* for the timeout; reset when the request goes out */
            } else if (s->state == S_IDLE) {
                stream_send(s);
                started++;
                if (stream_write(s) < 0) {
                    stream_close(s, S_FAILED);
                    errors++;
                    finished++;
                }
            } else if (now - s->sent_ns > timeout_ns) {
                stream_close(s, S_FAILED);
                errors++;
                finished++;
            }
        }
        if (finished >= total)
            break;
        if (bench_now_ns() - t0 > (uint64_t)O.timeout_ms * 1000000ull * (total + 1)) {
            fprintf(stderr, "streams: ttft run exceeded its overall time limit\n");
            break;
        }
        int n = epoll_wait(g_ep, evs, 64, 100);
        for (int k = 0; k < n; k++) {
            struct stream *s = evs[k].data.ptr;
            if (!stream_event(s, evs[k].events))
                continue;
            uint64_t seq = finished++;
            if (s->state == S_FAILED) {
                errors++;
                continue;
            }
            if (s->first_token_ns == 0) {
                no_token++;
                continue;
            }
            if (seq >= O.ttft_warmup && nmeas < O.ttft_requests) {
                ttft[nmeas] = (uint32_t)((s->first_token_ns - s->sent_ns) / 1000);
                first[nmeas] = (uint32_t)((s->first_data_ns - s->sent_ns) / 1000);
                whole[nmeas] = (uint32_t)((s->end_ns - s->sent_ns) / 1000);
                nmeas++;
            }
        }
    }
    printf("streams mode=ttft target=%s:%llu requests=%llu warmup=%llu connections=%llu\n", O.host,
           (unsigned long long)O.port, (unsigned long long)O.ttft_requests,
           (unsigned long long)O.ttft_warmup, (unsigned long long)O.connections);
    printf("result ok=%zu errors=%llu no_token=%llu events=%llu\n", nmeas, (unsigned long long)errors,
           (unsigned long long)no_token, (unsigned long long)g_events_total);
    bench_print_dist(stdout, "ttft_us", ttft, nmeas);
    bench_print_dist(stdout, "first_event_us", first, nmeas);
    bench_print_dist(stdout, "stream_total_us", whole, nmeas);
    for (size_t i = 0; i < O.connections; i++)
        if (ss[i].fd >= 0)
            close(ss[i].fd);
    free(ttft);
    free(first);
    free(whole);
    free(ss);
    return errors == 0 && no_token == 0 ? 0 : 1;
}

/* --- hold mode ---------------------------------------------------------------- */

static long count_fds(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

struct hold_counts {
    uint64_t ready, failed, ended, open;
};

static struct hold_counts tally(const struct stream *ss, size_t n)
{
    struct hold_counts c = {0};
    for (size_t i = 0; i < n; i++) {
        const struct stream *s = &ss[i];
        if (s->first_data_ns != 0)
            c.ready++;
        if (s->state == S_FAILED)
            c.failed++;
        else if (s->state == S_ENDED || s->state == S_IDLE)
            c.ended++;
        else if (s->state != S_NEW)
            c.open++;
    }
    return c;
}

static void pump(struct epoll_event *evs, int max, int wait_ms)
{
    int n = epoll_wait(g_ep, evs, max, wait_ms);
    for (int k = 0; k < n; k++)
        (void)stream_event(evs[k].data.ptr, evs[k].events);
}

static int run_hold(void)
{
    size_t n = O.hold_streams;
    struct stream *ss = calloc(n, sizeof(struct stream));
    uint32_t *ttft = calloc(n, sizeof(uint32_t));
    if (ss == NULL || ttft == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) {
        ss[i].fd = -1;
        ss[i].state = S_NEW;
    }
    long base_rss = O.pid > 0 ? bench_proc_status_kb(O.pid, "VmRSS") : -1;
    long base_fds = O.pid > 0 ? count_fds(O.pid) : -1;
    struct epoll_event evs[1024];
    uint64_t t0 = bench_now_ns();
    uint64_t ready_deadline = t0 + (uint64_t)(O.ready_timeout_s * 1e9);
    size_t opened = 0;
    uint64_t connect_errors = 0;
    struct hold_counts c = {0};
    for (;;) {
        uint64_t now = bench_now_ns();
        size_t want = (size_t)((double)(now - t0) * O.connect_rate / 1e9) + 1;
        if (want > n)
            want = n;
        while (opened < want) {
            struct stream *s = &ss[opened++];
            if (stream_connect(s) < 0) {
                connect_errors++;
                s->state = S_FAILED;
            }
            s->sent_ns = now;
        }
        pump(evs, 1024, 2);
        c = tally(ss, n);
        if (opened == n && c.ready + c.failed + c.ended >= n)
            break;
        if (bench_now_ns() >= ready_deadline)
            break;
    }
    double ready_s = (double)(bench_now_ns() - t0) / 1e9;
    long rss_ready = O.pid > 0 ? bench_proc_status_kb(O.pid, "VmRSS") : -1;
    long fds_ready = O.pid > 0 ? count_fds(O.pid) : -1;
    struct hold_counts at_ready = c;
    long rss_max = rss_ready;
    uint64_t hold_end = bench_now_ns() + (uint64_t)(O.hold_s * 1e9);
    uint64_t next_sample = bench_now_ns() + 500000000ull;
    uint64_t events_at_ready = g_events_total;
    while (bench_now_ns() < hold_end) {
        pump(evs, 1024, 50);
        if (O.pid > 0 && bench_now_ns() >= next_sample) {
            long r = bench_proc_status_kb(O.pid, "VmRSS");
            if (r > rss_max)
                rss_max = r;
            next_sample += 500000000ull;
        }
    }
    c = tally(ss, n);
    /* Why streams failed: the reply status, or 0 when the connection closed (or never
     * opened) before a status line arrived. */
    uint64_t why[600] = {0};
    for (size_t i = 0; i < n; i++)
        if (ss[i].state == S_FAILED)
            why[ss[i].parser.status_code < 600 ? ss[i].parser.status_code : 0]++;
    long rss_end = O.pid > 0 ? bench_proc_status_kb(O.pid, "VmRSS") : -1;
    long hwm = O.pid > 0 ? bench_proc_status_kb(O.pid, "VmHWM") : -1;
    size_t nt = 0;
    for (size_t i = 0; i < n; i++)
        if (ss[i].first_data_ns != 0)
            ttft[nt++] = (uint32_t)((ss[i].first_data_ns - ss[i].sent_ns) / 1000);

    printf("streams mode=hold target=%s:%llu requested=%zu connect_rate=%.0f hold_s=%.1f\n", O.host,
           (unsigned long long)O.port, n, O.connect_rate, O.hold_s);
    printf("result ready=%llu failed=%llu ended_early=%llu open_at_ready=%llu open_at_end=%llu "
           "connect_errors=%llu seconds_to_ready=%.2f events_during_hold=%llu\n",
           (unsigned long long)at_ready.ready, (unsigned long long)c.failed,
           (unsigned long long)c.ended, (unsigned long long)at_ready.open,
           (unsigned long long)c.open, (unsigned long long)connect_errors, ready_s,
           (unsigned long long)(g_events_total - events_at_ready));
    if (O.pid > 0) {
        double per = at_ready.open > 0 && rss_ready >= 0 && base_rss >= 0
                         ? (double)(rss_ready - base_rss) / (double)at_ready.open
                         : -1;
        printf("rss pid=%ld baseline_kb=%ld at_ready_kb=%ld max_during_hold_kb=%ld end_kb=%ld "
               "hwm_kb=%ld per_stream_kb=%.1f fds_baseline=%ld fds_at_ready=%ld\n",
               O.pid, base_rss, rss_ready, rss_max, rss_end, hwm, per, base_fds, fds_ready);
    }
    printf("failures");
    for (unsigned k = 0; k < 600; k++)
        if (why[k] != 0 && k == 0)
            printf(" no_status=%llu", (unsigned long long)why[k]);
        else if (why[k] != 0)
            printf(" status_%u=%llu", k, (unsigned long long)why[k]);
    printf("\n");
    bench_print_dist(stdout, "first_event_us", ttft, nt);
    for (size_t i = 0; i < n; i++)
        if (ss[i].fd >= 0)
            close(ss[i].fd);
    free(ss);
    free(ttft);
    return at_ready.ready == n ? 0 : 1;
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
    /* Hold mode needs one fd per stream: take the whole hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (O.hold_streams > 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < O.hold_streams + 64) {
        fprintf(stderr, "streams: open-file limit %llu is too low for %llu streams\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)O.hold_streams);
        return 2;
    }
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        return 1;
    int rc = O.ttft_requests > 0 ? run_ttft() : run_hold();
    close(g_ep);
    free(g_req);
    free(O.body);
    return rc;
}
