/* Fuzz target for Markdown ingestion: arbitrary bytes through mk_kb_parse (cmark-gfm,
 * the structural chunker, language detection) and, when they parse, into a knowledge
 * base as caller-cut chunks. Checks the chunker's promises on every input: chunks are
 * non-empty valid UTF-8 within MK_KB_MAX_CHUNK_BYTES, offsets inside the input, and the
 * kb accepts what the parser produced. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_utf8.h"
#include "kb/mk_kb_ingest.h"

static mk_kb *kb;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!kb && !(kb = mk_kb_new()))
        __builtin_trap();
    struct mk_kb_parsed p;
    int rc = mk_kb_parse(MK_KB_FORMAT_MARKDOWN, (const char *)data, size, "fuzz", NULL, &p, NULL);
    if (rc == 0) {
        struct mk_kb_chunk_in in[64];
        size_t n = p.n < 64 ? p.n : 64;
        for (size_t i = 0; i < p.n; i++) {
            const struct mk_kb_parsed_chunk *c = &p.chunks[i];
            if (c->text_len == 0 || c->text_len > MK_KB_MAX_CHUNK_BYTES || strlen(c->text) != c->text_len ||
                !mk_utf8_valid(c->text, c->text_len) || c->offset > size)
                __builtin_trap();
            if (i < n)
                in[i] = (struct mk_kb_chunk_in){.section = c->section, .text = c->text, .text_len = c->text_len,
                                                .lang = c->lang, .offset = c->offset};
        }
        if (!mk_utf8_valid(p.title, strlen(p.title)))
            __builtin_trap();
        struct mk_kb_doc d = {.id = "fuzz", .lang = p.lang, .title = p.title};
        if (n > 0 && mk_kb_put_chunks(kb, &d, in, n, NULL) != 0)
            __builtin_trap();
    }
    mk_kb_parsed_release(&p);
    /* Tombstones pile up with every input: start over now and then. */
    if (mk_kb_document_slots(kb) > 2000) {
        mk_kb_free(kb);
        kb = NULL;
    }
    return 0;
}
