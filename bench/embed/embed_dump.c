/*
 * embed_dump: texts in, built-in embeddings out — a helper for benchmarks that need
 * vectors of real texts (vector index recall, cache quality) without the Mayak CLI.
 *
 *   embed_dump [options] < texts.txt > vectors.bin
 *
 * Input: one text per line (UTF-8; a trailing "\r" is dropped; an empty line is an
 * empty text and still gets a vector, so line i is always vector i).
 * Output (little-endian, as on every machine Mayak targets):
 *   bytes 0..7   "MKEMBVEC"
 *   u32          format version (1)
 *   u32          dim
 *   u64          count of vectors
 *   u64          embedder fingerprint (equal fingerprints = comparable vectors)
 *   count * dim  float32, vector i = line i, unit L2 norm
 *
 * Options:
 *   --dim N            output dimension (default 384)
 *   --seed N           projection seed (default built-in)
 *   --hashes N         coordinates per feature (default 2)
 *   --ngram MIN-MAX    character n-gram sizes (default 3-5)
 *   --disable LIST     comma list of: chars,bigrams,stem,stopwords,sqrt; "+allbigrams"
 *                      switches bigrams of every word pair on (the default has them only
 *                      after a negation)
 *   --idf FILE         weight features with an IDF table saved by --save-idf
 *   --fit FILE         fit an IDF table on FILE (one document per line) and use it
 *   --save-idf FILE    save the table made by --fit
 *   --lossy            invalid UTF-8 bytes become spaces (default: error)
 * Exit status: 0, 1 on a bad text (with its line number on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "embed/mk_embed.h"

struct lines {
    char *data;
    size_t len;
    const char **text;
    size_t *tlen;
    size_t n;
};

static int read_stream(FILE *f, struct lines *l)
{
    size_t cap = 1 << 16;
    l->data = malloc(cap);
    l->len = 0;
    if (!l->data)
        return -1;
    for (;;) {
        if (l->len == cap) {
            cap *= 2;
            char *p = realloc(l->data, cap);
            if (!p)
                return -1;
            l->data = p;
        }
        size_t r = fread(l->data + l->len, 1, cap - l->len, f);
        if (r == 0)
            break;
        l->len += r;
    }
    if (ferror(f))
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < l->len; i++)
        n += l->data[i] == '\n';
    if (l->len && l->data[l->len - 1] != '\n')
        n++;
    l->text = malloc((n ? n : 1) * sizeof *l->text);
    l->tlen = malloc((n ? n : 1) * sizeof *l->tlen);
    if (!l->text || !l->tlen)
        return -1;
    l->n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= l->len; i++) {
        if (i < l->len && l->data[i] != '\n')
            continue;
        if (i == l->len && start == l->len)
            break;
        size_t e = i;
        if (e > start && l->data[e - 1] == '\r')
            e--;
        l->text[l->n] = l->data + start;
        l->tlen[l->n] = e - start;
        l->n++;
        start = i + 1;
    }
    return 0;
}

static void lines_free(struct lines *l)
{
    free(l->data);
    free(l->text);
    free(l->tlen);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_disable(const char *s, unsigned *out)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        {"chars", MK_EMBED_NO_CHARS}, {"bigrams", MK_EMBED_NO_BIGRAMS}, {"stem", MK_EMBED_NO_STEM},
        {"stopwords", MK_EMBED_NO_STOPWORDS}, {"sqrt", MK_EMBED_NO_SQRT},
        {"+allbigrams", MK_EMBED_ALL_BIGRAMS},
    };
    *out = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
                *out |= names[i].bit;
                found = true;
            }
        if (!found && n)
            return -1;
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int usage(void)
{
    fprintf(stderr, "usage: embed_dump [--dim N] [--seed N] [--hashes N] [--ngram MIN-MAX] "
                    "[--disable chars,bigrams,stem,stopwords,sqrt] [--idf FILE] [--fit FILE] "
                    "[--save-idf FILE] [--lossy] < lines > vectors\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct mk_embed_options o = {0};
    const char *idf_path = NULL, *fit_path = NULL, *save_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (strcmp(a, "--lossy") == 0) {
            o.lossy_utf8 = true;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--dim") == 0 && parse_u64(v, &x) == 0 && x <= MK_EMBED_MAX_DIM)
            o.dim = (uint32_t)x;
        else if (strcmp(a, "--seed") == 0 && parse_u64(v, &x) == 0)
            o.seed = x;
        else if (strcmp(a, "--hashes") == 0 && parse_u64(v, &x) == 0 && x <= 4)
            o.hashes = (uint32_t)x;
        else if (strcmp(a, "--ngram") == 0) {
            unsigned lo, hi;
            char extra;
            if (sscanf(v, "%u-%u%c", &lo, &hi, &extra) != 2)
                return usage();
            o.ngram_min = lo;
            o.ngram_max = hi;
        } else if (strcmp(a, "--disable") == 0) {
            if (parse_disable(v, &o.flags) != 0)
                return usage();
        } else if (strcmp(a, "--idf") == 0)
            idf_path = v;
        else if (strcmp(a, "--fit") == 0)
            fit_path = v;
        else if (strcmp(a, "--save-idf") == 0)
            save_path = v;
        else
            return usage();
    }
    if ((idf_path && fit_path) || (save_path && !fit_path))
        return usage();

    mk_embed_idf *idf = NULL;
    int rc = 0;
    if (idf_path) {
        rc = mk_embed_load_idf(idf_path, &idf);
        if (rc) {
            fprintf(stderr, "embed_dump: %s: %s\n", idf_path, mk_strerror(rc));
            return 1;
        }
    } else if (fit_path) {
        FILE *f = fopen(fit_path, "rb");
        struct lines docs = {0};
        if (!f || read_stream(f, &docs) != 0) {
            fprintf(stderr, "embed_dump: cannot read %s\n", fit_path);
            if (f)
                fclose(f);
            lines_free(&docs);
            return 1;
        }
        fclose(f);
        mk_embedder *fe = NULL;
        rc = mk_embedder_new(&o, &fe);
        if (rc == 0)
            rc = mk_embed_fit_idf(fe, docs.text, docs.tlen, docs.n, &idf);
        mk_embedder_free(fe);
        lines_free(&docs);
        if (rc == 0 && save_path)
            rc = mk_embed_save_idf(idf, save_path);
        if (rc) {
            fprintf(stderr, "embed_dump: fitting IDF: %s\n", mk_strerror(rc));
            mk_embed_idf_free(idf);
            return 1;
        }
    }
    o.idf = idf;
    mk_embedder *e = NULL;
    rc = mk_embedder_new(&o, &e);
    mk_embed_idf_free(idf);
    if (rc) {
        fprintf(stderr, "embed_dump: %s\n", mk_strerror(rc));
        return 2;
    }

    struct lines in = {0};
    float *vecs = NULL;
    int status = 1;
    uint32_t dim = mk_embedder_dim(e);
    size_t failed = 0;
    if (read_stream(stdin, &in) != 0) {
        fprintf(stderr, "embed_dump: cannot read stdin\n");
        goto out;
    }
    vecs = malloc((in.n ? in.n : 1) * dim * sizeof *vecs);
    if (!vecs) {
        fprintf(stderr, "embed_dump: out of memory\n");
        goto out;
    }
    rc = mk_embed_batch(e, in.text, in.tlen, in.n, vecs, &failed);
    if (rc) {
        fprintf(stderr, "embed_dump: line %zu: %s\n", failed + 1, mk_strerror(rc));
        goto out;
    }
    unsigned char hdr[32];
    memcpy(hdr, "MKEMBVEC", 8);
    put32(hdr + 8, 1);
    put32(hdr + 12, dim);
    put64(hdr + 16, in.n);
    put64(hdr + 24, mk_embedder_fingerprint(e));
    if (fwrite(hdr, 1, sizeof hdr, stdout) != sizeof hdr ||
        fwrite(vecs, sizeof *vecs, in.n * dim, stdout) != in.n * dim || fflush(stdout) != 0) {
        fprintf(stderr, "embed_dump: write failed\n");
        goto out;
    }
    status = 0;
out:
    free(vecs);
    lines_free(&in);
    mk_embedder_free(e);
    return status;
}
