/*
 * mk_auth: who is calling. The principal every request carries after the auth filter
 * (from an API key, an OIDC/JWT bearer token, or an anonymous loopback call), the
 * default policy deciding when credentials are required, and the server secret the
 * keyed hashes and encrypted TOTP secrets are derived from.
 *
 * Default policy (docs/AUTH.md):
 *  - `auth: {required: true}` -> every request needs a key or token.
 *  - `required` unset -> required whenever Mayak listens on anything but loopback
 *    (0.0.0.0, ::, a LAN address, a host name other than localhost).
 *  - Otherwise (the embedded default on 127.0.0.1) a call WITHOUT credentials from a
 *    loopback peer is accepted as principal "local" of tenant "local" with role
 *    DEVELOPER: it can chat, embed, list models, read usage and manage the knowledge
 *    base like a desktop tool, but admin APIs (keys, audit, config) still need an
 *    admin key, unless the operator opts in with `auth: {local_admin: true}`. Why not
 *    admin by default: any local process (a browser page via DNS rebinding, another
 *    user's program on a shared host) can reach loopback; it should not mint keys or
 *    read the audit log without saying so. Presented credentials are always checked,
 *    even on loopback (a bad key is an error, not a fallback to anonymous).
 *  - A reverse proxy on the same host makes remote callers look local: behind one,
 *    set `auth: {required: true}`.
 */
#ifndef MK_AUTH_H
#define MK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/mk_roles.h"
#include "core/mk_buf.h"

enum mk_principal_kind {
    MK_PRINCIPAL_ANONYMOUS = 0, /* loopback call without credentials (policy above) */
    MK_PRINCIPAL_KEY,           /* an API key */
    MK_PRINCIPAL_JWT,           /* an OIDC/JWT bearer token */
};

#define MK_AUTH_MAX_ID 128          /* key id, or a token's subject (longer ones are refused) */
#define MK_AUTH_MAX_TENANT 64       /* tenant names: [A-Za-z0-9._-] for keys */
#define MK_AUTH_MAX_MODELS 1024     /* comma-separated allowed model groups */

/* A plain value (no pointers): copy it into the request context freely. */
struct mk_principal {
    enum mk_principal_kind kind;
    char id[MK_AUTH_MAX_ID];
    char tenant[MK_AUTH_MAX_TENANT];
    enum mk_role role;
    char models[MK_AUTH_MAX_MODELS]; /* "" = every model group */
    uint32_t rpm, tpm;               /* 0 = the role's default */
    double budget_day, budget_month; /* currency units; 0 = no budget */
    int64_t expires_at_ms;           /* 0 = never (Unix ms) */
};

/* True when the principal may use model group `group` (its list is empty or names it
 * exactly). */
bool mk_principal_allows_model(const struct mk_principal *p, const char *group);
/* True when role and permission allow (see mk_roles.h). */
static inline bool mk_principal_can(const struct mk_principal *p, enum mk_perm perm)
{
    return p && mk_role_can(p->role, perm);
}

/* True for "127.0.0.1" (any 127/8), "::1", "localhost" and "[::1]". */
bool mk_host_is_loopback(const char *host);

/* The auth settings the policy needs (from the config's auth: section). */
struct mk_auth_policy {
    int required;     /* -1 = not set (default), 0 = false, 1 = true */
    bool local_admin; /* anonymous loopback callers get admin instead of developer */
};

/* Whether a request must present a key or token, given where Mayak listens. */
bool mk_auth_credentials_required(const struct mk_auth_policy *pol, const char *listen_host);

/* The principal for a request WITHOUT credentials: 0 and *out filled when the policy
 * allows it (credentials not required and the peer address is loopback), else
 * MK_EUNAUTHORIZED. peer_ip is the connection's numeric peer address. */
int mk_auth_anonymous(const struct mk_auth_policy *pol, const char *listen_host, const char *peer_ip,
                      struct mk_principal *out);

/* Extracts the credential from an Authorization header value: "Bearer <x>" (case-
 * insensitive scheme, surrounding spaces trimmed). Returns 0 and the slice (pointing
 * into `header`), MK_ENOTFOUND when the header is empty, MK_EUNAUTHORIZED when the
 * scheme is not Bearer or the credential is empty or has spaces/control bytes. */
int mk_auth_bearer(mk_slice header, mk_slice *out);
/* True when a bearer credential looks like an API key ("mk-"), else treat it as a JWT. */
bool mk_auth_is_api_key(mk_slice cred);

/* ---- server secret ------------------------------------------------------------------- */

#define MK_AUTH_SECRET_BYTES 32
#define MK_AUTH_SECRET_FILE "auth.secret"

/* Loads <data_dir>/auth.secret, creating it on first use: 32 random bytes, mode 0600,
 * written to a temporary file and linked into place so concurrent first starts agree
 * on one secret. data_dir itself is created (0700) if missing. Refuses a secret file
 * that others can read or write (MK_ECONFIG) or of the wrong size (MK_ECORRUPT).
 * Losing this file invalidates every API key and TOTP enrolment: back it up with the
 * database. MK_EIO with a sentence in err otherwise. */
int mk_auth_secret_load(const char *data_dir, unsigned char out[MK_AUTH_SECRET_BYTES], mk_buf *err);

/* Derives a 32-byte subkey for one purpose (libsodium crypto_kdf; context is 8 chars,
 * e.g. "apikeys_", "totpseal"). */
void mk_auth_subkey(const unsigned char secret[MK_AUTH_SECRET_BYTES], uint64_t id, const char context[8],
                    unsigned char out[32]);

#endif
