/*
 * mk_kb_search: ranking — BM25 over the inverted index, cosine over the chunk vectors,
 * and reciprocal rank fusion of the two.
 *
 * BM25 (Robertson/Spärck Jones with the non-negative idf of Lucene):
 *   idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
 *   score(c, q) = sum over t in q of idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b |c| / avgdl))
 * with k1 = 1.2, b = 0.75 and |c| the number of terms in the chunk (title and heading
 * included). Repeated query terms count once: questions repeat words by accident.
 * Statistics cover the live chunks that pass the filters (language, agent) only.
 *
 * Why fusion by rank rather than by score: BM25 scores are unbounded and depend on the
 * query's length, cosine similarities of our hashed embedder sit in a narrow band that
 * depends on the text's length; no fixed mix of the two numbers is right for every
 * query, while ranks are comparable as they are (Cormack et al., SIGIR 2009). The two
 * rankers fail differently — BM25 on paraphrases and word forms the stemmer misses,
 * the embedder on rare exact terms — which is what fusion needs.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "embed/mk_embed.h"
#include "kb/mk_kb_int.h"
#include "vector/mk_vector.h"

#define BM25_K1 1.2
#define BM25_B 0.75

static void fill_hit(const mk_kb *kb, size_t ci, double score, double coverage, struct mk_kb_hit *h)
{
    const struct kb_chunk *c = &kb->chunks[ci];
    const struct kb_doc *d = &kb->docs[c->doc];
    *h = (struct mk_kb_hit){
        .score = score, .coverage = coverage, .chunk_index = ci, .doc_index = c->doc,
        .doc_id = d->id, .lang = d->lang, .title = d->title, .section = c->section,
        .text = c->text, .source = d->source, .agent = d->agent, .chunk_lang = c->lang,
        .position = c->position, .page = c->page, .offset = c->offset,
    };
}

bool mk_kb_chunk(const mk_kb *kb, size_t chunk_index, struct mk_kb_hit *out)
{
    if (!kb || !out)
        return false;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    bool ok = chunk_index < kb->nchunks;
    if (ok)
        fill_hit(kb, chunk_index, 0, 0, out);
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return ok;
}

/* --- query terms ------------------------------------------------------------------------ */

struct qterms {
    char *s[MK_KB_MAX_QUERY_TERMS];
    size_t n;
};

static int collect_query_term(void *arg, const char *term, size_t len)
{
    struct qterms *q = arg;
    if (q->n >= MK_KB_MAX_QUERY_TERMS)
        return 0;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->s[i], term) == 0)
            return 0;
    char *d = malloc(len + 1);
    if (!d)
        return MK_ENOMEM;
    memcpy(d, term, len);
    d[len] = '\0';
    q->s[q->n++] = d;
    return 0;
}

static void qterms_release(struct qterms *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->s[i]);
    q->n = 0;
}

/* Russian (and Kazakh) word formation defeats suffix stemming in exactly the pairs
 * support questions contain: the verb in the question, the noun in the article
 * (подключиться -> "подключ", подключение -> "подключен"; обновить -> "обнов",
 * обновление -> "обновлен"; настроить / настройка). So for a Cyrillic query term,
 * index terms that extend it or that it extends by at most MORPH_MAX_EXTRA letters
 * count as the same term, when the shorter of the two has at least MORPH_MIN_STEM
 * letters (short stems would conflate unrelated words). English stems are left exact:
 * there a prefix is usually a different word (mail / mailbox). */
#define MORPH_MIN_STEM 4
#define MORPH_MAX_EXTRA 3
#define MAX_VARIANTS 16

static size_t count_cp(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static bool starts_cyrillic(const char *s)
{
    unsigned char c = (unsigned char)s[0];
    return c >= 0xD0 && c <= 0xD3; /* lead bytes of U+0400..U+04FF */
}

static bool morph_variant(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen > blen) {
        const char *ts = a; a = b; b = ts;
        size_t tl = alen; alen = blen; blen = tl;
    }
    if (alen == blen || memcmp(a, b, alen) != 0)
        return false;
    size_t ca = count_cp(a, alen);
    return ca >= MORPH_MIN_STEM && count_cp(b, blen) - ca <= MORPH_MAX_EXTRA;
}

