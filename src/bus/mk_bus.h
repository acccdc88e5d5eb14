/*
 * mk_bus: events that cross parts and nodes (conversation created, message, escalated,
 * claimed, resolved, rated), published once and handled by every subscriber group
 * interested in them. Two backends behind one contract, one file each (bus_int.h):
 *
 *   inproc   (url "inproc", the default) in-process queues. Handlers run on the bus's
 *            loop, never inside mk_bus_publish, each group's events in publish order.
 *            Nothing survives the process.
 *   amqp     (url "amqp://user:pass@host:port/vhost") RabbitMQ. Events go to the
 *            durable topic exchange "mayak.events" with the event type as routing key,
 *            persistent, with publisher confirms; each subscriber group reads its own
 *            durable queue "mayak.<group>". librabbitmq blocks, so the backend runs two
 *            threads (publisher, consumer; one connection each) that talk to the loop
 *            through uv_async. They reconnect by themselves after a broker restart.
 *
 * Delivery is AT LEAST ONCE on amqp: an event stays in a bounded in-memory publish
 * queue until the broker confirmed it (and is sent again after a reconnect), and a
 * handler's event is acknowledged only after the handler finished. Either side can
 * therefore see an event twice (a confirm or an ack lost with the connection): every
 * event carries a unique id (UUID v4), and handlers that must not act twice dedupe on
 * it. What is lost: events still unconfirmed in the publish queue when the process
 * dies, and events published while no queue is bound to their type (a group that has
 * never subscribed). See docs/BUS.md.
 *
 * Threads: use a bus from its loop's thread only (like libuv handles). Handlers and
 * publish callbacks run on that loop.
 *
 * The event on the wire (and in mk_bus_event.json) is one JSON object:
 *   {"id":"<uuid>","type":"conversation.created","time":"2026-01-02T03:04:05.678Z",
 *    "tenant":"acme","payload":{...}}
 */
#ifndef MK_BUS_H
#define MK_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/mk_buf.h"

/* --- limits (with why) ---------------------------------------------------------- */
/* One event's JSON. Events carry ids and short texts (a chat message), not documents;
 * a broker handles small messages best and the publish queue is held in memory. */
#define MK_BUS_MAX_EVENT_BYTES (1024 * 1024)
/* Event type / routing key: dot-separated words of [a-z0-9_-]. AMQP allows 255. */
#define MK_BUS_MAX_TYPE_BYTES 128
/* Words in a type or pattern: bounds the topic matcher's table. */
#define MK_BUS_MAX_WORDS 16
/* Patterns per subscription. */
#define MK_BUS_MAX_PATTERNS 32
/* Group names become queue names "mayak.<group>": [a-z0-9_-], this long at most. */
#define MK_BUS_MAX_GROUP_BYTES 64
/* Default bound of the publish queue (events not yet confirmed / not yet handed to
 * the subscribers). Past it mk_bus_publish refuses with MK_EBUSY instead of letting a
 * long broker outage eat the memory. Also bounded by MK_BUS_MAX_PENDING_BYTES. */
#define MK_BUS_DEFAULT_MAX_PENDING 10000
#define MK_BUS_MAX_PENDING_BYTES (64u * 1024 * 1024)

/* The event types the desk publishes (routing keys). */
#define MK_BUS_CONVERSATION_CREATED "conversation.created"
#define MK_BUS_CONVERSATION_MESSAGE "conversation.message"
#define MK_BUS_CONVERSATION_ESCALATED "conversation.escalated"
#define MK_BUS_CONVERSATION_CLAIMED "conversation.claimed"
#define MK_BUS_CONVERSATION_RESOLVED "conversation.resolved"
#define MK_BUS_CONVERSATION_RATED "conversation.rated"
/* Internal events, between Mayak nodes, all under "mayak.": webhooks never deliver
 * them, not even to a webhook that wants every event. */
#define MK_BUS_INTERNAL_PREFIX "mayak."
/* A live desk update for the other nodes' WebSocket clients (src/api/desk_relay.c). */
#define MK_BUS_DESK_LIVE "mayak.desk.live"

/* A handler's return value when it will finish later with mk_bus_delivery_done. */
#define MK_BUS_LATER 1

struct mk_bus;
struct mk_bus_sub;
typedef struct mk_bus_delivery mk_bus_delivery;

/* An event as a handler sees it. Every pointer stays valid until the delivery is
 * done (the handler returned something other than MK_BUS_LATER, or called
 * mk_bus_delivery_done). */
