/* Unit tests of the support desk: triage on the default agents with phrasings that
 * are not among their examples, the conversation prior, escalation triggers, answers
 * with citations, the LLM leg (request shape, completion, escalation marker), and
 * agents from a config. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_rand.h"
#include "desk/mk_desk.h"

static mk_desk *desk;

static void setup(void)
{
    mk_rand_init();
    cr_assert_eq(mk_desk_new(NULL, &desk), 0);
}

static void teardown(void)
{
    mk_desk_free(desk);
    desk = NULL;
}

static const char *route(const char *text, const struct mk_desk_context *ctx)
{
    struct mk_desk_triage t;
    cr_assert_eq(mk_desk_triage(desk, text, ctx, &t), 0, "triage failed for %s", text);
    return t.agent < 0 ? "human" : mk_desk_agent_at(desk, (size_t)t.agent)->id;
}

TestSuite(desk, .init = setup, .fini = teardown);

Test(desk, default_agents)
{
    cr_assert_eq(mk_desk_agent_count(desk), 5);
    const char *ids[] = {"network", "hardware", "accounts", "software", "billing"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(mk_desk_agent_find(desk, ids[i]), (int)i);
        cr_assert_gt(mk_desk_agent_at(desk, i)->nexamples, 10);
    }
    cr_assert_eq(mk_desk_agent_find(desk, "human"), -1);
}

/* Phrasings written for this test, none of them an example of any agent. */
static const struct {
    const char *text, *agent;
} held_out[] = {
    {"не ловит вайфай на втором этаже", "network"},
    {"впн отключается каждые пять минут", "network"},
    {"My laptop can't find any wireless networks", "network"},
    {"the VPN client shows an authentication error", "network"},
    {"принтер печатает пустые листы", "hardware"},
    {"замяло бумагу в мфу", "hardware"},
    {"my second monitor is not detected", "hardware"},
    {"laptop won't charge when plugged in", "hardware"},
    {"не помню пароль от учётки", "accounts"},
    {"мою учетную запись заблокировали после трёх попыток", "accounts"},
    {"how can I reset my password", "accounts"},
    {"my mailbox is over its quota", "accounts"},
    {"как поставить программу на рабочий ноутбук", "software"},
    {"Excel crashes when I open a big file", "software"},
    {"windows не обновляется, ошибка", "software"},
    {"need a Photoshop licence for the designer", "software"},
    {"пришёл счёт с двойным списанием", "billing"},
    {"хочу вернуть оплату за подписку", "billing"},
    {"where do I get last month's invoice", "billing"},
    {"payment with my credit card failed", "billing"},
};

Test(desk, triage_held_out_phrasings)
{
    size_t n = sizeof held_out / sizeof held_out[0], ok = 0;
    for (size_t i = 0; i < n; i++) {
        const char *got = route(held_out[i].text, NULL);
        if (strcmp(got, held_out[i].agent) == 0) ok++;
        else fprintf(stderr, "note: '%s' went to %s, expected %s\n", held_out[i].text, got, held_out[i].agent);
    }
    /* A classifier trained on ~20 examples per agent: at least 17 of 20 right. */
    cr_assert_geq(ok, 17, "only %zu of %zu held-out phrasings routed right", ok, n);
}

Test(desk, triage_reports_confidence)
{
    struct mk_desk_triage t;
    cr_assert_eq(mk_desk_triage(desk, "printer paper jam again on floor 3", NULL, &t), 0);
    cr_assert_geq(t.agent, 0);
    cr_assert(t.confidence > 0 && t.confidence <= 1);
    cr_assert_neq(t.runner_up, t.agent);
    cr_assert_leq(t.runner_up_confidence, t.confidence);
}

Test(desk, previous_agent_is_a_prior)
{
    /* "it is still slow" alone says little; after the network agent helped, it stays. */
    struct mk_desk_context ctx = {.prev_agent = "network"};
    cr_assert_str_eq(route("ok I tried that, what next?", &ctx), "network");
    struct mk_desk_context ctx2 = {.prev_agent = "billing"};
    cr_assert_str_eq(route("ok I tried that, what next?", &ctx2), "billing");
    /* A clear new topic still wins over the prior. */
    cr_assert_str_eq(route("I need a refund for the duplicate charge on my card", &ctx), "billing");
}

