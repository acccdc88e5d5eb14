/*
 * mk_kb: documents, chunks, the BM25 inverted index and the chunk vectors.
 *
 * Layout: arrays of documents and chunks (append-only, so indices are stable ids),
 * a term dictionary (open-addressing hash of term -> term id) whose entries own a
 * postings list of (chunk, term frequency), a hash of document keys (agent, id, lang)
 * -> document, and, once vectors are on, an HNSW index keyed by chunk index. Chunks
 * are appended in increasing order, so every postings list is sorted by chunk without
 * any sorting.
 *
 * Removal tombstones: a removed or replaced document and its chunks are marked dead,
 * their vectors deleted from the HNSW index, and searches skip them; postings and
 * strings stay until the kb is freed. That keeps every hit handed out valid without
 * reference counting, at the cost of memory for churn; the server rebuilds its kb from
 * the store on reindex, which drops the dead weight.
 *
 * Adding a document is all-or-nothing: everything it needs (copies, new terms, room
 * in every array and postings list, its vectors) is prepared first, and only then is
 * the index changed, by steps that cannot fail. Tokenizing and embedding run before
 * the write lock is taken, so searches keep running while a document is prepared.
 *
 * BM25 scoring lives in mk_kb_search.c.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"
#include "embed/mk_embed.h"
#include "kb/mk_kb_int.h"
#include "vector/mk_vector.h"

/* A section heading names the task its steps perform ("Reset a forgotten password"),
 * so its words count this many times: it picks the right section within an article,
 * where the title (shared by all of them) cannot. */
#define HEADING_WEIGHT 2
/* HNSW beam while building the chunk graph (see mk_kb_enable_vectors). */
#define KB_EF_CONSTRUCTION 64
/* Hex digits of the default content digest (BLAKE2b-128). */
#define HASH_BYTES 16

/* --- small helpers ---------------------------------------------------------------- */

uint64_t mk_kb__hash(const char *s, size_t len)
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

long mk_kb__find_term(const mk_kb *kb, const char *s, size_t len, uint64_t h)
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

static uint64_t doc_key_hash(const char *agent, const char *id, const char *lang)
{
    uint64_t h = mk_kb__hash(agent, strlen(agent));
    h = h * 31 + mk_kb__hash(id, strlen(id));
    return h * 31 + mk_kb__hash(lang, strlen(lang));
}

/* Makes the document table big enough for n documents (load <= 1/2). */
static int reserve_doc_table(mk_kb *kb, size_t n)
{
    if (n * 2 <= kb->doc_table_cap)
        return 0;
    size_t cap = kb->doc_table_cap ? kb->doc_table_cap : 64;
    while (cap < n * 2)
        cap *= 2;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return MK_ENOMEM;
    for (size_t i = 0; i < kb->ndocs; i++) {
        const struct kb_doc *d = &kb->docs[i];
        table_put(t, cap, doc_key_hash(d->agent, d->id, d->lang), (uint32_t)i);
    }
    free(kb->doc_table);
    kb->doc_table = t;
    kb->doc_table_cap = cap;
    return 0;
}

