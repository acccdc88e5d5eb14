/*
 * vecbench: Mayak's side of the ANN benchmark (bench/vector/run.sh runs it).
 *
 *   vecbench BASE QUERIES TRUTH [--metric l2|cosine|dot] [--M 16] [--efc 200]
 *            [--ef 16,32,64,128|none] [--threads 1,2] [--quant] [--k 10] [--save FILE]
 *            [--filters] [--load FILE] [--rounds N]
 *
 * Builds the index once per thread count in --threads (timing each; the first build is
 * the one searched), then for each ef runs every query once, single-threaded, and
 * prints recall@k against TRUTH and queries/s. With --save it also times save, load
 * (mmap + verify + copy) and checks that the loaded index answers identically.
 * With --filters, vectors get namespace i % 100 and metadata i, and filtered searches
 * (a predicate passing 50% .. 0.1%, a 1% namespace, namespace AND predicate) are
 * measured against exact filtered answers (mk_vector_search_exact), with the path the
 * search took (queries/s by thread CPU time). With --load it searches an index saved
 * earlier (--save) instead of building one (for comparing search changes on one graph);
 * --rounds N repeats the whole ef ladder N times (on a shared machine, the best or the
 * median of several rounds is steadier than one). Each search line also gives the mean
 * distance evaluations per query. Output lines start with "RESULT" and are key=value
 * pairs (run.sh).
 */
#include "vecdata.h"
#include "vector/mk_vector.h"
#include "core/mk_error.h"

#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(int clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static int parse_list(const char *s, uint32_t *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = (uint32_t)strtoul(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s)
            break;
    }
    return n;
}

static double recall_at(const mk_vector_hit *hits, size_t got, const uint32_t *truth, uint32_t k)
{
    size_t found = 0;
    for (size_t i = 0; i < got; i++)
        for (uint32_t j = 0; j < k; j++)
            if (hits[i].key == truth[j]) {
                found++;
                break;
            }
    return (double)found / k;
}

static bool meta_mod(uint64_t key, uint32_t ns, uint64_t meta, void *arg)
{
    return meta % *(const uint64_t *)arg == 0;
}