/* Term ids counting as the query term `s`: itself when indexed, plus its Cyrillic
 * morphological variants. Returns how many were written to var[]. */
static size_t find_variants(const mk_kb *kb, const char *s, long var[MAX_VARIANTS])
{
    size_t len = strlen(s), n = 0;
    long id = mk_kb__find_term(kb, s, len, mk_kb__hash(s, len));
    if (id >= 0)
        var[n++] = id;
    if (!starts_cyrillic(s) || count_cp(s, len) < MORPH_MIN_STEM)
        return n;
    for (size_t i = 0; i < kb->nterms && n < MAX_VARIANTS; i++) {
        const char *t = kb->terms[i].s;
        if ((long)i != id && t[0] == s[0] && t[1] == s[1] && morph_variant(s, len, t, strlen(t)))
            var[n++] = (long)i;
    }
    return n;
}

/* --- BM25 ------------------------------------------------------------------------------ */

struct cand {
    uint32_t chunk;
    double score;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->chunk > y->chunk) - (x->chunk < y->chunk);
}

struct filter {
    const char *lang;   /* NULL = any */
    const char *agent;  /* NULL = any; else this agent's and shared documents */
};

static bool chunk_ok(const mk_kb *kb, size_t ci, const struct filter *f)
{
    const struct kb_chunk *c = &kb->chunks[ci];
    if (!c->live)
        return false;
    const struct kb_doc *d = &kb->docs[c->doc];
    if (f->lang && strcmp(d->lang, f->lang) != 0)
        return false;
    return !f->agent || !d->agent[0] || strcmp(d->agent, f->agent) == 0;
}

/* One BM25 evaluation: per-chunk scores and matched idf, and the sorted candidates. */
struct bm25 {
    double *score, *matched;
    double idf_sum;
    struct cand *cand;
    size_t ncand;
};

static void bm25_release(struct bm25 *r)
{
    free(r->score);
    free(r->matched);
    free(r->cand);
    memset(r, 0, sizeof *r);
}

/* Scores every chunk passing f for the query terms. Read lock held. */
static int bm25_run(const mk_kb *kb, const struct qterms *q, const struct filter *f, struct bm25 *r)
{
    memset(r, 0, sizeof *r);
    size_t n_in = 0;
    uint64_t len_in = 0;
    if (!f->lang && !f->agent) {
        n_in = kb->live_chunks;
        len_in = kb->live_terms;
    } else {
        for (size_t i = 0; i < kb->nchunks; i++)
            if (chunk_ok(kb, i, f)) {
                n_in++;
                len_in += kb->chunks[i].nterms;
            }
    }
    if (n_in == 0 || len_in == 0 || q->n == 0)
        return 0;
    double *tfacc = NULL;
    uint32_t *touched = NULL;
    int rc = 0;
    r->score = calloc(kb->nchunks, sizeof *r->score);
    r->matched = calloc(kb->nchunks, sizeof *r->matched);
    tfacc = calloc(kb->nchunks, sizeof *tfacc);
    touched = malloc(kb->nchunks * sizeof *touched);
    if (!r->score || !r->matched || !tfacc || !touched) {
        rc = MK_ENOMEM;
        goto out;
    }
    double N = (double)n_in;
    double avgdl = (double)len_in / N;
    for (size_t i = 0; i < q->n; i++) {
        long var[MAX_VARIANTS];
        size_t nvar = find_variants(kb, q->s[i], var);
        /* Sum the variants' term frequencies per chunk: the variants are one term. */
        size_t ntouched = 0;
        for (size_t v = 0; v < nvar; v++) {
            const struct kb_term *t = &kb->terms[var[v]];
            for (size_t j = 0; j < t->npost; j++) {
                uint32_t c = t->post[j].chunk;
                if (!chunk_ok(kb, c, f))
                    continue;
                if (tfacc[c] == 0)
                    touched[ntouched++] = c;
                tfacc[c] += t->post[j].tf;
            }
        }
        double df = (double)ntouched;
        double idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        r->idf_sum += idf;
        for (size_t j = 0; j < ntouched; j++) {
            uint32_t c = touched[j];
            double tf = tfacc[c];
            double dl = kb->chunks[c].nterms;
            r->score[c] += idf * tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * (1.0 - BM25_B + BM25_B * dl / avgdl));
            r->matched[c] += idf;
            tfacc[c] = 0;
        }
    }
    size_t ncand = 0;
    for (size_t i = 0; i < kb->nchunks; i++)
        ncand += r->score[i] > 0;
    if (ncand == 0)
        goto out;
    r->cand = malloc(ncand * sizeof *r->cand);
    if (!r->cand) {
        rc = MK_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < kb->nchunks; i++)
        if (r->score[i] > 0)
            r->cand[r->ncand++] = (struct cand){(uint32_t)i, r->score[i]};
    qsort(r->cand, r->ncand, sizeof *r->cand, cmp_cand);
