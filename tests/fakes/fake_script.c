/*
 * fake_script: what a fake reply says and how it behaves.
 *
 * A test scripts one request by putting "[[fake key=value ...]]" in the last user
 * message: the text passes through Mayak unchanged, so the fake can read it at the
 * other end. This file parses those directives, derives the answer text and its
 * chunks, counts tokens the same way for streamed and whole replies, and makes the
 * deterministic embeddings.
 */
#include "fake.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"

#define DIRECTIVE_OPEN "[[fake"
#define DIRECTIVE_CLOSE "]]"
/* Characters of the user's message echoed in the default answer. */
#define ANSWER_ECHO_CHARS 60

void fake_opts_clear(fake_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cut_after = -1;
    o->retry_after = -1;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static const char *find_bytes(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || len < n) return NULL;
    for (size_t i = 0; i + n <= len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0) return hay + i;
    return NULL;
}

/* Integer value of a directive key within [lo, hi]. */
static int parse_int(const char *v, size_t vlen, long lo, long hi, int *out)
{
    char tmp[32];
    if (vlen == 0 || vlen >= sizeof tmp) return -1;
    memcpy(tmp, v, vlen);
    tmp[vlen] = '\0';
    errno = 0;
    char *end = NULL;
    long x = strtol(tmp, &end, 10);
    if (errno || end != tmp + vlen || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}

static int parse_bool(const char *v, size_t vlen, bool *out)
{
    mk_slice s = {v, vlen};
    if (mk_slice_eq_cstr(s, "1") || mk_slice_eq_cstr(s, "true") || mk_slice_eq_cstr(s, "yes")) {
        *out = true;
        return 0;
    }
    if (mk_slice_eq_cstr(s, "0") || mk_slice_eq_cstr(s, "false") || mk_slice_eq_cstr(s, "no")) {
        *out = false;
        return 0;
    }
    return -1;
}

/* One key=value of a directive. Keys and ranges are the table in README.md. */
static int apply_key(const char *k, size_t klen, const char *v, size_t vlen, fake_opts *o)
{
    mk_slice key = {k, klen};
    if (mk_slice_eq_cstr(key, "status")) {
        int st;
        if (parse_int(v, vlen, 0, 599, &st) || (st != 0 && st < 100)) return -1;
        o->status = st;
        return 0;
    }
    if (mk_slice_eq_cstr(key, "latency_ms")) return parse_int(v, vlen, 0, FAKE_MAX_DELAY_MS, &o->latency_ms);
    if (mk_slice_eq_cstr(key, "ttft_ms")) return parse_int(v, vlen, 0, FAKE_MAX_DELAY_MS, &o->ttft_ms);
    if (mk_slice_eq_cstr(key, "interval_ms")) return parse_int(v, vlen, 0, FAKE_MAX_DELAY_MS, &o->interval_ms);
    if (mk_slice_eq_cstr(key, "trickle_ms")) return parse_int(v, vlen, 0, FAKE_MAX_DELAY_MS, &o->trickle_ms);
    if (mk_slice_eq_cstr(key, "chunks")) return parse_int(v, vlen, 0, FAKE_MAX_CHUNKS, &o->chunks);
    if (mk_slice_eq_cstr(key, "cut_after")) return parse_int(v, vlen, -1, INT_MAX, &o->cut_after);
    if (mk_slice_eq_cstr(key, "retry_after")) return parse_int(v, vlen, -1, 86400, &o->retry_after);
    if (mk_slice_eq_cstr(key, "malformed")) return parse_bool(v, vlen, &o->malformed);
    if (mk_slice_eq_cstr(key, "hang")) return parse_bool(v, vlen, &o->hang);
    if (mk_slice_eq_cstr(key, "text")) {
        if (vlen >= sizeof o->text || !mk_utf8_valid(v, vlen)) return -1;
        for (size_t i = 0; i < vlen; i++) o->text[i] = v[i] == '_' ? ' ' : v[i];
        o->text[vlen] = '\0';
        return 0;
    }
    return -2;
}

int fake_directive_apply(const char *text, size_t len, fake_opts *o, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *open = find_bytes(p, (size_t)(end - p), DIRECTIVE_OPEN);
        if (!open) break;
        const char *q = open + strlen(DIRECTIVE_OPEN);
        const char *close = find_bytes(q, (size_t)(end - q), DIRECTIVE_CLOSE);
        if (!close) {
            snprintf(err, errlen, "fake directive: missing ']]'");
            return -1;
        }
        while (q < close) {
            while (q < close && is_space(*q)) q++;
            const char *tok = q;
            while (q < close && !is_space(*q)) q++;
            if (tok == q) break;
            const char *eq = memchr(tok, '=', (size_t)(q - tok));
            if (!eq) {
                snprintf(err, errlen, "fake directive: '%.*s' is not key=value", (int)(q - tok), tok);
                return -1;
            }
            int rc = apply_key(tok, (size_t)(eq - tok), eq + 1, (size_t)(q - eq - 1), o);
            if (rc == -2) {
                snprintf(err, errlen, "fake directive: unknown key '%.*s'", (int)(eq - tok), tok);
                return -1;
            }
            if (rc) {
                snprintf(err, errlen, "fake directive: bad value in '%.*s'", (int)(q - tok), tok);
                return -1;
            }
        }
        p = close + strlen(DIRECTIVE_CLOSE);
    }
    return 0;
}

