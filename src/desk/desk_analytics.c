/*
 * desk_analytics: the support desk's numbers, computed from the conversations table
 * (one grouped scan per call; the admin page polls it every few seconds and the
 * /metrics gauges refresh from it, so nothing is counted twice in two places).
 *
 * Definitions (docs/API.md, "Desk analytics"):
 *  - automation rate: resolved conversations no operator ever claimed / resolved ones;
 *  - escalation rate: conversations ever escalated / conversations;
 *  - time to first response: the bot's (first bot message - creation) and the
 *    operator's (first operator message - escalation), averaged in seconds;
 *  - CSAT: the average 1..5 score of rated conversations, and helped yes/no counts;
 *  - reasons: escalations by reason (every escalation, also repeated ones).
 * Sums are kept as integers per group and averaged in C, so the overall row is exact
 * and not an average of averages.
 */
#include <string.h>

#include "core/mk_error.h"
#include "desk/desk_conv_int.h"
#include "desk/mk_desk_conv.h"

struct tally {
    int64_t convs, escalated, resolved, auto_resolved;
    int64_t bot_rt_sum, bot_rt_n, op_rt_sum, op_rt_n;
    int64_t csat_sum, csat_n, helped_yes, helped_no;
};

static void tally_add(struct tally *a, const struct tally *b)
{
    a->convs += b->convs;
    a->escalated += b->escalated;
    a->resolved += b->resolved;
    a->auto_resolved += b->auto_resolved;
    a->bot_rt_sum += b->bot_rt_sum;
    a->bot_rt_n += b->bot_rt_n;
    a->op_rt_sum += b->op_rt_sum;
    a->op_rt_n += b->op_rt_n;
    a->csat_sum += b->csat_sum;
    a->csat_n += b->csat_n;
    a->helped_yes += b->helped_yes;
    a->helped_no += b->helped_no;
}

static json_object *ratio(int64_t num, int64_t den)
{
    return den > 0 ? json_object_new_double((double)num / (double)den) : NULL;
}

static json_object *tally_json(const struct tally *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "conversations", json_object_new_int64(t->convs));
    json_object_object_add(o, "escalated", json_object_new_int64(t->escalated));
    json_object_object_add(o, "resolved", json_object_new_int64(t->resolved));
    json_object_object_add(o, "resolved_without_human", json_object_new_int64(t->auto_resolved));
    json_object_object_add(o, "automation_rate", ratio(t->auto_resolved, t->resolved));
    json_object_object_add(o, "escalation_rate", ratio(t->escalated, t->convs));
    json_object_object_add(o, "first_response_bot_s",
                           t->bot_rt_n ? json_object_new_double((double)t->bot_rt_sum / (double)t->bot_rt_n / 1000.0)
                                       : NULL);
    json_object_object_add(o, "first_response_operator_s",
                           t->op_rt_n ? json_object_new_double((double)t->op_rt_sum / (double)t->op_rt_n / 1000.0)
                                      : NULL);
    json_object_object_add(o, "csat_avg", ratio(t->csat_sum, t->csat_n));
    json_object_object_add(o, "csat_count", json_object_new_int64(t->csat_n));
    json_object_object_add(o, "helped_yes", json_object_new_int64(t->helped_yes));
    json_object_object_add(o, "helped_no", json_object_new_int64(t->helped_no));
    return o;
}

static int64_t col(struct mk_store_stmt *st, int i) { return mk_store_column_is_null(st, i) ? 0 : mk_store_column_int64(st, i); }

