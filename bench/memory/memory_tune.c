/*
 * memory_tune: how the episode index's parameters trade insert cost, search cost and
 * answer quality on the benchmark's data (the numbers behind the parameter table in
 * bench/memory/README.md and the defaults in src/memory/memory.c).
 *
 *   memory_tune --train train.csv --test test.csv [--n 100000] [--queries 2000]
 *               [--M 16] [--efc 64] [--ef 16,24,32,48] [--dim 256] [--quant int8|none]
 *
 * Builds one index the way agent memory does (cosine, the tenant's namespace, one
 * thread, one insert at a time) from the same tasks memory_bench stores, then at 10k
 * and at N searches the BANKING77 test texts with each beam width, as the memory does
 * (namespace filter, k 5). Per beam: CPU µs per search (index only; the query
 * embedding is reported once, separately), distances evaluated (p50/p99), top-5
 * agreement with an exact scan, and intent recall@5. Single-threaded: run it under
 * `taskset -c 0` and read CPU time, not wall time, on a shared machine.
 * Output: one JSON object on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/mk_embed.h"
#include "vector/mk_vector.h"

#include "bench_data.h"

#define K 5
#define MAX_EFS 8

static void search_report(mk_vector_index *ix, const float *qv, uint32_t dim, size_t nq, const struct row *test,
                          const char **intents, size_t nstored, const uint32_t *efs, size_t nefs, uint32_t ns,
                          bool last)
{
    double *cpu = malloc(nq * sizeof *cpu), *dist = malloc(nq * sizeof *dist);
    mk_vector_hit exact[K], hits[K];
    mk_vector_filter f = {.use_ns = true, .ns = ns};
    uint64_t (*truth)[K] = malloc(nq * sizeof *truth);
    size_t *ntruth = malloc(nq * sizeof *ntruth);
    for (size_t i = 0; i < nq; i++) {
        mk_vector_search_opts so = {.filter = &f};
        mk_vector_search_exact(ix, qv + i * dim, dim, K, &so, exact, &ntruth[i]);
        for (size_t j = 0; j < ntruth[i]; j++) truth[i][j] = exact[j].key;
    }
    printf("\"%zu\": {", nstored);
    for (size_t e = 0; e < nefs; e++) {
        size_t agree = 0, total = 0, hit = 0;
        /* warm-up: the first queries page the index in */
        for (size_t i = 0; i < 50 && i < nq; i++) {
            size_t n;
            mk_vector_search_opts so = {.ef = efs[e], .filter = &f};
            mk_vector_search(ix, qv + i * dim, dim, K, &so, hits, &n);
        }
        for (size_t i = 0; i < nq; i++) {
            size_t n = 0;
            mk_vector_search_stats st;
            mk_vector_search_opts so = {.ef = efs[e], .filter = &f, .stats = &st};
            double c0 = cpu_s();
            mk_vector_search(ix, qv + i * dim, dim, K, &so, hits, &n);
            cpu[i] = cpu_s() - c0;
            dist[i] = (double)st.distances;
            bool got = false;
            for (size_t j = 0; j < n; j++) {
                for (size_t t = 0; t < ntruth[i]; t++) agree += hits[j].key == truth[i][t];
                size_t idx = (size_t)hits[j].key;
                if (!got && idx < nstored && strcmp(intents[idx], test[i].intent) == 0) got = true;
            }
            total += ntruth[i];
            hit += got;
        }
        printf("%s\"ef%u\": {\"cpu_p50\": %.1f, \"cpu_p99\": %.1f, \"dist_p50\": %.0f, \"dist_p99\": %.0f,"
               " \"agreement5\": %.4f, \"recall5\": %.4f}",
               e ? ", " : "", efs[e], pct(cpu, nq, 0.5) * 1e6, pct(cpu, nq, 0.99) * 1e6, pct(dist, nq, 0.5),
               pct(dist, nq, 0.99), total ? (double)agree / (double)total : 0, (double)hit / (double)nq);
    }
    printf("}%s\n", last ? "" : ",");
    free(truth);
    free(ntruth);
    free(cpu);
    free(dist);
}

