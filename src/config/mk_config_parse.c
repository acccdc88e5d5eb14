/*
 * mk_config_parse: walks the YAML tree libfyaml built and fills struct mk_config.
 *
 * Every key the file may contain is a row in one of the key tables below (name,
 * kind, where it goes, allowed range, provider types it applies to). One generic
 * walker reads a mapping through its table, so unknown keys, wrong types and ranges
 * are handled the same way everywhere and the tables double as the key reference
 * behind docs/CONFIG.md. Checks that involve two fields of one entry (a provider's
 * type-specific required keys, backoff_max_ms >= backoff_base_ms) follow the walk of
 * that entry; checks across entries are in mk_config_check.c.
 *
 * The walker never stops at a problem: it reports it with the key's line and column
 * and carries on, so one run lists everything wrong with a file.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/mk_config_int.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"

_Static_assert(sizeof(enum mk_provider_type) == sizeof(int), "enums are stored through int");
_Static_assert(sizeof(enum mk_route_policy) == sizeof(int), "enums are stored through int");

#define FIELD(obj, off, T) ((T *)(void *)((char *)(obj) + (off)))
/* Upper bound for durations: a day. Longer is a typo, not a wish. */
#define MAX_MS 86400000.0

/* ---- key tables ------------------------------------------------------------------ */

enum key_kind {
    KK_STR,     /* text without control characters; empty -> NULL */
    KK_NAME,    /* a name others refer to: no spaces or control characters */
    KK_URL,     /* http(s)://host[:port][/path]; trailing '/' dropped */
    KK_PATH,    /* an absolute URL path ("/models") */
    KK_WORD,    /* one of `words`, stored as a string copy */
    KK_ENUM,    /* one of `words`, stored as its index (an enum) */
    KK_BOOL,
    KK_INT,     /* int */
    KK_U32,     /* uint32_t */
    KK_DOUBLE,
    KK_LIST,    /* list of names: char ** at off, size_t count at count_off */
    KK_HEADERS, /* mapping of extra HTTP headers -> "Name: value" lines */
    KK_MAP,     /* nested mapping read through `sub` into the struct at off */
    KK_FN,      /* read by `fn` */
};

#define KF_REQUIRED 1u  /* must be present */
#define KF_NONEMPTY 2u  /* may be absent (default stays) but not empty */
#define KF_TEXT 4u      /* KK_LIST: entries are free text (spaces allowed), not names */

/* Provider types as bits, for keys that only some types understand. */
#define T_OPENAI (1u << MK_PROVIDER_OPENAI)
#define T_GIGA (1u << MK_PROVIDER_GIGACHAT)
#define T_YANDEX (1u << MK_PROVIDER_YANDEXGPT)
#define T_LOCAL (1u << MK_PROVIDER_LOCAL)
#define T_REMOTE (T_OPENAI | T_GIGA | T_YANDEX)

struct key_table;
typedef void key_fn(struct cfg_ctx *c, struct fy_node *value, struct cfg_loc keyloc, void *obj);

struct key_spec {
    const char *name;
    enum key_kind kind;
    size_t off;
    size_t count_off;
    double min, max;           /* numbers: inclusive range; KK_LIST: max = entries */
    const char *const *words;  /* KK_WORD / KK_ENUM */
    const struct key_table *sub;
    key_fn *fn;
    unsigned types;            /* provider types it applies to; 0 = any */
    unsigned flags;
};

struct key_table {
    const char *what;          /* "provider", "retry" ... for messages */
    const struct key_spec *keys;
    size_t n;
    bool extensions;           /* keys starting with "x-" are ignored (homes for &anchors) */
};

#define TABLE(what, arr) {(what), (arr), sizeof(arr) / sizeof((arr)[0]), false}
/* The `seen` masks are 32 bits wide. */
#define MAX_TABLE_KEYS 32

