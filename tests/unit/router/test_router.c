/* Unit tests for mk_router: building from a config, policies, tags, health fallback,
 * circuit breaker, retry budget, backoff, refcount, metrics and active health checks.
 * Time is passed explicitly (now_us); nothing sleeps. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "metrics/mk_metrics.h"
#include "router/mk_router.h"

#define SEC 1000000ull
#define MS 1000ull

/* A hand-built config: up to 4 providers, 2 groups, 8 deployments per group. */
struct fx {
    struct mk_config cfg;
    struct mk_provider_config prov[4];
    struct mk_model_group_config grp[2];
    struct mk_deployment_config dep[2][8];
    mk_router *r;
};

static void setup(void)
{
    mk_log_set_level(MK_LOG_OFF);
    mk_metrics_reset();
}
static void teardown(void) { mk_metrics_reset(); }
TestSuite(router, .init = setup, .fini = teardown);

static void fx_provider(struct fx *f, int i, const char *name, const char *base_url)
{
    struct mk_provider_config *p = &f->prov[i];
    p->name = (char *)name;
    p->type = MK_PROVIDER_OPENAI;
    p->base_url = (char *)base_url;
    p->api_key = "sk-test";
    if ((size_t)i + 1 > f->cfg.nproviders) f->cfg.nproviders = (size_t)i + 1;
}

/* Group 0 with n deployments of models m0..m{n-1} on provider "p0". */
static void fx_init(struct fx *f, enum mk_route_policy policy, size_t n)
{
    memset(f, 0, sizeof *f);
    f->cfg.providers = f->prov;
    f->cfg.model_groups = f->grp;
    fx_provider(f, 0, "p0", "http://127.0.0.1:9/v1");
    static const char *models[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};
    f->grp[0].name = "chat";
    f->grp[0].policy = policy;
    f->grp[0].deployments = f->dep[0];
    f->grp[0].ndeployments = n;
    for (size_t i = 0; i < n; i++) {
        f->dep[0][i].provider = "p0";
        f->dep[0][i].model = (char *)models[i];
        f->dep[0][i].weight = 1;
        f->dep[0][i].priority = (int)i;
    }
    f->cfg.nmodel_groups = 1;
}

static mk_model_group *fx_build(struct fx *f)
{
    int rc = mk_router_new(&f->cfg, &f->r);
    cr_assert_eq(rc, 0, "mk_router_new: %s", mk_strerror(rc));
    mk_model_group *g = mk_router_group(f->r, "chat");
    cr_assert_not_null(g);
    return g;
}

/* Pick and report neutral at once: for policy tests that should not feed the breaker. */
static int pick_once(mk_model_group *g, uint64_t exclude, uint64_t now)
{
    mk_deployment *d = mk_router_pick(g, NULL, 0, exclude, now);
    if (!d) return -1;
    mk_router_report_neutral(d, now);
    return d->index;
}

/* ---- building ---------------------------------------------------------------- */

Test(router, build_labels_prices_tags_lookup)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 2);
    fx_provider(&f, 1, "yc", "http://127.0.0.1:9/v1");
    char *ptags[] = {"residency: ru", " tier:gold "};
    f.prov[0].tags = ptags;
    f.prov[0].ntags = 2;
    f.prov[0].price = (struct mk_price){1.0, 2.0};
    char *dtags[] = {"gpu:a100"};
    f.dep[0][1].provider = "yc";
    f.dep[0][1].tags = dtags;
    f.dep[0][1].ntags = 1;
    f.dep[0][1].has_price = true;
    f.dep[0][1].price = (struct mk_price){0.5, 0.25};
    f.prov[1].price = (struct mk_price){9, 9};
    char *aliases[] = {"gpt-4o", "default"};
    f.grp[0].aliases = aliases;
    f.grp[0].naliases = 2;
    /* Second group whose name collides with an alias of the first: names win. */
    f.grp[1].name = "default";
    f.grp[1].deployments = f.dep[1];
    f.grp[1].ndeployments = 1;
    f.dep[1][0].provider = "p0";
    f.dep[1][0].model = "x";
    f.cfg.nmodel_groups = 2;

    mk_model_group *g = fx_build(&f);
    cr_assert_eq(mk_router_group(f.r, "gpt-4o"), g);
    cr_assert_eq(mk_router_group(f.r, "default"), mk_router_group_at(f.r, 1));
    cr_assert_null(mk_router_group(f.r, "nope"));
    cr_assert_null(mk_router_group(f.r, NULL));
    cr_assert_eq(mk_router_group_count(f.r), 2);
    cr_assert_null(mk_router_group_at(f.r, 2));
    cr_assert_eq(mk_router_provider_count(f.r), 2);
    cr_assert_null(mk_router_provider_at(f.r, 2));

    cr_assert_eq(g->ndeployments, 2);
    mk_deployment *d0 = &g->deployments[0], *d1 = &g->deployments[1];
    cr_assert_str_eq(d0->label, "p0/m0");
    cr_assert_str_eq(d1->label, "yc/m1");
    cr_assert_eq(d0->provider, mk_router_provider_at(f.r, 0));
    cr_assert_eq(d1->provider, mk_router_provider_at(f.r, 1));
    cr_assert_eq(d0->provider->config, &f.prov[0]);
    /* Both deployments of p0 (across groups) share one provider instance. */
    cr_assert_eq(mk_router_group_at(f.r, 1)->deployments[0].provider, d0->provider);
    cr_assert_float_eq(d0->price.input_per_1k, 1.0, 1e-12);
    cr_assert_float_eq(d0->price.output_per_1k, 2.0, 1e-12);
    cr_assert_float_eq(d1->price.input_per_1k, 0.5, 1e-12);
    cr_assert_float_eq(d1->price.output_per_1k, 0.25, 1e-12);
    cr_assert_eq(d0->ntags, 2);
    cr_assert_str_eq(d0->tags[0], "residency:ru");
    cr_assert_str_eq(d0->tags[1], "tier:gold");
    cr_assert_eq(d1->ntags, 1);
    cr_assert_str_eq(d1->tags[0], "gpu:a100");
    cr_assert(d0->healthy);
    cr_assert_eq(d0->breaker, MK_BREAKER_CLOSED);
    cr_assert_eq(d1->index, 1);
    cr_assert_eq(d0->group, g);
    cr_assert_eq(g->router, f.r);
    mk_router_unref(f.r);
}

