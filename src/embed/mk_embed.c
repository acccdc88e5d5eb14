/*
 * mk_embed: words -> hashed, weighted features -> a unit vector (the public API).
 *
 * Each word gives up to three kinds of features:
 *   - its stem (weight 1): the topic signal;
 *   - after a negation word, the (negation, stem) bigram (weight 0.6): what is
 *     negated — "не работает" gets a feature "работает" never has. Bigrams of every
 *     pair are an option (MK_EMBED_ALL_BIGRAMS); they did not pay (docs/EMBEDDER.md);
 *   - the character n-grams (3..5 by default) of the folded word inside boundary marks
 *     (all of a word's n-grams together weigh 1 in L2, so short and long words count
 *     alike): overlap between inflections the stemmer misses, Kazakh morphology,
 *     compounds and typos ("пароль"/"паролем", "pasword"/"password").
 * Stop words keep 35% of their weight; numbers, symbols and over-long tokens give only
 * their word feature (a different number is a different entity, not a near-miss).
 *
 * Each feature's 64-bit hash picks `hashes` coordinates of the output with a sign
 * (a count sketch): a fixed random projection of the unbounded sparse feature space,
 * so inner products of sketches estimate inner products of the sparse vectors, and
 * colliding features cancel on average instead of piling up. When the embedder has
 * an IDF table, the weight is also scaled by the table's weight for the feature. The
 * sum goes through a signed square root (damping repeated words and long texts'
 * dominant terms) and is L2-normalised.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "embed/mk_embed_int.h"

/* Keys that separate the kinds of feature: a word and a character n-gram with the
 * same code points must not share a hash. */
#define K_WORD 0x8c3f1b2a5d6e7f01ull
#define K_BIGRAM 0x1f2e3d4c5b6a7988ull
#define K_CHAR 0x6a09e667f3bcc908ull
#define K_EMPTY 0xbb67ae8584caa73bull
#define DEFAULT_SEED 0x3c6ef372fe94f82bull

/* Boundary marks around a word for its n-grams: code points no text can contain after
 * normalisation (C0 controls are separators), so "<ca" only comes from word starts. */
#define MARK_BEGIN 0x02
#define MARK_END 0x03

static const struct weights {
    float word, bigram, chars, stop, num, sym, longw;
} W = {1.0f, 0.6f, 1.0f, 0.35f, 1.0f, 1.0f, 0.5f};

uint64_t mk_embed__hash_bytes(uint64_t seed, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = mk_embed__mix(seed ^ n);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        h = mk_embed__step(h, v);
    }
    uint64_t tail = 0;
    for (size_t j = 0; i + j < n; j++)
        tail |= (uint64_t)b[i + j] << (8 * j);
    return mk_embed__mix(mk_embed__step(h, tail));
}