Test(desk, escalates_when_a_person_is_asked_for)
{
    const char *asks[] = {"позовите оператора", "Соедините меня с живым человеком, пожалуйста",
                          "I want to talk to a human", "can I speak to a real person?",
                          "маманмен сөйлескім келеді", "операторды шақырыңыз"};
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        struct mk_desk_reply r;
        cr_assert_eq(mk_desk_respond(desk, asks[i], NULL, NULL, &r), 0);
        cr_assert(r.escalate, "no escalation for '%s'", asks[i]);
        cr_assert_eq(r.reason, MK_DESK_REASON_USER_REQUEST, "'%s': %s", asks[i], mk_desk_reason_name(r.reason));
        cr_assert_str_eq(r.agent, "human");
        cr_assert_not_null(r.answer);
        cr_assert_gt(r.answer_len, 10);
        mk_desk_reply_release(&r);
    }
    /* Words that only look like it. */
    cr_assert_str_neq(route("my personal folder is not syncing", NULL), "human");
}

Test(desk, escalates_on_frustration)
{
    const char *angry[] = {"это уже бесит, третий день не работает принтер", "THIS PRINTER IS NOT WORKING AGAIN!!!",
                           "your instructions are useless", "шаршадым, интернет жоқ"};
    for (size_t i = 0; i < sizeof angry / sizeof angry[0]; i++) {
        struct mk_desk_triage t;
        cr_assert_eq(mk_desk_triage(desk, angry[i], NULL, &t), 0);
        cr_assert_eq(t.agent, -1, "'%s' not escalated (frustration %.2f)", angry[i], t.frustration);
        cr_assert_eq(t.reason, MK_DESK_REASON_FRUSTRATION);
    }
    /* One "again" is not anger. */
    struct mk_desk_triage t;
    cr_assert_eq(mk_desk_triage(desk, "printer says paper jam again", NULL, &t), 0);
    cr_assert_geq(t.agent, 0);
}

Test(desk, escalates_after_two_failures)
{
    struct mk_desk_context ctx = {.prev_agent = "network", .bot_failures = 0};
    struct mk_desk_triage t;
    cr_assert_eq(mk_desk_triage(desk, "это не помогло", &ctx, &t), 0);
    cr_assert(t.negative_feedback);
    cr_assert_geq(t.agent, 0, "one failure is not yet a reason");
    ctx.bot_failures = 1;
    cr_assert_eq(mk_desk_triage(desk, "всё равно не работает, не помогло", &ctx, &t), 0);
    cr_assert_eq(t.agent, -1);
    cr_assert_eq(t.reason, MK_DESK_REASON_REPEATED_FAILURE);
    ctx.bot_failures = 2;
    cr_assert_eq(mk_desk_triage(desk, "and what about the VPN?", &ctx, &t), 0);
    cr_assert_eq(t.reason, MK_DESK_REASON_REPEATED_FAILURE);
}

Test(desk, answers_with_citations_in_the_users_language)
{
    struct mk_desk_reply r;
    cr_assert_eq(mk_desk_respond(desk, "How do I reset my password?", NULL, NULL, &r), 0);
    cr_assert_not(r.escalate);
    cr_assert_str_eq(r.agent, "accounts");
    cr_assert_str_eq(r.lang, "en");
    cr_assert_geq(r.ncitations, 1);
    cr_assert_str_eq(r.citations[0].doc_id, "password-reset");
    cr_assert_str_eq(r.citations[0].lang, "en");
    cr_assert_not_null(strstr(r.answer, "Sources:"));
    cr_assert_not_null(strstr(r.answer, r.citations[0].source));
    cr_assert_gt(r.confidence, 0);
    mk_desk_reply_release(&r);

    cr_assert_eq(mk_desk_respond(desk, "как добавить сетевой принтер", NULL, NULL, &r), 0);
    cr_assert_not(r.escalate);
    cr_assert_str_eq(r.agent, "hardware");
    cr_assert_str_eq(r.lang, "ru");
    cr_assert_str_eq(r.citations[0].doc_id, "printer-add");
    cr_assert_not_null(strstr(r.answer, "Источники:"));
    mk_desk_reply_release(&r);
}

Test(desk, out_of_kb_escalates_honestly)
{
    const char *off[] = {"what is the capital of Australia", "расскажи анекдот про кота"};
    for (size_t i = 0; i < 2; i++) {
        struct mk_desk_reply r;
        cr_assert_eq(mk_desk_respond(desk, off[i], NULL, NULL, &r), 0);
        cr_assert(r.escalate, "'%s' answered", off[i]);
        cr_assert(r.reason == MK_DESK_REASON_OUT_OF_KB || r.reason == MK_DESK_REASON_LOW_CONFIDENCE);
        cr_assert(r.failed);
        cr_assert_eq(r.ncitations, 0);
        mk_desk_reply_release(&r);
    }
}

