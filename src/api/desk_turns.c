/*
 * desk_turns: one action on a conversation — a user's message (and the bot's answer
 * to it), an operator's message, an escalation, a claim, a hand-back, a resolution, a
 * rating — as store work on the pool, then its consequences on the loop: events on
 * the bus, desk metrics, and updates to the live clients.
 *
 * The bot's turn runs in the same pool job as the user's message: store the message,
 * read the conversation and its recent history, let the desk answer (mk_desk_respond:
 * triage, retrieval, the local responder), store the answer and, when the desk says
 * so, escalate. The answer is stored only while the conversation is still the bot's
 * (mk_desk_msg_add checks the state in the statement that numbers the message), so an
 * operator who claims the conversation while the bot is thinking silences it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/mk_bus.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "desk_int.h"
#include "metrics/mk_metrics.h"

/* ---- the bot's turn (pool thread) ------------------------------------------------------- */

static json_object *citations_json(const struct mk_desk_reply *r)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < r->ncitations; i++) {
        const struct mk_desk_citation *c = &r->citations[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(c->doc_id ? c->doc_id : ""));
        json_object_object_add(o, "title", json_object_new_string(c->title ? c->title : ""));
        json_object_object_add(o, "url", json_object_new_string(c->source ? c->source : ""));
        if (c->lang) json_object_object_add(o, "lang", json_object_new_string(c->lang));
        if (c->section) json_object_object_add(o, "section", json_object_new_string(c->section));
        json_object_object_add(o, "score", json_object_new_double(c->score));
        json_object_array_add(arr, o);
    }
    return arr;
}

/* The conversation so far, for triage and the answer: up to DESK_CONTEXT_TURNS
 * messages before the one being answered. Strings point into *hist (kept alive by the
 * caller until the desk call returns). */
static int load_context(struct desk_job *j, struct mk_store_conn *c, json_object **hist,
                        struct mk_desk_turn *turns, struct mk_desk_context *ctx)
{
    int64_t upto = j->msg.seq; /* the message being answered is not context */
    int64_t after = upto - 1 - DESK_CONTEXT_TURNS;
    int rc = mk_desk_msg_list(c, j->tenant, j->conv, after > 0 ? after : 0, DESK_CONTEXT_TURNS, hist);
    if (rc) return rc;
    size_t n = 0;
    for (size_t i = 0; i < json_object_array_length(*hist) && n < DESK_CONTEXT_TURNS; i++) {
        json_object *m = json_object_array_get_idx(*hist, i);
        if (json_object_get_int64(json_object_object_get(m, "seq")) >= upto) break;
        const char *role = desk_jstr(m, "role");
        if (!role || strcmp(role, "system") == 0) continue;
        turns[n].role = strcmp(role, "bot") == 0 ? "assistant" : role;
        turns[n].text = desk_jstr(m, "text");
        if (strcmp(role, "bot") == 0 && desk_jstr(m, "agent")) ctx->prev_agent = desk_jstr(m, "agent");
        n++;
    }
    ctx->turns = turns;
    ctx->nturns = n;
    return 0;
}

/* What the bot decided, copied out of an mk_desk_reply (which lives only during the
 * desk's call or callback). */
struct desk_bot_out {
    char *answer;
    size_t len;
    char *citations;             /* JSON array text or NULL */
    char *draft;                 /* for the operator when escalating */
    const char *agent;           /* desk-owned (lives with the desk) */
    bool has_agent, escalate, failed;
    const char *reason;          /* static */
};

void desk_bot_out_free(struct desk_bot_out *o)
{
    if (!o) return;
    free(o->answer);
    free(o->citations);
    free(o->draft);
    free(o);
}

