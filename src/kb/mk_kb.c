/*
 * mk_kb: documents, chunks and the BM25 inverted index.
 *
 * Layout: arrays of documents and chunks (append-only, so indices are stable ids),
 * and a term dictionary (open-addressing hash of term -> term id) whose entries own
 * a postings list of (chunk, term frequency). Chunks are appended in increasing
 * order, so every postings list is sorted by chunk without any sorting.
 *
 * Adding a document is all-or-nothing: everything it needs (copies, new terms, room
 * in every array and postings list) is allocated first, and only then is the index
 * changed, by steps that cannot fail. A failed add leaves the kb as it was.
 *
 * Scoring (Robertson/Spärck Jones BM25 with the non-negative idf of Lucene):
 *   idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
 *   score(c, q) = sum over t in q of idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b |c| / avgdl))
 * with k1 = 1.2, b = 0.75 and |c| the number of terms in the chunk (title and heading
 * included). Repeated query terms count once: questions repeat words by accident.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"
#include "kb/mk_kb_int.h"

#define BM25_K1 1.2
#define BM25_B 0.75
/* A section heading names the task its steps perform ("Reset a forgotten password"),
 * so its words count this many times: it picks the right section within an article,
 * where the title (shared by all of them) cannot. */
#define HEADING_WEIGHT 2

struct kb_doc {
    char *id, *lang, *title, *source;
    size_t first_chunk, nchunks;
};

struct kb_chunk {
    size_t doc;
    char *section;
    char *text;
    uint32_t nterms;    /* length for BM25 */
};

struct kb_posting {
    uint32_t chunk;
    uint32_t tf;
};

struct kb_term {
    char *s;
    uint64_t hash;
    struct kb_posting *post;
    size_t npost, cap;
};

struct mk_kb {
    pthread_rwlock_t lock;        /* write: add; read: search and accessors */
    pthread_mutex_t tok_lock;     /* the stemmers are not reentrant */
    struct mk_kb__tokenizer tok;

    struct kb_doc *docs;
    size_t ndocs, capdocs;
    struct kb_chunk *chunks;
    size_t nchunks, capchunks;
    struct kb_term *terms;
    size_t nterms, capterms;
    uint32_t *table;              /* term id + 1; 0 = empty slot */
    size_t table_cap;             /* power of two, load kept <= 1/2 */
};

/* --- small helpers ---------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: short keys, no adversary control over the index */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dup_s(const char *s) { return dup_n(s, strlen(s)); }

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return MK_ENOMEM;
        nc *= 2;
    }
    void *p = realloc(*arr, nc * elem);
    if (!p)
        return MK_ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

/* Term id, or -1 when absent. */
static long find_term(const mk_kb *kb, const char *s, size_t len, uint64_t h)
{
    if (!kb->table_cap)
        return -1;
    size_t mask = kb->table_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = kb->table[i];
        if (v == 0)
            return -1;
        const struct kb_term *t = &kb->terms[v - 1];
        if (t->hash == h && strlen(t->s) == len && memcmp(t->s, s, len) == 0)
            return (long)(v - 1);
    }
}

static void table_put(uint32_t *table, size_t cap, uint64_t h, uint32_t id)
{
    size_t mask = cap - 1;
    size_t i = (size_t)h & mask;
    while (table[i])
        i = (i + 1) & mask;
    table[i] = id + 1;
}

/* Makes the hash table big enough for `n` terms (load <= 1/2). */
static int reserve_table(mk_kb *kb, size_t n)
{
    if (n > UINT32_MAX - 1)
        return MK_ETOOBIG;
    if (n * 2 <= kb->table_cap)
        return 0;
    size_t cap = kb->table_cap ? kb->table_cap : 64;
    while (cap < n * 2)
        cap *= 2;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return MK_ENOMEM;
    for (size_t i = 0; i < kb->nterms; i++)
        table_put(t, cap, kb->terms[i].hash, (uint32_t)i);
    free(kb->table);
    kb->table = t;
    kb->table_cap = cap;
    return 0;
}

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > MK_MAX_NAME_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool valid_lang(const char *lang)
{
    size_t n = strlen(lang);
    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lang[i] < 'a' || lang[i] > 'z')
            return false;
    return true;
}

