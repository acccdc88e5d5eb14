/* mk_totp: TOTP codes (liboath) and the sealed, replay-protected enrolment registry. */
#include <liboath/oath.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mk_auth.h"
#include "auth/mk_totp.h"
#include "core/mk_error.h"

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_ok;
static void oath_setup(void) { oath_ok = oath_init() == OATH_OK; }

static bool lib_ready(void)
{
    pthread_once(&oath_once, oath_setup);
    return oath_ok && sodium_init() >= 0;
}

int mk_totp_generate(struct mk_totp_secret *out)
{
    if (!out || !lib_ready()) return out ? MK_EINTERNAL : MK_EINVAL;
    randombytes_buf(out->key, sizeof out->key);
    char *b32 = NULL;
    size_t len = 0;
    if (oath_base32_encode((const char *)out->key, sizeof out->key, &b32, &len) != OATH_OK || !b32) return MK_EINTERNAL;
    /* Apps want it unpadded. 20 bytes encode to 32 chars with no padding anyway. */
    while (len > 0 && b32[len - 1] == '=') len--;
    if (len >= sizeof out->base32) {
        free(b32);
        return MK_EINTERNAL;
    }
    memcpy(out->base32, b32, len);
    out->base32[len] = '\0';
    free(b32);
    return 0;
}

static int pct(mk_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~' || *p == '@')
            rc = mk_buf_append_char(b, (char)*p);
        else
            rc = mk_buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
        if (rc) return rc;
    }
    return 0;
}

int mk_totp_uri(const struct mk_totp_secret *s, const char *issuer, const char *account, mk_buf *out)
{
    if (!s || !issuer || !*issuer || !account || !*account || !out || strchr(issuer, ':') || strchr(account, ':'))
        return MK_EINVAL;
    int rc = mk_buf_append_str(out, "otpauth://totp/");
    if (!rc) rc = pct(out, issuer);
    if (!rc) rc = mk_buf_append_char(out, ':');
    if (!rc) rc = pct(out, account);
    if (!rc) rc = mk_buf_printf(out, "?secret=%s&issuer=", s->base32);
    if (!rc) rc = pct(out, issuer);
    if (!rc) rc = mk_buf_printf(out, "&algorithm=SHA1&digits=%d&period=%d", MK_TOTP_DIGITS, MK_TOTP_STEP_S);
    return rc;
}

int mk_totp_code(const unsigned char *key, size_t keylen, int64_t now_s, char out[MK_TOTP_DIGITS + 1])
{
    if (!key || !keylen || !out || now_s < 0) return MK_EINVAL;
    if (!lib_ready()) return MK_EINTERNAL;
    if (oath_totp_generate((const char *)key, keylen, (time_t)now_s, MK_TOTP_STEP_S, 0, MK_TOTP_DIGITS, out) != OATH_OK)
        return MK_EINTERNAL;
    return 0;
}

int mk_totp_check(const unsigned char *key, size_t keylen, const char *code, int64_t now_s, int64_t last_step,
                  int64_t *step)
{
    if (!key || !keylen || !code || now_s < 0) return MK_EINVAL;
    if (!lib_ready()) return MK_EINTERNAL;
    if (strlen(code) != MK_TOTP_DIGITS) return MK_EUNAUTHORIZED;
    for (const char *p = code; *p; p++)
        if (*p < '0' || *p > '9') return MK_EUNAUTHORIZED;
    int pos = 0;
    uint64_t counter = 0;
    int rc = oath_totp_validate3((const char *)key, keylen, (time_t)now_s, MK_TOTP_STEP_S, 0, MK_TOTP_WINDOW, &pos,
                                 &counter, code);
    if (rc < 0) return MK_EUNAUTHORIZED;
    if ((int64_t)counter <= last_step) return MK_EUNAUTHORIZED; /* replay, or older than the last accepted */
    if (step) *step = (int64_t)counter;
    return 0;
}

/* ---- registry ------------------------------------------------------------------------ */

