/* Fuzz target: the cache's view of a request. Input is a chat request body (any
 * bytes): it is parsed, keyed (canonical digests, last user turn), and — when eligible
 * — stored and looked up in a small cache; the false-hit guard also compares the raw
 * input's halves. Nothing may crash or leak, and a stored request must find itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/mk_cache.h"

static mk_cache *cache;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cache && mk_cache_new(&(struct mk_cache_options){.max_bytes = 1 << 20, .threshold = 0.5}, &cache) != 0)
        abort();
    mk_cache_guard_compatible((const char *)data, size / 2, (const char *)data + size / 2, size - size / 2, NULL);
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *body = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)size) : NULL;
    json_tokener_free(tok);
    if (!body) return 0;
    struct mk_cache_request r;
    if (mk_cache_request_init(&r, "tenant", "group", body, 2.0) == 0 && r.eligible) {
        if (mk_cache_store(cache, &r, "{\"ok\":1}", 8, 1, 1, 0) != 0) abort();
        struct mk_cache_hit h;
        if (mk_cache_lookup(cache, &r, -1, &h) != 0 || h.kind != MK_CACHE_HIT_EXACT) abort();
        mk_cache_hit_release(&h);
    }
    mk_cache_request_release(&r);
    json_object_put(body);
    return 0;
}
