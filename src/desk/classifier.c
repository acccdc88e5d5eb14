/*
 * classifier: the desk's triage classifier (see mk_desk_classifier.h for the model).
 *
 * Sparse features are hashed (FNV-1a, 64 bits) to rows of a weight table with one
 * float per class, so a message's ~100 features cost ~100 * classes multiply-adds;
 * the dense embedding adds 512 * classes. Training precomputes every example's
 * features once, then runs the epochs over them.
 */
#include "desk/mk_desk_classifier.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "embed/mk_embed.h"
#include "kb/mk_kb.h"

/* Features kept per message: a 4 KB message has < 700 words; beyond this many distinct
 * features the rest adds nothing a classifier of intents needs. */
#define MAX_FEATURES 2048
/* Stems kept per message for bigrams and n-grams. */
#define MAX_TERMS 512
/* The weight table's size: rows * classes floats stay under 2^24 (64 MB). */
#define MAX_TABLE_FLOATS (1u << 24)
#define MAX_HASH_BITS 20
#define MIN_HASH_BITS 12
/* Below this the scale factor of the weights is folded back into them (float range). */
#define MIN_SCALE 1e-4

struct feat {
    uint32_t idx;
    float val;
};

struct fvec {
    struct feat *f;
    uint32_t n;
    float *dense; /* dim floats, already scaled by dense_weight; NULL when unused */
};

struct mk_desk_classifier {
    size_t nclasses;
    uint32_t rows_mask;
    float *w;             /* (mask + 1) * nclasses */
    float *wd;            /* dim * nclasses, or NULL */
    float *bias;          /* nclasses */
    double scale;         /* true weights = scale * stored (bias excluded) */
    double dense_weight;  /* <= 0: no dense part */
    uint32_t dim;
    mk_embedder *embedder;
    mk_kb *tok;           /* an empty kb: its tokenizer and stemmers */
};

/* ---- features ---------------------------------------------------------------------- */

struct terms {
    char *buf;            /* NUL-separated stems */
    size_t len, cap;
    uint32_t off[MAX_TERMS];
    uint32_t n;
};

static int collect_term(void *arg, const char *term, size_t len)
{
    struct terms *t = arg;
    if (t->n >= MAX_TERMS) return 1; /* enough: stop the walk */
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        while (cap < t->len + len + 1) cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) return MK_ENOMEM;
        t->buf = nb;
        t->cap = cap;
    }
    t->off[t->n++] = (uint32_t)t->len;
    memcpy(t->buf + t->len, term, len);
    t->buf[t->len + len] = '\0';
    t->len += len + 1;
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline uint64_t fnv_start(char kind) { return fnv(0xcbf29ce484222325ull, &kind, 1); }

static uint32_t row_of(uint64_t h, uint32_t mask)
{
    h ^= h >> 29; /* FNV's low bits mix poorly for short keys */
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h & mask;
}

static int cmp_feat(const void *a, const void *b)
{
    uint32_t x = ((const struct feat *)a)->idx, y = ((const struct feat *)b)->idx;
    return x < y ? -1 : x > y;
}

static void push(struct feat *f, uint32_t *n, uint32_t idx, float w)
{
    if (*n < MAX_FEATURES) f[(*n)++] = (struct feat){idx, w};
}

/* Character n-grams of "^stem$", counted by UTF-8 characters. */
static void char_ngrams(const char *s, uint32_t mask, struct feat *f, uint32_t *n)
{
    size_t len = strlen(s);
    size_t starts[MK_KB_MAX_TERM_BYTES + 3];
    char word[MK_KB_MAX_TERM_BYTES + 3];
    size_t wl = 0, nc = 0;
    word[wl++] = '^';
    memcpy(word + wl, s, len < MK_KB_MAX_TERM_BYTES ? len : MK_KB_MAX_TERM_BYTES);
    wl += len < MK_KB_MAX_TERM_BYTES ? len : MK_KB_MAX_TERM_BYTES;
    word[wl++] = '$';
    for (size_t i = 0; i < wl; i++)
        if (((unsigned char)word[i] & 0xC0) != 0x80) starts[nc++] = i;
    starts[nc] = wl;
    for (size_t g = 3; g <= 4; g++)
        for (size_t i = 0; i + g <= nc; i++) {
            uint64_t h = fnv_start((char)('0' + g));
            h = fnv(h, word + starts[i], starts[i + g] - starts[i]);
            push(f, n, row_of(h, mask), 0.5f);
        }
}

