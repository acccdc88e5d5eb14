/* TOTP: RFC 6238 vectors, the +-1 step window, replay protection, and the sealed
 * store-backed registry. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/mk_totp.h"
#include "core/mk_error.h"
#include "core/mk_log.h"

static const unsigned char rfc_key[] = "12345678901234567890"; /* RFC 6238 SHA-1 seed */

Test(totp, rfc6238_vectors)
{
    char code[7];
    /* The RFC lists 8-digit codes; ours are the last 6 of them. */
    struct { int64_t t; const char *code; } v[] = {
        {59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"},
        {2000000000, "279037"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        cr_assert_eq(mk_totp_code(rfc_key, 20, v[i].t, code), 0);
        cr_assert_str_eq(code, v[i].code, "t=%lld", (long long)v[i].t);
    }
}

Test(totp, window_and_replay)
{
    int64_t now = 1700000000;
    char prev[7], cur[7], next[7], far[7];
    mk_totp_code(rfc_key, 20, now - 30, prev);
    mk_totp_code(rfc_key, 20, now, cur);
    mk_totp_code(rfc_key, 20, now + 30, next);
    mk_totp_code(rfc_key, 20, now + 90, far);
    int64_t step = 0;
    cr_assert_eq(mk_totp_check(rfc_key, 20, prev, now, 0, &step), 0, "one step back");
    cr_assert_eq(step, (now - 30) / 30);
    cr_assert_eq(mk_totp_check(rfc_key, 20, next, now, 0, &step), 0, "one step ahead");
    if (strcmp(far, cur) && strcmp(far, prev) && strcmp(far, next))
        cr_assert_eq(mk_totp_check(rfc_key, 20, far, now, 0, &step), MK_EUNAUTHORIZED, "three steps ahead");
    cr_assert_eq(mk_totp_check(rfc_key, 20, cur, now, 0, &step), 0);
    int64_t last = step;
    cr_assert_eq(mk_totp_check(rfc_key, 20, cur, now, last, &step), MK_EUNAUTHORIZED, "same code again = replay");
    cr_assert_eq(mk_totp_check(rfc_key, 20, prev, now, last, &step), MK_EUNAUTHORIZED, "an older code after a newer one");
    cr_assert_eq(mk_totp_check(rfc_key, 20, next, now, last, &step), 0, "a later step is fine");
    const char *bad[] = {"", "12345", "1234567", "12a456", " 12345"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(mk_totp_check(rfc_key, 20, bad[i], now, 0, &step), MK_EUNAUTHORIZED, "'%s'", bad[i]);
}

Test(totp, secret_and_uri)
{
    struct mk_totp_secret a, b;
    cr_assert_eq(mk_totp_generate(&a), 0);
    cr_assert_eq(mk_totp_generate(&b), 0);
    cr_assert_neq(memcmp(a.key, b.key, sizeof a.key), 0);
    cr_assert_eq(strlen(a.base32), 32);
    mk_buf uri = MK_BUF_INIT;
    cr_assert_eq(mk_totp_uri(&a, "Mayak Desk", "anna@example.ru", &uri), 0);
    cr_assert(strncmp(uri.data, "otpauth://totp/Mayak%20Desk:anna@example.ru?secret=", 51) == 0, "%s", uri.data);
    cr_assert_not_null(strstr(uri.data, a.base32));
    cr_assert_not_null(strstr(uri.data, "&issuer=Mayak%20Desk&algorithm=SHA1&digits=6&period=30"));
    mk_buf_reset(&uri);
    cr_assert_eq(mk_totp_uri(&a, "Evil:Issuer", "x", &uri), MK_EINVAL);
    mk_buf_release(&uri);
}

/* ---- registry ---------------------------------------------------------------------- */

static char dir[128];
static struct mk_store *store;
static struct mk_totp *reg;
static struct mk_store_conn *conn;

static void setup(void)
{
    mk_log_set_level(MK_LOG_OFF);
    snprintf(dir, sizeof dir, "/tmp/mk-totp-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char url[256];
    snprintf(url, sizeof url, "sqlite://%s/mayak.db", dir);
    cr_assert_eq(mk_store_open(url, NULL, &store, NULL), 0);
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_totp_open(store, dir, &reg, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    cr_assert_eq(mk_store_acquire(store, &conn), 0);
}

static void teardown(void)
{
    mk_store_release(store, conn);
    mk_totp_free(reg);
    mk_store_free(store);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) { /* best effort */
    }
}

TestSuite(totp_registry, .init = setup, .fini = teardown);

Test(totp_registry, enroll_confirm_verify_replay)
{
    int64_t now = 1700000000;
    struct mk_totp_secret s;
    mk_buf uri = MK_BUF_INIT;
    char code[7];
    bool enrolled = true;
    cr_assert_eq(mk_totp_enrolled(reg, conn, "anna", &enrolled), 0);
    cr_assert_not(enrolled);
    cr_assert_eq(mk_totp_verify(reg, conn, "anna", "123456", now), MK_ENOTFOUND);
    cr_assert_eq(mk_totp_enroll_begin(reg, conn, "anna", "Mayak", &uri, &s), 0);
    cr_assert_not_null(strstr(uri.data, s.base32));
    mk_totp_code(s.key, sizeof s.key, now, code);
    cr_assert_eq(mk_totp_verify(reg, conn, "anna", code, now), MK_ENOTFOUND, "pending enrolments cannot log in");
    char wrong[16];
    snprintf(wrong, sizeof wrong, "%06ld", (strtol(code, NULL, 10) + 1) % 1000000);
    cr_assert_eq(mk_totp_enroll_confirm(reg, conn, "anna", wrong, now), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_totp_enroll_confirm(reg, conn, "anna", code, now), 0);
    cr_assert_eq(mk_totp_enrolled(reg, conn, "anna", &enrolled), 0);
    cr_assert(enrolled);
    cr_assert_eq(mk_totp_verify(reg, conn, "anna", code, now), MK_EUNAUTHORIZED, "the confirming code is spent");
    mk_totp_code(s.key, sizeof s.key, now + 30, code);
    cr_assert_eq(mk_totp_verify(reg, conn, "anna", code, now + 30), 0);
    cr_assert_eq(mk_totp_verify(reg, conn, "anna", code, now + 30), MK_EUNAUTHORIZED, "replay");
    cr_assert_eq(mk_totp_remove(reg, conn, "anna"), 0);
    cr_assert_eq(mk_totp_remove(reg, conn, "anna"), MK_ENOTFOUND);
    mk_buf_release(&uri);
}

Test(totp_registry, sealed_secrets_are_bound_to_the_user)
{
    int64_t now = 1700000000;
    struct mk_totp_secret mine;
    mk_buf uri = MK_BUF_INIT;
    cr_assert_eq(mk_totp_enroll_begin(reg, conn, "mallory", "Mayak", &uri, &mine), 0);
    cr_assert_eq(mk_totp_enroll_begin(reg, conn, "admin", "Mayak", &uri, NULL), 0);
    char code[7];
    mk_totp_code(mine.key, sizeof mine.key, now, code);
    cr_assert_eq(mk_totp_enroll_confirm(reg, conn, "mallory", code, now), 0);
    /* someone with database access plants mallory's sealed secret in admin's row */
    cr_assert_eq(mk_store_exec(conn, "UPDATE totp_users SET confirmed = 1, sealed ="
                                     " (SELECT sealed FROM totp_users WHERE username = 'mallory')"
                                     " WHERE username = 'admin'"),
                 0);
    mk_totp_code(mine.key, sizeof mine.key, now + 30, code);
    cr_assert_eq(mk_totp_verify(reg, conn, "admin", code, now + 30), MK_ECORRUPT);
    /* nothing in the table is the secret in clear */
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(conn, "SELECT sealed FROM totp_users", &st), 0);
    while (mk_store_step(st) == MK_STORE_ROW) {
        mk_slice v = mk_store_column_text(st, 0);
        cr_assert_null(memmem(v.ptr, v.len, mine.base32, strlen(mine.base32)));
    }
    mk_store_stmt_done(st);
    cr_assert_eq(mk_totp_verify(reg, conn, "", "123456", now), MK_EINVAL);
    mk_buf_release(&uri);
}
