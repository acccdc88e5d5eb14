/*
 * mk_cache: the entry table, the semantic index, TTL and LRU (see mk_cache.h).
 *
 * Entries are found three ways: by exact key (a chained hash table), by meaning (the
 * HNSW index, whose per-vector metadata word holds the entry's address — safe because
 * an entry leaves the index under the cache mutex before it is freed, and searches run
 * under that mutex too), and by age (a doubly linked LRU list, most recent at the head,
 * which eviction pops from the tail). One mutex guards all three: lookups are short
 * (a hash probe, or one HNSW search over a few thousand vectors), and the embedding —
 * the only costly step — runs before the lock is taken.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache_int.h"
#include "cache/mk_cache.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "embed/mk_embed.h"
#include "metrics/mk_metrics.h"
#include "vector/mk_vector.h"

/* Compact the index when tombstones outnumber live vectors and are this many at least:
 * searches skip tombstones but still walk through them. */
#define COMPACT_MIN_DELETED 1024
/* Rough per-vector overhead of the HNSW graph (links on level 0 and up, maps). */
#define INDEX_NODE_BYTES 256

struct entry {
    uint8_t exact[32];
    uint8_t ns[32];
    char *tenant;
    char *group;
    char *query;              /* NULL: exact only */
    size_t query_len;
    struct mk_cache_sig sig;
    char *answer;
    size_t answer_len;
    int64_t prompt_tokens, completion_tokens;
    int64_t expires_ms;
    size_t bytes;
    uint64_t vkey;            /* key in the vector index (0 = not indexed) */
    struct entry *hnext;
    struct entry *prev, *next; /* LRU: head = most recently used */
};

struct mk_cache {
    pthread_mutex_t lock;
    mk_embedder *embedder;
    mk_vector_index *index;
    uint32_t dim;
    double threshold;
    bool no_guard;
    uint32_t ttl_s;
    size_t max_bytes;
    int64_t (*clock_ms)(void *);
    void *clock_arg;

    struct entry **buckets;
    size_t nbuckets;          /* power of two */
    size_t count;
    size_t bytes;
    struct entry *head, *tail;
    uint64_t next_vkey;
    struct mk_cache_stats stats;
    struct mk_cache *reg_next; /* registry of live caches (mk_cache_invalidate_all) */
    struct cache_sync *sync;   /* set by mk_cache_attach_kv: entries shared across nodes */
};

void cache_set_sync(mk_cache *c, struct cache_sync *s) { c->sync = s; }
struct cache_sync *cache_get_sync(mk_cache *c) { return c->sync; }
uint32_t cache_default_ttl(const mk_cache *c) { return c->ttl_s; }

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mk_cache *registry;

