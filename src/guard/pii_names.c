/*
 * pii_names: person names in Russian (with declension), Kazakh and English text.
 *
 * How: capitalised words are the only candidates, so one pass collects them as
 * tokens and classifies each by a hash-set lookup (first-name lists, common
 * surnames, stop words) and by suffix rules (patronymics -ович/-евна, Kazakh
 * -ұлы/-қызы, surnames -ов/-ев/-ин/-ский/-енко ...). Declension is handled by
 * rules rather than by listing every form: a word is also looked up with a case
 * ending stripped ("Петру" -> "петр", "Марией" -> "мари"), against the stems the
 * lists were loaded with. Adjacent tokens form a chain; a chain is a person when the
 * signals combine (first name + anything capitalised, a patronymic, initials +
 * surname, a title "г-н"/"Dr." before). Signals alone count less, and less still at
 * the start of a sentence where every word is capitalised. Finally a surname seen in
 * a confident match marks its other mentions in the text ("Владимир Путин ...
 * Путина"), as people write a full name once and the surname afterwards.
 *
 * The sets are built once, on first use, into static tables: no allocation, so the
 * build cannot fail at run time (a unit test checks nothing was dropped).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "guard/pii_int.h"

#define SLOTS 16384            /* power of two, > 2x the keys */
#define ARENA (192 * 1024)
#define KEYMAX 64              /* folded bytes of a word we look up */

typedef struct slot {
    uint32_t off;   /* into arena; 0 = empty (arena[0] is unused) */
    uint16_t len;
    uint16_t bits;
} slot;

static slot slots[SLOTS];
static char arena[ARENA];
static size_t arena_used = 1;
static size_t n_loaded, n_dropped;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static bool insert(const char *k, size_t n, unsigned bits)
{
    if (n == 0 || n >= KEYMAX)
        return false;
    uint32_t h = hash(k, n) & (SLOTS - 1);
    for (size_t probe = 0; probe < SLOTS; probe++, h = (h + 1) & (SLOTS - 1)) {
        slot *sl = &slots[h];
        if (sl->off == 0) {
            if (arena_used + n > ARENA)
                return false;
            memcpy(arena + arena_used, k, n);
            sl->off = (uint32_t)arena_used;
            sl->len = (uint16_t)n;
            sl->bits = (uint16_t)bits;
            arena_used += n;
            return true;
        }
        if (sl->len == n && memcmp(arena + sl->off, k, n) == 0) {
            sl->bits |= (uint16_t)bits;
            return true;
        }
    }
    return false;
}

unsigned pii_names_lookup(const char *k, size_t n);

static unsigned lookup_raw(const char *k, size_t n)
{
    if (n == 0 || n >= KEYMAX)
        return 0;
    uint32_t h = hash(k, n) & (SLOTS - 1);
    for (;;) {
        const slot *sl = &slots[h];
        if (sl->off == 0)
            return 0;
        if (sl->len == n && memcmp(arena + sl->off, k, n) == 0)
            return sl->bits;
        h = (h + 1) & (SLOTS - 1);
    }
}

/* Suffix lists carry their lengths: these tests run for every capitalised word. */
typedef struct suf {
    const char *s;
    size_t n;
} suf;
#define S(x) {x, sizeof(x) - 1}

static inline bool ends_n(const char *w, size_t n, const char *sx, size_t l)
{
    return n >= l && (l == 0 || (w[n - 1] == sx[l - 1] && memcmp(w + n - l, sx, l) == 0));
}

static bool ends_with(const char *w, size_t n, const char *sx) { return ends_n(w, n, sx, strlen(sx)); }

/* Number of letters (code points) in folded UTF-8. */
static size_t letters(const char *w, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)w[i] & 0xC0) != 0x80;
    return c;
}

/* Final letters a name loses in the oblique cases: Анн-а, Мари-я, Серге-й, Игор-ь. */
static const char *const name_final[] = {"а", "я", "й", "ь", NULL};

