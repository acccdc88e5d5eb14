/*
 * relay: a TCP relay that does nothing, the floor under any gateway's overhead.
 *
 *   relay --port P --upstream-port U [--host 127.0.0.1] [--busy-poll-us N]
 *
 * Each accepted connection gets its own connection to the upstream, and bytes are
 * copied both ways as they come: no parsing, no allocation per request, one read
 * and one write per direction. gateway.sh runs it where Mayak runs (same core, same
 * fake, same load generator, same run) so the cost of the extra hop itself on this
 * machine (two more loopback traversals and the cross-CPU wake-ups they cause) is
 * measured next to Mayak's, and Mayak's overhead can be split into "the hop" and
 * "what Mayak does".
 *
 * --busy-poll-us N keeps polling (epoll_wait with timeout 0) until N microseconds
 * pass without a read, like Mayak's busy_poll_us, so the two can be compared alike.
 *
 * One thread, epoll, level-triggered. A relay whose peer is slow to read buffers
 * what it could not write and stops reading the other side until it drained. Ends
 * on SIGTERM/SIGINT. Loopback only (bench_addr).
 */
#include <signal.h>
#include <sys/epoll.h>

#include "bench_util.h"

#define BUF_BYTES (64 * 1024)

struct side {
    int fd;
    struct side *peer;
    char *pend;            /* bytes read from the peer not yet written to this fd */
    size_t pend_off, pend_len;
    int connected;
};

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static int g_ep;
static struct sockaddr_in g_up;

static void arm(struct side *s)
{
    struct epoll_event ev = {.data.ptr = s};
    /* Read only while the peer has nothing pending for us to forward; write-watch only
     * while we have pending bytes (or are still connecting). */
    if (!s->connected || s->pend_len > s->pend_off)
        ev.events |= EPOLLOUT;
    if (s->connected && s->peer->pend_len == s->peer->pend_off)
        ev.events |= EPOLLIN;
    epoll_ctl(g_ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Pairs closed during one batch of events are freed after it: a later event of the
 * same batch may still name either side. */
static struct side *g_dead[128];
static size_t g_ndead;

static void free_dead(void)
{
    for (size_t i = 0; i < g_ndead; i++) {
        free(g_dead[i][0].pend);
        free(g_dead[i][1].pend);
        free(g_dead[i]);
    }
    g_ndead = 0;
}

static void close_pair(struct side *s)
{
    struct side *p = s->peer;
    if (s->fd < 0)
        return;
    close(s->fd);
    close(p->fd);
    s->fd = p->fd = -1;
    if (g_ndead == sizeof g_dead / sizeof g_dead[0])
        free_dead(); /* cannot happen: a batch has at most 64 events, each closing one pair */
    g_dead[g_ndead++] = s < p ? s : p; /* the pair is one allocation */
}

/* Writes what is pending for s; 0 ok (maybe partial), -1 the pair must close. */
static int flush(struct side *s)
{
    while (s->pend_off < s->pend_len) {
        ssize_t w = write(s->fd, s->pend + s->pend_off, s->pend_len - s->pend_off);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0)
            return -1;
        s->pend_off += (size_t)w;
    }
    s->pend_off = s->pend_len = 0;
    return 0;
}

/* Reads from s and forwards to its peer. 0 ok, -1 close the pair. */
static int pump(struct side *s, char *buf)
{
    struct side *to = s->peer;
    ssize_t r = read(s->fd, buf, BUF_BYTES);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (r <= 0)
        return -1;
    size_t off = 0;
    if (to->connected && to->pend_len == to->pend_off) {
        ssize_t w = write(to->fd, buf, (size_t)r);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (w > 0)
            off = (size_t)w;
    }
    if (off < (size_t)r) {
        if (!to->pend && !(to->pend = malloc(BUF_BYTES)))
            return -1;
        if (to->pend_off > 0 && to->pend_off == to->pend_len)
            to->pend_off = to->pend_len = 0;
        if ((size_t)r - off > BUF_BYTES - to->pend_len)
            return -1; /* cannot happen: we stop reading while anything is pending */
        memcpy(to->pend + to->pend_len, buf + off, (size_t)r - off);
        to->pend_len += (size_t)r - off;
        arm(to);
        arm(s);
    }
    return 0;
}

static void accept_all(int lfd)
{
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return;
        int one = 1;
        (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int ufd = bench_connect(&g_up);
        struct side *pair = ufd >= 0 ? calloc(2, sizeof *pair) : NULL;
        if (!pair) {
            close(cfd);
            if (ufd >= 0)
                close(ufd);
            continue;
        }
        struct side *c = &pair[0], *u = &pair[1];
        c->fd = cfd;
        c->peer = u;
        c->connected = 1;
        u->fd = ufd;
        u->peer = c;
        struct epoll_event ev = {.events = 0, .data.ptr = c};
        epoll_ctl(g_ep, EPOLL_CTL_ADD, cfd, &ev);
        ev.data.ptr = u;
        ev.events = EPOLLOUT;
        epoll_ctl(g_ep, EPOLL_CTL_ADD, ufd, &ev);
        /* The client is read once the upstream is connected. */
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    uint64_t port = 0, up_port = 0, busy_us = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--port") == 0)
            bad = bench_parse_u64(v, 1, 65535, &port);
        else if (strcmp(a, "--upstream-port") == 0)
            bad = bench_parse_u64(v, 1, 65535, &up_port);
        else if (strcmp(a, "--host") == 0)
            host = v ? v : "";
        else if (strcmp(a, "--busy-poll-us") == 0)
            bad = bench_parse_u64(v, 0, 10000, &busy_us);
        else
            bad = -1;
        if (bad < 0 || !v) {
            fprintf(stderr, "usage: relay --port P --upstream-port U [--host 127.0.0.1] [--busy-poll-us N]\n");
            return 2;
        }
    }
    struct sockaddr_in sa;
    if (port == 0 || up_port == 0 || bench_addr(host, port, &sa) < 0 || bench_addr(host, up_port, &g_up) < 0) {
        fprintf(stderr, "usage: relay --port P --upstream-port U [--host 127.0.0.1] [--busy-poll-us N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sact = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sact, NULL);
    sigaction(SIGINT, &sact, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
        fprintf(stderr, "relay: cannot listen on %s:%llu: %s\n", host, (unsigned long long)port, strerror(errno));
        return 1;
    }
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (g_ep < 0 || epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        return 1;
    char *buf = malloc(BUF_BYTES);
    if (!buf)
        return 1;
    uint64_t window_ns = busy_us * 1000u, last_io = 0;
    struct epoll_event evs[64];
    while (!g_stop) {
        int timeout = -1;
        if (window_ns && bench_now_ns() - last_io < window_ns)
            timeout = 0;
        int n = epoll_wait(g_ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            return 1;
        if (n > 0 && window_ns)
            last_io = bench_now_ns();
        for (int i = 0; i < n; i++) {
            struct side *s = evs[i].data.ptr;
            if (!s) {
                accept_all(lfd);
                continue;
            }
            if (s->fd < 0)
                continue; /* its pair was closed earlier in this batch */
            int rc = 0;
            if (!s->connected && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                if (bench_socket_error(s->fd) != 0) {
                    close_pair(s);
                    continue;
                }
                s->connected = 1;
                arm(s);
                arm(s->peer);
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                rc = flush(s);
                if (rc == 0 && s->pend_len == 0) {
                    arm(s);
                    arm(s->peer);
                }
            }
            if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                rc = pump(s, buf);
            if (rc < 0)
                close_pair(s);
        }
        free_dead();
    }
    free(buf);
    return 0;
}
