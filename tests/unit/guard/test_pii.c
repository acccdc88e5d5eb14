/* Unit tests for mk_pii: each validator on valid and invalid numbers (the check
 * digits are computed here, by the public algorithms, never copied from anywhere),
 * detection of the written forms people use, names in several Russian cases and in
 * Kazakh and English, the masking modes, the vault's numbering and lookups, the
 * streaming restorer at every possible split point, and the leak check. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "guard/mk_pii.h"
#include "guard/pii_int.h"

/* ---- helpers: the algorithms, written again independently ---- */

static unsigned rng = 12345;
static int rnd(int n)
{
    rng = rng * 1103515245u + 12345u;
    return (int)((rng >> 16) % (unsigned)n);
}

static void rand_digits(char *d, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = (char)('0' + rnd(10));
    d[n] = '\0';
}

static char inn_ctl(const char *d, const int *w, int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += (d[i] - '0') * w[i];
    return (char)('0' + s % 11 % 10);
}

static void make_inn10(char out[11])
{
    static const int w[] = {2, 4, 10, 3, 5, 9, 4, 6, 8};
    rand_digits(out, 9);
    out[0] = (char)('1' + rnd(9));
    out[9] = inn_ctl(out, w, 9);
    out[10] = '\0';
}

static void make_inn12(char out[13])
{
    static const int w1[] = {7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    static const int w2[] = {3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    rand_digits(out, 10);
    out[0] = (char)('1' + rnd(9));
    out[10] = inn_ctl(out, w1, 10);
    out[11] = inn_ctl(out, w2, 11);
    out[12] = '\0';
}

static int snils_ctl(const char *d)
{
    int s = 0;
    for (int i = 0; i < 9; i++)
        s += (d[i] - '0') * (9 - i);
    if (s < 100)
        return s;
    if (s == 100 || s == 101)
        return 0;
    s %= 101;
    return s == 100 ? 0 : s;
}

static void make_snils(char out[12])
{
    do
        rand_digits(out, 9);
    while (strtol(out, NULL, 10) <= 1001998);
    int c = snils_ctl(out);
    out[9] = (char)('0' + c / 10);
    out[10] = (char)('0' + c % 10);
    out[11] = '\0';
}

static void make_mod(char *out, int n, char first, int m)
{
    rand_digits(out, n - 1);
    out[0] = first;
    long long r = 0;
    for (int i = 0; i < n - 1; i++)
        r = (r * 10 + (out[i] - '0')) % m;
    out[n - 1] = (char)('0' + r % 10);
    out[n] = '\0';
}

static void make_luhn(char *out, int n, const char *prefix)
{
    size_t pl = strlen(prefix);
    rand_digits(out, n - 1);
    memcpy(out, prefix, pl);
    int s = 0;
    for (int i = n - 2, k = 0; i >= 0; i--, k++) {
        int x = out[i] - '0';
        if (k % 2 == 0) {
            x *= 2;
            if (x > 9)
                x -= 9;
        }
        s += x;
    }
    out[n - 1] = (char)('0' + (10 - s % 10) % 10);
    out[n] = '\0';
}

/* Changes the last digit so the number is wrong. */
static void break_last(char *d)
{
    size_t n = strlen(d);
    d[n - 1] = (char)('0' + (d[n - 1] - '0' + 1 + rnd(8)) % 10);
}

static int detect(const char *text, mk_pii_matches *m)
{
    return mk_pii_detect(text, strlen(text), NULL, m);
}

/* The one match of type t in text, as a string ("" when none). */
static char found_buf[512];
static const char *found(const char *text, mk_pii_type t)
{
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    cr_assert_eq(detect(text, &m), 0);
    found_buf[0] = '\0';
    for (size_t i = 0; i < m.n; i++)
        if (m.v[i].type == t) {
            snprintf(found_buf, sizeof found_buf, "%.*s", (int)(m.v[i].end - m.v[i].start),
                     text + m.v[i].start);
            break;
        }
    mk_pii_matches_release(&m);
    return found_buf;
}

/* ---- validators ---- */

Test(pii_validate, inn)
{
    for (int k = 0; k < 500; k++) {
        char a[11], b[13];
        make_inn10(a);
        make_inn12(b);
        cr_assert(mk_pii_valid_inn(a, 10), "%s", a);
        cr_assert(mk_pii_valid_inn(b, 12), "%s", b);
        break_last(a);
        break_last(b);
        cr_assert(!mk_pii_valid_inn(a, 10), "%s", a);
        cr_assert(!mk_pii_valid_inn(b, 12), "%s", b);
    }
    cr_assert(!mk_pii_valid_inn("12345", 5));
    cr_assert(!mk_pii_valid_inn("77070838a3", 10));
    cr_assert(!mk_pii_valid_inn(NULL, 10));
}

Test(pii_validate, snils_including_100_and_101)
{
    for (int k = 0; k < 500; k++) {
        char s[12];
        make_snils(s);
        cr_assert(mk_pii_valid_snils(s, 11), "%s", s);
        break_last(s);
        cr_assert(!mk_pii_valid_snils(s, 11), "%s", s);
    }
    /* Find numbers whose weighted sum is exactly 100, 101, and > 101 with a
     * remainder of 100: their check number is 00. */
    int want[3] = {100, 101, -1};
    for (int w = 0; w < 3; w++) {
        char s[12];
        int found_one = 0;
        for (int tries = 0; tries < 2000000 && !found_one; tries++) {
            rand_digits(s, 9);
            int sum = 0;
            for (int i = 0; i < 9; i++)
                sum += (s[i] - '0') * (9 - i);
            if (strtol(s, NULL, 10) <= 1001998)
                continue;
            if (want[w] > 0 ? sum == want[w] : (sum > 101 && sum % 101 == 100))
                found_one = 1;
        }
        if (want[w] < 0 && !found_one)
            continue; /* sums above 201 do not exist for 9 digits < 405: fine */
        cr_assert(found_one, "no sample for case %d", w);
        s[9] = s[10] = '0';
        s[11] = '\0';
        cr_assert(mk_pii_valid_snils(s, 11), "%s", s);
        s[10] = '1';
        cr_assert(!mk_pii_valid_snils(s, 11), "%s", s);
    }
    /* The reserved range up to 001-001-998 is not a valid SNILS. */
    cr_assert(!mk_pii_valid_snils("00100199800", 11));
}

Test(pii_validate, ogrn_ogrnip)
{
    for (int k = 0; k < 500; k++) {
        char o[14], ip[16];
        make_mod(o, 13, (char)(rnd(2) ? '1' : '5'), 11);
        make_mod(ip, 15, '3', 13);
        cr_assert(mk_pii_valid_ogrn(o, 13), "%s", o);
        cr_assert(mk_pii_valid_ogrnip(ip, 15), "%s", ip);
        break_last(o);
        break_last(ip);
        cr_assert(!mk_pii_valid_ogrn(o, 13), "%s", o);
        cr_assert(!mk_pii_valid_ogrnip(ip, 15), "%s", ip);
    }
    char z[16];
    make_mod(z, 15, '9', 13);
    cr_assert(!mk_pii_valid_ogrnip(z, 15), "an OGRNIP starts with 3");
    make_mod(z, 13, '0', 11);
    cr_assert(!mk_pii_valid_ogrn(z, 13), "an OGRN does not start with 0");
}

Test(pii_validate, luhn)
{
    for (int n = 13; n <= 19; n++) {
        char c[24];
        make_luhn(c, n, "4");
        cr_assert(mk_pii_luhn(c, (size_t)n), "%s", c);
        break_last(c);
        cr_assert(!mk_pii_luhn(c, (size_t)n), "%s", c);
    }
}

Test(pii_validate, account_against_bik)
{
    static const int w[3] = {7, 1, 3};
    for (int k = 0; k < 300; k++) {
        char bik[10], acc[21], key[24];
        rand_digits(bik, 9);
        bik[0] = '0';
        bik[1] = '4';
        bik[6] = (char)('1' + rnd(9)); /* a credit institution, not a settlement centre */
        rand_digits(acc, 20);
        memcpy(acc, "40702810", 8);
        acc[8] = '0';
        memcpy(key, bik + 6, 3);
        memcpy(key + 3, acc, 20);
        int s = 0;
        for (int i = 0; i < 23; i++)
            s += ((key[i] - '0') * w[i % 3]) % 10;
        /* the key digit (weight 3) makes the total a multiple of 10 */
        for (int d = 0; d < 10; d++)
            if ((s + (d * 3) % 10) % 10 == 0) {
                acc[8] = (char)('0' + d);
                break;
            }
        cr_assert(mk_pii_valid_account(acc, bik), "%s %s", acc, bik);
        acc[8] = (char)('0' + (acc[8] - '0' + 1) % 10);
        cr_assert(!mk_pii_valid_account(acc, bik), "%s %s", acc, bik);
    }
    cr_assert(!mk_pii_valid_account("123", "044525225"));
}

static void make_iban(char *out, const char *cc, const char *bban)
{
    /* check digits = 98 - (bban + cc + "00") mod 97, letters as 10..35 */
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s%s00", bban, cc);
    unsigned r = 0;
    for (const char *p = tmp; *p; p++) {
        if (*p >= '0' && *p <= '9')
            r = (r * 10 + (unsigned)(*p - '0')) % 97;
        else
            r = (r * 100 + (unsigned)(*p - 'A' + 10)) % 97;
    }
    snprintf(out, 64, "%s%02u%s", cc, 98 - r, bban);
}

Test(pii_validate, iban)
{
    char iban[64];
    make_iban(iban, "DE", "370400440532013000");
    cr_assert(mk_pii_valid_iban(iban, strlen(iban)), "%s", iban);
    make_iban(iban, "GB", "WEST12345698765432");
    cr_assert(mk_pii_valid_iban(iban, strlen(iban)), "%s", iban);
    /* with spaces every four, and in lower case */
    char spaced[80];
    size_t o = 0;
    for (size_t i = 0; iban[i]; i++) {
        if (i && i % 4 == 0)
            spaced[o++] = ' ';
        spaced[o++] = (char)(iban[i] >= 'A' && iban[i] <= 'Z' ? iban[i] + 32 : iban[i]);
    }
    spaced[o] = '\0';
    cr_assert(mk_pii_valid_iban(spaced, o), "%s", spaced);
    iban[strlen(iban) - 1] = iban[strlen(iban) - 1] == '9' ? '0' : (char)(iban[strlen(iban) - 1] + 1);
    cr_assert(!mk_pii_valid_iban(iban, strlen(iban)));
}

/* ---- detection ---- */

Test(pii_detect, inn_with_and_without_context)
{
    char a[11], b[13], t[128];
    make_inn10(a);
    make_inn12(b);
    snprintf(t, sizeof t, "Мой ИНН %s, спасибо.", a);
    cr_assert_str_eq(found(t, MK_PII_INN), a);
    snprintf(t, sizeof t, "ИНН: %s", b);
    cr_assert_str_eq(found(t, MK_PII_INN), b);
    snprintf(t, sizeof t, "Вот номер %s для проверки", b);
    cr_assert_str_eq(found(t, MK_PII_INN), b);
    break_last(a);
    snprintf(t, sizeof t, "Мой ИНН %s, спасибо.", a);
    cr_assert_str_eq(found(t, MK_PII_INN), "", "a wrong check digit is not an INN");
}

Test(pii_detect, snils_formats)
{
    char s[12], t[128], f[32];
    make_snils(s);
    snprintf(f, sizeof f, "%.3s-%.3s-%.3s %.2s", s, s + 3, s + 6, s + 9);
    snprintf(t, sizeof t, "СНИЛС %s указан", f);
    cr_assert_str_eq(found(t, MK_PII_SNILS), f);
    snprintf(t, sizeof t, "Номер %s в анкете", f);
    cr_assert_str_eq(found(t, MK_PII_SNILS), f, "the 3-3-3 2 shape needs no context");
    snprintf(t, sizeof t, "СНИЛС: %s", s);
    cr_assert_str_eq(found(t, MK_PII_SNILS), s);
    break_last(s);
    snprintf(f, sizeof f, "%.3s-%.3s-%.3s %.2s", s, s + 3, s + 6, s + 9);
    snprintf(t, sizeof t, "СНИЛС %s указан", f);
    cr_assert_str_eq(found(t, MK_PII_SNILS), "");
}

Test(pii_detect, passport_spellings)
{
    cr_assert_str_eq(found("Паспорт 45 06 123456, выдан ОВД", MK_PII_PASSPORT), "45 06 123456");
    cr_assert_str_eq(found("паспорт 4506 123456", MK_PII_PASSPORT), "4506 123456");
    cr_assert_str_eq(found("серия 4506 номер 123456 выдан", MK_PII_PASSPORT), "4506 номер 123456");
    cr_assert_str_eq(found("Паспорт серии 4506 № 123456", MK_PII_PASSPORT), "4506 № 123456");
    cr_assert_str_eq(found("паспорт: 4506123456", MK_PII_PASSPORT), "4506123456");
    cr_assert_str_eq(found("серия 4506 номер 12345 выдан", MK_PII_PASSPORT), "",
                     "five digits are not a passport number");
}

Test(pii_detect, ogrn_ogrnip)
{
    char o[14], ip[16], t[128];
    make_mod(o, 13, '1', 11);
    make_mod(ip, 15, '3', 13);
    snprintf(t, sizeof t, "ОГРН %s, адрес", o);
    cr_assert_str_eq(found(t, MK_PII_OGRN), o);
    snprintf(t, sizeof t, "ИП Петров, ОГРНИП %s.", ip);
    cr_assert_str_eq(found(t, MK_PII_OGRNIP), ip);
    break_last(o);
    snprintf(t, sizeof t, "ОГРН %s, адрес", o);
    cr_assert_str_eq(found(t, MK_PII_OGRN), "");
}

Test(pii_detect, cards)
{
    char c[20], t[160], f[40];
    make_luhn(c, 16, "4276");
    snprintf(f, sizeof f, "%.4s %.4s %.4s %.4s", c, c + 4, c + 8, c + 12);
    snprintf(t, sizeof t, "Списали с карты %s вчера", f);
    cr_assert_str_eq(found(t, MK_PII_CARD), f);
    snprintf(f, sizeof f, "%.4s-%.4s-%.4s-%.4s", c, c + 4, c + 8, c + 12);
    snprintf(t, sizeof t, "номер %s", f);
    cr_assert_str_eq(found(t, MK_PII_CARD), f);
    snprintf(t, sizeof t, "card %s", c);
    cr_assert_str_eq(found(t, MK_PII_CARD), c);
    make_luhn(c, 15, "37");
    snprintf(f, sizeof f, "%.4s %.6s %.5s", c, c + 4, c + 10);
    snprintf(t, sizeof t, "Amex %s", f);
    cr_assert_str_eq(found(t, MK_PII_CARD), f);
    make_luhn(c, 16, "5469");
    break_last(c);
    snprintf(f, sizeof f, "%.4s %.4s %.4s %.4s", c, c + 4, c + 8, c + 12);
    snprintf(t, sizeof t, "Списали с карты %s вчера", f);
    cr_assert_str_eq(found(t, MK_PII_CARD), "", "Luhn fails: not a card, nor a part of one");
}

Test(pii_detect, accounts)
{
    /* A valid key computed like the validator test, next to its BIK. */
    static const int w[3] = {7, 1, 3};
    char acc[21] = "40817810X99910004312", bik[] = "044525225", key[24], t[160];
    memcpy(key, bik + 6, 3);
    memcpy(key + 3, acc, 20);
    for (int d = 0; d < 10; d++) {
        key[3 + 8] = (char)('0' + d);
        int s = 0;
        for (int i = 0; i < 23; i++)
            s += ((key[i] - '0') * w[i % 3]) % 10;
        if (s % 10 == 0)
            acc[8] = (char)('0' + d);
    }
    snprintf(t, sizeof t, "Переведите на %s, БИК %s", acc, bik);
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    cr_assert_eq(detect(t, &m), 0);
    cr_assert_eq(m.n, 1);
    cr_assert_eq(m.v[0].type, MK_PII_ACCOUNT);
    cr_assert(m.v[0].flags & MK_PII_F_CHECKSUM);
    cr_assert_geq(m.v[0].confidence, 0.99f);
    mk_pii_matches_release(&m);
    cr_assert_str_eq(found("р/с 40702810900000000001", MK_PII_ACCOUNT), "40702810900000000001");
}

Test(pii_detect, phones)
{
    const char *forms[] = {"+7 (912) 345-67-89", "8 (800) 555-35-35", "+79123456789", "8-912-345-67-89",
                           "+7 912 345 67 89", "89123456789", "(495) 123-45-67"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        char t[128];
        snprintf(t, sizeof t, "Звоните: %s, после обеда", forms[i]);
        cr_assert_str_eq(found(t, MK_PII_PHONE), forms[i], "%s", t);
    }
}

Test(pii_detect, email_iban_ip)
{
    cr_assert_str_eq(found("пишите на ivan.petrov+shop@mail.ru.", MK_PII_EMAIL), "ivan.petrov+shop@mail.ru");
    cr_assert_str_eq(found("почта: иван@почта.рф", MK_PII_EMAIL), "иван@почта.рф");
    cr_assert_str_eq(found("not an address: user@localhost", MK_PII_EMAIL), "");
    char iban[64], t[128];
    make_iban(iban, "DE", "370400440532013000");
    snprintf(t, sizeof t, "IBAN %s please", iban);
    cr_assert_str_eq(found(t, MK_PII_IBAN), iban);
    cr_assert_str_eq(found("сервер 192.168.10.254 недоступен", MK_PII_IP), "192.168.10.254");
    cr_assert_str_eq(found("адрес 2001:db8::8a2e:370:7334.", MK_PII_IP), "2001:db8::8a2e:370:7334");
    cr_assert_str_eq(found("версия 1.2.3.4.5", MK_PII_IP), "");
    cr_assert_str_eq(found("в 12:30:45 позвонили", MK_PII_IP), "");
    cr_assert_str_eq(found("адрес 300.1.1.1", MK_PII_IP), "");
}

Test(pii_detect, not_personal)
{
    const char *texts[] = {
        "Заказ №5821 от 12.03.2024 на сумму 15 400,50 руб.",
        "Трек-номер RA123456789RU, версия 4.12.1, код 482913.",
        "В 2023 году тариф стоил 990 рублей, а сейчас 1290.",
        "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        mk_pii_matches m = MK_PII_MATCHES_INIT;
        cr_assert_eq(detect(texts[i], &m), 0);
        cr_assert_eq(m.n, 0, "%s: %zu matches", texts[i], m.n);
        mk_pii_matches_release(&m);
    }
}

Test(pii_detect, bad_arguments)
{
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    cr_assert_eq(mk_pii_detect(NULL, 5, NULL, &m), MK_EINVAL);
    cr_assert_eq(mk_pii_detect("x", 1, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_pii_detect(NULL, 0, NULL, &m), 0);
    /* Invalid UTF-8 is scanned, not rejected. */
    const char bad[] = "\xff\xfe Иван\xd0 Петров \xc3";
    cr_assert_eq(mk_pii_detect(bad, sizeof bad - 1, NULL, &m), 0);
    mk_pii_matches_release(&m);
    mk_pii_matches_release(NULL);
}

Test(pii_detect, type_filter_and_threshold)
{
    const char *t = "Иван Петров, тел. +7 912 345-67-89";
    mk_pii_options o = {.types = MK_PII_BIT(MK_PII_PHONE)};
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    cr_assert_eq(mk_pii_detect(t, strlen(t), &o, &m), 0);
    cr_assert_eq(m.n, 1);
    cr_assert_eq(m.v[0].type, MK_PII_PHONE);
    o.types = 0;
    o.min_confidence = 0.999f;
    cr_assert_eq(mk_pii_detect(t, strlen(t), &o, &m), 0);
    cr_assert_eq(m.n, 0);
    mk_pii_matches_release(&m);
}

Test(pii_detect, too_many_matches)
{
    size_t n = MK_PII_MAX_MATCHES + 10;
    char *t = malloc(n * 8 + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(t + i * 8, "a@b.cc, ", 8);
    t[n * 8] = '\0';
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    cr_assert_eq(mk_pii_detect(t, n * 8, NULL, &m), MK_ETOOBIG);
    cr_assert_eq(m.n, MK_PII_MAX_MATCHES);
    mk_pii_matches_release(&m);
    free(t);
}

/* ---- names ---- */

Test(pii_names, lists_loaded)
{
    size_t loaded, dropped;
    pii_names_stats(&loaded, &dropped);
    cr_assert_gt(loaded, 1000);
    cr_assert_eq(dropped, 0);
}

Test(pii_names, russian_cases)
{
    const char *cases[][2] = {
        {"Прошу выдать справку Иванову Петру Сергеевичу до пятницы.", "Иванову Петру Сергеевичу"},
        {"Заявление от Иванова Петра Сергеевича принято.", "Иванова Петра Сергеевича"},
        {"Мы говорили с Ивановым Петром Сергеевичем вчера.", "Ивановым Петром Сергеевичем"},
        {"Речь шла о Петре Сергеевиче Иванове.", "Петре Сергеевиче Иванове"},
        {"Письмо для Марии Ивановны Смирновой пришло.", "Марии Ивановны Смирновой"},
        {"Договор подписала Смирнова Мария Ивановна.", "Смирнова Мария Ивановна"},
        {"Вопрос к Сергею Кузнецову по заказу.", "Сергею Кузнецову"},
        {"Справку подписал А. С. Пушкин лично.", "А. С. Пушкин"},
        {"Звонил господин Лебедев по поводу карты.", "Лебедев"},
        {"Спасибо, Анна Павловна, всё получилось.", "Анна Павловна"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_assert_str_eq(found(cases[i][0], MK_PII_PERSON), cases[i][1], "%s", cases[i][0]);
}

Test(pii_names, kazakh_and_english)
{
    cr_assert_str_eq(found("Өтініш берген Айгерим Сапарқызы Нұрланова.", MK_PII_PERSON),
                     "Айгерим Сапарқызы Нұрланова");
    cr_assert_str_eq(found("Кездесуге Ерлан Серікұлы келді.", MK_PII_PERSON), "Ерлан Серікұлы");
    cr_assert_str_eq(found("Please call Mr. Smith tomorrow.", MK_PII_PERSON), "Smith");
    cr_assert_str_eq(found("The ticket from Emily Watson was closed.", MK_PII_PERSON), "Emily Watson");
    cr_assert_str_eq(found("Signed, Dr. Olga Brennan", MK_PII_PERSON), "Olga Brennan");
}

Test(pii_names, not_names)
{
    const char *texts[] = {
        "Московский государственный университет открыт.",
        "Сбербанк и Газпром отчитались.",
        "The University of Helsinki is in Finland.",
        "Ростов и Саратов ждут весну.",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        cr_assert_str_eq(found(texts[i], MK_PII_PERSON), "", "%s", texts[i]);
}

Test(pii_names, later_mentions_of_a_surname)
{
    const char *t = "Владимир Путин провёл встречу. Позже Путина спросили о планах.";
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    cr_assert_eq(detect(t, &m), 0);
    cr_assert_eq(m.n, 2);
    cr_assert_geq(m.v[1].confidence, 0.85f);
    mk_pii_matches_release(&m);
}

/* ---- vault and masking ---- */

Test(pii_vault, numbering_and_lookups)
{
    mk_pii_vault *v = mk_pii_vault_new();
    mk_slice p1, p2, p3, p4, val;
    cr_assert_eq(mk_pii_vault_put(v, MK_PII_PERSON, "Иван Петров", strlen("Иван Петров"), &p1), 0);
    cr_assert_eq(mk_pii_vault_put(v, MK_PII_PHONE, "+7 912 345-67-89", 16, &p2), 0);
    cr_assert_eq(mk_pii_vault_put(v, MK_PII_PERSON, "Анна Смирнова", strlen("Анна Смирнова"), &p3), 0);
    /* the same phone written differently is the same value */
    cr_assert_eq(mk_pii_vault_put(v, MK_PII_PHONE, "8 (912) 3456789", 15, &p4), 0);
    cr_assert(mk_slice_eq_cstr(p1, "<PERSON_1>"));
    cr_assert(mk_slice_eq_cstr(p2, "<PHONE_1>"));
    cr_assert(mk_slice_eq_cstr(p3, "<PERSON_2>"));
    cr_assert(mk_slice_eq_cstr(p4, "<PHONE_1>"));
    cr_assert_eq(mk_pii_vault_count(v), 3);
    cr_assert_eq(mk_pii_vault_lookup_placeholder(v, "<PERSON_2>", 10, &val), 0);
    cr_assert(mk_slice_eq_cstr(val, "Анна Смирнова"));
    cr_assert_eq(mk_pii_vault_lookup_placeholder(v, "<PERSON_3>", 10, &val), MK_ENOTFOUND);
    cr_assert_eq(mk_pii_vault_lookup_placeholder(v, "<PERSON_2>x", 11, &val), MK_ENOTFOUND);
    cr_assert_eq(mk_pii_vault_lookup_value(v, MK_PII_PHONE, "79123456789", 11, &p4), 0);
    cr_assert(mk_slice_eq_cstr(p4, "<PHONE_1>"));
    cr_assert_eq(mk_pii_vault_lookup_value(v, MK_PII_INN, "79123456789", 11, &p4), MK_ENOTFOUND);
    cr_assert_eq(mk_pii_vault_put(v, MK_PII_NONE, "x", 1, &p4), MK_EINVAL);
    cr_assert_eq(mk_pii_vault_put(v, MK_PII_INN, "", 0, &p4), MK_EINVAL);
    char big[MK_PII_VALUE_MAX + 2];
    memset(big, 'a', sizeof big);
    cr_assert_eq(mk_pii_vault_put(v, MK_PII_EMAIL, big, sizeof big, &p4), MK_ETOOBIG);

    mk_buf out = MK_BUF_INIT;
    const char *ans = "<PERSON_1>, перезвоните <PERSON_2> на <PHONE_1>. <PERSON_7> <b> <PHONE_01>";
    cr_assert_eq(mk_pii_vault_restore(v, ans, strlen(ans), &out), 0);
    cr_assert_str_eq(out.data, "Иван Петров, перезвоните Анна Смирнова на +7 912 345-67-89. "
                               "<PERSON_7> <b> <PHONE_01>");
    mk_buf_release(&out);
    mk_pii_vault_free(v);
    mk_pii_vault_free(NULL);
}

Test(pii_vault, many_values)
{
    mk_pii_vault *v = mk_pii_vault_new();
    char val[32];
    mk_slice ph;
    for (int i = 0; i < 3000; i++) {
        snprintf(val, sizeof val, "user%d@example.com", i);
        cr_assert_eq(mk_pii_vault_put(v, MK_PII_EMAIL, val, strlen(val), &ph), 0);
        char want[32];
        snprintf(want, sizeof want, "<EMAIL_%d>", i + 1);
        cr_assert(mk_slice_eq_cstr(ph, want));
    }
    snprintf(val, sizeof val, "USER1234@EXAMPLE.COM");
    cr_assert_eq(mk_pii_vault_lookup_value(v, MK_PII_EMAIL, val, strlen(val), &ph), 0);
    cr_assert(mk_slice_eq_cstr(ph, "<EMAIL_1235>"));
    mk_pii_vault_free(v);
}

Test(pii_mask, modes)
{
    const char *t = "Иван Петров, карта 4111 1111 1111 1111, почта ivan@mail.ru";
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    cr_assert_eq(detect(t, &m), 0);
    cr_assert_eq(m.n, 3);
    mk_buf out = MK_BUF_INIT;
    mk_pii_policy p = {.mode = MK_PII_MODE_REDACT};
    size_t applied;
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &p, NULL, &out, &applied), 0);
    cr_assert_str_eq(out.data, "[REDACTED], карта [REDACTED], почта [REDACTED]");
    cr_assert_eq(applied, 3);

    mk_buf_reset(&out);
    p.mode = MK_PII_MODE_MASK;
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &p, NULL, &out, NULL), 0);
    cr_assert_str_eq(out.data, "И. П., карта **** **** **** 1111, почта i***@mail.ru");

    mk_buf_reset(&out);
    p.mode = MK_PII_MODE_PLACEHOLDER;
    p.per_type[MK_PII_EMAIL] = MK_PII_MODE_REDACT;
    mk_pii_vault *v = mk_pii_vault_new();
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &p, v, &out, NULL), 0);
    cr_assert_str_eq(out.data, "<PERSON_1>, карта <CARD_1>, почта [REDACTED]");
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &p, NULL, &out, NULL), MK_EINVAL,
                 "placeholders need a vault");

    /* hash: stable for one key, different for another, needs a key */
    unsigned char k1[32], k2[32];
    memset(k1, 1, sizeof k1);
    memset(k2, 2, sizeof k2);
    mk_pii_policy h = {.mode = MK_PII_MODE_HASH, .hash_key = k1, .hash_key_len = sizeof k1};
    mk_buf a = MK_BUF_INIT, b = MK_BUF_INIT, c = MK_BUF_INIT;
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &h, NULL, &a, NULL), 0);
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &h, NULL, &b, NULL), 0);
    cr_assert_str_eq(a.data, b.data);
    cr_assert(strstr(a.data, "<CARD#") != NULL);
    cr_assert(strstr(a.data, "4111") == NULL);
    h.hash_key = k2;
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &h, NULL, &c, NULL), 0);
    cr_assert_str_neq(a.data, c.data);
    h.hash_key_len = 4;
    mk_buf_reset(&c);
    cr_assert_eq(mk_pii_apply(t, strlen(t), m.v, m.n, &h, NULL, &c, NULL), MK_EINVAL);

    /* overlapping or out-of-range matches are refused */
    mk_pii_match bad[2] = {{0, 10, MK_PII_PERSON, 1, 0}, {5, 12, MK_PII_INN, 1, 0}};
    cr_assert_eq(mk_pii_apply(t, strlen(t), bad, 2, &p, v, &out, NULL), MK_EINVAL);
    mk_pii_match far = {0, 10000, MK_PII_PERSON, 1, 0};
    cr_assert_eq(mk_pii_apply(t, strlen(t), &far, 1, &p, v, &out, NULL), MK_EINVAL);

    mk_buf_release(&a);
    mk_buf_release(&b);
    mk_buf_release(&c);
    mk_buf_release(&out);
    mk_pii_vault_free(v);
    mk_pii_matches_release(&m);
    cr_assert_eq(mk_pii_mode_parse("placeholder", 11), MK_PII_MODE_PLACEHOLDER);
    cr_assert_eq(mk_pii_mode_parse("nope", 4), -1);
    cr_assert_eq(mk_pii_type_parse("inn", 3), MK_PII_INN);
}