static struct desk_bot_out *bot_out_from(const struct mk_desk_reply *r)
{
    struct desk_bot_out *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->answer = strndup(r->answer ? r->answer : "", r->answer ? r->answer_len : 0);
    o->len = r->answer ? r->answer_len : 0;
    if (r->ncitations) {
        json_object *cit = citations_json(r);
        o->citations = strdup(json_object_to_json_string_ext(cit, JSON_C_TO_STRING_PLAIN));
        json_object_put(cit);
    }
    mk_buf draft = MK_BUF_INIT;
    mk_buf_append(&draft, o->answer ? o->answer : "", o->len);
    for (size_t i = 0; i < r->ncitations; i++)
        mk_buf_printf(&draft, "%s- %s (%s)", i == 0 ? "\n\n" : "\n", r->citations[i].title ? r->citations[i].title : "",
                      r->citations[i].source ? r->citations[i].source : "");
    o->draft = mk_buf_steal(&draft, NULL);
    o->agent = r->agent;
    o->has_agent = r->agent_index >= 0;
    o->escalate = r->escalate;
    o->failed = r->failed;
    o->reason = mk_desk_reason_name(r->reason);
    if (!o->answer || (r->ncitations && !o->citations)) {
        desk_bot_out_free(o);
        return NULL;
    }
    return o;
}

/* Stores the bot's answer (only while the conversation is still the bot's) and, when
 * the desk says so, escalates. */
static int bot_store(struct desk_job *j, struct mk_store_conn *c, const struct desk_bot_out *o)
{
    int rc = 0;
    if (o->has_agent) rc = mk_desk_conv_set_agent(c, j->tenant, j->conv, o->agent);
    struct mk_desk_msg_in in = {.role = "bot",
                                .agent = o->has_agent ? o->agent : NULL,
                                .text = o->answer,
                                .text_len = o->len,
                                .citations_json = o->citations,
                                .failed = o->failed};
    bool dup = false, reopened = false;
    if (rc == 0 && in.text_len > 0) {
        rc = mk_desk_msg_add(c, j->tenant, j->conv, &in, &j->bot, &dup, &reopened);
        if (rc == 0) j->have_bot = true;
        else if (rc == MK_EFORBIDDEN) rc = 0; /* a human took over meanwhile: the bot stays silent */
    }
    j->bot_agent = o->agent;
    if (rc == 0 && o->escalate && j->have_bot) {
        rc = mk_desk_conv_transition(c, j->tenant, j->conv, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING, "bot",
                                     o->reason, o->draft, NULL, &j->after);
        if (rc == 0) {
            j->state_changed = true;
            j->have_after = true;
            j->escalation_reason = o->reason;
        } else if (rc == MK_EEXISTS) {
            rc = 0; /* someone moved it first */
        }
    }
    return rc;
}

/* The bot's turn on the pool: the local responder answers right here. With an LLM
 * the context is kept in the job and the loop takes over (desk_action_continue). */
static int bot_turn(struct desk_job *j, struct mk_store_conn *c, const struct mk_desk_conv *cv)
{
    j->dctx = (struct mk_desk_context){.bot_failures = (unsigned)cv->bot_failures, .kb = j->dctx.kb};
    int rc = load_context(j, c, &j->history, j->turns, &j->dctx);
    if (rc) return rc;
    if (j->svc->use_llm) {
        j->needs_llm = true;
        return 0;
    }
    struct mk_desk_reply r;
    memset(&r, 0, sizeof r);
    rc = mk_desk_respond(j->svc->desk, j->text, &j->dctx, NULL, &r);
    json_object_put(j->history);
    j->history = NULL;
    if (rc) return rc;
    if (r.llm_request) rc = mk_desk_complete(j->svc->desk, &r, MK_EUNAVAILABLE, NULL, 0);
    struct desk_bot_out *o = rc == 0 ? bot_out_from(&r) : NULL;
    mk_desk_reply_release(&r);
    if (rc) return rc;
    if (!o) return MK_ENOMEM;
    rc = bot_store(j, c, o);
    desk_bot_out_free(o);
    return rc;
}

