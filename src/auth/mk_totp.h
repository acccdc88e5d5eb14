/*
 * mk_totp: TOTP second factor (RFC 6238 via liboath) for operator and admin logins to
 * the web console (mk_role_console_needs_totp).
 *
 * Two layers:
 *  - Pure functions: generate a secret and its otpauth:// URI; verify a code against a
 *    secret with a window of +-1 step (30 s steps, 6 digits, HMAC-SHA1: what every
 *    authenticator app does) and REPLAY protection: a code is accepted only for a step
 *    later than the last accepted one, so a code seen over a shoulder or in a log
 *    cannot be used again, not even within its 90 s window.
 *  - A store-backed registry (migrations module "totp", table totp_users): secrets
 *    sealed with XChaCha20-Poly1305 (libsodium AEAD, the user name as associated data)
 *    under a subkey of the server secret, and the last accepted step kept in the database and advanced with a
 *    conditional UPDATE, so replay protection holds across nodes and restarts.
 *    Enrolment is two-phase: begin (pending) then confirm with a first valid code.
 *
 * Registry calls are BLOCKING (store): run them on a worker (mk_store_submit).
 */
#ifndef MK_TOTP_H
#define MK_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "store/mk_store.h"

#define MK_TOTP_SECRET_BYTES 20  /* 160 bits, RFC 4226's recommendation */
#define MK_TOTP_STEP_S 30
#define MK_TOTP_DIGITS 6
#define MK_TOTP_WINDOW 1         /* steps accepted either side of now */
#define MK_TOTP_USER_MAX 128

struct mk_totp_secret {
    unsigned char key[MK_TOTP_SECRET_BYTES];
    char base32[40];             /* unpadded RFC 4648 base32, what apps accept */
};

/* A fresh random secret. 0 or MK_EINTERNAL. */
int mk_totp_generate(struct mk_totp_secret *out);
/* otpauth://totp/<issuer>:<account>?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded. 0, MK_EINVAL, MK_ENOMEM/MK_ETOOBIG. */
int mk_totp_uri(const struct mk_totp_secret *s, const char *issuer, const char *account, mk_buf *out);
/* The code for a time (tests, tools). out gets 6 digits + NUL. */
int mk_totp_code(const unsigned char *key, size_t keylen, int64_t now_s, char out[MK_TOTP_DIGITS + 1]);
/* Checks `code` at now_s within the window. last_step: the last accepted step (0 =
 * none); a match at or before it is a replay. 0 and *step (the matched step) or
 * MK_EUNAUTHORIZED (wrong, malformed or replayed). */
int mk_totp_check(const unsigned char *key, size_t keylen, const char *code, int64_t now_s, int64_t last_step,
                  int64_t *step);

/* ---- registry -------------------------------------------------------------------------- */

struct mk_totp;

/* Runs the "totp" migrations; the secret comes from data_dir (mk_auth_secret_load).
 * store is not owned. */
int mk_totp_open(struct mk_store *store, const char *data_dir, struct mk_totp **out, mk_buf *err);
void mk_totp_free(struct mk_totp *t);

/* Starts (or restarts, replacing an unconfirmed or confirmed secret) enrolment of
 * `user`: a new secret, stored sealed and pending. out_uri gets the otpauth URI to show
 * as a QR code, out_secret (may be NULL) the base32 secret for typing. */
int mk_totp_enroll_begin(struct mk_totp *t, struct mk_store_conn *c, const char *user, const char *issuer,
                         mk_buf *out_uri, struct mk_totp_secret *out_secret);
/* Confirms a pending enrolment with a valid code. MK_ENOTFOUND (no enrolment),
 * MK_EUNAUTHORIZED (wrong code). */
int mk_totp_enroll_confirm(struct mk_totp *t, struct mk_store_conn *c, const char *user, const char *code,
                           int64_t now_s);
/* The login check: confirmed enrolment, valid code, not replayed (atomically, across
 * nodes). 0, MK_ENOTFOUND (user not enrolled), MK_EUNAUTHORIZED. */
int mk_totp_verify(struct mk_totp *t, struct mk_store_conn *c, const char *user, const char *code, int64_t now_s);
/* True when the user has a confirmed enrolment. */
int mk_totp_enrolled(struct mk_totp *t, struct mk_store_conn *c, const char *user, bool *enrolled);
/* Removes the enrolment (an admin reset). MK_ENOTFOUND when none. */
int mk_totp_remove(struct mk_totp *t, struct mk_store_conn *c, const char *user);

#endif
