/* cache_int.h: what the cache's files share (not for other parts). */
#ifndef MK_CACHE_INT_H
#define MK_CACHE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Numbers kept per text for the guard; a text with more is compared on the first ones. */
#define GUARD_MAX_NUMBERS 16
/* Names kept per text (see `names` below); a text with more is checked on the first ones. */
#define GUARD_MAX_NAMES 16
/* Bits of the per-text word filter (a Bloom filter of word keys, two bits per word):
 * 1024 bits keep false "present" answers under 0.1% for a 20-word question. */
#define GUARD_WORD_BITS 1024

/* What the false-hit guard compares between two texts (docs/CACHE.md). Two texts are
 * compatible when every field is equal. */
struct mk_cache_sig {
    bool negated;            /* any negation word (ru/en/kk) */
    uint32_t polarity;       /* bit 2*axis (+1 for the "off" side) per antonym axis seen */
    uint64_t entities;       /* one bit per entity class of the lexicon */
    uint32_t nnumbers;
    uint64_t numbers[GUARD_MAX_NUMBERS]; /* hashes of digit runs, sorted, unique */
    /* Names: proper nouns and product names the embedder weighs like any word
     * ("столица Исландии" / "столица Новой Зеландии", "KLM" / "Malev"). A name is a word
     * capitalised inside a sentence, an acronym (two capitals or more), or a Latin-script
     * word in Cyrillic text. Each name of one text must occur among the words of the
     * other, in any case (docs/CACHE.md). Kept as hashes of word keys: the first four
     * letters, or the whole word when shorter. */
    uint32_t nnames;
    uint32_t names[GUARD_MAX_NAMES];
    uint64_t words[GUARD_WORD_BITS / 64]; /* Bloom filter of every word's key */
};

/* Computes the signature of text[0..len). Never fails (invalid UTF-8 bytes separate). */
void mk_cache_sig_of(const char *text, size_t len, struct mk_cache_sig *out);
/* NULL when compatible, else the reason ("negation", "antonym", "number", "entity",
 * "name"). */
const char *mk_cache_sig_mismatch(const struct mk_cache_sig *a, const struct mk_cache_sig *b);

struct mk_cache;
struct mk_cache_request;
struct cache_sync;

/* The local halves of store and invalidate (no publishing to other nodes). */
int cache_store_local(struct mk_cache *c, const struct mk_cache_request *r, const char *answer, size_t len,
                      int64_t prompt_tokens, int64_t completion_tokens, uint32_t ttl_s);
size_t cache_invalidate_local(struct mk_cache *c, const char *tenant, const char *group);

void cache_set_sync(struct mk_cache *c, struct cache_sync *s);
struct cache_sync *cache_get_sync(struct mk_cache *c);
uint32_t cache_default_ttl(const struct mk_cache *c);

/* cache_sync.c: sharing entries across nodes through the kv (docs/CACHE.md). */
void cache_sync_publish_put(struct cache_sync *s, const struct mk_cache_request *r, const char *answer, size_t len,
                            int64_t prompt_tokens, int64_t completion_tokens, uint32_t ttl_s);
void cache_sync_publish_invalidate(struct cache_sync *s, const char *tenant, const char *group);
/* Stops syncing; the state frees itself once the kv's pending callbacks have run. */
void cache_sync_detach(struct cache_sync *s);

#endif
