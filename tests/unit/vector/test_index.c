/* The HNSW index: recall against exact ground truth per metric and with int8
 * quantization, bad input, delete / upsert / compaction, namespace and predicate
 * filters (including a 1% selective one), batch insert, counters. */
#include <criterion/criterion.h>

#include "vtest.h"

#include <stdio.h>

#define DIM 32
#define NQ 200
#define K 10

static mk_vector_index *build(enum mk_vector_metric m, enum mk_vector_quant qn, size_t n, uint32_t dim,
                              const float *v, const mk_vector_attrs *attrs, unsigned threads)
{
    mk_vector_params p;
    mk_vector_params_default(&p, dim, m);
    p.quant = qn;
    p.ef_construction = 100;
    mk_vector_index *ix = NULL;
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    uint64_t *keys = malloc(n * sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = i;
    int rc = mk_vector_insert_batch(ix, n, keys, v, dim, attrs, threads);
    cr_assert_eq(rc, 0, "batch: %s", mk_strerror(rc));
    free(keys);
    cr_assert_eq(mk_vector_count(ix), n);
    return ix;
}

/* Mean recall@K over NQ queries, optionally filtered (keep marks rows that pass). */
static double recall(mk_vector_index *ix, enum mk_vector_metric m, const float *base, size_t n,
                     const float *q, const mk_vector_search_opts *o, const unsigned char *keep)
{
    double sum = 0;
    mk_vector_hit hits[K];
    uint64_t truth[K];
    for (size_t i = 0; i < NQ; i++) {
        size_t got = 0;
        int rc = mk_vector_search(ix, q + i * DIM, DIM, K, o, hits, &got);
        cr_assert_eq(rc, 0, "search: %s", mk_strerror(rc));
        size_t nt = vt_truth(m, base, n, DIM, q + i * DIM, K, keep, truth);
        cr_assert_eq(got, nt);
        for (size_t j = 1; j < got; j++)
            cr_assert_leq(hits[j - 1].distance, hits[j].distance, "results not sorted");
        sum += vt_overlap(hits, got, truth, nt);
    }
    return sum / NQ;
}

static void recall_for(enum mk_vector_metric m, enum mk_vector_quant qn)
{
    size_t n = 10000;
    float *base = vt_clustered(n, DIM, 100, 7);
    float *q = vt_clustered(NQ, DIM, 100, 7); /* same centres, new points */
    vt_rng r = {99};
    for (size_t i = 0; i < NQ * DIM; i++)
        q[i] += (float)(0.5 * vt_gauss(&r));
    mk_vector_index *ix = build(m, qn, n, DIM, base, NULL, 2);
    double rec = recall(ix, m, base, n, q, NULL, NULL);
    cr_assert_geq(rec, 0.95, "recall@10 = %.4f", rec);
    mk_vector_free(ix);
    free(base);
    free(q);
}

Test(index, recall_l2, .timeout = 240) { recall_for(MK_VECTOR_L2, MK_VECTOR_QUANT_NONE); }
Test(index, recall_cosine, .timeout = 240) { recall_for(MK_VECTOR_COSINE, MK_VECTOR_QUANT_NONE); }
Test(index, recall_dot, .timeout = 240) { recall_for(MK_VECTOR_DOT, MK_VECTOR_QUANT_NONE); }
Test(index, recall_l2_int8, .timeout = 240) { recall_for(MK_VECTOR_L2, MK_VECTOR_QUANT_INT8); }
Test(index, recall_cosine_int8, .timeout = 240) { recall_for(MK_VECTOR_COSINE, MK_VECTOR_QUANT_INT8); }

Test(index, single_inserts_match_exact_search, .timeout = 120)
{
    /* one by one (not batch), int8 from the first vector on: the provisional ranges and
     * re-fits must still give exact-quality answers after re-ranking */
    size_t n = 3000;
    float *base = vt_clustered(n, DIM, 30, 3);
    mk_vector_params p;
    mk_vector_params_default(&p, DIM, MK_VECTOR_L2);
    p.quant = MK_VECTOR_QUANT_INT8;
    p.capacity = 16; /* forces several growths */
    mk_vector_index *ix;
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(mk_vector_insert(ix, 1000 + i, base + i * DIM, DIM, NULL), 0);
    double sum = 0;
    for (size_t i = 0; i < 100; i++) {
        mk_vector_hit a[K], b[K];
        size_t ga, gb;
        cr_assert_eq(mk_vector_search(ix, base + i * 7 * DIM, DIM, K, NULL, a, &ga), 0);
        cr_assert_eq(mk_vector_search_exact(ix, base + i * 7 * DIM, DIM, K, NULL, b, &gb), 0);
        cr_assert_eq(ga, K);
        cr_assert_eq(a[0].key, 1000 + i * 7); /* a stored vector finds itself first */
        cr_assert_float_eq(a[0].distance, 0.0f, 1e-5);
        uint64_t t[K];
        for (size_t j = 0; j < K; j++)
            t[j] = b[j].key;
        sum += vt_overlap(a, ga, t, gb);
    }
    cr_assert_geq(sum / 100, 0.95);
    mk_vector_free(ix);
    free(base);
}

Test(index, bad_input)
{
    mk_vector_params p;
    mk_vector_index *ix = NULL;
    mk_vector_params_default(&p, 0, MK_VECTOR_L2);
    cr_assert_eq(mk_vector_new(&p, &ix), MK_EINVAL);
    mk_vector_params_default(&p, MK_VECTOR_MAX_DIM + 1, MK_VECTOR_L2);
    cr_assert_eq(mk_vector_new(&p, &ix), MK_EINVAL);
    mk_vector_params_default(&p, 4, (enum mk_vector_metric)7);
    cr_assert_eq(mk_vector_new(&p, &ix), MK_EINVAL);
    mk_vector_params_default(&p, 4, MK_VECTOR_L2);
    p.M = 1;
    cr_assert_eq(mk_vector_new(&p, &ix), MK_EINVAL);
    p.M = 16;
    p.ef_search = MK_VECTOR_MAX_EF + 1;
    cr_assert_eq(mk_vector_new(&p, &ix), MK_EINVAL);
    cr_assert_null(ix);

    mk_vector_params_default(&p, 4, MK_VECTOR_COSINE);
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    float good[4] = {1, 2, 3, 4}, zero[4] = {0}, nan[4] = {1, NAN, 0, 0}, inf[4] = {INFINITY, 0, 0, 0};
    cr_assert_eq(mk_vector_insert(ix, 1, good, 3, NULL), MK_EINVAL, "wrong dimension");
    cr_assert_eq(mk_vector_insert(ix, 1, good, 5, NULL), MK_EINVAL, "wrong dimension");
    cr_assert_eq(mk_vector_insert(ix, 1, nan, 4, NULL), MK_EINVAL);
    cr_assert_eq(mk_vector_insert(ix, 1, inf, 4, NULL), MK_EINVAL);
    cr_assert_eq(mk_vector_insert(ix, 1, zero, 4, NULL), MK_EINVAL, "zero vector under cosine");
    cr_assert_eq(mk_vector_insert(ix, 1, NULL, 4, NULL), MK_EINVAL);
    cr_assert_eq(mk_vector_count(ix), 0);

    mk_vector_hit hits[4];
    size_t got = 99;
    cr_assert_eq(mk_vector_search(ix, good, 4, 3, NULL, hits, &got), 0, "empty index");
    cr_assert_eq(got, 0);
    cr_assert_eq(mk_vector_insert(ix, 1, good, 4, NULL), 0);
    cr_assert_eq(mk_vector_insert(ix, 1, good, 4, NULL), MK_EEXISTS);
    cr_assert_eq(mk_vector_search(ix, good, 4, 0, NULL, hits, &got), MK_EINVAL, "k = 0");
    cr_assert_eq(mk_vector_search(ix, good, 4, MK_VECTOR_MAX_K + 1, NULL, hits, &got), MK_ETOOBIG);
    cr_assert_eq(mk_vector_search(ix, zero, 4, 1, NULL, hits, &got), MK_EINVAL);
    cr_assert_eq(mk_vector_search(ix, nan, 4, 1, NULL, hits, &got), MK_EINVAL);
    cr_assert_eq(mk_vector_search(ix, good, 2, 1, NULL, hits, &got), MK_EINVAL);
    mk_vector_search_opts o = {.ef = MK_VECTOR_MAX_EF + 1};
    cr_assert_eq(mk_vector_search(ix, good, 4, 1, &o, hits, &got), MK_ETOOBIG);
    cr_assert_eq(mk_vector_search(ix, good, 4, 4, NULL, hits, &got), 0, "k above count");
    cr_assert_eq(got, 1);
    cr_assert_float_eq(hits[0].distance, 0.0f, 1e-6);
    cr_assert_eq(mk_vector_delete(ix, 42), MK_ENOTFOUND);
    cr_assert_eq(mk_vector_set_ef(ix, 0), MK_EINVAL);
    cr_assert_eq(mk_vector_set_ef(ix, MK_VECTOR_MAX_EF + 1), MK_ETOOBIG);

    /* a bad batch (one NaN, or duplicate keys) changes nothing */
    float batch[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, NAN, 1};
    uint64_t keys[3] = {10, 11, 12};
    cr_assert_eq(mk_vector_insert_batch(ix, 3, keys, batch, 4, NULL, 2), MK_EINVAL);
    batch[10] = 1;
    uint64_t dup[3] = {10, 11, 10};
    cr_assert_eq(mk_vector_insert_batch(ix, 3, dup, batch, 4, NULL, 2), MK_EINVAL);
    cr_assert_eq(mk_vector_count(ix), 1);
    cr_assert_eq(mk_vector_insert_batch(ix, 3, keys, batch, 4, NULL, 2), 0);
    cr_assert_eq(mk_vector_count(ix), 4);

    /* cosine stores the unit vector */
    float back[4];
    cr_assert_eq(mk_vector_get(ix, 1, back, 4, NULL), 0);
    double norm = 0;
    for (int i = 0; i < 4; i++)
        norm += (double)back[i] * back[i];
    cr_assert_float_eq(norm, 1.0, 1e-5);
    cr_assert_eq(mk_vector_get(ix, 77, back, 4, NULL), MK_ENOTFOUND);
    mk_vector_free(ix);
    mk_vector_free(NULL);
}

Test(index, zero_vector_is_fine_under_l2)
{
    mk_vector_params p;
    mk_vector_params_default(&p, 3, MK_VECTOR_L2);
    mk_vector_index *ix;
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    float z[3] = {0, 0, 0};
    cr_assert_eq(mk_vector_insert(ix, 5, z, 3, NULL), 0);
    mk_vector_hit h;
    size_t got;
    cr_assert_eq(mk_vector_search(ix, z, 3, 1, NULL, &h, &got), 0);
    cr_assert_eq(got, 1);
    cr_assert_eq(h.key, 5);
    mk_vector_free(ix);
}

Test(index, delete_upsert_compact, .timeout = 240)
{
    size_t n = 6000;
    float *base = vt_clustered(n, DIM, 60, 11);
    float *q = vt_clustered(NQ, DIM, 60, 12);
    mk_vector_index *ix = build(MK_VECTOR_L2, MK_VECTOR_QUANT_NONE, n, DIM, base, NULL, 2);
    unsigned char *keep = malloc(n);
    for (size_t i = 0; i < n; i++) {
        keep[i] = (i % 10) >= 3; /* delete 30% */
        if (!keep[i])
            cr_assert_eq(mk_vector_delete(ix, i), 0);
    }
    cr_assert_eq(mk_vector_count(ix), n - n * 3 / 10);
    cr_assert_eq(mk_vector_deleted_count(ix), n * 3 / 10);
    cr_assert_eq(mk_vector_delete(ix, 0), MK_ENOTFOUND, "already deleted");
    cr_assert(!mk_vector_contains(ix, 1));

    /* deleted keys never come back, even searching for their exact vectors */
    for (size_t i = 0; i < n; i += 10) {
        mk_vector_hit hits[K];
        size_t got;
        cr_assert_eq(mk_vector_search(ix, base + i * DIM, DIM, K, NULL, hits, &got), 0);
        cr_assert_eq(got, K);
        for (size_t j = 0; j < got; j++)
            cr_assert(keep[hits[j].key], "deleted key %llu returned", (unsigned long long)hits[j].key);
    }
    double before = recall(ix, MK_VECTOR_L2, base, n, q, NULL, keep);
    cr_assert_geq(before, 0.9, "recall with tombstones %.4f", before);

    fprintf(stderr, "recall with tombstones %.4f\n", before);
    size_t mem_before = mk_vector_memory_bytes(ix);
    cr_assert_eq(mk_vector_compact(ix), 0);
    cr_assert_eq(mk_vector_deleted_count(ix), 0);
    cr_assert_eq(mk_vector_count(ix), n - n * 3 / 10);
    double after = recall(ix, MK_VECTOR_L2, base, n, q, NULL, keep);
    fprintf(stderr, "recall after compaction %.4f\n", after);
    cr_assert_geq(after, 0.95, "recall after compaction %.4f", after);
    cr_assert_gt(mem_before, 0);
    for (size_t i = 0; i < n; i += 97)
        cr_assert_eq(mk_vector_contains(ix, i), keep[i] != 0);

    /* upsert: key 3 (live) gets the vector of row 0; its old vector no longer finds it */
    cr_assert_eq(mk_vector_upsert(ix, 3, base, DIM, &(mk_vector_attrs){.ns = 5, .meta = 77}), 0);
    cr_assert_eq(mk_vector_count(ix), n - n * 3 / 10);
    mk_vector_hit h[K];
    size_t got;
    cr_assert_eq(mk_vector_search(ix, base, DIM, 1, NULL, h, &got), 0);
    cr_assert_eq(h[0].key, 3);
    cr_assert_eq(h[0].ns, 5);
    cr_assert_eq(h[0].meta, 77);
    cr_assert_eq(mk_vector_search(ix, base + 3 * DIM, DIM, K, NULL, h, &got), 0);
    for (size_t j = 0; j < got; j++)
        cr_assert(h[j].key != 3 || h[j].distance > 1e-6);
    /* upsert of a missing key inserts it; insert of a live key is refused */
    cr_assert_eq(mk_vector_upsert(ix, 0, base, DIM, NULL), 0);
    cr_assert_eq(mk_vector_insert(ix, 0, base, DIM, NULL), MK_EEXISTS);
    cr_assert_eq(mk_vector_count(ix), n - n * 3 / 10 + 1);

    /* delete everything, compact, and the index works again from empty */
    for (size_t i = 0; i < n; i++)
        mk_vector_delete(ix, i);
    cr_assert_eq(mk_vector_count(ix), 0);
    cr_assert_eq(mk_vector_search(ix, base, DIM, K, NULL, h, &got), 0);
    cr_assert_eq(got, 0);
    cr_assert_eq(mk_vector_compact(ix), 0);
    cr_assert_eq(mk_vector_insert(ix, 1, base + DIM, DIM, NULL), 0);
    cr_assert_eq(mk_vector_search(ix, base, DIM, K, NULL, h, &got), 0);
    cr_assert_eq(got, 1);
    mk_vector_free(ix);
    free(keep);
    free(base);
    free(q);
}

typedef struct pred_arg {
    uint64_t mod, want;
    size_t calls;
} pred_arg;

static bool meta_mod(uint64_t key, uint32_t ns, uint64_t meta, void *arg)
{
    pred_arg *a = arg;
    a->calls++;
    return meta % a->mod == a->want;
}

static bool meta_not_mod(uint64_t key, uint32_t ns, uint64_t meta, void *arg)
{
    return !meta_mod(key, ns, meta, arg);
}

Test(index, filters_namespace_and_predicate, .timeout = 240)
{
    size_t n = 10000;
    float *base = vt_clustered(n, DIM, 100, 21);
    float *q = vt_clustered(NQ, DIM, 100, 22);
    mk_vector_attrs *attrs = malloc(n * sizeof *attrs);
    vt_rng r = {5};
    for (size_t i = 0; i < n; i++) {
        attrs[i].ns = (uint32_t)(vt_next(&r) % 100); /* 100 namespaces, 1% each */
        attrs[i].meta = i;
    }
    mk_vector_index *ix = build(MK_VECTOR_L2, MK_VECTOR_QUANT_NONE, n, DIM, base, attrs, 2);
    unsigned char *keep = malloc(n);
    mk_vector_search_stats st;

    /* 1% namespace */
    mk_vector_filter f = {.use_ns = true, .ns = 42};
    for (size_t i = 0; i < n; i++)
        keep[i] = attrs[i].ns == 42;
    mk_vector_search_opts o = {.filter = &f, .stats = &st};
    double rec = recall(ix, MK_VECTOR_L2, base, n, q, &o, keep);
    cr_assert_geq(rec, 0.95, "1%% namespace recall %.4f", rec);
    size_t in42 = 0;
    for (size_t i = 0; i < n; i++)
        in42 += keep[i];
    cr_assert_eq(mk_vector_ns_count(ix, 42), in42);

    /* 1% predicate (unknown selectivity to the index) */
    pred_arg pa = {.mod = 100, .want = 7};
    mk_vector_filter fp = {.pred = meta_mod, .pred_arg = &pa};
    o.filter = &fp;
    for (size_t i = 0; i < n; i++)
        keep[i] = i % 100 == 7;
    rec = recall(ix, MK_VECTOR_L2, base, n, q, &o, keep);
    cr_assert_geq(rec, 0.95, "1%% predicate recall %.4f", rec);
    cr_assert_gt(pa.calls, 0);

    /* namespaces 0..29 are not one namespace, so a 30% mix: predicate over ns; plus
     * namespace AND predicate */
    mk_vector_filter fb = {.use_ns = true, .ns = 3, .pred = meta_mod, .pred_arg = &pa};
    pa.mod = 2;
    pa.want = 1;
    o.filter = &fb;
    for (size_t i = 0; i < n; i++)
        keep[i] = attrs[i].ns == 3 && i % 2 == 1;
    mk_vector_hit hits[K];
    size_t got;
    for (size_t i = 0; i < 50; i++) {
        cr_assert_eq(mk_vector_search(ix, q + i * DIM, DIM, K, &o, hits, &got), 0);
        for (size_t j = 0; j < got; j++)
            cr_assert(keep[hits[j].key], "hit fails the filter");
    }
    rec = recall(ix, MK_VECTOR_L2, base, n, q, &o, keep);
    cr_assert_geq(rec, 0.95, "ns+predicate recall %.4f", rec);

    /* a 50% predicate (walk or scan, the cost model decides at this size) */
    mk_vector_filter fh = {.pred = meta_mod, .pred_arg = &pa};
    o.filter = &fh;
    for (size_t i = 0; i < n; i++)
        keep[i] = i % 2 == 1;
    rec = recall(ix, MK_VECTOR_L2, base, n, q, &o, keep);
    cr_assert_geq(rec, 0.95, "50%% predicate recall %.4f", rec);

    /* a broad (90%) predicate always walks the graph, and keeps recall */
    mk_vector_filter f90 = {.pred = meta_not_mod, .pred_arg = &pa};
    pa.mod = 10;
    pa.want = 3;
    o.filter = &f90;
    for (size_t i = 0; i < n; i++)
        keep[i] = i % 10 != 3;
    rec = recall(ix, MK_VECTOR_L2, base, n, q, &o, keep);
    cr_assert_eq(st.path, MK_VECTOR_PATH_GRAPH);
    cr_assert_geq(rec, 0.95, "90%% predicate recall %.4f", rec);

    /* an empty namespace, and a predicate nothing passes */
    mk_vector_filter fe = {.use_ns = true, .ns = 1000};
    o.filter = &fe;
    cr_assert_eq(mk_vector_search(ix, q, DIM, K, &o, hits, &got), 0);
    cr_assert_eq(got, 0);
    pa.mod = 1;
    pa.want = 5;
    o.filter = &fh;
    cr_assert_eq(mk_vector_search(ix, q, DIM, K, &o, hits, &got), 0);
    cr_assert_eq(got, 0);
    cr_assert_eq(mk_vector_ns_hash("tenant/a", 8), mk_vector_ns_hash("tenant/a", 8));
    cr_assert_neq(mk_vector_ns_hash("tenant/a", 8), mk_vector_ns_hash("tenant/b", 8));

    mk_vector_free(ix);
    free(keep);
    free(attrs);
    free(base);
    free(q);
}

Test(index, params_and_memory)
{
    mk_vector_params p, g;
    mk_vector_params_default(&p, 8, MK_VECTOR_DOT);
    p.M = 8;
    mk_vector_index *ix;
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    size_t m0 = mk_vector_memory_bytes(ix);
    cr_assert_gt(m0, 1024 * 8 * sizeof(float));
    cr_assert_eq(mk_vector_set_ef(ix, 99), 0);
    mk_vector_get_params(ix, &g);
    cr_assert_eq(g.ef_search, 99);
    cr_assert_eq(g.M, 8);
    cr_assert_eq(g.metric, MK_VECTOR_DOT);
    float *v = vt_clustered(3000, 8, 5, 1);
    uint64_t *keys = malloc(3000 * sizeof *keys);
    for (size_t i = 0; i < 3000; i++)
        keys[i] = i * 1000003u;
    cr_assert_eq(mk_vector_insert_batch(ix, 3000, keys, v, 8, NULL, 0), 0);
    cr_assert_gt(mk_vector_memory_bytes(ix), m0, "memory grows with the index");
    for (size_t i = 0; i < 3000; i += 111)
        cr_assert(mk_vector_contains(ix, keys[i]));
    mk_vector_free(ix);
    free(keys);
    free(v);
}
