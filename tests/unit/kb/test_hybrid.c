/* Tests for the kb's retrieval additions: Kazakh suffix stripping, reciprocal rank
 * fusion, hybrid (BM25 + vector) search with its filters and confidence signals, and
 * caller-cut documents that are replaced or removed (tombstones, change hooks). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/mk_error.h"
#include "embed/mk_embed.h"
#include "kb/mk_kb.h"

static size_t stem_len(const char *w) { return mk_kb_kazakh_stem(w, strlen(w)); }

static void expect_stem(const char *w, const char *stem)
{
    size_t n = stem_len(w);
    cr_expect(n == strlen(stem) && memcmp(w, stem, n) == 0, "stem of %s is %.*s, expected %s", w, (int)n, w, stem);
}

TestSuite(kazakh, .timeout = 30);

Test(kazakh, endings_are_stripped_to_a_shared_stem)
{
    expect_stem("принтерлеріңізді", "принтер"); /* plural + possessive (polite) + accusative */
    expect_stem("принтерді", "принтер");
    expect_stem("принтерлер", "принтер");
    expect_stem("құпиясөзді", "құпиясөз");
    expect_stem("құпиясөзіңізді", "құпиясөз");
    /* Forms of one word meet even where the root itself is over-stripped. */
    size_t a = stem_len("пернетақта"), b = stem_len("пернетақтаны"), c = stem_len("пернетақтада");
    cr_expect(a == b && b == c, "пернетақта forms: %zu %zu %zu", a, b, c);
    cr_expect_eq(stem_len("қосу"), stem_len("қосыңыз"), "verbal noun and polite imperative meet");
    cr_expect_eq(stem_len("орнату"), stem_len("орнатылған"));
    /* At least three letters stay: short roots are left alone. */
    expect_stem("су", "су");
    expect_stem("компьютер", "компьютер");
    expect_stem("компьютерлер", "компьютер");
    cr_expect_eq(mk_kb_kazakh_stem("", 0), 0);
    cr_expect_eq(mk_kb_kazakh_stem(NULL, 5), 0);
}

Test(kazakh, tokenizer_and_search_use_it)
{
    mk_kb *kb = mk_kb_new();
    cr_assert_not_null(kb);
    struct mk_kb_doc d = {.id = "printer", .lang = "kk", .title = "Принтерді орнату",
                          .text = "Принтерлер желі арқылы қосылады. Драйверді орнату керек.\n"};
    d.text_len = strlen(d.text);
    cr_assert_eq(mk_kb_add_document(kb, &d), 0);
    d = (struct mk_kb_doc){.id = "mail", .lang = "kk", .title = "Пошта",
                           .text = "Пошта жәшігі толып қалса, ескі хаттарды жойыңыз.\n"};
    d.text_len = strlen(d.text);
    cr_assert_eq(mk_kb_add_document(kb, &d), 0);
    struct mk_kb_hit h[2];
    int n = mk_kb_search(kb, "принтерімді қалай орнатамын", "kk", 2, h);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(h[0].doc_id, "printer", "inflected forms meet through the stemmer");
    n = mk_kb_search(kb, "хаттарымды жою", NULL, 2, h);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(h[0].doc_id, "mail", "a Kazakh query found without a language filter");
    mk_kb_free(kb);
}

TestSuite(rrf, .timeout = 30);