/* The live document with this key, or -1. Caller holds the lock. */
static long find_doc(const mk_kb *kb, const char *agent, const char *id, const char *lang)
{
    if (!kb->doc_table_cap)
        return -1;
    size_t mask = kb->doc_table_cap - 1;
    for (size_t i = (size_t)doc_key_hash(agent, id, lang) & mask;; i = (i + 1) & mask) {
        uint32_t v = kb->doc_table[i];
        if (v == 0)
            return -1;
        const struct kb_doc *d = &kb->docs[v - 1];
        if (d->live && strcmp(d->id, id) == 0 && strcmp(d->lang, lang) == 0 && strcmp(d->agent, agent) == 0)
            return (long)(v - 1);
    }
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

uint32_t mk_kb__lang_ns(const char *lang) { return mk_vector_ns_hash(lang, strlen(lang)); }

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static void init_sodium(void)
{
    if (sodium_init() < 0)
        abort(); /* no usable randomness source: libsodium documents this as fatal */
}

/* --- lifecycle -------------------------------------------------------------------- */

mk_kb *mk_kb_new(void)
{
    pthread_once(&sodium_once, init_sodium);
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
    if (pthread_mutex_init(&kb->hook_lock, NULL) != 0) {
        pthread_mutex_destroy(&kb->tok_lock);
        pthread_rwlock_destroy(&kb->lock);
        mk_kb__tokenizer_release(&kb->tok);
        free(kb);
        return NULL;
    }
    return kb;
}

static void free_doc(struct kb_doc *d)
{
    free(d->id);
    free(d->lang);
    free(d->agent);
    free(d->title);
    free(d->source);
    free(d->hash);
}

void mk_kb_free(mk_kb *kb)
{
    if (!kb)
        return;
    for (size_t i = 0; i < kb->ndocs; i++)
        free_doc(&kb->docs[i]);
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
    free(kb->doc_table);
    mk_vector_free(kb->vix);
    mk_kb__tokenizer_release(&kb->tok);
    pthread_mutex_destroy(&kb->hook_lock);
    pthread_mutex_destroy(&kb->tok_lock);
    pthread_rwlock_destroy(&kb->lock);
    free(kb);
}

int mk_kb_tokenize_lang(mk_kb *kb, const char *text, size_t len, const char *lang, mk_kb_term_fn fn, void *arg)
{
    if (!kb)
        return MK_EINVAL;
    pthread_mutex_lock(&kb->tok_lock);
    int rc = mk_kb__tokenize(&kb->tok, text, len, lang, fn, arg);
    pthread_mutex_unlock(&kb->tok_lock);
    return rc;
}

int mk_kb_tokenize(mk_kb *kb, const char *text, size_t len, mk_kb_term_fn fn, void *arg)
{
    return mk_kb_tokenize_lang(kb, text, len, NULL, fn, arg);
}

int mk_kb_on_change(mk_kb *kb, mk_kb_change_fn fn, void *arg)
{
    if (!kb || !fn)
        return MK_EINVAL;
    pthread_mutex_lock(&kb->hook_lock);
    int rc = 0;
    if (kb->nhooks >= MK_KB_MAX_HOOKS)
        rc = MK_ETOOBIG;
    else
        kb->hooks[kb->nhooks++] = (struct kb_hook){fn, arg};
    pthread_mutex_unlock(&kb->hook_lock);
    return rc;
}

/* Calls every hook; no kb lock held. */
static void fire_hooks(mk_kb *kb, const char *const *ids, size_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&kb->hook_lock);
    size_t nh = kb->nhooks;
    struct kb_hook hooks[MK_KB_MAX_HOOKS];
    memcpy(hooks, kb->hooks, nh * sizeof hooks[0]);
    pthread_mutex_unlock(&kb->hook_lock);
    for (size_t i = 0; i < nh; i++)
        hooks[i].fn(hooks[i].arg, ids, n);
}

/* --- preparing a document ----------------------------------------------------------- */

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
    const char *lang;           /* the document's, the tokenizer's hint */
    float *vecs;                /* nchunks * dim, when vectors are on */
    mk_kb *kb;
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

/* Appends one chunk and tokenizes it (tok_lock held by the caller). */
static int pending_chunk(struct pending *p, mk_slice section, mk_slice body, const char *lang, uint32_t page,
                         uint32_t offset)
{
    if (p->nchunks >= UINT32_MAX)
        return MK_ETOOBIG;
    if (grow((void **)&p->chunks, &p->cap, p->nchunks + 1, sizeof *p->chunks))
        return MK_ENOMEM;
    struct kb_chunk *c = &p->chunks[p->nchunks];
    memset(c, 0, sizeof *c);
    c->section = dup_n(section.ptr, section.len);
    c->text = dup_n(body.ptr, body.len);
    if (!c->section || !c->text) {
        free(c->section);
        free(c->text);
        return MK_ENOMEM;
    }
    c->position = (uint32_t)p->nchunks;
    c->page = page;
    c->offset = offset;
    snprintf(c->lang, sizeof c->lang, "%s", lang);
    c->live = true;
    p->nchunks++;
    /* The title and the heading are indexed with every chunk: "## Windows" alone says
     * nothing, "How to add a network printer / Windows" does. */
    struct mk_kb__tokenizer *tok = &p->kb->tok;
    int rc = mk_kb__tokenize(tok, p->title, p->title_len, p->lang, collect_term, p);
    for (int w = 0; w < HEADING_WEIGHT && !rc; w++)
        rc = mk_kb__tokenize(tok, section.ptr, section.len, p->lang, collect_term, p);
    if (!rc)
        rc = mk_kb__tokenize(tok, body.ptr, body.len, p->lang, collect_term, p);
    return rc;
}