static void load_list(const char *const *list, unsigned cls, bool stems)
{
    char key[KEYMAX + 8];
    for (const char *const *e = list; *e; e++) {
        const char *s = *e;
        unsigned bits = cls;
        size_t l = strcspn(s, "/*");
        const char *rest = s + l;
        if (strchr(s, '*'))
            bits |= PII_NAME_AMBIG;
        size_t n = pii_fold(s, l, key, sizeof key);
        bool ok = n > 0 && insert(key, n, bits);
        if (ok && stems) {
            size_t sn = n;
            for (const char *const *f = name_final; *f; f++)
                if (ends_with(key, n, *f)) {
                    sn = n - strlen(*f);
                    break;
                }
            if (letters(key, sn) >= 2)
                ok = insert(key, sn, bits << 8);
        }
        /* Extra oblique stems after '/': "Павел/павл", "Лев/льв". */
        while (ok && *rest == '/') {
            rest++;
            size_t el = strcspn(rest, "/*");
            size_t m = pii_fold(rest, el, key, sizeof key);
            ok = m > 0 && insert(key, m, bits << 8);
            rest += el;
        }
        if (ok)
            n_loaded++;
        else
            n_dropped++;
    }
}

static void build(void)
{
    load_list(pii_data_ru_first, PII_NAME_RU_FIRST, true);
    load_list(pii_data_kz_first, PII_NAME_KZ_FIRST, true);
    load_list(pii_data_cyr_foreign_first, PII_NAME_FOREIGN_FIRST, true);
    load_list(pii_data_ru_surnames, PII_NAME_RU_SURNAME, true);
    load_list(pii_data_en_first, PII_NAME_EN_FIRST, false);
    load_list(pii_data_stop, PII_NAME_STOP, true);
    load_list(pii_data_titles, PII_NAME_TITLE, false);
}

unsigned pii_names_lookup(const char *k, size_t n)
{
    pthread_once(&once, build);
    return lookup_raw(k, n);
}

void pii_names_stats(size_t *loaded, size_t *dropped)
{
    pthread_once(&once, build);
    if (loaded)
        *loaded = n_loaded;
    if (dropped)
        *dropped = n_dropped;
}

/* ---- word classification ---- */

/* Case endings of Russian nouns and adjectives that names and surnames take. */
static const suf endings[] = {S("ами"), S("ями"), S("ого"), S("его"), S("ому"), S("ему"), S("ой"),
                              S("ей"), S("ом"), S("ем"), S("ою"), S("ею"), S("ым"), S("им"),
                              S("ых"), S("их"), S("ую"), S("юю"), S("ая"), S("яя"), S("ий"),
                              S("ый"), S("а"), S("я"), S("у"), S("ю"), S("е"), S("и"), S("ы"),
                              /* Kazakh case endings: genitive, dative, accusative, ablative,
                               * instrumental (Абайдың, Тоқаевқа, Назарбаевпен) */
                              S("тың"), S("дың"), S("ның"), S("тің"), S("дің"), S("нің"),
                              S("ға"), S("ге"), S("қа"), S("ке"), S("ды"), S("ді"), S("ты"),
                              S("ті"), S("ны"), S("ні"), S("дан"), S("ден"), S("тан"),
                              S("тен"), S("нан"), S("нен"), S("мен"), S("бен"), S("пен"),
                              {NULL, 0}};

enum {
    TK_FIRST = 0x001,      /* a first name from a list */
    TK_AMBIG = 0x002,      /* ... which is also a common word */
    TK_PATR = 0x004,       /* patronymic (Russian or Kazakh) */
    TK_SURN_LIST = 0x008,  /* a listed surname */
    TK_SURN_SUF = 0x010,   /* surname-shaped: -ов, -ин, -ский, -енко ... */
    TK_INITIAL = 0x020,    /* "А." */
    TK_STOP = 0x040,       /* not a name */
    TK_TITLE = 0x080,      /* "Mr", "Dr", "Г-н" */
    TK_CAPS = 0x100,       /* all capitals */
    TK_LATIN = 0x200,      /* written in Latin letters */
    TK_BARE = 0x400,       /* a single capital letter without a dot ("J") */
};

