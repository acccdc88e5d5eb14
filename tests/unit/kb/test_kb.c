/* Tests for the knowledge base (src/kb/): chunking, tokenizer, language detection,
 * BM25 search over the embedded demo set, and bad input at the API boundary. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/mk_error.h"
#include "kb/mk_kb.h"

/* --- helpers -------------------------------------------------------------------------- */

struct terms {
    char t[64][MK_KB_MAX_TERM_BYTES + 1];
    size_t n;
};

static int collect(void *arg, const char *term, size_t len)
{
    struct terms *ts = arg;
    cr_assert_eq(strlen(term), len, "term length must match its NUL-terminated text");
    if (ts->n < 64)
        snprintf(ts->t[ts->n++], sizeof ts->t[0], "%s", term);
    return 0;
}

static struct terms tokens(mk_kb *kb, const char *text)
{
    struct terms ts = {.n = 0};
    cr_assert_eq(mk_kb_tokenize(kb, text, strlen(text), collect, &ts), 0);
    return ts;
}

static bool has_term(const struct terms *ts, const char *t)
{
    for (size_t i = 0; i < ts->n; i++)
        if (!strcmp(ts->t[i], t))
            return true;
    return false;
}

/* The single term a word becomes (asserts it is exactly one). */
static const char *one_term(mk_kb *kb, const char *word, char *buf, size_t cap)
{
    struct terms ts = tokens(kb, word);
    cr_assert_eq(ts.n, 1, "'%s' gave %zu terms", word, ts.n);
    snprintf(buf, cap, "%s", ts.t[0]);
    return buf;
}

static int add_md(mk_kb *kb, const char *id, const char *lang, const char *md)
{
    struct mk_kb_doc d = {.id = id, .lang = lang, .text = md, .text_len = strlen(md)};
    return mk_kb_add_document(kb, &d);
}

static mk_kb *kb;
static void setup(void) { cr_assert_not_null(kb = mk_kb_new()); }
static void teardown(void) { mk_kb_free(kb); }

/* --- chunking ---------------------------------------------------------------------------- */

TestSuite(chunking, .init = setup, .fini = teardown, .timeout = 30);

Test(chunking, sections_keep_title_and_heading)
{
    const char *md = "# Printer guide\n\nIntro text about printers.\n\n"
                     "## Add a printer\n\n1. Open settings.\n2. Click add.\n\n"
                     "### Details\nStill in the same section.\n\n"
                     "```\n## not a heading inside a fence\n```\n\n"
                     "## Paper jam ##\n\n1. Open the cover.\n";
    cr_assert_eq(add_md(kb, "printers", "en", md), 0);
    cr_assert_eq(mk_kb_document_count(kb), 1);
    cr_assert_eq(mk_kb_chunk_count(kb), 3);

    struct mk_kb_hit c;
    cr_assert(mk_kb_chunk(kb, 0, &c));
    cr_assert_str_eq(c.title, "Printer guide");
    cr_assert_str_eq(c.section, "");
    cr_assert_str_eq(c.text, "Intro text about printers.");
    cr_assert_str_eq(c.doc_id, "printers");
    cr_assert_str_eq(c.lang, "en");
    cr_assert_str_eq(c.source, "kb://en/printers");

    cr_assert(mk_kb_chunk(kb, 1, &c));
    cr_assert_str_eq(c.section, "Add a printer");
    cr_assert(strstr(c.text, "1. Open settings.") == c.text);
    cr_assert_not_null(strstr(c.text, "### Details"));
    cr_assert_not_null(strstr(c.text, "## not a heading inside a fence"));
    cr_assert_null(strstr(c.text, "Paper jam"));

    cr_assert(mk_kb_chunk(kb, 2, &c));
    cr_assert_str_eq(c.section, "Paper jam", "closing #s are not part of the heading");
    cr_assert_str_eq(c.text, "1. Open the cover.");
    cr_assert_not(mk_kb_chunk(kb, 3, &c));

    size_t first, count;
    cr_assert(mk_kb_document_chunks(kb, 0, &first, &count));
    cr_assert_eq(first, 0);
    cr_assert_eq(count, 3);
    cr_assert_not(mk_kb_document_chunks(kb, 1, &first, &count));
}

