/*
 * hnsw.c: the index's life cycle and graph construction (insert, upsert, batch insert,
 * delete), after Malkov & Yashunin's HNSW: each node draws a level from a geometric
 * distribution; upper levels are sparse express lanes, level 0 holds every node with
 * up to 2*M neighbours; a new node is linked to the neighbours a beam search
 * (ef_construction wide) finds, pruned by the "keep a candidate only if it is nearer
 * to the new node than to any neighbour already kept" heuristic, which keeps links
 * pointing in diverse directions so walks do not get stuck in a cluster.
 *
 * Searching lives in search.c, compaction in compact.c, files in persist.c.
 * The locking scheme is described in vector_int.h.
 */
#include "vector/vector_int.h"
#include "core/mk_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Re-fit int8 ranges each time the node count doubles, until this many were seen. */
#define QUANT_STABLE 65536
/* Internal: insert found the arrays full; the caller grows them and retries. */
#define NEED_GROW 1

/* ---- parameters, allocation ------------------------------------------------------ */

void mk_vector_params_default(mk_vector_params *p, uint32_t dim, enum mk_vector_metric metric)
{
    memset(p, 0, sizeof *p);
    p->dim = dim;
    p->metric = metric;
    p->M = 16;
    p->ef_construction = 200;
    p->ef_search = 64;
    p->quant = MK_VECTOR_QUANT_NONE;
    p->seed = 0x6d61796b76656331ULL; /* "mayakvec1" */
    p->capacity = 1024;
}

static int check_params(const mk_vector_params *p)
{
    if (!p || p->dim == 0 || p->dim > MK_VECTOR_MAX_DIM)
        return MK_EINVAL;
    if (p->metric != MK_VECTOR_L2 && p->metric != MK_VECTOR_DOT && p->metric != MK_VECTOR_COSINE)
        return MK_EINVAL;
    if (p->M < 2 || p->M > MK_VECTOR_MAX_M)
        return MK_EINVAL;
    if (p->ef_construction == 0 || p->ef_construction > MK_VECTOR_MAX_EF)
        return MK_EINVAL;
    if (p->ef_search == 0 || p->ef_search > MK_VECTOR_MAX_EF)
        return MK_EINVAL;
    if (p->quant != MK_VECTOR_QUANT_NONE && p->quant != MK_VECTOR_QUANT_INT8)
        return MK_EINVAL;
    if (p->capacity > MK_VECTOR_MAX_NODES)
        return MK_ETOOBIG;
    return 0;
}

static void *xrealloc_array(void *old, size_t n, size_t size, size_t old_n)
{
    void *p = realloc(old, n * size);
    if (p && n > old_n)
        memset((char *)p + old_n * size, 0, (n - old_n) * size);
    return p;
}

/* Grows (or first allocates) every per-node array to cap. Contents up to the old
 * capacity are kept. Called with rw held exclusively (or before the index is shared). */
int alloc_arrays(mk_vector_index *ix, size_t cap)
{
    size_t old = ix->cap;
    if (cap <= old)
        return 0;
    uint8_t *l0 = NULL;
    if (posix_memalign((void **)&l0, 64, cap * ix->block_size) != 0)
        return MK_ENOMEM;
    if (old)
        memcpy(l0, ix->level0, old * ix->block_size);
    memset(l0 + old * ix->block_size, 0, (cap - old) * ix->block_size);
    free(ix->level0);
    ix->level0 = l0;

#define GROW(field)                                                                    \
    do {                                                                               \
        void *np_ = xrealloc_array((void *)ix->field, cap, sizeof *ix->field, old);    \
        if (!np_)                                                                      \
            return MK_ENOMEM;                                                          \
        ix->field = np_;                                                               \
    } while (0)
    GROW(keys);
    GROW(meta);
    GROW(ns);
    GROW(flags);
    GROW(levels);
    GROW(upper);
#undef GROW
    if (ix->quant) {
        float *f = xrealloc_array(ix->fvec, cap, ix->p.dim * sizeof(float), old);
        if (!f)
            return MK_ENOMEM;
        ix->fvec = f;
    }
    ix->cap = cap;
    /* Scratch visited arrays are sized to the capacity: drop them, they come back
     * at the new size on the next search. */
    ctx_free_all(ix);
    return 0;
}

int index_grow_locked(mk_vector_index *ix, size_t want)
{
    if (want <= ix->cap)
        return 0;
    if (want > MK_VECTOR_MAX_NODES)
        return MK_ETOOBIG;
    size_t cap = ix->cap ? ix->cap : 1024;
    while (cap < want)
        cap *= 2;
    if (cap > MK_VECTOR_MAX_NODES)
        cap = MK_VECTOR_MAX_NODES;
    return alloc_arrays(ix, cap);
}

