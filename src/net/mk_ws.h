/*
 * mk_ws: WebSocket (RFC 6455) server connections on top of mk_http.
 *
 * A route handler that wants a WebSocket checks the request (mk_ws_check_request),
 * authenticates as it would any request, and calls mk_ws_accept(): the handshake
 * answer (Sec-WebSocket-Accept = base64(SHA-1(key + GUID))) is written, the HTTP
 * request is finished, and the connection becomes an mk_ws. Framing is wslay's event
 * API; this module feeds it from the connection and gives it a writer that respects
 * backpressure.
 *
 * What a peer can and cannot do:
 *  - text messages only (binary gets close 1003), valid UTF-8 only (else 1007), at
 *    most max_message_bytes after reassembly of fragments (else 1009);
 *  - pings are answered with pongs by wslay; the server pings every ping_interval_ms
 *    and closes a peer silent for idle_timeout_ms (a dead network is noticed);
 *  - a peer that does not read: the bytes waiting to go out are capped at
 *    max_queue_bytes. mk_ws_send_text refuses beyond it (MK_EBUSY) so the owner can
 *    drop the slow consumer; reading from that peer pauses while our replies to it
 *    (pongs) back up, so a ping flood cannot grow memory.
 *
 * Lifetime: the mk_ws lives until on_close has returned (exactly once, from the loop,
 * whatever closed it: the peer's close frame, mk_ws_close, a protocol error, a network
 * error or the server stopping). No handler runs inside the owner's own call into this
 * module. All calls happen on the loop thread.
 */
#ifndef MK_WS_H
#define MK_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "net/mk_http.h"

/* Limits (candidates for core/mk_limits.h). */
/* Chat messages are a few KB; 1 MiB leaves room for pasted logs without letting one
 * frame pin much memory. */
#define MK_WS_MAX_MESSAGE_BYTES (1024 * 1024)
/* Output waiting for a slow reader: a few hundred chat messages. */
#define MK_WS_MAX_QUEUE_BYTES (1024 * 1024)
/* Below typical proxy idle timeouts (60 s), so idle chats survive load balancers. */
#define MK_WS_PING_INTERVAL_MS 25000
/* Two missed pings: the peer (or its network) is gone. */
#define MK_WS_IDLE_TIMEOUT_MS 60000
/* How long we wait for the peer's close frame after sending ours. */
#define MK_WS_CLOSE_WAIT_MS 2000

typedef struct mk_ws mk_ws;

struct mk_ws_opts {
    size_t max_message_bytes;  /* 0 = MK_WS_MAX_MESSAGE_BYTES; capped there */
    size_t max_queue_bytes;    /* 0 = MK_WS_MAX_QUEUE_BYTES */
    uint32_t ping_interval_ms; /* 0 = MK_WS_PING_INTERVAL_MS */
    uint32_t idle_timeout_ms;  /* 0 = MK_WS_IDLE_TIMEOUT_MS */
    const char *subprotocol;   /* echoed in Sec-WebSocket-Protocol when the client offered it; NULL = none */
};

struct mk_ws_handlers {
    /* A complete text message (valid UTF-8, NUL-terminated for convenience; the bytes
     * are valid only during the call). */
    void (*on_text)(mk_ws *ws, const char *data, size_t len, void *arg);
    /* The connection is closed; `code` is the close code received (or sent, or 1006
     * when the connection just dropped). The ws is freed right after this returns. */
    void (*on_close)(mk_ws *ws, int code, void *arg);
    /* The server is draining (may be NULL: the ws then closes with 1001 itself). */
    void (*on_drain)(mk_ws *ws, void *arg);
};

/* Checks that req is a WebSocket opening handshake: GET, HTTP/1.1, Upgrade: websocket,
 * Connection containing "upgrade", Sec-WebSocket-Version: 13, and a Sec-WebSocket-Key
 * that is base64 of 16 bytes. 0, or MK_EINVAL with *why (static text) naming what is
 * wrong; a wrong version deserves 426 with "Sec-WebSocket-Version: 13". */
int mk_ws_check_request(const mk_http_req *req, const char **why);
/* True when the request asks for a WebSocket at all (has Upgrade: websocket). */
bool mk_ws_is_upgrade(const mk_http_req *req);
/* The Sec-WebSocket-Accept value for a key: 28 base64 chars + NUL in out.
 * 0, or MK_EINTERNAL when libgcrypt cannot hash. */
int mk_ws_accept_key(mk_slice key, char out[29]);

/* Answers the handshake (101) and takes over the connection. req must have passed
 * mk_ws_check_request. opts may be NULL. On success the request is finished and *out
 * is the new ws (owned by this module until on_close). On failure the request is
 * still the caller's to finish: MK_EINVAL (not a valid handshake, no handlers),
 * MK_ECANCELLED (the client left), MK_ENOMEM. */
int mk_ws_accept(mk_http_req *req, const struct mk_ws_opts *opts, const struct mk_ws_handlers *h, void *arg,
                 mk_ws **out);

/* Queues one text message (copied). 0; MK_EINVAL (invalid UTF-8 or too long);
 * MK_EBUSY (the peer is not reading: max_queue_bytes reached; nothing queued);
 * MK_ECANCELLED (closing or closed). */
int mk_ws_send_text(mk_ws *ws, const char *data, size_t len);
/* Starts the closing handshake with code (1000 normal, 1001 going away, 1008 policy,
 * 1011 server error...) and a short reason (<= 123 bytes; longer is cut). The
 * connection closes when the peer answers, or after MK_WS_CLOSE_WAIT_MS. Idempotent. */
void mk_ws_close(mk_ws *ws, uint16_t code, const char *reason);
/* Bytes queued for the peer and not yet taken by the kernel. */
size_t mk_ws_queued_bytes(const mk_ws *ws);
/* Replaces the argument the handlers get (e.g. once the owner's object exists). */
void mk_ws_set_arg(mk_ws *ws, void *arg);
/* "ip:port" of the peer. */
const char *mk_ws_peer(const mk_ws *ws);
/* True once a close was sent or received (sends are refused). */
bool mk_ws_closing(const mk_ws *ws);

#endif
