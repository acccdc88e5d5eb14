/*
 * The in-process bus: handlers run on the loop after mk_bus_publish returned, in
 * publish order, within prefetch; failures come back marked redelivered; the
 * publish queue is bounded; names and topic patterns are checked; the wire format
 * reads back what was published.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bus/mk_bus.h"
#include "core/mk_error.h"

#define MAXSEEN 256

struct rec {
    uv_loop_t *loop;
    bool in_publish;         /* set around mk_bus_publish: a handler must never see it */
    bool reentered;
    int n;
    char ids[MAXSEEN][37];
    char types[MAXSEEN][64];
    bool redelivered[MAXSEEN];
    char payload[MAXSEEN][128];
    char last_json[1024];
    char last_tenant[64];
    int fail_first;          /* fail this many calls */
    mk_bus_delivery *held[MAXSEEN]; /* MK_BUS_LATER deliveries */
    int nheld;
    bool later;
    int max_inflight, inflight;
    struct mk_bus_sub *self;
    int unsubscribe_after;
};

static int handler(const struct mk_bus_event *ev, mk_bus_delivery *d, void *arg)
{
    struct rec *r = arg;
    if (r->in_publish) r->reentered = true;
    if (r->n < MAXSEEN) {
        snprintf(r->ids[r->n], 37, "%s", ev->id);
        snprintf(r->types[r->n], 64, "%s", ev->type);
        snprintf(r->payload[r->n], 128, "%.*s", (int)ev->payload.len, ev->payload.ptr);
        snprintf(r->last_json, sizeof r->last_json, "%.*s", (int)ev->json.len, ev->json.ptr);
        snprintf(r->last_tenant, sizeof r->last_tenant, "%s", ev->tenant);
        r->redelivered[r->n] = ev->redelivered;
    }
    r->n++;
    if (r->unsubscribe_after && r->n == r->unsubscribe_after) mk_bus_unsubscribe(r->self);
    if (r->fail_first > 0) {
        r->fail_first--;
        return MK_EUNAVAILABLE;
    }
    if (r->later) {
        r->held[r->nheld++] = d;
        if (++r->inflight > r->max_inflight) r->max_inflight = r->inflight;
        return MK_BUS_LATER;
    }
    return 0;
}

static void run_until(uv_loop_t *loop, bool (*done)(void *), void *arg)
{
    for (int i = 0; i < 20000 && !done(arg); i++) uv_run(loop, UV_RUN_NOWAIT), usleep(100);
}

static int want_n;
static bool reached(void *arg) { return ((struct rec *)arg)->n >= want_n; }

static uv_loop_t *new_loop(void)
{
    uv_loop_t *l = malloc(sizeof *l);
    cr_assert(l && uv_loop_init(l) == 0);
    return l;
}

static void drop_loop(uv_loop_t *l)
{
    for (int i = 0; i < 10; i++) uv_run(l, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(l), 0, "handles left open");
    free(l);
}

static const char *const all[] = {"#"};

TestSuite(bus_inproc, .timeout = 30);
TestSuite(bus_names, .timeout = 30);

Test(bus_inproc, delivers_after_publish_in_order)
{
    uv_loop_t *loop = new_loop();
    struct mk_bus *bus = NULL;
    cr_assert_eq(mk_bus_open(loop, NULL, NULL, &bus, NULL), 0);
    cr_assert_str_eq(mk_bus_backend_name(bus), "inproc");
    cr_assert(mk_bus_connected(bus));
    struct rec r = {.loop = loop};
    cr_assert_eq(mk_bus_subscribe(bus, "desk", all, 1, 0, handler, &r, NULL), 0);
    char ids[100][37];
    for (int i = 0; i < 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "{\"n\": %d}", i);
        r.in_publish = true;
        cr_assert_eq(mk_bus_publish(bus, i % 2 ? "conversation.message" : "conversation.created", "acme", p,
                                    strlen(p), NULL, NULL, ids[i]),
                     0);
        r.in_publish = false;
        cr_assert_eq(r.n, 0, "a handler ran inside mk_bus_publish");
    }
    want_n = 100;
    run_until(loop, reached, &r);
    cr_assert_eq(r.n, 100);
    cr_assert(!r.reentered);
    for (int i = 0; i < 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "{\"n\":%d}", i);
        cr_assert_str_eq(r.ids[i], ids[i], "event %d out of order", i);
        cr_assert_str_eq(r.payload[i], p);
        cr_assert(!r.redelivered[i]);
    }
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    cr_assert_eq(st.published, 100);
    cr_assert_eq(st.delivered, 100);
    cr_assert_eq(st.acked, 100);
    cr_assert_eq(st.pending, 0);
    mk_bus_free(bus);
    drop_loop(loop);
}