/* Fills v->f / v->n (sorted, merged, log-damped, unit L2 norm) and v->dense. */
static int featurize(const mk_desk_classifier *c, const char *text, size_t len, struct fvec *v, struct feat *scratch)
{
    if (len > MK_DESK_CLASSIFIER_MAX_TEXT_BYTES) len = MK_DESK_CLASSIFIER_MAX_TEXT_BYTES;
    struct terms t = {0};
    int rc = mk_kb_tokenize(c->tok, text ? text : "", len, collect_term, &t);
    if (rc < 0) {
        free(t.buf);
        return rc;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < t.n; i++) {
        const char *s = t.buf + t.off[i];
        push(scratch, &n, row_of(fnv(fnv_start('u'), s, strlen(s)), c->rows_mask), 1.0f);
        if (i > 0) {
            const char *p = t.buf + t.off[i - 1];
            uint64_t h = fnv(fnv_start('b'), p, strlen(p));
            h = fnv(h, " ", 1);
            h = fnv(h, s, strlen(s));
            push(scratch, &n, row_of(h, c->rows_mask), 1.0f);
        }
        char_ngrams(s, c->rows_mask, scratch, &n);
    }
    /* A message with no word at all still gets one feature, so it has a vector. */
    if (n == 0) push(scratch, &n, row_of(fnv_start('e'), c->rows_mask), 1.0f);
    free(t.buf);
    qsort(scratch, n, sizeof *scratch, cmp_feat);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m > 0 && scratch[m - 1].idx == scratch[i].idx) scratch[m - 1].val += scratch[i].val;
        else scratch[m++] = scratch[i];
    }
    double norm = 0;
    for (uint32_t i = 0; i < m; i++) {
        /* Repeats count less and less: the third "printer" says little more than the first. */
        if (scratch[i].val > 1.0f) scratch[i].val = (float)(1.0 + log(scratch[i].val));
        norm += (double)scratch[i].val * scratch[i].val;
    }
    norm = norm > 0 ? 1.0 / sqrt(norm) : 1.0;
    for (uint32_t i = 0; i < m; i++) scratch[i].val = (float)(scratch[i].val * norm);
    v->f = malloc((m ? m : 1) * sizeof *v->f);
    if (!v->f) return MK_ENOMEM;
    memcpy(v->f, scratch, m * sizeof *v->f);
    v->n = m;
    v->dense = NULL;
    if (c->dense_weight > 0) {
        v->dense = malloc(c->dim * sizeof *v->dense);
        if (!v->dense) {
            free(v->f);
            v->f = NULL;
            return MK_ENOMEM;
        }
        rc = mk_embed_text(c->embedder, text ? text : "", len, v->dense);
        if (rc) {
            free(v->f);
            free(v->dense);
            v->f = NULL;
            v->dense = NULL;
            return rc;
        }
        for (uint32_t d = 0; d < c->dim; d++) v->dense[d] *= (float)c->dense_weight;
    }
    return 0;
}

static void fvec_release(struct fvec *v)
{
    free(v->f);
    free(v->dense);
    v->f = NULL;
    v->dense = NULL;
}

/* logits[k] = scale * (w . x) + bias */
static void logits_of(const mk_desk_classifier *c, const struct fvec *v, double *out)
{
    size_t C = c->nclasses;
    for (size_t k = 0; k < C; k++) out[k] = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        const float *row = c->w + (size_t)v->f[i].idx * C;
        double x = v->f[i].val;
        for (size_t k = 0; k < C; k++) out[k] += x * row[k];
    }
    if (v->dense) {
        for (uint32_t d = 0; d < c->dim; d++) {
            const float *row = c->wd + (size_t)d * C;
            double x = v->dense[d];
            for (size_t k = 0; k < C; k++) out[k] += x * row[k];
        }
    }
    for (size_t k = 0; k < C; k++) out[k] = out[k] * c->scale + c->bias[k];
}

static void softmax(double *z, size_t n)
{
    double mx = z[0], sum = 0;
    for (size_t k = 1; k < n; k++)
        if (z[k] > mx) mx = z[k];
    for (size_t k = 0; k < n; k++) {
        z[k] = exp(z[k] - mx);
        sum += z[k];
    }
    for (size_t k = 0; k < n; k++) z[k] /= sum;
}

/* ---- training -------------------------------------------------------------------------- */

