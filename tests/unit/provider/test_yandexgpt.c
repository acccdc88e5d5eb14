/* Tests for the YandexGPT adapter (src/provider/yandexgpt.c). */
#include "provider_test.h"

#include "core/mk_utf8.h"

static struct mk_provider_config cfg = {
    .name = "ya",
    .type = MK_PROVIDER_YANDEXGPT,
    .api_key = "AQVN-key",
    .folder_id = "b1gfolder",
};
static mk_provider *p;
static json_object *req;
static struct mk_chat_call call;

static void setup(void)
{
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
    req = json_tokener_parse("{\"model\":\"support\",\"temperature\":0.4,\"max_tokens\":500,\"messages\":["
                             "{\"role\":\"system\",\"content\":\"Ты помощник\"},"
                             "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Часть 1\"},"
                             "{\"type\":\"text\",\"text\":\"Часть 2\"}]},"
                             "{\"role\":\"assistant\",\"content\":\"Ответ\"},"
                             "{\"role\":\"user\",\"content\":\"Ещё\"}]}");
    cr_assert_not_null(req);
    call = (struct mk_chat_call){.request = req, .model = "yandexgpt/latest", .response_id = "chatcmpl-y1",
                                 .created = 1700000000};
}

static void teardown(void)
{
    json_object_put(req);
    mk_provider_free(p);
}

TestSuite(yandexgpt, .init = setup, .fini = teardown, .timeout = 30);

Test(yandexgpt, build_chat)
{
    struct mk_upstream_request r = {0};
    cr_assert_eq(p->ops->build_chat(p, &call, &r), 0);
    cr_expect_str_eq(r.url.data, "https://llm.api.cloud.yandex.net/foundationModels/v1/completion");
    cr_expect(has_header(&r, "Authorization: Api-Key AQVN-key"));
    cr_expect(has_header(&r, "x-folder-id: b1gfolder"));
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "modelUri"), "gpt://b1gfolder/yandexgpt/latest");
    cr_expect_eq(json_object_get_boolean(jpath(b, "completionOptions.stream")), 0);
    cr_expect_float_eq(json_object_get_double(jpath(b, "completionOptions.temperature")), 0.4, 1e-12);
    cr_expect_str_eq(jstr(b, "completionOptions.maxTokens"), "500", "maxTokens is a string");
    cr_expect_eq(json_object_array_length(jpath(b, "messages")), 4);
    cr_expect_str_eq(jstr(b, "messages.0.role"), "system");
    cr_expect_str_eq(jstr(b, "messages.0.text"), "Ты помощник");
    cr_expect_str_eq(jstr(b, "messages.1.role"), "user");
    cr_expect_str_eq(jstr(b, "messages.1.text"), "Часть 1\nЧасть 2");
    cr_expect_str_eq(jstr(b, "messages.2.role"), "assistant");
    cr_expect_null(jpath(b, "messages.0.content"));
    json_object_put(b);
    mk_upstream_request_release(&r);
}

Test(yandexgpt, build_chat_variants)
{
    /* full model URI, IAM token, stream, temperature clamp */
    struct mk_provider_config c2 = cfg;
    c2.api_key = NULL;
    c2.iam_token = "t1.iam";
    c2.base_url = "http://127.0.0.1:9999/";
    mk_provider *p2;
    cr_assert_eq(mk_provider_new(&c2, &p2), 0);
    json_object *rq = json_tokener_parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1.7}");
    struct mk_chat_call c = call;
    c.request = rq;
    c.stream = true;
    c.model = "gpt://other/yandexgpt-lite/rc";
    struct mk_upstream_request r = {0};
    cr_assert_eq(p2->ops->build_chat(p2, &c, &r), 0);
    cr_expect_str_eq(r.url.data, "http://127.0.0.1:9999/foundationModels/v1/completion");
    cr_expect(has_header(&r, "Authorization: Bearer t1.iam"));
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "modelUri"), "gpt://other/yandexgpt-lite/rc");
    cr_expect(json_object_get_boolean(jpath(b, "completionOptions.stream")));
    cr_expect_float_eq(json_object_get_double(jpath(b, "completionOptions.temperature")), 1.0, 1e-12);
    cr_expect_null(jpath(b, "completionOptions.maxTokens"));
    json_object_put(b);
    mk_upstream_request_release(&r);
    mk_provider_free(p2);
    json_object_put(rq);

    /* no credentials; no folder for a short model name */
    c2.iam_token = NULL;
    cr_assert_eq(mk_provider_new(&c2, &p2), 0);
    memset(&r, 0, sizeof r);
    cr_expect_eq(p2->ops->build_chat(p2, &call, &r), MK_ECONFIG);
    mk_upstream_request_release(&r);
    mk_provider_free(p2);
    c2.api_key = "k";
    c2.folder_id = NULL;
    cr_assert_eq(mk_provider_new(&c2, &p2), 0);
    memset(&r, 0, sizeof r);
    cr_expect_eq(p2->ops->build_chat(p2, &call, &r), MK_ECONFIG);
    mk_upstream_request_release(&r);
    mk_provider_free(p2);

    static const char *refused[] = {
        "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":\"x\"}]}",
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":"
        "{\"name\":\"f\"}}]}"),
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        rq = json_tokener_parse(refused[i]);
        c = call;
        c.request = rq;
        memset(&r, 0, sizeof r);
        cr_expect_eq(p->ops->build_chat(p, &c, &r), MK_EINVAL, "case %zu", i);
        mk_upstream_request_release(&r);
        json_object_put(rq);
    }
}