int mk_vector_new(const mk_vector_params *p, mk_vector_index **out)
{
    if (!out)
        return MK_EINVAL;
    *out = NULL;
    int rc = check_params(p);
    if (rc)
        return rc;
    mk_vector_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return MK_ENOMEM;
    ix->p = *p;
    ix->M0 = 2 * p->M;
    ix->quant = p->quant == MK_VECTOR_QUANT_INT8;
    ix->vk = vk_best();
    /* The vector first, on the block's cache-line boundary, then the level-0 list on a
     * 16-byte boundary; the block is a multiple of 64 so every block starts on its own
     * cache line (see vector_int.h). For the usual dims (96, 128, 384, 512, 768) the
     * block is no larger than with the list first. */
    ix->vec_bytes = ix->quant ? p->dim : (size_t)p->dim * sizeof(float);
    ix->vec_lines = (ix->vec_bytes + 63) / 64;
    ix->links_off = (ix->vec_bytes + 15) & ~(size_t)15;
    ix->block_size = (ix->links_off + (1 + (size_t)ix->M0) * 4 + 63) & ~(size_t)63;
    ix->level_mult = 1.0 / log((double)p->M);
    atomic_store(&ix->entry, NODE_NONE);
    atomic_store(&ix->max_level, -1);
    atomic_store(&ix->ef_search, p->ef_search);

    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writers (growth, compaction, save) are rare and short; preferring them keeps a
     * stream of searches from starving them. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ix->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_rwlock_init(&ix->ns_rw, NULL);
    pthread_mutex_init(&ix->entry_mu, NULL);
    pthread_mutex_init(&ix->map_mu, NULL);
    pthread_mutex_init(&ix->pool_mu, NULL);
    for (size_t i = 0; i < LOCK_STRIPES; i++)
        pthread_mutex_init(&ix->stripes[i], NULL);

    size_t cap = p->capacity ? p->capacity : 1024;
    if ((rc = idmap_init(&ix->map, cap)) || (rc = nstable_init(&ix->nst)) ||
        (ix->quant && (rc = quant_alloc(ix))) || (rc = alloc_arrays(ix, cap))) {
        mk_vector_free(ix);
        return rc;
    }
    *out = ix;
    return 0;
}

void mk_vector_free(mk_vector_index *ix)
{
    if (!ix)
        return;
    if (ix->upper)
        for (size_t i = 0; i < ix->cap; i++)
            free(ix->upper[i]);
    free(ix->upper);
    free(ix->level0);
    free(ix->fvec);
    free(ix->keys);
    free(ix->meta);
    free(ix->ns);
    free((void *)ix->flags);
    free(ix->levels);
    free(ix->qmin);
    free(ix->qscale);
    idmap_release(&ix->map);
    nstable_release(&ix->nst);
    ctx_free_all(ix);
    pthread_rwlock_destroy(&ix->rw);
    pthread_rwlock_destroy(&ix->ns_rw);
    pthread_mutex_destroy(&ix->entry_mu);
    pthread_mutex_destroy(&ix->map_mu);
    pthread_mutex_destroy(&ix->pool_mu);
    for (size_t i = 0; i < LOCK_STRIPES; i++)
        pthread_mutex_destroy(&ix->stripes[i]);
    free(ix);
}

/* ---- scratch contexts ---------------------------------------------------------------- */

int heap_reserve(heap *h, size_t want)
{
    if (want <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < want)
        cap *= 2;
    dpair *a = realloc(h->a, cap * sizeof *a);
    if (!a)
        return MK_ENOMEM;
    h->a = a;
    h->cap = cap;
    return 0;
}

static void ctx_destroy(search_ctx *c)
{
    if (!c)
        return;
    free(c->stamp);
    free(c->cand.a);
    free(c->res.a);
    free(c->qbuf);
    free(c);
}

/* A scratch context sized for the current capacity (rw held, shared or exclusive),
 * or NULL on ENOMEM. Pooled, because a visited array of cap entries is too large to
 * allocate per search and too large to keep per thread for every index. */
