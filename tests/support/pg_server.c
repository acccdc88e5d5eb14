/*
 * pg_server: a throwaway PostgreSQL server for tests (see pg_server.h).
 *
 * Everything runs through fork + execve with an explicit argv (no shell), waiting with
 * a deadline so a wedged initdb or pg_ctl fails the test instead of hanging it.
 */
#include "pg_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Generous: initdb on a slow, busy CI machine under sanitizers takes seconds. */
#define CMD_TIMEOUT_S 120

static void errf(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t n, const char *fmt, ...)
{
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

/* Appends the last ~600 bytes of a log file to err. */
static void append_tail(char *err, size_t n, const char *path)
{
    if (!err || !n) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char buf[601];
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        fseek(f, size > 600 ? size - 600 : 0, SEEK_SET);
    }
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    size_t len = strlen(err);
    snprintf(err + len, n - len, "\n--- %s ---\n%s", path, buf);
}

static bool is_exe(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, X_OK) == 0;
}

bool pg_server_find(char *bindir, size_t n)
{
    const char *env = getenv("MAYAK_PG_BINDIR");
    if (env && *env) {
        snprintf(bindir, n, "%s", env);
        return is_exe(bindir, "initdb") && is_exe(bindir, "pg_ctl");
    }
    /* Debian: /usr/lib/postgresql/<major>/bin; take the newest. */
    long best = -1;
    DIR *d = opendir("/usr/lib/postgresql");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char *end;
            long v = strtol(e->d_name, &end, 10);
            if (end == e->d_name || *end || v <= best) continue;
            char dir[300];
            snprintf(dir, sizeof dir, "/usr/lib/postgresql/%s/bin", e->d_name);
            if (is_exe(dir, "initdb") && is_exe(dir, "pg_ctl")) {
                best = v;
                snprintf(bindir, n, "%s", dir);
            }
        }
        closedir(d);
    }
    if (best >= 0) return true;
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t len = strcspn(path, ":");
        snprintf(bindir, n, "%.*s", (int)len, path);
        if (len && is_exe(bindir, "initdb") && is_exe(bindir, "pg_ctl")) return true;
        path += len + (path[len] == ':');
    }
    return false;
}

/* Runs argv (argv[0] a full path) and waits up to CMD_TIMEOUT_S. Output goes to
 * log (appended) or /dev/null. Returns the exit status, or -1. */