static int64_t now_ms(const mk_cache *c)
{
    if (c->clock_ms) return c->clock_ms(c->clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t bucket_of(const mk_cache *c, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h); /* the key is a cryptographic digest: any 8 bytes are uniform */
    return (size_t)(h & (c->nbuckets - 1));
}

int mk_cache_new(const struct mk_cache_options *opts, mk_cache **out)
{
    if (!out) return MK_EINVAL;
    *out = NULL;
    struct mk_cache_options o = {0};
    if (opts) o = *opts;
    if (o.threshold < 0 || o.threshold > 1) return MK_EINVAL;
    mk_cache *c = calloc(1, sizeof *c);
    if (!c) return MK_ENOMEM;
    c->threshold = o.threshold > 0 ? o.threshold : MK_CACHE_DEFAULT_THRESHOLD;
    c->ttl_s = o.ttl_s ? o.ttl_s : MK_CACHE_DEFAULT_TTL_S;
    c->max_bytes = o.max_bytes ? o.max_bytes : MK_CACHE_DEFAULT_MAX_BYTES;
    c->no_guard = o.no_guard;
    c->clock_ms = o.clock_ms;
    c->clock_arg = o.clock_arg;
    c->next_vkey = 1;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    int rc = c->buckets ? 0 : MK_ENOMEM;
    if (rc == 0) rc = mk_embedder_new(NULL, &c->embedder);
    if (rc == 0) {
        c->dim = mk_embedder_dim(c->embedder);
        mk_vector_params p;
        mk_vector_params_default(&p, c->dim, MK_VECTOR_COSINE);
        rc = mk_vector_new(&p, &c->index);
    }
    if (rc == 0 && pthread_mutex_init(&c->lock, NULL) != 0) rc = MK_ENOMEM;
    if (rc != 0) {
        mk_vector_free(c->index);
        mk_embedder_free(c->embedder);
        free(c->buckets);
        free(c);
        return rc;
    }
    pthread_mutex_lock(&registry_lock);
    c->reg_next = registry;
    registry = c;
    pthread_mutex_unlock(&registry_lock);
    *out = c;
    return 0;
}

static void entry_free(struct entry *e)
{
    if (!e) return;
    free(e->tenant);
    free(e->group);
    free(e->query);
    free(e->answer);
    free(e);
}

/* Unlinks e from every structure and frees it. Lock held. */
static void remove_entry(mk_cache *c, struct entry *e)
{
    struct entry **pp = &c->buckets[bucket_of(c, e->exact)];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    if (e->prev) e->prev->next = e->next;
    else c->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    if (e->vkey) mk_vector_delete(c->index, e->vkey);
    c->count--;
    c->bytes -= e->bytes;
    entry_free(e);
}

/* The node's entry count for /metrics, kept current on every change (entries also
 * arrive from other nodes and leave by invalidation, not only by this node's stores).
 * Lock held. */
static void note_count(const mk_cache *c) { mk_metric_set(MK_METRIC_CACHE_ENTRIES, NULL, (double)c->count); }

static void touch(mk_cache *c, struct entry *e)
{
    if (c->head == e) return;
    e->prev->next = e->next; /* e is not the head, so it has a prev */
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    e->prev = NULL;
    e->next = c->head;
    c->head->prev = e;
    c->head = e;
}

static void maybe_compact(mk_cache *c)
{
    size_t deleted = mk_vector_deleted_count(c->index);
    if (deleted >= COMPACT_MIN_DELETED && deleted > mk_vector_count(c->index))
        if (mk_vector_compact(c->index) != 0) mk_logf(MK_LOG_WARN, "cache_compact_failed", "vector index compaction ran out of memory");
}

void mk_cache_free(mk_cache *c)
{
    if (!c) return;
    pthread_mutex_lock(&registry_lock);
    for (mk_cache **pp = &registry; *pp; pp = &(*pp)->reg_next)
        if (*pp == c) {
            *pp = c->reg_next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    cache_sync_detach(c->sync);
    struct entry *e = c->head;
    while (e) {
        struct entry *n = e->next;
        entry_free(e);
        e = n;
    }
    mk_vector_free(c->index);
    mk_embedder_free(c->embedder);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct entry *find_exact(mk_cache *c, const uint8_t *key)
{
    for (struct entry *e = c->buckets[bucket_of(c, key)]; e; e = e->hnext)
        if (memcmp(e->exact, key, sizeof e->exact) == 0) return e;
    return NULL;
}

static int fill_hit(struct mk_cache_hit *out, const struct entry *e, enum mk_cache_hit_kind kind, float sim)
{
    if (mk_buf_append(&out->answer, e->answer, e->answer_len) != 0) return MK_ENOMEM;
    out->kind = kind;
    out->similarity = sim;
    out->prompt_tokens = e->prompt_tokens;
    out->completion_tokens = e->completion_tokens;
    return 0;
}

/* Both names are of one entry: the namespace digest covers tenant and group, but a
 * 32-bit index namespace may collide, so the full digest is compared on every hit. */
static bool same_namespace(const struct entry *e, const struct mk_cache_request *r)
{
    return memcmp(e->ns, r->ns_digest, sizeof e->ns) == 0 && strcmp(e->tenant, r->tenant) == 0 &&
           strcmp(e->group, r->group) == 0;
}

/* The exact level under the lock: a hit fills out and returns true. Lock held. */
static bool lookup_exact(mk_cache *c, const struct mk_cache_request *r, int64_t now, struct mk_cache_hit *out, int *rc)
{
    struct entry *e = find_exact(c, r->exact);
    if (e && e->expires_ms <= now) {
        remove_entry(c, e);
        c->stats.expirations++;
        return false;
    }
    if (!e) return false;
    *rc = fill_hit(out, e, MK_CACHE_HIT_EXACT, 1.0f);
    if (*rc == 0) {
        touch(c, e);
        c->stats.hits_exact++;
    }
    return true;
}

int mk_cache_lookup(mk_cache *c, const struct mk_cache_request *r, double threshold, struct mk_cache_hit *out)
{
    if (!out) return MK_EINVAL;
    memset(out, 0, sizeof *out);
    if (!c || !r || !r->eligible) return MK_EINVAL;
    if (threshold < 0) threshold = c->threshold;

    /* Exact first, before any embedding: an exact hit is answered from a hash probe,
     * which is what makes repeated questions cheap (the embedding is ~20x the rest). */
    int rc = 0;
    int64_t now = now_ms(c);
    pthread_mutex_lock(&c->lock);
    bool hit = lookup_exact(c, r, now, out, &rc);
    if (hit || !r->query) {
        if (!hit) c->stats.misses++;
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    pthread_mutex_unlock(&c->lock);

    /* Embed outside the lock: it is the costly part and the embedder is thread-safe. */
    float *vec = malloc(c->dim * sizeof *vec);
    if (!vec) return MK_ENOMEM;
    if (mk_embed_text(c->embedder, r->query, r->query_len, vec) != 0) {
        free(vec); /* text the embedder refuses (bad UTF-8): exact level only */
        vec = NULL;
    }
    struct mk_cache_sig qsig;
    mk_cache_sig_of(r->query, r->query_len, &qsig);

    pthread_mutex_lock(&c->lock);
    /* Another thread may have stored this very request while we embedded. */
    if (lookup_exact(c, r, now, out, &rc)) goto done;
    if (vec) {
        mk_vector_filter f = {.use_ns = true, .ns = mk_vector_ns_hash((const char *)r->ns_digest, sizeof r->ns_digest)};
        mk_vector_search_opts so = {.filter = &f};
        mk_vector_hit hits[MK_CACHE_CANDIDATES];
        size_t n = 0;
        if (mk_vector_search(c->index, vec, c->dim, MK_CACHE_CANDIDATES, &so, hits, &n) != 0) n = 0;
        for (size_t i = 0; i < n; i++) {
            float sim = 1.0f - hits[i].distance;
            if (sim < (float)threshold) break; /* nearest first */
            struct entry *cand = (struct entry *)(uintptr_t)hits[i].meta;
            if (!same_namespace(cand, r)) continue;
            if (cand->expires_ms <= now) {
                remove_entry(c, cand);
                c->stats.expirations++;
                continue;
            }
            if (!c->no_guard && mk_cache_sig_mismatch(&qsig, &cand->sig)) {
                out->guard_rejects++;
                c->stats.guard_rejects++;
                continue;
            }
            rc = fill_hit(out, cand, MK_CACHE_HIT_SEMANTIC, sim);
            if (rc == 0) {
                touch(c, cand);
                c->stats.hits_semantic++;
            }
            goto done;
        }
    }
    c->stats.misses++;
done:
    pthread_mutex_unlock(&c->lock);
    free(vec);
    return rc;
}

void mk_cache_hit_release(struct mk_cache_hit *h)
{
    if (!h) return;
    mk_buf_release(&h->answer);
    memset(h, 0, sizeof *h);
}

static void grow_table(mk_cache *c)
{
    size_t n = c->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    struct entry **old = c->buckets;
    size_t oldn = c->nbuckets;
    c->buckets = b;
    c->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct entry *e = old[i];
        while (e) {
            struct entry *next = e->hnext;
            size_t k = bucket_of(c, e->exact);
            e->hnext = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(old);
}

int mk_cache_store(mk_cache *c, const struct mk_cache_request *r, const char *answer, size_t len,
                   int64_t prompt_tokens, int64_t completion_tokens, uint32_t ttl_s)
{
    int rc = cache_store_local(c, r, answer, len, prompt_tokens, completion_tokens, ttl_s);
    if (rc == 0 && c->sync)
        cache_sync_publish_put(c->sync, r, answer, len, prompt_tokens, completion_tokens, ttl_s ? ttl_s : c->ttl_s);
    return rc;
}

int cache_store_local(mk_cache *c, const struct mk_cache_request *r, const char *answer, size_t len,
                      int64_t prompt_tokens, int64_t completion_tokens, uint32_t ttl_s)
{
    if (!c || !r || !r->eligible || !answer || len == 0 || len > MK_CACHE_MAX_ANSWER_BYTES) return MK_EINVAL;
    struct entry *e = calloc(1, sizeof *e);
    if (!e) return MK_ENOMEM;
    memcpy(e->exact, r->exact, sizeof e->exact);
    memcpy(e->ns, r->ns_digest, sizeof e->ns);
    e->tenant = strdup(r->tenant);
    e->group = strdup(r->group);
    e->answer = malloc(len + 1);
    if (r->query) e->query = strndup(r->query, r->query_len);
    if (!e->tenant || !e->group || !e->answer || (r->query && !e->query)) {
        entry_free(e);
        return MK_ENOMEM;
    }
    memcpy(e->answer, answer, len);
    e->answer[len] = '\0';
    e->answer_len = len;
    e->query_len = r->query ? r->query_len : 0;
    e->prompt_tokens = prompt_tokens;
    e->completion_tokens = completion_tokens;
    e->bytes = sizeof *e + strlen(e->tenant) + strlen(e->group) + e->query_len + len + 4;

    float *vec = NULL;
    if (e->query) {
        mk_cache_sig_of(e->query, e->query_len, &e->sig);
        vec = malloc(c->dim * sizeof *vec);
        if (!vec) {
            entry_free(e);
            return MK_ENOMEM;
        }
        if (mk_embed_text(c->embedder, e->query, e->query_len, vec) != 0) {
            free(vec);
            vec = NULL;
        }
    }

    int64_t now = now_ms(c);
    e->expires_ms = now + (int64_t)(ttl_s ? ttl_s : c->ttl_s) * 1000;
    pthread_mutex_lock(&c->lock);
    struct entry *old = find_exact(c, e->exact);
    if (old) remove_entry(c, old);
    if (vec) {
        mk_vector_attrs a = {.ns = mk_vector_ns_hash((const char *)e->ns, sizeof e->ns),
                             .meta = (uint64_t)(uintptr_t)e};
        uint64_t key = c->next_vkey++;
        if (mk_vector_insert(c->index, key, vec, c->dim, &a) == 0) {
            e->vkey = key;
            e->bytes += (size_t)c->dim * sizeof(float) + INDEX_NODE_BYTES;
        }
    }
    size_t k = bucket_of(c, e->exact);
    e->hnext = c->buckets[k];
    c->buckets[k] = e;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
    c->count++;
    c->bytes += e->bytes;
    c->stats.stores++;
    /* Expired entries at the cold end go first, then the least recently used. */
    while (c->tail && c->tail != e && (c->bytes > c->max_bytes || c->tail->expires_ms <= now)) {
        if (c->tail->expires_ms <= now) c->stats.expirations++;
        else c->stats.evictions++;
        remove_entry(c, c->tail);
    }
    if (c->count > c->nbuckets) grow_table(c);
    maybe_compact(c);
    note_count(c);
    pthread_mutex_unlock(&c->lock);
    free(vec);
    return 0;
}

size_t mk_cache_invalidate(mk_cache *c, const char *tenant, const char *group)
{
    if (!c) return 0;
    if (c->sync) cache_sync_publish_invalidate(c->sync, tenant, group);
    return cache_invalidate_local(c, tenant, group);
}

size_t cache_invalidate_local(mk_cache *c, const char *tenant, const char *group)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    struct entry *e = c->head;
    while (e) {
        struct entry *next = e->next;
        if ((!tenant || strcmp(e->tenant, tenant) == 0) && (!group || strcmp(e->group, group) == 0)) {
            remove_entry(c, e);
            n++;
        }
        e = next;
    }
    maybe_compact(c);
    note_count(c);
    pthread_mutex_unlock(&c->lock);
    return n;
}

void mk_cache_invalidate_all(void)
{
    pthread_mutex_lock(&registry_lock);
    for (mk_cache *c = registry; c; c = c->reg_next) mk_cache_invalidate(c, NULL, NULL);
    pthread_mutex_unlock(&registry_lock);
}

void mk_cache_get_stats(mk_cache *c, struct mk_cache_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    out->entries = c->count;
    out->bytes = c->bytes;
    pthread_mutex_unlock(&c->lock);
}
