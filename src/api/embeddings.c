/*
 * embeddings: POST /v1/embeddings. Inputs (a string or an array of strings) are sent
 * to the group's deployment in batches of the provider's size (YandexGPT takes one
 * text per call), each batch with the same failover and retries as chat. The answer
 * is OpenAI's list of embeddings, as float arrays or, when encoding_format is
 * "base64" (the openai SDKs ask for it by default), as base64 of little-endian
 * float32 values.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_time.h"
#include "mk_api.h"
#include "embed/mk_embed.h"
#include "mk_upstream.h"

struct embed_state {
    struct mk_attempt at;          /* first member */
    const char **inputs;
    size_t ninputs;
    size_t next;                   /* first input of the current batch */
    size_t batch;                  /* inputs in the current batch */
    bool base64;
    json_object *vectors;          /* array of arrays, in input order */
    struct mk_usage usage;
};

static size_t batch_size(struct embed_state *st)
{
    int max = st->at.dep ? st->at.dep->provider->ops->max_embed_batch : 0;
    size_t left = st->ninputs - st->next;
    return max > 0 && (size_t)max < left ? (size_t)max : left;
}

static int build(struct mk_attempt *at, struct mk_upstream_request *up)
{
    struct embed_state *st = (struct embed_state *)at;
    mk_provider *p = at->dep->provider;
    if (!p->ops->build_embed || !p->ops->decode_embed) return MK_EINVAL;
    st->batch = batch_size(st);
    struct mk_embed_call call = {at->dep->config->model, st->inputs + st->next, st->batch, false};
    return p->ops->build_embed(p, &call, up);
}

static void append_base64(mk_buf *out, json_object *vec)
{
    size_t n = json_object_array_length(vec);
    unsigned char *raw = malloc(n * 4 + 1);
    size_t b64len = sodium_base64_encoded_len(n * 4, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64len);
    if (raw && b64) {
        for (size_t i = 0; i < n; i++) {
            float f = (float)json_object_get_double(json_object_array_get_idx(vec, i));
            memcpy(raw + 4 * i, &f, 4); /* x86-64 and aarch64 are little-endian */
        }
        sodium_bin2base64(b64, b64len, raw, n * 4, sodium_base64_VARIANT_ORIGINAL);
        mk_buf_append_json_string(out, b64, strlen(b64));
    } else {
        mk_buf_append_str(out, "\"\"");
    }
    free(raw);
    free(b64);
}