Test(bus_inproc, patterns_select_events_per_group)
{
    uv_loop_t *loop = new_loop();
    struct mk_bus *bus = NULL;
    cr_assert_eq(mk_bus_open(loop, "inproc", NULL, &bus, NULL), 0);
    struct rec a = {0}, b = {0}, c = {0};
    const char *pa[] = {"conversation.rated", "conversation.resolved"};
    const char *pb[] = {"conversation.*"};
    const char *pc[] = {"ticket.#"};
    cr_assert_eq(mk_bus_subscribe(bus, "analytics", pa, 2, 0, handler, &a, NULL), 0);
    cr_assert_eq(mk_bus_subscribe(bus, NULL, pb, 1, 0, handler, &b, NULL), 0);
    cr_assert_eq(mk_bus_subscribe(bus, "tickets", pc, 1, 0, handler, &c, NULL), 0);
    cr_assert_eq(mk_bus_subscribe(bus, "analytics", pb, 1, 0, handler, &c, NULL), MK_EEXISTS);
    const char *types[] = {MK_BUS_CONVERSATION_CREATED, MK_BUS_CONVERSATION_RATED, "ticket.sync.done",
                           MK_BUS_CONVERSATION_RESOLVED, "ticket"};
    for (int i = 0; i < 5; i++) cr_assert_eq(mk_bus_publish(bus, types[i], NULL, NULL, 0, NULL, NULL, NULL), 0);
    want_n = 3;
    run_until(loop, reached, &b);
    for (int i = 0; i < 100; i++) uv_run(loop, UV_RUN_NOWAIT);
    cr_assert_eq(a.n, 2);
    cr_assert_str_eq(a.types[0], "conversation.rated");
    cr_assert_str_eq(a.types[1], "conversation.resolved");
    cr_assert_eq(b.n, 3);
    cr_assert_eq(c.n, 2); /* "ticket.#" matches "ticket" too: # is zero or more words */
    cr_assert_str_eq(c.types[0], "ticket.sync.done");
    cr_assert_str_eq(c.types[1], "ticket");
    mk_bus_free(bus);
    drop_loop(loop);
}

static bool held(void *arg) { return ((struct rec *)arg)->nheld >= want_n; }

Test(bus_inproc, later_deliveries_respect_prefetch)
{
    uv_loop_t *loop = new_loop();
    struct mk_bus *bus = NULL;
    cr_assert_eq(mk_bus_open(loop, NULL, NULL, &bus, NULL), 0);
    struct rec r = {.later = true};
    cr_assert_eq(mk_bus_subscribe(bus, "slow", all, 1, 2, handler, &r, NULL), 0);
    for (int i = 0; i < 6; i++) cr_assert_eq(mk_bus_publish(bus, "conversation.message", "t", NULL, 0, NULL, NULL, NULL), 0);
    want_n = 2;
    run_until(loop, held, &r);
    for (int i = 0; i < 50; i++) uv_run(loop, UV_RUN_NOWAIT);
    cr_assert_eq(r.n, 2, "prefetch 2 must hold back the rest until one is done");
    for (int done = 0; done < 6; done++) {
        cr_assert(done < r.nheld);
        mk_bus_delivery *d = r.held[done];
        r.inflight--;
        mk_bus_delivery_done(d, 0);
        want_n = done + 3 > 6 ? 6 : done + 3;
        run_until(loop, held, &r);
    }
    cr_assert_eq(r.n, 6);
    cr_assert_eq(r.max_inflight, 2);
    mk_bus_free(bus);
    drop_loop(loop);
}

