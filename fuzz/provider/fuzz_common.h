/*
 * Shared driver for the provider fuzz targets: one input goes through decode_chat,
 * the stream decoder (split in two at a point derived from the data, so the fuzzer
 * explores every boundary), decode_error and decode_embed. Every chunk a decoder
 * emits must be a JSON object; anything else aborts (a bug, not bad input).
 */
#ifndef MK_FUZZ_PROVIDER_COMMON_H
#define MK_FUZZ_PROVIDER_COMMON_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "core/mk_limits.h"
#include "provider/mk_provider.h"
#include "provider/provider_int.h"

static int fuzz_sink(void *arg, const struct mk_stream_event *ev)
{
    size_t *count = arg;
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, ev->chunk_json.ptr, (int)ev->chunk_json.len);
    if (!o || !json_object_is_type(o, json_type_object)) abort();
    json_object_put(o);
    json_tokener_free(tok);
    (*count)++;
    return 0;
}

static void fuzz_provider(const struct mk_provider_config *cfg, const uint8_t *data, size_t size)
{
    mk_provider *p = NULL;
    if (mk_provider_new(cfg, &p)) abort();
    json_object *req = json_tokener_parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    struct mk_chat_call call = {.request = req, .model = "m", .stream = true, .response_id = "chatcmpl-f",
                                .created = 1};
    mk_slice body = {(const char *)data, size};

    /* non-streamed reply */
    mk_buf out = MK_BUF_INIT;
    struct mk_usage usage;
    struct mk_provider_error err;
    int rc = p->ops->decode_chat(p, &call, body, &out, &usage, &err);
    if (rc == 0) {
        /* Relayed or re-serialised, the reply must be strict JSON with no raw control
         * byte inside a string (json-c alone would accept one). */
        json_tokener *st = json_tokener_new_ex(MK_MAX_JSON_DEPTH + 2);
        json_tokener_set_flags(st, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *o = json_tokener_parse_ex(st, out.data, (int)out.len);
        if (!o || mk_json_has_raw_controls(mk_buf_slice(&out))) abort();
        json_object_put(o);
        json_tokener_free(st);
    } else if (err.code != rc || !err.message[0]) {
        abort();
    }
    mk_buf_release(&out);

    /* stream, split at a data-derived point */
    size_t split = size ? ((size_t)data[0] * 31u + (size_t)data[size - 1]) % (size + 1) : 0;
    size_t events = 0;
    mk_stream_decoder *d = p->ops->stream_new(p, &call);
    if (!d) abort();
    rc = p->ops->stream_feed(d, (const char *)data, split, fuzz_sink, &events, &err);
    if (!rc) rc = p->ops->stream_feed(d, (const char *)data + split, size - split, fuzz_sink, &events, &err);
    if (!rc) rc = p->ops->stream_finish(d, fuzz_sink, &events, &err);
    if (rc && (err.code != rc || !err.message[0])) abort();
    p->ops->stream_free(d);

    /* error replies */
    int status = 400 + (size ? data[0] % 200 : 0);
    if (p->ops->decode_error)
        p->ops->decode_error(p, status, body, (mk_slice){"120", 3}, &err);
    else
        mk_provider_error_from_http(status, body, (mk_slice){"120", 3}, &err);
    if (!mk_utf8_valid(err.message, strlen(err.message))) abort();

    /* embeddings */
    const char *inputs[] = {"a", "b", "c"};
    struct mk_embed_call ec = {.model = "e", .inputs = inputs,
                               .ninputs = p->ops->max_embed_batch == 1 ? 1 : 1 + (size ? data[size - 1] % 3 : 0)};
    json_object *vecs = json_object_new_array();
    rc = p->ops->decode_embed(p, &ec, body, vecs, &usage, &err);
    if (rc == 0 && json_object_array_length(vecs) != ec.ninputs) abort();
    json_object_put(vecs);

    json_object_put(req);
    mk_provider_free(p);
}

#endif
