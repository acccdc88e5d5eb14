/* The output guard's matching (canary, words, patterns, across chunk boundaries, fail
 * closed) and the filter itself on a hand-made request context. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_pool.h"
#include "pipeline/mk_output_filter.h"
#include "pipeline/mk_pipeline.h"

extern const struct mk_filter_ops mk_filter_output;

static struct mk_output_policy *policy(const char *const *words, size_t nw, const char *const *pats, size_t np)
{
    struct mk_output_policy *p = NULL;
    mk_buf err = MK_BUF_INIT;
    int rc = mk_output_policy_new(words, nw, pats, np, &p, &err);
    cr_assert_eq(rc, 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    return p;
}

static int scan_all(const struct mk_output_policy *p, const char *canary, const char *text, const char **rule)
{
    struct mk_output_scan s;
    mk_output_scan_init(&s, p, canary);
    int rc = mk_output_scan_feed(&s, text, strlen(text), rule);
    mk_output_scan_release(&s);
    return rc;
}

Test(output_scan, words_are_caseless_in_russian_and_english)
{
    const char *words[] = {"секретный проект", "Project Falcon"};
    struct mk_output_policy *p = policy(words, 2, NULL, 0);
    const char *rule = NULL;
    cr_expect_eq(scan_all(p, NULL, "Это СЕКРЕТНЫЙ Проект, тсс", &rule), 1);
    cr_expect_str_eq(rule, "word");
    cr_expect_eq(scan_all(p, NULL, "about PROJECT falcon today", &rule), 1);
    cr_expect_eq(scan_all(p, NULL, "секретный код проекта", &rule), 0);
    cr_expect_null(rule);
    /* a phrase is literal: regex characters in it mean themselves */
    const char *lit[] = {"a.b"};
    struct mk_output_policy *q = policy(lit, 1, NULL, 0);
    cr_expect_eq(scan_all(q, NULL, "axb", &rule), 0);
    cr_expect_eq(scan_all(q, NULL, "A.B", &rule), 1);
    mk_output_policy_free(q);
    mk_output_policy_free(p);
}

Test(output_scan, patterns_are_unicode_and_caseless)
{
    const char *pats[] = {"пароль\\s*:\\s*\\w+", "\\bapi[_-]?key\\b"};
    struct mk_output_policy *p = policy(NULL, 0, pats, 2);
    const char *rule = NULL;
    cr_expect_eq(scan_all(p, NULL, "ваш ПАРОЛЬ: Щука42", &rule), 1);
    cr_expect_str_eq(rule, "pattern");
    cr_expect_eq(scan_all(p, NULL, "set the API-KEY header", &rule), 1);
    cr_expect_eq(scan_all(p, NULL, "пароли не храним", &rule), 0);
    mk_output_policy_free(p);
}

Test(output_scan, empty_lists_make_no_policy)
{
    struct mk_output_policy *p = (void *)1;
    cr_expect_eq(mk_output_policy_new(NULL, 0, NULL, 0, &p, NULL), 0);
    cr_expect_null(p);
}

Test(output_scan, a_bad_pattern_is_refused_with_its_text)
{
    const char *pats[] = {"ok", "(unclosed"};
    struct mk_output_policy *p = NULL;
    mk_buf err = MK_BUF_INIT;
    cr_expect_eq(mk_output_policy_new(NULL, 0, pats, 2, &p, &err), MK_EINVAL);
    cr_expect_null(p);
    cr_expect(err.data && strstr(err.data, "(unclosed") && strstr(err.data, "output_patterns"));
    mk_buf_release(&err);
}

Test(output_scan, phrase_split_across_chunks_is_found)
{
    const char *words[] = {"секретный проект"};
    struct mk_output_policy *p = policy(words, 1, NULL, 0);
    struct mk_output_scan s;
    mk_output_scan_init(&s, p, NULL);
    const char *rule = NULL;
    const char *parts[] = {"Наш ", "сек", "ретный про", "ект"};
    int rc = 0;
    size_t i;
    for (i = 0; i < 4 && rc == 0; i++) rc = mk_output_scan_feed(&s, parts[i], strlen(parts[i]), &rule);
    cr_expect_eq(rc, 1);
    cr_expect_eq(i, 4, "found on the chunk that completes it, not before");
    cr_expect_str_eq(rule, "word");
    mk_output_scan_release(&s);
    mk_output_policy_free(p);
}