/* --- lifecycle -------------------------------------------------------------------- */

mk_kb *mk_kb_new(void)
{
    mk_kb *kb = calloc(1, sizeof *kb);
    if (!kb)
        return NULL;
    if (mk_kb__tokenizer_init(&kb->tok) != 0) {
        free(kb);
        return NULL;
    }
    if (pthread_rwlock_init(&kb->lock, NULL) != 0) {
        mk_kb__tokenizer_release(&kb->tok);
        free(kb);
        return NULL;
    }
    if (pthread_mutex_init(&kb->tok_lock, NULL) != 0) {
        pthread_rwlock_destroy(&kb->lock);
        mk_kb__tokenizer_release(&kb->tok);
        free(kb);
        return NULL;
    }
    return kb;
}

void mk_kb_free(mk_kb *kb)
{
    if (!kb)
        return;
    for (size_t i = 0; i < kb->ndocs; i++) {
        free(kb->docs[i].id);
        free(kb->docs[i].lang);
        free(kb->docs[i].title);
        free(kb->docs[i].source);
    }
    for (size_t i = 0; i < kb->nchunks; i++) {
        free(kb->chunks[i].section);
        free(kb->chunks[i].text);
    }
    for (size_t i = 0; i < kb->nterms; i++) {
        free(kb->terms[i].s);
        free(kb->terms[i].post);
    }
    free(kb->docs);
    free(kb->chunks);
    free(kb->terms);
    free(kb->table);
    mk_kb__tokenizer_release(&kb->tok);
    pthread_mutex_destroy(&kb->tok_lock);
    pthread_rwlock_destroy(&kb->lock);
    free(kb);
}

int mk_kb_tokenize(mk_kb *kb, const char *text, size_t len, mk_kb_term_fn fn, void *arg)
{
    if (!kb)
        return MK_EINVAL;
    pthread_mutex_lock(&kb->tok_lock);
    int rc = mk_kb__tokenize(&kb->tok, text, len, fn, arg);
    pthread_mutex_unlock(&kb->tok_lock);
    return rc;
}

/* --- adding a document ------------------------------------------------------------ */

/* One (term, chunk) occurrence gathered while tokenizing a new document. */
struct occ {
    size_t off;        /* term bytes in pending.terms */
    uint32_t len;
    uint32_t chunk;    /* local chunk number within the document */
};

/* A distinct term of the new document. */
struct uterm {
    size_t first_occ, nocc;     /* its run in the sorted occurrences */
    long id;                    /* existing term id, or -1 */
    uint64_t hash;
    char *s;                    /* new terms: the copy the index will own */
    struct kb_posting *post;    /* new terms: their postings array */
    size_t nchunks;             /* distinct chunks it occurs in */
};

struct pending {
    struct kb_chunk *chunks;
    size_t nchunks, cap;
    mk_buf terms;               /* all term bytes, NUL-separated */
    struct occ *occ;
    size_t nocc, capocc;
    struct uterm *ut;
    size_t nut;
    const char *title;          /* for the indexed text of each chunk */
    size_t title_len;
    mk_kb *kb;
    int err;
};

static int collect_term(void *arg, const char *term, size_t len)
{
    struct pending *p = arg;
    if (grow((void **)&p->occ, &p->capocc, p->nocc + 1, sizeof *p->occ))
        return MK_ENOMEM;
    size_t off = p->terms.len;
    if (mk_buf_append(&p->terms, term, len + 1)) /* with its NUL */
        return MK_ENOMEM;
    p->occ[p->nocc++] = (struct occ){off, (uint32_t)len, (uint32_t)(p->nchunks - 1)};
    p->chunks[p->nchunks - 1].nterms++;
    return 0;
}

