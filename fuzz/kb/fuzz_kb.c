/* Fuzz target for the knowledge base's input surface: arbitrary bytes as a Markdown
 * document (chunking, tokenizing, indexing) and as a search query (tokenizing,
 * language detection, BM25). The first byte splits the input into the two. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kb/mk_kb.h"

static mk_kb *demo;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!demo) {
        demo = mk_kb_new();
        if (!demo || mk_kb_load_demo(demo) != 0)
            __builtin_trap();
    }
    if (size == 0)
        return 0;
    size_t split = 1 + (size_t)data[0] * (size - 1) / 255;
    const char *doc = (const char *)data + 1;
    size_t doc_len = split - 1;
    char query[4096];
    size_t qlen = size - split < sizeof query - 1 ? size - split : sizeof query - 1;
    memcpy(query, data + split, qlen);
    query[qlen] = '\0';

    (void)mk_kb_detect_language(doc, doc_len);
    struct mk_kb_hit hits[8];
    int n = mk_kb_search(demo, query, NULL, 8, hits);
    for (int i = 0; i < n; i++)
        if (!(hits[i].score > 0) || hits[i].coverage < 0 || hits[i].coverage > 1 || !hits[i].text)
            __builtin_trap();

    mk_kb *kb = mk_kb_new();
    if (!kb)
        return 0;
    struct mk_kb_doc d = {.id = "fuzz", .lang = "en", .text = doc, .text_len = doc_len};
    int rc = mk_kb_add_document(kb, &d);
    if (rc == 0) {
        n = mk_kb_search(kb, query, "en", 8, hits);
        if (n < 0)
            __builtin_trap();
        for (size_t c = 0; c < mk_kb_chunk_count(kb); c++) {
            struct mk_kb_hit h;
            if (!mk_kb_chunk(kb, c, &h) || strlen(h.text) == 0 || strlen(h.text) > MK_KB_MAX_CHUNK_BYTES)
                __builtin_trap();
        }
    } else if (mk_kb_chunk_count(kb) != 0) {
        __builtin_trap(); /* a failed add must leave the kb unchanged */
    }
    mk_kb_free(kb);
    return 0;
}