static int collect_md_chunk(void *arg, mk_slice section, mk_slice body)
{
    struct pending *p = arg;
    return pending_chunk(p, section, body, p->lang, 0, 0);
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
    free(p->vecs);
    mk_buf_release(&p->terms);
}

/* Groups the sorted occurrences into distinct terms and reserves everything the
 * commit needs. Write lock held. */
static int prepare_terms(mk_kb *kb, struct pending *p)
{
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
        u->hash = mk_kb__hash(s, len);
        u->id = mk_kb__find_term(kb, s, len, u->hash);
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

static int append_vector_text(mk_buf *b, const char *title, const char *section, const char *text)
{
    int rc = mk_buf_append_str(b, title);
    if (!rc && section[0]) {
        rc = mk_buf_append_char(b, '\n');
        if (!rc)
            rc = mk_buf_append_str(b, section);
    }
    if (!rc)
        rc = mk_buf_append_char(b, '\n');
    if (!rc)
        rc = mk_buf_append_str(b, text);
    return rc;
}

int mk_kb__vector_text(const mk_kb *kb, size_t chunk, mk_buf *b)
{
    const struct kb_chunk *c = &kb->chunks[chunk];
    return append_vector_text(b, kb->docs[c->doc].title, c->section, c->text);
}

/* Embeds the pending chunks (no kb lock needed: the embedder is immutable). */
static int embed_pending(const struct mk_embedder *e, uint32_t dim, struct pending *p, const char *title)
{
    if (!e || p->nchunks == 0)
        return 0;
    p->vecs = malloc(p->nchunks * dim * sizeof *p->vecs);
    if (!p->vecs)
        return MK_ENOMEM;
    mk_buf b = MK_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < p->nchunks && !rc; i++) {
        mk_buf_reset(&b);
        rc = append_vector_text(&b, title, p->chunks[i].section, p->chunks[i].text);
        if (!rc)
            rc = mk_embed_text(e, b.data, b.len, p->vecs + i * dim);
    }
    mk_buf_release(&b);
    return rc;
}

/* Where a document's chunks come from: Markdown cut here, or the caller's chunks. */
struct source {
    const char *md;
    size_t md_len;
    const struct mk_kb_chunk_in *in;
    size_t n;
};

/* Checks the input, makes the document's owned copies and its tokenized chunks.
 * No kb lock held (the tokenizer mutex is taken inside). */
