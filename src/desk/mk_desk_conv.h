/*
 * mk_desk_conv: the support desk's conversations, messages, states, escalation queue,
 * ratings and analytics, kept in the store (migrations module "desk"; SQLite and
 * PostgreSQL).
 *
 * A conversation is in one of four states:
 *
 *     bot --escalate--> waiting_operator --claim--> operator --resolve--> resolved
 *      ^  <------------------ handback ------------------'                  |
 *      '------------------------- a new user message reopens --------------'
 *
 * (resolve is allowed from every open state; handback also from waiting_operator.)
 * Every change is one conditional UPDATE (WHERE state = the expected one) plus a row
 * in desk_transitions saying who changed what, when and why, in one transaction, so
 * two operators claiming at once or a bot answering while an operator claims are
 * decided by the database, on one node or many: exactly one wins.
 *
 * The bot never speaks in a conversation it does not own: mk_desk_msg_add with role
 * "bot" succeeds only while the state is `bot` (checked in the same statement that
 * allocates the message's sequence number). Messages carry a per-conversation
 * sequence number (1, 2, ...) that clients use to resume after a reconnect, and an
 * optional client id unique within the conversation: sending the same client id
 * again returns the stored message instead of a second copy (dedupe for resends).
 *
 * All functions are BLOCKING (store): call them on a worker (mk_store_submit) or from
 * tools. They act within one tenant and never see another's rows. Times are Unix ms.
 * JSON results are json-c objects owned by the caller (json_object_put).
 */
#ifndef MK_DESK_CONV_H
#define MK_DESK_CONV_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "store/mk_store.h"

/* Limits (candidates for core/mk_limits.h). */
/* One chat message: long pasted logs are fine, a novel is not. */
#define MK_DESK_MAX_TEXT_BYTES (32 * 1024)
/* Client-chosen message ids: a UUID or similar. */
#define MK_DESK_MAX_CLIENT_ID 64
/* Ids of users, operators, agents, channels and reasons. */
#define MK_DESK_MAX_NAME 128
/* The escalation queue and listings return at most this many rows per call. */
#define MK_DESK_MAX_LIST 500
/* History a client can fetch in one call. */
#define MK_DESK_MAX_HISTORY 1000
/* Free-form metadata a channel attaches (JSON object text). */
#define MK_DESK_MAX_META_BYTES 4096

enum mk_desk_state {
    MK_DESK_BOT = 0,
    MK_DESK_WAITING,   /* "waiting_operator" */
    MK_DESK_OPERATOR,
    MK_DESK_RESOLVED,
    MK_DESK_STATE_COUNT
};

/* "bot", "waiting_operator", "operator", "resolved" (static); "" when out of range. */
const char *mk_desk_state_name(enum mk_desk_state s);
/* The state for a name, or MK_EINVAL. */
int mk_desk_state_parse(const char *s);

/* Escalation reasons are short names: the desk's own come from mk_desk_reason_name()
 * (mk_desk.h: "user_request", "frustration", "low_confidence", "out_of_kb", ...);
 * channels and operators may give others. */

/* A conversation's row, as plain values. */
struct mk_desk_conv {
    char id[37];
    char tenant[MK_DESK_MAX_NAME + 1];
    char user[MK_DESK_MAX_NAME + 1];        /* end user (channel-specific id), may be "" */
    char channel[MK_DESK_MAX_NAME + 1];     /* "web", "api", "telegram"... */
    char lang[8];                           /* "ru", "en", "kk" or "" */
    enum mk_desk_state state;
    char agent[MK_DESK_MAX_NAME + 1];       /* the agent triage chose first ("" until then) */
    char operator_id[MK_DESK_MAX_NAME + 1]; /* owner while state is operator ("" otherwise) */
    char reason[MK_DESK_MAX_NAME + 1];      /* last escalation reason */
    int64_t created_at, updated_at, escalated_at, claimed_at, resolved_at;
    int64_t first_bot_reply_at, first_operator_reply_at;
    int64_t last_seq;                       /* sequence number of the newest message */
    bool human_involved;                    /* an operator ever claimed it */
    bool escalated;                         /* it was ever escalated */
    int csat;                               /* 1..5, 0 = not rated */
    int helped;                             /* 1 yes, 0 no, -1 not said */
    int bot_failures;                       /* bot replies marked failed (mk_desk_msg_in.failed) */
};

