/* Tests for ingestion and the knowledge-base library (src/kb/kb_*.c, mk_kb_store.h):
 * each format from small files the test writes, structural chunking, the store
 * round trip, unchanged re-ingest as a no-op, replacement firing the change hook,
 * removal, and two processes' views of one store (CLI writes, server syncs). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "kb/mk_kb_ingest.h"
#include "kb/mk_kb_store.h"
#include "store/mk_store.h"

/* --- helpers -------------------------------------------------------------------------- */

static char tmpdir[64];

static void mk_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mayak-kb-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

static void write_file(const char *rel, const char *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700); /* one level of sub-folder is all the tests use */
    *slash = '/';
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_str(const char *rel, const char *s) { write_file(rel, s, strlen(s)); }

static struct mk_kb_parsed parse_ok(enum mk_kb_format f, const char *s, size_t len)
{
    struct mk_kb_parsed p;
    mk_buf err = MK_BUF_INIT;
    int rc = mk_kb_parse(f, s, len, "fallback", NULL, &p, &err);
    cr_assert_eq(rc, 0, "parse failed: %s (%s)", mk_strerror(rc), err.data ? err.data : "");
    mk_buf_release(&err);
    return p;
}

/* Index of the chunk containing needle, or -1. */
static long chunk_with(const struct mk_kb_parsed *p, const char *needle)
{
    for (size_t i = 0; i < p->n; i++)
        if (strstr(p->chunks[i].text, needle))
            return (long)i;
    return -1;
}

/* --- formats ------------------------------------------------------------------------------ */

TestSuite(formats, .timeout = 30);

Test(formats, names_and_ids)
{
    cr_expect_eq(mk_kb_format_from_name("a/b/Guide.MD"), MK_KB_FORMAT_MARKDOWN);
    cr_expect_eq(mk_kb_format_from_name("x.htm"), MK_KB_FORMAT_HTML);
    cr_expect_eq(mk_kb_format_from_name("x.txt"), MK_KB_FORMAT_TEXT);
    cr_expect_eq(mk_kb_format_from_name("x.pdf"), MK_KB_FORMAT_PDF);
    cr_expect_eq(mk_kb_format_from_name("x.docx"), MK_KB_FORMAT_UNKNOWN);
    cr_expect_eq(mk_kb_format_from_name(".md"), MK_KB_FORMAT_UNKNOWN);
    cr_expect_eq(mk_kb_format_parse("Markdown"), MK_KB_FORMAT_MARKDOWN);
    char id[64];
    cr_assert_eq(mk_kb_id_from_path("/docs/en/wifi-connect.md", id, sizeof id), 0);
    cr_expect_str_eq(id, "wifi-connect");
    cr_assert_eq(mk_kb_id_from_path("docs/Принтер setup.v2.html", id, sizeof id), 0);
    cr_expect_str_eq(id, "printer-setup.v2", "Cyrillic is spelled in Latin, a space becomes '-'");
    cr_assert_eq(mk_kb_id_from_path("Құпиясөз «жаңа».md", id, sizeof id), 0);
    cr_expect_str_eq(id, "qupiyasoz-zhanga-", "Kazakh letters too (lower case); runs of other bytes give one '-'");
    cr_expect_eq(mk_kb_id_from_path("«»!!.txt", id, sizeof id), MK_EINVAL);
    cr_expect_eq(mk_kb_id_from_path("/docs/.md", id, sizeof id), MK_EINVAL);
    cr_expect_eq(mk_kb_id_from_path("///", id, sizeof id), MK_EINVAL);
}

