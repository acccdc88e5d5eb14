/*
 * desk_conv: conversations, messages and state changes of the support desk in the
 * store (see mk_desk_conv.h for the model). Every write is one transaction; every
 * state change is one conditional UPDATE plus its desk_transitions row.
 */
#include "desk/mk_desk_conv.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "core/mk_utf8.h"
#include "desk/desk_conv_int.h"

/* ---- schema ------------------------------------------------------------------------ */

#define CONV_TABLE                                                                                                     \
    "CREATE TABLE desk_conversations ("                                                                                \
    " id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL DEFAULT '',"                                    \
    " channel TEXT NOT NULL DEFAULT '', lang TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,"                          \
    " agent TEXT NOT NULL DEFAULT '', operator_id TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',"         \
    " draft TEXT, token_hash TEXT NOT NULL, meta TEXT,"                                                                \
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, escalated_at BIGINT, claimed_at BIGINT,"               \
    " resolved_at BIGINT, first_bot_reply_at BIGINT, first_operator_reply_at BIGINT,"                                 \
    " last_seq BIGINT NOT NULL DEFAULT 0, human_involved INTEGER NOT NULL DEFAULT 0,"                                 \
    " escalated INTEGER NOT NULL DEFAULT 0, bot_failures INTEGER NOT NULL DEFAULT 0, csat INTEGER, helped INTEGER, rating_comment TEXT, rated_at BIGINT);"    \
    "CREATE INDEX desk_conv_queue ON desk_conversations (tenant, state, escalated_at);"                               \
    "CREATE INDEX desk_conv_created ON desk_conversations (tenant, created_at);"                                      \
    "CREATE TABLE desk_messages ("                                                                                     \
    " id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL REFERENCES desk_conversations (id) ON DELETE CASCADE,"       \
    " seq BIGINT NOT NULL, role TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', agent TEXT NOT NULL DEFAULT '',"      \
    " client_id TEXT, text TEXT NOT NULL, citations TEXT, created_at BIGINT NOT NULL,"                                 \
    " UNIQUE (conversation_id, seq), UNIQUE (conversation_id, client_id));"

static const struct mk_store_migration migrations[] = {
    {1,
     CONV_TABLE "CREATE TABLE desk_transitions (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL,"
                " tenant TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL, actor TEXT NOT NULL,"
                " reason TEXT, at BIGINT NOT NULL);"
                "CREATE INDEX desk_transitions_conv ON desk_transitions (conversation_id, id);",
     CONV_TABLE "CREATE TABLE desk_transitions (id BIGSERIAL PRIMARY KEY, conversation_id TEXT NOT NULL,"
                " tenant TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL, actor TEXT NOT NULL,"
                " reason TEXT, at BIGINT NOT NULL);"
                "CREATE INDEX desk_transitions_conv ON desk_transitions (conversation_id, id);"},
};

int mk_desk_migrate(struct mk_store *s, mk_buf *err)
{
    return mk_store_migrate(s, "desk", migrations, sizeof migrations / sizeof migrations[0], err);
}

/* ---- small helpers ----------------------------------------------------------------------- */

static const char *const state_names[MK_DESK_STATE_COUNT] = {"bot", "waiting_operator", "operator", "resolved"};

const char *mk_desk_state_name(enum mk_desk_state s)
{
    return (unsigned)s < MK_DESK_STATE_COUNT ? state_names[s] : "";
}

int mk_desk_state_parse(const char *s)
{
    if (!s) return MK_EINVAL;
    for (int i = 0; i < MK_DESK_STATE_COUNT; i++)
        if (strcmp(s, state_names[i]) == 0) return i;
    return MK_EINVAL;
}

/* Names (ids of users, agents, channels...): printable UTF-8 without control bytes. */
bool desk_name_ok(const char *s, bool may_be_empty)
{
    if (!s) return may_be_empty;
    size_t n = strlen(s);
    if ((n == 0 && !may_be_empty) || n > MK_DESK_MAX_NAME || !mk_utf8_valid(s, n)) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

static void copy_field(char *dst, size_t cap, mk_slice v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    if (n) memcpy(dst, v.ptr, n);
    dst[n] = '\0';
}
#define COPY(dst, st, col) copy_field((dst), sizeof(dst), mk_store_column_text((st), (col)))

static int64_t col_i64_or0(struct mk_store_stmt *st, int col)
{
    return mk_store_column_is_null(st, col) ? 0 : mk_store_column_int64(st, col);
}

static void token_hash(const char *token, char hex[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

int desk_add_transition(struct mk_store_conn *c, const char *tenant, const char *id, const char *from,
                        const char *to, const char *actor, const char *reason, int64_t now)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c,
                              "INSERT INTO desk_transitions (conversation_id, tenant, from_state, to_state, actor,"
                              " reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, id);
    mk_store_bind_cstr(st, 2, tenant);
    mk_store_bind_cstr(st, 3, from);
    mk_store_bind_cstr(st, 4, to);
    mk_store_bind_cstr(st, 5, actor ? actor : "");
    mk_store_bind_cstr(st, 6, reason);
    mk_store_bind_int64(st, 7, now);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    return rc == MK_STORE_DONE ? 0 : rc;
}

/* ---- conversations ----------------------------------------------------------------------- */

#define CONV_COLS                                                                                                      \
    "id, tenant, user_id, channel, lang, state, agent, operator_id, reason, created_at, updated_at, escalated_at,"    \
    " claimed_at, resolved_at, first_bot_reply_at, first_operator_reply_at, last_seq, human_involved, escalated,"    \
    " csat, helped, bot_failures"

void desk_row_to_conv(struct mk_store_stmt *st, struct mk_desk_conv *cv)
{
    memset(cv, 0, sizeof *cv);
    COPY(cv->id, st, 0);
    COPY(cv->tenant, st, 1);
    COPY(cv->user, st, 2);
    COPY(cv->channel, st, 3);
    COPY(cv->lang, st, 4);
    char state[24];
    COPY(state, st, 5);
    int s = mk_desk_state_parse(state);
    cv->state = s < 0 ? MK_DESK_BOT : (enum mk_desk_state)s;
    COPY(cv->agent, st, 6);
    COPY(cv->operator_id, st, 7);
    COPY(cv->reason, st, 8);
    cv->created_at = col_i64_or0(st, 9);
    cv->updated_at = col_i64_or0(st, 10);
    cv->escalated_at = col_i64_or0(st, 11);
    cv->claimed_at = col_i64_or0(st, 12);
    cv->resolved_at = col_i64_or0(st, 13);
    cv->first_bot_reply_at = col_i64_or0(st, 14);
    cv->first_operator_reply_at = col_i64_or0(st, 15);
    cv->last_seq = col_i64_or0(st, 16);
    cv->human_involved = col_i64_or0(st, 17) != 0;
    cv->escalated = col_i64_or0(st, 18) != 0;
    cv->csat = (int)col_i64_or0(st, 19);
    cv->helped = mk_store_column_is_null(st, 20) ? -1 : (int)mk_store_column_int64(st, 20);
    cv->bot_failures = (int)col_i64_or0(st, 21);
}

int mk_desk_conv_get(struct mk_store_conn *c, const char *tenant, const char *id, struct mk_desk_conv *out)
{
    if (!c || !tenant || !id || !out) return MK_EINVAL;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT " CONV_COLS " FROM desk_conversations WHERE id = ? AND tenant = ?", &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, id);
    mk_store_bind_cstr(st, 2, tenant);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        desk_row_to_conv(st, out);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_ENOTFOUND;
    }
    mk_store_stmt_done(st);
    return rc;
}

static bool json_object_text_ok(const char *s, json_type want, size_t max)
{
    if (!s) return true;
    size_t n = strlen(s);
    if (n > max || !mk_utf8_valid(s, n)) return false;
    json_object *o = json_tokener_parse(s);
    bool ok = o && json_object_is_type(o, want);
    json_object_put(o);
    return ok;
}

int mk_desk_conv_create(struct mk_store_conn *c, const struct mk_desk_conv_new *in, struct mk_desk_conv *out,
                        char token_out[44])
{
    if (!c || !in || !out || !token_out || !desk_name_ok(in->tenant, false) || !desk_name_ok(in->user, true) ||
        !desk_name_ok(in->channel, true) || (in->lang && strlen(in->lang) > 7) || !desk_name_ok(in->lang, true) ||
        !json_object_text_ok(in->meta_json, json_type_object, MK_DESK_MAX_META_BYTES))
        return MK_EINVAL;
    char id[37];
    mk_uuid4(id);
    unsigned char raw[32];
    mk_rand_bytes(raw, sizeof raw);
    sodium_bin2base64(token_out, 44, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char hash[65];
    token_hash(token_out, hash);
    int64_t now = mk_wall_ms();
    int rc = mk_store_begin(c);
    if (rc) return rc;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c,
                          "INSERT INTO desk_conversations (id, tenant, user_id, channel, lang, state, token_hash,"
                          " meta, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'bot', ?, ?, ?, ?)",
                          &st);
    if (rc == 0) {
        mk_store_bind_cstr(st, 1, id);
        mk_store_bind_cstr(st, 2, in->tenant);
        mk_store_bind_cstr(st, 3, in->user ? in->user : "");
        mk_store_bind_cstr(st, 4, in->channel ? in->channel : "");
        mk_store_bind_cstr(st, 5, in->lang ? in->lang : "");
        mk_store_bind_cstr(st, 6, hash);
        mk_store_bind_cstr(st, 7, in->meta_json);
        mk_store_bind_int64(st, 8, now);
        mk_store_bind_int64(st, 9, now);
        rc = mk_store_step(st);
        mk_store_stmt_done(st);
        rc = rc == MK_STORE_DONE ? 0 : rc;
    }
    if (rc == 0) rc = desk_add_transition(c, in->tenant, id, "", "bot", "user", "created", now);
    if (rc == 0) rc = mk_store_commit(c);
    else mk_store_rollback(c);
    if (rc) return rc;
    return mk_desk_conv_get(c, in->tenant, id, out);
}

int mk_desk_conv_check_token(struct mk_store_conn *c, const char *tenant, const char *id, const char *token)
{
    if (!c || !tenant || !id || !token || strlen(token) != 43) return MK_EUNAUTHORIZED;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT token_hash FROM desk_conversations WHERE id = ? AND tenant = ?", &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, id);
    mk_store_bind_cstr(st, 2, tenant);
    rc = mk_store_step(st);
    char want[65] = "", got[65];
    if (rc == MK_STORE_ROW) COPY(want, st, 0);
    mk_store_stmt_done(st);
    if (rc < 0) return rc;
    token_hash(token, got);
    if (rc != MK_STORE_ROW || strlen(want) != 64 || sodium_memcmp(want, got, 64) != 0) return MK_EUNAUTHORIZED;
    return 0;
}

int mk_desk_conv_transition(struct mk_store_conn *c, const char *tenant, const char *id, unsigned from_mask,
                            enum mk_desk_state to, const char *actor, const char *reason, const char *draft,
                            const char *operator_id, struct mk_desk_conv *out)
{
    if (!c || !tenant || !id || (unsigned)to >= MK_DESK_STATE_COUNT || from_mask == 0 ||
        !desk_name_ok(reason, true) || !desk_name_ok(actor, true) ||
        (to == MK_DESK_OPERATOR && !desk_name_ok(operator_id, false)) ||
        (draft && (strlen(draft) > MK_DESK_MAX_TEXT_BYTES || !mk_utf8_valid(draft, strlen(draft)))))
        return MK_EINVAL;
    struct mk_desk_conv cur;
    int rc = mk_store_begin(c);
    if (rc) return rc;
    rc = mk_desk_conv_get(c, tenant, id, &cur);
    if (rc) goto fail;
    if (!(from_mask & MK_DESK_FROM(cur.state))) {
        mk_store_rollback(c);
        if (out) *out = cur;
        return MK_EEXISTS;
    }
    int64_t now = mk_wall_ms();
    const char *sql;
    switch (to) {
    case MK_DESK_WAITING:
        sql = "UPDATE desk_conversations SET state = 'waiting_operator', escalated_at = ?, reason = ?, draft = ?,"
              " escalated = 1, operator_id = '', updated_at = ? WHERE id = ? AND tenant = ? AND state = ?";
        break;
    case MK_DESK_OPERATOR:
        sql = "UPDATE desk_conversations SET state = 'operator', claimed_at = ?, operator_id = ?, human_involved = 1,"
              " updated_at = ? WHERE id = ? AND tenant = ? AND state = ?";
        break;
    case MK_DESK_BOT:
        sql = "UPDATE desk_conversations SET state = 'bot', operator_id = '', updated_at = ?"
              " WHERE id = ? AND tenant = ? AND state = ?";
        break;
    default:
        sql = "UPDATE desk_conversations SET state = 'resolved', resolved_at = ?, updated_at = ?"
              " WHERE id = ? AND tenant = ? AND state = ?";
        break;
    }
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c, sql, &st);
    if (rc) goto fail;
    int i = 1;
    switch (to) {
    case MK_DESK_WAITING:
        mk_store_bind_int64(st, i++, now);
        mk_store_bind_cstr(st, i++, reason ? reason : "");
        mk_store_bind_cstr(st, i++, draft);
        break;
    case MK_DESK_OPERATOR:
        mk_store_bind_int64(st, i++, now);
        mk_store_bind_cstr(st, i++, operator_id);
        break;
    case MK_DESK_RESOLVED:
        mk_store_bind_int64(st, i++, now);
        break;
    default:
        break;
    }
    mk_store_bind_int64(st, i++, now);
    mk_store_bind_cstr(st, i++, id);
    mk_store_bind_cstr(st, i++, tenant);
    mk_store_bind_cstr(st, i++, mk_desk_state_name(cur.state));
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) goto fail;
    if (mk_store_changes(c) != 1) { /* moved by someone else between our read and write */
        mk_store_rollback(c);
        if (out) mk_desk_conv_get(c, tenant, id, out);
        return MK_EEXISTS;
    }
    rc = desk_add_transition(c, tenant, id, mk_desk_state_name(cur.state), mk_desk_state_name(to), actor, reason, now);
    if (rc) goto fail;
    rc = mk_store_commit(c);
    if (rc) return rc;
    return out ? mk_desk_conv_get(c, tenant, id, out) : 0;
fail:
    mk_store_rollback(c);
    return rc < 0 ? rc : MK_EINTERNAL;
}

