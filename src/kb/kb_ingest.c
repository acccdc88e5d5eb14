/*
 * kb_ingest: the structural chunker shared by every format, and mk_kb_parse().
 *
 * Readers hand over a document as blocks (kb_ingest_int.h); this file packs them into
 * chunks following the rules in mk_kb_ingest.h. Why these rules: a support answer is
 * usually one task — a heading and the steps under it — so a chunk should be exactly
 * that, and a list of steps cut in two would answer half a question. Overlap repeats
 * only inside one section: across a heading the context changes anyway.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"
#include "kb/kb_ingest_int.h"

/* Headings up to this level start a chunk; deeper ones (####) are text inside it. */
#define SECTION_MAX_LEVEL 3
/* Below this many bytes a chunk's own language is not trusted: it inherits the
 * document's (a code line or a product name is not a language switch). */
#define LANG_MIN_BYTES 80
/* Bytes of text language detection reads for the whole document. */
#define DOC_LANG_BYTES (256 * 1024)
/* Separator between " / "-joined heading levels of a section path. */
#define PATH_SEP " / "

/* --- the block model ---------------------------------------------------------------- */

void kb_model_init(struct kb_doc_model *m)
{
    memset(m, 0, sizeof *m);
    mk_buf_init(&m->text, 0);
    mk_buf_init(&m->title, 0);
}

void kb_model_release(struct kb_doc_model *m)
{
    if (!m)
        return;
    mk_buf_release(&m->text);
    mk_buf_release(&m->title);
    free(m->blocks);
    memset(m, 0, sizeof *m);
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

int kb_model_add(struct kb_doc_model *m, enum kb_block_kind kind, int level, const char *s, size_t len,
                 uint32_t page, uint32_t src_off)
{
    /* Leading blank lines go, the first line's indentation stays (code, nested lists). */
    size_t start = 0, i = 0;
    while (i < len && is_blank(s[i])) {
        if (s[i] == '\n')
            start = i + 1;
        i++;
    }
    if (i == len)
        return 0;
    if (kind == KB_BLOCK_HEADING || kind == KB_BLOCK_PARAGRAPH)
        start = i;
    while (len > start && is_blank(s[len - 1]))
        len--;
    if (m->text.len + (len - start) + 1 > MK_KB_MAX_DOC_BYTES)
        return MK_ETOOBIG;
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 32;
        struct kb_block *b = realloc(m->blocks, nc * sizeof *b);
        if (!b)
            return MK_ENOMEM;
        m->blocks = b;
        m->cap = nc;
    }
    size_t off = m->text.len;
    if (mk_buf_append(&m->text, s + start, len - start) || mk_buf_append_char(&m->text, '\0'))
        return MK_ENOMEM;
    m->blocks[m->n++] = (struct kb_block){kind, level, off, len - start, page, src_off + (uint32_t)start};
    return 0;
}

/* --- names ----------------------------------------------------------------------------- */

static const struct {
    const char *ext;
    enum mk_kb_format f;
} exts[] = {
    {"md", MK_KB_FORMAT_MARKDOWN}, {"markdown", MK_KB_FORMAT_MARKDOWN}, {"mdown", MK_KB_FORMAT_MARKDOWN},
    {"mkd", MK_KB_FORMAT_MARKDOWN}, {"html", MK_KB_FORMAT_HTML}, {"htm", MK_KB_FORMAT_HTML},
    {"xhtml", MK_KB_FORMAT_HTML}, {"txt", MK_KB_FORMAT_TEXT}, {"text", MK_KB_FORMAT_TEXT},
    {"pdf", MK_KB_FORMAT_PDF},
};

enum mk_kb_format mk_kb_format_from_name(const char *name)
{
    if (!name)
        return MK_KB_FORMAT_UNKNOWN;
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return MK_KB_FORMAT_UNKNOWN;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i].ext) == 0)
            return exts[i].f;
    return MK_KB_FORMAT_UNKNOWN;
}

const char *mk_kb_format_name(enum mk_kb_format f)
{
    switch (f) {
    case MK_KB_FORMAT_MARKDOWN: return "markdown";
    case MK_KB_FORMAT_HTML: return "html";
    case MK_KB_FORMAT_TEXT: return "text";
    case MK_KB_FORMAT_PDF: return "pdf";
    default: return "unknown";
    }
}

