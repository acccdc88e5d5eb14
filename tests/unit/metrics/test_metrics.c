/* Unit tests for mk_metrics: recording, histograms, exposition text, escaping,
 * number formatting, cardinality cap, thread safety and promtool validation. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "metrics/mk_metrics.h"

static void setup(void)
{
    mk_log_set_level(MK_LOG_OFF);
    mk_metrics_reset();
}
static void teardown(void) { mk_metrics_reset(); }

TestSuite(metrics, .init = setup, .fini = teardown);

static char *render(void)
{
    mk_buf b = MK_BUF_INIT;
    cr_assert_eq(mk_metrics_render(&b), 0);
    char *s = mk_buf_steal(&b, NULL);
    cr_assert_not_null(s);
    return s;
}

static void assert_contains(const char *text, const char *needle)
{
    cr_assert_not_null(strstr(text, needle), "missing line: %s\n--- text ---\n%s", needle, text);
}

Test(metrics, counter_add_and_value)
{
    const char *l[] = {"/v1/chat/completions", "POST", "200"};
    const char *other[] = {"/v1/chat/completions", "POST", "500"};
    mk_metric_inc(MK_METRIC_REQUESTS, l);
    mk_metric_inc(MK_METRIC_REQUESTS, l);
    mk_metric_add(MK_METRIC_REQUESTS, l, 3);
    mk_metric_inc(MK_METRIC_REQUESTS, other);
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUESTS, l), 5);
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUESTS, other), 1);
    const char *absent[] = {"/x", "GET", "200"};
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUESTS, absent), 0);
}

Test(metrics, counter_rejects_decrease_and_set)
{
    const char *l[] = {"timeout"};
    mk_metric_add(MK_METRIC_STREAM_ERRORS, l, 2);
    mk_metric_add(MK_METRIC_STREAM_ERRORS, l, -1);
    mk_metric_add(MK_METRIC_STREAM_ERRORS, l, NAN);
    mk_metric_set(MK_METRIC_STREAM_ERRORS, l, 100);
    cr_assert_eq(mk_metric_value(MK_METRIC_STREAM_ERRORS, l), 2);
}

Test(metrics, gauge_set_and_add)
{
    mk_metric_add(MK_METRIC_STREAMS_INFLIGHT, NULL, 1);
    mk_metric_add(MK_METRIC_STREAMS_INFLIGHT, NULL, 1);
    mk_metric_add(MK_METRIC_STREAMS_INFLIGHT, NULL, -1);
    cr_assert_eq(mk_metric_value(MK_METRIC_STREAMS_INFLIGHT, NULL), 1);
    const char *d[] = {"openai/gpt-4o"};
    mk_metric_set(MK_METRIC_BREAKER_STATE, d, 2);
    mk_metric_set(MK_METRIC_BREAKER_STATE, d, 1);
    cr_assert_eq(mk_metric_value(MK_METRIC_BREAKER_STATE, d), 1);
}

Test(metrics, bad_calls_are_ignored)
{
    /* A row with labels given no label array, and ids out of range. */
    mk_metric_inc(MK_METRIC_REQUESTS, NULL);
    mk_metric_inc((enum mk_metric_id)MK_METRIC_COUNT, NULL);
    mk_metric_inc((enum mk_metric_id)-1, NULL);
    mk_metric_observe(MK_METRIC_REQUESTS, (const char *[]){"a", "b", "c"}, 1.0); /* wrong type */
    const char *r[] = {"/v1/models"};
    mk_metric_observe(MK_METRIC_REQUEST_DURATION, r, NAN);
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUESTS, (const char *[]){"a", "b", "c"}), 0);
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUEST_DURATION, r), 0);
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUESTS, NULL), 0);
    /* NULL element counts as the empty string. */
    const char *withnull[] = {NULL, "GET", "200"};
    const char *empty[] = {"", "GET", "200"};
    mk_metric_inc(MK_METRIC_REQUESTS, withnull);
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUESTS, empty), 1);
}