static int prepare(mk_kb *kb, const struct mk_kb_doc *doc, const struct source *src, struct pending *p,
                   struct kb_doc *d)
{
    if (!doc->id || !doc->lang || !valid_id(doc->id) || !valid_lang(doc->lang))
        return MK_EINVAL;
    const char *agent = doc->agent ? doc->agent : "";
    if (agent[0] && !valid_id(agent))
        return MK_EINVAL;
    if (doc->title && !mk_utf8_valid(doc->title, strlen(doc->title)))
        return MK_EBADUTF8;
    if (doc->source && !mk_utf8_valid(doc->source, strlen(doc->source)))
        return MK_EBADUTF8;
    if (doc->content_hash && (!doc->content_hash[0] || strlen(doc->content_hash) > 128 ||
                              !mk_utf8_valid(doc->content_hash, strlen(doc->content_hash))))
        return MK_EINVAL;

    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, HASH_BYTES);
    const char *title = doc->title;
    size_t title_len = title ? strlen(title) : 0;
    if (src->md) {
        if (src->md_len > MK_KB_MAX_DOC_BYTES)
            return MK_ETOOBIG;
        if (!mk_utf8_valid(src->md, src->md_len) || memchr(src->md, '\0', src->md_len))
            return MK_EBADUTF8;
        /* The title may come from the text's "# " line, and every chunk indexes it, so
         * find it with a first pass before chunking for real. */
        mk_slice md_title;
        mk_kb__chunk_markdown(src->md, src->md_len, &md_title, skip_chunk, NULL);
        if (!title && md_title.len) {
            title = md_title.ptr;
            title_len = md_title.len;
        }
        crypto_generichash_update(&hs, (const unsigned char *)src->md, src->md_len);
    } else {
        if (src->n == 0 || src->n > MK_KB_MAX_DOC_CHUNKS)
            return MK_EINVAL;
        size_t total = 0;
        for (size_t i = 0; i < src->n; i++) {
            const struct mk_kb_chunk_in *c = &src->in[i];
            const char *sec = c->section ? c->section : "";
            if (!c->text || c->text_len == 0)
                return MK_EINVAL;
            if (c->text_len > MK_KB_MAX_CHUNK_BYTES)
                return MK_ETOOBIG;
            if ((total += c->text_len) > 2 * (size_t)MK_KB_MAX_DOC_BYTES)
                return MK_ETOOBIG;
            if (!mk_utf8_valid(c->text, c->text_len) || memchr(c->text, '\0', c->text_len) ||
                !mk_utf8_valid(sec, strlen(sec)))
                return MK_EBADUTF8;
            if (c->lang && !valid_lang(c->lang))
                return MK_EINVAL;
            crypto_generichash_update(&hs, (const unsigned char *)sec, strlen(sec) + 1);
            crypto_generichash_update(&hs, (const unsigned char *)c->text, c->text_len);
            crypto_generichash_update(&hs, (const unsigned char *)"", 1);
        }
    }
    if (!title) {
        title = doc->id;
        title_len = strlen(doc->id);
    }
    p->title = title;
    p->title_len = title_len;
    p->lang = doc->lang;

    d->id = dup_s(doc->id);
    d->lang = dup_s(doc->lang);
    d->agent = dup_s(agent);
    d->title = dup_n(title, title_len);
    if (doc->source) {
        d->source = dup_s(doc->source);
    } else {
        mk_buf b = MK_BUF_INIT;
        if (mk_buf_printf(&b, "kb://%s/%s", doc->lang, doc->id) == 0)
            d->source = mk_buf_steal(&b, NULL);
        mk_buf_release(&b);
    }
    if (doc->content_hash) {
        d->hash = dup_s(doc->content_hash);
    } else {
        unsigned char h[HASH_BYTES];
        crypto_generichash_final(&hs, h, sizeof h);
        d->hash = malloc(2 * HASH_BYTES + 1);
        if (d->hash)
            sodium_bin2hex(d->hash, 2 * HASH_BYTES + 1, h, sizeof h);
    }
    if (!d->id || !d->lang || !d->agent || !d->title || !d->source || !d->hash)
        return MK_ENOMEM;
    d->live = true;

    int rc = 0;
    pthread_mutex_lock(&kb->tok_lock);
    if (src->md) {
        mk_slice md_title;
        rc = mk_kb__chunk_markdown(src->md, src->md_len, &md_title, collect_md_chunk, p);
    } else {
        for (size_t i = 0; i < src->n && !rc; i++) {
            const struct mk_kb_chunk_in *c = &src->in[i];
            rc = pending_chunk(p, mk_slice_cstr(c->section ? c->section : ""), (mk_slice){c->text, c->text_len},
                               c->lang ? c->lang : doc->lang, c->page, c->offset);
        }
    }
    pthread_mutex_unlock(&kb->tok_lock);
    if (rc)
        return rc;
    if (p->nocc)
        qsort_r(p->occ, p->nocc, sizeof *p->occ, cmp_occ, p);
    return 0;
}

