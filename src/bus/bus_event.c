/*
 * bus_event: what an event is, in one place: the names (types, patterns, groups,
 * tenants) and their checks, AMQP topic matching, and the JSON the bus publishes and
 * reads back. The reader is strict because on amqp a body comes from the broker,
 * where anything with access to the exchange can put anything; it is the bus's input
 * surface (fuzz/bus/fuzz_event.c).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/bus_int.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "core/mk_utf8.h"

/* ---- names ------------------------------------------------------------------------ */

static bool word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

/* Splits s into words (slices into s). -1 when s is not a valid type/pattern. */
static int split_words(const char *s, bool wildcards, mk_slice words[MK_BUS_MAX_WORDS])
{
    if (!s) return -1;
    size_t len = strlen(s);
    if (len == 0 || len > MK_BUS_MAX_TYPE_BYTES) return -1;
    int n = 0;
    const char *w = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t wl = (size_t)(p - w);
            if (wl == 0 || n == MK_BUS_MAX_WORDS) return -1;
            bool wild = wl == 1 && (w[0] == '*' || w[0] == '#');
            if (wild && !wildcards) return -1;
            if (!wild)
                for (size_t i = 0; i < wl; i++)
                    if (!word_char(w[i])) return -1;
            words[n++] = (mk_slice){w, wl};
            if (*p == '\0') break;
            w = p + 1;
        }
    }
    return n;
}

bool mk_bus_type_valid(const char *s)
{
    mk_slice w[MK_BUS_MAX_WORDS];
    return split_words(s, false, w) > 0;
}

bool mk_bus_pattern_valid(const char *s)
{
    mk_slice w[MK_BUS_MAX_WORDS];
    return split_words(s, true, w) > 0;
}

bool mk_bus_topic_match(const char *pattern, const char *type)
{
    mk_slice p[MK_BUS_MAX_WORDS], t[MK_BUS_MAX_WORDS];
    int np = split_words(pattern, true, p), nt = split_words(type, false, t);
    if (np <= 0 || nt <= 0) return false;
    /* m[i][j]: the first i pattern words match the first j type words. A table rather
     * than backtracking, so "#.#.#..." costs the same as anything else. */
    bool m[MK_BUS_MAX_WORDS + 1][MK_BUS_MAX_WORDS + 1];
    memset(m, 0, sizeof m);
    m[0][0] = true;
    for (int i = 1; i <= np; i++) {
        bool hash = p[i - 1].len == 1 && p[i - 1].ptr[0] == '#';
        bool star = p[i - 1].len == 1 && p[i - 1].ptr[0] == '*';
        for (int j = 0; j <= nt; j++) {
            if (hash)
                m[i][j] = m[i - 1][j] || (j > 0 && m[i][j - 1]);
            else
                m[i][j] = j > 0 && m[i - 1][j - 1] && (star || mk_slice_eq(p[i - 1], t[j - 1]));
        }
    }
    return m[np][nt];
}

bool mk_bus__group_valid(const char *s)
{
    if (!s) return false;
    size_t len = strlen(s);
    if (len == 0 || len > MK_BUS_MAX_GROUP_BYTES) return false;
    for (size_t i = 0; i < len; i++)
        if (!word_char(s[i])) return false;
    return true;
}

bool mk_bus__tenant_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > MK_MAX_NAME_BYTES || !mk_utf8_valid(s, len)) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

static bool uuid_valid(const char *s, size_t len)
{
    if (len != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

/* ---- time ------------------------------------------------------------------------- */

static int format_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) return MK_EINTERNAL;
    int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return n > 0 && n < 32 ? 0 : MK_EINTERNAL;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" -> Unix ms. UTC only: that is what Mayak writes. */
static bool parse_time(const char *s, size_t len, int64_t *out)
{
    int y, mo, d, h, mi, se, ms = 0;
    if (len < 20 || len > 30) return false;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
        s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        size_t nf = i - start;
        if (nf == 0 || nf > 9) return false;
        for (size_t k = 0; k < 3; k++) ms = ms * 10 + (k < nf ? s[start + k] - '0' : 0);
    }
    if (i + 1 != len || (s[i] != 'Z' && s[i] != 'z')) return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se};
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return false;
    *out = (int64_t)t * 1000 + ms;
    return true;
}

