/* mk_rand: randomness from libsodium (ChaCha20 seeded from the kernel). */
#ifndef MK_RAND_H
#define MK_RAND_H

#include <stdint.h>
#include <stddef.h>

/* Must run once before any other call; 0 or MK_EINTERNAL. Safe to call again. */
int mk_rand_init(void);
uint32_t mk_rand_u32(void);
/* Uniform in [0, bound), bound > 0. */
uint32_t mk_rand_uniform(uint32_t bound);
/* Uniform in [0, 1). */
double mk_rand_unit(void);
void mk_rand_bytes(void *buf, size_t n);
/* RFC 4122 version-4 UUID, lower case, 36 chars + NUL. */
void mk_uuid4(char out[37]);
/* A request id: 16 lowercase hex chars + NUL (64 random bits). */
void mk_request_id(char out[17]);

#endif
