/*
 * mk_router: building a router from a config, looking groups up, reference counting
 * and publishing per-deployment gauges. Policies live in mk_router_pick.c, outcomes
 * and the breaker in mk_router_breaker.c, health checks in mk_router_health.c.
 */
#include "router/mk_router_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "metrics/mk_metrics.h"

/* Defaults from mk_config.h, used wherever a group leaves a field at 0. */
#define DEF_MAX_ATTEMPTS 3
#define DEF_BACKOFF_BASE_MS 25
#define DEF_BACKOFF_MAX_MS 1000
#define DEF_BUDGET_RATIO 0.2
#define DEF_BUDGET_MIN_PER_S 10
#define DEF_BRK_CONSECUTIVE 5
#define DEF_BRK_ERROR_RATE 0.5
#define DEF_BRK_MIN_REQUESTS 20
#define DEF_BRK_WINDOW_MS 10000
#define DEF_BRK_OPEN_MS 5000
#define DEF_BRK_PROBES 2
#define DEF_HEALTH_INTERVAL_MS 10000
#define DEF_HEALTH_TIMEOUT_MS 2000
#define MAX_BACKOFF_MS 600000

char *mk_tag_normalise(const char *tag)
{
    size_t len = strlen(tag);
    char *out = malloc(len + 1);
    if (!out) return NULL;
    const char *s = tag, *end = tag + len;
    while (s < end && isspace((unsigned char)*s)) s++;
    while (end > s && isspace((unsigned char)end[-1])) end--;
    size_t o = 0;
    while (s < end) {
        if (isspace((unsigned char)*s)) {
            const char *q = s;
            while (q < end && isspace((unsigned char)*q)) q++;
            /* Blanks before or after a ':' are layout, not content. */
            if (*q == ':' || (o > 0 && out[o - 1] == ':')) {
                s = q;
                continue;
            }
        }
        out[o++] = *s++;
    }
    out[o] = '\0';
    return out;
}

bool mk_tag_matches(const char *norm, const char *req)
{
    const char *s = req, *end = req + strlen(req);
    while (s < end && isspace((unsigned char)*s)) s++;
    while (end > s && isspace((unsigned char)end[-1])) end--;
    char prev = '\0';
    while (s < end) {
        if (isspace((unsigned char)*s)) {
            const char *q = s;
            while (q < end && isspace((unsigned char)*q)) q++;
            if (*q == ':' || prev == ':') {
                s = q;
                continue;
            }
        }
        if (*norm != *s) return false;
        prev = *s;
        norm++;
        s++;
    }
    return *norm == '\0';
}

static void apply_defaults(const struct mk_model_group_config *gc, struct mk_group_settings *st)
{
    st->retry = gc->retry;
    if (st->retry.max_attempts <= 0) st->retry.max_attempts = DEF_MAX_ATTEMPTS;
    if (st->retry.max_attempts > MK_MAX_ATTEMPTS) st->retry.max_attempts = MK_MAX_ATTEMPTS;
    if (st->retry.backoff_base_ms == 0) st->retry.backoff_base_ms = DEF_BACKOFF_BASE_MS;
    if (st->retry.backoff_max_ms == 0) st->retry.backoff_max_ms = DEF_BACKOFF_MAX_MS;
    /* Ten minutes bounds any sane backoff and keeps the arithmetic far from overflow. */
    if (st->retry.backoff_max_ms > MAX_BACKOFF_MS) st->retry.backoff_max_ms = MAX_BACKOFF_MS;
    if (st->retry.backoff_base_ms > st->retry.backoff_max_ms) st->retry.backoff_base_ms = st->retry.backoff_max_ms;
    if (!(st->retry.budget_ratio > 0)) st->retry.budget_ratio = DEF_BUDGET_RATIO;
    if (st->retry.budget_min_per_s <= 0) st->retry.budget_min_per_s = DEF_BUDGET_MIN_PER_S;

    st->breaker = gc->breaker;
    if (st->breaker.consecutive_failures <= 0) st->breaker.consecutive_failures = DEF_BRK_CONSECUTIVE;
    if (!(st->breaker.error_rate > 0)) st->breaker.error_rate = DEF_BRK_ERROR_RATE;
    if (st->breaker.min_requests <= 0) st->breaker.min_requests = DEF_BRK_MIN_REQUESTS;
    if (st->breaker.window_ms == 0) st->breaker.window_ms = DEF_BRK_WINDOW_MS;
    if (st->breaker.open_ms == 0) st->breaker.open_ms = DEF_BRK_OPEN_MS;
    if (st->breaker.half_open_probes <= 0) st->breaker.half_open_probes = DEF_BRK_PROBES;

    st->health = gc->health;
    if (st->health.interval_ms == 0) st->health.interval_ms = DEF_HEALTH_INTERVAL_MS;
    if (st->health.timeout_ms == 0) st->health.timeout_ms = DEF_HEALTH_TIMEOUT_MS;

    st->timeouts = gc->timeouts;
    if (st->timeouts.connect_ms == 0) st->timeouts.connect_ms = MK_DEFAULT_CONNECT_TIMEOUT_MS;
    if (st->timeouts.first_token_ms == 0) st->timeouts.first_token_ms = MK_DEFAULT_FIRST_TOKEN_TIMEOUT_MS;
    if (st->timeouts.chunk_gap_ms == 0) st->timeouts.chunk_gap_ms = MK_DEFAULT_CHUNK_GAP_TIMEOUT_MS;
    if (st->timeouts.total_ms == 0) st->timeouts.total_ms = MK_DEFAULT_TOTAL_TIMEOUT_MS;
}

