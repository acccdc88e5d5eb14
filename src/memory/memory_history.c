/*
 * memory_history: conversation turns and the prompt window built from them.
 *
 * A window is the newest turns that fit a token budget, preceded by a rolling summary
 * of everything older. The summary is stored (memory_summaries: the text and the last
 * turn id it covers) and only ever moves forward: when turns fall out of the window
 * they are folded into it, by the LLM summariser hook when one is set and
 * extractively otherwise, within a quarter of the budget. Turns a summary covers are
 * not shown again, even if a later window has more room: the prompt stays consistent
 * from one call to the next instead of flickering between summary and verbatim text.
 * The newest turn is always shown, even alone over budget: it is what the prompt is
 * answering.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "memory/memory_int.h"

static bool known_role(const char *r)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    for (size_t i = 0; r && i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(r, roles[i]) == 0) return true;
    return false;
}

int mk_memory_history_append(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *session,
                             const char *user, const char *role, const char *content, int64_t *id, int *tokens,
                             mk_buf *err)
{
    if (!m || !c) return MK_EINVAL;
    int rc;
    if ((rc = mem_check_id(tenant, "tenant", false, err)) || (rc = mem_check_id(session, "session", false, err)) ||
        (rc = mem_check_id(user, "user", true, err)) || (rc = mem_check_text(content, "content", true, err)))
        return rc;
    if (!known_role(role)) {
        if (err) mk_buf_printf(err, "role must be one of system, user, assistant, tool");
        return MK_EINVAL;
    }
    int t = mk_memory_estimate_tokens(content, strlen(content));
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c, "INSERT INTO memory_history (tenant, session, user_id, role, content, tokens, created_at)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                          &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, tenant);
    mk_store_bind_cstr(st, 2, session);
    mk_store_bind_cstr(st, 3, mem_str(user));
    mk_store_bind_cstr(st, 4, role);
    mk_store_bind_cstr(st, 5, content);
    mk_store_bind_int64(st, 6, t);
    mk_store_bind_int64(st, 7, mem_now_ms(m));
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        if (id) *id = mk_store_column_int64(st, 0);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_EINTERNAL;
    }
    mk_store_stmt_done(st);
    if (rc) mem_store_err(c, rc, "storing the turn", err);
    else if (tokens) *tokens = t;
    return rc;
}

struct turn {
    int64_t id, created;
    char *role, *content;
    int tokens;
};

static void free_turns(struct turn *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].role);
        free(t[i].content);
    }
    free(t);
}

/* Turns of the session with after < id < before (before 0 = no bound), at most limit:
 * the newest of the range, newest first, or (oldest_first) the oldest, oldest first. */
static int read_turns(struct mk_store_conn *c, const char *tenant, const char *session, int64_t after, int64_t before,
                      size_t limit, bool oldest_first, struct turn **out, size_t *n)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, oldest_first ? "SELECT id, role, content, tokens, created_at FROM memory_history"
                                                " WHERE tenant = ? AND session = ? AND id > ? AND (? = 0 OR id < ?)"
                                                " ORDER BY id LIMIT ?"
                                              : "SELECT id, role, content, tokens, created_at FROM memory_history"
                                                " WHERE tenant = ? AND session = ? AND id > ? AND (? = 0 OR id < ?)"
                                                " ORDER BY id DESC LIMIT ?",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, tenant);
    mk_store_bind_cstr(st, 2, session);
    mk_store_bind_int64(st, 3, after);
    mk_store_bind_int64(st, 4, before);
    mk_store_bind_int64(st, 5, before);
    mk_store_bind_int64(st, 6, (int64_t)limit);
    struct turn *t = calloc(limit ? limit : 1, sizeof *t);
    size_t k = 0;
    if (!t) rc = MK_ENOMEM;
    while (rc == 0 && k < limit) {
        int s = mk_store_step(st);
        if (s != MK_STORE_ROW) {
            rc = s < 0 ? s : 0;
            break;
        }
        t[k].id = mk_store_column_int64(st, 0);
        t[k].role = strdup(mk_store_column_text(st, 1).ptr);
        t[k].content = strdup(mk_store_column_text(st, 2).ptr);
        t[k].tokens = (int)mk_store_column_int64(st, 3);
        t[k].created = mk_store_column_int64(st, 4);
        if (!t[k].role || !t[k].content) rc = MK_ENOMEM;
        k++;
    }
    mk_store_stmt_done(st);
    if (rc) {
        free_turns(t, k);
        return rc;
    }
    *out = t;
    *n = k;
    return 0;
}

