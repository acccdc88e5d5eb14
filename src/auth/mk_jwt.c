/*
 * mk_jwt: JWT verification against a JWKS. libjwt (1.10 in Debian 12) verifies with a
 * PEM key and has no JWKS support, so this file turns each JWK into a PEM
 * SubjectPublicKeyInfo itself (a few lines of DER), picks the key by "kid" and
 * algorithm, lets libjwt check the signature, and checks the claims with json-c.
 */
#include <errno.h>
#include <json-c/json.h>
#include <jwt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "auth/mk_jwt.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"

#define KID_MAX 128
#define EARLY_REFRESH_MIN_MS 30000
#define TICK_MS 1000

enum kalg { K_RS256 = 0, K_ES256 };

struct jwk {
    char kid[KID_MAX];
    enum kalg alg;
    char *pem;
    size_t pemlen;
};

struct keyset {
    atomic_int refs;
    struct jwk *keys;
    size_t n;
};

struct refresher {
    struct mk_jwt *j;
    uv_timer_t timer;
    mk_http_client *http;
    mk_http_call *call;
    uint64_t last_fetch_ms;
    bool fetched_once;
    struct timespec file_mtime;
};

struct mk_jwt {
    char *issuer;
    char **aud;
    size_t naud;
    char *jwks_file, *jwks_url, *jwks_ca;
    uint32_t refresh_ms;
    int64_t skew;
    char **tenant_claims;
    size_t ntenant_claims;
    char *default_tenant;
    char **role_claims;
    size_t nrole_claims;
    struct mk_jwt_role_map *role_map; /* values owned */
    size_t nrole_map;
    bool accept_role_names;
    int default_role;
    int64_t (*clock_s)(void *);
    void *clock_arg;

    pthread_mutex_t mu;               /* guards `set` (the pointer swap) */
    struct keyset *set;
    atomic_bool want_refresh;         /* an unknown kid was seen */
    struct refresher *ref;
    atomic_uint_least64_t verified, rejected, refreshes, refresh_errors;
};

/* ---- small helpers ------------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Splits "a,b , c" into trimmed, non-empty names. */
static int split_list(const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!s) return 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && t[-1] == ' ') t--;
        if (t > p) {
            char **nv = realloc(*out, (*n + 1) * sizeof *nv);
            if (!nv) return MK_ENOMEM;
            *out = nv;
            (*out)[*n] = strndup(p, (size_t)(t - p));
            if (!(*out)[*n]) return MK_ENOMEM;
            (*n)++;
        }
        p = e;
    }
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void keyset_unref(struct keyset *ks)
{
    if (!ks || atomic_fetch_sub(&ks->refs, 1) != 1) return;
    for (size_t i = 0; i < ks->n; i++) free(ks->keys[i].pem);
    free(ks->keys);
    free(ks);
}

static struct keyset *keyset_get(struct mk_jwt *j)
{
    pthread_mutex_lock(&j->mu);
    struct keyset *ks = j->set;
    if (ks) atomic_fetch_add(&ks->refs, 1);
    pthread_mutex_unlock(&j->mu);
    return ks;
}

static int64_t now_s(const struct mk_jwt *j) { return j->clock_s ? j->clock_s(j->clock_arg) : (int64_t)time(NULL); }

/* base64url (padding optional) -> bytes. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
    while (len > 0 && in[len - 1] == '=') len--;
    const char *end;
    if (sodium_base642bin(out, cap, in, len, NULL, outlen, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != in + len)
        return MK_EINVAL;
    return 0;
}

/* ---- JWK -> PEM ---------------------------------------------------------------------- */

struct der {
    unsigned char *p;
    size_t len, cap;
    bool bad;
};

static void der_put(struct der *d, const void *src, size_t n)
{
    if (d->bad) return;
    if (d->len + n > d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 256;
        while (nc < d->len + n) nc *= 2;
        unsigned char *np = realloc(d->p, nc);
        if (!np) {
            d->bad = true;
            return;
        }
        d->p = np;
        d->cap = nc;
    }
    memcpy(d->p + d->len, src, n);
    d->len += n;
}

