/*
 * desk_int: the support desk's serving side, shared by desk_service.c (the process's
 * desk: store, agents, bus, TOTP, console sessions, the live hub), desk_turns.c (one
 * user or operator action: store work on the pool, then the broadcast), desk_api.c
 * (REST under /api/v1/desk/...) and desk_ws.c (/ws/chat and /ws/operator).
 * Not a public API.
 *
 * Threads: everything here runs on the serving loop except the `work` functions of
 * desk jobs, which run on libuv's pool with a store connection and touch only their
 * job and the thread-safe mk_desk.
 */
#ifndef MK_DESK_INT_H
#define MK_DESK_INT_H

#include <json-c/json.h>
#include <stdbool.h>

#include "auth/mk_auth.h"
#include "desk/mk_desk.h"
#include "desk/mk_desk_conv.h"
#include "mk_api.h"
#include "net/mk_ws.h"

struct mk_bus;
struct mk_totp;
struct desk_client;

/* How long a console login lasts. A working day: operators log in once per shift. */
#define DESK_SESSION_TTL_MS (12ll * 3600 * 1000)
/* Console sessions one node keeps (oldest expire first beyond it). */
#define DESK_MAX_SESSIONS 4096
/* Recent turns handed to the desk as the conversation's context. */
#define DESK_CONTEXT_TURNS 12

/* A console session token that was logged out (desk_session.c): its MAC, kept until
 * the token would have expired. */
struct desk_session {
    unsigned char mac[32];          /* crypto_auth_BYTES */
    int64_t expires_ms;
    struct desk_session *next;
};
/* Longest session token accepted (they are about 400 bytes). */
#define DESK_SESSION_TOKEN_MAX 2048

struct desk_svc {
    mk_app *app;
    uv_loop_t *loop;
    struct mk_store *store;         /* our own pool on the process's database */
    mk_desk *desk;                  /* agents, triage, answers (thread-safe) */
    struct mk_bus *bus;             /* events; NULL when it could not be opened */
    struct mk_totp *totp;           /* console second factor */
    uv_prepare_t watch;             /* notices app->stopping */
    uv_timer_t tick;                /* analytics gauges, session expiry */
    int handles_open;
    int inflight;                   /* store jobs not yet finished */
    bool closing, analytics_running;
    bool use_llm;                   /* a provider other than "local" is configured */
    struct desk_client *clients;    /* live WebSocket clients (chat and operator) */
    struct mk_bus_sub *relay_sub;   /* other nodes' live updates (desk_relay.c); NULL on inproc */
    char origin[25];                /* this process's random id in the updates it relays */
    struct desk_session *sessions;  /* revoked console sessions */
    size_t nsessions;
    unsigned char session_key[32];  /* MAC key of console session tokens (desk_session.c) */
};

/* The process's desk, opened on first use; NULL (and a reason in why) when it cannot
 * be opened. */
struct desk_svc *desk_service(mk_ctx *ctx, mk_buf *why);

/* ---- jobs: store work on the pool, then a continuation on the loop ---------------- */

struct desk_job;
typedef int (*desk_work_fn)(struct desk_job *j, struct mk_store_conn *c);
typedef void (*desk_done_fn)(struct desk_job *j, int rc);

enum desk_action {
    DESK_A_USER_MESSAGE,     /* text from the end user; the bot may answer */
    DESK_A_OPERATOR_MESSAGE, /* text from the owning operator */
    DESK_A_ESCALATE,         /* the user (or an operator/API) asks for a person */
    DESK_A_CLAIM,
    DESK_A_HANDBACK,
    DESK_A_RESOLVE,
    DESK_A_RATE,
};

struct desk_job {
    struct desk_svc *svc;
    desk_work_fn work;
    desk_done_fn done;
    void *owner;                    /* the REST ctx or the ws client that asked */
    /* input */
    enum desk_action action;
    char tenant[MK_AUTH_MAX_TENANT];
    char conv[37];
    char actor[MK_DESK_MAX_NAME + 1];   /* "user", "operator:<id>", "api:<id>" */
    char operator_id[MK_DESK_MAX_NAME + 1];
    char client_id[MK_DESK_MAX_CLIENT_ID + 1];
    char reason[MK_DESK_MAX_NAME + 1];
    char *text;                     /* owned */
    size_t text_len;
    int csat, helped;
    char token[44];                 /* REST: the end user's conversation token to check first */
    bool check_token;
    int64_t after_seq;              /* listings */
    int state_filter, limit, offset;
    /* the bot's turn with an LLM: the context read on the pool, the answer on the loop */
    bool needs_llm;
    struct mk_desk_turn turns[DESK_CONTEXT_TURNS];
    struct mk_desk_context dctx;
    json_object *history;           /* owns the turns' strings */
    struct desk_bot_out *bot_out;   /* the loop's answer, stored by a second pool job */
    desk_done_fn final_done;
    /* output */
    int rc;
    struct mk_desk_conv before, after;
    bool have_after, state_changed, dup, reopened;
    struct mk_desk_msg msg;         /* the stored message of the action, if any */
    bool have_msg;
    struct mk_desk_msg bot;         /* the bot's reply, if it answered */
    bool have_bot;
    const char *bot_agent;          /* static / desk-owned */
    const char *escalation_reason;  /* static, when the bot escalated */
    int queue_position;
    json_object *result;            /* extra JSON for the owner (listings) */
};

