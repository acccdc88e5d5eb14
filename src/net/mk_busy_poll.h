/*
 * mk_busy_poll: optional short busy-polling of the event loop after network I/O.
 *
 * Why: when the loop has nothing to do it sleeps in epoll_wait, and an idle CPU
 * halts. Waking a halted CPU costs more than serving a small request: on a VM whose
 * guest does not halt-poll, a cross-CPU wake-up over loopback was measured at about
 * 20-35 us each way (bench/README.md), and a gateway pays one when the request
 * arrives and another when the upstream's reply arrives a few tens of microseconds
 * later. With a window of N microseconds, after every read on a client or upstream
 * connection the loop keeps polling (epoll_wait with timeout 0) until N microseconds
 * pass without another read, so a reply that comes back within the window is picked
 * up without the CPU ever halting.
 *
 * Cost: CPU. While traffic keeps arriving within the window the loop's core shows
 * busy even when it has little to do, which is wasted on a shared or metered core
 * (container CPU quotas count it). Idle costs nothing: the window closes N
 * microseconds after the last read. Off (0) by default; config key busy_poll_us.
 *
 * One window per thread (one event loop per thread); all functions run on the loop's
 * thread.
 */
#ifndef MK_BUSY_POLL_H
#define MK_BUSY_POLL_H

#include <stdint.h>
#include <uv.h>

/* Largest window accepted: beyond a few milliseconds the loop simply never sleeps
 * under any traffic, which is a CPU pinned at 100%, not a latency setting. */
#define MK_BUSY_POLL_MAX_US 10000

/* Sets the window for `loop` (0 turns busy-polling off; values above
 * MK_BUSY_POLL_MAX_US are clamped). May be called again to change it (a config
 * reload). 0 or MK_EINVAL (loop NULL, or a different loop than the one already set
 * on this thread). Call mk_busy_poll_close() before the loop is closed. */
int mk_busy_poll_set(uv_loop_t *loop, uint32_t window_us);
/* Stops busy-polling and closes its handle (the loop must still run once to finish
 * closing it). Safe to call when never set, and twice. */
void mk_busy_poll_close(void);
/* The current window in microseconds (0 = off). */
uint32_t mk_busy_poll_window_us(void);

/* Notes network activity: (re)opens the window. Called by the HTTP server and the
 * upstream client from their read callbacks; a no-op when busy-polling is off. */
void mk_busy_poll_touch(void);

#endif