Test(chunking, title_is_indexed_with_every_section)
{
    /* "zebra" is only in the title; it must find the section chunks too. */
    cr_assert_eq(add_md(kb, "z", "en", "# Zebra printer\n\n## Setup\n\nPlug it in.\n\n## Cleaning\n\nWipe it.\n"), 0);
    struct mk_kb_hit h[4];
    int n = mk_kb_search(kb, "zebra", NULL, 4, h);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(h[0].title, "Zebra printer");
    cr_assert_eq(h[0].coverage, 1.0);
}

Test(chunking, no_title_no_headings_and_explicit_title)
{
    cr_assert_eq(add_md(kb, "plain", "en", "Just a paragraph of text.\n"), 0);
    struct mk_kb_hit c;
    cr_assert(mk_kb_chunk(kb, 0, &c));
    cr_assert_str_eq(c.title, "plain", "no # heading: the id is the title");
    cr_assert_str_eq(c.section, "");

    struct mk_kb_doc d = {.id = "t", .lang = "en", .title = "Given title", .text = "# Ignored\n\nBody\n",
                          .text_len = 16, .source = "https://kb.example.com/t"};
    cr_assert_eq(mk_kb_add_document(kb, &d), 0);
    cr_assert(mk_kb_chunk(kb, 1, &c));
    cr_assert_str_eq(c.title, "Given title");
    cr_assert_str_eq(c.source, "https://kb.example.com/t");
    cr_assert_str_eq(c.text, "Body");

    /* Only headings and blank lines: nothing to retrieve, but the document exists. */
    cr_assert_eq(add_md(kb, "empty", "en", "# Title\n\n## A\n\n## B\n"), 0);
    cr_assert_eq(mk_kb_document_count(kb), 3);
    cr_assert_eq(mk_kb_chunk_count(kb), 2);
}

Test(chunking, long_sections_are_split_at_paragraphs)
{
    char md[20000];
    size_t len = (size_t)snprintf(md, sizeof md, "# Long\n\n## Big section\n\n");
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(md + len, sizeof md - len,
                                "Paragraph %d talks about routers and switches and cables at length.\n"
                                "It has a second line too, to make it longer than one line.\n\n", i);
    cr_assert_lt(len, sizeof md - 1);
    cr_assert_eq(add_md(kb, "long", "en", md), 0);
    size_t n = mk_kb_chunk_count(kb);
    cr_assert_gt(n, 1, "a %zu-byte section must be split", len);
    for (size_t i = 0; i < n; i++) {
        struct mk_kb_hit c;
        cr_assert(mk_kb_chunk(kb, i, &c));
        cr_assert_str_eq(c.section, "Big section");
        cr_assert_leq(strlen(c.text), MK_KB_MAX_CHUNK_BYTES);
        cr_assert(strncmp(c.text, "Paragraph ", 10) == 0, "cut at a paragraph break: '%.30s'", c.text);
    }
}

/* --- tokenizer --------------------------------------------------------------------------- */

TestSuite(tokenizer, .init = setup, .fini = teardown, .timeout = 30);

Test(tokenizer, stemming_joins_word_forms)
{
    char a[80], b[80];
    cr_assert_str_eq(one_term(kb, "принтеры", a, sizeof a), one_term(kb, "принтер", b, sizeof b));
    cr_assert_str_eq(one_term(kb, "принтера", a, sizeof a), one_term(kb, "Принтером", b, sizeof b));
    cr_assert_str_eq(one_term(kb, "printers", a, sizeof a), one_term(kb, "printer", b, sizeof b));
    cr_assert_str_eq(one_term(kb, "passwords", a, sizeof a), one_term(kb, "password", b, sizeof b));
    cr_assert_str_eq(one_term(kb, "connecting", a, sizeof a), one_term(kb, "connection", b, sizeof b));
    cr_assert_str_eq(one_term(kb, "пароля", a, sizeof a), one_term(kb, "ПАРОЛЬ", b, sizeof b));
    cr_assert_str_neq(one_term(kb, "printer", a, sizeof a), one_term(kb, "password", b, sizeof b));
}

