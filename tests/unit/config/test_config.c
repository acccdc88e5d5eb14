/* Unit tests for mk_config: the shipped example loads field by field, defaults apply,
 * every kind of problem is reported with its line and column, many at once, YAML
 * syntax errors keep their position, ${} expansion, the embedded defaults, limits,
 * diagnostics formatting and the reload comparison. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/mk_config.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"

#define DATA MAYAK_SOURCE_DIR "/tests/unit/config/data/"

static void set_example_env(void)
{
    setenv("VLLM_KEY", "vllm-secret", 1);
    setenv("OPENAI_API_KEY", "sk-test", 1);
    setenv("GIGACHAT_CREDENTIALS", "Y2xpZW50OnNlY3JldA==", 1);
    setenv("YC_API_KEY", "yc-key", 1);
    setenv("YC_FOLDER_ID", "b1gfolder", 1);
    setenv("YC_IAM_TOKEN", "t1.iam", 1);
    unsetenv("MAYAK_LISTEN");
}

/* Loads yaml from memory; the caller releases diags and frees the config. */
static int load(const char *yaml, struct mk_config **cfg, struct mk_config_diags *d)
{
    memset(d, 0, sizeof *d);
    return mk_config_load_string("t.yaml", yaml, strlen(yaml), cfg, d);
}

static void dump(const struct mk_config_diags *d)
{
    mk_buf b = MK_BUF_INIT;
    mk_config_diags_format(d, &b);
    if (b.data) fprintf(stderr, "%s", b.data);
    mk_buf_release(&b);
}

/* Asserts one entry at line:col whose message contains `text`. */
static void expect_diag(const struct mk_config_diags *d, int line, int col, const char *text)
{
    for (size_t i = 0; i < d->count; i++) {
        const struct mk_config_diag *e = &d->items[i];
        if (e->line == line && e->column == col && strstr(e->message, text)) return;
    }
    dump(d);
    cr_assert_fail("no diagnostic at %d:%d containing \"%s\"", line, col, text);
}

static size_t count_errors(const struct mk_config_diags *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->count; i++) n += !d->items[i].warning;
    return n;
}

/* Line and column (1-based) of the nth occurrence of needle in text. */
static void locate(const char *text, const char *needle, int nth, int *line, int *col)
{
    const char *p = text;
    for (int i = 0; i < nth; i++) {
        p = strstr(i ? p + 1 : p, needle);
        cr_assert_not_null(p, "test bug: '%s' not in the YAML", needle);
    }
    *line = 1;
    const char *bol = text;
    for (const char *q = text; q < p; q++)
        if (*q == '\n') (*line)++, bol = q + 1;
    *col = (int)(p - bol) + 1;
}

/* A config that must fail with exactly one error, placed at the nth occurrence of
 * `needle` in the YAML, whose message contains text. */
static void expect_nth_error(const char *yaml, const char *needle, int nth, const char *text)
{
    struct mk_config *cfg = (struct mk_config *)1;
    struct mk_config_diags d;
    int line, col;
    locate(yaml, needle, nth, &line, &col);
    int rc = load(yaml, &cfg, &d);
    if (rc != MK_ECONFIG || count_errors(&d) != 1) dump(&d);
    cr_assert_eq(rc, MK_ECONFIG);
    cr_assert_null(cfg, "no config on failure");
    cr_assert_eq(count_errors(&d), 1, "exactly one error for: %s", text);
    expect_diag(&d, line, col, text);
    mk_config_diags_release(&d);
}
#define expect_one_error(yaml, needle, text) expect_nth_error((yaml), (needle), 1, (text))

/* A valid provider + group appended after `prefix` lines, for error cases that need
 * a config that is otherwise complete. */
#define GROUP_LOCAL "model_groups:\n  - name: g\n    deployments: [{provider: l, model: m}]\n"
#define PROVIDER_LOCAL "  - {name: l, type: local}\n"

/* ---- the shipped example -------------------------------------------------------- */

