/*
 * pii_fold: the little Unicode the PII detector needs -- decode/encode UTF-8, tell
 * letters and capitals apart, and fold case -- for ASCII, Latin-1 and Latin
 * Extended-A (European names), and Cyrillic including the Kazakh letters.
 *
 * Why not utf8proc: name detection asks "is this word capitalised?" and folds short
 * words for a hash lookup millions of times a second; a few range checks are enough
 * for the scripts names are written in, and keep the detector a single fast pass.
 * ё is folded to е because Russian text spells the two interchangeably.
 */
#include <string.h>

#include "guard/pii_int.h"

uint32_t pii_utf8_decode(const char *str, size_t len, size_t *n)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    if (c < 0x80) {
        *n = 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF && len >= 2 && (s[1] & 0xC0) == 0x80) {
        *n = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c >= 0xE0 && c <= 0xEF && len >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
            *n = 3;
            return cp;
        }
    }
    if (c >= 0xF0 && c <= 0xF4 && len >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
        (s[3] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                      ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (cp >= 0x10000 && cp <= 0x10FFFF) {
            *n = 4;
            return cp;
        }
    }
    *n = 1;
    return 0xFFFD;
}

size_t pii_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool pii_is_letter(uint32_t cp)
{
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
        return true;
    if (cp >= 0xC0 && cp <= 0x17F)
        return cp != 0xD7 && cp != 0xF7;
    return cp >= 0x400 && cp <= 0x4FF && !(cp >= 0x482 && cp <= 0x489);
}

bool pii_is_upper(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return true;
    if (cp < 0xC0)
        return false;
    if (cp <= 0xDE)
        return cp != 0xD7;
    if (cp < 0x100)
        return false;
    if (cp <= 0x137)
        return (cp & 1) == 0;
    if (cp >= 0x139 && cp <= 0x148)
        return (cp & 1) == 1;
    if (cp >= 0x14A && cp <= 0x177)
        return (cp & 1) == 0;
    if (cp == 0x178)
        return true;
    if (cp >= 0x179 && cp <= 0x17E)
        return (cp & 1) == 1;
    if (cp >= 0x400 && cp <= 0x42F)
        return true;
    if (cp >= 0x460 && cp <= 0x4FF) {
        if (cp == 0x4C0)
            return true;
        if (cp >= 0x4C1 && cp <= 0x4CE)
            return (cp & 1) == 1;
        return (cp & 1) == 0 && !(cp >= 0x482 && cp <= 0x489);
    }
    return false;
}

uint32_t pii_lower(uint32_t cp)
{
    if (cp == 0x401 || cp == 0x451)
        return 0x435; /* Ё ё -> е */
    if (!pii_is_upper(cp))
        return cp;
    if (cp < 0x80 || (cp >= 0xC0 && cp <= 0xDE))
        return cp + 0x20;
    if (cp == 0x178)
        return 0xFF;
    if (cp >= 0x100 && cp <= 0x17F)
        return cp + 1;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 0x20;
    if (cp == 0x4C0)
        return 0x4CF;
    return cp + 1;
}

size_t pii_fold(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        /* Fast paths: ASCII and the Russian alphabet, which is nearly all text. */
        if (c < 0x80) {
            if (o + 2 > cap)
                return 0;
            out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
            continue;
        }
        if ((c == 0xD0 || c == 0xD1) && i + 1 < len && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
            unsigned char d = (unsigned char)s[i + 1];
            if (o + 3 > cap)
                return 0;
            if (c == 0xD0 && d >= 0x90 && d <= 0x9F) {        /* А..П -> а..п */
                out[o++] = (char)0xD0;
                out[o++] = (char)(d + 0x20);
            } else if (c == 0xD0 && d >= 0xA0 && d <= 0xAF) { /* Р..Я -> р..я */
                out[o++] = (char)0xD1;
                out[o++] = (char)(d - 0x20);
            } else if ((c == 0xD0 && d == 0x81) || (c == 0xD1 && d == 0x91)) { /* Ё ё -> е */
                out[o++] = (char)0xD0;
                out[o++] = (char)0xB5;
            } else if (c == 0xD0 && d >= 0x80 && d <= 0x8F) { /* Ѐ..Џ -> ѐ..џ */
                out[o++] = (char)0xD1;
                out[o++] = (char)(d + 0x10);
            } else {
                out[o++] = (char)c;
                out[o++] = (char)d;
            }
            i += 2;
            continue;
        }
        size_t n;
        uint32_t cp = pii_utf8_decode(s + i, len - i, &n);
        char enc[4];
        size_t el;
        if (n == 1) {
            enc[0] = s[i]; /* keep an invalid byte as it is: folding must not invent text */
            el = 1;
        } else {
            el = pii_utf8_encode(pii_lower(cp), enc);
        }
        if (o + el + 1 > cap)
            return 0;
        for (size_t k = 0; k < el; k++)
            out[o + k] = enc[k];
        o += el;
        i += n;
    }
    out[o] = '\0';
    return o;
}
