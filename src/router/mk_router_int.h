/*
 * mk_router_int: what the router's files share and nobody else sees — the router
 * struct, each group's effective settings (config with defaults applied) and the
 * helpers that move a breaker between states.
 *
 * Files: mk_router.c (build, lookup, lifetime, metrics), mk_router_pick.c (policies,
 * tags), mk_router_breaker.c (outcomes, breaker, retry budget, backoff),
 * mk_router_health.c (active health checks).
 */
#ifndef MK_ROUTER_INT_H
#define MK_ROUTER_INT_H

#include "router/mk_router.h"

/* A group's config with every 0 replaced by the default documented in mk_config.h. */
struct mk_group_settings {
    struct mk_retry_config retry;
    struct mk_breaker_config breaker;
    struct mk_health_config health;
    struct mk_timeouts timeouts;
};

struct mk_router_health; /* mk_router_health.c */

struct mk_router {
    int refs;                          /* loop thread only, so a plain int */
    const struct mk_config *cfg;       /* not owned; outlives the router */
    mk_provider **providers;           /* one per provider config, same order */
    size_t nproviders;
    mk_model_group *groups;
    struct mk_group_settings *settings;/* parallel to groups */
    size_t ngroups;
    struct mk_router_health *health;   /* NULL until mk_router_start_health */
};

static inline const struct mk_group_settings *mk_group_settings_of(const mk_model_group *g)
{
    return &g->router->settings[g - g->router->groups];
}

/* Breaker bookkeeping (mk_router_breaker.c). */
void mk_breaker_set_state(mk_deployment *d, enum mk_breaker_state to, const char *reason, uint64_t now_us);
/* Moves an open breaker to half-open once open_ms has passed; true when a call may
 * be made now (closed, or half-open with the probe slot free). */
bool mk_breaker_allows(mk_deployment *d, uint64_t now_us);

/* Health (mk_router_health.c): stops timers and cancels probes; the memory is freed
 * once libuv has closed the timer. Accepts NULL. */
void mk_router_health_stop(struct mk_router_health *h);

/* Normalised form of a tag: surrounding blanks removed and blanks around ':' dropped,
 * so "residency: ru" == "residency:ru". Writes into a fresh malloc'd string; NULL on
 * out-of-memory. */
char *mk_tag_normalise(const char *tag);
/* True when `req` normalised equals `norm` (already normalised); no allocation. */
bool mk_tag_matches(const char *norm, const char *req);

#endif