struct mk_bus_event {
    const char *id;          /* UUID v4, 36 chars */
    const char *type;        /* "conversation.created" */
    const char *tenant;
    int64_t time_ms;         /* Unix ms, when it was published */
    mk_slice payload;        /* the payload object as compact JSON text */
    mk_slice json;           /* the whole event as published (the wire body) */
    bool redelivered;        /* may have been handed to this group before */
};

/* Returns 0 when handled (the event is acknowledged), a negative MK_E* code when it
 * failed (it is delivered again to the group after retry_delay_ms), or MK_BUS_LATER
 * when the handler keeps `d` and calls mk_bus_delivery_done exactly once later. A
 * handler that can never handle an event (malformed for it) should return 0 and log:
 * a failure means "try again". */
typedef int (*mk_bus_handler)(const struct mk_bus_event *ev, mk_bus_delivery *d, void *arg);

/* Publish outcome, once per accepted publish, on the loop: 0 when the event is safe
 * (amqp: the broker confirmed it; inproc: queued for every matching subscriber), or
 * MK_ECANCELLED when the bus was freed first. id is the event's id. */
typedef void (*mk_bus_publish_cb)(int rc, const char *id, void *arg);

struct mk_bus_options {
    uint32_t max_pending;        /* publish queue bound (events); 0 = MK_BUS_DEFAULT_MAX_PENDING */
    uint32_t retry_delay_ms;     /* before a failed event is delivered again; default 1000 */
    uint32_t connect_timeout_ms; /* amqp: TCP connect + login + setup RPCs; default 3000 */
    uint32_t reconnect_min_ms;   /* amqp: backoff after a failed/lost connection; default 100 */
    uint32_t reconnect_max_ms;   /* ... doubling up to this (with jitter); default 5000 */
    uint32_t drain_ms;           /* amqp: mk_bus_free waits this long for unconfirmed
                                  * events to be confirmed; default 2000, 0 = default */
    const char *queue_prefix;    /* amqp: queue names are "<prefix>.<group>"; default "mayak" */
};

/* Opens a bus. url NULL, "" or "inproc" -> in-process; "amqp://[user[:pass]@]host[:port][/vhost]"
 * (defaults guest:guest@localhost:5672, vhost "/"; a vhost is percent-encoded, "%2f"
 * is "/") -> RabbitMQ, connecting in the background (mk_bus_connected tells when).
 * loop is required. opt may be NULL. MK_EINVAL (bad url or options; a sentence in err
 * when err is not NULL; "amqps" is refused: TLS to the broker is not supported yet),
 * MK_ENOMEM, MK_EINTERNAL (thread). On success *out is the caller's, freed with
 * mk_bus_free. */
int mk_bus_open(uv_loop_t *loop, const char *url, const struct mk_bus_options *opt, struct mk_bus **out,
                mk_buf *err);
/* Stops the bus: amqp waits up to drain_ms for unconfirmed events (blocking the
 * calling thread that long at most, plus a connect timeout), then stops its threads.
 * Publish callbacks still pending get MK_ECANCELLED (inside this call), subscriptions
 * end. Deliveries a handler still holds stay valid and must still be finished with
 * mk_bus_delivery_done (nothing is acknowledged any more: the broker redelivers them
 * to the group later). The memory is released once the loop has closed the bus's
 * handles and the last delivery is done (run the loop afterwards). Accepts NULL. */
void mk_bus_free(struct mk_bus *bus);

/* "inproc" or "amqp" (static). */
const char *mk_bus_backend_name(const struct mk_bus *bus);
/* inproc: always; amqp: both connections are up (publishing and consuming). */
bool mk_bus_connected(const struct mk_bus *bus);

/* Publishes one event. type: a valid event type (mk_bus_type_valid). tenant: 1 to
 * MK_MAX_NAME_BYTES bytes of UTF-8 without control characters; NULL = "default".
 * payload: JSON object text (len bytes; NULL/0 = {}), strict JSON, valid UTF-8; it is
 * re-encoded compactly. cb may be NULL. id_out (may be NULL) receives the event id.
 * Returns 0 when accepted (the bus keeps its own copy; cb runs later exactly once),
 * MK_EINVAL (bad type/tenant), MK_EBADJSON / MK_EBADUTF8 (payload not a JSON object),
 * MK_ETOOBIG (event over MK_BUS_MAX_EVENT_BYTES), MK_EBUSY (publish queue full: the
 * broker has been away too long), MK_ENOMEM, MK_ECANCELLED (bus closing). On error cb
 * never runs. */
int mk_bus_publish(struct mk_bus *bus, const char *type, const char *tenant, const char *payload, size_t len,
                   mk_bus_publish_cb cb, void *arg, char id_out[37]);

