/* mk_pool: bump allocator over a chain of blocks, plus cleanup callbacks. */
#include "mk_pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct block {
    struct block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *arg;
};

struct mk_pool {
    struct block *head;
    struct cleanup *cleanups;
    size_t block_size;
};

static struct block *block_new(size_t size)
{
    struct block *b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

mk_pool *mk_pool_new(size_t first_block)
{
    mk_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->block_size = first_block < 256 ? 256 : first_block;
    return p;
}

void mk_pool_free(mk_pool *p)
{
    if (!p) return;
    for (struct cleanup *c = p->cleanups; c; c = c->next) c->fn(c->arg);
    struct block *b = p->head;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(p);
}

void *mk_pool_alloc(mk_pool *p, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    struct block *b = p->head;
    if (!b || b->size - b->used < n) {
        size_t size = p->block_size;
        if (n > size / 2) size = n; /* big allocations get their own block */
        else if (p->block_size < 64 * 1024) p->block_size *= 2;
        struct block *nb = block_new(size);
        if (!nb) return NULL;
        if (b && size == n) { /* keep the current block as head for small allocs */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            memset(nb->data, 0, n);
            return nb->data;
        }
        nb->next = b;
        p->head = nb;
        b = nb;
    }
    void *r = b->data + b->used;
    b->used += n;
    memset(r, 0, n);
    return r;
}

char *mk_pool_strndup(mk_pool *p, const char *s, size_t n)
{
    char *r = mk_pool_alloc(p, n + 1);
    if (!r) return NULL;
    if (n) memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

char *mk_pool_strdup(mk_pool *p, const char *s) { return mk_pool_strndup(p, s, strlen(s)); }

int mk_pool_on_free(mk_pool *p, void (*fn)(void *), void *arg)
{
    struct cleanup *c = mk_pool_alloc(p, sizeof *c);
    if (!c) return -1;
    c->fn = fn;
    c->arg = arg;
    c->next = p->cleanups;
    p->cleanups = c;
    return 0;
}
