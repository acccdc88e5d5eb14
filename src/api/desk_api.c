/*
 * desk_api: the support desk's REST API, /api/v1/desk/... (docs/API.md "Desk",
 * docs/openapi.yaml), for other channels (messengers, e-mail gateways), CRMs and the
 * web pages.
 *
 * Who may call what:
 *  - an end user holds a conversation's token (given once when it is created; sent as
 *    X-Desk-Token or ?token=) and may read it, write to it, ask for a person, end it
 *    and rate it;
 *  - a caller with desk.operate (operators, admins: an API key, or a console session
 *    in X-Desk-Session) may do all of that for any conversation of its tenant, plus
 *    list, claim, reply, hand back, resolve, and read the queue and analytics;
 *  - creating a conversation, the agents list and the KB documents need chat;
 *  - keys (admin page) need keys.manage; analytics of every tenant admin.tenants.
 * The console login (POST /api/v1/desk/login) turns an API key of an operator or admin
 * plus a TOTP code into a console session (mk_role_console_needs_totp), enrolling the
 * second factor on the first login.
 *
 * Routing: mk_api_desk gets every method under the prefix and dispatches on the path
 * segments. All store work runs on the pool (desk_job) and answers from the loop.
 */
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mk_keys.h"
#include "bus/mk_bus.h"
#include "auth/mk_roles.h"
#include "auth/mk_totp.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "desk_int.h"
#include "kb/mk_kb.h"
#include "metrics/mk_metrics.h"
#include "pipeline/mk_services.h"

void mk_api_desk(mk_ctx *ctx);

/* ---- answering ------------------------------------------------------------------------ */

static void send_json(mk_ctx *ctx, int status, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    mk_api_send(ctx, status, "application/json", s, len);
    json_object_put(obj);
}

static void fail_rc(mk_ctx *ctx, int rc)
{
    switch (rc) {
    case MK_EEXISTS:
        mk_api_fail_code(ctx, MK_EEXISTS, "conflict", "the conversation changed state first; reload it");
        break;
    case MK_EFORBIDDEN:
        mk_api_fail_code(ctx, MK_EFORBIDDEN, "not_allowed_now",
                         "not allowed in the conversation's current state (or by this caller)");
        break;
    case MK_ENOTFOUND:
        mk_api_fail_code(ctx, MK_ENOTFOUND, "conversation_not_found", "no such conversation");
        break;
    case MK_EUNAUTHORIZED:
        mk_api_fail_code(ctx, MK_EUNAUTHORIZED, "invalid_conversation_token",
                         "missing or wrong conversation token (X-Desk-Token)");
        break;
    default:
        mk_api_fail(ctx, rc, NULL);
        break;
    }
}

static bool can_operate(mk_ctx *ctx)
{
    return !ctx->principal_rec || mk_principal_can(ctx->principal_rec, MK_PERM_DESK_OPERATE);
}

static bool need_perm(mk_ctx *ctx, enum mk_perm p)
{
    if (!ctx->principal_rec || mk_principal_can(ctx->principal_rec, p)) return true;
    char msg[160];
    snprintf(msg, sizeof msg, "The role '%s' may not %s.", mk_role_name(ctx->principal_rec->role), mk_perm_name(p));
    mk_api_fail_code(ctx, MK_EFORBIDDEN, "permission_denied", msg);
    return false;
}

/* ---- request bodies --------------------------------------------------------------------- */

static void put_json(void *o) { json_object_put(o); }

static json_object *body_object(mk_ctx *ctx, bool required)
{
    if (ctx->req->body.len == 0 && !required) { /* an empty body is an empty object */
        json_object *o = json_object_new_object();
        if (!o || mk_pool_on_free(ctx->pool, put_json, o) != 0) {
            json_object_put(o);
            mk_api_fail(ctx, MK_ENOMEM, NULL);
            return NULL;
        }
        ctx->body = o;
        return o;
    }
    if (mk_api_parse_body(ctx) != 0) return NULL;
    if (!json_object_is_type(ctx->body, json_type_object)) {
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request", "the body must be a JSON object");
        return NULL;
    }
    return ctx->body;
}

