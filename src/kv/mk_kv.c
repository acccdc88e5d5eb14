/*
 * mk_kv: front of the key-value contract. Checks every argument once, picks the
 * backend from the URL, counts requests, and holds the token-bucket arithmetic that
 * the memory backend runs in C and the redis backend runs as the same steps in Lua
 * (kv_redis.c): keep the two in step when changing either.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "kv/kv_int.h"

static const struct kv_backend *const backends[] = {&mk_kv_memory_backend, &mk_kv_redis_backend};

int mk_kv_open(uv_loop_t *loop, const char *url, const struct mk_kv_options *opt, struct mk_kv **out, mk_buf *err)
{
    if (!out) return MK_EINVAL;
    *out = NULL;
    if (!url || !*url) url = "memory:";
    const struct kv_backend *be = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i]->accepts(url)) {
            be = backends[i];
            break;
        }
    if (!be) {
        if (err) mk_buf_printf(err, "kv url must be \"memory:\" or \"redis://host[:port][/db]\"");
        return MK_EINVAL;
    }
    struct mk_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return MK_ENOMEM;
    if (opt) kv->opt = *opt;
    if (!kv->opt.connect_timeout_ms) kv->opt.connect_timeout_ms = 2000;
    if (!kv->opt.command_timeout_ms) kv->opt.command_timeout_ms = 1000;
    if (!kv->opt.reconnect_min_ms) kv->opt.reconnect_min_ms = 100;
    if (!kv->opt.reconnect_max_ms) kv->opt.reconnect_max_ms = 5000;
    if (kv->opt.reconnect_max_ms < kv->opt.reconnect_min_ms) kv->opt.reconnect_max_ms = kv->opt.reconnect_min_ms;
    kv->be = be;
    int rc = be->open(kv, loop, url, err);
    if (rc != 0) {
        free(kv);
        return rc;
    }
    *out = kv;
    return 0;
}

void mk_kv_free(struct mk_kv *kv)
{
    if (!kv) return;
    kv->be->close(kv); /* frees kv itself, now or once handles are closed */
}

const char *mk_kv_backend_name(const struct mk_kv *kv) { return kv ? kv->be->name : ""; }
bool mk_kv_ready(const struct mk_kv *kv) { return kv && kv->be->ready(kv); }

void mk_kv_get_stats(const struct mk_kv *kv, struct mk_kv_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!kv) return;
    out->requests = atomic_load(&kv->st_requests);
    out->unavailable = atomic_load(&kv->st_unavailable);
    out->reconnects = atomic_load(&kv->st_reconnects);
    out->script_loads = atomic_load(&kv->st_script_loads);
}

static bool key_ok(const char *key, size_t keylen) { return key && keylen > 0 && keylen <= MK_KV_MAX_KEY_BYTES; }

static int counted(struct mk_kv *kv, int rc)
{
    if (rc == 0)
        atomic_fetch_add(&kv->st_requests, 1);
    else if (rc == MK_EUNAVAILABLE)
        atomic_fetch_add(&kv->st_unavailable, 1);
    return rc;
}

int mk_kv_get(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_get_cb cb, void *arg)
{
    if (!kv || !key_ok(key, keylen) || !cb) return MK_EINVAL;
    return counted(kv, kv->be->get(kv, key, keylen, cb, arg));
}

int mk_kv_set(struct mk_kv *kv, const char *key, size_t keylen, const void *value, size_t len, uint64_t ttl_ms,
              mk_kv_done_cb cb, void *arg)
{
    if (!kv || !key_ok(key, keylen) || (!value && len) || len > MK_KV_MAX_VALUE_BYTES) return MK_EINVAL;
    if (ttl_ms > MK_KV_MAX_TTL_MS) return MK_EINVAL;
    return counted(kv, kv->be->set(kv, key, keylen, value ? value : "", len, ttl_ms, cb, arg));
}

int mk_kv_del(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_done_cb cb, void *arg)
{
    if (!kv || !key_ok(key, keylen)) return MK_EINVAL;
    return counted(kv, kv->be->del(kv, key, keylen, cb, arg));
}