/* Looks the folded word and its ending-stripped forms up; returns the OR of the
 * class bits (stem matches shifted down to the same bits). */
static unsigned lookup_forms(const char *w, size_t n, bool cyr)
{
    unsigned bits = pii_names_lookup(w, n) & 0xFF;
    if (!cyr)
        return bits;
    for (const suf *e = endings; e->s; e++) {
        if (!ends_n(w, n, e->s, e->n))
            continue;
        size_t sn = n - e->n;
        /* Two-letter stems ("ол" of Оля) match too many words in oblique cases. */
        if (letters(w, sn) < 3)
            continue;
        bits |= (pii_names_lookup(w, sn) >> 8) & 0xFF;
    }
    /* Consonant-final names take endings directly: Петр-а, Олег-у, Игор-ем. */
    return bits;
}

static bool patronymic(const char *w, size_t n)
{
    if (letters(w, n) < 6)
        return false;
    static const suf masc[] = {S("ович"), S("евич"), S("ьич"), S("ович"), {NULL, 0}};
    static const suf fem[] = {S("овн"), S("евн"), S("ичн"), {NULL, 0}};
    static const suf kz[] = {S("ұлы"), S("улы"), S("қызы"), S("кызы"), {NULL, 0}};
    for (const suf *k = kz; k->s; k++)
        if (ends_n(w, n, k->s, k->n))
            return true;
    static const suf m_end[] = {S(""), S("а"), S("у"), S("ем"), S("е"), {NULL, 0}};
    static const suf f_end[] = {S("а"), S("ы"), S("е"), S("у"), S("ой"), S("ою"), {NULL, 0}};
    for (const suf *e = m_end; e->s; e++) {
        if (!ends_n(w, n, e->s, e->n))
            continue;
        size_t sn = n - e->n;
        for (const suf *s = masc; s->s; s++)
            if (ends_n(w, sn, s->s, s->n))
                return true;
    }
    for (const suf *e = f_end; e->s; e++) {
        if (!ends_n(w, n, e->s, e->n))
            continue;
        size_t sn = n - e->n;
        for (const suf *s = fem; s->s; s++)
            if (ends_n(w, sn, s->s, s->n))
                return true;
    }
    return false;
}

/* Surname shape; on success *stem gets the length of the form without its case
 * ending (for matching later mentions). */
static bool surname_shape(const char *w, size_t n, size_t *stem)
{
    static const suf ov_end[] = {S("ыми"), S("ым"), S("ой"), S("ых"), S("а"), S("у"), S("е"), S("ы"),
                                 S("тың"), S("тің"), S("ның"), S("қа"), S("ке"), S("ға"), S("ты"),
                                 S("ті"), S("тан"), S("тен"), S("пен"), S("мен"), S("ке"),
                                 S("аның"), S("аға"), S("аны"), S("адан"), S("амен"), S(""),
                                 {NULL, 0}};
    static const suf ov_suf[] = {S("ов"), S("ев"), S("ин"), S("ын"), {NULL, 0}};
    static const suf sk_end[] = {S("ого"), S("ому"), S("ими"), S("ий"), S("им"), S("ом"), S("ая"), S("ой"), S("ую"), S("их"), S("ие"), {NULL, 0}};
    static const suf inv[] = {S("енко"), S("швили"), S("дзе"), S("ко"), {NULL, 0}};
    static const suf cons_end[] = {S("ом"), S("ем"), S("а"), S("у"), S("е"), S("я"), S("ю"), S(""), {NULL, 0}};
    static const suf cons_suf[] = {S("ук"), S("юк"), S("чук"), S("ян"), S("ич"), S("ец"), S("ак"), {NULL, 0}};
    if (letters(w, n) < 4)
        return false;
    for (const suf *e = ov_end; e->s; e++) {
        if (!ends_n(w, n, e->s, e->n))
            continue;
        size_t sn = n - e->n;
        for (const suf *s = ov_suf; s->s; s++)
            if (ends_n(w, sn, s->s, s->n) && letters(w, sn) >= 4) {
                *stem = sn;
                return true;
            }
    }
    for (const suf *e = sk_end; e->s; e++) {
        if (!ends_n(w, n, e->s, e->n))
            continue;
        size_t sn = n - e->n;
        if ((ends_with(w, sn, "ск") || ends_with(w, sn, "цк")) && letters(w, sn) >= 4) {
            *stem = sn;
            return true;
        }
    }
    for (const suf *s = inv; s->s; s++)
        if (ends_n(w, n, s->s, s->n) && (strcmp(s->s, "ко") != 0 || letters(w, n) >= 6)) {
            *stem = n;
            return true;
        }
    for (const suf *e = cons_end; e->s; e++) {
        if (!ends_n(w, n, e->s, e->n))
            continue;
        size_t sn = n - e->n;
        for (const suf *s = cons_suf; s->s; s++)
            if (ends_n(w, sn, s->s, s->n) && letters(w, sn) >= 5) {
                *stem = sn;
                return true;
            }
    }
    return false;
}

