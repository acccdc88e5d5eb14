/*
 * pii_digits: the scanner for everything made of digits -- INN, SNILS, passport,
 * OGRN, OGRNIP, bank cards, 20-digit accounts, phone numbers and IPv4 addresses.
 *
 * One pass: a small state machine gathers a "group" -- digit runs joined by the
 * separators people type inside a number (space, dash, brackets, no-break space) --
 * and remembers its shape (run lengths, a leading '+', brackets). The group, or if
 * nothing fits, its sub-ranges of runs, is then classified by digit count, shape,
 * check digits and context words. Shape and checksum decide alone where they are
 * distinctive ("123-456-789 01" passing the SNILS rule); context words ("ИНН",
 * "тел.", "р/с") decide where shapes collide (ten plain digits: INN? passport?
 * phone without the 8?).
 *
 * Accounts need a second look: the BIK that validates an account's control key may
 * come after it, so accounts are settled at the end of the pass.
 */
#include <ctype.h>
#include <string.h>

#include "guard/pii_int.h"

#define MAX_RUNS 16
#define MAX_DIGITS 40
#define MAX_BIKS 16
#define MAX_ACCOUNTS 64
#define CTX_BEFORE 48
#define CTX_AFTER 16

static const char *const kw_inn[] = {"инн", "inn", "налогоплательщ", NULL};
static const char *const kw_snils[] = {"снилс", "snils", "страхов", "пенсион", NULL};
static const char *const kw_passport[] = {"паспорт", "серия", "серии", "сер.", "выдан",
                                          "passport", NULL};
static const char *const kw_ogrn[] = {"огрн", "ogrn", "регистрацион", NULL};
static const char *const kw_card[] = {"карт", "card", "visa", "master", "maestro", "мир",
                                      "amex", "кредитк", NULL};
static const char *const kw_account[] = {"р/с", "р/сч", "рс ", "расч", "счет", "счёт", "к/с",
                                         "корр", "account", "л/с", "лицев", "банк", NULL};
static const char *const kw_phone[] = {"тел", "phone", "моб", "звон", "whatsapp", "telegram",
                                       "вотсап", "ватсап", "факс", "fax", "call", "сотов",
                                       "номер", "+7", NULL};
static const char *const kw_bik[] = {"бик", "bik", NULL};

typedef struct group {
    size_t rs[MAX_RUNS], re[MAX_RUNS]; /* run byte spans */
    bool open_paren[MAX_RUNS];         /* '(' right before the run */
    bool soft[MAX_RUNS];               /* run k and k+1 are joined by spaces only */
    bool uniform4;                     /* every run but the last has 4 digits: a card */
    int nruns;
    bool plus;                         /* '+' right before the first run */
    size_t plus_at;
} group;

typedef struct ctx {
    bool done;
    bool inn, snils, passport, ogrn, card, account, phone;
    bool other; /* a context word of a type other than phone */
} ctx;

typedef struct acct {
    size_t start, end;
    char d[21];
    float conf;
    unsigned flags;
} acct;

typedef struct scan {
    const char *s;
    size_t len;
    uint32_t types;
    pii_cands *c;
    char biks[MAX_BIKS][10];
    int nbiks;
    acct accts[MAX_ACCOUNTS];
    int naccts;
} scan;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_word_ascii(char c) { return isalpha((unsigned char)c) || c == '_'; }

static void load_ctx(const scan *sc, size_t a, size_t b, ctx *x)
{
    if (x->done)
        return;
    x->done = true;
    pii_window w;
    pii_window_fill(&w, sc->s, sc->len, a, b, CTX_BEFORE, CTX_AFTER);
    x->inn = pii_window_has(&w, kw_inn);
    x->snils = pii_window_has(&w, kw_snils);
    x->passport = pii_window_has(&w, kw_passport);
    x->ogrn = pii_window_has(&w, kw_ogrn);
    x->card = pii_window_has(&w, kw_card);
    x->account = pii_window_has(&w, kw_account);
    x->phone = pii_window_has(&w, kw_phone);
    /* "номер СНИЛС", "ИНН ... звоните": another type's word outweighs a generic one. */
    x->other = x->inn || x->snils || x->passport || x->ogrn || x->card || x->account;
}