/* A message as stored. */
struct mk_desk_msg {
    char id[37];
    char conversation_id[37];
    int64_t seq;
    char role[16];                          /* "user", "bot", "operator", "system" */
    char author[MK_DESK_MAX_NAME + 1];
    char agent[MK_DESK_MAX_NAME + 1];
    char client_id[MK_DESK_MAX_CLIENT_ID + 1];
    int64_t created_at;
    char *text;                             /* owned (free() / mk_desk_msg_release) */
    char *citations;                        /* JSON array text, owned; NULL = none */
};
void mk_desk_msg_release(struct mk_desk_msg *m);

/* Runs the "desk" migrations. 0 or the store's error (text in err). */
int mk_desk_migrate(struct mk_store *s, mk_buf *err);

/* ---- conversations -------------------------------------------------------------- */

struct mk_desk_conv_new {
    const char *tenant;                     /* required */
    const char *user, *channel, *lang;      /* may be NULL */
    const char *meta_json;                  /* JSON object text or NULL */
};
/* Creates a conversation in state `bot` with a fresh id and an access token for the
 * end user (token_out: 43 URL-safe base64 chars + NUL, shown once; only its hash is
 * stored). 0, MK_EINVAL (bad names/meta), store errors. */
int mk_desk_conv_create(struct mk_store_conn *c, const struct mk_desk_conv_new *in, struct mk_desk_conv *out,
                        char token_out[44]);
/* 0, MK_ENOTFOUND (no such conversation in this tenant), store errors. */
int mk_desk_conv_get(struct mk_store_conn *c, const char *tenant, const char *id, struct mk_desk_conv *out);
/* Checks an end user's token in constant time. 0 or MK_EUNAUTHORIZED (also when the
 * conversation does not exist, so ids cannot be probed). */
int mk_desk_conv_check_token(struct mk_store_conn *c, const char *tenant, const char *id, const char *token);

/* A state change. `from_mask` is a bit set of states (1u << state) it may start from.
 * actor: who ("user", "bot", "operator:<id>", "api:<principal>"); reason may be NULL.
 * Side effects by target state:
 *   waiting_operator: escalated_at = now, reason, draft (the bot's proposed answer,
 *                     may be NULL), escalated = 1
 *   operator:         operator_id = operator, claimed_at = now, human_involved = 1
 *   bot:              operator_id cleared
 *   resolved:         resolved_at = now, operator_id kept for the record
 * 0 and *out (may be NULL) the new row; MK_ENOTFOUND; MK_EEXISTS when the state is not
 * in from_mask (someone else moved it first; *out then holds the current row);
 * MK_EINVAL; store errors. */
int mk_desk_conv_transition(struct mk_store_conn *c, const char *tenant, const char *id, unsigned from_mask,
                            enum mk_desk_state to, const char *actor, const char *reason, const char *draft,
                            const char *operator_id, struct mk_desk_conv *out);
#define MK_DESK_FROM(s) (1u << (s))
#define MK_DESK_FROM_OPEN (MK_DESK_FROM(MK_DESK_BOT) | MK_DESK_FROM(MK_DESK_WAITING) | MK_DESK_FROM(MK_DESK_OPERATOR))

/* Records the agent triage chose, if none is recorded yet. */
int mk_desk_conv_set_agent(struct mk_store_conn *c, const char *tenant, const char *id, const char *agent);

/* 1-based place of a waiting conversation in its tenant's queue (oldest escalation
 * first); 0 when it is not waiting. */
int mk_desk_queue_position(struct mk_store_conn *c, const char *tenant, const char *id, int *pos);

