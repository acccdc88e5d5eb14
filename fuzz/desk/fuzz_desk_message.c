/* Fuzz target: one user message through the desk — signals, triage, retrieval,
 * the local answer and its JSON — and the same bytes as a spotlighted passage.
 * The desk (default agents, demo knowledge base) is built once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_rand.h"
#include "desk/mk_desk.h"
#include "desk/mk_desk_signals.h"
#include "desk/mk_spotlight.h"

static mk_desk *desk;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!desk) {
        mk_rand_init();
        if (mk_desk_new(NULL, &desk) != 0) abort();
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* The first byte picks a previous agent and failure count: the context paths. */
    struct mk_desk_context ctx = {0};
    if (size > 0) {
        size_t n = mk_desk_agent_count(desk);
        unsigned b = data[0];
        if (b % (n + 1) < n) ctx.prev_agent = mk_desk_agent_at(desk, b % (n + 1))->id;
        ctx.bot_failures = (b >> 4) & 3;
    }
    struct mk_desk_reply r;
    if (mk_desk_respond(desk, text, &ctx, NULL, &r) == 0) {
        mk_buf b = MK_BUF_INIT;
        mk_desk_reply_json(&r, &b);
        mk_buf_release(&b);
        mk_desk_reply_release(&r);
    }
    struct mk_desk_signals s;
    mk_desk_signals_scan((const char *)data, size, &s);
    struct mk_spotlight sp;
    mk_spotlight_init(&sp, size);
    mk_buf b = MK_BUF_INIT;
    mk_spotlight_passage(&sp, &b, text, text, (const char *)data, size);
    mk_buf_release(&b);
    free(text);
    return 0;
}
