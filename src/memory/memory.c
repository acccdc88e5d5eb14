/*
 * memory: opening the agent memory, its schema, and the three meaning indexes
 * (episodes, skills, facts) kept as a cache of the store (see mk_memory.h).
 *
 * Why a change log. The indexes live in each process; the rows live in the store,
 * possibly shared by several processes. Every write that changes what an index should
 * hold appends (kind, item, add|del) to memory_changes in the same transaction, so an
 * index file saved with the log position it reflects ("watermark") can be brought up
 * to date by replaying the log after it, and a process sees another's writes by
 * replaying periodically (mk_memory_sync). Replay is idempotent (an add of a present
 * item and a delete of an absent one do nothing), which is what makes a watermark
 * that is a little behind the file harmless.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_utf8.h"
#include "kv/mk_kv.h"
#include "memory/memory_int.h"

/* ---- schema ------------------------------------------------------------------------ */

/* One script for both dialects; only the identity column differs. Column names avoid
 * words either dialect reserves. */
#define MEM_SCHEMA_V1(ID)                                                                                          \
    "CREATE TABLE memory_episodes (id " ID ", tenant TEXT NOT NULL, user_id TEXT NOT NULL DEFAULT '',"             \
    " session TEXT NOT NULL DEFAULT '', task TEXT NOT NULL, tried TEXT NOT NULL DEFAULT '',"                       \
    " outcome TEXT NOT NULL DEFAULT '', critique TEXT NOT NULL DEFAULT '',"                                        \
    " reward DOUBLE PRECISION NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL);"     \
    "CREATE INDEX memory_episodes_tc ON memory_episodes(tenant, created_at);"                                      \
    "CREATE INDEX memory_episodes_user ON memory_episodes(tenant, user_id);"                                       \
    "CREATE INDEX memory_episodes_session ON memory_episodes(tenant, session);"                                    \
    "CREATE INDEX memory_episodes_created ON memory_episodes(created_at);"                                         \
    "CREATE TABLE memory_skills (id " ID ", tenant TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,"   \
    " description TEXT NOT NULL DEFAULT '', steps TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '',"                   \
    " author TEXT NOT NULL DEFAULT '', source_episode BIGINT NOT NULL DEFAULT 0,"                                  \
    " is_current INTEGER NOT NULL DEFAULT 1, uses BIGINT NOT NULL DEFAULT 0,"                                      \
    " successes BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, UNIQUE (tenant, name, version));"          \
    "CREATE INDEX memory_skills_created ON memory_skills(created_at);"                                             \
    "CREATE TABLE memory_facts (id " ID ", tenant TEXT NOT NULL, subject TEXT NOT NULL DEFAULT '',"                \
    " predicate TEXT NOT NULL DEFAULT '', value TEXT NOT NULL DEFAULT '', fact TEXT NOT NULL,"                     \
    " confidence DOUBLE PRECISION NOT NULL DEFAULT 1, valid_from BIGINT NOT NULL,"                                 \
    " valid_to BIGINT NOT NULL DEFAULT 0, asserted_by TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',"  \
    " closed_by TEXT NOT NULL DEFAULT '', superseded_by BIGINT NOT NULL DEFAULT 0,"                                \
    " seen BIGINT NOT NULL DEFAULT 1, last_seen_at BIGINT NOT NULL);"                                              \
    "CREATE INDEX memory_facts_subject ON memory_facts(tenant, subject, predicate);"                               \
    "CREATE INDEX memory_facts_valid_to ON memory_facts(valid_to);"                                                \
    "CREATE TABLE memory_links (id " ID ", tenant TEXT NOT NULL, cause TEXT NOT NULL, effect TEXT NOT NULL,"       \
    " confidence DOUBLE PRECISION NOT NULL, observations BIGINT NOT NULL DEFAULT 1,"                               \
    " user_id TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"                   \
    " UNIQUE (tenant, cause, effect));"                                                                            \
    "CREATE INDEX memory_links_effect ON memory_links(tenant, effect);"                                            \
    "CREATE INDEX memory_links_user ON memory_links(tenant, user_id);"                                             \
    "CREATE TABLE memory_history (id " ID ", tenant TEXT NOT NULL, session TEXT NOT NULL,"                         \
    " user_id TEXT NOT NULL DEFAULT '', role TEXT NOT NULL, content TEXT NOT NULL, tokens INTEGER NOT NULL,"       \
    " created_at BIGINT NOT NULL);"                                                                                \
    "CREATE INDEX memory_history_session ON memory_history(tenant, session, id);"                                  \
    "CREATE INDEX memory_history_user ON memory_history(tenant, user_id);"                                         \
    "CREATE INDEX memory_history_created ON memory_history(created_at);"                                           \
    "CREATE TABLE memory_summaries (tenant TEXT NOT NULL, session TEXT NOT NULL, upto_id BIGINT NOT NULL,"         \
    " covers BIGINT NOT NULL, summary TEXT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (tenant, session));"  \
    "CREATE TABLE memory_sessions (tenant TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL,"                 \
    " agent TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL, PRIMARY KEY (tenant, id));"                      \
    "CREATE INDEX memory_sessions_user ON memory_sessions(tenant, user_id);"                                       \
    "CREATE TABLE memory_changes (seq " ID ", kind INTEGER NOT NULL, item BIGINT NOT NULL, op INTEGER NOT NULL,"   \
    " at BIGINT NOT NULL);"                                                                                        \
    "CREATE INDEX memory_changes_kind ON memory_changes(kind, seq);" /* dropped in v2 */                            \
    "CREATE TABLE memory_erasures (id " ID ", tenant TEXT NOT NULL, user_digest TEXT NOT NULL,"                    \
    " requested_by TEXT NOT NULL, at BIGINT NOT NULL, report TEXT NOT NULL);"                                      \
    "CREATE TABLE memory_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"