/* The stem a later mention of this surname shares: the word minus a case ending. */
static size_t generic_stem(const char *w, size_t n, bool cyr)
{
    size_t st;
    if (cyr && surname_shape(w, n, &st))
        return st;
    if (!cyr)
        return n;
    for (const suf *e = endings; e->s; e++)
        if (ends_n(w, n, e->s, e->n) && letters(w, n - e->n) >= 3)
            return n - e->n;
    return n;
}

typedef struct tok {
    size_t start, end;
    unsigned cls;
    bool sent_start;   /* first word of a sentence */
    uint8_t title_before; /* title_word_before() of this token */
    bool title_known;  /* title_before computed (lazily: it costs a fold) */
    bool adj_prev;     /* only spaces between the previous token and this one */
    bool used;         /* already inside a person span */
    char key[KEYMAX];
    uint8_t keylen, stemlen;
    bool cyr;
    bool sk;           /* surname shape is the adjectival -ский / -цкий kind */
} tok;

typedef struct toks {
    tok *v;
    size_t n, cap;
    tok local[64];
} toks;

static tok *tok_push(toks *t)
{
    if (t->n == t->cap) {
        size_t nc = t->cap * 2;
        tok *nv;
        if (t->v == t->local) {
            nv = malloc(nc * sizeof *nv);
            if (nv)
                memcpy(nv, t->local, t->n * sizeof *nv);
        } else {
            nv = realloc(t->v, nc * sizeof *nv);
        }
        if (!nv)
            return NULL;
        t->v = nv;
        t->cap = nc;
    }
    return &t->v[t->n++];
}