int mk_desk_conv_set_agent(struct mk_store_conn *c, const char *tenant, const char *id, const char *agent)
{
    if (!c || !tenant || !id || !desk_name_ok(agent, false)) return MK_EINVAL;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "UPDATE desk_conversations SET agent = ? WHERE id = ? AND tenant = ? AND agent = ''",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, agent);
    mk_store_bind_cstr(st, 2, id);
    mk_store_bind_cstr(st, 3, tenant);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    return rc == MK_STORE_DONE ? 0 : rc;
}

int mk_desk_queue_position(struct mk_store_conn *c, const char *tenant, const char *id, int *pos)
{
    if (!c || !tenant || !id || !pos) return MK_EINVAL;
    *pos = 0;
    struct mk_store_stmt *st;
    /* Ties on escalated_at (same millisecond) are broken by id so positions are
     * distinct and stable. */
    int rc = mk_store_prepare(c,
                              "SELECT COUNT(*) FROM desk_conversations q, desk_conversations me"
                              " WHERE me.id = ? AND me.tenant = ? AND me.state = 'waiting_operator'"
                              " AND q.tenant = me.tenant AND q.state = 'waiting_operator'"
                              " AND (q.escalated_at < me.escalated_at OR (q.escalated_at = me.escalated_at"
                              " AND q.id <= me.id))",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, id);
    mk_store_bind_cstr(st, 2, tenant);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) *pos = (int)mk_store_column_int64(st, 0);
    mk_store_stmt_done(st);
    return rc < 0 ? rc : 0;
}