Test(router, build_rejects_bad_config)
{
    struct fx f;
    mk_router *r = (mk_router *)&f; /* must be reset to NULL on failure */
    fx_init(&f, MK_POLICY_PRIORITY, 2);
    f.dep[0][1].provider = "missing";
    cr_assert_eq(mk_router_new(&f.cfg, &r), MK_ECONFIG);
    cr_assert_null(r);

    fx_init(&f, MK_POLICY_PRIORITY, 1);
    f.dep[0][0].model = NULL;
    cr_assert_eq(mk_router_new(&f.cfg, &r), MK_ECONFIG);

    fx_init(&f, MK_POLICY_PRIORITY, 1);
    f.prov[0].type = (enum mk_provider_type)99;
    cr_assert_eq(mk_router_new(&f.cfg, &r), MK_ECONFIG);

    /* More deployments than the 64-bit exclude mask can name. */
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    struct mk_deployment_config many[65];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 65; i++) {
        many[i].provider = "p0";
        many[i].model = "m";
    }
    f.grp[0].deployments = many;
    f.grp[0].ndeployments = 65;
    cr_assert_eq(mk_router_new(&f.cfg, &r), MK_ECONFIG);

    cr_assert_eq(mk_router_new(NULL, &r), MK_EINVAL);
    cr_assert_eq(mk_router_new(&f.cfg, NULL), MK_EINVAL);
    mk_router_unref(NULL);
    mk_router_ref(NULL);
}

Test(router, refcount_keeps_router_alive)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    mk_model_group *g = fx_build(&f);
    mk_router_ref(f.r);
    mk_router_ref(f.r);
    mk_router_unref(f.r);
    mk_router_unref(f.r);
    /* One reference left: still usable (ASan would catch a premature free). */
    mk_deployment *d = mk_router_pick(g, NULL, 0, 0, SEC);
    cr_assert_not_null(d);
    mk_router_report_success(d, 1000, SEC);
    cr_assert_str_eq(d->label, "p0/m0");
    mk_router_unref(f.r);
}

Test(router, defaults_apply_for_zero_fields)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    f.grp[0].timeouts.first_token_ms = 1234;
    mk_model_group *g = fx_build(&f);
    cr_assert_eq(mk_router_max_attempts(g), 3);
    struct mk_timeouts t = mk_router_timeouts(g);
    cr_assert_eq(t.first_token_ms, 1234);
    cr_assert_eq(t.connect_ms, 5000);
    cr_assert_eq(t.total_ms, 600000);
    /* Default breaker: 5 consecutive failures open it, 4 do not. */
    mk_deployment *d = &g->deployments[0];
    for (int i = 0; i < 4; i++) mk_router_report_failure(d, MK_EUPSTREAM, SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_CLOSED);
    mk_router_report_failure(d, MK_EUPSTREAM, SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    /* Default open time 5 s. */
    cr_assert_null(mk_router_pick(g, NULL, 0, 0, SEC + 5 * SEC - 1));
    cr_assert_not_null(mk_router_pick(g, NULL, 0, 0, SEC + 5 * SEC));
    mk_router_unref(f.r);

    fx_init(&f, MK_POLICY_PRIORITY, 1);
    f.grp[0].retry.max_attempts = 100;
    g = fx_build(&f);
    cr_assert_eq(mk_router_max_attempts(g), 8); /* MK_MAX_ATTEMPTS */
    mk_router_unref(f.r);
}

/* ---- policies ---------------------------------------------------------------- */

Test(router, priority_order_and_fallback)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 3);
    f.dep[0][0].priority = 5;
    f.dep[0][1].priority = 1;
    f.dep[0][2].priority = 1; /* tie with 1: position decides */
    f.grp[0].breaker.consecutive_failures = 1;
    mk_model_group *g = fx_build(&f);
    cr_assert_eq(pick_once(g, 0, SEC), 1);
    cr_assert_eq(pick_once(g, 0, SEC), 1);
    cr_assert_eq(pick_once(g, 1u << 1, SEC), 2);          /* first choice already tried */
    cr_assert_eq(pick_once(g, (1u << 1) | (1u << 2), SEC), 0);
    cr_assert_eq(pick_once(g, 7, SEC), -1);               /* everything excluded */
    /* Breaker open on the first choice: the next one serves. */
    mk_deployment *d = mk_router_pick(g, NULL, 0, 0, SEC);
    cr_assert_eq(d->index, 1);
    mk_router_report_failure(d, MK_EUPSTREAM, SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    cr_assert_eq(pick_once(g, 0, SEC), 2);
    mk_router_unref(f.r);
}

