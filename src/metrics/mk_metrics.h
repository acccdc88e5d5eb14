/*
 * mk_metrics: the process's metrics registry and its Prometheus text exposition.
 *
 * Every metric Mayak exports is one row of MK_METRIC_MAP: id, name, type, help and
 * label names. Code refers to metrics by id; label values are given in the same order
 * as the names. Series are created on first use. Thread-safe (a mutex around the
 * series table; the hot path is a hash lookup and an add).
 *
 * Histograms use the buckets listed per row (seconds), cumulative as Prometheus wants.
 */
#ifndef MK_METRICS_H
#define MK_METRICS_H

#include <stddef.h>

#include "core/mk_buf.h"

enum mk_metric_type { MK_COUNTER, MK_GAUGE, MK_HISTOGRAM };

/* Bucket sets (upper bounds in seconds). */
#define MK_BUCKETS_LATENCY 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120
#define MK_BUCKETS_OVERHEAD 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01

/*  id                         name                                   type          help                                                          labels */
#define MK_METRIC_MAP(X)                                                                                                                                               \
    X(REQUESTS,                "mayak_http_requests_total",           MK_COUNTER,   "HTTP requests by route, method and status",                  "route", "method", "status") \
    X(REQUEST_DURATION,        "mayak_http_request_duration_seconds", MK_HISTOGRAM, "Total time from request received to response end",           "route")                     \
    X(LLM_REQUESTS,            "mayak_llm_requests_total",            MK_COUNTER,   "Chat/embedding requests by model group, deployment, outcome", "model_group", "deployment", "status") \
    X(LLM_DURATION,            "mayak_llm_request_duration_seconds",  MK_HISTOGRAM, "Total time of an LLM request through the gateway",            "model_group")               \
    X(TTFT,                    "mayak_llm_time_to_first_token_seconds", MK_HISTOGRAM, "Time to first token seen by the client",                   "model_group")               \
    X(UPSTREAM_LATENCY,        "mayak_upstream_latency_seconds",      MK_HISTOGRAM, "Upstream time to first byte per deployment",                  "deployment")                \
    X(GATEWAY_OVERHEAD,        "mayak_gateway_overhead_seconds",      MK_HISTOGRAM, "Time spent inside Mayak, excluding upstream",                 "route")                     \
    X(TOKENS,                  "mayak_tokens_total",                  MK_COUNTER,   "Tokens by model group, deployment and kind (prompt|completion)", "model_group", "deployment", "kind") \
    X(COST,                    "mayak_cost_total",                    MK_COUNTER,   "Cost in configured currency units",                           "model_group", "deployment") \
    X(UPSTREAM_ATTEMPTS,       "mayak_upstream_attempts_total",       MK_COUNTER,   "Upstream attempts by deployment and result",                  "deployment", "result")      \
    X(RETRIES,                 "mayak_retries_total",                 MK_COUNTER,   "Retries and failovers by model group",                        "model_group")               \
    X(BREAKER_STATE,           "mayak_breaker_state",                 MK_GAUGE,     "Circuit breaker state: 0 closed, 1 open, 2 half-open",        "deployment")                \
    X(DEPLOYMENT_HEALTHY,      "mayak_deployment_healthy",            MK_GAUGE,     "Last active health check: 1 healthy, 0 failing",              "deployment")                \
    X(DEPLOYMENT_EWMA_TTFT,    "mayak_deployment_ttft_ewma_seconds",  MK_GAUGE,     "Moving average of time to first token per deployment",       "deployment")                \
    X(STREAMS_INFLIGHT,        "mayak_streams_in_flight",             MK_GAUGE,     "Streaming responses currently open")                                                      \
    X(REQUESTS_INFLIGHT,       "mayak_requests_in_flight",            MK_GAUGE,     "Requests currently being handled")                                                        \
    X(CONNECTIONS,             "mayak_http_connections",              MK_GAUGE,     "Open client connections")                                                                 \
    X(STREAM_ERRORS,           "mayak_stream_errors_total",           MK_COUNTER,   "Streams that ended with an error event, by reason",           "reason")                    \
    X(CONFIG_RELOADS,          "mayak_config_reloads_total",          MK_COUNTER,   "Config reloads by result",                                    "result")                    \
    X(BUILD_INFO,              "mayak_build_info",                    MK_GAUGE,     "Build information (value is always 1)",                       "version") \
    X(DESK_CONVERSATIONS,      "mayak_desk_conversations_total",      MK_COUNTER,   "Support desk conversations started, by channel",             "channel")                   \
    X(DESK_MESSAGES,           "mayak_desk_messages_total",           MK_COUNTER,   "Support desk messages stored, by role (user|bot|operator|system)", "role")              \
    X(DESK_ESCALATIONS,        "mayak_desk_escalations_total",        MK_COUNTER,   "Conversations handed to a human, by agent and reason",        "agent", "reason")           \
    X(DESK_RESOLUTIONS,        "mayak_desk_resolutions_total",        MK_COUNTER,   "Conversations resolved, by agent and by whom (bot|human)",    "agent", "by")               \
    X(DESK_RATINGS,            "mayak_desk_ratings_total",            MK_COUNTER,   "CSAT ratings received, by agent and score (1-5)",            "agent", "csat")             \
    X(DESK_FIRST_RESPONSE,     "mayak_desk_first_response_seconds",   MK_HISTOGRAM, "Time to first response: bot (from start), operator (from escalation)", "responder")     \
    X(DESK_QUEUE_LENGTH,       "mayak_desk_queue_length",             MK_GAUGE,     "Conversations waiting for an operator")                                                   \
    X(DESK_OPERATORS_ONLINE,   "mayak_desk_operators_online",         MK_GAUGE,     "Operator consoles connected to this node")                                                \
    X(DESK_AUTOMATION_RATE,    "mayak_desk_automation_rate",          MK_GAUGE,     "Resolved conversations no human handled / resolved, by agent (all = overall)", "agent") \
    X(DESK_ESCALATION_RATE,    "mayak_desk_escalation_rate",          MK_GAUGE,     "Escalated conversations / conversations, by agent (all = overall)", "agent")           \
    X(DESK_CSAT_AVERAGE,       "mayak_desk_csat_average",             MK_GAUGE,     "Average CSAT (1-5) of rated conversations, by agent (all = overall)", "agent") \
    X(CACHE_HITS,              "mayak_cache_hits_total",              MK_COUNTER,   "Cache hits by model group and kind (exact|semantic)",        "model_group", "kind")       \
    X(CACHE_MISSES,            "mayak_cache_misses_total",            MK_COUNTER,   "Cache lookups that found nothing usable, by model group",     "model_group")               \
    X(CACHE_GUARD_REJECTS,     "mayak_cache_guard_rejections_total",  MK_COUNTER,   "Semantic candidates refused by the false-hit guard, by reason", "reason")                 \
    X(CACHE_SAVED_TOKENS,      "mayak_cache_saved_tokens_total",      MK_COUNTER,   "Tokens not spent upstream thanks to cache hits",             "model_group")               \
    X(CACHE_LOOKUP,            "mayak_cache_lookup_seconds",          MK_HISTOGRAM, "Time of one cache lookup (exact + semantic)")                                              \
    X(CACHE_ENTRIES,           "mayak_cache_entries",                 MK_GAUGE,     "Entries held by this node's cache")