static void classify_tok(tok *t, const char *s, size_t letters_n, bool all_caps)
{
    const char *w = t->key;
    size_t n = t->keylen;
    unsigned b = lookup_forms(w, n, t->cyr);
    if (all_caps && letters_n > 1)
        t->cls |= TK_CAPS;
    if (b & PII_NAME_TITLE)
        t->cls |= TK_TITLE;
    if (b & PII_NAME_STOP) {
        t->cls |= TK_STOP;
        return;
    }
    if (b & (PII_NAME_RU_FIRST | PII_NAME_KZ_FIRST | PII_NAME_EN_FIRST | PII_NAME_FOREIGN_FIRST)) {
        t->cls |= TK_FIRST;
        if (b & PII_NAME_AMBIG)
            t->cls |= TK_AMBIG;
    }
    if (b & PII_NAME_RU_SURNAME)
        t->cls |= TK_SURN_LIST;
    /* Hyphenated: Жан-Поль, Петров-Водкин, Қасым-Жомарт -- each part counts. */
    const char *h = memchr(w, '-', n);
    if (h && !(t->cls & (TK_FIRST | TK_SURN_LIST))) {
        size_t l1 = (size_t)(h - w);
        unsigned b1 = lookup_forms(w, l1, t->cyr), b2 = lookup_forms(h + 1, n - l1 - 1, t->cyr);
        if ((b1 | b2) & (PII_NAME_RU_FIRST | PII_NAME_KZ_FIRST | PII_NAME_EN_FIRST |
                         PII_NAME_FOREIGN_FIRST))
            t->cls |= TK_FIRST;
        if ((b1 | b2) & PII_NAME_RU_SURNAME)
            t->cls |= TK_SURN_LIST;
    }
    size_t st = n;
    if (t->cyr) {
        if (patronymic(w, n))
            t->cls |= TK_PATR;
        else if (surname_shape(w, n, &st) || (h && surname_shape(h + 1, n - (size_t)(h + 1 - w), &st))) {
            t->cls |= TK_SURN_SUF;
            t->sk = st >= 4 && (memcmp(w + st - 4, "ск", 4) == 0 || memcmp(w + st - 4, "цк", 4) == 0);
        }
    }
    (void)s;
    t->stemlen = (uint8_t)((t->cls & TK_SURN_SUF) && !h ? st : generic_stem(w, n, t->cyr));
}

/* Is the word before `at` a title? 2 for a title ("господин", "Mr."), 1 for a role
 * word ("директор", "клиент"), 0 for neither. A word ending in a full stop counts
 * only when short (an abbreviation: "Dr.", "тов."), not at a sentence's end. */
static int title_word_before(const char *s, size_t at)
{
    size_t e = at;
    while (e > 0 && s[e - 1] == ' ')
        e--;
    if (e == at || e == 0)
        return false;
    size_t b = e;
    while (b > 0 && e - b < 40 && ((unsigned char)s[b - 1] >= 0x80 || isalpha((unsigned char)s[b - 1]) ||
                                   s[b - 1] == '-' || s[b - 1] == '.'))
        b--;
    char key[KEYMAX + 8];
    size_t n = pii_fold(s + b, e - b, key, sizeof key);
    bool dot = n > 1 && key[n - 1] == '.';
    if (dot)
        n--;
    if (dot && letters(key, n) > 4)
        return 0;
    unsigned bits = n > 0 ? pii_names_lookup(key, n) : 0;
    if (!(bits & PII_NAME_TITLE))
        return 0;
    return bits & PII_NAME_AMBIG ? 1 : 2;
}

static bool sentence_start(const char *s, size_t at)
{
    size_t i = at;
    while (i > 0) {
        unsigned char c = (unsigned char)s[i - 1];
        if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '(' || c == '-' || c == '*')
            i--;
        else if (c == 0xAB && i >= 2 && (unsigned char)s[i - 2] == 0xC2) /* « */
            i -= 2;
        else if (c >= 0x80 && i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x80)
            i -= 3; /* dashes and quotes U+2010..U+201F */
        else
            break;
    }
    if (i == 0)
        return true;
    char c = s[i - 1];
    return c == '.' || c == '!' || c == '?' || c == '\n' || c == '\r' || c == ':' || c == ';' ||
           c == '>';
}

static bool particle(const char *w, size_t n)
{
    static const char *const p[] = {"бин", "ибн", "де", "фон", "ван", "дер", "ди", "да", "ла", "дель", "van",
                                    "von", "de", "der", "di", "da", "bin", "ibn", "al", "el", "le", "la",
                                    "du", "del", "dos", "das", NULL};
    for (const char *const *q = p; *q; q++)
        if (strlen(*q) == n && memcmp(*q, w, n) == 0)
            return true;
    return false;
}

