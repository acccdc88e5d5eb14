/*
 * Fuzzes the bearer-credential surface: the Authorization header parser, the API key
 * shape check, and JWT verification (header/claims decoding, key selection) against a
 * fixed JWKS; plus JWKS parsing itself. The first byte picks the target so one corpus
 * covers all of them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/mk_jwt.h"
#include "auth/mk_keys.h"
#include "core/mk_log.h"

/* A P-256 public key (any valid point works: signatures will not verify, which is the
 * point: everything before and around verification is what gets exercised). */
static const char jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\","
    "\"x\":\"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY\","
    "\"y\":\"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU\"}]}";

static struct mk_jwt *jwt;

static int64_t fixed(void *arg) { return 1700000000; }

static void init(void)
{
    mk_log_set_level(MK_LOG_OFF);
    static const char *const aud[] = {"mayak"};
    static const struct mk_jwt_role_map map[] = {{"admins", MK_ROLE_ADMIN}};
    /* mk_jwt_new needs a source: write the JWKS to a temp file once. */
    char path[] = "/tmp/mk-fuzz-jwks-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) abort();
    if (write(fd, jwks, sizeof jwks - 1) != (ssize_t)(sizeof jwks - 1)) abort();
    close(fd);
    struct mk_jwt_options o = {.issuer = "https://idp", .audiences = aud, .naudiences = 1, .jwks_file = path,
                               .tenant_claims = "tenant,org", .role_claims = "role,groups", .role_map = map,
                               .nrole_map = 1, .default_role = -1, .accept_role_names = true, .clock_s = fixed};
    if (mk_jwt_new(&o, &jwt, NULL) != 0) abort();
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!jwt) init();
    if (size == 0) return 0;
    uint8_t sel = data[0] % 3;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    struct mk_principal p;
    if (sel == 0) {
        mk_slice cred;
        if (mk_auth_bearer((mk_slice){s, n}, &cred) == 0) {
            (void)mk_auth_is_api_key(cred);
            (void)mk_keys_well_formed(cred.ptr, cred.len);
            mk_buf why = MK_BUF_INIT;
            (void)mk_jwt_verify(jwt, cred.ptr, cred.len, &p, &why);
            mk_buf_release(&why);
        }
    } else if (sel == 1) {
        (void)mk_jwt_verify(jwt, s, n, &p, NULL);
    } else {
        /* A throwaway verifier so a good JWKS from the fuzzer does not replace ours. */
        mk_buf err = MK_BUF_INIT;
        (void)mk_jwt_set_jwks(jwt, s, n, &err);
        mk_buf_release(&err);
        (void)mk_jwt_set_jwks(jwt, jwks, sizeof jwks - 1, NULL);
    }
    return 0;
}