static bool opt_string(mk_ctx *ctx, json_object *b, const char *k, size_t max, const char **out)
{
    json_object *v = json_object_object_get(b, k);
    *out = NULL;
    if (!v || json_object_is_type(v, json_type_null)) return true;
    if (!json_object_is_type(v, json_type_string) || (size_t)json_object_get_string_len(v) > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "\"%s\" must be a string of at most %zu bytes", k, max);
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request", msg);
        return false;
    }
    *out = json_object_get_string(v);
    return true;
}

/* ---- jobs for REST ---------------------------------------------------------------------- */

static int check_then(struct desk_job *j, struct mk_store_conn *c)
{
    if (j->check_token) {
        int rc = mk_desk_conv_check_token(c, j->tenant, j->conv, j->token);
        if (rc) return rc;
    }
    return 0;
}

static int action_rest_work(struct desk_job *j, struct mk_store_conn *c)
{
    int rc = check_then(j, c);
    return rc ? rc : desk_action_work(j, c);
}

static void action_rest_done(struct desk_job *j, int rc)
{
    if (desk_action_continue(j, rc)) return; /* the bot answers with the LLM first */
    mk_ctx *ctx = j->owner;
    if (rc) {
        fail_rc(ctx, rc);
        desk_job_free(j);
        return;
    }
    desk_action_broadcast(j);
    json_object *o = json_object_new_object();
    if (j->have_msg) {
        json_object_object_add(o, "message", mk_desk_msg_json(&j->msg));
        json_object_object_add(o, "duplicate", json_object_new_boolean(j->dup));
    }
    if (j->action == DESK_A_USER_MESSAGE) {
        json_object *replies = json_object_new_array();
        if (j->have_bot) json_object_array_add(replies, mk_desk_msg_json(&j->bot));
        json_object_object_add(o, "replies", replies);
    }
    if (j->have_after) json_object_object_add(o, "conversation", mk_desk_conv_json(&j->after));
    json_object_object_add(o, "queue_position",
                           j->have_after && j->after.state == MK_DESK_WAITING ? json_object_new_int(j->queue_position)
                                                                              : NULL);
    send_json(ctx, 200, o);
    desk_job_free(j);
}

static void submit(mk_ctx *ctx, struct desk_job *j)
{
    j->owner = ctx;
    int rc = desk_job_submit(j);
    if (rc) {
        desk_job_free(j);
        mk_api_fail(ctx, MK_EUNAVAILABLE, "the desk cannot take work right now");
    }
}

/* ---- routes ---------------------------------------------------------------------------------- */

struct route_args {
    struct desk_svc *svc;
    const char *seg[6];
    size_t nseg;
    const char *token;      /* end user's conversation token, if any */
};

static struct desk_job *conv_job(mk_ctx *ctx, struct route_args *a, enum desk_action act, bool user_allowed)
{
    bool operate = can_operate(ctx);
    if (!operate && !(user_allowed && a->token)) {
        if (a->token) mk_api_fail_code(ctx, MK_EFORBIDDEN, "permission_denied", "desk.operate is needed for this");
        else fail_rc(ctx, MK_EUNAUTHORIZED);
        return NULL;
    }
    if (strlen(a->seg[1]) != 36) {
        fail_rc(ctx, MK_ENOTFOUND);
        return NULL;
    }
    struct desk_job *j = desk_job_new(a->svc, act, ctx->tenant, a->seg[1]);
    if (!j) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return NULL;
    }
    if (!operate) { /* the end user: the token decides */
        j->check_token = true;
        snprintf(j->token, sizeof j->token, "%s", strlen(a->token) == 43 ? a->token : "");
        snprintf(j->actor, sizeof j->actor, "user");
    } else {
        snprintf(j->actor, sizeof j->actor, "%s:%.100s", a->token ? "user" : "api", ctx->principal);
        snprintf(j->operator_id, sizeof j->operator_id, "%s", ctx->principal);
        if (a->token) snprintf(j->actor, sizeof j->actor, "user");
    }
    j->work = action_rest_work;
    j->done = action_rest_done;
    return j;
}

static int create_work(struct desk_job *j, struct mk_store_conn *c)
{
    json_object *in = j->result;
    struct mk_desk_conv_new n = {.tenant = j->tenant,
                                 .user = desk_jstr(in, "user"),
                                 .channel = desk_jstr(in, "channel") ? desk_jstr(in, "channel") : "api",
                                 .lang = desk_jstr(in, "lang"),
                                 .meta_json = desk_jstr(in, "meta_json")};
    return mk_desk_conv_create(c, &n, &j->after, j->token);
}

