/* Save/load: identical answers after a round trip (with tombstones, namespaces and
 * int8), corrupt and truncated files refused with MK_ECORRUPT, a crafted file with
 * valid checksums but a bad link refused too, and a failed or torn save never costs
 * the previous snapshot. */
#include <criterion/criterion.h>

#include "vector/vector_int.h"
#include "vtest.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM 24

static char dir[256];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/mk-vector-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(persist, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 120);

static mk_vector_index *sample(enum mk_vector_quant qn, size_t n)
{
    mk_vector_params p;
    mk_vector_params_default(&p, DIM, MK_VECTOR_COSINE);
    p.quant = qn;
    p.M = 8;
    mk_vector_index *ix;
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    float *v = vt_clustered(n, DIM, 20, 77);
    for (size_t i = 0; i < n; i++) {
        mk_vector_attrs a = {.ns = (uint32_t)(i % 3), .meta = i * 3};
        cr_assert_eq(mk_vector_insert(ix, 500 + i, v + i * DIM, DIM, &a), 0);
    }
    for (size_t i = 0; i < n; i += 9)
        cr_assert_eq(mk_vector_delete(ix, 500 + i), 0);
    free(v);
    return ix;
}

static void same_answers(mk_vector_index *a, mk_vector_index *b)
{
    float *q = vt_clustered(50, DIM, 20, 78);
    mk_vector_filter f = {.use_ns = true, .ns = 1};
    for (size_t i = 0; i < 50; i++) {
        mk_vector_hit ha[10], hb[10];
        size_t ga, gb;
        mk_vector_search_opts o = {.filter = i % 2 ? &f : NULL};
        cr_assert_eq(mk_vector_search(a, q + i * DIM, DIM, 10, &o, ha, &ga), 0);
        cr_assert_eq(mk_vector_search(b, q + i * DIM, DIM, 10, &o, hb, &gb), 0);
        cr_assert_eq(ga, gb);
        for (size_t j = 0; j < ga; j++) {
            cr_assert_eq(ha[j].key, hb[j].key);
            cr_assert_eq(ha[j].distance, hb[j].distance);
            cr_assert_eq(ha[j].ns, hb[j].ns);
            cr_assert_eq(ha[j].meta, hb[j].meta);
        }
    }
    cr_assert_eq(mk_vector_count(a), mk_vector_count(b));
    cr_assert_eq(mk_vector_deleted_count(a), mk_vector_deleted_count(b));
    free(q);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

Test(persist, round_trip_float_and_int8)
{
    for (int qn = 0; qn < 2; qn++) {
        mk_vector_index *ix = sample(qn ? MK_VECTOR_QUANT_INT8 : MK_VECTOR_QUANT_NONE, 2000), *lx;
        char path[300];
        snprintf(path, sizeof path, "%s/ix%d.mkv", dir, qn);
        cr_assert_eq(mk_vector_save(ix, path), 0);
        char tmp[320];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        cr_assert_neq(access(tmp, F_OK), 0, "temp file left behind");
        cr_assert_eq(mk_vector_load(path, &lx), 0);
        same_answers(ix, lx);
        /* the loaded index keeps working: inserts, deletes, compaction, save again */
        float v[DIM];
        for (int i = 0; i < DIM; i++)
            v[i] = (float)(i + 1);
        cr_assert_eq(mk_vector_insert(lx, 1, v, DIM, NULL), 0);
        cr_assert_eq(mk_vector_compact(lx), 0);
        cr_assert_eq(mk_vector_save(lx, path), 0);
        mk_vector_index *l2;
        cr_assert_eq(mk_vector_load(path, &l2), 0);
        same_answers(lx, l2);
        mk_vector_free(l2);
        mk_vector_free(lx);
        mk_vector_free(ix);
    }
}

Test(persist, empty_index_round_trip)
{
    mk_vector_params p;
    mk_vector_params_default(&p, 3, MK_VECTOR_L2);
    mk_vector_index *ix, *lx;
    cr_assert_eq(mk_vector_new(&p, &ix), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/empty.mkv", dir);
    cr_assert_eq(mk_vector_save(ix, path), 0);
    cr_assert_eq(mk_vector_load(path, &lx), 0);
    cr_assert_eq(mk_vector_count(lx), 0);
    float v[3] = {1, 2, 3};
    cr_assert_eq(mk_vector_insert(lx, 9, v, 3, NULL), 0);
    mk_vector_free(lx);
    mk_vector_free(ix);
}

Test(persist, corrupt_and_truncated_files)
{
    mk_vector_index *ix = sample(MK_VECTOR_QUANT_NONE, 300), *lx = NULL;
    char path[300], bad[300];
    snprintf(path, sizeof path, "%s/c.mkv", dir);
    snprintf(bad, sizeof bad, "%s/bad.mkv", dir);
    cr_assert_eq(mk_vector_save(ix, path), 0);
    size_t len;
    uint8_t *img = slurp(path, &len);
    /* a flipped byte anywhere: header fields, reserved bytes, hashes, payload */
    size_t where[] = {0, 9, 17, 44, 60, 100, 121, 128, 129, len / 3, len / 2, len - 5, len - 1};
    for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
        img[where[i]] ^= 0x20;
        spit(bad, img, len);
        cr_assert_eq(mk_vector_load(bad, &lx), MK_ECORRUPT, "flip at %zu", where[i]);
        cr_assert_null(lx);
        cr_assert_eq(mk_vector_load_mem(img, len, &lx), MK_ECORRUPT);
        img[where[i]] ^= 0x20;
    }
    /* truncated at many lengths, and one byte too long */
    size_t cuts[] = {0, 1, 8, 127, 128, 129, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        spit(bad, img, cuts[i]);
        cr_assert_eq(mk_vector_load(bad, &lx), MK_ECORRUPT, "cut at %zu", cuts[i]);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, img, len);
    longer[len] = 0;
    cr_assert_eq(mk_vector_load_mem(longer, len + 1, &lx), MK_ECORRUPT);
    free(longer);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.mkv", dir);
    cr_assert_eq(mk_vector_load(missing, &lx), MK_ENOTFOUND);
    cr_assert_eq(mk_vector_load(dir, &lx), MK_EIO, "a directory");
    /* the good image still loads */
    cr_assert_eq(mk_vector_load_mem(img, len, &lx), 0);
    mk_vector_free(lx);
    free(img);
    mk_vector_free(ix);
}

/* Rewrites both hashes so only the structural checks stand between the file and a
 * search that would read out of bounds. */
static void rehash(uint8_t *img, size_t len)
{
    uint64_t ph = mk_vector_hash64(img + 128, len - 128, 0);
    memcpy(img + 88, &ph, 8);
    uint64_t hh = mk_vector_hash64(img, 120, 0);
    memcpy(img + 120, &hh, 8);
}

Test(persist, crafted_file_with_valid_hashes)
{
    mk_vector_index *ix = sample(MK_VECTOR_QUANT_NONE, 200), *lx = NULL;
    char path[300];
    snprintf(path, sizeof path, "%s/x.mkv", dir);
    cr_assert_eq(mk_vector_save(ix, path), 0);
    size_t len;
    uint8_t *img = slurp(path, &len);
    uint8_t *work = malloc(len);
    uint64_t n = 200;
    size_t head = ((n * 22 + 7) & ~(size_t)7);
    size_t l0 = 128 + head + n * DIM * 4; /* first level-0 list */
    struct {
        size_t off;
        uint32_t val;
        const char *what;
    } cases[] = {
        {l0 + 4, 5000, "neighbour id out of range"},
        {l0, 1000, "neighbour count above M0"},
        {l0 + 4, 0, "self link"},
        {48, 4000, "entry point out of range"},
        {16, 0, "dimension 0"},
        {24, 1, "M below 2"},
        {64, 201, "live count above node count"},
        {128 + 8 * n * 2 + 4 * n + 3, 0x80, "unknown flag"},
        {128 + 8 * n * 2 + 4 * n + n + 3, 0xff, "level above max"},
        {128 + head + 8, 0x7fc00000, "NaN component"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memcpy(work, img, len);
        if (cases[i].val <= 0xff && strstr(cases[i].what, "flag")) {
            work[cases[i].off] = (uint8_t)cases[i].val;
        } else if (strstr(cases[i].what, "level")) {
            work[cases[i].off] = (uint8_t)cases[i].val;
        } else {
            memcpy(work + cases[i].off, &cases[i].val, 4);
        }
        rehash(work, len);
        cr_assert_eq(mk_vector_load_mem(work, len, &lx), MK_ECORRUPT, "%s", cases[i].what);
        cr_assert_null(lx);
    }
    memcpy(work, img, len);
    rehash(work, len);
    cr_assert_eq(mk_vector_load_mem(work, len, &lx), 0, "rehash alone keeps it valid");
    mk_vector_free(lx);
    free(work);
    free(img);
    mk_vector_free(ix);
}

Test(persist, failed_or_torn_save_keeps_previous_snapshot)
{
    mk_vector_index *ix = sample(MK_VECTOR_QUANT_NONE, 300), *lx;
    char path[300], tmp[320];
    snprintf(path, sizeof path, "%s/s.mkv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_eq(mk_vector_save(ix, path), 0);
    size_t len0;
    uint8_t *before = slurp(path, &len0);

    /* the index changes, but the save fails: the temp file cannot be created */
    float v[DIM] = {1};
    cr_assert_eq(mk_vector_insert(ix, 7, v, DIM, NULL), 0);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    cr_assert_eq(mk_vector_save(ix, path), MK_EIO);
    cr_assert_eq(rmdir(tmp), 0);
    size_t len1;
    uint8_t *after = slurp(path, &len1);
    cr_assert_eq(len1, len0);
    cr_assert_eq(memcmp(before, after, len0), 0, "previous snapshot untouched");
    free(after);

    /* a crash mid-write leaves a torn temp file: the real path still loads the old
     * snapshot, and the next save replaces the leftover */
    spit(tmp, before, len0 / 2);
    cr_assert_eq(mk_vector_load(path, &lx), 0);
    cr_assert(!mk_vector_contains(lx, 7));
    mk_vector_free(lx);
    cr_assert_eq(mk_vector_save(ix, path), 0);
    cr_assert_eq(mk_vector_load(path, &lx), 0);
    cr_assert(mk_vector_contains(lx, 7));
    mk_vector_free(lx);

    cr_assert_eq(mk_vector_save(ix, ""), MK_EINVAL);
    cr_assert_eq(mk_vector_save(NULL, path), MK_EINVAL);
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.mkv", dir);
    cr_assert_eq(mk_vector_save(ix, nodir), MK_EIO);
    free(before);
    mk_vector_free(ix);
}