/* Folds turns (oldest first) into prior within max_tokens: the hook, else extractive. */
static int summarise(struct mk_memory *m, const char *prior, struct turn *turns, size_t n, uint32_t max_tokens,
                     mk_buf *out)
{
    if (m->opt.summarise) {
        struct mk_memory_turn *tv = calloc(n ? n : 1, sizeof *tv);
        if (tv) {
            for (size_t i = 0; i < n; i++)
                tv[i] = (struct mk_memory_turn){turns[i].id, turns[i].role, turns[i].content, turns[i].created};
            int rc = m->opt.summarise(m->opt.summarise_arg, prior, tv, n, max_tokens, out);
            free(tv);
            if (rc == 0 && mk_memory_estimate_tokens(out->data, out->len) <= (int)max_tokens * 2) return 0;
            mk_log(MK_LOG_WARN, "memory_summariser_failed", "error", mk_strerror(rc), "action",
                   "falling back to the extractive summary", NULL);
            mk_buf_reset(out);
        }
    }
    mk_buf text = MK_BUF_INIT;
    int rc = 0;
    if (prior && *prior) {
        rc = mk_buf_append_str(&text, prior);
        mk_buf_append_char(&text, '\n');
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *r = turns[i].role;
        /* "User: ...": the speaker stays visible in extracted sentences */
        mk_buf_printf(&text, "%c%s: ", r[0] - 32, r + 1);
        rc = mk_buf_append_str(&text, turns[i].content);
        if (rc == 0) rc = mk_buf_append_char(&text, '\n');
    }
    if (rc == 0) rc = mk_memory_summarise_extractive(text.data, text.len, max_tokens, out);
    mk_buf_release(&text);
    return rc;
}