out:
    free(tfacc);
    free(touched);
    if (rc)
        bm25_release(r);
    return rc;
}

static double coverage_of(const struct bm25 *r, size_t c)
{
    if (!r->matched || r->idf_sum <= 0)
        return 0;
    double cov = r->matched[c] / r->idf_sum;
    return cov > 1 ? 1 : cov;
}

/* The language a query is read in: the filter's, else its own detected one. */
static const char *query_lang(const char *query, size_t qlen, const char *lang)
{
    if (lang)
        return lang;
    const char *d = mk_kb_detect_language(query, qlen);
    return strcmp(d, "und") == 0 ? NULL : d;
}

/* Kazakh written without its own letters ("хаттарымды жою") reads as Russian, and the
 * Russian stemmer then misses Kazakh documents. When such a query (no language filter,
 * detected Russian) matches nothing, it is read once more as Kazakh. */
static bool kazakh_retry(const char *query, size_t qlen, const char *lang)
{
    return !lang && strcmp(mk_kb_detect_language(query, qlen), "ru") == 0;
}

int mk_kb_search(mk_kb *kb, const char *query, const char *lang, size_t k, struct mk_kb_hit *results)
{
    if (!kb || !query || (k && !results) || k > MK_KB_MAX_K)
        return MK_EINVAL;
    if (lang && !*lang)
        lang = NULL;
    size_t qlen = strnlen(query, MK_KB_MAX_QUERY_BYTES);
    qlen = mk_utf8_complete_prefix(query, qlen);

    struct qterms q = {.n = 0};
    int rc = mk_kb_tokenize_lang(kb, query, qlen, query_lang(query, qlen, lang), collect_query_term, &q);
    if (rc || q.n == 0 || k == 0) {
        qterms_release(&q);
        return rc;
    }
    struct filter f = {.lang = lang};
    struct bm25 r;
    pthread_rwlock_rdlock(&kb->lock);
    rc = bm25_run(kb, &q, &f, &r);
    if (rc == 0 && r.ncand == 0 && kazakh_retry(query, qlen, lang)) {
        pthread_rwlock_unlock(&kb->lock);
        qterms_release(&q);
        bm25_release(&r);
        rc = mk_kb_tokenize_lang(kb, query, qlen, "kk", collect_query_term, &q);
        pthread_rwlock_rdlock(&kb->lock);
        if (rc == 0)
            rc = bm25_run(kb, &q, &f, &r);
    }
    if (rc == 0) {
        size_t nout = r.ncand < k ? r.ncand : k;
        for (size_t i = 0; i < nout; i++)
            fill_hit(kb, r.cand[i].chunk, r.cand[i].score, coverage_of(&r, r.cand[i].chunk), &results[i]);
        rc = (int)nout;
    }
    pthread_rwlock_unlock(&kb->lock);
    bm25_release(&r);
    qterms_release(&q);
    return rc;
}