Test(formats, markdown_structure_lists_and_sections)
{
    const char *md = "---\ntitle: \"Printing guide\"\n---\n"
                     "# Ignored H1 after front matter title\n\nIntro paragraph about printers.\n\n"
                     "## Add a printer\n\nBefore you start, switch it on.\n\n"
                     "1. Open Settings.\n2. Choose Printers.\n3. Click Add.\n\n"
                     "### On Windows\n\nUse the Control Panel.\n\n"
                     "#### Deep detail\n\nStays inside its section.\n\n"
                     "## Paper jam\n\n| Part | Action |\n|---|---|\n| Tray | Pull out |\n\n"
                     "```\n## not a heading inside code\n```\n";
    struct mk_kb_parsed p = parse_ok(MK_KB_FORMAT_MARKDOWN, md, strlen(md));
    cr_expect_str_eq(p.title, "Printing guide", "the front matter's title wins");
    cr_expect_str_eq(p.lang, "en");
    long steps = chunk_with(&p, "1. Open Settings.");
    cr_assert_geq(steps, 0);
    cr_expect_not_null(strstr(p.chunks[steps].text, "3. Click Add."), "numbered steps stay in one chunk");
    cr_expect_str_eq(p.chunks[steps].section, "Add a printer", "the title's H1 is not part of the path");
    long win = chunk_with(&p, "Control Panel");
    cr_assert_geq(win, 0);
    cr_expect_str_eq(p.chunks[win].section, "Add a printer / On Windows", "sections are heading paths");
    cr_expect_not_null(strstr(p.chunks[win].text, "Stays inside"), "level-4 headings do not cut");
    long jam = chunk_with(&p, "| Tray | Pull out |");
    cr_assert_geq(jam, 0);
    cr_expect_str_eq(p.chunks[jam].section, "Paper jam");
    cr_expect_not_null(strstr(p.chunks[jam].text, "## not a heading"), "code stays code");
    long intro = chunk_with(&p, "Intro paragraph");
    cr_assert_geq(intro, 0);
    cr_expect_str_eq(p.chunks[intro].section, "", "the intro under the title has no section");
    /* Offsets point into the source. */
    cr_expect_eq(strncmp(md + p.chunks[steps].offset, "Before you start", 16), 0);
    mk_kb_parsed_release(&p);
}

Test(formats, long_sections_split_with_overlap_and_lists_cut_between_items)
{
    mk_buf md = MK_BUF_INIT;
    mk_buf_append_str(&md, "# Long\n\n## Part\n\n");
    for (int i = 0; i < 40; i++)
        mk_buf_printf(&md, "Paragraph %d talks about the network settings at some length. It ends here.\n\n", i);
    mk_buf_append_str(&md, "## Steps\n\n");
    for (int i = 1; i <= 150; i++)
        mk_buf_printf(&md, "%d. Step number %d of a very long procedure.\n", i, i);
    struct mk_kb_parsed p = parse_ok(MK_KB_FORMAT_MARKDOWN, md.data, md.len);
    size_t part = 0, steps = 0;
    for (size_t i = 0; i < p.n; i++) {
        cr_assert_leq(p.chunks[i].text_len, MK_KB_MAX_CHUNK_BYTES);
        if (!strcmp(p.chunks[i].section, "Part")) {
            part++;
            if (part > 1) { /* each later chunk starts with the previous one's tail */
                const char *prev = p.chunks[i - 1].text;
                char head[24];
                snprintf(head, sizeof head, "%s", p.chunks[i].text);
                cr_expect_not_null(strstr(prev, head), "chunk %zu does not overlap its predecessor", i);
            }
        }
        if (!strcmp(p.chunks[i].section, "Steps")) {
            steps++;
            const char *t = p.chunks[i].text;
            /* Cut between items: every piece starts at an item (or the overlap tail). */
            cr_expect(strstr(t, ". Step number") != NULL);
        }
    }
    cr_expect_gt(part, 1, "a long section takes several chunks");
    cr_expect_gt(steps, 1, "a list longer than a chunk is cut");
    long first = chunk_with(&p, "1. Step number 1 ");
    cr_assert_geq(first, 0);
    cr_expect_not_null(strstr(p.chunks[first].text, "2. Step number 2 "));
    mk_kb_parsed_release(&p);
    mk_buf_release(&md);
}