static const struct mk_store_migration totp_migrations[] = {
    {1,
     "CREATE TABLE totp_users ("
     " username TEXT PRIMARY KEY,"
     " sealed TEXT NOT NULL,"          /* hex(nonce || xchacha20poly1305(secret, ad = username)) */
     " confirmed INTEGER NOT NULL DEFAULT 0,"
     " last_step BIGINT NOT NULL DEFAULT 0,"
     " created_at BIGINT NOT NULL);",
     NULL},
};

struct mk_totp {
    struct mk_store *store;
    unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEALED_BYTES (NONCE_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES + MK_TOTP_SECRET_BYTES)

int mk_totp_open(struct mk_store *store, const char *data_dir, struct mk_totp **out, mk_buf *err)
{
    if (!store || !data_dir || !out) return MK_EINVAL;
    *out = NULL;
    if (!lib_ready()) return MK_EINTERNAL;
    unsigned char secret[MK_AUTH_SECRET_BYTES];
    int rc = mk_auth_secret_load(data_dir, secret, err);
    if (rc == 0) rc = mk_store_migrate(store, "totp", totp_migrations, 1, err);
    if (rc != 0) {
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    struct mk_totp *t = calloc(1, sizeof *t);
    if (!t) {
        sodium_memzero(secret, sizeof secret);
        return MK_ENOMEM;
    }
    t->store = store;
    mk_auth_subkey(secret, 2, "totpseal", t->key);
    sodium_memzero(secret, sizeof secret);
    *out = t;
    return 0;
}

void mk_totp_free(struct mk_totp *t)
{
    if (!t) return;
    sodium_memzero(t->key, sizeof t->key);
    free(t);
}

static bool user_ok(const char *u)
{
    size_t n = u ? strlen(u) : 0;
    if (n == 0 || n >= MK_TOTP_USER_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f) return false;
    return true;
}

struct row {
    unsigned char key[MK_TOTP_SECRET_BYTES];
    bool confirmed;
    int64_t last_step;
};

/* Reads and unseals the user's secret. MK_ENOTFOUND, MK_ECORRUPT (tampered, or a
 * different server secret). The user name is the AEAD's associated data, so a sealed
 * secret copied into another user's row (someone with write access to the database
 * planting a secret they know) does not open. */
static int load_row(struct mk_totp *t, struct mk_store_conn *c, const char *user, struct row *r)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT sealed, confirmed, last_step FROM totp_users WHERE username = ?", &st);
    if (rc != 0) return rc;
    mk_store_bind_cstr(st, 1, user);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        mk_slice hex = mk_store_column_text(st, 0);
        unsigned char sealed[SEALED_BYTES];
        size_t n = 0;
        if (hex.len != 2 * SEALED_BYTES ||
            sodium_hex2bin(sealed, sizeof sealed, hex.ptr, hex.len, NULL, &n, NULL) != 0 || n != SEALED_BYTES ||
            crypto_aead_xchacha20poly1305_ietf_decrypt(r->key, NULL, NULL, sealed + NONCE_BYTES,
                                                       SEALED_BYTES - NONCE_BYTES, (const unsigned char *)user,
                                                       strlen(user), sealed, t->key) != 0)
            rc = MK_ECORRUPT;
        else
            rc = 0;
        r->confirmed = mk_store_column_int64(st, 1) != 0;
        r->last_step = mk_store_column_int64(st, 2);
    } else if (rc == MK_STORE_DONE) {
        rc = MK_ENOTFOUND;
    }
    mk_store_stmt_done(st);
    return rc;
}