search_ctx *ctx_get(mk_vector_index *ix)
{
    pthread_mutex_lock(&ix->pool_mu);
    search_ctx *c = ix->ctx_pool;
    if (c) {
        ix->ctx_pool = c->next;
        ix->ctx_count--;
    }
    pthread_mutex_unlock(&ix->pool_mu);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return NULL;
    }
    if (c->stamp_cap < ix->cap) {
        free(c->stamp);
        c->stamp = calloc(ix->cap, sizeof *c->stamp);
        if (!c->stamp) {
            ctx_destroy(c);
            return NULL;
        }
        c->stamp_cap = ix->cap;
        c->gen = 0;
    }
    size_t qwant = 2 * (size_t)ix->p.dim;
    if (c->qbuf_cap < qwant) {
        free(c->qbuf);
        c->qbuf = malloc(qwant * sizeof(float));
        if (!c->qbuf) {
            ctx_destroy(c);
            return NULL;
        }
        c->qbuf_cap = qwant;
    }
    c->next = NULL;
    c->ndist = 0;
    return c;
}

void ctx_put(mk_vector_index *ix, search_ctx *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&ix->pool_mu);
    /* Keep a handful; more than the number of threads that search at once is waste. */
    if (c->stamp_cap >= ix->cap && ix->ctx_count < 16) {
        c->next = ix->ctx_pool;
        ix->ctx_pool = c;
        ix->ctx_count++;
        c = NULL;
    }
    pthread_mutex_unlock(&ix->pool_mu);
    ctx_destroy(c);
}

void ctx_free_all(mk_vector_index *ix)
{
    search_ctx *c = ix->ctx_pool;
    while (c) {
        search_ctx *n = c->next;
        ctx_destroy(c);
        c = n;
    }
    ix->ctx_pool = NULL;
    ix->ctx_count = 0;
}

static int cmp_dpair(const void *a, const void *b)
{
    const dpair *x = a, *y = b;
    if (x->d < y->d)
        return -1;
    if (x->d > y->d)
        return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void dpair_sort(dpair *a, size_t n)
{
    /* Result lists (ef, a few dozen) are sorted once per search: an insertion sort
     * beats qsort's indirect compares there; same order (distance, then id). */
    if (n > 64) {
        qsort(a, n, sizeof *a, cmp_dpair);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        dpair t = a[i];
        size_t j = i;
        while (j > 0 && cmp_dpair(&a[j - 1], &t) > 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = t;
    }
}

/* ---- input checks ------------------------------------------------------------------ */

int vec_prepare(const mk_vector_index *ix, const float *in, uint32_t dim, float *out)
{
    if (!in || dim != ix->p.dim)
        return MK_EINVAL;
    double norm = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(in[i]))
            return MK_EINVAL;
        norm += (double)in[i] * in[i];
    }
    if (!isfinite(norm))
        return MK_EINVAL;
    if (ix->p.metric == MK_VECTOR_COSINE) {
        /* A zero (or denormal-small) vector has no direction. */
        if (norm < 1e-30)
            return MK_EINVAL;
        float inv = (float)(1.0 / sqrt(norm));
        for (uint32_t i = 0; i < dim; i++)
            out[i] = in[i] * inv;
    } else if (out != in) {
        memcpy(out, in, dim * sizeof(float));
    }
    return 0;
}

/* ---- construction ------------------------------------------------------------------ */

