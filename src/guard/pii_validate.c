/*
 * pii_validate: check digits of Russian identifiers, Luhn, bank-account keys and
 * IBAN mod 97 -- the public algorithms, each in a few lines.
 *
 * Every function takes digits only (the scanners strip separators first) and
 * returns false for a wrong length or a non-digit rather than failing, so a caller
 * can try one shape after another.
 */
#include <ctype.h>
#include <string.h>

#include "guard/pii_int.h"

static bool all_digits(const char *d, size_t n)
{
    if (!d)
        return false;
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9')
            return false;
    return true;
}

/* Weighted sum of the first n digits mod 11, then mod 10: the INN check digit. */
static int inn_check(const char *d, const int *w, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (d[i] - '0') * w[i];
    return sum % 11 % 10;
}

bool mk_pii_valid_inn(const char *d, size_t n)
{
    static const int w10[9] = {2, 4, 10, 3, 5, 9, 4, 6, 8};
    static const int w11[10] = {7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    static const int w12[11] = {3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    if ((n != 10 && n != 12) || !all_digits(d, n))
        return false;
    if (n == 10)
        return inn_check(d, w10, 9) == d[9] - '0';
    return inn_check(d, w11, 10) == d[10] - '0' && inn_check(d, w12, 11) == d[11] - '0';
}

bool mk_pii_valid_snils(const char *d, size_t n)
{
    if (n != 11 || !all_digits(d, n))
        return false;
    /* Numbers up to 001-001-998 were issued without a meaningful check number;
     * they are a reserved range and, as text, far more often something else. */
    long num = 0;
    for (int i = 0; i < 9; i++)
        num = num * 10 + (d[i] - '0');
    if (num <= 1001998)
        return false;
    int sum = 0;
    for (int i = 0; i < 9; i++)
        sum += (d[i] - '0') * (9 - i);
    int check;
    if (sum < 100)
        check = sum;
    else if (sum == 100 || sum == 101)
        check = 0;
    else {
        check = sum % 101;
        if (check == 100)
            check = 0;
    }
    return check == (d[9] - '0') * 10 + (d[10] - '0');
}

/* The first n-1 digits as a number mod m, then mod 10, equals the last digit. */
static bool mod_check(const char *d, size_t n, int m)
{
    int r = 0;
    for (size_t i = 0; i + 1 < n; i++)
        r = (r * 10 + (d[i] - '0')) % m;
    return r % 10 == d[n - 1] - '0';
}

bool mk_pii_valid_ogrn(const char *d, size_t n)
{
    if (n != 13 || !all_digits(d, n) || d[0] == '0')
        return false;
    return mod_check(d, n, 11);
}

bool mk_pii_valid_ogrnip(const char *d, size_t n)
{
    /* An OGRNIP (sole trader) always starts with 3. */
    if (n != 15 || !all_digits(d, n) || d[0] != '3')
        return false;
    return mod_check(d, n, 13);
}

bool mk_pii_luhn(const char *d, size_t n)
{
    if (n < 2 || !all_digits(d, n))
        return false;
    int sum = 0;
    bool dbl = false;
    for (size_t i = n; i-- > 0;) {
        int x = d[i] - '0';
        if (dbl) {
            x *= 2;
            if (x > 9)
                x -= 9;
        }
        sum += x;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

bool mk_pii_valid_account(const char *acc, const char *bik)
{
    static const int w[3] = {7, 1, 3};
    if (!all_digits(acc, 20) || !all_digits(bik, 9))
        return false;
    /* 23 digits: three from the BIK, then the account. A credit institution uses
     * the BIK's last three digits; a settlement centre of the Bank of Russia (the
     * BIK ends in 000, 001 or 002) uses "0" and the BIK's 5th and 6th digits. */
    char key[23];
    /* A correspondent account (30101...) is held at the Bank of Russia: its key
     * uses the settlement-centre form too. */
    bool rkc = (bik[6] == '0' && bik[7] == '0' && bik[8] <= '2') || memcmp(acc, "30101", 5) == 0;
    if (rkc) {
        key[0] = '0';
        key[1] = bik[4];
        key[2] = bik[5];
    } else {
        key[0] = bik[6];
        key[1] = bik[7];
        key[2] = bik[8];
    }
    for (int i = 0; i < 20; i++)
        key[3 + i] = acc[i];
    int sum = 0;
    for (int i = 0; i < 23; i++)
        sum += ((key[i] - '0') * w[i % 3]) % 10;
    return sum % 10 == 0;
}

bool mk_pii_valid_iban(const char *s, size_t n)
{
    char c[40];
    size_t k = 0;
    if (!s)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ')
            continue;
        if (!isalnum(ch) || k >= 34)
            return false;
        c[k++] = (char)toupper(ch);
    }
    /* Shortest IBANs (Norway) have 15 characters, the longest 34. */
    if (k < 15 || !isalpha((unsigned char)c[0]) || !isalpha((unsigned char)c[1]) ||
        !isdigit((unsigned char)c[2]) || !isdigit((unsigned char)c[3]))
        return false;
    /* Move the first four to the end, letters become 10..35, the number mod 97 is 1. */
    unsigned r = 0;
    for (size_t j = 0; j < k; j++) {
        char ch = c[(j + 4) % k];
        if (isdigit((unsigned char)ch))
            r = (r * 10 + (unsigned)(ch - '0')) % 97;
        else
            r = (r * 100 + (unsigned)(ch - 'A' + 10)) % 97;
    }
    return r == 1;
}
