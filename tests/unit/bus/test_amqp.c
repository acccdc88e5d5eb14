/*
 * The RabbitMQ bus against a real rabbitmq-server (rmq_server.h, one broker for this
 * executable): publish/consume round trip with publisher confirms; consumer ack
 * semantics (an event not acknowledged comes back, an acknowledged one does not); the
 * broker restarted while events are being published, with no event lost (counted by
 * unique id); an unreachable broker (events wait in the bounded queue, cancelled at
 * free).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bus/mk_bus.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "rmq_server.h"

static struct rmq_server shared;

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char err[512];
    if (rmq_start(&shared, err, sizeof err) != 0) {
        setenv("MK_TEST_RMQ_ERROR", err, 1);
        return;
    }
    rmq_export(&shared);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    rmq_stop(&shared);
}

static void broker(struct rmq_server *s, char *url, size_t n)
{
    const char *e = getenv("MK_TEST_RMQ_ERROR");
    cr_assert(!e, "no broker: %s", e);
    cr_assert_eq(rmq_import(s), 0, "no broker published");
    rmq_url(s, url, n);
}

static void setup(void) { mk_log_set_level(MK_LOG_ERROR); }

TestSuite(bus_amqp, .init = setup, .timeout = 60);

#define MAXEV 4000

struct seen {
    int calls;               /* handler calls, duplicates included */
    int unique;
    char (*ids)[37];         /* unique ids received */
    int redelivered;
    bool fail_first_try;     /* fail an event the first time it is seen */
    bool hold;               /* keep deliveries (MK_BUS_LATER) */
    mk_bus_delivery *held[8];
    bool held_redelivered[8];
    int nheld;
};

static bool seen_has(const struct seen *s, const char *id)
{
    for (int i = 0; i < s->unique; i++)
        if (!strcmp(s->ids[i], id)) return true;
    return false;
}

static int on_event(const struct mk_bus_event *ev, mk_bus_delivery *d, void *arg)
{
    struct seen *s = arg;
    s->calls++;
    if (ev->redelivered) s->redelivered++;
    bool known = seen_has(s, ev->id);
    if (!known && s->unique < MAXEV) snprintf(s->ids[s->unique++], 37, "%s", ev->id);
    if (s->hold && s->nheld < 8) {
        s->held_redelivered[s->nheld] = ev->redelivered;
        s->held[s->nheld++] = d;
        return MK_BUS_LATER;
    }
    if (s->fail_first_try && !known) return MK_EUNAVAILABLE;
    return 0;
}

static void seen_init(struct seen *s)
{
    memset(s, 0, sizeof *s);
    s->ids = calloc(MAXEV, 37);
    cr_assert(s->ids);
}

/* Runs the loop until cond or timeout_ms; returns cond's last value. */
static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, long timeout_ms)
{
    long end = rmq_now_ms() + timeout_ms;
    while (!cond(arg) && rmq_now_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        rmq_sleep_ms(2);
    }
    return cond(arg);
}

struct waitfor {
    struct mk_bus *bus;
    struct seen *seen;
    int want;
    int *counter;
};
static bool consuming(void *arg)
{
    struct waitfor *w = arg;
    struct mk_bus_stats st;
    mk_bus_get_stats(w->bus, &st);
    return st.connected && st.consuming >= (uint64_t)w->want;
}
static bool got_unique(void *arg)
{
    struct waitfor *w = arg;
    return w->seen->unique >= w->want;
}
static bool got_held(void *arg)
{
    struct waitfor *w = arg;
    return w->seen->nheld >= w->want;
}
static bool counter_reached(void *arg)
{
    struct waitfor *w = arg;
    return *w->counter >= w->want;
}

static int confirmed_ok, confirmed_bad;
static void on_confirm(int rc, const char *id, void *arg)
{
    (void)id, (void)arg;
    if (rc == 0) confirmed_ok++;
    else confirmed_bad++;
}

