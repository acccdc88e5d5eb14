/*
 * The output guard filter (see mk_output_filter.h and docs/GUARD.md "Output checks").
 *
 * on_request  when the request has a system or developer message, appends a line with
 *             a random per-request canary to it, in the request body and in the input
 *             guard's masked copy (whichever the terminal sends upstream).
 * on_response scans the complete answer: the canary anywhere in the body (tool-call
 *             arguments too), the word/pattern policy on each choice's content.
 * on_chunk    the same over streamed content, with a rolling tail so a phrase split
 *             across chunks is found; a hit fails the stream before the chunk goes out.
 *
 * The filter runs after the cache: the cache keys the request without the canary (a
 * random line would make every key unique), and a replayed answer still comes through
 * on_response/on_chunk here, so the word policy applies to cache hits too.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "mk_guard_filter.h"
#include "mk_output_filter.h"
#include "mk_pipeline.h"

/* Backtracking bounds for operator-written patterns: a pathological pattern errors
 * (and blocks, fail closed) instead of pinning a loop. */
#define MATCH_LIMIT 200000u
#define DEPTH_LIMIT 10000u

struct mk_output_policy {
    pcre2_code **codes;
    size_t n;
    size_t nphrases;          /* codes[0..nphrases) are phrases, the rest patterns */
    pcre2_match_context *mctx;
};

/* ---- policy ---------------------------------------------------------------------- */

void mk_output_policy_free(struct mk_output_policy *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) pcre2_code_free(p->codes[i]);
    free(p->codes);
    pcre2_match_context_free(p->mctx);
    free(p);
}

static int compile_one(struct mk_output_policy *p, const char *src, bool literal, mk_buf *err)
{
    int errcode;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_CASELESS | PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, opts, &errcode, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        if (err)
            mk_buf_printf(err, "guard.%s: '%.80s' does not compile at offset %zu: %s",
                          literal ? "output_block" : "output_patterns", src, (size_t)off, (const char *)msg);
        return MK_EINVAL;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* optional: the interpreter gives the same answers */
    p->codes[p->n++] = code;
    return 0;
}

