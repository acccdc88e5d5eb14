/*
 * conv_cases: the desk conversation test cases, written once and run against each
 * store backend (test_conv.c: SQLite, test_conv_postgres.c: a real PostgreSQL).
 */
#ifndef MK_TEST_CONV_CASES_H
#define MK_TEST_CONV_CASES_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "desk/mk_desk_conv.h"
#include "store/mk_store.h"

struct cfx {
    struct mk_store *store;
    struct mk_store_conn *c;
};

static void cfx_open(struct cfx *f, const char *url)
{
    memset(f, 0, sizeof *f);
    mk_buf err = MK_BUF_INIT;
    int rc = mk_store_open(url, NULL, &f->store, &err);
    cr_assert_eq(rc, 0, "store: %s %s", mk_strerror(rc), err.data ? err.data : "");
    rc = mk_desk_migrate(f->store, &err);
    cr_assert_eq(rc, 0, "migrate: %s %s", mk_strerror(rc), err.data ? err.data : "");
    rc = mk_desk_migrate(f->store, &err); /* idempotent */
    cr_assert_eq(rc, 0);
    mk_buf_release(&err);
    cr_assert_eq(mk_store_acquire(f->store, &f->c), 0);
}

static void cfx_close(struct cfx *f)
{
    mk_store_release(f->store, f->c);
    mk_store_free(f->store);
}

static struct mk_desk_conv new_conv(struct cfx *f, const char *tenant, char token[44])
{
    struct mk_desk_conv cv;
    char tok[44];
    struct mk_desk_conv_new in = {.tenant = tenant, .user = "u1", .channel = "web", .lang = "ru"};
    int rc = mk_desk_conv_create(f->c, &in, &cv, token ? token : tok);
    cr_assert_eq(rc, 0, "create: %s", mk_strerror(rc));
    return cv;
}

static int say(struct cfx *f, const char *tenant, const char *id, const char *role, const char *author,
               const char *client_id, const char *text, struct mk_desk_msg *out, bool *dup)
{
    struct mk_desk_msg m;
    struct mk_desk_msg_in in = {.role = role, .author = author, .client_id = client_id, .text = text,
                                .text_len = strlen(text), .agent = strcmp(role, "bot") == 0 ? "network" : NULL};
    bool d = false, re = false;
    int rc = mk_desk_msg_add(f->c, tenant, id, &in, out ? out : &m, dup ? dup : &d, &re);
    if (rc == 0 && !out) mk_desk_msg_release(&m);
    return rc;
}

