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
 *     currencies (printer vs scanner, Visa vs Mastercard, dollars vs euros).
 * Each rule is a set comparison over a small signature computed once per text (the
 * cached side's at store time), so the guard costs microseconds. docs/CACHE.md has the
 * reasoning and the measured effect on BANKING77.
 */
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

static bool has_prefix(const char *tok, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    return len >= n && memcmp(tok, pre, n) == 0;
}

/* Short stems (1-3 letters) would match too much by prefix: they must be whole words. */
static bool stem_matches(const char *tok, size_t len, const char *stem)
{
    size_t n = strlen(stem);
    size_t letters = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)stem[i] & 0xC0) != 0x80) letters++;
    if (letters <= 3) return len == n && memcmp(tok, stem, n) == 0;
    return has_prefix(tok, len, stem);
}

static bool in_list(const char *tok, size_t len, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (stem_matches(tok, len, list[i])) return true;
    return false;
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

static void token(struct mk_cache_sig *s, const char *tok, size_t len, const char *prev, size_t plen)
{
    if (len == 0) return;
    for (size_t i = 0; i < sizeof negations / sizeof negations[0]; i++)
        if (strlen(negations[i]) == len && memcmp(negations[i], tok, len) == 0) {
            s->negated = true;
            break;
        }
    for (size_t a = 0; a < sizeof axes / sizeof axes[0]; a++) {
        if (in_list(tok, len, axes[a].off)) s->polarity |= 1u << (2 * a + 1);
        else if (in_list(tok, len, axes[a].on)) s->polarity |= 1u << (2 * a);
    }
    for (size_t e = 0; e < sizeof entities / sizeof entities[0]; e++)
        if (in_list(tok, len, entities[e])) s->entities |= 1ull << e;
    if (prev) phrasal(s, prev, plen, tok, len);
}

void mk_cache_sig_of(const char *text, size_t len, struct mk_cache_sig *out)
{
    memset(out, 0, sizeof *out);
    char tok[TOKEN_MAX + 8], prev[TOKEN_MAX + 8];
    size_t tlen = 0, plen = 0;
    bool have_prev = false, overflow = false;
    char digits[TOKEN_MAX];
    size_t dlen = 0;
    size_t pos = 0;
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
        if (joiner && tlen) continue; /* "don't" -> "dont", "wi-fi" -> "wifi" */
        if (letter || digit) {
            cp = utf8proc_tolower(cp);
            if (cp == 0x451) cp = 0x435; /* ё -> е */
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t m = utf8proc_encode_char(cp, enc);
            if (tlen + (size_t)m > TOKEN_MAX) overflow = true;
            else {
                memcpy(tok + tlen, enc, (size_t)m);
                tlen += (size_t)m;
            }
            continue;
        }
        if (tlen && !overflow) {
            token(out, tok, tlen, have_prev ? prev : NULL, plen);
            memcpy(prev, tok, tlen);
            plen = tlen;
            have_prev = true;
        } else if (tlen) {
            have_prev = false;
        }
        tlen = 0;
        overflow = false;
    }
}

const char *mk_cache_sig_mismatch(const struct mk_cache_sig *a, const struct mk_cache_sig *b)
{
    if (a->negated != b->negated) return "negation";
    if (a->polarity != b->polarity) return "antonym";
    if (a->nnumbers != b->nnumbers ||
        memcmp(a->numbers, b->numbers, a->nnumbers * sizeof a->numbers[0]) != 0)
        return "number";
    if (a->entities != b->entities) return "entity";
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
