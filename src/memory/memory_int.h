/*
 * memory_int: what the files of the memory module share (mk_memory.h is the contract).
 *
 *   memory.c          open/free, migrations, the three indexes (load, rebuild, sync,
 *                     checkpoint), shared helpers (validation, JSON of rows)
 *   memory_episode.c  episodes                memory_skill.c   skills
 *   memory_fact.c     facts                   memory_link.c    causal links
 *   memory_history.c  history window          memory_summary.c token estimate, extractive summary
 *   memory_session.c  sessions, agent state (kv)
 *   memory_scache.c   per-thread cache of parsed session records
 *   memory_erase.c    retention sweep, erasure, hooks
 *   memory_cli.c      `mayak memory`
 */
#ifndef MK_MEMORY_INT_H
#define MK_MEMORY_INT_H

#include <pthread.h>

#include "embed/mk_embed.h"
#include "memory/mk_memory.h"
#include "store/mk_store.h"
#include "vector/mk_vector.h"

/* Index kinds are the first three memory kinds. */
#define MEM_NINDEX 3

/* Change log operations (memory_changes.op). */
enum { MEM_OP_ADD = 1, MEM_OP_DEL = 2 };

struct mem_index {
    enum mk_memory_kind kind;
    mk_vector_index *ix;
    pthread_mutex_t mu;        /* guards wm and serialises sync of this index */
    int64_t wm;                /* change-log seq applied up to (inclusive) */
};

#define MEM_MAX_HOOKS 16
struct mem_hook {
    const char *name;
    mk_memory_erase_fn fn;
    void *arg;
};

struct mk_memory {
    struct mk_store *store;
    struct mk_kv *kv;
    bool kv_sync;              /* kv is the in-process one: callbacks run before calls return */
    struct mk_memory_options opt;
    char *data_dir;            /* owned copy, NULL = no files */
    mk_embedder *emb;
    uint32_t dim;
    bool postgres;             /* dialect of the rare query that differs */
    struct mem_index idx[MEM_NINDEX];
    pthread_mutex_t hooks_mu;
    struct mem_hook hooks[MEM_MAX_HOOKS];
    size_t nhooks;
    uint64_t gen;              /* unique per open memory of the process (session cache keys) */
    size_t scache_budget;      /* session cache bytes per thread, 0 = off */
};

/* ---- helpers (memory.c) ---- */
int64_t mem_now_ms(const struct mk_memory *m);
/* Checks an id-like string: non-empty (unless may_be_empty), at most
 * MK_MEMORY_MAX_ID_BYTES, valid UTF-8 without control characters. NULL counts as "".
 * On failure writes "<what> ..." to err and returns MK_EINVAL. */
int mem_check_id(const char *s, const char *what, bool may_be_empty, mk_buf *err);
/* Checks a text field: at most MK_MEMORY_MAX_TEXT_BYTES, valid UTF-8, no NUL. */
int mem_check_text(const char *s, const char *what, bool required, mk_buf *err);
/* Checks tags and joins them as ",a,b," (sorted-free, order kept) into out. */
int mem_join_tags(const char *const *tags, size_t n, mk_buf *out, mk_buf *err);
/* ",a,b," -> JSON array. */
json_object *mem_tags_json(const char *joined);
static inline const char *mem_str(const char *s) { return s ? s : ""; }

/* Namespace of a tenant (episodes, skills) or of a tenant's subject (facts). */
uint32_t mem_ns_tenant(const char *tenant);
uint32_t mem_ns_subject(const char *tenant, const char *subject);

/* Embeds text (lossy on nothing: input was checked as UTF-8). vec has m->dim floats. */
int mem_embed(const struct mk_memory *m, const char *text, size_t len, float *vec);

/* Appends a change-log row (inside the caller's transaction). */
int mem_log_change(struct mk_memory *m, struct mk_store_conn *c, enum mk_memory_kind kind, int64_t item, int op);
/* Index upkeep after a committed write: add (upsert) or remove a vector. */
int mem_index_put(struct mk_memory *m, enum mk_memory_kind kind, int64_t id, const float *vec, uint32_t ns,
                  uint64_t meta);
void mem_index_del(struct mk_memory *m, enum mk_memory_kind kind, int64_t id);
/* Episode metadata word: the reward's float bits above the creation second. */
uint64_t mem_episode_meta(double reward, int64_t created_ms);
double mem_meta_reward(uint64_t meta);
int64_t mem_meta_created_s(uint64_t meta);

/* Executes one statement with the given text binds (NULL = SQL NULL) and no result
 * rows; *changes (may be NULL) gets rows changed. */
int mem_exec_bind(struct mk_store_conn *c, const char *sql, int64_t *changes, int nbinds, ...);
/* Maps a store error to a sentence in err. */
void mem_store_err(struct mk_store_conn *c, int rc, const char *what, mk_buf *err);
/* Runs fn inside a transaction, retrying MK_EBUSY a few times (PostgreSQL
 * serialisation failures); commits on 0, rolls back otherwise. */
int mem_tx(struct mk_store_conn *c, int (*fn)(struct mk_store_conn *c, void *arg), void *arg);

/* Row -> JSON builders (column order documented at each SELECT list). */
#define MEM_EPISODE_COLS "id, tenant, user_id, session, task, tried, outcome, critique, reward, tags, created_at"
json_object *mem_episode_json(struct mk_store_stmt *st, double success_reward);

/* ---- session record cache (memory_scache.c), per calling thread ---- */
/* The cached tree of the record under key when its bytes equal raw: a new reference
 * (the caller puts it) and the record's expiry fields; NULL on a miss (an entry with
 * other bytes is dropped). The tree must not be modified. */
json_object *mem_scache_get(const struct mk_memory *m, const char *key, size_t keylen, mk_slice raw,
                            int64_t *expires_at, uint32_t *ttl_ms);
/* Remembers rec (a reference is taken; rec must not be modified afterwards) as the
 * parse of raw (copied) under key, evicting the least recently used beyond the budget.
 * Failing to allocate just leaves it uncached. */
void mem_scache_put(const struct mk_memory *m, const char *key, size_t keylen, const char *raw, size_t rawlen,
                    json_object *rec, int64_t expires_at, uint32_t ttl_ms);
/* Forgets key; and every entry of m (at mk_memory_free). Calling thread only. */
void mem_scache_drop(const struct mk_memory *m, const char *key, size_t keylen);
void mem_scache_drop_all(const struct mk_memory *m);
/* Parses a JSON object (anything else, or bad JSON: NULL) with this thread's reused
 * tokener, depth-limited by MK_MAX_JSON_DEPTH. */
json_object *mem_parse_object(const char *p, size_t len);

/* Turn id lists into JSON. */
json_object *mem_ids_json(const int64_t *ids, size_t n);

#endif
