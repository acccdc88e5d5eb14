/*
 * mk_kb_kazakh: a small suffix stripper for Kazakh, the stemmer Snowball lacks.
 *
 * Kazakh is agglutinative: a noun takes plural + possessive + case endings in that
 * order (принтер-лер-іңіз-ді "your printers" accusative), a verb voice, tense and
 * person (орнат-ыл-ған "installed"), and each ending comes in variants chosen by vowel
 * harmony and the last consonant (-лар/-лер/-дар/-дер/-тар/-тер). Since endings only
 * ever follow the root, stemming is stripping: repeatedly remove the longest ending
 * from the table below that fits the sound before it (the assimilation rules, so the
 * -тер of "принтер" is not mistaken for a plural), while the stem keeps at least
 * MIN_STEM letters, for at most MAX_ROUNDS endings.
 *
 * Retrieval only needs the same word forms to meet, not linguistically right roots:
 * an over-stripped root is harmless as long as every form of the word strips to it,
 * which the greedy longest-first rule makes likely (пернетақта, пернетақтаны,
 * пернетақтада all give "пернетақ"). Endings that are mostly part of roots (negation
 * -ма/-ме, which ends бағдарлама) are left out. Measured on the Kazakh GNOME help
 * queries (bench/kb, descriptions stripped, BM25 only): recall@5 0.978 against 0.970
 * without it, MRR@10 0.907 against 0.912 — a small gain, since those queries reuse the
 * pages' own word forms; questions in other forms than the article's gain more (the
 * unit tests show such pairs meeting).
 *
 * Pure function on bytes: the input is already case-folded UTF-8 (mk_kb_token.c).
 */
#include <stdbool.h>
#include <string.h>

#include "kb/mk_kb.h"

/* Fewer letters than this is not a root worth stripping to (су, ас are roots, but
 * cutting to two letters conflates far too much). */
#define MIN_STEM 3
/* Endings removed at most: plural + possessive + case + two verbal ones. */
#define MAX_ROUNDS 5

/* Which sound an ending's variant follows. Kazakh assimilates the first consonant of an
 * ending to the end of the stem (-тар after voiceless consonants, -дар after м н ң з ж л,
 * -лар after vowels and р у й), so a variant is only an ending after the right sound:
 * "принтер" ends in -тер after "н", where the plural would be -дер, so it is a root. */
enum after {
    ANY,
    VOWEL,           /* а ә е о ө ұ ү ы і и э ю я (and у, which acts as a glide) */
    CONS,            /* any consonant */
    VOICELESS,       /* к қ п с т ф х һ ц ч ш щ */
    NOT_VOICELESS,   /* a vowel or a voiced consonant */
    L_CLASS,         /* -лар: a vowel or р у й */
    D_CLASS,         /* -дар, -дық: л м н ң з ж (and б в г д) */
    D_GEN,           /* -дың: р у й л з ж (and б в г д); м н ң take -ның */
    VOICED_CONS,     /* -ды: any voiced consonant or sonorant, у included */
    VOWEL_OR_NASAL,  /* -ның, -нан: a vowel or м н ң */
    M_OR_NG,         /* -а/-е after the possessive -ым/-ың */
};

struct ending {
    const char *s;
    enum after after;
};

