/*
 * mk_kb_int: the knowledge base's internal contract between its files
 * (mk_kb_token.c, mk_kb_chunk.c, mk_kb.c, mk_kb_demo.c) and the generated table of
 * embedded demo articles. Not for use outside src/kb/.
 */
#ifndef MK_KB_INT_H
#define MK_KB_INT_H

#include <stddef.h>

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
/* See mk_kb_tokenize(). */
int mk_kb__tokenize(struct mk_kb__tokenizer *t, const char *text, size_t len, mk_kb_term_fn fn, void *arg);

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

#endif
