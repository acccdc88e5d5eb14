/*
 * memory_scache: a per-thread cache of parsed session and agent-state records, so a
 * session read does not parse the same JSON again and again.
 *
 * Why. A session read is a kv lookup and a parse of the record (~250 bytes of JSON);
 * json-c's parse and the tree it builds cost about ten times the lookup. The record
 * seldom changes between reads, so the parsed tree is kept beside the exact bytes it
 * came from.
 *
 * Why it can never serve stale data. The kv stays the only truth: every read still
 * fetches the record's bytes from the kv, and the cached tree is used only when those
 * bytes equal the cached bytes (the same bytes always parse to the same tree). A write
 * by another thread, process or node (Redis) changes the bytes and the next read
 * parses them again.
 *
 * Why per thread. json-c objects are not thread-safe (reference counts are plain
 * integers, and serialising an object writes into it), so a tree may only be handed to
 * callbacks on the thread that owns it. Session calls run on kv loops, one thread
 * each, so each loop thread keeps its own cache (a pthread key frees it when the
 * thread ends). A cached tree is never modified: a change builds a new tree and
 * replaces the entry, so a caller holding a reference keeps a consistent value.
 *
 * Bounds. Each thread keeps at most the memory's budget (mk_memory_options.
 * session_cache_bytes), counted as an estimate of the tree's heap use, and evicts
 * records not read lately beyond it (CLOCK: a hit only sets a bit in its own entry, so
 * a read touches no other entry's memory). Entries carry the memory's generation number,
 * so a memory opened later at the same address never sees an older one's entries, and
 * mk_memory_free drops the calling thread's entries of its memory.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_limits.h"
#include "memory/memory_int.h"

struct sc_ent {
    struct sc_ent *chain;        /* hash bucket */
    uint64_t gen, hash;
    json_object *rec;            /* one reference, owned */
    int64_t expires_at;
    uint32_t ttl_ms;
    bool used;                   /* CLOCK bit: read since the hand last passed */
    size_t cost, rawlen, keylen;
    char *raw;                   /* points into data, after the key */
    char data[];                 /* key, then the record's bytes */
};

struct sc_table {
    struct sc_ent **tab;
    size_t cap;                  /* power of two */
    size_t n, bytes;
    size_t hand;                 /* CLOCK: next bucket to visit when evicting */
    json_tokener *tok;           /* reused by mem_parse_object */
};

static pthread_key_t sc_key;
static pthread_once_t sc_once = PTHREAD_ONCE_INIT;
static bool sc_key_ok;
static _Thread_local struct sc_table *sc_tls;

/* Heap use of a parsed record, estimated from its JSON size: json-c spends a few
 * hundred bytes per object (hash table, entries) and about 100 per member. */
static size_t ent_cost(size_t keylen, size_t rawlen) { return sizeof(struct sc_ent) + keylen + 512 + 9 * rawlen; }

/* Keys are short ASCII; eight bytes per step. */
static uint64_t key_hash(uint64_t gen, const char *key, size_t len)
{
    uint64_t h = (gen + len) * 0x9e3779b97f4a7c15ull;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, key, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        key += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, key, len);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static void ent_free(struct sc_ent *e)
{
    json_object_put(e->rec);
    free(e);
}

/* Unlinks *pp (an entry of t) and frees it. */
static void unlink_ent(struct sc_table *t, struct sc_ent **pp)
{
    struct sc_ent *e = *pp;
    *pp = e->chain;
    t->n--;
    t->bytes -= e->cost;
    ent_free(e);
}

static void remove_ent(struct sc_table *t, struct sc_ent *e)
{
    struct sc_ent **pp = &t->tab[e->hash & (t->cap - 1)];
    while (*pp && *pp != e) pp = &(*pp)->chain;
    if (*pp) unlink_ent(t, pp);
}

static void table_free(struct sc_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->cap; i++) {
        struct sc_ent *e = t->tab[i];
        while (e) {
            struct sc_ent *next = e->chain;
            ent_free(e);
            e = next;
        }
    }
    if (t->tok) json_tokener_free(t->tok);
    free(t->tab);
    free(t);
}

static void thread_end(void *p) { table_free(p); }

static void make_key(void) { sc_key_ok = pthread_key_create(&sc_key, thread_end) == 0; }

static struct sc_table *table_get(bool create)
{
    if (sc_tls || !create) return sc_tls;
    pthread_once(&sc_once, make_key);
    if (!sc_key_ok) return NULL; /* no way to free it at thread exit: no cache */
    struct sc_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cap = 256;
    t->tab = calloc(t->cap, sizeof *t->tab);
    if (!t->tab || pthread_setspecific(sc_key, t) != 0) {
        free(t->tab);
        free(t);
        return NULL;
    }
    sc_tls = t;
    return t;
}

/* Frees this thread's table once it holds nothing, so short-lived users (tests, the
 * CLI) leave nothing behind. */
static void table_release_if_empty(void)
{
    struct sc_table *t = sc_tls;
    if (!t || t->n) return;
    pthread_setspecific(sc_key, NULL);
    sc_tls = NULL;
    table_free(t);
}

