/* The guard filter (see mk_guard_filter.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "guard/mk_injection.h"
#include "guard/mk_pii.h"
#include "mk_guard_filter.h"
#include "mk_services.h"

struct mk_guard {
    struct mk_injection *injection;    /* NULL when injection scoring is off */
    struct mk_injection_policy policy;
    mk_pii_policy pii;                 /* mode OFF = personal data is left alone */
    unsigned char hash_key[32];        /* HASH mode; per process (see docs/PII.md) */
    char residency_tag[80];            /* "residency:ru" */
};

/* Per-request state, in the request's pool. */
struct guard_state {
    mk_pii_vault *vault;               /* placeholders of this request */
    json_object *masked;               /* the masked request, or NULL when nothing was found */
    bool masked_sent;                  /* the answering deployment got the masked request */
    mk_pii_restorer *restorer;         /* streamed answers */
};

int mk_guard_open(const struct mk_config *cfg, struct mk_guard **out, mk_buf *err)
{
    *out = NULL;
    const char *inj = cfg->guard.injection ? cfg->guard.injection : "block";
    const char *pii = cfg->guard.pii ? cfg->guard.pii : "placeholder";
    struct mk_guard *g = calloc(1, sizeof *g);
    if (!g) return MK_ENOMEM;
    mk_injection_policy_default(&g->policy);
    if (strcmp(inj, "flag") == 0) g->policy.action = MK_GUARD_FLAG;
    if (cfg->guard.block_threshold > 0) g->policy.block_threshold = (float)cfg->guard.block_threshold;
    if (g->policy.flag_threshold > g->policy.block_threshold) g->policy.flag_threshold = g->policy.block_threshold;
    if (strcmp(inj, "off") != 0) {
        struct mk_injection_options o = {.policy = &g->policy};
        int rc = mk_injection_new(&o, &g->injection);
        if (rc != 0) {
            mk_buf_printf(err, "cannot build the prompt-injection detector: %s", mk_strerror(rc));
            free(g);
            return rc;
        }
    }
    int mode = mk_pii_mode_parse(pii, strlen(pii));
    g->pii.mode = mode < 0 ? MK_PII_MODE_PLACEHOLDER : (mk_pii_mode)mode;
    mk_rand_bytes(g->hash_key, sizeof g->hash_key);
    g->pii.hash_key = g->hash_key;
    g->pii.hash_key_len = sizeof g->hash_key;
    snprintf(g->residency_tag, sizeof g->residency_tag, "residency:%s",
             cfg->guard.jurisdiction ? cfg->guard.jurisdiction : "ru");
    if (!g->injection && g->pii.mode == MK_PII_MODE_OFF) {
        free(g);
        return 0;
    }
    *out = g;
    return 0;
}

void mk_guard_close(struct mk_guard *g)
{
    if (!g) return;
    mk_injection_free(g->injection);
    free(g);
}

static struct mk_guard *guard_of(mk_ctx *ctx) { return ctx->services ? ctx->services->guard : NULL; }

static void release_state(void *arg)
{
    struct guard_state *st = arg;
    mk_pii_restorer_free(st->restorer);
    json_object_put(st->masked);
    mk_pii_vault_free(st->vault);
}

/* ---- input ------------------------------------------------------------------- */

static enum mk_guard_decision gateway_decision(const struct mk_guard *g, const struct mk_injection_verdict *v);

/* Scores one text; keeps the worst verdict in *worst. */
static int scan_text(struct mk_guard *g, const char *text, size_t len, struct mk_injection_verdict *worst,
                     bool *any)
{
    struct mk_injection_verdict v;
    int rc = mk_injection_scan(g->injection, text, len, &v);
    if (rc != 0 && rc != MK_EBADUTF8 && rc != MK_ETOOBIG) return rc;
    if (!*any || v.score > worst->score) *worst = v;
    *any = true;
    return 0;
}

/* Masks personal data in one string; returns a new json string or NULL (nothing found). */
static json_object *mask_text(struct mk_guard *g, struct guard_state *st, const char *text, size_t len, int *found,
                              int *err)
{
    mk_buf out = MK_BUF_INIT;
    size_t applied = 0;
    if (!st->vault && !(st->vault = mk_pii_vault_new())) {
        *err = MK_ENOMEM;
        return NULL;
    }
    int rc = mk_pii_redact(text, len, NULL, &g->pii, st->vault, &out, &applied);
    json_object *res = NULL;
    if (rc != 0) *err = rc;
    else if (applied) {
        res = json_object_new_string_len(out.data, (int)out.len);
        *found += (int)applied;
    }
    mk_buf_release(&out);
    return res;
}

/* Walks the messages: injection scores for user and tool text, masked copies of every
 * text field. */
