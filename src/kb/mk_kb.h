/*
 * mk_kb: a small in-memory knowledge base with lexical (BM25) retrieval.
 *
 * Documents are Markdown articles ("# Title", an intro, "## Section"s). Each is cut
 * into chunks at its "## " headings; a chunk remembers the document's title and its
 * section heading, and both are indexed together with the section's text, so a
 * query naming the topic finds the right article even when the section itself does
 * not repeat it. Tokens are Unicode case-folded (utf8proc), split on anything that is
 * not a letter, digit or combining mark, and stemmed with Snowball (libstemmer):
 * Russian for Cyrillic words, English for Latin ones, so "принтеры" meets "принтер"
 * and "printers" meets "printer" whatever the document's language.
 *
 * Ranking is Okapi BM25 (k1 = 1.2, b = 0.75); heading words count twice. A Russian
 * query stem also matches index stems that extend it (or that it extends) by up to 3
 * letters, since Snowball keeps verb/noun pairs apart (обнов/обновлен). A search
 * restricted to one language computes its statistics (N, document frequencies,
 * average length) over that language's chunks only, as if the others were not there.
 *
 * This is the lexical half of retrieval; vector search and hybrid fusion are layered
 * on top by later modules and use chunk indices (mk_kb_hit.chunk_index) as the join key.
 *
 * Threads: mk_kb_add_document() and mk_kb_load_demo() take a write lock, searches a
 * read lock, so one knowledge base can be searched from many threads at once.
 */
#ifndef MK_KB_H
#define MK_KB_H

#include <stdbool.h>
#include <stddef.h>

/* --- Limits (with the reason beside each) ---------------------------------------- */
/* One document's Markdown: a long manual is ~200 KB; 4 MB stops accidental dumps. */
#define MK_KB_MAX_DOC_BYTES (4 * 1024 * 1024)
/* Chunk body: a section longer than this is split at paragraph (then line) breaks,
 * so one giant section cannot dominate BM25's length normalisation or an answer. */
#define MK_KB_MAX_CHUNK_BYTES 4000
/* A term longer than this is not a word (base64, hashes): it is dropped. */
#define MK_KB_MAX_TERM_BYTES 64
/* Distinct terms of a query that are scored; the rest are ignored. Real questions
 * have < 30; the cap bounds the work a hostile query can cause. */
#define MK_KB_MAX_QUERY_TERMS 64
/* Bytes of a query that are read. */
#define MK_KB_MAX_QUERY_BYTES (16 * 1024)
/* Results a search may return. */
#define MK_KB_MAX_K 100
/* Documents in one knowledge base. */
#define MK_KB_MAX_DOCS 100000

typedef struct mk_kb mk_kb;

/* A document to add. Everything is borrowed for the call; the kb copies what it keeps. */
struct mk_kb_doc {
    const char *id;        /* slug: [A-Za-z0-9._-], 1..MK_MAX_NAME_BYTES; (id, lang) is unique */
    const char *lang;      /* "ru", "en", "kk": 2-3 lowercase letters */
    const char *title;     /* NULL = the first "# " heading of text, else id */
    const char *text;      /* Markdown, valid UTF-8, no NUL bytes inside text_len */
    size_t text_len;
    const char *source;    /* where it came from, shown in citations ("kb://demo/ru/wifi-connect",
                              a URL or a path); NULL = "kb://<lang>/<id>" */
};

/* One search result. Strings are owned by the kb and live as long as it does
 * (documents are never removed). */
struct mk_kb_hit {
    double score;          /* BM25, > 0 */
    double coverage;       /* share (0..1) of the query's term weight (sum of idf) found in this
                              chunk; terms unknown to the index count with the highest idf.
                              A query-independent "how much of the question did it match". */
    size_t chunk_index;    /* stable id of the chunk within this kb */
    size_t doc_index;      /* stable id of its document */
    const char *doc_id;
    const char *lang;
    const char *title;
    const char *section;   /* "## " heading; "" for the intro before the first one */
    const char *text;      /* the section's Markdown, heading line excluded */
    const char *source;
};

