/*
 * mk_embed_words: text -> words for the built-in embedder.
 *
 * The steps, each for a reason:
 *   1. strict UTF-8 check (or, in lossy mode, invalid bytes become spaces): vectors
 *      of garbage would silently match each other in the semantic cache;
 *   2. utf8proc NFKC + case folding, dropping default-ignorable code points: full-width
 *      letters, ligatures, soft hyphens and zero-width joiners must not make a word
 *      different from its plain spelling; ё is written е (Russian uses both);
 *   3. words are runs of letters, marks and digits; a hyphen or apostrophe between
 *      two word characters is dropped and joins them ("Wi-Fi" = "wifi", "don't" =
 *      "dont"), a '.' or ',' between digits stays ("3.5"); each symbol or emoji is a
 *      word of its own (👍 and 👎 must differ), other punctuation separates;
 *   4. each word is classified: stop word (low weight), negation (never a stop word,
 *      so "не работает" stays apart from "работает"), number (an entity);
 *   5. stemming by script: Snowball English for Latin words, Snowball Russian for
 *      Cyrillic words of a Russian text, a small suffix stripper for Cyrillic words of
 *      a Kazakh text (one where >= 3% of the Cyrillic letters are Kazakh-only
 *      letters, or the word itself has one). Snowball has no Kazakh stemmer.
 *
 * Snowball stemmers are not thread-safe, so each thread gets its own pair, with a
 * small direct-mapped cache of word -> stem hash (stemming costs more than all the
 * hashing of a word; support questions repeat the same few thousand words).
 * Nothing here allocates per call for texts under ~1000 code points.
 */
#include <libstemmer.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "embed/mk_embed_int.h"

#define STACK_CP 1024
#define STEM_CACHE 4096 /* entries, power of two; 64 KB per thread */

/* --- word lists ------------------------------------------------------------------ */

/* Function words that carry no topic: they keep 1/5 of a word's weight (not zero, so
 * that a text made only of them still has a vector of its own). Kept short: an IDF
 * table discounts the rest. Spelled as the tokenizer sees them (folded, ё -> е,
 * apostrophes dropped). Negations are NOT here: they must stay visible. */
static const char *const stop_words[] = {
    /* English */
    "a", "about", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can", "could",
    "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his", "how", "i", "im", "ive",
    "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "please", "she", "so",
    "some", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "us",
    "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your", "hi", "hello", "thanks", "thank",
    /* Russian */
    "а", "бы", "в", "во", "вам", "вас", "ваш", "вы", "да", "для", "до", "его", "ее", "если", "же", "за",
    "здравствуйте", "и", "из", "или", "им", "их", "к", "ко", "как", "ли", "мне", "меня", "мой", "моя",
    "мое", "мои", "мы", "на", "о", "об", "от", "по", "пожалуйста", "привет", "про", "с", "со", "спасибо",
    "так", "то", "у", "уже", "что", "чтобы", "это", "эта", "этот", "я", "ты", "он", "она", "они",
    /* Kazakh */
    "және", "мен", "бұл", "осы", "сол", "ол", "мына", "үшін", "да", "де", "та", "те", "ма", "ме",
    "ба", "бе", "па", "пе", "ғой", "сәлем", "рахмет", "маған", "менің", "сіз", "сіздің",
};

static const char *const negation_words[] = {
    /* English (apostrophes dropped) */
    "not", "no", "never", "nothing", "none", "nobody", "neither", "nor", "without", "cannot", "cant", "dont",
    "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt", "couldnt", "shouldnt",
    "havent", "hasnt", "hadnt", "aint",
    /* Russian */
    "не", "нет", "ни", "без", "нельзя", "никогда", "ничего", "никак", "нечего", "некуда",
    /* Kazakh: verbs negate with a suffix (-ма/-ме/-ба/-бе/-па/-пе), which the
     * stripper keeps; these are the separate words. */
    "емес", "жоқ", "ешқашан", "ешнәрсе", "ешқандай", "ешкім",
};

