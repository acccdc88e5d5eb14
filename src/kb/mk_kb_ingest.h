/*
 * mk_kb_ingest: files -> chunks. Reads Markdown (cmark-gfm), HTML (gumbo), plain text
 * and PDF (poppler, text per page) into one model — a title and a sequence of blocks
 * (headings, paragraphs, whole lists, code, tables, quotes), each with its page — and
 * cuts that into chunks by the document's structure:
 *
 *  - the first level-1 heading before any section is the title (HTML: it beats
 *    <title>, which tends to carry the site's name; Markdown front matter's `title:`
 *    beats it); a heading of level 2 or 3 (or a later level 1) starts a new chunk, and
 *    the chunk's section is the heading path ("Printing / Paper jams"); deeper headings
 *    stay inside the text;
 *  - blocks are packed into a chunk up to MK_KB_CHUNK_TARGET bytes, never cut inside:
 *    a list (numbered steps) travels whole, unless it alone is longer than
 *    MK_KB_MAX_CHUNK_BYTES, when it is cut between items;
 *  - when a section takes several chunks, each after the first starts with the tail
 *    of the previous one (up to MK_KB_CHUNK_OVERLAP bytes, cut at a sentence or word),
 *    so a passage cut at the boundary is still found whole once;
 *  - a PDF chunk never spans pages, so its page number is an exact citation.
 *
 * Each chunk keeps its section, language (detected per chunk; short ones inherit the
 * document's), page and byte offset. Parsing is a pure function of the bytes; the
 * library (mk_kb_store.h) decides identity, storage and change detection.
 */
#ifndef MK_KB_INGEST_H
#define MK_KB_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "kb/mk_kb.h"

/* A file bigger than this is refused before parsing: PDFs of manuals reach tens of MB
 * with images; their text is far smaller (and capped by MK_KB_MAX_DOC_BYTES). */
#define MK_KB_MAX_FILE_BYTES (64u * 1024 * 1024)
/* Bytes a chunk is filled to before the next block starts a new one: about a screen of
 * an answer, a few paragraphs or one list of steps. */
#define MK_KB_CHUNK_TARGET 1200
/* Tail of the previous chunk repeated at the start of the next one within a section. */
#define MK_KB_CHUNK_OVERLAP 200
/* PDF pages read; a longer document is cut off with a note in the parse result. */
#define MK_KB_MAX_PDF_PAGES 5000

enum mk_kb_format {
    MK_KB_FORMAT_UNKNOWN = 0,
    MK_KB_FORMAT_MARKDOWN,
    MK_KB_FORMAT_HTML,
    MK_KB_FORMAT_TEXT,
    MK_KB_FORMAT_PDF,
};

/* The format a file name says (.md .markdown .mdown .mkd; .html .htm .xhtml; .txt
 * .text; .pdf; case-insensitive), MK_KB_FORMAT_UNKNOWN otherwise. */
enum mk_kb_format mk_kb_format_from_name(const char *name);
/* "markdown", "html", "text", "pdf", "unknown" (static). */
const char *mk_kb_format_name(enum mk_kb_format f);
/* Parses a format name as above; MK_KB_FORMAT_UNKNOWN when it is none. */
enum mk_kb_format mk_kb_format_parse(const char *name);

/* The document id of a path: its file name without the last extension, Russian and
 * Kazakh letters spelled in Latin ("Сброс пароля.md" -> "sbros-parolya"), and every run
 * of other bytes outside [A-Za-z0-9._-] as one '-', cut to MK_MAX_NAME_BYTES. Returns
 * 0, or MK_EINVAL when nothing usable is left (".md", "/", "???"). out needs cap >= 2. */
int mk_kb_id_from_path(const char *path, char *out, size_t cap);

struct mk_kb_parsed_chunk {
    char *section;         /* "" for the intro */
    char *text;
    size_t text_len;
    char lang[4];
    uint32_t page;         /* PDF: 1-based; else 0 */
    uint32_t offset;       /* byte offset of its first block in the source file (PDF: in the page's text) */
};

struct mk_kb_parsed {
    char *title;           /* the document's title: first level-1 heading, <title>, PDF metadata, first line */
    char lang[4];          /* detected over the whole text (or the caller's override) */
    enum mk_kb_format format;
    struct mk_kb_parsed_chunk *chunks;
    size_t n;
    size_t text_bytes;     /* bytes of extracted text */
    uint32_t pages;        /* PDF pages read */
};

/* Parses data[0..len) as format f into title and chunks. fallback_title is used when
 * the document has none (NULL = "untitled"); lang ("ru", "en", "kk"; NULL = detect)
 * overrides detection. Returns 0 (a document without any text gives n == 0), or
 * MK_EINVAL (unknown format, NULL data with len), MK_ETOOBIG (file over
 * MK_KB_MAX_FILE_BYTES or text over MK_KB_MAX_DOC_BYTES), MK_EBADUTF8 (a text format
 * that is not UTF-8, or has NUL bytes), MK_ECORRUPT (a PDF poppler cannot open, or an
 * encrypted one), MK_ENOMEM; err (may be NULL) gets a sentence. On failure *out is
 * empty; release it with mk_kb_parsed_release in any case. */
int mk_kb_parse(enum mk_kb_format f, const char *data, size_t len, const char *fallback_title, const char *lang,
                struct mk_kb_parsed *out, mk_buf *err);
/* Frees what a parse allocated and zeroes *p. Accepts NULL and a zeroed struct. */
void mk_kb_parsed_release(struct mk_kb_parsed *p);

#endif
