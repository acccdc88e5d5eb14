/*
 * vecdata.h: the benchmark's vector files, shared by the C drivers (header-only).
 *
 *   vectors  "MKVF" u32 n u32 dim, then n*dim float32 (little-endian), row-major
 *   truth    "MKVG" u32 nq u32 k,  then nq*k uint32 row numbers, nearest first
 * The Python and Node drivers read the same files (numpy.fromfile / Buffer).
 */
#ifndef MK_BENCH_VECDATA_H
#define MK_BENCH_VECDATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void *vd_read(const char *path, const char magic[4], uint32_t *a, uint32_t *b,
                            size_t elem)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    char m[4];
    uint32_t hdr[2];
    if (fread(m, 1, 4, f) != 4 || memcmp(m, magic, 4) != 0 || fread(hdr, 4, 2, f) != 2) {
        fprintf(stderr, "%s: bad header\n", path);
        fclose(f);
        return NULL;
    }
    size_t count = (size_t)hdr[0] * hdr[1];
    void *data = malloc(count > 0 ? count * elem : 1);
    if (!data || fread(data, elem, count, f) != count) {
        fprintf(stderr, "%s: short file\n", path);
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *a = hdr[0];
    *b = hdr[1];
    return data;
}

static inline int vd_write(const char *path, const char magic[4], uint32_t a, uint32_t b,
                           const void *data, size_t elem)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint32_t hdr[2] = {a, b};
    size_t count = (size_t)a * b;
    int ok = fwrite(magic, 1, 4, f) == 4 && fwrite(hdr, 4, 2, f) == 2 &&
             fwrite(data, elem, count, f) == count;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

#endif