/* Kazakh suffixes, longest first within the table order of use; stripped from the end
 * of a Kazakh word up to three times while at least three letters remain. The
 * negation suffixes (-ма/-ме/-ба/-бе/-па/-пе) are deliberately absent. */
static const char *const kk_suffixes[] = {
    /* 4 letters */
    "ларды", "лерді", "дарды", "дерді", "тарды", "терді",
    "ымыз", "іміз", "ыңыз", "іңіз", "дағы", "дегі", "тағы", "тегі", "ның", "нің",
    /* 3 letters */
    "лар", "лер", "дар", "дер", "тар", "тер", "дың", "дің", "тың", "тің", "нда", "нде",
    "дан", "ден", "тан", "тен", "нан", "нен", "мен", "бен", "пен", "ған", "ген", "қан", "кен",
    "мыз", "міз", "ңыз", "ңіз", "мын", "мін", "бын", "бін", "пын", "пін", "сың", "сің",
    "йды", "йді", "ады", "еді",
    /* 2 letters */
    "ға", "ге", "қа", "ке", "на", "не", "ны", "ні", "ды", "ді", "ты", "ті", "да", "де", "та", "те",
    "сы", "сі", "ым", "ім", "ың", "ің", "ау", "еу",
};

#define NSTOP (sizeof stop_words / sizeof stop_words[0])
#define NNEG (sizeof negation_words / sizeof negation_words[0])
#define NKK (sizeof kk_suffixes / sizeof kk_suffixes[0])

/* Open-addressing set of word hashes -> class flags. */
#define WORDSET_SIZE 1024
static struct { uint64_t h; unsigned flags; } wordset[WORDSET_SIZE];
static struct { int32_t cp[8]; size_t n; } kk_suf[NKK];

static pthread_key_t tls_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool init_ok;

/* The hash of a word given as code points: the same function for surface forms,
 * stems and list entries, so a word whose stem is itself hashes the same either way. */
static uint64_t word_hash(const int32_t *cp, size_t n)
{
    uint64_t h = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < n; i++)
        h = mk_embed__step(h, (uint64_t)(uint32_t)cp[i]);
    return mk_embed__mix(h ^ n);
}

/* Decodes valid UTF-8 (our own literals and Snowball output) into code points. */
static size_t decode(const char *s, size_t len, int32_t *cp, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        utf8proc_int32_t c;
        utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
        if (r <= 0)
            break;
        cp[n++] = c;
        i += (size_t)r;
    }
    return n;
}

static void wordset_add(const char *w, unsigned flag)
{
    int32_t cp[MK_EMBED__MAX_WORD_CP];
    size_t n = decode(w, strlen(w), cp, MK_EMBED__MAX_WORD_CP);
    uint64_t h = word_hash(cp, n);
    size_t i = (size_t)h & (WORDSET_SIZE - 1);
    while (wordset[i].h && wordset[i].h != h)
        i = (i + 1) & (WORDSET_SIZE - 1);
    wordset[i].h = h;
    wordset[i].flags |= flag;
}

static unsigned wordset_get(uint64_t h)
{
    size_t i = (size_t)h & (WORDSET_SIZE - 1);
    while (wordset[i].h) {
        if (wordset[i].h == h)
            return wordset[i].flags;
        i = (i + 1) & (WORDSET_SIZE - 1);
    }
    return 0;
}

struct tls {
    struct sb_stemmer *ru, *en;
    struct { uint64_t key, stem; } cache[STEM_CACHE];
};

static void tls_free(void *p)
{
    struct tls *t = p;
    if (!t)
        return;
    if (t->ru)
        sb_stemmer_delete(t->ru);
    if (t->en)
        sb_stemmer_delete(t->en);
    free(t);
}

