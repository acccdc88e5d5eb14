/*
 * bench_util: small helpers shared by the benchmark drivers (loadgen.c, streams.c).
 *
 * Each bench/NAME.c builds into its own executable, so these are static functions in a
 * header rather than a library. The drivers depend only on libc, Linux epoll and
 * http-parser, so they build even while the rest of Mayak is mid-edit (the bench
 * scripts fall back to `cc bench/X.c -lhttp_parser` when the CMake build is broken).
 *
 * Safety rule of every benchmark: targets are loopback addresses only; bench_addr()
 * refuses anything outside 127.0.0.0/8.
 */
#ifndef MK_BENCH_UTIL_H
#define MK_BENCH_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Parses a whole decimal number in [min, max]; 0 on success, -1 otherwise. */
static inline int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses a non-negative decimal fraction ("2.5") in [min, max]. */
static inline int bench_parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

/* Fills *sa with host:port. Loopback IPv4 only (127.0.0.0/8): the benchmarks must
 * never send load anywhere else. 0 or -1 with a message on stderr. */
static inline int bench_addr(const char *host, uint64_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        fprintf(stderr, "bad host '%s': give an IPv4 loopback literal such as 127.0.0.1\n", host);
        return -1;
    }
    if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "refusing host '%s': benchmarks target 127.0.0.0/8 only\n", host);
        return -1;
    }
    if (port == 0 || port > 65535) {
        fprintf(stderr, "bad port %llu\n", (unsigned long long)port);
        return -1;
    }
    sa->sin_port = htons((uint16_t)port);
    return 0;
}

/* Starts a non-blocking TCP connect with TCP_NODELAY. Returns the fd (the connect may
 * still be in progress: wait for EPOLLOUT and check SO_ERROR) or -1 with errno set. */
static inline int bench_connect(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The pending error of a socket whose non-blocking connect finished (0 = connected). */
static inline int bench_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

/* Reads a whole file (capped at max bytes) into a NUL-terminated malloc'd buffer.
 * Returns NULL with a message on failure; *len gets the size without the NUL. */
static inline char *bench_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f) || n > max;
    fclose(f);
    if (bad) {
        fprintf(stderr, "cannot read %s (error, or larger than %zu bytes)\n", path, max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A field such as "VmRSS" from /proc/<pid>/status, in kB; -1 if unavailable. */
static inline long bench_proc_status_kb(long pid, const char *field)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    size_t flen = strlen(field);
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            char *end = NULL;
            long v = strtol(line + flen + 1, &end, 10);
            if (end != line + flen + 1)
                kb = v;
            break;
        }
    }
    fclose(f);
    return kb;
}

static int bench_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts v and prints "<label> count=N p50=.. p90=.. p99=.. p999=.. max=.. mean=.." in
 * the unit of the samples (microseconds in our drivers). Nearest-rank percentiles. */
static inline void bench_print_dist(FILE *out, const char *label, uint32_t *v, size_t n)
{
    if (n == 0) {
        fprintf(out, "%s count=0\n", label);
        return;
    }
    qsort(v, n, sizeof(*v), bench_cmp_u32);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    const double qs[] = {0.50, 0.90, 0.99, 0.999};
    const char *names[] = {"p50", "p90", "p99", "p999"};
    fprintf(out, "%s count=%zu", label, n);
    for (size_t q = 0; q < 4; q++) {
        size_t rank = (size_t)(qs[q] * (double)n + 0.999999);
        if (rank < 1)
            rank = 1;
        if (rank > n)
            rank = n;
        fprintf(out, " %s=%u", names[q], v[rank - 1]);
    }
    fprintf(out, " max=%u mean=%.1f\n", v[n - 1], sum / (double)n);
}

#endif