/* Tombstones document di and its chunks. Write lock held. */
static void kill_doc(mk_kb *kb, size_t di)
{
    struct kb_doc *d = &kb->docs[di];
    if (!d->live)
        return;
    d->live = false;
    kb->live_docs--;
    for (size_t c = d->first_chunk; c < d->first_chunk + d->nchunks; c++) {
        kb->chunks[c].live = false;
        kb->live_chunks--;
        kb->live_terms -= kb->chunks[c].nterms;
        if (kb->vix)
            mk_vector_delete(kb->vix, (uint64_t)c);
    }
}

/* Adds the prepared document under the write lock; replaces the live one with the
 * same key when `replace` (else MK_EEXISTS). *changed tells whether anything happened. */
static int commit(mk_kb *kb, struct pending *p, struct kb_doc *d, bool replace, bool *changed, char **old_id)
{
    *changed = false;
    long old = find_doc(kb, d->agent, d->id, d->lang);
    if (old >= 0 && !replace)
        return MK_EEXISTS;
    if (old >= 0 && strcmp(kb->docs[old].hash, d->hash) == 0)
        return 0; /* unchanged: nothing to do */
    if (kb->ndocs >= MK_KB_MAX_DOCS)
        return MK_ETOOBIG;
    if (kb->nchunks + p->nchunks > UINT32_MAX)
        return MK_ETOOBIG;
    int rc = prepare_terms(kb, p);
    if (rc)
        return rc;
    if (grow((void **)&kb->docs, &kb->capdocs, kb->ndocs + 1, sizeof *kb->docs) ||
        grow((void **)&kb->chunks, &kb->capchunks, kb->nchunks + p->nchunks, sizeof *kb->chunks) ||
        reserve_doc_table(kb, kb->ndocs + 1))
        return MK_ENOMEM;
    if (old >= 0 && !(*old_id = dup_s(kb->docs[old].id)))
        return MK_ENOMEM;
    size_t base = kb->nchunks;
    if (kb->vix && p->nchunks) {
        /* Vectors go in first: the one step here that can fail, undone on failure. */
        uint32_t ns = mk_kb__lang_ns(d->lang);
        for (size_t i = 0; i < p->nchunks; i++) {
            mk_vector_attrs at = {.ns = ns, .meta = kb->ndocs};
            rc = mk_vector_upsert(kb->vix, base + i, p->vecs + i * kb->dim, kb->dim, &at);
            if (rc) {
                while (i-- > 0)
                    mk_vector_delete(kb->vix, base + i);
                free(*old_id);
                *old_id = NULL;
                return rc;
            }
        }
    }

    /* Commit: nothing below can fail. */
    if (old >= 0)
        kill_doc(kb, (size_t)old);
    d->first_chunk = base;
    d->nchunks = p->nchunks;
    for (size_t i = 0; i < p->nchunks; i++) {
        kb->chunks[base + i] = p->chunks[i];
        kb->chunks[base + i].doc = kb->ndocs;
        kb->live_terms += p->chunks[i].nterms;
    }
    kb->nchunks += p->nchunks;
    kb->live_chunks += p->nchunks;
    p->nchunks = 0; /* ownership moved */
    table_put(kb->doc_table, kb->doc_table_cap, doc_key_hash(d->agent, d->id, d->lang), (uint32_t)kb->ndocs);
    kb->docs[kb->ndocs++] = *d;
    kb->live_docs++;
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < p->nut; i++) {
        struct uterm *u = &p->ut[i];
        if (u->id >= 0) {
            struct kb_term *t = &kb->terms[u->id];
            t->npost += fill_postings(p, u, base, t->post + t->npost);
        } else {
            struct kb_term *t = &kb->terms[kb->nterms];
            t->s = u->s;
            t->hash = u->hash;
            t->post = u->post;
            t->cap = u->nchunks;
            t->npost = fill_postings(p, u, base, t->post);
            table_put(kb->table, kb->table_cap, t->hash, (uint32_t)kb->nterms);
            kb->nterms++;
            u->s = NULL;
            u->post = NULL;
        }
    }
    *changed = true;
    return 0;
}