static int collect_chunk(void *arg, mk_slice section, mk_slice body)
{
    struct pending *p = arg;
    if (p->nchunks >= UINT32_MAX)
        return MK_ETOOBIG;
    if (grow((void **)&p->chunks, &p->cap, p->nchunks + 1, sizeof *p->chunks))
        return MK_ENOMEM;
    struct kb_chunk *c = &p->chunks[p->nchunks];
    c->section = dup_n(section.ptr, section.len);
    c->text = dup_n(body.ptr, body.len);
    c->nterms = 0;
    c->doc = 0;
    if (!c->section || !c->text) {
        free(c->section);
        free(c->text);
        return MK_ENOMEM;
    }
    p->nchunks++;
    /* The title and the heading are indexed with every chunk: "## Windows" alone says
     * nothing, "How to add a network printer / Windows" does. */
    struct mk_kb__tokenizer *tok = &p->kb->tok;
    int rc = mk_kb__tokenize(tok, p->title, p->title_len, collect_term, p);
    for (int w = 0; w < HEADING_WEIGHT && !rc; w++)
        rc = mk_kb__tokenize(tok, section.ptr, section.len, collect_term, p);
    if (!rc)
        rc = mk_kb__tokenize(tok, body.ptr, body.len, collect_term, p);
    return rc;
}

static int skip_chunk(void *arg, mk_slice section, mk_slice body) { return 0; }

static const char *occ_str(const struct pending *p, const struct occ *o) { return p->terms.data + o->off; }

static int cmp_occ(const void *a, const void *b, void *ctx)
{
    const struct occ *x = a, *y = b;
    int c = strcmp(occ_str(ctx, x), occ_str(ctx, y));
    if (c)
        return c;
    return (x->chunk > y->chunk) - (x->chunk < y->chunk);
}

static void pending_release(struct pending *p)
{
    for (size_t i = 0; i < p->nchunks; i++) {
        free(p->chunks[i].section);
        free(p->chunks[i].text);
    }
    free(p->chunks);
    for (size_t i = 0; i < p->nut; i++) {
        free(p->ut[i].s);
        free(p->ut[i].post);
    }
    free(p->ut);
    free(p->occ);
    mk_buf_release(&p->terms);
}

/* Groups the sorted occurrences into distinct terms and reserves everything the
 * commit needs. */
static int prepare_terms(mk_kb *kb, struct pending *p)
{
    if (p->nocc)
        qsort_r(p->occ, p->nocc, sizeof *p->occ, cmp_occ, p);
    size_t nut = 0;
    for (size_t i = 0; i < p->nocc; i++)
        if (i == 0 || strcmp(occ_str(p, &p->occ[i]), occ_str(p, &p->occ[i - 1])) != 0)
            nut++;
    p->ut = calloc(nut ? nut : 1, sizeof *p->ut);
    if (!p->ut)
        return MK_ENOMEM;
    size_t newterms = 0;
    for (size_t i = 0; i < p->nocc;) {
        struct uterm *u = &p->ut[p->nut++];
        const char *s = occ_str(p, &p->occ[i]);
        size_t len = p->occ[i].len;
        u->first_occ = i;
        size_t j = i;
        while (j < p->nocc && strcmp(occ_str(p, &p->occ[j]), s) == 0) {
            if (j == i || p->occ[j].chunk != p->occ[j - 1].chunk)
                u->nchunks++;
            j++;
        }
        u->nocc = j - i;
        u->hash = hash_bytes(s, len);
        u->id = find_term(kb, s, len, u->hash);
        if (u->id < 0) {
            u->s = dup_n(s, len);
            u->post = malloc(u->nchunks * sizeof *u->post);
            if (!u->s || !u->post)
                return MK_ENOMEM;
            newterms++;
        } else {
            struct kb_term *t = &kb->terms[u->id];
            if (t->npost + u->nchunks > UINT32_MAX)
                return MK_ETOOBIG;
            if (grow((void **)&t->post, &t->cap, t->npost + u->nchunks, sizeof *t->post))
                return MK_ENOMEM;
        }
        i = j;
    }
    if (grow((void **)&kb->terms, &kb->capterms, kb->nterms + newterms, sizeof *kb->terms))
        return MK_ENOMEM;
    return reserve_table(kb, kb->nterms + newterms);
}