/* Collects capitalised words (and initials) as tokens. */
static int tokenize(const char *s, size_t len, toks *t)
{
    size_t i = 0;
    size_t prev_end = (size_t)-1;
    while (i < len) {
        unsigned char c0 = (unsigned char)s[i];
        if (c0 < 0x80 && (unsigned)((c0 | 0x20) - 'a') >= 26u) {
            i++; /* spaces, digits, punctuation */
            continue;
        }
        size_t n;
        uint32_t cp = pii_utf8_decode(s + i, len - i, &n);
        if (!pii_is_letter(cp)) {
            i += n;
            continue;
        }
        size_t start = i;
        bool upper = pii_is_upper(cp), all_caps = true, cyr = cp >= 0x400;
        if (!upper) {
            /* Fast path over a lower-case word: most of the text. Only letter bytes
             * (ASCII, Latin-1/Extended-A, Cyrillic) and inner hyphens/apostrophes
             * are skipped, so punctuation still ends the word. */
            while (i < len) {
                unsigned char c0 = (unsigned char)s[i];
                if ((c0 | 0x20) >= 'a' && (c0 | 0x20) <= 'z')
                    i++;
                else if (c0 >= 0xC3 && c0 <= 0xD3 && i + 1 < len && ((unsigned char)s[i + 1] & 0xC0) == 0x80 &&
                         (c0 >= 0xD0 || c0 <= 0xC5) && !(c0 == 0xC3 && ((unsigned char)s[i + 1] == 0x97 ||
                                                                       (unsigned char)s[i + 1] == 0xB7)))
                    i += 2;
                else if ((c0 == '-' || c0 == '\'') && i + 1 < len &&
                         ((unsigned)(((unsigned char)s[i + 1] | 0x20) - 'a') < 26u || (unsigned char)s[i + 1] >= 0xD0))
                    i++;
                else
                    break;
            }
            /* Particles inside names ("Усама бин Ладен", "Людвиг ван Бетховен"): a
             * short lower-case particle right after a capitalised word keeps the
             * next capitalised word adjacent. */
            if (prev_end != (size_t)-1 && start >= prev_end && start - prev_end == 1 &&
                s[prev_end] == ' ' && i < len && s[i] == ' ' && i - start <= 6 && particle(s + start, i - start))
                prev_end = i;
            continue;
        }
        size_t nletters = 0;
        while (i < len) {
            cp = pii_utf8_decode(s + i, len - i, &n);
            if (pii_is_letter(cp)) {
                nletters++;
                if (!pii_is_upper(cp))
                    all_caps = false;
                if (cp >= 0x400)
                    cyr = true;
                i += n;
                continue;
            }
            /* Inner hyphen or apostrophe followed by a letter: Жан-Поль, O'Brien
             * (but not the possessive 's). */
            if ((s[i] == '-' || s[i] == '\'') && i + 1 < len) {
                size_t n2;
                uint32_t c2 = pii_utf8_decode(s + i + 1, len - i - 1, &n2);
                if (pii_is_letter(c2) && !(s[i] == '\'' && (c2 == 's' || c2 == 't') &&
                                           (i + 2 >= len || !pii_is_letter((unsigned char)s[i + 2])))) {
                    i++;
                    continue;
                }
            }
            break;
        }
        size_t end = i;
        if (!upper)
            continue;
        /* An initial: one capital and a dot ("А.", "J."); a bare capital ("J"). */
        bool initial = nletters == 1 && end < len && s[end] == '.';
        bool bare = nletters == 1 && !initial;
        if (nletters > 40)
            continue;
        tok *k = tok_push(t);
        if (!k)
            return -1;
        memset(k, 0, sizeof *k);
        k->start = start;
        k->end = initial ? end + 1 : end;
        k->cyr = cyr;
        size_t fl = pii_fold(s + start, end - start, k->key, sizeof k->key);
        k->keylen = (uint8_t)fl;
        /* Adjacent: up to two spaces (or a no-break space), nothing else. */
        if (prev_end != (size_t)-1 && start >= prev_end && start - prev_end <= 2) {
            bool ok = true;
            for (size_t p = prev_end; p < start; p++)
                if (s[p] != ' ' && (unsigned char)s[p] != 0xC2 && (unsigned char)s[p] != 0xA0)
                    ok = false;
            k->adj_prev = ok;
        }
        k->sent_start = sentence_start(s, start);
        k->title_before = 0;
        k->title_known = false;
        if (initial)
            k->cls = TK_INITIAL;
        else if (bare)
            k->cls = TK_BARE;
        else if (fl > 0)
            classify_tok(k, s, nletters, all_caps);
        else
            k->cls = TK_STOP;
        if (!cyr)
            k->cls |= TK_LATIN;
        prev_end = k->end;
    }
    return 0;
}