static void der_hdr(struct der *d, unsigned char tag, size_t len)
{
    unsigned char h[6];
    size_t n = 0;
    h[n++] = tag;
    if (len < 0x80) {
        h[n++] = (unsigned char)len;
    } else if (len < 0x100) {
        h[n++] = 0x81;
        h[n++] = (unsigned char)len;
    } else if (len < 0x10000) {
        h[n++] = 0x82;
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    } else {
        h[n++] = 0x83;
        h[n++] = (unsigned char)(len >> 16);
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    }
    der_put(d, h, n);
}

/* Unsigned big-endian integer as DER INTEGER into d. */
static void der_uint(struct der *d, const unsigned char *v, size_t n)
{
    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }
    bool pad = n > 0 && (v[0] & 0x80);
    der_hdr(d, 0x02, n + pad);
    if (pad) der_put(d, "", 1);
    der_put(d, v, n);
}

static int pem_of_der(const unsigned char *der, size_t len, char **pem, size_t *pemlen)
{
    size_t b64len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64len);
    if (!b64) return MK_ENOMEM;
    sodium_bin2base64(b64, b64len, der, len, sodium_base64_VARIANT_ORIGINAL);
    size_t blen = strlen(b64);
    size_t cap = blen + blen / 64 + 80;
    char *out = malloc(cap);
    if (!out) {
        free(b64);
        return MK_ENOMEM;
    }
    size_t o = (size_t)snprintf(out, cap, "-----BEGIN PUBLIC KEY-----\n");
    for (size_t i = 0; i < blen; i += 64) {
        size_t n = blen - i < 64 ? blen - i : 64;
        memcpy(out + o, b64 + i, n);
        o += n;
        out[o++] = '\n';
    }
    o += (size_t)snprintf(out + o, cap - o, "-----END PUBLIC KEY-----\n");
    free(b64);
    *pem = out;
    *pemlen = o;
    return 0;
}

static const char *jstr(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                            : NULL;
}

/* One JWK -> key; MK_EINVAL when it is not a usable signing key. */
static int jwk_parse(struct json_object *o, struct jwk *k)
{
    memset(k, 0, sizeof *k);
    const char *kty = jstr(o, "kty"), *use = jstr(o, "use"), *alg = jstr(o, "alg"), *kid = jstr(o, "kid");
    if (!kty || (use && strcmp(use, "sig") != 0)) return MK_EINVAL;
    if (kid) {
        if (strlen(kid) >= KID_MAX) return MK_EINVAL;
        snprintf(k->kid, sizeof k->kid, "%s", kid);
    }
    struct der d = {0};
    int rc = MK_EINVAL;
    if (strcmp(kty, "RSA") == 0) {
        if (alg && strcmp(alg, "RS256") != 0) return MK_EINVAL;
        const char *n64 = jstr(o, "n"), *e64 = jstr(o, "e");
        unsigned char n[1024], e[16];
        size_t nl, el;
        if (!n64 || !e64 || b64url_decode(n64, strlen(n64), n, sizeof n, &nl) ||
            b64url_decode(e64, strlen(e64), e, sizeof e, &el) || nl < 256 || el == 0)
            return MK_EINVAL; /* RSA under 2048 bits is refused */
        struct der rsa = {0}, bits = {0}, body = {0};
        der_uint(&body, n, nl);
        der_uint(&body, e, el);
        der_hdr(&rsa, 0x30, body.len);
        der_put(&rsa, body.p, body.len);
        static const unsigned char algid[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                              0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
        der_put(&bits, algid, sizeof algid);
        der_hdr(&bits, 0x03, rsa.len + 1);
        der_put(&bits, "", 1);
        der_put(&bits, rsa.p, rsa.len);
        der_hdr(&d, 0x30, bits.len);
        der_put(&d, bits.p, bits.len);
        bool bad = rsa.bad || bits.bad || body.bad || d.bad;
        free(rsa.p);
        free(bits.p);
        free(body.p);
        k->alg = K_RS256;
        rc = bad ? MK_ENOMEM : pem_of_der(d.p, d.len, &k->pem, &k->pemlen);
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = jstr(o, "crv"), *x64 = jstr(o, "x"), *y64 = jstr(o, "y");
        if (!crv || strcmp(crv, "P-256") != 0 || (alg && strcmp(alg, "ES256") != 0)) return MK_EINVAL;
        unsigned char x[64], y[64];
        size_t xl, yl;
        if (!x64 || !y64 || b64url_decode(x64, strlen(x64), x, sizeof x, &xl) ||
            b64url_decode(y64, strlen(y64), y, sizeof y, &yl) || xl != 32 || yl != 32)
            return MK_EINVAL;
        static const unsigned char prefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                               0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
                                               0x07, 0x03, 0x42, 0x00, 0x04};
        der_put(&d, prefix, sizeof prefix);
        der_put(&d, x, 32);
        der_put(&d, y, 32);
        k->alg = K_ES256;
        rc = d.bad ? MK_ENOMEM : pem_of_der(d.p, d.len, &k->pem, &k->pemlen);
    }
    free(d.p);
    return rc;
}

