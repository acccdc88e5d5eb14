/*
 * signals: requests for a person, frustration and "that did not help" in ru/en/kk
 * (see mk_desk_signals.h). The lexicons are data; each entry is matched at the start
 * of a word of the case-folded text and may end inside a word (a stem).
 */
#include "desk/mk_desk_signals.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/mk_error.h"

#define MAX_SCAN_BYTES (16 * 1024)
/* Strong words say it alone; mild ones need company (punctuation, capitals). */
#define STRONG 0.6
#define MILD 0.35
#define SHOUT_PUNCT 0.3
#define SHOUT_CAPS 0.4
/* Capitals count as shouting from this many letters on, at this share. */
#define CAPS_MIN_LETTERS 8
#define CAPS_SHARE 0.7

/* Entries are lower case (as utf8proc folds) and may hold single spaces; each must
 * start a word, and one ending in '|' must also end one ("a person|" is not "a personal"). */
static const char *const human_words[] = {
    /* ru */
    "оператор", "живого человека", "живой человек", "живым человеком", "с человеком", "человека позов",
    "позовите", "позови|", "соедините", "соедини с", "переключите на", "специалист", "сотрудник", "менеджер",
    "хочу поговорить с", "дайте человека",
    /* en */
    "operator", "human|", "humans|", "real person", "a person|", "live agent", "live person", "talk to someone",
    "speak to someone", "speak with someone", "talk to somebody", "representative", "support agent",
    "customer service", "someone real", "real agent",
    /* kk */
    "адаммен", "тірі адам", "маманмен", "маманға", "маман шақыр", "қызметкермен", "операторға", "операторды",
    "шақырыңыз", "байланыстырыңыз",
};

static const char *const strong_words[] = {
    /* ru */
    "бесит", "бесполезн", "достал", "задолбал", "идиот", "тупой", "тупая", "тупые", "ужасн", "отвратительн", "бред",
    "безобрази", "кошмар", "сколько можно", "надоел", "издевательств", "черт возьми", "чёрт возьми", "позор",
    "невозможно работать",
    /* en */
    "useless", "ridiculous", "stupid", "terrible", "awful", "fed up", "sick of", "sick and tired", "wtf",
    "worst", "pathetic", "garbage", "rubbish", "hate|", "hates|", "annoying", "furious", "unacceptable", "waste of time",
    "fuck", "damn", 
    /* kk */
    "пайдасыз", "жынды", "ашулы", "ашуым", "шаршадым", "мазамды", "сұмдық", "ұят|", "жүйке",
};

static const char *const mild_words[] = {
    "блин", "опять", "снова", "до сих пор", "всё ещё", "все еще", "уже который", "почему не",
    "again|", "still|", "seriously", "come on", "why doesn", "why isn", "joke|",
    "тағы да", "әлі де", "неге",
};

static const char *const negative_words[] = {
    /* ru */
    "не помогло", "не помогает", "не помогли", "не сработал", "не то|", "это не то", "всё ещё не", "все еще не",
    "все ещё не", "по-прежнему не", "всё равно не", "все равно не", "так и не", "ничего не изменил",
    /* en */
    "didn't help", "did not help", "doesn't help", "does not help", "not helpful", "still not", "still doesn",
    "still does not", "still isn", "still can't", "still cannot", "didn't work", "did not work", "that's not it",
    "not what i asked", "no luck",
    /* kk */
    "көмектеспеді", "көмектеспейді", "болмады", "әлі де жұмыс істемейді", "әлі істемейді", "шықпады",
};

/* True when the character at byte i is a letter or digit. */
static bool letter_at(const uint8_t *s, size_t len, size_t i)
{
    utf8proc_int32_t c;
    if (utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &c) <= 0) return false;
    utf8proc_category_t cat = utf8proc_category(c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || cat == UTF8PROC_CATEGORY_ND;
}

/* True when byte i of s starts a word (start, or preceded by a non-letter). */
static bool word_start(const uint8_t *s, size_t i)
{
    if (i == 0) return true;
    size_t j = i - 1;
    while (j > 0 && (s[j] & 0xC0) == 0x80) j--;
    return !letter_at(s, i, j);
}