static void group_name(char *out, size_t n, const char *what)
{
    snprintf(out, n, "%s-%d-%u", what, (int)getpid(), (unsigned)rmq_now_ms());
}

static struct mk_bus *open_bus(uv_loop_t *loop, const char *url)
{
    struct mk_bus *bus = NULL;
    struct mk_bus_options o = {.retry_delay_ms = 20, .reconnect_min_ms = 50, .reconnect_max_ms = 500,
                               .drain_ms = 3000, .queue_prefix = "mktest"};
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_bus_open(loop, url, &o, &bus, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    cr_assert_str_eq(mk_bus_backend_name(bus), "amqp");
    return bus;
}

static void close_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 20; i++) uv_run(loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(loop), 0, "handles left open");
}

static const char *const all[] = {"conversation.*", "test.#"};

Test(bus_amqp, round_trip_with_publisher_confirms)
{
    struct rmq_server s;
    char url[128], group[64];
    broker(&s, url, sizeof url);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mk_bus *bus = open_bus(&loop, url);
    struct seen seen;
    seen_init(&seen);
    seen.fail_first_try = true; /* every event fails once: it must come back */
    group_name(group, sizeof group, "rt");
    cr_assert_eq(mk_bus_subscribe(bus, group, all, 2, 16, on_event, &seen, NULL), 0);
    struct waitfor w = {.bus = bus, .seen = &seen, .want = 1};
    cr_assert(run_until(&loop, consuming, &w, 20000), "never connected and consuming");

    enum { N = 50 };
    char ids[N][37];
    confirmed_ok = confirmed_bad = 0;
    for (int i = 0; i < N; i++) {
        char p[64];
        snprintf(p, sizeof p, "{\"conversation\":\"c-%d\",\"n\":%d}", i, i);
        cr_assert_eq(mk_bus_publish(bus, i % 2 ? MK_BUS_CONVERSATION_MESSAGE : "test.x.y", "acme", p, strlen(p),
                                    on_confirm, NULL, ids[i]),
                     0);
    }
    cr_assert_eq(mk_bus_publish(bus, "other.type", "acme", NULL, 0, on_confirm, NULL, NULL), 0); /* unbound */
    w.want = N + 1;
    w.counter = &confirmed_ok;
    cr_assert(run_until(&loop, counter_reached, &w, 20000), "confirms: %d of %d", confirmed_ok, N + 1);
    cr_assert_eq(confirmed_bad, 0);
    w.want = N;
    cr_assert(run_until(&loop, got_unique, &w, 20000), "received %d of %d", seen.unique, N);
    for (int i = 0; i < N; i++) cr_assert(seen_has(&seen, ids[i]), "event %d missing", i);
    /* Each failed once and came back marked. */
    w.want = 2 * N;
    w.counter = &seen.calls;
    cr_assert(run_until(&loop, counter_reached, &w, 20000), "calls %d", seen.calls);
    cr_assert_geq(seen.redelivered, N);
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    cr_assert_eq(st.published, N + 1);
    cr_assert_eq(st.confirmed, N + 1);
    cr_assert_eq(st.pending, 0);
    cr_assert_geq(st.failed, N);
    cr_assert_geq(st.acked, N);
    mk_bus_free(bus);
    close_loop(&loop);
    free(seen.ids);
}

