/*
 * mk_pool: a memory pool per request, freed in one go at the request's end.
 * Allocations are 16-byte aligned and never freed one by one. Not thread-safe:
 * a pool belongs to the loop that owns its request.
 */
#ifndef MK_POOL_H
#define MK_POOL_H

#include <stddef.h>

typedef struct mk_pool mk_pool;

mk_pool *mk_pool_new(size_t first_block);
/* Frees every allocation and the pool. Accepts NULL. */
void mk_pool_free(mk_pool *p);
/* NULL only when memory is exhausted. Zero-filled. */
void *mk_pool_alloc(mk_pool *p, size_t n);
char *mk_pool_strndup(mk_pool *p, const char *s, size_t n);
char *mk_pool_strdup(mk_pool *p, const char *s);
/* Run fn(arg) when the pool is freed (e.g. to drop a json_object). */
int mk_pool_on_free(mk_pool *p, void (*fn)(void *), void *arg);

#endif