/* v2: a new episode's change-log row is written by a trigger in the same statement
 * (one statement instead of two, and on SQLite no explicit transaction: the insert
 * commits as it runs, exactly as durably), and the log loses its (kind, seq) index:
 * replay reads the log in seq order anyway (primary key), and each write saved an
 * index update. Kind 0 = MK_MEMORY_EPISODES, op 1 = MEM_OP_ADD (checked below). */
#define MEM_V2_LOG_SQL "INSERT INTO memory_changes (kind, item, op, at) VALUES (0, NEW.id, 1, NEW.created_at);"
#define MEM_SCHEMA_V2_SQLITE                                                                                       \
    "CREATE TRIGGER memory_episodes_log AFTER INSERT ON memory_episodes BEGIN " MEM_V2_LOG_SQL " END;"              \
    "DROP INDEX memory_changes_kind;"
#define MEM_SCHEMA_V2_POSTGRES                                                                                     \
    "CREATE FUNCTION memory_episodes_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " MEM_V2_LOG_SQL           \
    " RETURN NULL; END $$;"                                                                                        \
    "CREATE TRIGGER memory_episodes_log AFTER INSERT ON memory_episodes FOR EACH ROW"                              \
    " EXECUTE FUNCTION memory_episodes_log();"                                                                     \
    "DROP INDEX memory_changes_kind;"
_Static_assert(MK_MEMORY_EPISODES == 0 && MEM_OP_ADD == 1, "MEM_V2_LOG_SQL spells these numbers out");

static const struct mk_store_migration memory_migrations[] = {
    {1, MEM_SCHEMA_V1("INTEGER PRIMARY KEY AUTOINCREMENT"), MEM_SCHEMA_V1("BIGSERIAL PRIMARY KEY")},
    {2, MEM_SCHEMA_V2_SQLITE, MEM_SCHEMA_V2_POSTGRES},
};

static const char *const kind_names[MK_MEMORY_KIND_COUNT] = {"episodes", "skills", "facts", "links", "history"};

const char *mk_memory_kind_name(enum mk_memory_kind k)
{
    return (unsigned)k < MK_MEMORY_KIND_COUNT ? kind_names[k] : "";
}

/* ---- small helpers ---------------------------------------------------------------- */

