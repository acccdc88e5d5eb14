/*
 * mk_ws: WebSocket server connections (see mk_ws.h): the opening handshake, and
 * wslay's event API driven by an upgraded mk_http connection.
 *
 * Data flow. mk_http gives us bytes (on_data); we point wslay's receive callback at
 * them and let wslay_event_recv parse every frame they complete; complete messages
 * come back through on_msg_recv. Anything wslay wants to send (our messages, pongs,
 * close frames) leaves through send_cb into the connection's write queue. When that
 * queue is full send_cb says "would block": wslay keeps the rest and we pump again
 * when mk_http reports the queue empty (on_writable).
 *
 * Closing. Whoever closes first sends a close frame; the other side answers; then the
 * TCP connection closes gracefully. A peer that never answers our close is cut off
 * after MK_WS_CLOSE_WAIT_MS; a connection that drops just drops (code 1006).
 */
#include "net/mk_ws.h"

#include <gcrypt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "core/mk_utf8.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define CLOSE_REASON_MAX 123

struct mk_ws {
    mk_http_conn *conn;             /* NULL once the connection reported closed */
    wslay_event_context_ptr ev;
    struct mk_ws_handlers h;
    void *arg;
    size_t max_msg, max_queue;
    uint32_t ping_ms, idle_ms;
    const char *in;                 /* bytes being fed to wslay_event_recv */
    size_t in_len;
    uint64_t last_rx_ms;
    int close_code;                 /* received, else sent, else 1006 */
    bool close_queued;              /* we queued a close frame */
    bool close_wait;                /* ours is out; waiting for the peer's */
    bool in_recv;                   /* inside wslay_event_recv: pump afterwards */
    bool read_paused;
};

/* ---- handshake ----------------------------------------------------------------- */

static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static bool gcry_ok;

static void gcry_init_once(void)
{
    /* gcry_check_version initialises the library; another module may have already
     * finished the initialisation, then this only checks. */
    if (!gcry_check_version(NULL)) return;
    if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
        gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
    gcry_ok = gcry_md_test_algo(GCRY_MD_SHA1) == 0;
}