static void respond(struct embed_state *st)
{
    mk_ctx *ctx = st->at.ctx;
    mk_buf out = MK_BUF_INIT;
    mk_buf_append_str(&out, "{\"object\":\"list\",\"data\":[");
    size_t n = json_object_array_length(st->vectors);
    for (size_t i = 0; i < n; i++) {
        json_object *vec = json_object_array_get_idx(st->vectors, i);
        mk_buf_printf(&out, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (st->base64) append_base64(&out, vec);
        else mk_buf_append_str(&out, json_object_to_json_string_ext(vec, JSON_C_TO_STRING_PLAIN));
        mk_buf_append_char(&out, '}');
    }
    mk_buf_append_str(&out, "],\"model\":");
    mk_buf_append_json_string(&out, ctx->model, strlen(ctx->model));
    mk_buf_printf(&out, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                  (long long)st->usage.prompt_tokens, (long long)st->usage.total_tokens);
    ctx->usage = st->usage;
    ctx->has_usage = true;
    mk_api_send(ctx, 200, "application/json", out.data, out.len);
    mk_buf_release(&out);
}

static void on_reply(struct mk_attempt *at, int status, mk_slice body, mk_http_call *call)
{
    struct embed_state *st = (struct embed_state *)at;
    struct mk_provider_error err = {0};
    if (status < 200 || status >= 300) {
        mk_attempt_decode_error(at, call, status, body, &err);
        mk_attempt_failed(at, err.code, err.retryable, err.retry_after_ms, err.message[0] ? err.message : NULL);
        return;
    }
    mk_provider *p = at->dep->provider;
    struct mk_embed_call ecall = {at->dep->config->model, st->inputs + st->next, st->batch, false};
    size_t before = json_object_array_length(st->vectors);
    struct mk_usage u = {0};
    int rc = p->ops->decode_embed(p, &ecall, body, st->vectors, &u, &err);
    if (rc == 0 && json_object_array_length(st->vectors) != before + st->batch) rc = MK_EUPSTREAM_BADREPLY;
    if (rc != 0) {
        /* Drop whatever a half-decoded reply appended, then fail the attempt. */
        while (json_object_array_length(st->vectors) > before)
            json_object_array_del_idx(st->vectors, json_object_array_length(st->vectors) - 1, 1);
        mk_attempt_failed(at, err.code ? err.code : rc, err.retryable, 0,
                          err.message[0] ? err.message : "embedding reply does not match the inputs");
        return;
    }
    st->usage.prompt_tokens += u.prompt_tokens;
    st->usage.total_tokens += u.total_tokens ? u.total_tokens : u.prompt_tokens;
    mk_attempt_succeeded(at);
    st->next += st->batch;
    if (st->next >= st->ninputs) {
        respond(st);
        return;
    }
    /* Next batch: a fresh logical call with its own failover. */
    at->finished = false;
    at->tried_mask = 0;
    at->retries = 0;
    mk_attempt_begin(at);
}

static void release_state(struct mk_attempt *at)
{
    struct embed_state *st = (struct embed_state *)at;
    json_object_put(st->vectors);
    st->vectors = NULL;
}

static const struct mk_attempt_ops embed_ops = {
    .build = build,
    .on_reply = on_reply,
    .release = release_state,
};

static void embed_terminal(mk_ctx *ctx) { mk_attempt_begin(ctx->terminal_state); }

/* ---- the built-in embedder, served as model "mayak-embed" ----------------------- */

/* One embedder per process, made on first use: it holds no per-call state, so every
 * loop may share it, and it needs no model download. */
static mk_embedder *builtin;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static void make_builtin(void)
{
    if (mk_embedder_new(NULL, &builtin) != 0) builtin = NULL;
}

static mk_embedder *mk_embed_builtin(void)
{
    pthread_once(&builtin_once, make_builtin);
    return builtin;
}

static void answer_builtin(mk_ctx *ctx, const char **inputs, size_t n, bool base64)
{
    mk_embedder *e = mk_embed_builtin();
    if (!e) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    uint32_t dim = mk_embedder_dim(e);
    float *vec = malloc(sizeof *vec * dim);
    struct embed_state st = {.base64 = base64, .vectors = json_object_new_array()};
    int64_t tokens = 0;
    int rc = vec ? 0 : MK_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = strlen(inputs[i]);
        rc = mk_embed_text(e, inputs[i], len, vec);
        if (rc != 0) break;
        json_object *arr = json_object_new_array_ext((int)dim);
        for (uint32_t k = 0; k < dim; k++) json_object_array_add(arr, json_object_new_double(vec[k]));
        json_object_array_add(st.vectors, arr);
        tokens += (int64_t)(len / 4 + 1); /* the same estimate the local responder uses */
    }
    free(vec);
    if (rc != 0) {
        json_object_put(st.vectors);
        mk_api_fail(ctx, rc, rc == MK_EBADUTF8 ? "input is not valid UTF-8" : NULL);
        return;
    }
    st.at.ctx = ctx;
    st.usage.prompt_tokens = st.usage.total_tokens = tokens;
    respond(&st);
    json_object_put(st.vectors);
}

void mk_api_embeddings(mk_ctx *ctx)
{
    if (mk_api_parse_body(ctx) != 0) return;
    json_object *body = ctx->body, *v;
    ctx->kind = MK_CTX_EMBEDDINGS;
    if (!json_object_object_get_ex(body, "model", &v) || !json_object_is_type(v, json_type_string)) {
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error", "'model' is required and must be a string");
        return;
    }
    ctx->model = json_object_get_string(v);
    bool base64 = false;
    if (json_object_object_get_ex(body, "encoding_format", &v) && v) {
        const char *f = json_object_get_string(v);
        if (strcmp(f, "base64") == 0) base64 = true;
        else if (strcmp(f, "float") != 0) {
            mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error", "'encoding_format' must be 'float' or 'base64'");
            return;
        }
    }
    json_object *input;
    if (!json_object_object_get_ex(body, "input", &input) || !input) {
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error", "'input' is required");
        return;
    }
    size_t n = json_object_is_type(input, json_type_array) ? json_object_array_length(input) : 1;
    if (n == 0 || n > MK_MAX_EMBED_INPUTS) {
        mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error", "'input' must hold 1 to 2048 items");
        return;
    }
    const char **inputs = mk_pool_alloc(ctx->pool, n * sizeof *inputs);
    if (!inputs) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_is_type(input, json_type_array) ? json_object_array_get_idx(input, i) : input;
        if (!json_object_is_type(item, json_type_string)) {
            mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error",
                             "'input' must be a string or an array of strings (token arrays are not supported)");
            return;
        }
        if (json_object_get_string_len(item) == 0) {
            mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error", "'input' must not contain empty strings");
            return;
        }
        inputs[i] = json_object_get_string(item);
    }
    if (strcmp(ctx->model, MK_BUILTIN_EMBED_MODEL) == 0) {
        answer_builtin(ctx, inputs, n, base64);
        return;
    }
    if (mk_api_bind_group(ctx) != 0) return;
    struct embed_state *st = mk_pool_alloc(ctx->pool, sizeof *st);
    if (!st) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    mk_attempt_init(&st->at, ctx, &embed_ops);
    st->inputs = inputs;
    st->ninputs = n;
    st->base64 = base64;
    st->vectors = json_object_new_array();
    ctx->terminal_state = st;
    ctx->terminal = embed_terminal;
    mk_pipeline_start(ctx);
}
