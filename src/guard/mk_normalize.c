/*
 * mk_normalize: the guard's text normalisation (see mk_normalize.h for the views).
 *
 * Speed matters: every request's text passes here. Text made only of ASCII and
 * Cyrillic (the usual case for Mayak) is already NFKC-stable, so it skips
 * utf8proc's full normalisation and is only lower-cased; anything else goes
 * through utf8proc_map once and then the same passes. Each pass is one linear
 * walk over the bytes with no allocation once the workspace has grown.
 *
 * Passes (scratch buffers in between):
 *   clean     casefold, drop invisible/control chars and stray combining marks,
 *             whitespace runs -> one or two spaces (two = a word gap for spaced
 *             letters), ё -> е
 *   script    fold mixed Latin/Cyrillic words to one script
 *   join      join spaced-out single letters, collapse spaces -> BASE
 *   leet      BASE -> LEET_I / LEET_L when some token mixes letters and leet
 *   decode    encoded segments of the raw input -> DECODED (recursive, bounded)
 */
#include "guard/mk_normalize.h"

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"

/* ---- UTF-8 helpers (input already validated) ---- */

static inline size_t dec(const uint8_t *s, size_t i, size_t len, int32_t *cp)
{
    uint8_t c = s[i];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xE0 && i + 1 < len) { *cp = ((int32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F); return 2; }
    if (c < 0xF0 && i + 2 < len) {
        *cp = ((int32_t)(c & 0x0F) << 12) | ((int32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
        return 3;
    }
    if (i + 3 < len) {
        *cp = ((int32_t)(c & 0x07) << 18) | ((int32_t)(s[i + 1] & 0x3F) << 12) |
              ((int32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
        return 4;
    }
    *cp = 0xFFFD; /* truncated: cannot happen after validation */
    return len - i;
}

/* Append cp as UTF-8; the caller reserved 4 bytes. */
static inline void put_cp(mk_buf *b, int32_t cp)
{
    char *p = b->data + b->len;
    if (cp < 0x80) { p[0] = (char)cp; b->len += 1; }
    else if (cp < 0x800) { p[0] = (char)(0xC0 | (cp >> 6)); p[1] = (char)(0x80 | (cp & 0x3F)); b->len += 2; }
    else if (cp < 0x10000) {
        p[0] = (char)(0xE0 | (cp >> 12)); p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (char)(0x80 | (cp & 0x3F)); b->len += 3;
    } else {
        p[0] = (char)(0xF0 | (cp >> 18)); p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        p[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); p[3] = (char)(0x80 | (cp & 0x3F)); b->len += 4;
    }
}

/* No pass writes more than twice the bytes it reads (the worst cases: a Latin
 * letter folded to a 2-byte Cyrillic twin; a 2-byte letter whose lower case takes
 * 3 bytes), so reserving 2 * len + 8 up front lets the loops skip bound checks. */
static int prepare(mk_buf *out, size_t len)
{
    mk_buf_reset(out);
    return mk_buf_reserve(out, 2 * len + 8);
}

static inline void finish(mk_buf *out) { out->data[out->len] = '\0'; }

/* ---- character classes ---- */

static inline bool is_space_cp(int32_t cp)
{
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Zero-width and formatting characters commonly used to split words. utf8proc's
 * "ignorable" property covers the rest on the slow path. */
static inline bool is_invisible_cp(int32_t cp)
{
    return cp == 0xAD || cp == 0x34F || cp == 0x61C || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0000 && cp <= 0xE0FFF);
}

/* Code points that NFKC leaves unchanged on their own and that need no casefold
 * beyond tolower: the text is fast-path safe when made only of these (and of
 * invisible characters, which the clean pass drops). Cyrillic precomposed
 * letters are canonical composites, which NFC/NFKC keep composed. */
static inline bool is_fast_cp(int32_t cp)
{
    return cp < 0x80 || (cp >= 0x400 && cp <= 0x4FF && (cp < 0x483 || cp > 0x489)) || cp == 0xAB ||
           cp == 0xBB || cp == 0xA7 || cp == 0xA9 || cp == 0xAE || cp == 0xB0 || cp == 0xB1 ||
           cp == 0xB7 || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2010 && cp <= 0x2015) ||
           (cp >= 0x2018 && cp <= 0x201F) || cp == 0x2020 || cp == 0x2021 || cp == 0x2022 ||
           is_invisible_cp(cp);
}

enum script { S_NONE = 0, S_LATIN, S_CYR, S_OTHER };

static inline enum script letter_script(int32_t cp)
{
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? S_LATIN : S_NONE;
    if (cp >= 0x400 && cp <= 0x52F) return (cp >= 0x482 && cp <= 0x489) ? S_NONE : S_CYR;
    if (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) return S_LATIN;
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ? S_OTHER : S_NONE;
}

static inline bool is_alnum_cp(int32_t cp)
{
    return (cp >= '0' && cp <= '9') || letter_script(cp) != S_NONE;
}

/* Cyrillic letter -> Latin lookalike (lowercase; 0 = none). */
static int32_t cyr_to_latin(int32_t cp)
{
    switch (cp) {
    case 0x430: return 'a'; case 0x432: return 'b'; case 0x435: return 'e'; case 0x43A: return 'k';
    case 0x43C: return 'm'; case 0x43D: return 'h'; case 0x43E: return 'o'; case 0x440: return 'p';
    case 0x441: return 'c'; case 0x442: return 't'; case 0x443: return 'y'; case 0x445: return 'x';
    case 0x44C: return 'b'; case 0x455: return 's'; case 0x456: return 'i'; case 0x458: return 'j';
    case 0x4BB: return 'h'; case 0x4AF: return 'y'; case 0x4CF: return 'l'; case 0x501: return 'd';
    case 0x51B: return 'q'; case 0x51D: return 'w';
    default: return 0;
    }
}

/* Latin letter -> Cyrillic lookalike (0 = none). */
static int32_t latin_to_cyr(int32_t cp)
{
    switch (cp) {
    case 'a': return 0x430; case 'b': return 0x432; case 'c': return 0x441; case 'e': return 0x435;
    case 'h': return 0x43D; case 'i': return 0x456; case 'k': return 0x43A; case 'm': return 0x43C;
    case 'o': return 0x43E; case 'p': return 0x440; case 't': return 0x442; case 'x': return 0x445;
    case 'y': return 0x443; case 's': return 0x455;
    default: return 0;
    }
}

/* ---- byte tables (built once, like the base64 tables below) ---- */

/* ascii_keep[c]: for an ASCII byte that the clean pass copies (letters, digits,
 * punctuation), its lower-case form; 0 for whitespace, controls and non-ASCII.
 * ascii_cls[c]: bit flags of ASCII classes the passes below ask about. */
static uint8_t ascii_keep[256];
enum { C_LOWER = 1, C_ALNUM = 2, C_SPACER = 4, C_LEET = 8, C_TOK = 16 };
static uint8_t ascii_cls[256];

static void ascii_tab_init(void)
{
    for (int c = 0; c < 256; c++) {
        uint8_t k = 0, cls = 0;
        if (c >= 0x21 && c < 0x7F) k = (uint8_t)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        ascii_keep[c] = k;
        if (c >= 'a' && c <= 'z') cls |= C_LOWER | C_ALNUM | C_TOK;
        if (c >= '0' && c <= '9') cls |= C_ALNUM | C_TOK;
        if (c == ' ' || c == '.' || c == '-' || c == '_' || c == '*' || c == '|' || c == '+' || c == '/') cls |= C_SPACER;
        if (c == '0' || c == '1' || c == '3' || c == '4' || c == '5' || c == '7' || c == '@' || c == '$') cls |= C_LEET;
        if (c == '@' || c == '$' || c >= 0x80) cls |= C_TOK;
        ascii_cls[c] = cls;
    }
}

/* ---- pass 1: clean ---- */

static int pass_clean(mk_buf *out, const uint8_t *s, size_t len, unsigned *flags)
{
    int rc = prepare(out, len);
    if (rc) return rc;
    unsigned ws = 0;
    char *o = out->data;
    for (size_t i = 0; i < len;) {
        uint8_t c = s[i];
        /* The common case, a run of printable ASCII: one table look-up a byte. */
        uint8_t k = ascii_keep[c];
        if (k) {
            if (ws) {
                if (out->len) { o[out->len++] = ' '; if (ws > 1) o[out->len++] = ' '; }
                ws = 0;
            }
            size_t ol = out->len;
            do { o[ol++] = (char)k; i++; } while (i < len && (k = ascii_keep[s[i]]) != 0);
            out->len = ol;
            continue;
        }
        /* A run of basic Cyrillic letters (U+0410..U+044F): lower-case them in place. */
        if ((c == 0xD0 || c == 0xD1) && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            int32_t cp = ((int32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
            if (cp >= 0x410 && cp <= 0x44F) {
                if (ws) {
                    if (out->len) { o[out->len++] = ' '; if (ws > 1) o[out->len++] = ' '; }
                    ws = 0;
                }
                do {
                    if (cp < 0x430) cp += 0x20;
                    put_cp(out, cp);
                    i += 2;
                    if (i + 1 >= len || (s[i] != 0xD0 && s[i] != 0xD1) || (s[i + 1] & 0xC0) != 0x80) break;
                    cp = ((int32_t)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
                } while (cp >= 0x410 && cp <= 0x44F);
                continue;
            }
        }
        if (c < 0x80) {
            i++;
            if (c == ' ' || (c >= 0x09 && c <= 0x0D)) { ws++; continue; }
            if (c < 0x20 || c == 0x7F) { *flags |= MK_NORM_F_INVISIBLE; continue; }
            if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
            if (ws) {
                if (out->len) { out->data[out->len++] = ' '; if (ws > 1) out->data[out->len++] = ' '; }
                ws = 0;
            }
            out->data[out->len++] = (char)c;
            continue;
        }
        int32_t cp;
        size_t n = dec(s, i, len, &cp);
        i += n;
        if (cp >= 0x410 && cp <= 0x44F) {
            if (cp < 0x430) cp += 0x20;
        } else {
            if (is_space_cp(cp)) { ws++; continue; }
            if (is_invisible_cp(cp) || (cp >= 0x80 && cp < 0xA0)) { *flags |= MK_NORM_F_INVISIBLE; continue; }
            utf8proc_category_t cat = utf8proc_category(cp);
            if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || utf8proc_get_property(cp)->ignorable) {
                *flags |= MK_NORM_F_INVISIBLE;
                continue;
            }
            if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME) {
                *flags |= MK_NORM_F_COMBINING;
                continue;
            }
            if (cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP) { ws++; continue; }
            cp = utf8proc_tolower(cp);
            if (cp == 0x451) cp = 0x435; /* ё -> е: Russian writes both */
        }
        if (ws) {
            if (out->len) { out->data[out->len++] = ' '; if (ws > 1) out->data[out->len++] = ' '; }
            ws = 0;
        }
        put_cp(out, cp);
    }
    finish(out);
    return 0;
}

/* ---- pass 2: mixed-script words ---- */

static int pass_script(mk_buf *out, const uint8_t *s, size_t len, unsigned *flags)
{
    int rc = prepare(out, len);
    if (rc) return rc;
    size_t i = 0;
    while (i < len) {
        /* ASCII non-letters copy straight through. */
        uint8_t c = s[i];
        if (c < 0x80 && !(ascii_cls[c] & C_LOWER)) {
            /* ASCII non-letters copy straight through, a run at a time. */
            size_t j = i + 1;
            while (j < len && s[j] < 0x80 && !(ascii_cls[s[j]] & C_LOWER)) j++;
            memcpy(out->data + out->len, s + i, j - i);
            out->len += j - i;
            i = j;
            continue;
        }
        /* Fast path: a run of ASCII letters and 2-byte Cyrillic letters in one
         * script, ending at ASCII or the end, is copied as is. */
        {
            size_t j = i;
            bool lat = false, cyr = false;
            for (;;) {
                if (j < len && (ascii_cls[s[j]] & C_LOWER)) {
                    do j++; while (j < len && (ascii_cls[s[j]] & C_LOWER));
                    lat = true;
                    continue;
                }
                if (j + 1 < len && s[j] >= 0xD0 && s[j] <= 0xD3) {
                    int32_t cp = ((int32_t)(s[j] & 0x1F) << 6) | (s[j + 1] & 0x3F);
                    if (cp < 0x482 || cp > 0x489) { cyr = true; j += 2; continue; }
                }
                break;
            }
            if (j > i && !(lat && cyr) && (j == len || s[j] < 0x80)) {
                memcpy(out->data + out->len, s + i, j - i);
                out->len += j - i;
                i = j;
                continue;
            }
        }
        /* A word: a run of letters. Count scripts and foldability. */
        size_t start = i;
        unsigned nlat = 0, ncyr = 0;
        bool lat_ok = true, cyr_ok = true; /* every Latin letter has a Cyrillic twin, and vice versa */
        while (i < len) {
            int32_t cp;
            size_t n = dec(s, i, len, &cp);
            enum script sc = letter_script(cp);
            if (sc == S_NONE) break;
            if (sc == S_LATIN) { nlat++; if (!latin_to_cyr(cp)) lat_ok = false; }
            else if (sc == S_CYR) { ncyr++; if (!cyr_to_latin(cp)) cyr_ok = false; }
            i += n;
        }
        if (i == start) { /* a non-letter, non-ASCII code point */
            int32_t cp;
            size_t n = dec(s, i, len, &cp);
            memcpy(out->data + out->len, s + i, n);
            out->len += n;
            i += n;
            continue;
        }
        if (nlat == 0 || ncyr == 0) {
            memcpy(out->data + out->len, s + start, i - start);
            out->len += i - start;
            continue;
        }
        enum script to;
        if (cyr_ok && !lat_ok) to = S_LATIN;
        else if (lat_ok && !cyr_ok) to = S_CYR;
        else to = nlat >= ncyr ? S_LATIN : S_CYR;
        *flags |= MK_NORM_F_HOMOGLYPH;
        for (size_t j = start; j < i;) {
            int32_t cp, m = 0;
            size_t n = dec(s, j, len, &cp);
            j += n;
            if (to == S_LATIN && letter_script(cp) == S_CYR) m = cyr_to_latin(cp);
            else if (to == S_CYR && letter_script(cp) == S_LATIN) m = latin_to_cyr(cp);
            put_cp(out, m ? m : cp);
        }
    }
    finish(out);
    return 0;
}

/* ---- pass 3: spaced letters, final spaces ---- */

static inline bool is_spacer(uint8_t c)
{
    return c == ' ' || c == '.' || c == '-' || c == '_' || c == '*' || c == '|' || c == '+' || c == '/';
}

/* Is s[i] a boundary for a single-character token (end, space, or a non-alnum)? */
static inline bool boundary_at(const uint8_t *s, size_t i, size_t len)
{
    if (i >= len) return true;
    int32_t cp;
    dec(s, i, len, &cp);
    return !is_alnum_cp(cp);
}

static int pass_join(mk_buf *out, const uint8_t *s, size_t len, unsigned *flags)
{
    int rc = prepare(out, len);
    if (rc) return rc;
    bool prev_boundary = true; /* the previous code point was not alnum */
    size_t last_run_end = (size_t)-1; /* where the last joined run ended in s */
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c == ' ') {
            /* Collapse: clean emits one or two spaces; BASE keeps one. */
            if (out->len && out->data[out->len - 1] != ' ') out->data[out->len++] = ' ';
            i++;
            prev_boundary = true;
            continue;
        }
        if (c < 0x80) {
            bool a = ascii_cls[c] & C_ALNUM;
            if (!(a && prev_boundary && i + 1 < len && (ascii_cls[s[i + 1]] & C_SPACER))) {
                size_t ol = out->len;
                out->data[ol++] = (char)c;
                i++;
                /* The rest of an ASCII word cannot start a spaced run: copy it. */
                if (a)
                    while (i < len && (ascii_cls[s[i]] & C_ALNUM)) out->data[ol++] = (char)s[i++];
                out->len = ol;
                prev_boundary = !a;
                continue;
            }
        }
        /* Inside a word, two-byte Cyrillic letters (lead D0..D3, not the
         * combining signs U+0482..U+0489) and ASCII alnums copy straight through:
         * only a word's first character can start a spaced run. */
        if (!prev_boundary && c >= 0xD0 && c <= 0xD3 && i + 1 < len) {
            size_t ol = out->len, i0 = i;
            for (;;) {
                uint8_t b0 = s[i];
                if (b0 >= 0xD0 && b0 <= 0xD3 && i + 1 < len && !(b0 == 0xD2 && s[i + 1] >= 0x82 && s[i + 1] <= 0x89)) {
                    out->data[ol++] = (char)b0;
                    out->data[ol++] = (char)s[i + 1];
                    i += 2;
                } else if (b0 < 0x80 && (ascii_cls[b0] & C_ALNUM)) {
                    out->data[ol++] = (char)b0;
                    i++;
                } else {
                    break;
                }
            }
            out->len = ol;
            if (i != i0) continue;
        }
        int32_t cp;
        size_t n = dec(s, i, len, &cp);
        bool alnum = is_alnum_cp(cp);
        if (alnum && prev_boundary && i + n < len && is_spacer(s[i + n]) && i + n + 1 < len) {
            /* Possible run "x s y s z s w": single alnum chars split by one spacer s. */
            uint8_t sp = s[i + n];
            size_t j = i, count = 0, letters = 0, end = i;
            while (j < len) {
                int32_t a;
                size_t m = dec(s, j, len, &a);
                if (!is_alnum_cp(a) || !boundary_at(s, j + m, len)) break;
                count++;
                if (!(a >= '0' && a <= '9')) letters++;
                end = j + m;
                if (j + m + 1 < len && s[j + m] == sp) j = j + m + 1;
                else break;
            }
            /* Four letters make a run on their own; a shorter one right after a
             * joined run (one word gap: two spaces) continues the phrase
             * ("i g n o r e  a l l"). */
            size_t need = (last_run_end != (size_t)-1 && i == last_run_end + 2) ? 2 : 4;
            if (count >= need && letters * 2 >= count) {
                *flags |= MK_NORM_F_SPACED;
                for (size_t k = i; k < end;) {
                    int32_t a;
                    size_t m = dec(s, k, len, &a);
                    if (is_alnum_cp(a)) { memcpy(out->data + out->len, s + k, m); out->len += m; }
                    k += m;
                }
                i = end;
                last_run_end = end;
                prev_boundary = false;
                continue;
            }
        }
        memcpy(out->data + out->len, s + i, n);
        out->len += n;
        i += n;
        prev_boundary = !alnum;
    }
    while (out->len && out->data[out->len - 1] == ' ') out->len--;
    finish(out);
    return 0;
}

/* ---- leet views ---- */

static inline int leet_of(uint8_t c, bool one_as_l)
{
    switch (c) {
    case '0': return 'o';
    case '1': return one_as_l ? 'l' : 'i';
    case '3': return 'e';
    case '4': return 'a';
    case '5': return 's';
    case '7': return 't';
    case '@': return 'a';
    case '$': return 's';
    default: return 0;
    }
}

static inline bool is_tok_byte(uint8_t c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '@' || c == '$';
}

/* Writes the leet view of base into out; *any set when some token qualified,
 * *had_one when a '1' was folded. */
static int pass_leet(mk_buf *out, const uint8_t *s, size_t len, bool one_as_l, bool *any, bool *had_one)
{
    int rc = prepare(out, len);
    if (rc) return rc;
    *any = false;
    *had_one = false;
    size_t i = 0;
    while (i < len) {
        if (!is_tok_byte(s[i])) { out->data[out->len++] = (char)s[i++]; continue; }
        size_t start = i;
        bool letter = false, leet = false;
        while (i < len && is_tok_byte(s[i])) {
            uint8_t c = s[i];
            if (c >= 0x80 || (c >= 'a' && c <= 'z')) letter = true;
            else if (leet_of(c, false)) leet = true;
            i++;
        }
        bool fold = letter && leet;
        for (size_t k = start; k < i; k++) {
            int m = fold ? leet_of(s[k], one_as_l) : 0;
            if (m && s[k] == '1') *had_one = true;
            out->data[out->len++] = (char)(m ? m : s[k]);
        }
        if (fold) *any = true;
    }
    finish(out);
    return 0;
}

/* ---- encoded segments ---- */

/* Byte classes for the encoded-segment scan: 0..63 base64 value (both
 * alphabets), 64 = not base64; hex value or -1. Built once (tables as data). */
static int8_t b64_tab[256], hex_tab[256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void ascii_tab_init(void);

static void tab_init(void)
{
    ascii_tab_init();
    for (int c = 0; c < 256; c++) {
        int v = -1;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+' || c == '-') v = 62;
        else if (c == '/' || c == '_') v = 63;
        b64_tab[c] = (int8_t)v;
        int h = -1;
        if (c >= '0' && c <= '9') h = c - '0';
        else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
        hex_tab[c] = (int8_t)h;
    }
}

static inline int hexval(uint8_t c) { return hex_tab[c]; }
static inline int b64val(uint8_t c) { return b64_tab[c]; }

/* Decoded bytes are worth scanning when they are text: valid UTF-8, no control
 * characters but whitespace, and a few letters. Random bytes almost never pass. */
static bool looks_like_text(const uint8_t *d, size_t n)
{
    if (n < 6 || !mk_utf8_valid((const char *)d, n)) return false;
    size_t letters = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = d[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return false;
        if (c == 0x7F) return false;
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') letters++;
        else if (c >= 0xC0) letters++;
    }
    return letters >= 4;
}

static int normalize_depth(struct mk_norm *n, const uint8_t *s, size_t len, int depth, mk_buf *base_out);

static int add_decoded(struct mk_norm *n, const uint8_t *d, size_t dn, int depth)
{
    if (!looks_like_text(d, dn)) return 0;
    if (n->decoded_segments >= MK_NORM_MAX_SEGMENTS) return 0;
    n->decoded_segments++;
    n->flags |= MK_NORM_F_ENCODED;
    mk_buf tmp = MK_BUF_INIT;
    int rc = normalize_depth(n, d, dn, depth + 1, &tmp);
    if (rc == 0 && tmp.len) {
        mk_buf *v = &n->view[MK_NORM_DECODED];
        if (v->len) rc = mk_buf_append_char(v, '\n');
        if (rc == 0) rc = mk_buf_append(v, tmp.data, tmp.len);
    }
    mk_buf_release(&tmp);
    return rc == MK_EBADUTF8 ? 0 : rc;
}

static int scan_encoded(struct mk_norm *n, const uint8_t *s, size_t len, int depth)
{
    if (depth >= MK_NORM_MAX_DEPTH) return 0;
    mk_buf dbuf = MK_BUF_INIT;
    int rc = 0;
    size_t i = 0;
    while (i < len && rc == 0) {
        /* Runs of base64/hex alphabet characters. A run must be at least
         * MK_NORM_MIN_ENCODED long, so look at the far end of the window first:
         * ordinary words are shorter, and one non-alphabet byte in the window
         * lets the scan jump past it (most text is skipped many bytes a step). */
        if (len - i < MK_NORM_MIN_ENCODED) break;
        {
            size_t k = i + MK_NORM_MIN_ENCODED;
            while (k > i && b64val(s[k - 1]) >= 0) k--;
            if (k > i) { i = k; continue; }
        }
        size_t start = i;
        while (i < len && b64val(s[i]) >= 0) i++;
        if (i - start < MK_NORM_MIN_ENCODED) continue;
        bool all_hex = true;
        for (size_t k = start; k < i && all_hex; k++) all_hex = hexval(s[k]) >= 0;
        size_t end = i;
        while (i < len && s[i] == '=' && i - end < 2) i++;
        size_t rl = end - start;
        if (rl < MK_NORM_MIN_ENCODED) continue;
        mk_buf_reset(&dbuf);
        if ((rc = mk_buf_reserve(&dbuf, rl))) break;
        uint8_t *d = (uint8_t *)dbuf.data;
        size_t dn = 0;
        if (all_hex && rl % 2 == 0) {
            for (size_t k = start; k + 1 < end; k += 2) d[dn++] = (uint8_t)(hexval(s[k]) << 4 | hexval(s[k + 1]));
        } else {
            uint32_t acc = 0;
            int bits = 0;
            for (size_t k = start; k < end; k++) {
                acc = (acc << 6) | (uint32_t)b64val(s[k]);
                bits += 6;
                if (bits >= 8) { bits -= 8; d[dn++] = (uint8_t)(acc >> bits); acc &= (1u << bits) - 1; }
            }
        }
        rc = add_decoded(n, d, dn, depth);
    }
    /* Runs of non-space bytes with %XX or \xXX escapes (only if there can be one). */
    i = (memchr(s, '%', len) || memchr(s, '\\', len)) ? 0 : len;
    while (i < len && rc == 0) {
        if (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') { i++; continue; }
        size_t start = i, escapes = 0;
        while (i < len && !(s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) {
            if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) escapes++;
            else if (s[i] == '\\' && i + 3 < len && s[i + 1] == 'x' && hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0) escapes++;
            i++;
        }
        if (escapes < 3) continue;
        mk_buf_reset(&dbuf);
        if ((rc = mk_buf_reserve(&dbuf, i - start))) break;
        uint8_t *d = (uint8_t *)dbuf.data;
        size_t dn = 0;
        for (size_t k = start; k < i;) {
            if (s[k] == '%' && k + 2 < i && hexval(s[k + 1]) >= 0 && hexval(s[k + 2]) >= 0) {
                d[dn++] = (uint8_t)(hexval(s[k + 1]) << 4 | hexval(s[k + 2])); k += 3;
            } else if (s[k] == '\\' && k + 3 < i && s[k + 1] == 'x' && hexval(s[k + 2]) >= 0 && hexval(s[k + 3]) >= 0) {
                d[dn++] = (uint8_t)(hexval(s[k + 2]) << 4 | hexval(s[k + 3])); k += 4;
            } else {
                d[dn++] = s[k] == '+' ? ' ' : s[k]; k++;
            }
        }
        rc = add_decoded(n, d, dn, depth);
    }
    mk_buf_release(&dbuf);
    return rc;
}

/* ---- driver ---- */

/* Validate s as UTF-8 and tell whether every code point is fast-path safe (see
 * is_fast_cp). 0 = valid and fast, 1 = valid, needs utf8proc, -1 = invalid.
 * ASCII is skipped eight bytes at a time: most text is mostly ASCII. */
static int check_text(const uint8_t *s, size_t len)
{
    int slow = 0;
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) { i += 8; continue; }
        }
        if (s[i] < 0x80) { i++; continue; }
        /* Two-byte Cyrillic (lead D0..D3, never overlong), the usual non-ASCII. */
        if (s[i] >= 0xD0 && s[i] <= 0xD3 && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            if (!slow && !is_fast_cp(((int32_t)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F))) slow = 1;
            i += 2;
            continue;
        }
        size_t n = mk_utf8_valid_prefix((const char *)s + i, len - i);
        if (n == 0) return -1;
        int32_t cp;
        dec(s, i, len, &cp);
        if (!slow && !is_fast_cp(cp)) slow = 1;
        i += n;
    }
    return slow;
}

/* NFKC + casefold of s into out, through utf8proc only where needed. The text
 * is cut before each ASCII whitespace byte: whitespace is a starter that never
 * composes with what precedes it, so normalising the pieces separately gives
 * the same result as normalising the whole, and the (rare) pieces holding
 * characters outside the fast set are the only ones utf8proc sees. */
static int nfkc_chunks(mk_buf *out, const uint8_t *s, size_t len)
{
    mk_buf_reset(out);
    int rc = mk_buf_reserve(out, len + 8);
    if (rc) return rc;
    size_t i = 0;
    while (i < len) {
        size_t j = i + 1;
        while (j < len && !(s[j] == ' ' || (s[j] >= 0x09 && s[j] <= 0x0D))) j++;
        bool fast = true;
        for (size_t k = i; k < j && fast;) {
            if (s[k] < 0x80) { k++; continue; }
            int32_t cp;
            k += dec(s, k, j, &cp);
            fast = is_fast_cp(cp);
        }
        if (fast) {
            rc = mk_buf_append(out, s + i, j - i);
        } else {
            uint8_t *mapped = NULL;
            utf8proc_ssize_t r = utf8proc_map(s + i, (utf8proc_ssize_t)(j - i), &mapped,
                                              UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                                  UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
            if (r < 0) return r == UTF8PROC_ERROR_NOMEM ? MK_ENOMEM : MK_EBADUTF8;
            rc = mk_buf_append(out, mapped, (size_t)r);
            free(mapped);
        }
        if (rc) return rc;
        i = j;
    }
    /* NFKC can expand (U+FDFA is 18 letters); bound what an input can become. */
    return out->len > 4 * len + 64 ? MK_ETOOBIG : 0;
}

/* ---- one-pass fast path ---- */

/* Non-ASCII punctuation of the fast set (is_fast_cp) that the clean pass keeps
 * as it is and that is neither a letter nor a digit: copied through by
 * pass_simple. Returns its UTF-8 length, or 0 when s[i] starts something else. */
static inline size_t simple_punct(const uint8_t *s, size_t i, size_t len)
{
    uint8_t c = s[i];
    if (c == 0xC2 && i + 1 < len) {
        uint8_t d = s[i + 1];
        return (d == 0xAB || d == 0xBB || d == 0xA7 || d == 0xA9 || d == 0xAE || d == 0xB0 || d == 0xB1 || d == 0xB7) ? 2 : 0;
    }
    if (c == 0xC3 && i + 1 < len) return (s[i + 1] == 0x97 || s[i + 1] == 0xB7) ? 2 : 0;
    if (c == 0xE2 && i + 2 < len && s[i + 1] == 0x80) {
        uint8_t d = s[i + 2];
        return ((d >= 0x90 && d <= 0x95) || (d >= 0x98 && d <= 0xA2)) ? 3 : 0;
    }
    return 0;
}

/*
 * BASE in one pass for the usual text: ASCII, basic Cyrillic (U+0410..U+044F,
 * Ё/ё) and the punctuation above, with no control characters, no word mixing
 * Latin and Cyrillic letters and no two one-character tokens separated by a
 * single spacer (the least a spaced-out run needs). For such text the clean,
 * script and join passes reduce to: lower-case, ё -> е, whitespace runs -> one
 * space, no leading or trailing space; this pass does exactly that. On anything
 * else it gives up (returns 1) and the caller runs the full passes, so the
 * result never differs (a differential test over random and real text checks).
 * Returns 0 when out holds BASE, 1 to fall back, or MK_ENOMEM.
 */
static int pass_simple(mk_buf *out, const uint8_t *s, size_t len)
{
    int rc = prepare(out, len);
    if (rc) return rc;
    char *o = out->data;
    size_t ol = 0, i = 0;
    bool ws = false;          /* whitespace pending */
    bool in_tok = false;      /* the previous code point was alnum */
    size_t tok_len = 0, tok_start = 0;
    size_t single_end = (size_t)-1; /* out offset just after the last one-character token */
    bool lat = false, cyr = false;  /* letters of each script in the current word */
#define TOKEN_END()                                                                                   \
    do {                                                                                              \
        if (in_tok) {                                                                                 \
            if (tok_len == 1) {                                                                       \
                if (single_end != (size_t)-1 && tok_start == single_end + 1 &&                        \
                    (ascii_cls[(uint8_t)o[single_end]] & C_SPACER))                                   \
                    return 1;                                                                         \
                single_end = ol;                                                                      \
            }                                                                                         \
            in_tok = false;                                                                           \
        }                                                                                             \
        lat = cyr = false;                                                                            \
    } while (0)
#define EMIT_WS()                                                                                     \
    do {                                                                                              \
        if (ws) {                                                                                     \
            if (ol) o[ol++] = ' ';                                                                    \
            ws = false;                                                                               \
        }                                                                                             \
    } while (0)
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            uint8_t k = ascii_keep[c];
            if (!k) {
                if (c == ' ' || (c >= 0x09 && c <= 0x0D)) { TOKEN_END(); ws = true; i++; continue; }
                return 1; /* a control character: the full passes flag it */
            }
            uint8_t cls = ascii_cls[k];
            if (cls & C_ALNUM) {
                EMIT_WS();
                if (!in_tok) { in_tok = true; tok_len = 0; tok_start = ol; }
                /* The whole ASCII alnum run at once. */
                do {
                    if (ascii_cls[k] & C_LOWER) {
                        if (cyr) return 1; /* a word mixing scripts */
                        lat = true;
                    } else {
                        lat = cyr = false; /* a digit ends a word (not a token) */
                    }
                    o[ol++] = (char)k;
                    tok_len++;
                    i++;
                } while (i < len && (k = ascii_keep[s[i]]) != 0 && (ascii_cls[k] & C_ALNUM));
                continue;
            }
            TOKEN_END();
            EMIT_WS();
            o[ol++] = (char)k;
            i++;
            continue;
        }
        if ((c == 0xD0 || c == 0xD1) && i + 1 < len) {
            int32_t cp = ((int32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
            if (cp == 0x401 || cp == 0x451) cp = 0x435;
            if (cp >= 0x410 && cp <= 0x44F) {
                if (cp < 0x430) cp += 0x20;
                EMIT_WS();
                if (!in_tok) { in_tok = true; tok_len = 0; tok_start = ol; }
                cyr = true;
                if (lat) return 1;
                o[ol++] = (char)(0xC0 | (cp >> 6));
                o[ol++] = (char)(0x80 | (cp & 0x3F));
                tok_len++;
                i += 2;
                continue;
            }
        }
        size_t m = simple_punct(s, i, len);
        if (!m) return 1;
        TOKEN_END();
        EMIT_WS();
        memcpy(o + ol, s + i, m);
        ol += m;
        i += m;
    }
    TOKEN_END();
#undef TOKEN_END
#undef EMIT_WS
    out->len = ol;
    finish(out);
    return 0;
}

/* BASE normalisation of s into base_out (using n's scratch), plus encoded
 * segments of s into n's DECODED view. */
static int normalize_depth(struct mk_norm *n, const uint8_t *s, size_t len, int depth, mk_buf *base_out)
{
    int kind = check_text(s, len);
    if (kind < 0) return MK_EBADUTF8;
    /* Separate scratch per depth would be needed if passes interleaved; they do
     * not: decoding happens after this level's passes finish. */
    mk_buf a = MK_BUF_INIT, b = MK_BUF_INIT, c = MK_BUF_INIT;
    mk_buf *s0 = depth == 0 ? &n->scratch[0] : &a;
    mk_buf *s1 = depth == 0 ? &n->scratch[1] : &b;
    const uint8_t *src = s;
    size_t srclen = len;
    int rc = 0;
    if (kind > 0) {
        mk_buf *m = depth == 0 ? &n->scratch[2] : &c;
        if ((rc = nfkc_chunks(m, s, len))) goto out;
        src = (const uint8_t *)m->data;
        srclen = m->len;
        n->flags |= MK_NORM_F_NFKC_CHANGED;
    }
    if (kind == 0 && (rc = pass_simple(base_out, s, len)) <= 0) {
        if (rc) goto out;
    } else {
        if ((rc = pass_clean(s0, src, srclen, &n->flags))) goto out;
        if ((rc = pass_script(s1, (const uint8_t *)s0->data, s0->len, &n->flags))) goto out;
        if ((rc = pass_join(base_out, (const uint8_t *)s1->data, s1->len, &n->flags))) goto out;
    }
    rc = scan_encoded(n, s, len, depth);
out:
    mk_buf_release(&a);
    mk_buf_release(&b);
    mk_buf_release(&c);
    return rc;
}

void mk_norm_init(struct mk_norm *n)
{
    memset(n, 0, sizeof(*n));
    for (int v = 0; v < MK_NORM_VIEW_COUNT; v++) mk_buf_init(&n->view[v], 0);
    for (int k = 0; k < 3; k++) mk_buf_init(&n->scratch[k], 0);
}

void mk_norm_release(struct mk_norm *n)
{
    if (!n) return;
    for (int v = 0; v < MK_NORM_VIEW_COUNT; v++) mk_buf_release(&n->view[v]);
    for (int k = 0; k < 3; k++) mk_buf_release(&n->scratch[k]);
    n->flags = 0;
    n->decoded_segments = 0;
}

static void clear_views(struct mk_norm *n)
{
    for (int v = 0; v < MK_NORM_VIEW_COUNT; v++) mk_buf_reset(&n->view[v]);
    n->flags = 0;
    n->decoded_segments = 0;
}

int mk_normalize(struct mk_norm *n, const char *text, size_t len)
{
    if (!n || (!text && len)) return MK_EINVAL;
    clear_views(n);
    if (len > MK_NORM_MAX_INPUT) return MK_ETOOBIG;
    if (len == 0) return 0;
    pthread_once(&tab_once, tab_init);
    const uint8_t *s = (const uint8_t *)text;
    int rc = normalize_depth(n, s, len, 0, &n->view[MK_NORM_BASE]);
    if (rc) { clear_views(n); return rc; }
    mk_buf *base = &n->view[MK_NORM_BASE];
    bool any = false, had_one, unused;
    /* Only a token holding a leet character and a letter needs the leet views;
     * look at the tokens around leet characters only (numbers are common, leet
     * tokens rare), and skip the pass when there is none. */
    bool maybe = false;
    for (size_t i = 0; i < base->len && !maybe; i++) {
        uint8_t c = (uint8_t)base->data[i];
        if (!(ascii_cls[c] & C_LEET)) continue;
        size_t a = i, b = i + 1;
        while (a > 0 && is_tok_byte((uint8_t)base->data[a - 1])) a--;
        while (b < base->len && is_tok_byte((uint8_t)base->data[b])) b++;
        for (size_t k = a; k < b && !maybe; k++) {
            uint8_t t = (uint8_t)base->data[k];
            maybe = t >= 0x80 || (t >= 'a' && t <= 'z');
        }
        i = b;
    }
    if (maybe) rc = pass_leet(&n->view[MK_NORM_LEET_I], (const uint8_t *)base->data, base->len, false, &any, &had_one);
    if (rc == 0 && !any) mk_buf_reset(&n->view[MK_NORM_LEET_I]);
    if (rc == 0 && any) {
        n->flags |= MK_NORM_F_LEET;
        if (had_one)
            rc = pass_leet(&n->view[MK_NORM_LEET_L], (const uint8_t *)base->data, base->len, true, &any, &unused);
    }
    if (rc) { clear_views(n); return rc; }
    return 0;
}