Test(config, deploy_example_loads_field_by_field)
{
    set_example_env();
    struct mk_config *cfg = NULL;
    struct mk_config_diags d = {0};
    int rc = mk_config_load(MAYAK_SOURCE_DIR "/deploy/mayak.yaml", &cfg, &d);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_assert_not(mk_config_diags_has_errors(&d));

    cr_assert_str_eq(cfg->source, MAYAK_SOURCE_DIR "/deploy/mayak.yaml");
    cr_assert_str_eq(cfg->listen_host, "127.0.0.1");
    cr_assert_eq(cfg->listen_port, 8080);
    cr_assert_str_eq(cfg->data_dir, "./mayak-data");
    cr_assert_str_eq(cfg->log_level, "info");
    cr_assert(cfg->access_log);
    cr_assert_eq(cfg->drain_timeout_ms, 30000);
    cr_assert_eq(cfg->workers, 1);
    cr_assert_str_eq(cfg->default_model_group, "ru-default");
    cr_assert_eq(cfg->memory.session_ttl_s, 3600);
    cr_assert_eq(cfg->memory.retention_days, 30);
    cr_assert_eq(cfg->memory.retention.history, 14);
    cr_assert_eq(cfg->memory.retention.facts, -1, "a kind the file leaves out takes retention_days");
    cr_assert_eq(cfg->desk.analytics_refresh_ms, 5000);

    cr_assert_eq(cfg->nproviders, 7);
    const struct mk_provider_config *p = mk_config_find_provider(cfg, "local-vllm");
    cr_assert_not_null(p);
    cr_assert_eq(p->type, MK_PROVIDER_OPENAI);
    cr_assert_str_eq(p->base_url, "http://127.0.0.1:8000/v1");
    cr_assert_str_eq(p->api_key, "vllm-secret");
    cr_assert_eq(p->ntags, 2);
    cr_assert_str_eq(p->tags[0], "residency:ru");
    cr_assert_str_eq(p->tags[1], "on-prem");
    cr_assert_eq(p->nheaders, 1);
    cr_assert_str_eq(p->headers[0], "X-Request-Source: mayak");
    cr_assert_float_eq(p->price.input_per_1k, 0.0, 1e-12);
    cr_assert_str_eq(p->health_path, "/models");
    cr_assert_not(p->insecure);
    cr_assert_eq(p->line, 32);
    cr_assert_eq(p->column, 5);

    p = mk_config_find_provider(cfg, "lab-proxy");
    cr_assert(p->insecure);
    cr_assert_str_eq(p->base_url, "https://127.0.0.1:8443/v1");
    cr_assert_null(p->api_key);
    cr_assert_str_eq(p->health_path, "/models", "openai default health path");

    p = mk_config_find_provider(cfg, "openai-cloud");
    cr_assert_str_eq(p->api_key, "sk-test");
    cr_assert_str_eq(p->headers[0], "OpenAI-Organization: org-example");
    cr_assert_float_eq(p->price.output_per_1k, 0.0006, 1e-12);

    p = mk_config_find_provider(cfg, "giga");
    cr_assert_eq(p->type, MK_PROVIDER_GIGACHAT);
    cr_assert_str_eq(p->credentials, "Y2xpZW50OnNlY3JldA==");
    cr_assert_str_eq(p->scope, "GIGACHAT_API_PERS");
    cr_assert_str_eq(p->auth_url, "https://ngw.devices.sberbank.ru:9443/api/v2/oauth");
    cr_assert_str_eq(p->base_url, "https://gigachat.devices.sberbank.ru/api/v1");
    cr_assert_str_eq(p->ca_file, "/etc/ssl/certs/russian_trusted_root_ca.pem");
    cr_assert_float_eq(p->price.input_per_1k, 0.2, 1e-12);

    p = mk_config_find_provider(cfg, "yandex");
    cr_assert_eq(p->type, MK_PROVIDER_YANDEXGPT);
    cr_assert_str_eq(p->api_key, "yc-key");
    cr_assert_null(p->iam_token);
    cr_assert_str_eq(p->folder_id, "b1gfolder");
    cr_assert_str_eq(p->base_url, "https://llm.api.cloud.yandex.net");

    p = mk_config_find_provider(cfg, "yandex-iam");
    cr_assert_str_eq(p->iam_token, "t1.iam");
    cr_assert_null(p->api_key);
    cr_assert_str_eq(p->base_url, "https://llm.api.cloud.yandex.net", "yandexgpt default base_url");

    p = mk_config_find_provider(cfg, "kb");
    cr_assert_eq(p->type, MK_PROVIDER_LOCAL);
    cr_assert_null(p->base_url);

    cr_assert_eq(cfg->nmodel_groups, 6);
    const struct mk_model_group_config *g = mk_config_find_group(cfg, "gpt-4o-mini");
    cr_assert_not_null(g);
    cr_assert_str_eq(g->name, "ru-default");
    cr_assert_eq(mk_config_find_group(cfg, "default"), g);
    cr_assert_eq(g->policy, MK_POLICY_PRIORITY);
    cr_assert_eq(g->naliases, 2);
    cr_assert_eq(g->nrequire_tags, 1);
    cr_assert_str_eq(g->require_tags[0], "residency:ru");
    cr_assert_eq(g->timeouts.connect_ms, 5000);
    cr_assert_eq(g->timeouts.first_token_ms, 60000);
    cr_assert_eq(g->timeouts.chunk_gap_ms, 30000);
    cr_assert_eq(g->timeouts.total_ms, 600000);
    cr_assert_eq(g->retry.max_attempts, 3);
    cr_assert_eq(g->retry.backoff_base_ms, 25);
    cr_assert_eq(g->retry.backoff_max_ms, 1000);
    cr_assert_float_eq(g->retry.budget_ratio, 0.2, 1e-12);
    cr_assert_eq(g->retry.budget_min_per_s, 10);
    cr_assert_eq(g->breaker.consecutive_failures, 5);
    cr_assert_float_eq(g->breaker.error_rate, 0.5, 1e-12);
    cr_assert_eq(g->breaker.min_requests, 20);
    cr_assert_eq(g->breaker.window_ms, 10000);
    cr_assert_eq(g->breaker.open_ms, 5000);
    cr_assert_eq(g->breaker.half_open_probes, 2);
    cr_assert(g->health.enabled);
    cr_assert_eq(g->health.interval_ms, 10000);
    cr_assert_eq(g->health.timeout_ms, 2000);
    cr_assert_eq(g->ndeployments, 3);
    const struct mk_deployment_config *dep = &g->deployments[0];
    cr_assert_str_eq(dep->provider, "local-vllm");
    cr_assert_str_eq(dep->model, "qwen2.5-7b-instruct");
    cr_assert_float_eq(dep->weight, 1.0, 1e-12);
    cr_assert_eq(dep->priority, 0);
    cr_assert(dep->has_price);
    cr_assert_float_eq(dep->price.input_per_1k, 0.1, 1e-12);
    cr_assert_float_eq(dep->price.output_per_1k, 0.2, 1e-12);
    cr_assert_eq(dep->ntags, 1);
    cr_assert_str_eq(dep->tags[0], "gpu");
    dep = &g->deployments[1];
    cr_assert_str_eq(dep->model, "GigaChat");
    cr_assert_eq(dep->priority, 1);
    cr_assert_not(dep->has_price);
    cr_assert_float_eq(dep->price.input_per_1k, 0.2, 1e-12, "inherits the provider's price");
    cr_assert_str_eq(g->deployments[2].model, "yandexgpt-lite/latest");

    g = mk_config_find_group(cfg, "on-prem");
    cr_assert_eq(g->policy, MK_POLICY_WEIGHTED);
    cr_assert_float_eq(g->deployments[0].weight, 3.0, 1e-12);
    cr_assert_float_eq(g->deployments[1].weight, 1.0, 1e-12);
    cr_assert_eq(g->deployments[1].priority, 1, "priority defaults to position");

    g = mk_config_find_group(cfg, "fast");
    cr_assert_eq(g->policy, MK_POLICY_LEAST_LATENCY);
    cr_assert_eq(g->timeouts.first_token_ms, 15000);
    cr_assert_eq(g->timeouts.connect_ms, MK_DEFAULT_CONNECT_TIMEOUT_MS, "unset siblings keep defaults");

    g = mk_config_find_group(cfg, "cheap");
    cr_assert_eq(g->policy, MK_POLICY_LEAST_COST);
    cr_assert_eq(g->retry.max_attempts, 2);
    cr_assert_eq(g->retry.backoff_max_ms, 1000);

    g = mk_config_find_group(cfg, "gpt-4o");
    cr_assert_str_eq(g->name, "global");
    cr_assert_eq(g->policy, MK_POLICY_ROUND_ROBIN);
    cr_assert_not(g->health.enabled);
    cr_assert_eq(g->health.interval_ms, 10000);

    g = mk_config_find_group(cfg, "support-kb");
    cr_assert_str_eq(g->deployments[0].provider, "kb");
    cr_assert_null(mk_config_find_group(cfg, "nope"));

    mk_config_diags_release(&d);
    mk_config_free(cfg);
}

