/*
 * memory_erase: retention (what is too old goes) and erasure (everything about one
 * person goes, on request: 152-FZ and GDPR), each with a report of what went.
 *
 * Both delete rows with DELETE ... RETURNING id inside one transaction that also logs
 * the index changes, then drop the vectors, so the indexes of this and (through the
 * change log) every other process follow. Erasure also runs the hooks other modules
 * register (conversations, cache entries, audit raw text), and keeps a record of the
 * erasure itself — a digest of the user id, who asked, when and the counts, never the
 * id — so "was this person's data erased, and when?" can be answered later by whoever
 * knows the id, and by nobody else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "memory/memory_int.h"

/* Rows one retention statement deletes at a time (keeps each transaction short). */
#define SWEEP_CHUNK 5000
/* How long the change log keeps entries: a process whose index file is older than
 * this rebuilds at start instead of replaying. */
#define CHANGES_KEEP_MS (7ll * 24 * 3600 * 1000)

struct idlist {
    int64_t *v;
    size_t n, cap;
};

static int idlist_push(struct idlist *l, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int64_t *b = realloc(l->v, cap * sizeof *b);
        if (!b) return MK_ENOMEM;
        l->v = b;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

/* Runs a DELETE ... RETURNING id with text/int binds; ids appended to out (may be
 * NULL: only counted). *count gets the rows deleted. */
struct bindv {
    bool is_int;
    const char *s;
    int64_t i;
};

static int delete_returning(struct mk_store_conn *c, const char *sql, const struct bindv *b, int nb, struct idlist *out,
                            int64_t *count)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql, &st);
    if (rc) return rc;
    for (int i = 0; i < nb; i++) {
        if (b[i].is_int) mk_store_bind_int64(st, i + 1, b[i].i);
        else mk_store_bind_cstr(st, i + 1, b[i].s);
    }
    int64_t n = 0;
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        n++;
        if (out && (rc = idlist_push(out, mk_store_column_int64(st, 0))) != 0) break;
    }
    mk_store_stmt_done(st);
    if (rc < 0) return rc;
    *count += n;
    return 0;
}

/* ---- retention ------------------------------------------------------------------------ */

struct sweep_job {
    struct mk_memory *m;
    int64_t now;
    int64_t counts[MK_MEMORY_KIND_COUNT + 2]; /* + summaries, sessions */
    struct idlist ids[MEM_NINDEX];
    bool more;                   /* a chunk was full: go again */
};

static int sweep_tx(struct mk_store_conn *c, void *arg)
{
    struct sweep_job *j = arg;
    struct mk_memory *m = j->m;
    static const char *const sql[MK_MEMORY_KIND_COUNT] = {
        "DELETE FROM memory_episodes WHERE id IN (SELECT id FROM memory_episodes WHERE created_at < ? LIMIT ?)"
        " RETURNING id",
        "DELETE FROM memory_skills WHERE id IN (SELECT id FROM memory_skills WHERE is_current = 0 AND created_at < ?"
        " LIMIT ?) RETURNING id",
        "DELETE FROM memory_facts WHERE id IN (SELECT id FROM memory_facts WHERE valid_to <> 0 AND valid_to < ?"
        " LIMIT ?) RETURNING id",
        "DELETE FROM memory_links WHERE id IN (SELECT id FROM memory_links WHERE updated_at < ? LIMIT ?) RETURNING id",
        "DELETE FROM memory_history WHERE id IN (SELECT id FROM memory_history WHERE created_at < ? LIMIT ?)"
        " RETURNING id",
    };
    j->more = false;
    for (int k = 0; k < MK_MEMORY_KIND_COUNT; k++) {
        if (m->opt.retention_ms[k] < 0) continue; /* kept forever */
        struct bindv b[2] = {{true, NULL, j->now - m->opt.retention_ms[k]}, {true, NULL, SWEEP_CHUNK}};
        int64_t n = 0;
        size_t before = k < MEM_NINDEX ? j->ids[k].n : 0;
        int rc = delete_returning(c, sql[k], b, 2, k < MEM_NINDEX ? &j->ids[k] : NULL, &n);
        if (rc) return rc;
        j->counts[k] += n;
        if (n == SWEEP_CHUNK) j->more = true;
        /* closed facts and old skill versions are not in the index: logging their
         * removal anyway is harmless (replay skips absent items) */
        for (size_t i = before; k < MEM_NINDEX && i < j->ids[k].n; i++) {
            rc = mem_log_change(m, c, (enum mk_memory_kind)k, j->ids[k].v[i], MEM_OP_DEL);
            if (rc) return rc;
        }
    }
    int64_t hist = m->opt.retention_ms[MK_MEMORY_HISTORY];
    if (hist >= 0) {
        struct bindv b[1] = {{true, NULL, j->now - hist}};
        int rc = delete_returning(c, "DELETE FROM memory_summaries WHERE updated_at < ? RETURNING upto_id", b, 1, NULL,
                                  &j->counts[MK_MEMORY_KIND_COUNT]);
        if (rc == 0)
            rc = delete_returning(c, "DELETE FROM memory_sessions WHERE created_at < ? RETURNING created_at", b, 1, NULL,
                                  &j->counts[MK_MEMORY_KIND_COUNT + 1]);
        if (rc) return rc;
    }
    /* the change log: old entries, never the newest (it carries the sequence) */
    struct bindv b[1] = {{true, NULL, j->now - CHANGES_KEEP_MS}};
    int64_t dummy = 0;
    return delete_returning(c, "DELETE FROM memory_changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM memory_changes)"
                               " RETURNING seq",
                            b, 1, NULL, &dummy);
}