Test(bus_inproc, failed_event_comes_back_marked_redelivered)
{
    uv_loop_t *loop = new_loop();
    struct mk_bus *bus = NULL;
    struct mk_bus_options o = {.retry_delay_ms = 5};
    cr_assert_eq(mk_bus_open(loop, NULL, &o, &bus, NULL), 0);
    struct rec r = {.fail_first = 2};
    cr_assert_eq(mk_bus_subscribe(bus, "g", all, 1, 1, handler, &r, NULL), 0);
    char id1[37], id2[37];
    cr_assert_eq(mk_bus_publish(bus, "a.b", NULL, "{}", 2, NULL, NULL, id1), 0);
    cr_assert_eq(mk_bus_publish(bus, "a.c", NULL, "{}", 2, NULL, NULL, id2), 0);
    want_n = 4;
    run_until(loop, reached, &r);
    cr_assert_eq(r.n, 4);
    /* prefetch 1: the failing event blocks its group until it succeeds (order kept) */
    cr_assert_str_eq(r.ids[0], id1);
    cr_assert(!r.redelivered[0]);
    cr_assert_str_eq(r.ids[1], id1);
    cr_assert(r.redelivered[1]);
    cr_assert_str_eq(r.ids[2], id1);
    cr_assert_str_eq(r.ids[3], id2);
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    cr_assert_eq(st.failed, 2);
    cr_assert_eq(st.acked, 2);
    mk_bus_free(bus);
    drop_loop(loop);
}

static int cb_calls, cb_rc;
static char cb_id[37];
static void on_published(int rc, const char *id, void *arg)
{
    cb_calls++;
    cb_rc = rc;
    snprintf(cb_id, sizeof cb_id, "%s", id);
    *(bool *)arg = true;
}

Test(bus_inproc, publish_checks_and_bounds)
{
    uv_loop_t *loop = new_loop();
    struct mk_bus *bus = NULL;
    struct mk_bus_options o = {.max_pending = 3};
    cr_assert_eq(mk_bus_open(loop, NULL, &o, &bus, NULL), 0);
    struct rec r = {.later = true};
    cr_assert_eq(mk_bus_subscribe(bus, "g", all, 1, 1, handler, &r, NULL), 0);
    cr_assert_eq(mk_bus_publish(bus, "Bad.Type", NULL, NULL, 0, NULL, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_bus_publish(bus, "a..b", NULL, NULL, 0, NULL, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_bus_publish(bus, "a.*", NULL, NULL, 0, NULL, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_bus_publish(bus, "a", "bad\ntenant", NULL, 0, NULL, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, "[1]", 3, NULL, NULL, NULL), MK_EBADJSON);
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, "{\"a\":1} x", 9, NULL, NULL, NULL), MK_EBADJSON);
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, "{\"a\":", 5, NULL, NULL, NULL), MK_EBADJSON);
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, "{\"a\":\"\xc0\x80\"}", 9, NULL, NULL, NULL), MK_EBADUTF8);
    char *big = malloc(MK_BUS_MAX_EVENT_BYTES + 16);
    memset(big, ' ', MK_BUS_MAX_EVENT_BYTES + 16);
    big[0] = '{';
    big[MK_BUS_MAX_EVENT_BYTES + 15] = '}';
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, big, MK_BUS_MAX_EVENT_BYTES + 16, NULL, NULL, NULL), MK_ETOOBIG);
    free(big);
    bool called = false;
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, NULL, 0, on_published, &called, NULL), 0);
    cr_assert(!called, "the publish callback must not run inside mk_bus_publish");
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, NULL, 0, NULL, NULL, NULL), 0);
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, NULL, 0, NULL, NULL, NULL), 0);
    cr_assert_eq(mk_bus_publish(bus, "a", NULL, NULL, 0, NULL, NULL, NULL), MK_EBUSY, "queue bound");
    for (int i = 0; i < 50; i++) uv_run(loop, UV_RUN_NOWAIT);
    cr_assert(called);
    cr_assert_eq(cb_calls, 1);
    cr_assert_eq(cb_rc, 0);
    cr_assert_eq(r.n, 1); /* prefetch 1, held */
    cr_assert_str_eq(r.ids[0], cb_id);
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(st.pending, 2);
    /* Freed with a delivery still held: finishing it afterwards is safe. */
    mk_bus_free(bus);
    mk_bus_delivery_done(r.held[0], 0);
    drop_loop(loop);
}

