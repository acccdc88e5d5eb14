/*
 * mk_kv: a small key-value contract for shared hot state (rate-limit counters,
 * sessions, cache entries). Two backends, one file each (see kv_int.h):
 *
 *   memory   in-process hash table. Thread-safe (one mutex), so every event loop of
 *            a process can share one instance. It CALLS BACK IMMEDIATELY, on the
 *            calling thread, before the call returns: callers must not assume the
 *            callback runs later (write the continuation so that it works either way).
 *   redis    hiredis async on the caller's libuv loop (one connection per mk_kv; use
 *            it from that loop's thread only). Callbacks run later on that loop.
 *            Reconnects on its own with jittered exponential backoff. While it is not
 *            connected a request fails fast: the call returns MK_EUNAVAILABLE at once
 *            and no callback follows. Callers decide between fail-open and
 *            fail-closed (mk_limits fails open by default, see docs/AUTH.md).
 *
 * Every operation either returns 0, and then its callback runs exactly once (with
 * MK_ECANCELLED when the kv is freed first), or returns a negative MK_E* code, and
 * then the callback never runs. A NULL callback is allowed for fire-and-forget writes.
 *
 * Keys are binary-safe byte strings up to MK_KV_MAX_KEY_BYTES; values up to
 * MK_KV_MAX_VALUE_BYTES. Integer counters are stored as decimal text, so mk_kv_get
 * reads what mk_kv_incr wrote on both backends.
 *
 * Token buckets (mk_kv_buckets): up to MK_KV_MAX_BUCKETS buckets checked and charged
 * as ONE atomic step (a Lua script run by EVALSHA on Redis): either every bucket's
 * condition holds and every cost is applied, or nothing changes. That is what lets a
 * request be charged against its key's and its tenant's buckets with no race and no
 * partial charge, exact under any number of concurrent nodes.
 */
#ifndef MK_KV_H
#define MK_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/mk_buf.h"

/* A key names a tenant, a key id and a window at most; 512 bytes is generous. */
#define MK_KV_MAX_KEY_BYTES 512
/* Hot state only (sessions, counters, cache entries): large blobs belong in the store. */
#define MK_KV_MAX_VALUE_BYTES (4 * 1024 * 1024)
/* Longest TTL (about 31 years): Redis refuses expiry times that overflow its clock. */
#define MK_KV_MAX_TTL_MS 1000000000000ull
/* Buckets per atomic step: a request touches key+tenant x rpm, tpm, day, month. */
#define MK_KV_MAX_BUCKETS 8
/* Memory backend: entries before a set of a new key is refused with MK_EBUSY
 * (expired entries are swept first). Bounds memory under a flood of distinct keys. */
#define MK_KV_MEMORY_MAX_ENTRIES (1u << 20)

struct mk_kv;

struct mk_kv_options {
    /* redis: connect timeout (default 2000), a command older than command_timeout_ms
     * drops the connection, failing every pending command with MK_EUNAVAILABLE and
     * starting a reconnect (default 1000); reconnect backoff bounds (defaults 100 and
     * 5000). */
    uint32_t connect_timeout_ms;
    uint32_t command_timeout_ms;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    /* memory: the clock TTLs are measured with, in milliseconds (any epoch, must not
     * go backwards); NULL = the monotonic clock. For tests. */
    int64_t (*clock_ms)(void *clock_arg);
    void *clock_arg;
};

/* Opens a kv. url: NULL, "", "memory" or "memory:" -> memory backend (loop may be
 * NULL); "redis://[:password@]host[:port][/db]" (port 6379, db 0 by default) -> redis
 * backend on `loop` (required), connecting in the background (mk_kv_ready tells when).
 * opt may be NULL. MK_EINVAL (bad url, with a sentence in err when not NULL),
 * MK_ENOMEM. On success *out is the caller's, freed with mk_kv_free. */
int mk_kv_open(uv_loop_t *loop, const char *url, const struct mk_kv_options *opt, struct mk_kv **out,
               mk_buf *err);
/* Fails every pending request with MK_ECANCELLED (callbacks run inside this call),
 * stops reconnecting, and releases the kv. For redis the memory is freed once `loop`
 * has run the handle close callbacks (run the loop afterwards, as for uv_close).
 * Accepts NULL. */