int mk_memory_sweep(struct mk_memory *m, struct mk_store_conn *c, json_object **report)
{
    if (!m || !c) return MK_EINVAL;
    if (report) *report = NULL;
    struct sweep_job j = {.m = m, .now = mem_now_ms(m)};
    int rc;
    do {
        size_t mark[MEM_NINDEX];
        for (int k = 0; k < MEM_NINDEX; k++) mark[k] = j.ids[k].n;
        rc = mem_tx(c, sweep_tx, &j);
        if (rc) { /* rolled back: forget what this round collected */
            for (int k = 0; k < MEM_NINDEX; k++) j.ids[k].n = mark[k];
            break;
        }
    } while (j.more);
    for (int k = 0; k < MEM_NINDEX; k++) {
        for (size_t i = 0; i < j.ids[k].n; i++) mem_index_del(m, (enum mk_memory_kind)k, j.ids[k].v[i]);
        free(j.ids[k].v);
    }
    if (rc == 0 && report) {
        json_object *r = json_object_new_object();
        for (int k = 0; k < MK_MEMORY_KIND_COUNT; k++)
            json_object_object_add(r, mk_memory_kind_name((enum mk_memory_kind)k), json_object_new_int64(j.counts[k]));
        json_object_object_add(r, "summaries", json_object_new_int64(j.counts[MK_MEMORY_KIND_COUNT]));
        json_object_object_add(r, "session_records", json_object_new_int64(j.counts[MK_MEMORY_KIND_COUNT + 1]));
        *report = r;
    }
    return rc;
}

/* ---- erasure -------------------------------------------------------------------------- */

/* Process-wide hooks (registered with m NULL). */
static pthread_mutex_t global_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mem_hook global_hooks[MEM_MAX_HOOKS];
static size_t nglobal;

int mk_memory_erase_hook_add(struct mk_memory *m, const char *name, mk_memory_erase_fn fn, void *arg)
{
    if (!name || !*name || !fn) return MK_EINVAL;
    pthread_mutex_t *mu = m ? &m->hooks_mu : &global_mu;
    struct mem_hook *hooks = m ? m->hooks : global_hooks;
    size_t *n = m ? &m->nhooks : &nglobal;
    pthread_mutex_lock(mu);
    int rc = 0;
    if (*n == MEM_MAX_HOOKS) rc = MK_ETOOBIG;
    for (size_t i = 0; rc == 0 && i < *n; i++)
        if (strcmp(hooks[i].name, name) == 0) rc = MK_EEXISTS;
    if (rc == 0) hooks[(*n)++] = (struct mem_hook){name, fn, arg};
    pthread_mutex_unlock(mu);
    return rc;
}

enum { E_EPISODES, E_HISTORY, E_SUMMARIES, E_FACTS, E_LINKS, E_SESSIONS, E_SKILLS, E_COUNT };
static const char *const erase_names[E_COUNT] = {"episodes", "history", "summaries", "facts",
                                                 "links",    "sessions", "skills_unlinked"};

