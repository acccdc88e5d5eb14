/*
 * A real redis-server for tests: started on 127.0.0.1 at a free port with no
 * persistence, stopped by the test. Shared by the kv and limits tests. Header-only so
 * each test executable gets its own copy.
 */
#ifndef MK_TEST_REDIS_FIXTURE_H
#define MK_TEST_REDIS_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

struct test_redis {
    pid_t pid;
    int port;
};

/* A port the kernel just gave out and took back: free unless someone races us. */
static inline int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline void test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts redis-server on `port` (0 = pick one); waits until it answers PING (up to
 * 10 s). false when redis-server is missing or never came up. */
static inline bool test_redis_start(struct test_redis *r, int port)
{
    r->port = port ? port : test_free_port();
    if (r->port <= 0) return false;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", r->port);
    r->pid = fork();
    if (r->pid < 0) return false;
    if (r->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        redisContext *c = redisConnect("127.0.0.1", r->port);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep) freeReplyObject(rep);
            redisFree(c);
            if (ok) return true;
        } else if (c) {
            redisFree(c);
        }
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) return false;
        test_sleep_ms(10);
    }
    return false;
}

static inline void test_redis_stop(struct test_redis *r)
{
    if (r->pid <= 0) return;
    kill(r->pid, SIGKILL);
    int st;
    waitpid(r->pid, &st, 0);
    r->pid = 0;
}

/* One synchronous command on a fresh connection (for setting up faults). */
static inline bool test_redis_cmd(const struct test_redis *r, const char *cmd)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    if (!c || c->err) {
        if (c) redisFree(c);
        return false;
    }
    redisReply *rep = redisCommand(c, cmd);
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return ok;
}

static inline void test_redis_url(const struct test_redis *r, char *out, size_t n)
{
    snprintf(out, n, "redis://127.0.0.1:%d", r->port);
}

/* Runs `loop` until *flag is true or `ms` pass. A ref'd ticking timer keeps
 * uv_run from returning early and bounds every wait (tests never hang). */
static inline void test_tick(uv_timer_t *t) { (void)t; }
static inline bool test_run_until(uv_loop_t *loop, volatile bool *flag, long ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, test_tick, 5, 5);
    uint64_t start = uv_now(loop);
    while (!*flag && uv_now(loop) - start < (uint64_t)ms) uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

#endif
