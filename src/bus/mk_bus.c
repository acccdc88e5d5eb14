/*
 * mk_bus: front of the event bus. Checks every argument once, picks the backend from
 * the URL, calls handlers, and owns the life of a delivery: handed to a handler,
 * finished (now or later), and then acknowledged or, after retry_delay_ms, given back
 * to its group. Backends (bus_inproc.c, bus_amqp.c) only move messages.
 *
 * Lifetimes: the bus, each subscription and each message are reference counted on the
 * loop thread, so a handler that keeps a delivery across mk_bus_unsubscribe or
 * mk_bus_free still holds valid memory; nothing is freed under it.
 */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"

static const struct bus_backend *const backends[] = {&mk_bus_inproc_backend, &mk_bus_amqp_backend};

int mk_bus_open(uv_loop_t *loop, const char *url, const struct mk_bus_options *opt, struct mk_bus **out,
                mk_buf *err)
{
    if (!out) return MK_EINVAL;
    *out = NULL;
    if (!loop) return MK_EINVAL;
    if (!url || !*url) url = "inproc";
    const struct bus_backend *be = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i]->accepts(url)) {
            be = backends[i];
            break;
        }
    if (!be) {
        if (err) mk_buf_printf(err, "bus url must be \"inproc\" or \"amqp://user:pass@host:port/vhost\"");
        return MK_EINVAL;
    }
    if (mk_rand_init() != 0) return MK_EINTERNAL;
    struct mk_bus *bus = calloc(1, sizeof *bus);
    if (!bus) return MK_ENOMEM;
    if (opt) bus->opt = *opt;
    if (!bus->opt.max_pending) bus->opt.max_pending = MK_BUS_DEFAULT_MAX_PENDING;
    if (!bus->opt.retry_delay_ms) bus->opt.retry_delay_ms = 1000;
    if (!bus->opt.connect_timeout_ms) bus->opt.connect_timeout_ms = 3000;
    if (!bus->opt.reconnect_min_ms) bus->opt.reconnect_min_ms = 100;
    if (!bus->opt.reconnect_max_ms) bus->opt.reconnect_max_ms = 5000;
    if (bus->opt.reconnect_max_ms < bus->opt.reconnect_min_ms) bus->opt.reconnect_max_ms = bus->opt.reconnect_min_ms;
    if (!bus->opt.drain_ms) bus->opt.drain_ms = 2000;
    if (!bus->opt.queue_prefix || !*bus->opt.queue_prefix) bus->opt.queue_prefix = "mayak";
    if (!mk_bus__group_valid(bus->opt.queue_prefix)) {
        if (err) mk_buf_printf(err, "bus queue_prefix must be [a-z0-9_-]{1,%d}", MK_BUS_MAX_GROUP_BYTES);
        free(bus);
        return MK_EINVAL;
    }
    bus->loop = loop;
    bus->be = be;
    bus->refs = 1;
    bus->next_sub_id = 1;
    int rc = be->open(bus, url, err);
    if (rc != 0) {
        free(bus);
        return rc;
    }
    *out = bus;
    return 0;
}

void mk_bus__ref(struct mk_bus *bus) { bus->refs++; }

void mk_bus__unref(struct mk_bus *bus)
{
    if (--bus->refs == 0) free(bus);
}

void mk_bus__sub_unref(struct mk_bus_sub *sub)
{
    if (!sub || --sub->refs > 0) return;
    for (size_t i = 0; i < sub->npatterns; i++) free(sub->patterns[i]);
    free(sub->patterns);
    free(sub->group);
    free(sub);
}

static void unlink_sub(struct mk_bus *bus, struct mk_bus_sub *sub)
{
    for (struct mk_bus_sub **pp = &bus->subs; *pp; pp = &(*pp)->next)
        if (*pp == sub) {
            *pp = sub->next;
            sub->next = NULL;
            return;
        }
}

static void on_waiting_closed(uv_handle_t *h);