static const struct ending endings[] = {
    /* plural */
    {"лар", L_CLASS}, {"лер", L_CLASS}, {"дар", D_CLASS}, {"дер", D_CLASS}, {"тар", VOICELESS}, {"тер", VOICELESS},
    /* possessive: 1st/2nd person plural and polite, singular, 3rd person */
    {"ымыз", CONS}, {"іміз", CONS}, {"мыз", VOWEL}, {"міз", VOWEL}, {"ыңыз", CONS}, {"іңіз", CONS},
    {"ңыз", VOWEL}, {"ңіз", VOWEL}, {"ым", CONS}, {"ім", CONS}, {"ың", CONS}, {"ің", CONS},
    {"сы", VOWEL}, {"сі", VOWEL}, {"ы", CONS}, {"і", CONS}, {"м", VOWEL}, {"ң", VOWEL},
    /* case: genitive, dative, accusative, locative, ablative, instrumental, equative */
    {"ның", VOWEL_OR_NASAL}, {"нің", VOWEL_OR_NASAL}, {"дың", D_GEN}, {"дің", D_GEN},
    {"тың", VOICELESS}, {"тің", VOICELESS},
    {"ға", NOT_VOICELESS}, {"ге", NOT_VOICELESS}, {"қа", VOICELESS}, {"ке", VOICELESS},
    {"на", VOWEL}, {"не", VOWEL}, {"а", M_OR_NG}, {"е", M_OR_NG},
    {"ны", VOWEL}, {"ні", VOWEL}, {"ды", VOICED_CONS}, {"ді", VOICED_CONS}, {"ты", VOICELESS}, {"ті", VOICELESS},
    {"н", VOWEL},
    {"нда", VOWEL}, {"нде", VOWEL}, {"да", NOT_VOICELESS}, {"де", NOT_VOICELESS}, {"та", VOICELESS},
    {"те", VOICELESS},
    {"нан", VOWEL_OR_NASAL}, {"нен", VOWEL_OR_NASAL}, {"дан", NOT_VOICELESS}, {"ден", NOT_VOICELESS},
    {"тан", VOICELESS}, {"тен", VOICELESS},
    {"менен", NOT_VOICELESS}, {"мен", NOT_VOICELESS}, {"бен", NOT_VOICELESS}, {"пен", VOICELESS},
    {"ша", ANY}, {"ше", ANY}, {"дай", NOT_VOICELESS}, {"дей", NOT_VOICELESS},
    /* adjectives of place and time (-ғы, -дағы) */
    {"ндағы", VOWEL}, {"ндегі", VOWEL}, {"дағы", NOT_VOICELESS}, {"дегі", NOT_VOICELESS},
    {"тағы", VOICELESS}, {"тегі", VOICELESS}, {"ғы", NOT_VOICELESS}, {"гі", NOT_VOICELESS},
    {"қы", VOICELESS}, {"кі", VOICELESS},
    /* verbs: verbal noun, converbs, participles, present tense, imperative, intention */
    {"у", ANY}, {"ю", VOWEL}, {"ып", CONS}, {"іп", CONS}, {"п", VOWEL},
    {"ған", NOT_VOICELESS}, {"ген", NOT_VOICELESS}, {"қан", VOICELESS}, {"кен", VOICELESS},
    {"атын", CONS}, {"етін", CONS}, {"йтын", VOWEL}, {"йтін", VOWEL}, {"ытын", CONS}, {"ітін", CONS},
    {"ады", CONS}, {"еді", CONS}, {"йды", VOWEL}, {"йді", VOWEL},
    {"сын", ANY}, {"сін", ANY}, {"ңдар", VOWEL}, {"ңдер", VOWEL}, {"ыңдар", CONS}, {"іңдер", CONS},
    {"мақ", NOT_VOICELESS}, {"мек", NOT_VOICELESS}, {"бақ", NOT_VOICELESS}, {"бек", NOT_VOICELESS},
    {"пақ", VOICELESS}, {"пек", VOICELESS},
    {"мау", NOT_VOICELESS}, {"меу", NOT_VOICELESS}, {"бау", NOT_VOICELESS}, {"беу", NOT_VOICELESS},
    {"пау", VOICELESS}, {"пеу", VOICELESS},
    /* voice: passive, causative */
    {"ыл", CONS}, {"іл", CONS}, {"дыр", NOT_VOICELESS}, {"дір", NOT_VOICELESS}, {"тыр", VOICELESS},
    {"тір", VOICELESS},
    /* derivation: abstract nouns, "with", "without", agent */
    {"лық", L_CLASS}, {"лік", L_CLASS}, {"дық", D_CLASS}, {"дік", D_CLASS}, {"тық", VOICELESS},
    {"тік", VOICELESS}, {"лы", L_CLASS}, {"лі", L_CLASS}, {"сыз", ANY}, {"сіз", ANY}, {"шы", ANY}, {"ші", ANY},
};
#define NENDINGS (sizeof endings / sizeof endings[0])

