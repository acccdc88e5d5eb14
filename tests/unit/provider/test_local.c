/* Tests for the local provider (src/provider/local.c): answers from the demo
 * knowledge base, honest "no answer" replies, and the chat.completion it produces. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>

#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "kb/mk_kb.h"
#include "provider/mk_provider.h"

extern const struct mk_provider_ops mk_provider_local_ops;

static struct mk_provider_config cfg = {.name = "local", .type = MK_PROVIDER_LOCAL};
static mk_provider *p;

static void setup(void)
{
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
    cr_assert_eq(p->ops, &mk_provider_local_ops);
}

static void teardown(void) { mk_provider_free(p); }

TestSuite(local, .init = setup, .fini = teardown, .timeout = 60);

/* --- helpers -------------------------------------------------------------------------- */

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static json_object *user_request(const char *question)
{
    json_object *req = json_object_new_object(), *msgs = json_object_new_array(), *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("user"));
    json_object_object_add(m, "content", json_object_new_string(question));
    json_object_array_add(msgs, m);
    json_object_object_add(req, "model", json_object_new_string("mayak-local"));
    json_object_object_add(req, "messages", msgs);
    return req;
}

struct reply {
    json_object *root;     /* parsed chat.completion */
    const char *content;
    json_object *citations;
    struct mk_usage usage;
};

/* Answers `req`, checks the reply is a well-formed chat.completion and returns it. */
static struct reply answer(json_object *req)
{
    struct mk_chat_call call = {.request = req, .model = "kb-demo", .response_id = "chatcmpl-local-1",
                                .created = 1700000000, .request_id = "req-1"};
    mk_buf out = MK_BUF_INIT;
    struct reply r = {0};
    cr_assert_eq(p->ops->answer_local(p, &call, &out, &r.usage), 0);
    json_tokener *tok = json_tokener_new();
    r.root = json_tokener_parse_ex(tok, out.data, (int)out.len);
    cr_assert_eq(json_tokener_get_error(tok), json_tokener_success, "not JSON: %s", out.data);
    cr_assert_eq(tok->char_offset, (int)out.len, "trailing bytes after the JSON");
    json_tokener_free(tok);
    mk_buf_release(&out);

    cr_assert_str_eq(json_object_get_string(get(r.root, "id")), "chatcmpl-local-1");
    cr_assert_str_eq(json_object_get_string(get(r.root, "object")), "chat.completion");
    cr_assert_eq(json_object_get_int64(get(r.root, "created")), 1700000000);
    cr_assert_str_eq(json_object_get_string(get(r.root, "model")), "kb-demo");
    json_object *choices = get(r.root, "choices");
    cr_assert(json_object_is_type(choices, json_type_array));
    cr_assert_eq(json_object_array_length(choices), 1);
    json_object *choice = json_object_array_get_idx(choices, 0);
    cr_assert_eq(json_object_get_int(get(choice, "index")), 0);
    cr_assert_str_eq(json_object_get_string(get(choice, "finish_reason")), "stop");
    json_object *msg = get(choice, "message");
    cr_assert_str_eq(json_object_get_string(get(msg, "role")), "assistant");
    cr_assert(json_object_is_type(get(msg, "content"), json_type_string));
    r.content = json_object_get_string(get(msg, "content"));
    cr_assert_gt(strlen(r.content), 0);

    json_object *usage = get(r.root, "usage");
    int64_t pt = json_object_get_int64(get(usage, "prompt_tokens"));
    int64_t ct = json_object_get_int64(get(usage, "completion_tokens"));
    int64_t tt = json_object_get_int64(get(usage, "total_tokens"));
    cr_assert(json_object_is_type(get(usage, "prompt_tokens"), json_type_int));
    cr_assert_gt(pt, 0);
    cr_assert_gt(ct, 0);
    cr_assert_eq(tt, pt + ct);
    cr_assert_eq(r.usage.prompt_tokens, pt, "the usage out-parameter matches the JSON");
    cr_assert_eq(r.usage.completion_tokens, ct);
    cr_assert_eq(r.usage.total_tokens, tt);

