/* Fuzz target: the JSON request decoder and the chat request validator, the first
 * code every API body meets. Any input must give 0 or a clean error, never a crash,
 * and a body that decodes must survive validation. */
#include <stddef.h>
#include <stdint.h>

#include "api/mk_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *body = NULL;
    char msg[256];
    mk_slice in = {(const char *)data, size};
    if (mk_api_parse_json(in, &body, msg, sizeof msg) == 0) {
        const char *param = NULL;
        (void)mk_api_validate_chat(body, msg, sizeof msg, &param);
        json_object_put(body);
    }
    return 0;
}