int64_t mem_now_ms(const struct mk_memory *m)
{
    if (m->opt.clock_ms) return m->opt.clock_ms(m->opt.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mem_check_id(const char *s, const char *what, bool may_be_empty, mk_buf *err)
{
    /* Every session call checks two ids: test eight bytes at a time for a control
     * character (< 0x20, 0x7f) or a non-ASCII byte, and decode UTF-8 only when there
     * is one (ids nearly always are ASCII). */
    size_t n = s ? strnlen(s, MK_MEMORY_MAX_ID_BYTES + 1) : 0;
    bool ctl = false, ascii = true;
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n && n <= MK_MEMORY_MAX_ID_BYTES; i += 8) {
        uint64_t w, del;
        memcpy(&w, s + i, 8);
        del = w ^ (0x7f * ones);
        /* "some byte < 0x20" and "some byte == 0x7f" (zero after the xor): the
         * classic word tests, exact as yes/no answers (a borrow only starts at a byte
         * that matches) */
        ctl |= (((w - 0x20 * ones) & ~w) | ((del - ones) & ~del)) & highs;
        ascii &= !(w & highs);
    }
    for (; i < n && n <= MK_MEMORY_MAX_ID_BYTES; i++) {
        unsigned char c = (unsigned char)s[i];
        ctl |= c < 0x20 || c == 0x7f;
        ascii &= c < 0x80;
    }
    const char *why = NULL;
    if (n == 0 && !may_be_empty) why = "is required";
    else if (n > MK_MEMORY_MAX_ID_BYTES) why = "is too long (at most 256 bytes)";
    else if (!ascii && !mk_utf8_valid(s, n)) why = "is not valid UTF-8";
    else if (ctl) why = "contains control characters";
    if (!why) return 0;
    if (err) mk_buf_printf(err, "%s %s", what, why);
    return MK_EINVAL;
}

int mem_check_text(const char *s, const char *what, bool required, mk_buf *err)
{
    size_t n = s ? strlen(s) : 0;
    const char *why = NULL;
    if (required && n == 0) why = "is required";
    else if (n > MK_MEMORY_MAX_TEXT_BYTES) why = "is too long (at most 64 KB)";
    else if (n && !mk_utf8_valid(s, n)) why = "is not valid UTF-8";
    if (!why) return 0;
    if (err) mk_buf_printf(err, "%s %s", what, why);
    return n > MK_MEMORY_MAX_TEXT_BYTES ? MK_ETOOBIG : MK_EINVAL;
}

int mem_join_tags(const char *const *tags, size_t n, mk_buf *out, mk_buf *err)
{
    if (n > MK_MEMORY_MAX_TAGS) {
        if (err) mk_buf_printf(err, "at most %d tags", MK_MEMORY_MAX_TAGS);
        return MK_ETOOBIG;
    }
    int rc = mk_buf_append(out, "", 0);
    if (n && rc == 0) rc = mk_buf_append_char(out, ',');
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *t = tags[i];
        size_t len = t ? strlen(t) : 0;
        if (len == 0 || len > MK_MEMORY_MAX_TAG_BYTES || !mk_utf8_valid(t, len) || strchr(t, ',')) {
            /* ',' separates tags in the stored column */
            if (err) mk_buf_printf(err, "tag %zu must be 1..64 bytes of UTF-8 without ','", i);
            return MK_EINVAL;
        }
        for (size_t j = 0; j < len; j++)
            if ((unsigned char)t[j] < 0x20) {
                if (err) mk_buf_printf(err, "tag %zu contains control characters", i);
                return MK_EINVAL;
            }
        rc = mk_buf_append(out, t, len);
        if (rc == 0) rc = mk_buf_append_char(out, ',');
    }
    return rc;
}

json_object *mem_tags_json(const char *joined)
{
    json_object *a = json_object_new_array();
    const char *p = joined ? joined : "";
    while (*p) {
        if (*p == ',') {
            p++;
            continue;
        }
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        json_object_array_add(a, json_object_new_string_len(p, (int)len));
        p += len;
    }
    return a;
}

json_object *mem_ids_json(const int64_t *ids, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_int64(ids[i]));
    return a;
}

uint32_t mem_ns_tenant(const char *tenant) { return mk_vector_ns_hash(tenant, strlen(tenant)); }

uint32_t mem_ns_subject(const char *tenant, const char *subject)
{
    /* tenant and subject are ids without control characters, so the separator cannot
     * occur in either and distinct pairs give distinct names */
    char buf[2 * MK_MEMORY_MAX_ID_BYTES + 2];
    int n = snprintf(buf, sizeof buf, "%s\x1f%s", tenant, subject ? subject : "");
    return mk_vector_ns_hash(buf, n > 0 ? (size_t)n : 0);
}

int mem_embed(const struct mk_memory *m, const char *text, size_t len, float *vec)
{
    return mk_embed_text(m->emb, text, len, vec);
}

uint64_t mem_episode_meta(double reward, int64_t created_ms)
{
    float r = (float)reward;
    uint32_t bits;
    memcpy(&bits, &r, sizeof bits);
    int64_t s = created_ms / 1000;
    if (s < 0) s = 0;
    if (s > (int64_t)UINT32_MAX) s = UINT32_MAX;
    return ((uint64_t)bits << 32) | (uint64_t)s;
}

double mem_meta_reward(uint64_t meta)
{
    uint32_t bits = (uint32_t)(meta >> 32);
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

int64_t mem_meta_created_s(uint64_t meta) { return (int64_t)(meta & 0xffffffffu); }

void mem_store_err(struct mk_store_conn *c, int rc, const char *what, mk_buf *err)
{
    if (!err) return;
    const char *msg = c ? mk_store_errmsg(c) : "";
    mk_buf_printf(err, "%s: %s%s%s", what, mk_strerror(rc), *msg ? ": " : "", msg);
}

int mem_exec_bind(struct mk_store_conn *c, const char *sql, int64_t *changes, int nbinds, ...)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql, &st);
    if (rc) return rc;
    va_list ap;
    va_start(ap, nbinds);
    for (int i = 0; i < nbinds && rc == 0; i++) {
        const char *s = va_arg(ap, const char *);
        rc = s ? mk_store_bind_cstr(st, i + 1, s) : mk_store_bind_null(st, i + 1);
    }
    va_end(ap);
    if (rc == 0) {
        rc = mk_store_step(st);
        if (rc == MK_STORE_ROW || rc == MK_STORE_DONE) rc = 0;
    }
    mk_store_stmt_done(st);
    if (rc == 0 && changes) *changes = mk_store_changes(c);
    return rc;
}