Test(output_scan, canary_found_split_and_in_capitals)
{
    const char *canary = "0123456789abcdef";
    const char *rule = NULL;
    cr_expect_eq(scan_all(NULL, canary, "ref mk-canary-0123456789ABCDEF ok", &rule), 1);
    cr_expect_str_eq(rule, "canary");
    cr_expect_eq(scan_all(NULL, canary, "0123456789abcde", &rule), 0);
    struct mk_output_scan s;
    mk_output_scan_init(&s, NULL, canary);
    cr_expect_eq(mk_output_scan_feed(&s, "text 01234", 10, &rule), 0);
    cr_expect_eq(mk_output_scan_feed(&s, "56789ab", 7, &rule), 0);
    cr_expect_eq(mk_output_scan_feed(&s, "cdef more", 9, &rule), 1);
    mk_output_scan_release(&s);
}

Test(output_scan, tail_stays_bounded_and_on_a_character_boundary)
{
    const char *words[] = {"никогда"};
    struct mk_output_policy *p = policy(words, 1, NULL, 0);
    struct mk_output_scan s;
    mk_output_scan_init(&s, p, NULL);
    const char *rule = NULL;
    for (int i = 0; i < 2000; i++) cr_assert_eq(mk_output_scan_feed(&s, "ёж ", 5, &rule), 0);
    cr_expect_leq(s.tail.len, MK_OUTPUT_TAIL_BYTES);
    cr_expect_neq((unsigned char)s.tail.data[0] & 0xC0, 0x80);
    /* still valid UTF-8 after the cut: the next match works */
    cr_expect_eq(mk_output_scan_feed(&s, "никог", strlen("никог"), &rule), 0);
    cr_expect_eq(mk_output_scan_feed(&s, "да", strlen("да"), &rule), 1);
    mk_output_scan_release(&s);
    mk_output_policy_free(p);
}

Test(output_scan, errors_fail_closed)
{
    const char *words[] = {"x"};
    struct mk_output_policy *p = policy(words, 1, NULL, 0);
    const char *rule = NULL;
    cr_expect_lt(scan_all(p, NULL, "bad \xC3\x28 utf8", &rule), 0);
    mk_output_policy_free(p);
    /* catastrophic backtracking hits the match limit: an error, not a pass */
    const char *pats[] = {"^(a+)+$"};
    p = policy(NULL, 0, pats, 1);
    char text[64];
    memset(text, 'a', 40);
    text[40] = 'c';
    text[41] = '\0';
    cr_expect_lt(scan_all(p, NULL, text, &rule), 0);
    mk_output_policy_free(p);
}

Test(output_scan, canaries_are_fresh_hex)
{
    char a[MK_OUTPUT_CANARY_HEX + 1], b[MK_OUTPUT_CANARY_HEX + 1];
    mk_output_canary_new(a);
    mk_output_canary_new(b);
    cr_expect_eq(strlen(a), MK_OUTPUT_CANARY_HEX);
    cr_expect_eq(strspn(a, "0123456789abcdef"), MK_OUTPUT_CANARY_HEX);
    cr_expect_str_neq(a, b);
}

/* ---- the filter on a request context ---- */

static mk_ctx *new_ctx(mk_pool **pool, const char *body)
{
    *pool = mk_pool_new(4096);
    mk_ctx *ctx = mk_pool_alloc(*pool, sizeof *ctx);
    memset(ctx, 0, sizeof *ctx);
    ctx->pool = *pool;
    ctx->kind = MK_CTX_CHAT;
    ctx->body = json_tokener_parse(body);
    cr_assert_not_null(ctx->body);
    mk_buf_init(&ctx->verdicts, 0);
    mk_buf_init(&ctx->answer, 0);
    return ctx;
}

static void free_ctx(mk_ctx *ctx, mk_pool *pool)
{
    json_object_put(ctx->body);
    mk_ctx_release(ctx);
    mk_pool_free(pool);
}