Test(yandexgpt, decode_chat)
{
    static const struct { const char *status, *fr; } rows[] = {
        {"ALTERNATIVE_STATUS_FINAL", "stop"},
        {"ALTERNATIVE_STATUS_TRUNCATED_FINAL", "length"},
        {"ALTERNATIVE_STATUS_CONTENT_FILTER", "content_filter"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char reply[512];
        snprintf(reply, sizeof reply,
                 "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"Добрый день!\"},"
                 "\"status\":\"%s\"}],\"usage\":{\"inputTextTokens\":\"12\",\"completionTokens\":\"30\","
                 "\"totalTokens\":\"42\"},\"modelVersion\":\"23.10.2024\"}}",
                 rows[i].status);
        mk_buf out = MK_BUF_INIT;
        struct mk_usage u;
        struct mk_provider_error err;
        cr_assert_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(reply), &out, &u, &err), 0, "%s", err.message);
        cr_expect_eq(u.prompt_tokens, 12);
        cr_expect_eq(u.completion_tokens, 30);
        cr_expect_eq(u.total_tokens, 42);
        json_object *o = jparse(out.data, out.len);
        cr_expect_str_eq(jstr(o, "id"), "chatcmpl-y1");
        cr_expect_str_eq(jstr(o, "object"), "chat.completion");
        cr_expect_eq(json_object_get_int64(jpath(o, "created")), 1700000000);
        cr_expect_str_eq(jstr(o, "model"), "yandexgpt/latest");
        cr_expect_str_eq(jstr(o, "choices.0.message.role"), "assistant");
        cr_expect_str_eq(jstr(o, "choices.0.message.content"), "Добрый день!");
        cr_expect_str_eq(jstr(o, "choices.0.finish_reason"), rows[i].fr);
        cr_expect_eq(json_object_get_int(jpath(o, "usage.total_tokens")), 42);
        json_object_put(o);
        mk_buf_release(&out);
    }
    static const struct { const char *body; int code; } bad[] = {
        {"{\"result\":{}}", MK_EUPSTREAM_BADREPLY},
        {"{\"result\":{\"alternatives\":[{\"status\":\"ALTERNATIVE_STATUS_FINAL\"}]}}", MK_EUPSTREAM_BADREPLY},
        {"{\"result\":{\"alternatives\":[{\"message\":{\"text\":5},\"status\":\"ALTERNATIVE_STATUS_FINAL\"}]}}",
         MK_EUPSTREAM_BADREPLY},
        {"{\"result\":{\"alternatives\":[{\"message\":{\"text\":\"a\"},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}]}}",
         MK_EUPSTREAM_BADREPLY},
        {"{\"result\":{\"alternatives\":[{\"message\":{\"text\":\"a\"}}]}}", MK_EUPSTREAM_BADREPLY},
        {"{\"result\":{\"alternatives\":[],\"usage\":{\"inputTextTokens\":\"1e5\",\"completionTokens\":\"1\"}}}",
         MK_EUPSTREAM_BADREPLY},
        {"{\"result\":{\"alternatives\":[],\"usage\":{\"inputTextTokens\":\"99999999999999999999\","
         "\"completionTokens\":\"1\"}}}",
         MK_EUPSTREAM_BADREPLY},
        {"{\"error\":{\"grpcCode\":8,\"httpCode\":429,\"message\":\"quota\",\"httpStatus\":\"Too Many Requests\"}}",
         MK_EUPSTREAM_RATE},
        {"{\"error\":{\"grpcCode\":3,\"httpCode\":400,\"message\":\"bad\",\"httpStatus\":\"Bad Request\"}}",
         MK_EUPSTREAM_CLIENT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mk_buf out = MK_BUF_INIT;
        struct mk_usage u;
        struct mk_provider_error err;
        cr_expect_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(bad[i].body), &out, &u, &err), bad[i].code,
                     "case %zu: %s", i, err.message);
        mk_buf_release(&out);
    }
}