enum mk_metric_id {
#define MK_METRIC_ENUM(id, ...) MK_METRIC_##id,
    MK_METRIC_MAP(MK_METRIC_ENUM)
#undef MK_METRIC_ENUM
    MK_METRIC_COUNT
};

/* Most series one metric may hold. Label values come from our own tables (routes,
 * deployments, statuses), so real use stays in the hundreds; the cap stops a bug or
 * a hostile value from growing memory without bound. Samples for new series past it
 * are dropped (one warning is logged per metric). */
#define MK_METRICS_MAX_SERIES 10000

/* labels: exactly as many values as the row has label names (NULL when none; a NULL
 * array for a row with labels makes the call a no-op; a NULL element counts as "").
 * Values are copied on first use. Unknown ids are ignored, as are calls that do not
 * fit the type: add works on counters (v >= 0 only: counters never go down) and
 * gauges (any sign), set on gauges, observe on histograms (NaN ignored). Metrics never
 * fail the caller: on out-of-memory the sample is dropped. */
void mk_metric_add(enum mk_metric_id id, const char *const *labels, double v);
static inline void mk_metric_inc(enum mk_metric_id id, const char *const *labels) { mk_metric_add(id, labels, 1); }
void mk_metric_set(enum mk_metric_id id, const char *const *labels, double v);
void mk_metric_observe(enum mk_metric_id id, const char *const *labels, double seconds);

/* Appends the whole registry in Prometheus text format 0.0.4: # HELP and # TYPE for
 * every metric of the map (label-less counters and gauges render 0 before first use),
 * series in creation order, histograms as cumulative _bucket{le=...} incl. +Inf, then
 * _sum and _count. Label values are escaped (\\, \", \n) and invalid UTF-8 in them
 * becomes U+FFFD. 0, MK_ENOMEM, or MK_ETOOBIG when out's cap is reached; on failure
 * out is left as it was. */
int mk_metrics_render(mk_buf *out);
/* Formats a sample value as the exposition wants it: integral values (|v| < 2^53)
 * without exponent or fraction, others in the shortest of %.15g/%.16g/%.17g that
 * reads back to the same double, NaN, +Inf, -Inf. out needs >= 32 bytes (else
 * MK_EINVAL). 0 on success. */
int mk_metrics_format_number(char *out, size_t outlen, double v);
/* Forget every series (tests). */
void mk_metrics_reset(void);
/* Current value of a counter/gauge series, or of a histogram's count; 0 if absent (tests). */
double mk_metric_value(enum mk_metric_id id, const char *const *labels);

#endif