Test(rrf, fuses_by_reciprocal_rank)
{
    const uint64_t a[] = {1, 2, 3}, b[] = {3, 1, 4};
    const uint64_t *lists[] = {a, b};
    size_t lens[] = {3, 3};
    uint64_t ids[8];
    double sc[8];
    int n = mk_kb_rrf(lists, lens, NULL, 2, 60, ids, sc, 8);
    cr_assert_eq(n, 4);
    cr_expect_eq(ids[0], 1);
    cr_expect_eq(ids[1], 3);
    cr_expect_eq(ids[2], 2);
    cr_expect_eq(ids[3], 4);
    cr_expect_float_eq(sc[0], 1.0 / 61 + 1.0 / 62, 1e-12);
    cr_expect_float_eq(sc[1], 1.0 / 63 + 1.0 / 61, 1e-12);
    cr_expect_float_eq(sc[3], 1.0 / 63, 1e-12);

    /* Weights tilt the result; k = 0 is plain reciprocal rank. */
    double w[] = {1, 3};
    n = mk_kb_rrf(lists, lens, w, 2, 0, ids, sc, 2);
    cr_assert_eq(n, 2, "capped at cap");
    cr_expect_eq(ids[0], 3);
    cr_expect_float_eq(sc[0], 1.0 / 3 + 3.0, 1e-12);

    /* An id repeated within one list counts once, at its first rank. */
    const uint64_t dup[] = {7, 7, 8};
    const uint64_t *one[] = {dup};
    size_t l1[] = {3};
    n = mk_kb_rrf(one, l1, NULL, 1, 10, ids, sc, 8);
    cr_assert_eq(n, 2);
    cr_expect_eq(ids[0], 7);
    cr_expect_float_eq(sc[0], 1.0 / 11, 1e-12);

    /* Ties go to the smaller id; empty input gives nothing. */
    const uint64_t x[] = {9}, y[] = {5};
    const uint64_t *tie[] = {x, y};
    size_t lt[] = {1, 1};
    n = mk_kb_rrf(tie, lt, NULL, 2, 1, ids, sc, 8);
    cr_assert_eq(n, 2);
    cr_expect_eq(ids[0], 5);
    size_t zero[] = {0, 0};
    cr_expect_eq(mk_kb_rrf(lists, zero, NULL, 2, 60, ids, sc, 8), 0);

    cr_expect_eq(mk_kb_rrf(lists, lens, NULL, 2, -1, ids, sc, 8), MK_EINVAL);
    cr_expect_eq(mk_kb_rrf(lists, lens, NULL, 2, NAN, ids, sc, 8), MK_EINVAL);
    double bad[] = {1, -2};
    cr_expect_eq(mk_kb_rrf(lists, lens, bad, 2, 60, ids, sc, 8), MK_EINVAL);
    cr_expect_eq(mk_kb_rrf(NULL, lens, NULL, 2, 60, ids, sc, 8), MK_EINVAL);
    cr_expect_eq(mk_kb_rrf(lists, lens, NULL, 2, 60, NULL, sc, 8), MK_EINVAL);
}

/* --- hybrid ------------------------------------------------------------------------------ */

static mk_kb *kb;
static mk_embedder *emb;

static void put(const char *id, const char *lang, const char *agent, const char *title, const char *text,
                const char *hash, bool *changed)
{
    struct mk_kb_chunk_in c = {.section = "", .text = text, .text_len = strlen(text)};
    struct mk_kb_doc d = {.id = id, .lang = lang, .agent = agent, .title = title, .content_hash = hash};
    int rc = mk_kb_put_chunks(kb, &d, &c, 1, changed);
    cr_assert_eq(rc, 0, "put %s: %s", id, mk_strerror(rc));
}

static void setup(void)
{
    kb = mk_kb_new();
    cr_assert_not_null(kb);
    cr_assert_eq(mk_embedder_new(NULL, &emb), 0);
    put("vpn", "en", "network", "VPN access", "Start the VPN client and sign in with your hardware token.", NULL, NULL);
    put("wifi", "en", "network", "Office Wi-Fi", "Join the office wireless network with your laptop.", NULL, NULL);
    put("refund", "en", "billing", "Refunds", "Refunds are paid back to the card within ten days.", NULL, NULL);
    put("contacts", "en", "", "Helpdesk contacts", "Call the helpdesk at extension 4400 any time.", NULL, NULL);
    put("vpn", "ru", "network", "Доступ по VPN", "Запустите VPN-клиент и войдите с аппаратным токеном.", NULL, NULL);
    cr_assert_eq(mk_kb_enable_vectors(kb, emb), 0, "vectors for what is already there");
}

static void teardown(void)
{
    mk_kb_free(kb);
    mk_embedder_free(emb);
}

TestSuite(hybrid, .init = setup, .fini = teardown, .timeout = 60);

