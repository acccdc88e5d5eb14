/* mk_rand: thin layer over libsodium's CSPRNG. */
#include "mk_rand.h"

#include <sodium.h>

#include "mk_error.h"

int mk_rand_init(void) { return sodium_init() < 0 ? MK_EINTERNAL : 0; }
uint32_t mk_rand_u32(void) { return randombytes_random(); }
uint32_t mk_rand_uniform(uint32_t bound) { return randombytes_uniform(bound); }
double mk_rand_unit(void) { return (randombytes_random() >> 5) * (1.0 / 134217728.0); }
void mk_rand_bytes(void *buf, size_t n) { randombytes_buf(buf, n); }

void mk_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void mk_request_id(char out[17])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[8];
    randombytes_buf(b, sizeof b);
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[16] = '\0';
}