/* What a mapping walk saw: which keys, and where. */
struct seen {
    uint32_t mask;
    uint32_t bad;              /* keys whose value was reported as wrong */
    struct cfg_loc at[MAX_TABLE_KEYS];
    struct cfg_loc where;      /* the mapping itself */
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", "off", NULL};
static const char *const giga_scopes[] = {"GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP", NULL};

static key_fn parse_listen, parse_providers, parse_groups, parse_deployments, parse_aliases;
static key_fn parse_agents, parse_agent_instructions, parse_agent_examples;
static key_fn parse_bus_url, parse_webhooks;

#define KSTR(n, T, f, ...) {.name = (n), .kind = KK_STR, .off = offsetof(T, f), __VA_ARGS__}
#define KNUM(n, k, T, f, lo, hi, ...) \
    {.name = (n), .kind = (k), .off = offsetof(T, f), .min = (lo), .max = (hi), __VA_ARGS__}
#define KLIST(n, T, f, cnt, maxn) \
    {.name = (n), .kind = KK_LIST, .off = offsetof(T, f), .count_off = offsetof(T, cnt), .max = (maxn)}

static const struct key_spec price_keys[] = {
    KNUM("input_per_1k", KK_DOUBLE, struct mk_price, input_per_1k, 0, 1e9),
    KNUM("output_per_1k", KK_DOUBLE, struct mk_price, output_per_1k, 0, 1e9),
};
static const struct key_table price_table = TABLE("price", price_keys);

static const struct key_spec timeout_keys[] = {
    KNUM("connect_ms", KK_U32, struct mk_timeouts, connect_ms, 1, MAX_MS),
    KNUM("first_token_ms", KK_U32, struct mk_timeouts, first_token_ms, 1, MAX_MS),
    KNUM("chunk_gap_ms", KK_U32, struct mk_timeouts, chunk_gap_ms, 1, MAX_MS),
    KNUM("total_ms", KK_U32, struct mk_timeouts, total_ms, 1, MAX_MS),
};
static const struct key_table timeout_table = TABLE("timeouts", timeout_keys);

static const struct key_spec retry_keys[] = {
    KNUM("max_attempts", KK_INT, struct mk_retry_config, max_attempts, 1, MK_MAX_ATTEMPTS),
    KNUM("backoff_base_ms", KK_U32, struct mk_retry_config, backoff_base_ms, 0, MAX_MS),
    KNUM("backoff_max_ms", KK_U32, struct mk_retry_config, backoff_max_ms, 0, MAX_MS),
    KNUM("budget_ratio", KK_DOUBLE, struct mk_retry_config, budget_ratio, 0, 1),
    KNUM("budget_min_per_s", KK_INT, struct mk_retry_config, budget_min_per_s, 0, 1000000),
};
static const struct key_table retry_table = TABLE("retry", retry_keys);

static const struct key_spec breaker_keys[] = {
    KNUM("consecutive_failures", KK_INT, struct mk_breaker_config, consecutive_failures, 1, 1000000),
    KNUM("error_rate", KK_DOUBLE, struct mk_breaker_config, error_rate, 0, 1),
    KNUM("min_requests", KK_INT, struct mk_breaker_config, min_requests, 1, 1000000000),
    KNUM("window_ms", KK_U32, struct mk_breaker_config, window_ms, 1, MAX_MS),
    KNUM("open_ms", KK_U32, struct mk_breaker_config, open_ms, 1, MAX_MS),
    KNUM("half_open_probes", KK_INT, struct mk_breaker_config, half_open_probes, 1, 1000),
};
static const struct key_table breaker_table = TABLE("breaker", breaker_keys);

static const struct key_spec health_keys[] = {
    {.name = "enabled", .kind = KK_BOOL, .off = offsetof(struct mk_health_config, enabled)},
    KNUM("interval_ms", KK_U32, struct mk_health_config, interval_ms, 1, MAX_MS),
    KNUM("timeout_ms", KK_U32, struct mk_health_config, timeout_ms, 1, MAX_MS),
};
static const struct key_table health_table = TABLE("health", health_keys);

static const struct key_spec deployment_keys[] = {
    {.name = "provider", .kind = KK_NAME, .off = offsetof(struct mk_deployment_config, provider),
     .flags = KF_REQUIRED},
    KSTR("model", struct mk_deployment_config, model, .max = MK_MAX_NAME_BYTES, .flags = KF_REQUIRED),
    KNUM("weight", KK_DOUBLE, struct mk_deployment_config, weight, 0, 1e6),
    KNUM("priority", KK_INT, struct mk_deployment_config, priority, -1000000, 1000000),
    {.name = "price", .kind = KK_MAP, .off = offsetof(struct mk_deployment_config, price), .sub = &price_table},
    KLIST("tags", struct mk_deployment_config, tags, ntags, MK_MAX_TAGS),
};
static const struct key_table deployment_table = TABLE("deployment", deployment_keys);

static const char *const cache_enabled_words[] = {"inherit", "false", "true", NULL};
_Static_assert(sizeof(enum mk_cache_enabled) == sizeof(int), "enums are stored through int");
static const struct key_spec cache_keys[] = {
    {.name = "enabled", .kind = KK_ENUM, .off = offsetof(struct mk_cache_config, enabled),
     .words = cache_enabled_words},
    KNUM("threshold", KK_DOUBLE, struct mk_cache_config, threshold, 0, 1),
    KNUM("ttl_s", KK_U32, struct mk_cache_config, ttl_s, 0, 31536000),
    KNUM("max_mb", KK_U32, struct mk_cache_config, max_mb, 0, 1048576),
    KNUM("max_temperature", KK_DOUBLE, struct mk_cache_config, max_temperature, 0, 2),
};
static const struct key_table cache_table = TABLE("cache", cache_keys);

static const struct key_spec group_keys[] = {
    {.name = "name", .kind = KK_NAME, .off = offsetof(struct mk_model_group_config, name), .flags = KF_REQUIRED},
    {.name = "policy", .kind = KK_ENUM, .off = offsetof(struct mk_model_group_config, policy),
     .words = cfg_policy_names},
    {.name = "aliases", .kind = KK_FN, .fn = parse_aliases},
    KLIST("require_tags", struct mk_model_group_config, require_tags, nrequire_tags, MK_MAX_TAGS),
    {.name = "timeouts", .kind = KK_MAP, .off = offsetof(struct mk_model_group_config, timeouts),
     .sub = &timeout_table},
    {.name = "retry", .kind = KK_MAP, .off = offsetof(struct mk_model_group_config, retry), .sub = &retry_table},
    {.name = "breaker", .kind = KK_MAP, .off = offsetof(struct mk_model_group_config, breaker),
     .sub = &breaker_table},
    {.name = "health", .kind = KK_MAP, .off = offsetof(struct mk_model_group_config, health),
     .sub = &health_table},
    {.name = "deployments", .kind = KK_FN, .fn = parse_deployments, .flags = KF_REQUIRED},
    {.name = "cache", .kind = KK_MAP, .off = offsetof(struct mk_model_group_config, cache), .sub = &cache_table},
};
static const struct key_table group_table = TABLE("model group", group_keys);

static const struct key_spec provider_keys[] = {
    {.name = "name", .kind = KK_NAME, .off = offsetof(struct mk_provider_config, name), .flags = KF_REQUIRED},
    {.name = "type", .kind = KK_ENUM, .off = offsetof(struct mk_provider_config, type),
     .words = cfg_provider_type_names, .flags = KF_REQUIRED},
    {.name = "base_url", .kind = KK_URL, .off = offsetof(struct mk_provider_config, base_url), .types = T_REMOTE},
    KSTR("api_key", struct mk_provider_config, api_key, .types = T_OPENAI | T_YANDEX),
    KSTR("iam_token", struct mk_provider_config, iam_token, .types = T_YANDEX),
    KSTR("folder_id", struct mk_provider_config, folder_id, .types = T_YANDEX),
    {.name = "auth_url", .kind = KK_URL, .off = offsetof(struct mk_provider_config, auth_url), .types = T_GIGA},
    KSTR("credentials", struct mk_provider_config, credentials, .types = T_GIGA),
    {.name = "scope", .kind = KK_WORD, .off = offsetof(struct mk_provider_config, scope), .words = giga_scopes,
     .types = T_GIGA},
    KSTR("ca_file", struct mk_provider_config, ca_file, .types = T_REMOTE),
    {.name = "insecure", .kind = KK_BOOL, .off = offsetof(struct mk_provider_config, insecure), .types = T_REMOTE},
    KLIST("tags", struct mk_provider_config, tags, ntags, MK_MAX_TAGS),
    {.name = "headers", .kind = KK_HEADERS, .types = T_REMOTE},
    {.name = "price", .kind = KK_MAP, .off = offsetof(struct mk_provider_config, price), .sub = &price_table},
    {.name = "health_path", .kind = KK_PATH, .off = offsetof(struct mk_provider_config, health_path),
     .types = T_REMOTE},
};
static const struct key_table provider_table = TABLE("provider", provider_keys);

static const char *const auth_required_words[] = {"auto", "false", "true", NULL};
static const char *const audit_hashes[] = {"streebog256", "sha256", NULL};
static const char *const injection_modes[] = {"block", "flag", "off", NULL};
static const char *const pii_modes[] = {"placeholder", "redact", "mask", "hash", "off", NULL};

static const struct key_spec jwt_keys[] = {
    KSTR("issuer", struct mk_jwt_config, issuer),
    KSTR("audience", struct mk_jwt_config, audience),
    KSTR("jwks_file", struct mk_jwt_config, jwks_file),
    {.name = "jwks_url", .kind = KK_URL, .off = offsetof(struct mk_jwt_config, jwks_url)},
    {.name = "tenant_claim", .kind = KK_NAME, .off = offsetof(struct mk_jwt_config, tenant_claim)},
    {.name = "role_claim", .kind = KK_NAME, .off = offsetof(struct mk_jwt_config, role_claim)},
    KNUM("clock_skew_s", KK_U32, struct mk_jwt_config, clock_skew_s, 0, 3600),
};
static const struct key_table jwt_table = TABLE("auth.jwt", jwt_keys);

static const struct key_spec auth_keys[] = {
    {.name = "required", .kind = KK_ENUM, .off = offsetof(struct mk_auth_config, required),
     .words = auth_required_words},
    {.name = "local_admin", .kind = KK_BOOL, .off = offsetof(struct mk_auth_config, local_admin)},
    {.name = "jwt", .kind = KK_MAP, .off = offsetof(struct mk_auth_config, jwt), .sub = &jwt_table},
};
static const struct key_table auth_table = TABLE("auth", auth_keys);

static const struct key_spec role_limit_keys[] = {
    KNUM("rpm", KK_U32, struct mk_role_limits, rpm, 0, 1e9),
    KNUM("tpm", KK_U32, struct mk_role_limits, tpm, 0, 4e9),
};
static const struct key_table role_limit_table = TABLE("role limits", role_limit_keys);

static const struct key_spec limits_keys[] = {
    {.name = "fail_closed", .kind = KK_BOOL, .off = offsetof(struct mk_limits_config, fail_closed)},
    {.name = "user", .kind = KK_MAP, .off = offsetof(struct mk_limits_config, user), .sub = &role_limit_table},
    {.name = "developer", .kind = KK_MAP, .off = offsetof(struct mk_limits_config, developer),
     .sub = &role_limit_table},
    {.name = "operator", .kind = KK_MAP, .off = offsetof(struct mk_limits_config, operator_),
     .sub = &role_limit_table},
    {.name = "admin", .kind = KK_MAP, .off = offsetof(struct mk_limits_config, admin), .sub = &role_limit_table},
};
static const struct key_table limits_table = TABLE("limits", limits_keys);

static const struct key_spec audit_keys[] = {
    {.name = "enabled", .kind = KK_BOOL, .off = offsetof(struct mk_audit_config, enabled)},
    {.name = "hash", .kind = KK_WORD, .off = offsetof(struct mk_audit_config, hash), .words = audit_hashes},
    {.name = "chain", .kind = KK_NAME, .off = offsetof(struct mk_audit_config, chain)},
};
static const struct key_table audit_table = TABLE("audit", audit_keys);

static const struct key_spec guard_keys[] = {
    {.name = "injection", .kind = KK_WORD, .off = offsetof(struct mk_guard_config, injection),
     .words = injection_modes},
    KNUM("block_threshold", KK_DOUBLE, struct mk_guard_config, block_threshold, 0, 1),
    {.name = "pii", .kind = KK_WORD, .off = offsetof(struct mk_guard_config, pii), .words = pii_modes},
    {.name = "jurisdiction", .kind = KK_NAME, .off = offsetof(struct mk_guard_config, jurisdiction)},
    {.name = "output_block", .kind = KK_LIST, .off = offsetof(struct mk_guard_config, output_block),
     .count_off = offsetof(struct mk_guard_config, noutput_block), .max = MK_GUARD_OUTPUT_MAX_RULES, .flags = KF_TEXT},
    {.name = "output_patterns", .kind = KK_LIST, .off = offsetof(struct mk_guard_config, output_patterns),
     .count_off = offsetof(struct mk_guard_config, noutput_patterns), .max = MK_GUARD_OUTPUT_MAX_RULES,
     .flags = KF_TEXT},
};
static const struct key_table guard_table = TABLE("guard", guard_keys);

struct url_holder { char *url; };
static const struct key_spec url_keys[] = {
    KSTR("url", struct url_holder, url, .flags = KF_NONEMPTY),
};
static const struct key_table store_table = TABLE("store", url_keys);
static const struct key_table kv_table = TABLE("kv", url_keys);

/* Support desk agents. The caps match src/desk/mk_desk.h (config cannot include it). */
#define CFG_MAX_AGENTS 64
#define CFG_MAX_AGENT_EXAMPLES 1000
#define CFG_MAX_EXAMPLE_BYTES 1000
#define CFG_MAX_INSTRUCTIONS_BYTES (16 * 1024)
static const struct key_spec agent_keys[] = {
    {.name = "id", .kind = KK_NAME, .off = offsetof(struct mk_agent_config, id), .flags = KF_REQUIRED},
    KSTR("name", struct mk_agent_config, name, .max = MK_MAX_NAME_BYTES),
    KSTR("description", struct mk_agent_config, description, .max = 1000),
    KLIST("knowledge", struct mk_agent_config, knowledge, nknowledge, MK_MAX_TAGS),
    {.name = "instructions", .kind = KK_FN, .fn = parse_agent_instructions},
    {.name = "model_group", .kind = KK_NAME, .off = offsetof(struct mk_agent_config, model_group)},
    KNUM("escalation_threshold", KK_DOUBLE, struct mk_agent_config, escalation_threshold, 0, 1),
    {.name = "examples", .kind = KK_FN, .fn = parse_agent_examples, .flags = KF_REQUIRED},
};
static const struct key_table agent_table = TABLE("agent", agent_keys);

/* bus and webhooks (docs/BUS.md). The patterns are checked for their characters here
 * and fully by mk_webhooks_new (the bus part owns the grammar). */
static const struct key_spec bus_keys[] = {
    {.name = "url", .kind = KK_FN, .fn = parse_bus_url},
    KNUM("max_pending", KK_U32, struct mk_bus_config, max_pending, 1, 10000000),
};
static const struct key_table bus_table = TABLE("bus", bus_keys);

/* Retention is bounded at a century: longer is a typo, not a policy. */
static const struct key_spec retention_keys[] = {
    KNUM("episodes", KK_INT, struct mk_memory_retention_config, episodes, 0, 36500),
    KNUM("skills", KK_INT, struct mk_memory_retention_config, skills, 0, 36500),
    KNUM("facts", KK_INT, struct mk_memory_retention_config, facts, 0, 36500),
    KNUM("links", KK_INT, struct mk_memory_retention_config, links, 0, 36500),
    KNUM("history", KK_INT, struct mk_memory_retention_config, history, 0, 36500),
};
static const struct key_table retention_table = TABLE("memory retention", retention_keys);

static const struct key_spec memory_keys[] = {
    KNUM("session_ttl_s", KK_U32, struct mk_memory_config, session_ttl_s, 60, 7 * 24 * 3600),
    KNUM("sync_ms", KK_U32, struct mk_memory_config, sync_ms, 50, 3600000),
    KNUM("retention_days", KK_INT, struct mk_memory_config, retention_days, 0, 36500),
    {.name = "retention", .kind = KK_MAP, .off = offsetof(struct mk_memory_config, retention), .sub = &retention_table},
};
static const struct key_table memory_table = TABLE("memory", memory_keys);

static const struct key_spec desk_keys[] = {
    KNUM("analytics_refresh_ms", KK_U32, struct mk_desk_config, analytics_refresh_ms, 100, 3600000),
};
static const struct key_table desk_table = TABLE("desk", desk_keys);

static const struct key_spec webhook_keys[] = {
    {.name = "name", .kind = KK_NAME, .off = offsetof(struct mk_webhook_config, name)},
    {.name = "url", .kind = KK_URL, .off = offsetof(struct mk_webhook_config, url), .flags = KF_REQUIRED},
    KSTR("secret", struct mk_webhook_config, secret, .max = 1024, .flags = KF_REQUIRED),
    KLIST("events", struct mk_webhook_config, events, nevents, MK_MAX_TAGS),
    KNUM("max_attempts", KK_INT, struct mk_webhook_config, max_attempts, 1, 100),
    KNUM("timeout_ms", KK_U32, struct mk_webhook_config, timeout_ms, 1, MAX_MS),
    KNUM("backoff_base_ms", KK_U32, struct mk_webhook_config, backoff_base_ms, 1, MAX_MS),
    KNUM("backoff_max_ms", KK_U32, struct mk_webhook_config, backoff_max_ms, 1, MAX_MS),
};
static const struct key_table webhook_table = TABLE("webhook", webhook_keys);

static const struct key_spec top_keys[] = {
    {.name = "listen", .kind = KK_FN, .fn = parse_listen},
    KSTR("data_dir", struct mk_config, data_dir, .flags = KF_NONEMPTY),
    {.name = "log_level", .kind = KK_WORD, .off = offsetof(struct mk_config, log_level), .words = log_levels},
    {.name = "access_log", .kind = KK_BOOL, .off = offsetof(struct mk_config, access_log)},
    KNUM("drain_timeout_ms", KK_U32, struct mk_config, drain_timeout_ms, 0, MAX_MS),
    KNUM("workers", KK_INT, struct mk_config, workers, 1, CFG_MAX_WORKERS),
    /* 10000 = MK_BUSY_POLL_MAX_US (src/net/mk_busy_poll.h); config does not link net. */
    KNUM("busy_poll_us", KK_U32, struct mk_config, busy_poll_us, 0, 10000),
    {.name = "default_model_group", .kind = KK_NAME, .off = offsetof(struct mk_config, default_model_group)},
    {.name = "providers", .kind = KK_FN, .fn = parse_providers},
    {.name = "model_groups", .kind = KK_FN, .fn = parse_groups},
    {.name = "store", .kind = KK_MAP, .off = offsetof(struct mk_config, store_url), .sub = &store_table},
    {.name = "kv", .kind = KK_MAP, .off = offsetof(struct mk_config, kv_url), .sub = &kv_table},
    {.name = "auth", .kind = KK_MAP, .off = offsetof(struct mk_config, auth), .sub = &auth_table},
    {.name = "limits", .kind = KK_MAP, .off = offsetof(struct mk_config, limits), .sub = &limits_table},
    {.name = "audit", .kind = KK_MAP, .off = offsetof(struct mk_config, audit), .sub = &audit_table},
    {.name = "guard", .kind = KK_MAP, .off = offsetof(struct mk_config, guard), .sub = &guard_table},
    {.name = "cache", .kind = KK_MAP, .off = offsetof(struct mk_config, cache), .sub = &cache_table},
    {.name = "agents", .kind = KK_FN, .fn = parse_agents},
    {.name = "bus", .kind = KK_MAP, .off = offsetof(struct mk_config, bus), .sub = &bus_table},
    {.name = "webhooks", .kind = KK_FN, .fn = parse_webhooks},
    {.name = "memory", .kind = KK_MAP, .off = offsetof(struct mk_config, memory), .sub = &memory_table},
    {.name = "desk", .kind = KK_MAP, .off = offsetof(struct mk_config, desk), .sub = &desk_table},
};
static const struct key_table top_table = {"top level", top_keys, sizeof top_keys / sizeof top_keys[0], true};

#define FITS(arr) _Static_assert(sizeof(arr) / sizeof((arr)[0]) <= MAX_TABLE_KEYS, #arr " has too many keys")
FITS(price_keys);
FITS(timeout_keys);
FITS(retry_keys);
FITS(breaker_keys);
FITS(health_keys);
FITS(deployment_keys);
FITS(group_keys);
FITS(provider_keys);
FITS(top_keys);
FITS(jwt_keys);
FITS(auth_keys);
FITS(limits_keys);
FITS(guard_keys);
FITS(cache_keys);
FITS(agent_keys);
FITS(bus_keys);
FITS(webhook_keys);
FITS(retention_keys);
FITS(memory_keys);
FITS(desk_keys);

/* ---- nodes, places, budget ------------------------------------------------------- */

static struct cfg_loc token_loc(struct fy_token *t)
{
    struct cfg_loc l = {0, 0};
    const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
    if (m) {
        l.line = m->line + 1; /* libfyaml marks are 0-based */
        l.column = m->column + 1;
    }
    return l;
}

/* Where a node starts. libfyaml 0.7 exposes marks only on tokens, so a collection
 * is placed at its first key or item; an empty one at `fallback` (its key). */
static struct cfg_loc node_loc(struct fy_node *n, struct cfg_loc fallback)
{
    for (int depth = 0; n && depth < 8; depth++) {
        if (fy_node_is_scalar(n)) {
            struct cfg_loc l = token_loc(fy_node_get_scalar_token(n));
            /* libfyaml marks a quoted scalar after its quote and an alias after its '*';
             * point at the first character the user wrote instead. */
            enum fy_node_style st = fy_node_get_style(n);
            if (l.column > 1 && (st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED || st == FYNS_ALIAS))
                l.column--;
            return l.line ? l : fallback;
        }
        void *it = NULL;
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
        } else if (fy_node_is_sequence(n)) {
            n = fy_node_sequence_iterate(n, &it);
        } else {
            break;
        }
    }
    return fallback;
}