Test(hybrid, both_rankings_fused_with_scores_and_confidence)
{
    struct mk_kb_search_opts o = {.k = 5, .lang = "en"};
    struct mk_kb_result r[5];
    struct mk_kb_confidence c;
    int n = mk_kb_search_hybrid(kb, "sign in to the VPN with a token", &o, r, &c);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(r[0].hit.doc_id, "vpn");
    cr_expect_str_eq(r[0].hit.lang, "en", "the language filter holds");
    cr_expect_eq(r[0].bm25_rank, 1);
    cr_expect_eq(r[0].vector_rank, 1);
    cr_expect_gt(r[0].bm25, 0);
    cr_expect_gt(r[0].vector, 0);
    double k = MK_KB_DEFAULT_RRF_K;
    cr_expect_float_eq(r[0].fused, 2.0 / (k + 1), 1e-9, "first in both lists");
    cr_expect_float_eq(c.top_fused, 1.0, 1e-9);
    cr_expect_gt(c.margin, 0);
    cr_expect_leq(c.margin, 1);
    cr_expect(c.agree);
    cr_expect_float_eq(c.top_coverage, r[0].hit.coverage, 1e-12);
    cr_expect_str_eq(c.query_lang, "en");
    for (int i = 1; i < n; i++)
        cr_expect_geq(r[i - 1].fused, r[i].fused, "sorted by fused score");

    /* Vector-only hits still report their BM25 score (0 when no word matches). */
    o.mode = MK_KB_VECTOR;
    n = mk_kb_search_hybrid(kb, "sign in to the VPN with a token", &o, r, &c);
    cr_assert_gt(n, 0);
    cr_expect_eq(r[0].bm25_rank, 0, "BM25 did not run");
    cr_expect_gt(r[0].vector, 0);
    o.mode = MK_KB_BM25;
    n = mk_kb_search_hybrid(kb, "extension 4400", &o, r, &c);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(r[0].hit.doc_id, "contacts");
    cr_expect_float_eq(r[0].vector, 0, 1e-12, "vectors off in BM25 mode");
}

Test(hybrid, agent_language_and_per_document_filters)
{
    struct mk_kb_search_opts o = {.k = 10, .agent = "billing"};
    struct mk_kb_result r[10];
    int n = mk_kb_search_hybrid(kb, "VPN token helpdesk refund", &o, r, NULL);
    cr_assert_gt(n, 0);
    for (int i = 0; i < n; i++) {
        cr_expect(!strcmp(r[i].hit.agent, "billing") || !strcmp(r[i].hit.agent, ""),
                  "agent %s leaked into billing's search", r[i].hit.agent);
        cr_expect_str_neq(r[i].hit.doc_id, "vpn");
    }
    o = (struct mk_kb_search_opts){.k = 10, .lang = "ru"};
    n = mk_kb_search_hybrid(kb, "VPN токен", &o, r, NULL);
    cr_assert_eq(n, 1, "one Russian document, in both rankings");
    cr_expect_str_eq(r[0].hit.lang, "ru");
    o = (struct mk_kb_search_opts){.k = 10, .max_per_doc = 1};
    n = mk_kb_search_hybrid(kb, "VPN", &o, r, NULL);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            cr_expect_neq(r[i].hit.doc_index, r[j].hit.doc_index);

    cr_expect_eq(mk_kb_search_hybrid(kb, "x", &(struct mk_kb_search_opts){.k = 0}, r, NULL), MK_EINVAL);
    cr_expect_eq(mk_kb_search_hybrid(kb, "x", &(struct mk_kb_search_opts){.k = MK_KB_MAX_K + 1}, r, NULL),
                 MK_EINVAL);
    cr_expect_eq(mk_kb_search_hybrid(kb, NULL, &(struct mk_kb_search_opts){.k = 1}, r, NULL), MK_EINVAL);
    cr_expect_eq(mk_kb_search_hybrid(kb, "x", &(struct mk_kb_search_opts){.k = 1, .rrf_k = -1}, r, NULL),
                 MK_EINVAL);
    cr_expect_eq(mk_kb_search_hybrid(kb, "x", &(struct mk_kb_search_opts){.k = 1, .w_bm25 = NAN}, r, NULL),
                 MK_EINVAL);
    cr_expect_eq(mk_kb_enable_vectors(kb, emb), MK_EEXISTS);
    /* Invalid bytes in a query act as spaces. */
    n = mk_kb_search_hybrid(kb, "VPN\xff\xfe token", &(struct mk_kb_search_opts){.k = 2, .lang = "en"}, r, NULL);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(r[0].hit.doc_id, "vpn");
}

