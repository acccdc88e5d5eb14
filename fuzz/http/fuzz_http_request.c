/* Fuzz target for the HTTP request parser (mk_http_parse.c), driven without sockets.
 *
 * The first input byte picks how the rest is split into feeds (1..32 bytes per feed,
 * or all at once), so token assembly across fragments is exercised as well as the
 * whole-buffer path. Each complete request is checked for the invariants the server
 * relies on (slices inside their bounds, NUL-terminated body and path) and freed;
 * ASan's leak check covers half-built requests left at an error or at the end. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mk_pool.h"
#include "core/mk_rand.h"
#include "net/mk_http.h"
#include "net/mk_http_int.h"

static const struct mk_http_limits lim = {
    .max_header_bytes = 4096, .max_headers = 32, .max_body_bytes = 16384, .max_url_bytes = 1024};

static void check(const mk_http_req *req)
{
    assert(req->method && req->method[0]);
    assert(req->path.ptr && req->path.ptr[req->path.len] == '\0');
    assert(req->query.ptr);
    assert(req->body.ptr && req->body.ptr[req->body.len] == '\0');
    assert(req->body.len <= lim.max_body_bytes);
    assert(req->nheaders <= lim.max_headers);
    size_t total = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        assert(req->headers[i].name.ptr && req->headers[i].value.ptr);
        total += req->headers[i].name.len + req->headers[i].value.len;
    }
    assert(total <= lim.max_header_bytes);
    size_t rl = strlen(req->request_id);
    assert(rl >= 1 && rl <= 16);
    (void)mk_http_req_header(req, "content-type");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        mk_rand_init();
        inited = 1;
    }
    if (size == 0) return 0;
    size_t step = data[0] % 33; /* 0 = everything in one feed */
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    mk_http_parser p;
    mk_http_parser_init(&p, &lim);
    size_t off = 0;
    while (off < len) {
        size_t chunk = step && step < len - off ? step : len - off;
        size_t used = 0;
        enum mk_http_feed_result r = mk_http_parser_feed(&p, in + off, chunk, &used);
        assert(used <= chunk);
        off += used;
        if (r == MK_HTTP_ERROR) {
            assert(p.err_status >= 400 && p.err_status <= 505 && p.err_code && p.err_msg);
            break;
        }
        if (r == MK_HTTP_REQUEST) {
            mk_http_req *req = mk_http_parser_take(&p);
            assert(req);
            check(req);
            mk_pool_free(req->pool);
        } else {
            assert(used == chunk);
        }
    }
    mk_http_parser_release(&p);
    return 0;
}