/* ---- messages ------------------------------------------------------------------------------ */

void mk_desk_msg_release(struct mk_desk_msg *m)
{
    if (!m) return;
    free(m->text);
    free(m->citations);
    m->text = m->citations = NULL;
}

#define MSG_COLS "id, conversation_id, seq, role, author, agent, client_id, created_at, text, citations"

static int row_to_msg(struct mk_store_stmt *st, struct mk_desk_msg *m)
{
    memset(m, 0, sizeof *m);
    COPY(m->id, st, 0);
    COPY(m->conversation_id, st, 1);
    m->seq = mk_store_column_int64(st, 2);
    COPY(m->role, st, 3);
    COPY(m->author, st, 4);
    COPY(m->agent, st, 5);
    COPY(m->client_id, st, 6);
    m->created_at = mk_store_column_int64(st, 7);
    mk_slice t = mk_store_column_text(st, 8);
    m->text = strndup(t.ptr, t.len);
    if (!mk_store_column_is_null(st, 9)) {
        mk_slice ci = mk_store_column_text(st, 9);
        m->citations = strndup(ci.ptr, ci.len);
        if (!m->citations) {
            mk_desk_msg_release(m);
            return MK_ENOMEM;
        }
    }
    return m->text ? 0 : MK_ENOMEM;
}

