/* mk_utf8: strict UTF-8 validation (no overlongs, no surrogates, <= U+10FFFF). */
#ifndef MK_UTF8_H
#define MK_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the one well-formed sequence at s, or 0 if s starts badly or len == 0. */
size_t mk_utf8_valid_prefix(const char *s, size_t len);
/* True when all of s is well-formed UTF-8. */
bool mk_utf8_valid(const char *s, size_t len);
/* Longest prefix of s that does not end inside a multi-byte sequence: used to cut
 * streamed text without splitting a character. */
size_t mk_utf8_complete_prefix(const char *s, size_t len);

#endif
