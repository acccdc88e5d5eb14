/*
 * mk_kb_token: text -> index terms, and language detection.
 *
 * Documents and queries go through the same function, so whatever is done here
 * (folding, splitting, stemming) is automatically symmetric. The steps, in order:
 *   1. invalid UTF-8 and NUL bytes become spaces (queries come from the network);
 *   2. utf8proc NFC composition + Unicode case folding, dropping default-ignorable
 *      code points (soft hyphens and zero-width joiners inside words);
 *   3. words are runs of letters, digits and combining marks; an apostrophe between
 *      letters stays inside ("don't"); a hyphen between words splits them but also
 *      yields the joined form, so "Wi-Fi" matches "wifi" and "e-mail" matches "email";
 *   4. "ё" is written "е" (Russian texts use both for the same word);
 *   5. one-letter words, minimal stop words and over-long tokens are dropped;
 *   6. stemming by script: Snowball Russian for Cyrillic, English for Latin words;
 *      our Kazakh suffix stripper (mk_kb_kazakh.c) for words with Kazakh-only letters,
 *      and for every Cyrillic word when the caller says the text is Kazakh.
 */
#include <libstemmer.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "kb/mk_kb_int.h"

/* Function words of questions and articles that carry no topic. Kept short on
 * purpose: BM25's idf already discounts common words, and a long list would eat words
 * that matter ("not working"). Greetings and politeness are here because a question
 * starting with "Здравствуйте" must not look like it asks about something unknown. */
static const char *const stop_words[] = {
    /* English */
    "about", "also", "am", "an", "and", "another", "any", "are", "as", "at", "be", "been", "but", "by", "can", "can't",
    "cannot", "could", "did", "do", "does", "doesn't", "don't", "for", "from", "get", "got", "had", "has", "have",
    "hello", "hi", "how", "need", "i'm", "i've", "if", "in", "into", "is", "it", "it's", "its", "me", "my", "of",
    "on", "or", "our", "please", "should", "so", "thank", "thanks", "that", "the", "their", "them", "then",
    "there", "thing", "this", "to", "us", "want", "was", "we", "were", "what", "when", "where", "which", "who", "why",
    "will", "with", "would", "you", "your",
    /* Russian (after folding and ё -> е) */
    "без", "бы", "был", "была", "были", "было", "быть", "вам", "вас", "ваш", "вы", "где", "да", "для",
    "делать", "до", "добрый", "его", "ее", "если", "есть", "же", "за", "здравствуйте", "из", "или", "им", "их",
    "как", "какая", "какие", "какой", "ли", "мне", "меня", "мог", "могу", "может", "можно", "мой", "моя", "мое", "мои",
    "мы", "на", "надо", "нужно", "но", "об", "от", "по", "под", "подскажите", "пожалуйста", "помогите",
    "почему", "при", "привет", "про", "сделать", "со", "спасибо", "так", "там", "то", "ты", "уже", "хочу", "что",
    "чтобы", "это", "эта", "этот",
    /* Kazakh */
    "және", "мен", "бұл", "қалай", "үшін", "сәлем", "рахмет",
};
#define NSTOP (sizeof stop_words / sizeof stop_words[0])

static const char *sorted_stop[NSTOP];
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sort_stop_words(void)
{
    for (size_t i = 0; i < NSTOP; i++)
        sorted_stop[i] = stop_words[i];
    qsort(sorted_stop, NSTOP, sizeof sorted_stop[0], cmp_str);
}

static bool is_stop_word(const char *w)
{
    return bsearch(&w, sorted_stop, NSTOP, sizeof sorted_stop[0], cmp_str) != NULL;
}

int mk_kb__tokenizer_init(struct mk_kb__tokenizer *t)
{
    pthread_once(&stop_once, sort_stop_words);
    t->ru = sb_stemmer_new("russian", "UTF_8");
    t->en = sb_stemmer_new("english", "UTF_8");
    if (!t->ru || !t->en) {
        mk_kb__tokenizer_release(t);
        return MK_ENOMEM;
    }
    return 0;
}

void mk_kb__tokenizer_release(struct mk_kb__tokenizer *t)
{
    if (!t)
        return;
    if (t->ru)
        sb_stemmer_delete(t->ru);
    if (t->en)
        sb_stemmer_delete(t->en);
    t->ru = t->en = NULL;
}

