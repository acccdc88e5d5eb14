/*
 * cache_guard: refuses semantic cache hits whose meaning differs in a way embeddings
 * blur. Bag-of-features embedders (ours included) put "включить Wi-Fi" and "выключить
 * Wi-Fi", or "printer" and "scanner" questions, very close; serving one's answer for
 * the other is the worst thing a support cache can do. So a candidate above the
 * similarity threshold must also agree with the query on:
 *   - negation: both or neither contain a negation word (ru/en/kk);
 *   - polarity: the same sides of each antonym axis (on/off, connect/disconnect,
 *     lock/unlock, add/remove, increase/decrease, log in/out, open/close, send/receive,
 *     start/stop), matched by word stems;
 *   - numbers: the same set of digit runs ("100" vs "1000", "iPhone 12" vs "13");
 *   - entities: the same classes of a small lexicon of devices, services, systems and
 *     currencies (printer vs scanner, Visa vs Mastercard, dollars vs euros);
 *   - names: every proper or product name of one text (a word capitalised inside a
 *     sentence, an acronym, a Latin word in Cyrillic text) occurs in the other, in any
 *     case ("столица Исландии" vs "столица Новой Зеландии", "KLM" vs "Malev").
 * Each rule is a set comparison over a small signature computed once per text (the
 * cached side's at store time), so the guard costs microseconds. docs/CACHE.md has the
 * reasoning and the measured effect on BANKING77.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "cache/cache_int.h"
#include "cache/mk_cache.h"

/* Longest token we look at (bytes); longer words cannot be in any list below. */
#define TOKEN_MAX 64

/* Whole-word negations (after folding: lower case, ё -> е, apostrophes and hyphens
 * removed, so "don't" reads "dont"). */
static const char *const negations[] = {
    /* en */
    "not", "no", "never", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "cannot",
    "couldnt", "wont", "wouldnt", "shouldnt", "havent", "hasnt", "hadnt", "without", "nothing", "neither",
    "nor", "none", "nobody", "nowhere", "unable",
    /* ru */
    "не", "нет", "ни", "без", "никогда", "нельзя", "ничего", "никак", "нигде", "никто", "нету",
    /* kk */
    "емес", "жоқ", "жок", "ешқашан", "ешкашан", "ешқандай", "ешнәрсе", "ешкім", "онсыз",
};

/* Antonym axes: stems (token prefixes) of each side. Axis i sets bit 2i ("on" side) or
 * 2i+1 ("off" side). An "off" stem is checked first, since some contain an "on" stem
 * ("disconnect" ends in "connect", "unblock" in "block"); matching is by prefix, so
 * only the start of the word counts. */
struct axis {
    const char *const *on;
    const char *const *off;
};
static const char *const power_on[] = {"включ", "подключ", "enable", "activat", "connect", "reconnect", "қос", NULL};
static const char *const power_off[] = {"выключ", "отключ", "disable", "deactivat", "disconnect", "өшір", "ажырат", NULL};
static const char *const lock_on[] = {"заблок", "блок", "lock", "block", "freez", "froze", "бұғат", NULL};
static const char *const lock_off[] = {"разблок", "unlock", "unblock", "unfreez", "unfroze", NULL};
static const char *const add_on[] = {"добав", "установ", "add", "install", "созда", "create", NULL};
static const char *const add_off[] = {"удал", "delet", "remov", "uninstall", "жой", NULL};
static const char *const more_on[] = {"увелич", "повыс", "increas", "raise", "rais", "higher", NULL};
static const char *const more_off[] = {"уменьш", "сниз", "пониз", "decreas", "reduc", "lower", NULL};
static const char *const open_on[] = {"открыт", "откро", "откры", "open", "ашу", "аш", NULL};
static const char *const open_off[] = {"закрыт", "закро", "закры", "close", "closing", "жабу", "жап", NULL};
static const char *const send_on[] = {"отправ", "send", "sent", "sending", "жібер", NULL};
static const char *const send_off[] = {"получ", "receiv", "алу", NULL};
static const char *const start_on[] = {"запуст", "запуск", "start", "іске", NULL};
static const char *const start_off[] = {"останов", "stop", "тоқтат", NULL};
static const char *const login_on[] = {"войт", "вход", "login", "signin", "кір", NULL};
static const char *const login_off[] = {"выйт", "выход", "logout", "signout", "шығ", NULL};

static const struct axis axes[] = {
    {power_on, power_off}, {lock_on, lock_off},   {add_on, add_off},     {more_on, more_off},
    {open_on, open_off},   {send_on, send_off},   {start_on, start_off}, {login_on, login_off},
};

