/*
 * The cache filter: answers repeated and paraphrased chat requests from the response
 * cache (src/cache, docs/CACHE.md) and stores fresh answers for the next caller.
 *
 * on_request  decides whether the cache applies (model group's `cache.enabled`, the
 *             per-request opt-outs `x-mayak-cache: off` / "mayak_cache": false, the
 *             eligibility rules of mk_cache_request_init, no guard flag), looks up exact
 *             then semantic, and on a hit answers through ctx->reply, which replays the
 *             stored completion as JSON or SSE like any answer (so later filters still
 *             see it). Sets `x-mayak-cache: hit-exact|hit-semantic|miss|bypass`.
 * on_response keeps a copy of the complete answer (after the guard restored masked data).
 * on_chunk    collects the streamed text.
 * on_end      stores the answer when it is worth replaying: status 200, no error, no
 *             broken stream, no tool calls, no guard verdict other than allow/none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/mk_cache.h"
#include "core/mk_error.h"
#include "core/mk_time.h"
#include "metrics/mk_metrics.h"
#include "mk_pipeline.h"
#include "mk_services.h"

struct cache_state {
    struct mk_cache_request key;
    uint32_t ttl_s;
    mk_buf answer;            /* non-streamed: the complete body */
    mk_buf text;              /* streamed: the content so far */
    bool got_response;
    bool tool_calls;
    bool too_big;
};

static void release_state(void *arg)
{
    struct cache_state *st = arg;
    mk_cache_request_release(&st->key);
    mk_buf_release(&st->answer);
    mk_buf_release(&st->text);
}

static const char *group_name(const mk_ctx *ctx)
{
    return ctx->group && ctx->group->config && ctx->group->config->name ? ctx->group->config->name : NULL;
}

/* The effective settings for the request's group: the group's overrides, else the
 * top level's, else built-in defaults (0 / inherit mean "not set"). */
static bool group_enabled(const mk_ctx *ctx, double *threshold, double *max_temperature, uint32_t *ttl_s)
{
    const struct mk_cache_config *top = &ctx->services->cache_config;
    const struct mk_cache_config *g = ctx->group && ctx->group->config ? &ctx->group->config->cache : NULL;
    enum mk_cache_enabled en = g && g->enabled != MK_CACHE_INHERIT ? g->enabled : top->enabled;
    *threshold = g && g->threshold > 0 ? g->threshold : top->threshold > 0 ? top->threshold : -1;
    *max_temperature = g && g->max_temperature > 0     ? g->max_temperature
                       : top->max_temperature > 0      ? top->max_temperature
                                                       : MK_CACHE_DEFAULT_MAX_TEMPERATURE;
    *ttl_s = g && g->ttl_s ? g->ttl_s : 0;
    return en != MK_CACHE_OFF;
}

/* True when a guard left a verdict other than "allow", or found personal data: such
 * requests and answers are neither served from nor put into the cache. */
static bool guard_flagged(const mk_ctx *ctx)
{
    const char *v = ctx->verdicts.data;
    if (!v || ctx->verdicts.len == 0) return false;
    for (const char *p = strstr(v, "\"decision\":\""); p; p = strstr(p + 1, "\"decision\":\"")) {
        p += strlen("\"decision\":\"");
        if (strncmp(p, "allow\"", 6) != 0) return true;
    }
    for (const char *p = strstr(v, "\"found\":"); p; p = strstr(p + 1, "\"found\":")) {
        p += strlen("\"found\":");
        if (*p != '0') return true;
    }
    return false;
}

static bool header_off(const mk_ctx *ctx)
{
    if (!ctx->req) return false;
    mk_slice h = mk_http_req_header(ctx->req, "x-mayak-cache");
    return h.len && (mk_slice_eq_nocase(h, MK_SLICE_LIT("off")) || mk_slice_eq_nocase(h, MK_SLICE_LIT("false")) ||
                     mk_slice_eq_nocase(h, MK_SLICE_LIT("no")) || mk_slice_eq_nocase(h, MK_SLICE_LIT("bypass")));
}