Test(router, weighted_distribution)
{
    struct fx f;
    fx_init(&f, MK_POLICY_WEIGHTED, 3);
    f.dep[0][0].weight = 3;
    f.dep[0][1].weight = 7;
    f.dep[0][2].weight = 0; /* standby */
    mk_model_group *g = fx_build(&f);
    int counts[3] = {0};
    for (int i = 0; i < 10000; i++) {
        int k = pick_once(g, 0, SEC);
        cr_assert(k >= 0);
        counts[k]++;
    }
    /* Expected 3000 / 7000; the standard deviation is ~46 picks, so +-500 never flakes. */
    cr_assert(counts[0] >= 2500 && counts[0] <= 3500, "weight 3 of 10 got %d of 10000", counts[0]);
    cr_assert(counts[1] >= 6500 && counts[1] <= 7500, "weight 7 of 10 got %d of 10000", counts[1]);
    cr_assert_eq(counts[2], 0, "weight 0 picked %d times while others were eligible", counts[2]);
    /* With the weighted ones excluded, the standby serves. */
    cr_assert_eq(pick_once(g, 3, SEC), 2);
    mk_router_unref(f.r);
}

Test(router, weighted_all_zero_is_uniform)
{
    struct fx f;
    fx_init(&f, MK_POLICY_WEIGHTED, 2);
    f.dep[0][0].weight = 0;
    f.dep[0][1].weight = 0;
    mk_model_group *g = fx_build(&f);
    int counts[2] = {0};
    for (int i = 0; i < 4000; i++) counts[pick_once(g, 0, SEC)]++;
    cr_assert(counts[0] >= 1600 && counts[0] <= 2400, "got %d of 4000", counts[0]);
    mk_router_unref(f.r);
}

Test(router, round_robin_cycles)
{
    struct fx f;
    fx_init(&f, MK_POLICY_ROUND_ROBIN, 3);
    mk_model_group *g = fx_build(&f);
    int want[] = {0, 1, 2, 0, 1, 2, 0};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) cr_assert_eq(pick_once(g, 0, SEC), want[i]);
    /* Skipping an excluded one keeps the cycle over the rest. */
    int want2[] = {2, 0, 2, 0};
    for (size_t i = 0; i < sizeof want2 / sizeof want2[0]; i++) cr_assert_eq(pick_once(g, 1u << 1, SEC), want2[i]);
    mk_router_unref(f.r);
}

Test(router, least_latency_follows_ttft)
{
    struct fx f;
    fx_init(&f, MK_POLICY_LEAST_LATENCY, 2);
    mk_model_group *g = fx_build(&f);
    mk_deployment *d0 = &g->deployments[0], *d1 = &g->deployments[1];

    /* Unmeasured deployments are tried first; one being measured is not piled on. */
    mk_deployment *a = mk_router_pick(g, NULL, 0, 0, SEC);
    mk_deployment *b = mk_router_pick(g, NULL, 0, 0, SEC);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b, "the second pick should measure the other deployment");
    mk_router_report_success(d0, 200 * MS, SEC);
    mk_router_report_success(d1, 50 * MS, SEC);
    cr_assert_float_eq(d0->ewma_ttft_us, 200e3, 1e-6);
    cr_assert_float_eq(d1->ewma_ttft_us, 50e3, 1e-6);
    for (int i = 0; i < 10; i++) cr_assert_eq(pick_once(g, 0, SEC), 1);

    /* d1 slows down: the EWMA (alpha 0.3) crosses d0's after a few slow replies. */
    mk_router_report_success(d1, 500 * MS, SEC);
    cr_assert_float_eq(d1->ewma_ttft_us, 0.3 * 500e3 + 0.7 * 50e3, 1e-6);
    cr_assert_eq(pick_once(g, 0, SEC), 1); /* 185 ms < 200 ms */
    mk_router_report_success(d1, 500 * MS, SEC);
    cr_assert_eq(pick_once(g, 0, SEC), 0); /* 279.5 ms > 200 ms */

    /* Excluding the fastest falls back to the other. */
    cr_assert_eq(pick_once(g, 1u << 0, SEC), 1);
    mk_router_unref(f.r);
}

Test(router, least_latency_ties_are_random)
{
    struct fx f;
    fx_init(&f, MK_POLICY_LEAST_LATENCY, 2);
    mk_model_group *g = fx_build(&f);
    mk_router_report_success(&g->deployments[0], 100 * MS, SEC);
    mk_router_report_success(&g->deployments[1], 100 * MS, SEC);
    int counts[2] = {0};
    for (int i = 0; i < 2000; i++) counts[pick_once(g, 0, SEC)]++;
    cr_assert(counts[0] > 700 && counts[1] > 700, "ties not shared: %d/%d", counts[0], counts[1]);
    mk_router_unref(f.r);
}

Test(router, least_cost)
{
    struct fx f;
    fx_init(&f, MK_POLICY_LEAST_COST, 3);
    f.prov[0].price = (struct mk_price){1.0, 1.0};   /* d0: 2.0 */
    f.dep[0][1].has_price = true;
    f.dep[0][1].price = (struct mk_price){0.5, 0.5}; /* d1: 1.0 */
    f.dep[0][2].has_price = true;
    f.dep[0][2].price = (struct mk_price){0.2, 0.8}; /* d2: 1.0, tie with d1 */
    f.dep[0][1].priority = 4;
    f.dep[0][2].priority = 2;                        /* d2 wins the tie */
    mk_model_group *g = fx_build(&f);
    cr_assert_eq(pick_once(g, 0, SEC), 2);
    cr_assert_eq(pick_once(g, 1u << 2, SEC), 1);
    cr_assert_eq(pick_once(g, (1u << 2) | (1u << 1), SEC), 0);
    mk_router_unref(f.r);
}