    r.citations = get(r.root, "mayak_citations");
    cr_assert(json_object_is_type(r.citations, json_type_array));
    for (size_t i = 0; i < json_object_array_length(r.citations); i++) {
        json_object *c = json_object_array_get_idx(r.citations, i);
        cr_assert(json_object_is_type(get(c, "id"), json_type_string));
        cr_assert(json_object_is_type(get(c, "title"), json_type_string));
        cr_assert(json_object_is_type(get(c, "url"), json_type_string));
        cr_assert(json_object_is_type(get(c, "score"), json_type_double));
        cr_assert_gt(json_object_get_double(get(c, "score")), 0);
        cr_assert(strncmp(json_object_get_string(get(c, "url")), "kb://demo/", 10) == 0);
        /* Every cited article is named in the text with its address. */
        cr_assert_not_null(strstr(r.content, json_object_get_string(get(c, "url"))));
        cr_assert_not_null(strstr(r.content, json_object_get_string(get(c, "title"))));
    }
    return r;
}

static const char *first_citation(const struct reply *r)
{
    if (json_object_array_length(r->citations) == 0)
        return NULL;
    return json_object_get_string(get(json_object_array_get_idx(r->citations, 0), "url"));
}

static void check_answers(const char *const (*qa)[2], size_t n, const char *sources_label)
{
    for (size_t i = 0; i < n; i++) {
        json_object *req = user_request(qa[i][0]);
        struct reply r = answer(req);
        const char *url = first_citation(&r);
        cr_expect_not_null(url, "'%s' got no answer:\n%s", qa[i][0], r.content);
        if (url)
            cr_expect_str_eq(url, qa[i][1], "'%s': first source is %s", qa[i][0], url);
        cr_expect_not_null(strstr(r.content, sources_label), "'%s': no '%s' list", qa[i][0], sources_label);
        cr_expect_not_null(strstr(r.content, "\n1. "), "'%s': no steps quoted", qa[i][0]);
        json_object_put(r.root);
        json_object_put(req);
    }
}

/* --- answers -------------------------------------------------------------------------- */

Test(local, russian_questions_get_russian_answers_with_sources)
{
    static const char *const qa[][2] = {
        {"Не могу подключиться к Wi-Fi", "kb://demo/ru/wifi-troubleshoot"},
        {"Как сбросить пароль?", "kb://demo/ru/password-reset"},
        {"Принтер зажевал бумагу, что делать?", "kb://demo/ru/printer-paper-jam"},
        {"Как подключить сетевой принтер", "kb://demo/ru/printer-add"},
        {"Учётная запись заблокирована", "kb://demo/ru/account-locked"},
        {"Как настроить почту в Thunderbird?", "kb://demo/ru/email-thunderbird"},
        {"Почтовый ящик переполнен, письма не отправляются", "kb://demo/ru/mailbox-full"},
        {"Как установить программу с портала?", "kb://demo/ru/software-install"},
        {"Где скачать копию счёта?", "kb://demo/ru/billing-invoice"},
        {"Как оформить возврат денег?", "kb://demo/ru/billing-refund"},
        {"Здравствуйте! Как продлить сертификат VPN?", "kb://demo/ru/vpn-certificate-renewal"},
    };
    check_answers(qa, sizeof qa / sizeof qa[0], "Источники:");

    /* Quoting the client's error text leads to the troubleshooting section that
     * explains that very error; the renewal article must then be cited beside it. */
    json_object *vreq = user_request("Здравствуйте! VPN пишет, что сертификат истёк");
    struct reply vr = answer(vreq);
    bool renewal = false;
    for (size_t i = 0; i < json_object_array_length(vr.citations); i++)
        renewal |= !strcmp(json_object_get_string(get(json_object_array_get_idx(vr.citations, i), "url")),
                           "kb://demo/ru/vpn-certificate-renewal");
    cr_expect(renewal, "renewal article cited:\n%s", vr.content);
    cr_expect_not_null(strstr(vr.content, "истёк"), "%s", vr.content);
    json_object_put(vr.root);
    json_object_put(vreq);

    json_object *req = user_request("Не могу подключиться к Wi-Fi");
    struct reply r = answer(req);
    cr_assert_str_eq(mk_kb_detect_language(r.content, strlen(r.content)), "ru");
    cr_assert_not_null(strstr(r.content, "Mayak-Corp"), "the steps of the article are quoted:\n%s", r.content);
    json_object_put(r.root);
    json_object_put(req);
}

