/*
 * mk_router_pick: choosing one deployment of a group by its policy.
 *
 * First the eligible set: not excluded, carrying every required tag, breaker allowing
 * a call. Among those, healthy ones are preferred; only when none is healthy are the
 * unhealthy ones considered, so that a flaky health endpoint alone cannot take a
 * whole group down (the breaker still guards against a deployment that really
 * fails). Then the policy chooses within that set.
 */
#include "router/mk_router_int.h"

#include "core/mk_rand.h"

static bool has_tag(const mk_deployment *d, const char *req)
{
    for (size_t i = 0; i < d->ntags; i++)
        if (mk_tag_matches(d->tags[i], req)) return true;
    return false;
}

static bool tags_ok(const mk_deployment *d, const char *const *req, size_t nreq)
{
    const struct mk_model_group_config *gc = d->group->config;
    for (size_t i = 0; i < gc->nrequire_tags; i++)
        if (gc->require_tags[i] && !has_tag(d, gc->require_tags[i])) return false;
    for (size_t i = 0; i < nreq; i++)
        if (req[i] && !has_tag(d, req[i])) return false;
    return true;
}

static mk_deployment *pick_priority(mk_model_group *g, uint64_t set)
{
    mk_deployment *best = NULL;
    for (size_t i = 0; i < g->ndeployments; i++) {
        if (!(set & (1ull << i))) continue;
        mk_deployment *d = &g->deployments[i];
        /* Strictly lower wins: ties keep the earlier position. */
        if (!best || d->config->priority < best->config->priority) best = d;
    }
    return best;
}

/* Weight 0 (or negative) means "never, unless nothing else is left": a deployment
 * kept at 0 is a cold standby that still serves when the others are down. When every
 * eligible weight is 0 the choice is uniform. */
static mk_deployment *pick_weighted(mk_model_group *g, uint64_t set)
{
    double total = 0;
    size_t n = 0;
    for (size_t i = 0; i < g->ndeployments; i++) {
        if (!(set & (1ull << i))) continue;
        n++;
        double w = g->deployments[i].config->weight;
        if (w > 0) total += w;
    }
    if (n == 0) return NULL;
    if (total > 0) {
        double x = mk_rand_unit() * total;
        mk_deployment *last = NULL;
        for (size_t i = 0; i < g->ndeployments; i++) {
            if (!(set & (1ull << i))) continue;
            double w = g->deployments[i].config->weight;
            if (!(w > 0)) continue;
            last = &g->deployments[i];
            if (x < w) return last;
            x -= w;
        }
        return last; /* rounding left x just past the end */
    }
    uint32_t k = mk_rand_uniform((uint32_t)n);
    for (size_t i = 0; i < g->ndeployments; i++)
        if ((set & (1ull << i)) && k-- == 0) return &g->deployments[i];
    return NULL;
}

/* Cycles through the deployments in order, skipping ineligible ones: the next pick
 * starts after the last one chosen, so each eligible deployment gets its turn. */
static mk_deployment *pick_round_robin(mk_model_group *g, uint64_t set)
{
    size_t n = g->ndeployments;
    size_t start = (size_t)(g->rr_next % n);
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (set & (1ull << i)) {
            g->rr_next = i + 1;
            return &g->deployments[i];
        }
    }
    return NULL;
}

/* Uniform choice among the deployments in `set`. */
static mk_deployment *pick_random(mk_model_group *g, uint64_t set)
{
    uint32_t n = (uint32_t)__builtin_popcountll(set);
    if (n == 0) return NULL;
    uint32_t k = mk_rand_uniform(n);
    for (size_t i = 0; i < g->ndeployments; i++)
        if ((set & (1ull << i)) && k-- == 0) return &g->deployments[i];
    return NULL;
}

/* Unmeasured deployments (no EWMA yet) with nothing in flight come first, so every
 * deployment gets measured; one already being measured is not piled onto (a slow
 * newcomer would otherwise take all traffic until its first reply). Then the lowest
 * EWMA, ties at random; then, if only measuring-in-progress ones remain, those. */
static mk_deployment *pick_least_latency(mk_model_group *g, uint64_t set)
{
    uint64_t fresh = 0, measuring = 0, best_set = 0;
    double best = 0;
    for (size_t i = 0; i < g->ndeployments; i++) {
        if (!(set & (1ull << i))) continue;
        const mk_deployment *d = &g->deployments[i];
        if (d->ewma_ttft_us <= 0) {
            if (d->inflight == 0)
                fresh |= 1ull << i;
            else
                measuring |= 1ull << i;
            continue;
        }
        if (!best_set || d->ewma_ttft_us < best) {
            best = d->ewma_ttft_us;
            best_set = 1ull << i;
        } else if (d->ewma_ttft_us == best) {
            best_set |= 1ull << i;
        }
    }
    if (fresh) return pick_random(g, fresh);
    if (best_set) return pick_random(g, best_set);
    return pick_random(g, measuring);
}

static mk_deployment *pick_least_cost(mk_model_group *g, uint64_t set)
{
    mk_deployment *best = NULL;
    double best_cost = 0;
    for (size_t i = 0; i < g->ndeployments; i++) {
        if (!(set & (1ull << i))) continue;
        mk_deployment *d = &g->deployments[i];
        double c = d->price.input_per_1k + d->price.output_per_1k;
        if (!best || c < best_cost || (c == best_cost && d->config->priority < best->config->priority)) {
            best = d;
            best_cost = c;
        }
    }
    return best;
}

mk_deployment *mk_router_pick(mk_model_group *g, const char *const *required_tags, size_t nrequired,
                              uint64_t exclude_mask, uint64_t now_us)
{
    if (!g || g->ndeployments == 0) return NULL;
    if (nrequired > 0 && !required_tags) return NULL;
    uint64_t healthy = 0, unhealthy = 0;
    for (size_t i = 0; i < g->ndeployments; i++) {
        if (exclude_mask & (1ull << i)) continue;
        mk_deployment *d = &g->deployments[i];
        if (!tags_ok(d, required_tags, nrequired)) continue;
        if (!mk_breaker_allows(d, now_us)) continue;
        if (d->healthy)
            healthy |= 1ull << i;
        else
            unhealthy |= 1ull << i;
    }
    uint64_t set = healthy ? healthy : unhealthy;
    if (!set) return NULL;

    mk_deployment *d = NULL;
    switch (g->config->policy) {
    case MK_POLICY_WEIGHTED: d = pick_weighted(g, set); break;
    case MK_POLICY_ROUND_ROBIN: d = pick_round_robin(g, set); break;
    case MK_POLICY_LEAST_LATENCY: d = pick_least_latency(g, set); break;
    case MK_POLICY_LEAST_COST: d = pick_least_cost(g, set); break;
    case MK_POLICY_PRIORITY:
    default: d = pick_priority(g, set); break;
    }
    if (!d) return NULL;
    if (d->breaker == MK_BREAKER_HALF_OPEN) d->probe_in_flight = true; /* this call is the probe */
    d->inflight++;
    return d;
}
