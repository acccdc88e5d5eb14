/*
 * persist.c: saving and loading an index, crash-safely and defensively.
 *
 * File format (version 1, little-endian; docs/VECTOR.md has the full table):
 *   header  128 bytes: magic "MKVECIDX", version, header size, dim, metric, M, M0,
 *           ef_construction, ef_search, quant, max level, entry point, byte-order mark,
 *           node count, live count, seed, payload length, payload hash, header hash.
 *   payload keys u64[n] | meta u64[n] | ns u32[n] | flags u8[n] | levels u8[n] |
 *           zero pad to 8 | (int8: qmin f32[dim] | qscale f32[dim]) | vectors f32[n*dim] |
 *           level-0 lists (count + M0 ids) u32[n*(1+M0)] |
 *           upper lists, node by node, level by level (count + M ids) u32.
 * Codes are not stored: they are re-encoded from the floats on load (cheap, and one
 * source of truth). Both hashes are mk_vector_hash64 below.
 *
 * Loading trusts nothing: the hashes catch accidental damage, and every field is then
 * checked anyway (counts, ids in range, a neighbour on level l really has level l,
 * finite floats, unique live keys), so a crafted file with valid hashes still cannot
 * make a later search read out of bounds. The fuzz target drives mk_vector_load_mem.
 *
 * Saving writes "<path>.tmp", fsyncs it, renames it over path and fsyncs the directory:
 * rename is atomic, so after a crash the path holds the old or the new index, whole.
 */
#include "vector/vector_int.h"
#include "core/mk_error.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAGIC "MKVECIDX"
#define FILE_VERSION 1u
#define HEADER_SIZE 128u
#define BOM 0x01020304u

/* ---- hash ------------------------------------------------------------------------ */
/* A 64-bit non-cryptographic hash for corruption checks: four independent lanes over
 * 32-byte stripes (so the multiplies overlap; ~several GB/s), then a fold with the
 * length and the tail, then a full avalanche. Streaming, so save can hash as it writes. */

#define HK1 0x9e3779b97f4a7c15ULL
#define HK2 0xd6e8feb86659fd93ULL
#define HK3 0xa0761d6478bd642fULL

typedef struct hstate {
    uint64_t v[4];
    uint8_t buf[32];
    size_t blen;
    uint64_t total;
} hstate;

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t lane(uint64_t acc, uint64_t w)
{
    acc ^= w * HK2;
    acc = rotl64(acc, 29);
    return acc * HK1 + HK3;
}

static uint64_t avalanche(uint64_t h)
{
    h ^= h >> 32;
    h *= HK2;
    h ^= h >> 29;
    h *= HK1;
    h ^= h >> 32;
    return h;
}

static void h_init(hstate *s, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        s->v[i] = seed + HK1 * (uint64_t)(i + 1);
    s->blen = 0;
    s->total = 0;
}

static void h_stripe(hstate *s, const uint8_t *p)
{
    s->v[0] = lane(s->v[0], rd64(p));
    s->v[1] = lane(s->v[1], rd64(p + 8));
    s->v[2] = lane(s->v[2], rd64(p + 16));
    s->v[3] = lane(s->v[3], rd64(p + 24));
}

static void h_update(hstate *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->total += len;
    if (s->blen) {
        size_t take = 32 - s->blen < len ? 32 - s->blen : len;
        memcpy(s->buf + s->blen, p, take);
        s->blen += take;
        p += take;
        len -= take;
        if (s->blen < 32)
            return;
        h_stripe(s, s->buf);
        s->blen = 0;
    }
    for (; len >= 32; p += 32, len -= 32)
        h_stripe(s, p);
    memcpy(s->buf, p, len);
    s->blen = len;
}

static uint64_t h_final(const hstate *s)
{
    uint64_t h = rotl64(s->v[0], 1) ^ rotl64(s->v[1], 7) ^ rotl64(s->v[2], 13) ^ rotl64(s->v[3], 19);
    h = lane(h, s->total);
    size_t i = 0;
    for (; i + 8 <= s->blen; i += 8)
        h = lane(h, rd64(s->buf + i));
    uint64_t t = 0;
    for (size_t j = 0; i + j < s->blen; j++)
        t |= (uint64_t)s->buf[i + j] << (8 * j);
    h = lane(h, t ^ ((uint64_t)(s->blen - i) << 56));
    return avalanche(h);
}

