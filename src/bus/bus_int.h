/*
 * bus_int: the contract between mk_bus.c (argument checks, event encoding, handler
 * calls, redelivery delay, reference counts, statistics) and a bus backend. A backend
 * is one file exporting one `struct bus_backend`; adding one is that file plus a row
 * in the table in mk_bus.c.
 *
 * Who does what:
 *   - mk_bus.c builds every event (struct bus_msg) before the backend sees it, calls
 *     handlers through mk_bus__deliver, and turns a finished delivery into one
 *     settle() call (after retry_delay_ms when it failed).
 *   - a backend moves bus_msgs: queues them for subscribers (inproc) or sends them to
 *     the broker and reads them back (amqp), and acknowledges settled deliveries.
 * Everything here runs on the bus's loop thread unless a backend says otherwise.
 */
#ifndef MK_BUS_INT_H
#define MK_BUS_INT_H

#include <stdatomic.h>

#include "bus/mk_bus.h"

/* One event in memory. The publish path fills everything; the amqp consumer builds
 * one from a parsed wire event. Shared by reference on the loop (refs is not atomic:
 * only the loop thread touches it; the amqp publisher thread owns the messages of its
 * queue exclusively, see bus_amqp.c). */
struct bus_msg {
    unsigned refs;
    char id[37];
    char *type;
    char *tenant;
    int64_t time_ms;
    char *body;              /* the event JSON (NUL-terminated) */
    size_t body_len;
    char *payload;           /* the payload object's compact JSON (NUL-terminated) */
    size_t payload_len;
    mk_bus_publish_cb cb;    /* publish outcome, may be NULL */
    void *cb_arg;
    uint64_t seq;            /* amqp: publisher-confirm sequence on its connection */
    struct bus_msg *next;    /* backend queues */
};

struct mk_bus_sub {
    struct mk_bus *bus;
    uint64_t id;             /* unique within the bus (amqp consumer tag "mk-<id>") */
    char *group;             /* NULL = fan-out subscription */
    char **patterns;
    size_t npatterns;
    uint32_t prefetch;
    uint32_t inflight;       /* deliveries handed out and not yet settled */
    mk_bus_handler handler;
    void *arg;
    bool active;             /* false after unsubscribe / bus close */
    unsigned refs;           /* 1 while active + one per delivery */
    void *be;                /* backend data */
    struct mk_bus_sub *next;
};

struct mk_bus_delivery {
    struct mk_bus *bus;
    struct mk_bus_sub *sub;
    struct bus_msg *msg;
    struct mk_bus_event ev;
    uint64_t tag, gen;       /* amqp: delivery tag and the connection it came on */
    bool finished;           /* mk_bus_delivery_done was called */
    bool timer_on;           /* `timer` initialised (failed: waiting to be returned) */
    uv_timer_t timer;
    struct mk_bus_delivery *prev, *next; /* bus->waiting */
};

struct bus_backend {
    const char *name;
    bool (*accepts)(const char *url);
    /* Creates bus->impl; may start threads and handles (each handle holds a bus
     * reference, mk_bus__ref, dropped in its close callback). */
    int (*open)(struct mk_bus *bus, const char *url, mk_buf *err);
    /* Stops everything: publish callbacks still pending run with MK_ECANCELLED, handles
     * are closed (dropping their references). bus->closing is already true. */
    void (*close)(struct mk_bus *bus);
    /* Takes ownership of m on 0 (and then calls m->cb exactly once, unless closed,
     * where close does it). MK_EBUSY when the queue is full. */
    int (*publish)(struct mk_bus *bus, struct bus_msg *m);
    /* A new active subscription (already in bus->subs). */
    int (*subscribe)(struct mk_bus *bus, struct mk_bus_sub *sub);
    /* sub was just made inactive (still in no list). Deliveries may still be out. */
    void (*unsubscribe)(struct mk_bus *bus, struct mk_bus_sub *sub);
    /* A delivery is finished: ok = acknowledge, else give it back to the group (the
     * retry delay has passed). Only called while the bus is open. d is freed by the
     * caller afterwards; sub->inflight already counts it out. */
    void (*settle)(struct mk_bus *bus, struct mk_bus_delivery *d, bool ok);
    bool (*connected)(const struct mk_bus *bus);
};

struct mk_bus {
    const struct bus_backend *be;
    void *impl;
    uv_loop_t *loop;
    struct mk_bus_options opt;   /* defaults filled in */
    struct mk_bus_sub *subs;     /* active subscriptions */
    uint64_t next_sub_id;
    struct mk_bus_delivery *waiting; /* failed deliveries waiting for their retry delay */
    unsigned refs;               /* 1 until mk_bus_free + handles + deliveries out */
    bool closing;
    atomic_uint_least64_t st_published, st_refused, st_confirmed, st_resent, st_delivered, st_acked, st_failed,
        st_malformed, st_reconnects, st_pending, st_consuming;
};

extern const struct bus_backend mk_bus_inproc_backend;
extern const struct bus_backend mk_bus_amqp_backend;

/* References that keep the bus's memory alive after mk_bus_free (loop thread only). */
void mk_bus__ref(struct mk_bus *bus);
void mk_bus__unref(struct mk_bus *bus);

/* Messages. msg_unref frees at zero. msg_free frees regardless (single owner). */
void mk_bus__msg_free(struct bus_msg *m);
static inline void mk_bus__msg_ref(struct bus_msg *m) { m->refs++; }
static inline void mk_bus__msg_unref(struct bus_msg *m)
{
    if (m && --m->refs == 0) mk_bus__msg_free(m);
}
/* A message from a parsed wire event (the strings move into it; ev is emptied).
 * NULL on out-of-memory (ev is released then). refs starts at 0. */
struct bus_msg *mk_bus__msg_from_wire(struct mk_bus_wire_event *ev);

/* bus_event.c: builds the message for a publish (checks as mk_bus_publish says).
 * *out has refs 0. */
int mk_bus__msg_build(const char *type, const char *tenant, const char *payload, size_t len,
                      struct bus_msg **out);
/* Tenant: 1..MK_MAX_NAME_BYTES bytes of UTF-8 without control characters. */
bool mk_bus__tenant_valid(const char *s, size_t len);
/* Group: [a-z0-9_-]{1,MK_BUS_MAX_GROUP_BYTES}. */
bool mk_bus__group_valid(const char *s);

/* Calls sub's handler with m (which it references for the delivery's lifetime).
 * 0, or MK_ENOMEM (nothing was called; the caller keeps m and tries later). */
int mk_bus__deliver(struct mk_bus *bus, struct mk_bus_sub *sub, struct bus_msg *m, bool redelivered, uint64_t tag,
                    uint64_t gen);
/* Drops a subscription reference (frees at zero). */
void mk_bus__sub_unref(struct mk_bus_sub *sub);
/* Whether any of sub's patterns matches type. */
bool mk_bus__sub_matches(const struct mk_bus_sub *sub, const char *type);

#endif