/* Subscribes a group to the event types matching any of `patterns` (AMQP topic
 * patterns: words separated by '.', '*' = exactly one word, '#' = zero or more;
 * "conversation.*", "#"). group: [a-z0-9_-]{1,64}, at most one subscription per group
 * per bus; the group's events are shared by every node subscribing with the same group
 * (work queue: each event goes to one of them) and, on amqp, kept in the durable queue
 * while nobody listens. group NULL = this subscription alone gets every matching event
 * published while it exists (fan-out, e.g. to the WebSocket clients of this node; on
 * amqp an exclusive auto-delete queue: events published while disconnected are missed).
 * prefetch: deliveries handed out and not yet done, at most (0 = 32). *out (may be
 * NULL) gets the subscription, valid until mk_bus_unsubscribe or mk_bus_free.
 * 0, MK_EINVAL (bad group/pattern/handler), MK_EEXISTS (group already subscribed on
 * this bus), MK_ENOMEM.
 * amqp: patterns are queue bindings on the broker and outlive the process; a pattern
 * dropped from the code stays bound to the durable queue until unbound by hand. */
int mk_bus_subscribe(struct mk_bus *bus, const char *group, const char *const *patterns, size_t npatterns,
                     uint32_t prefetch, mk_bus_handler handler, void *arg, struct mk_bus_sub **out);
/* Ends a subscription: no handler call starts after it. Deliveries its handler still
 * holds must still be finished (they are then returned to the group, not
 * acknowledged). Accepts NULL. */
void mk_bus_unsubscribe(struct mk_bus_sub *sub);

/* Finishes a delivery a handler kept (it returned MK_BUS_LATER): rc 0 = handled
 * (acknowledged), < 0 = failed (delivered again later). Exactly once per delivery;
 * `d` and its event are freed inside this call. */
void mk_bus_delivery_done(mk_bus_delivery *d, int rc);

/* True when s is an event type: 1 to MK_BUS_MAX_WORDS words of [a-z0-9_-]+ joined by
 * single dots, at most MK_BUS_MAX_TYPE_BYTES bytes. */
bool mk_bus_type_valid(const char *s);
/* The same for a pattern, where a word may also be "*" or "#". */
bool mk_bus_pattern_valid(const char *s);
/* AMQP topic matching of a valid type against a valid pattern. */
bool mk_bus_topic_match(const char *pattern, const char *type);

/* Counters for tests and /metrics, monotonic since open (pending and connected are
 * gauges). */
struct mk_bus_stats {
    uint64_t published;        /* accepted by mk_bus_publish */
    uint64_t refused;          /* mk_bus_publish refused with MK_EBUSY (queue full) */
    uint64_t confirmed;        /* safe: broker-confirmed (amqp) / queued (inproc) */
    uint64_t resent;           /* amqp: sent again after a lost connection or a nack */
    uint64_t delivered;        /* handler calls */
    uint64_t acked;            /* deliveries finished with 0 */
    uint64_t failed;           /* deliveries finished with an error (to be redelivered) */
    uint64_t malformed;        /* amqp: bodies that were not a Mayak event (dropped) */
    uint64_t reconnects;       /* amqp: successful connects after the first, both links */
    uint64_t pending;          /* gauge: events in the publish queue */
    uint64_t consuming;        /* gauge: subscriptions receiving now (amqp: queue bound and
                                * consumer registered on the current connection) */
    bool connected;            /* gauge */
};
void mk_bus_get_stats(const struct mk_bus *bus, struct mk_bus_stats *out);

/* --- events on the wire (also used by the amqp consumer and the fuzz target) ------- */

/* A parsed wire event; strings point into `text`, which the struct owns. */
struct mk_bus_wire_event {
    char *text;              /* copy of the JSON (NUL-terminated) */
    char id[37];
    char type[MK_BUS_MAX_TYPE_BYTES + 1];
    char *tenant;            /* owned */
    int64_t time_ms;
    char *payload;           /* compact JSON of the payload object, owned */
    size_t payload_len;
    size_t text_len;
};
/* Parses and checks an event body: a JSON object holding the five fields, each valid:
 * id (UUID), type, time (RFC 3339 UTC "...Z", optional fraction), tenant and payload
 * (an object). Other fields are ignored, so a later version may add some.
 * 0, MK_EBADJSON (not JSON or missing/bad fields; a sentence in err), MK_EBADUTF8,
 * MK_ETOOBIG, MK_ENOMEM. On success release with mk_bus_wire_event_release. */
int mk_bus_wire_event_parse(const char *body, size_t len, struct mk_bus_wire_event *out, mk_buf *err);
void mk_bus_wire_event_release(struct mk_bus_wire_event *ev);

#endif
