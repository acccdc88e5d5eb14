/*
 * desk_relay: live desk updates across nodes.
 *
 * A WebSocket client (a user's chat, an operator's console) is connected to one node,
 * but the action it must hear about may happen on another: behind a load balancer an
 * operator's reply goes through node B while the user's chat is on node A. Every live
 * update the desk sends to its own clients (desk_hub_*, desk_ws.c) is therefore also
 * published on the bus as an internal event (MK_BUS_DESK_LIVE) carrying the update
 * itself, who it is for, and the publishing node's random origin id; every node
 * subscribes to those events with a fan-out subscription and hands the updates of the
 * other nodes to its own clients. A node skips its own events, so nobody gets an update
 * twice.
 *
 * Only the amqp bus crosses processes: with the in-process bus (one node) nothing is
 * published or subscribed and the local hub is all there is. On amqp the fan-out queue
 * is exclusive, so a node misses what was published while it was disconnected from the
 * broker; its clients catch up from the store when they reconnect (hello with last_seq),
 * as after any network loss. Queue refreshes are relayed as a request ("recompute
 * yours"): every node reads the queue from the shared store itself.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bus/mk_bus.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "desk_int.h"

enum {
    TO_CONVERSATION = 1, /* the chat clients of payload.conversation_id */
    TO_OPERATORS = 2,    /* the tenant's operator consoles */
    TO_QUEUE = 4,        /* recompute the tenant's queue and send it */
    TO_SESSIONS = 8,     /* a console session was logged out: payload.session_mac */
};

/* Publishes one update for the other nodes: `p` (consumed) gets this node's origin and
 * the `to` bits. A failure is logged, not returned: the other nodes' clients read what
 * they missed from the store on their next hello. */
static void publish_live(struct desk_svc *svc, const char *tenant, int to, json_object *p)
{
    json_object_object_add(p, "origin", json_object_new_string(svc->origin));
    json_object_object_add(p, "to", json_object_new_int(to));
    size_t len;
    const char *s = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
    int rc = mk_bus_publish(svc->bus, MK_BUS_DESK_LIVE, tenant, s, len, NULL, NULL, NULL);
    if (rc) mk_log(MK_LOG_WARN, "desk_relay_dropped", "error", mk_strerror(rc), NULL);
    json_object_put(p);
}

static void relay(struct desk_svc *svc, const char *tenant, const char *conv, json_object *ev, int to)
{
    if (!svc->relay_sub || !svc->bus) return;
    json_object *p = json_object_new_object();
    if (conv) json_object_object_add(p, "conversation_id", json_object_new_string(conv));
    if (ev) json_object_object_add(p, "event", json_object_get(ev));
    publish_live(svc, tenant, to, p);
}

void desk_live_to_conversation(struct desk_svc *svc, const char *tenant, const char *conv, json_object *ev)
{
    desk_hub_to_conversation(svc, tenant, conv, ev, NULL);
    relay(svc, tenant, conv, ev, TO_CONVERSATION);
}

void desk_live_to_operators(struct desk_svc *svc, const char *tenant, json_object *ev)
{
    desk_hub_to_operators(svc, tenant, ev);
    relay(svc, tenant, NULL, ev, TO_OPERATORS);
}

void desk_live_to_both(struct desk_svc *svc, const char *tenant, const char *conv, json_object *ev)
{
    desk_hub_to_conversation(svc, tenant, conv, ev, NULL);
    desk_hub_to_operators(svc, tenant, ev);
    relay(svc, tenant, conv, ev, TO_CONVERSATION | TO_OPERATORS);
}

void desk_live_refresh_queue(struct desk_svc *svc, const char *tenant)
{
    desk_hub_refresh_queue(svc, tenant);
    relay(svc, tenant, NULL, NULL, TO_QUEUE);
}

void desk_live_session_end(struct desk_svc *svc, const unsigned char mac[32], int64_t expires_ms)
{
    if (!svc->relay_sub || !svc->bus) return;
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, mac, 32);
    json_object *p = json_object_new_object();
    json_object_object_add(p, "session_mac", json_object_new_string(hex));
    json_object_object_add(p, "expires_ms", json_object_new_int64(expires_ms));
    /* Sessions are not per tenant; the event's tenant field is just required. */
    publish_live(svc, "default", TO_SESSIONS, p);
}

static void session_end_from(struct desk_svc *svc, json_object *p)
{
    const char *hex = desk_jstr(p, "session_mac");
    json_object *x = json_object_object_get(p, "expires_ms");
    unsigned char mac[32];
    size_t n = 0;
    if (!hex || !x || !json_object_is_type(x, json_type_int) ||
        sodium_hex2bin(mac, sizeof mac, hex, strlen(hex), NULL, &n, NULL) != 0 || n != sizeof mac)
        return;
    desk_session_revoke_mac(svc, mac, json_object_get_int64(x));
}

/* Another node's update, for our clients. Malformed events are dropped (and logged):
 * delivering them again would not make them any better. */
static int on_live(const struct mk_bus_event *ev, mk_bus_delivery *d, void *arg)
{
    (void)d;
    struct desk_svc *svc = arg;
    if (svc->closing) return 0;
    json_tokener *tok = json_tokener_new();
    json_object *p = tok ? json_tokener_parse_ex(tok, ev->payload.ptr, (int)ev->payload.len) : NULL;
    json_tokener_free(tok);
    const char *origin = desk_jstr(p, "origin");
    json_object *to_obj = p ? json_object_object_get(p, "to") : NULL;
    json_object *event = p ? json_object_object_get(p, "event") : NULL;
    const char *conv = desk_jstr(p, "conversation_id");
    int to = to_obj && json_object_is_type(to_obj, json_type_int) ? json_object_get_int(to_obj) : 0;
    if (!origin || to <= 0 || ((to & (TO_CONVERSATION | TO_OPERATORS)) && !json_object_is_type(event, json_type_object)) ||
        ((to & TO_CONVERSATION) && (!conv || strlen(conv) != 36))) {
        mk_log(MK_LOG_WARN, "desk_relay_malformed", "id", ev->id, NULL);
        json_object_put(p);
        return 0;
    }
    if (strcmp(origin, svc->origin) != 0) {
        if (to & TO_CONVERSATION) desk_hub_to_conversation(svc, ev->tenant, conv, event, NULL);
        if (to & TO_OPERATORS) desk_hub_to_operators(svc, ev->tenant, event);
        if (to & TO_QUEUE) desk_hub_refresh_queue(svc, ev->tenant);
        if (to & TO_SESSIONS) session_end_from(svc, p);
    }
    json_object_put(p);
    return 0;
}

int desk_relay_start(struct desk_svc *svc)
{
    if (!svc->bus || strcmp(mk_bus_backend_name(svc->bus), "inproc") == 0) return 0;
    unsigned char raw[12];
    mk_rand_bytes(raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) snprintf(svc->origin + 2 * i, 3, "%02x", raw[i]);
    const char *patterns[] = {MK_BUS_DESK_LIVE};
    int rc = mk_bus_subscribe(svc->bus, NULL, patterns, 1, 256, on_live, svc, &svc->relay_sub);
    if (rc) svc->relay_sub = NULL;
    return rc;
}

void desk_relay_stop(struct desk_svc *svc)
{
    mk_bus_unsubscribe(svc->relay_sub);
    svc->relay_sub = NULL;
}