int mk_ws_accept_key(mk_slice key, char out[29])
{
    pthread_once(&gcry_once, gcry_init_once);
    if (!gcry_ok || !key.ptr || key.len > 64) return MK_EINTERNAL;
    char buf[64 + sizeof WS_GUID];
    memcpy(buf, key.ptr, key.len);
    memcpy(buf + key.len, WS_GUID, sizeof WS_GUID - 1);
    unsigned char digest[20];
    gcry_md_hash_buffer(GCRY_MD_SHA1, digest, buf, key.len + sizeof WS_GUID - 1);
    sodium_bin2base64(out, 29, digest, sizeof digest, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* True when a comma-separated header value holds `token` (case-insensitive). */
static bool has_token(mk_slice v, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < v.len) {
        while (i < v.len && (v.ptr[i] == ' ' || v.ptr[i] == '\t' || v.ptr[i] == ',')) i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',') i++;
        size_t end = i;
        while (end > start && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t')) end--;
        if (end - start == tl && mk_slice_eq_nocase((mk_slice){v.ptr + start, tl}, mk_slice_cstr(token)))
            return true;
    }
    return false;
}

bool mk_ws_is_upgrade(const mk_http_req *req)
{
    return req && has_token(mk_http_req_header(req, "upgrade"), "websocket");
}

int mk_ws_check_request(const mk_http_req *req, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (!req) return (*why = "no request", MK_EINVAL);
    if (strcmp(req->method, "GET") != 0) return (*why = "a WebSocket handshake must be a GET", MK_EINVAL);
    if (req->http_major != 1 || req->http_minor < 1)
        return (*why = "a WebSocket handshake needs HTTP/1.1", MK_EINVAL);
    if (!mk_ws_is_upgrade(req)) return (*why = "missing Upgrade: websocket", MK_EINVAL);
    if (!has_token(mk_http_req_header(req, "connection"), "upgrade"))
        return (*why = "missing Connection: Upgrade", MK_EINVAL);
    if (!mk_slice_eq_cstr(mk_http_req_header(req, "sec-websocket-version"), "13"))
        return (*why = "unsupported Sec-WebSocket-Version (13 is supported)", MK_EINVAL);
    mk_slice key = mk_http_req_header(req, "sec-websocket-key");
    unsigned char raw[20];
    size_t rawlen = 0;
    if (key.len != 24 ||
        sodium_base642bin(raw, sizeof raw, key.ptr, key.len, NULL, &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        rawlen != 16)
        return (*why = "Sec-WebSocket-Key must be base64 of 16 bytes", MK_EINVAL);
    return 0;
}

/* ---- wslay glue -------------------------------------------------------------------- */

static void pump(mk_ws *ws);

static ssize_t recv_cb(wslay_event_context_ptr ev, uint8_t *buf, size_t len, int flags, void *user)
{
    mk_ws *ws = user;
    if (ws->in_len == 0) {
        wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ev, const uint8_t *data, size_t len, int flags, void *user)
{
    mk_ws *ws = user;
    if (!ws->conn) {
        wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    /* Backpressure: wslay keeps what we do not take and we come back on_writable. */
    if (mk_http_upgraded_queued(ws->conn) >= ws->max_queue) {
        wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (mk_http_upgraded_write(ws->conn, data, len) != 0) {
        wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void queue_close(mk_ws *ws, uint16_t code, const char *reason)
{
    if (ws->close_queued || wslay_event_get_close_sent(ws->ev)) return;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > CLOSE_REASON_MAX) rl = mk_utf8_complete_prefix(reason, CLOSE_REASON_MAX);
    if (wslay_event_queue_close(ws->ev, code, (const uint8_t *)reason, rl) == 0) {
        ws->close_queued = true;
        if (!ws->close_code) ws->close_code = code;
    }
    /* Nothing more is read once we are closing with an error of theirs. */
}

static void on_msg_recv(wslay_event_context_ptr ev, const struct wslay_event_on_msg_recv_arg *m, void *user)
{
    mk_ws *ws = user;
    switch (m->opcode) {
    case WSLAY_TEXT_FRAME: {
        if (ws->close_queued) return; /* we said goodbye: late messages are dropped */
        if (!mk_utf8_valid((const char *)m->msg, m->msg_length)) {
            wslay_event_shutdown_read(ev);
            queue_close(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 in a text message");
            return;
        }
        /* A NUL-terminated copy: handlers may treat it as a C string. */
        char small[512];
        char *copy = m->msg_length < sizeof small ? small : malloc(m->msg_length + 1);
        if (!copy) {
            wslay_event_shutdown_read(ev);
            queue_close(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
            return;
        }
        if (m->msg_length) memcpy(copy, m->msg, m->msg_length);
        copy[m->msg_length] = '\0';
        if (ws->h.on_text) ws->h.on_text(ws, copy, m->msg_length, ws->arg);
        if (copy != small) free(copy);
        return;
    }
    case WSLAY_BINARY_FRAME:
        wslay_event_shutdown_read(ev);
        queue_close(ws, WSLAY_CODE_UNSUPPORTED_DATA, "text messages only");
        return;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay queues the answering close frame itself. */
        ws->close_code = m->status_code ? m->status_code : WSLAY_CODE_NO_STATUS_RCVD;
        ws->close_queued = true;
        return;
    default: /* ping (pong queued by wslay) and pong: the peer is alive */
        return;
    }
}

static void set_read_paused(mk_ws *ws, bool paused)
{
    if (!ws->conn || ws->read_paused == paused) return;
    ws->read_paused = paused;
    mk_http_upgraded_pause(ws->conn, paused);
}

/* Sends what wslay has queued, then decides what the connection waits for. */
static void pump(mk_ws *ws)
{
    if (!ws->conn || ws->in_recv) return;
    if (wslay_event_send(ws->ev) != 0) {
        mk_http_upgraded_close(ws->conn, false);
        return;
    }
    bool sent = wslay_event_get_close_sent(ws->ev), received = wslay_event_get_close_received(ws->ev);
    if (sent && received) { /* the handshake is complete: FIN after the queued bytes */
        mk_http_upgraded_close(ws->conn, true);
        return;
    }
    if (sent && !ws->close_wait) {
        ws->close_wait = true;
        mk_http_upgraded_timer(ws->conn, MK_WS_CLOSE_WAIT_MS);
    }
    /* Our replies to this peer back up: stop reading from it until they drain. */
    size_t queued = mk_http_upgraded_queued(ws->conn) + wslay_event_get_queued_msg_length(ws->ev);
    set_read_paused(ws, queued >= ws->max_queue);
}

/* ---- connection callbacks -------------------------------------------------------------- */

static void c_on_data(void *arg, const char *data, size_t len)
{
    mk_ws *ws = arg;
    if (!ws->conn) return;
    ws->last_rx_ms = mk_now_ms();
    if (!wslay_event_get_read_enabled(ws->ev)) { /* closing: discard */
        pump(ws);
        return;
    }
    ws->in = data;
    ws->in_len = len;
    ws->in_recv = true;
    int rv = wslay_event_recv(ws->ev);
    ws->in_recv = false;
    ws->in = NULL;
    ws->in_len = 0;
    if (!ws->conn) return;
    if (rv != 0) { /* out of memory or a broken callback: nothing sensible to say */
        mk_http_upgraded_close(ws->conn, false);
        return;
    }
    /* wslay queues a 1002/1009 close itself on protocol errors and oversized messages */
    if (!wslay_event_get_read_enabled(ws->ev) && !ws->close_queued) {
        ws->close_queued = true;
        uint16_t sent = wslay_event_get_status_code_sent(ws->ev);
        if (!ws->close_code) ws->close_code = sent ? sent : WSLAY_CODE_PROTOCOL_ERROR;
    }
    pump(ws);
}

static void c_on_writable(void *arg)
{
    mk_ws *ws = arg;
    pump(ws);
}

static void c_on_timer(void *arg)
{
    mk_ws *ws = arg;
    if (!ws->conn) return;
    if (ws->close_wait) { /* the peer never answered our close */
        mk_http_upgraded_close(ws->conn, false);
        return;
    }
    uint64_t now = mk_now_ms(), quiet = now - ws->last_rx_ms;
    if (quiet >= ws->idle_ms) {
        ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
        mk_http_upgraded_close(ws->conn, false);
        return;
    }
    if (quiet >= ws->ping_ms / 2) { /* only ping a quiet peer */
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"mk", 2};
        wslay_event_queue_msg(ws->ev, &ping);
        pump(ws);
        if (!ws->conn || ws->close_wait) return;
    }
    uint64_t left = ws->idle_ms - quiet;
    mk_http_upgraded_timer(ws->conn, (uint32_t)(left < ws->ping_ms ? left : ws->ping_ms));
}

static void c_on_drain(void *arg)
{
    mk_ws *ws = arg;
    if (ws->h.on_drain) ws->h.on_drain(ws, ws->arg);
    else mk_ws_close(ws, WSLAY_CODE_GOING_AWAY, "server shutting down");
}

static void c_on_close(void *arg)
{
    mk_ws *ws = arg;
    ws->conn = NULL;
    int code = ws->close_code ? ws->close_code : WSLAY_CODE_ABNORMAL_CLOSURE;
    if (ws->h.on_close) ws->h.on_close(ws, code, ws->arg);
    wslay_event_context_free(ws->ev);
    free(ws);
}

static const struct mk_http_upgrade_ops conn_ops = {
    .on_data = c_on_data,
    .on_writable = c_on_writable,
    .on_timer = c_on_timer,
    .on_drain = c_on_drain,
    .on_close = c_on_close,
};

/* ---- public ---------------------------------------------------------------------------- */

static size_t pick(size_t v, size_t dflt) { return v == 0 || v > dflt ? dflt : v; }

int mk_ws_accept(mk_http_req *req, const struct mk_ws_opts *opts, const struct mk_ws_handlers *h, void *arg,
                 mk_ws **out)
{
    if (out) *out = NULL;
    if (!req || !h || !h->on_close || mk_ws_check_request(req, NULL) != 0) return MK_EINVAL;
    static const struct mk_ws_opts none;
    if (!opts) opts = &none;
    char accept[29];
    int rc = mk_ws_accept_key(mk_http_req_header(req, "sec-websocket-key"), accept);
    if (rc) return rc;
    mk_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return MK_ENOMEM;
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_msg_recv_callback = on_msg_recv,
    };
    if (wslay_event_context_server_init(&ws->ev, &cbs, ws) != 0) {
        free(ws);
        return MK_ENOMEM;
    }
    ws->h = *h;
    ws->arg = arg;
    ws->max_msg = pick(opts->max_message_bytes, MK_WS_MAX_MESSAGE_BYTES);
    ws->max_queue = opts->max_queue_bytes ? opts->max_queue_bytes : MK_WS_MAX_QUEUE_BYTES;
    ws->ping_ms = opts->ping_interval_ms ? opts->ping_interval_ms : MK_WS_PING_INTERVAL_MS;
    ws->idle_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms : MK_WS_IDLE_TIMEOUT_MS;
    if (ws->idle_ms < ws->ping_ms) ws->idle_ms = ws->ping_ms;
    ws->last_rx_ms = mk_now_ms();
    wslay_event_config_set_max_recv_msg_length(ws->ev, ws->max_msg);

    mk_http_header hs[4] = {
        {MK_SLICE_LIT("Upgrade"), MK_SLICE_LIT("websocket")},
        {MK_SLICE_LIT("Connection"), MK_SLICE_LIT("Upgrade")},
        {MK_SLICE_LIT("Sec-WebSocket-Accept"), {accept, 28}},
    };
    size_t nh = 3;
    if (opts->subprotocol && has_token(mk_http_req_header(req, "sec-websocket-protocol"), opts->subprotocol))
        hs[nh++] = (mk_http_header){MK_SLICE_LIT("Sec-WebSocket-Protocol"), mk_slice_cstr(opts->subprotocol)};
    rc = mk_http_upgrade(req, hs, nh, &conn_ops, ws, &ws->conn);
    if (rc != 0) {
        wslay_event_context_free(ws->ev);
        free(ws);
        return rc;
    }
    mk_http_upgraded_timer(ws->conn, ws->ping_ms);
    if (out) *out = ws;
    return 0;
}

int mk_ws_send_text(mk_ws *ws, const char *data, size_t len)
{
    if (!ws || (len && !data)) return MK_EINVAL;
    if (!ws->conn || ws->close_queued || !wslay_event_get_write_enabled(ws->ev)) return MK_ECANCELLED;
    if (!mk_utf8_valid(data, len)) return MK_EINVAL;
    size_t queued = mk_http_upgraded_queued(ws->conn) + wslay_event_get_queued_msg_length(ws->ev);
    if (queued + len > ws->max_queue) return MK_EBUSY;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)data, len};
    if (wslay_event_queue_msg(ws->ev, &m) != 0) return MK_ENOMEM;
    pump(ws);
    return 0;
}

void mk_ws_close(mk_ws *ws, uint16_t code, const char *reason)
{
    if (!ws || !ws->conn) return;
    queue_close(ws, code, reason);
    pump(ws);
}

size_t mk_ws_queued_bytes(const mk_ws *ws)
{
    if (!ws || !ws->conn) return 0;
    return mk_http_upgraded_queued(ws->conn) + wslay_event_get_queued_msg_length(ws->ev);
}

void mk_ws_set_arg(mk_ws *ws, void *arg)
{
    if (ws) ws->arg = arg;
}

const char *mk_ws_peer(const mk_ws *ws) { return ws && ws->conn ? mk_http_upgraded_peer(ws->conn) : ""; }

bool mk_ws_closing(const mk_ws *ws) { return !ws || !ws->conn || ws->close_queued; }