Test(config, deploy_example_reports_every_unset_variable)
{
    set_example_env();
    unsetenv("VLLM_KEY");
    unsetenv("YC_FOLDER_ID");
    struct mk_config *cfg = NULL;
    struct mk_config_diags d = {0};
    cr_assert_eq(mk_config_load(MAYAK_SOURCE_DIR "/deploy/mayak.yaml", &cfg, &d), MK_ECONFIG);
    cr_assert_null(cfg);
    cr_assert_eq(count_errors(&d), 3, "VLLM_KEY once, YC_FOLDER_ID twice, nothing more");
    expect_diag(&d, 35, 14, "environment variable 'VLLM_KEY' is not set");
    expect_diag(&d, 75, 16, "environment variable 'YC_FOLDER_ID' is not set");
    expect_diag(&d, 84, 16, "environment variable 'YC_FOLDER_ID' is not set");
    mk_config_diags_release(&d);
}

Test(config, listen_from_env_with_ipv6)
{
    set_example_env();
    setenv("MAYAK_LISTEN", "[::1]:9090", 1);
    struct mk_config *cfg = NULL;
    struct mk_config_diags d = {0};
    cr_assert_eq(mk_config_load(MAYAK_SOURCE_DIR "/deploy/mayak.yaml", &cfg, &d), 0);
    cr_assert_str_eq(cfg->listen_host, "::1");
    cr_assert_eq(cfg->listen_port, 9090);
    unsetenv("MAYAK_LISTEN");
    mk_config_diags_release(&d);
    mk_config_free(cfg);
}

/* ---- defaults ------------------------------------------------------------------- */

Test(config, defaults_applied_when_keys_absent)
{
    const char *yaml = "providers:\n"
                       "  - name: up\n"
                       "    type: openai\n"
                       "    base_url: http://127.0.0.1:9000/v1/\n"
                       "  - {name: sber, type: gigachat, credentials: abc}\n"
                       "model_groups:\n"
                       "  - name: g\n"
                       "    deployments:\n"
                       "      - {provider: up, model: a}\n"
                       "      - {provider: sber, model: b}\n";
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    int rc = load(yaml, &cfg, &d);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_assert_eq(d.count, 0, "no warnings either");
    cr_assert_str_eq(cfg->listen_host, "127.0.0.1");
    cr_assert_eq(cfg->listen_port, 8080);
    cr_assert_str_eq(cfg->data_dir, "./mayak-data");
    cr_assert_str_eq(cfg->log_level, "info");
    cr_assert(cfg->access_log);
    cr_assert_eq(cfg->drain_timeout_ms, MK_DEFAULT_DRAIN_TIMEOUT_MS);
    cr_assert_eq(cfg->workers, 1);
    cr_assert_null(cfg->default_model_group, "groups given, none named as default");
    cr_assert_eq(cfg->nproviders, 2, "no embedded provider added");

    const struct mk_provider_config *p = &cfg->providers[0];
    cr_assert_str_eq(p->base_url, "http://127.0.0.1:9000/v1", "trailing slash dropped");
    cr_assert_str_eq(p->health_path, "/models");
    cr_assert_null(p->api_key);
    cr_assert_eq(p->ntags, 0);
    cr_assert_eq(p->nheaders, 0);
    p = &cfg->providers[1];
    cr_assert_str_eq(p->base_url, "https://gigachat.devices.sberbank.ru/api/v1");
    cr_assert_str_eq(p->auth_url, "https://ngw.devices.sberbank.ru:9443/api/v2/oauth");
    cr_assert_str_eq(p->scope, "GIGACHAT_API_PERS");
    cr_assert_null(p->health_path);

    const struct mk_model_group_config *g = &cfg->model_groups[0];
    cr_assert_eq(g->policy, MK_POLICY_PRIORITY);
    cr_assert_eq(g->naliases, 0);
    cr_assert_eq(g->timeouts.connect_ms, MK_DEFAULT_CONNECT_TIMEOUT_MS);
    cr_assert_eq(g->timeouts.first_token_ms, MK_DEFAULT_FIRST_TOKEN_TIMEOUT_MS);
    cr_assert_eq(g->timeouts.chunk_gap_ms, MK_DEFAULT_CHUNK_GAP_TIMEOUT_MS);
    cr_assert_eq(g->timeouts.total_ms, MK_DEFAULT_TOTAL_TIMEOUT_MS);
    cr_assert_eq(g->retry.max_attempts, 3);
    cr_assert_eq(g->retry.backoff_base_ms, 25);
    cr_assert_eq(g->retry.backoff_max_ms, 1000);
    cr_assert_float_eq(g->retry.budget_ratio, 0.2, 1e-12);
    cr_assert_eq(g->retry.budget_min_per_s, 10);
    cr_assert_eq(g->breaker.consecutive_failures, 5);
    cr_assert_float_eq(g->breaker.error_rate, 0.5, 1e-12);
    cr_assert_eq(g->breaker.min_requests, 20);
    cr_assert_eq(g->breaker.window_ms, 10000);
    cr_assert_eq(g->breaker.open_ms, 5000);
    cr_assert_eq(g->breaker.half_open_probes, 2);
    cr_assert(g->health.enabled);
    cr_assert_eq(g->health.interval_ms, 10000);
    cr_assert_eq(g->health.timeout_ms, 2000);
    cr_assert_eq(g->deployments[0].priority, 0);
    cr_assert_eq(g->deployments[1].priority, 1);
    cr_assert_float_eq(g->deployments[1].weight, 1.0, 1e-12);
    cr_assert_eq(g->line, 7);
    cr_assert_eq(g->column, 5);
    cr_assert_eq(g->deployments[1].line, 10);
    cr_assert_eq(g->deployments[1].column, 10);
    mk_config_diags_release(&d);
    mk_config_free(cfg);
}

static void assert_embedded_group(const struct mk_config *cfg)
{
    const struct mk_provider_config *p = mk_config_find_provider(cfg, "local");
    cr_assert_not_null(p);
    cr_assert_eq(p->type, MK_PROVIDER_LOCAL);
    const struct mk_model_group_config *g = mk_config_find_group(cfg, "default");
    cr_assert_not_null(g);
    cr_assert_str_eq(g->name, "mayak-local");
    cr_assert_eq(g->naliases, 1);
    cr_assert_eq(g->policy, MK_POLICY_PRIORITY);
    cr_assert_eq(g->ndeployments, 1);
    cr_assert_str_eq(g->deployments[0].provider, "local");
    cr_assert_str_eq(g->deployments[0].model, "mayak-local");
    cr_assert_float_eq(g->deployments[0].weight, 1.0, 1e-12);
    cr_assert_eq(g->timeouts.total_ms, MK_DEFAULT_TOTAL_TIMEOUT_MS);
    cr_assert(g->health.enabled);
    cr_assert_str_eq(cfg->default_model_group, "mayak-local");
}

