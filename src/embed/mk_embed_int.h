/*
 * mk_embed_int.h: what the embedder's files share and nobody else sees.
 *
 *   mk_embed_words.c   text -> words (normalise, split, classify, stem)
 *   mk_embed.c         words -> hashed features -> vector; the public embedding API
 *   mk_embed_idf.c     IDF tables: fit, save, load
 */
#ifndef MK_EMBED_INT_H
#define MK_EMBED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "embed/mk_embed.h"

/* Bumped whenever a change would make old vectors or IDF tables differ (tokenizer,
 * hashing, weights): it is part of the fingerprint and of the IDF file header. */
#define MK_EMBED__ALGO_VERSION 1u

/* A word longer than this (code points) is kept as one opaque token (URLs, hashes,
 * base64): no stem and no character n-grams, which would only add noise. */
#define MK_EMBED__MAX_WORD_CP 40

#define MK_EMBED__IDF_SIZE (1u << MK_EMBED_IDF_BITS)

/* Classes of a word; they change its weight, never whether it is seen. */
enum {
    MK_EMBED__W_STOP = 1u << 0,     /* function word: low weight (negations are never stop words) */
    MK_EMBED__W_NEG = 1u << 1,      /* negation word ("not", "не", "емес") */
    MK_EMBED__W_NUM = 1u << 2,      /* digits (with inner . or ,): an entity, no n-grams */
    MK_EMBED__W_SYM = 1u << 3,      /* one symbol or emoji */
    MK_EMBED__W_LONG = 1u << 4,     /* longer than MK_EMBED__MAX_WORD_CP: cp[] holds a prefix */
};

struct mk_embed__word {
    const int32_t *cp;   /* folded code points (ё -> е, inner hyphens/apostrophes dropped) */
    size_t ncp;          /* <= MK_EMBED__MAX_WORD_CP */
    uint64_t surface;    /* hash of the whole folded word */
    uint64_t stem;       /* hash of its stem (== surface when not stemmed) */
    unsigned flags;      /* MK_EMBED__W_* */
};

typedef int (*mk_embed__word_fn)(void *arg, const struct mk_embed__word *w);

/* Splits text into words and calls fn for each in order (fn returning non-zero stops
 * the walk and is returned). stem: apply stemming. lossy: invalid UTF-8 bytes are
 * spaces instead of MK_EBADUTF8. Thread-safe (per-thread stemmers). */
int mk_embed__words(const char *text, size_t len, bool stem, bool lossy, mk_embed__word_fn fn, void *arg);

/* Hashing shared by all files: a strong 64-bit finaliser and a cheap absorbing step. */
static inline uint64_t mk_embed__mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}
static inline uint64_t mk_embed__step(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    return (h << 29) | (h >> 35);
}
/* Hash of a byte string (file checksums, names). */
uint64_t mk_embed__hash_bytes(uint64_t seed, const void *p, size_t n);

struct mk_embed_idf {
    uint64_t ndocs;
    uint32_t schema;      /* mk_embed__schema() of the embedder it was fitted with */
    uint64_t digest;      /* hash of w[], part of embedder fingerprints */
    uint8_t w[MK_EMBED__IDF_SIZE]; /* weight = w / 255 (0 is raised to 1 when applied) */
};

/* The feature schema an IDF table depends on (the algorithm and stemming). */
static inline uint32_t mk_embed__schema(bool stem) { return (MK_EMBED__ALGO_VERSION << 1) | (stem ? 1u : 0u); }

/* The IDF bucket of a feature hash (independent of the projection seed). */
static inline uint32_t mk_embed__idf_bucket(uint64_t fh)
{
    return (uint32_t)(mk_embed__mix(fh ^ 0x5bd1e9955bd1e995ull) >> (64 - MK_EMBED_IDF_BITS));
}

/* Builds a table from document frequencies df[MK_EMBED__IDF_SIZE] over ndocs documents. */
int mk_embed__idf_from_df(const uint32_t *df, uint64_t ndocs, uint32_t schema, mk_embed_idf **out);

/* Calls fn(arg, feature_hash, weight) for every feature of text, as the embedder
 * sees them (used by fitting: weights are ignored there). */
typedef void (*mk_embed__feature_fn)(void *arg, uint64_t fh, float weight);
int mk_embed__features(const mk_embedder *e, const char *text, size_t len, mk_embed__feature_fn fn, void *arg);

/* An embedder: immutable after mk_embedder_new(). */
struct mk_embedder {
    uint32_t dim, hashes, nmin, nmax;
    unsigned flags;
    bool lossy, stem;
    uint64_t seed;
    uint64_t hseed[4];     /* per-coordinate projection seeds derived from seed */
    uint64_t fingerprint;
    uint8_t *idf;          /* own copy of the table's weights; NULL = uniform */
    float idf_lut[256];    /* byte -> weight */
    char name[40];
};

#endif
