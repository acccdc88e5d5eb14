/*
 * memory_session: sessions and agent state in kv (in-process or Redis), so any node
 * sharing the kv continues a session another node started.
 *
 * A session is one kv record (JSON: id, owner, times, state) under
 * "mem:s:<len>:<tenant>:<id>" with the session's TTL. Writes re-set the TTL; reads
 * slide it only when less than half of it is left, so a read costs one kv round trip
 * and a write-back happens at most once per half-TTL of an idle session (that
 * write-back could undo a state write racing it at that very moment; at any other
 * time reads never write). Agent state is one record per (tenant, agent) without
 * expiry. Keys carry the tenant's length so no tenant/id pair can forge another's key.
 *
 * Reads reuse the parsed record when the kv hands back the very bytes it was parsed
 * from (memory_scache.c: per thread, checked against the kv on every read, so a write
 * anywhere is seen at once); only changed records are parsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_rand.h"
#include "kv/mk_kv.h"
#include "memory/memory_int.h"

enum op_kind { OP_GET, OP_PUT, OP_AGENT_GET, OP_AGENT_PUT };

struct op {
    struct mk_memory *m;
    enum op_kind kind;
    mk_memory_json_cb cb;
    void *arg;
    char key[MK_KV_MAX_KEY_BYTES];
    size_t keylen;
    json_object *patch;          /* put: a reference held until the end */
    json_object *result;         /* put: the record being written */
    const char *raw;             /* put: result serialised (inside result), for the cache */
    size_t rawlen;
    int64_t expires_at;          /* put: the written record's expiry fields (cache) */
    uint32_t ttl_ms;
    bool on_stack;               /* a read on the in-process kv: not malloc'd */
};

/* "mem:<type>:<tenant length>:<tenant>:<id>" into out (MK_KV_MAX_KEY_BYTES); its
 * length, or 0 when it does not fit. Built by hand: it is on every session call. */
static size_t make_key(char *out, char type, const char *tenant, const char *id)
{
    size_t tl = strlen(tenant), il = strlen(id);
    char num[24];
    size_t nl = 0;
    do {
        num[sizeof num - 1 - nl++] = (char)('0' + tl % 10);
        tl /= 10;
    } while (tl);
    tl = strlen(tenant);
    size_t total = 8 + nl + tl + il; /* "mem:" type ':' num ':' tenant ':' id */
    if (total >= MK_KV_MAX_KEY_BYTES) return 0;
    char *p = out;
    memcpy(p, "mem:", 4);
    p[4] = type;
    p[5] = ':';
    p += 6;
    memcpy(p, num + sizeof num - nl, nl);
    p += nl;
    *p++ = ':';
    memcpy(p, tenant, tl);
    p += tl;
    *p++ = ':';
    memcpy(p, id, il);
    p += il;
    *p = '\0';
    return (size_t)(p - out);
}

static void op_free(struct op *o)
{
    json_object_put(o->patch);
    json_object_put(o->result);
    if (!o->on_stack) free(o);
}

/* Fills o; MK_EINVAL when the key would not fit. */
static int op_init(struct op *o, struct mk_memory *m, enum op_kind kind, char type, const char *tenant,
                   const char *id, mk_memory_json_cb cb, void *arg)
{
    o->keylen = make_key(o->key, type, tenant, id);
    if (!o->keylen) return MK_EINVAL;
    o->m = m;
    o->kind = kind;
    o->cb = cb;
    o->arg = arg;
    o->patch = o->result = NULL;
    o->raw = NULL;
    o->rawlen = 0;
    o->expires_at = 0;
    o->ttl_ms = 0;
    o->on_stack = false;
    return 0;
}

/* A new operation; *rc tells why when NULL. */
static struct op *op_new(struct mk_memory *m, enum op_kind kind, char type, const char *tenant, const char *id,
                         mk_memory_json_cb cb, void *arg, int *rc)
{
    /* malloc, not calloc: the key buffer is most of the struct and make_key fills it */
    struct op *o = malloc(sizeof *o);
    *rc = o ? op_init(o, m, kind, type, tenant, id, cb, arg) : MK_ENOMEM;
    if (*rc) {
        free(o);
        return NULL;
    }
    return o;
}

