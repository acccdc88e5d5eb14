/*
 * kb_pdf: PDF -> blocks with poppler-glib, text page by page.
 *
 * A PDF has no reliable structure (headings are just bigger glyphs), so each page's
 * text (poppler's reading order) is split like plain text, and every block carries its
 * page number: the chunker never lets a chunk span two pages, so a citation can say
 * "page 12" exactly. The title is the document's metadata title when it has one.
 * Encrypted or unreadable files are refused with a clear error; the bytes are never
 * written anywhere.
 */
#include <poppler.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "kb/kb_ingest_int.h"

/* Replaces bytes that are not valid UTF-8 with spaces, in place. */
static void sanitize(char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = mk_utf8_valid_prefix(s + i, len - i);
        if (n == 0)
            s[i++] = ' ';
        else
            i += n;
    }
}

int kb_read_pdf(const char *data, size_t len, struct kb_doc_model *m, mk_buf *err)
{
    if (len < 5 || memcmp(data, "%PDF", 4) != 0) {
        if (err)
            mk_buf_append_str(err, "not a PDF file (no %PDF header)");
        return MK_ECORRUPT;
    }
    GBytes *bytes = g_bytes_new_static(data, len);
    GError *gerr = NULL;
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    if (!doc) {
        bool enc = gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED;
        if (err)
            mk_buf_printf(err, "cannot read the PDF: %s", enc ? "it is encrypted" : gerr ? gerr->message : "unknown error");
        if (gerr)
            g_error_free(gerr);
        g_bytes_unref(bytes);
        return MK_ECORRUPT;
    }
    gchar *title = poppler_document_get_title(doc);
    if (title) {
        size_t tl = strlen(title);
        sanitize(title, tl);
        mk_buf_append(&m->title, title, tl);
        g_free(title);
    }
    int n = poppler_document_get_n_pages(doc);
    if (n > MK_KB_MAX_PDF_PAGES)
        n = MK_KB_MAX_PDF_PAGES;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page)
            continue;
        char *text = poppler_page_get_text(page);
        if (text) {
            size_t tl = strlen(text);
            sanitize(text, tl);
            rc = kb_split_plain(text, tl, m, (uint32_t)i + 1, 0, false);
            g_free(text);
        }
        g_object_unref(page);
        m->pages = (uint32_t)i + 1;
    }
    g_object_unref(doc);
    g_bytes_unref(bytes);
    if (rc == MK_ENOMEM && err)
        mk_buf_append_str(err, "out of memory reading the PDF");
    return rc;
}