static int find_by_client_id(struct mk_store_conn *c, const char *conv, const char *client_id, struct mk_desk_msg *out)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT " MSG_COLS " FROM desk_messages WHERE conversation_id = ? AND client_id = ?",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, conv);
    mk_store_bind_cstr(st, 2, client_id);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) rc = row_to_msg(st, out) == 0 ? 1 : MK_ENOMEM;
    mk_store_stmt_done(st);
    return rc; /* 1 found, 0 not, < 0 error */
}

static bool client_id_ok(const char *s)
{
    if (!s) return true;
    size_t n = strlen(s);
    if (n == 0 || n > MK_DESK_MAX_CLIENT_ID) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) return false;
    }
    return true;
}

int mk_desk_msg_add(struct mk_store_conn *c, const char *tenant, const char *conversation_id,
                    const struct mk_desk_msg_in *in, struct mk_desk_msg *out, bool *dup, bool *reopened)
{
    if (dup) *dup = false;
    if (reopened) *reopened = false;
    if (!c || !tenant || !conversation_id || !in || !out || !in->role || !in->text) return MK_EINVAL;
    memset(out, 0, sizeof *out);
    bool is_user = strcmp(in->role, "user") == 0, is_bot = strcmp(in->role, "bot") == 0,
         is_op = strcmp(in->role, "operator") == 0, is_sys = strcmp(in->role, "system") == 0;
    if (!(is_user || is_bot || is_op || is_sys)) return MK_EINVAL;
    if (in->text_len == 0 || in->text_len > MK_DESK_MAX_TEXT_BYTES || memchr(in->text, '\0', in->text_len) ||
        !mk_utf8_valid(in->text, in->text_len))
        return MK_EINVAL;
    if (!client_id_ok(in->client_id) || !desk_name_ok(in->author, true) || !desk_name_ok(in->agent, true) ||
        (is_op && !desk_name_ok(in->author, false)) ||
        !json_object_text_ok(in->citations_json, json_type_array, MK_DESK_MAX_TEXT_BYTES))
        return MK_EINVAL;

    int rc = mk_store_begin(c);
    if (rc) return rc;
    struct mk_desk_conv cv;
    rc = mk_desk_conv_get(c, tenant, conversation_id, &cv);
    if (rc) goto fail;
    if (in->client_id) {
        rc = find_by_client_id(c, conversation_id, in->client_id, out);
        if (rc < 0) goto fail;
        if (rc == 1) {
            mk_store_rollback(c);
            if (dup) *dup = true;
            return 0;
        }
    }
    int64_t now = mk_wall_ms();
    if (is_user && cv.state == MK_DESK_RESOLVED) { /* the user is back: the bot takes it again */
        struct mk_store_stmt *st;
        rc = mk_store_prepare(c,
                              "UPDATE desk_conversations SET state = 'bot', operator_id = '', updated_at = ?"
                              " WHERE id = ? AND tenant = ? AND state = 'resolved'",
                              &st);
        if (rc) goto fail;
        mk_store_bind_int64(st, 1, now);
        mk_store_bind_cstr(st, 2, conversation_id);
        mk_store_bind_cstr(st, 3, tenant);
        rc = mk_store_step(st);
        mk_store_stmt_done(st);
        if (rc != MK_STORE_DONE) goto fail;
        if (mk_store_changes(c) == 1) {
            rc = desk_add_transition(c, tenant, conversation_id, "resolved", "bot", "user", "reopened", now);
            if (rc) goto fail;
            if (reopened) *reopened = true;
        }
    }
    /* The sequence number, in the statement that also checks who may speak now. */
    const char *sql;
    if (is_bot)
        sql = in->failed ? "UPDATE desk_conversations SET last_seq = last_seq + 1, updated_at = ?,"
                           " first_bot_reply_at = COALESCE(first_bot_reply_at, ?), bot_failures = bot_failures + 1"
                           " WHERE id = ? AND tenant = ? AND state = 'bot' RETURNING last_seq"
                         : "UPDATE desk_conversations SET last_seq = last_seq + 1, updated_at = ?,"
                           " first_bot_reply_at = COALESCE(first_bot_reply_at, ?)"
                           " WHERE id = ? AND tenant = ? AND state = 'bot' RETURNING last_seq";
    else if (is_op)
        sql = "UPDATE desk_conversations SET last_seq = last_seq + 1, updated_at = ?,"
              " first_operator_reply_at = COALESCE(first_operator_reply_at, ?)"
              " WHERE id = ? AND tenant = ? AND state = 'operator' AND operator_id = ? RETURNING last_seq";
    else
        sql = "UPDATE desk_conversations SET last_seq = last_seq + 1, updated_at = ?"
              " WHERE id = ? AND tenant = ? RETURNING last_seq";
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c, sql, &st);
    if (rc) goto fail;
    int bi = 1;
    mk_store_bind_int64(st, bi++, now);
    if (is_bot || is_op) mk_store_bind_int64(st, bi++, now);
    mk_store_bind_cstr(st, bi++, conversation_id);
    mk_store_bind_cstr(st, bi++, tenant);
    if (is_op) mk_store_bind_cstr(st, bi++, in->author);
    rc = mk_store_step(st);
    int64_t seq = rc == MK_STORE_ROW ? mk_store_column_int64(st, 0) : 0;
    if (rc == MK_STORE_ROW) rc = mk_store_step(st); /* finish the statement */
    mk_store_stmt_done(st);
    if (rc < 0) goto fail;
    if (seq == 0) { /* the state says this role may not speak now */
        mk_store_rollback(c);
        return MK_EFORBIDDEN;
    }
    mk_uuid4(out->id);
    rc = mk_store_prepare(c,
                          "INSERT INTO desk_messages (id, conversation_id, seq, role, author, agent, client_id, text,"
                          " citations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          &st);
    if (rc) goto fail;
    mk_store_bind_cstr(st, 1, out->id);
    mk_store_bind_cstr(st, 2, conversation_id);
    mk_store_bind_int64(st, 3, seq);
    mk_store_bind_cstr(st, 4, in->role);
    mk_store_bind_cstr(st, 5, in->author ? in->author : "");
    mk_store_bind_cstr(st, 6, in->agent ? in->agent : "");
    mk_store_bind_cstr(st, 7, in->client_id);
    mk_store_bind_text(st, 8, in->text, in->text_len);
    mk_store_bind_cstr(st, 9, in->citations_json);
    mk_store_bind_int64(st, 10, now);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc == MK_EEXISTS && in->client_id) { /* the same resend raced us from another node */
        mk_store_rollback(c);
        rc = find_by_client_id(c, conversation_id, in->client_id, out);
        if (rc == 1) {
            if (dup) *dup = true;
            return 0;
        }
        return rc < 0 ? rc : MK_EBUSY;
    }
    if (rc != MK_STORE_DONE) goto fail;
    rc = mk_store_commit(c);
    if (rc) return rc;
    snprintf(out->conversation_id, sizeof out->conversation_id, "%s", conversation_id);
    out->seq = seq;
    snprintf(out->role, sizeof out->role, "%s", in->role);
    snprintf(out->author, sizeof out->author, "%s", in->author ? in->author : "");
    snprintf(out->agent, sizeof out->agent, "%s", in->agent ? in->agent : "");
    snprintf(out->client_id, sizeof out->client_id, "%s", in->client_id ? in->client_id : "");
    out->created_at = now;
    out->text = strndup(in->text, in->text_len);
    out->citations = in->citations_json ? strdup(in->citations_json) : NULL;
    if (!out->text || (in->citations_json && !out->citations)) {
        mk_desk_msg_release(out);
        return MK_ENOMEM;
    }
    return 0;
