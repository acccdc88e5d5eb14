/*
 * mk_kb_int: the knowledge base's internal contract between its files
 * (mk_kb_token.c, mk_kb_chunk.c, mk_kb.c, mk_kb_search.c, mk_kb_demo.c, the ingesters)
 * and the generated table of embedded demo articles. Not for use outside src/kb/.
 */
#ifndef MK_KB_INT_H
#define MK_KB_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "core/mk_buf.h"
#include "kb/mk_kb.h"

/* --- Embedded files (written by scripts/embed-kb.py at build time) ---------------- */
struct mk_kb_embedded_file {
    const char *path;      /* relative to kb/demo, '/'-separated: "ru/wifi-connect.md" */
    const char *content;   /* the file's bytes, NUL-terminated */
    size_t len;
};
extern const struct mk_kb_embedded_file mk_kb_demo_files[];
extern const size_t mk_kb_demo_nfiles;

/* --- Tokenizer ------------------------------------------------------------------- */
struct sb_stemmer;
/* Holds the Snowball stemmers. A stemmer keeps per-call state, so one tokenizer must
 * not be used by two threads at once (the kb serialises it with a mutex). */
struct mk_kb__tokenizer {
    struct sb_stemmer *ru;
    struct sb_stemmer *en;
};
/* 0, or MK_ENOMEM when a stemmer could not be created. Release with _release (also
 * safe after a failed init). */
int mk_kb__tokenizer_init(struct mk_kb__tokenizer *t);
void mk_kb__tokenizer_release(struct mk_kb__tokenizer *t);
/* See mk_kb_tokenize_lang() (lang may be NULL). */
int mk_kb__tokenize(struct mk_kb__tokenizer *t, const char *text, size_t len, const char *lang, mk_kb_term_fn fn,
                    void *arg);

/* --- Markdown chunking ------------------------------------------------------------ */
/* Called per chunk: `section` is the heading text ("" for the intro), `body` the
 * section's text with surrounding blank lines trimmed, never empty, at most
 * MK_KB_MAX_CHUNK_BYTES. Both point into the input. Non-zero stops the walk. */
typedef int (*mk_kb__chunk_fn)(void *arg, mk_slice section, mk_slice body);
/* Cuts Markdown into chunks at level-1 and level-2 ATX headings ("# ", "## "), the
 * first level-1 heading being the title (stored in *title, or an empty slice when
 * there is none) rather than a section. Headings inside fenced code blocks do not
 * count. Returns 0 or the callback's non-zero value. */
int mk_kb__chunk_markdown(const char *text, size_t len, mk_slice *title, mk_kb__chunk_fn fn, void *arg);

/* --- The index (mk_kb.c builds it, mk_kb_search.c reads it) ----------------------- */

struct kb_doc {
    char *id, *lang, *agent, *title, *source, *hash;
    size_t first_chunk, nchunks;
    bool live;
};

struct kb_chunk {
    size_t doc;
    char *section;
    char *text;
    uint32_t nterms;    /* length for BM25 */
    uint32_t position, page, offset;
    char lang[4];
    bool live;
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

struct kb_hook {
    mk_kb_change_fn fn;
    void *arg;
};

struct mk_vector_index;

struct mk_kb {
    pthread_rwlock_t lock;        /* write: add, replace, remove; read: search and accessors */
    pthread_mutex_t tok_lock;     /* the stemmers are not reentrant */
    struct mk_kb__tokenizer tok;

    struct kb_doc *docs;
    size_t ndocs, capdocs, live_docs;
    struct kb_chunk *chunks;
    size_t nchunks, capchunks, live_chunks;
    uint64_t live_terms;          /* sum of nterms over live chunks (BM25 avgdl when unfiltered) */
    struct kb_term *terms;
    size_t nterms, capterms;
    uint32_t *table;              /* term id + 1; 0 = empty slot */
    size_t table_cap;             /* power of two, load kept <= 1/2 */
    uint32_t *doc_table;          /* doc index + 1 by hash of (agent, id, lang); live and dead */
    size_t doc_table_cap;

    struct kb_hook hooks[MK_KB_MAX_HOOKS];
    size_t nhooks;
    pthread_mutex_t hook_lock;

    const struct mk_embedder *emb;  /* NULL = no vectors */
    struct mk_vector_index *vix;    /* key = chunk index, ns = hash of the document's language */
    uint32_t dim;
};

uint64_t mk_kb__hash(const char *s, size_t len);
/* Term id, or -1 when absent. Caller holds the lock. */
long mk_kb__find_term(const mk_kb *kb, const char *s, size_t len, uint64_t h);
/* The text a chunk's vector is made from (title, section, text), appended to b. */
int mk_kb__vector_text(const mk_kb *kb, size_t chunk, mk_buf *b);
/* Namespace of a language in the vector index. */
uint32_t mk_kb__lang_ns(const char *lang);

#endif
