/* Tests for the OpenAI-compatible adapter (src/provider/openai.c). */
#include "provider_test.h"

#include "core/mk_limits.h"
#include "provider/provider_int.h"

static char *extra_headers[] = {"X-Team: support"};
static struct mk_provider_config cfg = {
    .name = "oa",
    .type = MK_PROVIDER_OPENAI,
    .base_url = "https://api.example.com/v1/",
    .api_key = "sk-test",
    .headers = extra_headers,
    .nheaders = 1,
};
static mk_provider *p;
static json_object *req;
static struct mk_chat_call call;

static void setup(void)
{
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
    req = json_tokener_parse("{\"model\":\"support\",\"messages\":[{\"role\":\"user\",\"content\":\"Привет\"}],"
                             "\"temperature\":0.3,\"stream_options\":{\"include_usage\":false,\"x\":1},"
                             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]}");
    cr_assert_not_null(req);
    call = (struct mk_chat_call){.request = req, .model = "gpt-4o-mini", .response_id = "chatcmpl-1",
                                 .created = 1700000000, .request_id = "abcd"};
}

static void teardown(void)
{
    json_object_put(req);
    mk_provider_free(p);
}

TestSuite(openai, .init = setup, .fini = teardown, .timeout = 30);

Test(openai, table_and_lifecycle)
{
    cr_assert_eq(mk_provider_ops_for(MK_PROVIDER_OPENAI), p->ops);
    cr_assert_str_eq(mk_provider_ops_for(MK_PROVIDER_GIGACHAT)->type, "gigachat");
    cr_assert_str_eq(mk_provider_ops_for(MK_PROVIDER_YANDEXGPT)->type, "yandexgpt");
    cr_assert_not_null(mk_provider_ops_for(MK_PROVIDER_LOCAL));
    cr_assert_str_eq(mk_provider_ops_for(MK_PROVIDER_LOCAL)->type, "local");
    cr_assert_null(mk_provider_ops_for((enum mk_provider_type)99));
    mk_provider_free(NULL);
}

Test(openai, build_chat_plain)
{
    struct mk_upstream_request r = {0};
    cr_assert_eq(p->ops->build_chat(p, &call, &r), 0);
    cr_expect_str_eq(r.url.data, "https://api.example.com/v1/chat/completions");
    cr_expect(has_header(&r, "Authorization: Bearer sk-test"));
    cr_expect(has_header(&r, "Content-Type: application/json"));
    cr_expect(has_header(&r, "X-Team: support"));
    cr_expect(has_header(&r, "X-Request-Id: abcd"));
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "model"), "gpt-4o-mini");
    cr_expect_str_eq(jstr(b, "messages.0.content"), "Привет");
    cr_expect_float_eq(json_object_get_double(jpath(b, "temperature")), 0.3, 1e-12);
    cr_expect_str_eq(jstr(b, "tools.0.function.name"), "f");
    cr_expect_null(jpath(b, "stream"));
    cr_expect_null(jpath(b, "stream_options"), "stream_options is refused upstream without stream");
    json_object_put(b);
    mk_upstream_request_release(&r);
    mk_upstream_request_release(&r); /* idempotent */
    /* the client's request is untouched */
    cr_expect_str_eq(jstr(req, "model"), "support");
}

Test(openai, build_chat_stream_forces_usage)
{
    struct mk_upstream_request r = {0};
    call.stream = true;
    cr_assert_eq(p->ops->build_chat(p, &call, &r), 0);
    cr_expect(has_header(&r, "Accept: text/event-stream"));
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect(json_object_get_boolean(jpath(b, "stream")));
    cr_expect(json_object_get_boolean(jpath(b, "stream_options.include_usage")));
    cr_expect_eq(json_object_get_int(jpath(b, "stream_options.x")), 1);
    json_object_put(b);
    mk_upstream_request_release(&r);
    cr_expect_eq(json_object_get_boolean(jpath(req, "stream_options.include_usage")), 0);
}

Test(openai, build_chat_without_key_and_injection)
{
    struct mk_provider_config c2 = cfg;
    c2.api_key = NULL;
    c2.nheaders = 0;
    mk_provider *p2;
    cr_assert_eq(mk_provider_new(&c2, &p2), 0);
    struct mk_upstream_request r = {0};
    cr_assert_eq(p2->ops->build_chat(p2, &call, &r), 0);
    cr_expect_not(has_header_prefix(&r, "Authorization:"));
    mk_upstream_request_release(&r);
    mk_provider_free(p2);

    c2.api_key = "sk\r\nX-Evil: 1";
    cr_assert_eq(mk_provider_new(&c2, &p2), 0);
    memset(&r, 0, sizeof r);
    cr_expect_eq(p2->ops->build_chat(p2, &call, &r), MK_EINVAL);
    mk_upstream_request_release(&r);
    mk_provider_free(p2);
}