Test(formats, html_content_not_chrome)
{
    const char *html = "<!doctype html><html><head><title>VPN &amp; you</title><style>p{}</style>"
                       "<script>var secret='do not index';</script></head><body>"
                       "<nav><a href='/'>Home</a> menu junk</nav>"
                       "<h1>Connect to the VPN</h1><p>You need   the <b>client</b>.<br>Install it first.</p>"
                       "<h2>Steps</h2><ol><li>Open the client</li><li>Enter your <i>login</i>"
                       "<ul><li>nested detail</li></ul></li><li>Connect</li></ol>"
                       "<table><tr><th>Error</th><th>Fix</th></tr><tr><td>809</td><td>Open port 1723</td></tr></table>"
                       "<pre>vpn --connect\n  --verbose</pre><img alt='diagram of the tunnel'>"
                       "<footer>Copyright footer</footer></body></html>";
    struct mk_kb_parsed p = parse_ok(MK_KB_FORMAT_HTML, html, strlen(html));
    cr_expect_str_eq(p.title, "Connect to the VPN", "the page's H1 beats <title>");
    cr_expect_eq(chunk_with(&p, "do not index"), -1, "scripts are dropped");
    cr_expect_eq(chunk_with(&p, "menu junk"), -1, "navigation is dropped");
    cr_expect_eq(chunk_with(&p, "Copyright"), -1, "footers are dropped");
    long s = chunk_with(&p, "1. Open the client");
    cr_assert_geq(s, 0, "ordered lists are rendered as numbered lines");
    cr_expect_not_null(strstr(p.chunks[s].text, "3. Connect"));
    cr_expect_not_null(strstr(p.chunks[s].text, "- nested detail"), "nested lists stay with their item");
    cr_expect_str_eq(p.chunks[s].section, "Steps");
    cr_expect_geq(chunk_with(&p, "809 | Open port 1723"), 0, "table rows as cells");
    cr_expect_geq(chunk_with(&p, "vpn --connect\n  --verbose"), 0, "pre keeps its lines");
    cr_expect_geq(chunk_with(&p, "You need the client."), 0, "white space collapses");
    cr_expect_geq(chunk_with(&p, "diagram of the tunnel"), 0, "image alt text counts");
    mk_kb_parsed_release(&p);
}

Test(formats, plain_text_paragraphs_lists_headings)
{
    const char *txt = "Mailbox full\n============\n\nYour mailbox has a quota.\nIt is 2 GB.\n\n"
                      "Free space\n----------\n\n- delete old mail\n- empty the trash\n  (also on the phone)\n\n"
                      "Then wait a minute.\n";
    struct mk_kb_parsed p = parse_ok(MK_KB_FORMAT_TEXT, txt, strlen(txt));
    cr_expect_str_eq(p.title, "Mailbox full");
    long l = chunk_with(&p, "- delete old mail");
    cr_assert_geq(l, 0);
    cr_expect_not_null(strstr(p.chunks[l].text, "(also on the phone)"));
    cr_expect_str_eq(p.chunks[l].section, "Free space");
    mk_kb_parsed_release(&p);
}

/* A two-page PDF written by hand: standard Helvetica, one text line per page, an Info
 * title, and a correct cross-reference table. */
static size_t make_pdf(char *out, size_t cap, const char *title, const char *p1, const char *p2)
{
    size_t off[9] = {0}, n = 0;
    char c1[256], c2[256];
    int l1 = snprintf(c1, sizeof c1, "BT /F1 18 Tf 72 700 Td (%s) Tj ET", p1);
    int l2 = snprintf(c2, sizeof c2, "BT /F1 18 Tf 72 700 Td (%s) Tj ET", p2);
#define PUT(...) n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__)
    PUT("%%PDF-1.4\n");
    off[1] = n; PUT("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = n; PUT("2 0 obj\n<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>\nendobj\n");
    off[3] = n; PUT("3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                    " /Resources << /Font << /F1 7 0 R >> >> >>\nendobj\n");
    off[4] = n; PUT("4 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n", l1, c1);
    off[5] = n; PUT("5 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R"
                    " /Resources << /Font << /F1 7 0 R >> >> >>\nendobj\n");
    off[6] = n; PUT("6 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n", l2, c2);
    off[7] = n; PUT("7 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    off[8] = n; PUT("8 0 obj\n<< /Title (%s) >>\nendobj\n", title);
    size_t xref = n;
    PUT("xref\n0 9\n0000000000 65535 f \n");
    for (int i = 1; i <= 8; i++)
        PUT("%010zu 00000 n \n", off[i]);
    PUT("trailer\n<< /Size 9 /Root 1 0 R /Info 8 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
#undef PUT
    return n;
}

Test(formats, pdf_text_per_page)
{
    char pdf[4096];
    size_t len = make_pdf(pdf, sizeof pdf, "Printer manual", "Load paper into tray two", "Clear the paper jam");
    struct mk_kb_parsed p = parse_ok(MK_KB_FORMAT_PDF, pdf, len);
    cr_expect_str_eq(p.title, "Printer manual");
    cr_expect_eq(p.pages, 2);
    long a = chunk_with(&p, "tray two"), b = chunk_with(&p, "paper jam");
    cr_assert_geq(a, 0);
    cr_assert_geq(b, 0);
    cr_expect_neq(a, b, "chunks never span pages");
    cr_expect_eq(p.chunks[a].page, 1);
    cr_expect_eq(p.chunks[b].page, 2);
    mk_kb_parsed_release(&p);

    struct mk_kb_parsed q;
    mk_buf err = MK_BUF_INIT;
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_PDF, "%PDF-1.4 garbage", 16, NULL, NULL, &q, &err), MK_ECORRUPT);
    cr_expect_not_null(err.data);
    mk_buf_reset(&err);
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_PDF, "hello", 5, NULL, NULL, &q, &err), MK_ECORRUPT);
    mk_buf_release(&err);
    mk_kb_parsed_release(&q);
}