static bool charge(struct cfg_ctx *c, struct cfg_loc at)
{
    if (c->budget == 0) {
        if (!c->budget_spent)
            cfg_error(c, at, "the document is too large to check: more than %d nodes once aliases are followed",
                      CFG_MAX_NODES);
        c->budget_spent = true;
        return false;
    }
    c->budget--;
    return true;
}

/* Follows an alias to its anchor; NULL (reported) when it leads nowhere. */
static struct fy_node *deref(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc at)
{
    if (!charge(c, at)) return NULL;
    if (n && fy_node_is_alias(n)) {
        struct fy_node *r = fy_node_resolve_alias(n);
        if (!r) {
            size_t len = 0;
            const char *a = fy_node_get_scalar(n, &len);
            char q[80];
            cfg_quote(a ? a : "", a ? len : 0, q, sizeof q);
            cfg_error(c, at, "alias '*%s' does not refer to an anchor defined before it", q);
        }
        return r;
    }
    return n;
}

static bool is_null_scalar(struct fy_node *n)
{
    if (!n) return true;
    if (!fy_node_is_scalar(n) || fy_node_get_style(n) != FYNS_PLAIN) return false;
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s || len == 0) return true;
    return (len == 1 && s[0] == '~') || (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                                                      !memcmp(s, "NULL", 4)));
}