/* Appends postings of one distinct term (runs of equal chunk in its occurrences). */
static size_t fill_postings(const struct pending *p, const struct uterm *u, size_t chunk_base,
                            struct kb_posting *out)
{
    size_t n = 0;
    for (size_t k = u->first_occ; k < u->first_occ + u->nocc; k++) {
        uint32_t c = (uint32_t)(chunk_base + p->occ[k].chunk);
        if (n > 0 && out[n - 1].chunk == c)
            out[n - 1].tf++;
        else
            out[n++] = (struct kb_posting){c, 1};
    }
    return n;
}

int mk_kb_add_document(mk_kb *kb, const struct mk_kb_doc *doc)
{
    if (!kb || !doc || !doc->id || !doc->lang || (!doc->text && doc->text_len))
        return MK_EINVAL;
    if (!valid_id(doc->id) || !valid_lang(doc->lang))
        return MK_EINVAL;
    const char *text = doc->text ? doc->text : "";
    size_t text_len = doc->text_len;
    if (text_len > MK_KB_MAX_DOC_BYTES)
        return MK_ETOOBIG;
    if (!mk_utf8_valid(text, text_len) || memchr(text, '\0', text_len))
        return MK_EBADUTF8;
    if (doc->title && !mk_utf8_valid(doc->title, strlen(doc->title)))
        return MK_EBADUTF8;
    if (doc->source && !mk_utf8_valid(doc->source, strlen(doc->source)))
        return MK_EBADUTF8;

    pthread_rwlock_wrlock(&kb->lock);
    int rc = 0;
    struct pending p = {.kb = kb};
    mk_buf_init(&p.terms, 0);
    struct kb_doc d = {0};

    for (size_t i = 0; i < kb->ndocs; i++)
        if (strcmp(kb->docs[i].id, doc->id) == 0 && strcmp(kb->docs[i].lang, doc->lang) == 0) {
            rc = MK_EEXISTS;
            goto out;
        }
    if (kb->ndocs >= MK_KB_MAX_DOCS) {
        rc = MK_ETOOBIG;
        goto out;
    }

    /* The title may come from the text's "# " line, and every chunk indexes it, so
     * find it with a first pass before chunking for real. */
    mk_slice md_title;
    mk_kb__chunk_markdown(text, text_len, &md_title, skip_chunk, NULL);
    const char *title = doc->title;
    size_t title_len = title ? strlen(title) : 0;
    if (!title && md_title.len) {
        title = md_title.ptr;
        title_len = md_title.len;
    } else if (!title) {
        title = doc->id;
        title_len = strlen(doc->id);
    }
    p.title = title;
    p.title_len = title_len;

    d.id = dup_s(doc->id);
    d.lang = dup_s(doc->lang);
    d.title = dup_n(title, title_len);
    if (doc->source) {
        d.source = dup_s(doc->source);
    } else {
        mk_buf b = MK_BUF_INIT;
        if (mk_buf_printf(&b, "kb://%s/%s", doc->lang, doc->id) == 0)
            d.source = mk_buf_steal(&b, NULL);
        mk_buf_release(&b);
    }
    if (!d.id || !d.lang || !d.title || !d.source) {
        rc = MK_ENOMEM;
        goto out;
    }

    pthread_mutex_lock(&kb->tok_lock);
    rc = mk_kb__chunk_markdown(text, text_len, &md_title, collect_chunk, &p);
    pthread_mutex_unlock(&kb->tok_lock);
    if (rc)
        goto out;
    if (kb->nchunks + p.nchunks > UINT32_MAX) {
        rc = MK_ETOOBIG;
        goto out;
    }
    if ((rc = prepare_terms(kb, &p)) != 0)
        goto out;
    if (grow((void **)&kb->docs, &kb->capdocs, kb->ndocs + 1, sizeof *kb->docs) ||
        grow((void **)&kb->chunks, &kb->capchunks, kb->nchunks + p.nchunks, sizeof *kb->chunks)) {
        rc = MK_ENOMEM;
        goto out;
    }

    /* Commit: nothing below can fail. */
    size_t base = kb->nchunks;
    d.first_chunk = base;
    d.nchunks = p.nchunks;
    for (size_t i = 0; i < p.nchunks; i++) {
        kb->chunks[base + i] = p.chunks[i];
        kb->chunks[base + i].doc = kb->ndocs;
    }
    kb->nchunks += p.nchunks;
    p.nchunks = 0; /* ownership moved */
    kb->docs[kb->ndocs++] = d;
    memset(&d, 0, sizeof d);
    for (size_t i = 0; i < p.nut; i++) {
        struct uterm *u = &p.ut[i];
        if (u->id >= 0) {
            struct kb_term *t = &kb->terms[u->id];
            t->npost += fill_postings(&p, u, base, t->post + t->npost);
        } else {
            struct kb_term *t = &kb->terms[kb->nterms];
            t->s = u->s;
            t->hash = u->hash;
            t->post = u->post;
            t->cap = u->nchunks;
            t->npost = fill_postings(&p, u, base, t->post);
            table_put(kb->table, kb->table_cap, t->hash, (uint32_t)kb->nterms);
            kb->nterms++;
            u->s = NULL;
            u->post = NULL;
        }
    }

out:
    pthread_rwlock_unlock(&kb->lock);
    free(d.id);
    free(d.lang);
    free(d.title);
    free(d.source);
    pending_release(&p);
    return rc;
}