Test(metrics, histogram_cumulative_buckets)
{
    const char *r[] = {"/v1/chat/completions"};
    mk_metric_observe(MK_METRIC_REQUEST_DURATION, r, 0.0005); /* exactly on a bound: le is inclusive */
    mk_metric_observe(MK_METRIC_REQUEST_DURATION, r, 0.003);
    mk_metric_observe(MK_METRIC_REQUEST_DURATION, r, 0.003);
    mk_metric_observe(MK_METRIC_REQUEST_DURATION, r, 1000);  /* above every bound */
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUEST_DURATION, r), 4);
    char *t = render();
    const char *p = "mayak_http_request_duration_seconds_bucket{route=\"/v1/chat/completions\",";
    char line[256];
    struct { const char *le; int n; } want[] = {
        {"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 3}, {"60", 3}, {"120", 3}, {"+Inf", 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(line, sizeof line, "%sle=\"%s\"} %d\n", p, want[i].le, want[i].n);
        assert_contains(t, line);
    }
    assert_contains(t, "mayak_http_request_duration_seconds_sum{route=\"/v1/chat/completions\"} 1000.0065\n");
    assert_contains(t, "mayak_http_request_duration_seconds_count{route=\"/v1/chat/completions\"} 4\n");
    assert_contains(t, "# TYPE mayak_http_request_duration_seconds histogram\n");
    free(t);
}

Test(metrics, overhead_uses_its_own_buckets)
{
    const char *r[] = {"/v1/chat/completions"};
    mk_metric_observe(MK_METRIC_GATEWAY_OVERHEAD, r, 0.00002);
    mk_metric_observe(MK_METRIC_UPSTREAM_LATENCY, (const char *[]){"p/m"}, 0.00002);
    char *t = render();
    assert_contains(t, "mayak_gateway_overhead_seconds_bucket{route=\"/v1/chat/completions\",le=\"1e-05\"} 0\n");
    assert_contains(t, "mayak_gateway_overhead_seconds_bucket{route=\"/v1/chat/completions\",le=\"2.5e-05\"} 1\n");
    assert_contains(t, "mayak_gateway_overhead_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.01\"} 1\n");
    cr_assert_null(strstr(t, "mayak_gateway_overhead_seconds_bucket{route=\"/v1/chat/completions\",le=\"120\"}"));
    assert_contains(t, "mayak_upstream_latency_seconds_bucket{deployment=\"p/m\",le=\"0.0005\"} 1\n");
    assert_contains(t, "mayak_upstream_latency_seconds_bucket{deployment=\"p/m\",le=\"120\"} 1\n");
    free(t);
}

Test(metrics, unlabelled_render_zero_and_help_type_for_all)
{
    char *t = render();
    assert_contains(t, "# HELP mayak_streams_in_flight Streaming responses currently open\n");
    assert_contains(t, "# TYPE mayak_streams_in_flight gauge\nmayak_streams_in_flight 0\n");
    assert_contains(t, "mayak_requests_in_flight 0\n");
    assert_contains(t, "mayak_http_connections 0\n");
    assert_contains(t, "# TYPE mayak_http_requests_total counter\n");
    /* No sample for a labelled metric never used. */
    cr_assert_null(strstr(t, "mayak_http_requests_total{"));
    free(t);
}

Test(metrics, label_escaping_and_bad_utf8)
{
    const char *l[] = {"a\\b\"c\nd"};
    mk_metric_inc(MK_METRIC_STREAM_ERRORS, l);
    const char *bad[] = {"x\xff" "y\xd0\x9f"}; /* invalid byte, then a valid Cyrillic П */
    mk_metric_inc(MK_METRIC_CONFIG_RELOADS, bad);
    char *t = render();
    assert_contains(t, "mayak_stream_errors_total{reason=\"a\\\\b\\\"c\\nd\"} 1\n");
    assert_contains(t, "mayak_config_reloads_total{result=\"x\xEF\xBF\xBDy\xd0\x9f\"} 1\n");
    free(t);
}

static const char *fmt(double v)
{
    static char buf[64];
    cr_assert_eq(mk_metrics_format_number(buf, sizeof buf, v), 0);
    return buf;
}

Test(metrics, number_format)
{
    cr_assert_str_eq(fmt(0), "0");
    cr_assert_str_eq(fmt(-0.0), "0");
    cr_assert_str_eq(fmt(12), "12");
    cr_assert_str_eq(fmt(-3), "-3");
    cr_assert_str_eq(fmt(123456789012345.0), "123456789012345");
    cr_assert_str_eq(fmt(0.1), "0.1");
    cr_assert_str_eq(fmt(0.3), "0.3");
    cr_assert_str_eq(fmt(2.5), "2.5");
    cr_assert_str_eq(fmt(NAN), "NaN");
    cr_assert_str_eq(fmt(INFINITY), "+Inf");
    cr_assert_str_eq(fmt(-INFINITY), "-Inf");
    /* Values that need more than 15 digits still read back exactly. */
    double tricky[] = {1.0 / 3.0, 0.1 + 0.2, 1e-300, 1e300, 9007199254740993.0, 5e-324, 123.456e-7};
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
        const char *s = fmt(tricky[i]);
        cr_assert_eq(strtod(s, NULL), tricky[i], "%s does not round-trip", s);
        cr_assert_leq(strlen(s), 24);
    }
    cr_assert_str_eq(fmt(0.1 + 0.2), "0.30000000000000004");
    char small[8];
    cr_assert_eq(mk_metrics_format_number(small, sizeof small, 1), MK_EINVAL);
}

