/* Unit tests for the connection-less request parser behind mk_http (mk_http_int.h):
 * fragmentation, pipelining, request targets, header assembly and every limit. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_pool.h"
#include "net/mk_http.h"
#include "net/mk_http_int.h"

static const struct mk_http_limits lim = {
    .max_header_bytes = 2048, .max_headers = 8, .max_body_bytes = 64, .max_url_bytes = 256};

/* Feeds `data` in pieces of `step` bytes (0 = all at once); collects up to `max`
 * requests. Returns the number of requests; *err gets the error status or 0. */
static size_t run(const char *data, size_t len, size_t step, mk_http_req **out, size_t max, int *err)
{
    mk_http_parser p;
    mk_http_parser_init(&p, &lim);
    size_t n = 0, off = 0;
    *err = 0;
    while (off < len) {
        size_t chunk = step && step < len - off ? step : len - off;
        size_t used = 0;
        enum mk_http_feed_result r = mk_http_parser_feed(&p, data + off, chunk, &used);
        cr_assert_leq(used, chunk);
        off += used;
        if (r == MK_HTTP_ERROR) {
            *err = p.err_status;
            cr_assert_not_null(p.err_code);
            cr_assert_not_null(p.err_msg);
            break;
        }
        if (r == MK_HTTP_REQUEST) {
            mk_http_req *req = mk_http_parser_take(&p);
            cr_assert_not_null(req);
            cr_assert_null(mk_http_parser_take(&p));
            if (n < max) out[n] = req;
            else mk_pool_free(req->pool);
            n++;
        } else {
            cr_assert_eq(used, chunk);
        }
    }
    mk_http_parser_release(&p);
    return n;
}

static void free_all(mk_http_req **reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) mk_pool_free(reqs[i]->pool);
}

static int status_of(const char *data)
{
    mk_http_req *reqs[4];
    int err;
    size_t n = run(data, strlen(data), 0, reqs, 4, &err);
    free_all(reqs, n < 4 ? n : 4);
    return err;
}

static void assert_slice(mk_slice s, const char *want)
{
    cr_assert_eq(s.len, strlen(want), "got '%.*s' want '%s'", (int)s.len, s.ptr, want);
    cr_assert_eq(memcmp(s.ptr, want, s.len), 0, "got '%.*s' want '%s'", (int)s.len, s.ptr, want);
}

Test(http_parse, same_request_whatever_the_fragmentation)
{
    const char *raw = "POST /v1/chat?x=1&y=%20 HTTP/1.1\r\nHost: example\r\nX-Long-Header-Name: some value here\r\n"
                      "Empty:\r\nContent-Length: 5\r\n\r\nhello";
    for (size_t step = 0; step < 12; step++) {
        mk_http_req *reqs[2];
        int err;
        size_t n = run(raw, strlen(raw), step, reqs, 2, &err);
        cr_assert_eq(err, 0, "step %zu", step);
        cr_assert_eq(n, 1, "step %zu", step);
        mk_http_req *r = reqs[0];
        cr_assert_str_eq(r->method, "POST");
        assert_slice(r->path, "/v1/chat");
        assert_slice(r->query, "x=1&y=%20");
        cr_assert_eq(r->path.ptr[r->path.len], '\0');
        cr_assert_eq(r->nheaders, 4);
        assert_slice(r->headers[0].name, "Host");
        assert_slice(r->headers[0].value, "example");
        assert_slice(r->headers[1].name, "X-Long-Header-Name");
        assert_slice(r->headers[1].value, "some value here");
        assert_slice(r->headers[2].name, "Empty");
        assert_slice(r->headers[2].value, "");
        assert_slice(mk_http_req_header(r, "x-long-header-name"), "some value here");
        cr_assert_null(mk_http_req_header(r, "missing").ptr);
        assert_slice(r->body, "hello");
        cr_assert_eq(r->body.ptr[5], '\0');
        cr_assert(r->keep_alive);
        cr_assert_eq(r->http_major, 1);
        cr_assert_eq(r->http_minor, 1);
        cr_assert_eq(strlen(r->request_id), 16);
        cr_assert_gt(r->received_us, 0);
        free_all(reqs, n);
    }
}