static bool want(const scan *sc, mk_pii_type t) { return (sc->types & MK_PII_BIT(t)) != 0; }

/* Shape helpers over runs [i, j]. */
static bool shape_is(const group *g, int i, int j, const int *lens, int n)
{
    if (j - i + 1 != n)
        return false;
    for (int k = 0; k < n; k++)
        if ((int)(g->re[i + k] - g->rs[i + k]) != lens[k])
            return false;
    return true;
}

static bool all_runs_of(const group *g, int i, int j, int len, int last_max)
{
    for (int k = i; k <= j; k++) {
        int l = (int)(g->re[k] - g->rs[k]);
        if (k < j ? l != len : (l < 1 || l > last_max))
            return false;
    }
    return true;
}

static bool plausible_card_prefix(const char *d)
{
    /* Issuer ranges in use: 2 (Mir 2200-2204, Mastercard 2221-2720), 3 (Amex, JCB,
     * Diners), 4 (Visa), 5 (Mastercard, Maestro), 6 (Maestro, UnionPay, Discover). */
    return d[0] >= '2' && d[0] <= '6';
}

static void bik_add(scan *sc, const char *d)
{
    for (int i = 0; i < sc->nbiks; i++)
        if (memcmp(sc->biks[i], d, 9) == 0)
            return;
    if (sc->nbiks < MAX_BIKS) {
        memcpy(sc->biks[sc->nbiks], d, 9);
        sc->biks[sc->nbiks][9] = '\0';
        sc->nbiks++;
    }
}

/*
 * Classifies runs [i, j] of g. Returns true and adds a candidate when some type
 * fits; the span runs from the first run (or its '+' / '(') to the last run.
 */
