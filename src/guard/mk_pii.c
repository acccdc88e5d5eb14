/*
 * mk_pii: the detector's driver -- runs each scanner over the text, filters by type
 * and confidence, and resolves overlapping candidates into one sorted list; plus the
 * scanners that are not about digits (e-mail, IBAN, IPv6) and the context-word test.
 *
 * Why candidates and a resolution step: the scanners are independent and simple
 * ("is this an e-mail?", "is this a 10-digit INN?") and may claim the same bytes
 * ("Ivan.Petrov@mail.ru" holds a name); the more confident claim wins, so no scanner
 * needs to know about the others.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "core/mk_error.h"
#include "guard/pii_int.h"

static const char *const type_names[MK_PII_TYPE_COUNT] = {
    "NONE", "PERSON", "INN", "SNILS", "PASSPORT", "OGRN", "OGRNIP",
    "CARD", "ACCOUNT", "PHONE", "EMAIL", "IBAN", "IP",
};

const char *mk_pii_type_name(mk_pii_type t)
{
    return (unsigned)t < MK_PII_TYPE_COUNT ? type_names[t] : "NONE";
}

mk_pii_type mk_pii_type_parse(const char *s, size_t len)
{
    if (!s)
        return MK_PII_NONE;
    for (int t = 1; t < MK_PII_TYPE_COUNT; t++)
        if (strlen(type_names[t]) == len && strncasecmp(type_names[t], s, len) == 0)
            return (mk_pii_type)t;
    return MK_PII_NONE;
}

void mk_pii_matches_release(mk_pii_matches *m)
{
    if (!m)
        return;
    free(m->v);
    m->v = NULL;
    m->n = m->cap = 0;
}

void pii_cand_add(pii_cands *c, size_t start, size_t end, mk_pii_type t, float conf,
                  unsigned flags)
{
    if (c->overflow || c->nomem || end <= start)
        return;
    /* Candidates may exceed the final matches (several claims per span), so the
     * cap on candidates is a multiple of the cap on matches. */
    if (c->n >= 4 * (size_t)MK_PII_MAX_MATCHES) {
        c->overflow = true;
        return;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 32;
        mk_pii_match *nv = realloc(c->v, nc * sizeof *nv);
        if (!nv) {
            c->nomem = true;
            return;
        }
        c->v = nv;
        c->cap = nc;
    }
    if (conf > 1.0f)
        conf = 1.0f;
    c->v[c->n++] = (mk_pii_match){start, end, t, conf, flags};
}

void pii_window_fill(pii_window *w, const char *s, size_t len, size_t start, size_t end,
                     size_t before, size_t after)
{
    if (before > PII_CTX_MAX)
        before = PII_CTX_MAX;
    if (after > PII_CTX_MAX)
        after = PII_CTX_MAX;
    size_t a = start > before ? start - before : 0;
    size_t b = end + after < len ? end + after : len;
    /* Do not start or end the window inside a UTF-8 sequence. */
    while (a < start && ((unsigned char)s[a] & 0xC0) == 0x80)
        a++;
    while (b > end && b < len && ((unsigned char)s[b] & 0xC0) == 0x80)
        b--;
    /* Folding keeps byte lengths, so each half fits in 4 * PII_CTX_MAX. */
    size_t n1 = start > a ? pii_fold(s + a, start - a, w->buf, 4 * PII_CTX_MAX) : 0;
    w->buf[n1] = '\x01';
    size_t n2 = b > end ? pii_fold(s + end, b - end, w->buf + n1 + 1, 4 * PII_CTX_MAX) : 0;
    w->buf[n1 + 1 + n2] = '\0';
}

bool pii_window_has(const pii_window *w, const char *const *keywords)
{
    for (const char *const *k = keywords; *k; k++)
        if (strstr(w->buf, *k))
            return true;
    return false;
}

bool pii_context(const char *s, size_t len, size_t start, size_t end, size_t before,
                 size_t after, const char *const *keywords)
{
    pii_window w;
    pii_window_fill(&w, s, len, start, end, before, after);
    return pii_window_has(&w, keywords);
}

/* ---- e-mail ---- */

static bool email_local_char(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool domain_char(const char *s, size_t len, size_t i, size_t *n)
{
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
        *n = 1;
        return isalnum(c) || c == '-';
    }
    uint32_t cp = pii_utf8_decode(s + i, len - i, n);
    return pii_is_letter(cp); /* internationalised domains: почта.рф */
}