Test(router, tags_filter_and_normalise)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 3);
    fx_provider(&f, 1, "ru", "http://127.0.0.1:9/v1");
    char *rutags[] = {"residency:ru"};
    f.prov[1].tags = rutags;
    f.prov[1].ntags = 1;
    char *d2tags[] = {"gpu : h100"};
    f.dep[0][1].provider = "ru";
    f.dep[0][2].provider = "ru";
    f.dep[0][2].tags = d2tags;
    f.dep[0][2].ntags = 1;
    mk_model_group *g = fx_build(&f);

    const char *req1[] = {"residency: ru"};
    mk_deployment *d = mk_router_pick(g, req1, 1, 0, SEC);
    cr_assert_not_null(d);
    cr_assert_eq(d->index, 1);
    mk_router_report_neutral(d, SEC);
    const char *req2[] = {" residency : ru ", "gpu:h100"};
    d = mk_router_pick(g, req2, 2, 0, SEC);
    cr_assert_not_null(d);
    cr_assert_eq(d->index, 2);
    mk_router_report_neutral(d, SEC);
    const char *req3[] = {"residency:RU"}; /* case matters */
    cr_assert_null(mk_router_pick(g, req3, 1, 0, SEC));
    const char *req4[] = {"residency:r"};  /* no prefix matching */
    cr_assert_null(mk_router_pick(g, req4, 1, 0, SEC));
    cr_assert_null(mk_router_pick(g, NULL, 1, 0, SEC)); /* bad arguments */
    mk_router_unref(f.r);

    /* The group's own compliance requirement applies to every pick. */
    fx_init(&f, MK_POLICY_PRIORITY, 2);
    fx_provider(&f, 1, "ru", "http://127.0.0.1:9/v1");
    f.prov[1].tags = rutags;
    f.prov[1].ntags = 1;
    f.dep[0][1].provider = "ru";
    char *req[] = {"residency:ru"};
    f.grp[0].require_tags = req;
    f.grp[0].nrequire_tags = 1;
    g = fx_build(&f);
    for (int i = 0; i < 3; i++) cr_assert_eq(pick_once(g, 0, SEC), 1);
    cr_assert_eq(pick_once(g, 1u << 1, SEC), -1);
    mk_router_unref(f.r);
}

Test(router, unhealthy_avoided_with_fallback)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 2);
    f.grp[0].breaker.consecutive_failures = 1;
    mk_model_group *g = fx_build(&f);
    g->deployments[0].healthy = false;
    cr_assert_eq(pick_once(g, 0, SEC), 1);
    /* None healthy: fall back to the unhealthy ones rather than fail the group. */
    g->deployments[1].healthy = false;
    cr_assert_eq(pick_once(g, 0, SEC), 0);
    /* But never past an open breaker. */
    mk_deployment *d = mk_router_pick(g, NULL, 0, 0, SEC);
    mk_router_report_failure(d, MK_EUPSTREAM, SEC);
    cr_assert_eq(pick_once(g, 0, SEC), 1);
    mk_router_unref(f.r);
}

Test(router, pick_tracks_inflight)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    mk_model_group *g = fx_build(&f);
    mk_deployment *a = mk_router_pick(g, NULL, 0, 0, SEC);
    mk_deployment *b = mk_router_pick(g, NULL, 0, 0, SEC);
    cr_assert_eq(a->inflight, 2);
    mk_router_report_success(a, 10, SEC);
    mk_router_report_neutral(b, SEC);
    cr_assert_eq(a->inflight, 0);
    mk_router_report_neutral(a, SEC); /* an extra report cannot underflow */
    cr_assert_eq(a->inflight, 0);
    mk_router_report_success(NULL, 1, SEC);
    mk_router_report_failure(NULL, MK_EUPSTREAM, SEC);
    mk_router_report_neutral(NULL, SEC);
    cr_assert_null(mk_router_pick(NULL, NULL, 0, 0, SEC));
    mk_router_unref(f.r);
}

/* ---- breaker ------------------------------------------------------------------ */

static mk_model_group *breaker_group(struct fx *f, size_t n)
{
    fx_init(f, MK_POLICY_PRIORITY, n);
    f->grp[0].breaker.consecutive_failures = 3;
    f->grp[0].breaker.error_rate = 0.5;
    f->grp[0].breaker.min_requests = 10;
    f->grp[0].breaker.window_ms = 10000;
    f->grp[0].breaker.open_ms = 2000;
    f->grp[0].breaker.half_open_probes = 2;
    return fx_build(f);
}

static void fail_n(mk_deployment *d, int n, uint64_t now)
{
    for (int i = 0; i < n; i++) mk_router_report_failure(d, MK_EUPSTREAM, now);
}