/* ---- the bot's turn with an LLM (loop, then pool) ------------------------------------ */

static int llm_store_work(struct desk_job *j, struct mk_store_conn *c)
{
    int rc = bot_store(j, c, j->bot_out);
    if (rc == 0) rc = mk_desk_conv_get(c, j->tenant, j->conv, &j->after);
    if (rc == 0) {
        j->have_after = true;
        if (j->after.state == MK_DESK_WAITING) rc = mk_desk_queue_position(c, j->tenant, j->conv, &j->queue_position);
    }
    return rc;
}

static void llm_answered(struct mk_desk_reply *r, int rc, void *arg)
{
    struct desk_job *j = arg;
    j->svc->inflight--;
    json_object_put(j->history); /* the turns are not needed any more */
    j->history = NULL;
    j->dctx.turns = NULL;
    j->dctx.nturns = 0;
    if (rc == 0 && r) {
        j->bot_out = bot_out_from(r);
        if (!j->bot_out) rc = MK_ENOMEM;
    }
    if (rc == 0 && desk_job_submit(j) == 0) return; /* llm_store_work, then final_done */
    /* The user's message is stored; tell the owner what is known. */
    j->done = j->final_done;
    j->rc = 0;
    j->done(j, 0);
}

bool desk_action_continue(struct desk_job *j, int rc)
{
    if (rc != 0 || !j->needs_llm) return false;
    j->needs_llm = false;
    j->final_done = j->done;
    j->work = llm_store_work;
    /* Counted like a pool job: the service stays open until the answer is in. */
    j->svc->inflight++;
    int e = mk_api_desk_answer(j->svc->app, j->svc->desk, j->text, &j->dctx, llm_answered, j);
    if (e) {
        j->svc->inflight--;
        json_object_put(j->history);
        j->history = NULL;
        j->done = j->final_done;
        return false;
    }
    return true;
}

/* ---- the actions (pool thread) ------------------------------------------------------------ */

static int finish_state(struct desk_job *j, struct mk_store_conn *c)
{
    if (!j->have_after) {
        int rc = mk_desk_conv_get(c, j->tenant, j->conv, &j->after);
        if (rc) return rc;
        j->have_after = true;
    }
    if (j->after.state == MK_DESK_WAITING) return mk_desk_queue_position(c, j->tenant, j->conv, &j->queue_position);
    return 0;
}