static void case_lifecycle(const char *url)
{
    struct cfx f;
    cfx_open(&f, url);
    char token[44];
    struct mk_desk_conv cv = new_conv(&f, "acme", token);
    cr_assert_eq(cv.state, MK_DESK_BOT);
    cr_assert_eq(strlen(token), 43);
    cr_assert_eq(mk_desk_conv_check_token(f.c, "acme", cv.id, token), 0);
    cr_assert_eq(mk_desk_conv_check_token(f.c, "other", cv.id, token), MK_EUNAUTHORIZED);
    token[0] = token[0] == 'A' ? 'B' : 'A';
    cr_assert_eq(mk_desk_conv_check_token(f.c, "acme", cv.id, token), MK_EUNAUTHORIZED);

    struct mk_desk_msg m;
    cr_assert_eq(say(&f, "acme", cv.id, "user", "u1", "c1", "Не работает Wi-Fi", &m, NULL), 0);
    cr_assert_eq(m.seq, 1);
    mk_desk_msg_release(&m);
    cr_assert_eq(mk_desk_conv_set_agent(f.c, "acme", cv.id, "network"), 0);
    cr_assert_eq(mk_desk_conv_set_agent(f.c, "acme", cv.id, "billing"), 0); /* first one stays */
    cr_assert_eq(say(&f, "acme", cv.id, "bot", NULL, NULL, "Перезагрузите роутер", &m, NULL), 0);
    cr_assert_eq(m.seq, 2);
    mk_desk_msg_release(&m);

    struct mk_desk_conv now;
    cr_assert_eq(mk_desk_conv_transition(f.c, "acme", cv.id, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING, "user",
                                         "user_request", "draft answer", NULL, &now),
                 0);
    cr_assert_eq(now.state, MK_DESK_WAITING);
    cr_assert_str_eq(now.agent, "network");
    cr_assert_str_eq(now.reason, "user_request");
    int pos = -1;
    cr_assert_eq(mk_desk_queue_position(f.c, "acme", cv.id, &pos), 0);
    cr_assert_eq(pos, 1);
    /* the bot is silent from now on */
    cr_assert_eq(say(&f, "acme", cv.id, "bot", NULL, NULL, "late bot", NULL, NULL), MK_EFORBIDDEN);
    /* the user may still write while waiting */
    cr_assert_eq(say(&f, "acme", cv.id, "user", "u1", NULL, "жду", NULL, NULL), 0);

    json_object *q = NULL;
    cr_assert_eq(mk_desk_queue(f.c, "acme", 0, &q), 0);
    cr_assert_eq(json_object_array_length(q), 1);
    json_object *item = json_object_array_get_idx(q, 0);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(item, "draft")), "draft answer");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(item, "last_user_message")), "жду");
    cr_assert_eq(json_object_get_int(json_object_object_get(item, "position")), 1);
    json_object_put(q);

    /* an operator who does not own it cannot speak; claiming twice: one wins */
    cr_assert_eq(say(&f, "acme", cv.id, "operator", "op1", NULL, "hi", NULL, NULL), MK_EFORBIDDEN);
    cr_assert_eq(mk_desk_conv_transition(f.c, "acme", cv.id, MK_DESK_FROM(MK_DESK_WAITING), MK_DESK_OPERATOR,
                                         "operator:op1", NULL, NULL, "op1", &now),
                 0);
    cr_assert_str_eq(now.operator_id, "op1");
    cr_assert_eq(mk_desk_conv_transition(f.c, "acme", cv.id, MK_DESK_FROM(MK_DESK_WAITING), MK_DESK_OPERATOR,
                                         "operator:op2", NULL, NULL, "op2", &now),
                 MK_EEXISTS);
    cr_assert_str_eq(now.operator_id, "op1", "the loser sees who won");
    cr_assert_eq(mk_desk_queue_position(f.c, "acme", cv.id, &pos), 0);
    cr_assert_eq(pos, 0);
    cr_assert_eq(say(&f, "acme", cv.id, "operator", "op2", NULL, "me too", NULL, NULL), MK_EFORBIDDEN);
    cr_assert_eq(say(&f, "acme", cv.id, "operator", "op1", "o1", "Здравствуйте, я помогу", NULL, NULL), 0);
    cr_assert_eq(say(&f, "acme", cv.id, "bot", NULL, NULL, "bot again", NULL, NULL), MK_EFORBIDDEN);

    /* hand back: the bot may speak again */
    cr_assert_eq(mk_desk_conv_transition(f.c, "acme", cv.id, MK_DESK_FROM(MK_DESK_OPERATOR), MK_DESK_BOT,
                                         "operator:op1", "handback", NULL, NULL, &now),
                 0);
    cr_assert_str_eq(now.operator_id, "");
    cr_assert_eq(say(&f, "acme", cv.id, "bot", NULL, NULL, "bot back", NULL, NULL), 0);
    /* rating before resolution is refused */
    cr_assert_eq(mk_desk_rate(f.c, "acme", cv.id, 5, 1, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_desk_conv_transition(f.c, "acme", cv.id, MK_DESK_FROM_OPEN, MK_DESK_RESOLVED, "user", NULL, NULL,
                                         NULL, &now),
                 0);
    cr_assert_eq(mk_desk_rate(f.c, "acme", cv.id, 6, 1, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_desk_rate(f.c, "acme", cv.id, 4, 1, "спасибо", &now), 0);
    cr_assert_eq(now.csat, 4);
    cr_assert_eq(now.helped, 1);

    json_object *tr = NULL;
    cr_assert_eq(mk_desk_transitions(f.c, "acme", cv.id, &tr), 0);
    const char *want[][2] = {{"", "bot"}, {"bot", "waiting_operator"}, {"waiting_operator", "operator"},
                             {"operator", "bot"}, {"bot", "resolved"}};
    cr_assert_eq(json_object_array_length(tr), 5);
    for (size_t i = 0; i < 5; i++) {
        json_object *t = json_object_array_get_idx(tr, i);
        const char *from = json_object_get_string(json_object_object_get(t, "from"));
        cr_assert_str_eq(from ? from : "", want[i][0]);
        cr_assert_str_eq(json_object_get_string(json_object_object_get(t, "to")), want[i][1]);
        cr_assert_gt(json_object_get_int64(json_object_object_get(t, "at")), 0);
    }
    cr_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(tr, 2), "actor")),
                     "operator:op1");
    json_object_put(tr);

    json_object *msgs = NULL;
    cr_assert_eq(mk_desk_msg_list(f.c, "acme", cv.id, 2, 0, &msgs), 0);
    cr_assert_eq(json_object_array_length(msgs), 3, "after seq 2: user, operator, bot");
    cr_assert_eq(json_object_get_int64(json_object_object_get(json_object_array_get_idx(msgs, 0), "seq")), 3);
    json_object_put(msgs);
    cr_assert_eq(mk_desk_msg_list(f.c, "other", cv.id, 0, 0, &msgs), MK_ENOTFOUND, "tenants never mix");
    cfx_close(&f);
}

