/*
 * bench_data: what the agent-memory benchmark drivers share (memory_bench.c,
 * memory_tune.c): clocks, percentiles, the BANKING77 CSV reader and the fixed task
 * generator that gives every driver and the peer the same 100k episode tasks.
 * Header-only (each driver is one executable).
 */
#ifndef MK_BENCH_MEMORY_DATA_H
#define MK_BENCH_MEMORY_DATA_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct row {
    char *text;
    char *intent;
};

/* One CSV field (RFC 4180 quoting) from *p; advances past the separator. */
static inline char *csv_field(char **p)
{
    char *s = *p, *out = s, *w = s;
    if (*s == '"') {
        s++;
        for (;;) {
            if (*s == '"' && s[1] == '"') {
                *w++ = '"';
                s += 2;
            } else if (*s == '"') {
                s++;
                break;
            } else if (!*s) {
                break;
            } else {
                *w++ = *s++;
            }
        }
    } else {
        while (*s && *s != ',' && *s != '\n' && *s != '\r') *w++ = *s++;
    }
    while (*s && *s != ',' && *s != '\n') s++;
    if (*s == ',') s++;
    *w = '\0';
    *p = s;
    return out;
}

static inline struct row *load_csv(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "memory_bench: cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 1024, k = 0;
    struct row *rows = malloc(cap * sizeof *rows);
    char *line = NULL;
    size_t lcap = 0;
    bool header = true;
    while (getline(&line, &lcap, f) > 0) {
        if (header) {
            header = false;
            continue;
        }
        char *p = line;
        char *text = csv_field(&p), *intent = csv_field(&p);
        size_t il = strlen(intent);
        while (il && (intent[il - 1] == '\r' || intent[il - 1] == '\n')) intent[--il] = '\0';
        if (!*text || !*intent) continue;
        if (k == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
        rows[k].text = strdup(text);
        rows[k].intent = strdup(intent);
        k++;
    }
    free(line);
    fclose(f);
    *n = k;
    return rows;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static uint64_t lcg_state = 0x9E3779B97F4A7C15ull;
static inline uint32_t lcg(void)
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg_state >> 33);
}

/* The task texts: train texts, then pairs. Owned strings. */
static inline char **make_tasks(const struct row *train, size_t ntrain, size_t n, const char ***intents)
{
    char **t = malloc(n * sizeof *t);
    *intents = malloc(n * sizeof **intents);
    for (size_t i = 0; i < n; i++) {
        if (i < ntrain) {
            t[i] = strdup(train[i].text);
            (*intents)[i] = train[i].intent;
        } else {
            size_t a = lcg() % ntrain, b = lcg() % ntrain;
            size_t len = strlen(train[a].text) + strlen(train[b].text) + 2;
            t[i] = malloc(len);
            snprintf(t[i], len, "%s %s", train[a].text, train[b].text);
            (*intents)[i] = train[a].intent;
        }
    }
    return t;
}

#endif