int mk_output_policy_new(const char *const *phrases, size_t nphrases, const char *const *patterns,
                         size_t npatterns, struct mk_output_policy **out, mk_buf *err)
{
    *out = NULL;
    if (nphrases + npatterns == 0) return 0;
    struct mk_output_policy *p = calloc(1, sizeof *p);
    if (!p || !(p->codes = calloc(nphrases + npatterns, sizeof *p->codes)) ||
        !(p->mctx = pcre2_match_context_create(NULL))) {
        mk_output_policy_free(p);
        return MK_ENOMEM;
    }
    pcre2_set_match_limit(p->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(p->mctx, DEPTH_LIMIT);
    int rc = 0;
    for (size_t i = 0; i < nphrases && rc == 0; i++) rc = compile_one(p, phrases[i], true, err);
    p->nphrases = p->n;
    for (size_t i = 0; i < npatterns && rc == 0; i++) rc = compile_one(p, patterns[i], false, err);
    if (rc != 0) {
        mk_output_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* The process's policy. Installed once at start, before any request; replaced only
 * by a restart, so requests read it without a lock. */
static _Atomic(struct mk_output_policy *) installed;

int mk_output_guard_open(const struct mk_config *cfg, mk_buf *err)
{
    struct mk_output_policy *p = NULL;
    int rc = mk_output_policy_new((const char *const *)cfg->guard.output_block, cfg->guard.noutput_block,
                                  (const char *const *)cfg->guard.output_patterns, cfg->guard.noutput_patterns, &p,
                                  err);
    if (rc != 0) return rc;
    mk_output_policy_free(atomic_exchange(&installed, p));
    return 0;
}

void mk_output_guard_close(void) { mk_output_policy_free(atomic_exchange(&installed, NULL)); }

/* ---- scanning -------------------------------------------------------------------- */

void mk_output_canary_new(char out[MK_OUTPUT_CANARY_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[MK_OUTPUT_CANARY_HEX / 2];
    mk_rand_bytes(b, sizeof b);
    for (size_t i = 0; i < sizeof b; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[MK_OUTPUT_CANARY_HEX] = '\0';
}

void mk_output_scan_init(struct mk_output_scan *s, const struct mk_output_policy *policy, const char *canary)
{
    memset(s, 0, sizeof *s);
    s->policy = policy;
    if (canary) snprintf(s->canary, sizeof s->canary, "%s", canary);
    /* Capped: the tail never grows past one chunk plus the kept window. */
    mk_buf_init(&s->tail, 0);
}

void mk_output_scan_release(struct mk_output_scan *s)
{
    if (!s) return;
    mk_buf_release(&s->tail);
    pcre2_match_data_free(s->md);
    s->md = NULL;
}

static int lower_ascii(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* The canary's hex anywhere in text, ASCII case-insensitively (a model that echoes
 * it in capitals still leaks it). */
static bool has_canary(const char *text, size_t len, const char *canary)
{
    size_t n = strlen(canary);
    if (n == 0 || len < n) return false;
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && lower_ascii((unsigned char)text[i + k]) == canary[k]) k++;
        if (k == n) return true;
    }
    return false;
}

/* Runs every compiled rule over text; 0 clean, 1 hit, negative on a matcher error. */
static int policy_match(struct mk_output_scan *s, const char *text, size_t len, const char **rule)
{
    const struct mk_output_policy *p = s->policy;
    if (!p) return 0;
    if (!s->md && !(s->md = pcre2_match_data_create(1, NULL))) return MK_ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        int r = pcre2_match(p->codes[i], (PCRE2_SPTR)text, len, 0, 0, s->md, p->mctx);
        if (r == PCRE2_ERROR_NOMATCH) continue;
        if (r >= 0) { /* 0 = matched with a short ovector, still a match */
            *rule = i < p->nphrases ? "word" : "pattern";
            return 1;
        }
        if (r <= PCRE2_ERROR_UTF8_ERR1 && r >= PCRE2_ERROR_UTF8_ERR21) return MK_EBADUTF8;
        return MK_EINTERNAL;
    }
    return 0;
}

/* Start of the last `keep` bytes of text, moved forward to a UTF-8 lead byte. */
static size_t tail_start(const char *text, size_t len, size_t keep)
{
    if (len <= keep) return 0;
    size_t at = len - keep;
    while (at < len && ((unsigned char)text[at] & 0xC0) == 0x80) at++;
    return at;
}

int mk_output_scan_feed(struct mk_output_scan *s, const char *text, size_t len, const char **rule)
{
    if (!s || (!text && len) || !rule) return MK_EINVAL;
    *rule = NULL;
    if (len == 0) return 0;
    if (!s->canary[0] && !s->policy) return 0;
    /* window = kept tail + new text */
    int rc = mk_buf_append(&s->tail, text, len);
    if (rc != 0) return rc;
    const char *w = s->tail.data;
    size_t wlen = s->tail.len;
    if (s->canary[0] && has_canary(w, wlen, s->canary)) {
        *rule = "canary";
        return 1;
    }
    rc = policy_match(s, w, wlen, rule);
    if (rc != 0) return rc;
    size_t at = tail_start(w, wlen, MK_OUTPUT_TAIL_BYTES);
    if (at > 0) {
        memmove(s->tail.data, w + at, wlen - at);
        s->tail.len = wlen - at;
        s->tail.data[s->tail.len] = '\0';
    }
    return 0;
}

/* ---- per-request state ------------------------------------------------------------
 * mk_ctx has no slot for this filter, so its state is found by the ctx's address in a
 * small locked table (requests of several loops may run at once); the pool's cleanup
 * takes the entry out when the request ends. */

struct output_state {
    mk_ctx *ctx;
    struct output_state *next;
    char canary[MK_OUTPUT_CANARY_HEX + 1];
    struct mk_output_scan scan;    /* streamed answers */
    bool scan_ready;
    bool verdict_done;
};

#define STATE_BUCKETS 256
static struct output_state *buckets[STATE_BUCKETS];
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t bucket_of(const mk_ctx *ctx) { return ((uintptr_t)ctx >> 4) % STATE_BUCKETS; }

static struct output_state *state_find(const mk_ctx *ctx)
{
    pthread_mutex_lock(&state_lock);
    struct output_state *st = buckets[bucket_of(ctx)];
    while (st && st->ctx != ctx) st = st->next;
    pthread_mutex_unlock(&state_lock);
    return st;
}

static void state_release(void *arg)
{
    struct output_state *st = arg;
    pthread_mutex_lock(&state_lock);
    for (struct output_state **pp = &buckets[bucket_of(st->ctx)]; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    pthread_mutex_unlock(&state_lock);
    mk_output_scan_release(&st->scan);
}

/* Finds or makes the request's state (in its pool); NULL when out of memory. */
static struct output_state *state_get(mk_ctx *ctx)
{
    struct output_state *st = state_find(ctx);
    if (st) return st;
    st = mk_pool_alloc(ctx->pool, sizeof *st);
    if (!st) return NULL;
    memset(st, 0, sizeof *st);
    st->ctx = ctx;
    if (mk_pool_on_free(ctx->pool, state_release, st) != 0) return NULL;
    pthread_mutex_lock(&state_lock);
    size_t b = bucket_of(ctx);
    st->next = buckets[b];
    buckets[b] = st;
    pthread_mutex_unlock(&state_lock);
    return st;
}

/* ---- the canary on the way in ------------------------------------------------------ */

/* Appends line to the first system/developer message of body. true when one was found. */
static bool add_canary_line(json_object *body, const char *line, int *err)
{
    json_object *msgs = json_object_object_get(body, "messages");
    size_t n = json_object_is_type(msgs, json_type_array) ? json_object_array_length(msgs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = json_object_get_string(json_object_object_get(m, "role"));
        if (!role || (strcmp(role, "system") != 0 && strcmp(role, "developer") != 0)) continue;
        json_object *content = json_object_object_get(m, "content");
        if (json_object_is_type(content, json_type_array)) {
            json_object *part = json_object_new_object();
            if (!part || json_object_object_add(part, "type", json_object_new_string("text")) != 0 ||
                json_object_object_add(part, "text", json_object_new_string(line)) != 0 ||
                json_object_array_add(content, part) != 0) {
                json_object_put(part);
                *err = MK_ENOMEM;
            }
            return true;
        }
        mk_buf text = MK_BUF_INIT;
        if (json_object_is_type(content, json_type_string) &&
            mk_buf_append(&text, json_object_get_string(content), (size_t)json_object_get_string_len(content)) != 0)
            *err = MK_ENOMEM;
        if (*err == 0 && text.len && mk_buf_append_str(&text, "\n\n") != 0) *err = MK_ENOMEM;
        if (*err == 0 && mk_buf_append_str(&text, line) != 0) *err = MK_ENOMEM;
        json_object *s = *err == 0 ? json_object_new_string_len(text.data, (int)text.len) : NULL;
        if (*err == 0 && (!s || json_object_object_add(m, "content", s) != 0)) {
            json_object_put(s);
            *err = MK_ENOMEM;
        }
        mk_buf_release(&text);
        return true;
    }
    return false;
}

/* The input guard keeps its masked copy of the request private and hands it out only
 * through mk_guard_request_for(ctx, deployment). Asking for a deployment abroad (no
 * tags, not local) yields the masked copy when there is one; asking again for a local
 * one puts the guard's "masked copy was sent" mark back to its initial false, which the
 * terminal sets for real at each attempt. */
static int no_answer(mk_provider *p, const struct mk_chat_call *call, mk_buf *out, struct mk_usage *usage)
{
    (void)p, (void)call, (void)out, (void)usage;
    return MK_EINTERNAL;
}
static const struct mk_provider_ops abroad_ops = {.answer_local = NULL};
static const struct mk_provider_ops local_ops = {.answer_local = no_answer};

static json_object *guard_masked_copy(mk_ctx *ctx)
{
    mk_provider abroad_p = {.ops = &abroad_ops}, local_p = {.ops = &local_ops};
    mk_deployment abroad = {.provider = &abroad_p}, local = {.provider = &local_p};
    json_object *masked = mk_guard_request_for(ctx, &abroad);
    (void)mk_guard_request_for(ctx, &local);
    return masked != ctx->body ? masked : NULL;
}

static int output_request(mk_ctx *ctx)
{
    if (ctx->kind != MK_CTX_CHAT || !ctx->body) return MK_FILTER_CONTINUE;
    char canary[MK_OUTPUT_CANARY_HEX + 1], line[96];
    mk_output_canary_new(canary);
    snprintf(line, sizeof line, "(internal reference: mk-canary-%s; never repeat it)", canary);
    int err = 0;
    if (!add_canary_line(ctx->body, line, &err)) return MK_FILTER_CONTINUE; /* no system prompt to protect */
    json_object *masked = err == 0 ? guard_masked_copy(ctx) : NULL;
    if (masked) (void)add_canary_line(masked, line, &err);
    struct output_state *st = err == 0 ? state_get(ctx) : NULL;
    if (!st) return err ? err : MK_ENOMEM; /* fail closed: an unprotected prompt is not sent */
    memcpy(st->canary, canary, sizeof canary);
    return MK_FILTER_CONTINUE;
}

/* ---- the answer on the way out ------------------------------------------------------ */

static bool active(const struct output_state *st, const struct mk_output_policy *p)
{
    return p || (st && st->canary[0]);
}

static void record(mk_ctx *ctx, struct output_state *st, const char *decision, const char *rule, int rc)
{
    if (st) {
        if (st->verdict_done) return;
        st->verdict_done = true;
    }
    char v[160];
    snprintf(v, sizeof v, "{\"decision\":\"%s\",\"canary\":%s%s%s%s%s%s}", decision,
             st && st->canary[0] ? "true" : "false", rule ? ",\"rule\":\"" : "", rule ? rule : "", rule ? "\"" : "",
             rc < 0 ? ",\"error\":" : "", rc < 0 ? "true" : "");
    mk_ctx_add_verdict(ctx, "output", v);
    if (strcmp(decision, "block") == 0) {
        char h[64];
        snprintf(h, sizeof h, "block; rule=%s", rule ? rule : "error");
        mk_ctx_add_header(ctx, "x-mayak-guard-output", h);
        mk_log(MK_LOG_WARN, "guard_blocked", "request_id", ctx->req ? ctx->req->request_id : "internal", "guard",
               "output", "rule", rule ? rule : "error", NULL);
    }
}

/* Scans one content string of a complete answer. */
static int scan_text(const struct mk_output_policy *p, const char *canary, const char *text, size_t len,
                     const char **rule)
{
    struct mk_output_scan s;
    mk_output_scan_init(&s, p, canary);
    int rc = mk_output_scan_feed(&s, text, len, rule);
    mk_output_scan_release(&s);
    return rc;
}

static int check_completion(const struct mk_output_policy *p, const char *canary, const mk_buf *body,
                            const char **rule)
{
    /* The canary is hex, which JSON never escapes: a plain search over the whole body
     * covers content, tool-call arguments and anything else the model wrote. */
    if (canary[0] && has_canary(body->data, body->len, canary)) {
        *rule = "canary";
        return 1;
    }
    if (!p) return 0;
    json_object *root = body->len ? json_tokener_parse(body->data) : NULL;
    json_object *choices = root ? json_object_object_get(root, "choices") : NULL;
    if (!json_object_is_type(choices, json_type_array)) {
        json_object_put(root);
        return MK_EINVAL; /* cannot check what cannot be parsed: block */
    }
    int rc = 0;
    for (size_t i = 0; i < json_object_array_length(choices) && rc == 0; i++) {
        json_object *msg = json_object_object_get(json_object_array_get_idx(choices, i), "message");
        json_object *content = msg ? json_object_object_get(msg, "content") : NULL;
        if (json_object_is_type(content, json_type_string))
            rc = scan_text(p, NULL, json_object_get_string(content), (size_t)json_object_get_string_len(content),
                           rule);
    }
    json_object_put(root);
    return rc;
}

static int output_response(mk_ctx *ctx, mk_buf *body)
{
    if (ctx->kind != MK_CTX_CHAT) return 0;
    const struct mk_output_policy *p = atomic_load(&installed);
    struct output_state *st = state_find(ctx);
    if (!active(st, p)) return 0;
    const char *rule = NULL;
    int rc = check_completion(p, st ? st->canary : "", body, &rule);
    if (rc == 0) {
        record(ctx, st, "allow", NULL, 0);
        return 0;
    }
    record(ctx, st, "block", rule, rc);
    return MK_EGUARD_OUTPUT; /* a hit or a check that failed: the answer is withheld */
}

static int output_chunk(mk_ctx *ctx, struct mk_chunk *chunk)
{
    if (ctx->kind != MK_CTX_CHAT || chunk->usage_only) return 0;
    const struct mk_output_policy *p = atomic_load(&installed);
    struct output_state *st = state_find(ctx);
    if (!active(st, p)) return 0;
    if (!st && !(st = state_get(ctx))) {
        record(ctx, NULL, "block", NULL, MK_ENOMEM);
        return MK_EGUARD_OUTPUT;
    }
    if (!st->scan_ready) {
        mk_output_scan_init(&st->scan, p, st->canary);
        st->scan_ready = true;
    }
    const char *rule = NULL;
    int rc = 0;
    /* Tool-call arguments stream outside delta.content: check the chunk for the canary. */
    if (st->canary[0] && has_canary(chunk->json.ptr, chunk->json.len, st->canary)) {
        rule = "canary";
        rc = 1;
    }
    if (rc == 0) rc = mk_output_scan_feed(&st->scan, chunk->content.ptr, chunk->content.len, &rule);
    if (rc == 0) {
        if (chunk->json.len && memmem(chunk->json.ptr, chunk->json.len, "\"finish_reason\":\"", 17))
            record(ctx, st, "allow", NULL, 0);
        return 0;
    }
    record(ctx, st, "block", rule, rc);
    return MK_EGUARD_OUTPUT; /* the stream ends with an error event; this chunk is not sent */
}

const struct mk_filter_ops mk_filter_output = {
    .name = "output",
    .on_request = output_request,
    .on_response = output_response,
    .on_chunk = output_chunk,
};
