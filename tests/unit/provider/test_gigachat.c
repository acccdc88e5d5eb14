/* Tests for the GigaChat adapter's translations (src/provider/gigachat.c); the OAuth
 * token fetch is tested in test_gigachat_auth.c. */
#include "provider_test.h"

#include "core/mk_time.h"
#include "provider/provider_int.h"

static struct mk_provider_config cfg = {
    .name = "giga",
    .type = MK_PROVIDER_GIGACHAT,
    .credentials = "Y2xpZW50OnNlY3JldA==",
};
static mk_provider *p;
static json_object *req;
static struct mk_chat_call call;

static const char *tool_request =
    "{\"model\":\"support\",\"temperature\":0.2,\"top_p\":0.9,\"max_tokens\":300,\"repetition_penalty\":1.1,"
    "\"messages\":["
    "{\"role\":\"system\",\"content\":\"Ты агент поддержки\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Где мой заказ\"},{\"type\":\"text\",\"text\":\"42?\"}]},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_abc\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_order\",\"arguments\":\"{\\\"id\\\":42}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_abc\",\"content\":\"{\\\"status\\\":\\\"shipped\\\"}\"},"
    "{\"role\":\"assistant\",\"content\":\"Отправлен\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call_x\",\"type\":\"function\","
    "\"function\":{\"name\":\"track\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_x\",\"content\":\"in transit\"}"
    "],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_order\",\"description\":\"Find an order\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"track\"}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_order\"}}}";

static void setup(void)
{
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
    req = json_tokener_parse(tool_request);
    cr_assert_not_null(req);
    call = (struct mk_chat_call){.request = req, .model = "GigaChat-Pro", .response_id = "chatcmpl-g1",
                                 .created = 1700000000, .request_id = "rid-1"};
}

static void teardown(void)
{
    json_object_put(req);
    mk_provider_free(p);
}

TestSuite(gigachat, .init = setup, .fini = teardown, .timeout = 30);

Test(gigachat, build_needs_a_token)
{
    struct mk_upstream_request r = {0};
    cr_expect_eq(p->ops->build_chat(p, &call, &r), MK_EUPSTREAM_AUTH);
    mk_upstream_request_release(&r);
    cr_expect_eq(mk_gigachat_set_token(p, "bad token", 0), MK_EINVAL);
}