static void case_dedupe_and_reopen(const char *url)
{
    struct cfx f;
    cfx_open(&f, url);
    struct mk_desk_conv cv = new_conv(&f, "t", NULL);
    struct mk_desk_msg a, b;
    bool dup = true;
    cr_assert_eq(say(&f, "t", cv.id, "user", "u", "same-id", "hello", &a, &dup), 0);
    cr_assert(!dup);
    cr_assert_eq(say(&f, "t", cv.id, "user", "u", "same-id", "hello (resent)", &b, &dup), 0);
    cr_assert(dup, "a resend is recognised");
    cr_assert_str_eq(a.id, b.id);
    cr_assert_eq(a.seq, b.seq);
    cr_assert_str_eq(b.text, "hello", "the stored text, not the resend's");
    mk_desk_msg_release(&a);
    mk_desk_msg_release(&b);
    struct mk_desk_conv now;
    cr_assert_eq(mk_desk_conv_get(f.c, "t", cv.id, &now), 0);
    cr_assert_eq(now.last_seq, 1);

    cr_assert_eq(mk_desk_conv_transition(f.c, "t", cv.id, MK_DESK_FROM_OPEN, MK_DESK_RESOLVED, "bot", NULL, NULL,
                                         NULL, NULL),
                 0);
    cr_assert_eq(mk_desk_conv_transition(f.c, "t", cv.id, MK_DESK_FROM_OPEN, MK_DESK_RESOLVED, "bot", NULL, NULL,
                                         NULL, NULL),
                 MK_EEXISTS);
    struct mk_desk_msg_in in = {.role = "user", .text = "again", .text_len = 5};
    bool reopened = false;
    cr_assert_eq(mk_desk_msg_add(f.c, "t", cv.id, &in, &a, &dup, &reopened), 0);
    cr_assert(reopened);
    mk_desk_msg_release(&a);
    cr_assert_eq(mk_desk_conv_get(f.c, "t", cv.id, &now), 0);
    cr_assert_eq(now.state, MK_DESK_BOT);
    cfx_close(&f);
}

static void case_validation(const char *url)
{
    struct cfx f;
    cfx_open(&f, url);
    struct mk_desk_conv cv = new_conv(&f, "t", NULL);
    cr_assert_eq(say(&f, "t", cv.id, "user", NULL, NULL, "", NULL, NULL), MK_EINVAL);
    cr_assert_eq(say(&f, "t", cv.id, "user", NULL, NULL, "\xff\xfe", NULL, NULL), MK_EINVAL);
    cr_assert_eq(say(&f, "t", cv.id, "wizard", NULL, NULL, "x", NULL, NULL), MK_EINVAL);
    cr_assert_eq(say(&f, "t", cv.id, "user", NULL, "bad id with spaces", "x", NULL, NULL), MK_EINVAL);
    cr_assert_eq(say(&f, "t", "no-such-conversation", "user", NULL, NULL, "x", NULL, NULL), MK_ENOTFOUND);
    char *big = malloc(MK_DESK_MAX_TEXT_BYTES + 2);
    memset(big, 'a', MK_DESK_MAX_TEXT_BYTES + 1);
    big[MK_DESK_MAX_TEXT_BYTES + 1] = '\0';
    cr_assert_eq(say(&f, "t", cv.id, "user", NULL, NULL, big, NULL, NULL), MK_EINVAL);
    free(big);
    struct mk_desk_msg m;
    bool d, r;
    struct mk_desk_msg_in in = {.role = "bot", .text = "x", .text_len = 1, .citations_json = "{\"not\":\"array\"}"};
    cr_assert_eq(mk_desk_msg_add(f.c, "t", cv.id, &in, &m, &d, &r), MK_EINVAL);
    in.citations_json = "[{\"title\":\"Wi-Fi\",\"source\":\"wifi.md\"}]";
    cr_assert_eq(mk_desk_msg_add(f.c, "t", cv.id, &in, &m, &d, &r), 0);
    json_object *j = mk_desk_msg_json(&m);
    cr_assert_eq(json_object_array_length(json_object_object_get(j, "citations")), 1);
    json_object_put(j);
    mk_desk_msg_release(&m);
    struct mk_desk_conv_new bad = {.tenant = "t", .meta_json = "[1]"};
    char tok[44];
    cr_assert_eq(mk_desk_conv_create(f.c, &bad, &cv, tok), MK_EINVAL);
    bad.meta_json = NULL;
    bad.user = "line\nbreak";
    cr_assert_eq(mk_desk_conv_create(f.c, &bad, &cv, tok), MK_EINVAL);
    cr_assert_eq(mk_desk_state_parse("operator"), MK_DESK_OPERATOR);
    cr_assert_eq(mk_desk_state_parse("nope"), MK_EINVAL);
    cfx_close(&f);
}