Test(tokenizer, folding_yo_and_normalisation)
{
    char a[80], b[80];
    cr_assert_str_eq(one_term(kb, "ЁЛКА", a, sizeof a), one_term(kb, "елка", b, sizeof b));
    cr_assert_str_eq(one_term(kb, "учётной", a, sizeof a), one_term(kb, "учетной", b, sizeof b));
    /* Decomposed й (и + U+0306) folds to the same term as the composed letter. */
    cr_assert_str_eq(one_term(kb, "настрои\xcc\x86ка", a, sizeof a), one_term(kb, "настройка", b, sizeof b));
    /* A soft hyphen inside a word is ignored. */
    cr_assert_str_eq(one_term(kb, "pass\xc2\xadword", a, sizeof a), one_term(kb, "password", b, sizeof b));
    cr_assert_str_eq(one_term(kb, "STRASSE", a, sizeof a), one_term(kb, "straße", b, sizeof b));
}

Test(tokenizer, splitting_hyphens_stopwords)
{
    struct terms ts = tokens(kb, "Wi-Fi, e-mail; VPN/Outlook!!! 2024 x");
    cr_assert(has_term(&ts, "wi"));
    cr_assert(has_term(&ts, "fi"));
    cr_assert(has_term(&ts, "wifi"), "a hyphenated word also gives its joined form");
    cr_assert(has_term(&ts, "email"));
    cr_assert(has_term(&ts, "mail"));
    cr_assert(has_term(&ts, "vpn"));
    cr_assert(has_term(&ts, "outlook"));
    cr_assert(has_term(&ts, "2024"));
    cr_assert_not(has_term(&ts, "x"), "one-letter words are dropped");
    cr_assert_not(has_term(&ts, "e"));

    ts = tokens(kb, "How do I reset my password? Как мне сбросить пароль?");
    cr_assert_not(has_term(&ts, "how"));
    cr_assert_not(has_term(&ts, "my"));
    cr_assert_not(has_term(&ts, "как"));
    cr_assert_not(has_term(&ts, "мне"));
    cr_assert_eq(ts.n, 4, "reset password сброс парол, got %zu", ts.n);

    ts = tokens(kb, "don't");
    cr_assert_eq(ts.n, 0, "an apostrophe keeps a word whole (and this one is a stop word)");
}

Test(tokenizer, bad_bytes_and_limits)
{
    /* Invalid UTF-8 and NUL act as separators, never as part of a term. */
    const char raw[] = "printer\xff\xfe" "driver\0cable\xc3";
    struct terms ts = {.n = 0};
    cr_assert_eq(mk_kb_tokenize(kb, raw, sizeof raw - 1, collect, &ts), 0);
    cr_assert_eq(ts.n, 3);
    cr_assert_str_eq(ts.t[0], "printer");
    cr_assert_str_eq(ts.t[1], "driver");
    cr_assert_str_eq(ts.t[2], "cabl");

    char longword[300];
    memset(longword, 'a', sizeof longword - 1);
    longword[sizeof longword - 1] = '\0';
    ts = tokens(kb, longword);
    cr_assert_eq(ts.n, 0, "over-long tokens are dropped");

    cr_assert_eq(mk_kb_tokenize(kb, "", 0, collect, &ts), 0);
    cr_assert_eq(mk_kb_tokenize(NULL, "a", 1, collect, &ts), MK_EINVAL);
    cr_assert_eq(mk_kb_tokenize(kb, "a", 1, NULL, NULL), MK_EINVAL);
}

static int stop_after_two(void *arg, const char *term, size_t len)
{
    int *n = arg;
    return ++*n == 2 ? 42 : 0;
}

Test(tokenizer, callback_can_stop)
{
    int n = 0;
    cr_assert_eq(mk_kb_tokenize(kb, "alpha beta gamma delta", 22, stop_after_two, &n), 42);
    cr_assert_eq(n, 2);
}

/* --- language detection --------------------------------------------------------------- */

