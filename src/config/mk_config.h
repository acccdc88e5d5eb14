/*
 * mk_config: Mayak's configuration, loaded from YAML (libfyaml) or the embedded
 * defaults. The whole tree is plain data owned by the mk_config; nothing in it
 * points at the YAML document after loading.
 *
 * Errors carry file:line:column (1-based) so `mayak config check` can report every
 * problem at once, not just the first. `${NAME}` in any scalar is replaced by the
 * environment variable NAME (an unset variable is an error naming it; `$${` writes a
 * literal `${`; `${NAME:-default}` uses `default` when NAME is unset or empty).
 * docs/CONFIG.md documents every key.
 */
#ifndef MK_CONFIG_H
#define MK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"

enum mk_provider_type {
    MK_PROVIDER_OPENAI = 0,  /* any OpenAI-compatible server */
    MK_PROVIDER_GIGACHAT,
    MK_PROVIDER_YANDEXGPT,
    MK_PROVIDER_LOCAL,       /* answers from the knowledge base, no LLM */
};

enum mk_route_policy {
    MK_POLICY_PRIORITY = 0,  /* first healthy deployment in order; the rest are fallbacks */
    MK_POLICY_WEIGHTED,      /* random by weight */
    MK_POLICY_ROUND_ROBIN,
    MK_POLICY_LEAST_LATENCY, /* lowest EWMA of time to first token */
    MK_POLICY_LEAST_COST,    /* lowest price per 1k tokens (input + output) */
};

struct mk_price {
    double input_per_1k;   /* currency units per 1,000 prompt tokens */
    double output_per_1k;  /* per 1,000 completion tokens */
};

struct mk_provider_config {
    char *name;
    enum mk_provider_type type;
    char *base_url;          /* openai: ".../v1"; gigachat: ".../api/v1"; yandexgpt: "https://llm.api.cloud.yandex.net" */
    char *api_key;           /* openai: Bearer key; yandexgpt: Api-Key; may be NULL */
    char *iam_token;         /* yandexgpt: Bearer IAM token instead of api_key */
    char *folder_id;         /* yandexgpt */
    char *auth_url;          /* gigachat OAuth token endpoint */
    char *credentials;       /* gigachat: base64 client_id:secret for Basic auth */
    char *scope;             /* gigachat: GIGACHAT_API_PERS | GIGACHAT_API_B2B | GIGACHAT_API_CORP */
    char *ca_file;           /* custom CA bundle (GigaChat needs the Russian Trusted Root CA) */
    bool insecure;           /* skip TLS verification; refused unless base_url is loopback */
    char **tags;             /* "residency:ru" ... */
    size_t ntags;
    char **headers;          /* extra "Name: value" lines sent upstream */
    size_t nheaders;
    struct mk_price price;   /* default price for this provider's deployments */
    char *health_path;       /* GET path for active health checks (relative to base_url); NULL = "/models" for openai */
    int line, column;        /* where it was declared, for messages */
};

struct mk_deployment_config {
    char *provider;          /* name of a provider */
    char *model;             /* the upstream model name */
    double weight;           /* weighted policy; default 1 */
    int priority;            /* priority policy: lower goes first; default = position */
    struct mk_price price;   /* overrides the provider's price when has_price */
    bool has_price;
    char **tags;             /* added to the provider's tags */
    size_t ntags;
    int line, column;
};

struct mk_timeouts {
    uint32_t connect_ms, first_token_ms, chunk_gap_ms, total_ms;
};

struct mk_retry_config {
    int max_attempts;        /* tries across deployments, first included; default 3 */
    uint32_t backoff_base_ms;/* default 25 */
    uint32_t backoff_max_ms; /* default 1000 */
    double budget_ratio;     /* retries allowed as a share of requests (default 0.2) ... */
    int budget_min_per_s;    /* ... plus this many per second regardless (default 10) */
};

struct mk_breaker_config {
    int consecutive_failures;/* open after this many in a row; default 5 */
    double error_rate;       /* or when the error share in the window exceeds this; default 0.5 */
    int min_requests;        /* ... with at least this many requests in the window; default 20 */
    uint32_t window_ms;      /* default 10000 */
    uint32_t open_ms;        /* stay open this long before half-open probes; default 5000 */
    int half_open_probes;    /* successes needed to close; default 2 */
};

struct mk_health_config {
    bool enabled;            /* default true when a provider has a health path */
    uint32_t interval_ms;    /* default 10000 */
    uint32_t timeout_ms;     /* default 2000 */
};

/* The response cache (`cache:` top level and per model group, docs/CACHE.md). At the
 * top level 0 means the built-in default; in a group, 0 (enabled: inherit) means the
 * top level's value. */
enum mk_cache_enabled { MK_CACHE_INHERIT = 0, MK_CACHE_OFF, MK_CACHE_ON };
struct mk_cache_config {
    enum mk_cache_enabled enabled; /* inherit (top level: on) | false | true */
    double threshold;        /* semantic similarity needed for a hit, 0..1 */
    uint32_t ttl_s;          /* entry lifetime */
    uint32_t max_mb;         /* top level only: memory cap of this node's cache */
    double max_temperature;  /* requests hotter than this are neither answered nor stored */
};

