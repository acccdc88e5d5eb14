/*
 * A throwaway RabbitMQ broker for tests, header-only (one copy per test executable).
 *
 * rmq_start creates a temp dir, picks free ports for AMQP, Erlang distribution and
 * epmd, and starts Debian's rabbitmq-server as a node of its own (unique node name,
 * mnesia and logs in the temp dir, no plugins: the management plugin is not loaded)
 * listening on 127.0.0.1. It returns once the node logged "Server startup complete"
 * and the port accepts connections (up to RMQ_START_TIMEOUT_MS; startup takes several
 * seconds). The broker's pid is read from its pid file, so any process that knows the
 * temp dir can stop it: Criterion runs each test in its own process, so one broker is
 * started in a ReportHook(PRE_ALL), published through environment variables
 * (rmq_export / rmq_import), restarted by a test (rmq_halt + rmq_resume: same data,
 * same port), and stopped in ReportHook(POST_ALL).
 *
 * Cleanup is always: rmq_stop stops the broker and its epmd and removes the temp dir;
 * a watchdog process started with it does the same if the starting process dies
 * without calling stop (a crash, a timeout kill).
 */
#ifndef MK_TEST_RMQ_SERVER_H
#define MK_TEST_RMQ_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RMQ_START_TIMEOUT_MS 45000
#define RMQ_STOP_TIMEOUT_MS 15000
#define RMQ_SERVER_BIN "/usr/lib/rabbitmq/bin/rabbitmq-server"

struct rmq_server {
    char root[96];
    char node[64];
    int port, dist_port, epmd_port;
    bool owner;
    int guard_fd;
    pid_t guard_pid;
};

static inline long rmq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline void rmq_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline int rmq_free_port(void)
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

static inline bool rmq_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static inline void rmq_path(const struct rmq_server *s, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", s->root, name);
}

/* The beam's pid from the pid file, 0 when none. */
static inline pid_t rmq_pid(const struct rmq_server *s)
{
    char p[160], buf[32] = {0};
    rmq_path(s, "rabbit.pid", p, sizeof p);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    long v = strtol(buf, NULL, 10);
    return v > 1 ? (pid_t)v : 0;
}

static inline void rmq_env(const struct rmq_server *s)
{
    char v[200];
    setenv("HOME", s->root, 1); /* the Erlang cookie lives here */
    setenv("RABBITMQ_NODENAME", s->node, 1);
    setenv("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1", 1);
    snprintf(v, sizeof v, "%d", s->port);
    setenv("RABBITMQ_NODE_PORT", v, 1);
    snprintf(v, sizeof v, "%d", s->dist_port);
    setenv("RABBITMQ_DIST_PORT", v, 1);
    snprintf(v, sizeof v, "%d", s->epmd_port);
    setenv("ERL_EPMD_PORT", v, 1);
    rmq_path(s, "mnesia", v, sizeof v);
    setenv("RABBITMQ_MNESIA_BASE", v, 1);
    rmq_path(s, "log", v, sizeof v);
    setenv("RABBITMQ_LOG_BASE", v, 1);
    rmq_path(s, "enabled_plugins", v, sizeof v);
    setenv("RABBITMQ_ENABLED_PLUGINS_FILE", v, 1);
    rmq_path(s, "rabbit.pid", v, sizeof v);
    setenv("RABBITMQ_PID_FILE", v, 1);
    rmq_path(s, "rabbitmq", v, sizeof v);
    setenv("RABBITMQ_CONFIG_FILE", v, 1);
    rmq_path(s, "advanced.config", v, sizeof v);
    setenv("RABBITMQ_ADVANCED_CONFIG_FILE", v, 1);
    rmq_path(s, "rabbitmq-env.conf", v, sizeof v);
    setenv("RABBITMQ_CONF_ENV_FILE", v, 1);
}

