/*
 * mk_router_breaker: what happens after a call — the circuit breaker per deployment,
 * the time-to-first-token EWMA, the group's retry budget and the retry backoff.
 *
 * Breaker: closed -> open after `consecutive_failures` failures in a row, or when the
 * current window (a tumbling window of window_ms, restarted when it expires) holds at
 * least min_requests calls and failures/requests > error_rate. open -> half-open once
 * open_ms has passed, checked lazily when a pick looks at the deployment (no timer).
 * Half-open lets one call through at a time (the probe); half_open_probes successes
 * close it, one failure re-opens it for another open_ms.
 *
 * Calls picked before the breaker opened may report while it is open or half-open (an
 * LLM stream can outlive open_ms). Such late reports are evidence too: while open they
 * only count in the window; while half-open they count like the probe's own outcome.
 */
#include "router/mk_router_int.h"

#include <stdio.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "metrics/mk_metrics.h"

/* EWMA weight of the newest time-to-first-token sample. 0.3 makes an observation
 * weigh 0.3, 0.21, 0.147... as it ages: after 3 new samples an old level keeps ~1/3
 * of its say, so a deployment that slows down is noticed within a handful of calls,
 * while one outlier (a long prompt, a cold cache upstream) moves the average by only
 * 30%. Smaller alphas lagged for tens of calls; larger ones chased noise. */
#define EWMA_ALPHA 0.3

