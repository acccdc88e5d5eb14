/*
 * kb_html: HTML -> blocks with gumbo (an HTML5 parser: it builds the same tree a
 * browser would from broken markup, so help pages saved from anywhere read sensibly).
 *
 * The walk keeps what a reader of the page sees as content: headings h1-h6, text of
 * paragraphs and containers (whitespace collapsed as a browser does), lists rendered
 * as "- item" / "1. item" lines with nested lists indented (one block, so steps stay
 * together), <pre> verbatim, tables as "cell | cell" rows, image alt text. It drops
 * what is not content: <head> (except <title>), scripts, styles, navigation, footers,
 * forms, embedded objects. Offsets are those of the source elements.
 */
#include <gumbo.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mk_error.h"
#include "kb/kb_ingest_int.h"

/* Elements nested deeper than this are not walked: the walk recurses, and a hostile
 * page must not exhaust the stack. Above the pre-scan's MAX_NESTING (below), since the
 * parser adds elements the source leaves implicit (html, body, tbody). */
#define MAX_DEPTH 1100

struct walk {
    struct kb_doc_model *m;
    mk_buf inl;            /* inline text of the paragraph being gathered */
    uint32_t inl_off;      /* its source offset */
    int rc;
};

static bool skipped(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_HEAD: case GUMBO_TAG_SCRIPT: case GUMBO_TAG_STYLE: case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE: case GUMBO_TAG_NAV: case GUMBO_TAG_FOOTER: case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_FORM: case GUMBO_TAG_BUTTON: case GUMBO_TAG_SELECT: case GUMBO_TAG_SVG:
    case GUMBO_TAG_IFRAME: case GUMBO_TAG_OBJECT: case GUMBO_TAG_EMBED: case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_AUDIO: case GUMBO_TAG_VIDEO: case GUMBO_TAG_MATH: case GUMBO_TAG_TEXTAREA:
        return true;
    default:
        return false;
    }
}

static bool is_block(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_SECTION: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_MAIN:
    case GUMBO_TAG_HEADER: case GUMBO_TAG_BODY: case GUMBO_TAG_HTML: case GUMBO_TAG_DD: case GUMBO_TAG_DT:
    case GUMBO_TAG_DL: case GUMBO_TAG_FIGURE: case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY: case GUMBO_TAG_ADDRESS: case GUMBO_TAG_CENTER: case GUMBO_TAG_HR:
    case GUMBO_TAG_LI: case GUMBO_TAG_CAPTION: case GUMBO_TAG_FIELDSET: case GUMBO_TAG_LEGEND:
        return true;
    default:
        return false;
    }
}

static int heading_level(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_H1: return 1;
    case GUMBO_TAG_H2: return 2;
    case GUMBO_TAG_H3: return 3;
    case GUMBO_TAG_H4: return 4;
    case GUMBO_TAG_H5: return 5;
    case GUMBO_TAG_H6: return 6;
    default: return 0;
    }
}

static bool ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