void mk_bus_free(struct mk_bus *bus)
{
    if (!bus || bus->closing) return;
    bus->closing = true;
    bus->be->close(bus);
    /* Failed deliveries waiting for their delay: the broker takes them back by itself
     * when the connection goes; in-process they are simply dropped. */
    while (bus->waiting) {
        struct mk_bus_delivery *d = bus->waiting;
        bus->waiting = d->next;
        d->prev = d->next = NULL;
        uv_timer_stop(&d->timer);
        uv_close((uv_handle_t *)&d->timer, on_waiting_closed);
    }
    while (bus->subs) {
        struct mk_bus_sub *sub = bus->subs;
        bus->subs = sub->next;
        sub->next = NULL;
        sub->active = false;
        mk_bus__sub_unref(sub);
    }
    mk_bus__unref(bus);
}

const char *mk_bus_backend_name(const struct mk_bus *bus) { return bus ? bus->be->name : ""; }
bool mk_bus_connected(const struct mk_bus *bus) { return bus && !bus->closing && bus->be->connected(bus); }

int mk_bus_publish(struct mk_bus *bus, const char *type, const char *tenant, const char *payload, size_t len,
                   mk_bus_publish_cb cb, void *arg, char id_out[37])
{
    if (id_out) id_out[0] = '\0';
    if (!bus) return MK_EINVAL;
    if (bus->closing) return MK_ECANCELLED;
    struct bus_msg *m = NULL;
    int rc = mk_bus__msg_build(type, tenant, payload, len, &m);
    if (rc) return rc;
    m->cb = cb;
    m->cb_arg = arg;
    char id[37];
    memcpy(id, m->id, sizeof id);
    rc = bus->be->publish(bus, m);
    if (rc) {
        if (rc == MK_EBUSY) atomic_fetch_add(&bus->st_refused, 1);
        mk_bus__msg_free(m);
        return rc;
    }
    atomic_fetch_add(&bus->st_published, 1);
    if (id_out) memcpy(id_out, id, sizeof id);
    return 0;
}

bool mk_bus__sub_matches(const struct mk_bus_sub *sub, const char *type)
{
    for (size_t i = 0; i < sub->npatterns; i++)
        if (mk_bus_topic_match(sub->patterns[i], type)) return true;
    return false;
}

int mk_bus_subscribe(struct mk_bus *bus, const char *group, const char *const *patterns, size_t npatterns,
                     uint32_t prefetch, mk_bus_handler handler, void *arg, struct mk_bus_sub **out)
{
    if (out) *out = NULL;
    if (!bus || !handler || !patterns || npatterns == 0 || npatterns > MK_BUS_MAX_PATTERNS) return MK_EINVAL;
    if (bus->closing) return MK_ECANCELLED;
    if (group && !mk_bus__group_valid(group)) return MK_EINVAL;
    for (size_t i = 0; i < npatterns; i++)
        if (!mk_bus_pattern_valid(patterns[i])) return MK_EINVAL;
    if (group)
        for (struct mk_bus_sub *s = bus->subs; s; s = s->next)
            if (s->group && !strcmp(s->group, group)) return MK_EEXISTS;
    struct mk_bus_sub *sub = calloc(1, sizeof *sub);
    if (!sub) return MK_ENOMEM;
    sub->refs = 1;
    sub->patterns = calloc(npatterns, sizeof *sub->patterns);
    bool oom = !sub->patterns || (group && !(sub->group = strdup(group)));
    for (size_t i = 0; !oom && i < npatterns; i++) {
        if (!(sub->patterns[i] = strdup(patterns[i]))) oom = true;
        else sub->npatterns++;
    }
    if (oom) {
        mk_bus__sub_unref(sub);
        return MK_ENOMEM;
    }
    sub->bus = bus;
    sub->id = bus->next_sub_id++;
    sub->prefetch = prefetch ? prefetch : 32;
    sub->handler = handler;
    sub->arg = arg;
    sub->active = true;
    sub->next = bus->subs;
    bus->subs = sub;
    int rc = bus->be->subscribe(bus, sub);
    if (rc) {
        unlink_sub(bus, sub);
        sub->active = false;
        mk_bus__sub_unref(sub);
        return rc;
    }
    if (out) *out = sub;
    return 0;
}

void mk_bus_unsubscribe(struct mk_bus_sub *sub)
{
    if (!sub || !sub->active) return;
    struct mk_bus *bus = sub->bus;
    unlink_sub(bus, sub);
    sub->active = false;
    bus->be->unsubscribe(bus, sub);
    mk_bus__sub_unref(sub);
}