int mem_tx(struct mk_store_conn *c, int (*fn)(struct mk_store_conn *c, void *arg), void *arg)
{
    int rc = 0;
    for (int attempt = 0; attempt < 4; attempt++) {
        rc = mk_store_begin(c);
        if (rc == 0) {
            rc = fn(c, arg);
            if (rc == 0) rc = mk_store_commit(c);
            else mk_store_rollback(c);
        }
        if (rc != MK_EBUSY) break;
        /* a serialisation failure or a lock timeout: the whole transaction again */
        struct timespec ts = {0, (long)(1 + attempt * 4) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

int mem_log_change(struct mk_memory *m, struct mk_store_conn *c, enum mk_memory_kind kind, int64_t item, int op)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "INSERT INTO memory_changes (kind, item, op, at) VALUES (?, ?, ?, ?)", &st);
    if (rc) return rc;
    mk_store_bind_int64(st, 1, kind);
    mk_store_bind_int64(st, 2, item);
    mk_store_bind_int64(st, 3, op);
    mk_store_bind_int64(st, 4, mem_now_ms(m));
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    return rc == MK_STORE_DONE || rc == MK_STORE_ROW ? 0 : rc;
}

int mem_index_put(struct mk_memory *m, enum mk_memory_kind kind, int64_t id, const float *vec, uint32_t ns,
                  uint64_t meta)
{
    mk_vector_attrs a = {.ns = ns, .meta = meta};
    return mk_vector_upsert(m->idx[kind].ix, (uint64_t)id, vec, m->dim, &a);
}

void mem_index_del(struct mk_memory *m, enum mk_memory_kind kind, int64_t id)
{
    mk_vector_delete(m->idx[kind].ix, (uint64_t)id); /* absent is fine: replay is idempotent */
}

json_object *mem_episode_json(struct mk_store_stmt *st, double success_reward)
{
    /* static keys, each added once: json-c can skip copying the key and looking it up
     * (a search answer builds five of these) */
    enum { NEW_CONST = JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY };
    json_object *o = json_object_new_object();
    json_object_object_add_ex(o, "id", json_object_new_int64(mk_store_column_int64(st, 0)), NEW_CONST);
    static const char *const names[] = {NULL, "tenant", "user", "session", "task", "tried", "outcome", "critique"};
    for (int i = 1; i <= 7; i++) {
        mk_slice s = mk_store_column_text(st, i);
        json_object_object_add_ex(o, names[i], json_object_new_string_len(s.ptr, (int)s.len), NEW_CONST);
    }
    double reward = mk_store_column_double(st, 8);
    json_object_object_add_ex(o, "reward", json_object_new_double(reward), NEW_CONST);
    json_object_object_add_ex(o, "success", json_object_new_boolean(reward >= success_reward), NEW_CONST);
    json_object_object_add_ex(o, "tags", mem_tags_json(mk_store_column_text(st, 9).ptr), NEW_CONST);
    json_object_object_add_ex(o, "created_at", json_object_new_int64(mk_store_column_int64(st, 10)), NEW_CONST);
    return o;
}

const char *mk_memory_embedder_name(const struct mk_memory *m) { return mk_embedder_name(m->emb); }

size_t mk_memory_indexed(const struct mk_memory *m, enum mk_memory_kind k)
{
    if ((unsigned)k >= MEM_NINDEX) return 0;
    return mk_vector_count(m->idx[k].ix);
}

/* ---- indexes: what each holds, and how a row becomes a vector -------------------- */

/* The row of `kind` with id `item` that its index should hold, as the text to embed,
 * its namespace and metadata. MK_ENOTFOUND when the row is gone or no longer belongs
 * in the index (a closed fact, an old skill version). */
static int index_row(struct mk_memory *m, struct mk_store_conn *c, enum mk_memory_kind kind, int64_t item,
                     mk_buf *text, uint32_t *ns, uint64_t *meta)
{
    static const char *const sql[MEM_NINDEX] = {
        "SELECT tenant, task, reward, created_at FROM memory_episodes WHERE id = ?",
        "SELECT tenant, name, description, steps FROM memory_skills WHERE id = ? AND is_current = 1",
        "SELECT tenant, subject, fact FROM memory_facts WHERE id = ? AND valid_to = 0",
    };
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql[kind], &st);
    if (rc) return rc;
    mk_store_bind_int64(st, 1, item);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        rc = 0;
        const char *tenant = mk_store_column_text(st, 0).ptr;
        mk_buf_reset(text);
        if (kind == MK_MEMORY_EPISODES) {
            *ns = mem_ns_tenant(tenant);
            *meta = mem_episode_meta(mk_store_column_double(st, 2), mk_store_column_int64(st, 3));
            rc = mk_buf_append_slice(text, mk_store_column_text(st, 1));
        } else if (kind == MK_MEMORY_SKILLS) {
            *ns = mem_ns_tenant(tenant);
            *meta = 0;
            mk_buf_append_slice(text, mk_store_column_text(st, 1));
            mk_buf_append_str(text, ". ");
            mk_buf_append_slice(text, mk_store_column_text(st, 2));
            mk_buf_append_str(text, ". ");
            rc = mk_buf_append_slice(text, mk_store_column_text(st, 3));
        } else {
            *ns = mem_ns_subject(tenant, mk_store_column_text(st, 1).ptr);
            *meta = 0;
            rc = mk_buf_append_slice(text, mk_store_column_text(st, 2));
        }
    } else if (rc == MK_STORE_DONE) {
        rc = MK_ENOTFOUND;
    }
    mk_store_stmt_done(st);
    return rc;
}

