/* Tests for the shared provider pieces: error mapping, request objects, chunk
 * builders, usage parsing, and the line/SSE framing in provider_int. */
#include "provider_test.h"

#include <time.h>

#include "core/mk_utf8.h"
#include "provider/provider_int.h"

static const mk_slice none = {NULL, 0};

Test(provider_error, status_table)
{
    static const struct { int status, code; bool retry; } rows[] = {
        {400, MK_EUPSTREAM_CLIENT, false}, {404, MK_EUPSTREAM_CLIENT, false}, {409, MK_EUPSTREAM_CLIENT, false},
        {413, MK_EUPSTREAM_CLIENT, false}, {422, MK_EUPSTREAM_CLIENT, false}, {401, MK_EUPSTREAM_AUTH, true},
        {403, MK_EUPSTREAM_AUTH, true},    {408, MK_EUPSTREAM_TIMEOUT, true}, {429, MK_EUPSTREAM_RATE, true},
        {500, MK_EUPSTREAM, true},         {502, MK_EUPSTREAM, true},         {503, MK_EUPSTREAM, true},
        {418, MK_EUPSTREAM_CLIENT, false}, {302, MK_EUPSTREAM_BADREPLY, true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct mk_provider_error e;
        mk_provider_error_from_http(rows[i].status, none, none, &e);
        cr_expect_eq(e.code, rows[i].code, "status %d", rows[i].status);
        cr_expect_eq(e.retryable, rows[i].retry, "status %d", rows[i].status);
        cr_expect(strstr(e.message, "HTTP") != NULL);
    }
}

Test(provider_error, messages_and_retry_after)
{
    struct mk_provider_error e;
    mk_provider_error_from_http(429, mk_slice_cstr("{\"error\":{\"message\":\"slow down\",\"type\":\"x\"}}"),
                                mk_slice_cstr(" 7 "), &e);
    cr_expect_str_eq(e.message, "slow down");
    cr_expect_eq(e.retry_after_ms, 7000);
    mk_provider_error_from_http(401, mk_slice_cstr("{\"status\":401,\"message\":\"Token has expired\"}"), none, &e);
    cr_expect_str_eq(e.message, "Token has expired");
    mk_provider_error_from_http(400, mk_slice_cstr("{\"error\":\"bad model\"}"), none, &e);
    cr_expect_str_eq(e.message, "bad model");
    mk_provider_error_from_http(400, mk_slice_cstr("{\"error\":{\"grpcCode\":3,\"httpCode\":400,\"message\":"
                                                   "\"Invalid modelUri\",\"httpStatus\":\"Bad Request\"}}"),
                                none, &e);
    cr_expect_str_eq(e.message, "Invalid modelUri");
    mk_provider_error_from_http(502, mk_slice_cstr("<html>bad gateway</html>"), mk_slice_cstr("soon"), &e);
    cr_expect_str_eq(e.message, "upstream answered HTTP 502");
    cr_expect_eq(e.retry_after_ms, 0);
    /* HTTP-date in the future */
    time_t at = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&at, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    mk_provider_error_from_http(429, none, mk_slice_cstr(date), &e);
    cr_expect(e.retry_after_ms > 100000 && e.retry_after_ms <= 120000, "%u", e.retry_after_ms);
    mk_provider_error_from_http(429, none, mk_slice_cstr("99999999999999999999"), &e);
    cr_expect_eq(e.retry_after_ms, UINT32_MAX);
    /* long message cut at a character boundary */
    mk_buf big = MK_BUF_INIT;
    mk_buf_append_str(&big, "{\"message\":\"");
    for (int i = 0; i < 400; i++) mk_buf_append_str(&big, "ж");
    mk_buf_append_str(&big, "\"}");
    mk_provider_error_from_http(500, mk_buf_slice(&big), none, &e);
    cr_expect(strlen(e.message) <= 511 && strlen(e.message) >= 500);
    cr_expect(mk_utf8_valid(e.message, strlen(e.message)), "cut inside a character");
    mk_buf_release(&big);
}

Test(provider_request, headers)
{
    struct mk_upstream_request r = {0};
    cr_expect_eq(mk_upstream_request_add_header(&r, "A: %d", 1), 0);
    cr_expect_eq(mk_upstream_request_add_header(&r, "B: %s", "x\ny"), MK_EINVAL);
    cr_expect_eq(mk_upstream_request_add_header(&r, "C: %s", "x\r"), MK_EINVAL);
    cr_expect_eq(r.nheaders, 1);
    cr_expect_str_eq(r.headers[0], "A: 1");
    mk_upstream_request_release(&r);
    cr_expect_eq(r.nheaders, 0);
    mk_upstream_request_release(NULL);
}

Test(provider_chunks, builders_and_usage)
{
    mk_buf b = MK_BUF_INIT;
    json_object *delta = json_tokener_parse("{\"content\":\"a/b \\\"q\\\"\"}");
    cr_assert_eq(mk_openai_chunk_json(&b, "id-1", 5, "m", delta, NULL), 0);
    cr_expect_str_eq(b.data, "{\"id\":\"id-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
                             "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a/b \\\"q\\\"\"},"
                             "\"finish_reason\":null}]}");
    mk_buf_reset(&b);
    cr_assert_eq(mk_openai_chunk_json(&b, "id-1", 5, "m", NULL, "stop"), 0);
    cr_expect(strstr(b.data, "\"delta\":{},\"finish_reason\":\"stop\"") != NULL);
    mk_buf_reset(&b);
    struct mk_usage u = {3, 4, 7};
    cr_assert_eq(mk_openai_usage_chunk_json(&b, "id-1", 5, "m", &u), 0);
    json_object *o = jparse(b.data, b.len);
    cr_expect_eq(json_object_array_length(jpath(o, "choices")), 0);
    cr_expect_eq(json_object_get_int(jpath(o, "usage.total_tokens")), 7);
    struct mk_usage back;
    cr_expect(mk_openai_parse_usage(jpath(o, "usage"), &back));
    cr_expect_eq(back.completion_tokens, 4);
    json_object_put(o);
    json_object_put(delta);
    mk_buf_release(&b);

    json_object *x = json_tokener_parse("{\"prompt_tokens\":5}");
    cr_expect(mk_openai_parse_usage(x, &back));
    cr_expect_eq(back.total_tokens, 5);
    json_object_put(x);
    x = json_tokener_parse("{\"prompt_tokens\":1.5}");
    cr_expect_not(mk_openai_parse_usage(x, &back));
    json_object_put(x);
    cr_expect_not(mk_openai_parse_usage(NULL, &back));
}

/* --- framing ---------------------------------------------------------------- */

static int on_data(void *arg, mk_slice data)
{
    mk_buf *b = arg;
    mk_buf_append_char(b, '[');
    mk_buf_append_slice(b, data);
    mk_buf_append_char(b, ']');
    return 0;
}

static void sse_run(const char *in, size_t piece, mk_buf *out)
{
    struct mk_sse s;
    mk_sse_init(&s);
    size_t len = strlen(in);
    if (!piece) piece = len ? len : 1;
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        char *copy = malloc(n);
        memcpy(copy, in + off, n);
        cr_assert_eq(mk_sse_feed(&s, copy, n, on_data, out), 0);
        free(copy);
    }
    cr_assert_eq(mk_sse_finish(&s, on_data, out), 0);
    mk_sse_release(&s);
}

