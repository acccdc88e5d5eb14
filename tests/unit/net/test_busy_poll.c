/* Unit tests for mk_busy_poll: the window keeps the loop polling, closes by itself,
 * and costs nothing when off. */
#include <criterion/criterion.h>
#include <uv.h>

#include "core/mk_error.h"
#include "net/mk_busy_poll.h"

/* Counts loop turns (a check handle runs once per turn, after polling). */
static unsigned g_turns;
static void on_check(uv_check_t *h) { (void)h; g_turns++; }
static void on_timer(uv_timer_t *t) { uv_close((uv_handle_t *)t, NULL); }

/* Runs `loop` until a one-shot timer of `ms` fires and everything closes; returns the
 * loop turns seen while waiting for it. */
static unsigned turns_while_waiting(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t timer;
    uv_check_t check;
    uv_timer_init(loop, &timer);
    uv_check_init(loop, &check);
    uv_unref((uv_handle_t *)&check);
    uv_check_start(&check, on_check);
    g_turns = 0;
    uv_timer_start(&timer, on_timer, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    unsigned n = g_turns;
    uv_close((uv_handle_t *)&check, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return n;
}

Test(busy_poll, off_costs_nothing)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(mk_busy_poll_set(&loop, 0), 0);
    cr_assert_eq(mk_busy_poll_window_us(), 0);
    mk_busy_poll_touch(); /* a no-op: nothing may keep the loop alive */
    cr_assert_eq(uv_loop_alive(&loop), 0);
    /* Sleeping in epoll: a handful of turns for one timer, not a spin. */
    cr_assert_leq(turns_while_waiting(&loop, 30), 3);
    mk_busy_poll_close();
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(busy_poll, window_polls_then_closes_by_itself)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(mk_busy_poll_set(&loop, MK_BUSY_POLL_MAX_US), 0);
    cr_assert_eq(mk_busy_poll_window_us(), MK_BUSY_POLL_MAX_US);
    mk_busy_poll_touch();
    cr_assert_neq(uv_loop_alive(&loop), 0, "an open window keeps the loop turning");
    /* The timer is 3x the window: the loop spins through the window (many turns),
     * then sleeps until the timer. */
    unsigned spun = turns_while_waiting(&loop, 30);
    cr_assert_geq(spun, 4, "expected the loop to poll during the window, saw %u turns", spun);
    /* The window closed on its own: nothing keeps the loop alive now. */
    cr_assert_eq(uv_loop_alive(&loop), 0);
    /* And reopens on the next touch. */
    mk_busy_poll_touch();
    cr_assert_neq(uv_loop_alive(&loop), 0);
    cr_assert_eq(mk_busy_poll_set(&loop, 0), 0, "turning it off stops an open window");
    cr_assert_eq(uv_loop_alive(&loop), 0);
    mk_busy_poll_close();
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(busy_poll, bad_arguments_and_clamping)
{
    uv_loop_t a, b;
    cr_assert_eq(uv_loop_init(&a), 0);
    cr_assert_eq(uv_loop_init(&b), 0);
    cr_assert_eq(mk_busy_poll_set(NULL, 10), MK_EINVAL);
    cr_assert_eq(mk_busy_poll_set(&a, MK_BUSY_POLL_MAX_US * 10), 0);
    cr_assert_eq(mk_busy_poll_window_us(), MK_BUSY_POLL_MAX_US, "clamped to the maximum");
    cr_assert_eq(mk_busy_poll_set(&b, 10), MK_EINVAL, "one loop per thread");
    cr_assert_eq(mk_busy_poll_set(&a, 50), 0, "changing the window (a reload)");
    cr_assert_eq(mk_busy_poll_window_us(), 50);
    mk_busy_poll_close();
    mk_busy_poll_close(); /* twice is fine */
    uv_run(&a, UV_RUN_DEFAULT);
    /* Closed: the thread may set up a window on another loop. */
    cr_assert_eq(mk_busy_poll_set(&b, 10), 0);
    mk_busy_poll_close();
    uv_run(&b, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&a), 0);
    cr_assert_eq(uv_loop_close(&b), 0);
}