Test(router, breaker_opens_on_consecutive_failures)
{
    struct fx f;
    mk_model_group *g = breaker_group(&f, 2);
    mk_deployment *d = &g->deployments[0];
    const char *l[] = {"p0/m0"};
    cr_assert_eq(mk_metric_value(MK_METRIC_BREAKER_STATE, l), 0);
    fail_n(d, 2, SEC);
    mk_router_report_success(d, 1000, SEC); /* a success breaks the run */
    fail_n(d, 2, SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_CLOSED);
    fail_n(d, 1, 2 * SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    cr_assert_eq(d->opened_at_us, 2 * SEC);
    cr_assert_eq(mk_metric_value(MK_METRIC_BREAKER_STATE, l), 1);
    cr_assert_eq(pick_once(g, 0, 2 * SEC), 1);
    /* Timeouts and rate limits count as failures; the client's own errors do not. */
    mk_deployment *d1 = &g->deployments[1];
    mk_router_report_failure(d1, MK_EUPSTREAM_CLIENT, 2 * SEC);
    mk_router_report_failure(d1, MK_ECANCELLED, 2 * SEC);
    mk_router_report_failure(d1, MK_EUPSTREAM_CLIENT, 2 * SEC);
    cr_assert_eq(d1->consecutive_failures, 0);
    cr_assert_eq(d1->breaker, MK_BREAKER_CLOSED);
    mk_router_report_failure(d1, MK_EUPSTREAM_TIMEOUT, 2 * SEC);
    mk_router_report_failure(d1, MK_EUPSTREAM_RATE, 2 * SEC);
    cr_assert_eq(d1->consecutive_failures, 2);
    mk_router_unref(f.r);
}

Test(router, breaker_opens_on_error_rate)
{
    struct fx f;
    mk_model_group *g = breaker_group(&f, 1);
    mk_deployment *d = &g->deployments[0];
    /* S F F S F F S F F: never 3 in a row; 6/9 failures but below min_requests (10). */
    uint64_t now = SEC;
    for (int i = 0; i < 3; i++) {
        mk_router_report_success(d, 1000, now);
        fail_n(d, 2, now);
    }
    cr_assert_eq(d->window_requests, 9);
    cr_assert_eq(d->breaker, MK_BREAKER_CLOSED);
    mk_router_report_success(d, 1000, now); /* 10 requests, 6 failures: not yet judged on a success */
    cr_assert_eq(d->breaker, MK_BREAKER_CLOSED);
    fail_n(d, 1, now);                      /* 11 requests, 7 failures: 0.64 > 0.5 */
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    mk_router_unref(f.r);
}

Test(router, breaker_rate_exactly_at_threshold_stays_closed)
{
    struct fx f;
    mk_model_group *g = breaker_group(&f, 1);
    mk_deployment *d = &g->deployments[0];
    for (int i = 0; i < 5; i++) {
        mk_router_report_success(d, 1000, SEC);
        fail_n(d, 1, SEC);
    }
    /* 10 requests, 5 failures: 0.5 is not > 0.5. */
    cr_assert_eq(d->window_requests, 10);
    cr_assert_eq(d->breaker, MK_BREAKER_CLOSED);
    mk_router_unref(f.r);
}

Test(router, breaker_window_resets_counts)
{
    struct fx f;
    mk_model_group *g = breaker_group(&f, 1);
    mk_deployment *d = &g->deployments[0];
    for (int i = 0; i < 4; i++) {
        mk_router_report_success(d, 1000, SEC);
        mk_router_report_success(d, 1000, SEC);
        fail_n(d, 2, SEC);
    }
    cr_assert_eq(d->window_requests, 16);
    cr_assert_eq(d->window_failures, 8);
    /* 11 s later the 10 s window has expired: counting restarts. */
    mk_router_report_success(d, 1000, 12 * SEC);
    cr_assert_eq(d->window_requests, 1);
    cr_assert_eq(d->window_failures, 0);
    for (int i = 0; i < 4; i++) {
        mk_router_report_success(d, 1000, 12 * SEC);
        fail_n(d, 2, 12 * SEC);
    }
    /* In the new window the 10th request is the 6th failure: 0.6 > 0.5 opens it. */
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    mk_router_unref(f.r);
}

Test(router, breaker_half_open_single_probe_then_close)
{
    struct fx f;
    mk_model_group *g = breaker_group(&f, 1);
    mk_deployment *d = &g->deployments[0];
    fail_n(d, 3, 10 * SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    const char *l[] = {"p0/m0"};

    /* Still open just before open_ms (2 s) has passed. */
    cr_assert_null(mk_router_pick(g, NULL, 0, 0, 12 * SEC - 1));
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    /* At open_ms the next pick moves it to half-open and becomes the probe. */
    mk_deployment *p = mk_router_pick(g, NULL, 0, 0, 12 * SEC);
    cr_assert_eq(p, d);
    cr_assert_eq(d->breaker, MK_BREAKER_HALF_OPEN);
    cr_assert(d->probe_in_flight);
    cr_assert_eq(mk_metric_value(MK_METRIC_BREAKER_STATE, l), 2);
    /* Exactly one probe at a time. */
    cr_assert_null(mk_router_pick(g, NULL, 0, 0, 12 * SEC));
    mk_router_report_success(d, 1000, 12 * SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_HALF_OPEN);
    cr_assert_eq(d->half_open_successes, 1);
    cr_assert(!d->probe_in_flight);
    /* Second probe closes it (half_open_probes = 2). */
    p = mk_router_pick(g, NULL, 0, 0, 13 * SEC);
    cr_assert_eq(p, d);
    cr_assert_null(mk_router_pick(g, NULL, 0, 0, 13 * SEC));
    mk_router_report_success(d, 1000, 13 * SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_CLOSED);
    cr_assert_eq(mk_metric_value(MK_METRIC_BREAKER_STATE, l), 0);
    cr_assert_eq(d->consecutive_failures, 0);
    /* Closed: any number of calls at once. */
    cr_assert_not_null(mk_router_pick(g, NULL, 0, 0, 13 * SEC));
    cr_assert_not_null(mk_router_pick(g, NULL, 0, 0, 13 * SEC));
    mk_router_unref(f.r);
}

Test(router, breaker_probe_failure_reopens)
{
    struct fx f;
    mk_model_group *g = breaker_group(&f, 1);
    mk_deployment *d = &g->deployments[0];
    fail_n(d, 3, 10 * SEC);
    mk_deployment *p = mk_router_pick(g, NULL, 0, 0, 12 * SEC);
    cr_assert_eq(p, d);
    mk_router_report_success(d, 1000, 12 * SEC);
    p = mk_router_pick(g, NULL, 0, 0, 12 * SEC + 5);
    cr_assert_eq(p, d);
    mk_router_report_failure(d, MK_EUPSTREAM, 12 * SEC + 10);
    cr_assert_eq(d->breaker, MK_BREAKER_OPEN);
    cr_assert_eq(d->opened_at_us, 12 * SEC + 10);
    cr_assert_eq(d->half_open_successes, 0);
    /* A fresh open period from the probe failure. */
    cr_assert_null(mk_router_pick(g, NULL, 0, 0, 14 * SEC));
    cr_assert_not_null(mk_router_pick(g, NULL, 0, 0, 14 * SEC + 10));
    cr_assert_eq(d->breaker, MK_BREAKER_HALF_OPEN);
    mk_router_unref(f.r);
}

Test(router, breaker_neutral_releases_probe)
{
    struct fx f;
    mk_model_group *g = breaker_group(&f, 1);
    mk_deployment *d = &g->deployments[0];
    fail_n(d, 3, SEC);
    cr_assert_eq(mk_router_pick(g, NULL, 0, 0, 3 * SEC), d);
    cr_assert_null(mk_router_pick(g, NULL, 0, 0, 3 * SEC));
    mk_router_report_neutral(d, 3 * SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_HALF_OPEN);
    cr_assert_eq(d->half_open_successes, 0);
    cr_assert(!d->probe_in_flight);
    cr_assert_eq(mk_router_pick(g, NULL, 0, 0, 3 * SEC), d);
    /* A client error during the probe is neutral too. */
    mk_router_report_failure(d, MK_EUPSTREAM_CLIENT, 3 * SEC);
    cr_assert_eq(d->breaker, MK_BREAKER_HALF_OPEN);
    cr_assert(!d->probe_in_flight);
    mk_router_unref(f.r);
}

Test(router, breaker_logs_state_changes)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    cr_assert_not_null(mem);
    mk_log_set_stream(mem);
    mk_log_set_level(MK_LOG_INFO);
    struct fx f;
    mk_model_group *g = breaker_group(&f, 1);
    fail_n(&g->deployments[0], 3, SEC);
    mk_router_unref(f.r);
    mk_log_set_level(MK_LOG_OFF);
    mk_log_set_stream(NULL);
    fclose(mem);
    cr_assert_not_null(strstr(text, "\"event\":\"breaker_state\""), "log: %s", text);
    cr_assert_not_null(strstr(text, "\"to\":\"open\""), "log: %s", text);
    cr_assert_not_null(strstr(text, "\"reason\":\"consecutive_failures\""), "log: %s", text);
    cr_assert_not_null(strstr(text, "\"deployment\":\"p0/m0\""), "log: %s", text);
    free(text);
}

/* ---- retry budget and backoff ------------------------------------------------- */

Test(router, retry_budget_exhaustion_and_refill)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    f.grp[0].retry.budget_ratio = 0.25;
    f.grp[0].retry.budget_min_per_s = 1; /* cap = max(10, 10 * 1) = 10 */
    mk_model_group *g = fx_build(&f);
    uint64_t t = 100 * SEC;
    /* Starts with one second's allowance: 1 token. */
    cr_assert(mk_router_take_retry(g, t));
    cr_assert(!mk_router_take_retry(g, t));
    /* Requests earn 0.25 each: 3 are not enough, 4 are. */
    for (int i = 0; i < 3; i++) mk_router_note_request(g, t);
    cr_assert(!mk_router_take_retry(g, t));
    mk_router_note_request(g, t);
    cr_assert(mk_router_take_retry(g, t));
    cr_assert(!mk_router_take_retry(g, t));
    /* Time earns min_per_s per second. */
    cr_assert(!mk_router_take_retry(g, t + SEC / 2));
    cr_assert(mk_router_take_retry(g, t + SEC));
    cr_assert(!mk_router_take_retry(g, t + SEC));
    /* A clock going backwards earns nothing. */
    cr_assert(!mk_router_take_retry(g, t));
    /* A long quiet spell fills up to the cap only. */
    uint64_t later = t + 1000 * SEC;
    int n = 0;
    while (mk_router_take_retry(g, later)) n++;
    cr_assert_eq(n, 10);
    for (int i = 0; i < 1000; i++) mk_router_note_request(g, later);
    n = 0;
    while (mk_router_take_retry(g, later)) n++;
    cr_assert_eq(n, 10);
    cr_assert(!mk_router_take_retry(NULL, later));
    mk_router_note_request(NULL, later);
    mk_router_unref(f.r);
}