Test(pii_mask, redact_round_trip)
{
    char inn[11];
    make_inn10(inn);
    char t[256];
    snprintf(t, sizeof t, "Меня зовут Пётр Иванов, ИНН %s, тел. +7 912 345-67-89. Пётр Иванов.", inn);
    mk_pii_vault *v = mk_pii_vault_new();
    mk_pii_policy p = {.mode = MK_PII_MODE_PLACEHOLDER};
    mk_buf masked = MK_BUF_INIT, back = MK_BUF_INIT;
    size_t applied;
    cr_assert_eq(mk_pii_redact(t, strlen(t), NULL, &p, v, &masked, &applied), 0);
    cr_assert_eq(applied, 4);
    cr_assert_str_eq(masked.data, "Меня зовут <PERSON_1>, ИНН <INN_1>, тел. <PHONE_1>. <PERSON_1>.");
    cr_assert(!mk_pii_vault_leaks(v, masked.data, masked.len, NULL, NULL));
    cr_assert_eq(mk_pii_vault_restore(v, masked.data, masked.len, &back), 0);
    cr_assert_str_eq(back.data, t);
    mk_buf_release(&masked);
    mk_buf_release(&back);
    mk_pii_vault_free(v);
}

/* ---- streaming restore ---- */

static mk_pii_vault *sample_vault(void)
{
    mk_pii_vault *v = mk_pii_vault_new();
    mk_slice ph;
    mk_pii_vault_put(v, MK_PII_PERSON, "Иван Петров", strlen("Иван Петров"), &ph);
    mk_pii_vault_put(v, MK_PII_PERSON, "Анна Смирнова", strlen("Анна Смирнова"), &ph);
    mk_pii_vault_put(v, MK_PII_INN, "7707083893", 10, &ph);
    for (int i = 0; i < 11; i++) { /* PHONE_1 .. PHONE_11: multi-digit numbers */
        char val[16];
        snprintf(val, sizeof val, "+7912000%04d", i);
        mk_pii_vault_put(v, MK_PII_PHONE, val, strlen(val), &ph);
    }
    return v;
}