Test(http_parse, pipelined_requests_come_one_at_a_time)
{
    const char *raw = "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                      "\r\nGET /c HTTP/1.0\r\n\r\n"; /* a stray CRLF between messages is allowed */
    mk_http_parser p;
    mk_http_parser_init(&p, &lim);
    size_t used;
    cr_assert_eq(mk_http_parser_feed(&p, raw, strlen(raw), &used), MK_HTTP_REQUEST);
    cr_assert_eq(used, strlen("GET /a HTTP/1.1\r\n\r\n"));
    /* without taking the request, nothing more is parsed */
    cr_assert_eq(mk_http_parser_feed(&p, raw + used, strlen(raw) - used, &used), MK_HTTP_NEED_MORE);
    cr_assert_eq(used, 0);
    mk_http_req *a = mk_http_parser_take(&p);
    assert_slice(a->path, "/a");
    size_t off = strlen("GET /a HTTP/1.1\r\n\r\n");
    cr_assert_eq(mk_http_parser_feed(&p, raw + off, strlen(raw) - off, &used), MK_HTTP_REQUEST);
    off += used;
    mk_http_req *b = mk_http_parser_take(&p);
    assert_slice(b->path, "/b");
    assert_slice(b->body, "hi");
    cr_assert_eq(mk_http_parser_feed(&p, raw + off, strlen(raw) - off, &used), MK_HTTP_REQUEST);
    off += used;
    cr_assert_eq(off, strlen(raw));
    mk_http_req *c = mk_http_parser_take(&p);
    assert_slice(c->path, "/c");
    cr_assert_not(c->keep_alive, "HTTP/1.0 without keep-alive closes");
    mk_pool_free(a->pool);
    mk_pool_free(b->pool);
    mk_pool_free(c->pool);
    mk_http_parser_release(&p);
}

Test(http_parse, request_targets)
{
    mk_http_req *r[1];
    int err;
    const char *abs = "GET http://example.com/p/q?z=9 HTTP/1.1\r\n\r\n";
    cr_assert_eq(run(abs, strlen(abs), 0, r, 1, &err), 1);
    assert_slice(r[0]->path, "/p/q");
    assert_slice(r[0]->query, "z=9");
    mk_pool_free(r[0]->pool);
    const char *bare = "GET http://example.com HTTP/1.1\r\n\r\n";
    cr_assert_eq(run(bare, strlen(bare), 0, r, 1, &err), 1);
    assert_slice(r[0]->path, "/");
    assert_slice(r[0]->query, "");
    mk_pool_free(r[0]->pool);
    const char *star = "OPTIONS * HTTP/1.1\r\n\r\n";
    cr_assert_eq(run(star, strlen(star), 0, r, 1, &err), 1);
    cr_assert_str_eq(r[0]->method, "OPTIONS");
    assert_slice(r[0]->path, "*");
    mk_pool_free(r[0]->pool);
}

Test(http_parse, chunked_body_and_trailers)
{
    const char *raw = "PUT /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                      "3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\nTrailer-A: x\r\n\r\n";
    for (size_t step = 0; step < 5; step++) {
        mk_http_req *r[1];
        int err;
        cr_assert_eq(run(raw, strlen(raw), step, r, 1, &err), 1);
        assert_slice(r[0]->body, "abcd");
        cr_assert_eq(r[0]->body.ptr[4], '\0');
        cr_assert_eq(r[0]->nheaders, 2, "trailers are not request headers");
        cr_assert_not(r[0]->keep_alive);
        mk_pool_free(r[0]->pool);
    }
}

