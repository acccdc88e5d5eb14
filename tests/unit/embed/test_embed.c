/* Unit tests of the built-in embedder: determinism, unit norm, odd input, similarity
 * in Russian, Kazakh and English, negation, thread safety, options, IDF tables and
 * their files (round trip and corruption). */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "embed/mk_embed.h"

static mk_embedder *make(const struct mk_embed_options *o)
{
    mk_embedder *e = NULL;
    cr_assert_eq(mk_embedder_new(o, &e), 0);
    cr_assert_not_null(e);
    return e;
}

static float *vec(const mk_embedder *e, const char *s)
{
    float *v = malloc(mk_embedder_dim(e) * sizeof *v);
    cr_assert_not_null(v);
    int rc = mk_embed_text(e, s, strlen(s), v);
    cr_assert_eq(rc, 0, "embedding \"%s\": %s", s, mk_strerror(rc));
    return v;
}

static double dot(const float *a, const float *b, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static double sim(const mk_embedder *e, const char *a, const char *b)
{
    float *va = vec(e, a), *vb = vec(e, b);
    double s = dot(va, vb, mk_embedder_dim(e));
    free(va);
    free(vb);
    return s;
}

static void assert_unit(const float *v, uint32_t n)
{
    double s = dot(v, v, n);
    cr_assert(fabs(s - 1.0) < 1e-5, "norm^2 = %f", s);
    for (uint32_t i = 0; i < n; i++)
        cr_assert(isfinite(v[i]));
}

Test(embed, defaults_and_names)
{
    mk_embedder *e = make(NULL);
    cr_assert_eq(mk_embedder_dim(e), MK_EMBED_DEFAULT_DIM);
    cr_assert_str_eq(mk_embedder_name(e), "mayak-embed-512");
    cr_assert_neq(mk_embedder_fingerprint(e), 0);
    mk_embedder_free(e);
    mk_embedder_free(NULL);
}

Test(embed, bad_options)
{
    mk_embedder *e = (mk_embedder *)1;
    struct mk_embed_options o = {.dim = 8};
    cr_assert_eq(mk_embedder_new(&o, &e), MK_EINVAL);
    cr_assert_null(e);
    o = (struct mk_embed_options){.dim = MK_EMBED_MAX_DIM + 1};
    cr_assert_eq(mk_embedder_new(&o, &e), MK_EINVAL);
    o = (struct mk_embed_options){.ngram_min = 5, .ngram_max = 3};
    cr_assert_eq(mk_embedder_new(&o, &e), MK_EINVAL);
    o = (struct mk_embed_options){.ngram_max = 9};
    cr_assert_eq(mk_embedder_new(&o, &e), MK_EINVAL);
    o = (struct mk_embed_options){.hashes = 5};
    cr_assert_eq(mk_embedder_new(&o, &e), MK_EINVAL);
    o = (struct mk_embed_options){.flags = 1u << 20};
    cr_assert_eq(mk_embedder_new(&o, &e), MK_EINVAL);
    cr_assert_eq(mk_embedder_new(NULL, NULL), MK_EINVAL);

    e = make(NULL);
    float v[MK_EMBED_DEFAULT_DIM];
    cr_assert_eq(mk_embed_text(e, NULL, 3, v), MK_EINVAL);
    cr_assert_eq(mk_embed_text(e, "x", 1, NULL), MK_EINVAL);
    cr_assert_eq(mk_embed_text(NULL, "x", 1, v), MK_EINVAL);
    /* The length is checked before anything is read. */
    cr_assert_eq(mk_embed_text(e, "x", (size_t)MK_EMBED_MAX_TEXT_BYTES + 1, v), MK_ETOOBIG);
    mk_embedder_free(e);
}

Test(embed, deterministic)
{
    const char *texts[] = {"How do I reset my password?", "Как сбросить пароль от почты?",
                           "Құпиясөзді қалай өзгертуге болады?", "", "🙂 ok"};
    mk_embedder *a = make(NULL), *b = make(NULL);
    cr_assert_eq(mk_embedder_fingerprint(a), mk_embedder_fingerprint(b));
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        float *x = vec(a, texts[i]), *y = vec(a, texts[i]), *z = vec(b, texts[i]);
        cr_assert_eq(memcmp(x, y, MK_EMBED_DEFAULT_DIM * sizeof *x), 0);
        cr_assert_eq(memcmp(x, z, MK_EMBED_DEFAULT_DIM * sizeof *x), 0);
        free(x);
        free(y);
        free(z);
    }
    /* Another seed is another projection: different vectors and fingerprint. */
    struct mk_embed_options o = {.seed = 12345};
    mk_embedder *c = make(&o);
    cr_assert_neq(mk_embedder_fingerprint(a), mk_embedder_fingerprint(c));
    float *x = vec(a, texts[0]), *y = vec(c, texts[0]);
    cr_assert_neq(memcmp(x, y, MK_EMBED_DEFAULT_DIM * sizeof *x), 0);
    free(x);
    free(y);
    mk_embedder_free(a);
    mk_embedder_free(b);
    mk_embedder_free(c);
}