static const char *stream_text =
    "<PERSON_1>, ваш ИНН <INN_1>; звоните <PHONE_11> или <PHONE_1>. <PERSON_2><PERSON_1> "
    "<b>жирный</b> <PERSON_3> <PER <INN_> a<b <PHONE_12> <PHONE_1";

Test(pii_restorer, every_split_point)
{
    mk_pii_vault *v = sample_vault();
    size_t len = strlen(stream_text);
    mk_buf want = MK_BUF_INIT;
    cr_assert_eq(mk_pii_vault_restore(v, stream_text, len, &want), 0);
    mk_pii_restorer *r = mk_pii_restorer_new(v);
    /* two chunks at every split point */
    for (size_t i = 0; i <= len; i++) {
        mk_buf out = MK_BUF_INIT;
        cr_assert_eq(mk_pii_restorer_feed(r, stream_text, i, &out), 0);
        cr_assert_eq(mk_pii_restorer_feed(r, stream_text + i, len - i, &out), 0);
        cr_assert_eq(mk_pii_restorer_flush(r, &out), 0);
        cr_assert_str_eq(out.data, want.data, "split at %zu", i);
        mk_buf_release(&out);
    }
    /* three chunks at every pair of split points */
    for (size_t i = 0; i <= len; i++)
        for (size_t j = i; j <= len; j++) {
            mk_buf out = MK_BUF_INIT;
            mk_pii_restorer_feed(r, stream_text, i, &out);
            mk_pii_restorer_feed(r, stream_text + i, j - i, &out);
            mk_pii_restorer_feed(r, stream_text + j, len - j, &out);
            mk_pii_restorer_flush(r, &out);
            cr_assert_str_eq(out.data ? out.data : "", want.data, "splits at %zu, %zu", i, j);
            mk_buf_release(&out);
        }
    /* byte by byte */
    mk_buf out = MK_BUF_INIT;
    for (size_t i = 0; i < len; i++)
        cr_assert_eq(mk_pii_restorer_feed(r, stream_text + i, 1, &out), 0);
    cr_assert_eq(mk_pii_restorer_flush(r, &out), 0);
    cr_assert_str_eq(out.data, want.data);
    mk_buf_release(&out);
    mk_buf_release(&want);
    mk_pii_restorer_free(r);
    mk_pii_vault_free(v);
}

