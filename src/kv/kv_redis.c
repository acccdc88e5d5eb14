/*
 * kv_redis: the Redis kv backend, shared by every node of a deployment.
 *
 * hiredis async on the caller's libuv loop (hiredis's own libuv adapter). One
 * connection per mk_kv; commands are pipelined on it. Token buckets and
 * incr-with-TTL are Lua scripts (loaded with SCRIPT LOAD after each connect, run with
 * EVALSHA; a NOSCRIPT answer, e.g. after SCRIPT FLUSH or a failover, resends that
 * request with EVAL), so each is one atomic step on the server, exact under any number
 * of concurrent clients.
 *
 * Failure handling, which is what this file is mostly about:
 *  - Not connected (connecting, backing off): requests fail fast with MK_EUNAVAILABLE,
 *    so a Redis outage costs callers nothing but the decision what to do without it.
 *  - Lost connection: hiredis fails every pending command (we report MK_EUNAVAILABLE),
 *    then we reconnect after a jittered exponential backoff (reconnect_min_ms doubling
 *    up to reconnect_max_ms; reset by a successful connect).
 *  - A hung server or network: a watchdog drops the connection when the connect takes
 *    longer than connect_timeout_ms or the oldest pending command is older than
 *    command_timeout_ms (a timed-out command may still have run on the server).
 *
 * Host names are resolved by hiredis with a blocking getaddrinfo at (re)connect time;
 * give an IP address where that matters.
 */
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "kv/kv_int.h"

/* The bucket step of mk_kv.c (mk_kv__bucket_*), as one server-side script.
 * KEYS: the buckets. ARGV[1]: now in ms (<= 0: the server's clock), then five per
 * bucket: capacity, rate per second, cost, mode (0 take, 1 admit, 2 charge), ttl ms.
 * State is a hash {s = level or spent, ts = last refill ms}. A key holding another
 * type is treated as absent and replaced, like the memory backend does.
 * Returns {allowed 0/1, failed index or -1, retry ms or -1, level strings...}. */