int desk_action_work(struct desk_job *j, struct mk_store_conn *c)
{
    int rc = mk_desk_conv_get(c, j->tenant, j->conv, &j->before);
    if (rc) return rc;
    const char *op = j->operator_id[0] ? j->operator_id : NULL;
    switch (j->action) {
    case DESK_A_USER_MESSAGE:
    case DESK_A_OPERATOR_MESSAGE: {
        bool user = j->action == DESK_A_USER_MESSAGE;
        struct mk_desk_msg_in in = {.role = user ? "user" : "operator",
                                    .author = user ? j->before.user : op,
                                    .client_id = j->client_id[0] ? j->client_id : NULL,
                                    .text = j->text,
                                    .text_len = j->text_len};
        rc = mk_desk_msg_add(c, j->tenant, j->conv, &in, &j->msg, &j->dup, &j->reopened);
        if (rc) return rc;
        j->have_msg = true;
        if (j->reopened) j->state_changed = true;
        struct mk_desk_conv now;
        rc = mk_desk_conv_get(c, j->tenant, j->conv, &now);
        if (rc) return rc;
        if (user && !j->dup && now.state == MK_DESK_BOT) {
            rc = bot_turn(j, c, &now);
            if (rc) return rc;
        }
        return finish_state(j, c);
    }
    case DESK_A_ESCALATE:
        rc = mk_desk_conv_transition(c, j->tenant, j->conv, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING, j->actor,
                                     j->reason[0] ? j->reason : "user_request", NULL, NULL, &j->after);
        break;
    case DESK_A_CLAIM:
        rc = mk_desk_conv_transition(c, j->tenant, j->conv, MK_DESK_FROM(MK_DESK_WAITING) | MK_DESK_FROM(MK_DESK_BOT),
                                     MK_DESK_OPERATOR, j->actor, NULL, NULL, op, &j->after);
        break;
    case DESK_A_HANDBACK:
        /* Only the owner hands back (or anyone, for a conversation still waiting). */
        if (j->before.state == MK_DESK_OPERATOR && op && strcmp(j->before.operator_id, op) != 0) return MK_EFORBIDDEN;
        rc = mk_desk_conv_transition(c, j->tenant, j->conv,
                                     MK_DESK_FROM(MK_DESK_OPERATOR) | MK_DESK_FROM(MK_DESK_WAITING), MK_DESK_BOT,
                                     j->actor, j->reason[0] ? j->reason : "handback", NULL, NULL, &j->after);
        break;
    case DESK_A_RESOLVE:
        if (j->before.state == MK_DESK_OPERATOR && op && strcmp(j->before.operator_id, op) != 0) return MK_EFORBIDDEN;
        rc = mk_desk_conv_transition(c, j->tenant, j->conv, MK_DESK_FROM_OPEN, MK_DESK_RESOLVED, j->actor,
                                     j->reason[0] ? j->reason : NULL, NULL, NULL, &j->after);
        break;
    case DESK_A_RATE:
        rc = mk_desk_rate(c, j->tenant, j->conv, j->csat, j->helped, j->text, &j->after);
        if (rc == 0) j->have_after = true;
        return rc;
    }
    if (rc == 0) {
        j->have_after = true;
        j->state_changed = true;
    } else if (rc == MK_EEXISTS) {
        j->have_after = true; /* j->after is the current row: the caller tells who won */
        return rc;
    }
    if (rc) return rc;
    return finish_state(j, c);
}

/* ---- consequences (loop) ---------------------------------------------------------------------- */

static void publish(struct desk_job *j, const char *type, json_object *payload)
{
    if (!j->svc->bus) {
        json_object_put(payload);
        return;
    }
    json_object_object_add(payload, "conversation_id", json_object_new_string(j->conv));
    size_t len;
    const char *s = json_object_to_json_string_length(payload, JSON_C_TO_STRING_PLAIN, &len);
    int rc = mk_bus_publish(j->svc->bus, type, j->tenant, s, len, NULL, NULL, NULL);
    if (rc) mk_log(MK_LOG_WARN, "desk_event_dropped", "type", type, "error", mk_strerror(rc), NULL);
    json_object_put(payload);
}

static json_object *msg_event(const char *conv, const struct mk_desk_msg *m)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("message"));
    json_object_object_add(o, "conversation_id", json_object_new_string(conv));
    json_object_object_add(o, "message", mk_desk_msg_json(m));
    return o;
}

static json_object *state_event(const struct desk_job *j)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("state"));
    json_object_object_add(o, "conversation", mk_desk_conv_json(&j->after));
    json_object_object_add(o, "queue_position",
                           j->after.state == MK_DESK_WAITING ? json_object_new_int(j->queue_position) : NULL);
    return o;
}

static const char *agent_label(const struct mk_desk_conv *cv) { return cv->agent[0] ? cv->agent : "(none)"; }