static const char *reply_tools =
    "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"created\":1700000001,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
    "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_order\",\"arguments\":\"{\\\"id\\\":42}\"}}]},"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":7,\"total_tokens\":57}}";

Test(openai, decode_chat_tool_calls)
{
    mk_buf out = MK_BUF_INIT;
    struct mk_usage u;
    struct mk_provider_error err;
    cr_assert_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(reply_tools), &out, &u, &err), 0);
    cr_expect_eq(u.prompt_tokens, 50);
    cr_expect_eq(u.completion_tokens, 7);
    cr_expect_eq(u.total_tokens, 57);
    json_object *o = jparse(out.data, out.len);
    cr_expect_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"id\":42}");
    cr_expect_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
    cr_expect(json_object_is_type(jpath(o, "choices.0.message.content"), json_type_null));
    json_object_put(o);
    mk_buf_release(&out);
}

static int decode_fails(const char *body, int expect, const char *msg_part)
{
    mk_buf out = MK_BUF_INIT;
    struct mk_usage u;
    struct mk_provider_error err;
    memset(&err, 0, sizeof err);
    int rc = p->ops->decode_chat(p, &call, mk_slice_cstr(body), &out, &u, &err);
    cr_expect_eq(rc, expect, "%s -> %d (%s)", body, rc, err.message);
    cr_expect_eq(err.code, expect);
    if (msg_part) cr_expect(strstr(err.message, msg_part) != NULL, "message '%s' lacks '%s'", err.message, msg_part);
    cr_expect(err.message[0] != '\0');
    mk_buf_release(&out);
    return rc;
}

Test(openai, decode_chat_rejects_bad_replies)
{
    decode_fails("", MK_EUPSTREAM_BADREPLY, "empty");
    decode_fails("<html>502</html>", MK_EUPSTREAM_BADREPLY, "not valid JSON");
    decode_fails("{\"choices\":[]", MK_EUPSTREAM_BADREPLY, "truncated");
    decode_fails("[1,2]", MK_EUPSTREAM_BADREPLY, "not a JSON object");
    decode_fails("{\"object\":\"list\",\"choices\":[]}", MK_EUPSTREAM_BADREPLY, "list");
    decode_fails("{\"object\":\"chat.completion\"}", MK_EUPSTREAM_BADREPLY, "choices");
    decode_fails("{\"choices\":[{\"message\":7}]}", MK_EUPSTREAM_BADREPLY, "message");
    decode_fails("{\"choices\":[{\"message\":{\"content\":5}}]}", MK_EUPSTREAM_BADREPLY, "content");
    decode_fails("{\"choices\":[],\"usage\":{\"prompt_tokens\":\"x\"}}", MK_EUPSTREAM_BADREPLY, "usage");
    decode_fails("{\"choices\":[],\"usage\":{\"prompt_tokens\":99999999999999999999999}}", MK_EUPSTREAM_BADREPLY,
                 "usage");
    decode_fails("{\"choices\":[],\"usage\":{\"prompt_tokens\":-1}}", MK_EUPSTREAM_BADREPLY, "usage");
    decode_fails("{\"choices\":[{\"message\":{\"content\":\"\xff\xfe\"}}]}", MK_EUPSTREAM_BADREPLY, "JSON");
    decode_fails("{\"choices\":[]} trailing", MK_EUPSTREAM_BADREPLY, "JSON");
    decode_fails("{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}", MK_EUPSTREAM, "overloaded");
    /* nesting beyond MK_MAX_JSON_DEPTH */
    mk_buf deep = MK_BUF_INIT;
    mk_buf_append_str(&deep, "{\"choices\":");
    for (int i = 0; i < MK_MAX_JSON_DEPTH + 5; i++) mk_buf_append_char(&deep, '[');
    for (int i = 0; i < MK_MAX_JSON_DEPTH + 5; i++) mk_buf_append_char(&deep, ']');
    mk_buf_append_char(&deep, '}');
    decode_fails(deep.data, MK_EUPSTREAM_BADREPLY, "JSON");
    mk_buf_release(&deep);
}

