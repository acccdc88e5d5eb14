/*
 * fuzz_index_load: the index file loader (mk_vector_load_mem) on arbitrary bytes.
 *
 * Each input is tried twice: as given (almost always refused by the checksums), and
 * with both checksums recomputed, so the fuzzer reaches the structural checks behind
 * them (counts, ids, levels, floats) as a crafted file would. Whatever loads is then
 * used: searched with and without a filter, extended, compacted and saved to memory's
 * twin (load again), so a file that passes the checks but leaves a bad graph shows up
 * as a crash here.
 */
#include "vector/vector_int.h"
#include "core/mk_error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void exercise(mk_vector_index *ix)
{
    mk_vector_params p;
    mk_vector_get_params(ix, &p);
    if (p.dim > 4096)
        return;
    float *q = calloc(p.dim, sizeof(float));
    if (!q)
        return;
    for (uint32_t i = 0; i < p.dim; i++)
        q[i] = (float)((i * 37) % 11) - 5.0f + 0.25f;
    mk_vector_hit hits[8];
    size_t got;
    mk_vector_search(ix, q, p.dim, 8, NULL, hits, &got);
    mk_vector_filter f = {.use_ns = true, .ns = 1};
    mk_vector_search_opts o = {.filter = &f, .ef = 16};
    mk_vector_search(ix, q, p.dim, 8, &o, hits, &got);
    mk_vector_search_exact(ix, q, p.dim, 3, NULL, hits, &got);
    mk_vector_insert(ix, 0xfeedULL, q, p.dim, NULL);
    if (got)
        mk_vector_delete(ix, hits[0].key);
    mk_vector_compact(ix);
    mk_vector_search(ix, q, p.dim, 8, NULL, hits, &got);
    mk_vector_memory_bytes(ix);
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_vector_index *ix = NULL;
    if (mk_vector_load_mem(data, size, &ix) == 0) {
        exercise(ix);
        mk_vector_free(ix);
    }
    if (size >= 128 && size < (64u << 20)) {
        uint8_t *w = malloc(size);
        if (!w)
            return 0;
        memcpy(w, data, size);
        uint64_t ph = mk_vector_hash64(w + 128, size - 128, 0);
        memcpy(w + 88, &ph, 8);
        uint64_t hh = mk_vector_hash64(w, 120, 0);
        memcpy(w + 120, &hh, 8);
        ix = NULL;
        if (mk_vector_load_mem(w, size, &ix) == 0) {
            exercise(ix);
            mk_vector_free(ix);
        }
        free(w);
    }
    return 0;
}