Test(bus_inproc, unsubscribe_from_a_handler)
{
    uv_loop_t *loop = new_loop();
    struct mk_bus *bus = NULL;
    cr_assert_eq(mk_bus_open(loop, NULL, NULL, &bus, NULL), 0);
    struct rec r = {.unsubscribe_after = 2};
    cr_assert_eq(mk_bus_subscribe(bus, "g", all, 1, 0, handler, &r, &r.self), 0);
    for (int i = 0; i < 5; i++) cr_assert_eq(mk_bus_publish(bus, "x", NULL, NULL, 0, NULL, NULL, NULL), 0);
    for (int i = 0; i < 50; i++) uv_run(loop, UV_RUN_NOWAIT);
    cr_assert_eq(r.n, 2);
    /* The group's name is free again. */
    cr_assert_eq(mk_bus_subscribe(bus, "g", all, 1, 0, handler, &r, NULL), 0);
    mk_bus_free(bus);
    drop_loop(loop);
}

Test(bus_inproc, wire_event_round_trip)
{
    uv_loop_t *loop = new_loop();
    struct mk_bus *bus = NULL;
    cr_assert_eq(mk_bus_open(loop, NULL, NULL, &bus, NULL), 0);
    struct rec r = {.later = true};
    cr_assert_eq(mk_bus_subscribe(bus, "g", all, 1, 0, handler, &r, NULL), 0);
    const char *p = "{ \"conversation\": \"c-1\", \"text\": \"Привет \\u2603\", \"n\": 0.3 }";
    char id[37];
    cr_assert_eq(mk_bus_publish(bus, MK_BUS_CONVERSATION_MESSAGE, "acme \"inc\"", p, strlen(p), NULL, NULL, id), 0);
    want_n = 1;
    run_until(loop, held, &r);
    cr_assert_eq(r.nheld, 1);
    mk_bus_delivery_done(r.held[0], 0);
    mk_bus_free(bus);
    drop_loop(loop);
    cr_assert_str_eq(r.last_tenant, "acme \"inc\"");

    /* The handler's view of the whole event parses back to the same fields. */
    struct mk_bus_wire_event we;
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_bus_wire_event_parse(r.last_json, strlen(r.last_json), &we, &err), 0, "%s", err.data);
    cr_assert_str_eq(we.id, id);
    cr_assert_str_eq(we.type, MK_BUS_CONVERSATION_MESSAGE);
    cr_assert_str_eq(we.tenant, "acme \"inc\"");
    cr_assert_str_eq(we.payload, r.payload[0]);
    mk_bus_wire_event_release(&we);

    /* And a hand-written event is read strictly. */
    const char *good = "{\"id\":\"0b7c1e4a-1d2f-4a8b-9c3d-5e6f7a8b9c0d\",\"type\":\"conversation.rated\","
                       "\"time\":\"2026-01-02T03:04:05.678Z\",\"tenant\":\"acme\",\"payload\":{\"csat\":5},\"x\":1}";
    cr_assert_eq(mk_bus_wire_event_parse(good, strlen(good), &we, &err), 0, "%s", err.data ? err.data : "");
    cr_assert_str_eq(we.type, "conversation.rated");
    cr_assert_str_eq(we.tenant, "acme");
    cr_assert_str_eq(we.payload, "{\"csat\":5}");
    cr_assert_eq(we.time_ms, 1767323045678LL);
    mk_bus_wire_event_release(&we);
    const char *bad[] = {
        "{}",
        "[]",
        "{\"id\":\"nope\",\"type\":\"a\",\"time\":\"2026-01-02T03:04:05Z\",\"tenant\":\"t\",\"payload\":{}}",
        "{\"id\":\"0b7c1e4a-1d2f-4a8b-9c3d-5e6f7a8b9c0d\",\"type\":\"A\",\"time\":\"2026-01-02T03:04:05Z\","
        "\"tenant\":\"t\",\"payload\":{}}",
        "{\"id\":\"0b7c1e4a-1d2f-4a8b-9c3d-5e6f7a8b9c0d\",\"type\":\"a\",\"time\":\"2026-01-02 03:04:05\","
        "\"tenant\":\"t\",\"payload\":{}}",
        "{\"id\":\"0b7c1e4a-1d2f-4a8b-9c3d-5e6f7a8b9c0d\",\"type\":\"a\",\"time\":\"2026-01-02T03:04:05Z\","
        "\"tenant\":\"\",\"payload\":{}}",
        "{\"id\":\"0b7c1e4a-1d2f-4a8b-9c3d-5e6f7a8b9c0d\",\"type\":\"a\",\"time\":\"2026-01-02T03:04:05Z\","
        "\"tenant\":\"t\",\"payload\":[]}",
        "{\"id\":\"0b7c1e4a-1d2f-4a8b-9c3d-5e6f7a8b9c0d\",\"type\":\"a\",\"time\":\"2026-01-02T03:04:05Z\","
        "\"tenant\":\"t\",\"payload\":{}} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mk_buf_reset(&err);
        cr_assert_neq(mk_bus_wire_event_parse(bad[i], strlen(bad[i]), &we, &err), 0, "accepted bad[%zu]", i);
        cr_assert(err.len > 0, "no reason for bad[%zu]", i);
    }
    mk_buf_release(&err);
    cr_assert_str_eq(r.payload[0], "{\"conversation\":\"c-1\",\"text\":\"Привет ☃\",\"n\":0.3}");
    cr_assert_str_eq(r.ids[0], id);
}

