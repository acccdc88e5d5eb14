/*
 * mk_kb: the knowledge base — documents cut into chunks, and hybrid retrieval over them.
 *
 * Documents are Markdown articles ("# Title", an intro, "## Section"s) added with
 * mk_kb_add_document(), which cuts them at their "## " headings, or documents that
 * ingestion (mk_kb_ingest.h) has already cut by their structure, added with
 * mk_kb_add_chunks() / mk_kb_put_chunks(). A chunk remembers the document's title and
 * its section heading, and both are indexed together with the section's text, so a
 * query naming the topic finds the right article even when the section itself does
 * not repeat it. Tokens are Unicode case-folded (utf8proc), split on anything that is
 * not a letter, digit or combining mark, and stemmed: Snowball (libstemmer) Russian
 * for Cyrillic words, English for Latin ones, and a small suffix stripper of our own
 * for Kazakh (words with Kazakh-only letters, or every Cyrillic word of a text known
 * to be Kazakh), so "принтеры" meets "принтер", "printers" meets "printer" and
 * "принтерлерді" meets "принтер" whatever the document's language.
 *
 * Ranking. Lexical: Okapi BM25 (k1 = 1.2, b = 0.75); heading words count twice. A
 * Cyrillic query stem also matches index stems that extend it (or that it extends) by
 * up to 3 letters, since Snowball keeps verb/noun pairs apart (обнов/обновлен). A
 * search restricted to one language computes its statistics (N, document frequencies,
 * average length) over that language's chunks only, as if the others were not there.
 * Semantic: once mk_kb_enable_vectors() gave the kb an embedder, every chunk also has
 * a vector in an HNSW index (src/vector) and mk_kb_search_hybrid() fuses the two
 * rankings by reciprocal rank fusion, returning the scores a confidence estimate needs.
 *
 * Documents are keyed by (agent, id, lang). Removing or replacing one tombstones its
 * chunks: searches skip them at once, but their strings stay allocated until the kb is
 * freed, so hits handed out earlier never dangle. Indices (chunk_index, doc_index)
 * are stable for the life of the kb. Change hooks (mk_kb_on_change) learn which
 * documents were replaced or removed, so cached answers citing them can be dropped.
 *
 * Threads: adding, replacing and removing take a write lock, searches a read lock, so
 * one knowledge base can be searched from many threads at once.
 */
#ifndef MK_KB_H
#define MK_KB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Documents in one knowledge base (live and tombstoned). */
#define MK_KB_MAX_DOCS 100000
/* Chunks one caller-cut document may have: a 4 MB document in 4 KB chunks, twice. */
#define MK_KB_MAX_DOC_CHUNKS 2048
/* Change hooks: the semantic cache and perhaps a metrics exporter; a handful. */
#define MK_KB_MAX_HOOKS 8
/* Candidates each ranker contributes to fusion by default: recall of the fused top 10
 * stops growing well before 50 on our evaluation (bench/kb), and the cost is linear. */
#define MK_KB_DEFAULT_DEPTH 50
/* Reciprocal rank fusion constant k in 1 / (k + rank): tuned on the validation half of
 * the GNOME help queries (bench/kb/README.md). */
#define MK_KB_DEFAULT_RRF_K 10

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
    const char *agent;     /* the agent (knowledge collection) it belongs to, same charset as id;
                              NULL or "" = shared by every agent */
    const char *content_hash; /* the caller's digest of the source, for "unchanged?" checks;
                              NULL = a digest of text (or of the chunks) computed here */
};

/* A chunk cut by the caller (ingestion). Borrowed for the call. */
struct mk_kb_chunk_in {
    const char *section;   /* heading (path) of the part it comes from; NULL or "" = the intro */
    const char *text;      /* the passage: non-empty valid UTF-8 without NUL, <= MK_KB_MAX_CHUNK_BYTES */
    size_t text_len;
    const char *lang;      /* its own language ("ru", "en", "kk"); NULL = the document's */
    uint32_t page;         /* 1-based page of a paged source (PDF); 0 = not paged */
    uint32_t offset;       /* byte offset of its start in the document's extracted text */
};

/* One search result. Strings are owned by the kb and live as long as it does
 * (removed documents are tombstoned, not freed). */
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
    const char *agent;     /* "" = shared */
    const char *chunk_lang;/* the chunk's own language (a Russian article may quote English) */
    uint32_t position;     /* 0-based ordinal of the chunk within its document */
    uint32_t page;         /* 1-based page (PDF), 0 = not paged */
    uint32_t offset;       /* byte offset in the document's (extracted) text; 0 when unknown */
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

