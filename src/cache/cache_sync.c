/*
 * cache_sync: keeps the caches of several nodes in step through the kv (Redis).
 *
 * The kv holds an operation log: "mk:cache:seq" counts operations, and operation n is
 * the JSON record "mk:cache:op:<n>" (a stored entry with its query and answer, or an
 * invalidation), written with the entry's TTL so the log trims itself. A node appends
 * with INCR then SET; every node pulls the log on a timer and applies the other nodes'
 * operations to its own table and HNSW index (its own are skipped by node id). Entries
 * are thus in the kv for every node to see, while lookups stay local and never wait
 * on the network.
 *
 * INCR-then-SET leaves a short window where op n is counted but not yet written; a
 * reader that meets a missing op waits for it (up to MISSING_WAIT_MS) before deciding
 * it expired, so an op is never skipped because of the race alone. Ops counted before
 * the node attached are past that window and skipped at once when missing.
 *
 * Threads: the kv is driven by its loop, but stores and invalidations may come from
 * any thread (the knowledge base invalidates every cache from the thread that changed
 * it; a process with several loops stores from each). Records are therefore queued
 * under a mutex and a uv_async wakes the kv's loop to send them; only that loop
 * touches the kv and the counters below. Without a loop (unit tests) the caller is
 * the kv's thread and records go out at once.
 *
 * Lifetime: the state is separate from the cache so that kv callbacks still pending
 * when the cache is freed find `cache == NULL` and do nothing; the state frees itself
 * when its handles are closed and no callback is pending.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "cache/cache_int.h"
#include "cache/mk_cache.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "kv/mk_kv.h"

#define SEQ_KEY "mk:cache:seq"
#define OP_PREFIX "mk:cache:op:"
#define DEFAULT_INTERVAL_MS 500
/* Ops applied per pull: bounds the work one timer tick does on the loop. */
#define PULL_BATCH 256
#define MISSING_WAIT_MS 2000

struct publish;

struct cache_sync {
    mk_cache *cache;          /* NULL once the cache is gone */
    struct mk_kv *kv;
    uv_timer_t *timer;
    uv_async_t *async;        /* wakes the loop to send queued records */
    pthread_mutex_t qlock;    /* guards queue */
    struct publish *queue, **queue_tail;
    char node[17];            /* this node's id in records */
    int64_t last;             /* last op applied or skipped */
    int64_t target;           /* seq read at the start of this pull */
    int64_t attach_seq;       /* seq when attached: older missing ops are skipped at once */
    int64_t missing_seq;      /* an op found missing, and since when */
    uint64_t missing_since_ms;
    bool pulling;
    bool started;             /* the attach-time seq has been read */
    int pending;              /* kv callbacks not yet run */
    bool timer_closed;
    bool async_closed;
};

static void free_queue(struct publish *p);

static void maybe_free(struct cache_sync *s)
{
    if (!s->cache && s->timer_closed && s->async_closed && s->pending == 0) {
        free_queue(s->queue);
        pthread_mutex_destroy(&s->qlock);
        free(s);
    }
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, d, n);
}

/* ---- publishing -------------------------------------------------------------------- */

struct publish {
    struct cache_sync *s;
    char *record;
    size_t len;
    uint64_t ttl_ms;
    struct publish *next;     /* in the queue */
};

static void free_queue(struct publish *p)
{
    while (p) {
        struct publish *n = p->next;
        free(p->record);
        free(p);
        p = n;
    }
}

static void publish_set_done(int rc, void *arg)
{
    struct cache_sync *s = arg;
    s->pending--;
    if (rc != 0 && rc != MK_ECANCELLED) mk_logf(MK_LOG_WARN, "cache_sync_failed", "writing an op: %s", mk_strerror(rc));
    maybe_free(s);
}

static void publish_incr_done(int rc, int64_t seq, void *arg)
{
    struct publish *p = arg;
    struct cache_sync *s = p->s;
    s->pending--;
    if (rc == 0 && s->cache) {
        char key[64];
        int kl = snprintf(key, sizeof key, OP_PREFIX "%" PRId64, seq);
        s->pending++;
        if (mk_kv_set(s->kv, key, (size_t)kl, p->record, p->len, p->ttl_ms, publish_set_done, s) != 0) s->pending--;
    }
    free(p->record);
    free(p);
    maybe_free(s);
}