static void line(mk_buf *b, const char *text, const char *status, const char *usage)
{
    mk_buf_append_str(b, "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":");
    mk_buf_append_json_string(b, text, strlen(text));
    mk_buf_printf(b, "},\"status\":\"ALTERNATIVE_STATUS_%s\"}]", status);
    if (usage) mk_buf_printf(b, ",\"usage\":%s", usage);
    mk_buf_append_str(b, ",\"modelVersion\":\"23.10.2024\"}}\n");
}

Test(yandexgpt, stream_deltas_cyrillic)
{
    mk_buf s = MK_BUF_INIT;
    line(&s, "При", "PARTIAL", NULL);
    line(&s, "Привет", "PARTIAL", NULL);
    line(&s, "Привет", "PARTIAL", NULL); /* no new text: no chunk */
    line(&s, "Привет, мир", "PARTIAL", NULL);
    line(&s, "Привет, мир! Как дела?", "FINAL",
         "{\"inputTextTokens\":\"7\",\"completionTokens\":\"9\",\"totalTokens\":\"16\"}");
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    cr_assert_eq(run_both(p, &call, s.data, &ev, &err), 0, "%s", err.message);
    cr_expect_str_eq(ev.content.data, "Привет, мир! Как дела?");
    cr_expect_eq(ev.count, 5, "4 text chunks + usage");
    cr_expect_str_eq(ev.finish, "stop");
    cr_expect_eq(ev.usage_only, 1);
    cr_expect_eq(ev.usage.prompt_tokens, 7);
    cr_expect_eq(ev.usage.total_tokens, 16);
    /* the deltas are exactly the suffixes */
    cr_expect(strstr(ev.log.data, "\"delta\":{\"role\":\"assistant\",\"content\":\"При\"}") != NULL, "%s", ev.log.data);
    cr_expect(strstr(ev.log.data, "\"delta\":{\"content\":\"вет\"}") != NULL);
    cr_expect(strstr(ev.log.data, "\"delta\":{\"content\":\", мир\"}") != NULL);
    cr_expect(strstr(ev.log.data, "\"delta\":{\"content\":\"! Как дела?\"},\"finish_reason\":\"stop\"") != NULL);
    events_release(&ev);
    mk_buf_release(&s);
}

Test(yandexgpt, stream_partial_character_waits)
{
    /* 4-byte and 2-byte characters: every delta is whole characters (valid UTF-8)
     * and the deltas add up to the final text. */
    mk_buf s = MK_BUF_INIT;
    line(&s, "😀", "PARTIAL", NULL);
    line(&s, "😀ж", "PARTIAL", NULL);
    line(&s, "😀жя", "TRUNCATED_FINAL", NULL);
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    cr_assert_eq(run_both(p, &call, s.data, &ev, &err), 0, "%s", err.message);
    cr_expect_str_eq(ev.content.data, "😀жя");
    cr_expect_str_eq(ev.finish, "length");
    cr_expect_eq(ev.usage_only, 0);
    cr_expect(mk_utf8_valid(ev.log.data, ev.log.len));
    events_release(&ev);
    mk_buf_release(&s);
}

Test(yandexgpt, stream_rewrite_cut_error_garbage)
{
    struct events ev;
    struct mk_provider_error err;
    mk_buf s = MK_BUF_INIT;
    /* text that does not continue what was sent */
    line(&s, "Привет", "PARTIAL", NULL);
    line(&s, "Пока", "FINAL", NULL);
    events_init(&ev);
    cr_expect_eq(run_both(p, &call, s.data, &ev, &err), MK_EUPSTREAM_BADREPLY);
    cr_expect(strstr(err.message, "does not continue") != NULL, "%s", err.message);
    cr_expect_str_eq(ev.content.data, "Привет");
    events_release(&ev);
    mk_buf_reset(&s);

    /* cut: no final status */
    line(&s, "Привет", "PARTIAL", NULL);
    events_init(&ev);
    cr_expect_eq(run_both(p, &call, s.data, &ev, &err), MK_EUPSTREAM_BADREPLY);
    cr_expect(strstr(err.message, "final") != NULL);
    events_release(&ev);
    /* cut inside a line */
    events_init(&ev);
    s.data[s.len / 2] = '\0';
    cr_expect_eq(run_both(p, &call, s.data, &ev, &err), MK_EUPSTREAM_BADREPLY);
    events_release(&ev);
    mk_buf_reset(&s);

    /* an error line mid-stream */
    line(&s, "Привет", "PARTIAL", NULL);
    mk_buf_append_str(&s, "{\"error\":{\"grpcCode\":13,\"httpCode\":500,\"message\":\"internal\",\"httpStatus\":"
                          "\"Internal Server Error\"}}\n");
    events_init(&ev);
    cr_expect_eq(run_both(p, &call, s.data, &ev, &err), MK_EUPSTREAM);
    cr_expect_str_eq(err.message, "internal");
    events_release(&ev);
    mk_buf_release(&s);

    /* final line without trailing newline, CRLF lines and blank lines are fine */
    const char *ok = "\r\n{\"result\":{\"alternatives\":[{\"message\":{\"text\":\"a\"},\"status\":"
                     "\"ALTERNATIVE_STATUS_PARTIAL\"}]}}\r\n\r\n"
                     "{\"result\":{\"alternatives\":[{\"message\":{\"text\":\"ab\"},\"status\":"
                     "\"ALTERNATIVE_STATUS_FINAL\"}]}}";
    events_init(&ev);
    cr_expect_eq(run_both(p, &call, ok, &ev, &err), 0, "%s", err.message);
    cr_expect_str_eq(ev.content.data, "ab");
    events_release(&ev);

    static const char *bad[] = {
        "not json\n",
        "{\"result\":{\"alternatives\":[]}}\n",
        "{\"result\":{\"alternatives\":[{\"message\":{\"text\":\"a\"}}]}}\n",
        "{\"result\":{\"alternatives\":[{\"message\":{\"text\":[]},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}]}}\n",
        ("{\"result\":{\"alternatives\":[{\"message\":{\"text\":\"a\"},\"status\":\"ALTERNATIVE_STATUS_FINAL\"}],"
        "\"usage\":{\"inputTextTokens\":\"x\"}}}\n"),
        "[]\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        events_init(&ev);
        cr_expect_eq(run_both(p, &call, bad[i], &ev, &err), MK_EUPSTREAM_BADREPLY, "case %zu", i);
        events_release(&ev);
    }
}

Test(yandexgpt, embeddings)
{
    cr_expect_eq(p->ops->max_embed_batch, 1);
    const char *inputs[] = {"как вернуть товар"};
    struct mk_embed_call ec = {.model = "text-search-doc/latest", .inputs = inputs, .ninputs = 1, .query = true};
    struct mk_upstream_request r = {0};
    cr_assert_eq(p->ops->build_embed(p, &ec, &r), 0);
    cr_expect_str_eq(r.url.data, "https://llm.api.cloud.yandex.net/foundationModels/v1/textEmbedding");
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "modelUri"), "emb://b1gfolder/text-search-query/latest");
    cr_expect_str_eq(jstr(b, "text"), "как вернуть товар");
    json_object_put(b);
    mk_upstream_request_release(&r);
    ec.query = false;
    memset(&r, 0, sizeof r);
    cr_assert_eq(p->ops->build_embed(p, &ec, &r), 0);
    b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "modelUri"), "emb://b1gfolder/text-search-doc/latest");
    json_object_put(b);
    mk_upstream_request_release(&r);
    ec.ninputs = 2;
    memset(&r, 0, sizeof r);
    cr_expect_eq(p->ops->build_embed(p, &ec, &r), MK_EINVAL);
    mk_upstream_request_release(&r);
    ec.ninputs = 1;

    const char *reply = "{\"embedding\":[\"0.25\",\"-1.5\",3],\"numTokens\":\"5\",\"modelVersion\":\"x\"}";
    json_object *vecs = json_object_new_array();
    struct mk_usage u;
    struct mk_provider_error err;
    cr_assert_eq(p->ops->decode_embed(p, &ec, mk_slice_cstr(reply), vecs, &u, &err), 0, "%s", err.message);
    cr_expect_eq(json_object_array_length(vecs), 1);
    cr_expect_eq(json_object_array_length(jpath(vecs, "0")), 3);
    cr_expect_float_eq(json_object_get_double(jpath(vecs, "0.1")), -1.5, 1e-12);
    cr_expect_float_eq(json_object_get_double(jpath(vecs, "0.2")), 3.0, 1e-12);
    cr_expect_eq(u.prompt_tokens, 5);
    json_object_put(vecs);

    static const char *bad[] = {
        "{\"embedding\":[]}",
        "{\"embedding\":[\"x\"]}",
        "{\"embedding\":[\"1e999\"]}",
        "{\"embedding\":[\"1 \"]}",
        "{\"embedding\":[true]}",
        "{\"embedding\":[1],\"numTokens\":\"-3\"}",
        "{\"vector\":[1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vecs = json_object_new_array();
        cr_expect_eq(p->ops->decode_embed(p, &ec, mk_slice_cstr(bad[i]), vecs, &u, &err), MK_EUPSTREAM_BADREPLY,
                     "case %zu", i);
        cr_expect_eq(json_object_array_length(vecs), 0);
        json_object_put(vecs);
    }
}
