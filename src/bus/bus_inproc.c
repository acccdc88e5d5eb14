/*
 * bus_inproc: the in-process bus backend, the default of a one-machine deployment.
 *
 * Each subscription has its own FIFO of events. mk_bus_publish appends the event (by
 * reference) to every matching subscription's FIFO and wakes the loop (uv_async), so a
 * handler never runs inside mk_bus_publish: a publisher holding a lock or half-way
 * through its own state is never re-entered. The wake-up then hands each FIFO's events
 * to its handler in publish order, at most `prefetch` unfinished at a time; a failed
 * event goes back to the head of its FIFO (after the front's retry delay), as a broker
 * requeues it, so a group sees its events in order except around a failure.
 *
 * A group subscription and a fan-out one (group NULL) behave the same here: there is
 * only one process to share a group with. Nothing survives the process; events for
 * types nobody subscribed to are dropped, as on a broker with no queue bound.
 */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "core/mk_error.h"
#include "core/mk_log.h"

struct node {
    struct bus_msg *m;
    bool redelivered;
    struct node *next;
};

struct fifo {
    struct node *head, *tail;
};

struct inproc {
    uv_async_t wake;
    struct mk_bus *bus;
    struct bus_msg *cb_head, *cb_tail; /* accepted events whose publish callback is due */
    size_t queued;                     /* nodes in every FIFO (the publish-queue bound) */
};

static bool accepts(const char *url) { return !strcmp(url, "inproc") || !strcmp(url, "inproc:"); }

static void pump(uv_async_t *h);

static int open_inproc(struct mk_bus *bus, const char *url, mk_buf *err)
{
    struct inproc *ip = calloc(1, sizeof *ip);
    if (!ip) return MK_ENOMEM;
    if (uv_async_init(bus->loop, &ip->wake, pump) != 0) {
        free(ip);
        if (err) mk_buf_printf(err, "bus: cannot create the loop wake-up handle");
        return MK_EINTERNAL;
    }
    ip->wake.data = ip;
    ip->bus = bus;
    bus->impl = ip;
    mk_bus__ref(bus); /* the handle's */
    return 0;
}

static void fifo_clear(struct inproc *ip, struct fifo *f)
{
    while (f->head) {
        struct node *n = f->head;
        f->head = n->next;
        mk_bus__msg_unref(n->m);
        free(n);
        ip->queued--;
    }
    f->tail = NULL;
}

static void on_closed(uv_handle_t *h)
{
    struct inproc *ip = h->data;
    struct mk_bus *bus = ip->bus;
    free(ip);
    mk_bus__unref(bus);
}

static void close_inproc(struct mk_bus *bus)
{
    struct inproc *ip = bus->impl;
    for (struct mk_bus_sub *s = bus->subs; s; s = s->next) {
        fifo_clear(ip, s->be);
        free(s->be);
        s->be = NULL;
    }
    while (ip->cb_head) {
        struct bus_msg *m = ip->cb_head;
        ip->cb_head = m->next;
        m->next = NULL;
        m->cb(MK_ECANCELLED, m->id, m->cb_arg);
        mk_bus__msg_unref(m);
    }
    ip->cb_tail = NULL;
    atomic_store(&bus->st_pending, 0);
    atomic_store(&bus->st_consuming, 0);
    uv_close((uv_handle_t *)&ip->wake, on_closed);
}

static int publish_inproc(struct mk_bus *bus, struct bus_msg *m)
{
    struct inproc *ip = bus->impl;
    size_t want = 0;
    for (struct mk_bus_sub *s = bus->subs; s; s = s->next)
        if (mk_bus__sub_matches(s, m->type)) want++;
    if (ip->queued + want > bus->opt.max_pending) return MK_EBUSY;
    struct node **nodes = want ? calloc(want, sizeof *nodes) : NULL;
    if (want && !nodes) return MK_ENOMEM;
    for (size_t i = 0; i < want; i++)
        if (!(nodes[i] = malloc(sizeof **nodes))) {
            for (size_t j = 0; j < i; j++) free(nodes[j]);
            free(nodes);
            return MK_ENOMEM;
        }
    /* From here nothing fails: the event is accepted. */
    size_t k = 0;
    for (struct mk_bus_sub *s = bus->subs; s; s = s->next) {
        if (!mk_bus__sub_matches(s, m->type)) continue;
        struct fifo *f = s->be;
        struct node *n = nodes[k++];
        n->m = m;
        n->redelivered = false;
        n->next = NULL;
        mk_bus__msg_ref(m);
        if (f->tail) f->tail->next = n;
        else f->head = n;
        f->tail = n;
        ip->queued++;
    }
    free(nodes);
    if (m->cb) {
        mk_bus__msg_ref(m);
        m->next = NULL;
        if (ip->cb_tail) ip->cb_tail->next = m;
        else ip->cb_head = m;
        ip->cb_tail = m;
    }
    if (m->refs == 0) mk_bus__msg_free(m); /* nobody wanted it and no callback: done */
    atomic_fetch_add(&bus->st_confirmed, 1);
    atomic_store(&bus->st_pending, ip->queued);
    uv_async_send(&ip->wake);
    return 0;
}