/* ә ғ қ ң ө ұ ү һ і and their capitals: letters Kazakh has and Russian does not. */
static bool is_kazakh_letter(int32_t c)
{
    switch (c) {
    case 0x04D8: case 0x04D9: /* Ә ә */
    case 0x0492: case 0x0493: /* Ғ ғ */
    case 0x049A: case 0x049B: /* Қ қ */
    case 0x04A2: case 0x04A3: /* Ң ң */
    case 0x04E8: case 0x04E9: /* Ө ө */
    case 0x04B0: case 0x04B1: /* Ұ ұ */
    case 0x04AE: case 0x04AF: /* Ү ү */
    case 0x04BA: case 0x04BB: /* Һ һ */
    case 0x0406: case 0x0456: /* І і */
        return true;
    default:
        return false;
    }
}

static bool is_cyrillic(int32_t c) { return c >= 0x0400 && c <= 0x04FF; }

static bool is_latin_letter(int32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= 0x00C0 && c <= 0x024F && c != 0x00D7 && c != 0x00F7);
}

static bool is_word_char(int32_t c)
{
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

static bool is_apostrophe(int32_t c) { return c == '\'' || c == 0x2019; }
static bool is_hyphen(int32_t c) { return c == '-' || c == 0x2010 || c == 0x2011; }

/* Decodes the code point at s[i] (already valid UTF-8 after folding). */
static int32_t cp_at(const uint8_t *s, size_t len, size_t i, size_t *n)
{
    int32_t c = -1;
    utf8proc_ssize_t r = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &c);
    if (r <= 0) {
        *n = 1;
        return -1;
    }
    *n = (size_t)r;
    return c;
}

/* The bytes of one word are collected here; words longer than the cap are marked and
 * dropped rather than cut (a cut word would be a different word). */
struct word {
    char b[MK_KB_MAX_TERM_BYTES * 2 + 8];
    size_t len;
    size_t ncp;          /* code points */
    bool too_long;
    bool cyrillic, latin, kazakh;
};

static void word_reset(struct word *w)
{
    w->len = w->ncp = 0;
    w->too_long = w->cyrillic = w->latin = w->kazakh = false;
}

static void word_add(struct word *w, int32_t c)
{
    if (c == 0x0451) /* ё -> е */
        c = 0x0435;
    uint8_t tmp[4];
    utf8proc_ssize_t n = utf8proc_encode_char(c, tmp);
    if (n <= 0)
        return;
    if (w->len + (size_t)n >= sizeof w->b) {
        w->too_long = true;
        return;
    }
    memcpy(w->b + w->len, tmp, (size_t)n);
    w->len += (size_t)n;
    w->b[w->len] = '\0';
    w->ncp++;
    if (is_cyrillic(c)) {
        w->cyrillic = true;
        if (is_kazakh_letter(c))
            w->kazakh = true;
    } else if (is_latin_letter(c)) {
        w->latin = true;
    }
}

/* Emits one finished word as a term (or drops it). */
static int emit_word(struct mk_kb__tokenizer *t, struct word *w, bool kazakh_text, mk_kb_term_fn fn, void *arg)
{
    if (w->len == 0 || w->too_long || w->len > MK_KB_MAX_TERM_BYTES || w->ncp < 2)
        return 0;
    if (is_stop_word(w->b))
        return 0;
    if (w->cyrillic && !w->latin && (w->kazakh || kazakh_text)) {
        /* A copy: the caller still needs the whole word for hyphenated compounds. */
        char stem[sizeof w->b];
        size_t n = mk_kb_kazakh_stem(w->b, w->len);
        memcpy(stem, w->b, n);
        stem[n] = '\0';
        return fn(arg, stem, n);
    }
    struct sb_stemmer *st = NULL;
    if (w->cyrillic)
        st = w->kazakh ? NULL : t->ru;
    else if (w->latin)
        st = t->en;
    if (st) {
        const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)w->b, (int)w->len);
        if (!s)
            return MK_ENOMEM;
        int n = sb_stemmer_length(st);
        if (n > 0 && (size_t)n < sizeof w->b) {
            char stem[sizeof w->b];
            memcpy(stem, s, (size_t)n);
            stem[n] = '\0';
            return fn(arg, stem, (size_t)n);
        }
    }
    return fn(arg, w->b, w->len);
}

