/*
 * mk_http: the HTTP/1.1 server on libuv + http-parser.
 *
 * One server per loop. Keep-alive and pipelining: requests on one connection are
 * handled one at a time in order; while one is in flight, reading pauses
 * (pipelined bytes stay buffered, capped by MK_MAX_PIPELINED_BYTES).
 * Every limit comes from mk_http_server_opts (defaults from mk_limits.h); a peer
 * that breaks one gets a clear HTTP error (400/408/413/431/505) and a close.
 *
 * Ownership of a request: the server creates it when the header block and body are
 * complete and calls the handler. The handler (or whoever it hands the request to)
 * must finish it exactly once, by mk_http_respond() or by mk_http_stream_end()
 * after mk_http_stream_start(). After that the request is freed; do not touch it.
 * If the client disconnects first, the on_abort callback (if set) is called once;
 * the owner must then stop its work and still finish the request (respond/stream
 * calls on an aborted request write nothing and just do the bookkeeping).
 * A client that closes or half-closes its side (EOF) while a request is in flight
 * counts as gone. on_abort is always called from the loop, never from inside one of
 * the owner's own calls into this module (a failed write marks the request aborted
 * and the callback follows from the loop).
 * Upgrade requests (WebSocket) arrive as ordinary requests; a handler that accepts
 * one calls mk_http_upgrade() (net/mk_ws.h does, for WebSocket), which finishes the
 * request with 101 and hands the connection's bytes to the new owner from then on.
 * All calls happen on the loop thread.
 */
#ifndef MK_HTTP_H
#define MK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/mk_buf.h"
#include "core/mk_pool.h"

typedef struct mk_http_server mk_http_server;
typedef struct mk_http_req mk_http_req;
typedef struct mk_http_conn mk_http_conn;

typedef struct mk_http_header {
    mk_slice name;
    mk_slice value;
} mk_http_header;

struct mk_http_req {
    /* All slices point into memory owned by the request; valid until it finishes. */
    const char *method;        /* "GET", "POST", ... (static string) */
    mk_slice path;             /* percent-encoded path, without the query */
    mk_slice query;            /* after '?', empty if none */
    mk_http_header *headers;
    size_t nheaders;
    mk_slice body;             /* de-chunked body; NUL-terminated */
    char request_id[17];       /* random (16 hex), or the client's X-Request-Id if it is
                                  1-16 chars of [A-Za-z0-9._-] (what fits here) */
    uint64_t received_us;      /* mk_now_us() when the request was complete */
    int http_major, http_minor;
    bool keep_alive;           /* the server's decision, after the client's wish */
    char peer[64];             /* "127.0.0.1:54321" */
    mk_pool *pool;             /* per-request pool, freed when the request finishes */
    void *user;                /* for the handler */
    mk_http_conn *conn;        /* private to the server */
};

typedef void (*mk_http_handler_fn)(mk_http_req *req, void *ctx);

struct mk_http_server_opts {
    size_t max_header_bytes;       /* 0 = MK_MAX_HEADER_BYTES */
    size_t max_headers;            /* 0 = MK_MAX_HEADERS */
    size_t max_body_bytes;         /* 0 = MK_MAX_BODY_BYTES */
    uint32_t header_timeout_ms;    /* 0 = MK_HEADER_TIMEOUT_MS */
    uint32_t body_timeout_ms;      /* 0 = MK_BODY_TIMEOUT_MS */
    uint32_t keepalive_timeout_ms; /* 0 = MK_KEEPALIVE_TIMEOUT_MS */
    size_t max_connections;        /* 0 = MK_MAX_CONNECTIONS */
    const char *server_name;       /* "Server:" header; NULL = none */
    bool reuse_port;               /* SO_REUSEPORT: several loops of ONE process share the port.
                                      Off by default so a second server started on a busy port
                                      fails loudly instead of silently splitting its traffic. */
};

/* Creates a server on `loop`. opts may be NULL; each 0 field takes its default and
 * larger values are capped at it (mk_limits.h). 0, MK_ENOMEM, or MK_EINVAL (no loop
 * or handler; server_name with CR/LF or longer than MK_MAX_NAME_BYTES). */
int mk_http_server_new(uv_loop_t *loop, const struct mk_http_server_opts *opts,
                       mk_http_handler_fn handler, void *ctx, mk_http_server **out);
/* Binds and listens (IPv4 or IPv6 literal host; port 0 = any free port).
 * SO_REUSEPORT is set only when opts.reuse_port asks for it.
 * 0, MK_EINVAL (bad address) or MK_EIO (bind/listen failed; errno-style message logged). */
int mk_http_server_listen(mk_http_server *s, const char *host, int port);
/* The bound port (useful after port 0). */
int mk_http_server_port(const mk_http_server *s);
/* Number of open connections and of requests being handled. */
size_t mk_http_server_connections(const mk_http_server *s);
size_t mk_http_server_inflight(const mk_http_server *s);
/* Graceful stop: close the listener, close idle connections, let in-flight requests
 * finish (their connections close after the response). `done` runs once, from the
 * loop, when no connection is left; it may call mk_http_server_free(). A second
 * drain, or a drain after free, is ignored; free before `done` cancels it. */