int mk_embedder_new(const struct mk_embed_options *opts, mk_embedder **out)
{
    if (!out)
        return MK_EINVAL;
    *out = NULL;
    struct mk_embed_options o = {0};
    if (opts)
        o = *opts;
    if (o.dim == 0)
        o.dim = MK_EMBED_DEFAULT_DIM;
    if (o.seed == 0)
        o.seed = DEFAULT_SEED;
    if (o.ngram_min == 0)
        o.ngram_min = 3;
    if (o.ngram_max == 0)
        o.ngram_max = o.ngram_min > 5 ? o.ngram_min : 5;
    if (o.hashes == 0)
        o.hashes = 1;
    if (o.dim < MK_EMBED_MIN_DIM || o.dim > MK_EMBED_MAX_DIM || o.ngram_min > o.ngram_max ||
        o.ngram_max > 8 || o.hashes > 4 || (o.flags & ~0x3Fu))
        return MK_EINVAL;
    bool stem = !(o.flags & MK_EMBED_NO_STEM);
    const mk_embed_idf *idf = o.idf;
    if (idf && idf->schema != mk_embed__schema(stem))
        return MK_EINVAL;

    mk_embedder *e = calloc(1, sizeof *e);
    if (!e)
        return MK_ENOMEM;
    e->dim = o.dim;
    e->hashes = o.hashes;
    e->nmin = o.ngram_min;
    e->nmax = o.ngram_max;
    e->flags = o.flags;
    e->lossy = o.lossy_utf8;
    e->stem = stem;
    e->seed = o.seed;
    for (uint32_t j = 0; j < 4; j++)
        e->hseed[j] = mk_embed__mix(o.seed + 0x9e3779b97f4a7c15ull * (j + 1));
    if (idf) {
        e->idf = malloc(MK_EMBED__IDF_SIZE);
        if (!e->idf) {
            free(e);
            return MK_ENOMEM;
        }
        memcpy(e->idf, idf->w, MK_EMBED__IDF_SIZE);
    }
    for (int q = 0; q < 256; q++)
        e->idf_lut[q] = (float)(q ? q : 1) / 255.0f;
    uint64_t f = mk_embed__mix(MK_EMBED__ALGO_VERSION);
    uint64_t parts[] = {o.dim, o.seed, o.ngram_min, o.ngram_max, o.hashes, o.flags, o.lossy_utf8,
                        idf ? idf->digest : 0};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        f = mk_embed__mix(mk_embed__step(f, parts[i]));
    e->fingerprint = f;
    snprintf(e->name, sizeof e->name, "mayak-embed-%u", (unsigned)o.dim);
    *out = e;
    return 0;
}

void mk_embedder_free(mk_embedder *e)
{
    if (!e)
        return;
    free(e->idf);
    free(e);
}

uint32_t mk_embedder_dim(const mk_embedder *e) { return e ? e->dim : 0; }
uint64_t mk_embedder_fingerprint(const mk_embedder *e) { return e ? e->fingerprint : 0; }
const char *mk_embedder_name(const mk_embedder *e) { return e ? e->name : ""; }

/* --- features --------------------------------------------------------------------- */

/* Where features go: into a vector (embedding) or to a callback (IDF fitting). */
struct sink {
    const mk_embedder *e;
    float *vec;
    mk_embed__feature_fn fn;
    void *arg;
    size_t nfeat;
    uint64_t prev;         /* previous word's stem hash */
    float prev_mult;
    unsigned prev_flags;
    bool have_prev;
};

static inline void add(struct sink *s, uint64_t fh, float w)
{
    s->nfeat++;
    if (!s->vec) {
        s->fn(s->arg, fh, w);
        return;
    }
    const mk_embedder *e = s->e;
    if (e->idf)
        w *= e->idf_lut[e->idf[mk_embed__idf_bucket(fh)]];
    for (uint32_t j = 0; j < e->hashes; j++) {
        uint64_t x = mk_embed__mix(fh ^ e->hseed[j]);
        uint32_t idx = (uint32_t)(((x & 0xffffffffull) * e->dim) >> 32);
        s->vec[idx] += (x >> 63) ? -w : w;
    }
}

static void add_char_ngrams(struct sink *s, const struct mk_embed__word *w, float weight)
{
    const mk_embedder *e = s->e;
    int32_t buf[MK_EMBED__MAX_WORD_CP + 2];
    size_t L = w->ncp + 2;
    buf[0] = MARK_BEGIN;
    memcpy(buf + 1, w->cp, w->ncp * sizeof *buf);
    buf[L - 1] = MARK_END;
    size_t count = 0;
    for (uint32_t n = e->nmin; n <= e->nmax; n++)
        if (L >= n)
            count += L - n + 1;
    if (count == 0)
        return;
    float each = weight / sqrtf((float)count);
    for (size_t i = 0; i < L; i++) {
        uint64_t h = K_CHAR;
        size_t end = i + e->nmax < L ? i + e->nmax : L;
        for (size_t j = i; j < end; j++) {
            h = mk_embed__step(h, (uint64_t)(uint32_t)buf[j]);
            size_t n = j - i + 1;
            if (n >= e->nmin)
                add(s, mk_embed__mix(h ^ n), each);
        }
    }
}

