/*
 * fake: internal declarations of mayak-fake-provider, the scriptable LLM provider
 * that Mayak's integration tests and benchmarks talk to instead of the real
 * OpenAI, GigaChat and YandexGPT APIs (see tests/fakes/README.md for the scripting).
 *
 * Files:
 *   fake_provider.c  command line, routing, control endpoints (/_fake/...), stats,
 *                    the ring of recorded requests, the process-wide mode
 *   fake_script.c    [[fake ...]] directives, answer text, chunking, token counts,
 *                    deterministic embeddings, small JSON helpers
 *   fake_reply.c     the reply engine: delays, chunk pacing, trickle, cut, hang,
 *                    all on uv timers so one loop keeps serving everyone
 *   fake_openai.c    OpenAI wire format      fake_gigachat.c  GigaChat wire format
 *   fake_yandex.c    YandexGPT wire format
 *
 * Everything runs on the one loop thread; nothing here is thread-safe or needs to be.
 */
#ifndef FAKE_H
#define FAKE_H

#include "core/mk_banned.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/mk_buf.h"
#include "net/mk_http.h"

/* Bytes of the answer text a directive or the mode may set. */
#define FAKE_MAX_TEXT 1024
/* Requests kept for GET /_fake/requests. */
#define FAKE_RING_SIZE 256
/* A recorded body is cut here so 256 huge requests cannot eat gigabytes. */
#define FAKE_RING_MAX_BODY (256 * 1024)
/* Distinct paths counted separately in stats; the rest count under "(other)". */
#define FAKE_MAX_STAT_PATHS 64
/* GigaChat tokens remembered; the oldest is forgotten beyond this. */
#define FAKE_MAX_TOKENS 4096
/* Largest delay a script may ask for (10 minutes): bigger is surely a typo. */
#define FAKE_MAX_DELAY_MS 600000
/* Most content chunks a script may ask for. */
#define FAKE_MAX_CHUNKS 100000
/* Embedding dimensions accepted. */
#define FAKE_MAX_DIMS 8192

enum fake_wire { FAKE_WIRE_OPENAI, FAKE_WIRE_GIGACHAT, FAKE_WIRE_YANDEX };

/* How one reply behaves: the process-wide mode, overridden by the request's directive.
 * Every field has an "off" value so that "not set" is explicit. */
typedef struct fake_opts {
    int status;       /* 0 = answer normally; else reply this status with an error body */
    int latency_ms;   /* delay before the response headers */
    int ttft_ms;      /* stream: delay between headers and the first chunk */
    int interval_ms;  /* stream: gap between chunks */
    int trickle_ms;   /* > 0: send byte by byte with this gap */
    int chunks;       /* content chunks; 0 = one per word */
    int cut_after;    /* >= 0: close abruptly after this many chunks; -1 = never */
    int retry_after;  /* >= 0: Retry-After header on 429/503; -1 = none */
    bool malformed;   /* broken JSON body / broken 2nd stream event */
    bool hang;        /* accept and never answer */
    char text[FAKE_MAX_TEXT]; /* "" = the default answer */
} fake_opts;

/* The mode set by POST /_fake/mode. */
typedef struct fake_mode {
    fake_opts opts;
    int fail_remaining; /* opts.status applies to this many more requests; -1 = until reset */
} fake_mode;

typedef struct fake_ring_entry {
    bool used;
    int64_t ts_ms;
    const char *method;  /* static string from the server */
    uint32_t nheaders;
    size_t body_len;     /* as received (the stored copy may be cut) */
    bool body_cut;
    char request_id[17];
    mk_buf blob;         /* path\0 query\0 (name\0 value\0)* body */
} fake_ring_entry;

typedef struct fake_server {
    uv_loop_t *loop;
    mk_http_server *http;
    uv_signal_t sigterm, sigint;
    bool verbose;
    const char *openai_key;     /* NULL = no auth on the OpenAI endpoints */
    int64_t token_ttl_ms;

    fake_mode mode;

    uint64_t requests;          /* provider requests (not /_fake/..., not /healthz) */
    uint64_t token_requests;    /* POST /api/v2/oauth */
    uint64_t health_checks;
    json_object *by_path;       /* path -> count */
    size_t stat_paths;

    fake_ring_entry ring[FAKE_RING_SIZE];
    size_t ring_next;           /* slot the next request goes to */

    json_object *tokens;        /* GigaChat token -> expires_at (wall ms) */
    char (*token_order)[64];    /* FAKE_MAX_TOKENS tokens, oldest first from token_next */
    size_t token_next;
} fake_server;

/* ---- fake_provider.c ------------------------------------------------------- */

/* The options one provider request runs with: the mode's, consuming one of
 * fail_next. The caller then applies the request's directive on top. */
void fake_opts_from_mode(fake_server *fs, fake_opts *o);

/* ---- fake_script.c --------------------------------------------------------- */

void fake_opts_clear(fake_opts *o);
/* Finds "[[fake k=v ...]]" in text and applies its keys to *o. Returns 0 when there is
 * no directive or it parsed; -1 with a message in err for an unknown key or bad value. */
int fake_directive_apply(const char *text, size_t len, fake_opts *o, char *err, size_t errlen);
/* Appends text with every [[fake ...]] removed and whitespace runs folded to one
 * space, trimmed. */
