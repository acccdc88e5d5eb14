/*
 * Helpers shared by the provider adapter tests: JSON path lookups, an event
 * collector for stream decoders, and a driver that feeds a stream whole, byte by
 * byte or in fixed pieces so the results can be compared.
 */
#ifndef MK_PROVIDER_TEST_H
#define MK_PROVIDER_TEST_H

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "provider/mk_provider.h"

/* Looks up "a.b.0.c" (numbers index arrays); NULL when missing. */
static inline json_object *jpath(json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            char *end;
            long i = strtol(tok, &end, 10);
            if (*end || i < 0 || (size_t)i >= json_object_array_length(o)) return NULL;
            o = json_object_array_get_idx(o, (size_t)i);
        } else if (json_object_is_type(o, json_type_object)) {
            json_object *v = NULL;
            if (!json_object_object_get_ex(o, tok, &v)) return NULL;
            o = v;
        } else {
            return NULL;
        }
    }
    return o;
}

static inline const char *jstr(json_object *o, const char *path)
{
    json_object *v = jpath(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static inline json_object *jparse(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    json_tokener_free(tok);
    cr_assert_not_null(o, "not JSON: %.*s", (int)len, s);
    return o;
}

static inline bool has_header(const struct mk_upstream_request *r, const char *line)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcmp(r->headers[i], line)) return true;
    return false;
}

static inline bool has_header_prefix(const struct mk_upstream_request *r, const char *prefix)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strncasecmp(r->headers[i], prefix, strlen(prefix))) return true;
    return false;
}

struct events {
    mk_buf log;      /* every chunk_json, one per line, plus flags */
    mk_buf content;  /* concatenated content */
    int count;
    int usage_only;
    bool has_usage;
    struct mk_usage usage;
    char finish[32];
    int stop_after;  /* sink returns 7 after this many events; 0 = never */
};

static inline void events_init(struct events *e)
{
    memset(e, 0, sizeof *e);
    mk_buf_init(&e->log, 0);
    mk_buf_init(&e->content, 0);
}

static inline void events_release(struct events *e)
{
    mk_buf_release(&e->log);
    mk_buf_release(&e->content);
}

static inline int collect(void *arg, const struct mk_stream_event *ev)
{
    struct events *e = arg;
    cr_assert(ev->chunk_json.len > 0);
    /* each chunk must itself be a JSON object */
    json_object *o = jparse(ev->chunk_json.ptr, ev->chunk_json.len);
    cr_assert(json_object_is_type(o, json_type_object));
    json_object_put(o);
    mk_buf_append_slice(&e->log, ev->chunk_json);
    mk_buf_printf(&e->log, " |u=%d fr=%s\n", ev->usage_only, ev->finish_reason ? ev->finish_reason : "-");
    mk_buf_append_slice(&e->content, ev->content);
    e->count++;
    if (ev->usage_only) e->usage_only++;
    if (ev->has_usage) {
        e->has_usage = true;
        e->usage = ev->usage;
    }
    if (ev->finish_reason) snprintf(e->finish, sizeof e->finish, "%s", ev->finish_reason);
    if (e->stop_after && e->count >= e->stop_after) return 7;
    return 0;
}

/* Feeds data in pieces of `piece` bytes (0 = all at once), then finishes. Returns the
 * first non-zero result (feed or finish). */
static inline int run_stream(mk_provider *p, const struct mk_chat_call *call, const char *data, size_t len,
                             size_t piece, struct events *ev, struct mk_provider_error *err)
{
    mk_stream_decoder *d = p->ops->stream_new(p, call);
    cr_assert_not_null(d);
    int rc = 0;
    if (piece == 0) piece = len ? len : 1;
    for (size_t off = 0; off < len && !rc; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        /* a private copy so the decoder cannot rely on bytes after the piece */
        char *copy = malloc(n);
        memcpy(copy, data + off, n);
        rc = p->ops->stream_feed(d, copy, n, collect, ev, err);
        free(copy);
    }
    if (!rc) rc = p->ops->stream_finish(d, collect, ev, err);
    p->ops->stream_free(d);
    return rc;
}

/* Runs the stream whole and byte by byte and checks both give the same events. */
static inline int run_both(mk_provider *p, const struct mk_chat_call *call, const char *data, struct events *ev,
                           struct mk_provider_error *err)
{
    size_t len = strlen(data);
    struct events one;
    events_init(&one);
    struct mk_provider_error err1;
    memset(&err1, 0, sizeof err1);
    int rc1 = run_stream(p, call, data, len, 0, &one, &err1);
    int rc2 = run_stream(p, call, data, len, 1, ev, err);
    cr_expect_eq(rc1, rc2, "whole: %d, byte by byte: %d", rc1, rc2);
    cr_expect_str_eq(one.log.data ? one.log.data : "", ev->log.data ? ev->log.data : "");
    for (size_t piece = 2; piece < 9; piece++) {
        struct events k;
        events_init(&k);
        struct mk_provider_error errk;
        int rck = run_stream(p, call, data, len, piece, &k, &errk);
        cr_expect_eq(rck, rc1);
        cr_expect_str_eq(k.log.data ? k.log.data : "", one.log.data ? one.log.data : "", "piece %zu", piece);
        events_release(&k);
    }
    events_release(&one);
    return rc2;
}

#endif