/* ---- JSON ------------------------------------------------------------------------- */

/* Strict JSON (one value, nothing but whitespace after it, valid UTF-8, depth capped).
 * NULL with *rc set (and a sentence in err) when it is not. */
static json_object *parse_json(const char *s, size_t len, const char *what, int *rc, mk_buf *err)
{
    if (len > MK_BUS_MAX_EVENT_BYTES) {
        *rc = MK_ETOOBIG;
        if (err) mk_buf_printf(err, "%s is larger than %d bytes", what, MK_BUS_MAX_EVENT_BYTES);
        return NULL;
    }
    /* json-c's own UTF-8 check lets overlong forms and surrogates through. */
    if (!mk_utf8_valid(s, len)) {
        *rc = MK_EBADUTF8;
        if (err) mk_buf_printf(err, "%s is not valid UTF-8", what);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(MK_MAX_JSON_DEPTH);
    if (!tok) {
        *rc = MK_ENOMEM;
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = len ? json_tokener_parse_ex(tok, s, (int)len) : NULL;
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = o ? json_tokener_get_parse_end(tok) : 0;
    json_tokener_free(tok);
    if (o) {
        while (end < len && (s[end] == ' ' || s[end] == '\t' || s[end] == '\n' || s[end] == '\r')) end++;
        if (end != len) {
            json_object_put(o);
            o = NULL;
            e = json_tokener_error_parse_unexpected;
        }
    }
    if (!o) {
        *rc = MK_EBADJSON;
        if (err)
            mk_buf_printf(err, "%s is not valid JSON (%s)", what,
                          len == 0 || e == json_tokener_continue ? "truncated" : json_tokener_error_desc(e));
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        *rc = MK_EBADJSON;
        if (err) mk_buf_printf(err, "%s is not a JSON object", what);
        return NULL;
    }
    *rc = 0;
    return o;
}

/* Compact text of o, owned by the caller. */
static char *to_text(json_object *o, size_t *len)
{
    size_t n = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (!s) return NULL;
    char *copy = malloc(n + 1);
    if (!copy) return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    *len = n;
    return copy;
}

void mk_bus__msg_free(struct bus_msg *m)
{
    if (!m) return;
    free(m->type);
    free(m->tenant);
    free(m->body);
    free(m->payload);
    free(m);
}

int mk_bus__msg_build(const char *type, const char *tenant, const char *payload, size_t len, struct bus_msg **out)
{
    *out = NULL;
    if (!mk_bus_type_valid(type)) return MK_EINVAL;
    if (!tenant) tenant = "default";
    size_t tlen = strlen(tenant);
    if (!mk_bus__tenant_valid(tenant, tlen)) return MK_EINVAL;
    if (!payload && len) return MK_EINVAL;
    struct bus_msg *m = calloc(1, sizeof *m);
    if (!m) return MK_ENOMEM;
    int rc = 0;
    if (len == 0) {
        m->payload = strdup("{}");
        m->payload_len = 2;
        if (!m->payload) rc = MK_ENOMEM;
    } else {
        json_object *o = parse_json(payload, len, "payload", &rc, NULL);
        if (o) {
            m->payload = to_text(o, &m->payload_len);
            if (!m->payload) rc = MK_ENOMEM;
            json_object_put(o);
        }
    }
    m->type = strdup(type);
    m->tenant = strdup(tenant);
    if (!rc && (!m->type || !m->tenant)) rc = MK_ENOMEM;
    mk_uuid4(m->id);
    m->time_ms = mk_wall_ms();
    char when[32];
    if (!rc) rc = format_time(m->time_ms, when);
    mk_buf b;
    mk_buf_init(&b, MK_BUS_MAX_EVENT_BYTES);
    if (!rc) {
        /* Built by hand: the payload is already compact JSON, and the field order is
         * stable for people reading a queue. */
        rc = mk_buf_printf(&b, "{\"id\":\"%s\",\"type\":\"%s\",\"time\":\"%s\",\"tenant\":", m->id, m->type, when);
        if (!rc) rc = mk_buf_append_json_string(&b, tenant, tlen);
        if (!rc) rc = mk_buf_append_str(&b, ",\"payload\":");
        if (!rc) rc = mk_buf_append(&b, m->payload, m->payload_len);
        if (!rc) rc = mk_buf_append_char(&b, '}');
    }
    if (rc) {
        mk_buf_release(&b);
        mk_bus__msg_free(m);
        return rc;
    }
    m->body = mk_buf_steal(&b, &m->body_len);
    *out = m;
    return 0;
}

/* ---- the wire ---------------------------------------------------------------------- */

static const char *field_str(json_object *o, const char *key, size_t *len)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

void mk_bus_wire_event_release(struct mk_bus_wire_event *ev)
{
    if (!ev) return;
    free(ev->text);
    free(ev->tenant);
    free(ev->payload);
    memset(ev, 0, sizeof *ev);
}

int mk_bus_wire_event_parse(const char *body, size_t len, struct mk_bus_wire_event *out, mk_buf *err)
{
    memset(out, 0, sizeof *out);
    if (!body && len) return MK_EINVAL;
    int rc = 0;
    json_object *o = parse_json(body ? body : "", len, "event", &rc, err);
    if (!o) return rc;
    size_t n = 0;
    const char *s;
    const char *bad = NULL;
    json_object *payload = NULL;
    if (!(s = field_str(o, "id", &n)) || !uuid_valid(s, n)) {
        bad = "id (a UUID)";
    } else {
        memcpy(out->id, s, 36);
        out->id[36] = '\0';
        if (!(s = field_str(o, "type", &n)) || n > MK_BUS_MAX_TYPE_BYTES || strlen(s) != n || !mk_bus_type_valid(s)) {
            bad = "type (dot-separated words of [a-z0-9_-])";
        } else {
            memcpy(out->type, s, n + 1);
            if (!(s = field_str(o, "time", &n)) || !parse_time(s, n, &out->time_ms))
                bad = "time (RFC 3339 UTC, e.g. 2026-01-02T03:04:05.678Z)";
            else if (!(s = field_str(o, "tenant", &n)) || strlen(s) != n || !mk_bus__tenant_valid(s, n))
                bad = "tenant";
            else if (!json_object_object_get_ex(o, "payload", &payload) ||
                     !json_object_is_type(payload, json_type_object))
                bad = "payload (an object)";
            else if (!(out->tenant = strdup(s)))
                rc = MK_ENOMEM;
        }
    }
    if (!bad && !rc) {
        out->payload = to_text(payload, &out->payload_len);
        out->text = malloc(len + 1);
        if (!out->payload || !out->text) {
            rc = MK_ENOMEM;
        } else {
            memcpy(out->text, body, len);
            out->text[len] = '\0';
            out->text_len = len;
        }
    }
    json_object_put(o);
    if (bad) {
        if (err) mk_buf_printf(err, "event: missing or invalid %s", bad);
        rc = MK_EBADJSON;
    }
    if (rc) mk_bus_wire_event_release(out);
    return rc;
}

struct bus_msg *mk_bus__msg_from_wire(struct mk_bus_wire_event *ev)
{
    struct bus_msg *m = calloc(1, sizeof *m);
    if (!m || !(m->type = strdup(ev->type))) {
        free(m);
        mk_bus_wire_event_release(ev);
        return NULL;
    }
    memcpy(m->id, ev->id, sizeof m->id);
    m->tenant = ev->tenant;
    m->time_ms = ev->time_ms;
    m->body = ev->text;
    m->body_len = ev->text_len;
    m->payload = ev->payload;
    m->payload_len = ev->payload_len;
    ev->tenant = ev->text = ev->payload = NULL;
    mk_bus_wire_event_release(ev);
    return m;
}