static void case_queue_order(const char *url)
{
    struct cfx f;
    cfx_open(&f, url);
    struct mk_desk_conv c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = new_conv(&f, "q", NULL);
        cr_assert_eq(mk_desk_conv_transition(f.c, "q", c[i].id, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING, "bot",
                                             "low_confidence", NULL, NULL, NULL),
                     0);
    }
    struct mk_desk_conv other = new_conv(&f, "elsewhere", NULL);
    cr_assert_eq(mk_desk_conv_transition(f.c, "elsewhere", other.id, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING,
                                         "bot", NULL, NULL, NULL, NULL),
                 0);
    int seen[4] = {0};
    for (int i = 0; i < 3; i++) {
        int pos = 0;
        cr_assert_eq(mk_desk_queue_position(f.c, "q", c[i].id, &pos), 0);
        cr_assert(pos >= 1 && pos <= 3, "pos %d", pos);
        seen[pos]++;
    }
    cr_assert(seen[1] == 1 && seen[2] == 1 && seen[3] == 1, "positions are distinct");
    /* the first in line is claimed: everybody moves up */
    json_object *q = NULL;
    cr_assert_eq(mk_desk_queue(f.c, "q", 0, &q), 0);
    cr_assert_eq(json_object_array_length(q), 3);
    const char *first = json_object_get_string(json_object_object_get(json_object_array_get_idx(q, 0), "id"));
    const char *last = json_object_get_string(json_object_object_get(json_object_array_get_idx(q, 2), "id"));
    char first_id[37], last_id[37];
    snprintf(first_id, sizeof first_id, "%s", first);
    snprintf(last_id, sizeof last_id, "%s", last);
    json_object_put(q);
    cr_assert_eq(mk_desk_conv_transition(f.c, "q", first_id, MK_DESK_FROM(MK_DESK_WAITING), MK_DESK_OPERATOR, "op",
                                         NULL, NULL, "op", NULL),
                 0);
    int pos = 0;
    cr_assert_eq(mk_desk_queue_position(f.c, "q", last_id, &pos), 0);
    cr_assert_eq(pos, 2);
    json_object *list = NULL;
    cr_assert_eq(mk_desk_conv_list(f.c, "q", MK_DESK_WAITING, NULL, 0, 0, &list), 0);
    cr_assert_eq(json_object_array_length(list), 2);
    json_object_put(list);
    cr_assert_eq(mk_desk_conv_list(f.c, "q", -1, "op", 0, 0, &list), 0);
    cr_assert_eq(json_object_array_length(list), 1);
    json_object_put(list);
    cfx_close(&f);
}

static double num(json_object *o, const char *k)
{
    json_object *v = json_object_object_get(o, k);
    cr_assert_not_null(v, "missing %s", k);
    return json_object_get_double(v);
}