enum mk_kb_format mk_kb_format_parse(const char *name)
{
    if (!name)
        return MK_KB_FORMAT_UNKNOWN;
    for (int f = MK_KB_FORMAT_MARKDOWN; f <= MK_KB_FORMAT_PDF; f++)
        if (strcasecmp(name, mk_kb_format_name((enum mk_kb_format)f)) == 0)
            return (enum mk_kb_format)f;
    if (strcasecmp(name, "md") == 0)
        return MK_KB_FORMAT_MARKDOWN;
    return MK_KB_FORMAT_UNKNOWN;
}

/* Latin spelling of Russian and Kazakh letters for ids (lowercase; capitals fold to
 * these first), so a Russian knowledge base named in Russian still gets readable ids. */
static const struct {
    uint32_t cp;
    const char *lat;
} translit[] = {
    {0x430, "a"}, {0x431, "b"}, {0x432, "v"}, {0x433, "g"}, {0x434, "d"}, {0x435, "e"}, {0x451, "e"},
    {0x436, "zh"}, {0x437, "z"}, {0x438, "i"}, {0x439, "y"}, {0x43A, "k"}, {0x43B, "l"}, {0x43C, "m"},
    {0x43D, "n"}, {0x43E, "o"}, {0x43F, "p"}, {0x440, "r"}, {0x441, "s"}, {0x442, "t"}, {0x443, "u"},
    {0x444, "f"}, {0x445, "kh"}, {0x446, "ts"}, {0x447, "ch"}, {0x448, "sh"}, {0x449, "shch"}, {0x44A, ""},
    {0x44B, "y"}, {0x44C, ""}, {0x44D, "e"}, {0x44E, "yu"}, {0x44F, "ya"},
    {0x4D9, "a"}, {0x493, "g"}, {0x49B, "q"}, {0x4A3, "ng"}, {0x4E9, "o"}, {0x4B1, "u"}, {0x4AF, "u"},
    {0x4BB, "h"}, {0x456, "i"},
};

static const char *latin_of(uint32_t cp)
{
    if (cp >= 0x410 && cp <= 0x42F)
        cp += 0x20; /* А-Я -> а-я */
    else if (cp >= 0x400 && cp <= 0x40F)
        cp += 0x50; /* Ѐ-Џ -> ѐ-џ */
    else if (cp >= 0x460 && cp <= 0x4FF && !(cp & 1))
        cp += 1; /* the extended block pairs capital, small */
    for (size_t i = 0; i < sizeof translit / sizeof translit[0]; i++)
        if (translit[i].cp == cp)
            return translit[i].lat;
    return NULL;
}

int mk_kb_id_from_path(const char *path, char *out, size_t cap)
{
    if (!path || !out || cap < 2)
        return MK_EINVAL;
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    size_t b = plen;
    while (b > 0 && path[b - 1] != '/')
        b--;
    const char *base = path + b;
    size_t blen = plen - b;
    const char *dot = NULL;
    for (size_t i = blen; i > 0; i--)
        if (base[i - 1] == '.') {
            dot = base + i - 1;
            break;
        }
    if (dot == base)
        return MK_EINVAL; /* ".md": an extension without a name */
    if (dot)
        blen = (size_t)(dot - base);
    size_t n = 0, lim = cap - 1 < MK_MAX_NAME_BYTES ? cap - 1 : MK_MAX_NAME_BYTES;
    for (size_t i = 0; i < blen && n < lim;) {
        unsigned char c = (unsigned char)base[i];
        const char *rep = NULL;
        char one[2] = {0, 0};
        if (c < 0x80) {
            one[0] = isalnum(c) || c == '.' || c == '_' || c == '-' ? (char)c : '-';
            rep = one;
            i++;
        } else {
            size_t k = mk_utf8_valid_prefix(base + i, blen - i);
            int32_t cp = -1;
            size_t len = 1;
            if (k) {
                unsigned char b0 = c;
                len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
                if (len == 2)
                    cp = ((b0 & 0x1F) << 6) | (base[i + 1] & 0x3F);
            }
            rep = cp >= 0 ? latin_of((uint32_t)cp) : NULL;
            if (!rep)
                rep = "-";
            i += len;
        }
        for (const char *r = rep; *r && n < lim; r++) {
            if (*r == '-' && n > 0 && out[n - 1] == '-')
                continue; /* one '-' for a run of anything unusable */
            out[n++] = *r;
        }
    }
    out[n] = '\0';
    bool usable = false;
    for (size_t i = 0; i < n; i++)
        usable |= out[i] != '-' && out[i] != '.';
    return usable ? 0 : MK_EINVAL;
}