Test(gigachat, build_chat_translates_tools)
{
    cr_assert_eq(mk_gigachat_set_token(p, "tok-1", mk_wall_ms() + 1800000), 0);
    struct mk_upstream_request r = {0};
    cr_assert_eq(p->ops->build_chat(p, &call, &r), 0);
    cr_expect_str_eq(r.url.data, "https://gigachat.devices.sberbank.ru/api/v1/chat/completions");
    cr_expect(has_header(&r, "Authorization: Bearer tok-1"));
    cr_expect(has_header(&r, "Content-Type: application/json"));
    cr_expect(has_header(&r, "X-Request-Id: rid-1"));
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "model"), "GigaChat-Pro");
    cr_expect_float_eq(json_object_get_double(jpath(b, "temperature")), 0.2, 1e-12);
    cr_expect_float_eq(json_object_get_double(jpath(b, "top_p")), 0.9, 1e-12);
    cr_expect_eq(json_object_get_int(jpath(b, "max_tokens")), 300);
    cr_expect_float_eq(json_object_get_double(jpath(b, "repetition_penalty")), 1.1, 1e-12);
    cr_expect_eq(json_object_get_boolean(jpath(b, "stream")), 0);
    /* messages */
    cr_expect_eq(json_object_array_length(jpath(b, "messages")), 7);
    cr_expect_str_eq(jstr(b, "messages.0.role"), "system");
    cr_expect_str_eq(jstr(b, "messages.0.content"), "Ты агент поддержки");
    cr_expect_str_eq(jstr(b, "messages.1.content"), "Где мой заказ\n42?");
    cr_expect_str_eq(jstr(b, "messages.2.role"), "assistant");
    cr_expect_str_eq(jstr(b, "messages.2.content"), "");
    cr_expect_str_eq(jstr(b, "messages.2.function_call.name"), "get_order");
    json_object *args = jpath(b, "messages.2.function_call.arguments");
    cr_expect(json_object_is_type(args, json_type_object), "arguments are an object");
    cr_expect_eq(json_object_get_int(jpath(args, "id")), 42);
    cr_expect_str_eq(jstr(b, "messages.3.role"), "function");
    cr_expect_str_eq(jstr(b, "messages.3.name"), "get_order");
    cr_expect_str_eq(jstr(b, "messages.3.content"), "{\"status\":\"shipped\"}");
    cr_expect_str_eq(jstr(b, "messages.4.content"), "Отправлен");
    cr_expect_str_eq(jstr(b, "messages.5.function_call.name"), "track");
    cr_expect_str_eq(jstr(b, "messages.6.name"), "track");
    json_object *wrapped = jparse(jstr(b, "messages.6.content"), strlen(jstr(b, "messages.6.content")));
    cr_expect_str_eq(jstr(wrapped, "result"), "in transit", "plain text results are wrapped as JSON");
    json_object_put(wrapped);
    /* tools */
    cr_expect_null(jpath(b, "tools"));
    cr_expect_null(jpath(b, "tool_choice"));
    cr_expect_eq(json_object_array_length(jpath(b, "functions")), 2);
    cr_expect_str_eq(jstr(b, "functions.0.name"), "get_order");
    cr_expect_str_eq(jstr(b, "functions.0.description"), "Find an order");
    cr_expect_str_eq(jstr(b, "functions.0.parameters.properties.id.type"), "integer");
    cr_expect_str_eq(jstr(b, "functions.1.name"), "track");
    cr_expect_null(jpath(b, "functions.1.parameters"));
    cr_expect_str_eq(jstr(b, "function_call.name"), "get_order");
    json_object_put(b);
    mk_upstream_request_release(&r);
}

static void build_body(const char *request_json, int *rc_out, json_object **body)
{
    json_object *rq = json_tokener_parse(request_json);
    cr_assert_not_null(rq);
    struct mk_chat_call c = call;
    c.request = rq;
    c.stream = true;
    struct mk_upstream_request r = {0};
    *rc_out = p->ops->build_chat(p, &c, &r);
    *body = *rc_out ? NULL : jparse(r.body.data, r.body.len);
    mk_upstream_request_release(&r);
    json_object_put(rq);
}

Test(gigachat, build_chat_tool_choice_and_refusals)
{
    cr_assert_eq(mk_gigachat_set_token(p, "tok-1", mk_wall_ms() + 1800000), 0);
    int rc;
    json_object *b;
    build_body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\","
               "\"max_completion_tokens\":5}", &rc, &b);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(jstr(b, "function_call"), "auto");
    cr_expect_eq(json_object_get_int(jpath(b, "max_tokens")), 5);
    cr_expect(json_object_get_boolean(jpath(b, "stream")));
    json_object_put(b);
    build_body("{\"messages\":[{\"role\":\"developer\",\"content\":\"x\"}],\"tool_choice\":\"none\"}", &rc, &b);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(jstr(b, "function_call"), "none");
    cr_expect_str_eq(jstr(b, "messages.0.role"), "system");
    json_object_put(b);
    build_body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", &rc, &b);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(jstr(b, "function_call"), "auto");
    json_object_put(b);

    static const char *refused[] = {
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
        "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"content\":\"x\"}]}",
        ("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"not json\"}}]}]}"),
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"code_interpreter\"}]}",
        "{\"messages\":\"hi\"}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        build_body(refused[i], &rc, &b);
        cr_expect_eq(rc, MK_EINVAL, "case %zu", i);
    }
}