static const char *kind_of(struct fy_node *n)
{
    if (fy_node_is_mapping(n)) return "a mapping";
    if (fy_node_is_sequence(n)) return "a list";
    return "a scalar";
}

/* ---- scalar text ----------------------------------------------------------------- */

/* A scalar's content. tmp holds it when it had to be decoded here; the pointer is
 * valid until tmp or the document changes. NULL on out-of-memory. */
static const char *scalar_text(struct cfg_ctx *c, struct fy_node *n, size_t *len, mk_buf *tmp)
{
    *len = 0;
    if (fy_node_get_style(n) == FYNS_SINGLE_QUOTED && c->src) {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *a = t ? fy_token_start_mark(t) : NULL, *b = t ? fy_token_end_mark(t) : NULL;
        if (a && b && a->input_pos <= b->input_pos && b->input_pos <= c->srclen) {
            mk_buf_reset(tmp);
            if (cfg_sq_unescape(c->src + a->input_pos, b->input_pos - a->input_pos, tmp) != 0) {
                c->nomem = true;
                return NULL;
            }
            *len = tmp->len;
            return tmp->data;
        }
    }
    const char *s = fy_node_get_scalar(n, len);
    if (!s) *len = 0;
    return s ? s : "";
}

/* A mapping key's text: keys are plain strings, so an alias or a collection as a key
 * gives NULL. Decoded like values (see cfg_sq_unescape); not ${}-expanded. */
static const char *key_text(struct cfg_ctx *c, struct fy_node *k, size_t *len, mk_buf *tmp)
{
    *len = 0;
    if (!k || !fy_node_is_scalar(k) || fy_node_is_alias(k)) return NULL;
    return scalar_text(c, k, len, tmp);
}

enum { TXT_OK, TXT_NULL, TXT_BAD };

struct env_rep {
    struct cfg_ctx *c;
    struct cfg_loc at;
    const char *key;
};

static void env_report(void *user, const char *msg)
{
    struct env_rep *r = user;
    cfg_error(r->c, r->at, "%s: %s", r->key, msg);
}

/* The value of a scalar after ${} expansion, in out (NUL-terminated). *at gets the
 * value's place. TXT_NULL for an absent/null value; TXT_BAD when reported. */
static int get_text(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc keyloc, const char *key,
                    const char *expect, mk_buf *out, struct cfg_loc *at)
{
    mk_buf_reset(out);
    *at = node_loc(n, keyloc);
    if (!n) return TXT_NULL;
    n = deref(c, n, *at);
    if (!n) return TXT_BAD;
    if (!fy_node_is_scalar(n)) {
        cfg_error(c, *at, "%s: expected %s, got %s", key, expect, kind_of(n));
        return TXT_BAD;
    }
    if (is_null_scalar(n)) return TXT_NULL;
    size_t len = 0;
    mk_buf raw;
    mk_buf_init(&raw, 0);
    const char *s = scalar_text(c, n, &len, &raw);
    if (!s) return TXT_BAD;
    struct env_rep r = {c, *at, key};
    int rc = cfg_expand_env(s, len, out, env_report, &r);
    mk_buf_release(&raw);
    if (rc == MK_ENOMEM) {
        c->nomem = true;
        return TXT_BAD;
    }
    if (rc == MK_ETOOBIG) {
        cfg_error(c, *at, "%s: value too long after ${} expansion", key);
        return TXT_BAD;
    }
    if (rc) return TXT_BAD;
    if (memchr(out->data, '\0', out->len)) {
        cfg_error(c, *at, "%s: value contains a NUL byte", key);
        return TXT_BAD;
    }
    if (!mk_utf8_valid(out->data, out->len)) {
        cfg_error(c, *at, "%s: value is not valid UTF-8", key);
        return TXT_BAD;
    }
    return TXT_OK;
}

static bool has_ctl(const char *s, size_t len, bool allow_tab)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && !(allow_tab && ch == '\t')) || ch == 0x7f) return true;
    }
    return false;
}

static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || len > MK_MAX_NAME_BYTES) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f) return false;
    }
    return true;
}

static void set_str(struct cfg_ctx *c, char **slot, const char *s)
{
    free(*slot);
    *slot = s ? cfg_strdup(c, s) : NULL;
}

/* ---- values ------------------------------------------------------------------------ */

static void list_words(const char *const *words, char *out, size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; words[i] && used < outsz; i++) {
        int n = snprintf(out + used, outsz - used, "%s%s", i ? ", " : "", words[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static size_t count_words(const char *const *words)
{
    size_t n = 0;
    while (words[n]) n++;
    return n;
}

static void number_range_error(struct cfg_ctx *c, struct cfg_loc at, const struct key_spec *k, double v,
                               const char *text, bool integer)
{
    char q[80];
    cfg_quote(text, strlen(text), q, sizeof q);
    if (v < k->min) {
        if (k->min == 0) cfg_error(c, at, "%s: must not be negative (got %s)", k->name, q);
        else if (k->min == 1 && integer) cfg_error(c, at, "%s: must be greater than 0 (got %s)", k->name, q);
        else cfg_error(c, at, "%s: must be at least %.15g (got %s)", k->name, k->min, q);
    } else {
        cfg_error(c, at, "%s: must be at most %.15g (got %s)", k->name, k->max, q);
    }
}

static bool parse_integer(const char *s, long long *out)
{
    if (!*s || *s == ' ' || *s == '\t') return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end) return false;
    *out = v;
    return true;
}

static bool parse_real(const char *s, double *out)
{
    if (!*s) return false;
    /* strtod also takes hex floats, "inf" and "nan"; a config wants plain decimals. */
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) return (*out = true), true;
        if (!strcasecmp(s, no[i])) return (*out = false), true;
    }
    return false;
}

/* A list of names (tags, aliases). *locs (optional) gets each entry's place. */
static void parse_name_list(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc keyloc, const char *key,
                            size_t max, char ***items, size_t *nitems, struct cfg_loc **locs, bool free_text)
{
    struct cfg_loc at = node_loc(n, keyloc);
    if (n && !(n = deref(c, n, at))) return;
    if (is_null_scalar(n)) {
        cfg_free_strv(*items, *nitems);
        *items = NULL;
        *nitems = 0;
        return;
    }
    if (!fy_node_is_sequence(n)) {
        cfg_error(c, at, "%s: expected a list such as [a, b], got %s", key, kind_of(n));
        return;
    }
    int count = fy_node_sequence_item_count(n);
    if (count < 0) count = 0;
    if ((size_t)count > max) {
        cfg_error(c, at, "%s: too many entries (%d; the limit is %zu)", key, count, max);
        return;
    }
    char **v = calloc((size_t)count + 1, sizeof *v);
    struct cfg_loc *lv = locs ? calloc((size_t)count + 1, sizeof *lv) : NULL;
    if (!v || (locs && !lv)) {
        free(v);
        free(lv);
        c->nomem = true;
        return;
    }
    size_t got = 0;
    mk_buf text;
    mk_buf_init(&text, MK_MAX_CONFIG_BYTES);
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
        struct cfg_loc iat;
        int r = get_text(c, item, at, key, "a string", &text, &iat);
        if (r == TXT_BAD) continue;
        if (r == TXT_NULL || text.len == 0) {
            cfg_error(c, iat, "%s: entries must not be empty", key);
            continue;
        }
        if (free_text && (has_ctl(text.data, text.len, false) || text.len > MK_MAX_NAME_BYTES)) {
            cfg_error(c, iat, "%s: entries must be one line of at most %d bytes", key, MK_MAX_NAME_BYTES);
            continue;
        }
        if (!free_text && !valid_name(text.data, text.len)) {
            char q[80];
            cfg_quote(text.data, text.len, q, sizeof q);
            cfg_error(c, iat, "%s: '%s' is not a valid name (no spaces or control characters, at most %d bytes)",
                      key, q, MK_MAX_NAME_BYTES);
            continue;
        }
        if (lv) lv[got] = iat;
        if ((v[got] = cfg_strdup(c, text.data)) != NULL) got++;
    }
    mk_buf_release(&text);
    cfg_free_strv(*items, *nitems);
    *items = v;
    *nitems = got;
    if (locs) {
        free(*locs);
        *locs = lv;
    }
}

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Headers the HTTP client sets itself; a second copy would corrupt the request. */
static bool reserved_header(const char *name)
{
    static const char *const names[] = {"host", "content-length", "transfer-encoding", "connection",
                                        "upgrade", "te", "trailer", "keep-alive", "expect"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i])) return true;
    return false;
}

