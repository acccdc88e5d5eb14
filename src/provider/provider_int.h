/*
 * provider_int: what the adapters in src/provider/ share and nobody else needs.
 *
 * - strict JSON parsing of upstream bytes (depth-capped, UTF-8-checked, no trailing
 *   garbage), so a hostile or broken upstream always becomes MK_EUPSTREAM_BADREPLY
 *   with a message instead of a crash;
 * - a line splitter (LF, CRLF and lone CR) for bodies that arrive in arbitrary
 *   pieces, and an SSE event assembler on top of it (OpenAI, GigaChat); YandexGPT's
 *   newline-delimited JSON uses the splitter alone;
 * - the one stream decoder struct all adapters fill (a few fields are per adapter);
 * - small builders used by more than one adapter.
 *
 * Slices handed to callbacks here are valid only during the callback.
 */
#ifndef MK_PROVIDER_INT_H
#define MK_PROVIDER_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "provider/mk_provider.h"

/* json-c output flags we always use: compact, and "/" left as is (json-c escapes it
 * by default, which is valid but differs from what every other client prints). */
#define MK_JSON_PLAIN (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Largest token count we believe: a reply of a trillion tokens is a broken upstream. */
#define MK_MAX_TOKEN_COUNT INT64_C(1000000000000)

/* --- errors ----------------------------------------------------------------- */