Test(gigachat, decode_chat_function_call)
{
    const char *reply =
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"function_call\":{\"name\":\"get_order\","
        "\"arguments\":{\"id\":42,\"note\":\"срочно\"}},\"functions_state_id\":\"77\"},\"index\":0,"
        "\"finish_reason\":\"function_call\"}],\"created\":1700000123,\"model\":\"GigaChat-Pro:1.0.26\","
        "\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":15,"
        "\"total_tokens\":135,\"precached_prompt_tokens\":0}}";
    mk_buf out = MK_BUF_INIT;
    struct mk_usage u;
    struct mk_provider_error err;
    cr_assert_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(reply), &out, &u, &err), 0, "%s", err.message);
    cr_expect_eq(u.prompt_tokens, 120);
    cr_expect_eq(u.completion_tokens, 15);
    cr_expect_eq(u.total_tokens, 135);
    json_object *o = jparse(out.data, out.len);
    cr_expect_str_eq(jstr(o, "id"), "chatcmpl-g1");
    cr_expect_str_eq(jstr(o, "object"), "chat.completion");
    cr_expect_eq(json_object_get_int64(jpath(o, "created")), 1700000123);
    cr_expect_str_eq(jstr(o, "model"), "GigaChat-Pro:1.0.26");
    cr_expect_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
    cr_expect(json_object_is_type(jpath(o, "choices.0.message.content"), json_type_null));
    cr_expect_str_eq(jstr(o, "choices.0.message.tool_calls.0.type"), "function");
    cr_expect_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "get_order");
    const char *id = jstr(o, "choices.0.message.tool_calls.0.id");
    cr_assert_not_null(id);
    cr_expect_eq(strncmp(id, "call_", 5), 0);
    const char *args = jstr(o, "choices.0.message.tool_calls.0.function.arguments");
    cr_assert_not_null(args, "arguments are a JSON string");
    json_object *a = jparse(args, strlen(args));
    cr_expect_eq(json_object_get_int(jpath(a, "id")), 42);
    cr_expect_str_eq(jstr(a, "note"), "срочно");
    json_object_put(a);
    cr_expect_eq(json_object_get_int(jpath(o, "usage.total_tokens")), 135);
    json_object_put(o);
    mk_buf_release(&out);
}

Test(gigachat, decode_chat_text_and_finish_reasons)
{
    static const struct { const char *fr, *mapped; } rows[] = {
        {"stop", "stop"}, {"length", "length"}, {"blacklist", "content_filter"}, {"error", "stop"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char reply[512];
        snprintf(reply, sizeof reply,
                 "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Добрый день\"},\"index\":0,"
                 "\"finish_reason\":\"%s\"}],\"created\":1,\"model\":\"GigaChat\",\"usage\":{\"prompt_tokens\":1,"
                 "\"completion_tokens\":2,\"total_tokens\":3}}",
                 rows[i].fr);
        mk_buf out = MK_BUF_INIT;
        struct mk_usage u;
        struct mk_provider_error err;
        cr_assert_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(reply), &out, &u, &err), 0);
        json_object *o = jparse(out.data, out.len);
        cr_expect_str_eq(jstr(o, "choices.0.finish_reason"), rows[i].mapped);
        cr_expect_str_eq(jstr(o, "choices.0.message.content"), "Добрый день");
        cr_expect_null(jpath(o, "choices.0.message.tool_calls"));
        json_object_put(o);
        mk_buf_release(&out);
    }
    static const char *bad[] = {
        "{\"object\":\"chat.completion\"}",
        "{\"choices\":[{\"message\":\"x\"}]}",
        "{\"choices\":[{\"message\":{\"content\":1}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"\",\"function_call\":{\"arguments\":{}}}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"\",\"function_call\":{\"name\":\"f\",\"arguments\":5}}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"},\"finish_reason\":5}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":\"a\"}}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mk_buf out = MK_BUF_INIT;
        struct mk_usage u;
        struct mk_provider_error err;
        cr_expect_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(bad[i]), &out, &u, &err), MK_EUPSTREAM_BADREPLY,
                     "case %zu", i);
        cr_expect(err.message[0]);
        mk_buf_release(&out);
    }
}