static void create_done(struct desk_job *j, int rc)
{
    mk_ctx *ctx = j->owner;
    if (rc) {
        mk_api_fail(ctx, rc, rc == MK_EINVAL ? "invalid user, channel, lang or meta" : NULL);
        desk_job_free(j);
        return;
    }
    const char *ch[] = {j->after.channel};
    mk_metric_inc(MK_METRIC_DESK_CONVERSATIONS, ch);
    if (j->svc->bus) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "conversation_id", json_object_new_string(j->after.id));
        json_object_object_add(p, "channel", json_object_new_string(j->after.channel));
        size_t len;
        const char *s = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
        mk_bus_publish(j->svc->bus, MK_BUS_CONVERSATION_CREATED, j->tenant, s, len, NULL, NULL, NULL);
        json_object_put(p);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "conversation", mk_desk_conv_json(&j->after));
    json_object_object_add(o, "token", json_object_new_string(j->token));
    send_json(ctx, 201, o);
    desk_job_free(j);
}

static void r_create(mk_ctx *ctx, struct route_args *a)
{
    json_object *b = body_object(ctx, false);
    if (!b) return;
    const char *user, *channel, *lang;
    if (!opt_string(ctx, b, "user", MK_DESK_MAX_NAME, &user) || !opt_string(ctx, b, "channel", MK_DESK_MAX_NAME, &channel) ||
        !opt_string(ctx, b, "lang", 7, &lang))
        return;
    json_object *meta = json_object_object_get(b, "meta");
    if (meta && !json_object_is_type(meta, json_type_object)) {
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request", "\"meta\" must be an object");
        return;
    }
    struct desk_job *j = desk_job_new(a->svc, DESK_A_USER_MESSAGE, ctx->tenant, NULL);
    if (!j) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    j->result = json_object_new_object();
    if (user) json_object_object_add(j->result, "user", json_object_new_string(user));
    if (channel) json_object_object_add(j->result, "channel", json_object_new_string(channel));
    if (lang) json_object_object_add(j->result, "lang", json_object_new_string(lang));
    if (meta)
        json_object_object_add(j->result, "meta_json",
                               json_object_new_string(json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN)));
    j->work = create_work;
    j->done = create_done;
    submit(ctx, j);
}

static int read_work(struct desk_job *j, struct mk_store_conn *c)
{
    int rc = check_then(j, c);
    if (rc) return rc;
    rc = mk_desk_conv_get(c, j->tenant, j->conv, &j->after);
    if (rc) return rc;
    j->have_after = true;
    if (j->after.state == MK_DESK_WAITING) rc = mk_desk_queue_position(c, j->tenant, j->conv, &j->queue_position);
    if (rc) return rc;
    switch (j->state_filter) {
    case 1: return mk_desk_msg_list(c, j->tenant, j->conv, j->after_seq, j->limit, &j->result);
    case 2: return mk_desk_transitions(c, j->tenant, j->conv, &j->result);
    default: return 0;
    }
}

static void read_done(struct desk_job *j, int rc)
{
    mk_ctx *ctx = j->owner;
    if (rc) {
        fail_rc(ctx, rc);
        desk_job_free(j);
        return;
    }
    json_object *o;
    if (j->state_filter == 0) {
        o = mk_desk_conv_json(&j->after);
        json_object_object_add(o, "queue_position",
                               j->after.state == MK_DESK_WAITING ? json_object_new_int(j->queue_position) : NULL);
    } else {
        o = json_object_new_object();
        json_object_object_add(o, "object", json_object_new_string("list"));
        json_object_object_add(o, "data", json_object_get(j->result));
    }
    send_json(ctx, 200, o);
    desk_job_free(j);
}

static bool query_long(mk_ctx *ctx, const char *name, long def, long lo, long hi, long *out)
{
    const char *s = desk_query(ctx, name);
    *out = def;
    if (!s) return true;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "query parameter %s must be a whole number from %ld to %ld", name, lo, hi);
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request", msg);
        return false;
    }
    *out = v;
    return true;
}