int draw_level(const mk_vector_index *ix, uint64_t key)
{
    /* Derived from the key, not from a shared generator, so the level of a key does not
     * depend on which thread inserted it or in which order. */
    uint64_t x = key ^ ix->p.seed;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    double u = ((double)(x >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double l = -log(u) * ix->level_mult;
    return l > MAX_LEVEL ? MAX_LEVEL : (int)l;
}

int walk_build(mk_vector_index *ix, search_ctx *c, const float *q, uint32_t entry, int l,
               size_t ef)
{
    size_t mcap = l == 0 ? ix->M0 : ix->p.M;
    if (heap_reserve(&c->res, ef + 1) || heap_reserve(&c->cand, ef + 1))
        return MK_ENOMEM;
    uint16_t gen = next_gen(c);
    c->res.n = c->cand.n = 0;
    float d = fdist(ix, q, node_fvec(ix, entry));
    c->stamp[entry] = gen;
    maxh_push(&c->res, d, entry);
    minh_push(&c->cand, d, entry);
    while (c->cand.n) {
        dpair cur = c->cand.a[0];
        if (cur.d > c->res.a[0].d && c->res.n >= ef)
            break;
        minh_pop(&c->cand);
        const uint32_t *links = node_links(ix, cur.id, l);
        uint32_t cnt = link_load(&links[0]);
        if (cnt > mcap)
            cnt = (uint32_t)mcap;
        /* As in search.c's walk: the unvisited neighbours first, then each one's whole
         * float vector is prefetched one step before it is measured. */
        uint32_t todo[2 * MK_VECTOR_MAX_M], nt = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = link_load(&links[j]);
            if (c->stamp[nb] != gen) {
                c->stamp[nb] = gen;
                todo[nt++] = nb;
            }
        }
        if (nt)
            prefetch_fvec(ix, todo[0]);
        for (uint32_t j = 0; j < nt; j++) {
            uint32_t nb = todo[j];
            if (j + 1 < nt)
                prefetch_fvec(ix, todo[j + 1]);
            float dn = fdist(ix, q, node_fvec(ix, nb));
            if (c->res.n < ef || dn < c->res.a[0].d) {
                if (heap_reserve(&c->cand, c->cand.n + 1))
                    return MK_ENOMEM;
                minh_push(&c->cand, dn, nb);
                maxh_push(&c->res, dn, nb);
                if (c->res.n > ef)
                    maxh_pop(&c->res);
            }
        }
    }
    return 0;
}

size_t select_neighbors(const mk_vector_index *ix, const dpair *cand, size_t ncand, size_t m,
                        uint32_t *out)
{
    size_t kept = 0;
    for (size_t i = 0; i < ncand && kept < m; i++) {
        const float *v = node_fvec(ix, cand[i].id);
        bool good = true;
        for (size_t j = 0; j < kept; j++) {
            if (fdist(ix, v, node_fvec(ix, out[j])) < cand[i].d) {
                good = false;
                break;
            }
        }
        if (good)
            out[kept++] = cand[i].id;
    }
    return kept;
}

static inline pthread_mutex_t *stripe(mk_vector_index *ix, uint32_t id)
{
    return &ix->stripes[id & (LOCK_STRIPES - 1)];
}

/* Adds `id` to the level-l list of `e`, pruning with the heuristic when full. */
static int link_back(mk_vector_index *ix, uint32_t e, uint32_t id, int l, dpair *scratch,
                     uint32_t *sel)
{
    size_t mcap = l == 0 ? ix->M0 : ix->p.M;
    pthread_mutex_t *mu = stripe(ix, e);
    pthread_mutex_lock(mu);
    uint32_t *links = node_links(ix, e, l);
    uint32_t cnt = links[0];
    for (uint32_t j = 1; j <= cnt; j++)
        if (links[j] == id) {
            pthread_mutex_unlock(mu);
            return 0;
        }
    if (cnt < mcap) {
        link_store(&links[1 + cnt], id);
        link_store(&links[0], cnt + 1);
    } else {
        const float *ev = node_fvec(ix, e);
        size_t n = 0;
        scratch[n].id = id;
        scratch[n++].d = fdist(ix, ev, node_fvec(ix, id));
        for (uint32_t j = 1; j <= cnt; j++) {
            scratch[n].id = links[j];
            scratch[n++].d = fdist(ix, ev, node_fvec(ix, links[j]));
        }
        dpair_sort(scratch, n);
        size_t k = select_neighbors(ix, scratch, n, mcap, sel);
        /* Entries first, count last: a reader that sees the new count sees entries
         * written no earlier than it; every entry ever written is a valid id. */
        for (size_t j = 0; j < k; j++)
            link_store(&links[1 + j], sel[j]);
        link_store(&links[0], (uint32_t)k);
    }
    pthread_mutex_unlock(mu);
    return 0;
}

/* Links node id (already READY, vector q) into the graph. rw held shared. */
static int link_node(mk_vector_index *ix, search_ctx *c, uint32_t id, const float *q, int level)
{
    pthread_mutex_lock(&ix->entry_mu);
    uint32_t ep = atomic_load(&ix->entry);
    int maxl = atomic_load(&ix->max_level);
    if (ep == NODE_NONE) {
        atomic_store(&ix->entry, id);
        atomic_store(&ix->max_level, level);
        pthread_mutex_unlock(&ix->entry_mu);
        return 0;
    }
    /* A node that raises the top level keeps entry_mu for its whole insertion, so
     * nobody descends from a half-linked entry point (rare: ~1/M^maxlevel). */
    bool hold = level > maxl;
    if (!hold)
        pthread_mutex_unlock(&ix->entry_mu);

    int rc = 0;
    uint32_t cur = ep;
    float dcur = fdist(ix, q, node_fvec(ix, cur));
    for (int l = maxl; l > level; l--) {
        bool changed = true;
        while (changed) {
            changed = false;
            const uint32_t *links = node_links(ix, cur, l);
            uint32_t cnt = link_load(&links[0]);
            if (cnt > ix->p.M)
                cnt = ix->p.M;
            for (uint32_t j = 1; j <= cnt; j++) {
                uint32_t nb = link_load(&links[j]);
                float d = fdist(ix, q, node_fvec(ix, nb));
                if (d < dcur) {
                    dcur = d;
                    cur = nb;
                    changed = true;
                }
            }
        }
    }

    size_t scratch_n = ix->M0 + 1 > ix->p.ef_construction ? ix->M0 + 1 : ix->p.ef_construction;
    dpair *scratch = malloc((scratch_n + 1) * sizeof *scratch);
    uint32_t *sel = malloc((scratch_n + 1) * sizeof *sel);
    if (!scratch || !sel) {
        rc = MK_ENOMEM;
        goto out;
    }
    for (int l = level < maxl ? level : maxl; l >= 0; l--) {
        rc = walk_build(ix, c, q, cur, l, ix->p.ef_construction);
        if (rc)
            goto out;
        size_t n = c->res.n;
        memcpy(scratch, c->res.a, n * sizeof *scratch);
        dpair_sort(scratch, n);
        /* Never link a node to itself (a file with a self-link is refused on load). */
        size_t w = 0;
        for (size_t j = 0; j < n; j++)
            if (scratch[j].id != id)
                scratch[w++] = scratch[j];
        n = w;
        if (n == 0)
            continue;
        size_t k = select_neighbors(ix, scratch, n, ix->p.M, sel);
        cur = scratch[0].id;
        uint32_t *mine = node_links(ix, id, l);
        pthread_mutex_lock(stripe(ix, id));
        for (size_t j = 0; j < k; j++)
            link_store(&mine[1 + j], sel[j]);
        link_store(&mine[0], (uint32_t)k);
        pthread_mutex_unlock(stripe(ix, id));
        /* sel is reused by link_back; keep our own copy of the chosen ids. */
        uint32_t chosen[2 * MK_VECTOR_MAX_M];
        memcpy(chosen, sel, k * sizeof *sel);
        for (size_t j = 0; j < k; j++)
            if (chosen[j] != id)
                link_back(ix, chosen[j], id, l, scratch, sel);
    }
    if (hold) {
        atomic_store(&ix->entry, id);
        atomic_store(&ix->max_level, level);
    }
out:
    if (hold)
        pthread_mutex_unlock(&ix->entry_mu);
    free(scratch);
    free(sel);
    return rc;
}

static void quant_refit_locked(mk_vector_index *ix)
{
    uint32_t n = atomic_load(&ix->n);
    quant_fit(ix, ix->fvec, n, ix->p.dim);
    for (uint32_t i = 0; i < n; i++)
        quant_encode(ix, ix->fvec + (size_t)i * ix->p.dim, (uint8_t *)(void *)(uintptr_t)l0_vec(ix, i));
    ix->qfit_n = n;
}

/* Under int8, re-fits the ranges when the index has doubled since the last fit. */
static void quant_maybe_refit(mk_vector_index *ix)
{
    if (!ix->quant)
        return;
    uint32_t n = atomic_load(&ix->n);
    if (ix->qfit_n >= QUANT_STABLE || n < 64 || n < 2 * (uint64_t)ix->qfit_n)
        return;
    pthread_rwlock_wrlock(&ix->rw);
    n = atomic_load(&ix->n);
    if (ix->qfit_n < QUANT_STABLE && n >= 64 && n >= 2 * (uint64_t)ix->qfit_n)
        quant_refit_locked(ix);
    pthread_rwlock_unlock(&ix->rw);
}

/* Tombstones node id (map_mu held). */
static void tombstone_locked(mk_vector_index *ix, uint32_t id)
{
    uint8_t f = atomic_fetch_or(&ix->flags[id], NODE_DELETED);
    if (f & NODE_DELETED)
        return;
    atomic_fetch_sub(&ix->live, 1);
    atomic_fetch_add(&ix->deleted, 1);
    pthread_rwlock_wrlock(&ix->ns_rw);
    nstable_dec(&ix->nst, ix->ns[id]);
    pthread_rwlock_unlock(&ix->ns_rw);
}

/* One insert with rw held shared. v is the stored form. NEED_GROW when full. */
static int insert_one(mk_vector_index *ix, search_ctx *c, uint64_t key, const float *v,
                      const mk_vector_attrs *attrs, bool upsert)
{
    int level = draw_level(ix, key);
    uint32_t *up = NULL;
    if (level > 0) {
        up = calloc((size_t)level * (1 + ix->p.M), sizeof *up);
        if (!up)
            return MK_ENOMEM;
    }
    pthread_mutex_lock(&ix->map_mu);
    uint32_t old = idmap_get(&ix->map, key);
    if (old != NODE_NONE && !upsert) {
        pthread_mutex_unlock(&ix->map_mu);
        free(up);
        return MK_EEXISTS;
    }
    uint32_t id = atomic_load(&ix->n);
    if (id >= ix->cap) {
        pthread_mutex_unlock(&ix->map_mu);
        free(up);
        return NEED_GROW;
    }
    int rc = idmap_put(&ix->map, key, id);
    if (rc == 0) {
        pthread_rwlock_wrlock(&ix->ns_rw);
        rc = nstable_add(&ix->nst, attrs ? attrs->ns : 0, id);
        pthread_rwlock_unlock(&ix->ns_rw);
        if (rc) {
            if (old != NODE_NONE)
                idmap_put(&ix->map, key, old); /* cannot grow: the key is present */
            else
                idmap_del(&ix->map, key);
        }
    }
    if (rc) {
        pthread_mutex_unlock(&ix->map_mu);
        free(up);
        return rc;
    }
    if (old != NODE_NONE)
        tombstone_locked(ix, old);
    ix->keys[id] = key;
    ix->meta[id] = attrs ? attrs->meta : 0;
    ix->ns[id] = attrs ? attrs->ns : 0;
    ix->levels[id] = (uint8_t)level;
    ix->upper[id] = up;
    uint32_t *l0 = l0_links(ix, id);
    link_store(&l0[0], 0);
    if (ix->quant) {
        memcpy(ix->fvec + (size_t)id * ix->p.dim, v, ix->p.dim * sizeof(float));
        quant_encode(ix, v, (uint8_t *)(void *)(uintptr_t)l0_vec(ix, id));
    } else {
        memcpy((void *)(uintptr_t)l0_vec(ix, id), v, ix->p.dim * sizeof(float));
    }
    atomic_fetch_add(&ix->live, 1);
    atomic_store_explicit(&ix->flags[id], NODE_READY, memory_order_release);
    atomic_store(&ix->n, id + 1);
    pthread_mutex_unlock(&ix->map_mu);

    return link_node(ix, c, id, node_fvec(ix, id), level);
}

/* Insert/upsert of one stored-form vector, growing the arrays as needed. */
static int insert_retry(mk_vector_index *ix, uint64_t key, const float *v,
                        const mk_vector_attrs *attrs, bool upsert)
{
    for (;;) {
        quant_maybe_refit(ix);
        pthread_rwlock_rdlock(&ix->rw);
        search_ctx *c = ctx_get(ix);
        int rc = c ? insert_one(ix, c, key, v, attrs, upsert) : MK_ENOMEM;
        ctx_put(ix, c);
        pthread_rwlock_unlock(&ix->rw);
        if (rc != NEED_GROW)
            return rc;
        pthread_rwlock_wrlock(&ix->rw);
        rc = atomic_load(&ix->n) >= ix->cap ? index_grow_locked(ix, ix->cap + 1) : 0;
        pthread_rwlock_unlock(&ix->rw);
        if (rc)
            return rc;
    }
}

static int insert_common(mk_vector_index *ix, uint64_t key, const float *vec, uint32_t dim,
                         const mk_vector_attrs *attrs, bool upsert)
{
    if (!ix || !vec)
        return MK_EINVAL;
    if (dim != ix->p.dim)
        return MK_EINVAL;
    float *v = malloc(dim * sizeof(float));
    if (!v)
        return MK_ENOMEM;
    int rc = vec_prepare(ix, vec, dim, v);
    if (rc == 0 && ix->quant && !ix->qfitted) {
        pthread_rwlock_wrlock(&ix->rw);
        if (!ix->qfitted) {
            quant_fit(ix, v, 1, dim);
            ix->qfit_n = 1;
        }
        pthread_rwlock_unlock(&ix->rw);
    }
    if (rc == 0)
        rc = insert_retry(ix, key, v, attrs, upsert);
    free(v);
    return rc;
}

int mk_vector_insert(mk_vector_index *ix, uint64_t key, const float *vec, uint32_t dim,
                     const mk_vector_attrs *attrs)
{
    return insert_common(ix, key, vec, dim, attrs, false);
}

int mk_vector_upsert(mk_vector_index *ix, uint64_t key, const float *vec, uint32_t dim,
                     const mk_vector_attrs *attrs)
{
    return insert_common(ix, key, vec, dim, attrs, true);
}

/* ---- batch insert -------------------------------------------------------------------- */

typedef struct batch_job {
    mk_vector_index *ix;
    size_t n;
    const uint64_t *keys;
    const float *vectors;
    const mk_vector_attrs *attrs;
    _Atomic size_t next;
    _Atomic int err;
} batch_job;

static void *batch_worker(void *arg)
{
    batch_job *j = arg;
    mk_vector_index *ix = j->ix;
    uint32_t dim = ix->p.dim;
    float *v = malloc(dim * sizeof(float));
    if (!v) {
        int zero = 0;
        atomic_compare_exchange_strong(&j->err, &zero, MK_ENOMEM);
        return NULL;
    }
    for (;;) {
        if (atomic_load(&j->err))
            break;
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n)
            break;
        int rc = vec_prepare(ix, j->vectors + i * dim, dim, v);
        if (rc == 0)
            rc = insert_retry(ix, j->keys[i], v, j->attrs ? &j->attrs[i] : NULL, true);
        if (rc) {
            int zero = 0;
            atomic_compare_exchange_strong(&j->err, &zero, rc);
        }
    }
    free(v);
    return NULL;
}