static const char *find_any(const uint8_t *s, size_t len, const char *const *words, size_t n, size_t *count)
{
    const char *first = NULL;
    *count = 0;
    for (size_t w = 0; w < n; w++) {
        size_t wl = strlen(words[w]);
        bool whole = wl > 0 && words[w][wl - 1] == '|';
        if (whole) wl--;
        for (size_t i = 0; i + wl <= len; i++) {
            if (memcmp(s + i, words[w], wl) != 0 || !word_start(s, i)) continue;
            if (whole && i + wl < len && letter_at(s, len, i + wl)) continue;
            if (!first) first = words[w];
            (*count)++;
            break; /* one hit per entry: "again again again" is one signal */
        }
    }
    return first;
}

/* "!!", "?!", "!?" runs, and a message mostly in capitals. */
static double shouting(const char *text, size_t len)
{
    double score = 0;
    bool punct = false;
    for (size_t i = 0; i + 1 < len; i++) {
        char a = text[i], b = text[i + 1];
        if ((a == '!' && b == '!') || (a == '?' && b == '!') || (a == '!' && b == '?')) punct = true;
    }
    if (punct) score += SHOUT_PUNCT;
    size_t letters = 0, upper = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t r = utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (r <= 0) {
            i++;
            continue;
        }
        i += (size_t)r;
        utf8proc_category_t cat = utf8proc_category(c);
        if (cat == UTF8PROC_CATEGORY_LU) upper++, letters++;
        else if (cat == UTF8PROC_CATEGORY_LL) letters++;
    }
    if (letters >= CAPS_MIN_LETTERS && (double)upper >= CAPS_SHARE * (double)letters) score += SHOUT_CAPS;
    return score;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

int mk_desk_signals_scan(const char *text, size_t len, struct mk_desk_signals *out)
{
    if (!out || (!text && len > 0)) return MK_EINVAL;
    memset(out, 0, sizeof *out);
    if (len > MAX_SCAN_BYTES) len = MAX_SCAN_BYTES;
    if (len == 0) return 0;
    /* Invalid bytes become spaces (so they also separate words), then NFC + case fold;
     * runs of white space become one space so phrases match across line breaks. */
    char *clean = malloc(len + 1);
    if (!clean) return MK_ENOMEM;
    size_t cl = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t r = utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (r <= 0 || c == 0) {
            clean[cl++] = ' ';
            i++;
            continue;
        }
        memcpy(clean + cl, text + i, (size_t)r);
        cl += (size_t)r;
        i += (size_t)r;
    }
    clean[cl] = '\0';
    uint8_t *folded = NULL;
    utf8proc_ssize_t fl = utf8proc_map((const uint8_t *)clean, (utf8proc_ssize_t)cl, &folded,
                                       UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
    free(clean);
    if (fl < 0) return MK_ENOMEM;
    size_t n = 0;
    bool space = false;
    for (size_t i = 0; i < (size_t)fl; i++) {
        uint8_t ch = folded[i];
        bool ws = ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
        if (ws && space) continue;
        space = ws;
        /* "’" (U+2019) as "'": phones type it in "didn’t". */
        if (ch == 0xE2 && i + 2 < (size_t)fl && folded[i + 1] == 0x80 && folded[i + 2] == 0x99) {
            folded[n++] = '\'';
            i += 2;
            continue;
        }
        folded[n++] = ws ? ' ' : ch;
    }
    size_t count;
    const char *hit = find_any(folded, n, human_words, N(human_words), &count);
    if (hit) {
        out->wants_human = true;
        out->matched = hit;
    }
    const char *strong = find_any(folded, n, strong_words, N(strong_words), &count);
    out->frustration += STRONG * (double)count;
    size_t mild_count;
    const char *mild = find_any(folded, n, mild_words, N(mild_words), &mild_count);
    out->frustration += MILD * (double)mild_count;
    out->frustration += shouting(text, len);
    out->frustrated = out->frustration >= MK_DESK_FRUSTRATION_THRESHOLD;
    if (!out->matched) out->matched = strong ? strong : mild;
    out->negative_feedback = find_any(folded, n, negative_words, N(negative_words), &count) != NULL;
    free(folded);
    return 0;
}