static bool classify(scan *sc, const group *g, int i, int j, ctx *x)
{
    char d[MAX_DIGITS + 1];
    size_t n = 0;
    for (int k = i; k <= j; k++) {
        size_t l = g->re[k] - g->rs[k];
        if (n + l > MAX_DIGITS)
            return false;
        memcpy(d + n, sc->s + g->rs[k], l);
        n += l;
    }
    d[n] = '\0';
    int nr = j - i + 1;
    size_t a = g->rs[i], b = g->re[j];
    bool plus = i == 0 && g->plus;
    bool paren = g->open_paren[i] || (nr > 1 && g->open_paren[i + 1]);
    if (paren && g->open_paren[i] && a > 0)
        a--;
    if (plus)
        a = g->plus_at;
    /* Context words cost a folded window: only lengths that can be something. */
    if (n == 7 || n == 9 || (n >= 10 && n <= 20))
        load_ctx(sc, g->rs[0], g->re[g->nruns - 1], x);
    mk_pii_type t = MK_PII_NONE;
    float conf = 0;
    unsigned fl = 0;

#define SET(tt, cc, ff) do { t = (tt); conf = (cc); fl = (ff); } while (0)
    switch (n) {
    case 7:
        /* "345-67-89": a local phone number, only when the text says so. */
        if (x->phone && nr == 3 && shape_is(g, i, j, (const int[]){3, 2, 2}, 3))
            SET(MK_PII_PHONE, 0.75f, MK_PII_F_CONTEXT);
        break;
    case 9:
        if (d[0] == '0' && d[1] == '4' && pii_context(sc->s, sc->len, a, b, CTX_BEFORE, 0, kw_bik))
            bik_add(sc, d); /* a bank's id, not personal: kept to validate accounts */
        break;
    case 10: {
        bool inn = mk_pii_valid_inn(d, 10);
        bool pass_shape = shape_is(g, i, j, (const int[]){2, 2, 6}, 3) ||
                          shape_is(g, i, j, (const int[]){4, 6}, 2);
        /* The bracket, if any, goes round the area code: the first run. */
        bool phone_shape = g->open_paren[i] || shape_is(g, i, j, (const int[]){3, 3, 2, 2}, 4) ||
                           shape_is(g, i, j, (const int[]){3, 3, 4}, 3) ||
                           shape_is(g, i, j, (const int[]){3, 7}, 2);
        if (plus)
            break; /* "+7336174734": a phone with a digit missing, not an INN */
        if (inn && x->inn && nr <= 2)
            SET(MK_PII_INN, 0.99f, MK_PII_F_CHECKSUM | MK_PII_F_CONTEXT);
        else if (pass_shape && x->passport)
            SET(MK_PII_PASSPORT, 0.98f, MK_PII_F_CONTEXT);
        else if (phone_shape && d[0] != '0' && !(x->other && !x->phone))
            SET(MK_PII_PHONE, x->phone ? 0.95f : 0.85f, x->phone ? MK_PII_F_CONTEXT : 0);
        else if (shape_is(g, i, j, (const int[]){2, 2, 6}, 3))
            SET(MK_PII_PASSPORT, 0.88f, 0);
        else if (nr == 1 && x->passport && !x->phone)
            SET(MK_PII_PASSPORT, 0.9f, MK_PII_F_CONTEXT);
        else if (nr == 1 && x->phone && !x->other && d[0] == '9')
            SET(MK_PII_PHONE, 0.85f, MK_PII_F_CONTEXT);
        else if (inn && nr == 1)
            SET(MK_PII_INN, 0.85f, MK_PII_F_CHECKSUM);
        else if (pass_shape)
            SET(MK_PII_PASSPORT, 0.75f, 0);
        break;
    }
    case 11: {
        bool snils = mk_pii_valid_snils(d, 11);
        bool snils_shape = shape_is(g, i, j, (const int[]){3, 3, 3, 2}, 4);
        bool phone_lead = d[0] == '8' || d[0] == '7';
        if (plus && d[0] == '7')
            SET(MK_PII_PHONE, 0.97f, 0);
        else if (snils && (snils_shape || x->snils))
            SET(MK_PII_SNILS, 0.98f, MK_PII_F_CHECKSUM | (x->snils ? MK_PII_F_CONTEXT : 0));
        else if (snils_shape)
            break; /* the SNILS shape with a wrong check number: a typo or not one */
        else if (phone_lead && nr > 1 && !plus)
            SET(MK_PII_PHONE, x->phone ? 0.97f : 0.9f, x->phone ? MK_PII_F_CONTEXT : 0);
        else if (snils && nr == 1)
            SET(MK_PII_SNILS, 0.85f, MK_PII_F_CHECKSUM);
        else if (x->other)
            break; /* "СНИЛС 72157347591" with a wrong check number: not a phone */
        else if (phone_lead && nr == 1 && x->phone)
            SET(MK_PII_PHONE, 0.95f, MK_PII_F_CONTEXT);
        else if (phone_lead && nr == 1 && d[0] == '8' && strchr("3489", d[1]))
            SET(MK_PII_PHONE, 0.8f, 0);
        break;
    }
    case 12:
        if (mk_pii_valid_inn(d, 12) && !plus && (nr == 1 || (x->inn && nr <= 3)))
            SET(MK_PII_INN, x->inn ? 0.99f : 0.9f, MK_PII_F_CHECKSUM | (x->inn ? MK_PII_F_CONTEXT : 0));
        else if (plus && nr > 1)
            SET(MK_PII_PHONE, 0.85f, 0);
        else if (x->card && mk_pii_luhn(d, n) && plausible_card_prefix(d) && (nr == 1 || g->uniform4))
            SET(MK_PII_CARD, 0.8f, MK_PII_F_CHECKSUM | MK_PII_F_CONTEXT);
        break;
    case 13:
        if (mk_pii_valid_ogrn(d, 13) && nr == 1 && !(x->card && !x->ogrn && mk_pii_luhn(d, n)))
            SET(MK_PII_OGRN, x->ogrn ? 0.99f : (d[0] == '1' || d[0] == '5') ? 0.9f : 0.7f,
                MK_PII_F_CHECKSUM | (x->ogrn ? MK_PII_F_CONTEXT : 0));
        else if (mk_pii_luhn(d, n) && (d[0] == '4' || x->card) && (nr == 1 || g->uniform4))
            SET(MK_PII_CARD, x->card ? 0.95f : 0.8f, MK_PII_F_CHECKSUM);
        else if (plus && nr > 1)
            SET(MK_PII_PHONE, 0.85f, 0);
        break;
    case 15:
        if (mk_pii_valid_ogrnip(d, 15) && nr == 1 && !(x->card && !x->ogrn && mk_pii_luhn(d, n)))
            SET(MK_PII_OGRNIP, x->ogrn ? 0.99f : 0.9f,
                MK_PII_F_CHECKSUM | (x->ogrn ? MK_PII_F_CONTEXT : 0));
        else if (mk_pii_luhn(d, n) && !(x->ogrn && !x->card) &&
                 (nr == 1 || g->uniform4 || shape_is(g, i, j, (const int[]){4, 6, 5}, 3)) &&
                 (x->card || (d[0] == '3' && (d[1] == '4' || d[1] == '7')) ||
                  (d[0] == '1' && d[1] == '8') || (d[0] == '2' && d[1] == '1')))
            SET(MK_PII_CARD, x->card ? 0.95f : 0.85f, MK_PII_F_CHECKSUM);
        else if (plus && nr > 1)
            SET(MK_PII_PHONE, 0.85f, 0);
        break;
    case 14:
    case 16:
    case 17:
    case 18:
    case 19: {
        bool by4 = nr > 1 && all_runs_of(g, i, j, 4, 4);
        bool amex = shape_is(g, i, j, (const int[]){4, 6, 4}, 3) ||
                    shape_is(g, i, j, (const int[]){4, 6, 5}, 3);
        if (mk_pii_luhn(d, n) && (plausible_card_prefix(d) || x->card) && (nr == 1 || by4 || amex)) {
            SET(MK_PII_CARD, x->card || by4 || amex ? 0.97f : 0.9f,
                MK_PII_F_CHECKSUM | (x->card ? MK_PII_F_CONTEXT : 0));
        } else if (plus && nr > 1 && n <= 15) {
            SET(MK_PII_PHONE, 0.85f, 0);
        }
        break;
    }
    case 20:
        if (want(sc, MK_PII_ACCOUNT) && sc->naccts < MAX_ACCOUNTS) {
            /* Settled when the whole text has been seen (a BIK may follow). */
            acct *ac = &sc->accts[sc->naccts++];
            ac->start = a;
            ac->end = b;
            memcpy(ac->d, d, 21);
            /* Balance accounts start with 1-9 (first-order account); digits 6-8
             * are a currency code: 810 (old rouble), 643, 840, 978, 156 ... */
            bool cur = memcmp(d + 5, "810", 3) == 0 || memcmp(d + 5, "643", 3) == 0 ||
                       memcmp(d + 5, "840", 3) == 0 || memcmp(d + 5, "978", 3) == 0 ||
                       memcmp(d + 5, "156", 3) == 0 || memcmp(d + 5, "398", 3) == 0;
            ac->conf = x->account ? 0.9f : cur && d[0] != '0' ? 0.75f : 0.45f;
            ac->flags = x->account ? MK_PII_F_CONTEXT : 0;
            return true;
        }
        break;
    default:
        if (plus && nr > 1 && n >= 8 && n <= 15)
            SET(MK_PII_PHONE, 0.85f, 0); /* "+44 20 7946 0958": a foreign phone */
        break;
    }
#undef SET
    if (t == MK_PII_NONE || !want(sc, t))
        return t != MK_PII_NONE;
    pii_cand_add(sc->c, a, b, t, conf, fl);
    return true;
}