static void fold_scale(mk_desk_classifier *c)
{
    size_t nw = ((size_t)c->rows_mask + 1) * c->nclasses;
    for (size_t i = 0; i < nw; i++) c->w[i] = (float)(c->w[i] * c->scale);
    if (c->wd)
        for (size_t i = 0; i < (size_t)c->dim * c->nclasses; i++) c->wd[i] = (float)(c->wd[i] * c->scale);
    c->scale = 1.0;
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void sgd_step(mk_desk_classifier *c, const struct fvec *v, int y, double eta, double l2, double *p)
{
    size_t C = c->nclasses;
    logits_of(c, v, p);
    softmax(p, C);
    p[y] -= 1.0; /* p is now the gradient of the loss wrt the logits */
    c->scale *= 1.0 - eta * l2;
    if (c->scale < MIN_SCALE) fold_scale(c);
    double step = eta / c->scale;
    for (uint32_t i = 0; i < v->n; i++) {
        float *row = c->w + (size_t)v->f[i].idx * C;
        double x = v->f[i].val * step;
        for (size_t k = 0; k < C; k++) row[k] -= (float)(x * p[k]);
    }
    if (v->dense)
        for (uint32_t d = 0; d < c->dim; d++) {
            float *row = c->wd + (size_t)d * C;
            double x = v->dense[d] * step;
            for (size_t k = 0; k < C; k++) row[k] -= (float)(x * p[k]);
        }
    for (size_t k = 0; k < C; k++) c->bias[k] -= (float)(eta * p[k]);
}

static uint32_t pick_hash_bits(size_t nclasses)
{
    uint32_t bits = 18;
    while (bits > MIN_HASH_BITS && ((size_t)1 << bits) * nclasses > MAX_TABLE_FLOATS) bits--;
    return bits;
}

void mk_desk_classifier_free(mk_desk_classifier *c)
{
    if (!c) return;
    free(c->w);
    free(c->wd);
    free(c->bias);
    mk_embedder_free(c->embedder);
    mk_kb_free(c->tok);
    free(c);
}

int mk_desk_classifier_train(const char *const *texts, const int *labels, size_t n, size_t nclasses,
                             const struct mk_desk_classifier_opts *opts, mk_desk_classifier **out)
{
    if (out) *out = NULL;
    if (!texts || !labels || !out || n == 0 || n > MK_DESK_CLASSIFIER_MAX_EXAMPLES || nclasses < 2 ||
        nclasses > MK_DESK_CLASSIFIER_MAX_CLASSES)
        return MK_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= nclasses || !texts[i]) return MK_EINVAL;
    struct mk_desk_classifier_opts o = opts ? *opts : (struct mk_desk_classifier_opts){0};
    if (o.hash_bits && (o.hash_bits < MIN_HASH_BITS || o.hash_bits > MAX_HASH_BITS)) return MK_EINVAL;
    uint32_t epochs = o.epochs ? o.epochs : 12;
    double eta0 = o.learning_rate > 0 ? o.learning_rate : 0.5;
    double l2 = o.l2 > 0 ? o.l2 : 1e-5;
    uint64_t seed = o.seed ? o.seed : 0x6d61796b;

    mk_desk_classifier *c = calloc(1, sizeof *c);
    if (!c) return MK_ENOMEM;
    c->nclasses = nclasses;
    c->scale = 1.0;
    c->dense_weight = o.dense_weight == 0 ? 1.5 : o.dense_weight;
    uint32_t bits = o.hash_bits ? o.hash_bits : pick_hash_bits(nclasses);
    c->rows_mask = (1u << bits) - 1;
    int rc = MK_ENOMEM;
    c->tok = mk_kb_new();
    c->w = calloc(((size_t)c->rows_mask + 1) * nclasses, sizeof *c->w);
    c->bias = calloc(nclasses, sizeof *c->bias);
    if (!c->tok || !c->w || !c->bias) goto fail;
    if (c->dense_weight > 0) {
        struct mk_embed_options eo = {.lossy_utf8 = true};
        if ((rc = mk_embedder_new(&eo, &c->embedder)) != 0) goto fail;
        c->dim = mk_embedder_dim(c->embedder);
        rc = MK_ENOMEM;
        if (!(c->wd = calloc((size_t)c->dim * nclasses, sizeof *c->wd))) goto fail;
    }

    struct fvec *vs = calloc(n, sizeof *vs);
    size_t *order = malloc(n * sizeof *order);
    struct feat *scratch = malloc(MAX_FEATURES * sizeof *scratch);
    double *p = malloc(nclasses * sizeof *p);
    rc = (vs && order && scratch && p) ? 0 : MK_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) rc = featurize(c, texts[i], strlen(texts[i]), &vs[i], scratch);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) order[i] = i;
        uint64_t rs = seed;
        for (uint32_t e = 0; e < epochs; e++) {
            for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
                size_t j = (size_t)(next_rand(&rs) % (i + 1));
                size_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            /* The step shrinks per epoch: big moves first, then settling. */
            double eta = eta0 / (1.0 + e);
            for (size_t i = 0; i < n; i++) sgd_step(c, &vs[order[i]], labels[order[i]], eta, l2, p);
        }
        fold_scale(c);
    }
    if (vs)
        for (size_t i = 0; i < n; i++) fvec_release(&vs[i]);
    free(vs);
    free(order);
    free(scratch);
    free(p);
    if (rc) goto fail;
    *out = c;
    return 0;
fail:
    mk_desk_classifier_free(c);
    return rc;
}

size_t mk_desk_classifier_classes(const mk_desk_classifier *c) { return c ? c->nclasses : 0; }

int mk_desk_classifier_predict(const mk_desk_classifier *c, const char *text, size_t len, double *probs)
{
    if (!c || !probs || (!text && len > 0)) return MK_EINVAL;
    struct feat *scratch = malloc(MAX_FEATURES * sizeof *scratch);
    if (!scratch) return MK_ENOMEM;
    struct fvec v;
    int rc = featurize(c, text, len, &v, scratch);
    free(scratch);
    if (rc) return rc;
    logits_of(c, &v, probs);
    fvec_release(&v);
    softmax(probs, c->nclasses);
    int best = 0;
    for (size_t k = 1; k < c->nclasses; k++)
        if (probs[k] > probs[best]) best = (int)k;
    return best;
}