Test(router, retry_budget_defaults)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    mk_model_group *g = fx_build(&f);
    /* Defaults: 10/s to begin with, cap 100, ratio 0.2. */
    uint64_t t = SEC;
    int n = 0;
    while (mk_router_take_retry(g, t)) n++;
    cr_assert_eq(n, 10);
    for (int i = 0; i < 5; i++) mk_router_note_request(g, t);
    cr_assert(mk_router_take_retry(g, t));
    cr_assert(!mk_router_take_retry(g, t));
    n = 0;
    while (mk_router_take_retry(g, t + 3600 * SEC)) n++;
    cr_assert_eq(n, 100);
    mk_router_unref(f.r);
}

Test(router, backoff_bounds_and_retry_after)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    f.grp[0].retry.backoff_base_ms = 100;
    f.grp[0].retry.backoff_max_ms = 1000;
    mk_model_group *g = fx_build(&f);
    struct { int attempt; uint32_t bound; } cases[] = {{0, 100}, {1, 100}, {2, 200}, {3, 400}, {4, 800},
                                                       {5, 1000}, {40, 1000}, {1 << 30, 1000}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t maxseen = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t b = mk_router_backoff_ms(g, cases[c].attempt, 0);
            cr_assert_leq(b, cases[c].bound, "attempt %d gave %u", cases[c].attempt, b);
            if (b > maxseen) maxseen = b;
        }
        /* Full jitter spreads over the whole range: chance of never exceeding half in
         * 2000 draws is 2^-2000. */
        cr_assert_gt(maxseen, cases[c].bound / 2, "attempt %d never above half", cases[c].attempt);
    }
    /* Retry-After wins when larger and within 10 x backoff_max_ms. */
    cr_assert_eq(mk_router_backoff_ms(g, 1, 5000), 5000);
    cr_assert_eq(mk_router_backoff_ms(g, 1, 10000), 10000);
    cr_assert_leq(mk_router_backoff_ms(g, 1, 10001), 100);
    cr_assert_leq(mk_router_backoff_ms(g, 1, 50), 100);
    cr_assert_eq(mk_router_backoff_ms(NULL, 1, 0), 0);
    mk_router_unref(f.r);
}

