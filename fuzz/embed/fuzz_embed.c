/* Fuzz target for the built-in embedder's input surfaces: arbitrary bytes as a text
 * (strict and lossy UTF-8 modes; normalisation, word splitting, stemming, hashing) and
 * as an IDF table file (loader: magic, version, size, checksum). Every vector that
 * comes back must be finite and of unit length; the strict and lossy embedders must
 * agree on valid input. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "embed/mk_embed.h"

static mk_embedder *strict, *lossy, *small;
static char idf_path[64];

static void check_unit(const float *v, uint32_t d)
{
    double s = 0;
    for (uint32_t i = 0; i < d; i++) {
        if (!isfinite(v[i]))
            __builtin_trap();
        s += (double)v[i] * v[i];
    }
    if (fabs(s - 1.0) > 1e-4)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!strict) {
        struct mk_embed_options o = {.lossy_utf8 = true};
        struct mk_embed_options s = {.dim = 16, .ngram_min = 1, .ngram_max = 8, .hashes = 4};
        if (mk_embedder_new(NULL, &strict) || mk_embedder_new(&o, &lossy) || mk_embedder_new(&s, &small))
            __builtin_trap();
        snprintf(idf_path, sizeof idf_path, "/tmp/fuzz-embed-idf-%ld", (long)getpid());
    }
    static float a[MK_EMBED_DEFAULT_DIM], b[MK_EMBED_DEFAULT_DIM], c[16];
    const char *text = (const char *)data;
    int rs = mk_embed_text(strict, text, size, a);
    int rl = mk_embed_text(lossy, text, size, b);
    if (rl != 0)
        __builtin_trap(); /* lossy mode accepts any bytes */
    check_unit(b, MK_EMBED_DEFAULT_DIM);
    if (rs == 0) {
        check_unit(a, MK_EMBED_DEFAULT_DIM);
        if (memcmp(a, b, sizeof a) != 0)
            __builtin_trap();
    } else if (rs != MK_EBADUTF8) {
        __builtin_trap();
    }
    if (mk_embed_text(small, text, size, c) == 0)
        check_unit(c, 16);

    /* The same bytes as an IDF file: anything but a valid table is MK_ECORRUPT. */
    FILE *f = fopen(idf_path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    mk_embed_idf *idf = NULL;
    int rc = mk_embed_load_idf(idf_path, &idf);
    if (rc == 0) {
        struct mk_embed_options o = {.idf = idf};
        mk_embedder *e = NULL;
        if (mk_embedder_new(&o, &e) == 0 && mk_embed_text(e, "проверка check", 19, a) == 0)
            check_unit(a, MK_EMBED_DEFAULT_DIM);
        mk_embedder_free(e);
        mk_embed_idf_free(idf);
    } else if (rc != MK_ECORRUPT) {
        __builtin_trap();
    }
    unlink(idf_path);
    return 0;
}