/* Runs the server in the background (its own session) and waits until it is up. */
static inline int rmq_count_started(const struct rmq_server *s)
{
    char p[200];
    snprintf(p, sizeof p, "%s/log/%s.log", s->root, s->node);
    FILE *f = fopen(p, "r");
    int c = 0;
    if (f) {
        char line[2048];
        while (fgets(line, sizeof line, f))
            if (strstr(line, "Server startup complete")) c++;
        fclose(f);
    }
    return c;
}

static inline int rmq_launch(struct rmq_server *s, char *err, size_t errlen)
{
    /* A restart appends to the same log: wait for one more "startup complete". */
    int before = rmq_count_started(s);
    char logp[160];
    rmq_path(s, "server.out", logp, sizeof logp);
    /* Started through an intermediate process that exits at once, so the broker is
     * nobody's child here: Criterion's runner reaps its workers itself and must not
     * see an unknown child end later. */
    int pfd[2];
    if (pipe(pfd) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t mid = fork();
    if (mid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (mid == 0) {
        setsid();
        pid_t pid = fork();
        if (pid == 0) {
            rmq_env(s);
            int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            int nul = open("/dev/null", O_RDONLY);
            if (nul >= 0) dup2(nul, 0);
            /* Nothing else of ours: a broker outliving a test process must not hold
             * the test runner's pipes open. */
            for (int i = 3; i < 1024; i++) close(i);
            execl(RMQ_SERVER_BIN, "rabbitmq-server", (char *)NULL);
            _exit(127);
        }
        ssize_t w = write(pfd[1], &pid, sizeof pid);
        (void)w;
        _exit(0);
    }
    close(pfd[1]);
    pid_t pid = -1;
    ssize_t r = read(pfd[0], &pid, sizeof pid);
    close(pfd[0]);
    waitpid(mid, NULL, 0);
    if (r != (ssize_t)sizeof pid || pid <= 0) {
        snprintf(err, errlen, "could not start rabbitmq-server");
        return -1;
    }
    long deadline = rmq_now_ms() + RMQ_START_TIMEOUT_MS;
    while (rmq_now_ms() < deadline) {
        if (kill(pid, 0) != 0) {
            snprintf(err, errlen, "rabbitmq-server exited during startup (see %s)", logp);
            return -1;
        }
        if (rmq_count_started(s) > before && rmq_port_open(s->port)) return 0;
        rmq_sleep_ms(50);
    }
    kill(-pid, SIGKILL);
    snprintf(err, errlen, "rabbitmq-server did not start within %d ms (see %s)", RMQ_START_TIMEOUT_MS, logp);
    return -1;
}

static inline int rmq_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Stops the broker (TERM, then KILL after RMQ_STOP_TIMEOUT_MS). Any process may. */
static inline void rmq_halt(struct rmq_server *s)
{
    pid_t pid = rmq_pid(s);
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    long deadline = rmq_now_ms() + RMQ_STOP_TIMEOUT_MS;
    while (kill(pid, 0) == 0 && rmq_now_ms() < deadline) rmq_sleep_ms(20);
    if (kill(pid, 0) == 0) kill(pid, SIGKILL);
    char p[160];
    rmq_path(s, "rabbit.pid", p, sizeof p);
    unlink(p);
}

static inline int rmq_resume(struct rmq_server *s, char *err, size_t errlen)
{
    /* rmq_launch waits for one more "startup complete" line than the log has now. */
    return rmq_launch(s, err, errlen);
}

static inline void rmq_kill_epmd(const struct rmq_server *s)
{
    pid_t pid = fork();
    if (pid == 0) {
        char port[16];
        snprintf(port, sizeof port, "%d", s->epmd_port);
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) dup2(nul, 1), dup2(nul, 2);
        for (int i = 3; i < 1024; i++) close(i);
        execlp("epmd", "epmd", "-port", port, "-kill", (char *)NULL);
        execl("/usr/lib/erlang/bin/epmd", "epmd", "-port", port, "-kill", (char *)NULL);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
}

static inline void rmq_cleanup(struct rmq_server *s)
{
    rmq_halt(s);
    rmq_kill_epmd(s);
    if (s->root[0]) nftw(s->root, rmq_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int rmq_start(struct rmq_server *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->guard_fd = -1;
    if (access(RMQ_SERVER_BIN, X_OK) != 0) {
        snprintf(err, errlen, "%s not found (Debian package rabbitmq-server)", RMQ_SERVER_BIN);
        return -1;
    }
    snprintf(s->root, sizeof s->root, "/tmp/mk-rmq-XXXXXX");
    if (!mkdtemp(s->root)) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    snprintf(s->node, sizeof s->node, "mkbus%d@localhost", (int)getpid());
    s->port = rmq_free_port();
    s->dist_port = rmq_free_port();
    s->epmd_port = rmq_free_port();
    char p[160];
    rmq_path(s, "enabled_plugins", p, sizeof p);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("[].\n", f);
        fclose(f);
    }
    s->owner = true;
    int fds[2];
    if (pipe(fds) == 0) {
        pid_t g = fork();
        if (g == 0) {
            /* Out of the test's process group and deaf to its signals: a runner killed
             * by a timeout (which signals the whole group) must still be cleaned up. */
            setsid();
            signal(SIGTERM, SIG_IGN);
            signal(SIGINT, SIG_IGN);
            signal(SIGHUP, SIG_IGN);
            close(fds[1]);
            char c = 0;
            ssize_t r;
            while ((r = read(fds[0], &c, 1)) < 0 && errno == EINTR) {}
            if (r == 1 && c == 'q') _exit(0); /* stopped properly */
            rmq_cleanup(s);
            _exit(0);
        }
        close(fds[0]);
        if (g > 0) {
            s->guard_fd = fds[1];
            s->guard_pid = g;
            fcntl(fds[1], F_SETFD, FD_CLOEXEC);
        } else {
            close(fds[1]);
        }
    }
    if (s->port <= 0 || s->dist_port <= 0 || s->epmd_port <= 0 || rmq_launch(s, err, errlen) != 0) {
        if (s->port <= 0) snprintf(err, errlen, "no free port");
        return -1; /* the caller calls rmq_stop */
    }
    return 0;
}

static inline void rmq_stop(struct rmq_server *s)
{
    if (!s->owner) return;
    rmq_cleanup(s);
    if (s->guard_fd >= 0) {
        ssize_t w = write(s->guard_fd, "q", 1);
        (void)w;
        close(s->guard_fd);
        waitpid(s->guard_pid, NULL, 0);
        s->guard_fd = -1;
    }
    s->owner = false;
}

static inline void rmq_url(const struct rmq_server *s, char *out, size_t n)
{
    snprintf(out, n, "amqp://guest:guest@127.0.0.1:%d/%%2f", s->port);
}

static inline void rmq_export(const struct rmq_server *s)
{
    char v[32];
    setenv("MK_TEST_RMQ_ROOT", s->root, 1);
    setenv("MK_TEST_RMQ_NODE", s->node, 1);
    snprintf(v, sizeof v, "%d,%d,%d", s->port, s->dist_port, s->epmd_port);
    setenv("MK_TEST_RMQ_PORTS", v, 1);
}

static inline int rmq_import(struct rmq_server *s)
{
    memset(s, 0, sizeof *s);
    s->guard_fd = -1;
    const char *root = getenv("MK_TEST_RMQ_ROOT"), *node = getenv("MK_TEST_RMQ_NODE"),
               *ports = getenv("MK_TEST_RMQ_PORTS");
    if (!root || !node || !ports) return -1;
    snprintf(s->root, sizeof s->root, "%s", root);
    snprintf(s->node, sizeof s->node, "%s", node);
    if (sscanf(ports, "%d,%d,%d", &s->port, &s->dist_port, &s->epmd_port) != 3) return -1;
    return 0;
}

#endif
