/*
 * mk_jwt: OIDC/JWT bearer tokens (libjwt) as principals.
 *
 * Accepted: RS256 and ES256 (P-256) tokens signed by a key of the configured JWKS
 * (a file, or an https URL refreshed periodically through mk_http_client; an unknown
 * "kid" triggers an early refresh, at most every 30 s). The algorithm comes from the
 * token header but must be one of those two AND match the key type, so "none", HS256
 * with a public key as the secret and the like are refused before any verification.
 *
 * Checks: signature; exp required; nbf and iat honoured; all with clock_skew_s of
 * slack (default 60 s); iss equal to `issuer`; aud (string or list) containing one of
 * `audiences` (when audiences are configured, which they should be: without them any
 * token of the issuer for any client would be accepted, so mk_jwt_new warns).
 *
 * Mapping (config, not code): the tenant is the first present of tenant_claims (e.g.
 * "tenant,org"), else default_tenant, else the token is refused. The role comes from
 * role_claims (e.g. "role,groups"; a claim may be a string or a list of strings): each
 * value is looked up in role_map ("mayak-admins" -> admin); the HIGHEST mapped role
 * wins. Values that are role names themselves count only with accept_role_names.
 * Nothing mapped -> default_role, or refused (MK_EFORBIDDEN) when that is unset.
 * The principal's id is the "sub" claim.
 *
 * Thread safety: mk_jwt_verify may run on any thread; the key set is swapped
 * atomically by refreshes.
 */
#ifndef MK_JWT_H
#define MK_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "auth/mk_auth.h"
#include "core/mk_buf.h"
#include "net/mk_http_client.h"

/* Tokens are headers: 16 KB is beyond any real one and bounds the work. */
#define MK_JWT_MAX_TOKEN_BYTES 16384
/* A JWKS with more keys than this is not a real IdP's. */
#define MK_JWT_MAX_KEYS 64
#define MK_JWT_MAX_JWKS_BYTES (1024 * 1024)

struct mk_jwt;

struct mk_jwt_role_map {
    const char *value;       /* claim value, e.g. "mayak-admins" */
    enum mk_role role;
};

struct mk_jwt_options {
    const char *issuer;                 /* required: exact "iss" */
    const char *const *audiences;       /* any one must be in "aud" */
    size_t naudiences;
    const char *jwks_file;              /* one of jwks_file / jwks_url */
    const char *jwks_url;
    const char *jwks_ca_file;           /* CA bundle for the URL; NULL = system */
    uint32_t jwks_refresh_ms;           /* default 600000 (10 min) */
    int64_t clock_skew_s;               /* default 60; < 0 means 0 */
    const char *tenant_claims;          /* default "tenant" */
    const char *default_tenant;         /* NULL: a token without a tenant claim is refused */
    const char *role_claims;            /* default "role" */
    const struct mk_jwt_role_map *role_map;
    size_t nrole_map;
    bool accept_role_names;             /* a claim value "admin" means admin */
    int default_role;                   /* -1: no mapped role -> refused; else an mk_role */
    /* Unix seconds; NULL = real time (tests). */
    int64_t (*clock_s)(void *arg);
    void *clock_arg;
};

/* Copies every option. Loads jwks_file now when given (MK_EIO / MK_EINVAL with err).
 * With a jwks_url the key set starts empty until mk_jwt_start_refresh fetches it.
 * MK_EINVAL (with err) for bad options: no issuer, neither or both JWKS sources. */
int mk_jwt_new(const struct mk_jwt_options *opt, struct mk_jwt **out, mk_buf *err);
/* Stops refreshing (see mk_jwt_stop_refresh) and frees. Accepts NULL. */
void mk_jwt_free(struct mk_jwt *j);

/* Replaces the key set with a JWKS document. Keys that are not RSA (n, e) or EC P-256
 * (x, y), or whose "use" is not "sig", are skipped. 0 with the new set; MK_EBADJSON /
 * MK_EINVAL (no usable key) with err, leaving the old set in place. */
int mk_jwt_set_jwks(struct mk_jwt *j, const char *json, size_t len, mk_buf *err);
/* Usable keys in the current set. */
size_t mk_jwt_key_count(const struct mk_jwt *j);

/* Verifies a token and maps it to a principal. 0; MK_EUNAUTHORIZED (malformed, bad
 * signature, unknown key, expired, wrong issuer or audience); MK_EFORBIDDEN (valid but
 * no role maps). why (may be NULL) gets a short reason for logs; never show it to the
 * caller beyond "invalid token". */
int mk_jwt_verify(struct mk_jwt *j, const char *token, size_t len, struct mk_principal *out, mk_buf *why);

/* Starts the periodic refresh on `loop`: the URL through `http` (not owned; must
 * outlive the refresher), or the file when its modification time changes. The first
 * fetch of a URL starts at once. 0, MK_EINVAL (already started), MK_ENOMEM. */
int mk_jwt_start_refresh(struct mk_jwt *j, uv_loop_t *loop, mk_http_client *http);
/* Stops it; the timer handle closes on the loop (run it afterwards). Accepts NULL. */
void mk_jwt_stop_refresh(struct mk_jwt *j);

/* Counters (tests, metrics). */
struct mk_jwt_stats {
    uint64_t verified, rejected, refreshes, refresh_errors;
};
void mk_jwt_get_stats(const struct mk_jwt *j, struct mk_jwt_stats *out);

#endif
