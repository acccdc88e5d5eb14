/*
 * desk_ws: the support desk's WebSockets and the live hub behind them.
 *
 *   /ws/chat      an end user's chat (widget, chat page). Authenticated like any API
 *                 call (chat permission: anonymous on loopback, else a key — browsers
 *                 pass it as ?access_token=, which becomes the Authorization header).
 *                 The first message is "hello": with a conversation id and its token
 *                 it resumes (and replays what the client missed after last_seq),
 *                 without one it starts a conversation.
 *   /ws/operator  the operator console, after a console login (?session=, see
 *                 desk_api.c: API key + TOTP). Receives the tenant's queue and every
 *                 message and state change of the tenant's conversations live.
 *
 * Messages are JSON objects with a "type"; docs/API.md ("Desk WebSockets") lists
 * them. Clients number their messages (client_id) and resend after a reconnect; the
 * store answers a resend with the stored message (dedupe), so nothing is lost or
 * doubled. A client too slow to read what we send (mk_ws_send_text says MK_EBUSY) is
 * closed with 1008 and catches up by resuming.
 *
 * A client object lives while its socket is open or a job of its own is running
 * (refs); whichever ends last frees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mk_roles.h"
#include "bus/mk_bus.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "desk_int.h"
#include "metrics/mk_metrics.h"

void mk_api_upgraded(mk_ctx *ctx); /* routes.c */

struct desk_client {
    struct desk_client *prev, *next;
    struct desk_svc *svc;
    mk_ws *ws;                          /* NULL once closed */
    bool is_operator;
    bool bound;                         /* chat: hello done, conv/token known */
    bool hello_running;
    char tenant[MK_AUTH_MAX_TENANT];
    char principal[MK_AUTH_MAX_ID];     /* the authenticated caller */
    struct mk_principal who;            /* operators */
    char conv[37];
    int refs;
};

/* ---- lifetime ------------------------------------------------------------------------- */

static void client_unref(struct desk_client *cl)
{
    if (--cl->refs > 0) return;
    free(cl);
}

static void unlink_client(struct desk_client *cl)
{
    struct desk_svc *svc = cl->svc;
    if (cl->prev) cl->prev->next = cl->next;
    else if (svc->clients == cl) svc->clients = cl->next;
    if (cl->next) cl->next->prev = cl->prev;
    cl->prev = cl->next = NULL;
}

static void on_ws_close(mk_ws *ws, int code, void *arg)
{
    struct desk_client *cl = arg;
    cl->ws = NULL;
    unlink_client(cl);
    if (cl->is_operator) mk_metric_set(MK_METRIC_DESK_OPERATORS_ONLINE, NULL, (double)desk_hub_operator_count(cl->svc));
    client_unref(cl); /* the socket's reference */
}

static void send_obj(struct desk_client *cl, json_object *obj)
{
    if (!cl->ws) return;
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    int rc = mk_ws_send_text(cl->ws, s, len);
    if (rc == MK_EBUSY) mk_ws_close(cl->ws, 1008, "too slow: reconnect and resume");
}

static void send_error(struct desk_client *cl, int err, const char *message, const char *conv)
{
    json_object *e = desk_error_json(err, message);
    if (conv) json_object_object_add(e, "conversation_id", json_object_new_string(conv));
    send_obj(cl, e);
    json_object_put(e);
}

/* Application-level keepalive for clients that want one (browsers cannot see
 * WebSocket pings). */
static void send_pong(struct desk_client *cl)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_string("pong"));
    send_obj(cl, p);
    json_object_put(p);
}

/* ---- the hub ---------------------------------------------------------------------------- */

void desk_hub_to_conversation(struct desk_svc *svc, const char *tenant, const char *conv, json_object *obj,
                              struct desk_client *skip)
{
    for (struct desk_client *cl = svc->clients; cl; cl = cl->next)
        if (!cl->is_operator && cl->bound && cl != skip && strcmp(cl->conv, conv) == 0 &&
            strcmp(cl->tenant, tenant) == 0)
            send_obj(cl, obj);
}

