/*
 * mk_embed: Mayak's built-in text embedder ("mayak-embed").
 *
 * Turns text in Russian, Kazakh or English into a fixed-size dense vector of unit
 * length, with no model to download: text is Unicode-normalised (NFKC + case fold),
 * split into words, and each word contributes sparse features — its stem (Snowball
 * Russian/English by script, a small suffix stripper for Kazakh), the bigram with its
 * neighbour, and the character 3..5-grams of the word with boundary marks (so
 * inflections and typos still overlap). Every feature is hashed (seeded 64-bit
 * multiply-xorshift) to a signed coordinate of the output (feature hashing / count
 * sketch: a random projection of the huge sparse feature space), weighted (stop words
 * discounted; optionally an IDF table fitted on the caller's corpus), and the sum is
 * damped by a signed square root and L2-normalised. docs/EMBEDDER.md explains the design, its
 * measurements and its limits.
 *
 * Properties callers rely on:
 *  - deterministic: the same text, options and IDF table give bit-identical vectors on
 *    every run and thread (only integer hashing and a fixed order of float sums);
 *  - unit L2 norm, never a zero vector: a text with no word at all (empty, blanks,
 *    punctuation) gets one fixed "empty text" vector;
 *  - thread-safe: an embedder is immutable after mk_embedder_new(), so any number of
 *    threads may embed with it at once (per-thread stemmers and caches are internal);
 *  - mk_embedder_fingerprint() changes whenever vectors would change (dimension, seed,
 *    features, IDF table), so stored vectors can be checked against the embedder.
 *
 * Invalid UTF-8 input is an error (MK_EBADUTF8) unless the embedder was created with
 * lossy_utf8, in which case each invalid byte acts as a space. NUL bytes are spaces.
 */
#ifndef MK_EMBED_H
#define MK_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- Limits and defaults (with the reason beside each) ----------------------- */
/* 512 dimensions: short-text intent accuracy (BANKING77, CLINC150) is flat from 384
 * up, but paragraph retrieval keeps gaining (XQuAD-ru top-1 0.68 at 384, 0.72 at 512,
 * 0.79 at 768, 0.82 at 1024; docs/EMBEDDER.md); 512 keeps a vector at 2 KB and a
 * distance at 512 multiply-adds (a multiple of every SIMD width). Long documents:
 * consider 1024. */
#define MK_EMBED_DEFAULT_DIM 512
#define MK_EMBED_MIN_DIM 16
/* Beyond 4096 hashing collisions are already rare; the cap bounds stack scratch. */
#define MK_EMBED_MAX_DIM 4096
/* One text: 16 MB is twice the largest HTTP body; bigger input is a mistake. */
#define MK_EMBED_MAX_TEXT_BYTES (16u * 1024 * 1024)
/* Texts in one mk_embed_fit_idf() call. */
#define MK_EMBED_MAX_FIT_TEXTS 10000000u
/* An IDF file is exactly this many bytes plus the header: 2^18 one-byte weights. */
#define MK_EMBED_IDF_BITS 18

/* Feature switches for mk_embed_options.flags (0 = the default design). They exist for
 * experiments and baselines (bench/embed/eval_embed.py): the defaults are the tuned design. */
enum {
    MK_EMBED_NO_CHARS = 1u << 0,      /* no character n-grams */
    MK_EMBED_NO_BIGRAMS = 1u << 1,    /* no word bigrams at all (not even after a negation) */
    MK_EMBED_NO_STEM = 1u << 2,       /* words as written (folded), no stemming */
    MK_EMBED_NO_STOPWORDS = 1u << 3,  /* function words weigh as much as any word */
    MK_EMBED_NO_SQRT = 1u << 4,       /* no signed square root before normalising */
    MK_EMBED_ALL_BIGRAMS = 1u << 5,   /* bigrams of every adjacent pair, not only after a negation */
};

typedef struct mk_embedder mk_embedder;
typedef struct mk_embed_idf mk_embed_idf;

