/* Fuzz target: console session tokens (src/api/desk_session.c). A token arrives in a
 * header or a WebSocket query from anyone, so any bytes must give "no session" or a
 * principal, never a crash. Two passes per input: the bytes as a token as they come
 * (the MAC check stops them, exercising the splitting and base64), and the bytes as a
 * payload signed with the node's key (what only a node could produce, exercising the
 * payload's parser behind the MAC). */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/desk_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct desk_svc svc; /* zero key, no deny list: enough for parsing */
    if (size > 4096) return 0;
    struct mk_principal who;
    char *raw = malloc(size + 1);
    if (!raw) return 0;
    memcpy(raw, data, size);
    raw[size] = '\0';
    (void)desk_session_find(&svc, raw, &who);
    free(raw);

    size_t b64_len = sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *body = malloc(b64_len);
    char *token = malloc(b64_len + 64);
    if (body && token) {
        sodium_bin2base64(body, b64_len, data, size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        unsigned char mac[crypto_auth_BYTES];
        crypto_auth(mac, (const unsigned char *)body, strlen(body), svc.session_key);
        char mac_b64[sodium_base64_ENCODED_LEN(crypto_auth_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
        sodium_bin2base64(mac_b64, sizeof mac_b64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        size_t n = strlen(body);
        memcpy(token, "ds1.", 4);
        memcpy(token + 4, body, n);
        token[4 + n] = '.';
        memcpy(token + 5 + n, mac_b64, strlen(mac_b64) + 1);
        if (desk_session_find(&svc, token, &who)) {
            /* A payload that passes must name a role and fit its fields. */
            if (who.id[sizeof who.id - 1] || who.tenant[sizeof who.tenant - 1]) abort();
        }
    }
    free(body);
    free(token);
    return 0;
}
