/*
 * mk_http_int: internals shared by the HTTP server's files; not a public API.
 *
 * The request parser (mk_http_parse.c) is connection-less: it consumes bytes and
 * produces complete requests or an error with the HTTP status to answer. The server
 * (mk_http.c) feeds it from sockets; the fuzz target feeds it from memory. Keeping
 * the parser free of sockets is what makes it fuzzable and testable in isolation.
 */
#ifndef MK_HTTP_INT_H
#define MK_HTTP_INT_H

#include <http_parser.h>

#include "net/mk_http.h"

/* The parser's share of mk_http_server_opts, already resolved (no zeros). */
struct mk_http_limits {
    size_t max_header_bytes; /* request line + headers -> 431 */
    size_t max_headers;      /* header count -> 431 */
    size_t max_body_bytes;   /* body, declared or de-chunked -> 413 */
    size_t max_url_bytes;    /* request target -> 414 */
};

/* Where the parser is within the current message. */
enum mk_http_phase {
    MK_HTTP_PHASE_IDLE,    /* between messages: no byte of the next one seen */
    MK_HTTP_PHASE_HEADERS, /* inside the request line or header block */
    MK_HTTP_PHASE_BODY,    /* headers complete, body still arriving */
};

/* What one mk_http_parser_feed() call produced. */
enum mk_http_feed_result {
    MK_HTTP_NEED_MORE, /* every byte was consumed; the message is not complete */
    MK_HTTP_REQUEST,   /* a request is complete: take it; the rest was not consumed */
    MK_HTTP_ERROR,     /* the peer broke the protocol or a limit; see err_* */
};

typedef struct mk_http_parser {
    http_parser hp;
    const struct mk_http_limits *lim; /* not owned; outlives the parser */
    enum mk_http_phase phase;
    mk_http_req *req;      /* being built; owns its pool until taken */
    bool ready;            /* req is complete and waits for mk_http_parser_take() */

    /* Header-block accounting: bytes of the block consumed by earlier feeds, and the
     * start of the current feed so callbacks can measure how far they reached. */
    size_t hdr_bytes;
    size_t idle_bytes;     /* stray bytes (CR/LF) between messages */
    const char *feed_start;

    /* Assembly of the token the last callback was building (URL, name or value):
     * http_parser may deliver one token in several pieces across reads. */
    int last_cb;
    char *tok;
    size_t tok_len, tok_cap;
    mk_slice url, name;
    mk_http_header *hdrs;
    size_t nhdrs, hdrs_cap;

    /* Body: Content-Length bodies go straight into one pool block of the declared
     * size; chunked bodies grow in `cbody` (capped) and are handed to the pool. */
    char *body;
    size_t body_len;
    bool chunked;
    mk_buf cbody;

    bool expect_continue;  /* the client waits for "100 Continue" before the body */

    int err_status;        /* 400, 408, 413, 414, 431, 500 or 505 */
    const char *err_code;  /* OpenAI-style error code, static */
    const char *err_msg;   /* human message, static */
} mk_http_parser;

/* Prepares a parser for a new connection. `lim` must outlive it. */
void mk_http_parser_init(mk_http_parser *p, const struct mk_http_limits *lim);
/* Frees a half-built or untaken request. The parser may be init'ed again. */
void mk_http_parser_release(mk_http_parser *p);
/* Consumes bytes, stopping right after a complete request (MK_HTTP_REQUEST: the
 * caller must mk_http_parser_take() it before feeding again) or at the first error
 * (MK_HTTP_ERROR: the parser is dead; answer err_status and close).
 * *used is set to the number of bytes consumed. len must be > 0. */
enum mk_http_feed_result mk_http_parser_feed(mk_http_parser *p, const char *data, size_t len,
                                             size_t *used);
/* The completed request; the caller owns it (free with mk_pool_free(req->pool)).
 * req->conn and req->peer are left for the caller to fill. NULL if none is ready. */
mk_http_req *mk_http_parser_take(mk_http_parser *p);

/* Pool block size for a request: one malloc that holds everything a chat request
 * puts there (measured at about 5.1 KB: the request and its headers, a small body,
 * the api context, the principal, the filters' and the chat state) with room to
 * spare; bodies over half of it get their own block. At 4 KB every chat request
 * needed a second, 8 KB block (12 KB in all), which is what a held stream paid in
 * resident memory. 6 KB less the pool's block header and malloc's chunk header, so
 * the chunk is exactly 6 KB. */
#define MK_HTTP_POOL_BLOCK (6144 - 48)

/* ---- server internals shared by mk_http.c and mk_http_response.c ------------- */

/* What the connection timer means when it fires (one timer per connection; its
 * deadline moves lazily, see mk_http.c). */
