/*
 * mk_api: the HTTP routes of Mayak and the application that serves them.
 *
 * mk_app owns one event loop's worth of serving: the HTTP server, the upstream
 * client, the current "generation" (config + router, swapped on SIGHUP while
 * requests in flight keep the one they started with), signal handling and draining.
 *
 * Routes are a table (routes.c); each handler gets a mk_ctx allocated in the
 * request's pool and must finish the request through the mk_api_* helpers below,
 * which also write the access log line and the HTTP metrics.
 */
#ifndef MK_API_H
#define MK_API_H

#include <stdbool.h>
#include <uv.h>

#include "config/mk_config.h"
#include "desk/mk_desk.h"
#include "net/mk_http.h"
#include "net/mk_http_client.h"
#include "pipeline/mk_pipeline.h"
#include "pipeline/mk_services.h"
#include "router/mk_router.h"

/* A config and the router built from it; refcounted so a reload never pulls them
 * from under a request. */
struct mk_generation {
    struct mk_config *config;
    mk_router *router;
    int refs;
};

typedef struct mk_app {
    uv_loop_t *loop;
    char *config_path;             /* NULL = embedded defaults */
    struct mk_generation *gen;     /* current */
    mk_http_server *server;
    mk_http_client *client;
    struct mk_services *services;  /* store, audit log, ... shared by all requests */
    uv_signal_t sig_hup, sig_term, sig_int;
    uv_timer_t drain_timer;
    uv_timer_t metrics_timer;
    bool draining;
    bool stopping;
    size_t inflight;               /* requests started and not yet finished (HTTP + internal) */
    uv_timer_t services_timer;     /* at stop: waits for inflight to reach 0 */
    uint64_t services_started_ms;  /* when that wait began (uv_now) */
    int exit_code;
} mk_app;

/* Runs Mayak on the current thread until SIGTERM/SIGINT and the drain finish.
 * Takes ownership of cfg. config_path (may be NULL) is re-read on SIGHUP.
 * Returns the process exit status. */
int mk_app_run(struct mk_config *cfg, const char *config_path);

struct mk_generation *mk_generation_new(struct mk_config *cfg, int *err);
void mk_generation_ref(struct mk_generation *g);
void mk_generation_unref(struct mk_generation *g);

/* Resolves the caller (API key, JWT, or anonymous where the policy allows), checks
 * permission `perm` (an enum mk_perm), then runs next(ctx); or answers 401/403/503. */
void mk_api_authenticate(mk_ctx *ctx, int perm, void (*next)(mk_ctx *ctx));

/* The server's request handler (ctx = the mk_app). */
void mk_api_handle(mk_http_req *req, void *app);

/* ---- finishing a request (each runs the pipeline's on_end when the ctx went
 * through the pipeline, writes the access log and metrics, and finishes req) ---- */
void mk_api_send(mk_ctx *ctx, int status, const char *content_type, const char *body, size_t len);
/* OpenAI error JSON: {"error":{"message","type","param","code"}}. code_name NULL =
 * derived from the error; message NULL = the error table's message. If a stream has
 * already started, sends an SSE error event and ends the stream without [DONE]. */
void mk_api_fail(mk_ctx *ctx, int err, const char *message);
void mk_api_fail_code(mk_ctx *ctx, int err, const char *code_name, const char *message);
/* SSE: start (200, text/event-stream), one event's data payload, end ([DONE] first
 * when done_marker). */
int mk_api_stream_start(mk_ctx *ctx);
int mk_api_stream_event(mk_ctx *ctx, const char *data, size_t len);
void mk_api_stream_end(mk_ctx *ctx, bool done_marker);
/* Answers with a complete chat.completion JSON in the client's mode: through the
 * filters' on_response as is, or as an SSE stream of chunks (role, content pieces,
 * finish, usage when asked) through their on_chunk. Used for upstream answers that
 * were not streamed, the local responder and cache hits. */
void mk_api_reply_completion(mk_ctx *ctx, const char *completion_json, size_t len);

/* The built-in embedder's model name on /v1/embeddings and /v1/models. */
#define MK_BUILTIN_EMBED_MODEL "mayak-embed"

/* Route handlers. */
void mk_api_chat(mk_ctx *ctx);
/* The chat route after the body is parsed (ctx->body set): validation, model group,
 * pipeline, upstream attempts. Shared by the HTTP route and internal calls. */
void mk_api_chat_run(mk_ctx *ctx);
void mk_api_embeddings(mk_ctx *ctx);
void mk_api_models(mk_ctx *ctx);
void mk_api_model_get(mk_ctx *ctx);
void mk_api_metrics(mk_ctx *ctx);
void mk_api_healthz(mk_ctx *ctx);
void mk_api_readyz(mk_ctx *ctx);
void mk_api_usage(mk_ctx *ctx);
/* keys_api.c: /api/v1/admin/keys (keys.manage; the paths' {id} is read by each). */
void mk_api_admin_keys_create(mk_ctx *ctx);
void mk_api_admin_keys_list(mk_ctx *ctx);
void mk_api_admin_keys_get(mk_ctx *ctx);
void mk_api_admin_keys_rotate(mk_ctx *ctx);
void mk_api_admin_keys_revoke(mk_ctx *ctx);