static int add_doc(mk_kb *kb, const struct mk_kb_doc *doc, const struct source *src, bool replace, bool *changed)
{
    bool ch = false;
    struct pending p = {.kb = kb};
    mk_buf_init(&p.terms, 0);
    struct kb_doc d = {0};
    char *old_id = NULL;
    int rc = prepare(kb, doc, src, &p, &d);
    /* The embedder is fixed once set (mk_kb_enable_vectors), so reading it unlocked is
     * safe; a kb that gets vectors while this document is prepared embeds it then. */
    pthread_rwlock_rdlock(&kb->lock);
    const struct mk_embedder *e = kb->emb;
    uint32_t dim = kb->dim;
    pthread_rwlock_unlock(&kb->lock);
    if (!rc)
        rc = embed_pending(e, dim, &p, d.title);
    if (!rc) {
        pthread_rwlock_wrlock(&kb->lock);
        if (kb->emb != e) /* vectors were switched on meanwhile */
            rc = MK_EBUSY;
        else
            rc = commit(kb, &p, &d, replace, &ch, &old_id);
        pthread_rwlock_unlock(&kb->lock);
    }
    free_doc(&d);
    pending_release(&p);
    if (old_id) {
        const char *ids[1] = {old_id};
        fire_hooks(kb, ids, 1);
        free(old_id);
    }
    if (changed)
        *changed = ch;
    return rc;
}

int mk_kb_add_document(mk_kb *kb, const struct mk_kb_doc *doc)
{
    if (!kb || !doc || (!doc->text && doc->text_len))
        return MK_EINVAL;
    struct source src = {.md = doc->text ? doc->text : "", .md_len = doc->text_len};
    return add_doc(kb, doc, &src, false, NULL);
}

int mk_kb_add_chunks(mk_kb *kb, const struct mk_kb_doc *doc, const struct mk_kb_chunk_in *chunks, size_t n)
{
    if (!kb || !doc || (!chunks && n))
        return MK_EINVAL;
    struct source src = {.in = chunks, .n = n};
    return add_doc(kb, doc, &src, false, NULL);
}

int mk_kb_put_chunks(mk_kb *kb, const struct mk_kb_doc *doc, const struct mk_kb_chunk_in *chunks, size_t n,
                     bool *changed)
{
    if (changed)
        *changed = false;
    if (!kb || !doc || (!chunks && n))
        return MK_EINVAL;
    struct source src = {.in = chunks, .n = n};
    return add_doc(kb, doc, &src, true, changed);
}

