/*
 * mk_router: model groups -> deployments, the routing policies, retries with backoff
 * under a retry budget, a circuit breaker per deployment and active health checks.
 *
 * The router decides; it does no request I/O. The API layer asks it for a deployment,
 * makes the call, and reports the outcome back, which feeds the breaker, the latency
 * EWMA and the retry budget. Health checks are the one thing it runs itself (a GET to
 * each provider's health path on a timer) when started with mk_router_start_health().
 *
 * A router is built from one mk_config and is immutable in shape; runtime state
 * (breakers, EWMAs, counters) lives inside it. SIGHUP builds a new router; the old one
 * stays alive while requests hold a reference (mk_router_ref/unref).
 * All calls on the loop thread.
 *
 * Decisions worth knowing:
 * - Health vs. availability: pick prefers deployments whose last health check passed;
 *   when none of the otherwise eligible ones is healthy it falls back to the unhealthy
 *   ones (breaker still applied), so a flaky health endpoint cannot take a whole group
 *   down. The breaker, fed by real calls, is what removes a deployment that fails.
 * - Tags: a requirement matches a deployment tag exactly after both are normalised
 *   (surrounding blanks and blanks around ':' dropped: "residency: ru" ==
 *   "residency:ru"); case matters.
 * - Weighted: weight <= 0 is never picked while a positive-weight deployment is
 *   eligible; if only zero-weight ones are left they share uniformly (cold standby).
 * - Least latency: deployments without a measurement and nothing in flight go first
 *   (so they get measured); then the lowest EWMA of time to first token (alpha 0.3,
 *   see mk_router_breaker.c), ties at random.
 * - Least cost: lowest input + output price per 1k; ties by priority, then position.
 * - Priority: lowest priority value; ties by position.
 * - Breaker window: a tumbling window of window_ms, restarted when it expires.
 * - Retry budget: starts with budget_min_per_s tokens, gains budget_ratio per noted
 *   request and budget_min_per_s per second, capped at max(10, 10 * min_per_s).
 * - Backoff: full jitter; a Retry-After up to 10 x backoff_max_ms is honoured.
 * - Group fields left at 0 take the defaults documented in mk_config.h.
 */
#ifndef MK_ROUTER_H
#define MK_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/mk_config.h"
#include "net/mk_http_client.h"
#include "provider/mk_provider.h"

typedef struct mk_router mk_router;
typedef struct mk_model_group mk_model_group;

enum mk_breaker_state { MK_BREAKER_CLOSED = 0, MK_BREAKER_OPEN = 1, MK_BREAKER_HALF_OPEN = 2 };

typedef struct mk_deployment {
    const struct mk_deployment_config *config;
    mk_model_group *group;
    mk_provider *provider;         /* shared by the deployments of one provider; owned by the router */
    char *label;                   /* "provider/model": the metrics label */
    int index;                     /* position within its group (< 64) */
    struct mk_price price;         /* effective price */
    char **tags;                   /* provider tags + deployment tags */
    size_t ntags;

    /* runtime state, read-only outside the router */
    enum mk_breaker_state breaker;
    int consecutive_failures;
    uint64_t opened_at_us;
    int half_open_successes;
    bool probe_in_flight;
    uint32_t window_requests, window_failures;
    uint64_t window_start_us;
    double ewma_ttft_us;           /* 0 until the first success */
    bool healthy;                  /* last active health check; true until one fails */
    uint64_t inflight;
} mk_deployment;

struct mk_model_group {
    const struct mk_model_group_config *config;
    mk_router *router;
    mk_deployment *deployments;
    size_t ndeployments;
    uint64_t rr_next;
    /* retry budget: tokens refill with requests (ratio) and time (min per second) */
    double retry_tokens;
    uint64_t retry_refill_us;
};

/* Builds providers, groups and deployments from cfg (which must outlive the router).
 * 0, MK_ECONFIG (e.g. a provider type with no backend), MK_ENOMEM. refcount = 1. */
int mk_router_new(const struct mk_config *cfg, mk_router **out);
void mk_router_ref(mk_router *r);
/* Drops a reference; the last one stops health checks and frees. Accepts NULL. */
void mk_router_unref(mk_router *r);