struct mk_model_group_config {
    char *name;
    enum mk_route_policy policy;
    struct mk_deployment_config *deployments;
    size_t ndeployments;
    char **require_tags;     /* compliance: every deployment used must carry these */
    size_t nrequire_tags;
    struct mk_timeouts timeouts;
    struct mk_retry_config retry;
    struct mk_breaker_config breaker;
    struct mk_health_config health;
    char **aliases;          /* other model names that select this group */
    size_t naliases;
    struct mk_cache_config cache; /* overrides of the top-level cache settings */
    int line, column;
};

/* auth: who may call (docs/AUTH.md). */
enum mk_auth_required { MK_AUTH_REQUIRED_AUTO = 0, MK_AUTH_REQUIRED_NO, MK_AUTH_REQUIRED_YES };

struct mk_jwt_config {
    char *issuer;            /* required "iss"; NULL = JWT bearer tokens are not accepted */
    char *audience;          /* required "aud" */
    char *jwks_file;         /* one of jwks_file / jwks_url */
    char *jwks_url;
    char *tenant_claim;      /* default "tenant" */
    char *role_claim;        /* default "role" */
    uint32_t clock_skew_s;   /* default 60 */
};

struct mk_auth_config {
    enum mk_auth_required required; /* auto: keys required unless listening on loopback */
    bool local_admin;        /* anonymous loopback callers act as admin (default: developer) */
    struct mk_jwt_config jwt;
};

struct mk_role_limits { uint32_t rpm, tpm; };

struct mk_limits_config {
    bool fail_closed;        /* refuse (503) when the kv holding the counters is down */
    struct mk_role_limits user, developer, operator_, admin; /* 0 = built-in defaults */
};

struct mk_audit_config {
    bool enabled;            /* default true */
    char *hash;              /* "streebog256" (default) | "sha256" */
    char *chain;             /* this process's chain; NULL = "main". One writer per chain:
                              * nodes sharing a store each need their own. */
};

/* The input guard: prompt injection and personal data (docs/GUARD.md, docs/PII.md). */
struct mk_guard_config {
    char *injection;         /* "block" (default) | "flag" | "off" */
    double block_threshold;  /* 0 = the model's tuned threshold */
    char *pii;               /* "placeholder" (default) | "redact" | "mask" | "hash" | "off" */
    char *jurisdiction;      /* default "ru": data is masked before deployments not tagged residency:<it> */
    /* Output checks (docs/GUARD.md): answers containing one of these phrases, or
     * matching one of these PCRE2 patterns (both caseless, Unicode), are withheld. */
    char **output_block;
    size_t noutput_block;
    char **output_patterns;
    size_t noutput_patterns;
};
/* Entries of guard.output_block / guard.output_patterns, each list. */
#define MK_GUARD_OUTPUT_MAX_RULES 256

/* One support-desk agent (`agents:`, docs/CONFIG.md); none declared = the built-in five. */
struct mk_agent_config {
    char *id;                /* required; a name ("human" is reserved) */
    char *name;              /* shown to users and operators; default = id */
    char *description;
    char **knowledge;        /* knowledge collections (kb agent ids); none = [id] */
    size_t nknowledge;
    char *instructions;      /* the LLM prompt's core; may span lines */
    char *model_group;       /* NULL = default_model_group */
    double escalation_threshold; /* 0..1; 0 = the desk's default */
    char **examples;         /* example user messages for triage (at least one) */
    size_t nexamples;
    int line, column;
};

/* bus: events across parts and nodes (docs/BUS.md). */
struct mk_bus_config {
    char *url;               /* NULL = "inproc"; or "amqp://user:pass@host:port/vhost" (RabbitMQ) */
    uint32_t max_pending;    /* publish queue bound in events; 0 = the bus's default */
};

/* memory: agent memory (docs/MEMORY.md). Retention in days per kind; 0 keeps forever,
 * -1 (not in the file) takes `retention_days`, whose own default is 30. */
struct mk_memory_retention_config {
    int episodes, skills, facts, links, history;
};
struct mk_memory_config {
    uint32_t session_ttl_s;  /* sliding session lifetime; default 3600 */
    uint32_t sync_ms;        /* how often other processes' writes are replayed; default 1000 */
    int retention_days;      /* every kind unless overridden; default 30; 0 = keep */
    struct mk_memory_retention_config retention;
};

/* desk: support desk settings that are not agents (docs/CONFIG.md). */
struct mk_desk_config {
    uint32_t analytics_refresh_ms; /* the /metrics desk gauges; default 5000 */
};