/* --- accessors ---------------------------------------------------------------------- */

size_t mk_kb_document_count(const mk_kb *kb)
{
    if (!kb)
        return 0;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    size_t n = kb->ndocs;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return n;
}

size_t mk_kb_chunk_count(const mk_kb *kb)
{
    if (!kb)
        return 0;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    size_t n = kb->nchunks;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return n;
}

static void fill_hit(const mk_kb *kb, size_t ci, double score, double coverage, struct mk_kb_hit *h)
{
    const struct kb_chunk *c = &kb->chunks[ci];
    const struct kb_doc *d = &kb->docs[c->doc];
    *h = (struct mk_kb_hit){
        .score = score, .coverage = coverage, .chunk_index = ci, .doc_index = c->doc,
        .doc_id = d->id, .lang = d->lang, .title = d->title, .section = c->section,
        .text = c->text, .source = d->source,
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

bool mk_kb_document_chunks(const mk_kb *kb, size_t doc_index, size_t *first, size_t *count)
{
    if (!kb || !first || !count)
        return false;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    bool ok = doc_index < kb->ndocs;
    if (ok) {
        *first = kb->docs[doc_index].first_chunk;
        *count = kb->docs[doc_index].nchunks;
    }
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return ok;
}

/* --- search --------------------------------------------------------------------------- */

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
    q->s[q->n] = dup_n(term, len);
    if (!q->s[q->n])
        return MK_ENOMEM;
    q->n++;
    return 0;
}

/* Russian word formation defeats Snowball in exactly the pairs support questions
 * contain: the verb in the question, the noun in the article (подключиться ->
 * "подключ", подключение -> "подключен"; обновить -> "обнов", обновление ->
 * "обновлен"; настроить / настройка). So for a Cyrillic query term, index terms that
 * extend it or that it extends by at most MORPH_MAX_EXTRA letters count as the same
 * term, when the shorter of the two has at least MORPH_MIN_STEM letters (short stems
 * would conflate unrelated words). English stems are left exact: there a prefix
 * is usually a different word (mail / mailbox). */
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

/* Term ids counting as the query term `s`: itself when indexed, plus its Russian
 * morphological variants. Returns how many were written to var[]. */
static size_t find_variants(const mk_kb *kb, const char *s, long var[MAX_VARIANTS])
{
    size_t len = strlen(s), n = 0;
    long id = find_term(kb, s, len, hash_bytes(s, len));
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

static bool chunk_in_lang(const mk_kb *kb, uint32_t ci, const char *lang)
{
    return !lang || strcmp(kb->docs[kb->chunks[ci].doc].lang, lang) == 0;
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
    int rc = mk_kb_tokenize(kb, query, qlen, collect_query_term, &q);
    if (rc || q.n == 0 || k == 0)
        goto free_terms;

    pthread_rwlock_rdlock(&kb->lock);
    size_t n_in = 0;
    uint64_t len_in = 0;
    for (size_t i = 0; i < kb->nchunks; i++)
        if (chunk_in_lang(kb, (uint32_t)i, lang)) {
            n_in++;
            len_in += kb->chunks[i].nterms;
        }
    double *score = NULL, *matched = NULL, *tfacc = NULL;
    uint32_t *touched = NULL;
    struct cand *cand = NULL;
    if (n_in == 0 || len_in == 0)
        goto unlock;
    score = calloc(kb->nchunks, sizeof *score);
    matched = calloc(kb->nchunks, sizeof *matched);
    tfacc = calloc(kb->nchunks, sizeof *tfacc);
    touched = malloc(kb->nchunks * sizeof *touched);
    if (!score || !matched || !tfacc || !touched) {
        rc = MK_ENOMEM;
        goto unlock;
    }
    double N = (double)n_in;
    double avgdl = (double)len_in / N;
    double idf_sum = 0;
    for (size_t i = 0; i < q.n; i++) {
        long var[MAX_VARIANTS];
        size_t nvar = find_variants(kb, q.s[i], var);
        /* Sum the variants' term frequencies per chunk: the variants are one term. */
        size_t ntouched = 0;
        for (size_t v = 0; v < nvar; v++) {
            const struct kb_term *t = &kb->terms[var[v]];
            for (size_t j = 0; j < t->npost; j++) {
                uint32_t c = t->post[j].chunk;
                if (!chunk_in_lang(kb, c, lang))
                    continue;
                if (tfacc[c] == 0)
                    touched[ntouched++] = c;
                tfacc[c] += t->post[j].tf;
            }
        }
        double df = (double)ntouched;
        double idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        idf_sum += idf;
        for (size_t j = 0; j < ntouched; j++) {
            uint32_t c = touched[j];
            double tf = tfacc[c];
            double dl = kb->chunks[c].nterms;
            score[c] += idf * tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * (1.0 - BM25_B + BM25_B * dl / avgdl));
            matched[c] += idf;
            tfacc[c] = 0;
        }
    }
    size_t ncand = 0;
    for (size_t i = 0; i < kb->nchunks; i++)
        ncand += score[i] > 0;
    if (ncand == 0)
        goto unlock;
    cand = malloc(ncand * sizeof *cand);
    if (!cand) {
        rc = MK_ENOMEM;
        goto unlock;
    }
    ncand = 0;
    for (size_t i = 0; i < kb->nchunks; i++)
        if (score[i] > 0)
            cand[ncand++] = (struct cand){(uint32_t)i, score[i]};
    qsort(cand, ncand, sizeof *cand, cmp_cand);
    size_t nout = ncand < k ? ncand : k;
    for (size_t i = 0; i < nout; i++) {
        double cov = idf_sum > 0 ? matched[cand[i].chunk] / idf_sum : 0;
        fill_hit(kb, cand[i].chunk, cand[i].score, cov > 1 ? 1 : cov, &results[i]);
    }
    rc = (int)nout;
unlock:
    pthread_rwlock_unlock(&kb->lock);
    free(score);
    free(matched);
    free(tfacc);
    free(touched);
    free(cand);
free_terms:
    for (size_t i = 0; i < q.n; i++)
        free(q.s[i]);
    return rc;
}
