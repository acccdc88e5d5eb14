/*
 * mk_upstream (api): the attempt machinery shared by every routed call (chat and
 * embeddings): pick a deployment, make its credentials ready, build and start the
 * upstream call with the group's timeouts, and on failure decide between failover
 * (another deployment, at once), retry (after a jittered backoff, when every
 * deployment has been tried) and giving up — within max_attempts and the group's
 * retry budget, and only while nothing has been streamed to the client.
 *
 * It also owns the client-abort path: cancel the upstream call or backoff timer,
 * tell the router the outcome was neutral, and finish the request.
 *
 * A caller embeds struct mk_attempt as the FIRST member of its own state (allocated
 * in the request pool) and supplies mk_attempt_ops.
 */
#ifndef MK_UPSTREAM_H
#define MK_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "net/mk_http_client.h"
#include "pipeline/mk_pipeline.h"
#include "provider/mk_provider.h"
#include "router/mk_router.h"

struct mk_attempt;

struct mk_attempt_ops {
    /* Build the upstream request for at->dep. Return 0 to send it, MK_FILTER_DONE if
     * the caller answered without HTTP (local provider), or an MK_E* error. */
    int (*build)(struct mk_attempt *at, struct mk_upstream_request *up);
    /* Optional: install streaming callbacks into the call options. If it does not set
     * on_done, the reply is buffered and given to on_reply. */
    void (*configure)(struct mk_attempt *at, struct mk_http_call_opts *opts);
    /* A complete buffered reply (any HTTP status). Must end with mk_attempt_succeeded
     * + a response, or mk_attempt_failed. */
    void (*on_reply)(struct mk_attempt *at, int status, mk_slice body, mk_http_call *call);
    /* Free what the caller's state holds; runs when the request's pool is freed. */
    void (*release)(struct mk_attempt *at);
};

struct mk_attempt {
    mk_ctx *ctx;
    const struct mk_attempt_ops *ops;
    mk_deployment *dep;            /* the current pick */
    bool dep_reported;             /* each pick gets exactly one router report */
    mk_http_call *call;            /* the upstream call in flight, if any */
    uint64_t tried_mask;           /* deployments tried so far (bit = index) */
    uint64_t attempt_start_us;
    uint64_t first_data_us;        /* first upstream body bytes of this attempt */
    uint64_t first_byte_us;        /* first byte sent to the client */
    bool upstream_counted;         /* this attempt's upstream time is in ctx->upstream_us */
    int retries;                   /* backoff retries made (for the exponent) */
    void *backoff;                 /* heap uv_timer_t, or NULL */
    bool waiting_auth;
    bool aborted;
    bool finished;
    int last_error;
    char last_message[512];
};

void mk_attempt_init(struct mk_attempt *at, mk_ctx *ctx, const struct mk_attempt_ops *ops);
/* First attempt. */
void mk_attempt_begin(struct mk_attempt *at);

/* Timing marks. */
void mk_attempt_data_arrived(struct mk_attempt *at, uint64_t now_us);
void mk_attempt_first_byte(struct mk_attempt *at, uint64_t now_us);
void mk_attempt_upstream_done(struct mk_attempt *at, uint64_t now_us);

/* Outcomes of the current attempt. */
void mk_attempt_succeeded(struct mk_attempt *at);
/* Failover/retry/give up. message may be NULL. */
void mk_attempt_failed(struct mk_attempt *at, int code, bool retryable, uint32_t retry_after_ms,
                       const char *message);
/* The request is ending for another reason: cancel the upstream call and report the
 * pick as neutral if not reported yet. */
void mk_attempt_abandon(struct mk_attempt *at);
void mk_attempt_cancel_call(struct mk_attempt *at);
/* After a client abort: finish the request (nothing is written). */
void mk_attempt_finish_aborted(struct mk_attempt *at);
/* Turn a non-2xx reply into an error (provider's decoder or the generic one,
 * Retry-After taken from the call's headers). */
void mk_attempt_decode_error(struct mk_attempt *at, mk_http_call *call, int status, mk_slice body,
                             struct mk_provider_error *err);

/* Resolve ctx->model to a model group of the current generation and take a
 * reference on it. Sends 404 model_not_found (and returns -1) when unknown. */
int mk_api_bind_group(mk_ctx *ctx);

#endif
