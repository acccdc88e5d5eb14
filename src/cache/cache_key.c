/*
 * cache_key: turns a chat request into the cache's keys (see mk_cache.h).
 *
 * The digests hash a canonical serialisation, so requests that mean the same bytes to
 * a model get one key whatever their JSON looks like: object keys are sorted, numbers
 * are compared by value (1, 1.0 and 1e0 are one number), strings by their bytes.
 * Parameters are taken by exclusion: every top-level field except those known not to
 * change the answer (stream, stream_options, user, metadata, store, model — the model
 * group stands for it — and our own mayak_cache) takes part, so a parameter added to
 * the API tomorrow splits the cache instead of being silently ignored.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cache/mk_cache.h"
#include "core/mk_error.h"

static const char *const ignored_fields[] = {
    "messages", "stream", "stream_options", "user", "metadata", "store", "model", "mayak_cache", NULL,
};

static bool ignored(const char *k)
{
    for (size_t i = 0; ignored_fields[i]; i++)
        if (strcmp(ignored_fields[i], k) == 0) return true;
    return false;
}

static void feed(crypto_generichash_state *st, const void *p, size_t n)
{
    crypto_generichash_update(st, p, n);
}

/* "<tag><decimal>:" without printf: the key is computed on every chat request, and
 * formatting was most of its cost (bench/cache/http.sh, callgrind). */
