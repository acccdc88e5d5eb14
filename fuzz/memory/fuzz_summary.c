/* fuzz_summary: the memory module's free-text surface — token estimates and the
 * extractive summary of conversation turns (any bytes: invalid UTF-8, NULs, no
 * sentence ends, huge words). The first byte picks the token budget. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mk_buf.h"
#include "memory/mk_memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint32_t budget = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int t = mk_memory_estimate_tokens(text, len);
    if (t < 0) __builtin_trap();
    mk_buf out = MK_BUF_INIT;
    if (mk_memory_summarise_extractive(text, len, budget, &out) == 0 && out.len) {
        /* the summary is made of the input's own sentences, within the budget */
        if (mk_memory_estimate_tokens(out.data, out.len) > (int)budget) __builtin_trap();
    }
    mk_buf_release(&out);
    return 0;
}