void mk_http_server_drain(mk_http_server *s, void (*done)(void *arg), void *arg);
/* Closes everything at once (aborting in-flight requests) and frees the server once
 * libuv has released the handles and every aborted request was finished by its
 * owner; run the loop afterwards until it is empty. Accepts NULL. */
void mk_http_server_free(mk_http_server *s);

/* Case-insensitive header lookup; empty slice (ptr NULL) when absent. */
mk_slice mk_http_req_header(const mk_http_req *req, const char *name);

/* Complete response. `headers` are extra headers (e.g. Content-Type); the server adds
 * Content-Length, Connection, Date and X-Request-Id itself (a caller's headers of
 * those names, and any header with CR/LF/NUL or a bad name, are dropped). 1xx/204/
 * 304 get neither body nor Content-Length; HEAD gets the length but no body.
 * Body is copied.
 * Returns 0 (also when the client already left). Finishes the request. */
int mk_http_respond(mk_http_req *req, int status, const mk_http_header *headers, size_t nheaders,
                    const char *body, size_t len);

/* Streaming response with chunked transfer encoding (HTTP/1.1) or close-delimited
 * (HTTP/1.0). After start, write any number of times, then end (which finishes the
 * request). Data is copied. write returns MK_ECANCELLED once the client has gone. */
int mk_http_stream_start(mk_http_req *req, int status, const mk_http_header *headers, size_t nheaders);
int mk_http_stream_write(mk_http_req *req, const char *data, size_t len);
int mk_http_stream_end(mk_http_req *req);
/* Bytes written but not yet taken by the kernel: callers slow down above
 * MK_MAX_WRITE_QUEUE_BYTES. */
size_t mk_http_req_write_queue_bytes(const mk_http_req *req);

/* Called once if the client disconnects (or the server is freed) before the request
 * is finished. Set it before starting asynchronous work. */
void mk_http_req_on_abort(mk_http_req *req, void (*fn)(mk_http_req *req, void *arg), void *arg);
bool mk_http_req_aborted(const mk_http_req *req);

/* ---- switching protocols ----------------------------------------------------------
 * An upgraded connection belongs to its owner until on_close. Callbacks come from the
 * loop, never from inside one of the owner's calls into this module. The server's
 * idle/header timers no longer apply; the owner has one timer of its own
 * (mk_http_upgraded_timer). A drain calls on_drain (the owner should say goodbye and
 * close soon) or, when on_drain is NULL, closes the connection. */
struct mk_http_upgrade_ops {
    /* Bytes from the peer, in order. `data` is the server's read buffer: copy what
     * you keep. Not called while paused. */
    void (*on_data)(void *arg, const char *data, size_t len);
    /* The write queue emptied after mk_http_upgraded_write had to queue bytes. */
    void (*on_writable)(void *arg);
    /* The timer set by mk_http_upgraded_timer fired. */
    void (*on_timer)(void *arg);
    /* The server started draining (may be NULL). */
    void (*on_drain)(void *arg);
    /* The connection is closed (peer left, write error, server freed, or the owner's
     * close completed). Called exactly once and last; the handle is invalid after it. */
    void (*on_close)(void *arg);
};

/* Accepts an upgrade: writes "101 Switching Protocols" with `headers` (the caller
 * gives Upgrade, Connection and protocol headers; nothing else is added), finishes the
 * request (its pool is freed) and gives the connection to ops/arg. Bytes the peer
 * already sent after the request are delivered through on_data from the loop.
 * 0 and *out on success. On failure the request is still the caller's to finish:
 * MK_EINVAL (streaming started, no ops/on_data/on_close, bad header), MK_ECANCELLED
 * (the client already left), MK_ENOMEM. */
int mk_http_upgrade(mk_http_req *req, const mk_http_header *headers, size_t nheaders,
                    const struct mk_http_upgrade_ops *ops, void *arg, mk_http_conn **out);
/* Queues bytes to the peer (copied when the socket cannot take them at once). 0, or
 * MK_ECANCELLED when the connection is closing or gone. */
int mk_http_upgraded_write(mk_http_conn *c, const void *data, size_t len);
/* Bytes written but not yet taken by the kernel. */
size_t mk_http_upgraded_queued(const mk_http_conn *c);
/* (Re)arms the owner's timer to fire in ms; 0 stops it. */
void mk_http_upgraded_timer(mk_http_conn *c, uint32_t ms);
/* Stops or restarts reading from the peer (backpressure). */
void mk_http_upgraded_pause(mk_http_conn *c, bool paused);
/* Closes: gracefully (after queued bytes, FIN, wait briefly for the peer's) or at once.
 * on_close follows from the loop. Idempotent. */
void mk_http_upgraded_close(mk_http_conn *c, bool graceful);
/* "ip:port" of the peer (valid until on_close). */
const char *mk_http_upgraded_peer(const mk_http_conn *c);

/* Reason phrase for a status code ("OK", "Not Found"...). */
const char *mk_http_status_text(int status);

#endif