int mk_jwt_set_jwks(struct mk_jwt *j, const char *json, size_t len, mk_buf *err)
{
    if (!j || !json) return MK_EINVAL;
    if (len > MK_JWT_MAX_JWKS_BYTES) {
        if (err) mk_buf_printf(err, "JWKS larger than %d bytes", MK_JWT_MAX_JWKS_BYTES);
        return MK_ETOOBIG;
    }
    struct json_tokener *tok = json_tokener_new_ex(16);
    if (!tok) return MK_ENOMEM;
    struct json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    bool complete = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    struct json_object *keys;
    if (!root || !complete || !json_object_object_get_ex(root, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        json_object_put(root);
        if (err) mk_buf_printf(err, "JWKS is not a JSON object with a \"keys\" list");
        return MK_EBADJSON;
    }
    struct keyset *ks = calloc(1, sizeof *ks);
    size_t total = json_object_array_length(keys);
    size_t cap = total < MK_JWT_MAX_KEYS ? total : MK_JWT_MAX_KEYS;
    if (!ks || (cap && !(ks->keys = calloc(cap, sizeof *ks->keys)))) {
        free(ks);
        json_object_put(root);
        return MK_ENOMEM;
    }
    atomic_init(&ks->refs, 1);
    for (size_t i = 0; i < total && ks->n < cap; i++) {
        struct json_object *o = json_object_array_get_idx(keys, i);
        if (o && json_object_is_type(o, json_type_object) && jwk_parse(o, &ks->keys[ks->n]) == 0) ks->n++;
    }
    json_object_put(root);
    if (ks->n == 0) {
        keyset_unref(ks);
        if (err) mk_buf_printf(err, "JWKS holds no usable RS256 (RSA >= 2048) or ES256 (P-256) signing key");
        return MK_EINVAL;
    }
    pthread_mutex_lock(&j->mu);
    struct keyset *old = j->set;
    j->set = ks;
    pthread_mutex_unlock(&j->mu);
    keyset_unref(old);
    return 0;
}

size_t mk_jwt_key_count(const struct mk_jwt *j)
{
    if (!j) return 0;
    struct keyset *ks = keyset_get((struct mk_jwt *)j);
    size_t n = ks ? ks->n : 0;
    keyset_unref(ks);
    return n;
}

static int load_file(struct mk_jwt *j, mk_buf *err, struct timespec *mtime)
{
    FILE *f = fopen(j->jwks_file, "rb");
    if (!f) {
        if (err) mk_buf_printf(err, "cannot open JWKS file %s: %s", j->jwks_file, strerror(errno));
        return MK_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && mtime) *mtime = st.st_mtim;
    mk_buf b = MK_BUF_INIT;
    b.max = MK_JWT_MAX_JWKS_BYTES + 1;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = mk_buf_append(&b, chunk, n);
    fclose(f);
    if (rc == 0) rc = mk_jwt_set_jwks(j, b.data ? b.data : "", b.len, err);
    else if (err) mk_buf_printf(err, "JWKS file %s is too large", j->jwks_file);
    mk_buf_release(&b);
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int mk_jwt_new(const struct mk_jwt_options *o, struct mk_jwt **out, mk_buf *err)
{
    if (!o || !out) return MK_EINVAL;
    *out = NULL;
    const char *bad = NULL;
    if (!o->issuer || !*o->issuer)
        bad = "jwt: issuer is required";
    else if (!!o->jwks_file == !!o->jwks_url)
        bad = "jwt: give exactly one of jwks_file and jwks_url";
    else if (o->default_role >= MK_ROLE_COUNT)
        bad = "jwt: default_role is not a role";
    if (bad) {
        if (err) mk_buf_append_str(err, bad);
        return MK_EINVAL;
    }
    for (size_t i = 0; i < o->nrole_map; i++)
        if (!o->role_map || !o->role_map[i].value || (unsigned)o->role_map[i].role >= MK_ROLE_COUNT) {
            if (err) mk_buf_append_str(err, "jwt: role_map entries need a value and a role");
            return MK_EINVAL;
        }
    if (sodium_init() < 0) return MK_EINTERNAL;
    struct mk_jwt *j = calloc(1, sizeof *j);
    if (!j) return MK_ENOMEM;
    pthread_mutex_init(&j->mu, NULL);
    int rc = 0;
    j->issuer = strdup(o->issuer);
    j->jwks_file = dup_or_null(o->jwks_file);
    j->jwks_url = dup_or_null(o->jwks_url);
    j->jwks_ca = dup_or_null(o->jwks_ca_file);
    j->default_tenant = dup_or_null(o->default_tenant);
    j->refresh_ms = o->jwks_refresh_ms ? o->jwks_refresh_ms : 600000;
    j->skew = o->clock_skew_s == 0 ? 60 : (o->clock_skew_s < 0 ? 0 : o->clock_skew_s);
    j->accept_role_names = o->accept_role_names;
    j->default_role = o->default_role;
    j->clock_s = o->clock_s;
    j->clock_arg = o->clock_arg;
    if (!j->issuer) rc = MK_ENOMEM;
    if (rc == 0) rc = split_list(o->tenant_claims ? o->tenant_claims : "tenant", &j->tenant_claims, &j->ntenant_claims);
    if (rc == 0) rc = split_list(o->role_claims ? o->role_claims : "role", &j->role_claims, &j->nrole_claims);
    if (rc == 0 && o->naudiences) {
        j->aud = calloc(o->naudiences, sizeof *j->aud);
        if (!j->aud) rc = MK_ENOMEM;
        for (size_t i = 0; rc == 0 && i < o->naudiences; i++) {
            j->aud[i] = dup_or_null(o->audiences[i]);
            if (!j->aud[i]) rc = MK_EINVAL;
            j->naud = i + 1;
        }
    }
    if (rc == 0 && o->nrole_map) {
        j->role_map = calloc(o->nrole_map, sizeof *j->role_map);
        if (!j->role_map) rc = MK_ENOMEM;
        for (size_t i = 0; rc == 0 && i < o->nrole_map; i++) {
            j->role_map[i].value = strdup(o->role_map[i].value);
            j->role_map[i].role = o->role_map[i].role;
            j->nrole_map = i + 1;
            if (!j->role_map[i].value) rc = MK_ENOMEM;
        }
    }
    if (rc == 0 && j->jwks_file) rc = load_file(j, err, NULL);
    if (rc != 0) {
        mk_jwt_free(j);
        return rc;
    }
    if (!j->naud)
        mk_log(MK_LOG_WARN, "jwt_no_audience", "issuer", j->issuer, "advice",
               "set auth.jwt.audiences: otherwise tokens the issuer made for any client are accepted", NULL);
    *out = j;
    return 0;
}

void mk_jwt_free(struct mk_jwt *j)
{
    if (!j) return;
    mk_jwt_stop_refresh(j);
    keyset_unref(j->set);
    free(j->issuer);
    free(j->jwks_file);
    free(j->jwks_url);
    free(j->jwks_ca);
    free(j->default_tenant);
    free_list(j->aud, j->naud);
    free_list(j->tenant_claims, j->ntenant_claims);
    free_list(j->role_claims, j->nrole_claims);
    for (size_t i = 0; i < j->nrole_map; i++) free((char *)j->role_map[i].value);
    free(j->role_map);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void mk_jwt_get_stats(const struct mk_jwt *j, struct mk_jwt_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!j) return;
    out->verified = atomic_load(&j->verified);
    out->rejected = atomic_load(&j->rejected);
    out->refreshes = atomic_load(&j->refreshes);
    out->refresh_errors = atomic_load(&j->refresh_errors);
}

/* ---- verification -------------------------------------------------------------------- */

static struct json_object *decode_json_part(const char *p, size_t len)
{
    if (len == 0 || len > MK_JWT_MAX_TOKEN_BYTES) return NULL;
    unsigned char buf[MK_JWT_MAX_TOKEN_BYTES];
    size_t n;
    if (b64url_decode(p, len, buf, sizeof buf - 1, &n) != 0) return NULL;
    struct json_tokener *tok = json_tokener_new_ex(16);
    if (!tok) return NULL;
    struct json_object *o = json_tokener_parse_ex(tok, (const char *)buf, (int)n);
    bool ok = json_tokener_get_error(tok) == json_tokener_success && o && json_object_is_type(o, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static bool num_claim(struct json_object *c, const char *k, int64_t *out, bool *present)
{
    struct json_object *v;
    *present = json_object_object_get_ex(c, k, &v);
    if (!*present) return true;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return false;
    double d = json_object_get_double(v);
    if (!(d > -1e15 && d < 1e15)) return false;
    *out = (int64_t)d;
    return true;
}

static int reject(struct mk_jwt *j, mk_buf *why, const char *reason, int rc)
{
    atomic_fetch_add(&j->rejected, 1);
    if (why) mk_buf_append_str(why, reason);
    return rc;
}

static bool aud_ok(const struct mk_jwt *j, struct json_object *claims)
{
    if (!j->naud) return true;
    struct json_object *a;
    if (!json_object_object_get_ex(claims, "aud", &a)) return false;
    size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 1;
    for (size_t i = 0; i < n && i < 64; i++) {
        struct json_object *v = json_object_is_type(a, json_type_array) ? json_object_array_get_idx(a, i) : a;
        if (!v || !json_object_is_type(v, json_type_string)) continue;
        for (size_t k = 0; k < j->naud; k++)
            if (strcmp(json_object_get_string(v), j->aud[k]) == 0) return true;
    }
    return false;
}

/* Highest role any role claim value maps to; -1 when none. */
static int map_role(const struct mk_jwt *j, struct json_object *claims)
{
    int best = -1;
    for (size_t c = 0; c < j->nrole_claims; c++) {
        struct json_object *v;
        if (!json_object_object_get_ex(claims, j->role_claims[c], &v)) continue;
        size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
        for (size_t i = 0; i < n && i < 256; i++) {
            struct json_object *e = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
            if (!e || !json_object_is_type(e, json_type_string)) continue;
            const char *s = json_object_get_string(e);
            for (size_t m = 0; m < j->nrole_map; m++)
                if (strcmp(s, j->role_map[m].value) == 0 && (int)j->role_map[m].role > best)
                    best = (int)j->role_map[m].role;
            if (j->accept_role_names) {
                int r = mk_role_parse(s);
                if (r > best) best = r;
            }
        }
    }
    return best;
}

int mk_jwt_verify(struct mk_jwt *j, const char *token, size_t len, struct mk_principal *out, mk_buf *why)
{
    if (!j || !token || !out) return MK_EINVAL;
    if (len == 0 || len > MK_JWT_MAX_TOKEN_BYTES || memchr(token, 0, len))
        return reject(j, why, "token empty or too long", MK_EUNAUTHORIZED);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) || d2 + 1 == token + len)
        return reject(j, why, "not a signed JWT (three parts)", MK_EUNAUTHORIZED);

    /* Header first: refuse algorithms we do not accept before any crypto runs. */
    struct json_object *hdr = decode_json_part(token, (size_t)(d1 - token));
    if (!hdr) return reject(j, why, "malformed header", MK_EUNAUTHORIZED);
    const char *alg = jstr(hdr, "alg");
    const char *kid = jstr(hdr, "kid");
    struct json_object *crit;
    int want;
    if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0)) {
        json_object_put(hdr);
        return reject(j, why, "algorithm not accepted (RS256 or ES256 only)", MK_EUNAUTHORIZED);
    }
    want = strcmp(alg, "RS256") == 0 ? K_RS256 : K_ES256;
    if (json_object_object_get_ex(hdr, "crit", &crit)) {
        json_object_put(hdr);
        return reject(j, why, "critical header extensions are not supported", MK_EUNAUTHORIZED);
    }
    char kidbuf[KID_MAX] = "";
    if (kid) snprintf(kidbuf, sizeof kidbuf, "%s", kid);
    bool has_kid = kid != NULL;
    json_object_put(hdr);

    char *tok = strndup(token, len); /* libjwt wants a C string */
    if (!tok) return MK_ENOMEM;
    struct keyset *ks = keyset_get(j);
    jwt_t *jwt = NULL;
    bool candidate = false;
    for (size_t i = 0; ks && i < ks->n && !jwt; i++) {
        const struct jwk *k = &ks->keys[i];
        if ((int)k->alg != want || (has_kid && strcmp(k->kid, kidbuf) != 0)) continue;
        candidate = true;
        jwt_t *t = NULL;
        if (jwt_decode(&t, tok, (const unsigned char *)k->pem, (int)k->pemlen) == 0 && t) {
            jwt_alg_t got = jwt_get_alg(t);
            if ((want == K_RS256 && got == JWT_ALG_RS256) || (want == K_ES256 && got == JWT_ALG_ES256))
                jwt = t;
            else
                jwt_free(t);
        }
    }
    keyset_unref(ks);
    free(tok);
    if (!jwt) {
        if (!candidate && j->jwks_url) atomic_store(&j->want_refresh, true);
        return reject(j, why, candidate ? "bad signature" : "no key for this token (kid/alg)", MK_EUNAUTHORIZED);
    }

    char *cj = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    struct json_object *claims = cj ? json_tokener_parse(cj) : NULL;
    free(cj);
    if (!claims || !json_object_is_type(claims, json_type_object)) {
        json_object_put(claims);
        return reject(j, why, "malformed claims", MK_EUNAUTHORIZED);
    }
    int rc = 0;
    const char *reason = NULL;
    int64_t now = now_s(j), exp = 0, nbf = 0, iat = 0;
    bool has_exp, has_nbf, has_iat;
    const char *iss = jstr(claims, "iss"), *sub = jstr(claims, "sub");
    if (!num_claim(claims, "exp", &exp, &has_exp) || !num_claim(claims, "nbf", &nbf, &has_nbf) ||
        !num_claim(claims, "iat", &iat, &has_iat))
        reason = "exp/nbf/iat must be numbers";
    else if (!has_exp)
        reason = "no exp claim";
    else if (now > exp + j->skew)
        reason = "token expired";
    else if (has_nbf && now + j->skew < nbf)
        reason = "token not valid yet (nbf)";
    else if (has_iat && now + j->skew < iat)
        reason = "token issued in the future (iat)";
    else if (!iss || strcmp(iss, j->issuer) != 0)
        reason = "wrong issuer";
    else if (!aud_ok(j, claims))
        reason = "wrong audience";
    else if (!sub || !*sub || strlen(sub) >= MK_AUTH_MAX_ID)
        reason = "no usable sub claim";
    if (reason) {
        json_object_put(claims);
        return reject(j, why, reason, MK_EUNAUTHORIZED);
    }
    memset(out, 0, sizeof *out);
    out->kind = MK_PRINCIPAL_JWT;
    snprintf(out->id, sizeof out->id, "%s", sub);
    out->expires_at_ms = exp * 1000;
    const char *tenant = NULL;
    for (size_t i = 0; i < j->ntenant_claims && !tenant; i++) {
        const char *t = jstr(claims, j->tenant_claims[i]);
        if (t && *t) tenant = t;
    }
    if (!tenant) tenant = j->default_tenant;
    int role = map_role(j, claims);
    if (role < 0) role = j->default_role;
    if (!tenant || strlen(tenant) >= MK_AUTH_MAX_TENANT) {
        reason = "no tenant claim";
        rc = MK_EUNAUTHORIZED;
    } else if (role < 0) {
        reason = "no role maps from the token's claims";
        rc = MK_EFORBIDDEN;
    } else {
        snprintf(out->tenant, sizeof out->tenant, "%s", tenant);
        out->role = (enum mk_role)role;
    }
    json_object_put(claims);
    if (rc != 0) return reject(j, why, reason, rc);
    atomic_fetch_add(&j->verified, 1);
    return 0;
}