/* Fills err (code, retryable, message from fmt) and returns code. */
int mk_perr(struct mk_provider_error *err, int code, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Copies at most sizeof(err->message)-1 bytes of s, cut at a UTF-8 boundary. */
void mk_perr_message(struct mk_provider_error *err, const char *s, size_t len);

/* --- JSON ------------------------------------------------------------------- */

/* Parses all of `in` as one JSON value (only whitespace may follow it) with a reusable
 * tokener (NULL = a fresh one). Returns the value (caller puts it) or NULL with
 * err filled as MK_EUPSTREAM_BADREPLY naming `what` ("reply", "stream event"...). */
json_object *mk_json_parse_strict(json_tokener *tok, mk_slice in, const char *what,
                                  struct mk_provider_error *err);
/* A tokener with Mayak's depth cap and strict flags; NULL on out-of-memory. */
json_tokener *mk_json_tokener_new(void);
/* Whether `in` (JSON already validated) has a raw control byte (< 0x20) inside a
 * string, or one outside strings other than JSON's whitespace: such bytes make it
 * invalid for strict clients, so a reply is re-serialised instead of relayed. */
bool mk_json_has_raw_controls(mk_slice in);

/* Typed lookups that return NULL when the key is absent, null or of another type. */
json_object *mk_json_get(json_object *o, const char *key, enum json_type type);
const char *mk_json_get_str(json_object *o, const char *key);
/* A non-negative token count: a JSON integer, or (YandexGPT) a string of digits.
 * false when absent or malformed; *out untouched then. */
bool mk_json_get_count(json_object *o, const char *key, int64_t *out);
/* Appends the compact JSON text of o. */
int mk_buf_append_json(mk_buf *b, json_object *o);
/* json_object_new_string_len with a NULL check folded into the add: returns 0 or
 * MK_ENOMEM. Used to keep the builders free of repetitive checks. */
int mk_json_add_str(json_object *o, const char *key, const char *s, size_t len);
int mk_json_add(json_object *o, const char *key, json_object *v);

/* Text of an OpenAI message "content": a string as is, an array of parts as the
 * concatenation of its "text" parts. MK_EINVAL when a part is not text (images and
 * audio cannot be carried by the native APIs here) or the shape is wrong; null and
 * absent give "". The result is appended to out. */
int mk_openai_content_text(json_object *content, mk_buf *out);

/* Decodes an OpenAI-shaped embeddings reply ({"data":[{"embedding":[...],"index":i}],
 * "usage":{...}}) expecting exactly `ninputs` vectors of one dimension; appends them
 * in index order to `vectors`. GigaChat puts usage per item; those are summed. */
int mk_decode_openai_embeddings(mk_slice body, size_t ninputs, json_object *vectors, struct mk_usage *usage,
                                struct mk_provider_error *err);

/* Adds "usage":{"prompt_tokens":..,"completion_tokens":..,"total_tokens":..} to out. */
int mk_usage_json_add(json_object *out, const struct mk_usage *u);

/* Joins base and path with exactly one '/' between them into url. */
int mk_url_join(mk_buf *url, const char *base, const char *path);
/* Adds the config's extra headers and X-Request-Id. */
int mk_add_common_headers(const mk_provider *p, const struct mk_chat_call *call, struct mk_upstream_request *r);

/* --- lines and SSE ---------------------------------------------------------- */

/* Called per complete line, terminator excluded. `stable` is true when the bytes
 * stay valid until the current feed call returns (they point into its input), false
 * when they live in the splitter's own buffer (valid during the callback only).
 * Non-zero stops the feed, which returns that value. */
typedef int (*mk_line_fn)(void *arg, mk_slice line, bool stable);

struct mk_lines {
    mk_buf partial;    /* a line not yet terminated, capped at MK_MAX_UPSTREAM_EVENT_BYTES */
    bool last_cr;      /* the previous piece ended with CR: a leading LF belongs to it */
};

void mk_lines_init(struct mk_lines *l);
void mk_lines_release(struct mk_lines *l);
/* 0, the callback's non-zero value, or MK_ETOOBIG for a line over the cap. */
int mk_lines_feed(struct mk_lines *l, const char *data, size_t len, mk_line_fn fn, void *arg);
/* End of input: an unterminated last line is handed over as a line. */
int mk_lines_finish(struct mk_lines *l, mk_line_fn fn, void *arg);

/* Called per SSE event with its data lines joined by "\n". */
typedef int (*mk_sse_fn)(void *arg, mk_slice data);

struct mk_sse {
    struct mk_lines lines;
    mk_buf data;       /* the event's data when it had to be copied */
    mk_slice borrowed; /* the event's data while it is one line inside the current input */
    bool has_data;
    bool in_buf;       /* data lives in `data`, not in `borrowed` */
    mk_sse_fn fn;
    void *arg;
};

void mk_sse_init(struct mk_sse *s);
void mk_sse_release(struct mk_sse *s);
/* 0, the callback's non-zero value, or MK_ETOOBIG for an event over
 * MK_MAX_UPSTREAM_EVENT_BYTES. */
int mk_sse_feed(struct mk_sse *s, const char *data, size_t len, mk_sse_fn fn, void *arg);
/* End of input: a last line without terminator and an event without its blank line
 * are still delivered (servers that end with "data: [DONE]\n" are common). */
int mk_sse_finish(struct mk_sse *s, mk_sse_fn fn, void *arg);

/* --- the stream decoder ----------------------------------------------------- */

struct mk_stream_decoder {
    mk_provider *p;
    char *id;                     /* response id, created and model from the call, copied */
    char *model;
    int64_t created;
    json_tokener *tok;
    struct mk_sse sse;            /* openai, gigachat */
    struct mk_lines lines;        /* yandexgpt */
    mk_buf chunk;                 /* scratch for built chunk JSON */
    bool done;                    /* the proper end marker was seen */
    bool emitted;                 /* at least one event went to the sink */
    bool failed;                  /* an error was returned; later feeds fail the same way */
    struct mk_provider_error fail_err;
    /* per-call sink context while feeding */
    mk_stream_sink_fn sink;
    void *sink_arg;
    struct mk_provider_error *err;
    /* gigachat: usage is held back and sent as the last chunk, like OpenAI does */
    bool has_usage;
    struct mk_usage usage;
    /* yandexgpt: the text the client has been sent so far */
    mk_buf text;
    bool role_sent;
};

/* Allocates a decoder with the call's id/model/created copied; NULL on out-of-memory. */
mk_stream_decoder *mk_stream_decoder_alloc(mk_provider *p, const struct mk_chat_call *call);
void mk_stream_decoder_free(mk_stream_decoder *d);
/* Hands one event to the sink, marking the decoder as having emitted. */
int mk_stream_emit(mk_stream_decoder *d, const struct mk_stream_event *ev);

/* Records a decoding failure (err already filled) so later feeds repeat it. */
int mk_stream_fail(mk_stream_decoder *d, struct mk_provider_error *err);

/* Feed/finish for the SSE-based adapters: on_event gets each event's data with
 * d->sink, d->sink_arg and d->err set; it returns 0, the sink's value, or an error
 * code after mk_stream_fail(). Events after the end marker are ignored. finish
 * reports MK_EUPSTREAM_BADREPLY ("stream ended early") when d->done is still false. */
int mk_sse_decoder_feed(mk_stream_decoder *d, const char *data, size_t len, mk_sse_fn on_event,
                        mk_stream_sink_fn sink, void *arg, struct mk_provider_error *err);
int mk_sse_decoder_finish(mk_stream_decoder *d, mk_sse_fn on_event, mk_stream_sink_fn sink, void *arg,
                          struct mk_provider_error *err);

/* Maps an upstream {"error":{...}} object found inside a 200 reply or a stream. */
int mk_error_from_object(json_object *error, int default_status, struct mk_provider_error *err);

/* "call_" + 16 hex chars derived from the response id and the choice index, so a
 * streamed and a non-streamed answer of the same call name their tool call alike. */
void mk_tool_call_id(char out[32], const char *response_id, int index);

/* --- gigachat ---------------------------------------------------------------- */

/* Installs an access token as if authorize() had fetched it (tests; also a way to
 * seed a token obtained elsewhere). expires_at_ms: wall clock ms since the epoch.
 * 0, MK_EINVAL (not a gigachat provider, or a token unfit for a header), MK_ENOMEM. */
int mk_gigachat_set_token(mk_provider *p, const char *token, int64_t expires_at_ms);
/* True when the provider holds a token (fresh or not). */
bool mk_gigachat_has_token(const mk_provider *p);

#endif