static void parse_headers(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc keyloc,
                          struct mk_provider_config *p)
{
    struct cfg_loc at = node_loc(n, keyloc);
    if (n && !(n = deref(c, n, at))) return;
    if (is_null_scalar(n)) return;
    if (!fy_node_is_mapping(n)) {
        cfg_error(c, at, "headers: expected a mapping such as {X-Name: value}, got %s", kind_of(n));
        return;
    }
    int count = fy_node_mapping_item_count(n);
    if (count < 0) count = 0;
    if (count > MK_MAX_EXTRA_HEADERS) {
        cfg_error(c, at, "headers: too many entries (%d; the limit is %d)", count, MK_MAX_EXTRA_HEADERS);
        return;
    }
    char **v = calloc((size_t)count + 1, sizeof *v);
    if (!v) {
        c->nomem = true;
        return;
    }
    size_t got = 0;
    mk_buf val, line, ktmp;
    mk_buf_init(&val, MK_MAX_CONFIG_BYTES);
    mk_buf_init(&line, 0);
    mk_buf_init(&ktmp, 0);
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        struct cfg_loc kat = node_loc(k, at);
        if (!charge(c, kat)) break;
        size_t klen = 0;
        const char *ks = key_text(c, k, &klen, &ktmp);
        bool ok = ks && klen > 0 && klen <= MK_MAX_NAME_BYTES;
        for (size_t i = 0; ok && i < klen; i++) ok = is_tchar(ks[i]);
        if (!ok) {
            char q[80];
            cfg_quote(ks ? ks : "", ks ? klen : 0, q, sizeof q);
            cfg_error(c, kat, "headers: '%s' is not a valid header name", q);
            continue;
        }
        char name[MK_MAX_NAME_BYTES + 1];
        memcpy(name, ks, klen);
        name[klen] = '\0';
        if (reserved_header(name)) {
            cfg_error(c, kat, "headers: '%s' is set by Mayak's HTTP client and cannot be configured", name);
            continue;
        }
        struct cfg_loc vat;
        int r = get_text(c, fy_node_pair_value(pair), kat, name, "a string", &val, &vat);
        if (r == TXT_BAD) continue;
        if (r == TXT_OK && has_ctl(val.data, val.len, true)) {
            cfg_error(c, vat, "headers: value of '%s' must not contain line breaks or control characters", name);
            continue;
        }
        mk_buf_reset(&line);
        if (mk_buf_printf(&line, "%s: %s", name, r == TXT_OK ? val.data : "") != 0) {
            c->nomem = true;
            break;
        }
        v[got++] = mk_buf_steal(&line, NULL);
    }
    mk_buf_release(&val);
    mk_buf_release(&line);
    mk_buf_release(&ktmp);
    cfg_free_strv(p->headers, p->nheaders);
    p->headers = v;
    p->nheaders = got;
}

static bool parse_mapping(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc fallback,
                          const struct key_table *t, void *obj, unsigned type_bit, struct seen *seen);

static void parse_value(struct cfg_ctx *c, const struct key_spec *k, struct fy_node *v, struct cfg_loc keyloc,
                        void *obj)
{
    char q[80];
    struct cfg_loc at;
    mk_buf text;
    mk_buf_init(&text, MK_MAX_CONFIG_BYTES);
    int r;
    switch (k->kind) {
    case KK_MAP: {
        struct seen sub;
        parse_mapping(c, v, keyloc, k->sub, FIELD(obj, k->off, char), 0, &sub);
        break;
    }
    case KK_FN:
        k->fn(c, v, keyloc, obj);
        break;
    case KK_LIST:
        parse_name_list(c, v, keyloc, k->name, (size_t)k->max, FIELD(obj, k->off, char **),
                        FIELD(obj, k->count_off, size_t), NULL, (k->flags & KF_TEXT) != 0);
        break;
    case KK_HEADERS:
        parse_headers(c, v, keyloc, obj);
        break;
    case KK_STR:
    case KK_NAME:
    case KK_URL:
    case KK_PATH:
        r = get_text(c, v, keyloc, k->name, "a string", &text, &at);
        if (r == TXT_BAD) break;
        if (r == TXT_NULL || text.len == 0) {
            if (k->flags & (KF_REQUIRED | KF_NONEMPTY)) cfg_error(c, at, "%s: must not be empty", k->name);
            else set_str(c, FIELD(obj, k->off, char *), NULL);
            break;
        }
        cfg_quote(text.data, text.len, q, sizeof q);
        if (k->kind == KK_NAME && !valid_name(text.data, text.len)) {
            cfg_error(c, at, "%s: '%s' is not a valid name (no spaces or control characters, at most %d bytes)",
                      k->name, q, MK_MAX_NAME_BYTES);
            break;
        }
        if (has_ctl(text.data, text.len, false)) {
            cfg_error(c, at, "%s: must not contain control characters or line breaks", k->name);
            break;
        }
        if (k->max > 0 && text.len > (size_t)k->max) {
            cfg_error(c, at, "%s: longer than %.0f bytes", k->name, k->max);
            break;
        }
        if (k->kind == KK_URL) {
            char host[MK_MAX_NAME_BYTES + 1];
            size_t path_at = 0;
            const char *why = cfg_url_split(text.data, host, sizeof host, &path_at);
            if (why) {
                cfg_error(c, at, "%s: '%s' %s", k->name, q, why);
                break;
            }
            while (text.len > path_at && text.data[text.len - 1] == '/') text.data[--text.len] = '\0';
        }
        if (k->kind == KK_PATH && (text.data[0] != '/' || strchr(text.data, ' '))) {
            cfg_error(c, at, "%s: '%s' must be a path starting with '/'", k->name, q);
            break;
        }
        set_str(c, FIELD(obj, k->off, char *), text.data);
        break;
    case KK_WORD:
    case KK_ENUM: {
        char allowed[200];
        list_words(k->words, allowed, sizeof allowed);
        r = get_text(c, v, keyloc, k->name, "a word", &text, &at);
        if (r == TXT_BAD) break;
        if (r == TXT_NULL) {
            cfg_error(c, at, "%s: must be one of: %s", k->name, allowed);
            break;
        }
        size_t nw = count_words(k->words), i;
        for (i = 0; i < nw; i++)
            if (!strcmp(text.data, k->words[i])) break;
        if (i == nw) {
            cfg_quote(text.data, text.len, q, sizeof q);
            const char *sug = cfg_suggest(text.data, k->words, nw);
            if (sug)
                cfg_error(c, at, "%s: unknown value '%s' (did you mean '%s'? allowed: %s)", k->name, q, sug, allowed);
            else
                cfg_error(c, at, "%s: unknown value '%s' (allowed: %s)", k->name, q, allowed);
            break;
        }
        if (k->kind == KK_ENUM) *FIELD(obj, k->off, int) = (int)i;
        else set_str(c, FIELD(obj, k->off, char *), k->words[i]);
        break;
    }
    case KK_BOOL:
        r = get_text(c, v, keyloc, k->name, "true or false", &text, &at);
        if (r == TXT_BAD) break;
        if (r == TXT_NULL || !parse_bool(text.data, FIELD(obj, k->off, bool))) {
            cfg_quote(r == TXT_OK ? text.data : "", r == TXT_OK ? text.len : 0, q, sizeof q);
            cfg_error(c, at, "%s: expected true or false, got '%s'", k->name, q);
        }
        break;
    case KK_INT:
    case KK_U32:
    case KK_DOUBLE: {
        bool integer = k->kind != KK_DOUBLE;
        r = get_text(c, v, keyloc, k->name, "a number", &text, &at);
        if (r == TXT_BAD) break;
        long long iv = 0;
        double dv = 0;
        bool ok = r == TXT_OK && (integer ? parse_integer(text.data, &iv) : parse_real(text.data, &dv));
        if (!ok) {
            cfg_quote(r == TXT_OK ? text.data : "", r == TXT_OK ? text.len : 0, q, sizeof q);
            cfg_error(c, at, "%s: expected %s, got '%s'", k->name, integer ? "a whole number" : "a number", q);
            break;
        }
        if (integer) dv = (double)iv;
        if (dv < k->min || dv > k->max) {
            number_range_error(c, at, k, dv, text.data, integer);
            break;
        }
        if (k->kind == KK_INT) *FIELD(obj, k->off, int) = (int)iv;
        else if (k->kind == KK_U32) *FIELD(obj, k->off, uint32_t) = (uint32_t)iv;
        else *FIELD(obj, k->off, double) = dv;
        break;
    }
    }
    mk_buf_release(&text);
}