static void do_init(void)
{
    if (pthread_key_create(&tls_key, tls_free) != 0)
        return;
    for (size_t i = 0; i < NSTOP; i++)
        wordset_add(stop_words[i], MK_EMBED__W_STOP);
    for (size_t i = 0; i < NNEG; i++)
        wordset_add(negation_words[i], MK_EMBED__W_NEG);
    for (size_t i = 0; i < NKK; i++)
        kk_suf[i].n = decode(kk_suffixes[i], strlen(kk_suffixes[i]), kk_suf[i].cp, 8);
    init_ok = true;
}

static struct tls *get_tls(void)
{
    pthread_once(&init_once, do_init);
    if (!init_ok)
        return NULL;
    struct tls *t = pthread_getspecific(tls_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ru = sb_stemmer_new("russian", "UTF_8");
    t->en = sb_stemmer_new("english", "UTF_8");
    if (!t->ru || !t->en || pthread_setspecific(tls_key, t) != 0) {
        tls_free(t);
        return NULL;
    }
    return t;
}

/* --- character classes ------------------------------------------------------------ */

static bool is_word_char(int32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
    if (c >= 0x0430 && c <= 0x045F) /* folded Cyrillic: the common case */
        return true;
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

/* Symbols that are words by themselves: emoji and other symbols, currency signs. */
static bool is_symbol_word(int32_t c)
{
    if (c < 0x80)
        return c == '$';
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_SO || cat == UTF8PROC_CATEGORY_SC;
}

static bool is_joiner(int32_t c)
{
    return c == '-' || c == '\'' || c == 0x2019 || c == 0x02BC || c == 0x2010 || c == 0x2011;
}

static bool is_digit(int32_t c) { return c >= '0' && c <= '9'; }
static bool is_latin(int32_t c) { return (c >= 'a' && c <= 'z') || (c >= 0xDF && c <= 0x24F); }
static bool is_cyrillic(int32_t c) { return c >= 0x0400 && c <= 0x04FF; }

/* ә ғ қ ң ө ұ ү һ і after case folding: letters Kazakh has and Russian does not. */
static bool is_kazakh_letter(int32_t c)
{
    return c == 0x04D9 || c == 0x0493 || c == 0x049B || c == 0x04A3 || c == 0x04E9 || c == 0x04B1 ||
           c == 0x04AF || c == 0x04BB || c == 0x0456;
}

/* --- stemming --------------------------------------------------------------------- */

enum lang { LANG_NONE, LANG_EN, LANG_RU, LANG_KK };

static size_t kk_strip(int32_t *cp, size_t n)
{
    for (int round = 0; round < 3; round++) {
        bool cut = false;
        for (size_t i = 0; i < NKK; i++) {
            size_t sn = kk_suf[i].n;
            if (n < sn + 3 || memcmp(cp + n - sn, kk_suf[i].cp, sn * sizeof *cp) != 0)
                continue;
            n -= sn;
            cut = true;
            break;
        }
        if (!cut)
            break;
    }
    return n;
}

/* The stem hash of a word; 0 means "stemmer failed" (out of memory). */
static uint64_t stem_hash(struct tls *t, enum lang lang, const struct mk_embed__word *w)
{
    uint64_t key = mk_embed__mix(w->surface ^ ((uint64_t)lang * 0x9e3779b97f4a7c15ull)) | 1;
    size_t slot = (size_t)(key >> 20) & (STEM_CACHE - 1);
    if (t->cache[slot].key == key)
        return t->cache[slot].stem;
    uint64_t h;
    if (lang == LANG_KK) {
        int32_t cp[MK_EMBED__MAX_WORD_CP];
        memcpy(cp, w->cp, w->ncp * sizeof *cp);
        h = word_hash(cp, kk_strip(cp, w->ncp));
    } else {
        char utf8[MK_EMBED__MAX_WORD_CP * 4];
        size_t len = 0;
        for (size_t i = 0; i < w->ncp; i++)
            len += (size_t)utf8proc_encode_char(w->cp[i], (utf8proc_uint8_t *)utf8 + len);
        struct sb_stemmer *st = lang == LANG_RU ? t->ru : t->en;
        const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)utf8, (int)len);
        if (!s)
            return 0;
        int sl = sb_stemmer_length(st);
        int32_t cp[MK_EMBED__MAX_WORD_CP];
        size_t n = decode((const char *)s, sl > 0 ? (size_t)sl : 0, cp, MK_EMBED__MAX_WORD_CP);
        h = word_hash(cp, n);
    }
    t->cache[slot].key = key;
    t->cache[slot].stem = h;
    return h;
}