int mk_memory_history_window(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *session,
                             uint32_t budget_tokens, json_object **out)
{
    if (!m || !c || !out || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(session, "session", false, NULL))
        return MK_EINVAL;
    if (budget_tokens < 16 || budget_tokens > 10000000) return MK_EINVAL;
    *out = NULL;
    /* the stored summary */
    int64_t upto = 0, covers = 0;
    char *summary = NULL;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT upto_id, covers, summary FROM memory_summaries WHERE tenant = ? AND session = ?",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, tenant);
    mk_store_bind_cstr(st, 2, session);
    if ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        upto = mk_store_column_int64(st, 0);
        covers = mk_store_column_int64(st, 1);
        summary = strdup(mk_store_column_text(st, 2).ptr);
        rc = summary ? 0 : MK_ENOMEM;
    }
    mk_store_stmt_done(st);
    if (rc < 0) {
        free(summary);
        return rc;
    }
    struct turn *turns = NULL;
    size_t nt = 0;
    rc = read_turns(c, tenant, session, upto, 0, MK_MEMORY_MAX_WINDOW_TURNS, false, &turns, &nt);
    if (rc) {
        free(summary);
        return rc;
    }
    long stokens = summary ? mk_memory_estimate_tokens(summary, strlen(summary)) : 0;
    /* how many of the newest fit next to the summary as it is? */
    long used = stokens;
    size_t fit = 0;
    while (fit < nt && (fit == 0 || used + turns[fit].tokens <= (long)budget_tokens)) used += turns[fit++].tokens;
    bool more_older = nt == MK_MEMORY_MAX_WINDOW_TURNS;
    if (fit < nt || more_older) {
        /* roll: keep three quarters for turns, fold the rest into the summary */
        uint32_t reserve = budget_tokens / 4;
        used = 0;
        fit = 0;
        while (fit < nt && (fit == 0 || used + turns[fit].tokens <= (long)(budget_tokens - reserve)))
            used += turns[fit++].tokens;
        /* fold everything after upto and before the window, oldest first, in chunks
         * (a long backlog is folded piece by piece into the running summary) */
        int64_t window_oldest = turns[fit - 1].id;
        mk_buf acc = MK_BUF_INIT;
        if (summary) mk_buf_append_str(&acc, summary);
        int64_t folded = 0, last = upto;
        while (rc == 0) {
            struct turn *chunk = NULL;
            size_t nc = 0;
            rc = read_turns(c, tenant, session, last, window_oldest, MK_MEMORY_MAX_WINDOW_TURNS, true, &chunk, &nc);
            if (rc || nc == 0) {
                if (chunk) free_turns(chunk, nc);
                break;
            }
            mk_buf next = MK_BUF_INIT;
            rc = summarise(m, acc.data ? acc.data : "", chunk, nc, reserve, &next);
            if (rc == 0) {
                mk_buf_release(&acc);
                acc = next;
                folded += (int64_t)nc;
                last = chunk[nc - 1].id;
            } else {
                mk_buf_release(&next);
            }
            free_turns(chunk, nc);
        }
        if (rc == 0 && last > upto) {
            /* monotonic: a concurrent roll that got further wins */
            rc = mk_store_prepare(c, "INSERT INTO memory_summaries (tenant, session, upto_id, covers, summary, updated_at)"
                                     " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, session) DO UPDATE SET"
                                     " upto_id = excluded.upto_id, covers = excluded.covers, summary = excluded.summary,"
                                     " updated_at = excluded.updated_at WHERE memory_summaries.upto_id < excluded.upto_id",
                                  &st);
            if (rc == 0) {
                mk_store_bind_cstr(st, 1, tenant);
                mk_store_bind_cstr(st, 2, session);
                mk_store_bind_int64(st, 3, last);
                mk_store_bind_int64(st, 4, covers + folded);
                mk_store_bind_text(st, 5, acc.data ? acc.data : "", acc.len);
                mk_store_bind_int64(st, 6, mem_now_ms(m));
                rc = mk_store_step(st);
                rc = rc < 0 ? rc : 0;
                mk_store_stmt_done(st);
            }
            free(summary);
            summary = mk_buf_steal(&acc, NULL);
            covers += folded;
            upto = last;
        }
        mk_buf_release(&acc);
        /* the window is what lies after the summary */
        while (fit > 0 && turns[fit - 1].id <= upto) fit--;
    }
    if (rc == 0) {
        json_object *res = json_object_new_object(), *msgs = json_object_new_array();
        long total = summary ? mk_memory_estimate_tokens(summary, strlen(summary)) : 0;
        for (size_t i = fit; i-- > 0;) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_int64(turns[i].id));
            json_object_object_add(o, "role", json_object_new_string(turns[i].role));
            json_object_object_add(o, "content", json_object_new_string(turns[i].content));
            json_object_object_add(o, "tokens", json_object_new_int(turns[i].tokens));
            json_object_array_add(msgs, o);
            total += turns[i].tokens;
        }
        int64_t all = 0;
        if (mk_store_prepare(c, "SELECT COUNT(*) FROM memory_history WHERE tenant = ? AND session = ?", &st) == 0) {
            mk_store_bind_cstr(st, 1, tenant);
            mk_store_bind_cstr(st, 2, session);
            if (mk_store_step(st) == MK_STORE_ROW) all = mk_store_column_int64(st, 0);
            mk_store_stmt_done(st);
        }
        json_object_object_add(res, "session", json_object_new_string(session));
        json_object_object_add(res, "summary", json_object_new_string(summary ? summary : ""));
        json_object_object_add(res, "summary_covers", json_object_new_int64(covers));
        json_object_object_add(res, "messages", msgs);
        json_object_object_add(res, "tokens", json_object_new_int64(total));
        json_object_object_add(res, "total_turns", json_object_new_int64(all));
        *out = res;
    }
    free(summary);
    free_turns(turns, nt);
    return rc;
}
