/*
 * search.c: k-nearest-neighbour search with filters.
 *
 * Plan of a search (docs/VECTOR.md has the measurements behind the constants):
 *   1. Unfiltered: an HNSW walk (greedy descent through the upper levels, then a beam
 *      of width ef on level 0); an index of at most 2*ef live vectors is scanned.
 *   2. Filtered (namespace, predicate, or tombstones present): the filter's selectivity
 *      s is known (namespace: its live count) or estimated (predicate: tried on up to
 *      SAMPLE nodes of the set it would scan). A cost model then picks
 *        scan:  every node of the set (the namespace's members, else all nodes) is
 *               tested (COST_SCAN each) and the passing ones measured (1 each);
 *        walk:  about (WALK_BASE + WALK_PER_PASS / s) * ef distances at COST_WALK
 *               each (random access; nodes that fail the filter still route the walk
 *               but never enter the results, so a selective filter makes the walk
 *               longer rather than its answer worse);
 *      whichever is cheaper (a filter passing 30% or more always walks). A walk that
 *      runs to twice its expected length (a wrong estimate) stops and the scan answers.
 *   3. Under int8 quantization the walk ranks by codes; the ef survivors are re-ranked
 *      by exact float distance before the k best are returned. Scans use floats.
 */
#include "vector/vector_int.h"
#include "core/mk_error.h"

#include <math.h>

/* Cost model, in units of one distance evaluation during a sequential scan (measured
 * on 100k x 128-d, docs/VECTOR.md): a filtered walk pays ~6x per distance (random
 * access, long candidate heaps); testing one node against a filter ~0.15x; a filtered
 * walk evaluates ~(20 + 5 / s) * ef distances. */
#define COST_SCAN 0.15
#define COST_WALK 6.0
#define WALK_BASE 20.0
#define WALK_PER_PASS 5.0
/* Nodes sampled to estimate a predicate's selectivity. */
#define SAMPLE 256

typedef struct squery {
    const float *f;     /* stored form (unit length under cosine) */
    const float *qq;    /* int8: transformed query */
    float qc;           /* int8: constant term (dot) */
} squery;

static inline float sdist(const mk_vector_index *ix, const squery *q, uint32_t id)
{
    const void *v = l0_vec(ix, id);
    if (!ix->quant)
        return fdist(ix, q->f, v);
    if (ix->p.metric == MK_VECTOR_L2)
        return ix->vk->u8l2(q->qq, ix->qscale, v, ix->p.dim);
    return 1.0f - (q->qc + ix->vk->u8dot(q->qq, v, ix->p.dim));
}

static inline bool passes(const mk_vector_index *ix, const mk_vector_filter *f, uint32_t id)
{
    uint8_t fl = node_flags(ix, id);
    if ((fl & (NODE_READY | NODE_DELETED)) != NODE_READY)
        return false;
    if (!f)
        return true;
    if (f->use_ns && ix->ns[id] != f->ns)
        return false;
    if (f->pred && !f->pred(ix->keys[id], ix->ns[id], ix->meta[id], f->pred_arg))
        return false;
    return true;
}

/* Asks for every cache line of a node's search vector. At 512-d that is 32 lines: the
 * first two alone (and the hardware prefetcher for the rest) leave most of a vector to
 * arrive while the kernel waits, which dominates once the index outgrows the L3. */
static inline void prefetch_vec(const mk_vector_index *ix, uint32_t id)
{
    const char *b = (const char *)l0_vec(ix, id);
    for (size_t i = 0; i < ix->vec_lines; i++)
        __builtin_prefetch(b + 64 * i);
}

/* How many neighbours ahead of the one being measured the walk prefetches: one ahead
 * leaves a 2 KB vector too little time to arrive from DRAM; more than two ahead has
 * too many lines in flight (measured on CLINC150, 512-d, docs/VECTOR.md). */
#define PREFETCH_AHEAD 2

