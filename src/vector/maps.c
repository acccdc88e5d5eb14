/*
 * maps.c: the two small hash tables of an index.
 *
 *   idmap    caller key (u64) -> node id (u32). Open addressing with linear probing
 *            and backward-shift deletion (no tombstones, so a long-lived index with
 *            churn never degrades). Load factor <= 1/2.
 *   nstable  namespace (u32) -> live count + member list. The count lets a search
 *            know how selective a namespace filter is before it starts, and the member
 *            list lets a small namespace be scanned exactly in O(its size).
 * Neither is thread-safe; the index guards them (map_mu, ns_rw).
 */
#include "vector/vector_int.h"
#include "core/mk_error.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t mix64(uint64_t x)
{
    /* A 64-bit finaliser: every input bit affects every output bit, so sequential
     * keys (row ids) spread over the table. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

int idmap_init(idmap *m, size_t want)
{
    size_t cap = pow2_at_least(want * 2);
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        return MK_ENOMEM;
    }
    memset(m->vals, 0xff, cap * sizeof *m->vals);
    m->cap = cap;
    m->len = 0;
    return 0;
}

void idmap_release(idmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
}

uint32_t idmap_get(const idmap *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        if (m->vals[i] == NODE_NONE)
            return NODE_NONE;
        if (m->keys[i] == key)
            return m->vals[i];
    }
}

static int idmap_rehash(idmap *m, size_t cap)
{
    idmap nm;
    int rc = idmap_init(&nm, cap / 2);
    if (rc)
        return rc;
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i] != NODE_NONE) {
            size_t mask = nm.cap - 1, j = mix64(m->keys[i]) & mask;
            while (nm.vals[j] != NODE_NONE)
                j = (j + 1) & mask;
            nm.keys[j] = m->keys[i];
            nm.vals[j] = m->vals[i];
            nm.len++;
        }
    idmap_release(m);
    *m = nm;
    return 0;
}

int idmap_put(idmap *m, uint64_t key, uint32_t val)
{
    if ((m->len + 1) * 2 > m->cap) {
        int rc = idmap_rehash(m, m->cap * 2);
        if (rc)
            return rc;
    }
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        if (m->vals[i] == NODE_NONE) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->len++;
            return 0;
        }
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
    }
}

void idmap_del(idmap *m, uint64_t key)
{
    size_t mask = m->cap - 1, i = mix64(key) & mask;
    for (;; i = (i + 1) & mask) {
        if (m->vals[i] == NODE_NONE)
            return;
        if (m->keys[i] == key)
            break;
    }
    /* Backward shift: move later entries of the run into the hole when their home
     * slot is not between the hole and themselves (cyclically). */
    size_t hole = i;
    for (size_t j = (hole + 1) & mask; m->vals[j] != NODE_NONE; j = (j + 1) & mask) {
        size_t home = mix64(m->keys[j]) & mask;
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->vals[hole] = NODE_NONE;
    m->len--;
}

size_t idmap_bytes(const idmap *m) { return m->cap * (sizeof *m->keys + sizeof *m->vals); }

/* ---- nstable ------------------------------------------------------------------- */

int nstable_init(nstable *t)
{
    t->cap = 16;
    t->len = 0;
    t->slots = calloc(t->cap, sizeof *t->slots);
    return t->slots ? 0 : MK_ENOMEM;
}

void nstable_release(nstable *t)
{
    if (t->slots)
        for (size_t i = 0; i < t->cap; i++)
            free(t->slots[i].members);
    free(t->slots);
    t->slots = NULL;
    t->cap = t->len = 0;
}

ns_entry *nstable_find(const nstable *t, uint32_t ns)
{
    size_t mask = t->cap - 1;
    for (size_t i = mix64(ns) & mask;; i = (i + 1) & mask) {
        if (!t->slots[i].used)
            return NULL;
        if (t->slots[i].ns == ns)
            return &t->slots[i];
    }
}

static ns_entry *slot_for(ns_entry *slots, size_t cap, uint32_t ns)
{
    size_t mask = cap - 1, i = mix64(ns) & mask;
    while (slots[i].used && slots[i].ns != ns)
        i = (i + 1) & mask;
    return &slots[i];
}

int nstable_add(nstable *t, uint32_t ns, uint32_t node)
{
    ns_entry *e = nstable_find(t, ns);
    if (!e) {
        if ((t->len + 1) * 2 > t->cap) {
            size_t ncap = t->cap * 2;
            ns_entry *ns2 = calloc(ncap, sizeof *ns2);
            if (!ns2)
                return MK_ENOMEM;
            for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i].used)
                    *slot_for(ns2, ncap, t->slots[i].ns) = t->slots[i];
            free(t->slots);
            t->slots = ns2;
            t->cap = ncap;
        }
        e = slot_for(t->slots, t->cap, ns);
        e->used = 1;
        e->ns = ns;
        t->len++;
    }
    if (e->len == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 4;
        uint32_t *m = realloc(e->members, ncap * sizeof *m);
        if (!m)
            return MK_ENOMEM;
        e->members = m;
        e->cap = ncap;
    }
    e->members[e->len++] = node;
    e->live++;
    return 0;
}

void nstable_dec(nstable *t, uint32_t ns)
{
    ns_entry *e = nstable_find(t, ns);
    if (e && e->live)
        e->live--;
}

size_t nstable_bytes(const nstable *t)
{
    size_t b = t->cap * sizeof *t->slots;
    for (size_t i = 0; i < t->cap; i++)
        b += t->slots[i].cap * sizeof(uint32_t);
    return b;
}