static void r_read(mk_ctx *ctx, struct route_args *a, int what)
{
    struct desk_job *j = conv_job(ctx, a, DESK_A_USER_MESSAGE, what != 2);
    if (!j) return;
    long after = 0, limit = MK_DESK_MAX_HISTORY;
    if (!query_long(ctx, "after", 0, 0, LONG_MAX, &after) ||
        !query_long(ctx, "limit", MK_DESK_MAX_HISTORY, 1, MK_DESK_MAX_HISTORY, &limit)) {
        desk_job_free(j);
        return;
    }
    j->after_seq = after;
    j->limit = (int)limit;
    j->state_filter = what;
    j->work = read_work;
    j->done = read_done;
    submit(ctx, j);
}

static void r_action(mk_ctx *ctx, struct route_args *a, enum desk_action act)
{
    bool user_ok = act == DESK_A_USER_MESSAGE || act == DESK_A_ESCALATE || act == DESK_A_RESOLVE || act == DESK_A_RATE;
    json_object *b = body_object(ctx, act == DESK_A_USER_MESSAGE || act == DESK_A_OPERATOR_MESSAGE || act == DESK_A_RATE);
    if (!b) return;
    const char *text = NULL, *client_id = NULL, *reason = NULL, *comment = NULL;
    if (!opt_string(ctx, b, "text", MK_DESK_MAX_TEXT_BYTES, &text) ||
        !opt_string(ctx, b, "client_id", MK_DESK_MAX_CLIENT_ID, &client_id) ||
        !opt_string(ctx, b, "reason", MK_DESK_MAX_NAME, &reason) ||
        !opt_string(ctx, b, "comment", MK_DESK_MAX_TEXT_BYTES, &comment))
        return;
    if ((act == DESK_A_USER_MESSAGE || act == DESK_A_OPERATOR_MESSAGE) && (!text || !*text)) {
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request", "\"text\" is required");
        return;
    }
    struct desk_job *j = conv_job(ctx, a, act, user_ok);
    if (!j) return;
    if (act == DESK_A_RATE) {
        json_object *cs = json_object_object_get(b, "csat"), *h = json_object_object_get(b, "helped");
        if (!cs || !json_object_is_type(cs, json_type_int) || json_object_get_int(cs) < 1 ||
            json_object_get_int(cs) > 5 || (h && !json_object_is_type(h, json_type_boolean) &&
                                            !json_object_is_type(h, json_type_null))) {
            desk_job_free(j);
            mk_api_fail_code(ctx, MK_EINVAL, "invalid_request", "\"csat\" must be 1..5 and \"helped\" a boolean");
            return;
        }
        j->csat = json_object_get_int(cs);
        j->helped = h && json_object_is_type(h, json_type_boolean) ? json_object_get_boolean(h) : -1;
        text = comment && *comment ? comment : NULL;
    }
    if (text) {
        j->text = strdup(text);
        j->text_len = strlen(text);
        if (!j->text) {
            desk_job_free(j);
            mk_api_fail(ctx, MK_ENOMEM, NULL);
            return;
        }
    }
    if (client_id) snprintf(j->client_id, sizeof j->client_id, "%s", client_id);
    if (reason) snprintf(j->reason, sizeof j->reason, "%s", reason);
    submit(ctx, j);
}

static int list_work(struct desk_job *j, struct mk_store_conn *c)
{
    switch (j->action) {
    case DESK_A_CLAIM: return mk_desk_queue(c, j->tenant, j->limit, &j->result);
    case DESK_A_HANDBACK:
        return mk_desk_conv_list(c, j->tenant, j->state_filter, j->operator_id[0] ? j->operator_id : NULL, j->limit,
                                 j->offset, &j->result);
    default: return mk_desk_analytics(c, j->operator_id[0] ? NULL : j->tenant, j->after_seq, &j->result);
    }
}

static void list_done(struct desk_job *j, int rc)
{
    mk_ctx *ctx = j->owner;
    if (rc) {
        fail_rc(ctx, rc);
    } else if (j->action == DESK_A_RESOLVE) { /* analytics */
        send_json(ctx, 200, json_object_get(j->result));
    } else {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "object", json_object_new_string("list"));
        json_object_object_add(o, "data", json_object_get(j->result));
        send_json(ctx, 200, o);
    }
    desk_job_free(j);
}