int mk_desk_analytics(struct mk_store_conn *c, const char *tenant, int64_t since_ms, json_object **out)
{
    if (!c || !out || since_ms < 0) return MK_EINVAL;
    *out = NULL;
    /* Two spellings rather than "? IS NULL OR tenant = ?": PostgreSQL cannot type an
     * untyped parameter compared with NULL. */
    const char *where = tenant ? " WHERE tenant = ? AND created_at >= ?" : " WHERE created_at >= ?";
    mk_buf sql = MK_BUF_INIT;
    mk_buf_printf(&sql,
                  "SELECT agent, COUNT(*), SUM(escalated),"
                  " SUM(CASE WHEN state = 'resolved' THEN 1 ELSE 0 END),"
                  " SUM(CASE WHEN state = 'resolved' AND human_involved = 0 THEN 1 ELSE 0 END),"
                  " SUM(CASE WHEN first_bot_reply_at IS NOT NULL THEN first_bot_reply_at - created_at ELSE 0 END),"
                  " COUNT(first_bot_reply_at),"
                  " SUM(CASE WHEN first_operator_reply_at IS NOT NULL AND escalated_at IS NOT NULL"
                  " THEN first_operator_reply_at - escalated_at ELSE 0 END),"
                  " SUM(CASE WHEN first_operator_reply_at IS NOT NULL AND escalated_at IS NOT NULL THEN 1 ELSE 0 END),"
                  " SUM(CASE WHEN csat IS NOT NULL THEN csat ELSE 0 END), COUNT(csat),"
                  " SUM(CASE WHEN helped = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN helped = 0 THEN 1 ELSE 0 END)"
                  " FROM desk_conversations%s GROUP BY agent ORDER BY agent",
                  where);
    if (!sql.data) return MK_ENOMEM;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql.data, &st);
    mk_buf_release(&sql);
    if (rc) return rc;
    int bi = 1;
    if (tenant) mk_store_bind_cstr(st, bi++, tenant);
    mk_store_bind_int64(st, bi, since_ms);
    json_object *root = json_object_new_object(), *agents = json_object_new_object();
    struct tally all = {0};
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        struct tally t = {col(st, 1), col(st, 2), col(st, 3), col(st, 4), col(st, 5), col(st, 6),
                          col(st, 7), col(st, 8), col(st, 9), col(st, 10), col(st, 11), col(st, 12)};
        mk_slice a = mk_store_column_text(st, 0);
        char name[MK_DESK_MAX_NAME + 1];
        size_t n = a.len < MK_DESK_MAX_NAME ? a.len : MK_DESK_MAX_NAME;
        memcpy(name, a.ptr, n);
        name[n] = '\0';
        /* Conversations no agent was chosen for (escalated straight away, or never
         * answered) are listed as "(none)". */
        json_object_object_add(agents, n ? name : "(none)", tally_json(&t));
        tally_add(&all, &t);
    }
    mk_store_stmt_done(st);
    if (rc < 0) goto fail;
    json_object_object_add(root, "overall", tally_json(&all));
    json_object_object_add(root, "agents", agents);
    agents = NULL;

    /* Escalation reasons, overall and per agent. */
    mk_buf_init(&sql, 0);
    mk_buf_printf(&sql,
                  "SELECT c.agent, t.reason, COUNT(*) FROM desk_transitions t JOIN desk_conversations c"
                  " ON c.id = t.conversation_id WHERE t.to_state = 'waiting_operator'%s AND c.created_at >= ?"
                  " GROUP BY c.agent, t.reason ORDER BY c.agent, t.reason",
                  tenant ? " AND c.tenant = ?" : "");
    if (!sql.data) {
        rc = MK_ENOMEM;
        goto fail;
    }
    rc = mk_store_prepare(c, sql.data, &st);
    mk_buf_release(&sql);
    if (rc) goto fail;
    bi = 1;
    if (tenant) mk_store_bind_cstr(st, bi++, tenant);
    mk_store_bind_int64(st, bi, since_ms);
    json_object *reasons = json_object_new_object();
    json_object_object_add(root, "reasons", reasons);
    json_object *by_agent = json_object_object_get(root, "agents");
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        mk_slice a = mk_store_column_text(st, 0), r = mk_store_column_text(st, 1);
        int64_t n = mk_store_column_int64(st, 2);
        char an[MK_DESK_MAX_NAME + 1], rn[MK_DESK_MAX_NAME + 1];
        size_t al = a.len < MK_DESK_MAX_NAME ? a.len : MK_DESK_MAX_NAME, rl = r.len < MK_DESK_MAX_NAME ? r.len : MK_DESK_MAX_NAME;
        memcpy(an, a.ptr, al);
        an[al] = '\0';
        memcpy(rn, r.ptr, rl);
        rn[rl] = '\0';
        const char *rk = rl ? rn : "unspecified";
        json_object *cur = json_object_object_get(reasons, rk);
        json_object_object_add(reasons, rk, json_object_new_int64((cur ? json_object_get_int64(cur) : 0) + n));
        json_object *ag = json_object_object_get(by_agent, al ? an : "(none)");
        if (ag) {
            json_object *ar = json_object_object_get(ag, "reasons");
            if (!ar) {
                ar = json_object_new_object();
                json_object_object_add(ag, "reasons", ar);
            }
            json_object_object_add(ar, rk, json_object_new_int64(n));
        }
    }
    mk_store_stmt_done(st);
    if (rc < 0) goto fail;

    rc = mk_store_prepare(c,
                          tenant ? "SELECT COUNT(*) FROM desk_conversations WHERE state = 'waiting_operator'"
                                   " AND tenant = ?"
                                 : "SELECT COUNT(*) FROM desk_conversations WHERE state = 'waiting_operator'",
                          &st);
    if (rc) goto fail;
    if (tenant) mk_store_bind_cstr(st, 1, tenant);
    rc = mk_store_step(st);
    int64_t queue = rc == MK_STORE_ROW ? mk_store_column_int64(st, 0) : 0;
    mk_store_stmt_done(st);
    if (rc < 0) goto fail;
    json_object_object_add(root, "queue_length", json_object_new_int64(queue));
    json_object_object_add(root, "since_ms", json_object_new_int64(since_ms));
    *out = root;
    return 0;
fail:
    json_object_put(agents);
    json_object_put(root);
    return rc < 0 ? rc : MK_EINTERNAL;
}