/* Replays the change log of one index after its watermark. PostgreSQL hands out
 * sequence numbers at insert and commits in any order, so a change with a lower seq
 * may become visible after a higher one was read: there the replay looks back a
 * window behind the watermark (replay is idempotent, so re-reading costs little). */
#define PG_LOOKBACK 1000
#define SYNC_BATCH 4096

static int sync_index(struct mk_memory *m, struct mk_store_conn *c, struct mem_index *x, size_t *applied)
{
    pthread_mutex_lock(&x->mu);
    int64_t from = x->wm;
    if (m->postgres) from = from > PG_LOOKBACK ? from - PG_LOOKBACK : 0;
    int rc = 0;
    mk_buf text = MK_BUF_INIT;
    float *vec = malloc(sizeof(float) * m->dim);
    if (!vec) rc = MK_ENOMEM;
    int64_t *rows = malloc(sizeof(int64_t) * 3 * SYNC_BATCH);
    if (!rows) rc = MK_ENOMEM;
    while (rc == 0) {
        struct mk_store_stmt *st;
        rc = mk_store_prepare(c, "SELECT seq, item, op FROM memory_changes WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?",
                              &st);
        if (rc) break;
        mk_store_bind_int64(st, 1, x->kind);
        mk_store_bind_int64(st, 2, from);
        mk_store_bind_int64(st, 3, SYNC_BATCH);
        size_t n = 0;
        while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
            rows[3 * n] = mk_store_column_int64(st, 0);
            rows[3 * n + 1] = mk_store_column_int64(st, 1);
            rows[3 * n + 2] = mk_store_column_int64(st, 2);
            n++;
        }
        mk_store_stmt_done(st);
        if (rc < 0) break;
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            int64_t item = rows[3 * i + 1];
            bool present = mk_vector_contains(x->ix, (uint64_t)item);
            if (rows[3 * i + 2] == MEM_OP_DEL) {
                if (present) {
                    mk_vector_delete(x->ix, (uint64_t)item);
                    if (applied) (*applied)++;
                }
            } else if (!present) {
                uint32_t ns;
                uint64_t meta;
                int r = index_row(m, c, x->kind, item, &text, &ns, &meta);
                if (r == MK_ENOTFOUND) continue; /* deleted since: its del follows */
                if (r == 0) r = mem_embed(m, text.data ? text.data : "", text.len, vec);
                if (r == 0) r = mem_index_put(m, x->kind, item, vec, ns, meta);
                if (r) rc = r;
                else if (applied) (*applied)++;
            }
            if (rows[3 * i] > x->wm) x->wm = rows[3 * i];
        }
        if (n) from = rows[3 * (n - 1)];
        if (n < SYNC_BATCH) break;
    }
    pthread_mutex_unlock(&x->mu);
    free(rows);
    free(vec);
    mk_buf_release(&text);
    return rc;
}

int mk_memory_sync(struct mk_memory *m, struct mk_store_conn *c, size_t *applied)
{
    if (applied) *applied = 0;
    for (int k = 0; k < MEM_NINDEX; k++) {
        int rc = sync_index(m, c, &m->idx[k], applied);
        if (rc) return rc;
    }
    return 0;
}

static int new_index(struct mk_memory *m, uint64_t capacity, mk_vector_index **out)
{
    mk_vector_params p;
    mk_vector_params_default(&p, m->dim, MK_VECTOR_COSINE);
    /* int8 graph walk with a float re-rank: about 40% faster searches for the same
     * recall on embedder vectors. Construction beam 64 and search beam 32 were chosen
     * on BANKING77 tasks (bench/memory/README.md): against 100/64 they cost 0.5-1 point
     * of top-5 agreement with exact search and make inserts ~1.6x and searches ~1.5x
     * cheaper; intent recall@5 does not move. */
    p.quant = MK_VECTOR_QUANT_INT8;
    p.ef_construction = m->opt.ef_construction ? m->opt.ef_construction : MK_MEMORY_DEFAULT_EF_CONSTRUCTION;
    p.ef_search = m->opt.ef_search ? m->opt.ef_search : MK_MEMORY_DEFAULT_EF_SEARCH;
    p.capacity = capacity < 1024 ? 1024 : capacity;
    return mk_vector_new(&p, out);
}

