/*
 * kb_text: plain text -> blocks, for .txt files and for the text of each PDF page.
 *
 * Plain text has structure by convention only: blank lines between paragraphs, list
 * items on lines starting with "-", "*", "•" or "1." / "1)", headings underlined
 * with "===" or "---", and a short first line standing alone as the title. A run of item lines (with their indented continuation lines)
 * becomes one list block so numbered steps stay together.
 */
#include <stdbool.h>
#include <string.h>

#include "core/mk_error.h"
#include "kb/kb_ingest_int.h"

struct line {
    const char *s;
    size_t len;       /* without the newline (and a trailing \r) */
    size_t off;       /* from the start of the text */
};

static bool blank_line(const struct line *l)
{
    for (size_t i = 0; i < l->len; i++)
        if (l->s[i] != ' ' && l->s[i] != '\t' && l->s[i] != '\f' && l->s[i] != '\v')
            return false;
    return true;
}

static bool indented(const struct line *l) { return l->len > 0 && (l->s[0] == ' ' || l->s[0] == '\t'); }

static bool list_item(const struct line *l)
{
    const char *s = l->s;
    size_t n = l->len, i = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    if (i + 1 < n && (s[i] == '-' || s[i] == '*' || s[i] == '+') && s[i + 1] == ' ')
        return true;
    if (i + 3 < n && memcmp(s + i, "\xE2\x80\xA2", 3) == 0) /* • */
        return true;
    size_t d = i;
    while (d < n && d - i < 3 && s[d] >= '0' && s[d] <= '9')
        d++;
    return d > i && d + 1 < n && (s[d] == '.' || s[d] == ')') && s[d + 1] == ' ';
}

static bool underline(const struct line *l, char c)
{
    size_t i = 0, k = 0;
    while (i < l->len && l->s[i] == ' ')
        i++;
    while (i < l->len && l->s[i] == c) {
        i++;
        k++;
    }
    while (i < l->len && l->s[i] == ' ')
        i++;
    return k >= 3 && i == l->len;
}

static bool next_line(const char *s, size_t len, size_t *pos, struct line *l)
{
    if (*pos >= len)
        return false;
    const char *nl = memchr(s + *pos, '\n', len - *pos);
    size_t end = nl ? (size_t)(nl - s) : len;
    l->s = s + *pos;
    l->off = *pos;
    l->len = end - *pos;
    if (l->len && l->s[l->len - 1] == '\r')
        l->len--;
    *pos = nl ? end + 1 : len;
    return true;
}

int kb_split_plain(const char *s, size_t len, struct kb_doc_model *m, uint32_t page, uint32_t base_off, bool headings)
{
    size_t pos = 0;
    struct line l, prev = {0};
    bool have_prev = false;
    /* The open block: [start, end) of s, and its kind. */
    size_t start = 0, end = 0;
    bool open = false;
    enum kb_block_kind kind = KB_BLOCK_PARAGRAPH;
    int rc = 0;
#define FLUSH()                                                                                  \
    do {                                                                                         \
        if (open && !rc)                                                                         \
            rc = kb_model_add(m, kind, 0, s + start, end - start, page, base_off + (uint32_t)start); \
        open = false;                                                                            \
    } while (0)
    while (!rc && next_line(s, len, &pos, &l)) {
        if (blank_line(&l)) {
            /* A blank line ends a paragraph; inside a list it may separate loose items. */
            if (open && kind == KB_BLOCK_PARAGRAPH)
                FLUSH();
            have_prev = false;
            continue;
        }
        if (headings && have_prev && open && kind == KB_BLOCK_PARAGRAPH && prev.off == start &&
            (underline(&l, '=') || underline(&l, '-'))) {
            /* The open one-line paragraph was a heading. */
            open = false;
            rc = kb_model_add(m, KB_BLOCK_HEADING, underline(&l, '=') ? 1 : 2, prev.s, prev.len, page,
                              base_off + (uint32_t)prev.off);
            have_prev = false;
            continue;
        }
        bool item = list_item(&l);
        if (open && kind == KB_BLOCK_LIST && !item && !indented(&l) && !have_prev)
            FLUSH(); /* after a blank line, an unindented non-item line ends the list */
        if (item && open && kind != KB_BLOCK_LIST)
            FLUSH();
        if (!open) {
            open = true;
            start = l.off;
            kind = item ? KB_BLOCK_LIST : KB_BLOCK_PARAGRAPH;
        }
        end = l.off + l.len;
        prev = l;
        have_prev = true;
    }
    FLUSH();
#undef FLUSH
    return rc;
}

/* A first line standing alone, short and without a sentence's end, is the title. */
#define TITLE_MAX_BYTES 120

int kb_read_text(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err)
{
    int rc = kb_split_plain(data, len, m, 0, 0, true);
    if (rc == 0 && m->n >= 2 && m->blocks[0].kind == KB_BLOCK_PARAGRAPH && m->blocks[0].len <= TITLE_MAX_BYTES) {
        const char *t = kb_block_text(m, 0);
        char last = t[m->blocks[0].len - 1];
        if (!strchr(t, '\n') && last != '.' && last != ':' && last != ';' && last != ',')
            m->blocks[0] = (struct kb_block){KB_BLOCK_HEADING, 1, m->blocks[0].off, m->blocks[0].len, 0,
                                             m->blocks[0].src_off};
    }
    if (rc == MK_ENOMEM && err)
        mk_buf_append_str(err, "out of memory reading text");
    return rc;
}