void pii_scan_email(const char *s, size_t len, pii_cands *c)
{
    const char *p = s;
    size_t resume = 0; /* the domain of one address is not the local part of the next */
    while ((p = memchr(p, '@', len - (size_t)(p - s))) != NULL) {
        size_t at = (size_t)(p - s);
        p++;
        /* The local part, walked back one code point at a time: ASCII atoms and
         * letters (internationalised addresses: иван@почта.рф). */
        size_t l = at;
        while (l > resume && at - l < 64) {
            if ((unsigned char)s[l - 1] < 0x80) {
                if (!email_local_char((unsigned char)s[l - 1]))
                    break;
                l--;
                continue;
            }
            size_t p0 = l - 1, n;
            while (p0 > resume && ((unsigned char)s[p0] & 0xC0) == 0x80 && l - p0 < 4)
                p0--;
            uint32_t cp = pii_utf8_decode(s + p0, l - p0, &n);
            if (p0 + n != l || !pii_is_letter(cp))
                break;
            l = p0;
        }
        while (l < at && s[l] == '.')
            l++;
        if (l == at || s[at - 1] == '.')
            continue;
        /* Labels separated by single dots; a dot counts only once a label follows
         * it, so the full stop after an address is not part of it. */
        size_t r = at + 1, last_dot = 0, pending_dot = 0, label = 0, end = 0;
        while (r < len && r - at < 256) {
            size_t n;
            if (s[r] == '.') {
                if (label == 0)
                    break;
                pending_dot = r;
                label = 0;
                r++;
                continue;
            }
            if (!domain_char(s, len, r, &n))
                break;
            if (pending_dot) {
                last_dot = pending_dot;
                pending_dot = 0;
            }
            label++;
            r += n;
            if (last_dot)
                end = r;
        }
        /* The top-level label: at least two characters, not all digits. */
        if (!last_dot || !end || end <= last_dot + 2)
            continue;
        bool alpha = false;
        for (size_t i = last_dot + 1; i < end; i++)
            if (!isdigit((unsigned char)s[i]))
                alpha = true;
        if (!alpha)
            continue;
        pii_cand_add(c, l, end, MK_PII_EMAIL, 0.97f, 0);
        resume = end;
        p = s + end;
    }
}

/* ---- IBAN ---- */

/* Countries that issue IBANs (ISO 3166 codes), for precision: mod 97 alone passes
 * one random string in 97. */
static const char iban_countries[] =
    "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB GE GI "
    "GL GR GT HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT MU NI NL "
    "NO OM PK PL PS PT QA RO RS RU SA SC SD SE SI SK SM SO ST SV TL TN TR UA VA VG XK";

static bool iban_country(char a, char b)
{
    a = (char)toupper((unsigned char)a);
    b = (char)toupper((unsigned char)b);
    for (const char *p = iban_countries;; p += 3) {
        if (p[0] == a && p[1] == b)
            return true;
        if (p[2] == '\0')
            return false;
    }
}

void pii_scan_iban(const char *s, size_t len, pii_cands *c)
{
    for (size_t i = 0; i + 15 <= len; i++) {
        /* The third character, a check digit, is the rarest condition: test it
         * first with a plain compare (this loop sees every byte of every request). */
        if ((unsigned char)(s[i + 2] - '0') > 9)
            continue;
        if (!isalpha((unsigned char)s[i]) || (i > 0 && isalnum((unsigned char)s[i - 1])))
            continue;
        if (!isalpha((unsigned char)s[i + 1]) || !isdigit((unsigned char)s[i + 2]) ||
            !isdigit((unsigned char)s[i + 3]) || !iban_country(s[i], s[i + 1]))
            continue;
        /* Collect alphanumerics with single spaces between groups; remember where
         * each group ends, since the IBAN may stop at any of them. */
        size_t ends[40], ne = 0, k = 0, j = i;
        while (j < len && k < 34) {
            if (isalnum((unsigned char)s[j])) {
                k++;
                j++;
                continue;
            }
            if (s[j] == ' ' && j + 1 < len && isalnum((unsigned char)s[j + 1]) && ne < 40) {
                ends[ne++] = j;
                j++;
                continue;
            }
            break;
        }
        /* The collection may stop inside a word (34 characters reached): then only
         * the group ends seen so far can end the IBAN. */
        if (!(j < len && isalnum((unsigned char)s[j])) && ne < 40)
            ends[ne++] = j;
        for (size_t e = ne; e-- > 0;) {
            if (mk_pii_valid_iban(s + i, ends[e] - i)) {
                pii_cand_add(c, i, ends[e], MK_PII_IBAN, 0.97f, MK_PII_F_CHECKSUM);
                i = ends[e];
                break;
            }
        }
    }
}

/* ---- IPv6 ---- */

static bool ip6_char(unsigned char c) { return isxdigit(c) || c == ':' || c == '.'; }

