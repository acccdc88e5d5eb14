/*
 * mk_http_client: non-blocking upstream HTTP(S) client on the libuv loop. Two paths
 * behind one contract: plain http:// calls to an IP literal or "localhost" take a
 * native HTTP/1.1 path (libuv TCP + http-parser, its own keep-alive pool; the usual
 * self-hosted model server); everything else (https, host names, proxies, compressed
 * replies) goes through libcurl's multi socket API driven by the loop.
 *
 * Connections are kept alive and reused per host, so a busy gateway does not pay a
 * TCP/TLS handshake per request. At most MK_UPSTREAM_MAX_HOST_CONNECTIONS are open to
 * one host at once (further calls wait for one) and MK_UPSTREAM_MAX_IDLE_CONNECTIONS
 * are kept idle. A reused connection found closed before any byte of the reply is
 * retried once on a new one.
 *
 * Timeouts, each 0 = none: connect; first byte (from start until the first body
 * byte: for LLMs the time to first token); idle (largest gap between two body
 * reads: a stalled stream); total. A timeout ends the call with MK_EUPSTREAM_TIMEOUT.
 *
 * Lifetime: on_done is called exactly once per started call, after which the call is
 * freed. mk_http_call_cancel() stops a call at once: no callback runs afterwards
 * (on_done included) and the call is freed. All callbacks run on the loop thread;
 * a callback may cancel its own call (then no further callback follows).
 * Call objects are pooled and reused: a call handle must not be used after on_done
 * returns or after cancel (it may already belong to a new call).
 *
 * Requests: http:// and https:// URLs only; redirects are not followed (a 3xx is a
 * response like any other); HTTP/1.1; proxies from http_proxy/https_proxy/no_proxy
 * are honoured. Header lines are "Name: value" ("Name:" removes a header curl would
 * add). No "Expect: 100-continue"; a body sent without a Content-Type line goes
 * without one. No compression is asked for unless the caller passes an
 * Accept-Encoding line; then curl decodes the reply, so on_data/on_done always see
 * plain bytes.
 */
#ifndef MK_HTTP_CLIENT_H
#define MK_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/mk_buf.h"

typedef struct mk_http_client mk_http_client;
typedef struct mk_http_call mk_http_call;

struct mk_http_call_opts {
    const char *method;            /* "GET", "POST"; NULL = POST when body else GET */
    const char *url;               /* copied */
    const char *const *headers;    /* "Name: value" lines, copied */
    size_t nheaders;
    const char *body;              /* copied; may be NULL */
    size_t body_len;
    uint32_t connect_timeout_ms;
    uint32_t first_byte_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t total_timeout_ms;
    const char *ca_file;           /* PEM bundle to trust instead of the system's; NULL = system */
    bool insecure;                 /* skip TLS verification (tests only; logged loudly) */
    size_t max_body_bytes;         /* cap for the buffered body when on_data is NULL; 0 = MK_MAX_UPSTREAM_BODY_BYTES */

    /* Status line and headers received. Optional. */
    void (*on_response)(mk_http_call *call, int status, void *arg);
    /* Body bytes as they arrive. If NULL, the body is buffered and handed to on_done. */
    void (*on_data)(mk_http_call *call, const char *data, size_t len, void *arg);
    /* Exactly once unless cancelled. rc: 0 (any HTTP status counts as success here),
     * MK_EUPSTREAM (connect/transfer error), MK_EUPSTREAM_TIMEOUT, MK_ETOOBIG.
     * status: HTTP status or 0 when none was received; body: buffered body (only when
     * on_data is NULL), valid during the callback. */
    void (*on_done)(mk_http_call *call, int rc, int status, mk_slice body, void *arg);
    void *arg;
};

/* 0 or MK_ENOMEM/MK_EINTERNAL. Calls curl_global_init once per process. */
int mk_http_client_new(uv_loop_t *loop, mk_http_client **out);
/* Cancels every call still running (without callbacks) and frees the client once the
 * loop has closed its handles. Accepts NULL. */
void mk_http_client_free(mk_http_client *c);

/* Starts a call. On success *out (if out != NULL) is the call handle, valid until
 * on_done returns or cancel. 0, MK_EINVAL, MK_ENOMEM. */
int mk_http_call_start(mk_http_client *c, const struct mk_http_call_opts *opts, mk_http_call **out);
void mk_http_call_cancel(mk_http_call *call);
/* A response header of the call (case-insensitive), valid during callbacks after
 * on_response; empty slice when absent. */
mk_slice mk_http_call_response_header(const mk_http_call *call, const char *name);
/* Microseconds from start to connection established (TLS included; tiny for a reused
 * connection) / to the first body byte (end of headers when the body is empty); 0 if
 * not yet. */
uint64_t mk_http_call_connect_us(const mk_http_call *call);
uint64_t mk_http_call_first_byte_us(const mk_http_call *call);
/* Calls currently running. */
size_t mk_http_client_active(const mk_http_client *c);
/* Whether calls started from now on may take the native plain-HTTP path (default:
 * yes, unless MAYAK_UPSTREAM_CLIENT=curl was set when the client was created); false
 * sends every call through libcurl. Calls already running are not affected. */
void mk_http_client_set_native(mk_http_client *c, bool on);

#endif