static const char bucket_lua[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local now = tonumber(ARGV[1])\n"
    "if now <= 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local n = #KEYS\n"
    "local lv, st, ok, failed, retry = {}, {}, true, -1, 0\n"
    "for i = 1, n do\n"
    "  local a = 1 + (i - 1) * 5\n"
    "  local cap, rate = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
    "  local cost, mode = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])\n"
    "  local s = {present = false, stored = 0, stamp = now, foreign = false}\n"
    "  local ty = redis.call('TYPE', KEYS[i]).ok\n"
    "  if ty == 'hash' then\n"
    "    local h = redis.call('HMGET', KEYS[i], 's', 'ts')\n"
    "    if h[1] then s.present = true; s.stored = tonumber(h[1]) or 0; s.stamp = tonumber(h[2]) or now end\n"
    "  elseif ty ~= 'none' then s.foreign = true end\n"
    "  st[i] = s\n"
    "  local level\n"
    "  if rate <= 0 then level = cap - s.stored\n"
    "  elseif not s.present then level = cap\n"
    "  else\n"
    "    level = s.stored\n"
    "    if now > s.stamp then level = level + (now - s.stamp) * rate / 1000 end\n"
    "    if level > cap then level = cap end\n"
    "  end\n"
    "  lv[i] = level\n"
    "  local need = 0\n"
    "  if mode == 0 and level < cost then need = cost - level\n"
    "  elseif mode == 1 and level < 0 then need = -level end\n"
    "  if need > 0 then\n"
    "    if ok then failed = i - 1 end\n"
    "    ok = false\n"
    "    if rate <= 0 or retry < 0 then retry = -1\n"
    "    else\n"
    "      local w = math.ceil(need * 1000 / rate)\n"
    "      if w > 9e15 then w = 9e15 end\n"
    "      if w > retry then retry = w end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if ok then\n"
    "  for i = 1, n do\n"
    "    local a = 1 + (i - 1) * 5\n"
    "    local cap, rate = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
    "    local cost, ttl = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 5])\n"
    "    local s = st[i]\n"
    "    if s.foreign then redis.call('DEL', KEYS[i]) end\n"
    "    local stored, stamp, level\n"
    "    if rate <= 0 then\n"
    "      stored = s.stored + cost; stamp = now; level = cap - stored\n"
    "    else\n"
    "      stored = lv[i] - cost\n"
    "      stamp = s.stamp\n"
    "      if (not s.present) or now > s.stamp then stamp = now end\n"
    "      level = stored\n"
    "      if level > cap then level = cap end\n"
    "    end\n"
    "    lv[i] = level\n"
    "    redis.call('HSET', KEYS[i], 's', string.format('%.17g', stored), 'ts', string.format('%.17g', stamp))\n"
    "    if ttl <= 0 and rate > 0 then\n"
    "      local missing = cap - level\n"
    "      ttl = 1000\n"
    "      if missing > 0 then ttl = math.ceil(missing * 1000 / rate) + 1000 end\n"
    "    end\n"
    "    if ttl > 1e12 then ttl = 1e12 end\n"
    "    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], string.format('%d', ttl))\n"
    "    else redis.call('PERSIST', KEYS[i]) end\n"
    "  end\n"
    "end\n"
    "local out = {ok and 1 or 0, failed, retry}\n"
    "for i = 1, n do out[#out + 1] = string.format('%.17g', lv[i]) end\n"
    "return out\n";

/* INCRBY plus a TTL only when the key has none (PEXPIRE NX needs Redis 7). */
static const char incr_lua[] =
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "local ttl = tonumber(ARGV[2])\n"
    "if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
    "return v\n";

enum { SCRIPT_BUCKET = 0, SCRIPT_INCR, SCRIPT_COUNT };
static const char *const scripts[SCRIPT_COUNT] = {bucket_lua, incr_lua};

enum conn_state { ST_DOWN = 0, ST_CONNECTING, ST_UP };

enum req_op { OP_GET, OP_SET, OP_DEL, OP_INCR, OP_BUCKETS, OP_INTERNAL };

/* Most arguments a command has: EVALSHA sha nkeys + 8 keys + now + 8 x 5. */
#define MAX_ARGS 64

struct rds;

struct req {
    struct req *prev, *next;     /* pending list, in send order */
    struct rds *r;
    enum req_op op;
    int script;                  /* SCRIPT_* for scripted ops, -1 otherwise */
    size_t nbuckets;
    uint64_t sent_ms;
    union {
        mk_kv_get_cb get;
        mk_kv_done_cb done;
        mk_kv_int_cb incr;
        mk_kv_bucket_cb buckets;
    } cb;
    void *arg;
    /* Kept for scripted ops so NOSCRIPT can resend them with EVAL. */
    int argc;
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
    char *blob;                  /* owns the argument bytes */
};

struct rds {
    struct mk_kv *kv;
    uv_loop_t *loop;
    redisAsyncContext *ac;
    enum conn_state state;
    bool closing;
    bool ever_up;
    uv_timer_t retry_timer;
    uv_timer_t watchdog;
    int open_handles;
    uint64_t connect_started_ms;
    uint32_t backoff_ms;
    char host[256];
    int port;
    int db;
    char password[256];
    char sha[SCRIPT_COUNT][41];  /* "" until SCRIPT LOAD answered */
    struct req *head, *tail;
};

static void start_connect(struct rds *r);
static void on_retry_timer(uv_timer_t *t) { start_connect(t->data); }

/* ---- pending list ------------------------------------------------------------------- */

static void pending_add(struct rds *r, struct req *q)
{
    q->prev = r->tail;
    q->next = NULL;
    if (r->tail)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
}

static void pending_remove(struct rds *r, struct req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        r->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        r->tail = q->prev;
    q->prev = q->next = NULL;
}

static void req_free(struct req *q)
{
    if (!q) return;
    free(q->blob);
    free(q);
}

/* Report an error to a request's caller (no reply to give). */
static void fail_req(struct req *q, int rc)
{
    switch (q->op) {
    case OP_GET: q->cb.get(rc, (mk_slice){"", 0}, q->arg); break;
    case OP_SET:
    case OP_DEL:
        if (q->cb.done) q->cb.done(rc, q->arg);
        break;
    case OP_INCR:
        if (q->cb.incr) q->cb.incr(rc, 0, q->arg);
        break;
    case OP_BUCKETS:
        if (q->cb.buckets) q->cb.buckets(rc, NULL, q->arg);
        break;
    case OP_INTERNAL: break;
    }
}

/* ---- connection ------------------------------------------------------------------- */

static void schedule_reconnect(struct rds *r)
{
    if (r->closing) return;
    uint32_t base = r->backoff_ms ? r->backoff_ms : r->kv->opt.reconnect_min_ms;
    /* Full jitter over the upper half: nodes that lost Redis together do not all
     * come back in the same millisecond. */
    uint32_t delay = base / 2 + mk_rand_uniform(base / 2 + 1);
    uint64_t next = (uint64_t)base * 2;
    r->backoff_ms = next > r->kv->opt.reconnect_max_ms ? r->kv->opt.reconnect_max_ms : (uint32_t)next;
    uv_timer_start(&r->retry_timer, on_retry_timer, delay, 0);
}

/* Drops the connection now: pending requests fail (MK_EUNAVAILABLE, or MK_ECANCELLED
 * when closing) inside this call. */
static void drop(struct rds *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    if (!ac) return;
    r->ac = NULL; /* from here on, callbacks for ac know it is no longer ours */
    bool was_up = r->state == ST_UP;
    r->state = ST_DOWN;
    if (!r->closing)
        mk_log(MK_LOG_WARN, "kv_redis_down", "host", r->host, "reason", why, "was_connected", was_up ? "1" : "0",
               NULL);
    redisAsyncFree(ac);
    schedule_reconnect(r);
}

static void on_internal_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rds *r = ac->data;
    if (!r || r->ac != ac) return;
    if (status != REDIS_OK) {
        /* hiredis frees ac after this callback. */
        r->ac = NULL;
        r->state = ST_DOWN;
        mk_log(MK_LOG_WARN, "kv_redis_connect_failed", "host", r->host, "error", ac->errstr, NULL);
        schedule_reconnect(r);
        return;
    }
    r->state = ST_UP;
    /* The backoff resets on the first answer (on_internal_reply), not here: a server
     * that accepts connections but never answers must not be hammered. */
    if (r->ever_up) atomic_fetch_add(&r->kv->st_reconnects, 1);
    r->ever_up = true;
    mk_log(MK_LOG_INFO, "kv_redis_connected", "host", r->host, NULL);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rds *r = ac->data;
    if (!r || r->ac != ac) return; /* dropped by us: already handled */
    r->ac = NULL;
    r->state = ST_DOWN;
    if (!r->closing)
        mk_log(MK_LOG_WARN, "kv_redis_down", "host", r->host, "reason",
               status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"), NULL);
    schedule_reconnect(r);
}

static int send_req(struct rds *r, struct req *q);

static struct req *req_new(struct rds *r, enum req_op op)
{
    struct req *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->r = r;
    q->op = op;
    q->script = -1;
    return q;
}

/* Sends a command issued by the backend itself (AUTH, SELECT, SCRIPT LOAD). */
static void send_internal(struct rds *r, int argc, const char **argv, const size_t *lens, int script)
{
    struct req *q = req_new(r, OP_INTERNAL);
    if (!q) return;
    q->script = script;
    q->argc = argc;
    for (int i = 0; i < argc; i++) {
        q->argv[i] = argv[i];
        q->argvlen[i] = lens[i];
    }
    /* argv points at static text or r's own fields: no blob needed. */
    if (redisAsyncCommandArgv(r->ac, on_internal_reply, q, argc, argv, lens) != REDIS_OK) {
        req_free(q);
        return;
    }
    q->sent_ms = mk_now_ms();
    pending_add(r, q);
}

static void start_connect(struct rds *r)
{
    if (r->closing || r->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac) {
        schedule_reconnect(r);
        return;
    }
    if (ac->err) {
        mk_log(MK_LOG_WARN, "kv_redis_connect_failed", "host", r->host, "error", ac->errstr, NULL);
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = ST_CONNECTING;
    r->connect_started_ms = mk_now_ms();
    for (int i = 0; i < SCRIPT_COUNT; i++) r->sha[i][0] = '\0';
    /* Queued before the connection completes; hiredis sends them first, so every
     * request after them runs authenticated, on the right db, with scripts loaded. */
    if (r->password[0]) {
        const char *av[] = {"AUTH", r->password};
        size_t al[] = {4, strlen(r->password)};
        send_internal(r, 2, av, al, -1);
    }
    if (r->db) {
        char dbs[16];
        int n = snprintf(dbs, sizeof dbs, "%d", r->db);
        const char *av[] = {"SELECT", dbs};
        size_t al[] = {6, (size_t)n};
        send_internal(r, 2, av, al, -1);
    }
    for (int i = 0; i < SCRIPT_COUNT; i++) {
        const char *av[] = {"SCRIPT", "LOAD", scripts[i]};
        size_t al[] = {6, 4, strlen(scripts[i])};
        send_internal(r, 3, av, al, i);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    struct rds *r = t->data;
    uint64_t now = mk_now_ms();
    if (r->state == ST_CONNECTING && now - r->connect_started_ms > r->kv->opt.connect_timeout_ms) {
        drop(r, "connect timeout");
        return;
    }
    if (r->state == ST_UP && r->head && now - r->head->sent_ms > r->kv->opt.command_timeout_ms) drop(r, "command timeout");
}

/* ---- replies ------------------------------------------------------------------------ */

static bool is_error(const redisReply *rep, const char *prefix)
{
    return rep && rep->type == REDIS_REPLY_ERROR && rep->str && strncmp(rep->str, prefix, strlen(prefix)) == 0;
}

static void on_internal_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct req *q = privdata;
    struct rds *r = q->r;
    redisReply *rep = reply;
    pending_remove(r, q);
    int script = q->script;
    req_free(q);
    if (!rep || r->ac != ac) return;
    if (rep->type == REDIS_REPLY_ERROR) {
        mk_log(MK_LOG_ERROR, "kv_redis_setup_failed", "host", r->host, "error", rep->str ? rep->str : "", NULL);
        /* Wrong password or db: no use going on with this connection. Dropping it from
         * inside a hiredis callback is safe: hiredis defers the free. */
        if (script < 0) drop(r, "setup command refused");
        return;
    }
    r->backoff_ms = 0;
    if (script >= 0 && rep->type == REDIS_REPLY_STRING && rep->len == 40) {
        memcpy(r->sha[script], rep->str, 40);
        r->sha[script][40] = '\0';
    }
}

static void deliver_buckets(struct req *q, redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 + q->nbuckets) {
        if (q->cb.buckets) q->cb.buckets(MK_EIO, NULL, q->arg);
        return;
    }
    struct mk_kv_bucket_result res = {0};
    for (size_t i = 0; i < 3; i++)
        if (rep->element[i]->type != REDIS_REPLY_INTEGER) {
            if (q->cb.buckets) q->cb.buckets(MK_EIO, NULL, q->arg);
            return;
        }
    res.allowed = rep->element[0]->integer == 1;
    res.failed = (int)rep->element[1]->integer;
    res.retry_after_ms = rep->element[2]->integer;
    for (size_t i = 0; i < q->nbuckets; i++) {
        redisReply *e = rep->element[3 + i];
        if (e->type != REDIS_REPLY_STRING) {
            if (q->cb.buckets) q->cb.buckets(MK_EIO, NULL, q->arg);
            return;
        }
        res.level[i] = strtod(e->str, NULL);
    }
    if (q->cb.buckets) q->cb.buckets(0, &res, q->arg);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct req *q = privdata;
    struct rds *r = q->r;
    redisReply *rep = reply;
    pending_remove(r, q);
    if (!rep) {
        /* The connection is gone (or the kv is being freed). */
        int rc = r->closing ? MK_ECANCELLED : MK_EUNAVAILABLE;
        if (rc == MK_EUNAVAILABLE) atomic_fetch_add(&r->kv->st_unavailable, 1);
        fail_req(q, rc);
        req_free(q);
        return;
    }
    if (q->script >= 0 && is_error(rep, "NOSCRIPT") && r->ac == ac && q->argvlen[0] == 7) {
        /* The server forgot the script (SCRIPT FLUSH, failover): send it along. */
        atomic_fetch_add(&r->kv->st_script_loads, 1);
        q->argv[0] = "EVAL";
        q->argvlen[0] = 4;
        q->argv[1] = scripts[q->script];
        q->argvlen[1] = strlen(scripts[q->script]);
        if (redisAsyncCommandArgv(ac, on_reply, q, q->argc, q->argv, q->argvlen) == REDIS_OK) {
            pending_add(r, q);
            return;
        }
        fail_req(q, MK_EUNAVAILABLE);
        req_free(q);
        return;
    }
    switch (q->op) {
    case OP_GET:
        if (rep->type == REDIS_REPLY_STRING)
            q->cb.get(0, (mk_slice){rep->str, rep->len}, q->arg);
        else if (rep->type == REDIS_REPLY_NIL || is_error(rep, "WRONGTYPE"))
            q->cb.get(MK_ENOTFOUND, (mk_slice){"", 0}, q->arg);
        else
            q->cb.get(MK_EIO, (mk_slice){"", 0}, q->arg);
        break;
    case OP_SET:
    case OP_DEL:
        if (q->cb.done) q->cb.done(rep->type == REDIS_REPLY_ERROR ? MK_EIO : 0, q->arg);
        break;
    case OP_INCR:
        if (!q->cb.incr) break;
        if (rep->type == REDIS_REPLY_INTEGER)
            q->cb.incr(0, (int64_t)rep->integer, q->arg);
        else if (rep->type == REDIS_REPLY_ERROR && rep->str &&
                 (strstr(rep->str, "not an integer") || strstr(rep->str, "overflow") ||
                  strstr(rep->str, "WRONGTYPE")))
            q->cb.incr(MK_EINVAL, 0, q->arg);
        else
            q->cb.incr(MK_EIO, 0, q->arg);
        break;
    case OP_BUCKETS:
        if (rep->type == REDIS_REPLY_ERROR) {
            mk_log(MK_LOG_ERROR, "kv_redis_script_error", "error", rep->str ? rep->str : "", NULL);
            if (q->cb.buckets) q->cb.buckets(MK_EIO, NULL, q->arg);
        } else {
            deliver_buckets(q, rep);
        }
        break;
    case OP_INTERNAL: break;
    }
    req_free(q);
}

/* ---- requests ----------------------------------------------------------------------- */

static int send_req(struct rds *r, struct req *q)
{
    if (r->state != ST_UP || !r->ac) {
        req_free(q);
        return MK_EUNAVAILABLE;
    }
    if (redisAsyncCommandArgv(r->ac, on_reply, q, q->argc, q->argv, q->argvlen) != REDIS_OK) {
        req_free(q);
        return MK_EUNAVAILABLE;
    }
    q->sent_ms = mk_now_ms();
    pending_add(r, q);
    return 0;
}

/* Builds argv from n (pointer, length) pairs, copying their bytes into one blob. */
static int pack(struct req *q, size_t n, const char *const *p, const size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += len[i];
    q->blob = malloc(total ? total : 1);
    if (!q->blob) return MK_ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(q->blob + off, p[i], len[i]);
        q->argv[i] = q->blob + off;
        q->argvlen[i] = len[i];
        off += len[i];
    }
    q->argc = (int)n;
    return 0;
}