/* Sends one record: INCR, then SET in publish_incr_done. On the kv's loop. */
static void send_record(struct cache_sync *s, struct publish *p)
{
    s->pending++;
    if (!s->cache || mk_kv_incr(s->kv, SEQ_KEY, sizeof SEQ_KEY - 1, 1, 0, publish_incr_done, p) != 0) {
        s->pending--;
        free(p->record);
        free(p);
    }
}

static void on_async(uv_async_t *a)
{
    struct cache_sync *s = a->data;
    pthread_mutex_lock(&s->qlock);
    struct publish *p = s->queue;
    s->queue = NULL;
    s->queue_tail = &s->queue;
    pthread_mutex_unlock(&s->qlock);
    while (p) {
        struct publish *n = p->next;
        p->next = NULL;
        send_record(s, p);
        p = n;
    }
}

static void publish(struct cache_sync *s, json_object *rec, uint64_t ttl_ms)
{
    json_object_object_add(rec, "node", json_object_new_string(s->node));
    size_t len;
    const char *text = json_object_to_json_string_length(rec, JSON_C_TO_STRING_PLAIN, &len);
    struct publish *p = calloc(1, sizeof *p);
    if (!p || len > MK_KV_MAX_VALUE_BYTES || !(p->record = strndup(text, len))) {
        free(p);
        json_object_put(rec);
        return; /* the entry stays local: sharing is best effort */
    }
    json_object_put(rec);
    p->s = s;
    p->len = len;
    p->ttl_ms = ttl_ms;
    if (!s->async) {
        send_record(s, p);
        return;
    }
    pthread_mutex_lock(&s->qlock);
    *s->queue_tail = p;
    s->queue_tail = &p->next;
    pthread_mutex_unlock(&s->qlock);
    uv_async_send(s->async); /* thread-safe; several sends may wake the loop once */
}

void cache_sync_publish_put(struct cache_sync *s, const struct mk_cache_request *r, const char *answer, size_t len,
                            int64_t prompt_tokens, int64_t completion_tokens, uint32_t ttl_s)
{
    if (!s || !s->cache) return;
    char ex[65], ns[65];
    hex(r->exact, sizeof r->exact, ex);
    hex(r->ns_digest, sizeof r->ns_digest, ns);
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "op", json_object_new_string("put"));
    json_object_object_add(rec, "tenant", json_object_new_string(r->tenant));
    json_object_object_add(rec, "group", json_object_new_string(r->group));
    json_object_object_add(rec, "exact", json_object_new_string(ex));
    json_object_object_add(rec, "ns", json_object_new_string(ns));
    if (r->query) json_object_object_add(rec, "query", json_object_new_string_len(r->query, (int)r->query_len));
    json_object_object_add(rec, "answer", json_object_new_string_len(answer, (int)len));
    json_object_object_add(rec, "pt", json_object_new_int64(prompt_tokens));
    json_object_object_add(rec, "ct", json_object_new_int64(completion_tokens));
    json_object_object_add(rec, "ttl_s", json_object_new_int64(ttl_s));
    publish(s, rec, (uint64_t)ttl_s * 1000);
}

void cache_sync_publish_invalidate(struct cache_sync *s, const char *tenant, const char *group)
{
    if (!s || !s->cache) return;
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "op", json_object_new_string("invalidate"));
    if (tenant) json_object_object_add(rec, "tenant", json_object_new_string(tenant));
    if (group) json_object_object_add(rec, "group", json_object_new_string(group));
    /* Kept as long as any entry it may concern could still arrive. */
    publish(s, rec, (uint64_t)cache_default_ttl(s->cache) * 1000);
}

/* ---- pulling ----------------------------------------------------------------------- */

static const char *str_field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                          : NULL;
}