void desk_hub_to_operators(struct desk_svc *svc, const char *tenant, json_object *obj)
{
    for (struct desk_client *cl = svc->clients; cl; cl = cl->next)
        if (cl->is_operator && strcmp(cl->tenant, tenant) == 0) send_obj(cl, obj);
}

size_t desk_hub_operator_count(const struct desk_svc *svc)
{
    size_t n = 0;
    for (const struct desk_client *cl = svc->clients; cl; cl = cl->next) n += cl->is_operator;
    return n;
}

void desk_hub_close_all(struct desk_svc *svc)
{
    for (struct desk_client *cl = svc->clients; cl; cl = cl->next)
        if (cl->ws) mk_ws_close(cl->ws, 1001, "server shutting down");
}

static int queue_work(struct desk_job *j, struct mk_store_conn *c) { return mk_desk_queue(c, j->tenant, 0, &j->result); }

static void queue_done(struct desk_job *j, int rc)
{
    if (rc == 0 && j->result) {
        struct desk_svc *svc = j->svc;
        json_object *ev = json_object_new_object();
        json_object_object_add(ev, "type", json_object_new_string("queue"));
        json_object_object_add(ev, "items", json_object_get(j->result));
        desk_hub_to_operators(svc, j->tenant, ev);
        json_object_put(ev);
        mk_metric_set(MK_METRIC_DESK_QUEUE_LENGTH, NULL, (double)json_object_array_length(j->result));
        /* Everyone waiting hears their new place in the queue. */
        for (size_t i = 0; i < json_object_array_length(j->result); i++) {
            json_object *it = json_object_array_get_idx(j->result, i);
            const char *id = desk_jstr(it, "id");
            if (!id) continue;
            json_object *p = json_object_new_object();
            json_object_object_add(p, "type", json_object_new_string("queue_position"));
            json_object_object_add(p, "conversation_id", json_object_new_string(id));
            json_object_object_add(p, "position", json_object_get(json_object_object_get(it, "position")));
            desk_hub_to_conversation(svc, j->tenant, id, p, NULL);
            json_object_put(p);
        }
    }
    desk_job_free(j);
}

void desk_hub_refresh_queue(struct desk_svc *svc, const char *tenant)
{
    struct desk_job *j = desk_job_new(svc, DESK_A_CLAIM, tenant, NULL);
    if (!j) return;
    j->work = queue_work;
    j->done = queue_done;
    if (desk_job_submit(j) != 0) desk_job_free(j);
}

/* ---- actions from clients ------------------------------------------------------------------ */

static void action_done(struct desk_job *j, int rc)
{
    if (desk_action_continue(j, rc)) return; /* the bot answers with the LLM first */
    struct desk_client *cl = j->owner;
    if (rc == 0) desk_action_broadcast(j);
    if (cl->ws) {
        json_object *ack = json_object_new_object();
        json_object_object_add(ack, "type", json_object_new_string(rc == 0 ? "ack" : "error"));
        static const char *const names[] = {"message", "message", "escalate", "claim", "handback", "resolve", "rate"};
        json_object_object_add(ack, "op", json_object_new_string(names[j->action]));
        json_object_object_add(ack, "conversation_id", json_object_new_string(j->conv));
        if (j->client_id[0]) json_object_object_add(ack, "client_id", json_object_new_string(j->client_id));
        if (rc == 0) {
            if (j->have_msg) json_object_object_add(ack, "message", mk_desk_msg_json(&j->msg));
            json_object_object_add(ack, "duplicate", json_object_new_boolean(j->dup));
            if (j->have_after) json_object_object_add(ack, "conversation", mk_desk_conv_json(&j->after));
        } else {
            const char *msg = rc == MK_EEXISTS    ? "the conversation changed hands first"
                              : rc == MK_EFORBIDDEN ? "not allowed in the conversation's current state"
                                                    : mk_strerror(rc);
            char code[48];
            json_object_object_add(ack, "code", json_object_new_string(desk_code_name(rc, code)));
            json_object_object_add(ack, "message", json_object_new_string(msg));
            if (rc == MK_EEXISTS && j->have_after)
                json_object_object_add(ack, "conversation", mk_desk_conv_json(&j->after));
        }
        send_obj(cl, ack);
        json_object_put(ack);
    }
    client_unref(cl);
    desk_job_free(j);
}