/* The first two arguments of a scripted command: EVALSHA sha, or EVAL script when
 * the SHA is not known yet. Points at r's fields or static text (not in the blob). */
static void script_head(struct rds *r, struct req *q, int script)
{
    q->script = script;
    if (r->sha[script][0]) {
        q->argv[0] = "EVALSHA";
        q->argvlen[0] = 7;
        /* hiredis copies the arguments when the command is queued; a NOSCRIPT
         * resend replaces these two slots with static text. */
        q->argv[1] = r->sha[script];
        q->argvlen[1] = 40;
    } else {
        q->argv[0] = "EVAL";
        q->argvlen[0] = 4;
        q->argv[1] = scripts[script];
        q->argvlen[1] = strlen(scripts[script]);
    }
}

static int rds_get(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_get_cb cb, void *arg)
{
    struct rds *r = kv->impl;
    if (r->state != ST_UP) return MK_EUNAVAILABLE;
    struct req *q = req_new(r, OP_GET);
    if (!q) return MK_ENOMEM;
    q->cb.get = cb;
    q->arg = arg;
    const char *p[] = {"GET", key};
    size_t l[] = {3, keylen};
    if (pack(q, 2, p, l) != 0) {
        req_free(q);
        return MK_ENOMEM;
    }
    return send_req(r, q);
}