/* Entity classes: each row is one class, its stems (token prefixes). Classes that are
 * easy to confuse by embedding are separate rows on purpose. */
static const char *const *const entities[] = {
    (const char *const[]){"принтер", "printer", "принтер", "мфу", NULL},
    (const char *const[]){"сканер", "scanner", "сканир", NULL},
    (const char *const[]){"роутер", "маршрутизатор", "router", "рутер", NULL},
    (const char *const[]){"модем", "modem", NULL},
    (const char *const[]){"ноутбук", "laptop", "notebook", "ноут", NULL},
    (const char *const[]){"компьютер", "computer", "desktop", "пк", "pc", NULL},
    (const char *const[]){"смартфон", "телефон", "phone", "smartphone", "мобильн", "mobile", "iphone", "айфон", NULL},
    (const char *const[]){"планшет", "tablet", "ipad", "айпад", NULL},
    (const char *const[]){"монитор", "monitor", "экран", "screen", "display", "дисплей", NULL},
    (const char *const[]){"клавиатур", "keyboard", NULL},
    (const char *const[]){"мышь", "мышк", "mouse", NULL},
    (const char *const[]){"наушник", "headphone", "headset", "earbud", "гарнитур", NULL},
    (const char *const[]){"камер", "camera", "webcam", "вебкам", NULL},
    (const char *const[]){"телевизор", "тв", "tv", "television", NULL},
    (const char *const[]){"wifi", "вайфай", "wlan", NULL},
    (const char *const[]){"bluetooth", "блютуз", NULL},
    (const char *const[]){"vpn", "впн", NULL},
    (const char *const[]){"email", "mail", "почт", "gmail", NULL},
    (const char *const[]){"windows", "виндовс", NULL},
    (const char *const[]){"linux", "линукс", "ubuntu", NULL},
    (const char *const[]){"android", "андроид", NULL},
    (const char *const[]){"ios", "macos", "mac", "макбук", "macbook", NULL},
    (const char *const[]){"visa", "виза", NULL},
    (const char *const[]){"mastercard", "мастеркард", "maestro", NULL},
    (const char *const[]){"мир", NULL},
    (const char *const[]){"applepay", "apple", NULL},
    (const char *const[]){"googlepay", "google", "gpay", NULL},
    (const char *const[]){"доллар", "dollar", "usd", NULL},
    (const char *const[]){"евро", "euro", "eur", NULL},
    (const char *const[]){"рубл", "ruble", "rouble", "rub", NULL},
    (const char *const[]){"тенге", "теңге", "kzt", NULL},
    (const char *const[]){"фунт", "pound", "gbp", NULL},
    (const char *const[]){"паспорт", "passport", NULL},
    (const char *const[]){"атм", "atm", "банкомат", NULL},
    (const char *const[]){"sim", "сим", "esim", NULL},
    (const char *const[]){"пароль", "пароля", "password", "парол", "pin", "пин", NULL},
};
_Static_assert(sizeof entities / sizeof entities[0] <= 64, "entity classes fit a 64-bit mask");
_Static_assert(sizeof axes / sizeof axes[0] <= 16, "axes fit a 32-bit mask");

/* ---- the lexicon as one table ---------------------------------------------------
 * Every word of the lists above, indexed once by its first two bytes, so a word of the
 * text is compared only with the few stems that start like it (a signature used to
 * cost ten times the embedding when each word walked every list). */

enum stem_kind { STEM_NEGATION, STEM_ON, STEM_OFF, STEM_ENTITY };

struct stem {
    const char *s;
    uint8_t len;             /* bytes */
    bool whole;              /* 1-3 letters (and negations): whole words only, since a
                                short prefix would match too much */
    uint8_t kind;            /* enum stem_kind */
    uint8_t index;           /* axis or entity class */
    struct stem *next;       /* in its bucket */
};

#define STEM_BUCKETS 256
static struct stem *stem_table;
static struct stem *stem_buckets[STEM_BUCKETS];
static pthread_once_t stem_once = PTHREAD_ONCE_INIT;

static unsigned bucket_of2(const char *s) { return ((unsigned char)s[0] * 31u + (unsigned char)s[1]) % STEM_BUCKETS; }

