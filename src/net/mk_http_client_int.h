/*
 * mk_http_client_int.h: what the upstream client's two paths share (internal to
 * src/net). mk_http_client.c is the dispatcher and the libcurl path; it hands plain
 * http:// calls of the common shape to the native HTTP/1.1 path in
 * mk_http_client_native.c (libuv TCP + http-parser, its own keep-alive pool), which
 * skips libcurl's per-transfer bookkeeping. Both keep the contract of
 * mk_http_client.h; a call handle says which path owns it in its first member.
 */
#ifndef MK_HTTP_CLIENT_INT_H
#define MK_HTTP_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/mk_buf.h"
#include "net/mk_http_client.h"

/* First member of both call structs, so a public mk_http_call * can be routed. */
struct mk_http__call_head {
    bool native;
};

static inline bool mk_http__call_is_native(const mk_http_call *call)
{
    return ((const struct mk_http__call_head *)(const void *)call)->native;
}

/* Response header bytes kept per call (the last response only). Provider replies
 * carry a few KB; curl itself refuses a single line over 100 KB. */
#define MK_HTTP__MAX_RESPONSE_HEADER_BYTES (64 * 1024)
/* A pooled call frees buffers that grew past this, so one huge reply does not stay
 * pinned in the pool. */
#define MK_HTTP__KEEP_BUF_BYTES (64 * 1024)
/* Idle call objects kept for reuse per path; more than this are freed. */
#define MK_HTTP__CALL_POOL_MAX 1024

/* Looks `name` up (case-insensitive) in "Name: value\n" lines; the value is trimmed
 * of blanks. Empty slice when absent. The slice points into hdrs. */
mk_slice mk_http__header_lookup(const mk_buf *hdrs, const char *name);

/* "Name: value" header line check shared by both paths: returns the name's length,
 * 0 when the line is invalid (see mk_http_client.h for the "Name:"/"Name;" forms). */
size_t mk_http__header_name_len(const char *h);

/* --- the native path -------------------------------------------------------- */

typedef struct mk_http__native mk_http__native;

/* Where a native call goes: filled by mk_http__native_target(). Points into the URL. */
struct mk_http__target {
    mk_slice host;        /* as written in the URL: "127.0.0.1", "[::1]", "localhost" */
    uint16_t port;
    bool port_given;      /* an explicit ":port" (Host header then names it unless 80) */
    mk_slice path;        /* path and query, without the fragment; "" means "/" */
};

/* 0 or MK_ENOMEM. */
int mk_http__native_new(uv_loop_t *loop, mk_http__native **out);
/* Cancels every native call without callbacks, closes every connection, and frees
 * itself once libuv has closed its handles (at once if not inside a dispatch, else
 * when the dispatch unwinds). Accepts NULL. */
void mk_http__native_free(mk_http__native *n);

/* Whether the native path can serve this call exactly as libcurl would: an http://
 * URL whose host is an IP literal or "localhost", no credentials in the URL, no path
 * that curl would rewrite, and no header that changes framing or asks for a decoded
 * body (Content-Length, Transfer-Encoding, Connection, Upgrade, TE, Expect with a
 * value, Accept-Encoding). The arguments are already validated; name_lens[i] is
 * mk_http__header_name_len(o->headers[i]). n (may be NULL) only skips re-checking a
 * host it already knows. Fills *t on true. */
bool mk_http__native_target(const mk_http__native *n, const struct mk_http_call_opts *o, const size_t *name_lens,
                            struct mk_http__target *t);

/* Starts a call on the native path (arguments validated, *t from
 * mk_http__native_target). Same contract as mk_http_call_start: 0, MK_ENOMEM;
 * callbacks never run before it returns. */
int mk_http__native_start(mk_http__native *n, const struct mk_http_call_opts *o, const size_t *name_lens,
                          const struct mk_http__target *t, mk_http_call **out);
void mk_http__native_cancel(mk_http_call *call);
mk_slice mk_http__native_response_header(const mk_http_call *call, const char *name);
uint64_t mk_http__native_connect_us(const mk_http_call *call);
uint64_t mk_http__native_first_byte_us(const mk_http_call *call);
size_t mk_http__native_active(const mk_http__native *n);
/* Connections open (connecting, busy or idle) and idle, for tests and metrics. */
size_t mk_http__native_connections(const mk_http__native *n, size_t *idle);

#endif