/* --- reciprocal rank fusion ------------------------------------------------------------- */

struct rrf_entry {
    uint64_t id;
    size_t list, rank;
    double score;
};

static int cmp_entry_id(const void *a, const void *b)
{
    const struct rrf_entry *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    if (x->list != y->list)
        return x->list < y->list ? -1 : 1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

static int cmp_entry_score(const void *a, const void *b)
{
    const struct rrf_entry *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

int mk_kb_rrf(const uint64_t *const *lists, const size_t *lens, const double *weights, size_t nlists, double k,
              uint64_t *out_ids, double *out_scores, size_t cap)
{
    if ((nlists && (!lists || !lens)) || !(k >= 0) || !isfinite(k) || (cap && (!out_ids || !out_scores)))
        return MK_EINVAL;
    size_t total = 0;
    for (size_t l = 0; l < nlists; l++) {
        if (lens[l] && !lists[l])
            return MK_EINVAL;
        if (weights && (!isfinite(weights[l]) || weights[l] < 0))
            return MK_EINVAL;
        if (lens[l] > SIZE_MAX / sizeof(struct rrf_entry) - total)
            return MK_ETOOBIG;
        total += lens[l];
    }
    if (total == 0 || cap == 0)
        return 0;
    struct rrf_entry *e = malloc(total * sizeof *e);
    if (!e)
        return MK_ENOMEM;
    size_t n = 0;
    for (size_t l = 0; l < nlists; l++)
        for (size_t r = 0; r < lens[l]; r++)
            e[n++] = (struct rrf_entry){lists[l][r], l, r + 1, 0};
    qsort(e, n, sizeof *e, cmp_entry_id);
    /* Merge runs of one id: each list counts once, at its best (first) rank. */
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double s = 0;
        while (j < n && e[j].id == e[i].id) {
            if (j == i || e[j].list != e[j - 1].list) {
                double w = weights ? weights[e[j].list] : 1.0;
                s += w / (k + (double)e[j].rank);
            }
            j++;
        }
        e[m++] = (struct rrf_entry){e[i].id, 0, 0, s};
        i = j;
    }
    qsort(e, m, sizeof *e, cmp_entry_score);
    size_t out = m < cap ? m : cap;
    for (size_t i = 0; i < out; i++) {
        out_ids[i] = e[i].id;
        out_scores[i] = e[i].score;
    }
    free(e);
    return out > INT32_MAX ? INT32_MAX : (int)out;
}

/* --- hybrid ------------------------------------------------------------------------------ */

struct pred_arg {
    const mk_kb *kb;
    const char *agent;
};

static bool agent_pred(uint64_t key, uint32_t ns, uint64_t meta, void *arg)
{
    const struct pred_arg *pa = arg;
    if (meta >= pa->kb->ndocs)
        return false;
    const struct kb_doc *d = &pa->kb->docs[meta];
    return d->live && (!d->agent[0] || strcmp(d->agent, pa->agent) == 0);
}

static double dot(const float *a, const float *b, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

int mk_kb_search_hybrid(mk_kb *kb, const char *query, const struct mk_kb_search_opts *o, struct mk_kb_result *out,
                        struct mk_kb_confidence *conf)
{
    if (conf)
        memset(conf, 0, sizeof *conf);
    if (!kb || !query || !o || !out || o->k == 0 || o->k > MK_KB_MAX_K || o->mode > MK_KB_VECTOR)
        return MK_EINVAL;
    if (o->rrf_k < 0 || !isfinite(o->rrf_k))
        return MK_EINVAL;
    double rrf_k = o->rrf_k > 0 ? o->rrf_k : MK_KB_DEFAULT_RRF_K;
    double wb = o->w_bm25, wv = o->w_vector;
    if (!(wb >= 0) || !(wv >= 0) || !isfinite(wb) || !isfinite(wv) || !isfinite(rrf_k))
        return MK_EINVAL;
    if (wb == 0 && wv == 0)
        wb = wv = 1;
    size_t depth = o->depth ? o->depth : MK_KB_DEFAULT_DEPTH;
    if (depth > MK_KB_MAX_K)
        depth = MK_KB_MAX_K;
    if (depth < o->k)
        depth = o->k;
    struct filter f = {.lang = o->lang && o->lang[0] ? o->lang : NULL, .agent = o->agent && o->agent[0] ? o->agent : NULL};

    size_t qlen = strnlen(query, MK_KB_MAX_QUERY_BYTES);
    qlen = mk_utf8_complete_prefix(query, qlen);
    const char *qlang = query_lang(query, qlen, f.lang);
    if (conf)
        conf->query_lang = qlang ? qlang : "und";

    pthread_rwlock_rdlock(&kb->lock);
    const struct mk_embedder *emb = kb->emb;
    uint32_t dim = kb->dim;
    pthread_rwlock_unlock(&kb->lock);
    bool use_bm25 = o->mode != MK_KB_VECTOR;
    bool use_vec = o->mode != MK_KB_BM25 && emb;
    if (o->mode == MK_KB_VECTOR && !emb)
        return MK_EINVAL;

    struct qterms q = {.n = 0};
    float *qv = NULL, *cv = NULL;
    uint64_t *lb = NULL, *lv = NULL, *ids = NULL;
    double *fs = NULL, *vsim = NULL;
    mk_vector_hit *vh = NULL;
    struct bm25 r = {0};
    int rc = 0;
    /* A query without a single index term (empty, punctuation, only stop words) asks
     * nothing: the vector of "no words" would still have neighbours, so say so here. */
    if ((rc = mk_kb_tokenize_lang(kb, query, qlen, qlang, collect_query_term, &q)) != 0 || q.n == 0)
        goto done;
    if (use_vec) {
        qv = malloc(dim * sizeof *qv);
        cv = malloc(dim * sizeof *cv);
        if (!qv || !cv) {
            rc = MK_ENOMEM;
            goto done;
        }
        /* Embedding needs no kb lock: the embedder is immutable. Invalid bytes in a
         * query act as spaces, as they do for BM25. */
        char *clean = malloc(qlen + 1);
        if (!clean) {
            rc = MK_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < qlen;) {
            size_t n = mk_utf8_valid_prefix(query + i, qlen - i);
            if (n == 0) {
                clean[i++] = ' ';
                continue;
            }
            memcpy(clean + i, query + i, n);
            i += n;
        }
        rc = mk_embed_text(emb, clean, qlen, qv);
        free(clean);
        if (rc)
            goto done;
    }
    lb = malloc(depth * sizeof *lb);
    lv = malloc(depth * sizeof *lv);
    vsim = malloc(depth * sizeof *vsim);
    vh = malloc(depth * sizeof *vh);
    ids = malloc(2 * depth * sizeof *ids);
    fs = malloc(2 * depth * sizeof *fs);
    if (!lb || !lv || !vsim || !vh || !ids || !fs) {
        rc = MK_ENOMEM;
        goto done;
    }

    pthread_rwlock_rdlock(&kb->lock);
    size_t nb = 0, nv = 0;
    if (use_bm25 && (rc = bm25_run(kb, &q, &f, &r)) == 0 && r.ncand == 0 && kazakh_retry(query, qlen, f.lang)) {
        pthread_rwlock_unlock(&kb->lock);
        qterms_release(&q);
        bm25_release(&r);
        rc = mk_kb_tokenize_lang(kb, query, qlen, "kk", collect_query_term, &q);
        pthread_rwlock_rdlock(&kb->lock);
        if (rc == 0)
            rc = bm25_run(kb, &q, &f, &r);
    }
    if (use_bm25 && rc == 0) {
        nb = r.ncand < depth ? r.ncand : depth;
        for (size_t i = 0; i < nb; i++)
            lb[i] = r.cand[i].chunk;
    }
    if (!rc && use_vec && kb->vix) {
        mk_vector_filter vf = {0};
        struct pred_arg pa = {kb, f.agent};
        if (f.lang) {
            vf.use_ns = true;
            vf.ns = mk_kb__lang_ns(f.lang);
        }
        if (f.agent) {
            vf.pred = agent_pred;
            vf.pred_arg = &pa;
        }
        mk_vector_search_opts so = {.ef = depth > 64 ? (uint32_t)depth : 64, .filter = &vf};
        size_t got = 0;
        rc = mk_vector_search(kb->vix, qv, dim, (uint32_t)depth, &so, vh, &got);
        for (size_t i = 0; !rc && i < got; i++) {
            /* The namespace is a 32-bit hash of the language: check the real one. */
            if (vh[i].key >= kb->nchunks || !chunk_ok(kb, (size_t)vh[i].key, &f))
                continue;
            lv[nv] = vh[i].key;
            vsim[nv++] = 1.0 - vh[i].distance;
        }
    }
    int nf = 0;
    if (!rc) {
        const uint64_t *lists[2] = {lb, lv};
        size_t lens[2] = {nb, nv};
        double w[2] = {use_bm25 ? wb : 0, use_vec ? wv : 0};
        nf = mk_kb_rrf(lists, lens, w, 2, rrf_k, ids, fs, 2 * depth);
        if (nf < 0)
            rc = nf;
    }
    size_t nout = 0;
    double maxf = ((use_bm25 ? wb : 0) + (use_vec ? wv : 0)) / (rrf_k + 1.0);
    for (int i = 0; !rc && i < nf && nout < o->k; i++) {
        size_t c = (size_t)ids[i];
        if (o->max_per_doc) {
            unsigned same = 0;
            for (size_t j = 0; j < nout; j++)
                same += out[j].hit.doc_index == kb->chunks[c].doc;
            if (same >= o->max_per_doc)
                continue;
        }
        struct mk_kb_result *res = &out[nout++];
        memset(res, 0, sizeof *res);
        fill_hit(kb, c, fs[i], coverage_of(&r, c), &res->hit);
        res->fused = fs[i];
        res->bm25 = r.score ? r.score[c] : 0;
        for (size_t j = 0; j < nb; j++)
            if (lb[j] == c) {
                res->bm25_rank = (unsigned)j + 1;
                break;
            }
        for (size_t j = 0; j < nv; j++)
            if (lv[j] == c) {
                res->vector_rank = (unsigned)j + 1;
                res->vector = vsim[j];
                break;
            }
        if (use_vec && !res->vector_rank && mk_vector_get(kb->vix, c, cv, dim, NULL) == 0)
            res->vector = dot(qv, cv, dim);
    }
    if (!rc && conf && nout > 0) {
        conf->top_fused = maxf > 0 ? out[0].fused / maxf : 0;
        conf->top_bm25 = out[0].bm25;
        conf->top_coverage = out[0].hit.coverage;
        conf->top_vector = out[0].vector;
        for (size_t j = 0; j < nout; j++)
            if (out[j].hit.coverage > conf->max_coverage)
                conf->max_coverage = out[j].hit.coverage;
        /* Margin to the best chunk of any other document, in the full fused list. */
        double second = 0;
        for (int i = 0; i < nf; i++)
            if (kb->chunks[ids[i]].doc != out[0].hit.doc_index) {
                second = fs[i];
                break;
            }
        conf->margin = maxf > 0 ? (out[0].fused - second) / maxf : 0;
        conf->agree = nb > 0 && nv > 0 && kb->chunks[lb[0]].doc == kb->chunks[lv[0]].doc;
        if (!use_vec || !use_bm25)
            conf->agree = true;
    }
    pthread_rwlock_unlock(&kb->lock);
    if (!rc)
        rc = (int)nout;
done:
    bm25_release(&r);
    qterms_release(&q);
    free(qv);
    free(cv);
    free(lb);
    free(lv);
    free(vsim);
    free(vh);
    free(ids);
    free(fs);
    return rc;
}