static int check_common(struct mk_memory *m, const char *tenant, const char *id, const char *what)
{
    if (!m || !m->kv) return MK_EINVAL;
    if (mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(id, what, false, NULL)) return MK_EINVAL;
    return 0;
}

static uint32_t ttl_of(struct mk_memory *m, json_object *rec)
{
    json_object *v;
    int64_t t = json_object_object_get_ex(rec, "ttl_ms", &v) ? json_object_get_int64(v) : 0;
    if (t < MK_MEMORY_MIN_SESSION_TTL_MS || t > MK_MEMORY_MAX_SESSION_TTL_MS) t = m->opt.session_ttl_ms;
    return (uint32_t)t;
}

static json_object *parse_record(mk_slice v) { return mem_parse_object(v.ptr, v.len); }

/* Merges patch into state: members replace, nulls delete. The values are copied: the
 * result may be cached, and the caller's patch is the caller's to change later. */
static int merge(json_object *state, json_object *patch)
{
    json_object_object_foreach(patch, k, v)
    {
        if (!v) {
            json_object_object_del(state, k);
            continue;
        }
        json_object *copy = NULL;
        if (json_object_deep_copy(v, &copy, NULL) != 0) return MK_ENOMEM;
        if (json_object_object_add(state, k, copy) != 0) {
            json_object_put(copy);
            return MK_ENOMEM;
        }
    }
    return 0;
}

/* A new object with the members of src (shared: cached trees are never changed). */
static json_object *clone_members(json_object *src)
{
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    json_object_object_foreach(src, k, v)
    {
        if (json_object_object_add_ex(o, k, json_object_get(v), JSON_C_OBJECT_ADD_KEY_IS_NEW) != 0) {
            json_object_put(v);
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

/* A record to change, made from a cached one without parsing: the record and its state
 * are new objects, the values under them are shared with the cached tree. */
static json_object *clone_record(json_object *cached)
{
    json_object *rec = clone_members(cached), *state;
    if (rec && json_object_object_get_ex(cached, "state", &state) && json_object_is_type(state, json_type_object)) {
        json_object *st = clone_members(state);
        if (!st || json_object_object_add(rec, "state", st) != 0) {
            json_object_put(st);
            json_object_put(rec);
            return NULL;
        }
    }
    return rec;
}

static int serialise(json_object *rec, const char **s, size_t *len)
{
    *s = json_object_to_json_string_length(rec, JSON_C_TO_STRING_PLAIN, len);
    if (!*s) return MK_ENOMEM;
    return *len > MK_MEMORY_MAX_STATE_BYTES ? MK_ETOOBIG : 0;
}

/* ---- create ------------------------------------------------------------------------- */

void mk_memory_session_new_id(char out[24])
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[22];
    mk_rand_bytes(r, sizeof r);
    for (int i = 0; i < 22; i++) out[i] = al[r[i] & 63];
    out[22] = '\0';
}

int mk_memory_session_register(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *id,
                               const char *user, const char *agent)
{
    if (!m || !c || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(id, "id", false, NULL) ||
        mem_check_id(user, "user", true, NULL) || mem_check_id(agent, "agent", true, NULL))
        return MK_EINVAL;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mem_now_ms(m));
    return mem_exec_bind(c, "INSERT INTO memory_sessions (tenant, id, user_id, agent, created_at)"
                            " VALUES (?, ?, ?, ?, CAST(? AS BIGINT)) ON CONFLICT DO NOTHING",
                         NULL, 5, tenant, id, mem_str(user), mem_str(agent), now);
}

/* The record was written (or not): remember what is now in the kv, then answer. */
static void on_set_reply(int rc, void *arg)
{
    struct op *o = arg;
    if (rc == 0 && o->raw) {
        /* nothing serialised o->result since o->raw was taken from it */
        mem_scache_put(o->m, o->key, o->keylen, o->raw, o->rawlen, o->result, o->expires_at, o->ttl_ms);
    } else {
        mem_scache_drop(o->m, o->key, o->keylen);
    }
    if (o->cb) o->cb(rc, rc == 0 ? o->result : NULL, o->arg);
    op_free(o);
}

int mk_memory_session_create_id(struct mk_memory *m, const char *tenant, const char *id, const char *user,
                                const char *agent, uint32_t ttl_ms, json_object *state, mk_memory_json_cb cb,
                                void *arg)
{
    int rc = check_common(m, tenant, id, "session id");
    if (rc) return rc;
    if (mem_check_id(user, "user", true, NULL) || mem_check_id(agent, "agent", true, NULL)) return MK_EINVAL;
    if (state && !json_object_is_type(state, json_type_object)) return MK_EINVAL;
    if (ttl_ms == 0) ttl_ms = m->opt.session_ttl_ms;
    if (ttl_ms < MK_MEMORY_MIN_SESSION_TTL_MS || ttl_ms > MK_MEMORY_MAX_SESSION_TTL_MS) return MK_EINVAL;
    struct op *o = op_new(m, OP_PUT, 's', tenant, id, cb, arg, &rc);
    if (!o) return rc;
    int64_t now = mem_now_ms(m);
    o->expires_at = now + ttl_ms;
    o->ttl_ms = ttl_ms;
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "id", json_object_new_string(id));
    json_object_object_add(rec, "tenant", json_object_new_string(tenant));
    json_object_object_add(rec, "user", json_object_new_string(mem_str(user)));
    json_object_object_add(rec, "agent", json_object_new_string(mem_str(agent)));
    json_object_object_add(rec, "created_at", json_object_new_int64(now));
    json_object_object_add(rec, "expires_at", json_object_new_int64(now + ttl_ms));
    json_object_object_add(rec, "ttl_ms", json_object_new_int64(ttl_ms));
    json_object *st = json_object_new_object();
    json_object_object_add(rec, "state", st);
    o->result = rec;
    if (state) rc = merge(st, state);
    if (rc == 0) rc = serialise(rec, &o->raw, &o->rawlen);
    if (rc == 0) rc = mk_kv_set(m->kv, o->key, o->keylen, o->raw, o->rawlen, ttl_ms, on_set_reply, o);
    if (rc) op_free(o);
    return rc;
}