static void free_deployment(mk_deployment *d)
{
    free(d->label);
    for (size_t i = 0; i < d->ntags; i++) free(d->tags[i]);
    free(d->tags);
}

static void free_router(mk_router *r)
{
    mk_router_health_stop(r->health);
    for (size_t g = 0; g < r->ngroups; g++) {
        for (size_t i = 0; i < r->groups[g].ndeployments; i++) free_deployment(&r->groups[g].deployments[i]);
        free(r->groups[g].deployments);
    }
    free(r->groups);
    free(r->settings);
    for (size_t i = 0; i < r->nproviders; i++) mk_provider_free(r->providers[i]);
    free(r->providers);
    free(r);
}

static int add_tags(mk_deployment *d, char *const *tags, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!tags[i]) continue;
        char *t = mk_tag_normalise(tags[i]);
        if (!t) return MK_ENOMEM;
        d->tags[d->ntags++] = t;
    }
    return 0;
}

static int build_deployment(mk_router *r, mk_model_group *g, size_t i)
{
    const struct mk_model_group_config *gc = g->config;
    const struct mk_deployment_config *dc = &gc->deployments[i];
    mk_deployment *d = &g->deployments[i];
    d->config = dc;
    d->group = g;
    d->index = (int)i;
    d->healthy = true;
    d->breaker = MK_BREAKER_CLOSED;

    size_t p = 0;
    while (p < r->nproviders && !(dc->provider && strcmp(r->cfg->providers[p].name, dc->provider) == 0)) p++;
    if (p == r->nproviders || !dc->model) {
        mk_log(MK_LOG_ERROR, "router_config", "group", gc->name, "provider", dc->provider, "msg",
               dc->model ? "deployment names an unknown provider" : "deployment has no model", NULL);
        return MK_ECONFIG;
    }
    d->provider = r->providers[p];
    const struct mk_provider_config *pc = &r->cfg->providers[p];

    size_t llen = strlen(pc->name) + 1 + strlen(dc->model) + 1;
    d->label = malloc(llen);
    if (!d->label) return MK_ENOMEM;
    snprintf(d->label, llen, "%s/%s", pc->name, dc->model);

    d->price = dc->has_price ? dc->price : pc->price;

    size_t ntags = pc->ntags + dc->ntags;
    if (ntags > 0) {
        d->tags = calloc(ntags, sizeof *d->tags);
        if (!d->tags) return MK_ENOMEM;
        int rc = add_tags(d, pc->tags, pc->ntags);
        if (!rc) rc = add_tags(d, dc->tags, dc->ntags);
        if (rc) return rc;
    }
    return 0;
}

static int build_group(mk_router *r, size_t gi)
{
    const struct mk_model_group_config *gc = &r->cfg->model_groups[gi];
    mk_model_group *g = &r->groups[gi];
    g->config = gc;
    g->router = r;
    if (!gc->name) {
        mk_log(MK_LOG_ERROR, "router_config", "msg", "model group without a name", NULL);
        return MK_ECONFIG;
    }
    /* Bit i of the pick's exclude mask stands for deployment i. */
    if (gc->ndeployments > 64 || gc->ndeployments > MK_MAX_DEPLOYMENTS_PER_GROUP) {
        mk_log(MK_LOG_ERROR, "router_config", "group", gc->name, "msg", "too many deployments in a group", NULL);
        return MK_ECONFIG;
    }
    apply_defaults(gc, &r->settings[gi]);
    /* One second's worth of the time-based allowance to begin with, so the first
     * failures after a start can still be retried. */
    g->retry_tokens = r->settings[gi].retry.budget_min_per_s;
    g->retry_refill_us = 0;
    if (gc->ndeployments == 0) return 0;
    g->deployments = calloc(gc->ndeployments, sizeof *g->deployments);
    if (!g->deployments) return MK_ENOMEM;
    g->ndeployments = gc->ndeployments;
    for (size_t i = 0; i < gc->ndeployments; i++) {
        int rc = build_deployment(r, g, i);
        if (rc) return rc;
    }
    return 0;
}