int main(int argc, char **argv)
{
    const char *train_path = NULL, *test_path = NULL, *quant = "int8", *ef_list = "16,24,32,48";
    size_t nmax = 100000, nq = 2000;
    uint32_t M = 16, efc = 64, dim = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--train")) train_path = argv[i + 1];
        else if (!strcmp(argv[i], "--test")) test_path = argv[i + 1];
        else if (!strcmp(argv[i], "--n")) nmax = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--queries")) nq = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--M")) M = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--efc")) efc = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--ef")) ef_list = argv[i + 1];
        else if (!strcmp(argv[i], "--dim")) dim = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--quant")) quant = argv[i + 1];
    }
    uint32_t efs[MAX_EFS];
    size_t nefs = 0;
    for (const char *p = ef_list; *p && nefs < MAX_EFS;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v == 0 || v > MK_VECTOR_MAX_EF) break;
        efs[nefs++] = (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (!train_path || !test_path || nmax <= 10000 || nefs == 0) {
        fprintf(stderr, "usage: memory_tune --train train.csv --test test.csv [--n N>10000] [--queries Q]"
                        " [--M 16] [--efc 64] [--ef 16,24,32,48] [--dim 256] [--quant int8|none]\n");
        return 2;
    }
    size_t ntrain, ntest;
    struct row *train = load_csv(train_path, &ntrain), *test = load_csv(test_path, &ntest);
    if (nq > ntest) nq = ntest;
    const char **intents;
    char **tasks = make_tasks(train, ntrain, nmax, &intents);

    mk_embedder *emb = NULL;
    struct mk_embed_options eo = {.dim = dim};
    if (mk_embedder_new(&eo, &emb) != 0) return 1;
    float *vecs = malloc(sizeof(float) * dim * nmax), *qv = malloc(sizeof(float) * dim * nq);
    double c0 = cpu_s();
    if (mk_embed_batch(emb, (const char *const *)tasks, NULL, nmax, vecs, NULL) != 0) return 1;
    double embed_task_us = (cpu_s() - c0) / (double)nmax * 1e6;
    double *qcpu = malloc(nq * sizeof *qcpu);
    for (size_t i = 0; i < nq; i++) {
        c0 = cpu_s();
        mk_embed_text(emb, test[i].text, strlen(test[i].text), qv + i * dim);
        qcpu[i] = cpu_s() - c0;
    }

    mk_vector_params p;
    mk_vector_params_default(&p, dim, MK_VECTOR_COSINE);
    p.M = M;
    p.ef_construction = efc;
    p.quant = strcmp(quant, "none") ? MK_VECTOR_QUANT_INT8 : MK_VECTOR_QUANT_NONE;
    p.capacity = 1024;
    mk_vector_index *ix;
    if (mk_vector_new(&p, &ix) != 0) return 1;
    uint32_t ns = mk_vector_ns_hash("bench", 5);
    printf("{\n\"params\": {\"M\": %u, \"efc\": %u, \"dim\": %u, \"quant\": \"%s\", \"n\": %zu, \"queries\": %zu},\n",
           M, efc, dim, quant, nmax, nq);
    printf("\"embed_us\": {\"task_mean\": %.1f, \"query_p50\": %.1f, \"query_p99\": %.1f},\n", embed_task_us,
           pct(qcpu, nq, 0.5) * 1e6, pct(qcpu, nq, 0.99) * 1e6);
    size_t n10 = nmax < 10000 ? nmax : 10000;
    double ins_us[2] = {0, 0};
    printf("\"search\": {\n");
    for (int phase = 0; phase < 2; phase++) {
        size_t from = phase ? n10 : 0, to = phase ? nmax : n10;
        c0 = cpu_s();
        for (size_t i = from; i < to; i++) {
            mk_vector_attrs a = {.ns = ns, .meta = i};
            if (mk_vector_insert(ix, (uint64_t)i, vecs + i * dim, dim, &a) != 0) return 1;
        }
        ins_us[phase] = (cpu_s() - c0) / (double)(to - from) * 1e6;
        search_report(ix, qv, dim, nq, test, intents, to, efs, nefs, ns, phase == 1);
    }
    printf("},\n\"insert_us\": {\"first_10k\": %.1f, \"to_%zu\": %.1f}\n}\n", ins_us[0], nmax, ins_us[1]);
    mk_vector_free(ix);
    mk_embedder_free(emb);
    free(vecs);
    free(qv);
    free(qcpu);
    for (size_t i = 0; i < nmax; i++) free(tasks[i]);
    free(tasks);
    free(intents);
    for (size_t i = 0; i < ntrain; i++) free(train[i].text), free(train[i].intent);
    for (size_t i = 0; i < ntest; i++) free(test[i].text), free(test[i].intent);
    free(train);
    free(test);
    return 0;
}
