/*
 * vector_int.h: the inside of mk_vector, shared by its .c files (and by the unit tests
 * that check the kernels). Not part of the public API.
 *
 * Layout (why: the graph walk touches, per visited node, its level-0 neighbour list and
 * its vector; keeping both in one block of a single flat array means one or two cache
 * lines fetched per node and a predictable address for prefetching):
 *
 *   level0  cap blocks of block_size bytes (64-byte aligned), block i =
 *             search vector | pad to 16 | u32 count | u32 neighbours[M0] | pad to 64
 *           where the search vector is dim floats, or dim u8 codes under int8 quant.
 *           The vector comes first so it starts on a cache line: a distance then reads
 *           exactly ceil(vec_bytes / 64) lines, and 64-byte SIMD loads never straddle
 *           two lines (with the links first, at 144 bytes, every AVX-512 load did).
 *   fvec    under int8 quant only: the full float vectors (cap x dim), for re-ranking
 *           and for building the graph.
 *   keys, meta, ns, flags, levels: one entry per node, separate arrays (they are read
 *           only for results and filters, so they stay out of the walk's cache lines).
 *   upper   per node with level > 0: level x (1 + M) u32 (count then neighbours).
 *
 * Concurrency: neighbour-list words are read and written with atomic loads/stores
 * (plain moves on x86) so a reader racing a writer sees, per word, an old or a new
 * valid node id; a node becomes reachable only after its vector, level and lists are
 * initialised (release store of its id into a neighbour's list, acquire load by the
 * reader). Writers serialise per node through a striped mutex table. `rw` is taken
 * shared by searches, inserts and deletes, exclusively by growth, compaction and save.
 */
#ifndef MK_VECTOR_INT_H
#define MK_VECTOR_INT_H

#include "vector/mk_vector.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define NODE_NONE UINT32_MAX
/* Level draws are capped: with M >= 2 a level above 30 has probability < 2^-30. */
#define MAX_LEVEL 30
#define LOCK_STRIPES 4096

/* flags[] bits */
#define NODE_DELETED 0x1u
#define NODE_READY 0x2u

/* ---- distance kernels -------------------------------------------------------- */
typedef float (*vk_f32_fn)(const float *a, const float *b, size_t n);
/* sum_i q[i] * c[i] over u8 codes (dot under int8). */
typedef float (*vk_u8dot_fn)(const float *q, const uint8_t *c, size_t n);
/* sum_i (q[i] - s[i] * c[i])^2 over u8 codes (L2 under int8). */
typedef float (*vk_u8l2_fn)(const float *q, const float *s, const uint8_t *c, size_t n);

typedef struct vk_table {
    const char *name;
    vk_f32_fn l2sq;      /* sum (a-b)^2 */
    vk_f32_fn dot;       /* sum a*b */
    vk_u8dot_fn u8dot;
    vk_u8l2_fn u8l2;
} vk_table;

extern const vk_table vk_portable;
extern const vk_table vk_avx2;
extern const vk_table vk_avx512;
/* The table chosen for this CPU (and MAYAK_VECTOR_SIMD), resolved once. */
const vk_table *vk_best(void);
/* Whether this CPU can run a table (avx2 needs avx2+fma, avx512 needs avx512f). */
bool vk_supported(const vk_table *t);

/* ---- maps -------------------------------------------------------------------- */
/* key -> node id, open addressing with linear probing and backward-shift delete. */
typedef struct idmap {
    uint64_t *keys;
    uint32_t *vals;     /* NODE_NONE marks an empty slot */
    size_t cap;         /* power of two */
    size_t len;
} idmap;

int idmap_init(idmap *m, size_t want);
void idmap_release(idmap *m);
uint32_t idmap_get(const idmap *m, uint64_t key);
int idmap_put(idmap *m, uint64_t key, uint32_t val);   /* insert or overwrite */
void idmap_del(idmap *m, uint64_t key);
size_t idmap_bytes(const idmap *m);

/* namespace -> live count and member node ids (members may include tombstoned nodes
 * until compaction; searches check flags). */
typedef struct ns_entry {
    uint32_t ns;
    uint32_t used;
    uint64_t live;
    uint32_t *members;
    size_t len, cap;
} ns_entry;