static void start_action(struct desk_client *cl, enum desk_action a, const char *conv, json_object *msg)
{
    struct desk_job *j = desk_job_new(cl->svc, a, cl->tenant, conv);
    if (!j) {
        send_error(cl, MK_ENOMEM, NULL, conv);
        return;
    }
    j->work = desk_action_work;
    j->done = action_done;
    j->owner = cl;
    if (cl->is_operator) {
        snprintf(j->operator_id, sizeof j->operator_id, "%s", cl->who.id);
        snprintf(j->actor, sizeof j->actor, "operator:%.100s", cl->who.id);
    } else {
        snprintf(j->actor, sizeof j->actor, "user");
    }
    const char *cid = desk_jstr(msg, "client_id");
    const char *text = desk_jstr(msg, "text");
    const char *reason = desk_jstr(msg, "reason");
    if (cid) snprintf(j->client_id, sizeof j->client_id, "%s", cid);
    if (reason) snprintf(j->reason, sizeof j->reason, "%s", reason);
    if (cid && strlen(cid) > MK_DESK_MAX_CLIENT_ID) {
        send_error(cl, MK_EINVAL, "client_id is too long", conv);
        desk_job_free(j);
        return;
    }
    if (a == DESK_A_USER_MESSAGE || a == DESK_A_OPERATOR_MESSAGE) {
        if (!text || !*text) {
            send_error(cl, MK_EINVAL, "a message needs a non-empty \"text\"", conv);
            desk_job_free(j);
            return;
        }
        j->text_len = strlen(text);
        j->text = strdup(text);
    }
    if (a == DESK_A_RATE) {
        json_object *cs = json_object_object_get(msg, "csat"), *h = json_object_object_get(msg, "helped");
        j->csat = cs && json_object_is_type(cs, json_type_int) ? json_object_get_int(cs) : 0;
        j->helped = h && json_object_is_type(h, json_type_boolean) ? json_object_get_boolean(h) : -1;
        const char *comment = desk_jstr(msg, "comment");
        if (comment && *comment) {
            j->text = strdup(comment);
            j->text_len = strlen(comment);
        }
    }
    if (desk_job_submit(j) != 0) {
        send_error(cl, MK_EUNAVAILABLE, NULL, conv);
        desk_job_free(j);
        return;
    }
    cl->refs++;
}

/* ---- /ws/chat --------------------------------------------------------------------------------- */

struct hello {
    char token[44];
    int64_t last_seq;
    bool created;
    char lang[8], user[MK_DESK_MAX_NAME + 1];
    struct mk_desk_conv conv;
    json_object *missed;
    int position;
};

static int hello_work(struct desk_job *j, struct mk_store_conn *c)
{
    struct hello *h = (struct hello *)j->text;
    int rc;
    if (!j->conv[0]) {
        struct mk_desk_conv_new in = {.tenant = j->tenant, .channel = "web", .lang = h->lang[0] ? h->lang : NULL,
                                      .user = h->user[0] ? h->user : NULL};
        rc = mk_desk_conv_create(c, &in, &h->conv, h->token);
        if (rc) return rc;
        h->created = true;
        snprintf(j->conv, sizeof j->conv, "%s", h->conv.id);
        return 0;
    }
    rc = mk_desk_conv_check_token(c, j->tenant, j->conv, h->token);
    if (rc) return rc;
    rc = mk_desk_conv_get(c, j->tenant, j->conv, &h->conv);
    if (rc == 0) rc = mk_desk_msg_list(c, j->tenant, j->conv, h->last_seq, 0, &h->missed);
    if (rc == 0 && h->conv.state == MK_DESK_WAITING) rc = mk_desk_queue_position(c, j->tenant, j->conv, &h->position);
    return rc;
}