int mk_kv_incr(struct mk_kv *kv, const char *key, size_t keylen, int64_t delta, uint64_t ttl_ms, mk_kv_int_cb cb,
               void *arg)
{
    if (!kv || !key_ok(key, keylen) || ttl_ms > MK_KV_MAX_TTL_MS) return MK_EINVAL;
    return counted(kv, kv->be->incr(kv, key, keylen, delta, ttl_ms, cb, arg));
}

/* Numbers a bucket may hold: finite, and small enough that Lua and C doubles agree
 * on them exactly enough (1e15 tokens is far beyond any real limit). */
static bool num_ok(double v, double lo) { return isfinite(v) && v >= lo && v <= 1e15; }

int mk_kv_buckets(struct mk_kv *kv, const struct mk_kv_bucket *b, size_t n, int64_t now_ms, mk_kv_bucket_cb cb,
                  void *arg)
{
    if (!kv || !b || n == 0 || n > MK_KV_MAX_BUCKETS || now_ms < 0) return MK_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!key_ok(b[i].key, b[i].keylen) || !num_ok(b[i].capacity, 0) || b[i].capacity <= 0 ||
            !num_ok(b[i].rate_per_s, 0) || !num_ok(b[i].cost, 0) || b[i].mode > MK_KV_CHARGE ||
            b[i].ttl_ms > MK_KV_MAX_TTL_MS)
            return MK_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (b[j].keylen == b[i].keylen && memcmp(b[j].key, b[i].key, b[i].keylen) == 0)
                return MK_EINVAL; /* the same bucket twice would be charged twice */
    }
    return counted(kv, kv->be->buckets(kv, b, n, now_ms, cb, arg));
}

/* ---- bucket arithmetic (mirrored by the Lua script in kv_redis.c) ------------------ */

double mk_kv__bucket_level(const struct mk_kv_bucket *b, const struct kv_bucket_state *s, int64_t now_ms)
{
    if (b->rate_per_s <= 0) return b->capacity - (s->present ? s->stored : 0);
    if (!s->present) return b->capacity;
    double level = s->stored;
    /* A clock that went back (another node's, or an adjusted one) refills nothing. */
    if (now_ms > s->stamp_ms) level += (double)(now_ms - s->stamp_ms) * b->rate_per_s / 1000.0;
    return level < b->capacity ? level : b->capacity;
}

bool mk_kv__bucket_ok(const struct mk_kv_bucket *b, double level, double *need)
{
    *need = 0;
    switch (b->mode) {
    case MK_KV_TAKE:
        if (level >= b->cost) return true;
        *need = b->cost - level;
        return false;
    case MK_KV_ADMIT:
        if (level >= 0) return true;
        *need = -level;
        return false;
    case MK_KV_CHARGE:
    default:
        return true;
    }
}

void mk_kv__bucket_apply(const struct mk_kv_bucket *b, struct kv_bucket_state *s, double level, int64_t now_ms)
{
    if (b->rate_per_s <= 0) {
        s->stored = (s->present ? s->stored : 0) + b->cost;
    } else {
        s->stored = level - b->cost;
        if (!s->present || now_ms > s->stamp_ms) s->stamp_ms = now_ms;
    }
    s->present = true;
}

int64_t mk_kv__bucket_wait_ms(const struct mk_kv_bucket *b, double need)
{
    if (need <= 0) return 0;
    if (b->rate_per_s <= 0) return -1;
    double ms = ceil(need * 1000.0 / b->rate_per_s);
    return ms > 9e15 ? (int64_t)9e15 : (int64_t)ms;
}

uint64_t mk_kv__bucket_ttl_ms(const struct mk_kv_bucket *b, double level_after)
{
    if (b->ttl_ms) return b->ttl_ms;
    if (b->rate_per_s <= 0) return 0;
    /* Once full again the state equals a missing key: let it go, a second later. */
    double missing = b->capacity - level_after;
    double ms = missing > 0 ? ceil(missing * 1000.0 / b->rate_per_s) + 1000 : 1000;
    return ms > (double)MK_KV_MAX_TTL_MS ? MK_KV_MAX_TTL_MS : (uint64_t)ms;
}