static const char *state_name(enum mk_breaker_state s)
{
    return s == MK_BREAKER_OPEN ? "open" : s == MK_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

void mk_breaker_set_state(mk_deployment *d, enum mk_breaker_state to, const char *reason, uint64_t now_us)
{
    enum mk_breaker_state from = d->breaker;
    d->breaker = to;
    d->probe_in_flight = false;
    d->half_open_successes = 0;
    if (to == MK_BREAKER_OPEN) d->opened_at_us = now_us;
    if (to != MK_BREAKER_HALF_OPEN) {
        /* Each closed period and each open period starts with a clean slate. */
        d->consecutive_failures = 0;
        d->window_requests = d->window_failures = 0;
        d->window_start_us = now_us;
    }
    if (from == to) return;
    mk_log(to == MK_BREAKER_OPEN ? MK_LOG_WARN : MK_LOG_INFO, "breaker_state", "deployment", d->label, "group",
           d->group->config->name, "from", state_name(from), "to", state_name(to), "reason", reason, NULL);
    const char *l[] = {d->label};
    mk_metric_set(MK_METRIC_BREAKER_STATE, l, (double)to);
}

bool mk_breaker_allows(mk_deployment *d, uint64_t now_us)
{
    if (d->breaker == MK_BREAKER_OPEN) {
        const struct mk_group_settings *st = mk_group_settings_of(d->group);
        if (now_us < d->opened_at_us || now_us - d->opened_at_us < (uint64_t)st->breaker.open_ms * 1000u)
            return false;
        mk_breaker_set_state(d, MK_BREAKER_HALF_OPEN, "open_elapsed", now_us);
    }
    if (d->breaker == MK_BREAKER_HALF_OPEN) return !d->probe_in_flight;
    return true;
}

static void finish_call(mk_deployment *d)
{
    if (d->inflight > 0) d->inflight--;
}

static void window_count(mk_deployment *d, const struct mk_group_settings *st, bool failed, uint64_t now_us)
{
    uint64_t win = (uint64_t)st->breaker.window_ms * 1000u;
    if (now_us < d->window_start_us || now_us - d->window_start_us >= win) {
        d->window_start_us = now_us;
        d->window_requests = d->window_failures = 0;
    }
    d->window_requests++;
    if (failed) d->window_failures++;
}

void mk_router_report_success(mk_deployment *d, uint64_t ttft_us, uint64_t now_us)
{
    if (!d) return;
    const struct mk_group_settings *st = mk_group_settings_of(d->group);
    finish_call(d);
    if (ttft_us > 0) {
        double x = (double)ttft_us;
        d->ewma_ttft_us = d->ewma_ttft_us > 0 ? EWMA_ALPHA * x + (1 - EWMA_ALPHA) * d->ewma_ttft_us : x;
    }
    window_count(d, st, false, now_us);
    d->consecutive_failures = 0;
    if (d->breaker == MK_BREAKER_HALF_OPEN) {
        d->probe_in_flight = false;
        if (++d->half_open_successes >= st->breaker.half_open_probes)
            mk_breaker_set_state(d, MK_BREAKER_CLOSED, "probes_succeeded", now_us);
    }
}

void mk_router_report_failure(mk_deployment *d, int code, uint64_t now_us)
{
    if (!d) return;
    /* The caller's own fault says nothing about the deployment. */
    if (code == MK_EUPSTREAM_CLIENT || code == MK_ECANCELLED) {
        mk_router_report_neutral(d, now_us);
        return;
    }
    const struct mk_group_settings *st = mk_group_settings_of(d->group);
    finish_call(d);
    window_count(d, st, true, now_us);
    d->consecutive_failures++;
    if (d->breaker == MK_BREAKER_HALF_OPEN) {
        mk_breaker_set_state(d, MK_BREAKER_OPEN, "probe_failed", now_us);
        return;
    }
    if (d->breaker != MK_BREAKER_CLOSED) return;
    if (d->consecutive_failures >= st->breaker.consecutive_failures) {
        mk_breaker_set_state(d, MK_BREAKER_OPEN, "consecutive_failures", now_us);
        return;
    }
    if (d->window_requests >= (uint32_t)st->breaker.min_requests &&
        (double)d->window_failures / (double)d->window_requests > st->breaker.error_rate)
        mk_breaker_set_state(d, MK_BREAKER_OPEN, "error_rate", now_us);
}

void mk_router_report_neutral(mk_deployment *d, uint64_t now_us)
{
    (void)now_us;
    if (!d) return;
    finish_call(d);
    /* Free the probe slot so another call can probe; the state stays as it is. */
    if (d->breaker == MK_BREAKER_HALF_OPEN) d->probe_in_flight = false;
}

/* ---- retry budget ---------------------------------------------------------- */

static double budget_cap(const struct mk_group_settings *st)
{
    double c = 10.0 * st->retry.budget_min_per_s;
    return c > 10 ? c : 10;
}

static void refill(mk_model_group *g, uint64_t now_us)
{
    const struct mk_group_settings *st = mk_group_settings_of(g);
    if (g->retry_refill_us != 0 && now_us > g->retry_refill_us)
        g->retry_tokens += (double)(now_us - g->retry_refill_us) / 1e6 * st->retry.budget_min_per_s;
    /* Never move the clock backwards: a stale now_us gets no credit. */
    if (g->retry_refill_us == 0 || now_us > g->retry_refill_us) g->retry_refill_us = now_us;
    double cap = budget_cap(st);
    if (g->retry_tokens > cap) g->retry_tokens = cap;
}

void mk_router_note_request(mk_model_group *g, uint64_t now_us)
{
    if (!g) return;
    refill(g, now_us);
    g->retry_tokens += mk_group_settings_of(g)->retry.budget_ratio;
    double cap = budget_cap(mk_group_settings_of(g));
    if (g->retry_tokens > cap) g->retry_tokens = cap;
}

bool mk_router_take_retry(mk_model_group *g, uint64_t now_us)
{
    if (!g) return false;
    refill(g, now_us);
    if (g->retry_tokens < 1) return false;
    g->retry_tokens -= 1;
    return true;
}

/* ---- backoff --------------------------------------------------------------- */

/* A provider's Retry-After is honoured up to this many times backoff_max_ms (10 s
 * with the defaults): beyond that the client would rather see an error, or a retry
 * on another deployment, than wait. */
#define RETRY_AFTER_CAP_FACTOR 10

uint32_t mk_router_backoff_ms(const mk_model_group *g, int attempt, uint32_t retry_after_ms)
{
    if (!g) return 0;
    const struct mk_group_settings *st = mk_group_settings_of(g);
    uint64_t max = st->retry.backoff_max_ms;
    uint64_t ceil = st->retry.backoff_base_ms;
    if (attempt < 1) attempt = 1;
    for (int i = 1; i < attempt && ceil < max; i++) ceil *= 2;
    if (ceil > max) ceil = max;
    /* Full jitter: uniform in [0, ceil], spreading retries of many clients apart. */
    uint32_t delay = mk_rand_uniform((uint32_t)ceil + 1);
    uint64_t ra_cap = max * RETRY_AFTER_CAP_FACTOR;
    if (retry_after_ms > delay && retry_after_ms <= ra_cap) delay = retry_after_ms;
    return delay;
}