/* A new, empty knowledge base. NULL when out of memory or a stemmer is missing
 * (libstemmer without "russian"/"english"). Free with mk_kb_free(). */
mk_kb *mk_kb_new(void);
/* Frees the kb and everything it owns; hits taken from it become invalid. Accepts NULL. */
void mk_kb_free(mk_kb *kb);

/* Adds and indexes one document. Returns 0; MK_EINVAL for a bad id/lang or NULL
 * text, MK_EBADUTF8 for invalid UTF-8 or a NUL byte, MK_ETOOBIG past MK_KB_MAX_DOC_BYTES
 * or MK_KB_MAX_DOCS, MK_EEXISTS when (id, lang) is already present, MK_ENOMEM.
 * On failure the kb is unchanged. */
int mk_kb_add_document(mk_kb *kb, const struct mk_kb_doc *doc);

/* Adds the demo knowledge base embedded in the binary (kb/demo/<lang>/<slug>.md),
 * with sources "kb://demo/<lang>/<slug>". Returns 0, or the first error of
 * mk_kb_add_document (MK_EEXISTS if it was loaded before; MK_ECORRUPT for a malformed
 * embedded path). */
int mk_kb_load_demo(mk_kb *kb);

/* Number of documents and chunks. */
size_t mk_kb_document_count(const mk_kb *kb);
size_t mk_kb_chunk_count(const mk_kb *kb);
/* The chunk with that index, as a hit with score and coverage 0; false when out of
 * range. For callers joining other indices (vectors) on chunk_index. */
bool mk_kb_chunk(const mk_kb *kb, size_t chunk_index, struct mk_kb_hit *out);

/* The chunks of document `doc_index` are [*first, *first + *count), in document
 * order (the intro, if any, first). false when out of range. */
bool mk_kb_document_chunks(const mk_kb *kb, size_t doc_index, size_t *first, size_t *count);

/* Ranks chunks for `query` (UTF-8, NUL-terminated; invalid bytes act as spaces; only
 * the first MK_KB_MAX_QUERY_BYTES are read). `lang` restricts the search to documents
 * in that language; NULL or "" searches all. Writes up to k (<= MK_KB_MAX_K) hits to
 * `results`, best first (ties: lower chunk index first), only chunks with score > 0.
 * Returns the number written (0 when nothing matches), MK_EINVAL for NULL arguments
 * or k > MK_KB_MAX_K, MK_ENOMEM. */
int mk_kb_search(mk_kb *kb, const char *query, const char *lang, size_t k, struct mk_kb_hit *results);

/* Language of a text by its letters: when Cyrillic letters outnumber Latin ones,
 * "kk" if Kazakh-only letters (ә ғ қ ң ө ұ ү һ і) make up at least 3% of the Cyrillic
 * ones, else "ru"; otherwise "en" when it has Latin letters; "und" (undetermined)
 * when it has neither. Invalid UTF-8 bytes are skipped.
 * Returns a static string. */
const char *mk_kb_detect_language(const char *text, size_t len);

/* --- Tokenizer (exposed for tests and for other indices that must agree with BM25) */

/* Called once per index term, in text order (repeats included). `term` is NUL-terminated
 * and valid during the call only. Return 0 to continue; non-zero stops the walk and
 * is returned by mk_kb_tokenize. */
typedef int (*mk_kb_term_fn)(void *arg, const char *term, size_t len);

/* Turns text into index terms exactly as documents and queries are indexed: case
 * folding (NFC + Unicode casefold, "ё" as "е"), splitting, stop words and one-letter
 * words dropped, a hyphenated word also giving its joined form ("wi-fi" -> "wi", "fi",
 * "wifi"), Snowball stemming by script. Returns 0, the callback's non-zero value, or
 * MK_ENOMEM / MK_EINVAL. */
int mk_kb_tokenize(mk_kb *kb, const char *text, size_t len, mk_kb_term_fn fn, void *arg);

#endif
