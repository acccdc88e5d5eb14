/*
 * bench_audit: audit append throughput, Streebog-256 vs SHA-256.
 *
 *   bench_audit [records] [dir]      (defaults: 200000, a fresh directory under /tmp)
 *
 * For each hash and two record shapes ("meta": ids, verdicts, outcome, no texts;
 * "1k+1k": the same plus a 1 KB prompt and a 1 KB answer to digest) it appends
 * `records` records from one thread as fast as it can, then waits for the last batch to
 * commit (mk_audit_flush). Reported:
 *   - caller us/rec: time inside mk_audit_append per record (what a request pays);
 *   - amortised us/rec and rec/s: wall time from the first append to the final commit,
 *     divided by records (the writer thread's SQLite work included);
 *   - after that, a verify of the whole chain (records/s), for scale.
 * Each run uses a fresh SQLite file (WAL, synchronous=FULL, the default store options).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/mk_audit.h"
#include "core/mk_time.h"
#include "store/mk_store.h"

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
    for (size_t i = 0; i < sh->text_bytes; i++) text[i] = "Как сбросить пароль? How do I reset it? "[i % 40];
    char rid[32];
    struct mk_audit_record r = {
        .request_id = rid, .principal = "key_9f8e7d6c", .tenant = "acme", .action = "chat.completions",
        .model_group = "support", .deployment = "gigachat/GigaChat-Pro",
        .verdicts_json = "{\"injection\":{\"score\":0.03,\"action\":\"allow\"},\"pii\":{\"found\":[\"INN\"],\"action\":\"mask\"}}",
        .prompt = sh->text_bytes ? text : NULL, .prompt_len = sh->text_bytes,
        .answer = sh->text_bytes ? text : NULL, .answer_len = sh->text_bytes,
        .outcome = "ok", .status = 200};
    uint64_t in_append = 0;
    uint64_t t0 = mk_now_us();
    for (long i = 0; i < n; i++) {
        snprintf(rid, sizeof rid, "%016lx", (unsigned long)i * 2654435761u);
        uint64_t a0 = mk_now_us();
        int rc = mk_audit_append(a, &r, NULL);
        in_append += mk_now_us() - a0;
        if (rc) {
            fprintf(stderr, "append %ld failed: %d\n", i, rc);
            return 1;
        }
    }
    uint64_t t_appended = mk_now_us();
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
    printf("| %-11s | %-6s | %8ld | %9.2f | %9.2f | %10.0f | %11.2f | %12.0f | %s |\n", mk_audit_hash_name(alg),
           sh->name, n, (double)in_append / (double)n, total / (double)n, (double)n * 1e6 / total,
           (double)(t_appended - t0) / (double)n, (double)n * 1e6 / (double)(v1 - v0),
           vrc == 0 && rep.ok ? "ok" : "FAILED");
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
    printf("| hash        | shape  | records  | caller us | amort. us | records/s  | append-only | verify rec/s | check |\n");
    printf("|-------------|--------|----------|-----------|-----------|------------|-------------|--------------|-------|\n");
    int bad = 0;
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++) bad |= run(root, algs[i], &shapes[j], n);
    return bad;
}