/* Builds an index from the rows (the slow path: no usable file). The watermark is the
 * log position read before the rows, so later changes are replayed on top. */
static int rebuild_index(struct mk_memory *m, struct mk_store_conn *c, struct mem_index *x)
{
    static const char *const sql[MEM_NINDEX] = {
        "SELECT id, tenant, task, reward, created_at FROM memory_episodes",
        "SELECT id, tenant, name, description, steps FROM memory_skills WHERE is_current = 1",
        "SELECT id, tenant, subject, fact FROM memory_facts WHERE valid_to = 0",
    };
    int64_t wm = 0;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT MAX(seq) FROM memory_changes", &st);
    if (rc) return rc;
    if (mk_store_step(st) == MK_STORE_ROW) wm = mk_store_column_int64(st, 0);
    mk_store_stmt_done(st);

    mk_vector_index *ix = NULL;
    rc = new_index(m, 1024, &ix);
    if (rc) return rc;
    /* batches: embed on this thread, insert with every core */
    enum { B = 2048 };
    uint64_t *keys = malloc(sizeof(uint64_t) * B);
    mk_vector_attrs *attrs = malloc(sizeof(mk_vector_attrs) * B);
    float *vecs = malloc(sizeof(float) * m->dim * B);
    mk_buf text = MK_BUF_INIT;
    if (!keys || !attrs || !vecs) rc = MK_ENOMEM;
    if (rc == 0) rc = mk_store_prepare(c, sql[x->kind], &st);
    size_t n = 0, total = 0;
    while (rc == 0) {
        int s = mk_store_step(st);
        if (s == MK_STORE_ROW) {
            const char *tenant = mk_store_column_text(st, 1).ptr;
            keys[n] = (uint64_t)mk_store_column_int64(st, 0);
            mk_buf_reset(&text);
            if (x->kind == MK_MEMORY_EPISODES) {
                attrs[n].ns = mem_ns_tenant(tenant);
                attrs[n].meta = mem_episode_meta(mk_store_column_double(st, 3), mk_store_column_int64(st, 4));
                mk_buf_append_slice(&text, mk_store_column_text(st, 2));
            } else if (x->kind == MK_MEMORY_SKILLS) {
                attrs[n].ns = mem_ns_tenant(tenant);
                attrs[n].meta = 0;
                mk_buf_append_slice(&text, mk_store_column_text(st, 2));
                mk_buf_append_str(&text, ". ");
                mk_buf_append_slice(&text, mk_store_column_text(st, 3));
                mk_buf_append_str(&text, ". ");
                mk_buf_append_slice(&text, mk_store_column_text(st, 4));
            } else {
                attrs[n].ns = mem_ns_subject(tenant, mk_store_column_text(st, 2).ptr);
                attrs[n].meta = 0;
                mk_buf_append_slice(&text, mk_store_column_text(st, 3));
            }
            rc = mem_embed(m, text.data ? text.data : "", text.len, vecs + n * m->dim);
            n++;
        } else if (s < 0) {
            rc = s;
        }
        if (rc == 0 && (n == B || (s == MK_STORE_DONE && n > 0))) {
            rc = mk_vector_insert_batch(ix, n, keys, vecs, m->dim, attrs, 0);
            total += n;
            n = 0;
        }
        if (s == MK_STORE_DONE) break;
    }
    mk_store_stmt_done(st);
    free(keys);
    free(attrs);
    free(vecs);
    mk_buf_release(&text);
    if (rc) {
        mk_vector_free(ix);
        return rc;
    }
    mk_vector_free(x->ix);
    x->ix = ix;
    x->wm = wm;
    char cnt[32];
    snprintf(cnt, sizeof cnt, "%zu", total);
    if (total) mk_log(MK_LOG_INFO, "memory_index_rebuilt", "kind", kind_names[x->kind], "vectors", cnt, NULL);
    return 0;
}

/* ---- index files ------------------------------------------------------------------ */

static void index_paths(const struct mk_memory *m, enum mk_memory_kind k, mk_buf *ixp, mk_buf *wmp)
{
    uint64_t fp = mk_embedder_fingerprint(m->emb);
    mk_buf_printf(ixp, "%s/memory-%s-%016" PRIx64 ".hnsw", m->data_dir, kind_names[k], fp);
    mk_buf_printf(wmp, "%s/memory-%s-%016" PRIx64 ".wm", m->data_dir, kind_names[k], fp);
}

/* The store's identity (memory_meta 'instance'), created on first open, so an index
 * file is never applied to another database that happens to use the same data_dir. */
