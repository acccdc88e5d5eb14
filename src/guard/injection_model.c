/*
 * injection_model: the injection classifier's features and model file.
 *
 * Features are hashed (the "hashing trick"): character n-grams of the normalised
 * text (code points, with a space pad at both ends, so word starts and ends are
 * features too) and word unigrams and bigrams, each hashed to one of 2^bits
 * buckets with a sign bit that halves the bias of collisions. A text's logit is
 *     bias + scale * sum(sign_i * w[bucket_i]) / n^p
 * over its n feature occurrences: counts with length normalisation (p = 1: the
 * mean), so a long document is not an attack merely for being long. Measured
 * (valid split, and again on long English chat prompts, docs/GUARD.md §3): with
 * p = 0.5 long benign prompts scored as attacks; p = 1 leaves long-document
 * injections to the rules, which match anywhere. Training (mk_guard_cli.c) and
 * scoring share one inlined walk (walk() below), so they can never disagree;
 * scoring adds each feature's weight as it is hashed, with no feature array.
 *
 * Model file, little-endian:
 *   "MKINJM01"  u32 version (1)  u32 bits  u32 features  u32 norm power x 1000
 *   f32 bias  f32 scale  int8 w[2^bits]  u64 FNV-1a of all preceding bytes
 * Weights are int8 (scale = max|w| / 127): small enough to keep the whole table
 * in L2 cache at scan time and to commit the default model.
 */
#include "guard/injection_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mk_error.h"

#define MODEL_MAGIC "MKINJM01"
#define MODEL_VERSION 1u
#define MODEL_HEADER (8 + 4 * 4 + 4 * 2)

/* A feature's hash -> bucket (top bits of a 64-bit product: well mixed) and
 * sign (a middle bit of the same product). */
static inline uint32_t slot(uint32_t h, unsigned shift, uint32_t mask)
{
    uint64_t x = (uint64_t)h * 0x9E3779B97F4A7C15ULL;
    return ((uint32_t)(x >> shift) & mask) | ((uint32_t)(x >> 8) & 0x80000000u);
}

