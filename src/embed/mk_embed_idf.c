/*
 * mk_embed_idf: IDF tables for the built-in embedder — fitting and files.
 *
 * A table is 2^18 one-byte weights indexed by a hash of the feature (not by the
 * feature itself): 256 KB whatever the vocabulary, no strings stored (so a table
 * fitted on private tickets does not leak their words), and lookup is one load.
 * Colliding features share a weight; with ~10^5-10^6 distinct features in a corpus
 * a bucket mostly holds one frequent feature or none, and rare features dominate.
 * The weight is idf = ln((N + 1) / (df + 1)) + 1, divided by its maximum (an unseen
 * feature), so unseen features weigh 1 and "the"/"и" weigh ~0.1-0.2 — the same scale as
 * the uniform default, which keeps vectors comparable in magnitude either way.
 *
 * File layout (little-endian), written atomically (temp file + fsync + rename):
 *   0  "MKEMBIDF"          8  u32 file version (1)   12 u32 feature schema
 *   16 u32 bits (18)       20 u32 zero               24 u64 documents
 *   32 u64 digest of the weights                     40 weights[2^18]
 *   40 + 2^18  u64 checksum of all the bytes before it
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "embed/mk_embed_int.h"

#define FILE_VERSION 1u
#define HEADER_BYTES 40u
#define FILE_BYTES (HEADER_BYTES + MK_EMBED__IDF_SIZE + 8u)
#define DIGEST_SEED 0x243f6a8885a308d3ull
#define CHECKSUM_SEED 0x13198a2e03707344ull

static const char magic[8] = {'M', 'K', 'E', 'M', 'B', 'I', 'D', 'F'};

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
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int mk_embed__idf_from_df(const uint32_t *df, uint64_t ndocs, uint32_t schema, mk_embed_idf **out)
{
    mk_embed_idf *t = malloc(sizeof *t);
    if (!t)
        return MK_ENOMEM;
    t->ndocs = ndocs;
    t->schema = schema;
    double maxw = log((double)ndocs + 1.0) + 1.0;
    for (uint32_t b = 0; b < MK_EMBED__IDF_SIZE; b++) {
        double w = log(((double)ndocs + 1.0) / ((double)df[b] + 1.0)) + 1.0;
        long q = lround(255.0 * w / maxw);
        t->w[b] = (uint8_t)(q < 1 ? 1 : q > 255 ? 255 : q);
    }
    t->digest = mk_embed__hash_bytes(DIGEST_SEED, t->w, sizeof t->w);
    *out = t;
    return 0;
}

struct fit {
    uint32_t *df;
    uint32_t *stamp;   /* last document (1-based) that counted each bucket */
    uint32_t doc;
};

static void count_feature(void *arg, uint64_t fh, float weight)
{
    (void)weight;
    struct fit *f = arg;
    uint32_t b = mk_embed__idf_bucket(fh);
    if (f->stamp[b] != f->doc) {
        f->stamp[b] = f->doc;
        f->df[b]++;
    }
}

int mk_embed_fit_idf(const mk_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                     mk_embed_idf **out)
{
    if (!out)
        return MK_EINVAL;
    *out = NULL;
    if (!e || !texts || n == 0 || n > MK_EMBED_MAX_FIT_TEXTS)
        return MK_EINVAL;
    struct fit f;
    f.df = calloc(MK_EMBED__IDF_SIZE, sizeof *f.df);
    f.stamp = calloc(MK_EMBED__IDF_SIZE, sizeof *f.stamp);
    int rc = (f.df && f.stamp) ? 0 : MK_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        f.doc = (uint32_t)i + 1;
        const char *t = texts[i];
        size_t len = lens ? lens[i] : (t ? strlen(t) : 0);
        rc = mk_embed__features(e, t, len, count_feature, &f);
    }
    if (rc == 0)
        rc = mk_embed__idf_from_df(f.df, n, mk_embed__schema(!(e->flags & MK_EMBED_NO_STEM)), out);
    free(f.df);
    free(f.stamp);
    return rc;
}