static int title_of(tok *k, const char *s)
{
    if (!k->title_known) {
        k->title_before = (uint8_t)title_word_before(s, k->start);
        k->title_known = true;
    }
    return k->title_before;
}

bool pii_names_is_first(const char *folded, size_t n)
{
    bool cyr = n > 0 && ((unsigned char)folded[0] & 0x80);
    return (lookup_forms(folded, n, cyr) & (PII_NAME_RU_FIRST | PII_NAME_KZ_FIRST | PII_NAME_EN_FIRST |
                                           PII_NAME_FOREIGN_FIRST)) != 0;
}

static bool is_namey(unsigned c)
{
    return (c & (TK_FIRST | TK_PATR | TK_SURN_LIST | TK_SURN_SUF | TK_INITIAL)) != 0;
}

/* A token that may be part of a person span at all. */
static bool can_join(const tok *k)
{
    if (k->cls & (TK_STOP | TK_TITLE))
        return false;
    /* Short all-caps words are abbreviations (МВД, США, IBM). */
    if ((k->cls & TK_CAPS) && !(k->cls & (TK_FIRST | TK_SURN_LIST)) && k->keylen <= 8)
        return false;
    return true;
}

typedef struct stems {
    char key[32][KEYMAX];
    uint8_t len[32];
    int n;
} stems;

static void stem_add(stems *st, const tok *k)
{
    if (st->n >= 32 || k->stemlen < 4)
        return;
    for (int i = 0; i < st->n; i++)
        if (st->len[i] == k->stemlen && memcmp(st->key[i], k->key, k->stemlen) == 0)
            return;
    memcpy(st->key[st->n], k->key, k->stemlen);
    st->len[st->n] = k->stemlen;
    st->n++;
}

/* Scores tokens [a, b] as one person; 0 when they are not one. */
static float score_span(const tok *v, size_t a, size_t b)
{
    unsigned all = 0;
    size_t n = b - a + 1, caps_other = 0, firsts = 0;
    for (size_t i = a; i <= b; i++) {
        all |= v[i].cls;
        if (!is_namey(v[i].cls))
            caps_other++;
        if (v[i].cls & TK_FIRST)
            firsts++;
    }
    bool title = v[a].title_before == 2, role = v[a].title_before == 1;
    bool ss = v[a].sent_start;
    if (n >= 2) {
        if (all & TK_PATR)
            return 0.97f;
        if (all & TK_INITIAL)
            return 0.92f;
        if ((all & TK_FIRST) && (all & (TK_SURN_LIST | TK_SURN_SUF)))
            return 0.95f;
        if (firsts && caps_other) {
            /* First name + an unknown capitalised word: a foreign surname, or a
             * common word after an ambiguous first name at a sentence start. */
            if ((v[a].cls & TK_AMBIG) && ss && firsts == 1)
                return 0.45f;
            return 0.88f;
        }
        if (firsts >= 2)
            return 0.85f; /* "Anna Maria", two first names */
        if (title)
            return 0.9f;
        if ((all & TK_BARE) && n == 3 && !is_namey(v[a].cls) && (v[a + 1].cls & TK_BARE))
            return 0.8f; /* "Szabina J Gelencsér" */
        if ((all & (TK_SURN_LIST | TK_SURN_SUF)) && !(all & TK_LATIN) && n == 2)
            return ss ? 0.5f : 0.7f;
        return 0;
    }
    unsigned c = v[a].cls;
    if (title && !(c & TK_INITIAL))
        return 0.9f;
    if (role && (c & (TK_FIRST | TK_SURN_LIST | TK_SURN_SUF)))
        return 0.85f;
    /* An -ский word alone is far more often an adjective (Российской, Пермский). */
    if ((c & TK_SURN_SUF) && !(c & TK_SURN_LIST) && v[a].sk)
        return 0.45f;
    if (c & TK_PATR)
        return ss ? 0.5f : 0.7f;
    if (c & TK_FIRST) {
        if (c & TK_AMBIG)
            return ss ? 0.3f : 0.5f;
        return ss ? 0.55f : 0.7f;
    }
    if (c & TK_SURN_LIST)
        return ss ? 0.6f : 0.75f;
    if (c & TK_SURN_SUF)
        return ss ? 0.4f : 0.6f;
    return 0;
}