/* Greedy descent from the entry point down to level 1; returns the level-0 start. */
static uint32_t descend(mk_vector_index *ix, search_ctx *c, const squery *q, uint32_t ep, int maxl,
                        float *dout)
{
    uint32_t cur = ep;
    float dcur = sdist(ix, q, cur);
    c->ndist++;
    for (int l = maxl; l > 0; l--) {
        bool changed = true;
        while (changed) {
            changed = false;
            const uint32_t *links = node_links(ix, cur, l);
            uint32_t cnt = link_load(&links[0]);
            if (cnt > ix->p.M)
                cnt = ix->p.M;
            for (uint32_t j = 1; j <= cnt; j++) {
                uint32_t nb = link_load(&links[j]);
                float d = sdist(ix, q, nb);
                c->ndist++;
                if (d < dcur) {
                    dcur = d;
                    cur = nb;
                    changed = true;
                }
            }
        }
    }
    *dout = dcur;
    return cur;
}

/* Level-0 beam search. Leaves up to ef passing nodes in c->res (max-heap). Sets
 * *exhausted (and stops) when more than budget (0 = none) distances were evaluated. */
static int walk_l0(mk_vector_index *ix, search_ctx *c, const squery *q, uint32_t entry,
                   float dentry, size_t ef, const mk_vector_filter *f, uint64_t budget,
                   bool *exhausted)
{
    uint32_t M0 = ix->M0;
    uint16_t gen = next_gen(c);
    uint16_t *stamp = c->stamp;
    heap *res = &c->res, *cand = &c->cand;
    res->n = cand->n = 0;
    *exhausted = false;
    if (heap_reserve(res, ef + 1) || heap_reserve(cand, ef + M0 + 1))
        return MK_ENOMEM;

    stamp[entry] = gen;
    minh_push(cand, dentry, entry);
    if (passes(ix, f, entry))
        maxh_push(res, dentry, entry);
    float lower = res->n ? res->a[0].d : INFINITY;
    uint64_t start = c->ndist;

    uint32_t todo[2 * MK_VECTOR_MAX_M];
    const uint32_t ahead = PREFETCH_AHEAD;
    while (cand->n) {
        dpair cur = cand->a[0];
        if (cur.d > lower && res->n >= ef)
            break;
        minh_pop(cand);
        const uint32_t *links = l0_links(ix, cur.id);
        uint32_t cnt = link_load(&links[0]);
        if (cnt > M0)
            cnt = M0;
        /* The unvisited neighbours first, so only vectors that will be measured are
         * fetched whole: most of a list is usually visited already, and each vector
         * is many cache lines. The first line of every neighbour's vector is asked for
         * at once, though: which ones are unvisited is known only when the stamp loads
         * return (the stamps, 2 bytes per node, outgrow the L2 at 1M nodes), and
         * waiting for them before any vector fetch starts cost 5-10% there. */
        uint32_t nt = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = link_load(&links[j]);
            __builtin_prefetch(l0_vec(ix, nb));
            todo[nt] = nb;
            nt += stamp[nb] != gen;
            stamp[nb] = gen;
        }
        /* room for every neighbour, so the pushes below need no checks */
        if (heap_reserve(cand, cand->n + nt + 1))
            return MK_ENOMEM;
        for (uint32_t j = 0; j < nt && j < ahead; j++)
            prefetch_vec(ix, todo[j]);
        for (uint32_t j = 0; j < nt; j++) {
            uint32_t nb = todo[j];
            if (j + ahead < nt)
                prefetch_vec(ix, todo[j + ahead]);
            float d = sdist(ix, q, nb);
            c->ndist++;
            if (res->n < ef || d < lower) {
                minh_push(cand, d, nb);
                __builtin_prefetch(l0_links(ix, cand->a[0].id));
                if (passes(ix, f, nb)) {
                    maxh_push(res, d, nb);
                    if (res->n > ef)
                        maxh_pop(res);
                    lower = res->a[0].d;
                }
            }
        }
        if (budget && c->ndist - start > budget) {
            *exhausted = true;
            break;
        }
    }
    return 0;
}

