/*
 * kb_ingest_int: the contract between the format readers (kb_markdown.c, kb_html.c,
 * kb_text.c, kb_pdf.c) and the structural chunker (kb_ingest.c). A reader turns bytes
 * into a title and a list of blocks; the chunker does everything after that, the same
 * way for every format. Not for use outside src/kb/.
 */
#ifndef KB_INGEST_INT_H
#define KB_INGEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "kb/mk_kb_ingest.h"

enum kb_block_kind {
    KB_BLOCK_HEADING,
    KB_BLOCK_PARAGRAPH,
    KB_BLOCK_LIST,        /* a whole list, items on lines starting with "- " or "N. " */
    KB_BLOCK_CODE,
    KB_BLOCK_TABLE,
    KB_BLOCK_QUOTE,
};

struct kb_block {
    enum kb_block_kind kind;
    int level;            /* headings: 1..6 */
    size_t off, len;      /* text in kb_doc_model.text */
    uint32_t page;        /* 0 = not paged */
    uint32_t src_off;     /* offset reported for chunks starting here */
};

struct kb_doc_model {
    mk_buf text;          /* every block's text, each followed by a NUL */
    struct kb_block *blocks;
    size_t n, cap;
    mk_buf title;         /* from metadata (<title>, PDF info, front matter); may stay empty */
    bool title_weak;      /* a title the page's own first level-1 heading beats (HTML <title>,
                             which often carries the site's name) */
    uint32_t pages;
};

void kb_model_init(struct kb_doc_model *m);
void kb_model_release(struct kb_doc_model *m);
/* Appends a block with text s[0..len) trimmed of surrounding blank space (an empty
 * block is dropped). 0 or MK_ENOMEM / MK_ETOOBIG past MK_KB_MAX_DOC_BYTES of text. */
int kb_model_add(struct kb_doc_model *m, enum kb_block_kind kind, int level, const char *s, size_t len,
                 uint32_t page, uint32_t src_off);
/* The text of block i (NUL-terminated). */
static inline const char *kb_block_text(const struct kb_doc_model *m, size_t i) { return m->text.data + m->blocks[i].off; }

/* Format readers: fill the model from the bytes (already size-checked; the text
 * formats are valid UTF-8 without NUL). 0 or an MK_E* code with a sentence in err. */
int kb_read_markdown(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err);
int kb_read_html(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err);
int kb_read_text(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err);
int kb_read_pdf(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err);

/* Plain text -> blocks: paragraphs at blank lines, runs of list-item lines as lists,
 * underlined lines (=== / ---) as headings. Used by the text reader and per PDF page. */
int kb_split_plain(const char *s, size_t len, struct kb_doc_model *m, uint32_t page, uint32_t base_off,
                   bool headings);

#endif