Test(http_parse, request_id)
{
    mk_http_req *r[1];
    int err;
    const char *ok = "GET / HTTP/1.1\r\nX-Request-Id: Abc.def_1-2\r\n\r\n";
    cr_assert_eq(run(ok, strlen(ok), 0, r, 1, &err), 1);
    cr_assert_str_eq(r[0]->request_id, "Abc.def_1-2");
    mk_pool_free(r[0]->pool);
    const char *bad[] = {"GET / HTTP/1.1\r\nX-Request-Id: a b\r\n\r\n",
                         "GET / HTTP/1.1\r\nX-Request-Id: \r\n\r\n",
                         "GET / HTTP/1.1\r\nX-Request-Id: 0123456789abcdefX\r\n\r\n"}; /* too long */
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(run(bad[i], strlen(bad[i]), 0, r, 1, &err), 1);
        cr_assert_eq(strspn(r[0]->request_id, "0123456789abcdef"), 16, "%s", r[0]->request_id);
        mk_pool_free(r[0]->pool);
    }
}

Test(http_parse, limits)
{
    char big[4096];
    /* URL */
    int n = snprintf(big, sizeof big, "GET /%0300d HTTP/1.1\r\n\r\n", 0);
    cr_assert_lt((size_t)n, sizeof big);
    cr_assert_eq(status_of(big), 414);
    /* header bytes */
    snprintf(big, sizeof big, "GET / HTTP/1.1\r\nA: %02100d\r\n\r\n", 0);
    cr_assert_eq(status_of(big), 431);
    /* header bytes hidden in a long name */
    snprintf(big, sizeof big, "GET / HTTP/1.1\r\nA%02100d: 1\r\n\r\n", 0);
    cr_assert_eq(status_of(big), 431);
    /* header count */
    cr_assert_eq(status_of("GET / HTTP/1.1\r\na:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\nh:1\r\n\r\n"), 0);
    cr_assert_eq(status_of("GET / HTTP/1.1\r\na:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\nh:1\r\ni:1\r\n\r\n"),
                 431);
    /* body */
    cr_assert_eq(status_of("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n"), 413);
    cr_assert_eq(status_of("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
    snprintf(big, sizeof big, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n%064d\r\n1\r\nx\r\n", 0);
    cr_assert_eq(status_of(big), 413);
    /* protocol */
    cr_assert_eq(status_of("GET / HTTP/3.0\r\n\r\n"), 505);
    cr_assert_eq(status_of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 400);
    cr_assert_eq(status_of("CONNECT example.com:443 HTTP/1.1\r\n\r\n"), 400);
    cr_assert_eq(status_of("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
    cr_assert_eq(status_of("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
    cr_assert_eq(status_of("GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n"), 400);
    cr_assert_eq(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400); /* TLS hello */
    /* endless blank lines between messages */
    memset(big, '\n', 3000);
    big[3000] = '\0';
    cr_assert_eq(status_of(big), 400);
}

Test(http_parse, errors_are_sticky)
{
    mk_http_parser p;
    mk_http_parser_init(&p, &lim);
    size_t used;
    cr_assert_eq(mk_http_parser_feed(&p, "BAD\x01", 4, &used), MK_HTTP_ERROR);
    cr_assert_eq(mk_http_parser_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used), MK_HTTP_ERROR);
    cr_assert_eq(used, 0);
    mk_http_parser_release(&p);
}

Test(http_parse, half_built_request_is_released)
{
    /* ASan's leak check proves the pool of an unfinished request is freed. */
    mk_http_parser p;
    mk_http_parser_init(&p, &lim);
    size_t used;
    const char *part = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n5\r\nab";
    cr_assert_eq(mk_http_parser_feed(&p, part, strlen(part), &used), MK_HTTP_NEED_MORE);
    cr_assert_eq(p.phase, MK_HTTP_PHASE_BODY);
    mk_http_parser_release(&p);
}

Test(http_parse, upgrade_requests_are_plain_requests)
{
    /* No protocol switch is offered: an Upgrade request is answered like any other
     * and the connection goes on speaking HTTP/1.1. */
    const char *raw = "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                      "GET /next HTTP/1.1\r\n\r\n";
    mk_http_req *r[2];
    int err;
    cr_assert_eq(run(raw, strlen(raw), 0, r, 2, &err), 2);
    cr_assert_eq(err, 0);
    assert_slice(r[0]->path, "/ws");
    assert_slice(mk_http_req_header(r[0], "upgrade"), "websocket");
    assert_slice(r[1]->path, "/next");
    free_all(r, 2);
}
