/*
 * mk_buf: a non-owning slice for parsing and an owning, capped, growable buffer.
 *
 * mk_slice never owns its bytes: whoever made it says how long they live.
 * mk_buf owns its bytes; data is always NUL-terminated (so it can be given to C
 * string APIs) and never grows past `max` (0 = no cap beyond SIZE_MAX / 2).
 */
#ifndef MK_BUF_H
#define MK_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct mk_slice {
    const char *ptr;
    size_t len;
} mk_slice;

#define MK_SLICE_LIT(s) ((mk_slice){(s), sizeof(s) - 1})
static inline mk_slice mk_slice_cstr(const char *s) { return (mk_slice){s, s ? strlen(s) : 0}; }
static inline bool mk_slice_eq(mk_slice a, mk_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
bool mk_slice_eq_nocase(mk_slice a, mk_slice b);
static inline bool mk_slice_eq_cstr(mk_slice a, const char *s) { return mk_slice_eq(a, mk_slice_cstr(s)); }

typedef struct mk_buf {
    char *data;   /* NUL-terminated when cap > 0; NULL before first growth */
    size_t len;
    size_t cap;
    size_t max;   /* 0 = uncapped */
} mk_buf;

#define MK_BUF_INIT {NULL, 0, 0, 0}

/* Set the cap; an empty buffer is ready after `mk_buf b = MK_BUF_INIT`. */
static inline void mk_buf_init(mk_buf *b, size_t max) { b->data = NULL; b->len = b->cap = 0; b->max = max; }
/* Frees the bytes; the buffer is then empty and reusable. Accepts NULL. */
void mk_buf_release(mk_buf *b);
/* Empties without freeing. */
static inline void mk_buf_reset(mk_buf *b) { b->len = 0; if (b->data) b->data[0] = '\0'; }
/* Make room for `extra` more bytes. MK_ETOOBIG past the cap, MK_ENOMEM. */
int mk_buf_reserve(mk_buf *b, size_t extra);
int mk_buf_append(mk_buf *b, const void *data, size_t len);
static inline int mk_buf_append_str(mk_buf *b, const char *s) { return mk_buf_append(b, s, strlen(s)); }
static inline int mk_buf_append_slice(mk_buf *b, mk_slice s) { return mk_buf_append(b, s.ptr, s.len); }
int mk_buf_append_char(mk_buf *b, char c);
int mk_buf_printf(mk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mk_buf_vprintf(mk_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append `s` as a JSON string literal, quotes included. Invalid UTF-8 is replaced
 * by U+FFFD so the output is always valid JSON. */
int mk_buf_append_json_string(mk_buf *b, const char *s, size_t len);
/* Drop the first n bytes (consumed input). */
void mk_buf_consume(mk_buf *b, size_t n);
/* Hand the bytes to the caller (who frees them with free()); the buffer is emptied. */
char *mk_buf_steal(mk_buf *b, size_t *len_out);
static inline mk_slice mk_buf_slice(const mk_buf *b) { return (mk_slice){b->data ? b->data : "", b->len}; }

#endif