Test(config, embedded_default_contents)
{
    struct mk_config *cfg = mk_config_default();
    cr_assert_not_null(cfg);
    cr_assert_str_eq(cfg->source, "<embedded defaults>");
    cr_assert_str_eq(cfg->listen_host, "127.0.0.1");
    cr_assert_eq(cfg->listen_port, 8080);
    cr_assert_str_eq(cfg->data_dir, "./mayak-data");
    cr_assert_str_eq(cfg->log_level, "info");
    cr_assert(cfg->access_log);
    cr_assert_eq(cfg->drain_timeout_ms, 30000);
    cr_assert_eq(cfg->workers, 1);
    cr_assert_eq(cfg->nproviders, 1);
    cr_assert_eq(cfg->nmodel_groups, 1);
    assert_embedded_group(cfg);
    mk_config_free(cfg);
    mk_config_free(NULL);
}

Test(config, no_groups_behaves_like_embedded_default)
{
    const char *cases[] = {"", "# only a comment\n", "log_level: debug\n", "providers: []\nmodel_groups: []\n", "~\n"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mk_config *cfg = NULL;
        struct mk_config_diags d;
        int rc = load(cases[i], &cfg, &d);
        if (rc) dump(&d);
        cr_assert_eq(rc, 0, "case %zu", i);
        cr_assert_eq(cfg->nproviders, 1);
        cr_assert_eq(cfg->nmodel_groups, 1);
        assert_embedded_group(cfg);
        mk_config_diags_release(&d);
        mk_config_free(cfg);
    }
}

Test(config, providers_without_groups_get_embedded_group_and_a_warning)
{
    const char *yaml = "providers:\n  - {name: up, type: openai, base_url: http://127.0.0.1:1/v1}\n";
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    cr_assert_eq(load(yaml, &cfg, &d), 0);
    cr_assert_eq(cfg->nproviders, 2);
    assert_embedded_group(cfg);
    cr_assert_eq(d.count, 1);
    cr_assert(d.items[0].warning);
    expect_diag(&d, 2, 6, "provider 'up' is not used by any model group");
    mk_config_diags_release(&d);
    mk_config_free(cfg);
}

/* ---- each kind of error, with its place ----------------------------------------- */

Test(config, unknown_key_suggests_closest)
{
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n    polcy: priority\n"
                     "    deployments: [{provider: l, model: m}]\n",
                     "polcy", "unknown key 'polcy' (did you mean 'policy'?)");
    expect_one_error("lissten: 1.2.3.4:5\n", "lissten", "unknown key 'lissten' (did you mean 'listen'?)");
    /* Far from every key: the message lists the known ones instead. */
    expect_one_error("zzzzzz: 1\n", "zzzzzz", "unknown key 'zzzzzz' (top level keys: listen, data_dir");
}

Test(config, wrong_types)
{
    expect_one_error("workers: many\n", "many", "workers: expected a whole number, got 'many'");
    expect_one_error("workers: 1.5\n", "1.5", "workers: expected a whole number");
    expect_one_error("access_log: maybe\n", "maybe", "access_log: expected true or false");
    expect_one_error("data_dir: [a, b]\n", "a, b", "data_dir: expected a string, got a list");
    expect_one_error("providers: {name: x}\n", "name", "providers: expected a list of providers");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    breaker: {error_rate: high}\n", "high",
                     "error_rate: expected a number, got 'high'");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    timeouts: 5\n", "5\n",
                     "timeouts: expected a mapping of keys, got a scalar");
    expect_one_error("providers:\n  - {name: l, type: local, tags: residency:ru}\n" GROUP_LOCAL, "residency",
                     "tags: expected a list");
}

Test(config, missing_required_keys)
{
    const char *two = "providers:\n" PROVIDER_LOCAL "  - {type: local}\n" GROUP_LOCAL;
    expect_nth_error(two, "type: local}", 2, "provider: missing required key 'name'");
    expect_one_error("providers:\n" PROVIDER_LOCAL "  - {name: x}\n" GROUP_LOCAL, "name: x",
                     "provider: missing required key 'type'");
    expect_one_error("providers:\n  - {name: l, type: openai}\n" GROUP_LOCAL, "name: l",
                     "provider 'l': type openai needs base_url");
    expect_one_error("providers:\n  - {name: l, type: openai, base_url: ''}\n" GROUP_LOCAL, "base_url",
                     "provider 'l': type openai needs base_url");
    expect_one_error("providers:\n  - {name: l, type: gigachat}\n" GROUP_LOCAL, "name: l",
                     "provider 'l': type gigachat needs credentials");
    expect_one_error("providers:\n  - {name: l, type: yandexgpt, api_key: k}\n" GROUP_LOCAL, "name: l",
                     "provider 'l': type yandexgpt needs folder_id");
    expect_one_error("providers:\n  - {name: l, type: yandexgpt, folder_id: f}\n" GROUP_LOCAL, "name: l",
                     "provider 'l': type yandexgpt needs api_key or iam_token");
    expect_one_error("providers:\n  - {name: l, type: yandexgpt, folder_id: f, api_key: k, iam_token: t}\n"
                     GROUP_LOCAL,
                     "iam_token", "set api_key or iam_token, not both");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n    deployments: [{model: m}]\n",
                     "model: m", "deployment: missing required key 'provider'");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n    deployments: [{provider: l}]\n",
                     "provider: l}", "deployment: missing required key 'model'");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n", "name: g",
                     "model group: missing required key 'deployments'");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n    deployments: []\n",
                     "deployments", "a model group needs at least one deployment");
    expect_one_error("providers:\n" PROVIDER_LOCAL "  - {name: '', type: local}\n" GROUP_LOCAL, "''",
                     "name: must not be empty");
}

Test(config, unknown_type_and_policy_list_allowed_values)
{
    expect_one_error("providers:\n  - {name: l, type: opnai, base_url: http://x/v1}\n" GROUP_LOCAL, "opnai",
                     "type: unknown value 'opnai' (did you mean 'openai'? allowed: openai, gigachat, yandexgpt, local)");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    policy: fastest\n", "fastest",
                     "policy: unknown value 'fastest' (allowed: priority, weighted, round_robin, least_latency, "
                     "least_cost)");
    expect_one_error("log_level: verbose\n", "verbose", "allowed: debug, info, warn, error, off");
    expect_one_error("providers:\n  - {name: s, type: gigachat, credentials: c, scope: PERS}\n"
                     "model_groups:\n  - name: g\n    deployments: [{provider: s, model: m}]\n",
                     "PERS", "scope: unknown value 'PERS'");
}

Test(config, key_that_does_not_apply_to_the_type)
{
    expect_one_error("providers:\n  - {name: l, type: local, base_url: http://127.0.0.1/v1}\n" GROUP_LOCAL,
                     "base_url", "key 'base_url' does not apply to provider type 'local'");
    expect_one_error("providers:\n  - {name: l, type: openai, base_url: http://h/v1, folder_id: f}\n" GROUP_LOCAL,
                     "folder_id", "key 'folder_id' does not apply to provider type 'openai'");
}