/* Appends text with runs of white space as one space, none at a line's start. */
static int append_collapsed(mk_buf *b, const char *s)
{
    for (; *s; s++) {
        if (ws(*s)) {
            if (b->len == 0 || b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\n')
                continue;
            if (mk_buf_append_char(b, ' '))
                return MK_ENOMEM;
        } else if (mk_buf_append_char(b, *s)) {
            return MK_ENOMEM;
        }
    }
    return 0;
}

/* Ends the current line (dropping a trailing space) unless already at one's start. */
static int newline(mk_buf *b)
{
    while (b->len && b->data[b->len - 1] == ' ')
        b->len--;
    if (b->len == 0 || b->data[b->len - 1] == '\n')
        return 0;
    return mk_buf_append_char(b, '\n');
}

static const char *attr(const GumboNode *n, const char *name)
{
    const GumboAttribute *a = gumbo_get_attribute(&n->v.element.attributes, name);
    return a ? a->value : NULL;
}

static int text_of(const GumboNode *n, mk_buf *b, int depth, int list_depth);

static int indent(mk_buf *b, int list_depth)
{
    for (int i = 0; i < list_depth; i++)
        if (mk_buf_append(b, "   ", 3))
            return MK_ENOMEM;
    return 0;
}

/* Renders a list's items, one per line, nested lists indented. */
static int list_text(const GumboNode *list, mk_buf *b, int depth, int list_depth)
{
    bool ordered = list->v.element.tag == GUMBO_TAG_OL;
    const GumboVector *ch = &list->v.element.children;
    long num = 1;
    const char *start = attr(list, "start");
    if (ordered && start) {
        char *end;
        long v = strtol(start, &end, 10);
        if (*end == '\0' && v >= 0 && v < 100000)
            num = v;
    }
    for (unsigned i = 0; i < ch->length; i++) {
        const GumboNode *li = ch->data[i];
        if (li->type != GUMBO_NODE_ELEMENT || li->v.element.tag != GUMBO_TAG_LI)
            continue;
        int rc = newline(b);
        if (!rc)
            rc = indent(b, list_depth);
        if (!rc)
            rc = ordered ? mk_buf_printf(b, "%ld. ", num++) : mk_buf_append(b, "- ", 2);
        if (!rc)
            rc = text_of(li, b, depth + 1, list_depth + 1);
        if (rc)
            return rc;
    }
    return 0;
}

/* Text of a subtree as it reads: inline text collapsed, block children on new lines,
 * nested lists rendered. */
static int text_of(const GumboNode *n, mk_buf *b, int depth, int list_depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE || n->type == GUMBO_NODE_CDATA)
        return append_collapsed(b, n->v.text.text);
    if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_TEMPLATE)
        return 0;
    GumboTag t = n->v.element.tag;
    if (skipped(t))
        return 0;
    if (t == GUMBO_TAG_BR)
        return newline(b);
    if (t == GUMBO_TAG_IMG) {
        const char *alt = attr(n, "alt");
        return alt ? append_collapsed(b, alt) : 0;
    }
    if (t == GUMBO_TAG_UL || t == GUMBO_TAG_OL)
        return list_text(n, b, depth, list_depth);
    bool block = is_block(t) || heading_level(t) || t == GUMBO_TAG_TR || t == GUMBO_TAG_PRE;
    int rc = 0;
    if (block && t != GUMBO_TAG_LI && b->len && b->data[b->len - 1] != ' ' && b->data[b->len - 1] != '\n')
        rc = mk_buf_append_char(b, ' ');
    const GumboVector *ch = &n->v.element.children;
    for (unsigned i = 0; i < ch->length && !rc; i++) {
        const GumboNode *c = ch->data[i];
        if ((t == GUMBO_TAG_TR) && i > 0 && c->type == GUMBO_NODE_ELEMENT)
            rc = mk_buf_append(b, " | ", 3);
        if (!rc)
            rc = text_of(c, b, depth + 1, list_depth);
    }
    return rc;
}

static int flush(struct walk *w)
{
    if (w->inl.len)
        w->rc = kb_model_add(w->m, KB_BLOCK_PARAGRAPH, 0, w->inl.data, w->inl.len, 0, w->inl_off);
    mk_buf_reset(&w->inl);
    return w->rc;
}

static uint32_t offset_of(const GumboNode *n)
{
    if (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE)
        return n->v.element.start_pos.offset;
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE || n->type == GUMBO_NODE_CDATA)
        return n->v.text.start_pos.offset;
    return 0;
}

/* Verbatim text of a <pre>: no collapsing. */
static int raw_text(const GumboNode *n, mk_buf *b, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE || n->type == GUMBO_NODE_CDATA)
        return mk_buf_append_str(b, n->v.text.text);
    if (n->type != GUMBO_NODE_ELEMENT)
        return 0;
    if (n->v.element.tag == GUMBO_TAG_BR)
        return mk_buf_append_char(b, '\n');
    const GumboVector *ch = &n->v.element.children;
    for (unsigned i = 0; i < ch->length; i++)
        if (raw_text(ch->data[i], b, depth + 1))
            return MK_ENOMEM;
    return 0;
}

static int table_rows(const GumboNode *n, mk_buf *b, int depth)
{
    if (depth > MAX_DEPTH || n->type != GUMBO_NODE_ELEMENT)
        return 0;
    if (n->v.element.tag == GUMBO_TAG_TR) {
        int rc = newline(b);
        return rc ? rc : text_of(n, b, depth, 0);
    }
    const GumboVector *ch = &n->v.element.children;
    for (unsigned i = 0; i < ch->length; i++) {
        int rc = table_rows(ch->data[i], b, depth + 1);
        if (rc)
            return rc;
    }
    return 0;
}