Test(pii_restorer, holds_back_only_what_could_be_a_placeholder)
{
    mk_pii_vault *v = sample_vault();
    mk_pii_restorer *r = mk_pii_restorer_new(v);
    mk_buf out = MK_BUF_INIT;
    cr_assert_eq(mk_pii_restorer_feed(r, "Здравствуйте, <PER", strlen("Здравствуйте, <PER"), &out), 0);
    cr_assert_str_eq(out.data, "Здравствуйте, ");
    cr_assert_eq(mk_pii_restorer_pending(r), 4);
    cr_assert_eq(mk_pii_restorer_feed(r, "SON_1>!", 7, &out), 0);
    cr_assert_str_eq(out.data, "Здравствуйте, Иван Петров!");
    cr_assert_eq(mk_pii_restorer_pending(r), 0);
    mk_buf_reset(&out);
    /* "<b" cannot start a placeholder of this vault; "<PERSON_3" neither (2 persons);
     * "<PHONE_1" can (PHONE_1 and PHONE_10, PHONE_11 exist). */
    mk_pii_restorer_feed(r, "a<b", 3, &out);
    cr_assert_eq(mk_pii_restorer_pending(r), 0);
    mk_pii_restorer_feed(r, " <PERSON_3", 10, &out);
    cr_assert_eq(mk_pii_restorer_pending(r), 0);
    mk_pii_restorer_feed(r, " <PHONE_1", 9, &out);
    cr_assert_eq(mk_pii_restorer_pending(r), 8);
    mk_pii_restorer_feed(r, "1", 1, &out);
    cr_assert_eq(mk_pii_restorer_pending(r), 9);
    mk_pii_restorer_feed(r, ">", 1, &out);
    cr_assert_eq(mk_pii_restorer_pending(r), 0);
    cr_assert_str_eq(out.data, "a<b <PERSON_3 +79120000010");
    cr_assert_eq(mk_pii_restorer_feed(NULL, "x", 1, &out), MK_EINVAL);
    cr_assert_null(mk_pii_restorer_new(NULL));
    mk_buf_release(&out);
    mk_pii_restorer_free(r);
    mk_pii_restorer_free(NULL);
    mk_pii_vault_free(v);
}

