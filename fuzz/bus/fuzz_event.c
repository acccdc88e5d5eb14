/*
 * Fuzz target: an event body as it comes from the broker (mk_bus_wire_event_parse),
 * and a topic pattern/type pair through the matcher. A body that parses must
 * describe a valid event: a valid type, a UUID, a payload that is itself an object.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/mk_bus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mk_bus_wire_event ev;
    mk_buf err = MK_BUF_INIT;
    if (mk_bus_wire_event_parse((const char *)data, size, &ev, &err) == 0) {
        if (!mk_bus_type_valid(ev.type) || strlen(ev.id) != 36 || !ev.payload || ev.payload[0] != '{') abort();
        mk_bus_wire_event_release(&ev);
    }
    mk_buf_release(&err);
    /* First line: a pattern; second: a type. */
    char a[200] = {0}, b[200] = {0};
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl) {
        size_t la = (size_t)(nl - data), lb = size - la - 1;
        memcpy(a, data, la < sizeof a - 1 ? la : sizeof a - 1);
        memcpy(b, nl + 1, lb < sizeof b - 1 ? lb : sizeof b - 1);
        bool m = mk_bus_topic_match(a, b);
        if (m && (!mk_bus_pattern_valid(a) || !mk_bus_type_valid(b))) abort();
        if (mk_bus_type_valid(b) && mk_bus_topic_match("#", b) != true) abort();
    }
    return 0;
}
