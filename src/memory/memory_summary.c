/*
 * memory_summary: the token estimate used for history windows, and the extractive
 * summary of older turns used when no LLM summariser is configured.
 *
 * Extractive summary: split into sentences, weigh each content word by how often the
 * conversation mentions it (log tf: it is about this) times how few sentences carry it
 * (log idf: it distinguishes), score a sentence by the sum over its distinct words
 * divided by the square root of its length (long sentences do not win by length
 * alone), then pick the best sentences greedily, skipping ones that mostly repeat
 * words already picked, until the token budget is spent, and print them in their
 * original order. Cheap (linear in the text), deterministic, and it never invents
 * anything — the right properties for a fallback.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "core/mk_error.h"
#include "memory/memory_int.h"

/* Words shorter than this (code points) carry no topic. */
#define MIN_WORD_CP 3
/* A sentence sharing more than this share of its words with what was picked is
 * redundant. */
#define MAX_OVERLAP 0.6
/* See the scoring below. */
#define MIN_SENTENCE_WORDS 3
#define NORM_WORDS 6
/* Sentences considered; more text is summarised by its first this many. */
#define MAX_SENTENCES 4096

static bool is_word_cp(utf8proc_int32_t cp)
{
    utf8proc_category_t cat = utf8proc_category(cp);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) || cp == '_';
}

int mk_memory_estimate_tokens(const char *text, size_t len)
{
    if (!text) return 0;
    long tokens = 0;
    size_t i = 0;
    long word_cp = 0;
    bool word_ascii = true;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) {
            n = 1;
            cp = 0xFFFD;
        }
        if (is_word_cp(cp)) {
            word_cp++;
            word_ascii &= cp < 0x80;
        } else {
            if (word_cp) tokens += word_ascii ? (word_cp + 3) / 4 : (word_cp + 2) / 3;
            word_cp = 0;
            word_ascii = true;
            if (!utf8proc_category(cp) || (cp != ' ' && cp != '\n' && cp != '\t' && cp != '\r')) tokens++;
        }
        i += (size_t)n;
    }
    if (word_cp) tokens += word_ascii ? (word_cp + 3) / 4 : (word_cp + 2) / 3;
    return tokens > INT32_MAX ? INT32_MAX : (int)tokens;
}

/* ---- word statistics ---------------------------------------------------------------- */

static const char *const stopwords[] = {
    "the", "and", "for", "you", "your", "with", "that", "this", "have", "has", "was", "are", "but", "not", "can",
    "will", "from", "they", "them", "there", "what", "when", "which", "would", "could", "should", "been", "were",
    "into", "about", "just", "also", "then", "than", "our", "out", "all", "any", "yes", "please", "thanks",
    "что", "это", "как", "так", "все", "его", "она", "они", "мне", "меня", "вас", "вам", "для", "при", "или",
    "уже", "ещё", "еще", "был", "была", "было", "если", "когда", "чтобы", "тоже", "только", "там", "тут", "вот",
    "пожалуйста", "спасибо", "да", "нет"};

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h | 1; /* 0 marks an empty slot */
}

static bool is_stopword(uint64_t h)
{
    static uint64_t table[sizeof stopwords / sizeof stopwords[0]];
    static bool ready;
    /* benign race: every thread computes the same values */
    if (!ready) {
        for (size_t i = 0; i < sizeof stopwords / sizeof stopwords[0]; i++)
            table[i] = fnv(stopwords[i], strlen(stopwords[i]));
        __atomic_store_n(&ready, true, __ATOMIC_RELEASE);
    }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i] == h) return true;
    return false;
}

struct wtab {
    uint64_t *key;
    uint32_t *tf, *sf, *last;    /* last: sentence that last counted it in sf */
    size_t cap, n;
};

static int wtab_slot(struct wtab *t, uint64_t h, size_t *at)
{
    if ((t->n + 1) * 2 > t->cap) {
        struct wtab b = {0};
        b.cap = t->cap ? t->cap * 2 : 1024;
        b.key = calloc(b.cap, sizeof *b.key);
        b.tf = calloc(b.cap, sizeof *b.tf);
        b.sf = calloc(b.cap, sizeof *b.sf);
        b.last = calloc(b.cap, sizeof *b.last);
        if (!b.key || !b.tf || !b.sf || !b.last) {
            free(b.key), free(b.tf), free(b.sf), free(b.last);
            return MK_ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->key[i]) continue;
            size_t j = t->key[i] & (b.cap - 1);
            while (b.key[j]) j = (j + 1) & (b.cap - 1);
            b.key[j] = t->key[i], b.tf[j] = t->tf[i], b.sf[j] = t->sf[i], b.last[j] = t->last[i];
        }
        b.n = t->n;
        free(t->key), free(t->tf), free(t->sf), free(t->last);
        *t = b;
    }
    size_t j = h & (t->cap - 1);
    while (t->key[j] && t->key[j] != h) j = (j + 1) & (t->cap - 1);
    if (!t->key[j]) {
        t->key[j] = h;
        t->n++;
    }
    *at = j;
    return 0;
}

static size_t wtab_find(const struct wtab *t, uint64_t h)
{
    size_t j = h & (t->cap - 1);
    while (t->key[j] && t->key[j] != h) j = (j + 1) & (t->cap - 1);
    return j;
}

struct sentence {
    size_t start, end;           /* byte range, trimmed */
    uint64_t *words;             /* distinct content-word hashes */
    size_t nwords, total_words;
    double score;
    int tokens;
    bool picked;
};

/* Content-word hashes of text[a..b) (lower-cased, stopwords out) into *out (distinct),
 * counting tf and sf in t for sentence index si. */