static void hello_done(struct desk_job *j, int rc)
{
    struct desk_client *cl = j->owner;
    struct hello *h = (struct hello *)j->text;
    cl->hello_running = false;
    if (cl->ws) {
        if (rc) {
            send_error(cl, rc, rc == MK_EUNAUTHORIZED ? "unknown conversation or wrong token" : NULL, NULL);
        } else {
            cl->bound = true;
            snprintf(cl->conv, sizeof cl->conv, "%s", j->conv);
            json_object *w = json_object_new_object();
            json_object_object_add(w, "type", json_object_new_string("welcome"));
            json_object_object_add(w, "conversation", mk_desk_conv_json(&h->conv));
            if (h->created) json_object_object_add(w, "token", json_object_new_string(h->token));
            json_object_object_add(w, "queue_position",
                                   h->conv.state == MK_DESK_WAITING ? json_object_new_int(h->position) : NULL);
            json_object_object_add(w, "messages", h->missed ? json_object_get(h->missed) : json_object_new_array());
            send_obj(cl, w);
            json_object_put(w);
        }
    }
    if (rc == 0 && h->created) {
        const char *ch[] = {"web"};
        mk_metric_inc(MK_METRIC_DESK_CONVERSATIONS, ch);
        if (j->svc->bus) {
            char payload[160];
            int n = snprintf(payload, sizeof payload, "{\"conversation_id\":\"%s\",\"channel\":\"web\"}", j->conv);
            mk_bus_publish(j->svc->bus, MK_BUS_CONVERSATION_CREATED, j->tenant, payload, (size_t)n, NULL, NULL, NULL);
        }
    }
    json_object_put(h->missed);
    free(h);
    j->text = NULL;
    client_unref(cl);
    desk_job_free(j);
}

static void chat_hello(struct desk_client *cl, json_object *msg)
{
    if (cl->bound || cl->hello_running) {
        send_error(cl, MK_EINVAL, "hello was already said", NULL);
        return;
    }
    const char *conv = desk_jstr(msg, "conversation_id"), *token = desk_jstr(msg, "token");
    const char *lang = desk_jstr(msg, "lang"), *user = desk_jstr(msg, "user");
    if (conv && (strlen(conv) != 36 || !token || strlen(token) != 43)) {
        send_error(cl, MK_EUNAUTHORIZED, "unknown conversation or wrong token", NULL);
        return;
    }
    struct desk_job *j = desk_job_new(cl->svc, DESK_A_USER_MESSAGE, cl->tenant, conv);
    struct hello *h = calloc(1, sizeof *h);
    if (!j || !h) {
        free(h);
        desk_job_free(j);
        send_error(cl, MK_ENOMEM, NULL, NULL);
        return;
    }
    if (token) snprintf(h->token, sizeof h->token, "%s", token);
    if (lang && strlen(lang) < sizeof h->lang) snprintf(h->lang, sizeof h->lang, "%s", lang);
    if (user && strlen(user) <= MK_DESK_MAX_NAME) snprintf(h->user, sizeof h->user, "%s", user);
    json_object *ls = json_object_object_get(msg, "last_seq");
    h->last_seq = ls && json_object_is_type(ls, json_type_int) ? json_object_get_int64(ls) : 0;
    if (h->last_seq < 0) h->last_seq = 0;
    j->text = (char *)h; /* freed by hello_done */
    j->work = hello_work;
    j->done = hello_done;
    j->owner = cl;
    if (desk_job_submit(j) != 0) {
        free(h);
        j->text = NULL;
        desk_job_free(j);
        send_error(cl, MK_EUNAVAILABLE, NULL, NULL);
        return;
    }
    cl->hello_running = true;
    cl->refs++;
}