int mk_memory_session_create(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *user,
                             const char *agent, uint32_t ttl_ms, json_object *state, mk_memory_json_cb cb, void *arg)
{
    char id[24];
    mk_memory_session_new_id(id);
    if (user && *user) {
        if (!c) return MK_EINVAL; /* a user's session must be findable by erasure */
        int rc = mk_memory_session_register(m, c, tenant, id, user, agent);
        if (rc) return rc;
    }
    return mk_memory_session_create_id(m, tenant, id, user, agent, ttl_ms, state, cb, arg);
}

/* ---- get / put ---------------------------------------------------------------------- */

/* Answers a read from rec (a reference the caller gives up). */
static void answer(struct op *o, json_object *rec)
{
    if (o->cb) o->cb(0, rec, o->arg);
    json_object_put(rec);
    op_free(o);
}

static void on_get(int rc, mk_slice value, void *arg)
{
    struct op *o = arg;
    struct mk_memory *m = o->m;
    int64_t now = mem_now_ms(m);
    bool read = o->kind == OP_GET || o->kind == OP_AGENT_GET;
    json_object *hit = NULL, *rec = NULL;
    if (rc == 0) {
        int64_t exp;
        uint32_t ttl;
        hit = mem_scache_get(m, o->key, o->keylen, value, &exp, &ttl);
        /* the hot path: the bytes we parsed last time, no write-back due */
        if (hit && read && (o->kind == OP_AGENT_GET || exp - now >= (int64_t)ttl / 2)) {
            answer(o, hit);
            return;
        }
    }
    if (hit) {
        /* a change (or an expiry to slide): a copy of the cached tree, never the tree */
        rec = clone_record(hit);
        json_object_put(hit);
        if (!rec) rc = MK_ENOMEM;
    } else if (rc == 0) {
        rec = parse_record(value);
        if (!rec) rc = MK_ECORRUPT;
    }
    if (rc == MK_ENOTFOUND || rc == MK_ECORRUPT) mem_scache_drop(m, o->key, o->keylen);
    if (o->kind == OP_AGENT_GET || o->kind == OP_AGENT_PUT) {
        if (rc == MK_ENOTFOUND) { /* no state yet: an empty object */
            rec = json_object_new_object();
            json_object_object_add(rec, "state", json_object_new_object());
            rc = 0;
        }
    }
    if (rc) {
        if (o->cb) o->cb(rc, NULL, o->arg);
        op_free(o);
        return;
    }
    json_object *state;
    if (!json_object_object_get_ex(rec, "state", &state) || !json_object_is_type(state, json_type_object)) {
        state = json_object_new_object();
        json_object_object_add(rec, "state", state);
    }
    if (read) {
        if (o->kind == OP_AGENT_GET) {
            if (value.len) mem_scache_put(m, o->key, o->keylen, value.ptr, value.len, rec, 0, 0);
            answer(o, rec);
            return;
        }
        uint32_t ttl = ttl_of(m, rec);
        json_object *v;
        int64_t exp = json_object_object_get_ex(rec, "expires_at", &v) ? json_object_get_int64(v) : 0;
        if (exp - now < (int64_t)ttl / 2) {
            /* slide the expiry: write back (fire and forget) what we answer */
            exp = now + ttl;
            json_object_object_add(rec, "expires_at", json_object_new_int64(exp));
            const char *s;
            size_t len;
            if (serialise(rec, &s, &len) == 0 && mk_kv_set(m->kv, o->key, o->keylen, s, len, ttl, NULL, NULL) == 0)
                mem_scache_put(m, o->key, o->keylen, s, len, rec, exp, ttl);
            else
                mem_scache_drop(m, o->key, o->keylen);
        } else {
            mem_scache_put(m, o->key, o->keylen, value.ptr, value.len, rec, exp, ttl);
        }
        answer(o, rec);
        return;
    }
    /* put: merge and write back with a fresh TTL */
    o->result = rec;
    if ((rc = merge(state, o->patch)) != 0) {
        if (o->cb) o->cb(rc, NULL, o->arg);
        op_free(o);
        return;
    }
    uint64_t ttl = 0;
    if (o->kind == OP_PUT) {
        ttl = ttl_of(m, rec);
        o->expires_at = now + (int64_t)ttl;
        o->ttl_ms = (uint32_t)ttl;
        json_object_object_add(rec, "expires_at", json_object_new_int64(o->expires_at));
    }
    json_object_object_add(rec, "updated_at", json_object_new_int64(now));
    rc = serialise(rec, &o->raw, &o->rawlen);
    if (rc == 0) rc = mk_kv_set(m->kv, o->key, o->keylen, o->raw, o->rawlen, ttl, on_set_reply, o);
    if (rc) {
        if (o->cb) o->cb(rc, NULL, o->arg);
        op_free(o);
    }
}

