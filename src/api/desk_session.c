/*
 * desk_session: console sessions of operators and admins, valid on every node.
 *
 * After a login (API key + TOTP) the console holds a session token for 12 hours. Behind
 * a load balancer its next request, or its WebSocket, may reach another node, so a
 * token carries its own proof instead of pointing into one process's memory:
 *
 *     ds1.<base64url(payload JSON)>.<base64url(MAC)>
 *
 * The payload is the principal (kind, id, tenant, role, model groups, limits, key
 * expiry) and the session's expiry; the MAC is libsodium's crypto_auth
 * (HMAC-SHA-512-256) under a subkey of the server secret (<data_dir>/auth.secret),
 * which every node of a deployment shares anyway (the API keys' hashes need it). Any
 * node checks a token without asking anyone.
 *
 * Logging out revokes: the token's MAC goes on a deny list until the token would have
 * expired, here and (desk_relay.c) on the other nodes. The list is bounded; when it is
 * full the entry closest to its expiry makes room. A node that was down during a
 * logout does not learn of it: the token then lives to its expiry there, 12 hours at
 * most — the price of needing no shared session store.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mk_roles.h"
#include "core/mk_error.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "desk_int.h"

#define TOKEN_PREFIX "ds1."
/* The payload of the largest principal, as base64, stays well below this. */
#define MAX_PAYLOAD_JSON 1024