/* ---- deliveries ------------------------------------------------------------------- */

int mk_bus__deliver(struct mk_bus *bus, struct mk_bus_sub *sub, struct bus_msg *m, bool redelivered, uint64_t tag,
                    uint64_t gen)
{
    struct mk_bus_delivery *d = calloc(1, sizeof *d);
    if (!d) return MK_ENOMEM;
    d->bus = bus;
    d->sub = sub;
    d->msg = m;
    d->tag = tag;
    d->gen = gen;
    mk_bus__ref(bus);
    sub->refs++;
    sub->inflight++;
    mk_bus__msg_ref(m);
    d->ev = (struct mk_bus_event){
        .id = m->id,
        .type = m->type,
        .tenant = m->tenant,
        .time_ms = m->time_ms,
        .payload = {m->payload, m->payload_len},
        .json = {m->body, m->body_len},
        .redelivered = redelivered,
    };
    atomic_fetch_add(&bus->st_delivered, 1);
    int rc = sub->handler(&d->ev, d, sub->arg);
    if (rc != MK_BUS_LATER) mk_bus_delivery_done(d, rc > 0 ? 0 : rc);
    return 0;
}

static void delivery_free(struct mk_bus_delivery *d)
{
    struct mk_bus *bus = d->bus;
    mk_bus__msg_unref(d->msg);
    mk_bus__sub_unref(d->sub);
    free(d);
    mk_bus__unref(bus);
}

/* Gives the delivery back to the backend (unless the bus closed meanwhile) and frees it. */
static void settle(struct mk_bus_delivery *d, bool ok)
{
    struct mk_bus *bus = d->bus;
    d->sub->inflight--;
    if (!bus->closing) bus->be->settle(bus, d, ok);
}

static void on_waiting_closed(uv_handle_t *h) { delivery_free(h->data); }

static void on_retry_due(uv_timer_t *t)
{
    struct mk_bus_delivery *d = t->data;
    struct mk_bus *bus = d->bus;
    if (d->prev) d->prev->next = d->next;
    else bus->waiting = d->next;
    if (d->next) d->next->prev = d->prev;
    d->prev = d->next = NULL;
    settle(d, false);
    uv_close((uv_handle_t *)&d->timer, on_waiting_closed);
}

void mk_bus_delivery_done(mk_bus_delivery *d, int rc)
{
    if (!d || d->finished) return;
    d->finished = true;
    struct mk_bus *bus = d->bus;
    if (rc == 0) {
        atomic_fetch_add(&bus->st_acked, 1);
        settle(d, true);
        delivery_free(d);
        return;
    }
    atomic_fetch_add(&bus->st_failed, 1);
    if (bus->closing) {
        settle(d, false);
        delivery_free(d);
        return;
    }
    /* Wait before giving it back: a broker requeues at the head of the queue, so an
     * immediate nack of an event that keeps failing would spin. */
    if (uv_timer_init(bus->loop, &d->timer) != 0) {
        settle(d, false);
        delivery_free(d);
        return;
    }
    d->timer.data = d;
    d->timer_on = true;
    d->next = bus->waiting;
    if (bus->waiting) bus->waiting->prev = d;
    bus->waiting = d;
    uv_timer_start(&d->timer, on_retry_due, bus->opt.retry_delay_ms, 0);
}

void mk_bus_get_stats(const struct mk_bus *bus, struct mk_bus_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!bus) return;
    out->published = atomic_load(&bus->st_published);
    out->refused = atomic_load(&bus->st_refused);
    out->confirmed = atomic_load(&bus->st_confirmed);
    out->resent = atomic_load(&bus->st_resent);
    out->delivered = atomic_load(&bus->st_delivered);
    out->acked = atomic_load(&bus->st_acked);
    out->failed = atomic_load(&bus->st_failed);
    out->malformed = atomic_load(&bus->st_malformed);
    out->reconnects = atomic_load(&bus->st_reconnects);
    out->pending = atomic_load(&bus->st_pending);
    out->consuming = atomic_load(&bus->st_consuming);
    out->connected = mk_bus_connected(bus);
}