static int cache_request(mk_ctx *ctx)
{
    mk_cache *c = ctx->services ? ctx->services->cache : NULL;
    const char *group = group_name(ctx);
    if (!c || ctx->kind != MK_CTX_CHAT || !ctx->body || !group) return MK_FILTER_CONTINUE;
    double threshold, max_temp;
    uint32_t ttl_s;
    if (!group_enabled(ctx, &threshold, &max_temp, &ttl_s)) return MK_FILTER_CONTINUE;
    if (header_off(ctx) || guard_flagged(ctx)) {
        mk_ctx_add_header(ctx, "x-mayak-cache", "bypass");
        return MK_FILTER_CONTINUE;
    }
    struct cache_state *st = mk_pool_alloc(ctx->pool, sizeof *st);
    if (!st) return MK_ENOMEM;
    memset(st, 0, sizeof *st);
    if (mk_pool_on_free(ctx->pool, release_state, st) != 0) return MK_ENOMEM;
    st->ttl_s = ttl_s;
    mk_buf_init(&st->answer, MK_CACHE_MAX_ANSWER_BYTES);
    mk_buf_init(&st->text, MK_CACHE_MAX_ANSWER_BYTES);
    int rc = mk_cache_request_init(&st->key, ctx->tenant ? ctx->tenant : "default", group, ctx->body, max_temp);
    if (rc != 0) return rc;
    if (!st->key.eligible) {
        mk_ctx_add_header(ctx, "x-mayak-cache", "bypass");
        return MK_FILTER_CONTINUE;
    }
    ctx->cache_state = st;
    if (!ctx->reply) return MK_FILTER_CONTINUE; /* cannot answer here (internal call): store only */

    uint64_t t0 = mk_now_us();
    struct mk_cache_hit hit;
    rc = mk_cache_lookup(c, &st->key, threshold, &hit);
    mk_metric_observe(MK_METRIC_CACHE_LOOKUP, NULL, (double)(mk_now_us() - t0) / 1e6);
    if (hit.guard_rejects) {
        const char *labels[] = {"guard"};
        mk_metric_add(MK_METRIC_CACHE_GUARD_REJECTS, labels, hit.guard_rejects);
    }
    if (rc != 0 || hit.kind == MK_CACHE_MISS) {
        mk_cache_hit_release(&hit);
        const char *labels[] = {group};
        mk_metric_inc(MK_METRIC_CACHE_MISSES, labels);
        mk_ctx_add_header(ctx, "x-mayak-cache", "miss");
        return MK_FILTER_CONTINUE; /* a failed lookup is a miss: the cache is an optimisation */
    }
    bool exact = hit.kind == MK_CACHE_HIT_EXACT;
    const char *hl[] = {group, exact ? "exact" : "semantic"};
    mk_metric_inc(MK_METRIC_CACHE_HITS, hl);
    const char *gl[] = {group};
    mk_metric_add(MK_METRIC_CACHE_SAVED_TOKENS, gl, (double)(hit.prompt_tokens + hit.completion_tokens));
    mk_ctx_add_header(ctx, "x-mayak-cache", exact ? "hit-exact" : "hit-semantic");
    char sim[32];
    snprintf(sim, sizeof sim, "%.4f", (double)hit.similarity);
    mk_ctx_add_header(ctx, "x-mayak-cache-similarity", sim);
    ctx->cache_hit = true;
    ctx->status = 200;
    ctx->usage.prompt_tokens = hit.prompt_tokens;
    ctx->usage.completion_tokens = hit.completion_tokens;
    ctx->usage.total_tokens = hit.prompt_tokens + hit.completion_tokens;
    ctx->has_usage = hit.prompt_tokens + hit.completion_tokens > 0;
    ctx->cache_state = NULL; /* nothing to store for a replay */
    ctx->reply(ctx, hit.answer.data, hit.answer.len);
    mk_cache_hit_release(&hit);
    return MK_FILTER_DONE;
}

static int cache_response(mk_ctx *ctx, mk_buf *body)
{
    struct cache_state *st = ctx->cache_state;
    if (!st || ctx->cache_hit) return 0;
    mk_buf_reset(&st->answer);
    if (mk_buf_append(&st->answer, body->data, body->len) != 0) st->too_big = true;
    st->got_response = true;
    return 0;
}