int mk_vector_insert_batch(mk_vector_index *ix, size_t n, const uint64_t *keys,
                           const float *vectors, uint32_t dim, const mk_vector_attrs *attrs,
                           unsigned nthreads)
{
    if (!ix || (n && (!keys || !vectors)) || dim != ix->p.dim)
        return MK_EINVAL;
    if (n == 0)
        return 0;
    if (n > MK_VECTOR_MAX_NODES)
        return MK_ETOOBIG;
    /* Validate everything first so a bad batch changes nothing. */
    for (size_t i = 0; i < n; i++) {
        const float *x = vectors + i * dim;
        double norm = 0;
        for (uint32_t d = 0; d < dim; d++) {
            if (!isfinite(x[d]))
                return MK_EINVAL;
            norm += (double)x[d] * x[d];
        }
        if (!isfinite(norm) || (ix->p.metric == MK_VECTOR_COSINE && norm < 1e-30))
            return MK_EINVAL;
    }
    idmap seen;
    int rc = idmap_init(&seen, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (idmap_get(&seen, keys[i]) != NODE_NONE)
            rc = MK_EINVAL;
        else
            rc = idmap_put(&seen, keys[i], 0);
    }
    idmap_release(&seen);
    if (rc)
        return rc;

    pthread_rwlock_wrlock(&ix->rw);
    rc = index_grow_locked(ix, (size_t)atomic_load(&ix->n) + n);
    if (rc == 0 && ix->quant && (!ix->qfitted || ix->qfit_n < 64)) {
        /* Fit on (a sample of) the batch, in stored form. */
        size_t m = n < 16384 ? n : 16384, step = n / m;
        float *tmp = malloc(m * dim * sizeof(float));
        if (!tmp) {
            rc = MK_ENOMEM;
        } else {
            for (size_t i = 0; i < m; i++)
                vec_prepare(ix, vectors + i * step * dim, dim, tmp + i * dim);
            quant_fit(ix, tmp, m, dim);
            free(tmp);
            uint32_t have = atomic_load(&ix->n);
            for (uint32_t i = 0; i < have; i++)
                quant_encode(ix, ix->fvec + (size_t)i * dim,
                             (uint8_t *)(void *)(uintptr_t)l0_vec(ix, i));
            ix->qfit_n = (uint32_t)(m > have ? m : have);
        }
    }
    pthread_rwlock_unlock(&ix->rw);
    if (rc)
        return rc;

    if (nthreads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (nthreads > MK_VECTOR_MAX_THREADS)
        nthreads = MK_VECTOR_MAX_THREADS;
    if (nthreads > n)
        nthreads = (unsigned)n;

    batch_job job = {.ix = ix, .n = n, .keys = keys, .vectors = vectors, .attrs = attrs};
    atomic_init(&job.next, 0);
    atomic_init(&job.err, 0);
    pthread_t tids[MK_VECTOR_MAX_THREADS];
    unsigned started = 0;
    for (unsigned t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[started], NULL, batch_worker, &job) != 0)
            break; /* fewer threads is still correct */
        started++;
    }
    batch_worker(&job);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    return atomic_load(&job.err);
}