static int run(const struct pg_server *s, bool as_server, char *const argv[], const char *log)
{
    /* The child's environment: ours plus the password for psql. Built before fork. */
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **envp = calloc(ne + 2, sizeof *envp);
    if (!envp) return -1;
    char pw[64];
    snprintf(pw, sizeof pw, "PGPASSWORD=%s", s->password);
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "PGPASSWORD=", 11) != 0) envp[k++] = environ[i];
    envp[k++] = pw;
    envp[k] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        return -1;
    }
    if (pid == 0) {
        /* Become the server's account first, so the log it appends to is its own. */
        if (as_server && s->as_other) {
            if (setgroups(0, NULL) || setgid(s->gid) || setuid(s->uid)) _exit(126);
        }
        int in = open("/dev/null", O_RDONLY);
        int out = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    free(envp);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 && errno != EINTR) return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > CMD_TIMEOUT_S) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *root)
{
    if (root[0]) nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int ctl(const struct pg_server *s, const char *what)
{
    char pg_ctl[256], data[160], log[160], opts[384];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", s->bindir);
    snprintf(data, sizeof data, "%s/data", s->root);
    snprintf(log, sizeof log, "%s/server.log", s->root);
    if (strcmp(what, "start") == 0) {
        /* The socket lives in the temp dir: nothing touches /var/run/postgresql. */
        snprintf(opts, sizeof opts,
                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
                 " -c shared_buffers=16MB -c max_connections=60 -c log_min_messages=warning",
                 s->port, s->root);
        char *argv[] = {pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-s", "-o", opts, "start", NULL};
        return run(s, true, argv, log);
    }
    char *argv[] = {pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "60", "-s", "stop", NULL};
    return run(s, true, argv, log);
}

/* The watchdog: waits on a pipe whose write end only the starting process holds.
 * A 'q' means "cleaned up already"; end-of-file without it means that process died:
 * stop the server and remove its files. */
static void watchdog(struct pg_server *s, int rfd)
{
    signal(SIGINT, SIG_IGN);   /* a ^C to the test's process group must not skip cleanup */
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    char ch = 0;
    ssize_t n;
    do n = read(rfd, &ch, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1 && ch == 'q') _exit(0);
    ctl(s, "stop");
    rm_rf(s->root);
    _exit(0);
}

static int start_watchdog(struct pg_server *s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        /* Hold nothing of the parent's (a pipe it waits on, a test runner's socket). */
        int keep = fds[0];
        for (int fd = 3; fd < 1024; fd++)
            if (fd != keep) close(fd);
        setsid();  /* out of the test's process group: a group kill leaves it to clean up */
        watchdog(s, keep);
    }
    close(fds[0]);
    s->guard_fd = fds[1];
    s->guard_pid = pid;
    return 0;
}

int pg_server_start(struct pg_server *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->guard_fd = -1;
    if (!pg_server_find(s->bindir, sizeof s->bindir)) {
        errf(err, errlen, "PostgreSQL server binaries not found (install postgresql or set MAYAK_PG_BINDIR)");
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            errf(err, errlen, "running as root and there is no 'postgres' account to run the server as");
            return -1;
        }
        s->as_other = true;
        s->uid = pw->pw_uid;
        s->gid = pw->pw_gid;
    }
    snprintf(s->user, sizeof s->user, "mayak");
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(s->password + 2 * i, 3, "%02x", rnd[i]);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->root, sizeof s->root, "%s/mk-pg-XXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(s->root)) {
        errf(err, errlen, "mkdtemp: %s", strerror(errno));
        s->root[0] = '\0';
        return -1;
    }
    s->owner = true;
    char pwfile[160], initdb_log[160];
    snprintf(pwfile, sizeof pwfile, "%s/pwfile", s->root);
    snprintf(initdb_log, sizeof initdb_log, "%s/initdb.log", s->root);
    FILE *f = fopen(pwfile, "w");
    if (!f) goto fail;
    fprintf(f, "%s\n", s->password);
    fclose(f);
    if (s->as_other && (chown(s->root, s->uid, s->gid) || chown(pwfile, s->uid, s->gid))) {
        errf(err, errlen, "chown %s: %s", s->root, strerror(errno));
        goto fail;
    }
    if (start_watchdog(s)) {
        errf(err, errlen, "cannot start the cleanup watchdog: %s", strerror(errno));
        goto fail;
    }
    char initdb[256], data[160], pwarg[192];
    snprintf(initdb, sizeof initdb, "%s/initdb", s->bindir);
    snprintf(data, sizeof data, "%s/data", s->root);
    snprintf(pwarg, sizeof pwarg, "--pwfile=%s", pwfile);
    char *argv[] = {initdb, "-D", data, "-U", s->user, pwarg, "--auth-local=trust", "--auth-host=scram-sha-256",
                    "-E", "UTF8", "--no-locale", "-N", NULL};
    if (run(s, true, argv, initdb_log) != 0) {
        errf(err, errlen, "initdb failed");
        append_tail(err, errlen, initdb_log);
        goto fail;
    }
    /* A free port can be taken between our probe and the server's bind: retry. */
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((s->port = free_port()) < 0) continue;
        if (ctl(s, "start") == 0) {
            s->running = true;
            return 0;
        }
    }
    errf(err, errlen, "pg_ctl start failed");
    char log[160];
    snprintf(log, sizeof log, "%s/server.log", s->root);
    append_tail(err, errlen, log);
fail:
    pg_server_stop(s);
    return -1;
}

void pg_server_stop(struct pg_server *s)
{
    if (!s->owner) return;
    if (s->running) ctl(s, "stop");
    s->running = false;
    rm_rf(s->root);
    if (s->guard_fd >= 0) {
        ssize_t w = write(s->guard_fd, "q", 1);
        (void)w;
        close(s->guard_fd);
        waitpid(s->guard_pid, NULL, 0);
        s->guard_fd = -1;
    }
    s->owner = false;
}