static void pump(uv_async_t *h)
{
    struct inproc *ip = h->data;
    struct mk_bus *bus = ip->bus;
    if (bus->closing) return;
    /* Publish callbacks first: an event's "accepted" comes before its handling. */
    struct bus_msg *cbs = ip->cb_head;
    ip->cb_head = ip->cb_tail = NULL;
    while (cbs) {
        struct bus_msg *m = cbs;
        cbs = m->next;
        m->next = NULL;
        m->cb(0, m->id, m->cb_arg);
        mk_bus__msg_unref(m);
    }
    /* A handler may subscribe, unsubscribe or publish: walk a snapshot of the list,
     * each entry referenced, and re-check `active` before every call. */
    size_t n = 0;
    for (struct mk_bus_sub *s = bus->subs; s; s = s->next) n++;
    if (n == 0) return;
    struct mk_bus_sub **snap = calloc(n, sizeof *snap);
    if (!snap) {
        uv_async_send(&ip->wake); /* try again on the next turn */
        return;
    }
    size_t k = 0;
    for (struct mk_bus_sub *s = bus->subs; s && k < n; s = s->next) {
        s->refs++;
        snap[k++] = s;
    }
    for (size_t i = 0; i < k; i++) {
        struct mk_bus_sub *s = snap[i];
        while (s->active && !bus->closing && s->inflight < s->prefetch) {
            struct fifo *f = s->be;
            struct node *nd = f->head;
            if (!nd) break;
            /* Off the FIFO before the call: the handler may unsubscribe, which frees
             * the FIFO. */
            f->head = nd->next;
            if (!f->head) f->tail = NULL;
            ip->queued--;
            if (mk_bus__deliver(bus, s, nd->m, nd->redelivered, 0, 0) != 0) {
                nd->next = f->head; /* out of memory: back to the head, retry next turn */
                f->head = nd;
                if (!f->tail) f->tail = nd;
                ip->queued++;
                uv_async_send(&ip->wake);
                break;
            }
            mk_bus__msg_unref(nd->m); /* the delivery holds its own reference */
            free(nd);
        }
        mk_bus__sub_unref(s);
    }
    free(snap);
    atomic_store(&bus->st_pending, ip->queued);
}

static int subscribe_inproc(struct mk_bus *bus, struct mk_bus_sub *sub)
{
    sub->be = calloc(1, sizeof(struct fifo));
    if (!sub->be) return MK_ENOMEM;
    atomic_fetch_add(&bus->st_consuming, 1);
    return 0;
}

static void unsubscribe_inproc(struct mk_bus *bus, struct mk_bus_sub *sub)
{
    struct inproc *ip = bus->impl;
    if (!sub->be) return;
    atomic_fetch_sub(&bus->st_consuming, 1);
    fifo_clear(ip, sub->be);
    free(sub->be);
    sub->be = NULL;
    atomic_store(&bus->st_pending, ip->queued);
}

static void settle_inproc(struct mk_bus *bus, struct mk_bus_delivery *d, bool ok)
{
    struct inproc *ip = bus->impl;
    if (!ok && d->sub->active && d->sub->be) {
        struct node *n = malloc(sizeof *n);
        if (n) {
            struct fifo *f = d->sub->be;
            n->m = d->msg;
            n->redelivered = true;
            mk_bus__msg_ref(d->msg);
            n->next = f->head;
            f->head = n;
            if (!f->tail) f->tail = n;
            ip->queued++;
            atomic_store(&bus->st_pending, ip->queued);
        } else {
            mk_log(MK_LOG_ERROR, "bus_event_dropped", "id", d->msg->id, "why", "out of memory", NULL);
        }
    }
    /* A slot under prefetch is free again either way. */
    uv_async_send(&ip->wake);
}

static bool connected_inproc(const struct mk_bus *bus) { return true; }

const struct bus_backend mk_bus_inproc_backend = {
    .name = "inproc",
    .accepts = accepts,
    .open = open_inproc,
    .close = close_inproc,
    .publish = publish_inproc,
    .subscribe = subscribe_inproc,
    .unsubscribe = unsubscribe_inproc,
    .settle = settle_inproc,
    .connected = connected_inproc,
};