void pii_scan_ipv6(const char *s, size_t len, pii_cands *c)
{
    size_t done = 0;
    const char *p = s;
    while ((p = memchr(p, ':', len - (size_t)(p - s))) != NULL) {
        size_t at = (size_t)(p - s);
        p++;
        if (at < done)
            continue;
        size_t a = at, b = at;
        while (a > 0 && ip6_char((unsigned char)s[a - 1]) && at - a < 45)
            a--;
        while (b < len && ip6_char((unsigned char)s[b]) && b - a < 46)
            b++;
        done = b;
        /* A trailing '.' or ':' is punctuation ("at fe80::1." or "address: ::1"). */
        while (b > a && (s[b - 1] == '.' || (s[b - 1] == ':' && !(b - a >= 2 && s[b - 2] == ':'))))
            b--;
        while (a < b && s[a] == ':' && !(a + 1 < b && s[a + 1] == ':'))
            a++;
        if ((a > 0 && (isalnum((unsigned char)s[a - 1]) || s[a - 1] == '_')) ||
            (b < len && (isalnum((unsigned char)s[b]) || s[b] == '_')))
            continue;
        size_t colons = 0, hex = 0;
        for (size_t i = a; i < b; i++) {
            colons += s[i] == ':';
            hex += isxdigit((unsigned char)s[i]) != 0;
        }
        if (colons < 2 || hex == 0 || b - a > 45 || b - a < 3)
            continue;
        char tmp[48];
        memcpy(tmp, s + a, b - a);
        tmp[b - a] = '\0';
        unsigned char addr[16];
        if (inet_pton(AF_INET6, tmp, addr) == 1)
            pii_cand_add(c, a, b, MK_PII_IP, colons >= 7 || hex >= 8 ? 0.95f : 0.7f, 0);
    }
}

/* ---- driver ---- */

static int cmp_start(const void *a, const void *b)
{
    const mk_pii_match *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return 0;
}

/* True when x should win over y. */
static bool better(const mk_pii_match *x, const mk_pii_match *y)
{
    if (x->confidence != y->confidence)
        return x->confidence > y->confidence;
    return x->end - x->start > y->end - y->start;
}

int mk_pii_detect(const char *text, size_t len, const mk_pii_options *opts, mk_pii_matches *out)
{
    if (!out || (!text && len > 0))
        return MK_EINVAL;
    out->n = 0;
    if (len == 0)
        return 0;
    uint32_t types = opts && opts->types ? opts->types & MK_PII_ALL : MK_PII_ALL;
    float minc = opts && opts->min_confidence > 0 ? opts->min_confidence : 0.5f;

    pii_cands c = {0};
    if (types & (MK_PII_BIT(MK_PII_INN) | MK_PII_BIT(MK_PII_SNILS) | MK_PII_BIT(MK_PII_PASSPORT) |
                 MK_PII_BIT(MK_PII_OGRN) | MK_PII_BIT(MK_PII_OGRNIP) | MK_PII_BIT(MK_PII_CARD) |
                 MK_PII_BIT(MK_PII_ACCOUNT) | MK_PII_BIT(MK_PII_PHONE) | MK_PII_BIT(MK_PII_IP)))
        pii_scan_digits(text, len, types, &c);
    if (types & MK_PII_BIT(MK_PII_EMAIL))
        pii_scan_email(text, len, &c);
    if (types & MK_PII_BIT(MK_PII_IBAN))
        pii_scan_iban(text, len, &c);
    if (types & MK_PII_BIT(MK_PII_IP))
        pii_scan_ipv6(text, len, &c);
    if (types & MK_PII_BIT(MK_PII_PERSON))
        pii_scan_names(text, len, &c);
    if (c.nomem) {
        free(c.v);
        return MK_ENOMEM;
    }

    size_t k = 0;
    for (size_t i = 0; i < c.n; i++)
        if ((types & MK_PII_BIT(c.v[i].type)) && c.v[i].confidence >= minc && c.v[i].end <= len)
            c.v[k++] = c.v[i];
    c.n = k;
    if (c.n > 1)
        qsort(c.v, c.n, sizeof *c.v, cmp_start);

    /* Sweep: a candidate overlapping the last kept one replaces it only if better. */
    k = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (k > 0 && c.v[i].start < c.v[k - 1].end) {
            if (better(&c.v[i], &c.v[k - 1])) {
                /* It may also overlap earlier kept ones when it is longer. */
                while (k > 0 && c.v[i].start < c.v[k - 1].end && better(&c.v[i], &c.v[k - 1]))
                    k--;
                if (k > 0 && c.v[i].start < c.v[k - 1].end)
                    continue;
                c.v[k++] = c.v[i];
            }
            continue;
        }
        c.v[k++] = c.v[i];
    }
    c.n = k;

    int rc = 0;
    if (c.n > MK_PII_MAX_MATCHES) {
        c.n = MK_PII_MAX_MATCHES;
        rc = MK_ETOOBIG;
    } else if (c.overflow) {
        rc = MK_ETOOBIG;
    }
    free(out->v);
    out->v = c.v;
    out->cap = c.cap;
    out->n = c.n;
    return rc;
}