Test(metrics, reset_forgets_series)
{
    const char *l[] = {"ok"};
    mk_metric_inc(MK_METRIC_CONFIG_RELOADS, l);
    mk_metrics_reset();
    cr_assert_eq(mk_metric_value(MK_METRIC_CONFIG_RELOADS, l), 0);
    char *t = render();
    cr_assert_null(strstr(t, "mayak_config_reloads_total{"));
    free(t);
    mk_metric_inc(MK_METRIC_CONFIG_RELOADS, l);
    cr_assert_eq(mk_metric_value(MK_METRIC_CONFIG_RELOADS, l), 1);
}

Test(metrics, many_series_and_cap)
{
    char name[32];
    const char *l[] = {name};
    for (int i = 0; i < MK_METRICS_MAX_SERIES + 50; i++) {
        snprintf(name, sizeof name, "dep-%d", i);
        mk_metric_add(MK_METRIC_DEPLOYMENT_EWMA_TTFT, l, i);
    }
    /* Every series under the cap kept its own value through table growth... */
    for (int i = 0; i < MK_METRICS_MAX_SERIES; i += 97) {
        snprintf(name, sizeof name, "dep-%d", i);
        cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_EWMA_TTFT, l), i);
    }
    /* ...and those past it were dropped, while existing series still record. */
    snprintf(name, sizeof name, "dep-%d", MK_METRICS_MAX_SERIES + 10);
    cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_EWMA_TTFT, l), 0);
    snprintf(name, sizeof name, "dep-%d", 5);
    mk_metric_add(MK_METRIC_DEPLOYMENT_EWMA_TTFT, l, 1);
    cr_assert_eq(mk_metric_value(MK_METRIC_DEPLOYMENT_EWMA_TTFT, l), 6);
}

Test(metrics, label_boundaries_do_not_collide)
{
    const char *a[] = {"ab", "c"};
    const char *b[] = {"a", "bc"};
    mk_metric_inc(MK_METRIC_COST, a);
    cr_assert_eq(mk_metric_value(MK_METRIC_COST, b), 0);
    mk_metric_add(MK_METRIC_COST, b, 2);
    cr_assert_eq(mk_metric_value(MK_METRIC_COST, a), 1);
    cr_assert_eq(mk_metric_value(MK_METRIC_COST, b), 2);
}

Test(metrics, render_failure_leaves_buffer_unchanged)
{
    const char *l[] = {"ok"};
    mk_metric_inc(MK_METRIC_CONFIG_RELOADS, l);
    mk_buf b;
    mk_buf_init(&b, 300);
    cr_assert_eq(mk_buf_append_str(&b, "prefix\n"), 0);
    int rc = mk_metrics_render(&b);
    cr_assert(rc == MK_ETOOBIG || rc == MK_ENOMEM);
    cr_assert_eq(b.len, 7);
    cr_assert_str_eq(b.data, "prefix\n");
    mk_buf_release(&b);
    cr_assert_eq(mk_metrics_render(NULL), MK_EINVAL);
}

#define NTHREADS 4
#define PER_THREAD 50000
static void *hammer(void *arg)
{
    (void)arg;
    const char *l[] = {"g", "p/m", "prompt"};
    const char *r[] = {"/v1/embeddings"};
    for (int i = 0; i < PER_THREAD; i++) {
        mk_metric_inc(MK_METRIC_TOKENS, l);
        mk_metric_observe(MK_METRIC_REQUEST_DURATION, r, 0.01);
    }
    return NULL;
}

Test(metrics, concurrent_updates_are_not_lost)
{
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) cr_assert_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    const char *l[] = {"g", "p/m", "prompt"};
    cr_assert_eq(mk_metric_value(MK_METRIC_TOKENS, l), NTHREADS * PER_THREAD);
    cr_assert_eq(mk_metric_value(MK_METRIC_REQUEST_DURATION, (const char *[]){"/v1/embeddings"}),
                 NTHREADS * PER_THREAD);
}