Test(openai, decode_chat_reserialises_control_chars)
{
    mk_buf out = MK_BUF_INIT;
    struct mk_usage u;
    struct mk_provider_error err;
    const char *body = "{\"choices\":[{\"message\":{\"content\":\"a\x01z\"}}]}";
    cr_assert_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(body), &out, &u, &err), 0);
    cr_expect(strchr(out.data, '\x01') == NULL);
    cr_expect_eq(u.total_tokens, 0);
    mk_buf_release(&out);
}

Test(openai, decode_chat_relays_valid_replies_byte_for_byte)
{
    /* Odd but valid formatting, escapes and a number json-c would print differently:
     * relayed as sent, no re-serialising. */
    const char *bodies[] = {
        reply_tools,
        "{\n  \"object\" : \"chat.completion\",\r\n\t\"choices\":[{\"message\":{\"content\":\"a\\n\\u0001\\\"q\"}}],"
        "\"x\":1.10,\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        mk_buf out = MK_BUF_INIT;
        struct mk_usage u;
        struct mk_provider_error err;
        cr_assert_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(bodies[i]), &out, &u, &err), 0, "%s", err.message);
        cr_expect_eq(out.len, strlen(bodies[i]));
        cr_expect_eq(memcmp(out.data, bodies[i], out.len), 0, "%.*s", (int)out.len, out.data);
        mk_buf_release(&out);
    }
}

Test(openai, decode_chat_reserialises_raw_newline_in_string)
{
    mk_buf out = MK_BUF_INIT;
    struct mk_usage u;
    struct mk_provider_error err;
    /* json-c accepts a raw newline inside a string; strict clients do not. */
    const char *body = "{\"choices\":[{\"message\":{\"content\":\"line1\nline2\\\"\"}}]}";
    cr_assert_eq(p->ops->decode_chat(p, &call, mk_slice_cstr(body), &out, &u, &err), 0);
    cr_expect(memchr(out.data, '\n', out.len) == NULL);
    json_object *o = jparse(out.data, out.len);
    cr_expect_str_eq(jstr(o, "choices.0.message.content"), "line1\nline2\"");
    json_object_put(o);
    mk_buf_release(&out);
}

Test(openai, raw_control_scan)
{
    cr_expect(!mk_json_has_raw_controls(mk_slice_cstr("{\"a\":\"b\"}")));
    cr_expect(!mk_json_has_raw_controls(mk_slice_cstr("{\n\t\"a\" :\r\n \"b\\n\"}")));
    cr_expect(mk_json_has_raw_controls(mk_slice_cstr("{\"a\":\"b\nc\"}")));
    cr_expect(mk_json_has_raw_controls(mk_slice_cstr("{\"a\":\"b\tc\"}")));
    cr_expect(mk_json_has_raw_controls(mk_slice_cstr("{\"a\\\"\n\":1}")));   /* escaped quote keeps the string open */
    cr_expect(!mk_json_has_raw_controls(mk_slice_cstr("{\"a\\\\\":\n1}")));  /* escaped backslash closes it */
    cr_expect(mk_json_has_raw_controls(mk_slice_cstr("{\"a\":1}\x01")));
    cr_expect(!mk_json_has_raw_controls((mk_slice){"", 0}));
}

/* A realistic stream: role chunk, text, a tool call split over chunks, finish, usage,
 * plus a comment, an unknown field and CRLF line ends. */
static const char *stream_ok =
    ": keep-alive\r\n\r\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n"
    "event: message\n"
    "data:{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"Здравствуйте\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\", мир\"},\"finish_reason\":null}]}\r\r"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
    "\"arguments\":\"{\\\"a\\\"\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n"
    "data: [DONE]\n\n";

Test(openai, stream_whole_and_byte_by_byte)
{
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    cr_assert_eq(run_both(p, &call, stream_ok, &ev, &err), 0, "%s", err.message);
    cr_expect_eq(ev.count, 6);
    cr_expect_str_eq(ev.content.data, "Здравствуйте, мир");
    cr_expect_eq(ev.usage_only, 1);
    cr_expect(ev.has_usage);
    cr_expect_eq(ev.usage.prompt_tokens, 9);
    cr_expect_eq(ev.usage.total_tokens, 12);
    cr_expect_str_eq(ev.finish, "stop");
    /* payloads are relayed byte for byte */
    cr_expect(strstr(ev.log.data, "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
                                  "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Здравствуйте\"},"
                                  "\"finish_reason\":null}]} |u=0 fr=-\n") != NULL);
    cr_expect(strstr(ev.log.data, "\"arguments\":\"{\\\"a\\\"\"") != NULL, "tool call deltas pass through");
    events_release(&ev);
}