/* Parses a dotted quad at s[i]; returns its end or 0. */
static size_t ipv4_at(const char *s, size_t len, size_t i)
{
    size_t p = i;
    for (int oct = 0; oct < 4; oct++) {
        if (oct > 0) {
            if (p >= len || s[p] != '.')
                return 0;
            p++;
        }
        size_t st = p;
        int v = 0;
        while (p < len && is_digit(s[p]) && p - st < 4) {
            v = v * 10 + (s[p] - '0');
            p++;
        }
        if (p == st || p - st > 3 || v > 255 || (p - st > 1 && s[st] == '0'))
            return 0;
    }
    if (p < len && (is_digit(s[p]) || is_word_ascii(s[p])))
        return 0;
    if (p + 1 < len && s[p] == '.' && is_digit(s[p + 1]))
        return 0; /* 1.2.3.4.5: a version or an OID */
    return p;
}

/* Separator between two runs of one number; returns its length (0 = none). Sets
 * *paren when it ends with '('. */
static size_t separator(const char *s, size_t len, size_t i, bool *paren, bool *soft)
{
    size_t p = i;
    int dashes = 0, spaces = 0, opens = 0, closes = 0;
    *paren = false;
    while (p < len && p - i < 4) {
        unsigned char c = (unsigned char)s[p];
        if (c == ' ' || c == '\t') {
            spaces++;
            p++;
        } else if (c == '-') {
            dashes++;
            p++;
        } else if (c == '(') {
            opens++;
            p++;
        } else if (c == ')') {
            closes++;
            p++;
        } else if (c == 0xC2 && p + 1 < len && (unsigned char)s[p + 1] == 0xA0) {
            spaces++; /* no-break space */
            p += 2;
        } else if (c == 0xE2 && p + 2 < len && (unsigned char)s[p + 1] == 0x80 &&
                   ((unsigned char)s[p + 2] == 0x93 || (unsigned char)s[p + 2] == 0x91)) {
            dashes++; /* en dash, non-breaking hyphen */
            p += 3;
        } else {
            break;
        }
    }
    if (p == i || p >= len || !is_digit(s[p]))
        return 0;
    if (dashes > 1 || spaces > 2 || opens > 1 || closes > 1)
        return 0;
    *paren = opens == 1 && closes == 0;
    *soft = dashes == 0 && opens == 0 && closes == 0;
    return p - i;
}

