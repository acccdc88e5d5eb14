/* JWT verification: keys made by the openssl CLI at test time, tokens signed by libjwt
 * (and one ES256 token signed by openssl itself, to prove the signature format is the
 * standard one and not just libjwt agreeing with itself). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/mk_jwt.h"
#include "core/mk_error.h"
#include "core/mk_log.h"

static char dir[256];
static char *rsa_pem, *ec_pem, *rsa2_pem;
static char jwks[8192];
static const int64_t NOW = 1700000000;

static int64_t fixed_clock(void *arg) { return *(int64_t *)arg; }

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    if (len) *len = n;
    return buf;
}

static void run(const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    cr_assert_eq(system(full), 0, "command failed: %s", cmd);
}

static void b64url(const unsigned char *bin, size_t n, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void setup(void)
{
    mk_log_set_level(MK_LOG_OFF);
    cr_assert(sodium_init() >= 0);
    snprintf(dir, sizeof dir, "/tmp/mk-jwt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem");
    run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2.pem");
    run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem");
    run("openssl rsa -in rsa.pem -modulus -noout > rsa.mod");
    run("openssl pkey -in ec.pem -pubout -outform DER -out ec.der");
    char path[512];
    snprintf(path, sizeof path, "%s/rsa.pem", dir);
    rsa_pem = slurp(path, NULL);
    snprintf(path, sizeof path, "%s/rsa2.pem", dir);
    rsa2_pem = slurp(path, NULL);
    snprintf(path, sizeof path, "%s/ec.pem", dir);
    ec_pem = slurp(path, NULL);

    /* RSA modulus: "Modulus=HEX" */
    snprintf(path, sizeof path, "%s/rsa.mod", dir);
    char *mod = slurp(path, NULL);
    char *hex = strchr(mod, '=') + 1;
    hex[strcspn(hex, "\n")] = '\0';
    unsigned char n[512];
    size_t nl;
    cr_assert_eq(sodium_hex2bin(n, sizeof n, hex, strlen(hex), NULL, &nl, NULL), 0);
    char n64[700];
    b64url(n, nl, n64, sizeof n64);
    free(mod);
    /* EC: the SPKI DER ends with 04 || x || y */
    size_t dl;
    snprintf(path, sizeof path, "%s/ec.der", dir);
    unsigned char *der = (unsigned char *)slurp(path, &dl);
    cr_assert_eq(dl, 91);
    char x64[64], y64[64];
    b64url(der + 27, 32, x64, sizeof x64);
    b64url(der + 59, 32, y64, sizeof y64);
    free(der);
    snprintf(jwks, sizeof jwks,
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQAB\"},"
             "{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"c2VjcmV0\"},"
             "{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"%s\",\"e\":\"AQAB\"}]}",
             n64, x64, y64, n64);
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    FILE *f = fopen(path, "w");
    fputs(jwks, f);
    fclose(f);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) { /* best effort */
    }
    free(rsa_pem);
    free(rsa2_pem);
    free(ec_pem);
}

TestSuite(jwt, .init = setup, .fini = teardown, .timeout = 60);

static int64_t clock_now;

static struct mk_jwt *make(int default_role)
{
    static const char *const auds[] = {"mayak", "other"};
    static const struct mk_jwt_role_map map[] = {{"mayak-admins", MK_ROLE_ADMIN}, {"support", MK_ROLE_OPERATOR},
                                                 {"staff", MK_ROLE_USER}};
    char path[512];
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    clock_now = NOW;
    struct mk_jwt_options o = {
        .issuer = "https://idp.example",
        .audiences = auds,
        .naudiences = 2,
        .jwks_file = path,
        .tenant_claims = "tenant, org",
        .role_claims = "role,groups",
        .role_map = map,
        .nrole_map = 3,
        .default_role = default_role,
        .clock_s = fixed_clock,
        .clock_arg = &clock_now,
    };
    struct mk_jwt *j;
    mk_buf err = MK_BUF_INIT;
    int rc = mk_jwt_new(&o, &j, &err);
    cr_assert_eq(rc, 0, "mk_jwt_new: %s", err.data ? err.data : "");
    mk_buf_release(&err);
    cr_assert_eq(mk_jwt_key_count(j), 2, "RSA + EC usable; oct and enc skipped");
    return j;
}

