/* mk_buf: owning capped buffer and slice helpers (see mk_buf.h). */
#include "mk_buf.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "mk_error.h"
#include "mk_utf8.h"

bool mk_slice_eq_nocase(mk_slice a, mk_slice b)
{
    if (a.len != b.len) return false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.ptr[i], y = (unsigned char)b.ptr[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return false;
    }
    return true;
}

void mk_buf_release(mk_buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int mk_buf_reserve(mk_buf *b, size_t extra)
{
    size_t limit = b->max ? b->max : SIZE_MAX / 2;
    if (extra > limit || b->len > limit - extra) return MK_ETOOBIG;
    size_t need = b->len + extra + 1; /* +1 keeps room for the terminating NUL */
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 4 ? need : cap * 2;
    if (b->max && cap > b->max + 1) cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p) return MK_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int mk_buf_append(mk_buf *b, const void *data, size_t len)
{
    int rc = mk_buf_reserve(b, len);
    if (rc) return rc;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int mk_buf_append_char(mk_buf *b, char c) { return mk_buf_append(b, &c, 1); }

int mk_buf_vprintf(mk_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return MK_EINVAL;
    int rc = mk_buf_reserve(b, (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int mk_buf_printf(mk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mk_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int mk_buf_append_json_string(mk_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int rc = mk_buf_reserve(b, len + 2);
    if (rc) return rc;
    rc = mk_buf_append_char(b, '"');
    size_t i = 0;
    while (i < len && rc == 0) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t n = mk_utf8_valid_prefix(s + i, len - i);
            if (n == 0) { /* invalid byte: replace, skip one byte */
                rc = mk_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                /* Valid multi-byte characters are copied as they are (U+2028/2029
                 * included: valid JSON, and no client of ours evals JSON as script). */
                rc = mk_buf_append(b, s + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"': rc = mk_buf_append(b, "\\\"", 2); break;
        case '\\': rc = mk_buf_append(b, "\\\\", 2); break;
        case '\n': rc = mk_buf_append(b, "\\n", 2); break;
        case '\r': rc = mk_buf_append(b, "\\r", 2); break;
        case '\t': rc = mk_buf_append(b, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                rc = mk_buf_append(b, esc, 6);
            } else {
                rc = mk_buf_append_char(b, (char)c);
            }
        }
        i++;
    }
    if (rc == 0) rc = mk_buf_append_char(b, '"');
    return rc;
}

void mk_buf_consume(mk_buf *b, size_t n)
{
    if (n >= b->len) { mk_buf_reset(b); return; }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *mk_buf_steal(mk_buf *b, size_t *len_out)
{
    char *p = b->data;
    if (len_out) *len_out = b->len;
    if (!p) {
        p = calloc(1, 1);
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