int fake_strip_directive(const char *text, size_t len, mk_buf *out);
/* The answer: o->text if set, else "Fake answer to: " + the first 60 characters of
 * prompt (whole UTF-8 characters only). */
int fake_answer_text(const fake_opts *o, const char *prompt, size_t len, mk_buf *out);
/* Splits text into `chunks` pieces at spaces (0 = one per word), padding the text
 * with filler words when more pieces are asked than it has words. Piece i is
 * text[ends[i-1] .. ends[i]). *ends_out is malloc'd (caller frees). 0 or MK_ENOMEM. */
int fake_split_chunks(mk_buf *text, int chunks, size_t **ends_out, size_t *n_out);
/* Approximate token count: bytes / 4 + 1 (0 for empty text). */
int fake_tokens(size_t bytes);
/* Deterministic unit vector for a text: words that two texts share pull their vectors
 * together, so similar questions get similar embeddings. */
void fake_embed(const char *text, size_t len, int dims, float *out);
/* Appends the vector as a JSON array of numbers, or as a base64 string of
 * little-endian float32 (OpenAI's encoding_format "base64"). */
int fake_append_vector(mk_buf *b, const float *v, int dims, bool base64);

/* Parses a request body (depth and UTF-8 checked). NULL when it is not JSON. */
json_object *fake_parse_json(const char *s, size_t len);
/* String member or NULL. */
const char *fake_json_str(json_object *o, const char *key);
/* Text of a chat message's `field` ("content" or "text"): a string, or an array of
 * parts whose "text" members are joined. Appends to out; false if neither. */
bool fake_message_text(json_object *msg, const char *field, mk_buf *out);
/* Case-insensitive (ASCII) substring test. */
bool fake_contains_nocase(const char *hay, size_t len, const char *needle);

/* What the three chat formats share: the prompt taken from the messages, the
 * scripting options and the answer. */
typedef struct fake_chat {
    const char *model;       /* from the request (owned by the json) or a default */
    bool stream;
    bool last_is_tool;       /* last message is a tool/function result */
    bool wants_weather;      /* last user message mentions the weather */
    int prompt_tokens;
    fake_opts opts;
    mk_buf answer;           /* the answer text */
} fake_chat;

/* Reads `messages` (field = "content" or "text"), applies mode and directive, builds
 * the answer. On a bad request or a bad directive sends a 400 in `wire`'s error shape
 * and returns -1 (the request is finished); else 0 (release c with fake_chat_release). */
int fake_chat_prepare(fake_server *fs, mk_http_req *req, enum fake_wire wire, json_object *body,
                      const char *field, fake_chat *c);
void fake_chat_release(fake_chat *c);

/* ---- fake_reply.c ---------------------------------------------------------- */

/* A reply being built: the whole body, split into pieces (stream events). */
typedef struct fake_plan {
    int status;
    const char *content_type;   /* static string */
    bool stream;                /* pieces are stream events (SSE / NDJSON lines) */
    mk_buf body;
    size_t *ends;               /* piece i = body[ends[i-1] .. ends[i]) */
    size_t npieces, cap;
} fake_plan;

void fake_plan_init(fake_plan *p, int status, const char *content_type, bool stream);
/* Closes the current piece at the body's current length. 0 or MK_ENOMEM. */
int fake_plan_end_piece(fake_plan *p);
void fake_plan_release(fake_plan *p);
/* Replaces piece 1 (or the whole body when not a stream) by a truncated copy that is
 * not valid JSON, keeping the event framing. */
void fake_plan_break(fake_plan *p);

/* Sends the plan as `o` says (delays, cut, trickle, hang). Takes the plan's buffers
 * (p is released). Finishes the request, now or later. */
void fake_send(fake_server *fs, mk_http_req *req, fake_plan *p, const fake_opts *o);
/* Error reply in `wire`'s shape; o may be NULL (no scripting). Finishes the request. */
void fake_send_error(fake_server *fs, mk_http_req *req, enum fake_wire wire, int status,
                     const char *message, const fake_opts *o);
/* Plain JSON reply, immediately. */
void fake_send_json(mk_http_req *req, int status, const char *body, size_t len);

/* ---- wire formats ---------------------------------------------------------- */

void fake_openai_models(fake_server *fs, mk_http_req *req);
void fake_openai_chat(fake_server *fs, mk_http_req *req);
void fake_openai_embeddings(fake_server *fs, mk_http_req *req);
/* Shared with GigaChat's embeddings, which copy OpenAI's shape. */
void fake_embeddings_reply(fake_server *fs, mk_http_req *req, enum fake_wire wire);

void fake_gigachat_oauth(fake_server *fs, mk_http_req *req);
void fake_gigachat_chat(fake_server *fs, mk_http_req *req);
void fake_gigachat_embeddings(fake_server *fs, mk_http_req *req);
void fake_gigachat_models(fake_server *fs, mk_http_req *req);
void fake_gigachat_tokens_release(fake_server *fs);

void fake_yandex_completion(fake_server *fs, mk_http_req *req);
void fake_yandex_embedding(fake_server *fs, mk_http_req *req);

#endif