static int rds_set(struct mk_kv *kv, const char *key, size_t keylen, const void *value, size_t len, uint64_t ttl_ms,
                   mk_kv_done_cb cb, void *arg)
{
    struct rds *r = kv->impl;
    if (r->state != ST_UP) return MK_EUNAVAILABLE;
    struct req *q = req_new(r, OP_SET);
    if (!q) return MK_ENOMEM;
    q->cb.done = cb;
    q->arg = arg;
    char ttl[24];
    int tl = snprintf(ttl, sizeof ttl, "%" PRIu64, ttl_ms);
    const char *p[] = {"SET", key, value, "PX", ttl};
    size_t l[] = {3, keylen, len, 2, (size_t)tl};
    if (pack(q, ttl_ms ? 5 : 3, p, l) != 0) {
        req_free(q);
        return MK_ENOMEM;
    }
    return send_req(r, q);
}

static int rds_del(struct mk_kv *kv, const char *key, size_t keylen, mk_kv_done_cb cb, void *arg)
{
    struct rds *r = kv->impl;
    if (r->state != ST_UP) return MK_EUNAVAILABLE;
    struct req *q = req_new(r, OP_DEL);
    if (!q) return MK_ENOMEM;
    q->cb.done = cb;
    q->arg = arg;
    const char *p[] = {"DEL", key};
    size_t l[] = {3, keylen};
    if (pack(q, 2, p, l) != 0) {
        req_free(q);
        return MK_ENOMEM;
    }
    return send_req(r, q);
}

