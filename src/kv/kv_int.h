/*
 * kv_int: the contract between mk_kv.c (argument checks, dispatch, statistics) and a
 * kv backend. A backend is one file exporting one `struct kv_backend`; adding one is
 * that file plus a row in the table in mk_kv.c.
 *
 * mk_kv.c has validated every argument before a backend op runs (key length, value
 * size, bucket numbers), so backends only do the work. Ops return 0 and call back
 * exactly once, or return an error and never call back (see mk_kv.h).
 */
#ifndef MK_KV_INT_H
#define MK_KV_INT_H

#include <stdatomic.h>

#include "kv/mk_kv.h"

struct kv_backend {
    const char *name;
    /* Does this backend take the url? ("memory:", "redis://...") */
    bool (*accepts)(const char *url);
    /* Creates the backend state in kv->impl. */
    int (*open)(struct mk_kv *kv, uv_loop_t *loop, const char *url, mk_buf *err);
    /* Cancels pending work and frees (for async backends: once handles are closed). */
    void (*close)(struct mk_kv *kv);
    bool (*ready)(const struct mk_kv *kv);
    int (*get)(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_get_cb cb, void *arg);
    int (*set)(struct mk_kv *kv, const char *key, size_t keylen, const void *value, size_t len, uint64_t ttl_ms,
               mk_kv_done_cb cb, void *arg);
    int (*del)(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_done_cb cb, void *arg);
    int (*incr)(struct mk_kv *kv, const char *key, size_t keylen, int64_t delta, uint64_t ttl_ms, mk_kv_int_cb cb,
                void *arg);
    int (*buckets)(struct mk_kv *kv, const struct mk_kv_bucket *b, size_t n, int64_t now_ms, mk_kv_bucket_cb cb,
                   void *arg);
};

struct mk_kv {
    const struct kv_backend *be;
    void *impl;
    struct mk_kv_options opt;  /* defaults filled in */
    atomic_uint_least64_t st_requests, st_unavailable, st_reconnects, st_script_loads;
};

extern const struct kv_backend mk_kv_memory_backend;
extern const struct kv_backend mk_kv_redis_backend;

/* The bucket step on plain numbers, shared by the memory backend and the tests of
 * the Lua script's twin. level/stamp are in and out for one bucket: `present` false
 * means the bucket does not exist yet (starts full / nothing spent). For rate 0 the
 * stored number is the spent amount, for rate > 0 the level. Implemented in mk_kv.c. */
struct kv_bucket_state {
    bool present;
    double stored;   /* level (rate > 0) or spent (rate == 0) */
    int64_t stamp_ms;/* last refill time (rate > 0) */
};
/* Computes the level at now_ms and whether the bucket's condition holds; *need is the
 * tokens missing when not (>= 0). */
double mk_kv__bucket_level(const struct mk_kv_bucket *b, const struct kv_bucket_state *s, int64_t now_ms);
bool mk_kv__bucket_ok(const struct mk_kv_bucket *b, double level, double *need);
/* Applies the cost to the state at now_ms (after every bucket said yes). */
void mk_kv__bucket_apply(const struct mk_kv_bucket *b, struct kv_bucket_state *s, double level, int64_t now_ms);
/* Wait in ms for `need` tokens at the bucket's rate; -1 when it never refills. */
int64_t mk_kv__bucket_wait_ms(const struct mk_kv_bucket *b, double need);
/* TTL for a bucket's stored state (ms) after a step. */
uint64_t mk_kv__bucket_ttl_ms(const struct mk_kv_bucket *b, double level_after);

#endif
