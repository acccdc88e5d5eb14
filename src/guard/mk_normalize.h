/*
 * mk_normalize: turns untrusted text into the forms the input guard matches on.
 *
 * Attackers hide instructions from matchers with Unicode tricks: fullwidth or
 * styled letters, zero-width characters inside words, Cyrillic letters that look
 * Latin ("іgnоrе"), leetspeak ("1gn0r3"), spaced letters ("i g n o r e") and
 * encodings (base64, hex, %XX). Normalisation undoes these so that one pattern
 * set and one classifier see one spelling. It never loses the original meaning
 * for ordinary text: numbers stay numbers in the base view, leet is a separate
 * view, decoded segments are a separate view.
 *
 * Views (each an mk_buf inside struct mk_norm; an empty view was not needed):
 *   BASE     NFKC, case folded, zero-width/format/control characters removed,
 *            combining marks left over after NFKC removed, whitespace collapsed to
 *            single spaces, "ё" folded to "е", mixed-script words folded to one
 *            script (see below), runs of >= 4 spaced-out single letters joined.
 *   LEET_I   BASE with leet digits/symbols folded inside tokens that also hold
 *            letters ("p4ssw0rd" -> "password"; "2024" untouched); '1' -> 'i'.
 *   LEET_L   the same with '1' -> 'l' ("ru1es" -> "rules"); only when a '1' was
 *            folded in LEET_I.
 *   DECODED  the BASE normalisation of each decoded base64 / hex / URL-encoded
 *            segment of the input that decodes to printable UTF-8, one per line.
 *
 * Homoglyphs: a word (run of letters) that mixes Latin and Cyrillic letters is
 * folded to one script. If every letter of one script has a lookalike in the
 * other, the word goes to the other script ("іgnоrе" -> "ignore" because g, n, r
 * have no Cyrillic twin; "игнoрируй" with a Latin o -> all Cyrillic); otherwise
 * the letters that can be folded go toward the word's majority script. Single-
 * script words are never touched, so English and Russian (and Kazakh) text are
 * matched in their own script by their own patterns.
 *
 * Thread-safety: a struct mk_norm is one thread's workspace; reuse it across
 * calls to avoid allocation (buffers keep their capacity).
 */
#ifndef MK_NORMALIZE_H
#define MK_NORMALIZE_H

#include <stddef.h>

#include "core/mk_buf.h"

/* Largest input mk_normalize accepts: a request body can be no larger anyway. */
#define MK_NORM_MAX_INPUT (8u * 1024 * 1024)
/* Encoded segments shorter than this (in encoded characters) are left alone:
 * short base64-looking words are common (ids, hashes) and hide little. */
#define MK_NORM_MIN_ENCODED 16
/* At most this many encoded segments are decoded per input (bounds the work an
 * attacker can cause), and decoding recurses at most this deep (base64 of base64). */
#define MK_NORM_MAX_SEGMENTS 64
#define MK_NORM_MAX_DEPTH 2

enum mk_norm_view {
    MK_NORM_BASE = 0,
    MK_NORM_LEET_I,
    MK_NORM_LEET_L,
    MK_NORM_DECODED,
    MK_NORM_VIEW_COUNT
};

/* What normalisation found (bit set in mk_norm.flags); attacks often show here. */
enum {
    MK_NORM_F_NFKC_CHANGED = 1u << 0, /* compatibility forms (fullwidth, styled) */
    MK_NORM_F_INVISIBLE = 1u << 1,    /* zero-width / format / control chars removed */
    MK_NORM_F_HOMOGLYPH = 1u << 2,    /* a mixed-script word was folded */
    MK_NORM_F_SPACED = 1u << 3,       /* spaced-out letters were joined */
    MK_NORM_F_LEET = 1u << 4,         /* the leet views were produced */
    MK_NORM_F_ENCODED = 1u << 5,      /* at least one encoded segment decoded */
    MK_NORM_F_COMBINING = 1u << 6,    /* stray combining marks removed (zalgo) */
};

struct mk_norm {
    mk_buf view[MK_NORM_VIEW_COUNT];
    unsigned flags;
    unsigned decoded_segments;
    mk_buf scratch[3]; /* private */
};

/* Ready an empty workspace (no allocation). */
void mk_norm_init(struct mk_norm *n);
/* Free every buffer. Accepts NULL. */
void mk_norm_release(struct mk_norm *n);

/*
 * Normalise text[0..len) into n's views (previous contents are replaced).
 * text need not be NUL-terminated; len 0 gives empty views.
 * Returns 0; MK_EBADUTF8 if text is not well-formed UTF-8 (views are then empty);
 * MK_ETOOBIG if len > MK_NORM_MAX_INPUT; MK_EINVAL for NULL n or NULL text with
 * len > 0; MK_ENOMEM.
 */
int mk_normalize(struct mk_norm *n, const char *text, size_t len);

static inline mk_slice mk_norm_view_slice(const struct mk_norm *n, enum mk_norm_view v)
{
    return mk_buf_slice(&n->view[v]);
}

#endif