/* Replaces invalid UTF-8 and NUL bytes with spaces so utf8proc accepts the text. */
static uint8_t *sanitize(const char *text, size_t len)
{
    uint8_t *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < len) {
        size_t n = mk_utf8_valid_prefix(text + i, len - i);
        if (n == 0 || text[i] == '\0') {
            out[i++] = ' ';
            continue;
        }
        memcpy(out + i, text + i, n);
        i += n;
    }
    out[len] = '\0';
    return out;
}

int mk_kb__tokenize(struct mk_kb__tokenizer *t, const char *text, size_t len, const char *lang, mk_kb_term_fn fn,
                    void *arg)
{
    bool kazakh_text = lang && strcmp(lang, "kk") == 0;
    if (!t || (!text && len) || !fn)
        return MK_EINVAL;
    if (len == 0)
        return 0;
    if (len > (size_t)INT32_MAX)
        return MK_ETOOBIG;
    uint8_t *clean = sanitize(text, len);
    if (!clean)
        return MK_ENOMEM;
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t flen = utf8proc_map(clean, (utf8proc_ssize_t)len, &folded,
                                         UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    free(clean);
    if (flen < 0)
        return flen == UTF8PROC_ERROR_NOMEM ? MK_ENOMEM : MK_EINVAL;

    const uint8_t *s = folded;
    size_t n = (size_t)flen;
    struct word w, compound;
    word_reset(&w);
    word_reset(&compound);
    size_t parts = 0; /* words joined by hyphens so far in `compound` */
    int rc = 0;
    size_t i = 0;
    while (i <= n && rc == 0) {
        size_t cl = 0;
        int32_t c = i < n ? cp_at(s, n, i, &cl) : -1;
        if (i < n && is_word_char(c)) {
            word_add(&w, c);
            i += cl;
            continue;
        }
        /* An apostrophe with letters on both sides stays in the word. */
        if (i < n && is_apostrophe(c) && w.len > 0 && i + cl < n) {
            size_t nl;
            int32_t next = cp_at(s, n, i + cl, &nl);
            if (is_word_char(next)) {
                word_add(&w, '\'');
                i += cl;
                continue;
            }
        }
        /* End of a word: emit it, and track hyphen-joined compounds. */
        if (w.len > 0) {
            rc = emit_word(t, &w, kazakh_text, fn, arg);
            if (rc)
                break;
            for (size_t k = 0; k < w.len; k++) /* add the raw (unstemmed) bytes */
                if (compound.len + 1 < sizeof compound.b)
                    compound.b[compound.len++] = w.b[k];
                else
                    compound.too_long = true;
            compound.b[compound.len] = '\0';
            compound.ncp += w.ncp;
            compound.cyrillic |= w.cyrillic;
            compound.latin |= w.latin;
            compound.kazakh |= w.kazakh;
            compound.too_long |= w.too_long;
            parts++;
            bool joined = false;
            if (i < n && is_hyphen(c) && i + cl < n) {
                size_t nl;
                int32_t next = cp_at(s, n, i + cl, &nl);
                joined = is_word_char(next);
            }
            if (!joined) {
                if (parts > 1)
                    rc = emit_word(t, &compound, kazakh_text, fn, arg);
                word_reset(&compound);
                parts = 0;
            }
            word_reset(&w);
        }
        i += i < n ? cl : 1;
    }
    free(folded);
    return rc;
}

const char *mk_kb_detect_language(const char *text, size_t len)
{
    size_t cyr = 0, lat = 0, kaz = 0;
    size_t i = 0;
    while (text && i < len) {
        size_t n = mk_utf8_valid_prefix(text + i, len - i);
        if (n == 0) {
            i++;
            continue;
        }
        int32_t c = -1;
        utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)n, &c);
        i += n;
        utf8proc_category_t cat = utf8proc_category(c);
        if (is_cyrillic(c) && cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) {
            cyr++;
            if (is_kazakh_letter(c))
                kaz++;
        } else if (is_latin_letter(c)) {
            lat++;
        }
    }
    /* 3%: a Kazakh place name in a paragraph of Russian stays Russian, while Kazakh
     * text has these letters at 5-10% of its letters. */
    if (cyr > lat)
        return kaz > 0 && kaz * 100 >= cyr * 3 ? "kk" : "ru";
    if (lat > 0)
        return "en";
    return "und";
}