/* --- the walk --------------------------------------------------------------------- */

struct walk {
    struct tls *tls;
    bool stem;
    bool kazakh_text;
    mk_embed__word_fn fn;
    void *arg;
    int32_t cp[MK_EMBED__MAX_WORD_CP];
    size_t n;          /* code points seen (may exceed the buffer) */
    uint64_t h;        /* running surface hash */
    bool digits_only, latin, cyrillic, kazakh, other;
};

static void word_reset(struct walk *k)
{
    k->n = 0;
    k->h = 0x2545f4914f6cdd1dull;
    k->digits_only = true;
    k->latin = k->cyrillic = k->kazakh = k->other = false;
}

static void word_add(struct walk *k, int32_t c)
{
    if (k->n < MK_EMBED__MAX_WORD_CP)
        k->cp[k->n] = c;
    k->n++;
    k->h = mk_embed__step(k->h, (uint64_t)(uint32_t)c);
    if (!is_digit(c) && c != '.' && c != ',')
        k->digits_only = false;
    if (is_latin(c))
        k->latin = true;
    else if (is_cyrillic(c)) {
        k->cyrillic = true;
        if (is_kazakh_letter(c))
            k->kazakh = true;
    } else if (!is_digit(c))
        k->other = true;
}

static int word_emit(struct walk *k)
{
    if (k->n == 0)
        return 0;
    struct mk_embed__word w;
    w.cp = k->cp;
    w.ncp = k->n < MK_EMBED__MAX_WORD_CP ? k->n : MK_EMBED__MAX_WORD_CP;
    w.surface = mk_embed__mix(k->h ^ k->n);
    w.stem = w.surface;
    w.flags = 0;
    if (k->n > MK_EMBED__MAX_WORD_CP) {
        w.flags |= MK_EMBED__W_LONG;
    } else if (k->digits_only) {
        w.flags |= MK_EMBED__W_NUM;
    } else {
        w.flags |= wordset_get(w.surface);
        enum lang lang = LANG_NONE;
        if (k->latin && !k->cyrillic && !k->other)
            lang = LANG_EN;
        else if (k->cyrillic && !k->latin && !k->other)
            lang = (k->kazakh || k->kazakh_text) ? LANG_KK : LANG_RU;
        if (k->stem && lang != LANG_NONE && w.ncp > 2) {
            w.stem = stem_hash(k->tls, lang, &w);
            if (w.stem == 0)
                return MK_ENOMEM;
        }
    }
    word_reset(k);
    return k->fn(k->arg, &w);
}

static int emit_symbol(struct walk *k, int32_t c)
{
    int32_t one[1] = {c};
    struct mk_embed__word w = {one, 1, 0, 0, MK_EMBED__W_SYM};
    w.surface = w.stem = word_hash(one, 1);
    return k->fn(k->arg, &w);
}

/* Replaces invalid UTF-8 with spaces (lossy mode). Returns a malloc'd copy. */
static char *sanitize(const char *text, size_t len)
{
    char *out = malloc(len ? len : 1);
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < len) {
        size_t n = mk_utf8_valid_prefix(text + i, len - i);
        if (n == 0) {
            out[i++] = ' ';
            continue;
        }
        memcpy(out + i, text + i, n);
        i += n;
    }
    return out;
}

static int walk_text(struct tls *tls, const int32_t *cps, size_t n, bool stem, mk_embed__word_fn fn, void *arg);

#define NORM_OPTS (UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE)

