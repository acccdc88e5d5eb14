/*
 * desk_int: what the desk's files (desk.c, answer.c, compose.c) share and
 * nobody else needs.
 */
#ifndef MK_DESK_INT_H
#define MK_DESK_INT_H

#include <json-c/json.h>

#include "core/mk_buf.h"
#include "desk/mk_desk.h"
#include "desk/mk_desk_classifier.h"

struct mk_embedder;

struct mk_desk {
    struct mk_desk_agent agents[MK_DESK_MAX_AGENTS];
    size_t nagents;
    mk_desk_classifier *clf;     /* NULL with a single agent */
    mk_kb *kb;
    bool own_kb;
    struct mk_embedder *embedder;/* the own kb's vectors */
    bool use_llm;
    const char *default_model_group;
    char **strs;                 /* every string and list the desk copied */
    size_t nstrs, capstrs;
};

/* A chat request {"model", "messages": [system, turns..., user], "temperature": 0}.
 * turns may be NULL; only "user" turns keep their role, the others become
 * "assistant". NULL on out-of-memory. */
json_object *desk_chat_request(const char *model, const char *system, const struct mk_desk_turn *turns,
                               size_t nturns, const char *user);
/* choices[0].message.content of a chat.completion, malloc'ed; NULL when absent. */
char *desk_completion_text(const char *json, size_t len);

/* Language of a message for the reply: its own when it has letters, else that of the
 * last user turn with letters, else "en". Static string "ru" / "en" / "kk". */
const char *desk_reply_lang(const char *text, size_t len, const struct mk_desk_context *ctx);

/* compose.c: the local responder's answer from a ranked list of hits (best first,
 * n >= 1, the first one confident), in lang. Appends the text to out and the cited
 * hits (up to MK_DESK_MAX_CITATIONS) to cited / *ncited. 0 or MK_ENOMEM. */
int desk_compose(mk_kb *kb, const char *lang, const struct mk_kb_result *res, size_t n, mk_buf *out,
                 const struct mk_kb_result **cited, size_t *ncited);
/* The honest hand-over message for reason in lang. Static. */
const char *desk_handover_text(enum mk_desk_reason reason, const char *lang);
/* The sources list ("Источники:" / "Sources:" ...) for the citations. */
int desk_sources(const char *lang, const struct mk_desk_citation *c, size_t n, mk_buf *out);

#endif