/* "серия 4506 номер 123456", "4506 № 123456": a connector word between series and
 * number. Returns the start of the 6-digit number or 0. */
static size_t passport_number_after(const char *s, size_t len, size_t p, size_t *end)
{
    static const char *const conn[] = {"номер", "№", "N", "No", "no.", "No.", "ном.", "н."};
    while (p < len && s[p] == ' ')
        p++;
    size_t q = 0;
    for (size_t k = 0; k < sizeof conn / sizeof *conn; k++) {
        size_t l = strlen(conn[k]);
        if (p + l <= len && memcmp(s + p, conn[k], l) == 0) {
            q = p + l;
            break;
        }
    }
    if (!q)
        return 0;
    while (q < len && (s[q] == ' ' || s[q] == ':'))
        q++;
    size_t st = q;
    while (q < len && is_digit(s[q]))
        q++;
    if (q - st != 6 || (q < len && (is_digit(s[q]) || is_word_ascii(s[q]))))
        return 0;
    *end = q;
    return st;
}

static void settle_accounts(scan *sc)
{
    for (int k = 0; k < sc->naccts; k++) {
        acct *ac = &sc->accts[k];
        float conf = ac->conf;
        unsigned fl = ac->flags;
        /* A BIK in the text that fits no account key: the number is mistyped or
         * not an account; report it only to a tenant that asks for weak matches. */
        if (sc->nbiks > 0)
            conf = 0.45f;
        for (int b = 0; b < sc->nbiks; b++)
            if (mk_pii_valid_account(ac->d, sc->biks[b])) {
                conf = 0.99f;
                fl |= MK_PII_F_CHECKSUM;
                break;
            }
        pii_cand_add(sc->c, ac->start, ac->end, MK_PII_ACCOUNT, conf, fl);
    }
}