static inline bool is_word_sep(uint32_t cp)
{
    return cp < 0x80 && !((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9') || cp == '\'' || (cp >= 'A' && cp <= 'Z'));
}

/* Per-position multipliers: an n-gram's hash is the XOR of its code points,
 * each multiplied by the constant of its distance from the n-gram's end, and
 * of a constant per n, so sizes never share a hash systematically. */
static const uint32_t POS_MUL[5] = {0x9E3779B1u, 0x85EBCA77u, 0xC2B2AE3Du, 0x27D4EB2Fu, 0x165667B1u};
static const uint32_t SIZE_SALT[6] = {0, 0, 0x3C6EF372u, 0xDAA66D2Bu, 0x78DDE6E4u, 0x1715609Du};

/* The feature walk, shared by training (store: o != NULL, every feature is
 * written to o) and scanning (o == NULL: each feature's weight is added to *sum
 * straight away, with no feature array and no second pass). One body for both,
 * so training and scoring can never see different features. Always inlined, so
 * each caller gets a copy specialised for its constant arguments.
 * Returns the number of feature occurrences. The caller reserved room in o. */
static inline __attribute__((always_inline)) size_t walk(const char *text, size_t len, uint32_t bits,
                                                         uint32_t features, uint32_t *o, const int8_t *wt,
                                                         int64_t *sum)
{
    const uint32_t mask = (1u << bits) - 1;
    const unsigned shift = 64 - bits;
    size_t count = 0;
    int64_t acc = 0;
#define EMIT(h)                                                                      \
    do {                                                                             \
        uint32_t sl_ = slot((h), shift, mask);                                       \
        if (o) o[count] = sl_;                                                       \
        else { /* branch-free sign: a 50/50 branch would mispredict half the time */ \
            int32_t x_ = wt[sl_ & mask], sg_ = -(int32_t)(sl_ >> 31);              \
            acc += (x_ ^ sg_) - sg_;                                                 \
        }                                                                            \
        count++;                                                                     \
    } while (0)
    const uint8_t *s = (const uint8_t *)text;
    const bool c2 = features & INJ_FEAT_CHAR2, c3 = features & INJ_FEAT_CHAR3, c4 = features & INJ_FEAT_CHAR4,
               c5 = features & INJ_FEAT_CHAR5, w1 = features & INJ_FEAT_WORD1, w2 = features & INJ_FEAT_WORD2;
    uint32_t w[4] = {0, 0, 0, 0}; /* the previous code points, nearest first */
    size_t seen = 0;
    uint32_t word = 0x811c9dc5u, prev_word = 0;
    bool in_word = false, have_prev = false;
    /* Walk " " text " " so word starts and ends are features too. */
    size_t i = 0;
    int phase = 0; /* 0 leading pad, 1 text, 2 trailing pad */
    for (;;) {
        uint32_t cp;
        if (phase == 0) { cp = ' '; phase = 1; }
        else if (i < len) {
            uint8_t c = s[i];
            if (c < 0x80) { cp = c; i++; }
            else if (c < 0xE0 && i + 1 < len) { cp = ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F); i += 2; }
            else if (c < 0xF0 && i + 2 < len) {
                cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F); i += 3;
            } else if (i + 3 < len) {
                cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                     ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F); i += 4;
            } else { cp = 0xFFFD; i = len; }
        } else if (phase == 1) { cp = ' '; phase = 2; }
        else break;

        seen++;
        /* n-gram hashes ending here: XOR of window code points times the
         * multiplier of their distance from this one. */
        uint32_t h2 = cp * POS_MUL[0] ^ w[0] * POS_MUL[1];
        uint32_t h3 = h2 ^ w[1] * POS_MUL[2];
        uint32_t h4 = h3 ^ w[2] * POS_MUL[3];
        uint32_t h5 = h4 ^ w[3] * POS_MUL[4];
        if (seen >= 2 && c2) EMIT(h2 ^ SIZE_SALT[2]);
        if (seen >= 3 && c3) EMIT(h3 ^ SIZE_SALT[3]);
        if (seen >= 4 && c4) EMIT(h4 ^ SIZE_SALT[4]);
        if (seen >= 5 && c5) EMIT(h5 ^ SIZE_SALT[5]);
        w[3] = w[2]; w[2] = w[1]; w[1] = w[0]; w[0] = cp;

        if (w1 | w2) {
            if (!is_word_sep(cp) && cp != ' ' && cp != '\n') {
                word = (word ^ cp) * 0x01000193u;
                in_word = true;
            } else if (in_word) {
                if (w1) EMIT(word ^ 0x5bd1e995u);
                if (w2 && have_prev) EMIT((prev_word * 0x2545F491u) ^ word ^ 0x27d4eb2du);
                prev_word = word;
                have_prev = true;
                word = 0x811c9dc5u;
                in_word = false;
            }
        }
    }
#undef EMIT
    if (sum) *sum += acc;
    return count;
}

int inj_features(const char *text, size_t len, uint32_t bits, uint32_t features, struct inj_feats *out)
{
    /* At most 4 character and 2 word features per code point (+ pads): reserve
     * once so the walk needs no bound checks. */
    size_t need = out->n + 6 * (len + 2) + 8;
    if (need > out->cap) {
        size_t cap = out->cap ? out->cap : 1024;
        while (cap < need) cap *= 2;
        uint32_t *v = realloc(out->v, cap * sizeof(*v));
        if (!v) return MK_ENOMEM;
        out->v = v;
        out->cap = cap;
    }
    out->n += walk(text, len, bits, features, out->v + out->n, NULL, NULL);
    return 0;
}

void inj_model_accumulate(const struct inj_model *m, const char *text, size_t len, struct inj_score_acc *acc)
{
    acc->n += walk(text, len, m->bits, m->features, NULL, m->w, &acc->sum);
}

float inj_model_logit_acc(const struct inj_model *m, const struct inj_score_acc *acc)
{
    if (acc->n == 0) return m->bias;
    return m->bias + m->scale * (float)acc->sum * (float)inj_length_norm(acc->n, m->norm_power);
}

void inj_feats_release(struct inj_feats *f)
{
    if (!f) return;
    free(f->v);
    f->v = NULL;
    f->n = f->cap = 0;
}

float inj_model_logit(const struct inj_model *m, const uint32_t *f, size_t n)
{
    if (n == 0) return m->bias;
    const uint32_t mask = (1u << m->bits) - 1;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t w = m->w[f[i] & mask];
        sum += (f[i] & 0x80000000u) ? -w : w;
    }
    return m->bias + m->scale * (float)sum * (float)inj_length_norm(n, m->norm_power);
}

/* ---- file format ---- */