Test(config, deployment_names_unknown_provider)
{
    expect_one_error("providers:\n  - {name: vllm, type: local}\nmodel_groups:\n  - name: g\n"
                     "    deployments:\n      - {provider: vlm, model: m}\n      - {provider: vllm, model: m}\n",
                     "provider: vlm", "deployment names unknown provider 'vlm' (did you mean 'vllm'?)");
    expect_one_error("model_groups:\n  - name: g\n    deployments: [{provider: x, model: m}]\n", "provider: x",
                     "unknown provider 'x' (no providers are defined)");
}

Test(config, duplicate_names_and_alias_clashes)
{
    expect_nth_error("providers:\n" PROVIDER_LOCAL PROVIDER_LOCAL GROUP_LOCAL, "name: l", 2,
                     "duplicate provider name 'l' (first defined at line 2)");
    expect_nth_error("providers:\n" PROVIDER_LOCAL "model_groups:\n"
                     "  - {name: g, deployments: [{provider: l, model: m}]}\n"
                     "  - {name: g, deployments: [{provider: l, model: m}]}\n",
                     "name: g", 2, "duplicate model group name 'g' (first defined at line 4)");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n"
                     "  - {name: g, deployments: [{provider: l, model: m}]}\n"
                     "  - {name: h, aliases: [x, g], deployments: [{provider: l, model: m}]}\n",
                     "g]", "alias 'g' clashes with the name of model group 'g'");
    expect_nth_error("providers:\n" PROVIDER_LOCAL "model_groups:\n"
                     "  - {name: g, aliases: [fast], deployments: [{provider: l, model: m}]}\n"
                     "  - {name: h, aliases: [fast], deployments: [{provider: l, model: m}]}\n",
                     "fast", 2, "alias 'fast' is already an alias of model group 'g'");
    /* A group declared after an alias with its name: the group is the one reported. */
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n"
                     "  - {name: g, aliases: [h], deployments: [{provider: l, model: m}]}\n"
                     "  - {name: h, deployments: [{provider: l, model: m}]}\n",
                     "name: h", "model group name 'h' clashes with an alias of model group 'g'");
}

Test(config, bad_urls)
{
    const char *tail = "model_groups:\n  - name: g\n    deployments: [{provider: o, model: m}]\n";
    char yaml[512];
    struct {
        const char *provider, *needle, *text;
    } cases[] = {
        {"{name: o, type: openai, base_url: ftp://h/v1}", "ftp", "base_url: 'ftp://h/v1' must start with http:// or https://"},
        {"{name: o, type: openai, base_url: http:///v1}", "http:", "has no host"},
        {"{name: o, type: openai, base_url: 'http://h:70000/v1'}", "'http", "port out of range"},
        {"{name: o, type: openai, base_url: 'http://u:p@h/v1'}", "'http", "must not carry user:password@"},
        {"{name: o, type: openai, base_url: 'http://h x/v1'}", "'http", "must not contain spaces"},
        {"{name: o, type: gigachat, credentials: c, auth_url: oauth.example}", "oauth",
         "auth_url: 'oauth.example' must start with http:// or https://"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(yaml, sizeof yaml, "providers:\n  - %s\n%s", cases[i].provider, tail);
        expect_one_error(yaml, cases[i].needle, cases[i].text);
    }
}

Test(config, bad_listen_addresses)
{
    expect_one_error("listen: localhost\n", "localhost", "expected host:port");
    expect_one_error("listen: 127.0.0.1:0\n", "127", "port is out of range (1-65535)");
    expect_one_error("listen: 127.0.0.1:65536\n", "127", "port is out of range (1-65535)");
    expect_one_error("listen: 127.0.0.1:http\n", "127", "port must be a number");
    expect_one_error("listen: ':8080'\n", "':8080'", "expected host:port");
    expect_one_error("listen: '::1:8080'\n", "'::1", "IPv6 addresses go in brackets");
    expect_one_error("listen: '[zz]:8080'\n", "'[zz]", "not an IPv6 address");
    expect_one_error("listen: '[::1]8080'\n", "'[::1]", "expected [IPv6]:port");
    expect_one_error("listen: [a, b]\n", "a, b", "quote IPv6 addresses");

    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    cr_assert_eq(load("listen: 0.0.0.0:443\n", &cfg, &d), 0);
    cr_assert_str_eq(cfg->listen_host, "0.0.0.0");
    cr_assert_eq(cfg->listen_port, 443);
    mk_config_free(cfg);
    mk_config_diags_release(&d);
}

Test(config, memory_and_desk_sections)
{
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    int rc = load("memory:\n  session_ttl_s: 120\n  sync_ms: 250\n  retention_days: 0\n"
                  "  retention: {episodes: 90, links: 1}\ndesk: {analytics_refresh_ms: 1000}\n",
                  &cfg, &d);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_assert_eq(cfg->memory.session_ttl_s, 120);
    cr_assert_eq(cfg->memory.sync_ms, 250);
    cr_assert_eq(cfg->memory.retention_days, 0);
    cr_assert_eq(cfg->memory.retention.episodes, 90);
    cr_assert_eq(cfg->memory.retention.links, 1);
    cr_assert_eq(cfg->memory.retention.skills, -1);
    cr_assert_eq(cfg->desk.analytics_refresh_ms, 1000);
    mk_config_free(cfg);
    mk_config_diags_release(&d);

    /* Defaults without the sections. */
    rc = load("log_level: info\n", &cfg, &d);
    cr_assert_eq(rc, 0);
    cr_assert_eq(cfg->memory.session_ttl_s, 3600);
    cr_assert_eq(cfg->memory.sync_ms, 1000);
    cr_assert_eq(cfg->memory.retention_days, 30);
    cr_assert_eq(cfg->desk.analytics_refresh_ms, 5000);
    mk_config_free(cfg);
    mk_config_diags_release(&d);

    expect_one_error("memory: {session_ttl_s: 5}\n", "5}", "session_ttl_s: must be at least 60");
    expect_one_error("memory: {retention: {facts: -3}}\n", "-3", "facts: must not be negative");
    expect_one_error("memory: {retention: {fact: 3}}\n", "fact", "did you mean 'facts'");
    expect_one_error("desk: {analytics_refresh_ms: 10}\n", "10}", "analytics_refresh_ms: must be at least 100");
}

Test(config, workers_above_one_warns)
{
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    cr_assert_eq(load("workers: 4\n", &cfg, &d), 0);
    cr_assert_not(mk_config_diags_has_errors(&d));
    bool warned = false;
    for (size_t i = 0; i < d.count; i++)
        if (d.items[i].warning && strstr(d.items[i].message, "one event loop per process")) warned = true;
    cr_assert(warned, "workers > 1 says that one loop runs");
    mk_config_free(cfg);
    mk_config_diags_release(&d);
}

Test(config, numbers_out_of_range)
{
    expect_one_error("workers: 0\n", "0", "workers: must be greater than 0 (got 0)");
    expect_one_error("drain_timeout_ms: -1\n", "-1", "drain_timeout_ms: must not be negative (got -1)");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    timeouts: {connect_ms: 0}\n", "0}",
                     "connect_ms: must be greater than 0");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    retry: {max_attempts: 9}\n", "9}",
                     "max_attempts: must be at most 8");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    breaker: {error_rate: 1.5}\n", "1.5",
                     "error_rate: must be at most 1 (got 1.5)");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    breaker: {error_rate: -0.1}\n", "-0.1",
                     "error_rate: must not be negative");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n"
                     "    deployments: [{provider: l, model: m, weight: -2}]\n",
                     "-2", "weight: must not be negative (got -2)");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n"
                     "    deployments: [{provider: l, model: m, price: {input_per_1k: -1}}]\n",
                     "-1", "input_per_1k: must not be negative");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    retry: {backoff_base_ms: 500, backoff_max_ms: 100}\n",
                     "retry", "retry.backoff_max_ms (100) is less than retry.backoff_base_ms (500)");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    health: {interval_ms: 1000, timeout_ms: 5000}\n",
                     "health", "health.timeout_ms (5000) is longer than health.interval_ms (1000)");
    expect_one_error("providers:\n" PROVIDER_LOCAL "model_groups:\n  - name: g\n    policy: weighted\n"
                     "    deployments: [{provider: l, model: m, weight: 0}]\n",
                     "policy", "policy weighted needs at least one deployment with weight > 0");
    expect_one_error("workers: nan\n", "nan", "expected a whole number");
    expect_one_error("workers: 99999999999999999999\n", "999", "expected a whole number");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    breaker: {error_rate: inf}\n", "inf",
                     "expected a number");
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    breaker: {error_rate: 0x1p-1}\n", "0x1",
                     "expected a number");
}

