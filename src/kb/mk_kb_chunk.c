/*
 * mk_kb_chunk: cuts a Markdown article into retrievable chunks at its headings.
 *
 * Support articles are written as "one section = one task" (## Reset a forgotten
 * password), so a section is the natural unit to retrieve and to quote back: it holds
 * the whole list of steps and little else. Only ATX headings of level 1 and 2 cut;
 * deeper headings stay inside their section. Sections longer than
 * MK_KB_MAX_CHUNK_BYTES are split at paragraph breaks (then line breaks, then a
 * character boundary) so no chunk is unboundedly long.
 *
 * Pure function over bytes: no allocation, slices point into the input.
 */
#include <stdbool.h>
#include <string.h>

#include "core/mk_utf8.h"
#include "kb/mk_kb_int.h"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

/* Drops leading blank lines (keeping the first line's indentation) and all trailing
 * whitespace. */
static mk_slice trim_block(mk_slice s)
{
    size_t i = 0, line_start = 0;
    while (i < s.len && is_space(s.ptr[i])) {
        if (s.ptr[i] == '\n')
            line_start = i + 1;
        i++;
    }
    if (i == s.len)
        return (mk_slice){s.ptr + s.len, 0};
    s.ptr += line_start;
    s.len -= line_start;
    while (s.len > 0 && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static mk_slice trim(mk_slice s)
{
    while (s.len > 0 && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* Largest cut <= max: after a paragraph break, else a line break, else a whole
 * UTF-8 character. Returns the length of the first piece (> 0). */
static size_t cut_point(mk_slice s, size_t max)
{
    for (size_t i = max; i >= 2; i--)
        if (s.ptr[i - 1] == '\n' && s.ptr[i - 2] == '\n')
            return i;
    for (size_t i = max; i >= 1; i--)
        if (s.ptr[i - 1] == '\n')
            return i;
    size_t n = mk_utf8_complete_prefix(s.ptr, max);
    return n > 0 ? n : max;
}

static int emit(mk_slice section, mk_slice body, mk_kb__chunk_fn fn, void *arg)
{
    body = trim_block(body);
    while (body.len > 0) {
        mk_slice piece = body;
        if (piece.len > MK_KB_MAX_CHUNK_BYTES)
            piece.len = cut_point(body, MK_KB_MAX_CHUNK_BYTES);
        body.ptr += piece.len;
        body.len -= piece.len;
        piece = trim_block(piece);
        if (piece.len > 0) {
            int rc = fn(arg, section, piece);
            if (rc)
                return rc;
        }
        body = trim_block(body);
    }
    return 0;
}

/* ATX heading level (1-6) of a line, 0 if it is not one; *text gets its text. */
static int heading_level(mk_slice line, mk_slice *text)
{
    size_t i = 0;
    while (i < line.len && i < 3 && line.ptr[i] == ' ')
        i++;
    size_t hashes = 0;
    while (i < line.len && line.ptr[i] == '#') {
        hashes++;
        i++;
    }
    if (hashes == 0 || hashes > 6)
        return 0;
    if (i < line.len && line.ptr[i] != ' ' && line.ptr[i] != '\t' && line.ptr[i] != '\r')
        return 0; /* "#hashtag" is text */
    mk_slice t = trim((mk_slice){line.ptr + i, line.len - i});
    /* An optional closing sequence of #s preceded by a space is not part of the text. */
    size_t end = t.len;
    while (end > 0 && t.ptr[end - 1] == '#')
        end--;
    if (end < t.len && (end == 0 || t.ptr[end - 1] == ' ' || t.ptr[end - 1] == '\t'))
        t = trim((mk_slice){t.ptr, end});
    *text = t;
    return (int)hashes;
}

/* A fence opener/closer: ``` or ~~~ (3 or more) after at most 3 spaces. */
static char fence_char(mk_slice line)
{
    size_t i = 0;
    while (i < line.len && i < 3 && line.ptr[i] == ' ')
        i++;
    if (i + 3 <= line.len && (line.ptr[i] == '`' || line.ptr[i] == '~') && line.ptr[i + 1] == line.ptr[i] &&
        line.ptr[i + 2] == line.ptr[i])
        return line.ptr[i];
    return 0;
}

int mk_kb__chunk_markdown(const char *text, size_t len, mk_slice *title, mk_kb__chunk_fn fn, void *arg)
{
    *title = (mk_slice){"", 0};
    bool have_title = false;
    char fence = 0;
    mk_slice section = {"", 0};
    size_t body_start = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_end = nl ? (size_t)(nl - text) : len;
        size_t next = nl ? line_end + 1 : len;
        mk_slice line = {text + pos, line_end - pos};
        char f = fence_char(line);
        if (fence) {
            if (f == fence)
                fence = 0;
        } else if (f) {
            fence = f;
        } else {
            mk_slice htext;
            int level = heading_level(line, &htext);
            if (level == 1 || level == 2) {
                int rc = emit(section, (mk_slice){text + body_start, pos - body_start}, fn, arg);
                if (rc)
                    return rc;
                if (level == 1 && !have_title) {
                    *title = htext;
                    have_title = true;
                    section = (mk_slice){"", 0};
                } else {
                    section = htext;
                }
                body_start = next;
            }
        }
        pos = next;
    }
    return emit(section, (mk_slice){text + body_start, len - body_start}, fn, arg);
}