static void case_analytics(const char *url)
{
    struct cfx f;
    cfx_open(&f, url);
    /* network: two conversations, both resolved by the bot, one rated 5 / helped */
    for (int i = 0; i < 2; i++) {
        struct mk_desk_conv cv = new_conv(&f, "a", NULL);
        cr_assert_eq(mk_desk_conv_set_agent(f.c, "a", cv.id, "network"), 0);
        cr_assert_eq(say(&f, "a", cv.id, "user", "u", NULL, "q", NULL, NULL), 0);
        cr_assert_eq(say(&f, "a", cv.id, "bot", NULL, NULL, "a", NULL, NULL), 0);
        cr_assert_eq(mk_desk_conv_transition(f.c, "a", cv.id, MK_DESK_FROM_OPEN, MK_DESK_RESOLVED, "user", NULL,
                                             NULL, NULL, NULL),
                     0);
        if (i == 0) cr_assert_eq(mk_desk_rate(f.c, "a", cv.id, 5, 1, NULL, NULL), 0);
    }
    /* billing: escalated twice (frustration), claimed, answered, resolved, rated 2 / not helped */
    struct mk_desk_conv cv = new_conv(&f, "a", NULL);
    cr_assert_eq(mk_desk_conv_set_agent(f.c, "a", cv.id, "billing"), 0);
    cr_assert_eq(mk_desk_conv_transition(f.c, "a", cv.id, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING, "bot",
                                         "frustration", NULL, NULL, NULL),
                 0);
    cr_assert_eq(mk_desk_conv_transition(f.c, "a", cv.id, MK_DESK_FROM(MK_DESK_WAITING), MK_DESK_BOT, "op", NULL,
                                         NULL, NULL, NULL),
                 0);
    cr_assert_eq(mk_desk_conv_transition(f.c, "a", cv.id, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING, "user",
                                         "user_request", NULL, NULL, NULL),
                 0);
    cr_assert_eq(mk_desk_conv_transition(f.c, "a", cv.id, MK_DESK_FROM(MK_DESK_WAITING), MK_DESK_OPERATOR, "op",
                                         NULL, NULL, "op", NULL),
                 0);
    cr_assert_eq(say(&f, "a", cv.id, "operator", "op", NULL, "hello", NULL, NULL), 0);
    cr_assert_eq(mk_desk_conv_transition(f.c, "a", cv.id, MK_DESK_FROM_OPEN, MK_DESK_RESOLVED, "op", NULL, NULL,
                                         NULL, NULL),
                 0);
    cr_assert_eq(mk_desk_rate(f.c, "a", cv.id, 2, 0, NULL, NULL), 0);
    /* one still waiting, no agent */
    struct mk_desk_conv w = new_conv(&f, "a", NULL);
    cr_assert_eq(mk_desk_conv_transition(f.c, "a", w.id, MK_DESK_FROM(MK_DESK_BOT), MK_DESK_WAITING, "bot",
                                         "out_of_kb", NULL, NULL, NULL),
                 0);
    new_conv(&f, "other-tenant", NULL);

    json_object *an = NULL;
    cr_assert_eq(mk_desk_analytics(f.c, "a", 0, &an), 0);
    json_object *all = json_object_object_get(an, "overall");
    cr_assert_eq(num(all, "conversations"), 4);
    cr_assert_eq(num(all, "escalated"), 2);
    cr_assert_eq(num(all, "resolved"), 3);
    cr_assert_eq(num(all, "resolved_without_human"), 2);
    cr_assert_float_eq(num(all, "automation_rate"), 2.0 / 3.0, 1e-9);
    cr_assert_float_eq(num(all, "escalation_rate"), 0.5, 1e-9);
    cr_assert_float_eq(num(all, "csat_avg"), 3.5, 1e-9);
    cr_assert_eq(num(all, "helped_yes"), 1);
    cr_assert_eq(num(all, "helped_no"), 1);
    cr_assert_geq(num(all, "first_response_bot_s"), 0);
    cr_assert_geq(num(all, "first_response_operator_s"), 0);
    json_object *agents = json_object_object_get(an, "agents");
    json_object *net = json_object_object_get(agents, "network"), *bil = json_object_object_get(agents, "billing");
    cr_assert_not_null(net);
    cr_assert_not_null(bil);
    cr_assert_float_eq(num(net, "automation_rate"), 1.0, 1e-9);
    cr_assert_float_eq(num(net, "escalation_rate"), 0.0, 1e-9);
    cr_assert_null(json_object_object_get(net, "first_response_operator_s"));
    cr_assert_float_eq(num(bil, "automation_rate"), 0.0, 1e-9);
    cr_assert_float_eq(num(bil, "csat_avg"), 2.0, 1e-9);
    json_object *reasons = json_object_object_get(an, "reasons");
    cr_assert_eq(num(reasons, "frustration"), 1);
    cr_assert_eq(num(reasons, "user_request"), 1);
    cr_assert_eq(num(reasons, "out_of_kb"), 1);
    cr_assert_eq(num(json_object_object_get(bil, "reasons"), "frustration"), 1);
    cr_assert_eq(num(an, "queue_length"), 1);
    json_object_put(an);
    cr_assert_eq(mk_desk_analytics(f.c, NULL, 0, &an), 0);
    cr_assert_eq(num(json_object_object_get(an, "overall"), "conversations"), 5, "every tenant");
    json_object_put(an);
    cr_assert_eq(mk_desk_analytics(f.c, "a", INT64_MAX / 2, &an), 0);
    cr_assert_eq(num(json_object_object_get(an, "overall"), "conversations"), 0);
    cr_assert_null(json_object_object_get(json_object_object_get(an, "overall"), "automation_rate"));
    json_object_put(an);
    cfx_close(&f);
}

#endif