Test(local, english_questions_get_english_answers_with_sources)
{
    static const char *const qa[][2] = {
        {"How do I reset my password?", "kb://demo/en/password-reset"},
        {"I can't connect to the Wi-Fi", "kb://demo/en/wifi-troubleshoot"},
        {"There is a paper jam in the printer", "kb://demo/en/printer-paper-jam"},
        {"My documents are stuck in the print queue", "kb://demo/en/printer-queue"},
        {"How do I set up MFA on my phone?", "kb://demo/en/mfa-setup"},
        {"How do I set up Outlook?", "kb://demo/en/email-outlook"},
        {"How can I read work e-mail on my iPhone?", "kb://demo/en/email-phone"},
        {"I need software that is not on the portal", "kb://demo/en/software-request"},
        {"How do I update Windows?", "kb://demo/en/os-update"},
        {"How do I change my payment card?", "kb://demo/en/billing-payment-method"},
        {"The VPN does not connect", "kb://demo/en/vpn-troubleshoot"},
    };
    check_answers(qa, sizeof qa / sizeof qa[0], "Sources:");

    json_object *req = user_request("How do I reset my password?");
    struct reply r = answer(req);
    cr_assert_str_eq(mk_kb_detect_language(r.content, strlen(r.content)), "en");
    cr_assert_not_null(strstr(r.content, "Forgot password"), "the reset steps are quoted:\n%s", r.content);
    json_object_put(r.root);
    json_object_put(req);
}

Test(local, off_topic_gets_an_honest_no_answer)
{
    static const char *const cases[][2] = {
        {"What's the weather like in Paris?", "en"},
        {"Who won the football world cup in 2018?", "en"},
        {"Tell me a joke", "en"},
        {"Какая погода завтра в Москве?", "ru"},
        {"Посоветуй рецепт борща", "ru"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *req = user_request(cases[i][0]);
        struct reply r = answer(req);
        cr_expect_eq(json_object_array_length(r.citations), 0, "'%s' cited something:\n%s", cases[i][0], r.content);
        cr_expect_null(strstr(r.content, "kb://"), "'%s': no sources in a no-answer", cases[i][0]);
        cr_expect_not_null(strstr(r.content, "helpdesk@example.com"), "'%s': points to the helpdesk", cases[i][0]);
        cr_expect_str_eq(mk_kb_detect_language(r.content, strlen(r.content)), cases[i][1], "'%s': reply language",
                         cases[i][0]);
        if (!strcmp(cases[i][1], "ru"))
            cr_expect_not_null(strstr(r.content, "оператор"), "offers a human operator");
        else
            cr_expect_not_null(strstr(r.content, "operator"), "offers a human operator");
        json_object_put(r.root);
        json_object_put(req);
    }
}

Test(local, kazakh_question_gets_a_kazakh_reply)
{
    json_object *req = user_request("Құпия сөзді қалай өзгертемін? Көмектесіңізші.");
    struct reply r = answer(req);
    cr_assert(strstr(r.content, "Кешіріңіз") == r.content || strstr(r.content, "Білім қорында") == r.content,
              "reply starts in Kazakh:\n%s", r.content);
    json_object_put(r.root);
    json_object_put(req);
}

Test(local, last_user_message_and_text_parts)
{
    json_object *req = json_tokener_parse(
        "{\"messages\":["
        "{\"role\":\"system\",\"content\":\"You are a support agent.\"},"
        "{\"role\":\"user\",\"content\":\"My printer has a paper jam\"},"
        "{\"role\":\"assistant\",\"content\":\"Open the front cover.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Thanks. Another thing: how do I reset\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
        "{\"type\":\"text\",\"text\":\"my password?\"}]}]}");
    cr_assert_not_null(req);
    struct reply r = answer(req);
    cr_assert_str_eq(first_citation(&r), "kb://demo/en/password-reset", "%s", r.content);
    json_object_put(r.root);
    json_object_put(req);
}

Test(local, token_estimate_follows_the_documented_formula)
{
    json_object *req = user_request("Mailbox is full");
    struct reply r = answer(req);
    /* tokens = max(ceil(4 * words / 3), ceil(bytes / 4)) */
    size_t words = 0, len = strlen(r.content);
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        bool sp = r.content[i] == ' ' || r.content[i] == '\n' || r.content[i] == '\t' || r.content[i] == '\r';
        words += !sp && !in;
        in = !sp;
    }
    int64_t a = (int64_t)((words * 4 + 2) / 3), b = (int64_t)((len + 3) / 4);
    cr_assert_eq(r.usage.completion_tokens, a > b ? a : b);
    /* "Mailbox is full": 3 words -> 4, 15 bytes -> 4; plus 4 for the message. */
    cr_assert_eq(r.usage.prompt_tokens, 8);
    json_object_put(r.root);
    json_object_put(req);
}