/* ---- delete, lookups, counters -------------------------------------------------------- */

int mk_vector_delete(mk_vector_index *ix, uint64_t key)
{
    if (!ix)
        return MK_EINVAL;
    pthread_rwlock_rdlock(&ix->rw);
    pthread_mutex_lock(&ix->map_mu);
    uint32_t id = idmap_get(&ix->map, key);
    int rc = MK_ENOTFOUND;
    if (id != NODE_NONE) {
        idmap_del(&ix->map, key);
        tombstone_locked(ix, id);
        rc = 0;
    }
    pthread_mutex_unlock(&ix->map_mu);
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

int mk_vector_get(mk_vector_index *ix, uint64_t key, float *out, uint32_t dim,
                  mk_vector_attrs *attrs)
{
    if (!ix || (out && dim != ix->p.dim))
        return MK_EINVAL;
    pthread_rwlock_rdlock(&ix->rw);
    pthread_mutex_lock(&ix->map_mu);
    uint32_t id = idmap_get(&ix->map, key);
    if (id != NODE_NONE) {
        if (out)
            memcpy(out, node_fvec(ix, id), dim * sizeof(float));
        if (attrs) {
            attrs->ns = ix->ns[id];
            attrs->meta = ix->meta[id];
        }
    }
    pthread_mutex_unlock(&ix->map_mu);
    pthread_rwlock_unlock(&ix->rw);
    return id == NODE_NONE ? MK_ENOTFOUND : 0;
}

bool mk_vector_contains(mk_vector_index *ix, uint64_t key)
{
    return mk_vector_get(ix, key, NULL, 0, NULL) == 0;
}

size_t mk_vector_count(mk_vector_index *ix) { return ix ? (size_t)atomic_load(&ix->live) : 0; }

size_t mk_vector_deleted_count(mk_vector_index *ix)
{
    return ix ? (size_t)atomic_load(&ix->deleted) : 0;
}

size_t mk_vector_ns_count(mk_vector_index *ix, uint32_t ns)
{
    if (!ix)
        return 0;
    pthread_rwlock_rdlock(&ix->ns_rw);
    ns_entry *e = nstable_find(&ix->nst, ns);
    size_t n = e ? (size_t)e->live : 0;
    pthread_rwlock_unlock(&ix->ns_rw);
    return n;
}

size_t mk_vector_memory_bytes(mk_vector_index *ix)
{
    if (!ix)
        return 0;
    pthread_rwlock_rdlock(&ix->rw);
    size_t cap = ix->cap, b = sizeof *ix;
    b += cap * ix->block_size;
    b += cap * (sizeof *ix->keys + sizeof *ix->meta + sizeof *ix->ns + sizeof *ix->flags +
                sizeof *ix->levels + sizeof *ix->upper);
    if (ix->quant)
        b += cap * ix->p.dim * sizeof(float) + 2 * ix->p.dim * sizeof(float);
    uint32_t n = atomic_load(&ix->n);
    for (uint32_t i = 0; i < n; i++)
        if (ix->levels[i])
            b += (size_t)ix->levels[i] * (1 + ix->p.M) * sizeof(uint32_t);
    pthread_mutex_lock(&ix->map_mu);
    b += idmap_bytes(&ix->map);
    pthread_mutex_unlock(&ix->map_mu);
    pthread_rwlock_rdlock(&ix->ns_rw);
    b += nstable_bytes(&ix->nst);
    pthread_rwlock_unlock(&ix->ns_rw);
    pthread_mutex_lock(&ix->pool_mu);
    for (search_ctx *c = ix->ctx_pool; c; c = c->next)
        b += sizeof *c + c->stamp_cap * sizeof *c->stamp + (c->cand.cap + c->res.cap) * sizeof(dpair) +
             c->qbuf_cap * sizeof(float);
    pthread_mutex_unlock(&ix->pool_mu);
    pthread_rwlock_unlock(&ix->rw);
    return b;
}

void mk_vector_get_params(const mk_vector_index *ix, mk_vector_params *out)
{
    if (!ix || !out)
        return;
    *out = ix->p;
    out->ef_search = atomic_load(&((mk_vector_index *)(uintptr_t)ix)->ef_search);
    out->capacity = ix->cap;
}

int mk_vector_set_ef(mk_vector_index *ix, uint32_t ef_search)
{
    if (!ix || ef_search == 0)
        return MK_EINVAL;
    if (ef_search > MK_VECTOR_MAX_EF)
        return MK_ETOOBIG;
    atomic_store(&ix->ef_search, ef_search);
    return 0;
}

uint32_t mk_vector_ns_hash(const char *name, size_t len)
{
    /* FNV-1a 32: tiny, stable, and spreads short names well; collisions are documented
     * in the header. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; name && i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    return h;
}