/* Exact scan over members (or every node when members is NULL): k best in c->res. */
static int brute(mk_vector_index *ix, search_ctx *c, const float *qf, size_t k,
                 const mk_vector_filter *f, const uint32_t *members, size_t nmembers)
{
    heap *res = &c->res;
    res->n = 0;
    if (heap_reserve(res, k + 1))
        return MK_ENOMEM;
    size_t n = members ? nmembers : atomic_load(&ix->n);
    for (size_t i = 0; i < n; i++) {
        uint32_t id = members ? members[i] : (uint32_t)i;
        if (!passes(ix, f, id))
            continue;
        float d = fdist(ix, qf, node_fvec(ix, id));
        c->ndist++;
        if (res->n < k || d < res->a[0].d) {
            maxh_push(res, d, id);
            if (res->n > k)
                maxh_pop(res);
        }
    }
    return 0;
}

/* Sorts c->res (re-ranked on floats under int8 when rerank) into out. */
static size_t emit(mk_vector_index *ix, search_ctx *c, const float *qf, size_t k, bool rerank,
                   mk_vector_hit *out)
{
    dpair *a = c->res.a;
    size_t n = c->res.n;
    if (rerank)
        for (size_t i = 0; i < n; i++) {
            /* the float vectors live apart from the walk's blocks: fetch ahead */
            if (i + PREFETCH_AHEAD < n)
                prefetch_fvec(ix, a[i + PREFETCH_AHEAD].id);
            a[i].d = fdist(ix, qf, node_fvec(ix, a[i].id));
            c->ndist++;
        }
    dpair_sort(a, n);
    if (n > k)
        n = k;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = a[i].id;
        out[i].key = ix->keys[id];
        out[i].distance = a[i].d;
        out[i].ns = ix->ns[id];
        out[i].meta = ix->meta[id];
    }
    return n;
}