static void feed_tagged(crypto_generichash_state *st, char tag, unsigned long long n, bool negative)
{
    char buf[32];
    size_t i = sizeof buf;
    buf[--i] = ':';
    do {
        buf[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    if (negative) buf[--i] = '-';
    buf[--i] = tag;
    feed(st, buf + i, sizeof buf - i);
}

static void feed_str(crypto_generichash_state *st, const char *s, size_t n)
{
    feed_tagged(st, 's', n, false);
    feed(st, s, n);
}

static void feed_int(crypto_generichash_state *st, long long v)
{
    unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    feed_tagged(st, '#', mag, v < 0);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Feeds the canonical form of v. Objects are depth-limited by the request parser. */
static int feed_json(crypto_generichash_state *st, json_object *v)
{
    char num[64];
    switch (json_object_get_type(v)) {
    case json_type_null: feed(st, "n", 1); return 0;
    case json_type_boolean: feed(st, json_object_get_boolean(v) ? "t" : "f", 1); return 0;
    case json_type_int: feed_int(st, (long long)json_object_get_int64(v)); return 0;
    case json_type_double: {
        double d = json_object_get_double(v);
        if (isfinite(d) && d == floor(d) && fabs(d) < 9e15) {
            feed_int(st, (long long)d); /* 1.0 and 1 are one number */
            return 0;
        }
        int n = snprintf(num, sizeof num, "#%.17g:", d);
        feed(st, num, (size_t)n);
        return 0;
    }
    case json_type_string:
        feed_str(st, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        return 0;
    case json_type_array: {
        size_t n = json_object_array_length(v);
        feed(st, "[", 1);
        for (size_t i = 0; i < n; i++) {
            int rc = feed_json(st, json_object_array_get_idx(v, i));
            if (rc) return rc;
        }
        feed(st, "]", 1);
        return 0;
    }
    case json_type_object: {
        size_t n = (size_t)json_object_object_length(v), i = 0;
        const char **keys = n ? malloc(n * sizeof *keys) : NULL;
        if (n && !keys) return MK_ENOMEM;
        json_object_object_foreach(v, k, val)
        {
            (void)val;
            keys[i++] = k;
        }
        qsort(keys, n, sizeof *keys, cmp_keys);
        feed(st, "{", 1);
        for (i = 0; i < n; i++) {
            feed_str(st, keys[i], strlen(keys[i]));
            int rc = feed_json(st, json_object_object_get(v, keys[i]));
            if (rc) {
                free(keys);
                return rc;
            }
        }
        feed(st, "}", 1);
        free(keys);
        return 0;
    }
    }
    return 0;
}

/* Tenant, group and the answer-changing parameters (sorted by name). */
static int feed_prefix(crypto_generichash_state *st, const char *tenant, const char *group, json_object *body)
{
    feed_str(st, tenant, strlen(tenant));
    feed_str(st, group, strlen(group));
    size_t n = (size_t)json_object_object_length(body), i = 0;
    const char **keys = n ? malloc(n * sizeof *keys) : NULL;
    if (n && !keys) return MK_ENOMEM;
    json_object_object_foreach(body, k, val)
    {
        (void)val;
        if (!ignored(k)) keys[i++] = k;
    }
    qsort(keys, i, sizeof *keys, cmp_keys);
    int rc = 0;
    feed(st, "{", 1);
    for (size_t j = 0; j < i && rc == 0; j++) {
        feed_str(st, keys[j], strlen(keys[j]));
        rc = feed_json(st, json_object_object_get(body, keys[j]));
    }
    feed(st, "}", 1);
    free(keys);
    return rc;
}

/* The text of a user message: a string, or text parts joined by newlines. NULL (and
 * rc 0) when it holds anything but text, which the semantic level cannot compare. */
static int user_text(json_object *msg, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    json_object *role, *content;
    if (!json_object_object_get_ex(msg, "role", &role) || !json_object_is_type(role, json_type_string) ||
        strcmp(json_object_get_string(role), "user") != 0)
        return 0;
    if (!json_object_object_get_ex(msg, "content", &content)) return 0;
    mk_buf b = MK_BUF_INIT;
    if (json_object_is_type(content, json_type_string)) {
        if (mk_buf_append(&b, json_object_get_string(content), (size_t)json_object_get_string_len(content)))
            goto nomem;
    } else if (json_object_is_type(content, json_type_array)) {
        size_t n = json_object_array_length(content);
        for (size_t i = 0; i < n; i++) {
            json_object *part = json_object_array_get_idx(content, i), *type, *text;
            if (!json_object_object_get_ex(part, "type", &type) ||
                strcmp(json_object_get_string(type), "text") != 0 ||
                !json_object_object_get_ex(part, "text", &text) || !json_object_is_type(text, json_type_string)) {
                mk_buf_release(&b);
                return 0;
            }
            if ((b.len && mk_buf_append_char(&b, '\n')) ||
                mk_buf_append(&b, json_object_get_string(text), (size_t)json_object_get_string_len(text)))
                goto nomem;
        }
    } else {
        return 0;
    }
    if (b.len == 0 || b.len > MK_CACHE_MAX_QUERY_BYTES || memchr(b.data, '\0', b.len)) {
        mk_buf_release(&b);
        return 0;
    }
    *out = mk_buf_steal(&b, out_len); /* NUL-terminated, freed with free() */
    return 0;
nomem:
    mk_buf_release(&b);
    return MK_ENOMEM;
}

static void not_eligible(struct mk_cache_request *r, const char *why)
{
    r->eligible = false;
    r->why = why;
}

int mk_cache_request_init(struct mk_cache_request *r, const char *tenant, const char *group,
                          json_object *body, double max_temperature)
{
    if (!r) return MK_EINVAL;
    memset(r, 0, sizeof *r);
    if (!tenant || !group || !body) return MK_EINVAL;
    if (sodium_init() < 0) return MK_EINTERNAL;
    if (max_temperature < 0) max_temperature = MK_CACHE_DEFAULT_MAX_TEMPERATURE;
    if (!json_object_is_type(body, json_type_object)) {
        not_eligible(r, "not a chat request");
        return 0;
    }
    json_object *v, *messages;
    if (json_object_object_get_ex(body, "mayak_cache", &v) && json_object_is_type(v, json_type_boolean) &&
        !json_object_get_boolean(v)) {
        not_eligible(r, "turned off by the request");
        return 0;
    }
    if (!json_object_object_get_ex(body, "messages", &messages) || !json_object_is_type(messages, json_type_array) ||
        json_object_array_length(messages) == 0) {
        not_eligible(r, "no messages");
        return 0;
    }
    /* A temperature above the bound asks for variety. An absent one is the API's
     * default, 1.0 (OpenAI's documented default, which providers sample at), so
     * callers opt in by asking for a low temperature (docs/CACHE.md). */
    double temperature = 1.0;
    if (json_object_object_get_ex(body, "temperature", &v) && !json_object_is_type(v, json_type_null))
        temperature = json_object_get_double(v);
    if (temperature > max_temperature + 1e-9) {
        not_eligible(r, "temperature above the cache's bound");
        return 0;
    }
    if (json_object_object_get_ex(body, "n", &v) && json_object_get_int64(v) > 1) {
        not_eligible(r, "several choices asked (n > 1)");
        return 0;
    }
    size_t tl = strlen(tenant), gl = strlen(group);
    if (tl == 0 || tl > MK_CACHE_MAX_NAME_BYTES || gl == 0 || gl > MK_CACHE_MAX_NAME_BYTES) {
        not_eligible(r, "tenant or model group name out of range");
        return 0;
    }
    r->tenant = strdup(tenant);
    r->group = strdup(group);
    if (!r->tenant || !r->group) goto nomem;

    size_t nmsg = json_object_array_length(messages);
    json_object *last = json_object_array_get_idx(messages, nmsg - 1);
    if (user_text(last, &r->query, &r->query_len) != 0) goto nomem;

    /* One pass over what both keys share — tenant, group, parameters and the turns
     * before the last — then the state is forked: the namespace is that conversation
     * so far, the exact key adds the last turn. (With no final user turn there is no
     * semantic level, and the namespace is unused.) The kind is hashed last, so the
     * two digests differ even for equal input. */
    crypto_generichash_state ex, ns;
    crypto_generichash_init(&ns, NULL, 0, sizeof r->ns_digest);
    if (feed_prefix(&ns, tenant, group, body)) goto nomem;
    feed(&ns, "[", 1);
    for (size_t i = 0; i + 1 < nmsg; i++)
        if (feed_json(&ns, json_object_array_get_idx(messages, i))) goto nomem;
    ex = ns; /* a plain struct: copying forks the hash */
    if (feed_json(&ex, last)) goto nomem;
    feed(&ex, "]exact", 6);
    feed(&ns, "]namespace", 10);
    crypto_generichash_final(&ex, r->exact, sizeof r->exact);
    crypto_generichash_final(&ns, r->ns_digest, sizeof r->ns_digest);
    r->eligible = true;
    r->why = NULL;
    return 0;
nomem:
    mk_cache_request_release(r);
    return MK_ENOMEM;
}

void mk_cache_request_release(struct mk_cache_request *r)
{
    if (!r) return;
    free(r->tenant);
    free(r->group);
    free(r->query);
    memset(r, 0, sizeof *r);
}