/* Signs claims (JSON) with libjwt. kid may be NULL. */
static char *sign(jwt_alg_t alg, const char *pem, const char *kid, const char *claims)
{
    jwt_t *t;
    cr_assert_eq(jwt_new(&t), 0);
    cr_assert_eq(jwt_add_grants_json(t, claims), 0);
    if (kid) jwt_add_header(t, "kid", kid);
    cr_assert_eq(jwt_set_alg(t, alg, (const unsigned char *)pem, pem ? (int)strlen(pem) : 0), 0);
    char *s = jwt_encode_str(t);
    jwt_free(t);
    cr_assert_not_null(s);
    return s;
}

static char claims_buf[1024];
static const char *claims(const char *extra)
{
    snprintf(claims_buf, sizeof claims_buf,
             "{\"iss\":\"https://idp.example\",\"aud\":\"mayak\",\"sub\":\"u-42\",\"exp\":%lld,\"iat\":%lld%s%s}",
             (long long)NOW + 300, (long long)NOW - 10, extra && *extra ? "," : "", extra ? extra : "");
    return claims_buf;
}

static int verify(struct mk_jwt *j, const char *tok, struct mk_principal *p)
{
    return mk_jwt_verify(j, tok, strlen(tok), p, NULL);
}

Test(jwt, rs256_maps_tenant_and_highest_role)
{
    struct mk_jwt *j = make(-1);
    char *tok = sign(JWT_ALG_RS256, rsa_pem, "r1", claims("\"org\":\"acme\",\"groups\":[\"staff\",\"mayak-admins\"]"));
    struct mk_principal p;
    cr_assert_eq(verify(j, tok, &p), 0);
    cr_assert_eq(p.kind, MK_PRINCIPAL_JWT);
    cr_assert_str_eq(p.id, "u-42");
    cr_assert_str_eq(p.tenant, "acme");
    cr_assert_eq(p.role, MK_ROLE_ADMIN, "highest mapped group wins");
    cr_assert_eq(p.expires_at_ms, (NOW + 300) * 1000);
    free(tok);
    /* "tenant" is listed before "org" */
    tok = sign(JWT_ALG_RS256, rsa_pem, NULL, claims("\"tenant\":\"t1\",\"org\":\"acme\",\"role\":\"support\""));
    cr_assert_eq(verify(j, tok, &p), 0, "no kid: any RSA key is tried");
    cr_assert_str_eq(p.tenant, "t1");
    cr_assert_eq(p.role, MK_ROLE_OPERATOR);
    free(tok);
    mk_jwt_free(j);
}

Test(jwt, es256_from_libjwt)
{
    struct mk_jwt *j = make(-1);
    char *tok = sign(JWT_ALG_ES256, ec_pem, "e1", claims("\"org\":\"acme\",\"role\":\"staff\""));
    struct mk_principal p;
    cr_assert_eq(verify(j, tok, &p), 0);
    cr_assert_eq(p.role, MK_ROLE_USER);
    free(tok);
    mk_jwt_free(j);
}

Test(jwt, es256_from_openssl_raw_signature)
{
    struct mk_jwt *j = make(-1);
    char h64[128], p64[1024];
    const char *hdr = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"e1\"}";
    b64url((const unsigned char *)hdr, strlen(hdr), h64, sizeof h64);
    const char *c = claims("\"org\":\"acme\",\"role\":\"staff\"");
    b64url((const unsigned char *)c, strlen(c), p64, sizeof p64);
    char input[1200];
    snprintf(input, sizeof input, "%s.%s", h64, p64);
    char path[512];
    snprintf(path, sizeof path, "%s/input.txt", dir);
    FILE *f = fopen(path, "w");
    fputs(input, f);
    fclose(f);
    run("openssl dgst -sha256 -sign ec.pem -out sig.der input.txt");
    size_t dl;
    snprintf(path, sizeof path, "%s/sig.der", dir);
    unsigned char *der = (unsigned char *)slurp(path, &dl);
    /* SEQUENCE { INTEGER r, INTEGER s } -> r||s, each 32 bytes big-endian */
    unsigned char raw[64] = {0};
    size_t off = 2;
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(der[off], 0x02);
        size_t l = der[off + 1];
        const unsigned char *v = der + off + 2;
        size_t vl = l;
        while (vl > 32) {
            v++;
            vl--;
        }
        memcpy(raw + k * 32 + (32 - vl), v, vl);
        off += 2 + l;
    }
    free(der);
    char s64[128];
    b64url(raw, 64, s64, sizeof s64);
    char tok[1400];
    snprintf(tok, sizeof tok, "%s.%s", input, s64);
    struct mk_principal p;
    cr_assert_eq(verify(j, tok, &p), 0, "a standard ES256 signature verifies");
    mk_jwt_free(j);
}