int pg_server_halt(struct pg_server *s, char *err, size_t errlen)
{
    if (!s->running) return 0;
    if (ctl(s, "stop") != 0) {
        errf(err, errlen, "pg_ctl stop failed");
        return -1;
    }
    s->running = false;
    return 0;
}

int pg_server_resume(struct pg_server *s, char *err, size_t errlen)
{
    if (s->running) return 0;
    if (ctl(s, "start") != 0) {
        errf(err, errlen, "pg_ctl start failed");
        char log[160];
        snprintf(log, sizeof log, "%s/server.log", s->root);
        append_tail(err, errlen, log);
        return -1;
    }
    s->running = true;
    return 0;
}

int pg_server_url(const struct pg_server *s, const char *db, const char *extra, char *out, size_t n)
{
    int w = snprintf(out, n, "postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable%s%s", s->user, s->password, s->port,
                     db, extra ? "&" : "", extra ? extra : "");
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int pg_server_psql(const struct pg_server *s, const char *db, const char *sql, char *err, size_t errlen)
{
    char psql[256], port[16], log[160];
    snprintf(psql, sizeof psql, "%s/psql", s->bindir);
    snprintf(port, sizeof port, "%d", s->port);
    /* Per call, so parallel tests do not mix their output. */
    snprintf(log, sizeof log, "%s/psql-%d.log", s->root, (int)getpid());
    unlink(log);
    char *argv[] = {psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", port, "-U", (char *)s->user,
                    "-d", (char *)db, "-c", (char *)sql, NULL};
    int rc = run(s, false, argv, log);
    if (rc != 0) {
        errf(err, errlen, "psql failed (%d) running: %s", rc, sql);
        append_tail(err, errlen, log);
    }
    unlink(log);
    return rc == 0 ? 0 : -1;
}

static bool safe_name(const char *name)
{
    if (!*name || strlen(name) > 60) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    return true;
}

int pg_server_create_db(const struct pg_server *s, const char *name, char *err, size_t errlen)
{
    if (!safe_name(name)) {
        errf(err, errlen, "bad database name '%s'", name);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    return pg_server_psql(s, "postgres", sql, err, errlen);
}

int pg_server_drop_db(const struct pg_server *s, const char *name)
{
    if (!safe_name(name)) return -1;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    return pg_server_psql(s, "postgres", sql, NULL, 0);
}

int pg_server_export(const struct pg_server *s, const char *prefix)
{
    char name[64], val[32];
    int rc = 0;
#define PUT(suffix, value)                                      \
    snprintf(name, sizeof name, "%s_%s", prefix, suffix);      \
    rc |= setenv(name, value, 1);
    PUT("ROOT", s->root);
    PUT("BINDIR", s->bindir);
    snprintf(val, sizeof val, "%d", s->port);
    PUT("PORT", val);
    PUT("USER", s->user);
    PUT("PASSWORD", s->password);
#undef PUT
    return rc ? -1 : 0;
}

int pg_server_import(struct pg_server *s, const char *prefix)
{
    memset(s, 0, sizeof *s);
    s->guard_fd = -1;
    char name[64];
    const char *v[5];
    const char *suffix[5] = {"ROOT", "BINDIR", "PORT", "USER", "PASSWORD"};
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "%s_%s", prefix, suffix[i]);
        if (!(v[i] = getenv(name))) return -1;
    }
    snprintf(s->root, sizeof s->root, "%s", v[0]);
    snprintf(s->bindir, sizeof s->bindir, "%s", v[1]);
    char *end;
    long port = strtol(v[2], &end, 10);
    if (*end || port <= 0 || port > 65535) return -1;
    s->port = (int)port;
    snprintf(s->user, sizeof s->user, "%s", v[3]);
    snprintf(s->password, sizeof s->password, "%s", v[4]);
    s->running = true;
    return 0;
}