Test(desk, reply_json_has_the_documented_fields)
{
    struct mk_desk_reply r;
    cr_assert_eq(mk_desk_respond(desk, "printer paper jam", NULL, NULL, &r), 0);
    mk_buf b = MK_BUF_INIT;
    cr_assert_eq(mk_desk_reply_json(&r, &b), 0);
    json_object *o = json_tokener_parse(b.data);
    cr_assert_not_null(o);
    const char *keys[] = {"agent", "confidence", "answer", "citations", "escalate", "reason", "lang", "triage"};
    for (size_t i = 0; i < 8; i++) cr_assert(json_object_object_get_ex(o, keys[i], NULL), "no %s", keys[i]);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "agent")), "hardware");
    json_object *c0 = json_object_array_get_idx(json_object_object_get(o, "citations"), 0);
    cr_assert_not_null(c0);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(c0, "id")), "printer-paper-jam");
    json_object_put(o);
    mk_buf_release(&b);
    mk_desk_reply_release(&r);
}

Test(desk, bad_input)
{
    struct mk_desk_triage t;
    struct mk_desk_reply r;
    cr_assert_eq(mk_desk_triage(NULL, "x", NULL, &t), MK_EINVAL);
    cr_assert_eq(mk_desk_triage(desk, NULL, NULL, &t), MK_EINVAL);
    cr_assert_eq(mk_desk_respond(desk, NULL, NULL, NULL, &r), MK_EINVAL);
    /* Empty, invalid UTF-8 and punctuation-only messages get a reply, not a crash. */
    const char *odd[] = {"", "\xff\xfe\xc3", "???", "\xd0"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(mk_desk_respond(desk, odd[i], NULL, NULL, &r), 0);
        cr_assert_not_null(r.answer);
        mk_desk_reply_release(&r);
    }
    mk_desk_reply_release(NULL);
    mk_desk_free(NULL);
}

/* ---- the LLM leg ------------------------------------------------------------------ */

static mk_desk *llm_desk(void)
{
    mk_desk *d = NULL;
    struct mk_desk_options o = {.use_llm = true};
    cr_assert_eq(mk_desk_new(&o, &d), 0);
    return d;
}

Test(desk, llm_request_spotlights_passages)
{
    mk_desk *d = llm_desk();
    struct mk_desk_turn turns[] = {{"user", "привет"}, {"assistant", "Здравствуйте! Чем помочь?"}};
    struct mk_desk_context ctx = {.turns = turns, .nturns = 2};
    struct mk_desk_reply r;
    cr_assert_eq(mk_desk_respond(d, "как сбросить пароль", &ctx, NULL, &r), 0);
    cr_assert_not(r.escalate);
    cr_assert_null(r.answer);
    cr_assert_not_null(r.llm_request);
    json_object *msgs = json_object_object_get(r.llm_request, "messages");
    cr_assert_eq(json_object_array_length(msgs), 4); /* system, 2 turns, the question */
    const char *sys = json_object_get_string(json_object_object_get(json_object_array_get_idx(msgs, 0), "content"));
    cr_assert_not_null(strstr(sys, "<<<mk-"));
    cr_assert_not_null(strstr(sys, "<<<end-mk-"));
    cr_assert_not_null(strstr(sys, "\xCB\x86"), "passages are datamarked");
    cr_assert_not_null(strstr(sys, "[[ESCALATE]]"));
    cr_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(msgs, 2), "role")),
                     "assistant");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(msgs, 3), "content")),
                     "как сбросить пароль");
    cr_assert_geq(r.ncitations, 1);

    const char *completion = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Откройте "
                             "id.example.com и нажмите «Забыли пароль?».\"}}]}";
    cr_assert_eq(mk_desk_complete(d, &r, 0, completion, strlen(completion)), 0);
    cr_assert_null(r.llm_request);
    cr_assert_not(r.escalate);
    cr_assert_not_null(strstr(r.answer, "id.example.com"));
    cr_assert_not_null(strstr(r.answer, "Источники:"));
    mk_desk_reply_release(&r);
    mk_desk_free(d);
}

Test(desk, llm_escalation_marker_and_failure)
{
    mk_desk *d = llm_desk();
    struct mk_desk_reply r;
    cr_assert_eq(mk_desk_respond(d, "How do I reset my password?", NULL, NULL, &r), 0);
    const char *unsure = "{\"choices\":[{\"message\":{\"content\":\"The passages do not say.\\n[[ESCALATE]]\"}}]}";
    cr_assert_eq(mk_desk_complete(d, &r, 0, unsure, strlen(unsure)), 0);
    cr_assert(r.escalate);
    cr_assert_eq(r.reason, MK_DESK_REASON_LLM_UNSURE);
    cr_assert_null(strstr(r.answer, "[[ESCALATE]]"));
    mk_desk_reply_release(&r);

    cr_assert_eq(mk_desk_respond(d, "How do I reset my password?", NULL, NULL, &r), 0);
    cr_assert_eq(mk_desk_complete(d, &r, MK_EUPSTREAM_TIMEOUT, NULL, 0), 0);
    cr_assert(r.escalate);
    cr_assert_eq(r.reason, MK_DESK_REASON_LLM_ERROR);
    mk_desk_reply_release(&r);

    cr_assert_eq(mk_desk_respond(d, "How do I reset my password?", NULL, NULL, &r), 0);
    cr_assert_eq(mk_desk_complete(d, &r, 0, "not json", 8), 0);
    cr_assert_eq(r.reason, MK_DESK_REASON_LLM_ERROR);
    mk_desk_reply_release(&r);
    mk_desk_free(d);
}