static int start_get(struct mk_memory *m, enum op_kind kind, char type, const char *tenant, const char *id,
                     json_object *patch, mk_memory_json_cb cb, void *arg)
{
    if (patch && !json_object_is_type(patch, json_type_object)) return MK_EINVAL;
    int rc;
    if (m->kv_sync && (kind == OP_GET || kind == OP_AGENT_GET)) {
        /* The in-process kv answers before mk_kv_get returns (its contract), and a
         * read never waits for anything after that: the operation can live here. */
        struct op so;
        rc = op_init(&so, m, kind, type, tenant, id, cb, arg);
        so.on_stack = true;
        return rc ? rc : mk_kv_get(m->kv, so.key, so.keylen, on_get, &so);
    }
    struct op *o = op_new(m, kind, type, tenant, id, cb, arg, &rc);
    if (!o) return rc;
    o->patch = json_object_get(patch);
    rc = mk_kv_get(m->kv, o->key, o->keylen, on_get, o);
    if (rc) op_free(o);
    return rc;
}

int mk_memory_session_get(struct mk_memory *m, const char *tenant, const char *id, mk_memory_json_cb cb, void *arg)
{
    int rc = check_common(m, tenant, id, "session id");
    return rc ? rc : start_get(m, OP_GET, 's', tenant, id, NULL, cb, arg);
}