Test(embed, unit_norm_on_odd_input)
{
    mk_embedder *e = make(NULL);
    static const char nul_inside[] = "printer\0error";
    const char *texts[] = {"", "   \t\n  ", "?!...,;", "🙂", "👍👍👍", "a", "1234567890",
                           "https://example.com/a/very/long/path?with=query&and=more&stuff=aaaaaaaaaaaaaaaaaaaa",
                           "ﷺ ﷺ ﷺ", "Z̤̈ä̤l̤̈g̤̈ö̤", "\xe2\x80\x8b\xe2\x80\x8b", "ӘӨҮҰҚҒҢҺІ"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        float *v = vec(e, texts[i]);
        assert_unit(v, mk_embedder_dim(e));
        free(v);
    }
    float v[MK_EMBED_DEFAULT_DIM];
    cr_assert_eq(mk_embed_text(e, nul_inside, sizeof nul_inside - 1, v), 0);
    assert_unit(v, MK_EMBED_DEFAULT_DIM);
    /* A long text (100 KB, past the stack buffer) works and is unit length. */
    size_t n = 100 * 1024;
    char *big = malloc(n);
    cr_assert_not_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = "абв где "[i % 8] & 0x7f ? "printer scanner "[i % 16] : ' ';
    cr_assert_eq(mk_embed_text(e, big, n, v), 0);
    assert_unit(v, MK_EMBED_DEFAULT_DIM);
    free(big);
    mk_embedder_free(e);
}

Test(embed, empty_texts_share_one_vector_and_symbols_differ)
{
    mk_embedder *e = make(NULL);
    cr_assert(sim(e, "", "   ") > 0.9999);
    cr_assert(sim(e, "", "?!,.") > 0.9999);
    cr_assert(sim(e, "", "\xe2\x80\x8b") > 0.9999); /* zero-width space only */
    cr_assert(sim(e, "", "👍") < 0.5);
    cr_assert(sim(e, "👍", "👎") < 0.5);
    cr_assert(sim(e, "👍", "👍") > 0.9999);
    mk_embedder_free(e);
}

Test(embed, invalid_utf8)
{
    mk_embedder *e = make(NULL);
    float v[MK_EMBED_DEFAULT_DIM];
    const char *bad[] = {"abc\xff", "\xc0\xaf", "\xed\xa0\x80", "пароль\xd0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v[0] = 42;
        cr_assert_eq(mk_embed_text(e, bad[i], strlen(bad[i]), v), MK_EBADUTF8);
        cr_assert_eq(v[0], 0); /* zero-filled on failure */
    }
    mk_embedder_free(e);

    struct mk_embed_options o = {.lossy_utf8 = true};
    e = make(&o);
    /* In lossy mode an invalid byte is a space. */
    cr_assert(sim(e, "printer\xffscanner", "printer scanner") > 0.9999);
    cr_assert(sim(e, "\xff\xfe", "") > 0.9999);
    mk_embedder_free(e);
}

Test(embed, normalisation)
{
    mk_embedder *e = make(NULL);
    cr_assert(sim(e, "PRINTER Error", "printer error") > 0.9999);
    cr_assert(sim(e, "ｐｒｉｎｔｅｒ", "printer") > 0.9999);                  /* NFKC */
    cr_assert(sim(e, "Wi-Fi", "wifi") > 0.9999);                             /* inner hyphen */
    cr_assert(sim(e, "ЁЛКА", "елка") > 0.9999);                             /* ё = е, case */
    cr_assert(sim(e, "пар\xc2\xadоль", "пароль") > 0.9999);                  /* soft hyphen */
    cr_assert(sim(e, "printer\xc2\xa0" "error", "printer error") > 0.9999);  /* NBSP: Unicode vs ASCII path */
    cr_assert(sim(e, "Printer, error!", "printer error") > 0.9999);
    mk_embedder_free(e);
}

struct triple { const char *a, *near, *far; };