int fake_strip_directive(const char *text, size_t len, mk_buf *out)
{
    const char *p = text, *end = text + len;
    bool pending_space = false, any = false;
    while (p < end) {
        if ((size_t)(end - p) >= strlen(DIRECTIVE_OPEN) && memcmp(p, DIRECTIVE_OPEN, strlen(DIRECTIVE_OPEN)) == 0) {
            const char *close = find_bytes(p, (size_t)(end - p), DIRECTIVE_CLOSE);
            if (close) {
                p = close + strlen(DIRECTIVE_CLOSE);
                pending_space = true;
                continue;
            }
        }
        if (is_space(*p)) {
            pending_space = true;
            p++;
            continue;
        }
        if (pending_space && any && mk_buf_append_char(out, ' ')) return MK_ENOMEM;
        pending_space = false;
        any = true;
        if (mk_buf_append_char(out, *p)) return MK_ENOMEM;
        p++;
    }
    return 0;
}

int fake_answer_text(const fake_opts *o, const char *prompt, size_t len, mk_buf *out)
{
    if (o->text[0]) return mk_buf_append_str(out, o->text);
    if (len == 0) return mk_buf_append_str(out, "Fake answer.");
    /* Whole characters only, so Cyrillic never ends in half a letter. */
    size_t off = 0;
    for (int chars = 0; chars < ANSWER_ECHO_CHARS && off < len; chars++) {
        size_t n = mk_utf8_valid_prefix(prompt + off, len - off);
        if (n == 0) break;
        off += n;
    }
    while (off > 0 && prompt[off - 1] == ' ') off--;
    if (mk_buf_append_str(out, "Fake answer to: ")) return MK_ENOMEM;
    return mk_buf_append(out, prompt, off);
}

/* Offsets where a word starts (a non-space after a space), after offset 0. */
static size_t count_words(const char *s, size_t len)
{
    if (len == 0) return 0;
    size_t n = 1;
    for (size_t i = 1; i < len; i++)
        if (s[i - 1] == ' ' && s[i] != ' ') n++;
    return n;
}