static void r_list(mk_ctx *ctx, struct route_args *a, enum desk_action kind)
{
    if (!need_perm(ctx, MK_PERM_DESK_OPERATE)) return;
    struct desk_job *j = desk_job_new(a->svc, kind, ctx->tenant, NULL);
    if (!j) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    long limit, offset, since;
    if (!query_long(ctx, "limit", MK_DESK_MAX_LIST, 1, MK_DESK_MAX_LIST, &limit) ||
        !query_long(ctx, "offset", 0, 0, 1000000, &offset) || !query_long(ctx, "since", 0, 0, LONG_MAX, &since)) {
        desk_job_free(j);
        return;
    }
    j->limit = (int)limit;
    j->offset = (int)offset;
    j->after_seq = since;
    j->state_filter = -1;
    const char *state = desk_query(ctx, "state"), *op = desk_query(ctx, "operator"), *tenant = desk_query(ctx, "tenant");
    if (state && (j->state_filter = mk_desk_state_parse(state)) < 0) {
        desk_job_free(j);
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request", "state must be bot, waiting_operator, operator or resolved");
        return;
    }
    if (op) snprintf(j->operator_id, sizeof j->operator_id, "%s", op);
    if (kind == DESK_A_RESOLVE) { /* analytics: ?tenant=* for every tenant, admins only */
        j->operator_id[0] = '\0';
        if (tenant && strcmp(tenant, "*") == 0) {
            if (!need_perm(ctx, MK_PERM_ADMIN_TENANTS)) {
                desk_job_free(j);
                return;
            }
            snprintf(j->operator_id, sizeof j->operator_id, "*");
        }
    }
    j->work = list_work;
    j->done = list_done;
    submit(ctx, j);
}

/* ---- agents, knowledge base, keys (admin page) ------------------------------------------------ */

static void r_agents(mk_ctx *ctx, struct route_args *a)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < mk_desk_agent_count(a->svc->desk); i++) {
        const struct mk_desk_agent *ag = mk_desk_agent_at(a->svc->desk, i);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(ag->id));
        json_object_object_add(o, "name", json_object_new_string(ag->name ? ag->name : ag->id));
        json_object_object_add(o, "description", json_object_new_string(ag->description ? ag->description : ""));
        json_object_object_add(o, "model_group", ag->model_group ? json_object_new_string(ag->model_group) : NULL);
        json_object_object_add(o, "escalation_threshold", json_object_new_double(ag->escalation_threshold));
        json_object *kn = json_object_new_array();
        for (size_t k = 0; k < ag->nknowledge; k++) json_object_array_add(kn, json_object_new_string(ag->knowledge[k]));
        json_object_object_add(o, "knowledge", kn);
        json_object_object_add(o, "examples", json_object_new_int64((int64_t)ag->nexamples));
        json_object_array_add(arr, o);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", arr);
    send_json(ctx, 200, o);
}

static void r_kb_documents(mk_ctx *ctx, struct route_args *a)
{
    if (!need_perm(ctx, MK_PERM_KB_READ)) return;
    mk_kb *kb = mk_desk_kb(a->svc->desk);
    json_object *arr = json_object_new_array();
    size_t slots = kb ? mk_kb_document_slots(kb) : 0;
    for (size_t i = 0; i < slots; i++) {
        struct mk_kb_doc_info d;
        if (!mk_kb_document(kb, i, &d) || !d.live) continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(d.id ? d.id : ""));
        json_object_object_add(o, "title", json_object_new_string(d.title ? d.title : ""));
        json_object_object_add(o, "lang", json_object_new_string(d.lang ? d.lang : ""));
        json_object_object_add(o, "agent", json_object_new_string(d.agent ? d.agent : ""));
        json_object_object_add(o, "source", json_object_new_string(d.source ? d.source : ""));
        json_object_object_add(o, "chunks", json_object_new_int64((int64_t)d.nchunks));
        json_object_array_add(arr, o);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", arr);
    send_json(ctx, 200, o);
}

/* The text of one knowledge-base document, as JSON {title, source, lang, sections:
 * [{heading, text}]}: what a citation link of the chat opens (sources like
 * kb://demo/ru/wifi.md are not web addresses). ?source= selects it. */