/* Parses a JSON request body within Mayak's limits (size, depth, strict UTF-8).
 * On success *out is owned by the caller (json_object_put). On failure returns
 * MK_EBADJSON/MK_EBADUTF8/MK_ETOOBIG and writes a reason to msg. */
int mk_api_parse_json(mk_slice body, json_object **out, char *msg, size_t msglen);
/* Parses req->body into ctx->body (owned by the request's pool). On failure the
 * request is answered with the error and the code is returned. */
int mk_api_parse_body(mk_ctx *ctx);
/* Checks an OpenAI chat request: model (string), messages (non-empty array of
 * objects with a known role and string/array/null content), stream (bool),
 * stream_options, n == 1. 0 or MK_EINVAL with msg and *param naming the field. */
int mk_api_validate_chat(json_object *body, char *msg, size_t msglen, const char **param);

/* ---- internal calls (no socket) -------------------------------------------------- */

/* The request id for logs and response ids: the HTTP request's, or the internal
 * call's own. Never NULL. */
const char *mk_api_request_id(const mk_ctx *ctx);

/* Runs a chat request (an OpenAI chat.completions body; borrowed, copied here) through
 * the same pipeline as POST /v1/chat/completions — model groups and routing, guards,
 * cache, audit, metrics — without a socket, as the principal "desk" of tenant
 * "default". Streaming is turned off: the answer comes whole.
 * done(rc, json, len, arg) is called exactly once, on the loop thread, possibly
 * before this function returns (the local provider answers at once): rc 0 with the
 * chat.completion JSON, or a negative MK_E* with the OpenAI-style error JSON (json may
 * be NULL when there is none). The JSON is valid only during the call.
 * Returns 0 when done will be called; MK_EINVAL (NULL arguments, or a request that
 * fails validation: done is NOT called) or MK_ENOMEM. Call on app's loop thread. */
int mk_api_internal_chat(struct mk_app *app, json_object *request,
                         void (*done)(int rc, const char *completion_json, size_t len, void *arg), void *arg);
/* The support desk's answer to one user message with the LLM (desk_llm.c): triage
 * (asking the LLM for a second opinion when the classifier is unsure), then
 * mk_desk_respond, then the answer request through mk_api_internal_chat and
 * mk_desk_complete. With a desk made without use_llm it answers locally at once.
 * done(r, 0, arg) gets the reply (valid during the call only; the desk keeps nothing),
 * or done(NULL, rc, arg) on an internal error. ctx (and its turns) must stay valid
 * until done runs. Returns 0 (done will be called, maybe before this returns),
 * MK_EINVAL, MK_ENOMEM. Loop thread only. */
int mk_api_desk_answer(struct mk_app *app, const mk_desk *desk, const char *text, const struct mk_desk_context *ctx,
                       void (*done)(struct mk_desk_reply *r, int rc, void *arg), void *arg);

/* ---- the desk's LLM answers without a server (ask_llm.c; `mayak ask`) -------------- */

typedef struct mk_api_asker mk_api_asker;

/* Opens what the desk's LLM calls need outside the server, as mk_app_run would: an
 * event loop, the generation (router) built from cfg, the services (store, audit,
 * keys, kv, guards, cache; data_dir is created) and the upstream HTTP client. Takes
 * ownership of cfg in every case. Returns 0 and *out, or an MK_E* code with a
 * sentence in why (*out NULL). Not thread-safe: one thread uses an asker. */
int mk_api_asker_open(struct mk_config *cfg, mk_api_asker **out, mk_buf *why);
/* Answers text as the server's desk does (mk_api_desk_answer: triage, retrieval, the
 * answer request through the pipeline, escalation on failure), running the asker's
 * loop until the reply is in. use(r, arg) is called once with the reply, valid during
 * the call only, before this returns 0. desk must have been made with use_llm (else it
 * answers locally) and outlive the call; ctx may be NULL. Returns 0, MK_EINVAL,
 * MK_ENOMEM, or MK_EINTERNAL when the loop ran dry without an answer (use not called). */
int mk_api_asker_answer(mk_api_asker *a, const mk_desk *desk, const char *text, const struct mk_desk_context *ctx,
                        void (*use)(const struct mk_desk_reply *r, void *arg), void *arg);
/* Closes everything (the audit log is flushed) and frees the asker. Accepts NULL. */
void mk_api_asker_free(mk_api_asker *a);

/* routes.c -> internal_chat.c: the end of an internal request (ctx->req == NULL).
 * Calls the caller's done and frees the request's pool (and ctx with it). */
void mk_api_internal_finish(mk_ctx *ctx, int status, const char *body, size_t len);

#endif