Test(config, insecure_only_for_loopback)
{
    expect_one_error("providers:\n  - {name: o, type: openai, base_url: 'https://10.1.1.1/v1', insecure: true}\n"
                     "model_groups:\n  - name: g\n    deployments: [{provider: o, model: m}]\n",
                     "insecure", "insecure: true (no TLS verification) is only allowed for loopback");
    const char *ok[] = {"https://127.0.0.1:8443/v1", "https://localhost/v1", "'https://[::1]:8443/v1'",
                        "https://127.8.9.10/v1"};
    for (size_t i = 0; i < 4; i++) {
        char yaml[400];
        snprintf(yaml, sizeof yaml,
                 "providers:\n  - {name: o, type: openai, base_url: %s, insecure: true}\n"
                 "model_groups:\n  - name: g\n    deployments: [{provider: o, model: m}]\n",
                 ok[i]);
        struct mk_config *cfg = NULL;
        struct mk_config_diags d;
        int rc = load(yaml, &cfg, &d);
        if (rc) dump(&d);
        cr_assert_eq(rc, 0, "%s", ok[i]);
        cr_assert(cfg->providers[0].insecure);
        mk_config_free(cfg);
        mk_config_diags_release(&d);
    }
}

Test(config, headers_are_checked)
{
    const char *tail = "model_groups:\n  - name: g\n    deployments: [{provider: o, model: m}]\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "providers:\n  - {name: o, type: openai, base_url: http://h/v1, headers: {Content-Length: 5}}\n%s", tail);
    expect_one_error(yaml, "Content-Length", "'Content-Length' is set by Mayak's HTTP client");
    snprintf(yaml, sizeof yaml, "providers:\n  - {name: o, type: openai, base_url: http://h/v1, headers: {'X A': 5}}\n%s", tail);
    expect_one_error(yaml, "'X A'", "'X A' is not a valid header name");
    setenv("MK_TEST_HDR", "a\r\nInjected: 1", 1);
    snprintf(yaml, sizeof yaml, "providers:\n  - {name: o, type: openai, base_url: http://h/v1, headers: {X-A: '${MK_TEST_HDR}'}}\n%s", tail);
    expect_one_error(yaml, "'${MK", "must not contain line breaks");
    unsetenv("MK_TEST_HDR");
}

Test(config, require_tags_checked)
{
    /* One deployment lacks the tag: a warning, the group still loads. */
    const char *yaml = "providers:\n"
                       "  - {name: ru, type: local, tags: [residency:ru]}\n"
                       "  - {name: us, type: local}\n"
                       "model_groups:\n"
                       "  - name: g\n"
                       "    require_tags: [residency:ru]\n"
                       "    deployments:\n"
                       "      - {provider: ru, model: a}\n"
                       "      - {provider: us, model: b}\n"
                       "      - {provider: us, model: c, tags: [residency:ru]}\n";
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    cr_assert_eq(load(yaml, &cfg, &d), 0);
    cr_assert_eq(d.count, 1);
    cr_assert(d.items[0].warning);
    expect_diag(&d, 9, 10, "deployment us/b lacks tag 'residency:ru' required by model group 'g'");
    mk_config_free(cfg);
    mk_config_diags_release(&d);
    /* None carries it: an error at require_tags. */
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    require_tags: [residency:ru]\n", "require_tags",
                     "no deployment carries every tag in require_tags");
}

Test(config, default_model_group_must_exist)
{
    expect_one_error("default_model_group: mayak-locl\n", "default_model_group",
                     "default_model_group 'mayak-locl' is not a model group or alias (did you mean 'mayak-local'?)");
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    cr_assert_eq(load("default_model_group: default\n", &cfg, &d), 0, "an alias is fine");
    cr_assert_str_eq(cfg->default_model_group, "default");
    mk_config_free(cfg);
    mk_config_diags_release(&d);
}

Test(config, local_name_taken_by_other_type_without_groups)
{
    expect_one_error("providers:\n  - {name: local, type: openai, base_url: http://h/v1}\n", "name",
                     "'local' has type openai");
}