/* Options; a zeroed struct (or NULL) gives the defaults. */
struct mk_embed_options {
    uint32_t dim;            /* 0 = MK_EMBED_DEFAULT_DIM; else MK_EMBED_MIN_DIM..MK_EMBED_MAX_DIM */
    uint64_t seed;           /* 0 = the built-in seed; changes the projection, not the features */
    uint32_t ngram_min;      /* character n-gram sizes; 0 = 3 */
    uint32_t ngram_max;      /* 0 = 5; 1 <= ngram_min <= ngram_max <= 8 */
    uint32_t hashes;         /* coordinates per feature, 0 = 1; 1..4 (more did not help: EMBEDDER.md) */
    unsigned flags;          /* MK_EMBED_NO_* / MK_EMBED_ALL_BIGRAMS bits */
    bool lossy_utf8;         /* invalid UTF-8 bytes become spaces instead of MK_EBADUTF8 */
    /* IDF table to weight features (borrowed for the call: the embedder keeps its own
     * copy). NULL = uniform weights with stop words discounted (the default: fitted
     * tables did not beat it on our measurements, docs/EMBEDDER.md). It must have been
     * fitted with the same stemming setting (else MK_EINVAL). */
    const mk_embed_idf *idf;
};

/* Creates an embedder. opts may be NULL (defaults).
 * Returns 0 and *out (free with mk_embedder_free), MK_EINVAL for an option out of range
 * or an incompatible IDF table, MK_ENOMEM. On failure *out is NULL. */
int mk_embedder_new(const struct mk_embed_options *opts, mk_embedder **out);
/* Frees the embedder. Accepts NULL. No embedding call may be running on it. */
void mk_embedder_free(mk_embedder *e);

/* Output dimension (floats per vector). */
uint32_t mk_embedder_dim(const mk_embedder *e);
/* A 64-bit digest of everything that determines the vectors (algorithm version,
 * dimension, seed, features, IDF table). Equal fingerprints = equal vectors. */
uint64_t mk_embedder_fingerprint(const mk_embedder *e);
/* Model name for APIs and logs, e.g. "mayak-embed-384". Static storage in e. */
const char *mk_embedder_name(const mk_embedder *e);

/* Embeds text[0..len) into out[0..dim). text may be NULL when len == 0.
 * Returns 0 with a unit-length vector in out; MK_EINVAL for NULL e/out or NULL text
 * with len > 0; MK_EBADUTF8 for invalid UTF-8 (strict mode); MK_ETOOBIG when
 * len > MK_EMBED_MAX_TEXT_BYTES; MK_ENOMEM. On failure out is zero-filled.
 * Safe to call from many threads at once on one embedder. */
int mk_embed_text(const mk_embedder *e, const char *text, size_t len, float *out);

/* Embeds n texts: texts[i] of lens[i] bytes (lens NULL = NUL-terminated strings) into
 * out[i * dim .. (i + 1) * dim). Returns 0, or the first failure's code with its index
 * in *failed (when failed is not NULL); vectors before it are filled, later ones are
 * not computed. Same thread safety as mk_embed_text. */
int mk_embed_batch(const mk_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                   float *out, size_t *failed);

/* --- IDF tables -----------------------------------------------------------------
 * An IDF table holds one weight per bucket of feature hashes (2^MK_EMBED_IDF_BITS
 * buckets, one byte each): idf = ln((N + 1) / (df + 1)) + 1 scaled so that a feature
 * never seen weighs 1 and the commonest weigh least. Tables are immutable values. */

/* Counts document frequencies of e's features (each text is one document) over
 * texts[0..n) (lens NULL = NUL-terminated) and returns a new table in *out.
 * Texts with invalid UTF-8 follow e's lossy_utf8 setting. Returns 0, MK_EINVAL
 * (n == 0, n > MK_EMBED_MAX_FIT_TEXTS, NULL args), MK_EBADUTF8, MK_ETOOBIG, MK_ENOMEM.
 * The new table is used by creating an embedder with options.idf = *out. */
int mk_embed_fit_idf(const mk_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                     mk_embed_idf **out);
/* Writes the table to path atomically (temporary file + rename, so a crash never
 * leaves a torn file). Returns 0, MK_EINVAL, MK_EIO. */
int mk_embed_save_idf(const mk_embed_idf *idf, const char *path);
/* Reads a table written by mk_embed_save_idf. Returns 0 and *out (free with
 * mk_embed_idf_free), MK_ENOTFOUND (no such file), MK_EIO, MK_ECORRUPT (wrong magic,
 * version, size or checksum), MK_ENOMEM. */
int mk_embed_load_idf(const char *path, mk_embed_idf **out);
/* Number of documents the table was fitted on (0 for the uniform table). */
uint64_t mk_embed_idf_docs(const mk_embed_idf *idf);
void mk_embed_idf_free(mk_embed_idf *idf);

#endif
