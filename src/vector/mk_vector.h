/*
 * mk_vector: Mayak's approximate nearest-neighbour index (HNSW) for float vectors.
 *
 * One index holds vectors of one fixed dimension under one metric. Each vector is
 * stored under the caller's 64-bit key, with a 32-bit namespace and a 64-bit metadata
 * word the caller may use freely (a tag mask, an expiry time, a row id). Searches
 * return the k nearest live vectors, optionally restricted to one namespace and/or to
 * what a caller predicate accepts; restrictive filters fall back to exact search over
 * the filtered set instead of losing recall (docs/VECTOR.md has the measurements).
 *
 * The semantic cache, the knowledge base and agent memory all use this API, so it
 * knows nothing about any of them: keys, namespaces and metadata are opaque numbers.
 *
 * Distances (smaller is nearer):
 *   MK_VECTOR_L2      squared Euclidean distance;
 *   MK_VECTOR_DOT     1 - <a, b>  (may be negative; vectors stored as given);
 *   MK_VECTOR_COSINE  1 - cos(a, b), in [0, 2]; vectors are normalised when stored,
 *                     so mk_vector_get returns the unit vector. Similarity = 1 - distance.
 *
 * Threads: every function may be called from any thread. Searches run in parallel
 * with each other and with inserts, upserts and deletes (per-node locks and atomic
 * neighbour lists, see docs/VECTOR.md); compaction, save, growth of the arrays and
 * free are exclusive (they wait for searches in flight, and searches wait for them).
 * mk_vector_free must not race with any other call on the same index.
 *
 * Errors: every fallible function returns 0 or a negative MK_E* code (core/mk_error.h):
 * MK_EINVAL for bad arguments (wrong dimension, NaN/Inf components, a zero vector under
 * cosine, k = 0, NULL pointers), MK_ETOOBIG when a documented limit below is exceeded,
 * MK_EEXISTS / MK_ENOTFOUND for keys, MK_ENOMEM, MK_EIO for the file system and
 * MK_ECORRUPT for an index file that fails its checks. A failed call leaves the index
 * as it was (batch insert: see there).
 */
#ifndef MK_VECTOR_H
#define MK_VECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- limits (each with its reason) --------------------------------------------- */
/* Dimension: the largest embedding models in use emit 3072-4096 floats; 16384 leaves
 * room and keeps one vector under 64 KB. */
#define MK_VECTOR_MAX_DIM 16384
/* M (neighbours per node on the upper layers; level 0 keeps 2*M). Beyond 128 the
 * graph costs more memory than it returns in recall for any real data. */
#define MK_VECTOR_MAX_M 128
/* ef (search/construction beam width): beyond 4096 a brute-force scan is cheaper for
 * any index this process is likely to hold. */
#define MK_VECTOR_MAX_EF 4096
/* k (results per search). More than this is a scan, not a nearest-neighbour query. */
#define MK_VECTOR_MAX_K 4096
/* Nodes per index (live plus tombstoned): internal ids are 32-bit. */
#define MK_VECTOR_MAX_NODES ((uint64_t)1 << 31)
/* Threads one batch insert may start. */
#define MK_VECTOR_MAX_THREADS 64

typedef struct mk_vector_index mk_vector_index;

enum mk_vector_metric {
    MK_VECTOR_L2 = 0,
    MK_VECTOR_DOT = 1,
    MK_VECTOR_COSINE = 2,
};

enum mk_vector_quant {
    MK_VECTOR_QUANT_NONE = 0,
    /* The graph walk compares the query against 8-bit codes (per-dimension min/max
     * scale, 4x less memory traffic); the ef best candidates are then re-ranked on the
     * full float vectors, which the index also keeps. */
    MK_VECTOR_QUANT_INT8 = 1,
};

typedef struct mk_vector_params {
    uint32_t dim;                 /* 1..MK_VECTOR_MAX_DIM */
    enum mk_vector_metric metric;
    uint32_t M;                   /* 2..MK_VECTOR_MAX_M; default 16 */
    uint32_t ef_construction;     /* 1..MK_VECTOR_MAX_EF; default 200 */
    uint32_t ef_search;           /* default beam width of searches; default 64 */
    enum mk_vector_quant quant;   /* default MK_VECTOR_QUANT_NONE */
    uint64_t seed;                /* level draws are a hash of (seed, key): same input,
                                     same graph when built by one thread */
    uint64_t capacity;            /* nodes to allocate up front (grows by doubling) */
} mk_vector_params;