/* --- the chunker -------------------------------------------------------------------------- */

struct chunker {
    const struct kb_doc_model *m;
    struct mk_kb_parsed *out;
    size_t cap;
    const char *doc_lang;
    const char *heads[7];     /* heading path by level (into the model's text) */
    bool title_taken;         /* the first level-1 heading was taken as the title */
    bool in_section;          /* a section heading has been seen */
    const char *title;
    mk_buf section;
    mk_buf cur;               /* the chunk being filled */
    bool cur_content;         /* it holds more than the overlap */
    uint32_t cur_page, cur_off;
};

static int emit(struct chunker *ch, bool overlap);

static const char *chunk_lang(const char *text, size_t len, const char *doc_lang)
{
    if (len < LANG_MIN_BYTES)
        return doc_lang;
    const char *l = mk_kb_detect_language(text, len);
    return strcmp(l, "und") == 0 ? doc_lang : l;
}

/* The last at most max bytes of s, starting after a sentence end, else after a
 * space, else at a character boundary. Returns the offset where the tail starts. */
static size_t tail_start(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return 0;
    size_t lo = len - max;
    for (size_t i = lo; i + 1 < len; i++)
        if ((s[i] == '.' || s[i] == '!' || s[i] == '?' || s[i] == '\n') && is_blank(s[i + 1]) && i + 2 < len)
            return i + 2;
    for (size_t i = lo; i < len; i++)
        if (s[i] == ' ')
            return i + 1;
    size_t i = lo;
    while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

static int emit(struct chunker *ch, bool overlap)
{
    if (!ch->cur_content) {
        mk_buf_reset(&ch->cur);
        return 0;
    }
    struct mk_kb_parsed *p = ch->out;
    if (p->n == ch->cap) {
        size_t nc = ch->cap ? ch->cap * 2 : 16;
        struct mk_kb_parsed_chunk *c = realloc(p->chunks, nc * sizeof *c);
        if (!c)
            return MK_ENOMEM;
        p->chunks = c;
        ch->cap = nc;
    }
    if (p->n >= MK_KB_MAX_DOC_CHUNKS)
        return MK_ETOOBIG;
    struct mk_kb_parsed_chunk *c = &p->chunks[p->n];
    memset(c, 0, sizeof *c);
    c->section = strdup(ch->section.data ? ch->section.data : "");
    c->text = malloc(ch->cur.len + 1);
    if (!c->section || !c->text) {
        free(c->section);
        free(c->text);
        return MK_ENOMEM;
    }
    memcpy(c->text, ch->cur.data, ch->cur.len);
    c->text[ch->cur.len] = '\0';
    c->text_len = ch->cur.len;
    snprintf(c->lang, sizeof c->lang, "%s", chunk_lang(c->text, c->text_len, ch->doc_lang));
    c->page = ch->cur_page;
    c->offset = ch->cur_off;
    p->n++;

    ch->cur_content = false;
    if (!overlap) {
        mk_buf_reset(&ch->cur);
        return 0;
    }
    size_t t = tail_start(ch->cur.data, ch->cur.len, MK_KB_CHUNK_OVERLAP);
    mk_buf_consume(&ch->cur, t);
    return 0;
}

static bool item_start(const char *s, size_t len)
{
    if (len >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ')
        return true;
    size_t i = 0;
    while (i < len && i < 9 && s[i] >= '0' && s[i] <= '9')
        i++;
    return i > 0 && i + 1 < len && (s[i] == '.' || s[i] == ')') && s[i + 1] == ' ';
}

/* Where to cut a block longer than max: at a list item, a paragraph, a line, a
 * sentence, a space, a character — the first kind found in the upper three quarters.
 * Returns the length of the first piece (> 0). */
static size_t cut_block(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t lo = max / 4;
    for (size_t i = max; i > lo; i--)
        if (s[i - 1] == '\n' && item_start(s + i, len - i))
            return i;
    for (size_t i = max; i > lo + 1; i--)
        if (s[i - 1] == '\n' && s[i - 2] == '\n')
            return i;
    for (size_t i = max; i > lo; i--)
        if (s[i - 1] == '\n')
            return i;
    for (size_t i = max; i > lo + 1; i--)
        if (s[i - 1] == ' ' && (s[i - 2] == '.' || s[i - 2] == '!' || s[i - 2] == '?'))
            return i;
    for (size_t i = max; i > lo; i--)
        if (s[i - 1] == ' ')
            return i;
    size_t n = mk_utf8_complete_prefix(s, max);
    return n > 0 ? n : max;
}

static int add_text(struct chunker *ch, const char *s, size_t len, uint32_t page, uint32_t src_off)
{
    if (page != ch->cur_page && ch->cur_content) {
        int rc = emit(ch, false); /* a chunk never spans pages */
        if (rc)
            return rc;
    }
    if (page != ch->cur_page)
        mk_buf_reset(&ch->cur);
    while (len > 0) {
        size_t sep = ch->cur.len ? 2 : 0;
        if (ch->cur_content && ch->cur.len + sep + len > MK_KB_CHUNK_TARGET) {
            int rc = emit(ch, true);
            if (rc)
                return rc;
            sep = ch->cur.len ? 2 : 0;
        }
        if (ch->cur.len + sep + len > MK_KB_MAX_CHUNK_BYTES && !ch->cur_content) {
            mk_buf_reset(&ch->cur); /* no room for the overlap beside a long block */
            sep = 0;
        }
        size_t room = MK_KB_MAX_CHUNK_BYTES - ch->cur.len - sep;
        size_t piece = cut_block(s, len, room);
        if (!ch->cur_content) {
            ch->cur_page = page;
            ch->cur_off = src_off;
        }
        if ((sep && mk_buf_append(&ch->cur, "\n\n", 2)) || mk_buf_append(&ch->cur, s, piece))
            return MK_ENOMEM;
        ch->cur_content = true;
        /* Trim what follows the cut so the next piece starts at text. */
        s += piece;
        len -= piece;
        src_off += (uint32_t)piece;
        while (len > 0 && is_blank(*s)) {
            s++;
            len--;
            src_off++;
        }
        if (len > 0) {
            int rc = emit(ch, true);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int set_section(struct chunker *ch, int level, const char *text)
{
    for (int l = level; l <= 6; l++)
        ch->heads[l] = NULL;
    ch->heads[level] = text;
    mk_buf_reset(&ch->section);
    for (int l = 1; l <= level; l++) {
        if (!ch->heads[l])
            continue;
        if (ch->section.len && mk_buf_append_str(&ch->section, PATH_SEP))
            return MK_ENOMEM;
        if (mk_buf_append_str(&ch->section, ch->heads[l]))
            return MK_ENOMEM;
    }
    return mk_buf_append(&ch->section, "", 0);
}

static int chunk_model(struct chunker *ch)
{
    const struct kb_doc_model *m = ch->m;
    for (size_t i = 0; i < m->n; i++) {
        const struct kb_block *b = &m->blocks[i];
        const char *t = kb_block_text(m, i);
        int rc = 0;
        /* The first level-1 heading before any section is the page's title: it names
         * the document (unless metadata named it better) and is never a section. */
        if (b->kind == KB_BLOCK_HEADING && b->level == 1 && !ch->title_taken && !ch->in_section) {
            if (!ch->title || m->title_weak)
                ch->title = t;
            ch->title_taken = true;
            continue;
        }
        if (b->kind == KB_BLOCK_HEADING && b->level <= SECTION_MAX_LEVEL)
            ch->in_section = true;
        if (b->kind == KB_BLOCK_HEADING && b->level <= SECTION_MAX_LEVEL) {
            if ((rc = emit(ch, false)) != 0 || (rc = set_section(ch, b->level, t)) != 0)
                return rc;
            continue;
        }
        rc = add_text(ch, t, b->len, b->page, b->src_off);
        if (rc)
            return rc;
    }
    return emit(ch, false);
}

/* --- parse ---------------------------------------------------------------------------------- */

void mk_kb_parsed_release(struct mk_kb_parsed *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->chunks[i].section);
        free(p->chunks[i].text);
    }
    free(p->chunks);
    free(p->title);
    memset(p, 0, sizeof *p);
}

static bool valid_lang_override(const char *l)
{
    size_t n = strlen(l);
    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (l[i] < 'a' || l[i] > 'z')
            return false;
    return true;
}

/* Language of the whole document from its blocks' text (the first DOC_LANG_BYTES). */
static const char *model_lang(const struct kb_doc_model *m)
{
    size_t n = m->text.len < DOC_LANG_BYTES ? m->text.len : DOC_LANG_BYTES;
    const char *l = mk_kb_detect_language(m->text.data ? m->text.data : "", n);
    return strcmp(l, "und") == 0 ? "en" : l;
}

int mk_kb_parse(enum mk_kb_format f, const char *data, size_t len, const char *fallback_title, const char *lang,
                struct mk_kb_parsed *out, mk_buf *err)
{
    if (!out)
        return MK_EINVAL;
    memset(out, 0, sizeof *out);
    if ((!data && len) || f <= MK_KB_FORMAT_UNKNOWN || f > MK_KB_FORMAT_PDF) {
        if (err)
            mk_buf_append_str(err, "unknown document format");
        return MK_EINVAL;
    }
    if (lang && !valid_lang_override(lang)) {
        if (err)
            mk_buf_append_str(err, "language must be 2-3 lowercase letters");
        return MK_EINVAL;
    }
    if (len > MK_KB_MAX_FILE_BYTES) {
        if (err)
            mk_buf_printf(err, "file larger than %u bytes", MK_KB_MAX_FILE_BYTES);
        return MK_ETOOBIG;
    }
    if (!data)
        data = "";
    if (f != MK_KB_FORMAT_PDF) {
        if (len > MK_KB_MAX_DOC_BYTES) {
            if (err)
                mk_buf_printf(err, "document larger than %d bytes", MK_KB_MAX_DOC_BYTES);
            return MK_ETOOBIG;
        }
        if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 byte order mark */
            data += 3;
            len -= 3;
        }
        if (!mk_utf8_valid(data, len) || memchr(data, '\0', len)) {
            if (err)
                mk_buf_append_str(err, "not valid UTF-8 text (convert it to UTF-8 first)");
            return MK_EBADUTF8;
        }
    }
    struct kb_doc_model m;
    kb_model_init(&m);
    int rc;
    switch (f) {
    case MK_KB_FORMAT_MARKDOWN: rc = kb_read_markdown(data, len, &m, err); break;
    case MK_KB_FORMAT_HTML: rc = kb_read_html(data, len, &m, err); break;
    case MK_KB_FORMAT_TEXT: rc = kb_read_text(data, len, &m, err); break;
    default: rc = kb_read_pdf(data, len, &m, err); break;
    }
    if (rc == MK_ETOOBIG && err && err->len == 0)
        mk_buf_printf(err, "extracted text larger than %d bytes", MK_KB_MAX_DOC_BYTES);
    struct chunker ch = {.m = &m, .out = out};
    mk_buf_init(&ch.section, 0);
    mk_buf_init(&ch.cur, 0);
    if (rc == 0) {
        snprintf(out->lang, sizeof out->lang, "%s", lang ? lang : model_lang(&m));
        ch.doc_lang = out->lang;
        if (m.title.len)
            ch.title = m.title.data;
        rc = set_section(&ch, 1, NULL);
        if (!rc)
            rc = chunk_model(&ch);
        if (rc == MK_ETOOBIG && err && err->len == 0)
            mk_buf_printf(err, "more than %d chunks", MK_KB_MAX_DOC_CHUNKS);
    }
    if (rc == 0) {
        const char *title = ch.title && ch.title[0] ? ch.title : fallback_title ? fallback_title : "untitled";
        /* A title must be one line of valid text: metadata may hold anything. */
        size_t tl = strnlen(title, 1024);
        tl = mk_utf8_complete_prefix(title, tl);
        out->title = malloc(tl + 1);
        if (!out->title) {
            rc = MK_ENOMEM;
        } else {
            for (size_t i = 0; i < tl; i++)
                out->title[i] = title[i] == '\n' || title[i] == '\r' || title[i] == '\t' ? ' ' : title[i];
            out->title[tl] = '\0';
            if (!mk_utf8_valid(out->title, tl))
                snprintf(out->title, tl + 1, "%s", tl >= 8 ? "untitled" : "");
        }
        out->format = f;
        out->text_bytes = m.text.len;
        out->pages = m.pages;
    }
    mk_buf_release(&ch.section);
    mk_buf_release(&ch.cur);
    kb_model_release(&m);
    if (rc)
        mk_kb_parsed_release(out);
    return rc;
}