int mk_totp_enroll_begin(struct mk_totp *t, struct mk_store_conn *c, const char *user, const char *issuer,
                         mk_buf *out_uri, struct mk_totp_secret *out_secret)
{
    if (!t || !c || !user_ok(user) || !out_uri) return MK_EINVAL;
    struct mk_totp_secret s;
    int rc = mk_totp_generate(&s);
    if (rc == 0) rc = mk_totp_uri(&s, issuer ? issuer : "Mayak", user, out_uri);
    if (rc != 0) return rc;
    unsigned char sealed[SEALED_BYTES];
    randombytes_buf(sealed, NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + NONCE_BYTES, NULL, s.key, sizeof s.key,
                                               (const unsigned char *)user, strlen(user), NULL, sealed, t->key);
    char hex[2 * SEALED_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, sealed, sizeof sealed);
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c,
                          "INSERT INTO totp_users (username, sealed, confirmed, last_step, created_at)"
                          " VALUES (?, ?, 0, 0, ?)"
                          " ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, confirmed = 0,"
                          " last_step = 0, created_at = excluded.created_at",
                          &st);
    if (rc == 0) {
        mk_store_bind_cstr(st, 1, user);
        mk_store_bind_cstr(st, 2, hex);
        mk_store_bind_int64(st, 3, (int64_t)time(NULL) * 1000);
        rc = mk_store_step(st);
        rc = rc == MK_STORE_DONE ? 0 : (rc < 0 ? rc : MK_EIO);
        mk_store_stmt_done(st);
    }
    if (rc == 0 && out_secret) *out_secret = s;
    sodium_memzero(&s, sizeof s);
    return rc;
}

/* Accepts code and atomically records its step: the UPDATE only succeeds when the
 * stored last_step is still below the matched step, so two nodes racing with one code
 * cannot both accept it. */
static int accept_code(struct mk_totp *t, struct mk_store_conn *c, const char *user, const char *code, int64_t now_s,
                       bool confirming)
{
    struct row r;
    int rc = load_row(t, c, user, &r);
    if (rc != 0) return rc;
    if (confirming ? r.confirmed : !r.confirmed) {
        sodium_memzero(&r, sizeof r);
        return confirming ? MK_EINVAL : MK_ENOTFOUND;
    }
    int64_t step = 0;
    rc = mk_totp_check(r.key, sizeof r.key, code, now_s, r.last_step, &step);
    sodium_memzero(&r, sizeof r);
    if (rc != 0) return rc;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c,
                          "UPDATE totp_users SET last_step = ?, confirmed = 1 WHERE username = ? AND last_step < ?",
                          &st);
    if (rc != 0) return rc;
    mk_store_bind_int64(st, 1, step);
    mk_store_bind_cstr(st, 2, user);
    mk_store_bind_int64(st, 3, step);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) return rc < 0 ? rc : MK_EIO;
    return mk_store_changes(c) == 1 ? 0 : MK_EUNAUTHORIZED;
}

int mk_totp_enroll_confirm(struct mk_totp *t, struct mk_store_conn *c, const char *user, const char *code,
                           int64_t now_s)
{
    if (!t || !c || !user_ok(user) || !code) return MK_EINVAL;
    int rc = accept_code(t, c, user, code, now_s, true);
    return rc == MK_EINVAL ? MK_ENOTFOUND : rc; /* already confirmed: nothing pending */
}

int mk_totp_verify(struct mk_totp *t, struct mk_store_conn *c, const char *user, const char *code, int64_t now_s)
{
    if (!t || !c || !user_ok(user) || !code) return MK_EINVAL;
    return accept_code(t, c, user, code, now_s, false);
}

int mk_totp_enrolled(struct mk_totp *t, struct mk_store_conn *c, const char *user, bool *enrolled)
{
    if (!t || !c || !user_ok(user) || !enrolled) return MK_EINVAL;
    struct row r;
    int rc = load_row(t, c, user, &r);
    *enrolled = rc == 0 && r.confirmed;
    sodium_memzero(&r, sizeof r);
    return rc == MK_ENOTFOUND ? 0 : rc;
}

int mk_totp_remove(struct mk_totp *t, struct mk_store_conn *c, const char *user)
{
    if (!t || !c || !user_ok(user)) return MK_EINVAL;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "DELETE FROM totp_users WHERE username = ?", &st);
    if (rc != 0) return rc;
    mk_store_bind_cstr(st, 1, user);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) return rc < 0 ? rc : MK_EIO;
    return mk_store_changes(c) ? 0 : MK_ENOTFOUND;
}