/* ---- leak check ---- */

Test(pii_leak, finds_values_in_other_spellings)
{
    mk_pii_vault *v = mk_pii_vault_new();
    mk_slice ph;
    mk_pii_vault_put(v, MK_PII_INN, "7707083893", 10, &ph);
    mk_pii_vault_put(v, MK_PII_PHONE, "+7 912 345-67-89", 16, &ph);
    mk_pii_vault_put(v, MK_PII_EMAIL, "Ivan@Mail.ru", 12, &ph);
    mk_pii_vault_put(v, MK_PII_PERSON, "Иванову Петру", strlen("Иванову Петру"), &ph);
    size_t at;
    mk_pii_type t;
    const char *clean = "Ваш запрос <INN_1> принят, <PERSON_1> уведомлён. Петру Ильичу привет.";
    cr_assert(!mk_pii_vault_leaks(v, clean, strlen(clean), &at, &t));
    const char *a = "Ваш ИНН 7707 083 893 принят.";
    cr_assert(mk_pii_vault_leaks(v, a, strlen(a), &at, &t));
    cr_assert_eq(t, MK_PII_INN);
    cr_assert_eq(at, strlen("Ваш ИНН "));
    const char *b = "Позвоните 8 (912) 345 67 89";
    cr_assert(mk_pii_vault_leaks(v, b, strlen(b), &at, &t));
    cr_assert_eq(t, MK_PII_PHONE);
    const char *c = "write to IVAN@MAIL.RU";
    cr_assert(mk_pii_vault_leaks(v, c, strlen(c), &at, &t));
    cr_assert_eq(t, MK_PII_EMAIL);
    const char *d = "Ответ для ИВАНОВА готов.";
    cr_assert(mk_pii_vault_leaks(v, d, strlen(d), &at, &t));
    cr_assert_eq(t, MK_PII_PERSON);
    cr_assert(!mk_pii_vault_leaks(NULL, d, strlen(d), NULL, NULL));
    mk_pii_vault_free(v);
}
