/*
 * mk_cache: Mayak's response cache for chat completions (docs/CACHE.md).
 *
 * Two levels, both per tenant and model group:
 *  - exact: a BLAKE2b digest (libsodium crypto_generichash) of a canonical form of the
 *    request — tenant, model group, every message, and each parameter that changes the
 *    answer (temperature, top_p, max_tokens, tools, response_format, seed, stop...).
 *    Canonical means key order, whitespace and number spelling do not matter.
 *  - semantic: the last user turn embedded with the built-in embedder (mk_embed) and
 *    searched in an HNSW index (mk_vector) among entries of the same namespace: tenant +
 *    model group + a digest of the parameters, the system prompt and every earlier turn.
 *    Two different conversations therefore never share an answer. A candidate above the
 *    threshold must also pass a guard against false hits (negation and on/off antonym
 *    mismatches, differing numbers, entity words or names: mk_cache_guard).
 *
 * Entries live in memory with a TTL, under a byte cap with LRU eviction. Every function
 * is thread-safe (one mutex around the entry table; the vector index has its own locks),
 * so one cache may serve every event loop of a process.
 *
 * Eligibility (mk_cache_request_init decides, and says why not): chat requests only; no
 * `n` > 1; temperature at most max_temperature (absent = 1.0, OpenAI's default); no
 * per-request opt-out ("mayak_cache": false). What is stored is the caller's decision
 * (the pipeline filter stores only 200 answers without tool calls or guard flags).
 */
#ifndef MK_CACHE_H
#define MK_CACHE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/mk_buf.h"

/* Built-in defaults (each tuned or reasoned in docs/CACHE.md). */
#define MK_CACHE_DEFAULT_THRESHOLD 0.88
#define MK_CACHE_DEFAULT_TTL_S 3600u
#define MK_CACHE_DEFAULT_MAX_BYTES ((size_t)256 * 1024 * 1024)
/* Above this the caller asked for variety; replaying one answer would defeat it. */
#define MK_CACHE_DEFAULT_MAX_TEMPERATURE 0.7
/* One cached answer: the largest completion we keep (bigger ones are not worth a slot). */
#define MK_CACHE_MAX_ANSWER_BYTES ((size_t)1024 * 1024)
/* The part of a user turn that is embedded and kept for the guard: long turns are
 * rarely repeated, and the embedder's cost grows with length. Longer turns are
 * exact-cache only. */
#define MK_CACHE_MAX_QUERY_BYTES 4096u
/* Semantic candidates examined per lookup (the guard may refuse the nearest ones). */
#define MK_CACHE_CANDIDATES 8
/* Names (tenant, model group) longer than this are not cached. */
#define MK_CACHE_MAX_NAME_BYTES 256

typedef struct mk_cache mk_cache;

struct mk_cache_options {
    double threshold;        /* 0 = MK_CACHE_DEFAULT_THRESHOLD */
    uint32_t ttl_s;          /* 0 = MK_CACHE_DEFAULT_TTL_S */
    size_t max_bytes;        /* 0 = MK_CACHE_DEFAULT_MAX_BYTES */
    /* Benchmarks only: serve semantic candidates without the false-hit guard, to
     * measure what the guard is worth (bench/cache). */
    bool no_guard;
    /* Clock for TTLs in milliseconds (any epoch, never backwards); NULL = monotonic. */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
};

/* Creates a cache with its own built-in embedder and vector index. opts may be NULL.
 * 0 and *out (free with mk_cache_free), MK_EINVAL (threshold outside 0..1), MK_ENOMEM.
 * The cache registers itself for mk_cache_invalidate_all. */
int mk_cache_new(const struct mk_cache_options *opts, mk_cache **out);
/* Frees the cache and its entries. Accepts NULL. No other call may race with it. */
void mk_cache_free(mk_cache *c);

/* What a request is, for the cache. Filled by mk_cache_request_init; owns its memory
 * (release with mk_cache_request_release). */
struct mk_cache_request {
    bool eligible;           /* false: neither look up nor store; `why` says why */
    const char *why;         /* static text */
    uint8_t exact[32];       /* exact key */
    uint8_t ns_digest[32];   /* namespace digest (everything but the last user turn) */
    char *tenant;
    char *group;
    char *query;             /* the last user turn's text (NUL-terminated), NULL when the
                                request is exact-only (no final user turn, or too long) */
    size_t query_len;
};