/* Records at least one sample in every metric of the map, with awkward label values. */
static void use_every_metric(void)
{
    const char *r3[] = {"/v1/chat/completions", "POST", "200"};
    const char *g[] = {"gpt \"quoted\"\\slash\nnewline"};
    const char *gds[] = {"default", "openai/gpt-4o-mini", "ok"};
    const char *dep[] = {"openai/gpt-4o-mini"};
    const char *gdk[] = {"default", "openai/gpt-4o-mini", "completion"};
    const char *gd[] = {"default", "openai/gpt-4o-mini"};
    const char *dr[] = {"openai/gpt-4o-mini", "timeout"};
    const char *route[] = {"/v1/chat/completions"};
    const char *reason[] = {"upstream_cut"};
    const char *result[] = {"ok"};
    const char *ver[] = {"0.1.0"};
    mk_metric_inc(MK_METRIC_REQUESTS, r3);
    mk_metric_observe(MK_METRIC_REQUEST_DURATION, route, 0.123);
    mk_metric_inc(MK_METRIC_LLM_REQUESTS, gds);
    mk_metric_observe(MK_METRIC_LLM_DURATION, g, 1.5);
    mk_metric_observe(MK_METRIC_TTFT, g, 0.25);
    mk_metric_observe(MK_METRIC_UPSTREAM_LATENCY, dep, 0.2);
    mk_metric_observe(MK_METRIC_GATEWAY_OVERHEAD, route, 0.00004);
    mk_metric_add(MK_METRIC_TOKENS, gdk, 42);
    mk_metric_add(MK_METRIC_COST, gd, 0.0123);
    mk_metric_inc(MK_METRIC_UPSTREAM_ATTEMPTS, dr);
    mk_metric_inc(MK_METRIC_RETRIES, g);
    mk_metric_set(MK_METRIC_BREAKER_STATE, dep, 2);
    mk_metric_set(MK_METRIC_DEPLOYMENT_HEALTHY, dep, 1);
    mk_metric_set(MK_METRIC_DEPLOYMENT_EWMA_TTFT, dep, 0.3456789);
    mk_metric_add(MK_METRIC_STREAMS_INFLIGHT, NULL, 3);
    mk_metric_add(MK_METRIC_REQUESTS_INFLIGHT, NULL, 5);
    mk_metric_set(MK_METRIC_CONNECTIONS, NULL, 7);
    mk_metric_inc(MK_METRIC_STREAM_ERRORS, reason);
    mk_metric_inc(MK_METRIC_CONFIG_RELOADS, result);
    mk_metric_set(MK_METRIC_BUILD_INFO, ver, 1);
}

static int promtool_check(const char *text)
{
    /* The test suite's dependencies include promtool (scripts/install-deps.sh --test):
     * its absence is a failure, not a reason to skip. */
    cr_assert_eq(access("/usr/bin/promtool", X_OK), 0, "/usr/bin/promtool missing: run scripts/install-deps.sh --test");
    FILE *p = popen("/usr/bin/promtool check metrics", "w");
    cr_assert_not_null(p);
    fputs(text, p);
    int st = pclose(p);
    cr_assert(WIFEXITED(st), "promtool did not exit normally");
    return WEXITSTATUS(st);
}

Test(metrics, promtool_accepts_full_registry)
{
    use_every_metric();
    char *t = render();
    /* Every family has a sample now. */
    const char *families[] = {"mayak_http_requests_total{", "mayak_llm_time_to_first_token_seconds_bucket{",
                              "mayak_gateway_overhead_seconds_count{", "mayak_build_info{version=\"0.1.0\"} 1\n",
                              "mayak_deployment_ttft_ewma_seconds{deployment=\"openai/gpt-4o-mini\"} 0.3456789\n",
                              "mayak_cost_total{model_group=\"default\",deployment=\"openai/gpt-4o-mini\"} 0.0123\n"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) assert_contains(t, families[i]);
    cr_assert_eq(promtool_check(t), 0, "promtool rejected:\n%s", t);
    free(t);
}

Test(metrics, promtool_accepts_empty_registry)
{
    char *t = render();
    cr_assert_eq(promtool_check(t), 0, "promtool rejected:\n%s", t);
    free(t);
}

Test(metrics, promtool_detects_broken_text)
{
    /* Proves the check can fail: a sample of a counter after its family is invalid. */
    cr_assert_neq(promtool_check("# TYPE x_total counter\nx_total{a=\"b} 1\n"), 0);
}