static size_t letters_of(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static size_t count_list(const char *const *l)
{
    size_t n = 0;
    while (l[n]) n++;
    return n;
}

static void add_stem(size_t *n, const char *word, enum stem_kind kind, size_t index)
{
    struct stem *st = &stem_table[(*n)++];
    st->s = word;
    st->len = (uint8_t)strlen(word);
    st->whole = kind == STEM_NEGATION || letters_of(word) <= 3;
    st->kind = (uint8_t)kind;
    st->index = (uint8_t)index;
    unsigned b = bucket_of2(word);
    st->next = stem_buckets[b];
    stem_buckets[b] = st;
}

static void build_stems(void)
{
    size_t total = sizeof negations / sizeof negations[0];
    for (size_t a = 0; a < sizeof axes / sizeof axes[0]; a++) total += count_list(axes[a].on) + count_list(axes[a].off);
    for (size_t e = 0; e < sizeof entities / sizeof entities[0]; e++) total += count_list(entities[e]);
    /* Static lists, built once and kept for the process: a failed allocation leaves an
     * empty table, i.e. a guard that only compares numbers and names. */
    stem_table = calloc(total, sizeof *stem_table);
    if (!stem_table) return;
    size_t n = 0;
    for (size_t i = 0; i < sizeof negations / sizeof negations[0]; i++) add_stem(&n, negations[i], STEM_NEGATION, 0);
    for (size_t a = 0; a < sizeof axes / sizeof axes[0]; a++) {
        for (size_t i = 0; axes[a].on[i]; i++) add_stem(&n, axes[a].on[i], STEM_ON, a);
        for (size_t i = 0; axes[a].off[i]; i++) add_stem(&n, axes[a].off[i], STEM_OFF, a);
    }
    for (size_t e = 0; e < sizeof entities / sizeof entities[0]; e++)
        for (size_t i = 0; entities[e][i]; i++) add_stem(&n, entities[e][i], STEM_ENTITY, e);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: fine for a handful of numbers */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void add_number(struct mk_cache_sig *s, const char *digits, size_t n)
{
    while (n > 1 && digits[0] == '0') { /* "05" and "5" are one number */
        digits++;
        n--;
    }
    uint64_t h = hash_bytes(digits, n);
    uint32_t i = 0;
    while (i < s->nnumbers && s->numbers[i] < h) i++;
    if (i < s->nnumbers && s->numbers[i] == h) return;
    if (s->nnumbers == GUARD_MAX_NUMBERS) return;
    memmove(&s->numbers[i + 1], &s->numbers[i], (s->nnumbers - i) * sizeof s->numbers[0]);
    s->numbers[i] = h;
    s->nnumbers++;
}

/* Two-word phrasal verbs: "turn on", "log out"... -> the axis they belong to. */
static void phrasal(struct mk_cache_sig *s, const char *prev, size_t plen, const char *tok, size_t len)
{
    bool turn = (plen == 4 && memcmp(prev, "turn", 4) == 0) || (plen == 6 && memcmp(prev, "switch", 6) == 0) ||
                (plen == 5 && memcmp(prev, "power", 5) == 0);
    bool log = (plen == 3 && memcmp(prev, "log", 3) == 0) || (plen == 4 && memcmp(prev, "sign", 4) == 0);
    bool on = len == 2 && memcmp(tok, "on", 2) == 0;
    bool off = len == 3 && memcmp(tok, "off", 3) == 0;
    bool in = len == 2 && memcmp(tok, "in", 2) == 0;
    bool out = len == 3 && memcmp(tok, "out", 3) == 0;
    if (turn && on) s->polarity |= 1u << 0;
    if (turn && off) s->polarity |= 1u << 1;
    if (log && in) s->polarity |= 1u << 14;
    if (log && out) s->polarity |= 1u << 15;
}

/* Adds one folded word to the signature. Returns true when it names an entity class
 * of the lexicon: the entity rule already compares it, by class ("EUR" = "euro"). */
static bool token(struct mk_cache_sig *s, const char *tok, size_t len, const char *prev, size_t plen)
{
    if (len == 0) return false;
    bool entity = false;
    /* An axis's "off" stem wins over its "on" stem in the same word: "disconnect"
     * ends in "connect" and "unblock" in "block", but only the start counts. */
    uint32_t on = 0, off = 0;
    for (const struct stem *st = len >= 2 ? stem_buckets[bucket_of2(tok)] : NULL; st; st = st->next) {
        if (st->whole ? !(st->len == len && memcmp(tok, st->s, len) == 0)
                      : !(st->len <= len && memcmp(tok, st->s, st->len) == 0))
            continue;
        switch (st->kind) {
        case STEM_NEGATION: s->negated = true; break;
        case STEM_ON: on |= 1u << st->index; break;
        case STEM_OFF: off |= 1u << st->index; break;
        default:
            s->entities |= 1ull << st->index;
            entity = true;
        }
    }
    for (size_t a = 0; a < sizeof axes / sizeof axes[0]; a++) {
        if (off >> a & 1) s->polarity |= 1u << (2 * a + 1);
        else if (on >> a & 1) s->polarity |= 1u << (2 * a);
    }
    if (prev) phrasal(s, prev, plen, tok, len);
    return entity;
}

/* ---- names ------------------------------------------------------------------------ */

/* Letters of a name's key: enough to let Russian and Kazakh case endings meet
 * ("Исландии" / "Исландия") while keeping different names apart. */
#define NAME_KEY_LETTERS 4
/* Name candidates remembered while a text is read (decided once its script is known). */
#define NAME_CANDIDATES 64

/* What the reader knows of the current word beyond its folded bytes. */
struct word_info {
    size_t letters;          /* letters and digits */
    size_t key_len;          /* bytes of the first NAME_KEY_LETTERS of them */
    unsigned upper;          /* letters written in upper or title case */
    bool first_upper;        /* starts with a capital */
    bool latin;              /* has a Latin-script letter */
    bool apostrophe_second;  /* "I'm", "I've": a joiner right after the first letter */
    bool sentence_start;     /* first word of the text or of a sentence */
};

struct name_candidate {
    uint32_t key;
    bool capital;            /* capitalised inside a sentence, or an acronym */
    bool latin;
};

static uint32_t key_hash(const char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n);
    return (uint32_t)(h ^ (h >> 32));
}

/* Two bits of the word filter per key, from independent parts of its hash. */
static void word_bits(uint32_t key, unsigned *a, unsigned *b)
{
    uint32_t x = key * 0x9E3779B1u;
    *a = (x >> 16) % GUARD_WORD_BITS;
    *b = (key ^ (key >> 13)) % GUARD_WORD_BITS;
}

static void add_word(struct mk_cache_sig *s, uint32_t key)
{
    unsigned a, b;
    word_bits(key, &a, &b);
    s->words[a / 64] |= 1ull << (a % 64);
    s->words[b / 64] |= 1ull << (b % 64);
}

static bool has_word(const struct mk_cache_sig *s, uint32_t key)
{
    unsigned a, b;
    word_bits(key, &a, &b);
    return (s->words[a / 64] >> (a % 64) & 1) && (s->words[b / 64] >> (b % 64) & 1);
}

static bool is_latin(utf8proc_int32_t cp)
{
    return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7);
}