Test(language, detects_ru_en_kk)
{
    struct { const char *text, *want; } cases[] = {
        {"Не могу подключиться к Wi-Fi", "ru"},
        {"Как настроить почту в Outlook?", "ru"},
        {"Принтер не печатает, очередь зависла", "ru"},
        {"How do I reset my password?", "en"},
        {"VPN keeps dropping", "en"},
        {"Configure Outlook на ноутбуке please now", "en"},
        {"Құпия сөзді қалай өзгертемін?", "kk"},
        {"Wi-Fi желісіне қосыла алмаймын", "kk"},
        {"Принтер басып шығармайды, көмектесіңіз", "kk"},
        {"Сәлем", "kk"},
        {"12345 ?!", "und"},
        {"", "und"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_str_eq(mk_kb_detect_language(cases[i].text, strlen(cases[i].text)), cases[i].want, "'%s'",
                         cases[i].text);
    /* One Kazakh place name in a long Russian text does not make it Kazakh. */
    const char *ru = "Мы открыли новый офис, адрес и схема проезда есть на портале, а также номер телефона "
                     "дежурного инженера и инструкция по подключению принтеров. Филиал: Қарағанды.";
    cr_assert_str_eq(mk_kb_detect_language(ru, strlen(ru)), "ru");
    cr_assert_str_eq(mk_kb_detect_language("\xff\xfe\xd0", 3), "und");
    cr_assert_str_eq(mk_kb_detect_language(NULL, 5), "und");
}

/* --- search over the demo set ---------------------------------------------------------- */

TestSuite(demo, .init = setup, .fini = teardown, .timeout = 60);

struct qa {
    const char *question;
    const char *doc;      /* expected best article's slug */
};

static void expect_top(const char *lang, const struct qa *qs, size_t n)
{
    cr_assert_eq(mk_kb_load_demo(kb), 0);
    for (size_t i = 0; i < n; i++) {
        struct mk_kb_hit h[5];
        int got = mk_kb_search(kb, qs[i].question, lang, 5, h);
        cr_expect_gt(got, 0, "'%s': no hits", qs[i].question);
        if (got <= 0)
            continue;
        cr_expect_str_eq(h[0].doc_id, qs[i].doc, "'%s': got %s/%s (%.2f)", qs[i].question, h[0].doc_id,
                         h[0].section, h[0].score);
        cr_expect_str_eq(h[0].lang, lang);
        cr_expect_geq(h[0].coverage, 0.45, "'%s': coverage %.2f", qs[i].question, h[0].coverage);
        for (int j = 1; j < got; j++)
            cr_expect_geq(h[j - 1].score, h[j].score, "results are sorted");
    }
}

Test(demo, loads_both_languages_in_pairs)
{
    cr_assert_eq(mk_kb_load_demo(kb), 0);
    size_t ndocs = mk_kb_document_count(kb);
    cr_assert_geq(ndocs, 30);
    cr_assert_eq(ndocs % 2, 0);
    size_t ru = 0, en = 0;
    for (size_t c = 0; c < mk_kb_chunk_count(kb); c++) {
        struct mk_kb_hit h;
        cr_assert(mk_kb_chunk(kb, c, &h));
        size_t first, count;
        cr_assert(mk_kb_document_chunks(kb, h.doc_index, &first, &count));
        if (first != c)
            continue;
        ru += !strcmp(h.lang, "ru");
        en += !strcmp(h.lang, "en");
        char want[300];
        snprintf(want, sizeof want, "kb://demo/%s/%s", h.lang, h.doc_id);
        cr_assert_str_eq(h.source, want);
        cr_assert_neq(strcmp(h.title, h.doc_id), 0, "%s has a # title", h.doc_id);
    }
    cr_assert_eq(ru, en, "every article exists in both languages");
    cr_assert_eq(mk_kb_load_demo(kb), MK_EEXISTS, "loading twice is refused");
    cr_assert_eq(mk_kb_document_count(kb), ndocs, "and changes nothing");
}

Test(demo, russian_questions_find_the_right_article)
{
    static const struct qa qs[] = {
        {"Не могу подключиться к Wi-Fi", "wifi-troubleshoot"},
        {"Как сбросить пароль?", "password-reset"},
        {"Забыл пароль от учётной записи", "password-reset"},
        {"Принтер зажевал бумагу", "printer-paper-jam"},
        {"Как добавить сетевой принтер?", "printer-add"},
        {"Документы не печатаются, очередь печати зависла", "printer-queue"},
        {"Учётная запись заблокирована, что делать?", "account-locked"},
        {"Как настроить почту в Outlook?", "email-outlook"},
        {"Как настроить почту на телефоне", "email-phone"},
        {"Почтовый ящик переполнен", "mailbox-full"},
        {"Как установить программу?", "software-install"},
        {"Как обновить Windows?", "os-update"},
        {"Где взять копию счёта?", "billing-invoice"},
        {"Как поменять карту для оплаты?", "billing-payment-method"},
        {"Хочу вернуть деньги", "billing-refund"},
        {"Истёк сертификат VPN", "vpn-certificate-renewal"},
        {"Как настроить двухфакторную аутентификацию", "mfa-setup"},
    };
    expect_top("ru", qs, sizeof qs / sizeof qs[0]);
}

Test(demo, english_questions_find_the_right_article)
{
    static const struct qa qs[] = {
        {"How do I reset my password?", "password-reset"},
        {"I can't connect to Wi-Fi", "wifi-troubleshoot"},
        {"My printer has a paper jam", "printer-paper-jam"},
        {"How do I add a network printer?", "printer-add"},
        {"Print queue is stuck", "printer-queue"},
        {"My account is locked", "account-locked"},
        {"How to set up Outlook?", "email-outlook"},
        {"Set up Thunderbird", "email-thunderbird"},
        {"Mailbox is full", "mailbox-full"},
        {"How do I install software?", "software-install"},
        {"How to update the OS", "os-update"},
        {"I need a copy of my invoice", "billing-invoice"},
        {"How do I change my payment method?", "billing-payment-method"},
        {"I want a refund", "billing-refund"},
        {"VPN certificate expired", "vpn-certificate-renewal"},
        {"How do I set up MFA?", "mfa-setup"},
    };
    expect_top("en", qs, sizeof qs / sizeof qs[0]);
}

Test(demo, russian_verbs_meet_russian_nouns)
{
    /* "обновить" (stem обнов) must reach "Обновление" (stem обновлен) in the title. */
    cr_assert_eq(mk_kb_load_demo(kb), 0);
    struct mk_kb_hit h[3];
    cr_assert_gt(mk_kb_search(kb, "обновить", "ru", 3, h), 0);
    cr_assert_str_eq(h[0].doc_id, "os-update");
    cr_assert_eq(h[0].coverage, 1.0);
}

Test(demo, language_filter_and_off_topic)
{
    cr_assert_eq(mk_kb_load_demo(kb), 0);
    struct mk_kb_hit h[10];
    int n = mk_kb_search(kb, "Outlook", NULL, 10, h);
    bool ru = false, en = false;
    for (int i = 0; i < n; i++) {
        ru |= !strcmp(h[i].lang, "ru");
        en |= !strcmp(h[i].lang, "en");
    }
    cr_assert(ru && en, "an unfiltered search spans languages");
    n = mk_kb_search(kb, "Outlook", "en", 10, h);
    cr_assert_gt(n, 0);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(h[i].lang, "en");
    cr_assert_eq(mk_kb_search(kb, "Outlook", "de", 10, h), 0, "no documents in that language");

    cr_assert_eq(mk_kb_search(kb, "рецепт борща", "ru", 10, h), 0);
    cr_assert_eq(mk_kb_search(kb, "What's the weather like in Paris?", "en", 10, h), 0);
    n = mk_kb_search(kb, "Какая погода завтра в Москве?", "ru", 10, h);
    cr_assert(n == 0 || h[0].coverage < 0.45, "off-topic question has low coverage (%.2f)", n ? h[0].coverage : 0);
    cr_assert_eq(mk_kb_search(kb, "", NULL, 10, h), 0);
    cr_assert_eq(mk_kb_search(kb, "?!... и, а", NULL, 10, h), 0);
}

Test(demo, argument_checks)
{
    cr_assert_eq(mk_kb_load_demo(kb), 0);
    struct mk_kb_hit h[2];
    cr_assert_eq(mk_kb_search(NULL, "x", NULL, 2, h), MK_EINVAL);
    cr_assert_eq(mk_kb_search(kb, NULL, NULL, 2, h), MK_EINVAL);
    cr_assert_eq(mk_kb_search(kb, "printer", NULL, 2, NULL), MK_EINVAL);
    cr_assert_eq(mk_kb_search(kb, "printer", NULL, MK_KB_MAX_K + 1, h), MK_EINVAL);
    cr_assert_eq(mk_kb_search(kb, "printer", NULL, 0, NULL), 0);
    cr_assert_eq(mk_kb_search(kb, "printer", NULL, 2, h), 2, "k caps the results");

    /* A huge query with many distinct words is bounded, and still finds things. */
    static char big[64 * 1024];
    size_t len = 0;
    for (int i = 0; len + 32 < sizeof big; i++)
        len += (size_t)snprintf(big + len, sizeof big - len, "w%dx printer ", i);
    cr_assert_geq(mk_kb_search(kb, big, NULL, 2, h), 0);
}

/* --- adding documents: bad input ------------------------------------------------------- */

TestSuite(add, .init = setup, .fini = teardown, .timeout = 30);

Test(add, rejects_bad_input_and_leaves_kb_unchanged)
{
    cr_assert_eq(add_md(kb, "ok", "en", "# Ok\n\nFine text.\n"), 0);
    size_t docs = mk_kb_document_count(kb), chunks = mk_kb_chunk_count(kb);

    cr_assert_eq(mk_kb_add_document(NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_kb_add_document(kb, NULL), MK_EINVAL);
    cr_assert_eq(add_md(kb, "", "en", "x"), MK_EINVAL);
    cr_assert_eq(add_md(kb, "has space", "en", "x"), MK_EINVAL);
    cr_assert_eq(add_md(kb, "../etc", "en", "x"), MK_EINVAL);
    cr_assert_eq(add_md(kb, "id", "EN", "x"), MK_EINVAL);
    cr_assert_eq(add_md(kb, "id", "english", "x"), MK_EINVAL);
    cr_assert_eq(add_md(kb, "id", "en", "bad \xff utf8"), MK_EBADUTF8);
    struct mk_kb_doc d = {.id = "nul", .lang = "en", .text = "a\0b", .text_len = 3};
    cr_assert_eq(mk_kb_add_document(kb, &d), MK_EBADUTF8);
    d = (struct mk_kb_doc){.id = "nt", .lang = "en", .text = NULL, .text_len = 3};
    cr_assert_eq(mk_kb_add_document(kb, &d), MK_EINVAL);
    d = (struct mk_kb_doc){.id = "big", .lang = "en", .text = "x", .text_len = MK_KB_MAX_DOC_BYTES + 1};
    cr_assert_eq(mk_kb_add_document(kb, &d), MK_ETOOBIG);
    cr_assert_eq(add_md(kb, "ok", "en", "# Again\n"), MK_EEXISTS);

    cr_assert_eq(mk_kb_document_count(kb), docs);
    cr_assert_eq(mk_kb_chunk_count(kb), chunks);
    /* Same id in another language is a different document (the pair of a translation). */
    cr_assert_eq(add_md(kb, "ok", "ru", "# Хорошо\n\nТекст.\n"), 0);
    mk_kb_free(NULL);
}

Test(add, new_documents_join_the_index)
{
    cr_assert_eq(add_md(kb, "a", "en", "# Router\n\nThe router lives in the server room.\n"), 0);
    cr_assert_eq(add_md(kb, "b", "en", "# Badge\n\nYour badge opens the server room and the router cupboard.\n"), 0);
    struct mk_kb_hit h[4];
    int n = mk_kb_search(kb, "router", NULL, 4, h);
    cr_assert_eq(n, 2, "postings of an existing term grow with a new document");
    cr_assert_str_eq(h[0].doc_id, "a");
    n = mk_kb_search(kb, "badge", NULL, 4, h);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(h[0].doc_id, "b");
}

/* --- threads ---------------------------------------------------------------------------- */

static void *searcher(void *arg)
{
    mk_kb *k = arg;
    for (int i = 0; i < 200; i++) {
        struct mk_kb_hit h[3];
        int n = mk_kb_search(k, i % 2 ? "принтеры не печатают" : "reset password", i % 2 ? "ru" : "en", 3, h);
        if (n <= 0 || strcmp(h[0].doc_id, i % 2 ? "printer-queue" : "password-reset") != 0)
            return (void *)1;
    }
    return NULL;
}

Test(demo, concurrent_searches_agree)
{
    cr_assert_eq(mk_kb_load_demo(kb), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, searcher, kb), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_expect_null(r, "thread %d got a wrong answer", i);
    }
}