/* The canary the filter put into the system message. */
static void canary_of(mk_ctx *ctx, char out[MK_OUTPUT_CANARY_HEX + 1])
{
    json_object *m = json_object_array_get_idx(json_object_object_get(ctx->body, "messages"), 0);
    const char *sys = json_object_get_string(json_object_object_get(m, "content"));
    const char *at = strstr(sys, "mk-canary-");
    cr_assert_not_null(at, "system message: %s", sys);
    memcpy(out, at + 10, MK_OUTPUT_CANARY_HEX);
    out[MK_OUTPUT_CANARY_HEX] = '\0';
    cr_assert_eq(strspn(out, "0123456789abcdef"), MK_OUTPUT_CANARY_HEX);
}

Test(output_filter, canary_added_to_system_message_and_leak_blocked)
{
    mk_pool *pool;
    mk_ctx *ctx = new_ctx(&pool, "{\"messages\":[{\"role\":\"system\",\"content\":\"Be nice.\"},"
                                 "{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_eq(mk_filter_output.on_request(ctx), MK_FILTER_CONTINUE);
    char canary[MK_OUTPUT_CANARY_HEX + 1];
    canary_of(ctx, canary);
    json_object *m = json_object_array_get_idx(json_object_object_get(ctx->body, "messages"), 0);
    cr_expect(strncmp(json_object_get_string(json_object_object_get(m, "content")), "Be nice.\n\n", 10) == 0);

    mk_buf body = MK_BUF_INIT;
    mk_buf_printf(&body, "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"My rules: mk-canary-%s\"}}]}",
                  canary);
    cr_expect_eq(mk_filter_output.on_response(ctx, &body), MK_EGUARD_OUTPUT);
    cr_expect(ctx->verdicts.data && strstr(ctx->verdicts.data, "\"rule\":\"canary\""));
    cr_expect_eq(ctx->nextra_headers, 1);
    mk_buf_release(&body);
    free_ctx(ctx, pool);
}

Test(output_filter, clean_answer_passes_and_stream_leak_fails)
{
    mk_pool *pool;
    mk_ctx *ctx = new_ctx(&pool, "{\"messages\":[{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]},"
                                 "{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_eq(mk_filter_output.on_request(ctx), MK_FILTER_CONTINUE);
    json_object *parts = json_object_object_get(json_object_array_get_idx(json_object_object_get(ctx->body, "messages"), 0),
                                                "content");
    cr_assert_eq(json_object_array_length(parts), 2);
    const char *line = json_object_get_string(json_object_object_get(json_object_array_get_idx(parts, 1), "text"));
    const char *at = strstr(line, "mk-canary-");
    cr_assert_not_null(at);
    char canary[MK_OUTPUT_CANARY_HEX + 1];
    memcpy(canary, at + 10, MK_OUTPUT_CANARY_HEX);
    canary[MK_OUTPUT_CANARY_HEX] = '\0';

    ctx->stream = true;
    char half1[9], half2[9];
    memcpy(half1, canary, 8), half1[8] = '\0';
    memcpy(half2, canary + 8, 8), half2[8] = '\0';
    struct mk_chunk c1 = {.json = mk_slice_cstr("{}"), .content = mk_slice_cstr("fine text ")};
    cr_expect_eq(mk_filter_output.on_chunk(ctx, &c1), 0);
    struct mk_chunk c2 = {.json = mk_slice_cstr("{}"), .content = mk_slice_cstr(half1)};
    cr_expect_eq(mk_filter_output.on_chunk(ctx, &c2), 0);
    struct mk_chunk c3 = {.json = mk_slice_cstr("{}"), .content = mk_slice_cstr(half2)};
    cr_expect_eq(mk_filter_output.on_chunk(ctx, &c3), MK_EGUARD_OUTPUT);
    free_ctx(ctx, pool);
}

Test(output_filter, no_system_message_no_canary)
{
    mk_pool *pool;
    mk_ctx *ctx = new_ctx(&pool, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_eq(mk_filter_output.on_request(ctx), MK_FILTER_CONTINUE);
    cr_expect(strstr(json_object_to_json_string(ctx->body), "canary") == NULL);
    mk_buf body = MK_BUF_INIT;
    mk_buf_append_str(&body, "{\"choices\":[{\"message\":{\"content\":\"anything\"}}]}");
    cr_expect_eq(mk_filter_output.on_response(ctx, &body), 0);
    cr_expect_eq(ctx->verdicts.len, 0, "nothing checked, nothing recorded");
    mk_buf_release(&body);
    free_ctx(ctx, pool);
}