static json_object *parse_client_message(struct desk_client *cl, const char *data, size_t len, const char **type)
{
    json_object *msg = NULL;
    char why[160];
    if (mk_api_parse_json((mk_slice){data, len}, &msg, why, sizeof why) != 0 ||
        !json_object_is_type(msg, json_type_object) || !(*type = desk_jstr(msg, "type"))) {
        json_object_put(msg);
        send_error(cl, MK_EBADJSON, "each message is a JSON object with a \"type\"", NULL);
        return NULL;
    }
    return msg;
}

static void chat_on_text(mk_ws *ws, const char *data, size_t len, void *arg)
{
    struct desk_client *cl = arg;
    const char *type = NULL;
    json_object *msg = parse_client_message(cl, data, len, &type);
    if (!msg) return;
    if (strcmp(type, "hello") == 0) {
        chat_hello(cl, msg);
    } else if (strcmp(type, "ping") == 0) {
        send_pong(cl);
    } else if (!cl->bound) {
        send_error(cl, MK_EINVAL, "say hello first", NULL);
    } else if (strcmp(type, "message") == 0) {
        start_action(cl, DESK_A_USER_MESSAGE, cl->conv, msg);
    } else if (strcmp(type, "escalate") == 0) {
        start_action(cl, DESK_A_ESCALATE, cl->conv, msg);
    } else if (strcmp(type, "resolve") == 0) {
        start_action(cl, DESK_A_RESOLVE, cl->conv, msg);
    } else if (strcmp(type, "rate") == 0) {
        start_action(cl, DESK_A_RATE, cl->conv, msg);
    } else {
        send_error(cl, MK_EINVAL, "unknown message type", NULL);
    }
    json_object_put(msg);
}

/* ---- /ws/operator ------------------------------------------------------------------------------ */

static int history_work(struct desk_job *j, struct mk_store_conn *c)
{
    int rc = mk_desk_conv_get(c, j->tenant, j->conv, &j->after);
    if (rc == 0) rc = mk_desk_msg_list(c, j->tenant, j->conv, 0, 0, &j->result);
    return rc;
}

static void history_done(struct desk_job *j, int rc)
{
    struct desk_client *cl = j->owner;
    if (rc) {
        send_error(cl, rc, NULL, j->conv);
    } else {
        json_object *h = json_object_new_object();
        json_object_object_add(h, "type", json_object_new_string("history"));
        json_object_object_add(h, "conversation_id", json_object_new_string(j->conv));
        json_object_object_add(h, "conversation", mk_desk_conv_json(&j->after));
        json_object_object_add(h, "messages", json_object_get(j->result));
        send_obj(cl, h);
        json_object_put(h);
    }
    client_unref(cl);
    desk_job_free(j);
}

static int mine_work(struct desk_job *j, struct mk_store_conn *c)
{
    int rc = mk_desk_queue(c, j->tenant, 0, &j->result);
    json_object *mine = NULL;
    if (rc == 0) rc = mk_desk_conv_list(c, j->tenant, MK_DESK_OPERATOR, j->operator_id, 0, 0, &mine);
    if (rc == 0) {
        json_object *both = json_object_new_object();
        json_object_object_add(both, "queue", j->result);
        json_object_object_add(both, "mine", mine);
        j->result = both;
    }
    return rc;
}

static void mine_done(struct desk_job *j, int rc)
{
    struct desk_client *cl = j->owner;
    if (rc) {
        send_error(cl, rc, NULL, NULL);
    } else {
        json_object *q = json_object_new_object();
        json_object_object_add(q, "type", json_object_new_string("queue"));
        json_object_object_add(q, "items", json_object_get(json_object_object_get(j->result, "queue")));
        send_obj(cl, q);
        json_object_put(q);
        json_object *m = json_object_new_object();
        json_object_object_add(m, "type", json_object_new_string("mine"));
        json_object_object_add(m, "items", json_object_get(json_object_object_get(j->result, "mine")));
        send_obj(cl, m);
        json_object_put(m);
    }
    client_unref(cl);
    desk_job_free(j);
}