static int rds_incr(struct mk_kv *kv, const char *key, size_t keylen, int64_t delta, uint64_t ttl_ms,
                    mk_kv_int_cb cb, void *arg)
{
    struct rds *r = kv->impl;
    if (r->state != ST_UP) return MK_EUNAVAILABLE;
    struct req *q = req_new(r, OP_INCR);
    if (!q) return MK_ENOMEM;
    q->cb.incr = cb;
    q->arg = arg;
    char d[24], t[24];
    int dl = snprintf(d, sizeof d, "%" PRId64, delta);
    int tl = snprintf(t, sizeof t, "%" PRIu64, ttl_ms);
    /* Slots 0 and 1 are the script head; the blob holds the rest. */
    const char *p[] = {"", "", "1", key, d, t};
    size_t l[] = {0, 0, 1, keylen, (size_t)dl, (size_t)tl};
    if (pack(q, 6, p, l) != 0) {
        req_free(q);
        return MK_ENOMEM;
    }
    script_head(r, q, SCRIPT_INCR);
    return send_req(r, q);
}

static int rds_buckets(struct mk_kv *kv, const struct mk_kv_bucket *b, size_t n, int64_t now_ms, mk_kv_bucket_cb cb,
                       void *arg)
{
    struct rds *r = kv->impl;
    if (r->state != ST_UP) return MK_EUNAVAILABLE;
    struct req *q = req_new(r, OP_BUCKETS);
    if (!q) return MK_ENOMEM;
    q->cb.buckets = cb;
    q->arg = arg;
    q->nbuckets = n;
    /* Numbers as text; %.17g reads back to the same double in Lua. */
    char nums[1 + MK_KV_MAX_BUCKETS * 5][32];
    const char *p[MAX_ARGS];
    size_t l[MAX_ARGS];
    size_t k = 0;
    p[k] = "";
    l[k++] = 0;
    p[k] = "";
    l[k++] = 0;
    char nk[8];
    int nkl = snprintf(nk, sizeof nk, "%zu", n);
    p[k] = nk;
    l[k++] = (size_t)nkl;
    for (size_t i = 0; i < n; i++) {
        p[k] = b[i].key;
        l[k++] = b[i].keylen;
    }
    size_t ni = 0;
    int w = snprintf(nums[ni], sizeof nums[ni], "%" PRId64, now_ms);
    p[k] = nums[ni++];
    l[k++] = (size_t)w;
    for (size_t i = 0; i < n; i++) {
        double v[4] = {b[i].capacity, b[i].rate_per_s, b[i].cost, (double)b[i].mode};
        for (int j = 0; j < 4; j++) {
            w = snprintf(nums[ni], sizeof nums[ni], "%.17g", v[j]);
            p[k] = nums[ni++];
            l[k++] = (size_t)w;
        }
        w = snprintf(nums[ni], sizeof nums[ni], "%" PRIu64, b[i].ttl_ms);
        p[k] = nums[ni++];
        l[k++] = (size_t)w;
    }
    if (pack(q, k, p, l) != 0) {
        req_free(q);
        return MK_ENOMEM;
    }
    script_head(r, q, SCRIPT_BUCKET);
    return send_req(r, q);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static bool rds_accepts(const char *url) { return strncmp(url, "redis://", 8) == 0; }

/* redis://[:password@]host[:port][/db] */
static int parse_url(struct rds *r, const char *url, mk_buf *err)
{
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        /* "user:password@" (ACL user ignored: AUTH with one argument) or ":password@" */
        const char *pw = colon ? colon + 1 : p;
        size_t pwl = (size_t)(at - pw);
        if (pwl == 0 || pwl >= sizeof r->password) goto bad;
        memcpy(r->password, pw, pwl);
        r->password[pwl] = '\0';
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof r->host) goto bad;
    memcpy(r->host, p, hl);
    r->host[hl] = '\0';
    p += hl;
    r->port = 6379;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535) goto bad;
        r->port = (int)v;
        p = end;
    }
    if (*p == '/') {
        p++;
        if (*p) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || *end || v < 0 || v > 1000000) goto bad;
            r->db = (int)v;
            p = end;
        }
    }
    if (*p) goto bad;
    return 0;