static void grow(struct sc_table *t)
{
    size_t ncap = t->cap * 2;
    struct sc_ent **nt = calloc(ncap, sizeof *nt);
    if (!nt) return; /* longer chains, still correct */
    for (size_t i = 0; i < t->cap; i++) {
        struct sc_ent *e = t->tab[i];
        while (e) {
            struct sc_ent *next = e->chain;
            e->chain = nt[e->hash & (ncap - 1)];
            nt[e->hash & (ncap - 1)] = e;
            e = next;
        }
    }
    free(t->tab);
    t->tab = nt;
    t->cap = ncap;
    t->hand = 0;
}

static struct sc_ent *find(struct sc_table *t, uint64_t gen, uint64_t h, const char *key, size_t keylen)
{
    for (struct sc_ent *e = t->tab[h & (t->cap - 1)]; e; e = e->chain)
        if (e->hash == h && e->gen == gen && e->keylen == keylen && memcmp(e->data, key, keylen) == 0) return e;
    return NULL;
}

/* CLOCK eviction until the table fits budget: the hand visits buckets in turn,
 * sparing (once) entries read since its last visit. keep is never evicted. Ends: a
 * full turn clears every bit, so the next turn evicts. */
static void evict(struct sc_table *t, size_t budget, const struct sc_ent *keep)
{
    while (t->bytes > budget && t->n > 1) {
        struct sc_ent **pp = &t->tab[t->hand];
        while (*pp && t->bytes > budget) {
            struct sc_ent *e = *pp;
            if (e == keep || e->used) {
                e->used = false;
                pp = &e->chain;
            } else {
                unlink_ent(t, pp);
            }
        }
        if (t->bytes > budget) t->hand = (t->hand + 1) & (t->cap - 1);
    }
}

json_object *mem_scache_get(const struct mk_memory *m, const char *key, size_t keylen, mk_slice raw,
                            int64_t *expires_at, uint32_t *ttl_ms)
{
    struct sc_table *t = m->scache_budget ? sc_tls : NULL;
    if (!t) return NULL;
    uint64_t h = key_hash(m->gen, key, keylen);
    struct sc_ent *e = find(t, m->gen, h, key, keylen);
    if (!e) return NULL;
    if (e->rawlen != raw.len || memcmp(e->raw, raw.ptr, raw.len) != 0) {
        remove_ent(t, e); /* changed elsewhere: parse the new bytes */
        return NULL;
    }
    e->used = true;
    *expires_at = e->expires_at;
    *ttl_ms = e->ttl_ms;
    return json_object_get(e->rec);
}

void mem_scache_put(const struct mk_memory *m, const char *key, size_t keylen, const char *raw, size_t rawlen,
                    json_object *rec, int64_t expires_at, uint32_t ttl_ms)
{
    size_t cost = ent_cost(keylen, rawlen);
    if (!m->scache_budget || cost > m->scache_budget) {
        mem_scache_drop(m, key, keylen);
        return;
    }
    struct sc_table *t = table_get(true);
    if (!t) return;
    uint64_t h = key_hash(m->gen, key, keylen);
    struct sc_ent *old = find(t, m->gen, h, key, keylen);
    if (old) remove_ent(t, old);
    struct sc_ent *e = malloc(sizeof *e + keylen + rawlen);
    if (!e) {
        table_release_if_empty();
        return;
    }
    memcpy(e->data, key, keylen);
    e->raw = e->data + keylen;
    memcpy(e->raw, raw, rawlen);
    e->keylen = keylen;
    e->rawlen = rawlen;
    e->gen = m->gen;
    e->hash = h;
    e->rec = json_object_get(rec);
    e->expires_at = expires_at;
    e->ttl_ms = ttl_ms;
    e->cost = cost;
    e->used = false;
    if (t->n >= t->cap) grow(t);
    e->chain = t->tab[h & (t->cap - 1)];
    t->tab[h & (t->cap - 1)] = e;
    t->n++;
    t->bytes += cost;
    if (t->bytes > m->scache_budget) evict(t, m->scache_budget, e);
}

void mem_scache_drop(const struct mk_memory *m, const char *key, size_t keylen)
{
    struct sc_table *t = sc_tls;
    if (!t) return;
    struct sc_ent *e = find(t, m->gen, key_hash(m->gen, key, keylen), key, keylen);
    if (e) remove_ent(t, e);
    table_release_if_empty();
}

void mem_scache_drop_all(const struct mk_memory *m)
{
    struct sc_table *t = sc_tls;
    if (!t) return;
    for (size_t i = 0; i < t->cap; i++) {
        struct sc_ent **pp = &t->tab[i];
        while (*pp) {
            if ((*pp)->gen == m->gen) unlink_ent(t, pp);
            else pp = &(*pp)->chain;
        }
    }
    table_release_if_empty();
}

json_object *mem_parse_object(const char *p, size_t len)
{
    struct sc_table *t = table_get(true);
    json_tokener *own = NULL, *tok = t ? t->tok : NULL;
    if (t && !tok) tok = t->tok = json_tokener_new_ex(MK_MAX_JSON_DEPTH);
    if (!tok) tok = own = json_tokener_new_ex(MK_MAX_JSON_DEPTH);
    if (!tok) return NULL;
    json_tokener_reset(tok);
    json_object *o = len <= INT_MAX ? json_tokener_parse_ex(tok, p, (int)len) : NULL;
    if (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    if (own) json_tokener_free(own);
    return o;
}