Test(openai, stream_done_without_trailing_blank_line)
{
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    const char *s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]";
    cr_assert_eq(run_both(p, &call, s, &ev, &err), 0);
    cr_expect_str_eq(ev.content.data, "hi");
    events_release(&ev);
}

Test(openai, stream_multiline_data_is_joined_and_reserialised)
{
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    const char *s = "data: {\"choices\":[{\"index\":0,\n"
                    "data: \"delta\":{\"content\":\"x\"}}]}\n\n"
                    "data: [DONE]\n\n";
    cr_assert_eq(run_both(p, &call, s, &ev, &err), 0, "%s", err.message);
    cr_expect_eq(ev.count, 1);
    cr_expect_str_eq(ev.content.data, "x");
    cr_expect(strchr(ev.log.data, '\n') == ev.log.data + ev.log.len - 1, "chunk JSON holds no newline");
    events_release(&ev);
}

Test(openai, stream_cut_is_an_error)
{
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    /* everything but [DONE] */
    const char *done = strstr(stream_ok, "data: [DONE]");
    char *cut = strndup(stream_ok, (size_t)(done - stream_ok));
    cr_expect_eq(run_both(p, &call, cut, &ev, &err), MK_EUPSTREAM_BADREPLY);
    cr_expect(strstr(err.message, "ended early") != NULL, "%s", err.message);
    cr_expect_eq(ev.count, 6);
    events_release(&ev);
    free(cut);

    /* cut inside an event */
    events_init(&ev);
    cut = strndup(stream_ok, 200);
    cr_expect_eq(run_both(p, &call, cut, &ev, &err), MK_EUPSTREAM_BADREPLY);
    events_release(&ev);
    free(cut);

    /* empty body */
    events_init(&ev);
    cr_expect_eq(run_both(p, &call, "", &ev, &err), MK_EUPSTREAM_BADREPLY);
    cr_expect_eq(ev.count, 0);
    events_release(&ev);
}

Test(openai, stream_error_event)
{
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    const char *s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
                    "data: {\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}\n\n"
                    "data: [DONE]\n\n";
    cr_expect_eq(run_both(p, &call, s, &ev, &err), MK_EUPSTREAM);
    cr_expect_str_eq(err.message, "model overloaded");
    cr_expect_eq(ev.count, 1);
    events_release(&ev);
}

Test(openai, stream_garbage_and_bad_shapes)
{
    static const char *bad[] = {
        "data: {not json}\n\n",
        "data: {\"choices\":5}\n\n",
        "data: {\"id\":\"x\"}\n\n",
        "data: {\"choices\":[7]}\n\n",
        "data: {\"choices\":[{\"delta\":\"s\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":true}}\n\n",
        "data: \"just a string\"\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"\xc3\x28\"}}]}\n\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct events ev;
        events_init(&ev);
        struct mk_provider_error err;
        cr_expect_eq(run_both(p, &call, bad[i], &ev, &err), MK_EUPSTREAM_BADREPLY, "case %zu", i);
        cr_expect_eq(ev.count, 0);
        events_release(&ev);
    }
}

Test(openai, stream_failure_is_sticky_and_sink_stop_propagates)
{
    mk_stream_decoder *d = p->ops->stream_new(p, &call);
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    cr_expect_eq(p->ops->stream_feed(d, "data: nope\n\n", 12, collect, &ev, &err), MK_EUPSTREAM_BADREPLY);
    memset(&err, 0, sizeof err);
    cr_expect_eq(p->ops->stream_feed(d, "data: [DONE]\n\n", 14, collect, &ev, &err), MK_EUPSTREAM_BADREPLY);
    cr_expect_eq(err.code, MK_EUPSTREAM_BADREPLY);
    cr_expect_eq(p->ops->stream_finish(d, collect, &ev, &err), MK_EUPSTREAM_BADREPLY);
    p->ops->stream_free(d);
    events_release(&ev);

    events_init(&ev);
    ev.stop_after = 2;
    cr_expect_eq(run_stream(p, &call, stream_ok, strlen(stream_ok), 0, &ev, &err), 7);
    cr_expect_eq(ev.count, 2);
    events_release(&ev);
}