Test(bus_amqp, unacked_event_comes_back_acked_does_not)
{
    struct rmq_server s;
    char url[128], group[64];
    broker(&s, url, sizeof url);
    group_name(group, sizeof group, "ack");
    uv_loop_t loop;
    uv_loop_init(&loop);

    /* 1: hold the delivery and go away without finishing it. */
    struct mk_bus *bus = open_bus(&loop, url);
    struct seen a;
    seen_init(&a);
    a.hold = true;
    cr_assert_eq(mk_bus_subscribe(bus, group, all, 2, 4, on_event, &a, NULL), 0);
    struct waitfor w = {.bus = bus, .seen = &a, .want = 1};
    cr_assert(run_until(&loop, consuming, &w, 20000));
    char id[37];
    cr_assert_eq(mk_bus_publish(bus, MK_BUS_CONVERSATION_CLAIMED, "t", "{\"op\":1}", 8, NULL, NULL, id), 0);
    cr_assert(run_until(&loop, got_held, &w, 20000));
    cr_assert_str_eq(a.ids[0], id);
    cr_assert(!a.held_redelivered[0]);
    mk_bus_free(bus);
    mk_bus_delivery_done(a.held[0], 0); /* too late: the connection is gone, no ack */
    for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);

    /* 2: the same group gets it again, marked redelivered; this time it is acked. */
    bus = open_bus(&loop, url);
    struct seen b;
    seen_init(&b);
    b.hold = true;
    cr_assert_eq(mk_bus_subscribe(bus, group, all, 2, 4, on_event, &b, NULL), 0);
    w.bus = bus;
    w.seen = &b;
    cr_assert(run_until(&loop, got_held, &w, 20000), "the unacknowledged event did not come back");
    cr_assert_str_eq(b.ids[0], id);
    cr_assert(b.held_redelivered[0]);
    mk_bus_delivery_done(b.held[0], 0);
    /* A second event proves the consumer is live, and that the first is not redelivered. */
    char id2[37];
    cr_assert_eq(mk_bus_publish(bus, MK_BUS_CONVERSATION_RESOLVED, "t", NULL, 0, NULL, NULL, id2), 0);
    w.want = 2;
    cr_assert(run_until(&loop, got_held, &w, 20000));
    cr_assert_str_eq(b.ids[1], id2);
    mk_bus_delivery_done(b.held[1], 0);
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    cr_assert_eq(st.acked, 2);
    mk_bus_free(bus);
    for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);

    /* 3: acknowledged means gone: a new consumer of the group sees only a new event. */
    bus = open_bus(&loop, url);
    struct seen c;
    seen_init(&c);
    cr_assert_eq(mk_bus_subscribe(bus, group, all, 2, 4, on_event, &c, NULL), 0);
    w.bus = bus;
    w.seen = &c;
    w.want = 1;
    cr_assert(run_until(&loop, consuming, &w, 20000));
    char id3[37];
    cr_assert_eq(mk_bus_publish(bus, MK_BUS_CONVERSATION_RATED, "t", NULL, 0, NULL, NULL, id3), 0);
    cr_assert(run_until(&loop, got_unique, &w, 20000));
    for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT), rmq_sleep_ms(5);
    cr_assert_eq(c.unique, 1, "an acknowledged event came back");
    cr_assert_str_eq(c.ids[0], id3);
    mk_bus_free(bus);
    close_loop(&loop);
    free(a.ids);
    free(b.ids);
    free(c.ids);
}

/* The broker restart runs on its own thread so that the loop keeps publishing while
 * the broker is down and starting. */
struct restarter {
    struct rmq_server *s;
    int rc;
    char err[512];
    atomic_int phase;        /* 1 = halted, 2 = running again */
};

static void *restart_main(void *arg)
{
    struct restarter *r = arg;
    rmq_halt(r->s);
    atomic_store(&r->phase, 1);
    rmq_sleep_ms(300);
    r->rc = rmq_resume(r->s, r->err, sizeof r->err);
    atomic_store(&r->phase, 2);
    return NULL;
}

