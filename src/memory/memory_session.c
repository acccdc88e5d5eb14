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
};

static size_t make_key(char *out, char type, const char *tenant, const char *id)
{
    int n = snprintf(out, MK_KV_MAX_KEY_BYTES, "mem:%c:%zu:%s:%s", type, strlen(tenant), tenant, id);
    return n > 0 && n < MK_KV_MAX_KEY_BYTES ? (size_t)n : 0;
}

static void op_free(struct op *o)
{
    json_object_put(o->patch);
    json_object_put(o->result);
    free(o);
}

static struct op *op_new(struct mk_memory *m, enum op_kind kind, char type, const char *tenant, const char *id,
                         mk_memory_json_cb cb, void *arg)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->m = m;
    o->kind = kind;
    o->cb = cb;
    o->arg = arg;
    o->keylen = make_key(o->key, type, tenant, id);
    if (!o->keylen) {
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

static json_object *parse_record(mk_slice v)
{
    json_tokener *tok = json_tokener_new_ex(MK_MAX_JSON_DEPTH);
    if (!tok) return NULL;
    json_object *o = json_tokener_parse_ex(tok, v.ptr, (int)v.len);
    if (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* Merges patch into state: members replace, nulls delete. */
static void merge(json_object *state, json_object *patch)
{
    json_object_object_foreach(patch, k, v)
    {
        if (!v) json_object_object_del(state, k);
        else json_object_object_add(state, k, json_object_get(v));
    }
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

static void on_set_reply(int rc, void *arg)
{
    struct op *o = arg;
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
    struct op *o = op_new(m, OP_PUT, 's', tenant, id, cb, arg);
    if (!o) return MK_ENOMEM;
    int64_t now = mem_now_ms(m);
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "id", json_object_new_string(id));
    json_object_object_add(rec, "tenant", json_object_new_string(tenant));
    json_object_object_add(rec, "user", json_object_new_string(mem_str(user)));
    json_object_object_add(rec, "agent", json_object_new_string(mem_str(agent)));
    json_object_object_add(rec, "created_at", json_object_new_int64(now));
    json_object_object_add(rec, "expires_at", json_object_new_int64(now + ttl_ms));
    json_object_object_add(rec, "ttl_ms", json_object_new_int64(ttl_ms));
    json_object *st = json_object_new_object();
    if (state) merge(st, state);
    json_object_object_add(rec, "state", st);
    o->result = rec;
    const char *s;
    size_t len;
    rc = serialise(rec, &s, &len);
    if (rc == 0) rc = mk_kv_set(m->kv, o->key, o->keylen, s, len, ttl_ms, on_set_reply, o);
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

static void on_get(int rc, mk_slice value, void *arg)
{
    struct op *o = arg;
    struct mk_memory *m = o->m;
    json_object *rec = NULL;
    if (rc == 0) {
        rec = parse_record(value);
        if (!rec) rc = MK_ECORRUPT;
    }
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
    int64_t now = mem_now_ms(m);
    if (o->kind == OP_GET || o->kind == OP_AGENT_GET) {
        if (o->kind == OP_GET) {
            uint32_t ttl = ttl_of(m, rec);
            json_object *v;
            int64_t exp = json_object_object_get_ex(rec, "expires_at", &v) ? json_object_get_int64(v) : 0;
            if (exp - now < (int64_t)ttl / 2) {
                json_object_object_add(rec, "expires_at", json_object_new_int64(now + ttl));
                const char *s;
                size_t len;
                if (serialise(rec, &s, &len) == 0) mk_kv_set(m->kv, o->key, o->keylen, s, len, ttl, NULL, NULL);
            }
        }
        if (o->cb) o->cb(0, rec, o->arg);
        json_object_put(rec);
        op_free(o);
        return;
    }
    /* put: merge and write back with a fresh TTL */
    merge(state, o->patch);
    uint64_t ttl = 0;
    if (o->kind == OP_PUT) {
        ttl = ttl_of(m, rec);
        json_object_object_add(rec, "expires_at", json_object_new_int64(now + (int64_t)ttl));
    }
    json_object_object_add(rec, "updated_at", json_object_new_int64(now));
    o->result = rec;
    const char *s;
    size_t len;
    rc = serialise(rec, &s, &len);
    if (rc == 0) rc = mk_kv_set(m->kv, o->key, o->keylen, s, len, ttl, on_set_reply, o);
    if (rc) {
        if (o->cb) o->cb(rc, NULL, o->arg);
        op_free(o);
    }
}

static int start_get(struct mk_memory *m, enum op_kind kind, char type, const char *tenant, const char *id,
                     json_object *patch, mk_memory_json_cb cb, void *arg)
{
    if (patch && !json_object_is_type(patch, json_type_object)) return MK_EINVAL;
    struct op *o = op_new(m, kind, type, tenant, id, cb, arg);
    if (!o) return MK_ENOMEM;
    o->patch = json_object_get(patch);
    int rc = mk_kv_get(m->kv, o->key, o->keylen, on_get, o);
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
