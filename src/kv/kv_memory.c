/*
 * kv_memory: the in-process kv backend, the default for a one-machine deployment.
 *
 * One hash table (SipHash with a per-instance random key, chained buckets, doubling)
 * behind one mutex, so every loop of the process shares the counters. Callbacks run
 * immediately on the calling thread, after the mutex is released (a callback may call
 * the kv again). Expired entries are dropped when touched and by an incremental sweep
 * that visits a few chains on every write, so idle keys do not pile up without a
 * timer (and without needing a loop at all).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_time.h"
#include "kv/kv_int.h"

enum ent_kind { ENT_VALUE, ENT_BUCKET };

struct ent {
    struct ent *next;
    uint64_t hash;
    int64_t expire_at;       /* kv clock ms; 0 = never */
    enum ent_kind kind;
    struct kv_bucket_state bucket;
    char *value;             /* ENT_VALUE: malloc'd, NUL-terminated */
    size_t vlen;
    size_t keylen;
    char key[];              /* keylen bytes */
};

struct mem {
    pthread_mutex_t mu;
    struct ent **tab;
    size_t cap;              /* power of two */
    size_t count;
    size_t sweep_at;         /* next chain the incremental sweep visits */
    unsigned char seed[crypto_shorthash_KEYBYTES];
};

#define SWEEP_CHAINS 8

static int64_t now_of(struct mk_kv *kv)
{
    return kv->opt.clock_ms ? kv->opt.clock_ms(kv->opt.clock_arg) : (int64_t)mk_now_ms();
}

static uint64_t hash_key(const struct mem *m, const char *key, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, len, m->seed);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

static void ent_free(struct ent *e)
{
    if (!e) return;
    free(e->value);
    free(e);
}

static bool expired(const struct ent *e, int64_t now) { return e->expire_at && e->expire_at <= now; }

/* Unlinks and frees expired entries of one chain. */
static void sweep_chain(struct mem *m, size_t i, int64_t now)
{
    struct ent **pp = &m->tab[i];
    while (*pp) {
        struct ent *e = *pp;
        if (expired(e, now)) {
            *pp = e->next;
            ent_free(e);
            m->count--;
        } else {
            pp = &e->next;
        }
    }
}

static void sweep_some(struct mem *m, int64_t now, size_t chains)
{
    for (size_t k = 0; k < chains && k < m->cap; k++) {
        sweep_chain(m, m->sweep_at, now);
        m->sweep_at = (m->sweep_at + 1) & (m->cap - 1);
    }
}

/* The live entry for key, or NULL (an expired one is dropped on the way). */
static struct ent *find(struct mem *m, const char *key, size_t len, uint64_t h, int64_t now)
{
    struct ent **pp = &m->tab[h & (m->cap - 1)];
    while (*pp) {
        struct ent *e = *pp;
        if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0) {
            if (expired(e, now)) {
                *pp = e->next;
                ent_free(e);
                m->count--;
                return NULL;
            }
            return e;
        }
        pp = &e->next;
    }
    return NULL;
}

static void grow(struct mem *m)
{
    size_t ncap = m->cap * 2;
    struct ent **nt = calloc(ncap, sizeof *nt);
    if (!nt) return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < m->cap; i++) {
        struct ent *e = m->tab[i];
        while (e) {
            struct ent *next = e->next;
            size_t j = e->hash & (ncap - 1);
            e->next = nt[j];
            nt[j] = e;
            e = next;
        }
    }
    free(m->tab);
    m->tab = nt;
    m->cap = ncap;
    m->sweep_at = 0;
}

/* Inserts a new empty entry of `kind`. MK_EBUSY when the table is full of live
 * entries, MK_ENOMEM. */
static int insert(struct mem *m, const char *key, size_t len, uint64_t h, enum ent_kind kind, int64_t now,
                  struct ent **out)
{
    if (m->count >= MK_KV_MEMORY_MAX_ENTRIES) {
        sweep_some(m, now, m->cap);
        if (m->count >= MK_KV_MEMORY_MAX_ENTRIES) return MK_EBUSY;
    }
    if (m->count >= m->cap) grow(m);
    struct ent *e = calloc(1, sizeof *e + len);
    if (!e) return MK_ENOMEM;
    e->hash = h;
    e->kind = kind;
    e->keylen = len;
    memcpy(e->key, key, len);
    size_t i = h & (m->cap - 1);
    e->next = m->tab[i];
    m->tab[i] = e;
    m->count++;
    *out = e;
    return 0;
}