enum mk_http_tkind {
    MK_HTTP_T_NONE,      /* a request is in flight: the handler owns the time */
    MK_HTTP_T_IDLE,      /* waiting for a first byte: close silently */
    MK_HTTP_T_HEADERS,   /* header block incomplete: 408 */
    MK_HTTP_T_BODY,      /* body incomplete: 408 */
    MK_HTTP_T_LINGER,    /* response sent, write side shut: close */
    MK_HTTP_T_UPGRADED,  /* upgraded connection: the owner's on_timer */
};

enum mk_http_cstate {
    MK_HTTP_C_OPEN,      /* reading and answering */
    MK_HTTP_C_LINGER,    /* last response queued; shutting down, discarding input */
    MK_HTTP_C_CLOSING,   /* uv_close called; waiting for the callbacks */
};

struct mk_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    mk_http_server *srv;
    mk_http_conn *prev, *next;     /* the server's list of live connections */
    mk_http_conn *resume_next;     /* the server's resume queue */
    mk_http_parser parser;
    mk_buf pending;                /* read but not parsed yet (pipelined requests) */
    mk_http_req *req;              /* the request in flight, NULL if none */
    void (*abort_fn)(mk_http_req *req, void *arg);
    void *abort_arg;
    uint64_t deadline;             /* uv_now() ms at which the timer kind expires */
    size_t wq_bytes;               /* bytes in uv_write requests not yet completed */
    size_t discarded;              /* bytes thrown away while lingering */
    uint8_t tkind;                 /* enum mk_http_tkind */
    uint8_t state;                 /* enum mk_http_cstate */
    uint8_t handles_open;          /* tcp + timer until their close callbacks ran */
    bool in_process;               /* inside the parse loop: finishing must not recurse */
    bool in_resume;                /* queued on the server's resume queue */
    bool read_stopped;             /* reading paused: pipelined bytes hit the cap */
    bool aborted;                  /* the client left while a request was in flight */
    bool abort_notified;           /* on_abort ran */
    bool tcp_closed;
    bool streaming, chunked, is_head, resp_keepalive;
    /* After mk_http_upgrade the connection carries another protocol: bytes go to
     * up_ops->on_data and the parser is no longer fed (see mk_http_upgrade.c). */
    bool upgraded;
    bool up_paused;                /* the owner paused reading */
    bool up_want_writable;         /* on_writable is due when the write queue empties */
    const struct mk_http_upgrade_ops *up_ops;
    void *up_arg;
    char peer[64];
};

struct mk_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_idle_t idle;                /* runs the resume queue and the drain check */
    mk_http_handler_fn handler;
    void *ctx;
    struct mk_http_limits lim;
    uint32_t header_timeout_ms, body_timeout_ms, keepalive_timeout_ms;
    size_t max_connections;
    bool reuse_port;
    char *server_name;             /* owned; NULL = no Server header */
    int port;
    bool listener_init, listener_closed, idle_closed;
    bool draining, drain_notified, freeing;
    void (*drain_done)(void *arg);
    void *drain_arg;
    size_t nconns;                 /* accepted, tcp handle not yet closed */
    size_t nalive;                 /* allocated connections (freed later than closed) */
    size_t inflight;
    mk_http_conn *conns;
    mk_http_conn *resume_head, *resume_tail;
    time_t date_sec;
    char date[40];
    /* One read buffer per loop: libuv reads into it and the parser copies what it
     * keeps, so an idle connection costs no buffer at all. */
    char rbuf[64 * 1024];
};

/* Queues bytes on the connection: tries a direct write first, copies the rest into
 * one uv_write. 0, or MK_ECANCELLED when the connection is gone or failed (it is
 * then closing). */
int mk_http__conn_write(mk_http_conn *c, const uv_buf_t *bufs, unsigned nbufs);
/* After the request on `c` was finished: keep-alive or linger, resume pipelining,
 * or free the connection if it was already closed. */
void mk_http__conn_after_finish(mk_http_conn *c);
/* Builds a response head into out (cap bytes). content_length < 0: none (streams).
 * Returns the length, or 0 if it does not fit. */
size_t mk_http__build_head(mk_http_server *s, char *out, size_t cap, int status,
                           const mk_http_header *headers, size_t nheaders, long long content_length,
                           bool chunked, bool keep_alive, const char *request_id);
/* Runs the connection from the loop soon (idle handle): continue pipelined input,
 * or deliver an on_abort that was set late. No-op while the server is being freed. */
void mk_http__enqueue_resume(mk_http_conn *c);
/* Closes the connection: at once, or gracefully (FIN after the queued bytes, then
 * discard input until the peer closes or the linger time passes). */
void mk_http__conn_close(mk_http_conn *c, bool graceful);
/* Starts reading again after a pause (closes the connection if libuv refuses). */
void mk_http__restart_read(mk_http_conn *c);
/* Upgraded connections: deliver bytes kept in `pending` to the owner (from the loop). */
void mk_http__upgraded_resume(mk_http_conn *c);
/* Upper bound of mk_http__build_head's output for these headers. */
size_t mk_http__head_bound(const mk_http_server *s, const mk_http_header *headers, size_t nheaders);

#endif