static void walk(struct walk *w, const GumboNode *n, int depth)
{
    if (w->rc || depth > MAX_DEPTH)
        return;
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_CDATA ||
        (n->type == GUMBO_NODE_WHITESPACE && w->inl.len)) {
        if (w->inl.len == 0)
            w->inl_off = offset_of(n);
        w->rc = append_collapsed(&w->inl, n->v.text.text);
        return;
    }
    if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_TEMPLATE)
        return;
    GumboTag t = n->v.element.tag;
    if (skipped(t))
        return;
    int level = heading_level(t);
    mk_buf b = MK_BUF_INIT;
    if (level || t == GUMBO_TAG_UL || t == GUMBO_TAG_OL || t == GUMBO_TAG_PRE || t == GUMBO_TAG_TABLE ||
        t == GUMBO_TAG_BLOCKQUOTE) {
        if (flush(w))
            return;
        enum kb_block_kind kind = KB_BLOCK_PARAGRAPH;
        if (level) {
            kind = KB_BLOCK_HEADING;
            w->rc = text_of(n, &b, depth, 0);
        } else if (t == GUMBO_TAG_PRE) {
            kind = KB_BLOCK_CODE;
            w->rc = raw_text(n, &b, depth);
        } else if (t == GUMBO_TAG_TABLE) {
            kind = KB_BLOCK_TABLE;
            w->rc = table_rows(n, &b, depth);
        } else if (t == GUMBO_TAG_BLOCKQUOTE) {
            kind = KB_BLOCK_QUOTE;
            w->rc = text_of(n, &b, depth, 0);
        } else {
            kind = KB_BLOCK_LIST;
            w->rc = list_text(n, &b, depth, 0);
        }
        if (!w->rc && b.len)
            w->rc = kb_model_add(w->m, kind, level, b.data, b.len, 0, offset_of(n));
        mk_buf_release(&b);
        return;
    }
    if (t == GUMBO_TAG_BR) {
        if (w->inl.len)
            w->rc = newline(&w->inl);
        return;
    }
    if (t == GUMBO_TAG_IMG) {
        const char *alt = attr(n, "alt");
        if (alt && *alt) {
            if (w->inl.len == 0)
                w->inl_off = offset_of(n);
            w->rc = append_collapsed(&w->inl, alt);
        }
        return;
    }
    bool block = is_block(t);
    if (block && flush(w))
        return;
    const GumboVector *ch = &n->v.element.children;
    for (unsigned i = 0; i < ch->length && !w->rc; i++)
        walk(w, ch->data[i], depth + 1);
    if (block)
        flush(w);
}

/* <title> inside <head>. */
static void find_title(const GumboNode *n, mk_buf *out, int depth)
{
    if (out->len || depth > 4 || n->type != GUMBO_NODE_ELEMENT)
        return;
    if (n->v.element.tag == GUMBO_TAG_TITLE) {
        text_of(n, out, depth, 0);
        while (out->len && out->data[out->len - 1] == ' ')
            out->data[--out->len] = '\0';
        return;
    }
    const GumboVector *ch = &n->v.element.children;
    for (unsigned i = 0; i < ch->length; i++)
        find_title(ch->data[i], out, depth + 1);
}

/* Elements a page may nest before it is refused. gumbo's tree construction is
 * quadratic in the depth of open elements (200 000 nested <div>s: minutes; nested
 * lists: gigabytes), and no real page nests past a few dozen. */
#define MAX_NESTING 1000

static bool tag_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* Elements counted by the pre-scan are those that stay open until closed: void
 * elements never open, and these close themselves when a sibling starts. */
static bool uncounted(const char *name, size_t n)
{
    static const char *const names[] = {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
        "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "colgroup",
        "rb", "rt", "rp", "param", "keygen",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
            return true;
    return false;
}

/* A rough upper bound of the page's element nesting from its tags alone (comments,
 * scripts and attributes are not understood; they only make the estimate higher or
 * lower by a little, never by thousands for a real page). */
static size_t nesting_estimate(const char *s, size_t len)
{
    size_t depth = 0, max = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '<')
            continue;
        bool close = s[i + 1] == '/';
        size_t b = i + 1 + close, e = b;
        while (e < len && tag_char(s[e]))
            e++;
        if (e == b || uncounted(s + b, e - b))
            continue;
        /* "<x/>" closes itself. */
        const char *gt = memchr(s + e, '>', len - e);
        if (gt && gt > s + e && gt[-1] == '/')
            continue;
        if (close)
            depth -= depth > 0;
        else if (++depth > max)
            max = depth;
    }
    return max;
}

int kb_read_html(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err)
{
    if (nesting_estimate(data, len) > MAX_NESTING) {
        if (err)
            mk_buf_printf(err, "HTML nested deeper than %d elements", MAX_NESTING);
        return MK_ETOOBIG;
    }
    GumboOutput *out = gumbo_parse_with_options(&kGumboDefaultOptions, data, len);
    if (!out) {
        if (err)
            mk_buf_append_str(err, "the HTML parser failed");
        return MK_ENOMEM;
    }
    find_title(out->root, &m->title, 0);
    m->title_weak = true;
    struct walk w = {.m = m};
    mk_buf_init(&w.inl, 0);
    walk(&w, out->root, 0);
    if (!w.rc)
        flush(&w);
    mk_buf_release(&w.inl);
    gumbo_destroy_output(&kGumboDefaultOptions, out);
    if (w.rc == MK_ENOMEM && err)
        mk_buf_append_str(err, "out of memory reading HTML");
    return w.rc;
}