int mk_embed__words(const char *text, size_t len, bool stem, bool lossy, mk_embed__word_fn fn, void *arg)
{
    if ((!text && len) || !fn)
        return MK_EINVAL;
    if (len > MK_EMBED_MAX_TEXT_BYTES)
        return MK_ETOOBIG;
    if (len == 0)
        return 0;
    struct tls *tls = get_tls();
    if (!tls)
        return MK_ENOMEM;

    /* ASCII needs no Unicode tables: NFKC is the identity and folding is tolower. */
    size_t ascii = 0;
    while (ascii < len && (unsigned char)text[ascii] < 0x80)
        ascii++;
    if (ascii == len && len <= STACK_CP) {
        int32_t cps[STACK_CP];
        for (size_t i = 0; i < len; i++) {
            int32_t c = (unsigned char)text[i];
            cps[i] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        }
        return walk_text(tls, cps, len, stem, fn, arg);
    }

    char *clean = NULL;
    if (!mk_utf8_valid(text, len)) {
        if (!lossy)
            return MK_EBADUTF8;
        clean = sanitize(text, len);
        if (!clean)
            return MK_ENOMEM;
        text = clean;
    }

    /* NFKC + fold into a stack buffer; a long text gets one heap buffer instead. */
    int32_t stackbuf[STACK_CP];
    int32_t *cps = stackbuf;
    utf8proc_ssize_t n = utf8proc_decompose((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                                            cps, STACK_CP, NORM_OPTS);
    if (n > STACK_CP) {
        cps = malloc((size_t)n * sizeof *cps);
        if (!cps) {
            free(clean);
            return MK_ENOMEM;
        }
        utf8proc_ssize_t n2 = utf8proc_decompose((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                                                 cps, n, NORM_OPTS);
        n = n2 == n ? n2 : UTF8PROC_ERROR_OVERFLOW;
    }
    if (n >= 0)
        n = utf8proc_normalize_utf32(cps, n, NORM_OPTS);
    free(clean);
    if (n < 0) {
        if (cps != stackbuf)
            free(cps);
        return n == UTF8PROC_ERROR_NOMEM ? MK_ENOMEM : MK_EINVAL;
    }

    int rc = walk_text(tls, cps, (size_t)n, stem, fn, arg);
    if (cps != stackbuf)
        free(cps);
    return rc;
}

/* Runs the word state machine over normalised code points. */
static int walk_text(struct tls *tls, const int32_t *cps, size_t n, bool stem, mk_embed__word_fn fn, void *arg)
{
    struct walk k;
    k.tls = tls;
    k.stem = stem;
    k.fn = fn;
    k.arg = arg;
    /* Language of the Cyrillic words: Kazakh when Kazakh-only letters are >= 3% of the
     * Cyrillic letters (they are 5-10% in Kazakh text; a Kazakh name in Russian text
     * stays under that). */
    size_t cyr = 0, kaz = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_cyrillic(cps[i])) {
            cyr++;
            kaz += is_kazakh_letter(cps[i]);
        }
    }
    k.kazakh_text = kaz > 0 && kaz * 100 >= cyr * 3;
    word_reset(&k);

    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int32_t c = cps[i];
        if (c == 0x0451) /* ё -> е */
            c = 0x0435;
        if (is_word_char(c)) {
            word_add(&k, c);
            continue;
        }
        bool next_word = i + 1 < n && is_word_char(cps[i + 1]);
        if (k.n > 0 && next_word && is_joiner(c))
            continue; /* "wi-fi" -> "wifi", "don't" -> "dont" */
        if (k.n > 0 && next_word && (c == '.' || c == ',') && k.digits_only && is_digit(cps[i + 1])) {
            word_add(&k, c); /* "3.5", "1,5" */
            continue;
        }
        rc = word_emit(&k);
        if (rc == 0 && is_symbol_word(c))
            rc = emit_symbol(&k, c);
    }
    if (rc == 0)
        rc = word_emit(&k);
    return rc;
}