struct erase_job {
    struct mk_memory *m;
    const char *tenant, *user;
    int64_t counts[E_COUNT];
    struct idlist episodes, facts;
    json_object *sessions;       /* ids */
};

static int erase_tx(struct mk_store_conn *c, void *arg)
{
    struct erase_job *j = arg;
    memset(j->counts, 0, sizeof j->counts);
    j->episodes.n = j->facts.n = 0;
    json_object_put(j->sessions);
    j->sessions = json_object_new_array();
    const struct bindv tu[2] = {{false, j->tenant, 0}, {false, j->user, 0}};
    /* sessions first: their history goes with them even where turns carry no user */
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT id FROM memory_sessions WHERE tenant = ? AND user_id = ?", &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, j->tenant);
    mk_store_bind_cstr(st, 2, j->user);
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        mk_slice id = mk_store_column_text(st, 0);
        json_object_array_add(j->sessions, json_object_new_string_len(id.ptr, (int)id.len));
    }
    mk_store_stmt_done(st);
    if (rc < 0) return rc;
    const struct bindv tut[3] = {{false, j->tenant, 0}, {false, j->tenant, 0}, {false, j->user, 0}};
    if ((rc = delete_returning(c, "DELETE FROM memory_history WHERE tenant = ? AND session IN"
                                  " (SELECT id FROM memory_sessions WHERE tenant = ? AND user_id = ?) RETURNING id",
                               tut, 3, NULL, &j->counts[E_HISTORY])) ||
        (rc = delete_returning(c, "DELETE FROM memory_summaries WHERE tenant = ? AND session IN"
                                  " (SELECT id FROM memory_sessions WHERE tenant = ? AND user_id = ?) RETURNING upto_id",
                               tut, 3, NULL, &j->counts[E_SUMMARIES])) ||
        (rc = delete_returning(c, "DELETE FROM memory_history WHERE tenant = ? AND user_id = ? RETURNING id", tu, 2, NULL,
                               &j->counts[E_HISTORY])) ||
        (rc = delete_returning(c, "DELETE FROM memory_sessions WHERE tenant = ? AND user_id = ? RETURNING created_at",
                               tu, 2, NULL, &j->counts[E_SESSIONS])) ||
        (rc = delete_returning(c, "DELETE FROM memory_episodes WHERE tenant = ? AND user_id = ? RETURNING id", tu, 2,
                               &j->episodes, &j->counts[E_EPISODES])) ||
        (rc = delete_returning(c, "DELETE FROM memory_facts WHERE tenant = ? AND subject = ? RETURNING id", tu, 2,
                               &j->facts, &j->counts[E_FACTS])) ||
        (rc = delete_returning(c, "DELETE FROM memory_links WHERE tenant = ? AND user_id = ? RETURNING id", tu, 2, NULL,
                               &j->counts[E_LINKS])))
        return rc;
    /* skills are the tenant's knowledge, not the person's: they stay, but lose their
     * author and their link to the person's episodes */
    const struct bindv skill_b[2] = {{false, j->tenant, 0}, {false, j->user, 0}};
    if ((rc = delete_returning(c, "UPDATE memory_skills SET author = '' WHERE tenant = ? AND author = ? RETURNING id",
                               skill_b, 2, NULL, &j->counts[E_SKILLS])))
        return rc;
    for (size_t i = 0; i < j->episodes.n; i++) {
        struct bindv b[2] = {{false, j->tenant, 0}, {true, NULL, j->episodes.v[i]}};
        if ((rc = delete_returning(c, "UPDATE memory_skills SET source_episode = 0 WHERE tenant = ? AND source_episode = ?"
                                      " RETURNING id",
                                   b, 2, NULL, &j->counts[E_SKILLS])))
            return rc;
        if ((rc = mem_log_change(j->m, c, MK_MEMORY_EPISODES, j->episodes.v[i], MEM_OP_DEL))) return rc;
    }
    for (size_t i = 0; i < j->facts.n; i++)
        if ((rc = mem_log_change(j->m, c, MK_MEMORY_FACTS, j->facts.v[i], MEM_OP_DEL))) return rc;
    return 0;
}