typedef struct nstable {
    ns_entry *slots;
    size_t cap;         /* power of two */
    size_t len;
} nstable;

int nstable_init(nstable *t);
void nstable_release(nstable *t);
ns_entry *nstable_find(const nstable *t, uint32_t ns);
int nstable_add(nstable *t, uint32_t ns, uint32_t node);    /* live++ and member */
void nstable_dec(nstable *t, uint32_t ns);                  /* live-- */
size_t nstable_bytes(const nstable *t);

/* ---- search scratch ------------------------------------------------------------ */
typedef struct dpair {
    float d;
    uint32_t id;
} dpair;

typedef struct heap {
    dpair *a;
    size_t n, cap;
} heap;

typedef struct search_ctx {
    uint16_t *stamp;    /* visited[i] == gen: visited in this walk */
    size_t stamp_cap;
    uint16_t gen;
    heap cand;          /* min-heap of candidates to expand */
    heap res;           /* max-heap of the best ef found */
    float *qbuf;        /* prepared query (normalised; int8 transforms) */
    size_t qbuf_cap;
    uint64_t ndist;
    struct search_ctx *next;
} search_ctx;

/* ---- the index ------------------------------------------------------------------ */
struct mk_vector_index {
    mk_vector_params p;
    uint32_t M0;
    size_t links_off;       /* offset of the level-0 list in a block (after the vector) */
    size_t block_size;
    size_t vec_bytes;       /* search vector bytes in a block */
    size_t vec_lines;       /* cache lines the search vector spans (prefetching) */
    double level_mult;
    bool quant;
    const vk_table *vk;

    /* node storage; see the file comment */
    size_t cap;
    _Atomic uint32_t n;        /* node slots handed out */
    uint8_t *level0;
    float *fvec;
    uint64_t *keys;
    uint64_t *meta;
    uint32_t *ns;
    _Atomic uint8_t *flags;
    uint8_t *levels;
    uint32_t **upper;

    _Atomic uint32_t entry;
    _Atomic int max_level;
    _Atomic uint64_t live;
    _Atomic uint64_t deleted;
    _Atomic uint32_t ef_search;

    /* int8 quantization: x ~= qmin[d] + qscale[d] * code */
    float *qmin;
    float *qscale;
    _Atomic bool qfitted;   /* read without the lock by inserts deciding to fit */
    _Atomic uint32_t qfit_n; /* nodes when the ranges were last fitted */

    pthread_rwlock_t rw;
    pthread_mutex_t entry_mu;     /* entry point / max level changes */
    pthread_mutex_t map_mu;       /* idmap, slot allocation */
    pthread_rwlock_t ns_rw;       /* nstable */
    pthread_mutex_t pool_mu;      /* ctx_pool */
    pthread_mutex_t stripes[LOCK_STRIPES];

    idmap map;
    nstable nst;
    search_ctx *ctx_pool;
    size_t ctx_count;
};

static inline uint32_t *l0_links(const mk_vector_index *ix, uint32_t id)
{
    return (uint32_t *)(void *)(ix->level0 + (size_t)id * ix->block_size + ix->links_off);
}

static inline const void *l0_vec(const mk_vector_index *ix, uint32_t id)
{
    return ix->level0 + (size_t)id * ix->block_size;
}

/* The float vector of a node (graph building, re-ranking, get, save). */
static inline const float *node_fvec(const mk_vector_index *ix, uint32_t id)
{
    if (ix->quant)
        return ix->fvec + (size_t)id * ix->p.dim;
    return (const float *)l0_vec(ix, id);
}

/* Neighbour list of id at level l (count word first). Precondition: l <= levels[id]. */
static inline uint32_t *node_links(const mk_vector_index *ix, uint32_t id, int l)
{
    if (l == 0)
        return l0_links(ix, id);
    return ix->upper[id] + (size_t)(l - 1) * (1 + ix->p.M);
}

/* Asks for every cache line of a node's float vector (building, re-ranking). */
static inline void prefetch_fvec(const mk_vector_index *ix, uint32_t id)
{
    uintptr_t b = (uintptr_t)node_fvec(ix, id), end = b + (size_t)ix->p.dim * sizeof(float);
    for (b &= ~(uintptr_t)63; b < end; b += 64)
        __builtin_prefetch((const void *)b);
}