uint64_t mk_vector_hash64(const void *data, size_t len, uint64_t seed)
{
    hstate s;
    h_init(&s, seed);
    h_update(&s, data, len);
    return h_final(&s);
}

/* ---- header ---------------------------------------------------------------------- */

typedef struct fheader {
    uint32_t version, header_size, dim, metric, M, M0, efc, efs, quant;
    uint32_t max_level, entry, bom;
    uint64_t n, live, seed, payload_len, payload_hash;
} fheader;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const uint8_t *p) { return rd64(p); }

static void header_encode(const fheader *h, uint8_t out[HEADER_SIZE])
{
    memset(out, 0, HEADER_SIZE);
    memcpy(out, FILE_MAGIC, 8);
    put32(out + 8, h->version);
    put32(out + 12, h->header_size);
    put32(out + 16, h->dim);
    put32(out + 20, h->metric);
    put32(out + 24, h->M);
    put32(out + 28, h->M0);
    put32(out + 32, h->efc);
    put32(out + 36, h->efs);
    put32(out + 40, h->quant);
    put32(out + 44, h->max_level);
    put32(out + 48, h->entry);
    put32(out + 52, h->bom);
    put64(out + 56, h->n);
    put64(out + 64, h->live);
    put64(out + 72, h->seed);
    put64(out + 80, h->payload_len);
    put64(out + 88, h->payload_hash);
    put64(out + 120, mk_vector_hash64(out, 120, 0));
}

static int header_decode(const uint8_t *in, size_t len, fheader *h)
{
    if (len < HEADER_SIZE || memcmp(in, FILE_MAGIC, 8) != 0)
        return MK_ECORRUPT;
    if (get64(in + 120) != mk_vector_hash64(in, 120, 0))
        return MK_ECORRUPT;
    h->version = get32(in + 8);
    h->header_size = get32(in + 12);
    h->dim = get32(in + 16);
    h->metric = get32(in + 20);
    h->M = get32(in + 24);
    h->M0 = get32(in + 28);
    h->efc = get32(in + 32);
    h->efs = get32(in + 36);
    h->quant = get32(in + 40);
    h->max_level = get32(in + 44);
    h->entry = get32(in + 48);
    h->bom = get32(in + 52);
    h->n = get64(in + 56);
    h->live = get64(in + 64);
    h->seed = get64(in + 72);
    h->payload_len = get64(in + 80);
    h->payload_hash = get64(in + 88);
    for (size_t i = 96; i < 120; i++)
        if (in[i])
            return MK_ECORRUPT;
    if (h->version != FILE_VERSION || h->header_size != HEADER_SIZE || h->bom != BOM)
        return MK_ECORRUPT;
    return 0;
}

/* Payload bytes before the upper lists (sizes bounded by the header checks, so no
 * overflow: n < 2^31, dim <= 2^14). */
static uint64_t fixed_payload(uint64_t n, uint32_t dim, uint32_t M0, bool quant)
{
    uint64_t b = n * (8 + 8 + 4 + 1 + 1);
    b = (b + 7) & ~(uint64_t)7;
    if (quant)
        b += 2 * (uint64_t)dim * 4;
    b += n * dim * 4;
    b += n * (1 + (uint64_t)M0) * 4;
    return b;
}

/* ---- save ------------------------------------------------------------------------ */

typedef struct writer {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    hstate hs;
    int err;
} writer;

static void w_flush(writer *w)
{
    size_t off = 0;
    while (!w->err && off < w->len) {
        ssize_t r = write(w->fd, w->buf + off, w->len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            w->err = MK_EIO;
        else
            off += (size_t)r;
    }
    w->len = 0;
}

static void w_put(writer *w, const void *data, size_t len)
{
    h_update(&w->hs, data, len);
    const uint8_t *p = data;
    while (len && !w->err) {
        size_t take = w->cap - w->len < len ? w->cap - w->len : len;
        memcpy(w->buf + w->len, p, take);
        w->len += take;
        p += take;
        len -= take;
        if (w->len == w->cap)
            w_flush(w);
    }
}

static int fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return MK_EIO;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return MK_EIO;
    int rc = fsync(fd) == 0 ? 0 : MK_EIO;
    close(fd);
    return rc;
}