int mk_memory_session_put_state(struct mk_memory *m, const char *tenant, const char *id, json_object *patch,
                                mk_memory_json_cb cb, void *arg)
{
    int rc = check_common(m, tenant, id, "session id");
    if (rc) return rc;
    if (!patch) return MK_EINVAL;
    return start_get(m, OP_PUT, 's', tenant, id, patch, cb, arg);
}

int mk_memory_agent_get(struct mk_memory *m, const char *tenant, const char *agent, mk_memory_json_cb cb, void *arg)
{
    int rc = check_common(m, tenant, agent, "agent");
    return rc ? rc : start_get(m, OP_AGENT_GET, 'a', tenant, agent, NULL, cb, arg);
}

int mk_memory_agent_put(struct mk_memory *m, const char *tenant, const char *agent, json_object *patch,
                        mk_memory_json_cb cb, void *arg)
{
    int rc = check_common(m, tenant, agent, "agent");
    if (rc) return rc;
    if (!patch) return MK_EINVAL;
    return start_get(m, OP_AGENT_PUT, 'a', tenant, agent, patch, cb, arg);
}

/* ---- delete ------------------------------------------------------------------------- */

struct del_op {
    mk_memory_json_cb cb;
    void *arg;
    int pending;                 /* kv calls in flight + 1 while issuing */
    int64_t deleted;
    int first_error;
};

static void del_finish(struct del_op *d)
{
    if (--d->pending > 0) return;
    json_object *r = json_object_new_object();
    json_object_object_add(r, "sessions", json_object_new_int64(d->deleted));
    if (d->cb) d->cb(d->first_error, d->first_error ? NULL : r, d->arg);
    json_object_put(r);
    free(d);
}

static void on_del(int rc, void *arg)
{
    struct del_op *d = arg;
    if (rc == 0) d->deleted++;
    else if (!d->first_error) d->first_error = rc;
    del_finish(d);
}

int mk_memory_session_delete(struct mk_memory *m, const char *tenant, const char *id, mk_memory_json_cb cb, void *arg)
{
    int rc = check_common(m, tenant, id, "session id");
    if (rc) return rc;
    json_object *one = json_object_new_array();
    json_object_array_add(one, json_object_new_string(id));
    rc = mk_memory_erase_sessions(m, tenant, one, cb, arg);
    json_object_put(one);
    return rc;
}

int mk_memory_erase_sessions(struct mk_memory *m, const char *tenant, json_object *sessions, mk_memory_json_cb cb,
                             void *arg)
{
    if (!m || !m->kv || mem_check_id(tenant, "tenant", false, NULL) ||
        (sessions && !json_object_is_type(sessions, json_type_array)))
        return MK_EINVAL;
    struct del_op *d = calloc(1, sizeof *d);
    if (!d) return MK_ENOMEM;
    d->cb = cb;
    d->arg = arg;
    d->pending = 1;
    size_t n = sessions ? json_object_array_length(sessions) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = json_object_get_string(json_object_array_get_idx(sessions, i));
        char key[MK_KV_MAX_KEY_BYTES];
        size_t kl = id && *id ? make_key(key, 's', tenant, id) : 0;
        if (!kl) continue;
        mem_scache_drop(m, key, kl);
        d->pending++;
        int rc = mk_kv_del(m->kv, key, kl, on_del, d);
        if (rc) {
            d->pending--;
            if (!d->first_error) d->first_error = rc;
        }
    }
    del_finish(d);
    return 0;
}