static inline uint32_t link_load(const uint32_t *w)
{
    return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

static inline void link_store(uint32_t *w, uint32_t v)
{
    __atomic_store_n(w, v, __ATOMIC_RELEASE);
}

static inline uint8_t node_flags(const mk_vector_index *ix, uint32_t id)
{
    return atomic_load_explicit(&ix->flags[id], memory_order_acquire);
}

/* Float distance between two stored-format float vectors under the index's metric. */
static inline float fdist(const mk_vector_index *ix, const float *a, const float *b)
{
    if (ix->p.metric == MK_VECTOR_L2)
        return ix->vk->l2sq(a, b, ix->p.dim);
    return 1.0f - ix->vk->dot(a, b, ix->p.dim);
}

/* ---- heaps ------------------------------------------------------------------------- */
/* Max-heap (res) and min-heap (cand) over dpair.d; capacity reserved by the caller. */

static inline void maxh_push(heap *h, float d, uint32_t id)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p].d >= d)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i].d = d;
    h->a[i].id = id;
}

static inline void maxh_pop(heap *h)
{
    dpair last = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        size_t r = l + 1, m = (r < n && h->a[r].d > h->a[l].d) ? r : l;
        if (h->a[m].d <= last.d)
            break;
        h->a[i] = h->a[m];
        i = m;
    }
    if (n)
        h->a[i] = last;
}

static inline void minh_push(heap *h, float d, uint32_t id)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p].d <= d)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i].d = d;
    h->a[i].id = id;
}

static inline void minh_pop(heap *h)
{
    dpair last = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        size_t r = l + 1, m = (r < n && h->a[r].d < h->a[l].d) ? r : l;
        if (h->a[m].d >= last.d)
            break;
        h->a[i] = h->a[m];
        i = m;
    }
    if (n)
        h->a[i] = last;
}

static inline uint16_t next_gen(search_ctx *c)
{
    if (++c->gen == 0) {
        memset(c->stamp, 0, c->stamp_cap * sizeof *c->stamp);
        c->gen = 1;
    }
    return c->gen;
}

/* ---- shared helpers across the .c files ---------------------------------------- */
/* Checks dim and components and writes the stored form (normalised under cosine) to
 * out. MK_EINVAL on bad input. */
int vec_prepare(const mk_vector_index *ix, const float *in, uint32_t dim, float *out);

/* quant.c */
int quant_alloc(mk_vector_index *ix);
void quant_fit(mk_vector_index *ix, const float *vecs, size_t n, size_t stride);
void quant_encode(const mk_vector_index *ix, const float *v, uint8_t *codes);
/* Transforms the stored-form query q into qout (dim floats) and returns the constant
 * term, so that the walk's distance is quant_dist(ix, qout, c, codes). */
float quant_prepare_query(const mk_vector_index *ix, const float *q, float *qout);

/* hnsw.c */
search_ctx *ctx_get(mk_vector_index *ix);
void ctx_put(mk_vector_index *ix, search_ctx *c);
void ctx_free_all(mk_vector_index *ix);
int heap_reserve(heap *h, size_t want);
int index_grow_locked(mk_vector_index *ix, size_t want);    /* rw held exclusively */
int alloc_arrays(mk_vector_index *ix, size_t cap);
int draw_level(const mk_vector_index *ix, uint64_t key);
/* Picks up to m neighbours from cand (sorted ascending by distance to the base) with
 * the HNSW heuristic; writes ids to out and returns how many. */
size_t select_neighbors(const mk_vector_index *ix, const dpair *cand, size_t ncand,
                        size_t m, uint32_t *out);
/* Build-time walk on level l from entry (float distances, no filter). Leaves the ef
 * best in c->res (a max-heap). */
int walk_build(mk_vector_index *ix, search_ctx *c, const float *q, uint32_t entry, int l,
               size_t ef);
void dpair_sort(dpair *a, size_t n);

/* persist.c */
uint64_t mk_vector_hash64(const void *data, size_t len, uint64_t seed);

#endif