static const char *stream_text =
    "data: {\"choices\":[{\"delta\":{\"content\":\"Здрав\",\"role\":\"assistant\"},\"index\":0}],"
    "\"created\":1700000200,\"model\":\"GigaChat:1.0\",\"object\":\"chat.completion\"}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"ствуйте!\"},\"index\":0}],\"created\":1700000200,"
    "\"model\":\"GigaChat:1.0\",\"object\":\"chat.completion\"}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"index\":0,\"finish_reason\":\"stop\"}],\"created\":1700000200,"
    "\"model\":\"GigaChat:1.0\",\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":20,"
    "\"completion_tokens\":4,\"total_tokens\":24}}\n\n"
    "data: [DONE]\n\n";

Test(gigachat, stream_text)
{
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    call.stream = true;
    cr_assert_eq(run_both(p, &call, stream_text, &ev, &err), 0, "%s", err.message);
    cr_expect_eq(ev.count, 4);
    cr_expect_str_eq(ev.content.data, "Здравствуйте!");
    cr_expect_str_eq(ev.finish, "stop");
    cr_expect_eq(ev.usage_only, 1);
    cr_expect_eq(ev.usage.total_tokens, 24);
    /* chunks are OpenAI's, with the call's id/created/model */
    const char *first_end = strchr(ev.log.data, ' ');
    json_object *first = jparse(ev.log.data, (size_t)(first_end - ev.log.data));
    cr_expect_str_eq(jstr(first, "id"), "chatcmpl-g1");
    cr_expect_str_eq(jstr(first, "object"), "chat.completion.chunk");
    cr_expect_eq(json_object_get_int64(jpath(first, "created")), 1700000000);
    cr_expect_str_eq(jstr(first, "model"), "GigaChat-Pro");
    cr_expect_str_eq(jstr(first, "choices.0.delta.role"), "assistant");
    cr_expect_str_eq(jstr(first, "choices.0.delta.content"), "Здрав");
    json_object_put(first);
    /* usage is the last chunk */
    const char *last = strstr(ev.log.data, "\"choices\":[],\"usage\"");
    cr_expect(last && strchr(last, '\n') == ev.log.data + ev.log.len - 1);
    events_release(&ev);
}

Test(gigachat, stream_function_call)
{
    const char *s =
        "data: {\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\",\"function_call\":{\"name\":"
        "\"get_order\",\"arguments\":{\"id\":42}}},\"index\":0,\"finish_reason\":\"function_call\"}],\"created\":1,"
        "\"model\":\"GigaChat\",\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,"
        "\"total_tokens\":11}}\n\n"
        "data: [DONE]\n\n";
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    cr_assert_eq(run_both(p, &call, s, &ev, &err), 0, "%s", err.message);
    cr_expect_eq(ev.count, 2);
    cr_expect_str_eq(ev.finish, "tool_calls");
    const char *sp = strchr(ev.log.data, ' ');
    json_object *c = jparse(ev.log.data, (size_t)(sp - ev.log.data));
    cr_expect_eq(json_object_get_int(jpath(c, "choices.0.delta.tool_calls.0.index")), 0);
    cr_expect_str_eq(jstr(c, "choices.0.delta.tool_calls.0.type"), "function");
    cr_expect_str_eq(jstr(c, "choices.0.delta.tool_calls.0.function.name"), "get_order");
    cr_expect_str_eq(jstr(c, "choices.0.delta.tool_calls.0.function.arguments"), "{\"id\":42}");
    cr_expect_null(jpath(c, "choices.0.delta.content"));
    cr_expect_str_eq(jstr(c, "choices.0.finish_reason"), "tool_calls");
    /* the same id as the non-streamed translation would give */
    char id[32];
    mk_tool_call_id(id, "chatcmpl-g1", 0);
    cr_expect_str_eq(jstr(c, "choices.0.delta.tool_calls.0.id"), id);
    json_object_put(c);
    events_release(&ev);
}