/* ---- messages ---------------------------------------------------------------------- */

struct mk_desk_msg_in {
    const char *role;                       /* "user", "bot", "operator", "system" */
    const char *author;                     /* may be NULL */
    const char *agent;                      /* bot messages: the agent; may be NULL */
    const char *client_id;                  /* may be NULL: no dedupe */
    const char *text;                       /* UTF-8, 1..MK_DESK_MAX_TEXT_BYTES */
    size_t text_len;
    const char *citations_json;             /* JSON array text or NULL */
    bool failed;                            /* a bot reply that could not help: counted in bot_failures */
    /* Who may speak now: a bot message needs state bot; an operator message needs
     * state operator and operator_id == author. User and system messages are
     * accepted in every state; a user message reopens a resolved conversation. */
};
/* Appends a message. *dup is set when client_id was seen before in this conversation:
 * *out is then the stored message and nothing changes. *reopened is set when a user
 * message moved a resolved conversation back to bot. 0, MK_ENOTFOUND, MK_EFORBIDDEN
 * (the role may not speak in the current state: the bot while a human owns the
 * conversation, an operator who does not own it), MK_EINVAL (empty/too long/invalid
 * UTF-8 text, bad role, bad citations), store errors. out is released by the caller. */
int mk_desk_msg_add(struct mk_store_conn *c, const char *tenant, const char *conversation_id,
                    const struct mk_desk_msg_in *in, struct mk_desk_msg *out, bool *dup, bool *reopened);
/* Messages with seq > after_seq, oldest first, at most limit (<= MK_DESK_MAX_HISTORY)
 * as a JSON array of message objects. */
int mk_desk_msg_list(struct mk_store_conn *c, const char *tenant, const char *conversation_id, int64_t after_seq,
                     int limit, json_object **out);

/* ---- queue, listings, history -------------------------------------------------------- */

/* The tenant's waiting conversations, oldest escalation first: a JSON array of
 * conversation objects each with "position", "reason", "draft" and "last_user_message". */
int mk_desk_queue(struct mk_store_conn *c, const char *tenant, int limit, json_object **out);
/* Conversations of the tenant, newest first, optionally only in one state (state < 0 =
 * all) and/or owned by one operator (NULL = any). */
int mk_desk_conv_list(struct mk_store_conn *c, const char *tenant, int state, const char *operator_id, int limit,
                      int offset, json_object **out);
/* The transitions of a conversation, oldest first (JSON array). */
int mk_desk_transitions(struct mk_store_conn *c, const char *tenant, const char *id, json_object **out);

/* ---- ratings and analytics --------------------------------------------------------------- */

/* Records (or replaces) the end user's rating of a resolved conversation: csat 1..5,
 * helped 1/0 (-1 = not said), comment may be NULL. MK_EINVAL (range, or the
 * conversation is not resolved), MK_ENOTFOUND. */
int mk_desk_rate(struct mk_store_conn *c, const char *tenant, const char *id, int csat, int helped,
                 const char *comment, struct mk_desk_conv *out);

/* Analytics of conversations created at or after since_ms (0 = all time), for one
 * tenant (NULL = every tenant: admin views). JSON:
 *   {"overall": {...}, "agents": {"network": {...}, ...}, "reasons": {"user_request": n, ...},
 *    "queue_length": n, "since_ms": ...}
 * where each {...} holds conversations, escalated, resolved, resolved_without_human,
 * automation_rate (resolved without a human / resolved), escalation_rate (escalated /
 * conversations), first_response_bot_s and first_response_operator_s (averages, null
 * when none), csat_avg (null when none), csat_count, helped_yes, helped_no. */
int mk_desk_analytics(struct mk_store_conn *c, const char *tenant, int64_t since_ms, json_object **out);

/* JSON form of a conversation row (what the API returns). */
json_object *mk_desk_conv_json(const struct mk_desk_conv *cv);
/* JSON form of a message. */
json_object *mk_desk_msg_json(const struct mk_desk_msg *m);

#endif