int mk_kb_remove_document(mk_kb *kb, const char *agent, const char *id, const char *lang)
{
    if (!kb || !id || !valid_id(id) || (lang && !valid_lang(lang)) || (agent && agent[0] && !valid_id(agent)))
        return MK_EINVAL;
    pthread_rwlock_wrlock(&kb->lock);
    size_t n = 0;
    for (size_t i = 0; i < kb->ndocs; i++) {
        struct kb_doc *d = &kb->docs[i];
        if (d->live && strcmp(d->id, id) == 0 && (!lang || strcmp(d->lang, lang) == 0) &&
            (!agent || strcmp(d->agent, agent) == 0)) {
            kill_doc(kb, i);
            n++;
        }
    }
    pthread_rwlock_unlock(&kb->lock);
    if (n > 0) {
        const char *ids[1] = {id};
        fire_hooks(kb, ids, 1);
    }
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* --- vectors -------------------------------------------------------------------------- */

int mk_kb_enable_vectors(mk_kb *kb, const struct mk_embedder *e)
{
    if (!kb || !e)
        return MK_EINVAL;
    uint32_t dim = mk_embedder_dim(e);
    pthread_rwlock_wrlock(&kb->lock);
    int rc = 0;
    float *vecs = NULL;
    uint64_t *keys = NULL;
    mk_vector_attrs *attrs = NULL;
    mk_vector_index *vix = NULL;
    mk_buf b = MK_BUF_INIT;
    if (kb->emb) {
        rc = MK_EEXISTS;
        goto out;
    }
    mk_vector_params vp;
    mk_vector_params_default(&vp, dim, MK_VECTOR_COSINE);
    vp.capacity = kb->live_chunks > 1024 ? kb->live_chunks : 1024;
    /* A knowledge base is thousands to tens of thousands of chunks, searched with a
     * beam of at least 64: at that size ef_construction 64 loses no recall we can
     * measure (bench/kb) and builds the graph about three times faster than 200. */
    vp.ef_construction = KB_EF_CONSTRUCTION;
    if ((rc = mk_vector_new(&vp, &vix)) != 0)
        goto out;
    size_t n = kb->live_chunks;
    if (n) {
        vecs = malloc(n * dim * sizeof *vecs);
        keys = malloc(n * sizeof *keys);
        attrs = malloc(n * sizeof *attrs);
        if (!vecs || !keys || !attrs) {
            rc = MK_ENOMEM;
            goto out;
        }
        size_t j = 0;
        for (size_t c = 0; c < kb->nchunks && !rc; c++) {
            if (!kb->chunks[c].live)
                continue;
            mk_buf_reset(&b);
            rc = mk_kb__vector_text(kb, c, &b);
            if (!rc)
                rc = mk_embed_text(e, b.data, b.len, vecs + j * dim);
            const struct kb_doc *d = &kb->docs[kb->chunks[c].doc];
            keys[j] = c;
            attrs[j] = (mk_vector_attrs){.ns = mk_kb__lang_ns(d->lang), .meta = kb->chunks[c].doc};
            j++;
        }
        /* One thread: a graph built by several depends on their scheduling, and then
         * a borderline question could be answered by one process and escalated by
         * the next. Answers must not change between restarts; the build of a
         * support-sized knowledge base takes well under a second either way. */
        if (!rc)
            rc = mk_vector_insert_batch(vix, j, keys, vecs, dim, attrs, 1);
        if (rc)
            goto out;
    }
    kb->vix = vix;
    vix = NULL;
    kb->emb = e;
    kb->dim = dim;
out:
    pthread_rwlock_unlock(&kb->lock);
    mk_vector_free(vix);
    free(vecs);
    free(keys);
    free(attrs);
    mk_buf_release(&b);
    return rc;
}

bool mk_kb_has_vectors(const mk_kb *kb)
{
    if (!kb)
        return false;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    bool on = kb->emb != NULL;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return on;
}

/* --- accessors ---------------------------------------------------------------------- */

size_t mk_kb_document_count(const mk_kb *kb)
{
    if (!kb)
        return 0;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    size_t n = kb->live_docs;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return n;
}

size_t mk_kb_document_slots(const mk_kb *kb)
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
    size_t n = kb->live_chunks;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return n;
}

bool mk_kb_document(const mk_kb *kb, size_t doc_index, struct mk_kb_doc_info *out)
{
    if (!kb || !out)
        return false;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    bool ok = doc_index < kb->ndocs;
    if (ok) {
        const struct kb_doc *d = &kb->docs[doc_index];
        *out = (struct mk_kb_doc_info){
            .doc_index = doc_index, .id = d->id, .lang = d->lang, .agent = d->agent, .title = d->title,
            .source = d->source, .content_hash = d->hash, .first_chunk = d->first_chunk, .nchunks = d->nchunks,
            .live = d->live,
        };
    }
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return ok;
}

long mk_kb_find_document(const mk_kb *kb, const char *agent, const char *id, const char *lang)
{
    if (!kb || !id || !lang)
        return -1;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kb->lock);
    long i = find_doc(kb, agent ? agent : "", id, lang);
    pthread_rwlock_unlock((pthread_rwlock_t *)&kb->lock);
    return i;
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