Test(gigachat, stream_cut_error_and_garbage)
{
    struct events ev;
    struct mk_provider_error err;
    const char *done = strstr(stream_text, "data: [DONE]");
    char *cut = strndup(stream_text, (size_t)(done - stream_text));
    events_init(&ev);
    cr_expect_eq(run_both(p, &call, cut, &ev, &err), MK_EUPSTREAM_BADREPLY);
    cr_expect_eq(ev.usage_only, 0, "usage waits for [DONE]");
    events_release(&ev);
    free(cut);

    events_init(&ev);
    cr_expect_eq(run_both(p, &call, "data: {\"status\":429,\"message\":\"Too many requests\"}\n\n", &ev, &err),
                 MK_EUPSTREAM_RATE);
    cr_expect_str_eq(err.message, "Too many requests");
    events_release(&ev);

    events_init(&ev);
    cr_expect_eq(run_both(p, &call, "data: {\"error\":{\"message\":\"internal\"}}\n\n", &ev, &err), MK_EUPSTREAM);
    events_release(&ev);

    static const char *bad[] = {
        "data: {{{\n\n",
        "data: {\"choices\":[{\"index\":0}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":7}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"function_call\":{\"arguments\":{}}}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"function_call\":\"x\"}}]}\n\n",
        "data: {\"model\":\"x\"}\n\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        events_init(&ev);
        cr_expect_eq(run_both(p, &call, bad[i], &ev, &err), MK_EUPSTREAM_BADREPLY, "case %zu", i);
        events_release(&ev);
    }
}

Test(gigachat, error_401_drops_the_token)
{
    cr_assert_eq(mk_gigachat_set_token(p, "tok-1", mk_wall_ms() + 1800000), 0);
    struct mk_provider_error err;
    p->ops->decode_error(p, 401, mk_slice_cstr("{\"status\":401,\"message\":\"Token has expired\"}"),
                         (mk_slice){NULL, 0}, &err);
    cr_expect_eq(err.code, MK_EUPSTREAM_AUTH);
    cr_expect(err.retryable);
    cr_expect_str_eq(err.message, "Token has expired");
    cr_expect_not(mk_gigachat_has_token(p));
    struct mk_upstream_request r = {0};
    cr_expect_eq(p->ops->build_chat(p, &call, &r), MK_EUPSTREAM_AUTH);
    mk_upstream_request_release(&r);
    /* other statuses keep it */
    cr_assert_eq(mk_gigachat_set_token(p, "tok-2", mk_wall_ms() + 1800000), 0);
    p->ops->decode_error(p, 500, (mk_slice){NULL, 0}, (mk_slice){NULL, 0}, &err);
    cr_expect_eq(err.code, MK_EUPSTREAM);
    cr_expect(mk_gigachat_has_token(p));
}

Test(gigachat, embeddings)
{
    cr_assert_eq(mk_gigachat_set_token(p, "tok-1", mk_wall_ms() + 1800000), 0);
    const char *inputs[] = {"раз", "два"};
    struct mk_embed_call ec = {.model = NULL, .inputs = inputs, .ninputs = 2};
    struct mk_upstream_request r = {0};
    cr_assert_eq(p->ops->build_embed(p, &ec, &r), 0);
    cr_expect_str_eq(r.url.data, "https://gigachat.devices.sberbank.ru/api/v1/embeddings");
    cr_expect(has_header(&r, "Authorization: Bearer tok-1"));
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "model"), "Embeddings");
    cr_expect_str_eq(jstr(b, "input.1"), "два");
    json_object_put(b);
    mk_upstream_request_release(&r);

    const char *reply = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"embedding\":[0.1,0.2],"
                        "\"index\":0,\"usage\":{\"prompt_tokens\":3}},{\"object\":\"embedding\",\"embedding\":"
                        "[0.3,0.4],\"index\":1,\"usage\":{\"prompt_tokens\":4}}],\"model\":\"Embeddings\"}";
    json_object *vecs = json_object_new_array();
    struct mk_usage u;
    struct mk_provider_error err;
    cr_assert_eq(p->ops->decode_embed(p, &ec, mk_slice_cstr(reply), vecs, &u, &err), 0, "%s", err.message);
    cr_expect_eq(json_object_array_length(vecs), 2);
    cr_expect_float_eq(json_object_get_double(jpath(vecs, "1.1")), 0.4, 1e-12);
    cr_expect_eq(u.prompt_tokens, 7, "per-item usage is summed");
    json_object_put(vecs);
}