Test(local, no_user_message_or_empty_question)
{
    json_object *req = json_tokener_parse("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"}]}");
    struct reply r = answer(req);
    cr_assert_eq(json_object_array_length(r.citations), 0);
    cr_assert_not_null(strstr(r.content, "helpdesk@example.com"));
    json_object_put(r.root);
    json_object_put(req);

    req = user_request("???");
    r = answer(req);
    cr_assert_eq(json_object_array_length(r.citations), 0);
    json_object_put(r.root);
    json_object_put(req);
}

Test(local, bad_input_is_refused)
{
    mk_buf out = MK_BUF_INIT;
    struct mk_usage u;
    json_object *arr = json_object_new_array();
    json_object *nomsgs = json_tokener_parse("{\"model\":\"x\"}");
    json_object *badmsgs = json_tokener_parse("{\"messages\":\"hello\"}");
    struct mk_chat_call call = {.model = "m", .response_id = "id", .created = 1};

    call.request = NULL;
    cr_assert_eq(p->ops->answer_local(p, &call, &out, &u), MK_EINVAL);
    call.request = arr;
    cr_assert_eq(p->ops->answer_local(p, &call, &out, &u), MK_EINVAL);
    call.request = nomsgs;
    cr_assert_eq(p->ops->answer_local(p, &call, &out, &u), MK_EINVAL);
    call.request = badmsgs;
    cr_assert_eq(p->ops->answer_local(p, &call, &out, &u), MK_EINVAL);
    cr_assert_eq(p->ops->answer_local(p, NULL, &out, &u), MK_EINVAL);
    cr_assert_eq(p->ops->answer_local(p, &call, NULL, &u), MK_EINVAL);
    struct mk_provider bare = {.config = &cfg, .ops = &mk_provider_local_ops, .state = NULL};
    cr_assert_eq(mk_provider_local_ops.answer_local(&bare, &call, &out, &u), MK_EINVAL, "not initialised");
    cr_assert_eq(out.len, 0, "nothing written on failure");

    /* Garbage inside messages is skipped, not fatal. */
    json_object *odd = json_tokener_parse("{\"messages\":[1,null,{\"role\":5},{\"role\":\"user\",\"content\":{}},"
                                          "{\"role\":\"user\",\"content\":[7,{\"type\":\"text\"}]}]}");
    call.request = odd;
    cr_assert_eq(p->ops->answer_local(p, &call, &out, &u), 0);
    cr_assert_gt(out.len, 0);

    /* NULL model and id still give a valid reply. */
    json_object *req = user_request("printer jam");
    struct mk_chat_call bare_call = {.request = req};
    mk_buf_reset(&out);
    cr_assert_eq(p->ops->answer_local(p, &bare_call, &out, NULL), 0);
    json_object *o = json_tokener_parse(out.data);
    cr_assert_not_null(o);
    cr_assert(json_object_is_type(get(o, "model"), json_type_string));
    json_object_put(o);

    json_object_put(req);
    json_object_put(odd);
    json_object_put(arr);
    json_object_put(nomsgs);
    json_object_put(badmsgs);
    mk_buf_release(&out);
}

Test(local, providers_share_one_knowledge_base)
{
    mk_provider *q = NULL;
    cr_assert_eq(mk_provider_new(&cfg, &q), 0);
    cr_assert_not_null(q->state);
    cr_assert_eq(q->state, p->state, "one KB for every local provider");
    mk_provider_free(q);
    /* The first provider still works after the second is gone. */
    json_object *req = user_request("Print queue is stuck");
    struct reply r = answer(req);
    cr_assert_str_eq(first_citation(&r), "kb://demo/en/printer-queue");
    json_object_put(r.root);
    json_object_put(req);
    cr_assert_null(mk_provider_local_ops.build_chat);
    cr_assert_null(mk_provider_local_ops.decode_chat);
    cr_assert_str_eq(mk_provider_local_ops.type, "local");
}