void pii_scan_names(const char *s, size_t len, pii_cands *c)
{
    toks t; /* not zero-filled: the 64 local tokens are written as they are used */
    t.n = 0;
    t.cap = 64;
    t.v = t.local;
    if (tokenize(s, len, &t) < 0) {
        c->nomem = true;
        goto out;
    }
    stems st;
    st.n = 0;
    for (size_t i = 0; i < t.n;) {
        if (!can_join(&t.v[i])) {
            i++;
            continue;
        }
        /* The chain: adjacent joinable tokens, at most 5. */
        size_t j = i;
        while (j + 1 < t.n && j - i < 4 && t.v[j + 1].adj_prev && can_join(&t.v[j + 1]))
            j++;
        /* Trim leading unknown words before the first name-like token ("Президент
         * России Владимир Путин") unless the pattern needs them. */
        size_t a = i;
        while (a < j && !is_namey(t.v[a].cls) && title_of(&t.v[a], s) != 2 &&
               (t.v[a].sent_start ||
                (!(t.v[a + 1].cls & (TK_INITIAL | TK_BARE | TK_PATR)) &&
                 !((t.v[a + 1].cls & TK_SURN_SUF) && !(t.v[a + 1].cls & TK_LATIN) && a + 1 == j))))
            a++;
        /* Trim trailing unknown words unless a first name or initial precedes them. */
        size_t b = j;
        while (b > a && !is_namey(t.v[b].cls) &&
               !(t.v[b - 1].cls & (TK_FIRST | TK_INITIAL | TK_BARE | TK_PATR)))
            b--;
        title_of(&t.v[a], s);
        float sc = score_span(t.v, a, b);
        if (sc > 0) {
            unsigned fl = 0;
            for (size_t k = a; k <= b; k++)
                if (t.v[k].cls & (TK_FIRST | TK_SURN_LIST))
                    fl |= MK_PII_F_LIST;
            pii_cand_add(c, t.v[a].start, t.v[b].end, MK_PII_PERSON, sc, fl);
            for (size_t k = a; k <= b; k++) {
                t.v[k].used = true;
                /* Remember surnames of confident multi-word names. */
                if (sc >= 0.85f && b > a && !(t.v[k].cls & (TK_FIRST | TK_PATR | TK_INITIAL | TK_BARE)))
                    stem_add(&st, &t.v[k]);
                if (sc >= 0.7f && a == b && (t.v[k].cls & (TK_SURN_LIST | TK_SURN_SUF)))
                    stem_add(&st, &t.v[k]);
            }
        }
        i = j + 1;
    }
    /* Later (and earlier) mentions of a surname seen in a confident match. */
    if (st.n > 0) {
        for (size_t i = 0; i < t.n; i++) {
            tok *k = &t.v[i];
            /* Inside a weaker span too: the resolution keeps the better claim. */
            if (!can_join(k) || k->stemlen < 4)
                continue;
            for (int q = 0; q < st.n; q++)
                if (st.len[q] == k->stemlen && memcmp(st.key[q], k->key, k->stemlen) == 0) {
                    pii_cand_add(c, k->start, k->end, MK_PII_PERSON, 0.85f, 0);
                    break;
                }
        }
    }
out:
    if (t.v != t.local)
        free(t.v);
}