struct desk_job *desk_job_new(struct desk_svc *svc, enum desk_action a, const char *tenant, const char *conv);
void desk_job_free(struct desk_job *j);
/* Runs j->work on the pool then j->done on the loop. 0, or an error (done not called). */
int desk_job_submit(struct desk_job *j);
/* The work of every action (desk_turns.c). */
int desk_action_work(struct desk_job *j, struct mk_store_conn *c);
/* Call first in an action's done: when the bot must answer with the LLM (the pool
 * job only stored the user's message and read the context), runs the answer on the
 * loop (mk_api_desk_answer) and a second pool job that stores it, then calls done
 * again; returns true when it took the job over that way. */
bool desk_action_continue(struct desk_job *j, int rc);
/* Frees what desk_action_continue kept for the LLM turn (desk_job_free calls it). */
void desk_bot_out_free(struct desk_bot_out *o);
/* After an action: publish bus events, update metrics, tell the live clients. */
void desk_action_broadcast(struct desk_job *j);

/* ---- the live hub (desk_ws.c) ------------------------------------------------------ */

/* Sends `obj` (not consumed) to every chat client watching the conversation, except
 * `skip` (may be NULL). */
void desk_hub_to_conversation(struct desk_svc *svc, const char *tenant, const char *conv, json_object *obj,
                              struct desk_client *skip);
/* Sends `obj` (not consumed) to every operator console of the tenant. */
void desk_hub_to_operators(struct desk_svc *svc, const char *tenant, json_object *obj);
/* Recomputes the tenant's queue and sends it to its operators, and their new places
 * to the waiting users. */
void desk_hub_refresh_queue(struct desk_svc *svc, const char *tenant);
/* Closes every client (the service is stopping). */
void desk_hub_close_all(struct desk_svc *svc);
size_t desk_hub_operator_count(const struct desk_svc *svc);

/* ---- live updates for every node (desk_relay.c) ------------------------------------- */

/* Each sends `ev` (not consumed) to this node's matching clients, like desk_hub_*, and
 * relays it through the bus to the other nodes' clients (amqp bus only). */
void desk_live_to_conversation(struct desk_svc *svc, const char *tenant, const char *conv, json_object *ev);
void desk_live_to_operators(struct desk_svc *svc, const char *tenant, json_object *ev);
void desk_live_to_both(struct desk_svc *svc, const char *tenant, const char *conv, json_object *ev);
void desk_live_refresh_queue(struct desk_svc *svc, const char *tenant);
/* Tells the other nodes that a console session was logged out. */
void desk_live_session_end(struct desk_svc *svc, const unsigned char mac[32], int64_t expires_ms);
/* Subscribes to the other nodes' updates when the bus crosses processes. 0 or the
 * bus's error. desk_relay_stop (before the bus is freed) ends it; accepts never-started. */
int desk_relay_start(struct desk_svc *svc);
void desk_relay_stop(struct desk_svc *svc);

/* ---- console sessions (desk_service.c) ------------------------------------------------ */

/* Derives the token key from <data_dir>/auth.secret. 0 or mk_auth_secret_load's error. */
int desk_session_init(struct desk_svc *svc, const char *data_dir, mk_buf *err);
/* A new session token for a verified principal, valid on every node sharing the
 * server secret, into token_out (reset first). 0 or MK_ENOMEM. */
int desk_session_new(struct desk_svc *svc, const struct mk_principal *who, mk_buf *token_out);
/* True, with *out the principal, when token is a live session of ours (signed,
 * unexpired, not logged out). */
bool desk_session_find(struct desk_svc *svc, const char *token, struct mk_principal *out);
/* Logs a session out on this node and, through the relay, on the others. */
void desk_session_end(struct desk_svc *svc, const char *token);
/* Adds a MAC to the deny list (from a logout here or on another node). */
void desk_session_revoke_mac(struct desk_svc *svc, const unsigned char mac[32], int64_t expires_ms);
/* Drops deny-list entries past their expiry; frees the whole list. */
void desk_sessions_expire(struct desk_svc *svc);
void desk_sessions_free(struct desk_svc *svc);

/* ---- helpers ------------------------------------------------------------------------- */

/* The value of a query parameter (percent-decoded into the request pool), or NULL. */
const char *desk_query(mk_ctx *ctx, const char *name);
/* JSON body helpers for the WebSocket and REST sides. */
const char *desk_jstr(json_object *o, const char *key);
/* "unauthorized", "notfound", "exists"...: an error's name for JSON (buf is returned). */
const char *desk_code_name(int err, char buf[48]);
/* A JSON error object {"type":"error","code":...,"message":...}. */
json_object *desk_error_json(int err, const char *message);

#endif