static const char *key_names_list(const struct key_table *t, char *out, size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->n && used < outsz; i++) {
        int w = snprintf(out + used, outsz - used, "%s%s", i ? ", " : "", t->keys[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
    return out;
}

/* Reads mapping n through table t into obj. type_bit (0 = no check) rejects keys
 * that do not apply to a provider's type. Returns false when n is not a mapping. */
static bool parse_mapping(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc fallback,
                          const struct key_table *t, void *obj, unsigned type_bit, struct seen *seen)
{
    memset(seen, 0, sizeof *seen);
    seen->where = node_loc(n, fallback);
    if (n && !(n = deref(c, n, seen->where))) return false;
    /* A null value (`retry:` with nothing) reads as an empty mapping: all defaults. */
    bool empty = is_null_scalar(n);
    if (!empty && !fy_node_is_mapping(n)) {
        cfg_error(c, seen->where, "%s: expected a mapping of keys, got %s", t->what, kind_of(n));
        return false;
    }
    mk_buf ktmp;
    mk_buf_init(&ktmp, 0);
    void *it = NULL;
    struct fy_node_pair *pair;
    while (!empty && (pair = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        struct cfg_loc kat = node_loc(k, seen->where);
        if (!charge(c, kat)) break;
        size_t klen = 0;
        const char *ks = key_text(c, k, &klen, &ktmp);
        char key[64];
        if (!ks || klen == 0 || klen >= sizeof key || memchr(ks, '\0', klen)) {
            char q[80];
            cfg_quote(ks ? ks : "", ks ? klen : 0, q, sizeof q);
            cfg_error(c, kat, "unknown key '%s' in %s", q, t->what);
            continue;
        }
        memcpy(key, ks, klen);
        key[klen] = '\0';
        if (t->extensions && klen > 2 && key[0] == 'x' && key[1] == '-') continue;
        size_t i;
        for (i = 0; i < t->n; i++)
            if (!strcmp(key, t->keys[i].name)) break;
        if (i == t->n) {
            const char *names[MAX_TABLE_KEYS];
            for (size_t j = 0; j < t->n; j++) names[j] = t->keys[j].name;
            const char *sug = cfg_suggest(key, names, t->n);
            char q[80];
            cfg_quote(key, klen, q, sizeof q);
            if (sug) {
                cfg_error(c, kat, "unknown key '%s' (did you mean '%s'?)", q, sug);
            } else {
                char all[400];
                cfg_error(c, kat, "unknown key '%s' (%s keys: %s)", q, t->what, key_names_list(t, all, sizeof all));
            }
            continue;
        }
        const struct key_spec *spec = &t->keys[i];
        if (type_bit && spec->types && !(spec->types & type_bit)) {
            const char *tname = "?";
            for (int b = 0; cfg_provider_type_names[b]; b++)
                if (type_bit == 1u << b) tname = cfg_provider_type_names[b];
            cfg_error(c, kat, "key '%s' does not apply to provider type '%s'", key, tname);
            continue;
        }
        seen->mask |= 1u << i;
        seen->at[i] = kat;
        size_t before = c->nerrors;
        parse_value(c, spec, fy_node_pair_value(pair), kat, obj);
        if (c->nerrors != before) seen->bad |= 1u << i;
    }
    mk_buf_release(&ktmp);
    for (size_t i = 0; i < t->n; i++) {
        if ((t->keys[i].flags & KF_REQUIRED) && !(seen->mask & (1u << i)))
            cfg_error(c, seen->where, "%s: missing required key '%s'", t->what, t->keys[i].name);
    }
    return true;
}

static int key_index(const struct key_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->keys[i].name, name)) return (int)i;
    return -1;
}

static bool was_seen(const struct key_table *t, const struct seen *s, const char *name)
{
    int i = key_index(t, name);
    return i >= 0 && (s->mask & (1u << i));
}

static struct cfg_loc seen_loc(const struct key_table *t, const struct seen *s, const char *name)
{
    int i = key_index(t, name);
    if (i < 0 || !(s->mask & (1u << i))) return s->where;
    return s->at[i];
}

/* ---- listen ------------------------------------------------------------------------ */

static void parse_listen(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_config *cfg = obj;
    struct cfg_loc at;
    mk_buf text;
    mk_buf_init(&text, MK_MAX_CONFIG_BYTES);
    int r = get_text(c, v, keyloc, "listen", "host:port (quote IPv6 addresses: \"[::1]:8080\")", &text, &at);
    if (r != TXT_BAD) {
        char host[MK_MAX_NAME_BYTES + 1];
        int port = 0;
        const char *why = cfg_listen_split(r == TXT_OK ? text.data : "", host, sizeof host, &port);
        if (why) {
            char q[80];
            cfg_quote(text.data ? text.data : "", text.len, q, sizeof q);
            cfg_error(c, at, "listen: '%s': %s", q, why);
        } else {
            set_str(c, &cfg->listen_host, host);
            cfg->listen_port = port;
        }
    }
    mk_buf_release(&text);
}

/* ---- providers ---------------------------------------------------------------------- */

/* The provider's type, read quietly ahead of the walk so that keys which do not apply
 * to it can be refused as they come. -1 when absent or unknown (the walk reports). */
static int peek_type(struct cfg_ctx *c, struct fy_node *n)
{
    if (n && fy_node_is_alias(n)) n = fy_node_resolve_alias(n);
    if (!n || !fy_node_is_mapping(n)) return -1;
    mk_buf tmp, text;
    mk_buf_init(&tmp, 0);
    mk_buf_init(&text, MK_MAX_NAME_BYTES);
    int t = -1;
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
        size_t klen = 0;
        const char *ks = key_text(c, fy_node_pair_key(pair), &klen, &tmp);
        if (!ks || klen != 4 || memcmp(ks, "type", 4) != 0) continue;
        struct fy_node *v = fy_node_pair_value(pair);
        if (v && fy_node_is_alias(v)) v = fy_node_resolve_alias(v);
        if (!v || !fy_node_is_scalar(v)) break;
        size_t len = 0;
        const char *s = scalar_text(c, v, &len, &tmp);
        if (s && cfg_expand_env(s, len, &text, NULL, NULL) == 0) {
            for (int i = 0; cfg_provider_type_names[i]; i++)
                if (!strcmp(text.data, cfg_provider_type_names[i])) t = i;
        }
        break;
    }
    mk_buf_release(&tmp);
    mk_buf_release(&text);
    return t;
}

/* A required-by-type key: point at it when written (empty), else at the entry. */
static struct cfg_loc need_at(const struct seen *s, const char *key)
{
    return seen_loc(&provider_table, s, key);
}

/* True when the key's value was already reported; saying "missing" too is noise. */
static bool broken(const struct seen *s, const char *key)
{
    int i = key_index(&provider_table, key);
    return i >= 0 && (s->bad & (1u << i));
}

static void provider_defaults_and_checks(struct cfg_ctx *c, struct mk_provider_config *p, const struct seen *s)
{
    const char *name = p->name ? p->name : "(unnamed)";
    switch (p->type) {
    case MK_PROVIDER_OPENAI:
        if (!p->base_url && !broken(s, "base_url"))
            cfg_error(c, need_at(s, "base_url"), "provider '%s': type openai needs base_url, e.g. http://127.0.0.1:8000/v1",
                      name);
        if (!p->health_path) p->health_path = cfg_strdup(c, "/models");
        break;
    case MK_PROVIDER_GIGACHAT:
        if (!p->credentials && !broken(s, "credentials"))
            cfg_error(c, need_at(s, "credentials"),
                      "provider '%s': type gigachat needs credentials (base64 of client_id:client_secret, "
                      "e.g. ${GIGACHAT_CREDENTIALS})",
                      name);
        if (!p->base_url) p->base_url = cfg_strdup(c, "https://gigachat.devices.sberbank.ru/api/v1");
        if (!p->auth_url) p->auth_url = cfg_strdup(c, "https://ngw.devices.sberbank.ru:9443/api/v2/oauth");
        if (!p->scope) p->scope = cfg_strdup(c, "GIGACHAT_API_PERS");
        break;
    case MK_PROVIDER_YANDEXGPT:
        if (!p->folder_id && !broken(s, "folder_id"))
            cfg_error(c, need_at(s, "folder_id"),
                      "provider '%s': type yandexgpt needs folder_id (the Yandex Cloud folder, b1g...)", name);
        if (!p->api_key && !p->iam_token && !broken(s, "api_key") && !broken(s, "iam_token"))
            cfg_error(c, was_seen(&provider_table, s, "api_key") ? need_at(s, "api_key") : need_at(s, "iam_token"),
                      "provider '%s': type yandexgpt needs api_key or iam_token", name);
        else if (p->api_key && p->iam_token)
            cfg_error(c, need_at(s, "iam_token"), "provider '%s': set api_key or iam_token, not both", name);
        if (!p->base_url) p->base_url = cfg_strdup(c, "https://llm.api.cloud.yandex.net");
        break;
    case MK_PROVIDER_LOCAL:
        break;
    }
    if (p->insecure) {
        const char *urls[2] = {p->base_url, p->type == MK_PROVIDER_GIGACHAT ? p->auth_url : NULL};
        for (int i = 0; i < 2; i++) {
            if (urls[i] && !cfg_url_is_loopback(urls[i])) {
                char q[80];
                cfg_quote(urls[i], strlen(urls[i]), q, sizeof q);
                cfg_error(c, seen_loc(&provider_table, s, "insecure"),
                          "provider '%s': insecure: true (no TLS verification) is only allowed for loopback "
                          "addresses, not %s",
                          name, q);
            }
        }
    }
    if (p->ca_file && access(p->ca_file, R_OK) != 0) {
        char q[80];
        cfg_quote(p->ca_file, strlen(p->ca_file), q, sizeof q);
        cfg_warn(c, seen_loc(&provider_table, s, "ca_file"),
                 "provider '%s': ca_file '%s' is not readable (%s); TLS to this provider will fail", name, q,
                 strerror(errno));
    }
}