uint64_t mk_embed_idf_docs(const mk_embed_idf *idf) { return idf ? idf->ndocs : 0; }

void mk_embed_idf_free(mk_embed_idf *idf) { free(idf); }

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return MK_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int mk_embed_save_idf(const mk_embed_idf *idf, const char *path)
{
    if (!idf || !path || !*path)
        return MK_EINVAL;
    unsigned char *buf = malloc(FILE_BYTES);
    if (!buf)
        return MK_ENOMEM;
    memcpy(buf, magic, 8);
    put32(buf + 8, FILE_VERSION);
    put32(buf + 12, idf->schema);
    put32(buf + 16, MK_EMBED_IDF_BITS);
    put32(buf + 20, 0);
    put64(buf + 24, idf->ndocs);
    put64(buf + 32, idf->digest);
    memcpy(buf + HEADER_BYTES, idf->w, MK_EMBED__IDF_SIZE);
    put64(buf + HEADER_BYTES + MK_EMBED__IDF_SIZE,
          mk_embed__hash_bytes(CHECKSUM_SEED, buf, HEADER_BYTES + MK_EMBED__IDF_SIZE));

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    int rc = tmp ? 0 : MK_ENOMEM;
    int fd = -1;
    if (rc == 0) {
        snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
        fd = mkstemp(tmp);
        if (fd < 0)
            rc = MK_EIO;
    }
    if (rc == 0)
        rc = write_all(fd, buf, FILE_BYTES);
    if (rc == 0 && fsync(fd) != 0)
        rc = MK_EIO;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = MK_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = MK_EIO;
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    free(tmp);
    free(buf);
    return rc;
}

int mk_embed_load_idf(const char *path, mk_embed_idf **out)
{
    if (!out)
        return MK_EINVAL;
    *out = NULL;
    if (!path || !*path)
        return MK_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MK_ENOTFOUND : MK_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return MK_EIO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size != (off_t)FILE_BYTES) {
        close(fd);
        return S_ISREG(st.st_mode) ? MK_ECORRUPT : MK_EIO;
    }
    unsigned char *buf = malloc(FILE_BYTES);
    if (!buf) {
        close(fd);
        return MK_ENOMEM;
    }
    size_t got = 0;
    int rc = 0;
    while (got < FILE_BYTES) {
        ssize_t r = read(fd, buf + got, FILE_BYTES - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r == 0 ? MK_ECORRUPT : MK_EIO; /* shrank under us: treat as torn */
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (rc == 0 && (memcmp(buf, magic, 8) != 0 || get32(buf + 8) != FILE_VERSION ||
                    get32(buf + 16) != MK_EMBED_IDF_BITS || get32(buf + 20) != 0 ||
                    get64(buf + HEADER_BYTES + MK_EMBED__IDF_SIZE) !=
                        mk_embed__hash_bytes(CHECKSUM_SEED, buf, HEADER_BYTES + MK_EMBED__IDF_SIZE)))
        rc = MK_ECORRUPT;
    mk_embed_idf *t = NULL;
    if (rc == 0) {
        t = malloc(sizeof *t);
        if (!t)
            rc = MK_ENOMEM;
    }
    if (rc == 0) {
        t->schema = get32(buf + 12);
        t->ndocs = get64(buf + 24);
        memcpy(t->w, buf + HEADER_BYTES, MK_EMBED__IDF_SIZE);
        t->digest = mk_embed__hash_bytes(DIGEST_SEED, t->w, sizeof t->w);
        /* The checksum covers the digest too, so a mismatch here means a writer bug
         * or a different build's digest: either way not a table we can trust. */
        if (t->digest != get64(buf + 32))
            rc = MK_ECORRUPT;
        for (uint32_t b = 0; b < MK_EMBED__IDF_SIZE && rc == 0; b++)
            if (t->w[b] == 0)
                rc = MK_ECORRUPT;
    }
    free(buf);
    if (rc != 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}