static void r_kb_article(mk_ctx *ctx, struct route_args *a)
{
    if (!need_perm(ctx, MK_PERM_KB_READ)) return;
    const char *src = desk_query(ctx, "source");
    mk_kb *kb = mk_desk_kb(a->svc->desk);
    size_t slots = kb && src ? mk_kb_document_slots(kb) : 0;
    for (size_t i = 0; i < slots; i++) {
        struct mk_kb_doc_info d;
        if (!mk_kb_document(kb, i, &d) || !d.live || !d.source || strcmp(d.source, src) != 0) continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(d.id ? d.id : ""));
        json_object_object_add(o, "title", json_object_new_string(d.title ? d.title : ""));
        json_object_object_add(o, "lang", json_object_new_string(d.lang ? d.lang : ""));
        json_object_object_add(o, "source", json_object_new_string(d.source));
        json_object *secs = json_object_new_array();
        for (size_t c = 0; c < d.nchunks; c++) {
            struct mk_kb_hit h;
            if (!mk_kb_chunk(kb, d.first_chunk + c, &h)) continue;
            json_object *sec = json_object_new_object();
            json_object_object_add(sec, "heading", json_object_new_string(h.section ? h.section : ""));
            json_object_object_add(sec, "text", json_object_new_string(h.text ? h.text : ""));
            json_object_array_add(secs, sec);
        }
        json_object_object_add(o, "sections", secs);
        send_json(ctx, 200, o);
        return;
    }
    mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "no knowledge-base document with that source");
}

static int keys_work(struct desk_job *j, struct mk_store_conn *c)
{
    struct mk_services *s = j->svc->app->services;
    if (!s || !s->keys) return MK_EUNAVAILABLE;
    struct mk_key_record *recs = NULL;
    size_t n = 0;
    int rc = mk_keys_list(s->keys, c, false, &recs, &n);
    if (rc) return rc;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(recs[i].id));
        json_object_object_add(o, "tenant", json_object_new_string(recs[i].tenant));
        json_object_object_add(o, "role", json_object_new_string(mk_role_name(recs[i].role)));
        json_object_object_add(o, "name", json_object_new_string(recs[i].name));
        json_object_object_add(o, "created_at", json_object_new_int64(recs[i].created_at_ms));
        json_object_object_add(o, "last_used_at",
                               recs[i].last_used_at_ms ? json_object_new_int64(recs[i].last_used_at_ms) : NULL);
        json_object_object_add(o, "expires_at",
                               recs[i].expires_at_ms ? json_object_new_int64(recs[i].expires_at_ms) : NULL);
        json_object_array_add(arr, o);
    }
    free(recs);
    j->result = arr;
    return 0;
}

static void r_keys(mk_ctx *ctx, struct route_args *a)
{
    if (!need_perm(ctx, MK_PERM_KEYS_MANAGE)) return;
    if (ctx->principal_rec && ctx->principal_rec->kind == MK_PRINCIPAL_ANONYMOUS &&
        !mk_principal_can(ctx->principal_rec, MK_PERM_KEYS_MANAGE)) {
        mk_api_fail_code(ctx, MK_EFORBIDDEN, "permission_denied", "keys.manage is needed");
        return;
    }
    struct desk_job *j = desk_job_new(a->svc, DESK_A_HANDBACK, ctx->tenant, NULL);
    if (!j) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    j->work = keys_work;
    j->done = list_done;
    submit(ctx, j);
}

/* ---- console login ------------------------------------------------------------------------------ */

struct login {
    struct mk_principal who;
    char code[16];
    bool have_code;
    int outcome;          /* 0 session, 1 enrolment started */
    mk_buf uri;
    struct mk_totp_secret secret;
};

static int login_work(struct desk_job *j, struct mk_store_conn *c)
{
    struct login *l = (struct login *)j->text;
    struct mk_totp *t = j->svc->totp;
    if (!mk_role_console_needs_totp(l->who.role)) return 0;
    bool enrolled = false;
    int rc = mk_totp_enrolled(t, c, l->who.id, &enrolled);
    if (rc) return rc;
    int64_t now = mk_wall_ms() / 1000;
    if (enrolled) {
        if (!l->have_code) return MK_EUNAUTHORIZED;
        return mk_totp_verify(t, c, l->who.id, l->code, now);
    }
    if (l->have_code) {
        rc = mk_totp_enroll_confirm(t, c, l->who.id, l->code, now);
        if (rc != MK_ENOTFOUND) return rc; /* confirmed (0) or a wrong code */
    }
    /* First login (or a lost pending enrolment): start one; the console shows the QR. */
    rc = mk_totp_enroll_begin(t, c, l->who.id, "Mayak", &l->uri, &l->secret);
    if (rc == 0) l->outcome = 1;
    return rc;
}