static void filter_sweep(mk_vector_index *ix, const float *q, uint32_t dim, uint32_t nq, uint32_t k,
                         const char *tag)
{
    static const char *names[] = {"pred-50%", "pred-10%", "pred-1%", "pred-0.1%", "ns-1%", "ns-1%+pred-10%"};
    static const uint64_t mods[] = {2, 10, 100, 1000, 0, 10};
    mk_vector_hit *hits = malloc(k * sizeof *hits), *want = malloc(k * sizeof *want);
    for (int c = 0; c < 6; c++) {
        uint64_t mod = mods[c];
        mk_vector_filter f = {.use_ns = c >= 4, .ns = 0, .pred = mod ? meta_mod : NULL, .pred_arg = &mod};
        mk_vector_search_stats st;
        mk_vector_search_opts o = {.filter = &f, .stats = &st};
        double rsum = 0, dist = 0, t = 0;
        unsigned brute = 0;
        for (uint32_t i = 0; i < nq; i++) {
            size_t got, gw;
            mk_vector_search_exact(ix, q + (size_t)i * dim, dim, k, &o, want, &gw);
            double t0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
            mk_vector_search(ix, q + (size_t)i * dim, dim, k, &o, hits, &got);
            t += cpu_s(CLOCK_THREAD_CPUTIME_ID) - t0;
            dist += (double)st.distances;
            brute += st.path == MK_VECTOR_PATH_BRUTE;
            size_t f2 = 0;
            for (size_t a = 0; a < got; a++)
                for (size_t b = 0; b < gw; b++)
                    f2 += hits[a].key == want[b].key;
            rsum += gw ? (double)f2 / gw : 1.0;
        }
        printf("RESULT impl=%s phase=filter filter=%s recall=%.4f cpu_qps=%.0f distances=%.0f scans=%u/%u\n", tag,
               names[c], rsum / nq, nq / t, dist / nq, brute, nq);
        fflush(stdout);
    }
    free(hits);
    free(want);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: vecbench BASE QUERIES TRUTH [options]\n");
        return 2;
    }
    const char *metric_s = "l2", *save = NULL, *load = NULL;
    uint32_t M = 16, efc = 200, k = 10, efs[32], threads[8], rounds = 1;
    int nef = parse_list("16,32,64,128", efs, 32), nthr = parse_list("1", threads, 8);
    bool quant = false, sweep = false;
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--metric")) metric_s = v, i++;
        else if (!strcmp(a, "--M")) M = (uint32_t)atol(v), i++;
        else if (!strcmp(a, "--efc")) efc = (uint32_t)atol(v), i++;
        else if (!strcmp(a, "--k")) k = (uint32_t)atol(v), i++;
        else if (!strcmp(a, "--ef")) nef = strcmp(v, "none") ? parse_list(v, efs, 32) : 0, i++;
        else if (!strcmp(a, "--threads")) nthr = parse_list(v, threads, 8), i++;
        else if (!strcmp(a, "--save")) save = v, i++;
        else if (!strcmp(a, "--load")) load = v, i++;
        else if (!strcmp(a, "--rounds")) rounds = (uint32_t)atol(v), i++;
        else if (!strcmp(a, "--quant")) quant = true;
        else if (!strcmp(a, "--filters")) sweep = true;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    enum mk_vector_metric metric = !strcmp(metric_s, "cosine") ? MK_VECTOR_COSINE
                                   : !strcmp(metric_s, "dot")  ? MK_VECTOR_DOT
                                                               : MK_VECTOR_L2;
    uint32_t n, dim, nq, qdim, tq, tk;
    float *base = vd_read(argv[1], "MKVF", &n, &dim, 4);
    float *q = vd_read(argv[2], "MKVF", &nq, &qdim, 4);
    uint32_t *truth = vd_read(argv[3], "MKVG", &tq, &tk, 4);
    if (!base || !q || !truth || qdim != dim || tq != nq || tk < k)
        return 1;
    uint64_t *keys = malloc((size_t)n * sizeof *keys);
    for (uint32_t i = 0; i < n; i++)
        keys[i] = i;

    mk_vector_attrs *attrs = NULL;
    if (sweep) {
        attrs = malloc((size_t)n * sizeof *attrs);
        for (uint32_t i = 0; i < n; i++)
            attrs[i] = (mk_vector_attrs){.ns = i % 100, .meta = i};
    }
    mk_vector_params p;
    mk_vector_params_default(&p, dim, metric);
    p.M = M;
    p.ef_construction = efc;
    p.quant = quant ? MK_VECTOR_QUANT_INT8 : MK_VECTOR_QUANT_NONE;
    p.capacity = n;
    mk_vector_index *ix = NULL;
    const char *tag = quant ? "mayak-int8" : "mayak";
    if (load) {
        int rc = mk_vector_load(load, &ix);
        if (rc) {
            fprintf(stderr, "load %s: %s\n", load, mk_strerror(rc));
            return 1;
        }
        nthr = 0;
    }
    for (int t = 0; t < nthr; t++) {
        mk_vector_index *b;
        long rss0 = rss_kb();
        if (mk_vector_new(&p, &b) != 0)
            return 1;
        double t0 = now_s(), c0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
        int rc = mk_vector_insert_batch(b, n, keys, base, dim, attrs, threads[t]);
        double dt = now_s() - t0, dc = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (rc) {
            fprintf(stderr, "build: %s\n", mk_strerror(rc));
            return 1;
        }
        printf("RESULT impl=%s phase=build threads=%u build_s=%.2f build_cpu_s=%.2f mem_mb=%.1f rss_mb=%.1f simd=%s\n",
               tag, threads[t], dt, dc, mk_vector_memory_bytes(b) / 1048576.0, (rss_kb() - rss0) / 1024.0,
               mk_vector_simd_name());
        fflush(stdout);
        if (!ix)
            ix = b;
        else
            mk_vector_free(b);
    }

    mk_vector_hit *hits = malloc(k * sizeof *hits);
    for (uint32_t r = 0; r < rounds; r++)
        for (int e = 0; e < nef; e++) {
            mk_vector_search_stats st;
            mk_vector_search_opts o = {.ef = efs[e] < k ? k : efs[e], .stats = &st};
            double rsum = 0, dist = 0, t0 = now_s(), c0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
            for (uint32_t i = 0; i < nq; i++) {
                size_t got;
                if (mk_vector_search(ix, q + (size_t)i * dim, dim, k, &o, hits, &got) != 0)
                    return 1;
                rsum += recall_at(hits, got, truth + (size_t)i * tk, k);
                dist += (double)st.distances;
            }
            double dt = now_s() - t0, dc = cpu_s(CLOCK_THREAD_CPUTIME_ID) - c0;
            printf("RESULT impl=%s phase=search ef=%u recall=%.4f qps=%.0f cpu_qps=%.0f distances=%.0f\n", tag, o.ef,
                   rsum / nq, nq / dt, nq / dc, dist / nq);
            fflush(stdout);
        }

    if (sweep)
        filter_sweep(ix, q, dim, nq < 1000 ? nq : 1000, k, tag);

    if (save) {
        double t0 = now_s();
        int rc = mk_vector_save(ix, save);
        double ts = now_s() - t0;
        if (rc) {
            fprintf(stderr, "save: %s\n", mk_strerror(rc));
            return 1;
        }
        mk_vector_index *l;
        t0 = now_s();
        rc = mk_vector_load(save, &l);
        double tl = now_s() - t0;
        if (rc) {
            fprintf(stderr, "load: %s\n", mk_strerror(rc));
            return 1;
        }
        size_t same = 0, total = nq < 1000 ? nq : 1000;
        mk_vector_hit *h2 = malloc(k * sizeof *h2);
        for (uint32_t i = 0; i < total; i++) {
            size_t g1, g2;
            mk_vector_search(ix, q + (size_t)i * dim, dim, k, NULL, hits, &g1);
            mk_vector_search(l, q + (size_t)i * dim, dim, k, NULL, h2, &g2);
            same += g1 == g2 && memcmp(hits, h2, g1 * sizeof *hits) == 0;
        }
        FILE *f = fopen(save, "rb");
        long size = 0;
        if (f) {
            fseek(f, 0, SEEK_END);
            size = ftell(f);
            fclose(f);
        }
        printf("RESULT impl=%s phase=persist save_s=%.3f load_s=%.3f file_mb=%.1f identical=%zu/%zu\n", tag, ts,
               tl, size / 1048576.0, same, total);
        free(h2);
        mk_vector_free(l);
    }
    mk_vector_free(ix);
    free(hits);
    free(base);
    free(q);
    free(truth);
    free(keys);
    free(attrs);
    return 0;
}