static void operator_query(struct desk_client *cl, const char *conv, desk_work_fn work, desk_done_fn done)
{
    struct desk_job *j = desk_job_new(cl->svc, DESK_A_CLAIM, cl->tenant, conv);
    if (!j) return;
    snprintf(j->operator_id, sizeof j->operator_id, "%s", cl->who.id);
    j->work = work;
    j->done = done;
    j->owner = cl;
    if (desk_job_submit(j) != 0) {
        desk_job_free(j);
        send_error(cl, MK_EUNAVAILABLE, NULL, conv);
        return;
    }
    cl->refs++;
}

static void operator_on_text(mk_ws *ws, const char *data, size_t len, void *arg)
{
    struct desk_client *cl = arg;
    const char *type = NULL;
    json_object *msg = parse_client_message(cl, data, len, &type);
    if (!msg) return;
    const char *conv = desk_jstr(msg, "conversation_id");
    bool needs_conv = strcmp(type, "queue") != 0 && strcmp(type, "ping") != 0;
    if (needs_conv && (!conv || strlen(conv) != 36)) {
        send_error(cl, MK_EINVAL, "\"conversation_id\" is required", NULL);
    } else if (strcmp(type, "ping") == 0) {
        send_pong(cl);
    } else if (strcmp(type, "queue") == 0) {
        operator_query(cl, NULL, mine_work, mine_done);
    } else if (strcmp(type, "open") == 0) {
        operator_query(cl, conv, history_work, history_done);
    } else if (strcmp(type, "claim") == 0) {
        start_action(cl, DESK_A_CLAIM, conv, msg);
    } else if (strcmp(type, "reply") == 0) {
        start_action(cl, DESK_A_OPERATOR_MESSAGE, conv, msg);
    } else if (strcmp(type, "handback") == 0) {
        start_action(cl, DESK_A_HANDBACK, conv, msg);
    } else if (strcmp(type, "resolve") == 0) {
        start_action(cl, DESK_A_RESOLVE, conv, msg);
    } else {
        send_error(cl, MK_EINVAL, "unknown message type", conv);
    }
    json_object_put(msg);
}

/* ---- accepting ------------------------------------------------------------------------------------ */

static void accept_client(mk_ctx *ctx, struct desk_svc *svc, struct desk_client *cl,
                          void (*on_text)(mk_ws *, const char *, size_t, void *))
{
    mk_http_req *req = ctx->req;
    cl->svc = svc;
    snprintf(cl->tenant, sizeof cl->tenant, "%s", ctx->tenant ? ctx->tenant : "default");
    snprintf(cl->principal, sizeof cl->principal, "%s", ctx->principal ? ctx->principal : "");
    const struct mk_ws_handlers h = {.on_text = on_text, .on_close = on_ws_close};
    /* The request is logged and counted as 101 now: accepting frees its pool (and ctx). */
    mk_api_upgraded(ctx);
    mk_ws *ws = NULL;
    int rc = mk_ws_accept(req, NULL, &h, cl, &ws);
    if (rc) {
        free(cl);
        mk_http_respond(req, rc == MK_ECANCELLED ? 499 : 500, NULL, 0, NULL, 0);
        return;
    }
    cl->ws = ws;
    cl->refs = 1;
    cl->next = svc->clients;
    if (svc->clients) svc->clients->prev = cl;
    svc->clients = cl;
    if (cl->is_operator) {
        mk_metric_set(MK_METRIC_DESK_OPERATORS_ONLINE, NULL, (double)desk_hub_operator_count(svc));
        json_object *w = json_object_new_object();
        json_object_object_add(w, "type", json_object_new_string("welcome"));
        json_object *op = json_object_new_object();
        json_object_object_add(op, "id", json_object_new_string(cl->who.id));
        json_object_object_add(op, "role", json_object_new_string(mk_role_name(cl->who.role)));
        json_object_object_add(op, "tenant", json_object_new_string(cl->tenant));
        json_object_object_add(w, "operator", op);
        send_obj(cl, w);
        json_object_put(w);
        operator_query(cl, NULL, mine_work, mine_done);
    }
}

