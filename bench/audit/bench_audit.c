/*
 * bench_audit: audit append cost on the caller's thread, and the writer's throughput,
 * Streebog-256 vs SHA-256.
 *
 *   bench_audit [records] [dir]      (defaults: 200000, a fresh directory under /tmp)
 *
 * For each hash and two record shapes ("meta": ids, verdicts, outcome, no texts;
 * "1k+1k": the same plus a 1 KB prompt and a 1 KB answer to digest) it appends
 * `records` records from one thread as fast as it can, then waits for the last batch to
 * commit (mk_audit_flush). Reported:
 *   - caller: what a request pays in mk_audit_append (the hashing is the writer's):
 *     the appending thread's CPU time per record (the loop's, so it includes making the
 *     request id and reading the clock; unaffected by being descheduled), then wall
 *     time inside the call: mean, and the 50th/99th percentile of single calls (a
 *     loaded machine's preemptions and page faults show in the mean and the tail);
 *   - writer: records/s and us/record from the first append to the final commit (the
 *     writer thread's digests, chain hashes and SQLite work; the caller is far ahead,
 *     so this is the writer's own pace);
 *   - after that, a verify of the whole chain (records/s), for scale.
 * Each run uses a fresh SQLite file (WAL, synchronous=FULL, the default store options).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/mk_audit.h"
#include "core/mk_time.h"
#include "store/mk_store.h"

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

struct shape {
    const char *name;
    size_t text_bytes;  /* prompt and answer each; 0 = none */
};

static int run(const char *root, enum mk_audit_hash alg, const struct shape *sh, long n)
{
    char dir[512], db[600];
    snprintf(dir, sizeof dir, "%s/%s-%s", root, mk_audit_hash_name(alg), sh->name);
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        return 1;
    }
    snprintf(db, sizeof db, "%s/mayak.db", dir);
    struct mk_store *s;
    mk_buf err = MK_BUF_INIT;
    if (mk_store_open(db, NULL, &s, &err)) {
        fprintf(stderr, "%s\n", err.data);
        return 1;
    }
    struct mk_audit *a;
    struct mk_audit_options o = {.hash = alg};
    if (mk_audit_open(s, dir, &o, &a, &err)) {
        fprintf(stderr, "%s\n", err.data);
        return 1;
    }
    char *text = malloc(sh->text_bytes + 1);
    if (!text) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < sh->text_bytes; i++) text[i] = "Как сбросить пароль? How do I reset it? "[i % 40];
    char rid[32];
    struct mk_audit_record r = {
        .request_id = rid, .principal = "key_9f8e7d6c", .tenant = "acme", .action = "chat.completions",
        .model_group = "support", .deployment = "gigachat/GigaChat-Pro",
        .verdicts_json = "{\"injection\":{\"score\":0.03,\"action\":\"allow\"},\"pii\":{\"found\":[\"INN\"],\"action\":\"mask\"}}",
        .prompt = sh->text_bytes ? text : NULL, .prompt_len = sh->text_bytes,
        .answer = sh->text_bytes ? text : NULL, .answer_len = sh->text_bytes,
        .outcome = "ok", .status = 200};
    uint32_t *lat = malloc((size_t)n * sizeof *lat);  /* ns per call */
    if (!lat) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t in_append = 0;
    uint64_t t0 = mk_now_us();
    uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < n; i++) {
        snprintf(rid, sizeof rid, "%016lx", (unsigned long)i * 2654435761u);
        uint64_t a0 = now_ns();
        int rc = mk_audit_append(a, &r, NULL);
        uint64_t d = now_ns() - a0;
        in_append += d;
        lat[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        if (rc) {
            fprintf(stderr, "append %ld failed: %d\n", i, rc);
            return 1;
        }
    }
    uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    if (mk_audit_flush(a, 600000)) {
        fprintf(stderr, "flush timed out\n");
        return 1;
    }
    uint64_t t_durable = mk_now_us();
    mk_audit_free(a);
    struct mk_audit_verify_report rep;
    uint64_t v0 = mk_now_us();
    int vrc = mk_audit_verify(s, NULL, &rep);
    uint64_t v1 = mk_now_us();
    mk_store_free(s);
    free(text);
    mk_buf_release(&err);
    double total = (double)(t_durable - t0);
    qsort(lat, (size_t)n, sizeof *lat, cmp_u32);
    double p50 = lat[n / 2] / 1e3, p99 = lat[(size_t)n * 99 / 100] / 1e3;
    free(lat);
    printf("| %-11s | %-6s | %8ld | %13.2f | %7.2f | %7.2f | %7.2f | %10.2f | %10.0f | %12.0f | %s |\n",
           mk_audit_hash_name(alg), sh->name, n, (double)cpu / 1e3 / (double)n, (double)in_append / 1e3 / (double)n,
           p50, p99, total / (double)n,
           (double)n * 1e6 / total, (double)n * 1e6 / (double)(v1 - v0), vrc == 0 && rep.ok ? "ok" : "FAILED");
    return vrc == 0 && rep.ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    if (n <= 0) n = 200000;
    char root[256];
    if (argc > 2) snprintf(root, sizeof root, "%s", argv[2]);
    else {
        snprintf(root, sizeof root, "/tmp/mayak-bench-audit-XXXXXX");
        if (!mkdtemp(root)) {
            perror("mkdtemp");
            return 1;
        }
    }
    const struct shape shapes[] = {{"meta", 0}, {"1k+1k", 1024}};
    const enum mk_audit_hash algs[] = {MK_AUDIT_STREEBOG256, MK_AUDIT_SHA256};
    printf("records in %s (data left there; remove it when done)\n\n", root);
    printf("| hash        | shape  | records  | caller CPU us | wall us | p50 us  | p99 us  | writer us  | writer r/s | verify rec/s | check |\n");
    printf("|-------------|--------|----------|---------------|---------|---------|---------|------------|------------|--------------|-------|\n");
    int bad = 0;
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++) bad |= run(root, algs[i], &shapes[j], n);
    return bad;
}