int mk_memory_erase_user(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *user,
                         const char *requested_by, json_object **report, json_object **sessions)
{
    if (!m || !c || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(user, "user", false, NULL) ||
        mem_check_id(requested_by, "requested_by", true, NULL))
        return MK_EINVAL;
    if (report) *report = NULL;
    if (sessions) *sessions = NULL;
    struct erase_job j = {.m = m, .tenant = tenant, .user = user};
    int rc = mem_tx(c, erase_tx, &j);
    if (rc) {
        free(j.episodes.v);
        free(j.facts.v);
        json_object_put(j.sessions);
        return rc;
    }
    int64_t vectors = 0;
    for (size_t i = 0; i < j.episodes.n; i++) {
        vectors += mk_vector_contains(m->idx[MK_MEMORY_EPISODES].ix, (uint64_t)j.episodes.v[i]);
        mem_index_del(m, MK_MEMORY_EPISODES, j.episodes.v[i]);
    }
    for (size_t i = 0; i < j.facts.n; i++) {
        vectors += mk_vector_contains(m->idx[MK_MEMORY_FACTS].ix, (uint64_t)j.facts.v[i]);
        mem_index_del(m, MK_MEMORY_FACTS, j.facts.v[i]);
    }
    free(j.episodes.v);
    free(j.facts.v);

    json_object *r = json_object_new_object(), *erased = json_object_new_object(), *hooks = json_object_new_object();
    for (int i = 0; i < E_COUNT; i++) json_object_object_add(erased, erase_names[i], json_object_new_int64(j.counts[i]));
    json_object_object_add(erased, "vectors", json_object_new_int64(vectors));
    /* other modules' data: each hook on its own, an error is reported, not fatal */
    struct mem_hook hk[2 * MEM_MAX_HOOKS];
    pthread_mutex_lock(&global_mu);
    size_t nh = nglobal;
    memcpy(hk, global_hooks, sizeof hk[0] * nh);
    pthread_mutex_unlock(&global_mu);
    pthread_mutex_lock(&m->hooks_mu);
    memcpy(hk + nh, m->hooks, sizeof hk[0] * m->nhooks);
    nh += m->nhooks;
    pthread_mutex_unlock(&m->hooks_mu);
    for (size_t i = 0; i < nh; i++) {
        json_object *hr = json_object_new_object();
        int hrc = hk[i].fn(hk[i].arg, c, tenant, user, hr);
        if (mk_store_in_transaction(c)) mk_store_rollback(c); /* a hook must not leave one open */
        if (hrc) {
            json_object_object_add(hr, "error", json_object_new_string(mk_strerror(hrc)));
            mk_log(MK_LOG_ERROR, "memory_erase_hook_failed", "hook", hk[i].name, "error", mk_strerror(hrc), NULL);
        }
        json_object_object_add(hooks, hk[i].name, hr);
    }
    int64_t now = mem_now_ms(m);
    json_object_object_add(r, "tenant", json_object_new_string(tenant));
    json_object_object_add(r, "erased", erased);
    json_object_object_add(r, "hooks", hooks);
    json_object_object_add(r, "at", json_object_new_int64(now));

    /* the erasure's own record: a keyed-free digest of (tenant, user), never the id */
    unsigned char h[32];
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof h);
    crypto_generichash_update(&gs, (const unsigned char *)tenant, strlen(tenant));
    crypto_generichash_update(&gs, (const unsigned char *)"\x1f", 1);
    crypto_generichash_update(&gs, (const unsigned char *)user, strlen(user));
    crypto_generichash_final(&gs, h, sizeof h);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    json_object_object_add(r, "user_digest", json_object_new_string(hex));
    const char *rep = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)now);
    int lrc = mem_exec_bind(c, "INSERT INTO memory_erasures (tenant, user_digest, requested_by, at, report)"
                               " VALUES (?, ?, ?, CAST(? AS BIGINT), ?)",
                            NULL, 5, tenant, hex, mem_str(requested_by), at, rep);
    if (lrc) mk_log(MK_LOG_ERROR, "memory_erasure_record_failed", "error", mk_strerror(lrc), NULL);
    json_object_object_add(r, "user", json_object_new_string(user));
    if (report) *report = r;
    else json_object_put(r);
    if (sessions) *sessions = j.sessions;
    else json_object_put(j.sessions);
    return 0;
}