static void remove_ent(struct mem *m, struct ent *target)
{
    struct ent **pp = &m->tab[target->hash & (m->cap - 1)];
    while (*pp) {
        if (*pp == target) {
            *pp = target->next;
            ent_free(target);
            m->count--;
            return;
        }
        pp = &(*pp)->next;
    }
}

static int64_t expiry(int64_t now, uint64_t ttl_ms) { return ttl_ms ? now + (int64_t)ttl_ms : 0; }

/* ---- ops ---------------------------------------------------------------------------- */

static int mem_get(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_get_cb cb, void *arg)
{
    struct mem *m = kv->impl;
    int64_t now = now_of(kv);
    uint64_t h = hash_key(m, key, keylen);
    char small[256];
    char *copy = NULL;
    size_t vlen = 0;
    int rc;
    pthread_mutex_lock(&m->mu);
    struct ent *e = find(m, key, keylen, h, now);
    if (!e || e->kind != ENT_VALUE) {
        /* A bucket reads as absent: it has no single value to give. */
        rc = MK_ENOTFOUND;
    } else {
        vlen = e->vlen;
        copy = vlen < sizeof small ? small : malloc(vlen + 1);
        if (!copy) {
            rc = MK_ENOMEM;
        } else {
            memcpy(copy, e->value, vlen);
            copy[vlen] = '\0';
            rc = 0;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc == MK_ENOMEM) return rc;
    cb(rc, rc == 0 ? (mk_slice){copy, vlen} : (mk_slice){"", 0}, arg);
    if (copy && copy != small) free(copy);
    return 0;
}

static int mem_set(struct mk_kv *kv, const char *key, size_t keylen, const void *value, size_t len, uint64_t ttl_ms,
                   mk_kv_done_cb cb, void *arg)
{
    struct mem *m = kv->impl;
    int64_t now = now_of(kv);
    uint64_t h = hash_key(m, key, keylen);
    char *copy = malloc(len + 1);
    if (!copy) return MK_ENOMEM;
    memcpy(copy, value, len);
    copy[len] = '\0';
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    sweep_some(m, now, SWEEP_CHAINS);
    struct ent *e = find(m, key, keylen, h, now);
    if (!e) rc = insert(m, key, keylen, h, ENT_VALUE, now, &e);
    if (rc == 0) {
        free(e->value);
        e->kind = ENT_VALUE;
        e->value = copy;
        e->vlen = len;
        e->expire_at = expiry(now, ttl_ms);
        copy = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    free(copy);
    if (rc != 0) return rc;
    if (cb) cb(0, arg);
    return 0;
}

static int mem_del(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_done_cb cb, void *arg)
{
    struct mem *m = kv->impl;
    int64_t now = now_of(kv);
    uint64_t h = hash_key(m, key, keylen);
    pthread_mutex_lock(&m->mu);
    struct ent *e = find(m, key, keylen, h, now);
    if (e) remove_ent(m, e);
    pthread_mutex_unlock(&m->mu);
    if (cb) cb(0, arg);
    return 0;
}

/* Strict decimal int64 as Redis INCR accepts it. */
static bool parse_i64(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) return false;
    char buf[24];
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || end != buf + len || buf[0] == ' ' || buf[0] == '+' || (buf[0] == '0' && len > 1) ||
        (buf[0] == '-' && (len == 1 || buf[1] == '0')))
        return false;
    *out = (int64_t)v;
    return true;
}