int desk_session_init(struct desk_svc *svc, const char *data_dir, mk_buf *err)
{
    unsigned char secret[MK_AUTH_SECRET_BYTES];
    int rc = mk_auth_secret_load(data_dir, secret, err);
    if (rc) return rc;
    mk_auth_subkey(secret, 1, "desksess", svc->session_key);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

static void revoked_prune(struct desk_svc *svc, int64_t now)
{
    struct desk_session **pp = &svc->sessions;
    while (*pp) {
        struct desk_session *s = *pp;
        if (s->expires_ms <= now) {
            *pp = s->next;
            free(s);
            svc->nsessions--;
        } else {
            pp = &s->next;
        }
    }
}

void desk_sessions_expire(struct desk_svc *svc) { revoked_prune(svc, mk_wall_ms()); }

void desk_sessions_free(struct desk_svc *svc)
{
    while (svc->sessions) {
        struct desk_session *s = svc->sessions;
        svc->sessions = s->next;
        free(s);
    }
    svc->nsessions = 0;
}

static bool is_revoked(const struct desk_svc *svc, const unsigned char mac[crypto_auth_BYTES])
{
    for (const struct desk_session *s = svc->sessions; s; s = s->next)
        if (sodium_memcmp(s->mac, mac, crypto_auth_BYTES) == 0) return true;
    return false;
}

void desk_session_revoke_mac(struct desk_svc *svc, const unsigned char mac[crypto_auth_BYTES], int64_t expires_ms)
{
    int64_t now = mk_wall_ms();
    if (expires_ms <= now || is_revoked(svc, mac)) return;
    revoked_prune(svc, now);
    if (svc->nsessions >= DESK_MAX_SESSIONS) { /* make room: the entry expiring first */
        struct desk_session **victim = &svc->sessions;
        for (struct desk_session **pp = &svc->sessions; *pp; pp = &(*pp)->next)
            if ((*pp)->expires_ms < (*victim)->expires_ms) victim = pp;
        struct desk_session *s = *victim;
        *victim = s->next;
        free(s);
        svc->nsessions--;
    }
    struct desk_session *s = calloc(1, sizeof *s);
    if (!s) return; /* the token lives to its expiry; nothing else to do without memory */
    memcpy(s->mac, mac, crypto_auth_BYTES);
    s->expires_ms = expires_ms;
    s->next = svc->sessions;
    svc->sessions = s;
    svc->nsessions++;
}

int desk_session_new(struct desk_svc *svc, const struct mk_principal *who, mk_buf *token_out)
{
    json_object *p = json_object_new_object();
    if (!p) return MK_ENOMEM;
    unsigned char nonce[12];
    char nonce_b64[sodium_base64_ENCODED_LEN(sizeof nonce, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    mk_rand_bytes(nonce, sizeof nonce);
    sodium_bin2base64(nonce_b64, sizeof nonce_b64, nonce, sizeof nonce, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    json_object_object_add(p, "k", json_object_new_int(who->kind));
    json_object_object_add(p, "i", json_object_new_string(who->id));
    json_object_object_add(p, "t", json_object_new_string(who->tenant));
    json_object_object_add(p, "r", json_object_new_string(mk_role_name(who->role)));
    json_object_object_add(p, "m", json_object_new_string(who->models));
    json_object_object_add(p, "rpm", json_object_new_int64(who->rpm));
    json_object_object_add(p, "tpm", json_object_new_int64(who->tpm));
    json_object_object_add(p, "bd", json_object_new_double(who->budget_day));
    json_object_object_add(p, "bm", json_object_new_double(who->budget_month));
    json_object_object_add(p, "kx", json_object_new_int64(who->expires_at_ms));
    json_object_object_add(p, "x", json_object_new_int64(mk_wall_ms() + DESK_SESSION_TTL_MS));
    json_object_object_add(p, "n", json_object_new_string(nonce_b64));
    size_t len;
    const char *js = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
    int rc = 0;
    if (!js || len > MAX_PAYLOAD_JSON) rc = MK_ENOMEM;
    char body[sodium_base64_ENCODED_LEN(MAX_PAYLOAD_JSON, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    unsigned char mac[crypto_auth_BYTES];
    char mac_b64[sodium_base64_ENCODED_LEN(crypto_auth_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    if (rc == 0) {
        sodium_bin2base64(body, sizeof body, (const unsigned char *)js, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        crypto_auth(mac, (const unsigned char *)body, strlen(body), svc->session_key);
        sodium_bin2base64(mac_b64, sizeof mac_b64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        mk_buf_reset(token_out);
        rc = mk_buf_printf(token_out, TOKEN_PREFIX "%s.%s", body, mac_b64);
    }
    json_object_put(p);
    return rc;
}

/* Splits a token into its signed part and its MAC; false when it is not shaped like one. */
static bool split(const char *token, size_t *body_len, unsigned char mac[crypto_auth_BYTES])
{
    size_t n = strlen(token);
    const size_t prefix = sizeof TOKEN_PREFIX - 1;
    if (n <= prefix || n > DESK_SESSION_TOKEN_MAX || strncmp(token, TOKEN_PREFIX, prefix) != 0) return false;
    const char *dot = strrchr(token, '.');
    if (!dot || dot < token + prefix + 1) return false;
    size_t mac_len = 0;
    if (sodium_base642bin(mac, crypto_auth_BYTES, dot + 1, strlen(dot + 1), NULL, &mac_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        mac_len != crypto_auth_BYTES)
        return false;
    *body_len = (size_t)(dot - token) - prefix;
    return true;
}

static const char *jstr(json_object *o, const char *key, size_t max)
{
    const char *s = desk_jstr(o, key);
    return s && strlen(s) < max ? s : NULL;
}

static bool jint(json_object *o, const char *key, int64_t *out)
{
    json_object *v = json_object_object_get(o, key);
    if (!v || !json_object_is_type(v, json_type_int)) return false;
    *out = json_object_get_int64(v);
    return true;
}

static bool jnum(json_object *o, const char *key, double *out)
{
    json_object *v = json_object_object_get(o, key);
    if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) return false;
    *out = json_object_get_double(v);
    return true;
}

bool desk_session_find(struct desk_svc *svc, const char *token, struct mk_principal *out)
{
    if (!token) return false;
    size_t body_len;
    unsigned char mac[crypto_auth_BYTES];
    if (!split(token, &body_len, mac)) return false;
    const char *body = token + sizeof TOKEN_PREFIX - 1;
    if (crypto_auth_verify(mac, (const unsigned char *)body, body_len, svc->session_key) != 0) return false;
    if (is_revoked(svc, mac)) return false;
    /* Signed by a node of ours: the payload is well formed unless the format changed. */
    char js[MAX_PAYLOAD_JSON + 1];
    size_t js_len = 0;
    if (sodium_base642bin((unsigned char *)js, MAX_PAYLOAD_JSON, body, body_len, NULL, &js_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    js[js_len] = '\0';
    json_object *p = json_tokener_parse(js);
    struct mk_principal who;
    memset(&who, 0, sizeof who);
    const char *id = jstr(p, "i", sizeof who.id), *tenant = jstr(p, "t", sizeof who.tenant);
    const char *role = jstr(p, "r", 32), *models = jstr(p, "m", sizeof who.models);
    int64_t kind = 0, rpm = 0, tpm = 0, key_expiry = 0, expiry = 0;
    bool ok = p && id && tenant && role && models && jint(p, "k", &kind) && jint(p, "rpm", &rpm) &&
              jint(p, "tpm", &tpm) && jint(p, "kx", &key_expiry) && jint(p, "x", &expiry) &&
              jnum(p, "bd", &who.budget_day) && jnum(p, "bm", &who.budget_month) && mk_role_parse(role) >= 0 &&
              kind >= MK_PRINCIPAL_ANONYMOUS && kind <= MK_PRINCIPAL_JWT && rpm >= 0 && rpm <= UINT32_MAX &&
              tpm >= 0 && tpm <= UINT32_MAX;
    int64_t now = mk_wall_ms();
    if (ok && (expiry <= now || (key_expiry > 0 && key_expiry <= now))) ok = false;
    if (ok) {
        who.kind = (enum mk_principal_kind)kind;
        snprintf(who.id, sizeof who.id, "%s", id);
        snprintf(who.tenant, sizeof who.tenant, "%s", tenant);
        who.role = (enum mk_role)mk_role_parse(role);
        snprintf(who.models, sizeof who.models, "%s", models);
        who.rpm = (uint32_t)rpm;
        who.tpm = (uint32_t)tpm;
        who.expires_at_ms = key_expiry;
        *out = who;
    }
    json_object_put(p);
    return ok;
}

void desk_session_end(struct desk_svc *svc, const char *token)
{
    struct mk_principal who;
    if (!token || !desk_session_find(svc, token, &who)) return;
    size_t body_len;
    unsigned char mac[crypto_auth_BYTES];
    if (!split(token, &body_len, mac)) return;
    /* Kept on the list as long as the token could still be used. */
    int64_t until = mk_wall_ms() + DESK_SESSION_TTL_MS;
    desk_session_revoke_mac(svc, mac, until);
    desk_live_session_end(svc, mac, until);
}