Test(bus_amqp, broker_restart_mid_publish_loses_nothing, .timeout = 90)
{
    struct rmq_server s;
    char url[128], group[64];
    broker(&s, url, sizeof url);
    group_name(group, sizeof group, "restart");
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mk_bus *bus = open_bus(&loop, url);
    struct seen seen;
    seen_init(&seen);
    cr_assert_eq(mk_bus_subscribe(bus, group, all, 2, 32, on_event, &seen, NULL), 0);
    struct waitfor w = {.bus = bus, .seen = &seen, .want = 1};
    cr_assert(run_until(&loop, consuming, &w, 20000));

    enum { N = 600 };
    static char ids[N][37];
    confirmed_ok = confirmed_bad = 0;
    struct restarter r = {.s = &s};
    pthread_t th;
    bool started = false;
    int published = 0;
    long deadline = rmq_now_ms() + 60000;
    /* Publish a steady trickle; restart the broker after the first third, and keep
     * publishing while it is down and coming back. */
    while (published < N && rmq_now_ms() < deadline) {
        for (int k = 0; k < 5 && published < N; k++, published++) {
            char p[48];
            snprintf(p, sizeof p, "{\"n\":%d}", published);
            int rc = mk_bus_publish(bus, MK_BUS_CONVERSATION_MESSAGE, "acme", p, strlen(p), on_confirm, NULL,
                                    ids[published]);
            cr_assert_eq(rc, 0, "publish %d: %s", published, mk_strerror(rc));
        }
        if (!started && published >= N / 3) {
            cr_assert_eq(pthread_create(&th, NULL, restart_main, &r), 0);
            started = true;
        }
        /* Slow down while the broker is away so the rest spans the restart. */
        uv_run(&loop, UV_RUN_NOWAIT);
        rmq_sleep_ms(started && atomic_load(&r.phase) < 2 ? 40 : 5);
    }
    cr_assert_eq(published, N);
    if (started) pthread_join(th, NULL);
    cr_assert_eq(r.rc, 0, "broker restart failed: %s", r.err);
    w.want = N;
    cr_assert(run_until(&loop, got_unique, &w, 40000), "received %d unique of %d", seen.unique, N);
    for (int i = 0; i < N; i++) cr_assert(seen_has(&seen, ids[i]), "event %d lost", i);
    w.counter = &confirmed_ok;
    cr_assert(run_until(&loop, counter_reached, &w, 20000), "confirmed %d of %d", confirmed_ok, N);
    cr_assert_eq(confirmed_bad, 0);
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    cr_assert_geq(st.reconnects, 2, "both links reconnect");
    cr_assert_eq(st.pending, 0);
    cr_log_info("restart: %d calls for %d events (%d duplicates), %llu resent", seen.calls, N, seen.calls - N,
                (unsigned long long)st.resent);
    mk_bus_free(bus);
    close_loop(&loop);
    free(seen.ids);
}

Test(bus_amqp, unreachable_broker_queues_bounded_then_cancels)
{
    int port = rmq_free_port();
    char url[96];
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d/", port);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mk_bus *bus = NULL;
    struct mk_bus_options o = {.max_pending = 3, .reconnect_min_ms = 20, .reconnect_max_ms = 100};
    cr_assert_eq(mk_bus_open(&loop, url, &o, &bus, NULL), 0);
    confirmed_ok = confirmed_bad = 0;
    for (int i = 0; i < 3; i++) cr_assert_eq(mk_bus_publish(bus, "a.b", NULL, NULL, 0, on_confirm, NULL, NULL), 0);
    cr_assert_eq(mk_bus_publish(bus, "a.b", NULL, NULL, 0, on_confirm, NULL, NULL), MK_EBUSY);
    for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT), rmq_sleep_ms(5);
    cr_assert(!mk_bus_connected(bus));
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    cr_assert_eq(st.pending, 3);
    cr_assert_eq(st.refused, 1);
    mk_bus_free(bus);
    cr_assert_eq(confirmed_bad, 3, "pending events are cancelled at free");
    cr_assert_eq(confirmed_ok, 0);
    close_loop(&loop);

    /* Bad URLs say why. */
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_bus_open(&loop, "amqps://h:5671/", NULL, &bus, &err), MK_EINVAL);
    cr_assert(strstr(err.data, "TLS"));
    mk_buf_reset(&err);
    cr_assert_eq(mk_bus_open(&loop, "kafka://x", NULL, &bus, &err), MK_EINVAL);
    cr_assert(err.len > 0);
    mk_buf_reset(&err);
    cr_assert_eq(mk_bus_open(&loop, "amqp://[broken", NULL, &bus, &err), MK_EINVAL);
    mk_buf_release(&err);
}