Test(formats, bad_input)
{
    struct mk_kb_parsed p;
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_MARKDOWN, "bad \xff utf8", 10, NULL, NULL, &p, NULL), MK_EBADUTF8);
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_TEXT, "a\0b", 3, NULL, NULL, &p, NULL), MK_EBADUTF8);
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_UNKNOWN, "x", 1, NULL, NULL, &p, NULL), MK_EINVAL);
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_MARKDOWN, NULL, 3, NULL, NULL, &p, NULL), MK_EINVAL);
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_MARKDOWN, "x", 1, NULL, "English", &p, NULL), MK_EINVAL);
    cr_expect_eq(mk_kb_parse(MK_KB_FORMAT_MARKDOWN, "x", MK_KB_MAX_DOC_BYTES + 1, NULL, NULL, &p, NULL), MK_ETOOBIG);
    cr_assert_eq(mk_kb_parse(MK_KB_FORMAT_MARKDOWN, "  \n\n", 4, NULL, NULL, &p, NULL), 0);
    cr_expect_eq(p.n, 0, "a document without text has no chunks");
    cr_expect_str_eq(p.title, "untitled");
    mk_kb_parsed_release(&p);
    /* A BOM is not text. */
    const char *bom = "\xEF\xBB\xBF# T\n\nx\n";
    cr_assert_eq(mk_kb_parse(MK_KB_FORMAT_MARKDOWN, bom, strlen(bom), NULL, NULL, &p, NULL), 0);
    cr_expect_str_eq(p.title, "T");
    mk_kb_parsed_release(&p);
    mk_kb_parsed_release(NULL);
}

Test(formats, languages_per_document_and_chunk)
{
    const char *md = "# Сброс пароля\n\nЕсли вы забыли пароль, откройте страницу входа и нажмите ссылку "
                     "для восстановления доступа к учётной записи.\n\n## Command\n\n"
                     "Run the following command in a terminal window to reset the password of the account.\n";
    struct mk_kb_parsed p = parse_ok(MK_KB_FORMAT_MARKDOWN, md, strlen(md));
    cr_expect_str_eq(p.lang, "ru");
    long en = chunk_with(&p, "Run the following");
    cr_assert_geq(en, 0);
    cr_expect_str_eq(p.chunks[en].lang, "en", "a chunk keeps its own language");
    mk_kb_parsed_release(&p);
    const char *kk = "# Құпиясөзді ауыстыру\n\nҚұпиясөзді ауыстыру үшін баптауларды ашыңыз.\n";
    p = parse_ok(MK_KB_FORMAT_MARKDOWN, kk, strlen(kk));
    cr_expect_str_eq(p.lang, "kk");
    mk_kb_parsed_release(&p);
}

/* --- the library: store, change detection, sync ----------------------------------------- */

struct hook_log {
    char ids[16][64];
    size_t n;
};

static void on_change(void *arg, const char *const *ids, size_t n)
{
    struct hook_log *h = arg;
    for (size_t i = 0; i < n && h->n < 16; i++)
        snprintf(h->ids[h->n++], sizeof h->ids[0], "%s", ids[i]);
}