static int inspect_messages(struct mk_guard *g, struct guard_state *st, json_object *body, json_object *masked,
                            struct mk_injection_verdict *worst, bool *scanned, int *masked_count)
{
    json_object *msgs = json_object_object_get(body, "messages");
    json_object *mmsgs = masked ? json_object_object_get(masked, "messages") : NULL;
    size_t n = json_object_array_length(msgs);
    int err = 0;
    for (size_t i = 0; i < n && err == 0; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        json_object *mm = mmsgs ? json_object_array_get_idx(mmsgs, i) : NULL;
        const char *role = json_object_get_string(json_object_object_get(m, "role"));
        bool scan = g->injection && role && (strcmp(role, "user") == 0 || strcmp(role, "tool") == 0);
        json_object *content = json_object_object_get(m, "content");
        if (json_object_is_type(content, json_type_string)) {
            const char *t = json_object_get_string(content);
            size_t len = (size_t)json_object_get_string_len(content);
            if (scan) err = scan_text(g, t, len, worst, scanned);
            if (mm && err == 0) {
                json_object *r = mask_text(g, st, t, len, masked_count, &err);
                if (r) json_object_object_add(mm, "content", r);
            }
        } else if (json_object_is_type(content, json_type_array)) {
            json_object *mcontent = mm ? json_object_object_get(mm, "content") : NULL;
            for (size_t k = 0; k < json_object_array_length(content) && err == 0; k++) {
                json_object *part = json_object_array_get_idx(content, k), *text;
                if (!json_object_object_get_ex(part, "text", &text) || !json_object_is_type(text, json_type_string))
                    continue;
                const char *t = json_object_get_string(text);
                size_t len = (size_t)json_object_get_string_len(text);
                if (scan) err = scan_text(g, t, len, worst, scanned);
                if (mcontent && err == 0) {
                    json_object *r = mask_text(g, st, t, len, masked_count, &err);
                    if (r) json_object_object_add(json_object_array_get_idx(mcontent, k), "text", r);
                }
            }
        }
    }
    return err;
}

static int guard_request(mk_ctx *ctx)
{
    struct mk_guard *g = guard_of(ctx);
    if (!g || ctx->kind != MK_CTX_CHAT || !ctx->body) return MK_FILTER_CONTINUE;
    struct guard_state *st = mk_pool_alloc(ctx->pool, sizeof *st);
    if (!st || mk_pool_on_free(ctx->pool, release_state, st) != 0) return MK_ENOMEM;
    ctx->guard_state = st;
    json_object *masked = NULL;
    if (g->pii.mode != MK_PII_MODE_OFF && json_object_deep_copy(ctx->body, &masked, NULL) != 0) return MK_ENOMEM;
    struct mk_injection_verdict worst = {0};
    bool scanned = false;
    int masked_count = 0;
    int rc = inspect_messages(g, st, ctx->body, masked, &worst, &scanned, &masked_count);
    if (rc != 0) {
        json_object_put(masked);
        return rc; /* fail closed: a guard that errors blocks */
    }
    if (masked_count > 0) st->masked = masked;
    else json_object_put(masked);

    char verdict[256];
    if (scanned) worst.decision = gateway_decision(g, &worst);
    if (scanned) {
        const char *decision = mk_guard_decision_name(worst.decision);
        snprintf(verdict, sizeof verdict, "{\"score\":%.3f,\"decision\":\"%s\",\"category\":\"%s\"}", worst.score,
                 decision, mk_injection_category_name(worst.top_category));
        mk_ctx_add_verdict(ctx, "prompt_injection", verdict);
        char header[96];
        snprintf(header, sizeof header, "%s; score=%.3f", decision, worst.score);
        mk_ctx_add_header(ctx, "x-mayak-guard-injection", header);
        if (worst.decision == MK_GUARD_BLOCK) {
            /* ctx->req is NULL for internal calls (the desk's, api/internal_chat.c) */
            mk_log(MK_LOG_WARN, "guard_blocked", "request_id", ctx->req ? ctx->req->request_id : "internal",
                   "guard", "prompt_injection", "category", mk_injection_category_name(worst.top_category), NULL);
            return MK_EGUARD_INJECTION;
        }
    }
    if (g->pii.mode != MK_PII_MODE_OFF) {
        snprintf(verdict, sizeof verdict, "{\"found\":%d,\"mode\":\"%s\"}", masked_count, mk_pii_mode_name(g->pii.mode));
        mk_ctx_add_verdict(ctx, "pii", verdict);
    }
    return MK_FILTER_CONTINUE;
}

/* The gateway's own decision on a verdict. The classifier alone is noisy on short
 * benign text ("are you still there?" scores ~0.7), so it may block only when it is
 * very sure; below that, a block needs a matched rule too. Everything past the flag
 * threshold is flagged: visible in headers, audit and metrics, not refused. */
#define CLASSIFIER_ALONE_BLOCKS 0.9f

static enum mk_guard_decision gateway_decision(const struct mk_guard *g, const struct mk_injection_verdict *v)
{
    if (g->policy.action == MK_GUARD_BLOCK && v->score >= g->policy.block_threshold &&
        (v->nmatches > 0 || v->model_score >= CLASSIFIER_ALONE_BLOCKS))
        return MK_GUARD_BLOCK;
    if (g->policy.action >= MK_GUARD_FLAG && v->score >= g->policy.flag_threshold) return MK_GUARD_FLAG;
    return MK_GUARD_ALLOW;
}