Test(router, backoff_defaults)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    mk_model_group *g = fx_build(&f);
    for (int i = 0; i < 500; i++) {
        cr_assert_leq(mk_router_backoff_ms(g, 1, 0), 25);
        cr_assert_leq(mk_router_backoff_ms(g, 10, 0), 1000);
    }
    mk_router_unref(f.r);
}

/* ---- metrics -------------------------------------------------------------------- */

Test(router, export_metrics)
{
    struct fx f;
    fx_init(&f, MK_POLICY_PRIORITY, 2);
    mk_model_group *g = fx_build(&f);
    const char *l0[] = {"p0/m0"};
    const char *l1[] = {"p0/m1"};
    /* Published at build so dashboards see every deployment from the start. */
    cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_HEALTHY, l0), 1);
    cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_HEALTHY, l1), 1);
    mk_router_report_success(&g->deployments[0], 250 * MS, SEC);
    g->deployments[1].healthy = false;
    mk_router_export_metrics(f.r);
    cr_assert_float_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_EWMA_TTFT, l0), 0.25, 1e-12);
    cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_HEALTHY, l1), 0);
    cr_assert_eq(mk_metric_value(MK_METRIC_BREAKER_STATE, l1), 0);
    mk_router_export_metrics(NULL);
    mk_router_unref(f.r);
}

/* ---- active health checks ------------------------------------------------------- */

/* A tiny HTTP server on the test's own loop: answers every request with `status`
 * and closes the connection; remembers the last request head. */
struct hsrv {
    uv_tcp_t tcp;
    int port;
    int status;
    int requests;
    char last[2048];
};

struct hconn {
    uv_tcp_t tcp;
    struct hsrv *srv;
    char buf[2048];
    size_t len;
    uv_write_t wr;
    char reply[256];
    bool answered;
};

static void hconn_closed(uv_handle_t *h) { free(h->data); }

static void hconn_written(uv_write_t *w, int status)
{
    (void)status;
    struct hconn *c = w->data;
    uv_close((uv_handle_t *)&c->tcp, hconn_closed);
}

static void hconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct hconn *c = h->data;
    size_t room = sizeof c->buf - 1 - c->len;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(room ? room : 0));
}

static void hconn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct hconn *c = s->data;
    if (n < 0 || (n == 0 && c->len >= sizeof c->buf - 1)) {
        if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, hconn_closed);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (c->answered || !strstr(c->buf, "\r\n\r\n")) return;
    c->answered = true;
    uv_read_stop(s);
    c->srv->requests++;
    snprintf(c->srv->last, sizeof c->srv->last, "%s", c->buf);
    int len = snprintf(c->reply, sizeof c->reply,
                       "HTTP/1.1 %d X\r\nContent-Length: 2\r\nContent-Type: application/json\r\n"
                       "Connection: close\r\n\r\n{}",
                       c->srv->status);
    uv_buf_t out = uv_buf_init(c->reply, (unsigned)len);
    c->wr.data = c;
    uv_write(&c->wr, s, &out, 1, hconn_written);
}

static void hsrv_accept(uv_stream_t *server, int status)
{
    if (status < 0) return;
    struct hsrv *srv = server->data;
    struct hconn *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->srv = srv;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, hconn_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, hconn_alloc, hconn_read);
}

static void hsrv_start(uv_loop_t *loop, struct hsrv *srv)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    cr_assert_eq(uv_tcp_init(loop, &srv->tcp), 0);
    srv->tcp.data = srv;
    cr_assert_eq(uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&addr, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&srv->tcp, 16, hsrv_accept), 0);
    struct sockaddr_storage ss;
    int nl = sizeof ss;
    cr_assert_eq(uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &nl), 0);
    srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Runs the loop until cond(arg) holds; fails the test after 10 s (a hang guard, not a
 * timing assertion). */
struct waiter {
    uv_timer_t poll, guard;
    bool (*cond)(void *);
    void *arg;
    bool met, expired;
};

static void waiter_poll(uv_timer_t *t)
{
    struct waiter *w = t->data;
    if (w->cond(w->arg)) {
        w->met = true;
        uv_stop(t->loop);
    }
}

static void waiter_guard(uv_timer_t *t)
{
    struct waiter *w = t->data;
    w->expired = true;
    uv_stop(t->loop);
}