Test(config, many_errors_reported_at_once)
{
    struct mk_config *cfg = (struct mk_config *)1;
    struct mk_config_diags d = {0};
    int rc = mk_config_load(DATA "many_errors.yaml", &cfg, &d);
    cr_assert_eq(rc, MK_ECONFIG);
    cr_assert_null(cfg);
    expect_diag(&d, 1, 9, "listen: '127.0.0.1:99999': the port is out of range");
    expect_diag(&d, 2, 12, "log_level: unknown value 'verbose'");
    expect_diag(&d, 3, 10, "workers: must be greater than 0");
    expect_diag(&d, 6, 11, "type: unknown value 'opnai' (did you mean 'openai'?");
    expect_diag(&d, 8, 15, "base_url: 'ftp://x' must start with http:// or https://");
    expect_diag(&d, 12, 5, "insecure: true (no TLS verification) is only allowed for loopback");
    expect_diag(&d, 13, 5, "duplicate provider name 'b' (first defined at line 9)");
    expect_diag(&d, 13, 5, "type gigachat needs credentials");
    expect_diag(&d, 17, 5, "unknown key 'polcy' (did you mean 'policy'?)");
    expect_diag(&d, 18, 28, "connect_ms: expected a whole number, got 'abc'");
    expect_diag(&d, 19, 27, "error_rate: must be at most 1");
    expect_diag(&d, 21, 10, "deployment names unknown provider 'bb' (did you mean 'b'?)");
    expect_diag(&d, 21, 42, "weight: must not be negative");
    expect_diag(&d, 22, 10, "deployment: missing required key 'provider'");
    expect_diag(&d, 24, 13, "policy: unknown value 'fastest'");
    expect_diag(&d, 27, 16, "environment variable 'MK_TEST_SURELY_UNSET' is not set");
    cr_assert_eq(count_errors(&d), 16);

    mk_buf b = MK_BUF_INIT;
    cr_assert_eq(mk_config_diags_format(&d, &b), 0);
    cr_assert_not_null(strstr(b.data, DATA "many_errors.yaml:17:5: unknown key 'polcy' (did you mean 'policy'?)\n"));
    mk_buf_release(&b);
    mk_config_diags_release(&d);
}

/* ---- YAML syntax -------------------------------------------------------------------- */

Test(config, yaml_syntax_error_has_position)
{
    struct mk_config *cfg = (struct mk_config *)1;
    struct mk_config_diags d = {0};
    cr_assert_eq(mk_config_load(DATA "syntax_error.yaml", &cfg, &d), MK_ECONFIG);
    cr_assert_null(cfg);
    cr_assert_eq(d.count, 1);
    cr_assert_str_eq(d.items[0].file, DATA "syntax_error.yaml");
    cr_assert_eq(d.items[0].line, 3);
    cr_assert_gt(d.items[0].column, 0);
    cr_assert_not_null(strstr(d.items[0].message, "YAML syntax error"));
    mk_config_diags_release(&d);

    expect_nth_error("workers: 1\nworkers: 2\n", "workers", 2, "duplicate key");
    /* libfyaml's own position for this one is just after the quote. */
    expect_one_error("data_dir: \"open\n", "open", "double-quoted scalar without closing quote");
}

Test(config, one_document_only)
{
    expect_nth_error("workers: 1\n---\nworkers: 2\n", "workers", 2, "only one YAML document is allowed");
}

Test(config, anchors_and_aliases)
{
    const char *yaml = "x-timeouts: &t {connect_ms: 1234, total_ms: 99999}\n"
                       "providers:\n" PROVIDER_LOCAL "model_groups:\n"
                       "  - {name: a, timeouts: *t, deployments: [{provider: l, model: m}]}\n"
                       "  - {name: b, timeouts: *t, deployments: [{provider: l, model: m}]}\n";
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    int rc = load(yaml, &cfg, &d);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_assert_eq(cfg->model_groups[1].timeouts.connect_ms, 1234);
    cr_assert_eq(cfg->model_groups[1].timeouts.total_ms, 99999);
    mk_config_free(cfg);
    mk_config_diags_release(&d);
    expect_one_error("providers:\n" PROVIDER_LOCAL GROUP_LOCAL "    retry: *nothing\n", "*nothing",
                     "alias '*nothing' does not refer to an anchor");
}

/* ---- ${} expansion ------------------------------------------------------------------ */

Test(config, env_expansion)
{
    setenv("MK_T_DIR", "/var/lib/mayak", 1);
    setenv("MK_T_WORKERS", "4", 1);
    setenv("MK_T_EMPTY", "", 1);
    unsetenv("MK_T_UNSET");
    const char *yaml = "data_dir: ${MK_T_DIR}/data\n"
                       "workers: ${MK_T_WORKERS}\n"
                       "log_level: ${MK_T_UNSET:-warn}\n"
                       "listen: ${MK_T_EMPTY:-127.0.0.2}:${MK_T_UNSET:-81}\n"
                       "providers:\n"
                       "  - {name: l, type: local, tags: ['$${LITERAL}', 'cost$$5', '${MK_T_DIR}']}\n"
                       "  - {name: o, type: openai, base_url: http://h/v1, api_key: '${MK_T_EMPTY}'}\n"
                       "model_groups:\n  - name: g\n    deployments: [{provider: l, model: m}, {provider: o, model: m}]\n";
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    int rc = load(yaml, &cfg, &d);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(cfg->data_dir, "/var/lib/mayak/data");
    cr_assert_eq(cfg->workers, 4, "expanded before the number is read");
    cr_assert_str_eq(cfg->log_level, "warn");
    cr_assert_str_eq(cfg->listen_host, "127.0.0.2", ":- also covers set-but-empty");
    cr_assert_eq(cfg->listen_port, 81);
    cr_assert_str_eq(cfg->providers[0].tags[0], "${LITERAL}");
    cr_assert_str_eq(cfg->providers[0].tags[1], "cost$$5", "$$ without { stays");
    cr_assert_str_eq(cfg->providers[0].tags[2], "/var/lib/mayak");
    cr_assert_null(cfg->providers[1].api_key, "empty expansion = not set");
    mk_config_free(cfg);
    mk_config_diags_release(&d);
    unsetenv("MK_T_DIR");
    unsetenv("MK_T_WORKERS");
    unsetenv("MK_T_EMPTY");
}

Test(config, env_errors)
{
    unsetenv("MK_T_UNSET");
    expect_one_error("data_dir: /x/${MK_T_UNSET}\n", "/x", "data_dir: environment variable 'MK_T_UNSET' is not set");
    expect_one_error("data_dir: ${9BAD}\n", "$", "malformed variable reference");
    expect_one_error("data_dir: '${OPEN'\n", "'", "malformed variable reference");
    expect_one_error("data_dir: '${A-b}'\n", "'", "malformed variable reference");
    setenv("MK_T_NUM", "lots", 1);
    expect_one_error("workers: ${MK_T_NUM}\n", "$", "workers: expected a whole number, got 'lots'");
    unsetenv("MK_T_NUM");
    /* Two unset variables in one value: both named. */
    struct mk_config *cfg = NULL;
    struct mk_config_diags d;
    cr_assert_eq(load("data_dir: ${MK_T_A_UNSET}/${MK_T_B_UNSET}\n", &cfg, &d), MK_ECONFIG);
    cr_assert_eq(count_errors(&d), 2);
    expect_diag(&d, 1, 11, "'MK_T_A_UNSET'");
    expect_diag(&d, 1, 11, "'MK_T_B_UNSET'");
    cr_assert_null(cfg);
    mk_config_diags_release(&d);
}