bad:
    if (err) mk_buf_printf(err, "bad redis url (want redis://[:password@]host[:port][/db])");
    return MK_EINVAL;
}

static int rds_open(struct mk_kv *kv, uv_loop_t *loop, const char *url, mk_buf *err)
{
    if (!loop) {
        if (err) mk_buf_printf(err, "the redis kv needs an event loop");
        return MK_EINVAL;
    }
    struct rds *r = calloc(1, sizeof *r);
    if (!r) return MK_ENOMEM;
    int rc = parse_url(r, url, err);
    if (rc != 0) {
        free(r);
        return rc;
    }
    if (mk_rand_init() != 0) {
        free(r);
        return MK_EINTERNAL;
    }
    r->kv = kv;
    r->loop = loop;
    uv_timer_init(loop, &r->retry_timer);
    uv_timer_init(loop, &r->watchdog);
    r->retry_timer.data = r->watchdog.data = r;
    /* The kv never keeps a loop alive by itself. */
    uv_unref((uv_handle_t *)&r->retry_timer);
    uv_unref((uv_handle_t *)&r->watchdog);
    r->open_handles = 2;
    uint32_t tick = kv->opt.command_timeout_ms < kv->opt.connect_timeout_ms ? kv->opt.command_timeout_ms
                                                                            : kv->opt.connect_timeout_ms;
    tick /= 4;
    if (tick < 10) tick = 10;
    if (tick > 250) tick = 250;
    uv_timer_start(&r->watchdog, on_watchdog, tick, tick);
    kv->impl = r;
    start_connect(r);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct rds *r = h->data;
    if (--r->open_handles == 0) {
        struct mk_kv *kv = r->kv;
        free(r);
        free(kv);
    }
}

static void rds_close(struct mk_kv *kv)
{
    struct rds *r = kv->impl;
    r->closing = true;
    uv_timer_stop(&r->retry_timer);
    uv_timer_stop(&r->watchdog);
    /* Fails every pending request with MK_ECANCELLED (on_reply sees closing). */
    drop(r, "closing");
    uv_close((uv_handle_t *)&r->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->watchdog, on_handle_closed);
}

static bool rds_ready(const struct mk_kv *kv)
{
    const struct rds *r = kv->impl;
    return r->state == ST_UP;
}

const struct kv_backend mk_kv_redis_backend = {
    .name = "redis",
    .accepts = rds_accepts,
    .open = rds_open,
    .close = rds_close,
    .ready = rds_ready,
    .get = rds_get,
    .set = rds_set,
    .del = rds_del,
    .incr = rds_incr,
    .buckets = rds_buckets,
};
