/*
 * mk_webhooks: outgoing webhooks. Each configured subscription (URL, secret, event
 * type patterns; config `webhooks:`) gets every matching bus event POSTed as the
 * event's JSON, signed:
 *
 *   X-Mayak-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *   X-Mayak-Event: conversation.created      X-Mayak-Event-Id: <uuid>
 *   X-Mayak-Attempt: 1
 *
 * A receiver recomputes the HMAC over the exact body bytes, compares in constant
 * time, and refuses a t too far from its clock (replays); docs/BUS.md has an example.
 *
 * Delivery: a 2xx answer delivers. 5xx, 408, 429, timeouts and connection errors are
 * retried with exponential backoff and jitter (backoff_base_ms doubling up to
 * backoff_max_ms, each delay drawn from [d/2, d]; a Retry-After in seconds stretches
 * it, up to backoff_max_ms) until max_attempts; any other answer (4xx, 3xx: redirects
 * are not followed) fails at once. The webhooks read the bus as one subscriber group,
 * and an event is acknowledged on the bus only when every matching subscription has
 * delivered or given up, so on amqp a crash mid-retry sends the event again (to
 * every subscription: receivers dedupe on X-Mayak-Event-Id; at least once).
 *
 * Runs on the bus's loop; use from that thread only.
 */
#ifndef MK_WEBHOOKS_H
#define MK_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bus/mk_bus.h"
#include "config/mk_config.h"
#include "net/mk_http_client.h"

/* "t=<20 digits>,v1=<64 hex>" and the NUL. */
#define MK_WEBHOOK_SIGNATURE_MAX 96

struct mk_webhooks;

struct mk_webhooks_options {
    const char *group;       /* bus subscriber group; default "webhooks" */
    uint32_t prefetch;       /* events handled at once; default 32 */
};

/* Starts delivering bus events to the n configured webhooks (each entry is copied;
 * defaults as in struct mk_webhook_config apply to zero fields). http may be NULL (a
 * client of its own is made on loop) and must otherwise outlive the webhooks. n == 0
 * gives an object that does nothing. 0, MK_EINVAL (a bad entry: URL not http(s),
 * empty secret, a bad pattern, max_attempts < 1; a sentence naming it in err),
 * MK_EEXISTS (the group is already subscribed on this bus), MK_ENOMEM. On success
 * *out is the caller's; free it with mk_webhooks_free BEFORE mk_bus_free. */
int mk_webhooks_new(uv_loop_t *loop, struct mk_bus *bus, mk_http_client *http, const struct mk_webhook_config *hooks,
                    size_t n, const struct mk_webhooks_options *opt, struct mk_webhooks **out, mk_buf *err);
/* Unsubscribes, cancels calls in flight and pending retries (their events go back to
 * the bus unacknowledged: redelivered later on amqp). The memory is released once the
 * loop has closed the timers (run the loop afterwards). Accepts NULL. */
void mk_webhooks_free(struct mk_webhooks *w);

/* Counters per subscription, for /metrics (label: mk_webhooks_name). Loop thread. */
struct mk_webhook_stats {
    uint64_t events;         /* events that matched */
    uint64_t attempts;       /* HTTP requests made */
    uint64_t delivered;      /* answered 2xx */
    uint64_t retries;        /* attempts after a retryable failure */
    uint64_t failed;         /* given up: attempts exhausted or a permanent refusal */
    uint64_t in_flight;      /* gauge: events being delivered or waiting to retry */
};
size_t mk_webhooks_count(const struct mk_webhooks *w);
/* The subscription's name ("" when i is out of range). */
const char *mk_webhooks_name(const struct mk_webhooks *w, size_t i);
/* 0, or MK_EINVAL when i is out of range (out zeroed). */
int mk_webhooks_get_stats(const struct mk_webhooks *w, size_t i, struct mk_webhook_stats *out);

/* The header value for body signed with secret at Unix time t, into out.
 * 0, MK_EINVAL (NULL secret/out, empty secret). */
int mk_webhook_sign(const char *secret, size_t secret_len, int64_t t, const char *body, size_t len,
                    char out[MK_WEBHOOK_SIGNATURE_MAX]);
/* A receiver's check: header well-formed, |now - t| <= tolerance_s, and the HMAC
 * matches (constant-time compare). */
bool mk_webhook_verify(const char *secret, size_t secret_len, const char *header, const char *body, size_t len,
                       int64_t now, uint32_t tolerance_s);

#endif