static int search_impl(mk_vector_index *ix, const float *query, uint32_t dim, uint32_t k,
                       const mk_vector_search_opts *opts, mk_vector_hit *out, size_t *n_out,
                       bool exact)
{
    if (n_out)
        *n_out = 0;
    if (!ix || !query || !out || !n_out || k == 0)
        return MK_EINVAL;
    if (k > MK_VECTOR_MAX_K)
        return MK_ETOOBIG;
    if (dim != ix->p.dim)
        return MK_EINVAL;
    uint32_t ef = opts && opts->ef && !exact ? opts->ef : atomic_load(&ix->ef_search);
    if (ef > MK_VECTOR_MAX_EF)
        return MK_ETOOBIG;
    if (ef < k)
        ef = k;
    const mk_vector_filter *f = opts ? opts->filter : NULL;
    mk_vector_search_stats st = {.path = MK_VECTOR_PATH_EMPTY};

    pthread_rwlock_rdlock(&ix->rw);
    search_ctx *c = ctx_get(ix);
    int rc = c ? 0 : MK_ENOMEM;
    if (rc == 0)
        rc = vec_prepare(ix, query, dim, c->qbuf);
    if (rc)
        goto out;
    squery q = {.f = c->qbuf, .qq = c->qbuf + dim, .qc = 0};
    if (ix->quant && ix->qfitted)
        q.qc = quant_prepare_query(ix, c->qbuf, c->qbuf + dim);

    uint32_t ep = atomic_load(&ix->entry);
    int maxl = atomic_load(&ix->max_level);
    uint64_t live = atomic_load(&ix->live);
    size_t got = 0;
    if (ep == NODE_NONE || live == 0)
        goto done;

    bool ns_locked = false;
    const uint32_t *members = NULL;
    size_t nmembers = 0;
    uint64_t cnt = live;
    if (f && f->use_ns) {
        pthread_rwlock_rdlock(&ix->ns_rw);
        ns_locked = true;
        ns_entry *e = nstable_find(&ix->nst, f->ns);
        cnt = e ? e->live : 0;
        if (e) {
            members = e->members;
            nmembers = e->len;
        }
    }
    if (cnt == 0)
        goto unlock_ns;

    bool filtered = f || atomic_load(&ix->deleted) > 0;
    uint32_t n = atomic_load(&ix->n);
    bool scan = exact || live <= 2 * (uint64_t)ef;
    double walk_dist = 0; /* distances the walk is expected to evaluate */
    if (!scan && filtered) {
        /* the set a scan would cover, and the fraction of it that passes */
        double scan_n = members ? (double)nmembers : (double)n, pass;
        if (f && f->pred) {
            /* Pseudo-random positions (a fixed Weyl sequence), not a fixed stride: a
             * stride aliases with periodic data (every 390th row of "row % 10 == 0"
             * all pass). Deterministic, so the same query takes the same path. */
            size_t tried = 0, ok = 0, m = members ? nmembers : n;
            uint64_t x = 0;
            for (; tried < SAMPLE && tried < m; tried++) {
                x += 0x9e3779b97f4a7c15ULL;
                size_t i = m > SAMPLE ? (size_t)(((x >> 32) * (uint64_t)m) >> 32) : tried;
                ok += passes(ix, f, members ? members[i] : (uint32_t)i);
            }
            pass = ((double)ok + 0.5) / ((double)tried + 1.0);
        } else {
            pass = (double)cnt / (scan_n > 0 ? scan_n : 1);
        }
        double s_graph = pass * scan_n / (n ? n : 1); /* selectivity over the whole graph */
        double scan_cost = scan_n * COST_SCAN + pass * scan_n;
        walk_dist = (WALK_BASE + WALK_PER_PASS / (s_graph > 1e-9 ? s_graph : 1e-9)) * ef;
        double walk_cost = walk_dist * COST_WALK;
        /* a broad filter walks almost like an unfiltered search (cheap per distance),
         * which the model's filtered-walk constants overprice: measured on 10k x 512-d,
         * a 50% predicate took 0.57 ms by scan where the walk needs ~1,500 distances */
        scan = s_graph < 0.3 && scan_cost <= walk_cost;
    }
    if (scan) {
        st.path = MK_VECTOR_PATH_BRUTE;
        rc = brute(ix, c, q.f, k, f, members, nmembers);
        if (rc == 0)
            got = emit(ix, c, q.f, k, false, out);
        goto unlock_ns;
    }
    if (ns_locked) {
        /* The walk can be long; do not hold the namespace table against inserts. */
        pthread_rwlock_unlock(&ix->ns_rw);
        ns_locked = false;
        members = NULL;
    }

    /* a walk that runs to twice its expected length was planned on a wrong estimate:
     * it stops and the scan answers (see the header) */
    uint64_t budget = filtered ? (uint64_t)(2 * walk_dist) + 4 * (uint64_t)ef : 0;
    float d0;
    uint32_t start = descend(ix, c, &q, ep, maxl, &d0);
    bool exhausted = false;
    st.path = MK_VECTOR_PATH_GRAPH;
    st.ef_used = ef;
    st.graph_walks = 1;
    rc = walk_l0(ix, c, &q, start, d0, ef, f, budget, &exhausted);
    if (rc == 0 && exhausted) {
        st.path = MK_VECTOR_PATH_BRUTE;
        if (f && f->use_ns) {
            pthread_rwlock_rdlock(&ix->ns_rw);
            ns_locked = true;
            ns_entry *e = nstable_find(&ix->nst, f->ns);
            if (e)
                rc = brute(ix, c, q.f, k, f, e->members, e->len);
            else
                c->res.n = 0;
        } else {
            rc = brute(ix, c, q.f, k, f, NULL, 0);
        }
        if (rc == 0)
            got = emit(ix, c, q.f, k, false, out);
    } else if (rc == 0) {
        got = emit(ix, c, q.f, k, ix->quant, out);
    }

unlock_ns:
    if (ns_locked)
        pthread_rwlock_unlock(&ix->ns_rw);
done:
    *n_out = got;
    st.distances = c->ndist;
out:
    ctx_put(ix, c);
    pthread_rwlock_unlock(&ix->rw);
    if (opts && opts->stats)
        *opts->stats = st;
    return rc;
}

int mk_vector_search(mk_vector_index *ix, const float *query, uint32_t dim, uint32_t k,
                     const mk_vector_search_opts *opts, mk_vector_hit *out, size_t *n_out)
{
    return search_impl(ix, query, dim, k, opts, out, n_out, false);
}

int mk_vector_search_exact(mk_vector_index *ix, const float *query, uint32_t dim, uint32_t k,
                           const mk_vector_search_opts *opts, mk_vector_hit *out, size_t *n_out)
{
    return search_impl(ix, query, dim, k, opts, out, n_out, true);
}