/* Adds a document whose chunks the caller has cut (ingestion). Same checks and
 * errors as mk_kb_add_document, plus MK_EINVAL for n == 0, n > MK_KB_MAX_DOC_CHUNKS or
 * an empty chunk and MK_ETOOBIG for a chunk over MK_KB_MAX_CHUNK_BYTES. title NULL =
 * the id. On failure the kb is unchanged. */
int mk_kb_add_chunks(mk_kb *kb, const struct mk_kb_doc *doc, const struct mk_kb_chunk_in *chunks, size_t n);

/* Adds or replaces: when a live document with the same (agent, id, lang) exists and its
 * content hash equals doc's, nothing happens (*changed = false); when it differs, the
 * old one is tombstoned and the new one added in one step under the write lock
 * (searches see the old or the new, never neither), and the change hooks are called
 * after the lock is released. changed may be NULL. Errors as mk_kb_add_chunks (then
 * the old document stays). */
int mk_kb_put_chunks(mk_kb *kb, const struct mk_kb_doc *doc, const struct mk_kb_chunk_in *chunks, size_t n,
                     bool *changed);

/* Tombstones the live documents with this id: in every language when lang is NULL,
 * of every agent when agent is NULL ("" = only shared ones). Calls the change hooks
 * with their ids. Returns how many were removed (0 when none matched), MK_EINVAL. */
int mk_kb_remove_document(mk_kb *kb, const char *agent, const char *id, const char *lang);

/* Called after documents were replaced or removed, with their ids (NUL-terminated,
 * valid during the call; one id may repeat when it changed in several languages).
 * Runs on the thread that changed the kb, with no kb lock held (it may search). */
typedef void (*mk_kb_change_fn)(void *arg, const char *const *doc_ids, size_t n);
/* Registers a hook. 0, MK_EINVAL, MK_ETOOBIG past MK_KB_MAX_HOOKS. Hooks cannot be
 * removed; the kb must not be changed from inside one. */
int mk_kb_on_change(mk_kb *kb, mk_kb_change_fn fn, void *arg);

/* What the kb knows of one document (strings owned by the kb, live as long as it). */
struct mk_kb_doc_info {
    size_t doc_index;
    const char *id, *lang, *agent, *title, *source, *content_hash;
    size_t first_chunk, nchunks;
    bool live;             /* false once removed or replaced */
};
/* The document at doc_index (live or not); false when out of range. */
bool mk_kb_document(const mk_kb *kb, size_t doc_index, struct mk_kb_doc_info *out);
/* Index of the live document (agent "" = shared), or -1. */
long mk_kb_find_document(const mk_kb *kb, const char *agent, const char *id, const char *lang);
/* Number of document slots, live and tombstoned (doc_index is below it). */
size_t mk_kb_document_slots(const mk_kb *kb);

/* Adds the demo knowledge base embedded in the binary (kb/demo/<lang>/<slug>.md),
 * with sources "kb://demo/<lang>/<slug>". Returns 0, or the first error of
 * mk_kb_add_document (MK_EEXISTS if it was loaded before; MK_ECORRUPT for a malformed
 * embedded path). */
int mk_kb_load_demo(mk_kb *kb);

/* Number of live documents and chunks. */
size_t mk_kb_document_count(const mk_kb *kb);
size_t mk_kb_chunk_count(const mk_kb *kb);
/* The chunk with that index (live or tombstoned), as a hit with score and coverage 0;
 * false when out of range. For callers joining other indices on chunk_index. */
bool mk_kb_chunk(const mk_kb *kb, size_t chunk_index, struct mk_kb_hit *out);

/* The chunks of document `doc_index` are [*first, *first + *count), in document
 * order (the intro, if any, first). false when out of range. */
bool mk_kb_document_chunks(const mk_kb *kb, size_t doc_index, size_t *first, size_t *count);

/* Ranks chunks for `query` (UTF-8, NUL-terminated; invalid bytes act as spaces; only
 * the first MK_KB_MAX_QUERY_BYTES are read). `lang` restricts the search to documents
 * in that language; NULL or "" searches all (the query's own language, detected, then
 * decides how its Cyrillic words are stemmed). Writes up to k (<= MK_KB_MAX_K) hits to
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

/* --- Hybrid retrieval ---------------------------------------------------------------- */

struct mk_embedder;

/* Gives the kb an embedder (borrowed: it must outlive the kb and is used from many
 * threads, which mk_embed allows): every chunk present and added later gets a vector
 * (title, section and text embedded together) in an HNSW index under the cosine metric,
 * one namespace per document language. Returns 0, MK_EEXISTS when already enabled,
 * MK_EINVAL, MK_ENOMEM or an embedding error (then vectors stay off). */