Test(embed, similar_closer_than_unrelated)
{
    static const struct triple t[] = {
        /* English */
        {"How do I reset my password?", "I forgot my password, how can I reset it", "My printer is out of paper"},
        {"The Wi-Fi keeps disconnecting", "wifi disconnects all the time", "Where can I download my invoice?"},
        {"I want a refund for my order", "how to get my money refunded", "The screen brightness is too low"},
        /* Russian */
        {"Как сбросить пароль?", "Забыл пароль, как его восстановить", "Принтер не печатает"},
        {"Не работает Wi-Fi на ноутбуке", "ноутбук не подключается к wifi", "Где скачать счёт за май?"},
        {"Верните деньги за заказ", "хочу вернуть деньги за заказ", "Как настроить почту в Outlook"},
        /* Kazakh */
        {"Құпиясөзді қалай өзгертуге болады?", "құпиясөзді өзгерту", "Принтер басып шығармайды"},
        {"Интернет жұмыс істемейді", "интернетім жұмыс істемей тұр", "Төлем картасын қалай қосамын?"},
        {"Ақшамды қайтарыңыз", "ақшаны қайтару керек", "Экранның жарықтығы төмен"},
    };
    mk_embedder *e = make(NULL);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double near = sim(e, t[i].a, t[i].near), far = sim(e, t[i].a, t[i].far);
        cr_assert(near > far + 0.1, "%s: near %.3f far %.3f", t[i].a, near, far);
    }
    mk_embedder_free(e);
}

Test(embed, inflections_overlap)
{
    mk_embedder *e = make(NULL);
    /* Stemming and character n-grams make word forms close... */
    cr_assert(sim(e, "принтеры", "принтер") > 0.5);
    cr_assert(sim(e, "printers", "printer") > 0.5);
    cr_assert(sim(e, "құпиясөздер", "құпиясөз") > 0.5);
    cr_assert(sim(e, "pasword", "password") > 0.3); /* typos still overlap */
    cr_assert(sim(e, "recieve", "receive") > 0.1);
    /* ...while different words stay apart. */
    cr_assert(sim(e, "printer", "scanner") < 0.3);
    mk_embedder_free(e);
}

Test(embed, negation_and_entities_stay_visible)
{
    mk_embedder *e = make(NULL);
    double pos = sim(e, "принтер печатает", "принтер не печатает");
    cr_assert(pos < 0.9, "ru negation similarity %.3f", pos);
    pos = sim(e, "the vpn works", "the vpn does not work");
    cr_assert(pos < 0.9, "en negation similarity %.3f", pos);
    pos = sim(e, "принтер басып шығарады", "принтер басып шығармайды");
    cr_assert(pos < 0.95, "kk negation similarity %.3f", pos);
    /* Numbers are entities: no n-gram overlap between different numbers. */
    double num = sim(e, "error 404", "error 403");
    cr_assert(num < 0.9, "numbers %.3f", num);
    mk_embedder_free(e);
}

Test(embed, feature_switches_change_vectors)
{
    unsigned flags[] = {MK_EMBED_NO_CHARS, MK_EMBED_NO_BIGRAMS, MK_EMBED_NO_STEM, MK_EMBED_NO_STOPWORDS,
                        MK_EMBED_NO_SQRT};
    mk_embedder *base = make(NULL);
    float *b = vec(base, "the printers are not printing");
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        struct mk_embed_options o = {.flags = flags[i]};
        mk_embedder *e = make(&o);
        cr_assert_neq(mk_embedder_fingerprint(e), mk_embedder_fingerprint(base));
        float *v = vec(e, "the printers are not printing");
        assert_unit(v, mk_embedder_dim(e));
        cr_assert_neq(memcmp(v, b, mk_embedder_dim(e) * sizeof *v), 0, "flag %u", flags[i]);
        free(v);
        mk_embedder_free(e);
    }
    free(b);
    mk_embedder_free(base);
}

