/* Fuzz target: the openai adapter's decoders (reply, stream, error, embeddings). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct mk_provider_config cfg = {.name = "fuzz", .type = MK_PROVIDER_OPENAI, .base_url = "http://127.0.0.1:1",
                                                  .api_key = "k", .folder_id = "f", .credentials = "c"};
    fuzz_provider(&cfg, data, size);
    return 0;
}
