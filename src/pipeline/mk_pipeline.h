/*
 * mk_pipeline: the spine of a model request. One mk_ctx per request flows through an
 * ordered list of filters:
 *
 *   on_request  in order, before routing: a filter may let the request continue,
 *               answer it itself (a cache hit), or reject it (a guard, a limit).
 *               A filter may also go asynchronous (MK_FILTER_PENDING) and resume the
 *               pipeline later with mk_pipeline_resume().
 *   on_response a complete (non-streamed) answer on the way out, in order: may rewrite
 *               it (restore masked personal data) or reject it (output checks).
 *   on_chunk    each streamed chunk on the way out, in order: may rewrite the text,
 *               hold it back, or stop the stream (streaming guard).
 *   on_end      once per request, in reverse order, after the response is finished:
 *               accounting, audit, metrics, memory.
 *
 * The terminal stage (routing + provider call, in api/) is not a filter: it is the
 * `terminal` callback run when every on_request said continue.
 *
 * The filter list is data (mk_pipeline_filters in filters.c): adding a filter is one
 * file plus one line there.
 */
#ifndef MK_PIPELINE_H
#define MK_PIPELINE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "core/mk_pool.h"
#include "net/mk_http.h"
#include "provider/mk_provider.h"
#include "router/mk_router.h"

enum mk_ctx_kind { MK_CTX_CHAT = 0, MK_CTX_EMBEDDINGS };

enum mk_filter_result {
    MK_FILTER_CONTINUE = 0,  /* go on to the next filter */
    MK_FILTER_PENDING = 1,   /* the filter resumes later with mk_pipeline_resume() */
    MK_FILTER_DONE = 2,      /* the filter finished the request (answered or rejected) */
};

typedef struct mk_ctx mk_ctx;

/* A chunk on its way out (streamed responses only). */
struct mk_chunk {
    mk_slice json;           /* chat.completion.chunk text as it will be sent */
    mk_slice content;        /* its delta.content text */
    bool usage_only;
};

struct mk_filter_ops {
    const char *name;
    /* Return an mk_filter_result, or a negative MK_E* code to reject the request with
     * that error (the pipeline answers in OpenAI's error shape). */
    int (*on_request)(mk_ctx *ctx);
    /* A complete chat.completion (or embeddings list) JSON in `body`, which the filter
     * may replace. 0 to pass it on, or a negative MK_E* to answer with that error
     * instead (fail closed: an output check that errors blocks). */
    int (*on_response)(mk_ctx *ctx, mk_buf *body);
    /* 0 to pass the chunk on, MK_FILTER_DONE to stop the stream after this point
     * (the terminal cancels the upstream call), negative to fail the stream. */
    int (*on_chunk)(mk_ctx *ctx, struct mk_chunk *chunk);
    void (*on_end)(mk_ctx *ctx);
};

struct mk_ctx {
    mk_http_req *req;            /* the client's request; NULL once finished */
    mk_pool *pool;               /* = req->pool while the request lives; the ctx lives in it */
    void *app;                   /* the API layer's application (opaque here) */
    void *generation;            /* the API layer's config/router reference, dropped at the end */
    enum mk_ctx_kind kind;
    const char *route;           /* metrics label of the route */
    bool audited;                /* the end of this request is recorded (on_end runs) */
    json_object *body;           /* parsed request body (owned: released with the pool) */
    const char *internal_id;     /* request id of an internal call (req NULL); else NULL */
    const char *model;           /* as the client named it */
    mk_router *router;           /* a reference held for the request's life */
    mk_model_group *group;
    bool stream;
    bool include_usage;

    /* identity (filled by auth when present; defaults otherwise) */
    const char *tenant;
    const char *principal;
    const char **required_tags;  /* compliance tags the request/tenant demands */
    size_t nrequired_tags;

    /* outcome */
    mk_deployment *deployment;   /* the one that answered (or last tried) */
    int attempts;
    int status;                  /* HTTP status sent to the client */
    int error;                   /* MK_E* if the request failed, else 0 */
    bool stream_started;
    bool stream_failed;          /* stream ended with an error event */
    bool cache_hit;
    struct mk_usage usage;
    bool has_usage;
    double cost;

    /* timing, mk_now_us() */
    uint64_t start_us;           /* request fully received */
    uint64_t upstream_us;        /* time spent waiting on upstream calls */
    uint64_t first_token_us;     /* when the first token reached the client, 0 if none */
    uint64_t overhead_us;        /* gateway's own time as reported in x-mayak-overhead-us */

    /* services shared by every request of this process (store, audit, guards...) */
    struct mk_services *services;
    struct mk_principal *principal_rec; /* who is calling (auth), NULL before auth */
    void *guard_state;           /* the guard filter's per-request state */
    void *cache_state;           /* the cache filter's per-request state */
    bool pipeline_pending;       /* a filter is waiting on asynchronous work */
    /* Each guard's verdict as `"name":{...}` members, joined into one JSON object for
     * the audit record (mk_ctx_add_verdict). */
    mk_buf verdicts;
    /* The answer as the client received it (content text), kept for the audit digest
     * only when an audit log is open. */
    mk_buf answer;

    /* extra response headers filters want sent (e.g. verdicts); pool-allocated */
    mk_http_header extra_headers[16];
    size_t nextra_headers;

    /* pipeline state */
    size_t next_filter;
    void (*terminal)(mk_ctx *ctx);
    /* Answers the request with an error in OpenAI's shape (set by the API layer);
     * message NULL = the error table's message. */
    void (*fail)(mk_ctx *ctx, int code, const char *message);
    /* Answers the request with a complete chat.completion JSON, replayed in the
     * caller's mode (JSON or SSE) through every filter's on_response/on_chunk (set by
     * the API layer; NULL where a filter cannot answer by itself, e.g. internal calls). */
    void (*reply)(mk_ctx *ctx, const char *completion_json, size_t len);
    void *terminal_state;
};

/* The filters in order; NULL-terminated. */
extern const struct mk_filter_ops *const mk_pipeline_filters[];

/* Runs on_request of each filter from the start, then ctx->terminal. */
void mk_pipeline_start(mk_ctx *ctx);
/* Continue after a filter returned MK_FILTER_PENDING: rc is that filter's final result. */
void mk_pipeline_resume(mk_ctx *ctx, int rc);
/* Pass a complete answer through every filter's on_response; 0 or an error. */
int mk_pipeline_response(mk_ctx *ctx, mk_buf *body);
/* Pass a chunk through every filter's on_chunk; returns 0, MK_FILTER_DONE or an error. */
int mk_pipeline_chunk(mk_ctx *ctx, struct mk_chunk *chunk);
/* Run every on_end (reverse order). Call exactly once, right before the request is
 * finished (while ctx->req is still valid). */
void mk_pipeline_end(mk_ctx *ctx);

/* Adds `"name":json_value` to ctx->verdicts. json_value must be valid JSON. */
void mk_ctx_add_verdict(mk_ctx *ctx, const char *name, const char *json_value);
/* Releases the ctx's own buffers; the API layer runs it when the request's pool goes. */
void mk_ctx_release(mk_ctx *ctx);

/* Adds a response header (name/value copied into the pool). Ignored beyond 16. */
void mk_ctx_add_header(mk_ctx *ctx, const char *name, const char *value);

#endif