static int store_instance(struct mk_memory *m, struct mk_store_conn *c, char out[33])
{
    unsigned char r[16];
    mk_rand_bytes(r, sizeof r);
    char fresh[33];
    for (int i = 0; i < 16; i++) snprintf(fresh + 2 * i, 3, "%02x", r[i]);
    int rc = mem_exec_bind(c, "INSERT INTO memory_meta (name, value) VALUES ('instance', ?) ON CONFLICT DO NOTHING",
                           NULL, 1, fresh);
    if (rc) return rc;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c, "SELECT value FROM memory_meta WHERE name = 'instance'", &st);
    if (rc) return rc;
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        snprintf(out, 33, "%s", mk_store_column_text(st, 0).ptr);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_ECORRUPT;
    }
    mk_store_stmt_done(st);
    return rc;
}

/* Loads the saved index of kind when its file, its watermark file and the change log
 * agree; false means "rebuild". */
static bool load_index(struct mk_memory *m, struct mk_store_conn *c, struct mem_index *x, const char *instance)
{
    mk_buf ixp = MK_BUF_INIT, wmp = MK_BUF_INIT;
    index_paths(m, x->kind, &ixp, &wmp);
    bool ok = false;
    char inst[40] = "";
    long long wm = -1;
    FILE *f = fopen(wmp.data, "r");
    if (f) {
        if (fscanf(f, "%39s %lld", inst, &wm) != 2) wm = -1;
        fclose(f);
    }
    mk_vector_index *ix = NULL;
    if (wm >= 0 && strcmp(inst, instance) == 0 && mk_vector_load(ixp.data, &ix) == 0) {
        mk_vector_params p;
        mk_vector_get_params(ix, &p);
        /* the change log must still hold everything after the watermark */
        struct mk_store_stmt *st;
        int64_t minseq = 0, maxseq = 0;
        if (p.dim == m->dim && mk_store_prepare(c, "SELECT MIN(seq), MAX(seq) FROM memory_changes WHERE seq > 0",
                                                &st) == 0) {
            if (mk_store_step(st) == MK_STORE_ROW) {
                minseq = mk_store_column_int64(st, 0);
                maxseq = mk_store_column_int64(st, 1);
            }
            mk_store_stmt_done(st);
            ok = maxseq >= wm && (minseq == 0 || minseq <= wm + 1);
        }
    }
    if (ok) {
        mk_vector_set_ef(ix, m->opt.ef_search ? m->opt.ef_search : MK_MEMORY_DEFAULT_EF_SEARCH);
        mk_vector_free(x->ix);
        x->ix = ix;
        x->wm = wm;
    } else {
        mk_vector_free(ix);
        if (f) mk_log(MK_LOG_WARN, "memory_index_stale", "kind", kind_names[x->kind], "file", ixp.data, NULL);
    }
    mk_buf_release(&ixp);
    mk_buf_release(&wmp);
    return ok;
}

static int save_index(struct mk_memory *m, struct mem_index *x, const char *instance)
{
    pthread_mutex_lock(&x->mu);
    int64_t wm = x->wm; /* everything up to wm is in the index; the file may hold more */
    pthread_mutex_unlock(&x->mu);
    if (mk_vector_deleted_count(x->ix) > mk_vector_count(x->ix) / 8 + 64) mk_vector_compact(x->ix);
    mk_buf ixp = MK_BUF_INIT, wmp = MK_BUF_INIT, tmp = MK_BUF_INIT;
    index_paths(m, x->kind, &ixp, &wmp);
    int rc = mk_vector_save(x->ix, ixp.data);
    if (rc == 0) {
        /* the watermark file goes second: a crash between leaves a newer index with an
         * older watermark, which replay tolerates */
        mk_buf_printf(&tmp, "%s.tmp", wmp.data);
        FILE *f = fopen(tmp.data, "w");
        if (!f) {
            rc = MK_EIO;
        } else {
            fprintf(f, "%s %lld\n", instance, (long long)wm);
            if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = MK_EIO;
            if (fclose(f) != 0) rc = MK_EIO;
            if (rc == 0 && rename(tmp.data, wmp.data) != 0) rc = MK_EIO;
            if (rc) unlink(tmp.data);
        }
    }
    mk_buf_release(&ixp);
    mk_buf_release(&wmp);
    mk_buf_release(&tmp);
    return rc;
}

int mk_memory_checkpoint(struct mk_memory *m)
{
    if (!m || !m->data_dir) return 0;
    struct mk_store_conn *c;
    int rc = mk_store_acquire(m->store, &c);
    if (rc) return rc;
    char instance[33];
    rc = store_instance(m, c, instance);
    mk_store_release(m->store, c);
    for (int k = 0; k < MEM_NINDEX && rc == 0; k++) rc = save_index(m, &m->idx[k], instance);
    return rc;
}

/* ---- open / free ------------------------------------------------------------------ */

