/*
 * mk_busy_poll: keeps the loop polling for a short window after network reads (see
 * mk_busy_poll.h for why and what it costs).
 *
 * How: an active uv_idle_t makes libuv poll with timeout 0 instead of sleeping, so
 * the window is "idle handle active". A read anywhere marks the window as touched
 * (a flag and, when the handle is stopped, uv_idle_start); the idle callback, which
 * runs once per loop turn while active, moves the window's start to now when it was
 * touched and stops the handle once the window has passed untouched. The clock is
 * read once per loop turn while polling, never per read.
 */
#include "net/mk_busy_poll.h"

#include <stdbool.h>

#include "core/mk_error.h"

struct busy_poll {
    uv_loop_t *loop;
    uv_idle_t idle;
    uint64_t window_ns;
    uint64_t since_ns;     /* last time the window was (re)opened */
    bool touched;          /* a read since the idle callback last looked */
    bool active;           /* idle handle started */
    bool closing;
};

static _Thread_local struct busy_poll g_bp;

static void on_idle(uv_idle_t *h)
{
    struct busy_poll *bp = h->data;
    uint64_t now = uv_hrtime();
    if (bp->touched) {
        bp->touched = false;
        bp->since_ns = now;
        return;
    }
    if (now - bp->since_ns >= bp->window_ns) {
        uv_idle_stop(&bp->idle);
        bp->active = false;
    }
}

int mk_busy_poll_set(uv_loop_t *loop, uint32_t window_us)
{
    struct busy_poll *bp = &g_bp;
    if (!loop || (bp->loop && bp->loop != loop) || bp->closing) return MK_EINVAL;
    if (window_us > MK_BUSY_POLL_MAX_US) window_us = MK_BUSY_POLL_MAX_US;
    if (!bp->loop) {
        if (window_us == 0) return 0; /* nothing to set up for "off" */
        if (uv_idle_init(loop, &bp->idle) != 0) return MK_EINVAL;
        bp->idle.data = bp;
        bp->loop = loop;
    }
    bp->window_ns = (uint64_t)window_us * 1000u;
    if (window_us == 0 && bp->active) {
        uv_idle_stop(&bp->idle);
        bp->active = false;
    }
    bp->touched = false;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct busy_poll *bp = h->data;
    *bp = (struct busy_poll){0};
}

void mk_busy_poll_close(void)
{
    struct busy_poll *bp = &g_bp;
    if (!bp->loop || bp->closing) return;
    bp->closing = true;
    bp->window_ns = 0;
    bp->active = false;
    uv_close((uv_handle_t *)&bp->idle, on_closed);
}

uint32_t mk_busy_poll_window_us(void) { return (uint32_t)(g_bp.window_ns / 1000u); }

void mk_busy_poll_touch(void)
{
    struct busy_poll *bp = &g_bp;
    if (bp->window_ns == 0) return;
    bp->touched = true;
    if (!bp->active) {
        /* Opening a window: the idle callback takes its start from this touch. */
        uv_idle_start(&bp->idle, on_idle);
        bp->active = true;
    }
}