/* One outgoing webhook (`webhooks:`, docs/BUS.md): matching events are POSTed, signed. */
struct mk_webhook_config {
    char *name;              /* for logs and metrics; default "webhook-<position>" */
    char *url;               /* required; http(s) */
    char *secret;            /* required; HMAC-SHA256 key of X-Mayak-Signature */
    char **events;           /* event type patterns ("conversation.*"); none = every event */
    size_t nevents;
    int max_attempts;        /* first try included; default 6 */
    uint32_t timeout_ms;     /* per attempt; default 10000 */
    uint32_t backoff_base_ms;/* first retry delay before jitter; default 1000 */
    uint32_t backoff_max_ms; /* longest delay; default 60000 */
    int line, column;
};

struct mk_config {
    char *source;            /* file path, or "<embedded defaults>" */
    char *listen_host;       /* default 127.0.0.1 */
    int listen_port;         /* default 8080 */
    char *data_dir;          /* default ./mayak-data */
    char *log_level;         /* debug | info | warn | error; default info */
    bool access_log;         /* default true */
    uint32_t drain_timeout_ms;
    int workers;             /* event loops; default 1 */
    uint32_t busy_poll_us;   /* keep polling this long after network reads; 0 = off (default) */
    struct mk_provider_config *providers;
    size_t nproviders;
    struct mk_model_group_config *model_groups;
    size_t nmodel_groups;
    char *default_model_group; /* used when a request names no known model; NULL = none */
    char *store_url;         /* store.url; NULL = sqlite file <data_dir>/mayak.db */
    char *kv_url;            /* kv.url; NULL = "memory:" (in-process) */
    struct mk_auth_config auth;
    struct mk_limits_config limits;
    struct mk_audit_config audit;
    struct mk_guard_config guard;
    struct mk_cache_config cache;
    struct mk_agent_config *agents; /* support desk agents; NULL/0 = built-in defaults */
    size_t nagents;
    struct mk_bus_config bus;
    struct mk_memory_config memory;
    struct mk_desk_config desk;
    struct mk_webhook_config *webhooks;
    size_t nwebhooks;
};

/* One problem found while loading. */
struct mk_config_diag {
    char *file;
    int line, column;        /* 0 when unknown */
    char *message;
    bool warning;            /* added: true for advice that does not stop loading */
};

struct mk_config_diags {
    struct mk_config_diag *items;
    size_t count;
};

/* The embedded defaults: listen 127.0.0.1:8080, data_dir ./mayak-data, one local
 * provider answering from the knowledge base, model group "mayak-local" (alias
 * "default"). Returns NULL only on out-of-memory. */
struct mk_config *mk_config_default(void);

/* Loads and validates a YAML file. On success returns 0 and *out. On failure returns
 * MK_ECONFIG (or MK_EIO, MK_ETOOBIG) and fills diags with every problem found
 * (diags may be NULL). Validation covers: unknown keys, wrong types, missing required
 * keys, unknown provider types and policies, deployments naming unknown providers,
 * duplicate names, bad URLs, bad listen addresses, negative numbers, unset env vars. */
int mk_config_load(const char *path, struct mk_config **out, struct mk_config_diags *diags);
/* Same from memory; `name` is used in messages. */
int mk_config_load_string(const char *name, const char *yaml, size_t len, struct mk_config **out,
                          struct mk_config_diags *diags);

void mk_config_free(struct mk_config *cfg);              /* accepts NULL */
void mk_config_diags_release(struct mk_config_diags *d); /* accepts NULL */
/* "file:line:col: message\n" per problem (":line:col" left out when 0; warnings read
 * "file:line:col: warning: message"). Appends to out; MK_ENOMEM / MK_ETOOBIG from mk_buf. */
int mk_config_diags_format(const struct mk_config_diags *d, mk_buf *out);

const char *mk_provider_type_name(enum mk_provider_type t);
const char *mk_route_policy_name(enum mk_route_policy p);

/* --- Added beyond the original contract -------------------------------------------
 * Diagnostics: a successful load may still leave warnings in diags (unused providers,
 * deployments lacking a group's require_tags, unreadable ca_file). Loads append to
 * diags; start with a zeroed struct. */

/* True when d holds at least one non-warning entry. Accepts NULL (false). */
bool mk_config_diags_has_errors(const struct mk_config_diags *d);

/* Parse a name as written in YAML ("openai", "least_cost"); MK_EINVAL when unknown. */
int mk_provider_type_parse(const char *s);
int mk_route_policy_parse(const char *s);

/* Provider by exact name; NULL when none. The pointer lives as long as cfg. */
const struct mk_provider_config *mk_config_find_provider(const struct mk_config *cfg, const char *name);
/* Model group whose name or one of whose aliases equals `model`; NULL when none. */
const struct mk_model_group_config *mk_config_find_group(const struct mk_config *cfg, const char *model);

/* SIGHUP reload: compares the newly loaded `next` with the `running` config and appends
 * a warning to diags (if not NULL) for each setting that only a restart applies
 * (listen, data_dir, workers). Returns how many such settings changed (0 = all of
 * `next` can be applied live) or MK_ENOMEM. Neither config is modified. */
int mk_config_reload_check(const struct mk_config *running, const struct mk_config *next,
                           struct mk_config_diags *diags);

#endif