static void login_done(struct desk_job *j, int rc)
{
    mk_ctx *ctx = j->owner;
    struct login *l = (struct login *)j->text;
    if (rc == MK_EUNAUTHORIZED) {
        mk_api_fail_code(ctx, MK_EUNAUTHORIZED, l->have_code ? "totp_invalid" : "totp_required",
                         l->have_code ? "wrong or reused one-time code" : "a one-time code (TOTP) is required");
    } else if (rc) {
        mk_api_fail(ctx, rc, NULL);
    } else if (l->outcome == 1) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "status", json_object_new_string("enroll"));
        json_object_object_add(o, "otpauth_uri", json_object_new_string(l->uri.data ? l->uri.data : ""));
        json_object_object_add(o, "secret", json_object_new_string(l->secret.base32));
        send_json(ctx, 200, o);
    } else {
        mk_buf token = MK_BUF_INIT;
        if (desk_session_new(j->svc, &l->who, &token) != 0) {
            mk_api_fail(ctx, MK_ENOMEM, NULL);
        } else {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "status", json_object_new_string("ok"));
            json_object_object_add(o, "session", json_object_new_string(token.data));
            json_object *op = json_object_new_object();
            json_object_object_add(op, "id", json_object_new_string(l->who.id));
            json_object_object_add(op, "role", json_object_new_string(mk_role_name(l->who.role)));
            json_object_object_add(op, "tenant", json_object_new_string(l->who.tenant));
            json_object_object_add(o, "operator", op);
            json_object_object_add(o, "expires_in_s", json_object_new_int64(DESK_SESSION_TTL_MS / 1000));
            send_json(ctx, 200, o);
        }
        mk_buf_release(&token);
    }
    mk_buf_release(&l->uri);
    sodium_memzero(l, sizeof *l);
    free(l);
    j->text = NULL;
    desk_job_free(j);
}