static bool ws_precheck(mk_ctx *ctx)
{
    const char *why = NULL;
    if (mk_ws_check_request(ctx->req, &why) != 0) {
        if (why && strstr(why, "Version")) mk_ctx_add_header(ctx, "Sec-WebSocket-Version", "13");
        mk_api_fail_code(ctx, MK_EINVAL, "websocket_required", why);
        return false;
    }
    return true;
}

static void ws_chat_authenticated(mk_ctx *ctx)
{
    if (!ws_precheck(ctx)) return;
    mk_buf why = MK_BUF_INIT;
    struct desk_svc *svc = desk_service(ctx, &why);
    if (!svc) {
        mk_api_fail(ctx, MK_EUNAVAILABLE, why.data ? why.data : "the desk is unavailable");
        mk_buf_release(&why);
        return;
    }
    mk_buf_release(&why);
    struct desk_client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    accept_client(ctx, svc, cl, chat_on_text);
}

/* Browsers cannot set headers on a WebSocket: a key may come as ?access_token=. */
static void token_to_header(mk_ctx *ctx)
{
    mk_http_req *req = ctx->req;
    const char *tok = desk_query(ctx, "access_token");
    if (!tok || !*tok || mk_http_req_header(req, "authorization").ptr) return;
    mk_http_header *h = mk_pool_alloc(ctx->pool, (req->nheaders + 1) * sizeof *h);
    size_t vl = strlen(tok) + 7;
    char *v = mk_pool_alloc(ctx->pool, vl + 1);
    if (!h || !v) return;
    snprintf(v, vl + 1, "Bearer %s", tok);
    if (req->nheaders) memcpy(h, req->headers, req->nheaders * sizeof *h);
    h[req->nheaders] = (mk_http_header){MK_SLICE_LIT("authorization"), {v, vl}};
    req->headers = h;
    req->nheaders++;
}

void mk_api_ws_chat(mk_ctx *ctx)
{
    token_to_header(ctx);
    mk_api_authenticate(ctx, MK_PERM_CHAT, ws_chat_authenticated);
}

void mk_api_ws_operator(mk_ctx *ctx)
{
    if (!ws_precheck(ctx)) return;
    mk_buf why = MK_BUF_INIT;
    struct desk_svc *svc = desk_service(ctx, &why);
    if (!svc) {
        mk_api_fail(ctx, MK_EUNAVAILABLE, why.data ? why.data : "the desk is unavailable");
        mk_buf_release(&why);
        return;
    }
    mk_buf_release(&why);
    struct mk_principal who_buf;
    const struct mk_principal *who = &who_buf;
    if (!desk_session_find(svc, desk_query(ctx, "session"), &who_buf)) {
        mk_api_fail_code(ctx, MK_EUNAUTHORIZED, "console_login_required",
                         "log in to the console first (POST /api/v1/desk/login)");
        return;
    }
    if (!mk_principal_can(who, MK_PERM_DESK_OPERATE)) {
        mk_api_fail_code(ctx, MK_EFORBIDDEN, "permission_denied", "desk.operate is needed");
        return;
    }
    struct desk_client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    cl->is_operator = true;
    cl->who = *who;
    ctx->tenant = cl->who.tenant;
    ctx->principal = cl->who.id;
    accept_client(ctx, svc, cl, operator_on_text);
}