/* Per-vector attributes stored beside it. A NULL attrs pointer means {0, 0}. */
typedef struct mk_vector_attrs {
    uint32_t ns;                  /* namespace; mk_vector_ns_hash turns a name into one */
    uint64_t meta;                /* opaque to the index; handed to predicates */
} mk_vector_attrs;

/* A caller's filter predicate: true keeps the vector. Called from the searching thread
 * while the index is read-locked, so it must not call back into the same index. */
typedef bool (*mk_vector_pred_fn)(uint64_t key, uint32_t ns, uint64_t meta, void *arg);

typedef struct mk_vector_filter {
    bool use_ns;                  /* restrict to namespace ns */
    uint32_t ns;
    mk_vector_pred_fn pred;       /* optional; ANDed with the namespace test */
    void *pred_arg;
} mk_vector_filter;

/* How a search was answered, for tests, benchmarks and metrics. */
enum mk_vector_path {
    MK_VECTOR_PATH_EMPTY = 0,     /* nothing to search (empty index or namespace) */
    MK_VECTOR_PATH_GRAPH = 1,     /* HNSW walk */
    MK_VECTOR_PATH_BRUTE = 2,     /* exact scan of the filtered set */
};

typedef struct mk_vector_search_stats {
    enum mk_vector_path path;
    uint32_t ef_used;             /* beam width of the last graph walk */
    uint32_t graph_walks;         /* 1, or more when a filtered walk was widened */
    uint64_t distances;           /* distance evaluations, graph and scan */
} mk_vector_search_stats;

typedef struct mk_vector_search_opts {
    uint32_t ef;                  /* 0 = the index's ef_search; raised to k if below */
    const mk_vector_filter *filter;  /* NULL = no filter */
    mk_vector_search_stats *stats;   /* NULL = not wanted */
} mk_vector_search_opts;

typedef struct mk_vector_hit {
    uint64_t key;
    float distance;               /* exact float distance, see the metric table above */
    uint32_t ns;
    uint64_t meta;
} mk_vector_hit;

/* Fills *p with the defaults for dim and metric (M 16, ef_construction 200,
 * ef_search 64, no quantization, a fixed seed, capacity 1024). */
void mk_vector_params_default(mk_vector_params *p, uint32_t dim, enum mk_vector_metric metric);

/* Creates an empty index. 0 and *out set (caller frees with mk_vector_free), or
 * MK_EINVAL for a parameter out of range, MK_ETOOBIG for capacity > MAX_NODES,
 * MK_ENOMEM. */
int mk_vector_new(const mk_vector_params *p, mk_vector_index **out);

/* Frees the index and everything it owns. NULL is fine. */
void mk_vector_free(mk_vector_index *ix);

/* Adds vec (dim floats, copied) under key. Fails with MK_EEXISTS if key is live in the
 * index, MK_EINVAL for dim != the index's, a NaN/Inf component, or a zero vector under
 * cosine, MK_ETOOBIG when the index holds MK_VECTOR_MAX_NODES nodes, MK_ENOMEM. */
int mk_vector_insert(mk_vector_index *ix, uint64_t key, const float *vec, uint32_t dim,
                     const mk_vector_attrs *attrs);

/* Like insert, but a live key is replaced (its old node is tombstoned first, so a
 * search running at that instant may briefly see neither version, never both). */
int mk_vector_upsert(mk_vector_index *ix, uint64_t key, const float *vec, uint32_t dim,
                     const mk_vector_attrs *attrs);

/* Upserts n vectors (vectors holds n*dim floats, row-major) using nthreads threads
 * (0 = one per online CPU, capped at MK_VECTOR_MAX_THREADS; the calling thread is one
 * of them). attrs is NULL or n entries. Every vector is validated and the keys checked
 * for duplicates within the batch (MK_EINVAL) before anything changes, so a bad batch
 * changes nothing. With one thread the resulting graph is deterministic; with more it
 * depends on scheduling (recall is the same, docs/VECTOR.md). Returns 0, a validation
 * error, or MK_ENOMEM (then a prefix of unspecified length may have been inserted). */
int mk_vector_insert_batch(mk_vector_index *ix, size_t n, const uint64_t *keys,
                           const float *vectors, uint32_t dim,
                           const mk_vector_attrs *attrs, unsigned nthreads);

/* Tombstones key: searches skip it at once; its node still routes graph walks until
 * mk_vector_compact. MK_ENOTFOUND if key is not live. */