Test(jwt, time_claims_with_skew)
{
    struct mk_jwt *j = make(MK_ROLE_USER);
    char *tok = sign(JWT_ALG_RS256, rsa_pem, "r1", claims("\"org\":\"acme\""));
    struct mk_principal p;
    clock_now = NOW + 300 + 59;
    cr_assert_eq(verify(j, tok, &p), 0, "expired 59 s ago: inside the 60 s skew");
    clock_now = NOW + 300 + 61;
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "expired beyond the skew");
    free(tok);
    clock_now = NOW;
    char extra[128];
    snprintf(extra, sizeof extra, "\"org\":\"a\",\"nbf\":%lld", (long long)NOW + 120);
    tok = sign(JWT_ALG_RS256, rsa_pem, "r1", claims(extra));
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "not valid yet");
    free(tok);
    tok = sign(JWT_ALG_RS256, rsa_pem, "r1",
               "{\"iss\":\"https://idp.example\",\"aud\":\"mayak\",\"sub\":\"x\",\"org\":\"a\"}");
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "exp is required");
    free(tok);
    mk_jwt_free(j);
}

Test(jwt, issuer_audience_subject)
{
    struct mk_jwt *j = make(MK_ROLE_USER);
    struct mk_principal p;
    char buf[512];
    snprintf(buf, sizeof buf, "{\"iss\":\"https://evil\",\"aud\":\"mayak\",\"sub\":\"x\",\"org\":\"a\",\"exp\":%lld}",
             (long long)NOW + 60);
    char *tok = sign(JWT_ALG_RS256, rsa_pem, "r1", buf);
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "wrong issuer");
    free(tok);
    snprintf(buf, sizeof buf,
             "{\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"other\"],\"sub\":\"x\",\"org\":\"a\",\"exp\":%lld}",
             (long long)NOW + 60);
    tok = sign(JWT_ALG_RS256, rsa_pem, "r1", buf);
    cr_assert_eq(verify(j, tok, &p), 0, "aud list containing a configured audience");
    free(tok);
    snprintf(buf, sizeof buf,
             "{\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"y\"],\"sub\":\"x\",\"org\":\"a\",\"exp\":%lld}",
             (long long)NOW + 60);
    tok = sign(JWT_ALG_RS256, rsa_pem, "r1", buf);
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "no configured audience");
    free(tok);
    snprintf(buf, sizeof buf, "{\"iss\":\"https://idp.example\",\"aud\":\"mayak\",\"org\":\"a\",\"exp\":%lld}",
             (long long)NOW + 60);
    tok = sign(JWT_ALG_RS256, rsa_pem, "r1", buf);
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "no sub");
    free(tok);
    tok = sign(JWT_ALG_RS256, rsa_pem, "r1", claims(""));
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "no tenant claim and no default tenant");
    free(tok);
    mk_jwt_free(j);
}

Test(jwt, role_mapping_policy)
{
    struct mk_jwt *j = make(-1);
    struct mk_principal p;
    char *tok = sign(JWT_ALG_RS256, rsa_pem, "r1", claims("\"org\":\"a\",\"groups\":[\"admin\",\"nobody\"]"));
    cr_assert_eq(verify(j, tok, &p), MK_EFORBIDDEN, "a role NAME in a claim counts only when accepted");
    mk_jwt_free(j);
    j = make(MK_ROLE_USER);
    cr_assert_eq(verify(j, tok, &p), 0);
    cr_assert_eq(p.role, MK_ROLE_USER, "default role");
    free(tok);
    mk_jwt_free(j);
}