/* The group for a model name: a group name or alias; NULL if none. */
mk_model_group *mk_router_group(mk_router *r, const char *model);
size_t mk_router_group_count(const mk_router *r);
mk_model_group *mk_router_group_at(mk_router *r, size_t i);
/* Every distinct provider instance (for authorize/health). */
size_t mk_router_provider_count(const mk_router *r);
mk_provider *mk_router_provider_at(mk_router *r, size_t i);

/* Picks a deployment by the group's policy among those that: are not in
 * exclude_mask (bit i = deployment i already tried), carry every tag in
 * required_tags and the group's require_tags, are healthy, and whose breaker allows
 * a call (closed, or half-open with no probe in flight: the pick then becomes the
 * probe). Healthy deployments are preferred; unhealthy ones are used only when no
 * healthy one qualifies. required_tags may be NULL when nrequired is 0 (a NULL array
 * with nrequired > 0 returns NULL). NULL when none qualifies. Marks the deployment in
 * flight; the caller owes exactly one report for it. */
mk_deployment *mk_router_pick(mk_model_group *g, const char *const *required_tags, size_t nrequired,
                              uint64_t exclude_mask, uint64_t now_us);

/* Call once per client request that reaches the group (refills the retry budget). */
void mk_router_note_request(mk_model_group *g, uint64_t now_us);
/* True if a retry may be made now; consumes one retry token. */
bool mk_router_take_retry(mk_model_group *g, uint64_t now_us);
/* Delay before retry number `attempt` (1 = first retry): exponential from
 * backoff_base_ms, capped at backoff_max_ms, full jitter. retry_after_ms from the
 * provider, if larger and within the cap, wins. */
uint32_t mk_router_backoff_ms(const mk_model_group *g, int attempt, uint32_t retry_after_ms);

/* Outcome of a call to d (each pick gets exactly one report). ttft_us: time to first
 * token or to the full reply (0 = not measured: the EWMA is left alone). A failure
 * that is the client's fault (MK_EUPSTREAM_CLIENT, MK_ECANCELLED) must be reported
 * with report_neutral; report_failure treats those two codes as neutral anyway.
 * Neutral frees a half-open breaker's probe slot without changing its state. All
 * accept NULL (no-op). */
void mk_router_report_success(mk_deployment *d, uint64_t ttft_us, uint64_t now_us);
void mk_router_report_failure(mk_deployment *d, int code, uint64_t now_us);
void mk_router_report_neutral(mk_deployment *d, uint64_t now_us);

/* Active health checks: every provider with a health path is probed with GET every
 * interval; a failed probe marks its deployments unhealthy until one succeeds.
 * Uses `client` (not owned): it must outlive the checks, so stop them (last unref or
 * mk_router_stop_health) before freeing the client. Probed: providers used by a group
 * with health.enabled that have a health_path, or "/models" for openai providers; the
 * tick is the smallest interval among those groups, the timeout likewise; openai
 * probes send the api_key as Bearer, yandexgpt its Api-Key/IAM token, plus the
 * provider's extra headers. Starts the first round at once. 0 (also when nothing is
 * to be probed), MK_EINVAL (NULL argument or already started), MK_ENOMEM. */
int mk_router_start_health(mk_router *r, uv_loop_t *loop, mk_http_client *client);
/* Stops the health checks now (cancels probes in flight, no callbacks follow); the
 * loop frees the timer later. Deployments keep their last health. Accepts NULL. */
void mk_router_stop_health(mk_router *r);

/* The group's effective max_attempts (default 3, at most MK_MAX_ATTEMPTS) and
 * timeouts (MK_DEFAULT_*_TIMEOUT_MS where the config left 0). */
int mk_router_max_attempts(const mk_model_group *g);
struct mk_timeouts mk_router_timeouts(const mk_model_group *g);

/* Publishes breaker states, health and EWMAs (seconds) as the BREAKER_STATE,
 * DEPLOYMENT_HEALTHY and DEPLOYMENT_EWMA_TTFT gauges (label: deployment label). The
 * breaker and health gauges are also updated on every change, and all three are set
 * when the router is built. The same "provider/model" in two groups shares one series
 * (last writer wins). There is no per-deployment in-flight metric in MK_METRIC_MAP, so
 * in-flight counts are not exported. Accepts NULL. */
void mk_router_export_metrics(mk_router *r);

#endif