static int sentence_words(const char *text, struct sentence *s, struct wtab *t, uint32_t si)
{
    size_t i = s->start, cap = 0;
    char word[256];
    size_t wl = 0;
    long wcp = 0;
    int rc = 0;
    while (rc == 0 && i <= s->end) {
        utf8proc_int32_t cp = 0;
        utf8proc_ssize_t n = 1;
        if (i < s->end) {
            n = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(s->end - i), &cp);
            if (n <= 0) n = 1, cp = ' ';
        }
        if (i < s->end && is_word_cp(cp)) {
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t el = utf8proc_encode_char(utf8proc_tolower(cp), enc);
            if (wl + (size_t)el < sizeof word) memcpy(word + wl, enc, (size_t)el), wl += (size_t)el;
            wcp++;
        } else if (wl) {
            s->total_words++;
            uint64_t h = fnv(word, wl);
            if (wcp >= MIN_WORD_CP && !is_stopword(h)) {
                size_t at;
                rc = wtab_slot(t, h, &at);
                if (rc) break;
                t->tf[at]++;
                if (t->last[at] != si + 1) {
                    t->last[at] = si + 1;
                    t->sf[at]++;
                    if (s->nwords == cap) {
                        cap = cap ? cap * 2 : 16;
                        uint64_t *b = realloc(s->words, cap * sizeof *b);
                        if (!b) {
                            rc = MK_ENOMEM;
                            break;
                        }
                        s->words = b;
                    }
                    s->words[s->nwords++] = h;
                }
            }
            wl = 0;
            wcp = 0;
        }
        i += (size_t)n;
    }
    return rc;
}

static bool sentence_end(const char *t, size_t i, size_t len)
{
    char ch = t[i];
    if (ch == '\n') return true;
    if (ch != '.' && ch != '!' && ch != '?') return false;
    return i + 1 >= len || t[i + 1] == ' ' || t[i + 1] == '\n' || t[i + 1] == '\t';
}

int mk_memory_summarise_extractive(const char *text, size_t len, uint32_t max_tokens, mk_buf *out)
{
    if ((!text && len) || !out) return MK_EINVAL;
    if (len == 0 || max_tokens == 0) return 0;
    struct sentence *ss = calloc(MAX_SENTENCES, sizeof *ss);
    struct wtab t = {0};
    if (!ss) return MK_ENOMEM;
    size_t ns = 0, start = 0;
    int rc = 0;
    for (size_t i = 0; i <= len && ns < MAX_SENTENCES; i++) {
        if (i < len && !sentence_end(text, i, len)) continue;
        size_t a = start, b = i < len ? i + 1 : len;
        while (a < b && (text[a] == ' ' || text[a] == '\n' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        start = i + 1;
        if (b <= a) continue;
        ss[ns].start = a;
        ss[ns].end = b;
        rc = sentence_words(text, &ss[ns], &t, (uint32_t)ns);
        if (rc) break;
        ss[ns].tokens = mk_memory_estimate_tokens(text + a, b - a) + 1;
        ns++;
    }
    for (size_t i = 0; rc == 0 && i < ns; i++) {
        double sum = 0;
        for (size_t w = 0; w < ss[i].nwords; w++) {
            size_t at = wtab_find(&t, ss[i].words[w]);
            sum += log(1.0 + t.tf[at]) * log((double)(ns + 1) / t.sf[at]);
        }
        /* fewer than MIN_SENTENCE_WORDS words ("Hello.", "Thanks, bye.") say nothing
         * worth keeping; below NORM_WORDS the length does not divide, so brevity
         * alone never wins */
        size_t tw = ss[i].total_words;
        ss[i].score = tw >= MIN_SENTENCE_WORDS ? sum / sqrt((double)(tw > NORM_WORDS ? tw : NORM_WORDS)) : 0;
    }
    /* greedy pick by score, skipping redundant sentences */
    struct wtab picked = {0};
    long budget = max_tokens;
    while (rc == 0) {
        long best = -1;
        for (size_t i = 0; i < ns; i++) {
            if (ss[i].picked || ss[i].tokens > budget || ss[i].score <= 0) continue;
            if (best < 0 || ss[i].score > ss[best].score) best = (long)i;
        }
        if (best < 0) break;
        struct sentence *s = &ss[best];
        s->picked = true;
        size_t overlap = 0;
        for (size_t w = 0; picked.cap && w < s->nwords; w++) overlap += picked.key[wtab_find(&picked, s->words[w])] != 0;
        if (s->nwords && (double)overlap / (double)s->nwords > MAX_OVERLAP) {
            s->score = -1; /* redundant: never printed */
            continue;
        }
        for (size_t w = 0; w < s->nwords && rc == 0; w++) {
            size_t at;
            rc = wtab_slot(&picked, s->words[w], &at);
        }
        budget -= s->tokens;
    }
    bool first = true;
    for (size_t i = 0; rc == 0 && i < ns; i++) {
        if (!ss[i].picked || ss[i].score < 0) continue;
        if (!first) rc = mk_buf_append_char(out, ' ');
        if (rc == 0) rc = mk_buf_append(out, text + ss[i].start, ss[i].end - ss[i].start);
        first = false;
    }
    if (rc == 0) rc = mk_buf_append(out, "", 0);
    for (size_t i = 0; i < ns; i++) free(ss[i].words);
    free(ss);
    free(t.key), free(t.tf), free(t.sf), free(t.last);
    free(picked.key), free(picked.tf), free(picked.sf), free(picked.last);
    return rc;
}