void pii_scan_digits(const char *s, size_t len, uint32_t types, pii_cands *c)
{
    scan sc = {.s = s, .len = len, .types = types, .c = c};
    size_t i = 0;
    while (i < len) {
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        /* A digit glued to Latin letters is part of a code ("A123", "x86_64", hex). */
        if (i > 0 && is_word_ascii(s[i - 1])) {
            while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            continue;
        }
        /* Dotted numbers: an IPv4 address, or a date/version/decimal to skip. */
        size_t r = i;
        while (r < len && is_digit(s[r]))
            r++;
        if (r + 1 < len && (s[r] == '.' || s[r] == ',') && is_digit(s[r + 1])) {
            size_t e = s[r] == '.' ? ipv4_at(s, len, i) : 0;
            if (e && (i == 0 || s[i - 1] != '.')) {
                if (types & MK_PII_BIT(MK_PII_IP)) {
                    int small = 0;
                    for (size_t p = i; p < e; p++)
                        small += s[p] == '.' && p + 2 < e && !is_digit(s[p + 2]);
                    pii_cand_add(c, i, e, MK_PII_IP, small == 3 ? 0.6f : 0.9f, 0);
                }
                i = e;
                continue;
            }
            /* A decimal or date: swallow the whole dotted token. */
            while (r < len && (is_digit(s[r]) || ((s[r] == '.' || s[r] == ',') && r + 1 < len &&
                                                  is_digit(s[r + 1]))))
                r++;
            i = r;
            continue;
        }

        group g;
        g.nruns = 0;
        g.plus = false;
        g.plus_at = 0;
        memset(g.open_paren, 0, sizeof g.open_paren);
        memset(g.soft, 0, sizeof g.soft);
        {
            /* '+' just before, or "+7 (" with the bracket before the first run. */
            size_t p = i;
            if (p > 0 && s[p - 1] == '(') {
                g.open_paren[0] = true;
                p--;
            }
            if (p > 0 && s[p - 1] == '+') {
                g.plus = true;
                g.plus_at = p - 1;
            }
        }
        size_t p = i;
        bool bad = false;
        for (;;) {
            size_t st = p;
            while (p < len && is_digit(s[p]))
                p++;
            g.rs[g.nruns] = st;
            g.re[g.nruns] = p;
            g.nruns++;
            if (p < len && is_word_ascii(s[p])) {
                bad = true; /* "123abc": a code, not a number */
                break;
            }
            if (p + 1 < len && (s[p] == '.' || s[p] == ',') && is_digit(s[p + 1])) {
                g.nruns--; /* the last run is the integer part of a decimal */
                break;
            }
            bool par, soft;
            size_t sl = g.nruns < MAX_RUNS ? separator(s, len, p, &par, &soft) : 0;
            if (!sl)
                break;
            g.open_paren[g.nruns] = par;
            g.soft[g.nruns - 1] = soft;
            p += sl;
        }
        size_t group_end = p;
        if (bad || g.nruns == 0) {
            while (group_end < len && (isalnum((unsigned char)s[group_end]) || s[group_end] == '_'))
                group_end++;
            i = group_end > i ? group_end : i + 1;
            continue;
        }
        /* Skip the decimal tail so it is not read as a number of its own. */
        if (group_end + 1 < len && (s[group_end] == '.' || s[group_end] == ',') &&
            is_digit(s[group_end + 1])) {
            group_end++;
            while (group_end < len && is_digit(s[group_end]))
                group_end++;
        }

        g.uniform4 = g.nruns > 1;
        for (int k = 0; k + 1 < g.nruns; k++)
            if (g.re[k] - g.rs[k] != 4)
                g.uniform4 = false;
        /* The whole group first; failing that, numbers written next to each other
         * ("ИНН/КПП 7707083893 770701001"): sub-ranges cut only where plain spaces
         * join runs, and never inside a card-shaped 4-4-4-4 group. */
        ctx x = {0};
        int a = 0;
        while (a < g.nruns) {
            int b;
            bool hit = false;
            for (b = g.nruns - 1; b >= a; b--) {
                bool whole = a == 0 && b == g.nruns - 1;
                if (!whole && (g.uniform4 || (a > 0 && !g.soft[a - 1]) ||
                               (b < g.nruns - 1 && !g.soft[b])))
                    continue;
                if ((hit = classify(&sc, &g, a, b, &x)))
                    break;
            }
            if (!hit) {
                /* A lone series "4506" / "45 06" followed by "номер 123456". */
                int b2 = g.nruns - 1;
                size_t digits = 0;
                for (int k = a; k <= b2; k++)
                    digits += g.re[k] - g.rs[k];
                size_t nend;
                size_t nst = digits == 4 && b2 - a <= 1
                                 ? passport_number_after(s, len, g.re[b2], &nend) : 0;
                if (nst && want(&sc, MK_PII_PASSPORT)) {
                    load_ctx(&sc, g.rs[a], g.re[b2], &x);
                    pii_cand_add(c, g.rs[a], nend, MK_PII_PASSPORT, x.passport ? 0.98f : 0.85f,
                                 x.passport ? MK_PII_F_CONTEXT : 0);
                    group_end = nend;
                    break;
                }
                a++;
            } else {
                a = b + 1;
            }
        }
        i = group_end > i ? group_end : i + 1;
    }
    settle_accounts(&sc);
}
