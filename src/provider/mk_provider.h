/*
 * mk_provider: the contract every LLM provider backend fulfils (one file each:
 * openai.c, gigachat.c, yandexgpt.c, local.c) and the table that lists them.
 *
 * An adapter only translates; it never does I/O itself except through the callbacks
 * given to it (GigaChat's token fetch uses the mk_http_client passed in). This keeps
 * the encoders and decoders pure functions that unit tests and fuzz targets call
 * directly with bytes.
 *
 * Everything a decoder produces is in OpenAI's wire format: a chat.completion JSON
 * for non-streamed calls, chat.completion.chunk JSON objects for streamed ones.
 */
#ifndef MK_PROVIDER_H
#define MK_PROVIDER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/mk_config.h"
#include "core/mk_buf.h"
#include "net/mk_http_client.h"

typedef struct mk_provider mk_provider;

struct mk_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t total_tokens;
};

/* One upstream HTTP request built by an adapter. Owned by the caller: release with
 * mk_upstream_request_release(). */
struct mk_upstream_request {
    mk_buf url;
    char **headers;          /* "Name: value" lines, each malloc'd */
    size_t nheaders;
    mk_buf body;
};
int mk_upstream_request_add_header(struct mk_upstream_request *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mk_upstream_request_release(struct mk_upstream_request *r);

/* What the caller asks of one chat call. All borrowed for the call's duration. */
struct mk_chat_call {
    json_object *request;        /* the client's OpenAI chat request, validated */
    const char *model;           /* upstream model name of the chosen deployment */
    bool stream;
    bool include_usage;          /* client asked for stream_options.include_usage */
    const char *response_id;     /* "chatcmpl-..." to use where the provider gives none */
    int64_t created;             /* unix seconds, likewise */
    const char *request_id;      /* Mayak's request id, e.g. for X-Request-Id upstream */
};

/* An embeddings call: inputs are already split into strings. */
struct mk_embed_call {
    const char *model;
    const char *const *inputs;
    size_t ninputs;
    bool query;                  /* yandexgpt: text-search-query vs -doc model */
};

/* An upstream failure turned into Mayak's terms. */
struct mk_provider_error {
    int code;                    /* MK_EUPSTREAM_CLIENT (4xx not retryable), MK_EUPSTREAM_AUTH,
                                    MK_EUPSTREAM_RATE, MK_EUPSTREAM (5xx), MK_EUPSTREAM_BADREPLY */
    bool retryable;              /* another attempt (same or other deployment) may succeed */
    uint32_t retry_after_ms;     /* from Retry-After, 0 if none */
    char message[512];           /* provider's own message when it gave one */
};

/* One streamed event in OpenAI terms, handed to the sink. Slices are valid during
 * the sink call only. */
struct mk_stream_event {
    mk_slice chunk_json;         /* a chat.completion.chunk object (no "data: " prefix) */
    mk_slice content;            /* delta.content text carried by this chunk, may be empty */
    bool usage_only;             /* the chunk carries only usage (empty choices) */
    bool has_usage;
    struct mk_usage usage;
    const char *finish_reason;   /* NULL unless this chunk finishes a choice */
};
/* Return 0 to continue, non-zero to stop decoding (the feed returns that value). */
typedef int (*mk_stream_sink_fn)(void *arg, const struct mk_stream_event *ev);

/* Incremental decoder of one upstream stream. */
typedef struct mk_stream_decoder mk_stream_decoder;

struct mk_provider_ops {
    const char *type;  /* "openai", "gigachat", "yandexgpt", "local" */

    /* Set up state for a configured provider (p->state). Optional. */
    int (*init)(mk_provider *p);
    void (*release)(mk_provider *p);

    /* Make credentials ready (GigaChat: OAuth token, shared by all waiters and
     * refreshed shortly before it expires). Calls done(rc, arg) exactly once, maybe
     * before returning. NULL = nothing to do. */
    void (*authorize)(mk_provider *p, mk_http_client *client, void (*done)(int rc, void *arg), void *arg);

    /* Chat. build fills `out`; decode turns a complete non-streamed reply into an
     * OpenAI chat.completion JSON in `out_json` plus usage. Non-2xx statuses go to
     * decode_error instead. */
    int (*build_chat)(mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *out);
    int (*decode_chat)(mk_provider *p, const struct mk_chat_call *call, mk_slice body, mk_buf *out_json,
                       struct mk_usage *usage, struct mk_provider_error *err);

    /* Streaming: a decoder gets the upstream body bytes in arbitrary pieces.
     * feed returns 0, the sink's non-zero value, or MK_EUPSTREAM_BADREPLY (err filled).
     * finish is called at end of body: MK_EUPSTREAM_BADREPLY if the stream ended
     * without its proper end marker (a cut), else 0; it may emit a final event. */
    mk_stream_decoder *(*stream_new)(mk_provider *p, const struct mk_chat_call *call);
    int (*stream_feed)(mk_stream_decoder *d, const char *data, size_t len, mk_stream_sink_fn sink, void *arg,
                       struct mk_provider_error *err);
    int (*stream_finish)(mk_stream_decoder *d, mk_stream_sink_fn sink, void *arg, struct mk_provider_error *err);
    void (*stream_free)(mk_stream_decoder *d);

    /* Embeddings. max_batch: inputs per upstream call (YandexGPT: 1). decode appends
     * one float vector per input, in order, to `vectors` (a json array of arrays). */
    int max_embed_batch;
    int (*build_embed)(mk_provider *p, const struct mk_embed_call *call, struct mk_upstream_request *out);
    int (*decode_embed)(mk_provider *p, const struct mk_embed_call *call, mk_slice body, json_object *vectors,
                        struct mk_usage *usage, struct mk_provider_error *err);

    /* A non-2xx reply into an error. NULL = mk_provider_error_from_http(). */
    void (*decode_error)(mk_provider *p, int status, mk_slice body, mk_slice retry_after,
                         struct mk_provider_error *err);

    /* Local providers answer without HTTP: NULL for remote ones. Produces the same
     * output as decode_chat would. */
    int (*answer_local)(mk_provider *p, const struct mk_chat_call *call, mk_buf *out_json,
                        struct mk_usage *usage);
};

struct mk_provider {
    const struct mk_provider_config *config;  /* owned by the mk_config */
    const struct mk_provider_ops *ops;
    void *state;                              /* adapter's own */
};

/* Finds the ops for a type; NULL for unknown. */
const struct mk_provider_ops *mk_provider_ops_for(enum mk_provider_type type);
/* Create/free a provider instance for a config entry (calls ops->init/release). */
int mk_provider_new(const struct mk_provider_config *cfg, mk_provider **out);
void mk_provider_free(mk_provider *p);

/* Generic mapping of an HTTP error reply, used when ops->decode_error is NULL and by
 * adapters as a base: 400/404/409/413/422 -> MK_EUPSTREAM_CLIENT (not retryable);
 * 401/403 -> MK_EUPSTREAM_AUTH (retryable elsewhere); 408 -> MK_EUPSTREAM_TIMEOUT;
 * 429 -> MK_EUPSTREAM_RATE (retryable, Retry-After honoured); 5xx -> MK_EUPSTREAM.
 * The message is taken from {"error":{"message":...}} or {"message":...} when present. */
void mk_provider_error_from_http(int status, mk_slice body, mk_slice retry_after, struct mk_provider_error *err);

/* Helpers shared by adapters. */
/* Builds the text of a chunk object: {"id":..,"object":"chat.completion.chunk","created":..,
 * "model":..,"choices":[{"index":0,"delta":<delta>,"finish_reason":<fr or null>}]}.
 * delta is a json object (borrowed). */
int mk_openai_chunk_json(mk_buf *out, const char *id, int64_t created, const char *model, json_object *delta,
                         const char *finish_reason);
/* {"id":..,"object":"chat.completion.chunk",...,"choices":[],"usage":{...}} */
int mk_openai_usage_chunk_json(mk_buf *out, const char *id, int64_t created, const char *model,
                               const struct mk_usage *usage);
/* Parse OpenAI's usage object; false when absent or malformed. */
bool mk_openai_parse_usage(json_object *usage, struct mk_usage *out);

#endif