static void parse_provider(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc fallback, size_t idx)
{
    struct mk_provider_config *p = &c->cfg->providers[idx];
    struct cfg_loc at = node_loc(n, fallback);
    p->line = at.line;
    p->column = at.column;
    int t = peek_type(c, n);
    struct seen s;
    if (!parse_mapping(c, n, fallback, &provider_table, p, t >= 0 ? 1u << t : 0, &s)) return;
    c->provider_name[idx] = seen_loc(&provider_table, &s, "name");
    if (t >= 0 && (int)p->type == t) provider_defaults_and_checks(c, p, &s);
}

/* The common start of a list of entries (providers, agents, webhooks): dereferences
 * *v, accepts an empty value, and reports a value that is not a list or is too long.
 * Returns how many items to read (0 = nothing to do) and sets *at to the list's place. */
static int list_begin(struct cfg_ctx *c, struct fy_node **v, struct cfg_loc keyloc, const char *expected,
                      const char *too_many, int max, struct cfg_loc *at)
{
    *at = node_loc(*v, keyloc);
    if (*v && !(*v = deref(c, *v, *at))) return 0;
    if (is_null_scalar(*v)) return 0;
    if (!fy_node_is_sequence(*v)) {
        cfg_error(c, *at, "%s, got %s", expected, kind_of(*v));
        return 0;
    }
    int count = fy_node_sequence_item_count(*v);
    if (count > max) {
        cfg_error(c, *at, "%s (%d; the limit is %d)", too_many, count, max);
        return 0;
    }
    return count > 0 ? count : 0;
}

static void parse_providers(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_config *cfg = obj;
    struct cfg_loc at;
    c->have_providers_key = true;
    int count = list_begin(c, &v, keyloc, "providers: expected a list of providers (- name: ... type: ...)",
                           "providers: too many providers", MK_MAX_PROVIDERS, &at);
    if (count == 0) return;
    cfg->providers = calloc((size_t)count, sizeof *cfg->providers);
    c->provider_name = calloc((size_t)count, sizeof *c->provider_name);
    if (!cfg->providers || !c->provider_name) {
        c->nomem = true;
        return;
    }
    c->nprovider_marks = (size_t)count;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it)) != NULL && cfg->nproviders < (size_t)count) {
        size_t idx = cfg->nproviders++;
        parse_provider(c, item, at, idx);
    }
}

/* ---- model groups ------------------------------------------------------------------- */

static void parse_aliases(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_model_group_config *g = obj;
    struct cfg_group_marks *m = &c->groups[c->cur_group];
    parse_name_list(c, v, keyloc, "aliases", MK_MAX_TAGS, &g->aliases, &g->naliases, &m->aliases, false);
    m->naliases = m->aliases ? g->naliases : 0;
}

static void parse_deployments(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_model_group_config *g = obj;
    struct cfg_group_marks *m = &c->groups[c->cur_group];
    struct cfg_loc at = node_loc(v, keyloc);
    if (v && !(v = deref(c, v, at))) return;
    if (!is_null_scalar(v) && !fy_node_is_sequence(v)) {
        cfg_error(c, at, "deployments: expected a list of {provider: ..., model: ...}, got %s", kind_of(v));
        return;
    }
    int count = is_null_scalar(v) ? 0 : fy_node_sequence_item_count(v);
    if (count <= 0) {
        cfg_error(c, at, "deployments: a model group needs at least one deployment");
        return;
    }
    if (count > MK_MAX_DEPLOYMENTS_PER_GROUP) {
        cfg_error(c, at, "deployments: too many deployments (%d; the limit is %d)", count,
                  MK_MAX_DEPLOYMENTS_PER_GROUP);
        return;
    }
    g->deployments = calloc((size_t)count, sizeof *g->deployments);
    m->dep_provider = calloc((size_t)count, sizeof *m->dep_provider);
    if (!g->deployments || !m->dep_provider) {
        c->nomem = true;
        return;
    }
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it)) != NULL && g->ndeployments < (size_t)count) {
        struct mk_deployment_config *d = &g->deployments[g->ndeployments];
        struct cfg_loc dat = node_loc(item, at);
        d->line = dat.line;
        d->column = dat.column;
        d->weight = 1;
        d->priority = (int)g->ndeployments; /* written order is the default priority */
        struct seen s;
        m->dep_provider[g->ndeployments] = dat;
        g->ndeployments++;
        m->ndeps = g->ndeployments;
        if (!parse_mapping(c, item, at, &deployment_table, d, 0, &s)) continue;
        d->has_price = was_seen(&deployment_table, &s, "price");
        m->dep_provider[g->ndeployments - 1] = seen_loc(&deployment_table, &s, "provider");
    }
}

static void parse_group(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc fallback, size_t idx)
{
    struct mk_model_group_config *g = &c->cfg->model_groups[idx];
    struct cfg_loc at = node_loc(n, fallback);
    cfg_group_defaults(g);
    g->line = at.line;
    g->column = at.column;
    c->cur_group = idx;
    c->groups[idx].name = at;
    struct seen s;
    if (!parse_mapping(c, n, fallback, &group_table, g, 0, &s)) return;
    const char *name = g->name ? g->name : "(unnamed)";
    c->groups[idx].name = seen_loc(&group_table, &s, "name");
    c->groups[idx].require_tags = seen_loc(&group_table, &s, "require_tags");
    if (g->retry.backoff_max_ms < g->retry.backoff_base_ms)
        cfg_error(c, seen_loc(&group_table, &s, "retry"),
                  "model group '%s': retry.backoff_max_ms (%u) is less than retry.backoff_base_ms (%u)", name,
                  (unsigned)g->retry.backoff_max_ms, (unsigned)g->retry.backoff_base_ms);
    if (g->health.timeout_ms > g->health.interval_ms)
        cfg_error(c, seen_loc(&group_table, &s, "health"),
                  "model group '%s': health.timeout_ms (%u) is longer than health.interval_ms (%u)", name,
                  (unsigned)g->health.timeout_ms, (unsigned)g->health.interval_ms);
    if (g->policy == MK_POLICY_WEIGHTED && g->ndeployments > 0) {
        double sum = 0;
        for (size_t i = 0; i < g->ndeployments; i++) sum += g->deployments[i].weight;
        if (sum <= 0)
            cfg_error(c, seen_loc(&group_table, &s, "policy"),
                      "model group '%s': policy weighted needs at least one deployment with weight > 0", name);
    }
}

static void parse_groups(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_config *cfg = obj;
    struct cfg_loc at = node_loc(v, keyloc);
    c->have_groups_key = true;
    if (v && !(v = deref(c, v, at))) return;
    if (is_null_scalar(v)) return;
    if (!fy_node_is_sequence(v)) {
        cfg_error(c, at, "model_groups: expected a list of model groups (- name: ... deployments: ...), got %s",
                  kind_of(v));
        return;
    }
    int count = fy_node_sequence_item_count(v);
    if (count <= 0) return;
    if (count > MK_MAX_MODEL_GROUPS) {
        cfg_error(c, at, "model_groups: too many groups (%d; the limit is %d)", count, MK_MAX_MODEL_GROUPS);
        return;
    }
    cfg->model_groups = calloc((size_t)count, sizeof *cfg->model_groups);
    c->groups = calloc((size_t)count, sizeof *c->groups);
    if (!cfg->model_groups || !c->groups) {
        c->nomem = true;
        return;
    }
    c->ngroup_marks = (size_t)count;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it)) != NULL && cfg->nmodel_groups < (size_t)count) {
        size_t idx = cfg->nmodel_groups++;
        parse_group(c, item, at, idx);
    }
}

/* ---- support desk agents ----------------------------------------------------------- */