int mk_router_new(const struct mk_config *cfg, mk_router **out)
{
    if (!cfg || !out) return MK_EINVAL;
    *out = NULL;
    /* Weighted and tie-breaking picks draw random numbers. */
    if (mk_rand_init() != 0) return MK_EINTERNAL;
    mk_router *r = calloc(1, sizeof *r);
    if (!r) return MK_ENOMEM;
    r->refs = 1;
    r->cfg = cfg;
    int rc = 0;
    if (cfg->nproviders > 0) {
        r->providers = calloc(cfg->nproviders, sizeof *r->providers);
        if (!r->providers) goto nomem;
    }
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (!cfg->providers[i].name) {
            mk_log(MK_LOG_ERROR, "router_config", "msg", "provider without a name", NULL);
            rc = MK_ECONFIG;
            goto fail;
        }
        rc = mk_provider_new(&cfg->providers[i], &r->providers[i]);
        if (rc) {
            mk_log(MK_LOG_ERROR, "router_config", "provider", cfg->providers[i].name, "error", mk_strerror(rc), NULL);
            if (rc != MK_ENOMEM) rc = MK_ECONFIG;
            goto fail;
        }
        r->nproviders = i + 1;
    }
    if (cfg->nmodel_groups > 0) {
        r->groups = calloc(cfg->nmodel_groups, sizeof *r->groups);
        r->settings = calloc(cfg->nmodel_groups, sizeof *r->settings);
        if (!r->groups || !r->settings) goto nomem;
    }
    r->ngroups = cfg->nmodel_groups;
    for (size_t gi = 0; gi < cfg->nmodel_groups; gi++) {
        rc = build_group(r, gi);
        if (rc) goto fail;
    }
    mk_router_export_metrics(r);
    *out = r;
    return 0;
nomem:
    rc = MK_ENOMEM;
fail:
    free_router(r);
    return rc;
}

void mk_router_ref(mk_router *r)
{
    if (r) r->refs++;
}

void mk_router_unref(mk_router *r)
{
    if (!r) return;
    if (--r->refs > 0) return;
    free_router(r);
}

mk_model_group *mk_router_group(mk_router *r, const char *model)
{
    if (!r || !model) return NULL;
    /* Names first, then aliases, so a group's own name always wins over another
     * group's alias. Linear: at most a few hundred short strings per request. */
    for (size_t i = 0; i < r->ngroups; i++)
        if (strcmp(r->groups[i].config->name, model) == 0) return &r->groups[i];
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct mk_model_group_config *gc = r->groups[i].config;
        for (size_t a = 0; a < gc->naliases; a++)
            if (gc->aliases[a] && strcmp(gc->aliases[a], model) == 0) return &r->groups[i];
    }
    return NULL;
}

size_t mk_router_group_count(const mk_router *r) { return r ? r->ngroups : 0; }
mk_model_group *mk_router_group_at(mk_router *r, size_t i) { return r && i < r->ngroups ? &r->groups[i] : NULL; }
size_t mk_router_provider_count(const mk_router *r) { return r ? r->nproviders : 0; }
mk_provider *mk_router_provider_at(mk_router *r, size_t i) { return r && i < r->nproviders ? r->providers[i] : NULL; }

int mk_router_max_attempts(const mk_model_group *g) { return mk_group_settings_of(g)->retry.max_attempts; }
struct mk_timeouts mk_router_timeouts(const mk_model_group *g) { return mk_group_settings_of(g)->timeouts; }

void mk_router_export_metrics(mk_router *r)
{
    if (!r) return;
    for (size_t gi = 0; gi < r->ngroups; gi++) {
        mk_model_group *g = &r->groups[gi];
        for (size_t i = 0; i < g->ndeployments; i++) {
            mk_deployment *d = &g->deployments[i];
            const char *l[] = {d->label};
            mk_metric_set(MK_METRIC_BREAKER_STATE, l, (double)d->breaker);
            mk_metric_set(MK_METRIC_DEPLOYMENT_HEALTHY, l, d->healthy ? 1 : 0);
            mk_metric_set(MK_METRIC_DEPLOYMENT_EWMA_TTFT, l, d->ewma_ttft_us / 1e6);
        }
    }
}
