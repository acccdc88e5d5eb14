/*
 * kb_markdown: Markdown -> blocks with cmark-gfm (CommonMark plus GitHub's tables,
 * strikethrough, autolinks and task lists).
 *
 * cmark parses; the block's text is then taken from the source by the line range
 * cmark reports, not re-rendered, so a chunk quotes the author's Markdown exactly
 * (numbering, emphasis, links) and offsets point into the file. Headings are the one
 * exception: their inline text is collected, without the "##". A YAML front matter
 * block ("---" ... "---") is skipped, and its `title:` becomes the title. Raw HTML
 * blocks and thematic breaks carry no answer text and are dropped.
 */
#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm-extension_api.h>
#include <cmark-gfm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "kb/kb_ingest_int.h"

/* Front matter is metadata, a few lines; a "---" further down is a thematic break. */
#define FRONT_MATTER_MAX 8192

static pthread_once_t ext_once = PTHREAD_ONCE_INIT;
static void register_extensions(void) { cmark_gfm_core_extensions_ensure_registered(); }

/* Skips a front matter block; its title (unquoted) goes to m->title. Returns the
 * bytes to skip. */
static size_t front_matter(const char *s, size_t len, struct kb_doc_model *m)
{
    if (len < 4 || memcmp(s, "---", 3) != 0 || (s[3] != '\n' && s[3] != '\r'))
        return 0;
    size_t lim = len < FRONT_MATTER_MAX ? len : FRONT_MATTER_MAX;
    size_t pos = s[3] == '\r' && lim > 4 && s[4] == '\n' ? 5 : 4;
    while (pos < lim) {
        const char *nl = memchr(s + pos, '\n', lim - pos);
        size_t end = nl ? (size_t)(nl - s) : lim;
        size_t l = end - pos;
        if (l > 0 && s[pos + l - 1] == '\r')
            l--;
        if ((l == 3 && (memcmp(s + pos, "---", 3) == 0 || memcmp(s + pos, "...", 3) == 0)))
            return nl ? end + 1 : end;
        if (l > 6 && memcmp(s + pos, "title:", 6) == 0 && m->title.len == 0) {
            const char *v = s + pos + 6;
            size_t vl = l - 6;
            while (vl && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
                v++;
                vl -= 2;
            }
            mk_buf_append(&m->title, v, vl);
        }
        if (!nl)
            break;
        pos = end + 1;
    }
    mk_buf_reset(&m->title); /* no closing line: it was not front matter */
    return 0;
}

/* Byte offsets of line starts (line 1 at index 0), plus len at the end. */
static size_t *line_starts(const char *s, size_t len, size_t *nlines)
{
    size_t n = 1;
    for (const char *p = s; (p = memchr(p, '\n', (size_t)(s + len - p))) != NULL; p++)
        n++;
    size_t *ls = malloc((n + 1) * sizeof *ls);
    if (!ls)
        return NULL;
    size_t k = 0;
    ls[k++] = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            ls[k++] = i + 1;
    ls[k] = len;
    *nlines = n;
    return ls;
}

/* Inline text of a heading: text and code literals, breaks as spaces. */
static int heading_text(cmark_node *h, mk_buf *out)
{
    cmark_iter *it = cmark_iter_new(h);
    if (!it)
        return MK_ENOMEM;
    int rc = 0;
    cmark_event_type ev;
    while (!rc && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        if (ev != CMARK_EVENT_ENTER)
            continue;
        cmark_node *n = cmark_iter_get_node(it);
        cmark_node_type t = cmark_node_get_type(n);
        if (t == CMARK_NODE_TEXT || t == CMARK_NODE_CODE) {
            const char *lit = cmark_node_get_literal(n);
            if (lit)
                rc = mk_buf_append_str(out, lit);
        } else if (t == CMARK_NODE_SOFTBREAK || t == CMARK_NODE_LINEBREAK) {
            rc = mk_buf_append_char(out, ' ');
        }
    }
    cmark_iter_free(it);
    return rc;
}

int kb_read_markdown(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err)
{
    pthread_once(&ext_once, register_extensions);
    size_t skip = front_matter(data, len, m);
    const char *s = data + skip;
    size_t slen = len - skip;

    cmark_parser *p = cmark_parser_new(CMARK_OPT_DEFAULT | CMARK_OPT_FOOTNOTES);
    if (!p)
        return MK_ENOMEM;
    static const char *const ext_names[] = {"table", "strikethrough", "autolink", "tasklist"};
    for (size_t i = 0; i < sizeof ext_names / sizeof ext_names[0]; i++) {
        cmark_syntax_extension *e = cmark_find_syntax_extension(ext_names[i]);
        if (e)
            cmark_parser_attach_syntax_extension(p, e);
    }
    cmark_parser_feed(p, s, slen);
    cmark_node *doc = cmark_parser_finish(p);
    size_t nlines = 0;
    size_t *ls = doc ? line_starts(s, slen, &nlines) : NULL;
    int rc = doc && ls ? 0 : MK_ENOMEM;
    mk_buf h = MK_BUF_INIT;
    for (cmark_node *n = doc ? cmark_node_first_child(doc) : NULL; n && !rc; n = cmark_node_next(n)) {
        cmark_node_type t = cmark_node_get_type(n);
        if (t == CMARK_NODE_HTML_BLOCK || t == CMARK_NODE_THEMATIC_BREAK)
            continue;
        int sl = cmark_node_get_start_line(n), el = cmark_node_get_end_line(n);
        if (sl < 1 || el < sl || (size_t)el > nlines)
            continue; /* no usable source position: nothing we could quote */
        size_t from = ls[sl - 1], to = ls[el]; /* whole lines */
        if (t == CMARK_NODE_HEADING) {
            mk_buf_reset(&h);
            rc = heading_text(n, &h);
            if (!rc)
                rc = kb_model_add(m, KB_BLOCK_HEADING, cmark_node_get_heading_level(n), h.data ? h.data : "", h.len, 0,
                                  (uint32_t)(skip + from));
            continue;
        }
        enum kb_block_kind kind = KB_BLOCK_PARAGRAPH;
        if (t == CMARK_NODE_LIST)
            kind = KB_BLOCK_LIST;
        else if (t == CMARK_NODE_CODE_BLOCK)
            kind = KB_BLOCK_CODE;
        else if (t == CMARK_NODE_BLOCK_QUOTE)
            kind = KB_BLOCK_QUOTE;
        else if (strcmp(cmark_node_get_type_string(n), "table") == 0)
            kind = KB_BLOCK_TABLE;
        rc = kb_model_add(m, kind, 0, s + from, to - from, 0, (uint32_t)(skip + from));
    }
    if (rc == MK_ENOMEM && err)
        mk_buf_append_str(err, "out of memory reading Markdown");
    mk_buf_release(&h);
    free(ls);
    if (doc)
        cmark_node_free(doc);
    cmark_parser_free(p);
    return rc;
}