fail:
    mk_store_rollback(c);
    return rc < 0 ? rc : MK_EINTERNAL;
}

json_object *mk_desk_msg_json(const struct mk_desk_msg *m)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(m->id));
    json_object_object_add(o, "conversation_id", json_object_new_string(m->conversation_id));
    json_object_object_add(o, "seq", json_object_new_int64(m->seq));
    json_object_object_add(o, "role", json_object_new_string(m->role));
    json_object_object_add(o, "author", json_object_new_string(m->author));
    if (m->agent[0]) json_object_object_add(o, "agent", json_object_new_string(m->agent));
    if (m->client_id[0]) json_object_object_add(o, "client_id", json_object_new_string(m->client_id));
    json_object_object_add(o, "text", json_object_new_string(m->text ? m->text : ""));
    json_object *cit = m->citations ? json_tokener_parse(m->citations) : NULL;
    json_object_object_add(o, "citations", cit ? cit : json_object_new_array());
    json_object_object_add(o, "created_at", json_object_new_int64(m->created_at));
    return o;
}

int mk_desk_msg_list(struct mk_store_conn *c, const char *tenant, const char *conversation_id, int64_t after_seq,
                     int limit, json_object **out)
{
    if (!c || !tenant || !conversation_id || !out) return MK_EINVAL;
    *out = NULL;
    if (limit <= 0 || limit > MK_DESK_MAX_HISTORY) limit = MK_DESK_MAX_HISTORY;
    struct mk_desk_conv cv;
    int rc = mk_desk_conv_get(c, tenant, conversation_id, &cv);
    if (rc) return rc;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c,
                          "SELECT " MSG_COLS " FROM desk_messages WHERE conversation_id = ? AND seq > ?"
                          " ORDER BY seq LIMIT ?",
                          &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, conversation_id);
    mk_store_bind_int64(st, 2, after_seq);
    mk_store_bind_int64(st, 3, limit);
    json_object *arr = json_object_new_array();
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        struct mk_desk_msg m;
        if (row_to_msg(st, &m) != 0) {
            rc = MK_ENOMEM;
            break;
        }
        json_object_array_add(arr, mk_desk_msg_json(&m));
        mk_desk_msg_release(&m);
    }
    mk_store_stmt_done(st);
    if (rc < 0) {
        json_object_put(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* ---- JSON of a conversation ------------------------------------------------------------------ */

static void add_time(json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, v ? json_object_new_int64(v) : NULL);
}

json_object *mk_desk_conv_json(const struct mk_desk_conv *cv)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(cv->id));
    json_object_object_add(o, "state", json_object_new_string(mk_desk_state_name(cv->state)));
    json_object_object_add(o, "user", json_object_new_string(cv->user));
    json_object_object_add(o, "channel", json_object_new_string(cv->channel));
    json_object_object_add(o, "lang", json_object_new_string(cv->lang));
    json_object_object_add(o, "agent", cv->agent[0] ? json_object_new_string(cv->agent) : NULL);
    json_object_object_add(o, "operator", cv->operator_id[0] ? json_object_new_string(cv->operator_id) : NULL);
    json_object_object_add(o, "escalation_reason", cv->reason[0] ? json_object_new_string(cv->reason) : NULL);
    add_time(o, "created_at", cv->created_at);
    add_time(o, "updated_at", cv->updated_at);
    add_time(o, "escalated_at", cv->escalated_at);
    add_time(o, "claimed_at", cv->claimed_at);
    add_time(o, "resolved_at", cv->resolved_at);
    json_object_object_add(o, "last_seq", json_object_new_int64(cv->last_seq));
    json_object_object_add(o, "human_involved", json_object_new_boolean(cv->human_involved));
    json_object *rating = NULL;
    if (cv->csat) {
        rating = json_object_new_object();
        json_object_object_add(rating, "csat", json_object_new_int(cv->csat));
        json_object_object_add(rating, "helped", cv->helped < 0 ? NULL : json_object_new_boolean(cv->helped == 1));
    }
    json_object_object_add(o, "rating", rating);
    return o;
}

