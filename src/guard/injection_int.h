/*
 * injection_int.h: the injection guard's internal contracts, shared by
 * mk_injection.c (the detector), injection_match.c (pattern matchers),
 * injection_model.c (classifier features, model format, training) and
 * patterns/injection_patterns.c (the rules). Not for use outside src/guard/.
 */
#ifndef MK_INJECTION_INT_H
#define MK_INJECTION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "guard/mk_injection.h"

/* ---- the rules ---- */

struct mk_injection_pattern {
    unsigned id;                           /* stable; never reused */
    enum mk_injection_category category;
    float weight;                          /* (0,1): P(attack | match), roughly */
    const char *lang;                      /* "en" | "ru" | "kk" | "de" */
    /* The rule is anchor followed by rest (rest NULL: the anchor is the whole
     * rule). Both in the common syntax of Hyperscan and PCRE2, byte mode. The
     * anchor is a cheap phrase every match must contain: Hyperscan scans all
     * anchors at once and PCRE2 JIT confirms the full rule only where an anchor
     * was seen. Hyperscan could compile the full rules, but word-gap rules
     * (ignore ... previous ... instructions) cost it ~15 s at start. */
    const char *anchor;
    const char *rest;
    /* Optional: when the anchor is a common phrase ("tell me", "ассистент"), a
     * rarer phrase every match also contains, scanned instead of the anchor.
     * The full rule is then confirmed over the whole text. */
    const char *needle;
};

extern const struct mk_injection_pattern mk_injection_patterns[];
extern const size_t mk_injection_pattern_count;

/* ---- matchers: Hyperscan, or PCRE2 JIT where Hyperscan cannot run ---- */

struct inj_matcher;
struct inj_scratch;

/*
 * Compile the rules. cache_dir (may be NULL) holds a serialised Hyperscan
 * database keyed by a digest of the rules and the Hyperscan version; a missing,
 * stale or corrupt cache is rebuilt (never trusted blindly).
 * Returns 0; MK_EINTERNAL when a rule does not compile (message logged); MK_ENOMEM.
 */
int inj_matcher_new(const struct mk_injection_pattern *pats, size_t n, const char *cache_dir, bool force_pcre2,
                    struct inj_matcher **out);
void inj_matcher_free(struct inj_matcher *m);
const char *inj_matcher_backend(const struct inj_matcher *m);
/* Make *scr usable with m (allocating or growing it). */
int inj_scratch_prepare(const struct inj_matcher *m, struct inj_scratch **scr);
void inj_scratch_free(struct inj_scratch *scr);
/* Set hits[i] = 1 for every rule index i matching data[0..len) (hits[] already
 * set stay set: views accumulate). */
int inj_matcher_scan(const struct inj_matcher *m, struct inj_scratch *scr, const char *data, size_t len, uint8_t *hits);

/* ---- classifier ---- */

/* Feature set bits stored in the model, so a model is always scored with the
 * features it was trained on. */
enum {
    INJ_FEAT_CHAR3 = 1u << 0,
    INJ_FEAT_CHAR4 = 1u << 1,
    INJ_FEAT_CHAR5 = 1u << 2,
    INJ_FEAT_WORD1 = 1u << 3,
    INJ_FEAT_WORD2 = 1u << 4,
    INJ_FEAT_CHAR2 = 1u << 5,
};
/* Character 4-grams and word uni/bigrams: on out-of-fold training scores and the
 * valid split they did as well as 3+4+5-grams (docs/GUARD.md) with 40 % of the
 * feature occurrences, so scoring costs less than half as much. */
#define INJ_FEAT_DEFAULT (INJ_FEAT_CHAR4 | INJ_FEAT_WORD1 | INJ_FEAT_WORD2)
#define INJ_MODEL_MIN_BITS 10
#define INJ_MODEL_MAX_BITS 22
#define INJ_MODEL_DEFAULT_BITS 17

struct inj_model {
    uint32_t bits;      /* 2^bits weights */
    uint32_t features;  /* INJ_FEAT_* */
    float bias;
    float scale;        /* weight = w[i] * scale */
    float norm_power;   /* length normalisation, [0,1] (stored as thousandths) */
    int8_t *w;          /* owned */
};

/*
 * Feature extraction: appends one entry per feature occurrence of text (already
 * normalised) to *out as (bucket | sign << 31), bucket < 2^bits.
 * Returns 0 or MK_ENOMEM. out is a reusable buffer of uint32_t.
 */
struct inj_feats {
    uint32_t *v;
    size_t n, cap;
};
int inj_features(const char *text, size_t len, uint32_t bits, uint32_t features, struct inj_feats *out);
void inj_feats_release(struct inj_feats *f);

/* A text's feature sum is scaled by n^-power (power stored in the model), so
 * that long texts are not attacks merely for being long (injection_model.c). */
static inline double inj_length_norm(size_t n, float power)
{
    if (!n) return 0.0;
    if (power == 1.0f) return 1.0 / (double)n;
    if (power == 0.5f) return 1.0 / __builtin_sqrt((double)n);
    return __builtin_pow((double)n, -(double)power);
}
#define INJ_DEFAULT_NORM_POWER 1.0f

/* Scoring without a feature array: accumulate texts (the same features
 * inj_features gives, weighted as they come), then take the logit. Equal to
 * inj_model_logit over the concatenated features of the same texts. */
struct inj_score_acc {
    int64_t sum; /* sum of signed int8 weights (64 bits: a large input overflows 32) */
    size_t n;    /* feature occurrences */
};
void inj_model_accumulate(const struct inj_model *m, const char *text, size_t len, struct inj_score_acc *acc);
float inj_model_logit_acc(const struct inj_model *m, const struct inj_score_acc *acc);

/* Logit of the model for the features in f[0..n). */
float inj_model_logit(const struct inj_model *m, const uint32_t *f, size_t n);

/* Parse a model image (copying it). MK_ECORRUPT when it is not one. */
int inj_model_parse(const uint8_t *data, size_t len, struct inj_model **out);
/* Read and parse a model file: MK_ENOTFOUND, MK_EIO, MK_ECORRUPT, MK_ENOMEM. */
int inj_model_load(const char *path, struct inj_model **out);
/* Serialise m into out (appending). */
int inj_model_serialize(const struct inj_model *m, mk_buf *out);
void inj_model_free(struct inj_model *m);

/* The built-in default model (src/guard/models/injection_default_model.c). */
extern const uint8_t mk_guard_default_model[];
extern const size_t mk_guard_default_model_len;

/* 64-bit FNV-1a: model checksums and cache keys (corruption detection, not security). */
uint64_t inj_fnv64(uint64_t h, const void *data, size_t len);
#define INJ_FNV64_INIT 0xcbf29ce484222325ULL

#endif