static void message_consequences(struct desk_job *j, const struct mk_desk_msg *m, bool first_of_role)
{
    const char *role[] = {m->role};
    mk_metric_inc(MK_METRIC_DESK_MESSAGES, role);
    json_object *p = json_object_new_object();
    json_object_object_add(p, "message", mk_desk_msg_json(m));
    publish(j, MK_BUS_CONVERSATION_MESSAGE, p);
    json_object *ev = msg_event(j->conv, m);
    desk_live_to_both(j->svc, j->tenant, j->conv, ev);
    json_object_put(ev);
    if (!first_of_role) return;
    /* Time to first response: the bot from the start, an operator from the escalation. */
    if (strcmp(m->role, "bot") == 0 && j->before.created_at) {
        const char *who[] = {"bot"};
        mk_metric_observe(MK_METRIC_DESK_FIRST_RESPONSE, who, (double)(m->created_at - j->before.created_at) / 1000.0);
    } else if (strcmp(m->role, "operator") == 0 && j->before.escalated_at) {
        const char *who[] = {"operator"};
        mk_metric_observe(MK_METRIC_DESK_FIRST_RESPONSE, who,
                          (double)(m->created_at - j->before.escalated_at) / 1000.0);
    }
}

void desk_action_broadcast(struct desk_job *j)
{
    if (j->rc != 0) return;
    if (j->have_msg && !j->dup)
        message_consequences(j, &j->msg,
                             j->action == DESK_A_OPERATOR_MESSAGE && j->before.first_operator_reply_at == 0);
    if (j->have_bot) message_consequences(j, &j->bot, j->before.first_bot_reply_at == 0);
    if (!j->have_after) return;
    const struct mk_desk_conv *cv = &j->after;
    if (j->state_changed || j->action == DESK_A_RATE) {
        json_object *ev = state_event(j);
        desk_live_to_conversation(j->svc, j->tenant, j->conv, ev);
        json_object_object_add(ev, "type", json_object_new_string("conversation"));
        desk_live_to_operators(j->svc, j->tenant, ev);
        json_object_put(ev);
    }
    if (j->state_changed) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "from", json_object_new_string(mk_desk_state_name(j->before.state)));
        json_object_object_add(p, "to", json_object_new_string(mk_desk_state_name(cv->state)));
        json_object_object_add(p, "actor", json_object_new_string(j->action == DESK_A_USER_MESSAGE && !j->reopened
                                                                      ? "bot"
                                                                      : j->actor));
        switch (cv->state) {
        case MK_DESK_WAITING: {
            const char *reason = cv->reason[0] ? cv->reason : "unspecified";
            const char *labels[] = {agent_label(cv), reason};
            mk_metric_inc(MK_METRIC_DESK_ESCALATIONS, labels);
            json_object_object_add(p, "reason", json_object_new_string(reason));
            json_object_object_add(p, "queue_position", json_object_new_int(j->queue_position));
            publish(j, MK_BUS_CONVERSATION_ESCALATED, p);
            break;
        }
        case MK_DESK_OPERATOR:
            json_object_object_add(p, "operator", json_object_new_string(cv->operator_id));
            publish(j, MK_BUS_CONVERSATION_CLAIMED, p);
            break;
        case MK_DESK_RESOLVED: {
            const char *labels[] = {agent_label(cv), cv->human_involved ? "human" : "bot"};
            mk_metric_inc(MK_METRIC_DESK_RESOLUTIONS, labels);
            json_object_object_add(p, "by", json_object_new_string(labels[1]));
            publish(j, MK_BUS_CONVERSATION_RESOLVED, p);
            break;
        }
        default:
            json_object_put(p); /* back to the bot: a transition, not one of the bus's events */
            break;
        }
        desk_live_refresh_queue(j->svc, j->tenant);
    }
    if (j->action == DESK_A_RATE) {
        char score[8];
        snprintf(score, sizeof score, "%d", cv->csat);
        const char *labels[] = {agent_label(cv), score};
        mk_metric_inc(MK_METRIC_DESK_RATINGS, labels);
        json_object *p = json_object_new_object();
        json_object_object_add(p, "csat", json_object_new_int(cv->csat));
        json_object_object_add(p, "helped", cv->helped < 0 ? NULL : json_object_new_boolean(cv->helped == 1));
        publish(j, MK_BUS_CONVERSATION_RATED, p);
    }
}