struct hook_log {
    char ids[8][32];
    size_t n;
};

static void on_change(void *arg, const char *const *ids, size_t n)
{
    struct hook_log *h = arg;
    for (size_t i = 0; i < n && h->n < 8; i++)
        snprintf(h->ids[h->n++], sizeof h->ids[0], "%s", ids[i]);
}

Test(hybrid, replace_and_remove_tombstone_with_hooks)
{
    struct hook_log log = {.n = 0};
    cr_assert_eq(mk_kb_on_change(kb, on_change, &log), 0);
    struct mk_kb_hit old;
    long di = mk_kb_find_document(kb, "network", "wifi", "en");
    cr_assert_geq(di, 0);
    size_t first, count;
    cr_assert(mk_kb_document_chunks(kb, (size_t)di, &first, &count));
    cr_assert(mk_kb_chunk(kb, first, &old));

    bool changed = true;
    put("wifi", "en", "network", "Office Wi-Fi", "Join the office wireless network with your laptop.", NULL, &changed);
    cr_expect_not(changed, "same content: no-op");
    cr_expect_eq(log.n, 0);
    put("wifi", "en", "network", "Office Wi-Fi", "The guest network needs a voucher from reception.", NULL, &changed);
    cr_expect(changed);
    cr_assert_eq(log.n, 1);
    cr_expect_str_eq(log.ids[0], "wifi");
    cr_expect_str_eq(old.text, "Join the office wireless network with your laptop.",
                     "hits taken before a replacement stay valid");
    struct mk_kb_doc_info info;
    cr_assert(mk_kb_document(kb, (size_t)di, &info));
    cr_expect_not(info.live);
    cr_expect_eq(mk_kb_document_count(kb), 5);

    struct mk_kb_result r[5];
    struct mk_kb_search_opts o = {.k = 5, .mode = MK_KB_VECTOR};
    int n = mk_kb_search_hybrid(kb, "guest voucher reception", &o, r, NULL);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(r[0].hit.doc_id, "wifi", "the new version has a vector");
    for (int i = 0; i < n; i++)
        cr_expect_neq(r[i].hit.chunk_index, old.chunk_index, "the old vector is gone");

    cr_expect_eq(mk_kb_remove_document(kb, NULL, "vpn", NULL), 2, "both languages");
    cr_expect_eq(log.n, 2);
    o.mode = MK_KB_HYBRID;
    n = mk_kb_search_hybrid(kb, "VPN hardware token", &o, r, NULL);
    for (int i = 0; i < n; i++)
        cr_expect_str_neq(r[i].hit.doc_id, "vpn");
    cr_expect_eq(mk_kb_remove_document(kb, NULL, "vpn", NULL), 0);
    cr_expect_eq(mk_kb_remove_document(kb, NULL, "../x", NULL), MK_EINVAL);

    /* Caller chunks are checked like documents. */
    struct mk_kb_chunk_in c = {.text = "", .text_len = 0};
    struct mk_kb_doc d = {.id = "e", .lang = "en"};
    cr_expect_eq(mk_kb_add_chunks(kb, &d, &c, 1), MK_EINVAL);
    c = (struct mk_kb_chunk_in){.text = "bad \xff", .text_len = 5};
    cr_expect_eq(mk_kb_add_chunks(kb, &d, &c, 1), MK_EBADUTF8);
    static char big[MK_KB_MAX_CHUNK_BYTES + 2];
    memset(big, 'a', sizeof big - 1);
    c = (struct mk_kb_chunk_in){.text = big, .text_len = sizeof big - 1};
    cr_expect_eq(mk_kb_add_chunks(kb, &d, &c, 1), MK_ETOOBIG);
    c = (struct mk_kb_chunk_in){.text = "ok", .text_len = 2, .lang = "EN"};
    cr_expect_eq(mk_kb_add_chunks(kb, &d, &c, 1), MK_EINVAL);
    d.agent = "bad agent";
    c.lang = NULL;
    cr_expect_eq(mk_kb_add_chunks(kb, &d, &c, 1), MK_EINVAL);
    cr_expect_eq(mk_kb_add_chunks(kb, &d, &c, 0), MK_EINVAL);
    cr_expect_eq(mk_kb_on_change(kb, NULL, NULL), MK_EINVAL);
}