int mk_vector_delete(mk_vector_index *ix, uint64_t key);

/* Reclaims tombstoned nodes: each live node that linked to a deleted one is re-linked
 * (its surviving neighbours plus the deleted neighbours' neighbours, pruned by the HNSW
 * heuristic; a node left without neighbours is re-linked by a search), the entry point
 * is moved if it was deleted, the arrays are packed, and with int8 quantization the
 * scales are re-fitted to the live data. Exclusive; O(deleted * M^2) distance work plus
 * a linear pass. 0 or MK_ENOMEM (then the index is unchanged). */
int mk_vector_compact(mk_vector_index *ix);

/* Searches the k nearest live vectors to query (dim floats). Writes up to k hits to out
 * (room for k), nearest first, and their number to *n_out (fewer than k when fewer
 * vectors pass the filter). opts may be NULL. MK_EINVAL for k = 0, a bad query (as for
 * insert) or NULL pointers; MK_ETOOBIG for k > MK_VECTOR_MAX_K or ef > MAX_EF. */
int mk_vector_search(mk_vector_index *ix, const float *query, uint32_t dim, uint32_t k,
                     const mk_vector_search_opts *opts, mk_vector_hit *out, size_t *n_out);

/* Exact k nearest by a full scan (same contract as mk_vector_search; opts->ef is
 * ignored). For ground truth and for callers that need exact answers. */
int mk_vector_search_exact(mk_vector_index *ix, const float *query, uint32_t dim, uint32_t k,
                           const mk_vector_search_opts *opts, mk_vector_hit *out,
                           size_t *n_out);

/* Copies the stored vector of key into out (dim floats; unit length under cosine) and
 * its attributes into attrs (either may be NULL). MK_ENOTFOUND if key is not live. */
int mk_vector_get(mk_vector_index *ix, uint64_t key, float *out, uint32_t dim,
                  mk_vector_attrs *attrs);

bool mk_vector_contains(mk_vector_index *ix, uint64_t key);
/* Live vectors; tombstoned ones waiting for compaction. */
size_t mk_vector_count(mk_vector_index *ix);
size_t mk_vector_deleted_count(mk_vector_index *ix);
/* Live vectors in namespace ns. */
size_t mk_vector_ns_count(mk_vector_index *ix, uint32_t ns);
/* Bytes of heap the index holds (arrays at their capacity, links, maps, scratch). */
size_t mk_vector_memory_bytes(mk_vector_index *ix);
/* The index's parameters (ef_search as last set). */
void mk_vector_get_params(const mk_vector_index *ix, mk_vector_params *out);
/* Sets the default ef for later searches. MK_EINVAL for 0, MK_ETOOBIG above MAX_EF. */
int mk_vector_set_ef(mk_vector_index *ix, uint32_t ef_search);

/* A namespace number for a name (e.g. "tenant/model-group/context-digest"): a 32-bit
 * hash, stable across versions and machines. Distinct names may collide (about one
 * pair in 2^32), so callers that must never mix namespaces also store the full name
 * in their own record and check it on a hit. */
uint32_t mk_vector_ns_hash(const char *name, size_t len);

/* Writes the index to path crash-safely: to "<path>.tmp", fsync, rename over path,
 * fsync the directory, so a crash at any point leaves either the previous file or the
 * new one, never a torn mix. Exclusive while it runs. 0, MK_EINVAL, MK_EIO or
 * MK_ENOMEM; on failure the previous file is untouched and the temp file removed. */
int mk_vector_save(mk_vector_index *ix, const char *path);

/* Opens an index saved by mk_vector_save (the file is mapped, verified and copied;
 * the mapping is released before return). 0 and *out set, MK_ENOTFOUND if path does
 * not exist, MK_EIO, MK_ECORRUPT for anything that fails the format's checks (magic,
 * version, checksums, sizes, link structure), MK_ENOMEM. */
int mk_vector_load(const char *path, mk_vector_index **out);

/* The same from a memory image of a file (not retained). */
int mk_vector_load_mem(const void *data, size_t len, mk_vector_index **out);

/* The distance kernels in use: "avx512", "avx2" or "portable" (chosen once, at first
 * use, from the CPU; MAYAK_VECTOR_SIMD=portable|avx2|avx512 in the environment lowers
 * the choice, for tests and benchmarks). */
const char *mk_vector_simd_name(void);

#endif