static void r_login(mk_ctx *ctx, struct route_args *a)
{
    if (!ctx->principal_rec) {
        mk_api_fail_code(ctx, MK_EUNAUTHORIZED, "invalid_api_key", "log in with an API key");
        return;
    }
    if (!mk_principal_can(ctx->principal_rec, MK_PERM_DESK_OPERATE)) {
        mk_api_fail_code(ctx, MK_EFORBIDDEN, "permission_denied", "the console is for operators and admins");
        return;
    }
    json_object *b = body_object(ctx, false);
    if (!b) return;
    const char *code;
    if (!opt_string(ctx, b, "totp", 10, &code)) return;
    struct login *l = calloc(1, sizeof *l);
    struct desk_job *j = l ? desk_job_new(a->svc, DESK_A_CLAIM, ctx->tenant, NULL) : NULL;
    if (!j) {
        free(l);
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    l->who = *ctx->principal_rec;
    if (code && *code) {
        snprintf(l->code, sizeof l->code, "%s", code);
        l->have_code = true;
    }
    j->text = (char *)l;
    j->work = login_work;
    j->done = login_done;
    submit(ctx, j);
}

static void r_logout(mk_ctx *ctx, struct route_args *a)
{
    desk_session_end(a->svc, mk_http_req_header(ctx->req, "x-desk-session").ptr
                                 ? mk_pool_strndup(ctx->pool, mk_http_req_header(ctx->req, "x-desk-session").ptr,
                                                   mk_http_req_header(ctx->req, "x-desk-session").len)
                                 : desk_query(ctx, "session"));
    send_json(ctx, 200, json_object_new_object());
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

static void dispatch(mk_ctx *ctx)
{
    mk_buf why = MK_BUF_INIT;
    struct desk_svc *svc = desk_service(ctx, &why);
    if (!svc) {
        mk_api_fail(ctx, MK_EUNAVAILABLE, why.data ? why.data : "the desk is unavailable");
        mk_buf_release(&why);
        return;
    }
    mk_buf_release(&why);
    struct route_args a = {.svc = svc};
    /* Segments after /api/v1/desk/ (percent-encoding is not expected in ids). */
    const char *p = ctx->req->path.ptr + strlen("/api/v1/desk/");
    char *copy = mk_pool_strdup(ctx->pool, p);
    if (!copy) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    for (char *s = copy; *s && a.nseg < 6;) {
        char *slash = strchr(s, '/');
        if (slash) *slash = '\0';
        if (*s) a.seg[a.nseg++] = s;
        if (!slash) break;
        s = slash + 1;
    }
    mk_slice th = mk_http_req_header(ctx->req, "x-desk-token");
    a.token = th.ptr ? mk_pool_strndup(ctx->pool, th.ptr, th.len) : desk_query(ctx, "token");
    const char *m = ctx->req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0, post = strcmp(m, "POST") == 0;
    const char *s0 = a.nseg > 0 ? a.seg[0] : "", *s2 = a.nseg > 2 ? a.seg[2] : NULL;
    if (strcmp(s0, "conversations") == 0) {
        if (a.nseg == 1 && post) return r_create(ctx, &a);
        if (a.nseg == 1 && get) return r_list(ctx, &a, DESK_A_HANDBACK);
        if (a.nseg == 2 && get) return r_read(ctx, &a, 0);
        if (a.nseg == 3 && get && strcmp(s2, "messages") == 0) return r_read(ctx, &a, 1);
        if (a.nseg == 3 && get && strcmp(s2, "transitions") == 0) return r_read(ctx, &a, 2);
        if (a.nseg == 3 && post) {
            static const struct {
                const char *name;
                enum desk_action act;
            } acts[] = {{"messages", DESK_A_USER_MESSAGE}, {"reply", DESK_A_OPERATOR_MESSAGE},
                        {"escalate", DESK_A_ESCALATE},     {"claim", DESK_A_CLAIM},
                        {"handback", DESK_A_HANDBACK},     {"resolve", DESK_A_RESOLVE},
                        {"rating", DESK_A_RATE}};
            for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
                if (strcmp(s2, acts[i].name) != 0) continue;
                if ((acts[i].act == DESK_A_CLAIM || acts[i].act == DESK_A_OPERATOR_MESSAGE ||
                     acts[i].act == DESK_A_HANDBACK) &&
                    !need_perm(ctx, MK_PERM_DESK_OPERATE))
                    return;
                return r_action(ctx, &a, acts[i].act);
            }
        }
    } else if (a.nseg == 1 && get && strcmp(s0, "queue") == 0) {
        return r_list(ctx, &a, DESK_A_CLAIM);
    } else if (a.nseg == 1 && get && strcmp(s0, "analytics") == 0) {
        return r_list(ctx, &a, DESK_A_RESOLVE);
    } else if (a.nseg == 1 && get && strcmp(s0, "agents") == 0) {
        return r_agents(ctx, &a);
    } else if (a.nseg == 1 && get && strcmp(s0, "keys") == 0) {
        return r_keys(ctx, &a);
    } else if (a.nseg == 2 && get && strcmp(s0, "kb") == 0 && strcmp(a.seg[1], "documents") == 0) {
        return r_kb_documents(ctx, &a);
    } else if (a.nseg == 2 && get && strcmp(s0, "kb") == 0 && strcmp(a.seg[1], "article") == 0) {
        return r_kb_article(ctx, &a);
    } else if (a.nseg == 1 && post && strcmp(s0, "login") == 0) {
        return r_login(ctx, &a);
    } else if (a.nseg == 1 && post && strcmp(s0, "logout") == 0) {
        return r_logout(ctx, &a);
    }
    mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found", "unknown desk path or method");
}

/* A console session (X-Desk-Session) stands for the principal that logged in;
 * anything else goes through the usual auth step. */
void mk_api_desk(mk_ctx *ctx)
{
    mk_slice sh = mk_http_req_header(ctx->req, "x-desk-session");
    if (sh.ptr) {
        mk_buf why = MK_BUF_INIT;
        struct desk_svc *svc = desk_service(ctx, &why);
        mk_buf_release(&why);
        struct mk_principal *copy = mk_pool_alloc(ctx->pool, sizeof *copy);
        if (!copy) {
            mk_api_fail(ctx, MK_ENOMEM, NULL);
            return;
        }
        if (!svc || sh.len > DESK_SESSION_TOKEN_MAX ||
            !desk_session_find(svc, mk_pool_strndup(ctx->pool, sh.ptr, sh.len), copy)) {
            mk_api_fail_code(ctx, MK_EUNAUTHORIZED, "console_login_required", "the console session expired; log in");
            return;
        }
        ctx->principal_rec = copy;
        ctx->principal = copy->id;
        ctx->tenant = copy->tenant;
        dispatch(ctx);
        return;
    }
    mk_api_authenticate(ctx, MK_PERM_CHAT, dispatch);
}