static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg)
{
    struct waiter w = {.cond = cond, .arg = arg};
    uv_timer_init(loop, &w.poll);
    uv_timer_init(loop, &w.guard);
    w.poll.data = w.guard.data = &w;
    uv_timer_start(&w.poll, waiter_poll, 2, 2);
    uv_timer_start(&w.guard, waiter_guard, 10000, 0);
    while (!w.met && !w.expired) uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.poll, NULL);
    uv_close((uv_handle_t *)&w.guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* let the closes finish before w goes out of scope */
    return w.met;
}

struct hstate {
    mk_model_group *g;
    struct hsrv *srv;
    int min_requests;
    bool want_healthy;
};

static bool all_health_is(void *arg)
{
    struct hstate *s = arg;
    if (s->srv && s->srv->requests < s->min_requests) return false;
    for (size_t i = 0; i < s->g->ndeployments; i++)
        if (s->g->deployments[i].healthy != s->want_healthy) return false;
    return true;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0, "handles left open on the loop");
}

static void health_fx(struct fx *f, char *base_url)
{
    fx_init(f, MK_POLICY_PRIORITY, 2);
    f->prov[0].base_url = base_url;
    f->grp[0].health.enabled = true;
    f->grp[0].health.interval_ms = 20;
    f->grp[0].health.timeout_ms = 2000;
}

Test(router, health_check_marks_unhealthy_then_healthy)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    struct hsrv srv = {.status = 503};
    hsrv_start(&loop, &srv);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/", srv.port); /* trailing slash on purpose */
    struct fx f;
    health_fx(&f, url);
    char *extra[] = {"X-Tenant: acme"};
    f.prov[0].headers = extra;
    f.prov[0].nheaders = 1;
    mk_model_group *g = fx_build(&f);
    mk_http_client *client = NULL;
    cr_assert_eq(mk_http_client_new(&loop, &client), 0);
    cr_assert_eq(mk_router_start_health(f.r, &loop, client), 0);
    cr_assert_eq(mk_router_start_health(f.r, &loop, client), MK_EINVAL); /* already running */

    struct hstate st = {.g = g, .srv = &srv, .min_requests = 1, .want_healthy = false};
    cr_assert(run_until(&loop, all_health_is, &st), "deployments never marked unhealthy on 503");
    cr_assert_eq(strncmp(srv.last, "GET /v1/models HTTP/1.1\r\n", 25), 0, "request: %s", srv.last);
    cr_assert_not_null(strstr(srv.last, "Authorization: Bearer sk-test\r\n"), "request: %s", srv.last);
    cr_assert_not_null(strstr(srv.last, "X-Tenant: acme\r\n"), "request: %s", srv.last);
    const char *l0[] = {"p0/m0"};
    cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_HEALTHY, l0), 0);
    /* Unhealthy everywhere: the pick falls back rather than failing the group. */
    cr_assert_eq(pick_once(g, 0, SEC), 0);

    srv.status = 200;
    st.want_healthy = true;
    st.min_requests = srv.requests + 1;
    cr_assert(run_until(&loop, all_health_is, &st), "deployments never healthy again on 200");
    cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_HEALTHY, l0), 1);

    /* Health checks keep running on the interval. */
    st.min_requests = srv.requests + 2;
    cr_assert(run_until(&loop, all_health_is, &st));

    mk_router_unref(f.r); /* stops the checks; the loop then frees their timer */
    mk_http_client_free(client);
    uv_close((uv_handle_t *)&srv.tcp, NULL);
    loop_finish(&loop);
}

Test(router, health_check_connection_refused_is_unhealthy)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    /* Take a free port, then close it so nothing listens there. */
    struct hsrv srv = {.status = 200};
    hsrv_start(&loop, &srv);
    int port = srv.port;
    uv_close((uv_handle_t *)&srv.tcp, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
    struct fx f;
    health_fx(&f, url);
    mk_model_group *g = fx_build(&f);
    mk_http_client *client = NULL;
    cr_assert_eq(mk_http_client_new(&loop, &client), 0);
    cr_assert_eq(mk_router_start_health(f.r, &loop, client), 0);
    struct hstate st = {.g = g, .want_healthy = false};
    cr_assert(run_until(&loop, all_health_is, &st), "refused connection not marked unhealthy");
    /* Stop explicitly, free the client, and only then drop the router. */
    mk_router_stop_health(f.r);
    mk_http_client_free(client);
    mk_router_unref(f.r);
    loop_finish(&loop);
}

Test(router, health_nothing_to_probe)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    mk_http_client *client = NULL;
    cr_assert_eq(mk_http_client_new(&loop, &client), 0);
    struct fx f;
    /* Health disabled for the group: no probes even for an openai provider. */
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    fx_build(&f);
    cr_assert_eq(mk_router_start_health(f.r, &loop, client), 0);
    cr_assert_eq(mk_router_start_health(f.r, NULL, client), MK_EINVAL);
    mk_router_unref(f.r);
    /* A provider without a default path (gigachat) and no health_path. */
    fx_init(&f, MK_POLICY_PRIORITY, 1);
    f.prov[0].type = MK_PROVIDER_GIGACHAT;
    f.prov[0].base_url = "https://127.0.0.1:9/api/v1";
    f.grp[0].health.enabled = true;
    int rc = mk_router_new(&f.cfg, &f.r);
    cr_assert_eq(rc, 0, "%s", mk_strerror(rc));
    cr_assert_eq(mk_router_start_health(f.r, &loop, client), 0);
    cr_assert_eq(mk_http_client_active(client), 0);
    mk_router_unref(f.r);
    mk_router_stop_health(NULL);
    mk_http_client_free(client);
    loop_finish(&loop);
}