static void write_payload(mk_vector_index *ix, writer *w)
{
    uint32_t n = atomic_load(&ix->n), dim = ix->p.dim;
    w_put(w, ix->keys, (size_t)n * 8);
    w_put(w, ix->meta, (size_t)n * 8);
    w_put(w, ix->ns, (size_t)n * 4);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t f = node_flags(ix, i) & NODE_DELETED;
        w_put(w, &f, 1);
    }
    w_put(w, ix->levels, n);
    static const uint8_t zeros[8];
    size_t head = (size_t)n * 22;
    w_put(w, zeros, ((head + 7) & ~(size_t)7) - head);
    if (ix->quant) {
        w_put(w, ix->qmin, dim * 4);
        w_put(w, ix->qscale, dim * 4);
    }
    for (uint32_t i = 0; i < n; i++)
        w_put(w, node_fvec(ix, i), (size_t)dim * 4);
    for (uint32_t i = 0; i < n; i++)
        w_put(w, l0_links(ix, i), (1 + (size_t)ix->M0) * 4);
    for (uint32_t i = 0; i < n; i++)
        if (ix->levels[i])
            w_put(w, ix->upper[i], (size_t)ix->levels[i] * (1 + ix->p.M) * 4);
}

int mk_vector_save(mk_vector_index *ix, const char *path)
{
    if (!ix || !path || !*path)
        return MK_EINVAL;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return MK_EINVAL;
    writer w = {.fd = -1, .cap = 1 << 20};
    w.buf = malloc(w.cap);
    if (!w.buf)
        return MK_ENOMEM;
    /* Exclusive: inserts hold rw shared, and the file must be one consistent state. */
    pthread_rwlock_wrlock(&ix->rw);
    int rc = 0;
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w.fd < 0) {
        rc = MK_EIO;
        goto out;
    }
    uint8_t hdr[HEADER_SIZE];
    memset(hdr, 0, sizeof hdr);
    /* placeholder; the real header follows once the payload hash is known */
    if (pwrite(w.fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr || lseek(w.fd, HEADER_SIZE, SEEK_SET) < 0) {
        rc = MK_EIO;
        goto out;
    }
    h_init(&w.hs, 0);
    write_payload(ix, &w);
    w_flush(&w);
    if (w.err) {
        rc = w.err;
        goto out;
    }
    fheader h = {
        .version = FILE_VERSION, .header_size = HEADER_SIZE, .dim = ix->p.dim,
        .metric = (uint32_t)ix->p.metric, .M = ix->p.M, .M0 = ix->M0,
        .efc = ix->p.ef_construction, .efs = atomic_load(&ix->ef_search),
        .quant = (uint32_t)ix->p.quant, .max_level = (uint32_t)atomic_load(&ix->max_level),
        .entry = atomic_load(&ix->entry), .bom = BOM, .n = atomic_load(&ix->n),
        .live = atomic_load(&ix->live), .seed = ix->p.seed, .payload_len = w.hs.total,
        .payload_hash = h_final(&w.hs),
    };
    header_encode(&h, hdr);
    if (pwrite(w.fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr || fsync(w.fd) != 0) {
        rc = MK_EIO;
        goto out;
    }
    if (close(w.fd) != 0) {
        w.fd = -1;
        rc = MK_EIO;
        goto out;
    }
    w.fd = -1;
    if (rename(tmp, path) != 0) {
        rc = MK_EIO;
        goto out;
    }
    rc = fsync_dir(path);
out:
    pthread_rwlock_unlock(&ix->rw);
    if (w.fd >= 0)
        close(w.fd);
    if (rc)
        unlink(tmp);
    free(w.buf);
    return rc;
}

/* ---- load ------------------------------------------------------------------------ */

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static const uint8_t *take(reader *r, uint64_t n)
{
    if (n > r->left)
        return NULL;
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static bool finite_all(const uint8_t *p, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        float f;
        memcpy(&f, p + i * 4, 4);
        if (!isfinite(f))
            return false;
    }
    return true;
}

/* Checks one neighbour list as stored in the file: count within cap, ids in range and
 * present on that level. */
static bool list_ok(const uint8_t *p, uint32_t cap, uint64_t n, const uint8_t *levels, int l,
                    uint32_t self)
{
    uint32_t cnt = get32(p);
    if (cnt > cap)
        return false;
    for (uint32_t j = 1; j <= cnt; j++) {
        uint32_t id = get32(p + 4 * (size_t)j);
        if (id >= n || id == self || levels[id] < l)
            return false;
    }
    return true;
}

int mk_vector_load_mem(const void *data, size_t len, mk_vector_index **out)
{
    if (!out)
        return MK_EINVAL;
    *out = NULL;
    if (!data)
        return MK_EINVAL;
    fheader h;
    int rc = header_decode(data, len, &h);
    if (rc)
        return rc;
    bool quant = h.quant == MK_VECTOR_QUANT_INT8;
    if (h.dim == 0 || h.dim > MK_VECTOR_MAX_DIM || h.metric > MK_VECTOR_COSINE || h.M < 2 ||
        h.M > MK_VECTOR_MAX_M || h.M0 != 2 * h.M || h.efc == 0 || h.efc > MK_VECTOR_MAX_EF ||
        h.efs == 0 || h.efs > MK_VECTOR_MAX_EF || h.quant > MK_VECTOR_QUANT_INT8 ||
        h.n >= MK_VECTOR_MAX_NODES || h.live > h.n)
        return MK_ECORRUPT;
    if (h.payload_len != len - HEADER_SIZE)
        return MK_ECORRUPT;
    const uint8_t *payload = (const uint8_t *)data + HEADER_SIZE;
    if (mk_vector_hash64(payload, h.payload_len, 0) != h.payload_hash)
        return MK_ECORRUPT;
    uint64_t n = h.n;
    if (fixed_payload(n, h.dim, h.M0, quant) > h.payload_len)
        return MK_ECORRUPT;
    if (n == 0 ? (h.entry != NODE_NONE || h.max_level != UINT32_MAX)
               : (h.entry >= n || h.max_level > MAX_LEVEL))
        return MK_ECORRUPT;

    reader r = {payload, h.payload_len};
    const uint8_t *keys = take(&r, n * 8), *meta = take(&r, n * 8), *ns = take(&r, n * 4);
    const uint8_t *flags = take(&r, n), *levels = take(&r, n);
    size_t head = (size_t)n * 22;
    const uint8_t *pad = take(&r, ((head + 7) & ~(size_t)7) - head);
    const uint8_t *qmin = quant ? take(&r, h.dim * 4) : NULL;
    const uint8_t *qscale = quant ? take(&r, h.dim * 4) : NULL;
    const uint8_t *vecs = take(&r, n * h.dim * 4);
    const uint8_t *l0 = take(&r, n * (1 + (uint64_t)h.M0) * 4);
    if (!keys || !meta || !ns || !flags || !levels || !pad || !vecs || !l0 ||
        (quant && (!qmin || !qscale)))
        return MK_ECORRUPT;
    uint64_t live = 0, upper_words = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (flags[i] & ~NODE_DELETED)
            return MK_ECORRUPT;
        if (levels[i] > h.max_level)
            return MK_ECORRUPT;
        live += !(flags[i] & NODE_DELETED);
        upper_words += (uint64_t)levels[i] * (1 + h.M);
    }
    if (live != h.live || (n && levels[h.entry] != h.max_level))
        return MK_ECORRUPT;
    if (r.left != upper_words * 4)
        return MK_ECORRUPT;
    const uint8_t *up = r.p;
    if (!finite_all(vecs, n * h.dim) ||
        (quant && (!finite_all(qmin, h.dim) || !finite_all(qscale, h.dim))))
        return MK_ECORRUPT;
    if (quant)
        for (uint32_t d = 0; d < h.dim; d++) {
            float s;
            memcpy(&s, qscale + 4 * d, 4);
            if (s < 0)
                return MK_ECORRUPT;
        }
    for (uint64_t i = 0; i < n; i++)
        if (!list_ok(l0 + i * (1 + h.M0) * 4, h.M0, n, levels, 0, (uint32_t)i))
            return MK_ECORRUPT;
    const uint8_t *u = up;
    for (uint64_t i = 0; i < n; i++)
        for (int l = 1; l <= levels[i]; l++, u += (1 + (size_t)h.M) * 4)
            if (!list_ok(u, h.M, n, levels, l, (uint32_t)i))
                return MK_ECORRUPT;

    mk_vector_params p;
    mk_vector_params_default(&p, h.dim, (enum mk_vector_metric)h.metric);
    p.M = h.M;
    p.ef_construction = h.efc;
    p.ef_search = h.efs;
    p.quant = (enum mk_vector_quant)h.quant;
    p.seed = h.seed;
    p.capacity = n > 1024 ? n : 1024;
    mk_vector_index *ix;
    rc = mk_vector_new(&p, &ix);
    if (rc)
        return rc;
    memcpy(ix->keys, keys, n * 8);
    memcpy(ix->meta, meta, n * 8);
    memcpy(ix->ns, ns, n * 4);
    memcpy(ix->levels, levels, n);
    if (quant) {
        memcpy(ix->qmin, qmin, h.dim * 4);
        memcpy(ix->qscale, qscale, h.dim * 4);
        ix->qfitted = true;
        ix->qfit_n = (uint32_t)n;
    }
    u = up;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        uint32_t id = (uint32_t)i;
        memcpy(l0_links(ix, id), l0 + i * (1 + h.M0) * 4, (1 + (size_t)h.M0) * 4);
        if (quant) {
            memcpy(ix->fvec + i * h.dim, vecs + i * h.dim * 4, (size_t)h.dim * 4);
            quant_encode(ix, ix->fvec + i * h.dim, (uint8_t *)(void *)(uintptr_t)l0_vec(ix, id));
        } else {
            memcpy((void *)(uintptr_t)l0_vec(ix, id), vecs + i * h.dim * 4, (size_t)h.dim * 4);
        }
        if (levels[i]) {
            size_t words = (size_t)levels[i] * (1 + h.M);
            ix->upper[id] = malloc(words * 4);
            if (!ix->upper[id]) {
                rc = MK_ENOMEM;
                break;
            }
            memcpy(ix->upper[id], u, words * 4);
            u += words * 4;
        }
        bool del = flags[i] & NODE_DELETED;
        atomic_store(&ix->flags[id], (uint8_t)(NODE_READY | (del ? NODE_DELETED : 0)));
        rc = nstable_add(&ix->nst, ix->ns[id], id);
        if (rc)
            break;
        if (del) {
            nstable_dec(&ix->nst, ix->ns[id]);
        } else if (idmap_get(&ix->map, ix->keys[id]) != NODE_NONE) {
            rc = MK_ECORRUPT; /* two live nodes under one key */
        } else {
            rc = idmap_put(&ix->map, ix->keys[id], id);
        }
    }
    if (rc) {
        atomic_store(&ix->n, (uint32_t)n); /* so free sees every upper block */
        mk_vector_free(ix);
        return rc;
    }
    atomic_store(&ix->n, (uint32_t)n);
    atomic_store(&ix->live, live);
    atomic_store(&ix->deleted, n - live);
    atomic_store(&ix->entry, n ? h.entry : NODE_NONE);
    atomic_store(&ix->max_level, n ? (int)h.max_level : -1);
    *out = ix;
    return 0;
}

int mk_vector_load(const char *path, mk_vector_index **out)
{
    if (!out)
        return MK_EINVAL;
    *out = NULL;
    if (!path)
        return MK_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MK_ENOTFOUND : MK_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return MK_EIO;
    }
    if ((size_t)st.st_size < HEADER_SIZE) {
        close(fd);
        return MK_ECORRUPT;
    }
    /* Mapped rather than read: the kernel pages it straight from the page cache with no
     * extra copy through a read buffer, and MADV_SEQUENTIAL lets it read ahead while the
     * hash runs. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return MK_EIO;
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    int rc = mk_vector_load_mem(map, (size_t)st.st_size, out);
    munmap(map, (size_t)st.st_size);
    return rc;
}