static int mem_incr(struct mk_kv *kv, const char *key, size_t keylen, int64_t delta, uint64_t ttl_ms,
                    mk_kv_int_cb cb, void *arg)
{
    struct mem *m = kv->impl;
    int64_t now = now_of(kv);
    uint64_t h = hash_key(m, key, keylen);
    int64_t v = 0;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    sweep_some(m, now, SWEEP_CHAINS);
    struct ent *e = find(m, key, keylen, h, now);
    if (e && (e->kind != ENT_VALUE || !parse_i64(e->value, e->vlen, &v))) {
        rc = MK_EINVAL;
    } else if ((delta > 0 && v > INT64_MAX - delta) || (delta < 0 && v < INT64_MIN - delta)) {
        rc = MK_EINVAL; /* overflow, as Redis refuses it */
    } else {
        if (!e) rc = insert(m, key, keylen, h, ENT_VALUE, now, &e);
        if (rc == 0) {
            char num[24];
            int w = snprintf(num, sizeof num, "%" PRId64, v + delta);
            char *nv = malloc((size_t)w + 1);
            if (!nv) {
                rc = MK_ENOMEM;
                if (!e->value) remove_ent(m, e);
            } else {
                memcpy(nv, num, (size_t)w + 1);
                free(e->value);
                e->value = nv;
                e->vlen = (size_t)w;
                v += delta;
                if (!e->expire_at && ttl_ms) e->expire_at = expiry(now, ttl_ms);
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc == MK_ENOMEM || rc == MK_EBUSY) return rc;
    if (cb) cb(rc, rc == 0 ? v : 0, arg);
    return 0;
}

static int mem_buckets(struct mk_kv *kv, const struct mk_kv_bucket *b, size_t n, int64_t now_ms, mk_kv_bucket_cb cb,
                       void *arg)
{
    struct mem *m = kv->impl;
    int64_t clock_now = now_of(kv);
    int64_t now = now_ms ? now_ms : clock_now;
    struct mk_kv_bucket_result r = {.allowed = true, .failed = -1};
    struct ent *ents[MK_KV_MAX_BUCKETS] = {0};
    uint64_t hs[MK_KV_MAX_BUCKETS];
    for (size_t i = 0; i < n; i++) hs[i] = hash_key(m, b[i].key, b[i].keylen);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    sweep_some(m, clock_now, SWEEP_CHAINS);
    for (size_t i = 0; i < n; i++) {
        ents[i] = find(m, b[i].key, b[i].keylen, hs[i], clock_now);
        struct kv_bucket_state s = {0};
        if (ents[i] && ents[i]->kind == ENT_BUCKET) s = ents[i]->bucket;
        r.level[i] = mk_kv__bucket_level(&b[i], &s, now);
        double need;
        if (!mk_kv__bucket_ok(&b[i], r.level[i], &need)) {
            if (r.allowed) r.failed = (int)i;
            r.allowed = false;
            int64_t w = mk_kv__bucket_wait_ms(&b[i], need);
            if (w < 0 || r.retry_after_ms < 0)
                r.retry_after_ms = -1;
            else if (w > r.retry_after_ms)
                r.retry_after_ms = w;
        }
    }
    if (r.allowed) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct ent *e = ents[i];
            if (!e) {
                rc = insert(m, b[i].key, b[i].keylen, hs[i], ENT_BUCKET, clock_now, &e);
                if (rc != 0) break;
            } else if (e->kind != ENT_BUCKET) {
                /* A plain value under a bucket's key is replaced, as the script does. */
                free(e->value);
                e->value = NULL;
                e->vlen = 0;
                e->kind = ENT_BUCKET;
                e->bucket = (struct kv_bucket_state){0};
            }
            mk_kv__bucket_apply(&b[i], &e->bucket, r.level[i], now);
            r.level[i] = mk_kv__bucket_level(&b[i], &e->bucket, now);
            uint64_t ttl = mk_kv__bucket_ttl_ms(&b[i], r.level[i]);
            e->expire_at = expiry(clock_now, ttl);
        }
    }
    pthread_mutex_unlock(&m->mu);
    /* An insert failing half-way leaves earlier buckets charged; it only happens when
     * memory or the entry cap runs out, which the caller sees as this error. */
    if (rc != 0) return rc;
    if (cb) cb(0, &r, arg);
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static bool mem_accepts(const char *url) { return strcmp(url, "memory") == 0 || strcmp(url, "memory:") == 0; }

static int mem_open(struct mk_kv *kv, uv_loop_t *loop, const char *url, mk_buf *err)
{
    if (sodium_init() < 0) return MK_EINTERNAL;
    struct mem *m = calloc(1, sizeof *m);
    if (!m) return MK_ENOMEM;
    m->cap = 1024;
    m->tab = calloc(m->cap, sizeof *m->tab);
    if (!m->tab) {
        free(m);
        return MK_ENOMEM;
    }
    crypto_shorthash_keygen(m->seed);
    pthread_mutex_init(&m->mu, NULL);
    kv->impl = m;
    return 0;
}

static void mem_close(struct mk_kv *kv)
{
    struct mem *m = kv->impl;
    if (m) {
        for (size_t i = 0; i < m->cap; i++) {
            struct ent *e = m->tab[i];
            while (e) {
                struct ent *next = e->next;
                ent_free(e);
                e = next;
            }
        }
        free(m->tab);
        pthread_mutex_destroy(&m->mu);
        free(m);
    }
    free(kv);
}

static bool mem_ready(const struct mk_kv *kv) { return true; }

const struct kv_backend mk_kv_memory_backend = {
    .name = "memory",
    .accepts = mem_accepts,
    .open = mem_open,
    .close = mem_close,
    .ready = mem_ready,
    .get = mem_get,
    .set = mem_set,
    .del = mem_del,
    .incr = mem_incr,
    .buckets = mem_buckets,
};