static bool has_tag(const mk_deployment *d, const char *tag)
{
    for (size_t i = 0; i < d->ntags; i++)
        if (strcmp(d->tags[i], tag) == 0) return true;
    return false;
}

json_object *mk_guard_request_for(mk_ctx *ctx, const mk_deployment *d)
{
    struct guard_state *st = ctx->guard_state;
    struct mk_guard *g = guard_of(ctx);
    if (!st || !g || !st->masked) return ctx->body;
    /* Data stays home with in-process answering and with deployments in jurisdiction. */
    bool home = d->provider->ops->answer_local != NULL || has_tag(d, g->residency_tag);
    st->masked_sent = !home;
    return home ? ctx->body : st->masked;
}

/* ---- output: placeholders back for the caller ---------------------------------- */

static bool restoring(mk_ctx *ctx)
{
    struct guard_state *st = ctx->guard_state;
    struct mk_guard *g = guard_of(ctx);
    return st && g && st->masked_sent && st->vault && g->pii.mode == MK_PII_MODE_PLACEHOLDER;
}

static int guard_response(mk_ctx *ctx, mk_buf *body)
{
    if (!restoring(ctx)) return 0;
    struct guard_state *st = ctx->guard_state;
    json_object *root = json_tokener_parse(body->data);
    json_object *choices = root ? json_object_object_get(root, "choices") : NULL;
    if (!choices) {
        json_object_put(root);
        return MK_EGUARD_OUTPUT; /* fail closed: cannot check what we cannot parse */
    }
    int rc = 0;
    for (size_t i = 0; i < json_object_array_length(choices) && rc == 0; i++) {
        json_object *msg = json_object_object_get(json_object_array_get_idx(choices, i), "message");
        json_object *content = msg ? json_object_object_get(msg, "content") : NULL;
        if (!json_object_is_type(content, json_type_string)) continue;
        mk_buf out = MK_BUF_INIT;
        rc = mk_pii_vault_restore(st->vault, json_object_get_string(content),
                                  (size_t)json_object_get_string_len(content), &out);
        if (rc == 0) json_object_object_add(msg, "content", json_object_new_string_len(out.data ? out.data : "", (int)out.len));
        mk_buf_release(&out);
    }
    if (rc == 0) {
        size_t len;
        const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
        mk_buf_reset(body);
        rc = mk_buf_append(body, s, len);
    }
    json_object_put(root);
    return rc;
}

/* Rewrites the chunk's delta.content with restored text; a placeholder split across
 * chunks is held back by the restorer and comes out whole in a later chunk (at the
 * latest in the one carrying finish_reason). */
static int guard_chunk(mk_ctx *ctx, struct mk_chunk *chunk)
{
    if (!restoring(ctx) || chunk->usage_only) return 0;
    struct guard_state *st = ctx->guard_state;
    if (!st->restorer && !(st->restorer = mk_pii_restorer_new(st->vault))) return MK_ENOMEM;
    json_object *root = json_tokener_parse(chunk->json.ptr);
    json_object *choice = root ? json_object_array_get_idx(json_object_object_get(root, "choices"), 0) : NULL;
    json_object *delta = choice ? json_object_object_get(choice, "delta") : NULL;
    if (!delta) {
        json_object_put(root);
        return 0;
    }
    json_object *content = json_object_object_get(delta, "content");
    json_object *finish = json_object_object_get(choice, "finish_reason");
    bool finishing = finish && !json_object_is_type(finish, json_type_null);
    mk_buf out = MK_BUF_INIT;
    int rc = 0;
    if (json_object_is_type(content, json_type_string))
        rc = mk_pii_restorer_feed(st->restorer, json_object_get_string(content),
                                  (size_t)json_object_get_string_len(content), &out);
    if (rc == 0 && finishing) rc = mk_pii_restorer_flush(st->restorer, &out);
    if (rc == 0 && (content || out.len)) {
        json_object_object_add(delta, "content", json_object_new_string_len(out.data ? out.data : "", (int)out.len));
        size_t len;
        const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
        /* The rewritten chunk lives in the pool until the request ends. */
        char *copy = mk_pool_strndup(ctx->pool, s, len);
        char *text = mk_pool_strndup(ctx->pool, out.data ? out.data : "", out.len);
        if (!copy || !text) rc = MK_ENOMEM;
        else {
            chunk->json = (mk_slice){copy, len};
            chunk->content = (mk_slice){text, out.len};
        }
    }
    mk_buf_release(&out);
    json_object_put(root);
    return rc;
}

const struct mk_filter_ops mk_filter_guard = {
    .name = "guard",
    .on_request = guard_request,
    .on_response = guard_response,
    .on_chunk = guard_chunk,
};