static struct mk_store *open_store(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/mayak.db", tmpdir);
    struct mk_store *s = NULL;
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_store_open(url, NULL, &s, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    return s;
}

static struct mk_kb_lib *open_lib(struct mk_store *s, bool load)
{
    struct mk_kb_lib *lib = NULL;
    mk_buf err = MK_BUF_INIT;
    struct mk_kb_lib_options o = {.load = load};
    cr_assert_eq(mk_kb_lib_open(s, &o, &lib, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    return lib;
}

static struct mk_kb_report add(struct mk_kb_lib *lib, const char *rel, const char *agent)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    struct mk_kb_report rep = {.items = json_object_new_array()};
    struct mk_kb_add_opts o = {.agent = agent};
    mk_buf err = MK_BUF_INIT;
    int rc = mk_kb_lib_add_path(lib, path, &o, &rep, &err);
    cr_assert_eq(rc, 0, "add %s: %s", rel, err.data ? err.data : mk_strerror(rc));
    mk_buf_release(&err);
    json_object_put(rep.items);
    rep.items = NULL;
    return rep;
}

static int top_doc_mode(mk_kb *kb, const char *q, enum mk_kb_mode mode, char *id, size_t cap,
                        struct mk_kb_result *out)
{
    struct mk_kb_search_opts so = {.k = 3, .mode = mode};
    struct mk_kb_result r[3];
    int n = mk_kb_search_hybrid(kb, q, &so, r, NULL);
    if (n > 0) {
        snprintf(id, cap, "%s", r[0].hit.doc_id);
        if (out)
            *out = r[0];
    } else {
        id[0] = '\0';
    }
    return n;
}

/* Hybrid search: the vector half always finds neighbours, so "nothing matches" is
 * asked of BM25 (top_words). */
static int top_doc(mk_kb *kb, const char *q, char *id, size_t cap, struct mk_kb_result *out)
{
    return top_doc_mode(kb, q, MK_KB_HYBRID, id, cap, out);
}

static int top_words(mk_kb *kb, const char *q, char *id, size_t cap)
{
    return top_doc_mode(kb, q, MK_KB_BM25, id, cap, NULL);
}

TestSuite(library, .init = mk_tmp, .fini = rm_tmp, .timeout = 60);

Test(library, every_format_round_trips_through_the_store)
{
    char pdf[4096];
    size_t plen = make_pdf(pdf, sizeof pdf, "Toner guide", "Replace the toner cartridge", "Recycle the old cartridge");
    write_str("docs/vpn.md", "# VPN access\n\n## Connect\n\n1. Start the client.\n2. Log in with your token.\n");
    write_str("docs/printer.html", "<html><head><title>Printer queue</title></head><body><p>Stuck print jobs "
                                   "are cleared from the queue window.</p></body></html>");
    write_str("docs/mail.txt", "Mailbox quota\n\nThe quota of every mailbox is two gigabytes.\n");
    write_file("docs/toner.pdf", pdf, plen);
    write_str("docs/notes.docx", "not a format we read");
    write_str("docs/.hidden.md", "# Hidden\n\nnever ingested\n");

    struct mk_store *s = open_store();
    struct mk_kb_lib *lib = open_lib(s, false);
    struct mk_kb_report rep = add(lib, "docs", "network");
    cr_expect_eq(rep.added, 4, "md, html, txt and pdf are read; unknown and hidden files are not");
    cr_expect_eq(rep.failed, 0);

    json_object *list = NULL;
    cr_assert_eq(mk_kb_lib_list(lib, NULL, &list, NULL), 0);
    cr_expect_eq(json_object_array_length(list), 4);
    json_object *first = json_object_array_get_idx(list, 0), *v;
    cr_assert(json_object_object_get_ex(first, "id", &v));
    cr_expect_str_eq(json_object_get_string(v), "mail", "sorted by id");
    cr_assert(json_object_object_get_ex(first, "agent", &v));
    cr_expect_str_eq(json_object_get_string(v), "network");
    json_object_put(list);
    mk_kb_lib_free(lib);

    /* A fresh process loads everything with vectors and finds each document. */
    lib = open_lib(s, true);
    mk_kb *kb = mk_kb_lib_kb(lib);
    cr_assert_not_null(kb);
    cr_expect(mk_kb_has_vectors(kb));
    char id[64];
    struct mk_kb_result top;
    cr_assert_gt(top_doc(kb, "log in with the token", id, sizeof id, &top), 0);
    cr_expect_str_eq(id, "vpn");
    cr_expect_str_eq(top.hit.section, "Connect");
    cr_expect_str_eq(top.hit.agent, "network");
    cr_expect_gt(top.bm25, 0);
    cr_expect_gt(top.vector, 0);
    cr_assert_gt(top_doc(kb, "stuck print jobs", id, sizeof id, NULL), 0);
    cr_expect_str_eq(id, "printer");
    cr_assert_gt(top_doc(kb, "mailbox quota gigabytes", id, sizeof id, NULL), 0);
    cr_expect_str_eq(id, "mail");
    cr_assert_gt(top_doc(kb, "recycle old cartridge", id, sizeof id, &top), 0);
    cr_expect_str_eq(id, "toner");
    cr_expect_eq(top.hit.page, 2, "a PDF passage cites its page");
    cr_expect_str_eq(top.hit.title, "Toner guide");
    mk_kb_lib_free(lib);
    mk_store_free(s);
}

Test(library, unchanged_is_a_no_op_and_change_replaces_and_fires_the_hook)
{
    write_str("kb/wifi.md", "# Wi-Fi\n\n## Connect\n\nPick the office network and enter the password.\n");
    struct mk_store *s = open_store();
    struct mk_kb_lib *lib = open_lib(s, true);
    struct hook_log log = {.n = 0};
    cr_assert_eq(mk_kb_on_change(mk_kb_lib_kb(lib), on_change, &log), 0);

    struct mk_kb_report rep = add(lib, "kb/wifi.md", NULL);
    cr_expect_eq(rep.added, 1);
    uint64_t gen = mk_kb_lib_generation(lib);
    size_t chunks = mk_kb_chunk_count(mk_kb_lib_kb(lib));
    cr_expect_gt(chunks, 0);

    rep = add(lib, "kb/wifi.md", NULL);
    cr_expect_eq(rep.unchanged, 1, "same bytes: nothing to do");
    cr_expect_eq(rep.added + rep.updated, 0);
    cr_expect_eq(mk_kb_lib_generation(lib), gen, "no write happened");
    cr_expect_eq(log.n, 0, "no hook for an unchanged file");
    cr_expect_eq(mk_kb_document_slots(mk_kb_lib_kb(lib)), 1, "not even re-added in memory");

    write_str("kb/wifi.md", "# Wi-Fi\n\n## Connect\n\nPick the guest network; the voucher is at reception.\n");
    rep = add(lib, "kb/wifi.md", NULL);
    cr_expect_eq(rep.updated, 1);
    cr_expect_gt(mk_kb_lib_generation(lib), gen);
    cr_assert_eq(log.n, 1, "the change hook fires once");
    cr_expect_str_eq(log.ids[0], "wifi");
    mk_kb *kb = mk_kb_lib_kb(lib);
    cr_expect_eq(mk_kb_document_count(kb), 1);
    char id[64];
    cr_expect_eq(top_words(kb, "office password", id, sizeof id), 0, "the old text is gone from the index");
    cr_assert_gt(top_doc(kb, "guest voucher reception", id, sizeof id, NULL), 0);
    cr_expect_str_eq(id, "wifi");

    /* Removal: from the store and the index, with the hook. */
    size_t n = 0;
    cr_assert_eq(mk_kb_lib_remove(lib, "wifi", NULL, NULL, &n, NULL), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(log.n, 2);
    cr_expect_eq(mk_kb_document_count(kb), 0);
    cr_expect_eq(top_doc(kb, "guest voucher reception", id, sizeof id, NULL), 0, "nothing left, not even vectors");
    cr_expect_eq(mk_kb_lib_remove(lib, "wifi", NULL, NULL, &n, NULL), MK_ENOTFOUND);
    mk_kb_lib_free(lib);
    mk_store_free(s);
}

Test(library, a_server_sees_what_another_process_wrote)
{
    write_str("a/printer.md", "# Printer\n\nThe printer on floor two is called Falcon.\n");
    struct mk_store *s1 = open_store(), *s2 = open_store();
    struct mk_kb_lib *server = open_lib(s1, true);
    struct mk_kb_lib *cli = open_lib(s2, false);
    struct hook_log log = {.n = 0};
    cr_assert_eq(mk_kb_on_change(mk_kb_lib_kb(server), on_change, &log), 0);

    add(cli, "a/printer.md", NULL);
    char id[64];
    cr_expect_eq(top_doc(mk_kb_lib_kb(server), "Falcon printer", id, sizeof id, NULL), 0, "not synced yet");
    bool changed = false;
    cr_assert_eq(mk_kb_lib_sync(server, &changed, NULL), 0);
    cr_expect(changed);
    cr_assert_gt(top_doc(mk_kb_lib_kb(server), "Falcon printer", id, sizeof id, NULL), 0);
    cr_expect_str_eq(id, "printer");
    cr_assert_eq(mk_kb_lib_sync(server, &changed, NULL), 0);
    cr_expect_not(changed, "nothing new the second time");

    write_str("a/printer.md", "# Printer\n\nThe printer on floor two is now called Heron.\n");
    add(cli, "a/printer.md", NULL);
    cr_assert_eq(mk_kb_lib_sync(server, &changed, NULL), 0);
    cr_expect(changed);
    cr_expect_eq(log.n, 1, "the server's hook learns of the replacement");
    cr_assert_gt(top_words(mk_kb_lib_kb(server), "Heron", id, sizeof id), 0);
    cr_expect_eq(top_words(mk_kb_lib_kb(server), "Falcon", id, sizeof id), 0, "the old version is gone");

    size_t n;
    cr_assert_eq(mk_kb_lib_remove(cli, "printer", "en", NULL, &n, NULL), 0);
    cr_assert_eq(mk_kb_lib_sync(server, &changed, NULL), 0);
    cr_expect_eq(mk_kb_document_count(mk_kb_lib_kb(server)), 0, "removals reach the server too");
    cr_expect_eq(log.n, 2);
    mk_kb_lib_free(server);
    mk_kb_lib_free(cli);
    mk_store_free(s1);
    mk_store_free(s2);
}

Test(library, conflicts_uploads_reindex_and_bad_paths)
{
    write_str("x/guide.md", "# Guide one\n\nFirst guide text about badges.\n");
    write_str("y/guide.md", "# Guide two\n\nSecond guide text about badges.\n");
    struct mk_store *s = open_store();
    struct mk_kb_lib *lib = open_lib(s, false);
    struct mk_kb_report rep = add(lib, "x", NULL);
    cr_expect_eq(rep.added, 1);
    rep = add(lib, "y", NULL);
    cr_expect_eq(rep.skipped, 1, "the same id and language from another existing file is refused");
    rep = add(lib, "y", "other-agent");
    cr_expect_eq(rep.added, 1, "another agent's collection may hold the same id");

    struct mk_kb_report up = {0};
    mk_buf err = MK_BUF_INIT;
    const char *body = "# Uploaded\n\nContent sent through the API.\n";
    cr_assert_eq(mk_kb_lib_add_data(lib, "api-doc.md", body, strlen(body), MK_KB_FORMAT_UNKNOWN, NULL, &up, &err), 0);
    cr_expect_eq(up.added, 1);
    cr_expect_eq(mk_kb_lib_add_data(lib, "../evil.md", body, strlen(body), MK_KB_FORMAT_UNKNOWN, NULL, &up, &err),
                 MK_EINVAL);
    cr_expect_eq(mk_kb_lib_add_data(lib, "noext", body, strlen(body), MK_KB_FORMAT_UNKNOWN, NULL, &up, &err),
                 MK_EINVAL);

    /* Reindex: a changed source is re-read, uploads are kept. */
    write_str("x/guide.md", "# Guide one\n\nRevised text about visitor badges.\n");
    struct mk_kb_report ri = {0};
    cr_assert_eq(mk_kb_lib_reindex(lib, false, &ri, &err), 0);
    cr_expect_eq(ri.updated, 1);
    cr_expect_eq(ri.unchanged, 1);
    cr_expect_eq(ri.skipped, 1, "the upload has no file to re-read");
    ri = (struct mk_kb_report){0};
    cr_assert_eq(mk_kb_lib_reindex(lib, true, &ri, &err), 0);
    cr_expect_eq(ri.updated, 2, "force re-cuts unchanged files");

    char path[256];
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    struct mk_kb_report r2 = {0};
    cr_expect_eq(mk_kb_lib_add_path(lib, path, NULL, &r2, &err), MK_ENOTFOUND);
    struct mk_kb_add_opts bad = {.agent = "bad agent"};
    cr_expect_eq(mk_kb_lib_add_path(lib, tmpdir, &bad, &r2, &err), MK_EINVAL);
    bad = (struct mk_kb_add_opts){.lang = "EN"};
    cr_expect_eq(mk_kb_lib_add_path(lib, tmpdir, &bad, &r2, &err), MK_EINVAL);
    cr_expect_eq(mk_kb_lib_remove(lib, "../x", NULL, NULL, NULL, &err), MK_EINVAL);
    mk_buf_release(&err);
    mk_kb_lib_free(lib);
    mk_store_free(s);
}