Test(desk, llm_triage_second_opinion)
{
    struct mk_desk_triage t;
    cr_assert_eq(mk_desk_triage(desk, "hmm", NULL, &t), 0);
    json_object *req = NULL;
    cr_assert_eq(mk_desk_triage_request(desk, "hmm", NULL, &req), 0);
    const char *sys = json_object_get_string(
        json_object_object_get(json_object_array_get_idx(json_object_object_get(req, "messages"), 0), "content"));
    cr_assert_not_null(strstr(sys, "billing"));
    json_object_put(req);
    const char *says = "{\"choices\":[{\"message\":{\"content\":\" \\\"billing\\\".\"}}]}";
    cr_assert_eq(mk_desk_triage_parse(desk, says, strlen(says), &t), 0);
    cr_assert_eq(t.agent, mk_desk_agent_find(desk, "billing"));
    cr_assert(t.llm);
    cr_assert_not(t.unsure);
    const char *nonsense = "{\"choices\":[{\"message\":{\"content\":\"I think maybe\"}}]}";
    cr_assert_eq(mk_desk_triage_parse(desk, nonsense, strlen(nonsense), &t), MK_EUPSTREAM_BADREPLY);
    cr_assert_eq(t.agent, mk_desk_agent_find(desk, "billing"), "unchanged");
}

/* ---- agents from a config ---------------------------------------------------------- */

Test(desk, agents_from_config)
{
    const char *yaml = "agents:\n"
                       "  - id: mail\n"
                       "    name: Почта\n"
                       "    instructions: |\n"
                       "      You help with e-mail.\n"
                       "      Be brief.\n"
                       "    escalation_threshold: 0.6\n"
                       "    examples: [\"письма не приходят\", \"mailbox full\", \"outlook не отправляет почту\"]\n"
                       "  - id: print\n"
                       "    knowledge: [hardware, shared-print]\n"
                       "    examples: [\"принтер не печатает\", \"paper jam\", \"printer offline\"]\n";
    struct mk_config *cfg = NULL;
    struct mk_config_diags diags = {0};
    cr_assert_eq(mk_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &diags), 0);
    mk_config_diags_release(&diags);
    cr_assert_eq(cfg->nagents, 2);
    cr_assert_not_null(strstr(cfg->agents[0].instructions, "\nBe brief."));
    mk_desk *d = NULL;
    struct mk_desk_options o = {.config = cfg};
    cr_assert_eq(mk_desk_new(&o, &d), 0);
    mk_config_free(cfg);
    cr_assert_eq(mk_desk_agent_count(d), 2);
    const struct mk_desk_agent *a = mk_desk_agent_at(d, 0);
    cr_assert_str_eq(a->name, "Почта");
    cr_assert_float_eq(a->escalation_threshold, 0.6, 1e-9);
    cr_assert_eq(a->nknowledge, 1);
    cr_assert_str_eq(a->knowledge[0], "mail");
    cr_assert_eq(mk_desk_agent_at(d, 1)->nknowledge, 2);
    struct mk_desk_triage t;
    cr_assert_eq(mk_desk_triage(d, "the printer jams paper", NULL, &t), 0);
    cr_assert_eq(t.agent, 1);
    mk_desk_free(d);
}

Test(desk, config_rejects_bad_agents)
{
    const char *bad[] = {
        "agents:\n  - id: human\n    examples: [x]\n",
        "agents:\n  - id: a\n    examples: [x]\n  - id: a\n    examples: [y]\n",
        "agents:\n  - id: a\n",
        "agents:\n  - id: a\n    examples: []\n",
        "agents:\n  - id: a\n    examples: [\"\"]\n",
        "agents:\n  - id: a\n    escalation_threshold: 2\n    examples: [x]\n",
        "agents: 5\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mk_config *cfg = NULL;
        struct mk_config_diags diags = {0};
        cr_assert_neq(mk_config_load_string("t.yaml", bad[i], strlen(bad[i]), &cfg, &diags), 0, "accepted: %s", bad[i]);
        cr_assert_gt(diags.count, 0);
        mk_config_diags_release(&diags);
        mk_config_free(cfg);
    }
}