/* Computes keys from a chat request body (borrowed). max_temperature < 0 means the
 * default. Always returns 0 with r filled (r->eligible says whether to use it), except
 * MK_EINVAL for NULL arguments and MK_ENOMEM. */
int mk_cache_request_init(struct mk_cache_request *r, const char *tenant, const char *group,
                          json_object *body, double max_temperature);
void mk_cache_request_release(struct mk_cache_request *r);

enum mk_cache_hit_kind { MK_CACHE_MISS = 0, MK_CACHE_HIT_EXACT, MK_CACHE_HIT_SEMANTIC };

struct mk_cache_hit {
    enum mk_cache_hit_kind kind;
    float similarity;        /* 1 for exact hits */
    mk_buf answer;           /* the stored chat.completion JSON (caller releases) */
    int64_t prompt_tokens, completion_tokens; /* usage of the answer when it was made */
    uint32_t guard_rejects;  /* candidates above the threshold that the guard refused */
};

/* Looks r up: exact first (a hash probe, before any embedding, so exact hits stay
 * cheap), then semantic at `threshold` (< 0 = the cache's default).
 * 0 with out->kind set (MK_CACHE_MISS included; out->answer filled only on a hit, and
 * out must be released with mk_cache_hit_release either way), MK_EINVAL, MK_ENOMEM. */
int mk_cache_lookup(mk_cache *c, const struct mk_cache_request *r, double threshold, struct mk_cache_hit *out);
void mk_cache_hit_release(struct mk_cache_hit *h);

/* Stores answer (a chat.completion JSON, copied) for r, replacing an entry with the
 * same exact key. ttl_s 0 = the cache's default. 0, MK_EINVAL (ineligible r, empty or
 * oversized answer), MK_ENOMEM. Entries beyond the byte cap are evicted, least
 * recently used first. */
int mk_cache_store(mk_cache *c, const struct mk_cache_request *r, const char *answer, size_t len,
                   int64_t prompt_tokens, int64_t completion_tokens, uint32_t ttl_s);

/* Drops every entry of tenant and/or group (NULL = any; both NULL = everything).
 * Returns the number of entries dropped. */
size_t mk_cache_invalidate(mk_cache *c, const char *tenant, const char *group);
/* Drops every entry of every live cache of this process: the knowledge base calls it
 * when its content changes, since cached answers may quote the old content. */
void mk_cache_invalidate_all(void);

/* Shares this cache's entries and invalidations with every other node using the same
 * kv (Redis): each store and invalidation is appended to an operation log in the kv
 * (a counter "mk:cache:seq" and records "mk:cache:op:<n>" that expire with the entry),
 * and a timer on `loop` pulls the other nodes' operations every interval_ms (0 = 500)
 * into the local table and index. A node attached later catches up on the last
 * MK_CACHE_SYNC_BACKLOG operations still in the kv. Pass a memory kv only in tests (it
 * is per process). From then on the cache's store/invalidate calls must come from
 * `loop`'s thread (the kv is single-threaded). 0, MK_EINVAL, MK_EEXISTS (attached
 * already), MK_ENOMEM. Detached by mk_cache_free (which must run before mk_kv_free). */
#define MK_CACHE_SYNC_BACKLOG 10000
struct mk_kv;
int mk_cache_attach_kv(mk_cache *c, struct mk_kv *kv, uv_loop_t *loop, uint32_t interval_ms);
/* Runs one pull now (tests; the timer does it otherwise). */
void mk_cache_sync_now(mk_cache *c);

struct mk_cache_stats {
    size_t entries;
    size_t bytes;
    uint64_t hits_exact, hits_semantic, misses, guard_rejects, stores, evictions, expirations;
};
void mk_cache_get_stats(mk_cache *c, struct mk_cache_stats *out);

/* The false-hit guard on its own (for tests and benchmarks): may the answer cached for
 * text `cached` be served for text `query`? true = compatible. When false and reason is
 * not NULL, *reason is "negation", "antonym", "number", "entity" or "name" (static). Both texts
 * are UTF-8 (invalid bytes act as separators). */
bool mk_cache_guard_compatible(const char *query, size_t qlen, const char *cached, size_t clen,
                               const char **reason);

#endif