Test(embed, batch_matches_single)
{
    mk_embedder *e = make(NULL);
    const char *texts[] = {"first text", "второй текст", "үшінші мәтін", ""};
    uint32_t d = mk_embedder_dim(e);
    float *out = calloc(4 * d, sizeof *out);
    cr_assert_eq(mk_embed_batch(e, texts, NULL, 4, out, NULL), 0);
    for (int i = 0; i < 4; i++) {
        float *v = vec(e, texts[i]);
        cr_assert_eq(memcmp(v, out + i * d, d * sizeof *v), 0);
        free(v);
    }
    const char *bad[] = {"ok", "fine", "bad\xff", "never"};
    size_t failed = 99;
    cr_assert_eq(mk_embed_batch(e, bad, NULL, 4, out, &failed), MK_EBADUTF8);
    cr_assert_eq(failed, 2);
    size_t lens[] = {2, 4};
    cr_assert_eq(mk_embed_batch(e, bad, lens, 2, out, NULL), 0);
    cr_assert_eq(mk_embed_batch(e, NULL, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(mk_embed_batch(e, NULL, NULL, 1, out, NULL), MK_EINVAL);
    free(out);
    mk_embedder_free(e);
}

/* --- threads ------------------------------------------------------------------ */

#define NT 8
static const char *thread_texts[NT] = {
    "Как сбросить пароль?", "printer offline again", "Интернет жұмыс істемейді", "wifi не работает",
    "refund please", "Ақшамды қайтарыңыз", "почта не приходит", "VPN drops every hour",
};
struct tjob { const mk_embedder *e; const float *ref; int bad; };

static void *thread_main(void *arg)
{
    struct tjob *j = arg;
    uint32_t d = mk_embedder_dim(j->e);
    float *v = malloc(d * sizeof *v);
    for (int round = 0; round < 300 && v; round++)
        for (int i = 0; i < NT; i++) {
            int k = (i + round) % NT;
            if (mk_embed_text(j->e, thread_texts[k], strlen(thread_texts[k]), v) != 0 ||
                memcmp(v, j->ref + (size_t)k * d, d * sizeof *v) != 0)
                j->bad++;
        }
    free(v);
    return NULL;
}

Test(embed, concurrent_use_of_one_embedder)
{
    mk_embedder *e = make(NULL);
    uint32_t d = mk_embedder_dim(e);
    float *ref = malloc((size_t)NT * d * sizeof *ref);
    cr_assert_eq(mk_embed_batch(e, thread_texts, NULL, NT, ref, NULL), 0);
    pthread_t t[6];
    struct tjob jobs[6];
    for (int i = 0; i < 6; i++) {
        jobs[i] = (struct tjob){e, ref, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(jobs[i].bad, 0, "thread %d saw %d differing vectors", i, jobs[i].bad);
    }
    free(ref);
    mk_embedder_free(e);
}

/* --- IDF -------------------------------------------------------------------------- */

static const char *corpus[] = {
    "the printer is broken", "the wifi is slow", "the invoice is missing", "the vpn is down",
    "the password is expired", "the screen is dark", "the battery is empty", "the mail is late",
};
#define NCORPUS (sizeof corpus / sizeof corpus[0])

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mk-embed-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void path_in_tmp(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

static mk_embed_idf *fit(void)
{
    mk_embedder *e = make(NULL);
    mk_embed_idf *idf = NULL;
    cr_assert_eq(mk_embed_fit_idf(e, corpus, NULL, NCORPUS, &idf), 0);
    cr_assert_not_null(idf);
    cr_assert_eq(mk_embed_idf_docs(idf), NCORPUS);
    mk_embedder_free(e);
    return idf;
}

Test(embed_idf, fitted_table_discounts_common_words)
{
    mk_embed_idf *idf = fit();
    mk_embedder *plain = make(NULL);
    struct mk_embed_options o = {.idf = idf};
    mk_embedder *weighted = make(&o);
    mk_embed_idf_free(idf); /* the embedder keeps its own copy */
    cr_assert_neq(mk_embedder_fingerprint(plain), mk_embedder_fingerprint(weighted));
    /* "is" appears in every document: sharing only it matters less with IDF. */
    double before = sim(plain, "printer is", "battery is");
    double after = sim(weighted, "printer is", "battery is");
    cr_assert(after < before, "before %.3f after %.3f", before, after);
    float *v = vec(weighted, "the printer is broken");
    assert_unit(v, mk_embedder_dim(weighted));
    free(v);
    mk_embedder_free(plain);
    mk_embedder_free(weighted);
}

Test(embed_idf, bad_fit_arguments)
{
    mk_embedder *e = make(NULL);
    mk_embed_idf *idf = (mk_embed_idf *)1;
    cr_assert_eq(mk_embed_fit_idf(e, corpus, NULL, 0, &idf), MK_EINVAL);
    cr_assert_null(idf);
    cr_assert_eq(mk_embed_fit_idf(NULL, corpus, NULL, 1, &idf), MK_EINVAL);
    cr_assert_eq(mk_embed_fit_idf(e, NULL, NULL, 1, &idf), MK_EINVAL);
    const char *bad[] = {"ok", "\xff"};
    cr_assert_eq(mk_embed_fit_idf(e, bad, NULL, 2, &idf), MK_EBADUTF8);
    cr_assert_null(idf);
    mk_embedder_free(e);
    /* A table fitted with stemming does not fit an embedder without it. */
    idf = fit();
    struct mk_embed_options o = {.idf = idf, .flags = MK_EMBED_NO_STEM};
    mk_embedder *x = (mk_embedder *)1;
    cr_assert_eq(mk_embedder_new(&o, &x), MK_EINVAL);
    cr_assert_null(x);
    mk_embed_idf_free(idf);
    mk_embed_idf_free(NULL);
}

Test(embed_idf, save_load_round_trip)
{
    make_tmpdir();
    char path[128];
    path_in_tmp(path, sizeof path, "idf.bin");
    mk_embed_idf *idf = fit();
    cr_assert_eq(mk_embed_save_idf(idf, path), 0);
    mk_embed_idf *back = NULL;
    cr_assert_eq(mk_embed_load_idf(path, &back), 0);
    cr_assert_eq(mk_embed_idf_docs(back), NCORPUS);
    struct mk_embed_options o1 = {.idf = idf}, o2 = {.idf = back};
    mk_embedder *a = make(&o1), *b = make(&o2);
    cr_assert_eq(mk_embedder_fingerprint(a), mk_embedder_fingerprint(b));
    float *x = vec(a, "the wifi is slow today"), *y = vec(b, "the wifi is slow today");
    cr_assert_eq(memcmp(x, y, mk_embedder_dim(a) * sizeof *x), 0);
    free(x);
    free(y);
    /* Saving over an existing file replaces it. */
    cr_assert_eq(mk_embed_save_idf(back, path), 0);
    mk_embedder_free(a);
    mk_embedder_free(b);
    mk_embed_idf_free(idf);
    mk_embed_idf_free(back);
    unlink(path);
    rmdir(tmpdir);
}

static void write_file(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n);
    cr_assert_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

Test(embed_idf, corrupt_files_are_rejected)
{
    make_tmpdir();
    char good[128], bad[128];
    path_in_tmp(good, sizeof good, "good.bin");
    path_in_tmp(bad, sizeof bad, "bad.bin");
    mk_embed_idf *idf = fit();
    cr_assert_eq(mk_embed_save_idf(idf, good), 0);
    mk_embed_idf_free(idf);
    size_t n;
    unsigned char *p = read_file(good, &n);
    mk_embed_idf *out = (mk_embed_idf *)1;

    /* One flipped bit anywhere: header, weights, checksum. */
    size_t spots[] = {0, 9, 13, 25, 40, 1000, n / 2, n - 9, n - 1};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        p[spots[i]] ^= 0x10;
        write_file(bad, p, n);
        cr_assert_eq(mk_embed_load_idf(bad, &out), MK_ECORRUPT, "flip at %zu", spots[i]);
        cr_assert_null(out);
        p[spots[i]] ^= 0x10;
    }
    /* Truncated, extended, empty. */
    write_file(bad, p, n - 1);
    cr_assert_eq(mk_embed_load_idf(bad, &out), MK_ECORRUPT);
    write_file(bad, p, 10);
    cr_assert_eq(mk_embed_load_idf(bad, &out), MK_ECORRUPT);
    write_file(bad, p, 0);
    cr_assert_eq(mk_embed_load_idf(bad, &out), MK_ECORRUPT);
    unsigned char *longer = calloc(n + 1, 1);
    memcpy(longer, p, n);
    write_file(bad, longer, n + 1);
    cr_assert_eq(mk_embed_load_idf(bad, &out), MK_ECORRUPT);
    free(longer);
    /* Missing file, a directory, bad arguments. */
    char missing[128];
    path_in_tmp(missing, sizeof missing, "missing.bin");
    cr_assert_eq(mk_embed_load_idf(missing, &out), MK_ENOTFOUND);
    cr_assert_neq(mk_embed_load_idf(tmpdir, &out), 0);
    cr_assert_null(out);
    cr_assert_eq(mk_embed_load_idf(NULL, &out), MK_EINVAL);
    cr_assert_eq(mk_embed_load_idf(good, NULL), MK_EINVAL);
    cr_assert_eq(mk_embed_save_idf(NULL, bad), MK_EINVAL);
    /* Saving into a directory that does not exist fails cleanly. */
    mk_embed_idf *ok = NULL;
    cr_assert_eq(mk_embed_load_idf(good, &ok), 0);
    cr_assert_eq(mk_embed_save_idf(ok, "/nonexistent-dir/x/idf.bin"), MK_EIO);
    mk_embed_idf_free(ok);
    free(p);
    unlink(good);
    unlink(bad);
    rmdir(tmpdir);
}