/* ---- refresh ------------------------------------------------------------------------- */

static void on_jwks(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    struct refresher *r = arg;
    r->call = NULL;
    struct mk_jwt *j = r->j;
    mk_buf err = MK_BUF_INIT;
    if (rc == 0 && status == 200) rc = mk_jwt_set_jwks(j, body.ptr, body.len, &err);
    else if (rc == 0) rc = MK_EUPSTREAM;
    if (rc == 0) {
        atomic_fetch_add(&j->refreshes, 1);
        r->fetched_once = true;
    } else {
        atomic_fetch_add(&j->refresh_errors, 1);
        char st[16];
        snprintf(st, sizeof st, "%d", status);
        mk_log(MK_LOG_WARN, "jwt_jwks_refresh_failed", "url", j->jwks_url, "status", st, "error",
               err.len ? err.data : mk_strerror(rc), NULL);
    }
    mk_buf_release(&err);
}

static void fetch(struct refresher *r)
{
    struct mk_jwt *j = r->j;
    r->last_fetch_ms = mk_now_ms();
    const char *hdrs[] = {"Accept: application/json"};
    struct mk_http_call_opts o = {
        .method = "GET",
        .url = j->jwks_url,
        .headers = hdrs,
        .nheaders = 1,
        .connect_timeout_ms = 5000,
        .total_timeout_ms = 15000,
        .ca_file = j->jwks_ca,
        .max_body_bytes = MK_JWT_MAX_JWKS_BYTES,
        .on_done = on_jwks,
        .arg = r,
    };
    if (mk_http_call_start(r->http, &o, &r->call) != 0) {
        r->call = NULL;
        atomic_fetch_add(&j->refresh_errors, 1);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct refresher *r = t->data;
    struct mk_jwt *j = r->j;
    uint64_t now = mk_now_ms();
    if (j->jwks_url) {
        if (r->call) return;
        uint64_t since = now - r->last_fetch_ms;
        bool early = atomic_load(&j->want_refresh) && since >= EARLY_REFRESH_MIN_MS;
        /* Until the first success, retry every tick's worth of backoff (5 s). */
        bool due = since >= j->refresh_ms || (!r->fetched_once && since >= 5000);
        if (early || due) {
            atomic_store(&j->want_refresh, false);
            fetch(r);
        }
    } else if (j->jwks_file) {
        struct stat st;
        if (stat(j->jwks_file, &st) == 0 &&
            (st.st_mtim.tv_sec != r->file_mtime.tv_sec || st.st_mtim.tv_nsec != r->file_mtime.tv_nsec)) {
            mk_buf err = MK_BUF_INIT;
            struct timespec m = st.st_mtim;
            if (load_file(j, &err, &m) == 0) {
                atomic_fetch_add(&j->refreshes, 1);
            } else {
                atomic_fetch_add(&j->refresh_errors, 1);
                mk_log(MK_LOG_WARN, "jwt_jwks_reload_failed", "file", j->jwks_file, "error", err.data ? err.data : "",
                       NULL);
            }
            r->file_mtime = m; /* do not retry a broken file every second; wait for the next edit */
            mk_buf_release(&err);
        }
    }
}

int mk_jwt_start_refresh(struct mk_jwt *j, uv_loop_t *loop, mk_http_client *http)
{
    if (!j || !loop || j->ref || (j->jwks_url && !http)) return MK_EINVAL;
    struct refresher *r = calloc(1, sizeof *r);
    if (!r) return MK_ENOMEM;
    r->j = j;
    r->http = http;
    if (j->jwks_file) {
        struct stat st;
        if (stat(j->jwks_file, &st) == 0) r->file_mtime = st.st_mtim;
    }
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_unref((uv_handle_t *)&r->timer);
    uv_timer_start(&r->timer, on_tick, TICK_MS, TICK_MS);
    j->ref = r;
    if (j->jwks_url) fetch(r);
    return 0;
}

static void on_ref_closed(uv_handle_t *h) { free(h->data); }

void mk_jwt_stop_refresh(struct mk_jwt *j)
{
    if (!j || !j->ref) return;
    struct refresher *r = j->ref;
    j->ref = NULL;
    if (r->call) mk_http_call_cancel(r->call);
    r->call = NULL;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_ref_closed);
}