Test(openai, stream_event_too_large)
{
    size_t n = MK_MAX_UPSTREAM_EVENT_BYTES + 100;
    char *big = malloc(n + 1);
    memcpy(big, "data: {\"x\":\"", 12);
    memset(big + 12, 'a', n - 12);
    big[n] = '\0';
    struct events ev;
    events_init(&ev);
    struct mk_provider_error err;
    cr_expect_eq(run_stream(p, &call, big, n, 0, &ev, &err), MK_EUPSTREAM_BADREPLY);
    cr_expect(strstr(err.message, "exceeds") != NULL, "%s", err.message);
    events_release(&ev);
    events_init(&ev);
    cr_expect_eq(run_stream(p, &call, big, n, 65536, &ev, &err), MK_EUPSTREAM_BADREPLY);
    events_release(&ev);
    /* many data lines adding up past the cap */
    mk_buf many = MK_BUF_INIT;
    for (int i = 0; i < 80; i++) {
        mk_buf_append_str(&many, "data: ");
        for (int k = 0; k < 64; k++) mk_buf_append(&many, "0123456789012345678901234567890123456789012345678901234567890123"
                                                   "0123456789012345678901234567890123456789012345678901234567890123"
                                                   "0123456789012345678901234567890123456789012345678901234567890123"
                                                   "0123456789012345678901234567890123456789012345678901234567890123"
                                                   "0123456789012345678901234567890123456789012345678901234567890123"
                                                   "0123456789012345678901234567890123456789012345678901234567890123"
                                                   "0123456789012345678901234567890123456789012345678901234567890123"
                                                   "0123456789012345678901234567890123456789012345678901234567890123",
                                                   512);
        mk_buf_append_char(&many, '\n');
    }
    mk_buf_append_char(&many, '\n');
    events_init(&ev);
    cr_expect_eq(run_stream(p, &call, many.data, many.len, 0, &ev, &err), MK_EUPSTREAM_BADREPLY);
    events_release(&ev);
    mk_buf_release(&many);
    free(big);
}

Test(openai, embeddings)
{
    const char *inputs[] = {"первый", "second"};
    struct mk_embed_call ec = {.model = "text-embedding-3-small", .inputs = inputs, .ninputs = 2};
    struct mk_upstream_request r = {0};
    cr_assert_eq(p->ops->build_embed(p, &ec, &r), 0);
    cr_expect_str_eq(r.url.data, "https://api.example.com/v1/embeddings");
    json_object *b = jparse(r.body.data, r.body.len);
    cr_expect_str_eq(jstr(b, "model"), "text-embedding-3-small");
    cr_expect_str_eq(jstr(b, "input.0"), "первый");
    cr_expect_str_eq(jstr(b, "input.1"), "second");
    json_object_put(b);
    mk_upstream_request_release(&r);

    const char *reply = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.5,-1]},"
                        "{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.25,2.0]}],\"model\":\"m\","
                        "\"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}";
    json_object *vecs = json_object_new_array();
    struct mk_usage u;
    struct mk_provider_error err;
    cr_assert_eq(p->ops->decode_embed(p, &ec, mk_slice_cstr(reply), vecs, &u, &err), 0, "%s", err.message);
    cr_expect_eq(json_object_array_length(vecs), 2);
    cr_expect_float_eq(json_object_get_double(jpath(vecs, "0.0")), 0.25, 1e-12);
    cr_expect_float_eq(json_object_get_double(jpath(vecs, "1.1")), -1.0, 1e-12);
    cr_expect_eq(u.prompt_tokens, 4);
    json_object_put(vecs);

    static const char *bad[] = {
        "{\"data\":[{\"embedding\":[1]}]}",                                       /* one for two */
        "{\"data\":[{\"embedding\":[1],\"index\":0},{\"embedding\":[1],\"index\":0}]}", /* duplicate */
        "{\"data\":[{\"embedding\":[1],\"index\":0},{\"embedding\":[1,2],\"index\":1}]}", /* dims */
        "{\"data\":[{\"embedding\":[1],\"index\":0},{\"embedding\":[NaN],\"index\":1}]}",
        "{\"data\":[{\"embedding\":[1],\"index\":0},{\"embedding\":\"AAAA\",\"index\":1}]}",
        "{\"data\":[{\"embedding\":[1],\"index\":5},{\"embedding\":[1],\"index\":1}]}",
        "{\"data\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vecs = json_object_new_array();
        cr_expect_eq(p->ops->decode_embed(p, &ec, mk_slice_cstr(bad[i]), vecs, &u, &err), MK_EUPSTREAM_BADREPLY,
                     "case %zu", i);
        cr_expect_eq(json_object_array_length(vecs), 0, "nothing appended on failure");
        json_object_put(vecs);
    }
}