Test(provider_sse, framing)
{
    static const struct { const char *in, *out; } cases[] = {
        {"data: a\n\n", "[a]"},
        {"data:a\r\n\r\n", "[a]"},
        {"data:  a\r\r", "[ a]"},
        {"data: a\ndata: b\n\n", "[a\nb]"},
        {": comment\nid: 4\nevent: x\nretry: 5\ndata: a\n\n", "[a]"},
        {"data\n\ndata:\n\n", ""},             /* empty data is not dispatched */
        {"data: a\n\ndata: b", "[a][b]"},      /* last event without its blank line */
        {"dat: a\n\n", ""},
        {"data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\n\n", "[a][b][c][d]"},
        {"\n\n\n", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t piece = 0; piece < 5; piece++) {
            mk_buf out = MK_BUF_INIT;
            sse_run(cases[i].in, piece, &out);
            cr_expect_str_eq(out.data ? out.data : "", cases[i].out, "case %zu piece %zu", i, piece);
            mk_buf_release(&out);
        }
    }
}

static int on_line(void *arg, mk_slice line, bool stable)
{
    mk_buf *b = arg;
    mk_buf_append_char(b, '<');
    mk_buf_append_slice(b, line);
    mk_buf_append_char(b, '>');
    return 0;
}

Test(provider_lines, splitting)
{
    const char *in = "a\r\nb\nc\rd\r\r\ne";
    for (size_t piece = 1; piece < 4; piece++) {
        struct mk_lines l;
        mk_lines_init(&l);
        mk_buf out = MK_BUF_INIT;
        for (size_t off = 0; off < strlen(in); off += piece) {
            size_t n = strlen(in) - off < piece ? strlen(in) - off : piece;
            cr_assert_eq(mk_lines_feed(&l, in + off, n, on_line, &out), 0);
        }
        cr_assert_eq(mk_lines_finish(&l, on_line, &out), 0);
        cr_expect_str_eq(out.data, "<a><b><c><d><><e>", "piece %zu", piece);
        mk_buf_release(&out);
        mk_lines_release(&l);
    }
}

Test(provider_json, strict_parse)
{
    struct mk_provider_error e;
    json_object *o = mk_json_parse_strict(NULL, mk_slice_cstr(" {\"a\":1} \n"), "x", &e);
    cr_expect_not_null(o);
    json_object_put(o);
    cr_expect_null(mk_json_parse_strict(NULL, mk_slice_cstr("null"), "x", &e));
    cr_expect_eq(e.code, MK_EUPSTREAM_BADREPLY);
    cr_expect_null(mk_json_parse_strict(NULL, mk_slice_cstr("{\"a\":1} x"), "x", &e));
    cr_expect_null(mk_json_parse_strict(NULL, mk_slice_cstr("{\"a\":[1,]}"), "x", &e));
    int64_t n = 0;
    json_object *c = json_tokener_parse("{\"a\":\"12\",\"b\":\"1x\",\"c\":\"\",\"d\":\"-1\",\"e\":12,\"f\":1e3}");
    cr_expect(mk_json_get_count(c, "a", &n) && n == 12);
    cr_expect_not(mk_json_get_count(c, "b", &n));
    cr_expect_not(mk_json_get_count(c, "c", &n));
    cr_expect_not(mk_json_get_count(c, "d", &n));
    cr_expect(mk_json_get_count(c, "e", &n) && n == 12);
    cr_expect_not(mk_json_get_count(c, "f", &n));
    cr_expect_not(mk_json_get_count(c, "zz", &n));
    json_object_put(c);
}

Test(provider_misc, tool_call_id_is_stable)
{
    char a[32], b[32], c[32];
    mk_tool_call_id(a, "chatcmpl-1", 0);
    mk_tool_call_id(b, "chatcmpl-1", 0);
    mk_tool_call_id(c, "chatcmpl-1", 1);
    cr_expect_str_eq(a, b);
    cr_expect_str_neq(a, c);
    cr_expect_eq(strncmp(a, "call_", 5), 0);
    cr_expect_eq(strlen(a), 21);
}