int mk_kb_enable_vectors(mk_kb *kb, const struct mk_embedder *e);
/* True once mk_kb_enable_vectors succeeded. */
bool mk_kb_has_vectors(const mk_kb *kb);

enum mk_kb_mode {
    MK_KB_HYBRID = 0,      /* BM25 + vectors, fused (BM25 alone when vectors are off) */
    MK_KB_BM25 = 1,
    MK_KB_VECTOR = 2,      /* MK_EINVAL when vectors are off */
};

struct mk_kb_search_opts {
    const char *lang;      /* only documents in this language; NULL/"" = all */
    const char *agent;     /* only this agent's documents and the shared ones; NULL/"" = all */
    size_t k;              /* results wanted, 1..MK_KB_MAX_K */
    enum mk_kb_mode mode;
    unsigned max_per_doc;  /* at most this many chunks of one document; 0 = no limit */
    double rrf_k;          /* fusion constant; 0 = MK_KB_DEFAULT_RRF_K */
    double w_bm25, w_vector; /* weights of the two rankings; both 0 = 1 and 1 */
    size_t depth;          /* candidates from each ranker; 0 = MK_KB_DEFAULT_DEPTH, capped at MK_KB_MAX_K */
};

/* One fused result: the chunk, its scores in both rankings and the fused one. */
struct mk_kb_result {
    struct mk_kb_hit hit;  /* hit.score = fused, hit.coverage = BM25 coverage */
    double bm25;           /* BM25 score; 0 when no query term is in the chunk */
    double vector;         /* cosine similarity of query and chunk (-1..1); 0 when vectors are off */
    double fused;          /* sum over rankings of w / (rrf_k + rank) */
    unsigned bm25_rank;    /* 1-based rank in the BM25 list; 0 = not in its top `depth` */
    unsigned vector_rank;  /* the same for the vector list */
};

/* Signals a confidence estimate (the desk's "answer or escalate") can use. */
struct mk_kb_confidence {
    double top_fused;      /* best fused score divided by the highest possible one: 0..1 */
    double margin;         /* top_fused minus the same for the best chunk of another document */
    double top_bm25;       /* the best result's BM25 score */
    double top_coverage;   /* its share of the query's term weight, 0..1 */
    double top_vector;     /* its cosine similarity */
    double max_coverage;   /* best coverage among all results */
    bool agree;            /* both rankings put the same document first */
    const char *query_lang;/* language the query was read as (static string) */
};

/* Searches with both rankings and fuses them (opts->mode). Writes up to opts->k results
 * to out, best first, and fills *conf when not NULL (zeros when nothing matched).
 * Citation data is in each result's hit (title, source, position, page). Returns the
 * number of results, MK_EINVAL for NULL arguments, k out of range or vector mode
 * without vectors, MK_ENOMEM. Thread-safe like mk_kb_search. */
int mk_kb_search_hybrid(mk_kb *kb, const char *query, const struct mk_kb_search_opts *opts, struct mk_kb_result *out,
                        struct mk_kb_confidence *conf);

/* Reciprocal rank fusion of ranked lists, exposed for tests and other indices: lists[i]
 * holds lens[i] item ids, best first; weights may be NULL (all 1). Writes the distinct
 * ids to out_ids with their fused scores (sum of w / (k + rank), rank 1-based) to
 * out_scores, best first (ties: smaller id first), at most cap; returns how many, or
 * MK_EINVAL / MK_ENOMEM. */
int mk_kb_rrf(const uint64_t *const *lists, const size_t *lens, const double *weights, size_t nlists, double k,
              uint64_t *out_ids, double *out_scores, size_t cap);

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
/* The same for a text known to be in `lang` ("kk": every Cyrillic word is stemmed as
 * Kazakh; other values or NULL: by script, as mk_kb_tokenize). */
int mk_kb_tokenize_lang(mk_kb *kb, const char *text, size_t len, const char *lang, mk_kb_term_fn fn, void *arg);

/* Kazakh suffix stripping: the length of the stem of the case-folded UTF-8 word
 * w[0..len) (a prefix of it: Kazakh is agglutinative, so stemming only removes
 * endings). Plural, possessive, case, and common verb endings are stripped repeatedly
 * while at least 3 letters remain ("принтерлеріңізді" -> "принтер"). Pure. */
size_t mk_kb_kazakh_stem(const char *w, size_t len);

#endif