static int on_word(void *arg, const struct mk_embed__word *w)
{
    struct sink *s = arg;
    const mk_embedder *e = s->e;
    float mult = 1.0f;
    if ((w->flags & MK_EMBED__W_STOP) && !(e->flags & MK_EMBED_NO_STOPWORDS))
        mult = W.stop;
    else if (w->flags & MK_EMBED__W_NUM)
        mult = W.num;
    else if (w->flags & MK_EMBED__W_SYM)
        mult = W.sym;
    else if (w->flags & MK_EMBED__W_LONG)
        mult = W.longw;

    add(s, mk_embed__mix(w->stem ^ K_WORD), W.word * mult);
    /* A bigram says which word a negation applies to ("не_работ", "not_connect");
     * bigrams of every pair are an option: they spent the vector's capacity on
     * collisions and lost accuracy in our measurements. */
    if (!(e->flags & MK_EMBED_NO_BIGRAMS) && s->have_prev &&
        ((s->prev_flags & MK_EMBED__W_NEG) || (e->flags & MK_EMBED_ALL_BIGRAMS))) {
        uint64_t b = mk_embed__step(mk_embed__step(K_BIGRAM, s->prev), w->stem);
        add(s, mk_embed__mix(b), W.bigram * (mult < s->prev_mult ? mult : s->prev_mult));
    }
    if (!(e->flags & MK_EMBED_NO_CHARS) && !(w->flags & (MK_EMBED__W_NUM | MK_EMBED__W_SYM | MK_EMBED__W_LONG)))
        add_char_ngrams(s, w, W.chars * mult);
    s->prev = w->stem;
    s->prev_mult = mult;
    s->prev_flags = w->flags;
    s->have_prev = true;
    return 0;
}

int mk_embed__features(const mk_embedder *e, const char *text, size_t len, mk_embed__feature_fn fn, void *arg)
{
    if (!e || !fn)
        return MK_EINVAL;
    struct sink s = {.e = e, .fn = fn, .arg = arg};
    return mk_embed__words(text, len, e->stem, e->lossy, on_word, &s);
}

int mk_embed_text(const mk_embedder *e, const char *text, size_t len, float *out)
{
    if (!e || !out)
        return MK_EINVAL;
    memset(out, 0, e->dim * sizeof *out);
    struct sink s = {.e = e, .vec = out};
    int rc = mk_embed__words(text, len, e->stem, e->lossy, on_word, &s);
    if (rc != 0) {
        memset(out, 0, e->dim * sizeof *out);
        return rc;
    }
    if (s.nfeat == 0)
        add(&s, K_EMPTY, 1.0f);
    double sum = 0;
    bool root = !(e->flags & MK_EMBED_NO_SQRT);
    for (uint32_t i = 0; i < e->dim; i++) {
        float v = out[i];
        if (v == 0.0f)
            continue; /* most coordinates of a short text */
        if (root)
            v = v < 0 ? -sqrtf(-v) : sqrtf(v);
        out[i] = v;
        sum += (double)v * v;
    }
    if (sum <= 0) {
        /* Every coordinate cancelled (possible in principle with signed hashing):
         * fall back to the empty-text vector, which cannot cancel. */
        memset(out, 0, e->dim * sizeof *out);
        s.vec = out;
        add(&s, K_EMPTY, 1.0f);
        sum = 0;
        for (uint32_t i = 0; i < e->dim; i++)
            sum += (double)out[i] * out[i];
    }
    float inv = (float)(1.0 / sqrt(sum));
    for (uint32_t i = 0; i < e->dim; i++)
        out[i] *= inv;
    return 0;
}

int mk_embed_batch(const mk_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                   float *out, size_t *failed)
{
    if (!e || (n && (!texts || !out)))
        return MK_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const char *t = texts[i];
        size_t len = lens ? lens[i] : (t ? strlen(t) : 0);
        int rc = mk_embed_text(e, t, len, out + i * e->dim);
        if (rc != 0) {
            if (failed)
                *failed = i;
            return rc;
        }
    }
    return 0;
}