static int cache_chunk(mk_ctx *ctx, struct mk_chunk *chunk)
{
    struct cache_state *st = ctx->cache_state;
    if (!st || ctx->cache_hit || chunk->usage_only) return 0;
    if (!st->tool_calls && chunk->json.len && memmem(chunk->json.ptr, chunk->json.len, "\"tool_calls\"", 12))
        st->tool_calls = true;
    if (chunk->content.len && mk_buf_append(&st->text, chunk->content.ptr, chunk->content.len) != 0)
        st->too_big = true;
    st->got_response = true;
    return 0;
}

/* A non-streamed answer is stored as is, unless it calls tools. */
static bool completion_has_tools(const mk_buf *answer)
{
    json_object *root = json_tokener_parse(answer->data);
    if (!root) return true; /* unparseable: not worth replaying */
    bool tools = false;
    json_object *choices, *choice, *msg, *tc, *fr;
    if (!json_object_object_get_ex(root, "choices", &choices) || !(choice = json_object_array_get_idx(choices, 0)))
        tools = true;
    else {
        if (json_object_object_get_ex(choice, "message", &msg) && json_object_object_get_ex(msg, "tool_calls", &tc) &&
            json_object_is_type(tc, json_type_array) && json_object_array_length(tc) > 0)
            tools = true;
        if (json_object_object_get_ex(choice, "message", &msg) && json_object_object_get_ex(msg, "function_call", &tc) &&
            !json_object_is_type(tc, json_type_null))
            tools = true;
        if (json_object_object_get_ex(choice, "finish_reason", &fr) && json_object_is_type(fr, json_type_string) &&
            (strcmp(json_object_get_string(fr), "tool_calls") == 0 ||
             strcmp(json_object_get_string(fr), "function_call") == 0))
            tools = true;
    }
    json_object_put(root);
    return tools;
}

/* Builds the chat.completion a streamed answer amounts to. */
static int streamed_completion(const mk_ctx *ctx, const struct cache_state *st, mk_buf *out)
{
    int rc = mk_buf_printf(out, "{\"id\":\"chatcmpl-mayak-cache\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                           (long long)time(NULL));
    const char *model = ctx->model ? ctx->model : "";
    if (rc == 0) rc = mk_buf_append_json_string(out, model, strlen(model));
    if (rc == 0) rc = mk_buf_append_str(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (rc == 0) rc = mk_buf_append_json_string(out, st->text.data ? st->text.data : "", st->text.len);
    if (rc == 0) rc = mk_buf_append_str(out, "},\"finish_reason\":\"stop\"}]");
    if (rc == 0 && ctx->has_usage)
        rc = mk_buf_printf(out, ",\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld}",
                           (long long)ctx->usage.prompt_tokens, (long long)ctx->usage.completion_tokens,
                           (long long)ctx->usage.total_tokens);
    if (rc == 0) rc = mk_buf_append_char(out, '}');
    return rc;
}

static void cache_end(mk_ctx *ctx)
{
    struct cache_state *st = ctx->cache_state;
    ctx->cache_state = NULL;
    mk_cache *c = ctx->services ? ctx->services->cache : NULL;
    if (!st || !c || ctx->cache_hit || !st->got_response || st->too_big || st->tool_calls) return;
    if (ctx->status != 200 || ctx->error != 0 || ctx->stream_failed || guard_flagged(ctx)) return;
    int64_t pt = ctx->has_usage ? ctx->usage.prompt_tokens : 0, ct = ctx->has_usage ? ctx->usage.completion_tokens : 0;
    if (ctx->stream) {
        if (st->text.len == 0) return;
        mk_buf body = MK_BUF_INIT;
        if (streamed_completion(ctx, st, &body) == 0) mk_cache_store(c, &st->key, body.data, body.len, pt, ct, st->ttl_s);
        mk_buf_release(&body);
    } else if (st->answer.len && !completion_has_tools(&st->answer)) {
        mk_cache_store(c, &st->key, st->answer.data, st->answer.len, pt, ct, st->ttl_s);
    }
    struct mk_cache_stats s;
    mk_cache_get_stats(c, &s);
    mk_metric_set(MK_METRIC_CACHE_ENTRIES, NULL, (double)s.entries);
}

const struct mk_filter_ops mk_filter_cache = {
    .name = "cache",
    .on_request = cache_request,
    .on_response = cache_response,
    .on_chunk = cache_chunk,
    .on_end = cache_end,
};