static bool unhex(const char *h, uint8_t *out, size_t n)
{
    size_t got = 0;
    return h && strlen(h) == 2 * n && sodium_hex2bin(out, n, h, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

/* Applies one record of another node. Malformed records are skipped (logged). */
static void apply(struct cache_sync *s, mk_slice value)
{
    json_object *rec = json_tokener_parse(value.ptr);
    const char *op = rec ? str_field(rec, "op") : NULL;
    const char *node = rec ? str_field(rec, "node") : NULL;
    if (!op || !node) goto bad;
    if (strcmp(node, s->node) == 0) goto done; /* our own */
    if (strcmp(op, "invalidate") == 0) {
        cache_invalidate_local(s->cache, str_field(rec, "tenant"), str_field(rec, "group"));
        goto done;
    }
    if (strcmp(op, "put") != 0) goto bad;
    struct mk_cache_request r = {.eligible = true};
    const char *tenant = str_field(rec, "tenant"), *group = str_field(rec, "group");
    const char *answer = str_field(rec, "answer"), *query = str_field(rec, "query");
    json_object *v;
    if (!tenant || !group || !answer || !unhex(str_field(rec, "exact"), r.exact, sizeof r.exact) ||
        !unhex(str_field(rec, "ns"), r.ns_digest, sizeof r.ns_digest))
        goto bad;
    r.tenant = (char *)tenant; /* borrowed for the call: store copies */
    r.group = (char *)group;
    if (query) {
        r.query = (char *)query;
        r.query_len = strlen(query);
    }
    int64_t pt = json_object_object_get_ex(rec, "pt", &v) ? json_object_get_int64(v) : 0;
    int64_t ct = json_object_object_get_ex(rec, "ct", &v) ? json_object_get_int64(v) : 0;
    int64_t ttl = json_object_object_get_ex(rec, "ttl_s", &v) ? json_object_get_int64(v) : 0;
    if (ttl < 0 || ttl > UINT32_MAX) ttl = 0;
    cache_store_local(s->cache, &r, answer, strlen(answer), pt, ct, (uint32_t)ttl);
    goto done;
bad:
    mk_logf(MK_LOG_WARN, "cache_sync_bad_record", "skipped a malformed cache operation");
done:
    json_object_put(rec);
}

static void pull_next(struct cache_sync *s);

static void got_op(int rc, mk_slice value, void *arg)
{
    struct cache_sync *s = arg;
    s->pending--;
    if (!s->cache) {
        maybe_free(s);
        return;
    }
    int64_t seq = s->last + 1;
    if (rc == 0) {
        apply(s, value);
        s->last = seq;
        s->missing_seq = 0;
    } else if (rc == MK_ENOTFOUND) {
        /* Expired, or counted but not yet written by its node (see the file comment). */
        uint64_t now = mk_now_ms();
        if (seq <= s->attach_seq) {
            s->last = seq;
        } else if (s->missing_seq != seq) {
            s->missing_seq = seq;
            s->missing_since_ms = now;
            s->pulling = false;
            return; /* look again next tick */
        } else if (now - s->missing_since_ms >= MISSING_WAIT_MS) {
            s->last = seq;
            s->missing_seq = 0;
        } else {
            s->pulling = false;
            return;
        }
    } else {
        s->pulling = false; /* kv trouble: next tick */
        return;
    }
    pull_next(s);
}

static void pull_next(struct cache_sync *s)
{
    if (s->last >= s->target) {
        s->pulling = false;
        return;
    }
    char key[64];
    int kl = snprintf(key, sizeof key, OP_PREFIX "%" PRId64, s->last + 1);
    s->pending++;
    if (mk_kv_get(s->kv, key, (size_t)kl, got_op, s) != 0) {
        s->pending--;
        s->pulling = false;
    }
}

static void got_seq(int rc, mk_slice value, void *arg)
{
    struct cache_sync *s = arg;
    s->pending--;
    if (!s->cache) {
        maybe_free(s);
        return;
    }
    int64_t seq = 0;
    if (rc == 0) {
        char buf[32];
        size_t n = value.len < sizeof buf - 1 ? value.len : sizeof buf - 1;
        memcpy(buf, value.ptr, n);
        buf[n] = '\0';
        char *end;
        seq = strtoll(buf, &end, 10);
        if (end == buf || seq < 0) seq = 0;
    } else if (rc != MK_ENOTFOUND) {
        s->pulling = false;
        return;
    }
    if (!s->started) {
        s->started = true;
        s->attach_seq = seq;
        s->last = seq > MK_CACHE_SYNC_BACKLOG ? seq - MK_CACHE_SYNC_BACKLOG : 0;
    }
    if (seq < s->last) s->last = seq; /* the counter was reset (kv flushed) */
    s->target = seq - s->last > PULL_BATCH ? s->last + PULL_BATCH : seq;
    pull_next(s);
}

static void start_pull(struct cache_sync *s)
{
    if (!s->cache || s->pulling || !mk_kv_ready(s->kv)) return;
    s->pulling = true;
    s->pending++;
    if (mk_kv_get(s->kv, SEQ_KEY, sizeof SEQ_KEY - 1, got_seq, s) != 0) {
        s->pending--;
        s->pulling = false;
    }
}

static void on_timer(uv_timer_t *t) { start_pull(t->data); }

static void timer_closed(uv_handle_t *h)
{
    struct cache_sync *s = h->data;
    free(h);
    s->timer_closed = true;
    maybe_free(s);
}

static void async_closed(uv_handle_t *h)
{
    struct cache_sync *s = h->data;
    free(h);
    s->async_closed = true;
    maybe_free(s);
}

int mk_cache_attach_kv(mk_cache *c, struct mk_kv *kv, uv_loop_t *loop, uint32_t interval_ms)
{
    if (!c || !kv) return MK_EINVAL;
    if (cache_get_sync(c)) return MK_EEXISTS;
    if (sodium_init() < 0) return MK_EINTERNAL;
    struct cache_sync *s = calloc(1, sizeof *s);
    if (!s) return MK_ENOMEM;
    s->cache = c;
    s->kv = kv;
    uint8_t id[8];
    randombytes_buf(id, sizeof id);
    hex(id, sizeof id, s->node);
    s->timer_closed = true;
    s->async_closed = true;
    s->queue_tail = &s->queue;
    if (pthread_mutex_init(&s->qlock, NULL) != 0) {
        free(s);
        return MK_ENOMEM;
    }
    if (loop) {
        s->timer = malloc(sizeof *s->timer);
        s->async = malloc(sizeof *s->async);
        if (!s->timer || !s->async || uv_timer_init(loop, s->timer) != 0) {
            free(s->timer);
            free(s->async);
            pthread_mutex_destroy(&s->qlock);
            free(s);
            return MK_ENOMEM;
        }
        s->timer->data = s;
        s->timer_closed = false;
        s->async->data = s;
        if (uv_async_init(loop, s->async, on_async) != 0) {
            free(s->async);
            s->async = NULL; /* publish from the caller's thread, as without a loop */
        } else {
            s->async_closed = false;
            uv_unref((uv_handle_t *)s->async);
        }
        uint32_t every = interval_ms ? interval_ms : DEFAULT_INTERVAL_MS;
        uv_timer_start(s->timer, on_timer, 0, every);
        uv_unref((uv_handle_t *)s->timer); /* syncing alone does not keep the loop alive */
    }
    cache_set_sync(c, s);
    return 0;
}

void mk_cache_sync_now(mk_cache *c)
{
    struct cache_sync *s = c ? cache_get_sync(c) : NULL;
    if (s) start_pull(s);
}

void cache_sync_detach(struct cache_sync *s)
{
    if (!s) return;
    s->cache = NULL;
    /* Records not sent yet are dropped: sharing is best effort, and the process is
     * going away with this cache. */
    pthread_mutex_lock(&s->qlock);
    free_queue(s->queue);
    s->queue = NULL;
    s->queue_tail = &s->queue;
    pthread_mutex_unlock(&s->qlock);
    bool closing = false;
    if (s->timer && !s->timer_closed) {
        uv_timer_stop(s->timer);
        uv_close((uv_handle_t *)s->timer, timer_closed);
        s->timer = NULL;
        closing = true;
    }
    if (s->async && !s->async_closed) {
        uv_close((uv_handle_t *)s->async, async_closed);
        s->async = NULL;
        closing = true;
    }
    if (!closing) maybe_free(s);
}