/* ---- listings ------------------------------------------------------------------------------------ */

int mk_desk_queue(struct mk_store_conn *c, const char *tenant, int limit, json_object **out)
{
    if (!c || !tenant || !out) return MK_EINVAL;
    *out = NULL;
    if (limit <= 0 || limit > MK_DESK_MAX_LIST) limit = MK_DESK_MAX_LIST;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c,
                              "SELECT " CONV_COLS ", draft, (SELECT m.text FROM desk_messages m"
                              " WHERE m.conversation_id = desk_conversations.id AND m.role = 'user'"
                              " ORDER BY m.seq DESC LIMIT 1) FROM desk_conversations"
                              " WHERE tenant = ? AND state = 'waiting_operator' ORDER BY escalated_at, id LIMIT ?",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, tenant);
    mk_store_bind_int64(st, 2, limit);
    json_object *arr = json_object_new_array();
    int pos = 0;
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        struct mk_desk_conv cv;
        desk_row_to_conv(st, &cv);
        json_object *o = mk_desk_conv_json(&cv);
        json_object_object_add(o, "position", json_object_new_int(++pos));
        json_object_object_add(o, "reason", json_object_new_string(cv.reason));
        mk_slice d = mk_store_column_text(st, 22), u = mk_store_column_text(st, 23);
        json_object_object_add(o, "draft",
                               mk_store_column_is_null(st, 22) ? NULL : json_object_new_string_len(d.ptr, (int)d.len));
        json_object_object_add(o, "last_user_message", mk_store_column_is_null(st, 23)
                                                           ? NULL
                                                           : json_object_new_string_len(u.ptr, (int)u.len));
        json_object_array_add(arr, o);
    }
    mk_store_stmt_done(st);
    if (rc < 0) {
        json_object_put(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int mk_desk_conv_list(struct mk_store_conn *c, const char *tenant, int state, const char *operator_id, int limit,
                      int offset, json_object **out)
{
    if (!c || !tenant || !out || state >= MK_DESK_STATE_COUNT || offset < 0) return MK_EINVAL;
    *out = NULL;
    if (limit <= 0 || limit > MK_DESK_MAX_LIST) limit = MK_DESK_MAX_LIST;
    mk_buf sql = MK_BUF_INIT;
    mk_buf_append_str(&sql, "SELECT " CONV_COLS " FROM desk_conversations WHERE tenant = ?");
    if (state >= 0) mk_buf_append_str(&sql, " AND state = ?");
    if (operator_id) mk_buf_append_str(&sql, " AND operator_id = ?");
    mk_buf_append_str(&sql, " ORDER BY updated_at DESC, id LIMIT ? OFFSET ?");
    if (!sql.data) return MK_ENOMEM;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql.data, &st);
    mk_buf_release(&sql);
    if (rc) return rc;
    int i = 1;
    mk_store_bind_cstr(st, i++, tenant);
    if (state >= 0) mk_store_bind_cstr(st, i++, mk_desk_state_name((enum mk_desk_state)state));
    if (operator_id) mk_store_bind_cstr(st, i++, operator_id);
    mk_store_bind_int64(st, i++, limit);
    mk_store_bind_int64(st, i++, offset);
    json_object *arr = json_object_new_array();
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        struct mk_desk_conv cv;
        desk_row_to_conv(st, &cv);
        json_object_array_add(arr, mk_desk_conv_json(&cv));
    }
    mk_store_stmt_done(st);
    if (rc < 0) {
        json_object_put(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int mk_desk_transitions(struct mk_store_conn *c, const char *tenant, const char *id, json_object **out)
{
    if (!c || !tenant || !id || !out) return MK_EINVAL;
    *out = NULL;
    struct mk_desk_conv cv;
    int rc = mk_desk_conv_get(c, tenant, id, &cv);
    if (rc) return rc;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c,
                          "SELECT from_state, to_state, actor, reason, at FROM desk_transitions"
                          " WHERE conversation_id = ? AND tenant = ? ORDER BY id",
                          &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, id);
    mk_store_bind_cstr(st, 2, tenant);
    json_object *arr = json_object_new_array();
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        json_object *o = json_object_new_object();
        mk_slice f = mk_store_column_text(st, 0), t = mk_store_column_text(st, 1), a = mk_store_column_text(st, 2),
                 r = mk_store_column_text(st, 3);
        json_object_object_add(o, "from", f.len ? json_object_new_string_len(f.ptr, (int)f.len) : NULL);
        json_object_object_add(o, "to", json_object_new_string_len(t.ptr, (int)t.len));
        json_object_object_add(o, "actor", json_object_new_string_len(a.ptr, (int)a.len));
        json_object_object_add(o, "reason", mk_store_column_is_null(st, 3)
                                                ? NULL
                                                : json_object_new_string_len(r.ptr, (int)r.len));
        json_object_object_add(o, "at", json_object_new_int64(mk_store_column_int64(st, 4)));
        json_object_array_add(arr, o);
    }
    mk_store_stmt_done(st);
    if (rc < 0) {
        json_object_put(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* ---- ratings -------------------------------------------------------------------------------------- */

int mk_desk_rate(struct mk_store_conn *c, const char *tenant, const char *id, int csat, int helped,
                 const char *comment, struct mk_desk_conv *out)
{
    if (!c || !tenant || !id || csat < 1 || csat > 5 || helped < -1 || helped > 1 ||
        (comment && (strlen(comment) > MK_DESK_MAX_TEXT_BYTES || !mk_utf8_valid(comment, strlen(comment)))))
        return MK_EINVAL;
    struct mk_desk_conv cv;
    int rc = mk_desk_conv_get(c, tenant, id, &cv);
    if (rc) return rc;
    if (cv.state != MK_DESK_RESOLVED) return MK_EINVAL;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c,
                          "UPDATE desk_conversations SET csat = ?, helped = ?, rating_comment = ?, rated_at = ?"
                          " WHERE id = ? AND tenant = ? AND state = 'resolved'",
                          &st);
    if (rc) return rc;
    mk_store_bind_int64(st, 1, csat);
    if (helped < 0) mk_store_bind_null(st, 2);
    else mk_store_bind_int64(st, 2, helped);
    mk_store_bind_cstr(st, 3, comment);
    mk_store_bind_int64(st, 4, mk_wall_ms());
    mk_store_bind_cstr(st, 5, id);
    mk_store_bind_cstr(st, 6, tenant);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) return rc < 0 ? rc : MK_EINTERNAL;
    if (mk_store_changes(c) != 1) return MK_EINVAL; /* reopened meanwhile */
    return out ? mk_desk_conv_get(c, tenant, id, out) : 0;
}