/* Free text that may span lines (a YAML block scalar): tabs and line breaks allowed,
 * other control characters not. */
static bool text_ok(struct cfg_ctx *c, struct cfg_loc at, const char *key, const mk_buf *t, size_t max)
{
    for (size_t i = 0; i < t->len; i++) {
        unsigned char ch = (unsigned char)t->data[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') || ch == 0x7f) {
            cfg_error(c, at, "%s: must not contain control characters", key);
            return false;
        }
    }
    if (t->len > max) {
        cfg_error(c, at, "%s: longer than %zu bytes", key, max);
        return false;
    }
    return true;
}

static void parse_agent_instructions(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_agent_config *a = obj;
    mk_buf text;
    mk_buf_init(&text, MK_MAX_CONFIG_BYTES);
    struct cfg_loc at;
    int r = get_text(c, v, keyloc, "instructions", "a string", &text, &at);
    if (r == TXT_OK && text.len && text_ok(c, at, "instructions", &text, CFG_MAX_INSTRUCTIONS_BYTES))
        set_str(c, &a->instructions, text.data);
    else if (r == TXT_NULL || (r == TXT_OK && !text.len))
        set_str(c, &a->instructions, NULL);
    mk_buf_release(&text);
}

static void parse_agent_examples(struct cfg_ctx *c, struct fy_node *n, struct cfg_loc keyloc, void *obj)
{
    struct mk_agent_config *a = obj;
    struct cfg_loc at = node_loc(n, keyloc);
    if (n && !(n = deref(c, n, at))) return;
    if (is_null_scalar(n) || !fy_node_is_sequence(n)) {
        cfg_error(c, at, "examples: expected a list of example messages (- \"my printer jams\"), got %s",
                  n ? kind_of(n) : "nothing");
        return;
    }
    int count = fy_node_sequence_item_count(n);
    if (count <= 0) {
        cfg_error(c, at, "examples: an agent needs at least one example message for triage");
        return;
    }
    if (count > CFG_MAX_AGENT_EXAMPLES) {
        cfg_error(c, at, "examples: too many entries (%d; the limit is %d)", count, CFG_MAX_AGENT_EXAMPLES);
        return;
    }
    char **v = calloc((size_t)count + 1, sizeof *v);
    if (!v) {
        c->nomem = true;
        return;
    }
    size_t got = 0;
    mk_buf text;
    mk_buf_init(&text, MK_MAX_CONFIG_BYTES);
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
        struct cfg_loc iat;
        int r = get_text(c, item, at, "examples", "a string", &text, &iat);
        if (r == TXT_BAD) continue;
        if (r == TXT_NULL || text.len == 0) {
            cfg_error(c, iat, "examples: entries must not be empty");
            continue;
        }
        if (!text_ok(c, iat, "examples", &text, CFG_MAX_EXAMPLE_BYTES)) continue;
        if ((v[got] = cfg_strdup(c, text.data)) != NULL) got++;
    }
    mk_buf_release(&text);
    cfg_free_strv(a->examples, a->nexamples);
    a->examples = v;
    a->nexamples = got;
}

static void parse_agents(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_config *cfg = obj;
    struct cfg_loc at;
    int count = list_begin(c, &v, keyloc, "agents: expected a list of agents (- id: ... examples: [...])",
                           "agents: too many agents", CFG_MAX_AGENTS, &at);
    if (count == 0) return;
    cfg->agents = calloc((size_t)count, sizeof *cfg->agents);
    if (!cfg->agents) {
        c->nomem = true;
        return;
    }
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it)) != NULL && cfg->nagents < (size_t)count) {
        struct mk_agent_config *a = &cfg->agents[cfg->nagents++];
        struct cfg_loc aat = node_loc(item, at);
        a->line = aat.line;
        a->column = aat.column;
        struct seen s;
        if (!parse_mapping(c, item, at, &agent_table, a, 0, &s) || !a->id) continue;
        struct cfg_loc idat = seen_loc(&agent_table, &s, "id");
        if (strcmp(a->id, "human") == 0)
            cfg_error(c, idat, "agents: the id 'human' is reserved (it means a human operator)");
        for (size_t i = 0; i + 1 < cfg->nagents; i++)
            if (cfg->agents[i].id && strcmp(cfg->agents[i].id, a->id) == 0)
                cfg_error(c, idat, "agents: duplicate id '%s' (first declared on line %d)", a->id,
                          cfg->agents[i].line);
    }
}

/* ---- bus and webhooks ------------------------------------------------------------------ */

static void parse_bus_url(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_bus_config *b = obj;
    struct cfg_loc at;
    mk_buf text;
    mk_buf_init(&text, MK_MAX_CONFIG_BYTES);
    int r = get_text(c, v, keyloc, "url", "a string", &text, &at);
    if (r == TXT_OK && text.len > 0) {
        char q[80];
        cfg_quote(text.data, text.len, q, sizeof q);
        if (has_ctl(text.data, text.len, false) || text.len > 1024)
            cfg_error(c, at, "bus.url: must be one line of at most 1024 bytes");
        else if (!strncmp(text.data, "amqps://", 8))
            cfg_error(c, at, "bus.url: '%s': amqps:// (TLS) is not supported yet; use amqp://", q);
        else if (strcmp(text.data, "inproc") != 0 && strncmp(text.data, "amqp://", 7) != 0)
            cfg_error(c, at, "bus.url: '%s' must be \"inproc\" or \"amqp://user:pass@host:port/vhost\"", q);
        else
            set_str(c, &b->url, text.data);
    } else if (r != TXT_BAD) {
        cfg_error(c, at, "bus.url: must not be empty");
    }
    mk_buf_release(&text);
}

static void parse_webhooks(struct cfg_ctx *c, struct fy_node *v, struct cfg_loc keyloc, void *obj)
{
    struct mk_config *cfg = obj;
    struct cfg_loc at;
    int count = list_begin(c, &v, keyloc, "webhooks: expected a list (- url: ... secret: ... events: [...])",
                           "webhooks: too many entries", MK_MAX_PROVIDERS, &at);
    if (count == 0) return;
    cfg->webhooks = calloc((size_t)count, sizeof *cfg->webhooks);
    if (!cfg->webhooks) {
        c->nomem = true;
        return;
    }
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it)) != NULL && cfg->nwebhooks < (size_t)count) {
        struct mk_webhook_config *w = &cfg->webhooks[cfg->nwebhooks++];
        struct cfg_loc wat = node_loc(item, at);
        w->line = wat.line;
        w->column = wat.column;
        w->max_attempts = 6;
        w->timeout_ms = 10000;
        w->backoff_base_ms = 1000;
        w->backoff_max_ms = 60000;
        struct seen s;
        if (!parse_mapping(c, item, at, &webhook_table, w, 0, &s)) continue;
        if (!w->name) {
            char n[32];
            snprintf(n, sizeof n, "webhook-%zu", cfg->nwebhooks);
            w->name = cfg_strdup(c, n);
        }
        if (w->backoff_max_ms < w->backoff_base_ms)
            cfg_error(c, seen_loc(&webhook_table, &s, "backoff_max_ms"),
                      "webhook '%s': backoff_max_ms (%u) is less than backoff_base_ms (%u)", w->name ? w->name : "?",
                      (unsigned)w->backoff_max_ms, (unsigned)w->backoff_base_ms);
        if (w->secret && strlen(w->secret) < 16)
            cfg_warn(c, seen_loc(&webhook_table, &s, "secret"),
                     "webhook '%s': a secret shorter than 16 bytes is easy to guess", w->name ? w->name : "?");
        for (size_t i = 0; i < w->nevents; i++)
            if (strspn(w->events[i], "abcdefghijklmnopqrstuvwxyz0123456789_-.*#") != strlen(w->events[i]))
                cfg_error(c, seen_loc(&webhook_table, &s, "events"),
                          "webhook '%s': event pattern '%s' may only hold a-z 0-9 _ - . * #", w->name ? w->name : "?",
                          w->events[i]);
        for (size_t i = 0; i + 1 < cfg->nwebhooks; i++)
            if (w->name && cfg->webhooks[i].name && !strcmp(cfg->webhooks[i].name, w->name))
                cfg_error(c, wat, "webhooks: duplicate name '%s' (first declared on line %d)", w->name,
                          cfg->webhooks[i].line);
    }
}

/* ---- root --------------------------------------------------------------------------- */

void cfg_parse_root(struct cfg_ctx *c, struct fy_node *root)
{
    struct cfg_loc start = {1, 1};
    struct seen s;
    if (!root) return;
    if (root && !fy_node_is_alias(root) && fy_node_is_scalar(root) && !is_null_scalar(root)) {
        cfg_error(c, node_loc(root, start),
                  "the file must be a mapping of keys (listen: ..., providers: ..., model_groups: ...)");
        return;
    }
    if (!parse_mapping(c, root, start, &top_table, c->cfg, 0, &s)) return;
    c->default_group = seen_loc(&top_table, &s, "default_model_group");
}