int mk_memory_open(struct mk_store *store, struct mk_kv *kv, const struct mk_memory_options *opt,
                   struct mk_memory **out, mk_buf *err)
{
    if (!store || !out) return MK_EINVAL;
    *out = NULL;
    struct mk_memory_options o = {0};
    if (opt) o = *opt;
    if (o.session_ttl_ms && (o.session_ttl_ms < MK_MEMORY_MIN_SESSION_TTL_MS ||
                             o.session_ttl_ms > MK_MEMORY_MAX_SESSION_TTL_MS)) {
        if (err) mk_buf_printf(err, "memory session TTL must be between 1 minute and 7 days");
        return MK_EINVAL;
    }
    if (!o.session_ttl_ms) o.session_ttl_ms = MK_MEMORY_DEFAULT_SESSION_TTL_MS;
    for (int k = 0; k < MK_MEMORY_KIND_COUNT; k++)
        if (o.retention_ms[k] == 0) o.retention_ms[k] = MK_MEMORY_DEFAULT_RETENTION_MS;
    if (!isfinite(o.success_reward) || o.success_reward == 0) o.success_reward = 0.5; /* zeroed = default */
    if (o.ef_search > MK_VECTOR_MAX_EF || o.ef_construction > MK_VECTOR_MAX_EF) return MK_EINVAL;

    struct mk_memory *m = calloc(1, sizeof *m);
    if (!m) return MK_ENOMEM;
    static _Atomic uint64_t next_gen = 1;
    m->gen = atomic_fetch_add(&next_gen, 1);
    m->scache_budget = o.session_cache_bytes < 0 ? 0
                       : o.session_cache_bytes ? (size_t)o.session_cache_bytes
                                               : (size_t)MK_MEMORY_DEFAULT_SESSION_CACHE_BYTES;
    m->store = store;
    m->kv = kv;
    m->kv_sync = kv && strcmp(mk_kv_backend_name(kv), "memory") == 0;
    m->opt = o;
    m->postgres = strcmp(mk_store_backend_name(store), "postgres") == 0;
    pthread_mutex_init(&m->hooks_mu, NULL);
    for (int k = 0; k < MEM_NINDEX; k++) {
        m->idx[k].kind = (enum mk_memory_kind)k;
        pthread_mutex_init(&m->idx[k].mu, NULL);
    }
    int rc = 0;
    if (o.data_dir) {
        m->data_dir = strdup(o.data_dir);
        if (!m->data_dir) rc = MK_ENOMEM;
        else if (mkdir(o.data_dir, 0700) != 0 && errno != EEXIST) {
            if (err) mk_buf_printf(err, "cannot create %s: %s", o.data_dir, strerror(errno));
            rc = MK_EIO;
        }
    }
    m->opt.data_dir = NULL; /* the copy above is what lives on */
    struct mk_embed_options eo = {.dim = o.embed_dim ? o.embed_dim : 256};
    if (rc == 0) {
        rc = mk_embedder_new(&eo, &m->emb);
        if (rc && err) mk_buf_printf(err, "memory embedder: %s", mk_strerror(rc));
    }
    if (rc == 0) m->dim = mk_embedder_dim(m->emb);
    for (int k = 0; k < MEM_NINDEX && rc == 0; k++) rc = new_index(m, 1024, &m->idx[k].ix);
    if (rc == 0) rc = mk_store_migrate(store, "memory", memory_migrations,
                                       sizeof memory_migrations / sizeof memory_migrations[0], err);
    struct mk_store_conn *c = NULL;
    if (rc == 0) rc = mk_store_acquire(store, &c);
    char instance[33] = "";
    if (rc == 0) rc = store_instance(m, c, instance);
    for (int k = 0; k < MEM_NINDEX && rc == 0; k++) {
        struct mem_index *x = &m->idx[k];
        if (!m->data_dir || !load_index(m, c, x, instance)) rc = rebuild_index(m, c, x);
        if (rc == 0) rc = sync_index(m, c, x, NULL);
    }
    if (rc && c && err && !err->len) mem_store_err(c, rc, "memory: loading the indexes", err);
    mk_store_release(store, c);
    if (rc) {
        mk_memory_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void mk_memory_free(struct mk_memory *m)
{
    if (!m) return;
    mem_scache_drop_all(m); /* this thread's; other threads' entries age out (LRU) */
    if (m->data_dir && m->emb && m->idx[0].ix) {
        int rc = mk_memory_checkpoint(m);
        if (rc) mk_log(MK_LOG_WARN, "memory_checkpoint_failed", "error", mk_strerror(rc), NULL);
    }
    for (int k = 0; k < MEM_NINDEX; k++) {
        mk_vector_free(m->idx[k].ix);
        pthread_mutex_destroy(&m->idx[k].mu);
    }
    mk_embedder_free(m->emb);
    pthread_mutex_destroy(&m->hooks_mu);
    free(m->data_dir);
    free(m);
}
