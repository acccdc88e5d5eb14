/*
 * bench/guard/speed_guard: one-core speed of normalisation and injection scan.
 *
 *   guard_speed_guard --data FILE.jsonl [--kb N] [--seconds S] [--model M]
 *
 * Builds "typical" requests of about N KB (default 1) by joining consecutive
 * benign texts (label 0; --all: attacks too) of the file, the mix a gateway
 * mostly sees, then reports, per stage, CPU microseconds per KB and requests
 * per second on this thread:
 *   normalize    mk_normalize only
 *   rules        mk_injection_scan without the classifier
 *   full         mk_injection_scan with the classifier (the input guard's injection part)
 *   guard        full + PII detection and placeholder masking into a fresh vault per
 *                request: the whole input guard, as src/pipeline/filter_guard.c runs it
 * CPU time (CLOCK_THREAD_CPUTIME_ID), so other load on the machine inflates the
 * numbers less than wall time would. --only STAGE runs one stage; --passes N runs
 * exactly N passes over the requests instead of --seconds (for callgrind, whose
 * instruction counts do not depend on the machine's load).
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_buf.h"
#include "guard/mk_injection.h"
#include "guard/mk_normalize.h"
#include "guard/mk_pii.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct req { char *s; size_t n; };

static void report(const char *name, double secs, size_t reqs, double bytes)
{
    printf("%-10s %8.2f us/KB %10.0f req/s  (%zu requests, %.1f KB avg)\n", name, secs * 1e6 / (bytes / 1024.0),
           (double)reqs / secs, reqs, bytes / (double)reqs / 1024.0);
}

struct stage_ctx {
    struct req *reqs;
    size_t nreq;
    double seconds;
    long passes;
    struct mk_norm norm;
    struct mk_injection *det;
    mk_pii_policy pii;
    mk_buf masked;
    size_t flagged, pii_found;
};

static void stage_normalize(struct stage_ctx *c, const struct req *r) { mk_normalize(&c->norm, r->s, r->n); }

static void stage_scan(struct stage_ctx *c, const struct req *r)
{
    struct mk_injection_verdict v;
    mk_injection_scan(c->det, r->s, r->n, &v);
    c->flagged += v.decision != MK_GUARD_ALLOW;
}

/* The whole input guard as src/pipeline/filter_guard.c runs it: the injection
 * scan, then PII detection and placeholder masking into a fresh vault. */
static void stage_guard(struct stage_ctx *c, const struct req *r)
{
    stage_scan(c, r);
    mk_pii_vault *vault = mk_pii_vault_new();
    size_t applied = 0;
    mk_buf_reset(&c->masked);
    if (vault && mk_pii_redact(r->s, r->n, NULL, &c->pii, vault, &c->masked, &applied) == 0) c->pii_found += applied;
    mk_pii_vault_free(vault);
}

/* Runs fn over every request, for --passes passes or until --seconds of CPU. */
static void run_stage(struct stage_ctx *c, const char *name, void (*fn)(struct stage_ctx *, const struct req *))
{
    double t0 = now(), bytes = 0;
    size_t done = 0;
    for (long p = 0; c->passes > 0 ? p < c->passes : now() - t0 < c->seconds; p++) {
        for (size_t i = 0; i < c->nreq; i++) {
            fn(c, &c->reqs[i]);
            bytes += (double)c->reqs[i].n;
            done++;
        }
    }
    report(name, now() - t0, done, bytes);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *model = NULL;
    double kb = 1.0, seconds = 2.0;
    bool all = false;
    const char *only = NULL;
    long passes = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) data = argv[++i];
        else if (strcmp(argv[i], "--kb") == 0 && i + 1 < argc) kb = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model = argv[++i];
        else if (strcmp(argv[i], "--all") == 0) all = true;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc) passes = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s --data FILE.jsonl [--kb N] [--seconds S | --passes N] [--model M] [--all]\n"
                            "         [--only normalize|rules|full|guard]\n", argv[0]);
            return 2;
        }
    }
    if (!data || kb <= 0 || seconds <= 0) { fprintf(stderr, "--data is required\n"); return 2; }
    FILE *f = fopen(data, "rb");
    if (!f) { perror(data); return 1; }
    size_t target = (size_t)(kb * 1024), nreq = 0, capreq = 0;
    struct req *reqs = NULL;
    mk_buf cur = MK_BUF_INIT;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        json_object *o = json_tokener_parse(line), *jt, *jl;
        if (o && json_object_object_get_ex(o, "text", &jt) &&
            (all || (json_object_object_get_ex(o, "label", &jl) && json_object_get_int(jl) == 0))) {
            if (cur.len) mk_buf_append_char(&cur, '\n');
            mk_buf_append(&cur, json_object_get_string(jt), (size_t)json_object_get_string_len(jt));
            if (cur.len >= target) {
                if (nreq == capreq) { capreq = capreq ? capreq * 2 : 256; reqs = realloc(reqs, capreq * sizeof(*reqs)); }
                /* Cut at the target on a character boundary. */
                size_t n = target;
                while (n < cur.len && ((unsigned char)cur.data[n] & 0xC0) == 0x80) n++;
                reqs[nreq].s = malloc(n);
                memcpy(reqs[nreq].s, cur.data, n);
                reqs[nreq].n = n;
                nreq++;
                mk_buf_reset(&cur);
            }
        }
        json_object_put(o);
    }
    fclose(f);
    free(line);
    mk_buf_release(&cur);
    if (nreq == 0) { fprintf(stderr, "no requests built\n"); return 1; }

    struct stage_ctx ctx = {.reqs = reqs, .nreq = nreq, .seconds = seconds, .passes = passes};
    mk_norm_init(&ctx.norm);
    ctx.pii.mode = MK_PII_MODE_PLACEHOLDER;
    if (!only || strcmp(only, "normalize") == 0) run_stage(&ctx, "normalize", stage_normalize);
    for (int pass = 0; pass < 2; pass++) {
        bool rules = !only || strcmp(only, "rules") == 0;
        bool rest = !only || strcmp(only, "full") == 0 || strcmp(only, "guard") == 0;
        if (pass == 0 ? !rules : !rest) continue;
        struct mk_injection_options opt = {.model_path = model, .no_model = pass == 0};
        double c0 = now();
        if (mk_injection_new(&opt, &ctx.det) != 0) { fprintf(stderr, "detector failed\n"); return 1; }
        if (pass == 0) printf("detector build (rules compile): %.3f s CPU, backend %s\n", now() - c0, mk_injection_backend(ctx.det));
        if (pass == 0) run_stage(&ctx, "rules", stage_scan);
        if (pass == 1 && (!only || strcmp(only, "full") == 0)) run_stage(&ctx, "full", stage_scan);
        if (pass == 1 && (!only || strcmp(only, "guard") == 0)) run_stage(&ctx, "guard", stage_guard);
        mk_injection_free(ctx.det);
        ctx.det = NULL;
    }
    mk_norm_release(&ctx.norm);
    mk_buf_release(&ctx.masked);
    for (size_t i = 0; i < nreq; i++) free(reqs[i].s);
    free(reqs);
    return 0;
}