Test(jwt, forged_and_confused_tokens)
{
    struct mk_jwt *j = make(MK_ROLE_USER);
    struct mk_principal p;
    const char *c = claims("\"org\":\"acme\"");
    /* signed by a key not in the JWKS */
    char *tok = sign(JWT_ALG_RS256, rsa2_pem, "r1", c);
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED);
    free(tok);
    /* alg none */
    tok = sign(JWT_ALG_NONE, NULL, "r1", c);
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED);
    free(tok);
    /* HS256 keyed with the public key text (the classic confusion) */
    char pub[4096];
    char path[512];
    run("openssl pkey -in rsa.pem -pubout -out rsa.pub");
    snprintf(path, sizeof path, "%s/rsa.pub", dir);
    char *pubpem = slurp(path, NULL);
    snprintf(pub, sizeof pub, "%s", pubpem);
    free(pubpem);
    tok = sign(JWT_ALG_HS256, pub, "r1", c);
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED);
    free(tok);
    /* RS256 header on an ES key id */
    tok = sign(JWT_ALG_RS256, rsa_pem, "e1", c);
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED, "kid of the wrong key type");
    free(tok);
    /* tampered payload */
    tok = sign(JWT_ALG_RS256, rsa_pem, "r1", c);
    char *dot = strchr(tok, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(j, tok, &p), MK_EUNAUTHORIZED);
    free(tok);
    /* garbage of every shape */
    const char *junk[] = {"", "a", "a.b", "a.b.c.d", "..", "e30.e30.", "!!!.e30.e30", "e30.e30.e30"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        cr_assert_eq(verify(j, junk[i], &p), MK_EUNAUTHORIZED, "junk %zu", i);
    struct mk_jwt_stats st;
    mk_jwt_get_stats(j, &st);
    cr_assert_geq(st.rejected, 12);
    mk_jwt_free(j);
}

Test(jwt, bad_jwks_keeps_old_set_and_bad_options)
{
    struct mk_jwt *j = make(MK_ROLE_USER);
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_jwt_set_jwks(j, "{", 1, &err), MK_EBADJSON);
    cr_assert_eq(mk_jwt_set_jwks(j, "{\"keys\":[]}", 11, NULL), MK_EINVAL);
    const char weak[] = "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}";
    cr_assert_eq(mk_jwt_set_jwks(j, weak, strlen(weak), NULL), MK_EINVAL, "tiny RSA keys are refused");
    cr_assert_eq(mk_jwt_key_count(j), 2);
    char *tok = sign(JWT_ALG_RS256, rsa_pem, "r1", claims("\"org\":\"acme\""));
    struct mk_principal p;
    cr_assert_eq(verify(j, tok, &p), 0);
    free(tok);
    mk_jwt_free(j);
    mk_buf_release(&err);

    struct mk_jwt_options o = {.issuer = "x", .default_role = -1};
    struct mk_jwt *bad;
    cr_assert_eq(mk_jwt_new(&o, &bad, NULL), MK_EINVAL, "no JWKS source");
    o.jwks_file = "/nonexistent/jwks.json";
    cr_assert_eq(mk_jwt_new(&o, &bad, NULL), MK_EIO);
    o.jwks_url = "https://idp/jwks";
    cr_assert_eq(mk_jwt_new(&o, &bad, NULL), MK_EINVAL, "both sources");
}

static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

Test(jwt, file_reload_on_change)
{
    struct mk_jwt *j = make(MK_ROLE_USER);
    uv_loop_t loop;
    uv_loop_init(&loop);
    cr_assert_eq(mk_jwt_start_refresh(j, &loop, NULL), 0);
    /* Replace the JWKS with one holding only the EC key; bump the mtime visibly. */
    char path[512];
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    char *ec_only = strstr(jwks, "{\"kty\":\"EC\"");
    char *end = strstr(ec_only, "}");
    char doc[2048];
    snprintf(doc, sizeof doc, "{\"keys\":[%.*s}]}", (int)(end - ec_only), ec_only);
    FILE *f = fopen(path, "w");
    fputs(doc, f);
    fclose(f);
    struct timespec ts[2] = {{NOW + 5, 0}, {NOW + 5, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_loop, 1300, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(mk_jwt_key_count(j), 1, "the edited file was reloaded");
    mk_jwt_stop_refresh(j);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    mk_jwt_free(j);
}