static bool is_cyrillic(utf8proc_int32_t cp) { return cp >= 0x400 && cp <= 0x4FF; }

static bool ends_sentence(utf8proc_int32_t cp)
{
    return cp == '.' || cp == '!' || cp == '?' || cp == 0x2026 || cp == '\n' || cp == ':' || cp == ';';
}

void mk_cache_sig_of(const char *text, size_t len, struct mk_cache_sig *out)
{
    pthread_once(&stem_once, build_stems);
    memset(out, 0, sizeof *out);
    char tok[TOKEN_MAX + 8], prev[TOKEN_MAX + 8];
    size_t tlen = 0, plen = 0;
    bool have_prev = false, overflow = false;
    char digits[TOKEN_MAX];
    size_t dlen = 0;
    size_t pos = 0;
    struct word_info w = {.sentence_start = true};
    bool next_starts = true;
    /* Script and case of the whole text decide which candidates are names: a Latin
     * word is a name in Cyrillic text, and capitals mean nothing in a text written in
     * Title Case or capitals throughout. */
    size_t cyrillic = 0, latin = 0, inner_words = 0, inner_capitals = 0;
    struct name_candidate cand[NAME_CANDIDATES];
    size_t ncand = 0;
    while (pos <= len) {
        utf8proc_int32_t cp = -1;
        utf8proc_ssize_t n = 1;
        if (pos < len) {
            n = utf8proc_iterate((const utf8proc_uint8_t *)text + pos, (utf8proc_ssize_t)(len - pos), &cp);
            if (n <= 0) {
                n = 1;
                cp = ' ';
            }
        } else {
            cp = ' ';
        }
        pos += (size_t)n;
        utf8proc_category_t cat = utf8proc_category(cp);
        bool digit = cat == UTF8PROC_CATEGORY_ND;
        bool letter = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        bool joiner = cp == '\'' || cp == 0x2019 || cp == '-' || cp == 0x2010 || cp == 0x2011;
        if (digit && cp < 128) {
            if (dlen < sizeof digits) digits[dlen++] = (char)cp;
        } else if (dlen) {
            add_number(out, digits, dlen);
            dlen = 0;
        }
        if (joiner && tlen) { /* "don't" -> "dont", "wi-fi" -> "wifi" */
            if (w.letters == 1 && (cp == '\'' || cp == 0x2019)) w.apostrophe_second = true;
            continue;
        }
        if (letter || digit) {
            bool upper = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT;
            if (letter) {
                if (is_cyrillic(cp)) cyrillic++;
                else if (is_latin(cp)) {
                    latin++;
                    w.latin = true;
                }
            }
            if (w.letters == 0) w.first_upper = upper;
            if (upper) w.upper++;
            cp = utf8proc_tolower(cp);
            if (cp == 0x451) cp = 0x435; /* ё -> е */
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t m = utf8proc_encode_char(cp, enc);
            if (tlen + (size_t)m > TOKEN_MAX) overflow = true;
            else {
                memcpy(tok + tlen, enc, (size_t)m);
                tlen += (size_t)m;
                w.letters++;
                if (w.letters <= NAME_KEY_LETTERS) w.key_len = tlen;
            }
            continue;
        }
        if (tlen && !overflow) {
            bool entity = token(out, tok, tlen, have_prev ? prev : NULL, plen);
            /* Short words are keyed whole, longer ones by their first letters. */
            uint32_t key = key_hash(tok, w.letters < NAME_KEY_LETTERS ? tlen : w.key_len);
            add_word(out, key);
            bool pronoun = w.letters <= 4 && w.first_upper && w.apostrophe_second && tok[0] == 'i'; /* I'm, I've */
            bool capital = (w.upper >= 2 || (w.first_upper && !w.sentence_start)) && !pronoun;
            if (!w.sentence_start && w.letters >= 2) {
                inner_words++;
                if (w.first_upper || w.upper >= 2) inner_capitals++;
            }
            if (w.letters >= 2 && (capital || w.latin) && !entity && ncand < NAME_CANDIDATES)
                cand[ncand++] = (struct name_candidate){.key = key, .capital = capital, .latin = w.latin};
            memcpy(prev, tok, tlen);
            plen = tlen;
            have_prev = true;
        } else if (tlen) {
            have_prev = false;
        }
        if (tlen) next_starts = false;
        if (ends_sentence(cp)) next_starts = true;
        tlen = 0;
        overflow = false;
        w = (struct word_info){.sentence_start = next_starts};
    }
    bool capitals_mean_names = !(inner_words >= 3 && 2 * inner_capitals > inner_words);
    bool latin_means_name = cyrillic > latin;
    for (size_t i = 0; i < ncand && out->nnames < GUARD_MAX_NAMES; i++) {
        if (!((cand[i].capital && capitals_mean_names) || (cand[i].latin && latin_means_name))) continue;
        bool dup = false;
        for (uint32_t j = 0; j < out->nnames; j++) dup = dup || out->names[j] == cand[i].key;
        if (!dup) out->names[out->nnames++] = cand[i].key;
    }
}

/* Every name of a occurs among b's words. */
static bool names_found(const struct mk_cache_sig *a, const struct mk_cache_sig *b)
{
    for (uint32_t i = 0; i < a->nnames; i++)
        if (!has_word(b, a->names[i])) return false;
    return true;
}

const char *mk_cache_sig_mismatch(const struct mk_cache_sig *a, const struct mk_cache_sig *b)
{
    if (a->negated != b->negated) return "negation";
    if (a->polarity != b->polarity) return "antonym";
    if (a->nnumbers != b->nnumbers ||
        memcmp(a->numbers, b->numbers, a->nnumbers * sizeof a->numbers[0]) != 0)
        return "number";
    if (a->entities != b->entities) return "entity";
    if (!names_found(a, b) || !names_found(b, a)) return "name";
    return NULL;
}

bool mk_cache_guard_compatible(const char *query, size_t qlen, const char *cached, size_t clen,
                               const char **reason)
{
    struct mk_cache_sig a, b;
    mk_cache_sig_of(query ? query : "", query ? qlen : 0, &a);
    mk_cache_sig_of(cached ? cached : "", cached ? clen : 0, &b);
    const char *why = mk_cache_sig_mismatch(&a, &b);
    if (reason) *reason = why;
    return why == NULL;
}