int fake_split_chunks(mk_buf *text, int chunks, size_t **ends_out, size_t *n_out)
{
    static const char *const filler[] = {"lorem", "ipsum", "dolor", "sit", "amet"};
    *ends_out = NULL;
    *n_out = 0;
    size_t words = count_words(text->data ? text->data : "", text->len);
    for (size_t i = 0; chunks > 0 && words < (size_t)chunks; i++, words++) {
        if (mk_buf_printf(text, "%s%s", text->len ? " " : "", filler[i % 5])) return MK_ENOMEM;
    }
    if (words == 0) return 0;
    size_t *word_end = malloc(words * sizeof *word_end);
    if (!word_end) return MK_ENOMEM;
    size_t w = 0;
    for (size_t i = 1; i < text->len; i++)
        if (text->data[i - 1] == ' ' && text->data[i] != ' ') word_end[w++] = i;
    word_end[w++] = text->len;
    size_t n = chunks > 0 ? (size_t)chunks : words;
    if (n == words) {
        *ends_out = word_end;
        *n_out = n;
        return 0;
    }
    size_t *ends = malloc(n * sizeof *ends);
    if (!ends) {
        free(word_end);
        return MK_ENOMEM;
    }
    /* Piece j takes words up to (j+1)*words/n: as even as whole words allow. */
    for (size_t j = 0; j < n; j++) ends[j] = word_end[(j + 1) * words / n - 1];
    free(word_end);
    *ends_out = ends;
    *n_out = n;
    return 0;
}

int fake_tokens(size_t bytes) { return bytes == 0 ? 0 : (int)(bytes / 4 + 1); }

static uint64_t fnv1a(const unsigned char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Adds weight * (a pseudo-random vector seeded by h) to acc. */
static void add_hashed(float *acc, int dims, uint64_t h, float weight)
{
    uint64_t st = h;
    for (int i = 0; i < dims; i++) {
        double u = (double)(splitmix(&st) >> 11) * (1.0 / 9007199254740992.0);
        acc[i] += weight * (float)(u * 2.0 - 1.0);
    }
}

static bool word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

void fake_embed(const char *text, size_t len, int dims, float *out)
{
    const uint64_t seed = 1469598103934665603ull;
    memset(out, 0, (size_t)dims * sizeof *out);
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        while (i < len && !word_byte(s[i])) i++;
        uint64_t h = seed;
        size_t start = i;
        while (i < len && word_byte(s[i])) {
            unsigned char c = s[i] >= 'A' && s[i] <= 'Z' ? (unsigned char)(s[i] + 32) : s[i];
            h = fnv1a(&c, 1, h);
            i++;
        }
        if (i > start) add_hashed(out, dims, h, 1.0f);
    }
    /* A small share of the whole text keeps different texts (even reorderings) apart. */
    add_hashed(out, dims, fnv1a(s, len, seed ^ 0x5bd1e995u), 0.25f);
    double norm = 0;
    for (int d = 0; d < dims; d++) norm += (double)out[d] * out[d];
    norm = sqrt(norm);
    if (norm == 0) {
        out[0] = 1.0f;
        return;
    }
    for (int d = 0; d < dims; d++) out[d] = (float)(out[d] / norm);
}

int fake_append_vector(mk_buf *b, const float *v, int dims, bool base64)
{
    if (base64) {
        size_t blen = (size_t)dims * sizeof(float);
        size_t need = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_ORIGINAL);
        if (mk_buf_append_char(b, '"') || mk_buf_reserve(b, need + 1)) return MK_ENOMEM;
        /* x86 and arm64 are little-endian, which is what the format wants. */
        sodium_bin2base64(b->data + b->len, need, (const unsigned char *)v, blen, sodium_base64_VARIANT_ORIGINAL);
        b->len += strlen(b->data + b->len);
        return mk_buf_append_char(b, '"');
    }
    if (mk_buf_append_char(b, '[')) return MK_ENOMEM;
    for (int d = 0; d < dims; d++)
        if (mk_buf_printf(b, d ? ",%.7g" : "%.7g", (double)v[d])) return MK_ENOMEM;
    return mk_buf_append_char(b, ']');
}

json_object *fake_parse_json(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(MK_MAX_JSON_DEPTH);
    if (!tok) return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = len ? json_tokener_parse_ex(tok, s, (int)len) : NULL;
    bool ok = o && json_tokener_get_error(tok) == json_tokener_success;
    if (ok) {
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
            if (!is_space(s[i])) ok = false;
    }
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

const char *fake_json_str(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v)) return NULL;
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