void mk_kv_free(struct mk_kv *kv);
/* "memory" or "redis" (static). */
const char *mk_kv_backend_name(const struct mk_kv *kv);
/* True when requests are accepted now (memory: always; redis: connected). */
bool mk_kv_ready(const struct mk_kv *kv);

/* Callbacks. Values and results are valid during the callback only. */
typedef void (*mk_kv_done_cb)(int rc, void *arg);
/* rc 0 and the value, or MK_ENOTFOUND (value empty), or an error. */
typedef void (*mk_kv_get_cb)(int rc, mk_slice value, void *arg);
/* rc 0 and the counter's new value, or an error (MK_EINVAL when the key holds a
 * value that is not an integer). */
typedef void (*mk_kv_int_cb)(int rc, int64_t value, void *arg);

int mk_kv_get(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_get_cb cb, void *arg);
/* ttl_ms 0 = no expiry. */
int mk_kv_set(struct mk_kv *kv, const char *key, size_t keylen, const void *value, size_t len, uint64_t ttl_ms,
              mk_kv_done_cb cb, void *arg);
/* rc 0 whether or not the key existed. */
int mk_kv_del(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_done_cb cb, void *arg);
/* Adds delta to an integer counter (a missing key counts as 0). When the key had no
 * expiry (new, or set without TTL) and ttl_ms > 0, it gets ttl_ms: a counter for a
 * window expires with its window however often it is bumped. */
int mk_kv_incr(struct mk_kv *kv, const char *key, size_t keylen, int64_t delta, uint64_t ttl_ms, mk_kv_int_cb cb,
               void *arg);

/* What a bucket requires before its cost is applied. */
enum mk_kv_bucket_mode {
    MK_KV_TAKE = 0,  /* level >= cost (classic token bucket: 1 token per request) */
    MK_KV_ADMIT,     /* level >= 0, i.e. not in debt; the cost may push it below 0 */
    MK_KV_CHARGE,    /* always; level may go negative (charging real usage afterwards) */
};

/* One bucket. rate_per_s > 0: a token bucket of `capacity` refilled continuously at
 * rate_per_s, starting full. rate_per_s == 0: a budget counter: the level is capacity
 * minus everything charged so far (the spent amount is what is stored, so a changed
 * capacity applies at once); it never refills and should carry a window in its key
 * and ttl_ms (0 on a rate bucket = expire once it would be full again). */
struct mk_kv_bucket {
    const char *key;
    size_t keylen;
    double capacity;     /* > 0 */
    double rate_per_s;   /* >= 0 */
    double cost;         /* >= 0 */
    enum mk_kv_bucket_mode mode;
    uint64_t ttl_ms;
};

struct mk_kv_bucket_result {
    bool allowed;        /* every condition held and every cost was applied */
    int failed;          /* index of the first bucket that refused, -1 when allowed */
    /* When refused: ms until the refusing buckets would all allow (largest wait);
     * -1 when one of them never refills by itself (a budget). 0 when allowed. */
    int64_t retry_after_ms;
    double level[MK_KV_MAX_BUCKETS]; /* each level after the step (before, if refused) */
};
typedef void (*mk_kv_bucket_cb)(int rc, const struct mk_kv_bucket_result *r, void *arg);

/* The atomic multi-bucket step described above. now_ms is the time to refill to in
 * Unix milliseconds; 0 = the backend's clock (redis: the server's TIME, one clock for
 * every node; memory: the kv's clock). Pass a real time only from one consistent clock
 * (tests inject one). Buckets with bad numbers or keys are MK_EINVAL; n must be
 * 1..MK_KV_MAX_BUCKETS. */
int mk_kv_buckets(struct mk_kv *kv, const struct mk_kv_bucket *b, size_t n, int64_t now_ms, mk_kv_bucket_cb cb,
                  void *arg);

/* Counters for tests and metrics (monotonic since open). */
struct mk_kv_stats {
    uint64_t requests;       /* accepted calls */
    uint64_t unavailable;    /* calls refused with MK_EUNAVAILABLE, or failed by a lost connection */
    uint64_t reconnects;     /* successful connections after the first */
    uint64_t script_loads;   /* redis: NOSCRIPT answered by sending the script itself */
};
void mk_kv_get_stats(const struct mk_kv *kv, struct mk_kv_stats *out);

#endif