/* ---- limits, API edges ------------------------------------------------------------------ */

Test(config, too_big)
{
    size_t len = MK_MAX_CONFIG_BYTES + 1;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, '#', len);
    struct mk_config *cfg = (struct mk_config *)1;
    struct mk_config_diags d = {0};
    cr_assert_eq(mk_config_load_string("big", big, len, &cfg, &d), MK_ETOOBIG);
    cr_assert_null(cfg);
    cr_assert_eq(d.count, 1);
    mk_config_diags_release(&d);

    char path[] = "/tmp/mk_config_big_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, big, len), (ssize_t)len);
    close(fd);
    cr_assert_eq(mk_config_load(path, &cfg, &d), MK_ETOOBIG);
    cr_assert_eq(d.count, 1);
    unlink(path);
    free(big);
    mk_config_diags_release(&d);
}

Test(config, unreadable_file)
{
    struct mk_config *cfg = (struct mk_config *)1;
    struct mk_config_diags d = {0};
    cr_assert_eq(mk_config_load("/nonexistent/mayak.yaml", &cfg, &d), MK_EIO);
    cr_assert_null(cfg);
    cr_assert_eq(d.count, 1);
    mk_buf b = MK_BUF_INIT;
    mk_config_diags_format(&d, &b);
    cr_assert_str_eq(b.data, "/nonexistent/mayak.yaml: cannot read the file: No such file or directory\n");
    mk_buf_release(&b);
    mk_config_diags_release(&d);
    cr_assert_eq(mk_config_load(MAYAK_SOURCE_DIR, &cfg, NULL), MK_EIO, "a directory");
}

Test(config, diags_may_be_null_and_nul_bytes_are_refused)
{
    struct mk_config *cfg = NULL;
    cr_assert_eq(mk_config_load_string("n", "workers: zz\n", 12, &cfg, NULL), MK_ECONFIG);
    cr_assert_null(cfg);
    expect_one_error("data_dir: \"a\\0b\"\n", "\"a", "NUL byte");
}

Test(config, diags_format)
{
    struct mk_config_diag items[3] = {
        {.file = "f.yaml", .line = 3, .column = 7, .message = "bad"},
        {.file = "f.yaml", .message = "whole file"},
        {.file = "f.yaml", .line = 9, .column = 1, .message = "hmm", .warning = true},
    };
    struct mk_config_diags d = {items, 3};
    mk_buf b = MK_BUF_INIT;
    cr_assert_eq(mk_config_diags_format(&d, &b), 0);
    cr_assert_str_eq(b.data, "f.yaml:3:7: bad\nf.yaml: whole file\nf.yaml:9:1: warning: hmm\n");
    mk_buf_release(&b);
    cr_assert(mk_config_diags_has_errors(&d));
    struct mk_config_diags w = {&items[2], 1};
    cr_assert_not(mk_config_diags_has_errors(&w));
    cr_assert_not(mk_config_diags_has_errors(NULL));
    mk_config_diags_release(NULL);
}

Test(config, names_round_trip)
{
    for (int t = MK_PROVIDER_OPENAI; t <= MK_PROVIDER_LOCAL; t++)
        cr_assert_eq(mk_provider_type_parse(mk_provider_type_name((enum mk_provider_type)t)), t);
    for (int p = MK_POLICY_PRIORITY; p <= MK_POLICY_LEAST_COST; p++)
        cr_assert_eq(mk_route_policy_parse(mk_route_policy_name((enum mk_route_policy)p)), p);
    cr_assert_str_eq(mk_provider_type_name(MK_PROVIDER_YANDEXGPT), "yandexgpt");
    cr_assert_str_eq(mk_route_policy_name(MK_POLICY_ROUND_ROBIN), "round_robin");
    cr_assert_eq(mk_provider_type_parse("OpenAI"), MK_EINVAL);
    cr_assert_eq(mk_route_policy_parse(NULL), MK_EINVAL);
}

Test(config, reload_check_flags_restart_only_settings)
{
    struct mk_config *a = mk_config_default(), *b = NULL;
    struct mk_config_diags d;
    cr_assert_eq(load("log_level: debug\nproviders: []\n", &b, &d), 0);
    mk_config_diags_release(&d);
    memset(&d, 0, sizeof d);
    cr_assert_eq(mk_config_reload_check(a, b, &d), 0, "log level and routing apply live");
    cr_assert_eq(d.count, 0);
    mk_config_free(b);

    cr_assert_eq(load("listen: 0.0.0.0:9000\ndata_dir: /srv/mayak\nworkers: 4\n", &b, &d), 0);
    mk_config_diags_release(&d);
    memset(&d, 0, sizeof d);
    cr_assert_eq(mk_config_reload_check(a, b, &d), 3);
    cr_assert_eq(d.count, 3);
    for (size_t i = 0; i < d.count; i++) cr_assert(d.items[i].warning);
    cr_assert_not_null(strstr(d.items[0].message, "listen changed from 127.0.0.1:8080 to 0.0.0.0:9000"));
    cr_assert_not_null(strstr(d.items[1].message, "data_dir changed"));
    cr_assert_not_null(strstr(d.items[2].message, "restart"));
    mk_config_diags_release(&d);
    cr_assert_eq(mk_config_reload_check(a, b, NULL), 3);
    mk_config_free(a);
    mk_config_free(b);
}

/* libfyaml 0.7.12 decodes runs of '' wrongly (and leaks); the loader decodes
 * single-quoted scalars itself. */
Test(config, single_quoted_scalars)
{
    struct {
        const char *yaml, *want;
    } cases[] = {
        {"data_dir: 'it''s'\n", "it's"},
        {"data_dir: '''''a'\n", "''a"},
        {"data_dir: '''''''''''a''b'\n", "'''''a'b"},
        {"data_dir: ''''\n", "'"},
        {"data_dir: 'a\n   b   \n  c'\n", "a b c"},
        {"data_dir: '  lead and trail  '\n", "  lead and trail  "},
        {"'data_dir': 'x'\n", "x"},
        {"data_dir: 'é''ü'\n", "é'ü"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mk_config *cfg = NULL;
        struct mk_config_diags d;
        int rc = load(cases[i].yaml, &cfg, &d);
        if (rc) dump(&d);
        cr_assert_eq(rc, 0, "case %zu", i);
        cr_assert_str_eq(cfg->data_dir, cases[i].want, "case %zu", i);
        mk_config_free(cfg);
        mk_config_diags_release(&d);
    }
    /* An empty line inside folds to a newline, which a path may not contain. */
    expect_one_error("data_dir: 'a\n\n  b'\n", "'a", "data_dir: must not contain control characters");
}