static size_t letters(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* The last code point of s[0..len) (-1 when it is not a 2-byte Cyrillic one). */
static int last_cp(const char *s, size_t len)
{
    if (len < 2)
        return -1;
    unsigned char a = (unsigned char)s[len - 2], b = (unsigned char)s[len - 1];
    if ((a & 0xE0) != 0xC0 || (b & 0xC0) != 0x80)
        return -1;
    return ((a & 0x1F) << 6) | (b & 0x3F);
}

static bool in(int c, const int *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == c)
            return true;
    return false;
}

static const int vowels[] = {0x430, 0x4D9, 0x435, 0x43E, 0x4E9, 0x4B1, 0x4AF, 0x44B, 0x456, 0x438, 0x44D, 0x44E,
                             0x44F, 0x451, 0x443};
static const int voiceless[] = {0x43A, 0x49B, 0x43F, 0x441, 0x442, 0x444, 0x445, 0x4BB, 0x446, 0x447, 0x448, 0x449};
static const int l_class[] = {0x440, 0x443, 0x439};                          /* р у й */
static const int d_class[] = {0x43B, 0x43C, 0x43D, 0x4A3, 0x437, 0x436,      /* л м н ң з ж */
                              0x431, 0x432, 0x433, 0x434};                   /* б в г д */
static const int nasals[] = {0x43C, 0x43D, 0x4A3};                           /* м н ң */
#define N(a) (sizeof a / sizeof a[0])

static bool follows(enum after a, int c)
{
    if (a == ANY)
        return true;
    if (c < 0)
        return false;
    bool vowel = in(c, vowels, N(vowels)), vl = in(c, voiceless, N(voiceless));
    bool letter = (c >= 0x430 && c <= 0x44F) || c == 0x451 || in(c, (const int[]){0x4D9, 0x493, 0x49B, 0x4A3, 0x4E9,
                                                                                  0x4B1, 0x4AF, 0x4BB, 0x456}, 9);
    if (!letter || c == 0x44A || c == 0x44C) /* ъ ь */
        return false;
    switch (a) {
    case VOWEL: return vowel;
    case CONS: return !vowel;
    case VOICELESS: return vl;
    case NOT_VOICELESS: return !vl;
    case L_CLASS: return (vowel && c != 0x443) || in(c, l_class, N(l_class));
    case D_CLASS: return in(c, d_class, N(d_class));
    case D_GEN: return (in(c, d_class, N(d_class)) && !in(c, nasals, N(nasals))) || in(c, l_class, N(l_class));
    case VOICED_CONS: return (!vowel || c == 0x443) && !vl;
    case VOWEL_OR_NASAL: return vowel || in(c, nasals, N(nasals));
    case M_OR_NG: return c == 0x43C || c == 0x4A3;
    default: return true;
    }
}

size_t mk_kb_kazakh_stem(const char *w, size_t len)
{
    if (!w)
        return 0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        size_t best = 0;
        for (size_t i = 0; i < NENDINGS; i++) {
            const char *e = endings[i].s;
            size_t el = strlen(e);
            /* The last byte rejects almost every ending before a comparison. */
            if (el <= best || el >= len || e[el - 1] != w[len - 1] || memcmp(w + len - el, e, el) != 0)
                continue;
            if (letters(w, len - el) >= MIN_STEM && follows(endings[i].after, last_cp(w, len - el)))
                best = el;
        }
        if (best == 0)
            break;
        len -= best;
    }
    return len;
}