Test(bus_names, topic_matching)
{
    cr_assert(mk_bus_topic_match("conversation.*", "conversation.created"));
    cr_assert(!mk_bus_topic_match("conversation.*", "conversation"));
    cr_assert(!mk_bus_topic_match("conversation.*", "conversation.a.b"));
    cr_assert(mk_bus_topic_match("conversation.#", "conversation"));
    cr_assert(mk_bus_topic_match("conversation.#", "conversation.a.b"));
    cr_assert(mk_bus_topic_match("#", "a.b.c"));
    cr_assert(mk_bus_topic_match("#.c", "a.b.c"));
    cr_assert(mk_bus_topic_match("a.#.c", "a.c"));
    cr_assert(mk_bus_topic_match("*.#.*", "a.b"));
    cr_assert(!mk_bus_topic_match("*.#.*", "a"));
    cr_assert(mk_bus_topic_match("#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.z", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.z"));
    cr_assert(!mk_bus_topic_match("a.b", "a.bb"));
    cr_assert(mk_bus_type_valid("conversation.created"));
    cr_assert(mk_bus_type_valid("a-b_c.9"));
    cr_assert(!mk_bus_type_valid(""));
    cr_assert(!mk_bus_type_valid("a."));
    cr_assert(!mk_bus_type_valid(".a"));
    cr_assert(!mk_bus_type_valid("a.#"));
    cr_assert(mk_bus_pattern_valid("a.#"));
    cr_assert(!mk_bus_pattern_valid("a.#x"));
    cr_assert(!mk_bus_pattern_valid("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q"), "too many words");
}