bool fake_message_text(json_object *msg, const char *field, mk_buf *out)
{
    json_object *c;
    if (!json_object_object_get_ex(msg, field, &c)) return false;
    if (json_object_is_type(c, json_type_string)) {
        mk_buf_append(out, json_object_get_string(c), (size_t)json_object_get_string_len(c));
        return true;
    }
    if (!json_object_is_type(c, json_type_array)) return false;
    size_t n = json_object_array_length(c);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const char *t = fake_json_str(json_object_array_get_idx(c, i), "text");
        if (!t) continue;
        if (any) mk_buf_append_char(out, '\n');
        mk_buf_append_str(out, t);
        any = true;
    }
    return any;
}

bool fake_contains_nocase(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= len; i++) {
        if (mk_slice_eq_nocase((mk_slice){hay + i, n}, (mk_slice){needle, n})) return true;
    }
    return false;
}

int fake_chat_prepare(fake_server *fs, mk_http_req *req, enum fake_wire wire, json_object *body,
                      const char *field, fake_chat *c)
{
    memset(c, 0, sizeof *c);
    mk_buf_init(&c->answer, 0);
    json_object *msgs, *v;
    if (!json_object_object_get_ex(body, "messages", &msgs) || !json_object_is_type(msgs, json_type_array) ||
        json_object_array_length(msgs) == 0) {
        fake_send_error(fs, req, wire, 400, "'messages' must be a non-empty array", NULL);
        return -1;
    }
    size_t n = json_object_array_length(msgs);
    if (n > MK_MAX_MESSAGES) {
        fake_send_error(fs, req, wire, 400, "too many messages", NULL);
        return -1;
    }
    if (json_object_object_get_ex(body, "stream", &v) && json_object_is_type(v, json_type_boolean))
        c->stream = json_object_get_boolean(v);

    mk_buf text = MK_BUF_INIT, user = MK_BUF_INIT, last = MK_BUF_INIT;
    int tokens = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = fake_json_str(m, "role");
        if (!role) {
            mk_buf_release(&text);
            mk_buf_release(&user);
            mk_buf_release(&last);
            fake_send_error(fs, req, wire, 400, "each message needs a string 'role'", NULL);
            return -1;
        }
        mk_buf_reset(&text);
        fake_message_text(m, field, &text);
        tokens += fake_tokens(text.len) + 1; /* +1: the role and framing cost a token */
        if (strcmp(role, "user") == 0) {
            mk_buf_reset(&user);
            mk_buf_append(&user, text.data ? text.data : "", text.len);
        }
        if (i == n - 1) {
            c->last_is_tool = strcmp(role, "tool") == 0 || strcmp(role, "function") == 0;
            mk_buf_append(&last, text.data ? text.data : "", text.len);
        }
    }
    mk_buf_release(&text);
    c->prompt_tokens = tokens;

    fake_opts_from_mode(fs, &c->opts);
    char err[160];
    const char *u = user.data ? user.data : "";
    if (fake_directive_apply(u, user.len, &c->opts, err, sizeof err)) {
        mk_buf_release(&user);
        mk_buf_release(&last);
        fake_send_error(fs, req, wire, 400, err, NULL);
        return -1;
    }
    c->wants_weather = fake_contains_nocase(u, user.len, "weather") || fake_contains_nocase(u, user.len, "погод") ||
                       fake_contains_nocase(u, user.len, "Погод");

    mk_buf prompt = MK_BUF_INIT;
    const mk_buf *src = c->last_is_tool ? &last : &user;
    fake_strip_directive(src->data ? src->data : "", src->len, &prompt);
    fake_answer_text(&c->opts, prompt.data ? prompt.data : "", prompt.len, &c->answer);
    mk_buf_release(&prompt);
    mk_buf_release(&user);
    mk_buf_release(&last);
    return 0;
}

void fake_chat_release(fake_chat *c) { mk_buf_release(&c->answer); }