static void put_u32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_f32(uint8_t *p, float f) { uint32_t v; memcpy(&v, &f, 4); put_u32(p, v); }
static float get_f32(const uint8_t *p) { uint32_t v = get_u32(p); float f; memcpy(&f, &v, 4); return f; }

int inj_model_serialize(const struct inj_model *m, mk_buf *out)
{
    size_t nw = (size_t)1 << m->bits;
    uint8_t hdr[MODEL_HEADER];
    memcpy(hdr, MODEL_MAGIC, 8);
    put_u32(hdr + 8, MODEL_VERSION);
    put_u32(hdr + 12, m->bits);
    put_u32(hdr + 16, m->features);
    put_u32(hdr + 20, (uint32_t)lrintf(m->norm_power * 1000.0f));
    put_f32(hdr + 24, m->bias);
    put_f32(hdr + 28, m->scale);
    size_t start = out->len;
    int rc = mk_buf_append(out, hdr, sizeof(hdr));
    if (rc == 0) rc = mk_buf_append(out, m->w, nw);
    if (rc) return rc;
    uint64_t sum = inj_fnv64(INJ_FNV64_INIT, out->data + start, out->len - start);
    uint8_t tail[8];
    put_u32(tail, (uint32_t)sum);
    put_u32(tail + 4, (uint32_t)(sum >> 32));
    return mk_buf_append(out, tail, 8);
}

int inj_model_parse(const uint8_t *data, size_t len, struct inj_model **out)
{
    *out = NULL;
    if (!data || len < MODEL_HEADER + 8 || memcmp(data, MODEL_MAGIC, 8) != 0) return MK_ECORRUPT;
    uint32_t version = get_u32(data + 8), bits = get_u32(data + 12), features = get_u32(data + 16);
    if (version != MODEL_VERSION || bits < INJ_MODEL_MIN_BITS || bits > INJ_MODEL_MAX_BITS) return MK_ECORRUPT;
    if (features == 0 || (features & ~(uint32_t)(INJ_FEAT_CHAR2 | INJ_FEAT_CHAR3 | INJ_FEAT_CHAR4 | INJ_FEAT_CHAR5 |
                                                 INJ_FEAT_WORD1 | INJ_FEAT_WORD2)))
        return MK_ECORRUPT;
    uint32_t norm = get_u32(data + 20);
    if (norm > 1000) return MK_ECORRUPT;
    size_t nw = (size_t)1 << bits;
    if (len != MODEL_HEADER + nw + 8) return MK_ECORRUPT;
    uint64_t want = (uint64_t)get_u32(data + len - 8) | (uint64_t)get_u32(data + len - 4) << 32;
    if (inj_fnv64(INJ_FNV64_INIT, data, len - 8) != want) return MK_ECORRUPT;
    float bias = get_f32(data + 24), scale = get_f32(data + 28);
    if (!isfinite(bias) || !isfinite(scale) || scale < 0) return MK_ECORRUPT;
    struct inj_model *m = calloc(1, sizeof(*m));
    if (!m) return MK_ENOMEM;
    m->w = malloc(nw);
    if (!m->w) { free(m); return MK_ENOMEM; }
    memcpy(m->w, data + MODEL_HEADER, nw);
    m->bits = bits;
    m->features = features;
    m->bias = bias;
    m->scale = scale;
    m->norm_power = (float)norm / 1000.0f;
    *out = m;
    return 0;
}

int inj_model_load(const char *path, struct inj_model **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? MK_ENOTFOUND : MK_EIO;
    struct stat st;
    int rc = 0;
    uint8_t *buf = NULL;
    if (fstat(fileno(f), &st) != 0) { rc = MK_EIO; goto out; }
    /* Larger than the largest valid model: not a model. */
    if (st.st_size < 0 || (uint64_t)st.st_size > MODEL_HEADER + ((size_t)1 << INJ_MODEL_MAX_BITS) + 8) { rc = MK_ECORRUPT; goto out; }
    size_t len = (size_t)st.st_size;
    buf = malloc(len ? len : 1);
    if (!buf) { rc = MK_ENOMEM; goto out; }
    if (fread(buf, 1, len, f) != len) { rc = MK_EIO; goto out; }
    rc = inj_model_parse(buf, len, out);
out:
    free(buf);
    fclose(f);
    return rc;
}

void inj_model_free(struct inj_model *m)
{
    if (!m) return;
    free(m->w);
    free(m);
}
