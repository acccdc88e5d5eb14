/*
 * mk_http_upgrade: switching a server connection to another protocol (WebSocket).
 *
 * The handler of an upgrade request calls mk_http_upgrade(): the 101 head is written,
 * the request is finished like any other (pool freed, in-flight count dropped) and the
 * connection stays open with `upgraded` set. From then on mk_http.c hands every byte
 * read to the owner's on_data instead of the HTTP parser, runs the owner's timer and
 * tells it of drains and of the close. Bytes that arrived while the request was in
 * flight (kept in `pending`) are delivered first, from the loop, so the owner never
 * sees a callback inside its own mk_http_upgrade() call.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_pool.h"
#include "net/mk_http.h"
#include "net/mk_http_int.h"

/* Head bytes beyond the caller's headers: status line and the blank line. */
#define HEAD_BASE 64

static bool header_safe(const mk_http_header *h)
{
    if (!h->name.ptr || h->name.len == 0 || (h->value.len && !h->value.ptr)) return false;
    for (size_t i = 0; i < h->name.len; i++) {
        unsigned char ch = (unsigned char)h->name.ptr[i];
        if (ch <= ' ' || ch == ':' || ch >= 127) return false;
    }
    for (size_t i = 0; i < h->value.len; i++) {
        unsigned char ch = (unsigned char)h->value.ptr[i];
        if (ch == '\r' || ch == '\n' || ch == '\0') return false;
    }
    return true;
}

int mk_http_upgrade(mk_http_req *req, const mk_http_header *headers, size_t nheaders,
                    const struct mk_http_upgrade_ops *ops, void *arg, mk_http_conn **out)
{
    if (!req || !ops || !ops->on_data || !ops->on_close || (nheaders && !headers)) return MK_EINVAL;
    mk_http_conn *c = req->conn;
    if (c->streaming || c->upgraded) return MK_EINVAL;
    if (c->aborted || c->state != MK_HTTP_C_OPEN) return MK_ECANCELLED;
    size_t need = HEAD_BASE;
    for (size_t i = 0; i < nheaders; i++) {
        if (!header_safe(&headers[i])) return MK_EINVAL;
        need += headers[i].name.len + headers[i].value.len + 4;
    }
    mk_buf head = MK_BUF_INIT;
    if (mk_buf_reserve(&head, need) != 0) return MK_ENOMEM;
    mk_buf_append_str(&head, "HTTP/1.1 101 Switching Protocols\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        mk_buf_append_slice(&head, headers[i].name);
        mk_buf_append(&head, ": ", 2);
        mk_buf_append_slice(&head, headers[i].value);
        mk_buf_append(&head, "\r\n", 2);
    }
    mk_buf_append(&head, "\r\n", 2);
    uv_buf_t b = uv_buf_init(head.data, (unsigned)head.len);
    int rc = mk_http__conn_write(c, &b, 1);
    mk_buf_release(&head);
    if (rc != 0) return MK_ECANCELLED; /* the connection is closing; the caller finishes req */

    /* The request is done: the same bookkeeping as a response, minus keep-alive. */
    c->upgraded = true;
    c->up_ops = ops;
    c->up_arg = arg;
    c->req = NULL;
    c->abort_fn = NULL;
    c->tkind = MK_HTTP_T_NONE;
    c->srv->inflight--;
    mk_pool_free(req->pool);
    if (c->pending.len || c->read_stopped) mk_http__enqueue_resume(c);
    if (out) *out = c;
    return 0;
}

void mk_http__upgraded_resume(mk_http_conn *c)
{
    if (c->state != MK_HTTP_C_OPEN || !c->upgraded) return;
    if (c->pending.len && c->up_ops) {
        /* Hand over and forget: the owner copies what it keeps. The buffer is taken
         * out first so bytes arriving during on_data cannot be appended behind it. */
        mk_buf taken = c->pending;
        mk_buf_init(&c->pending, 0);
        c->up_ops->on_data(c->up_arg, taken.data, taken.len);
        mk_buf_release(&taken);
    }
    if (c->state == MK_HTTP_C_OPEN && c->read_stopped && !c->up_paused) mk_http_upgraded_pause(c, false);
}

int mk_http_upgraded_write(mk_http_conn *c, const void *data, size_t len)
{
    if (!c || !c->upgraded) return MK_EINVAL;
    if (c->state != MK_HTTP_C_OPEN) return MK_ECANCELLED;
    if (len == 0) return 0;
    if (len > UINT32_MAX) return MK_ETOOBIG;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = mk_http__conn_write(c, &b, 1);
    if (rc == 0 && c->wq_bytes > 0) c->up_want_writable = true;
    return rc;
}

size_t mk_http_upgraded_queued(const mk_http_conn *c) { return c ? c->wq_bytes : 0; }

static void on_upgraded_timer(uv_timer_t *t);

void mk_http_upgraded_timer(mk_http_conn *c, uint32_t ms)
{
    if (!c || !c->upgraded || c->state == MK_HTTP_C_CLOSING) return;
    if (c->state == MK_HTTP_C_LINGER) return; /* the linger deadline rules now */
    if (ms == 0) {
        c->tkind = MK_HTTP_T_NONE;
        uv_timer_stop(&c->timer);
        return;
    }
    /* A fixed deadline (not the lazy one of HTTP timers): the owner sets it rarely. */
    c->tkind = MK_HTTP_T_UPGRADED;
    c->deadline = uv_now(c->srv->loop) + ms;
    uv_timer_start(&c->timer, on_upgraded_timer, ms, 0);
}

static void on_upgraded_timer(uv_timer_t *t)
{
    mk_http_conn *c = t->data;
    if (c->tkind != MK_HTTP_T_UPGRADED || c->state != MK_HTTP_C_OPEN) return;
    c->tkind = MK_HTTP_T_NONE;
    if (c->up_ops && c->up_ops->on_timer) c->up_ops->on_timer(c->up_arg);
}

void mk_http_upgraded_pause(mk_http_conn *c, bool paused)
{
    if (!c || !c->upgraded || c->state != MK_HTTP_C_OPEN) return;
    c->up_paused = paused;
    if (paused) {
        if (!c->read_stopped) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->read_stopped = true;
        }
        return;
    }
    if (!c->read_stopped) return;
    c->read_stopped = false;
    mk_http__restart_read(c);
}

void mk_http_upgraded_close(mk_http_conn *c, bool graceful)
{
    if (!c || !c->upgraded || c->state == MK_HTTP_C_CLOSING) return;
    if (c->state == MK_HTTP_C_LINGER && graceful) return;
    mk_http__conn_close(c, graceful);
}

const char *mk_http_upgraded_peer(const mk_http_conn *c) { return c ? c->peer : ""; }
