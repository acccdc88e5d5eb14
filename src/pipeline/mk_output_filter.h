/*
 * The output guard filter: checks every answer on its way to the caller and withholds
 * it when it leaks the system prompt (a per-request canary) or breaks the configured
 * word and pattern policy (guard.output_block / guard.output_patterns, Russian and
 * English, case-insensitive). Fail closed: a check that errors blocks (docs/GUARD.md,
 * "Output checks").
 *
 * The matching is exposed (mk_output_scan) so it can be tested without a server.
 */
#ifndef MK_OUTPUT_FILTER_H
#define MK_OUTPUT_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/mk_config.h"
#include "core/mk_buf.h"

/* Bytes of earlier streamed text kept and rescanned with each new chunk, so a phrase
 * or pattern split across chunks is still found. Phrases are at most
 * MK_MAX_NAME_BYTES (256) long, the canary 16, so every phrase is caught; a pattern is
 * caught across a boundary when its match fits in this tail plus the new chunk. */
#define MK_OUTPUT_TAIL_BYTES 512
/* Hex characters of a canary token (8 random bytes). */
#define MK_OUTPUT_CANARY_HEX 16

/* A compiled word + pattern policy; immutable once built, shared by every request. */
struct mk_output_policy;

/* Compiles phrases (matched literally) and patterns (PCRE2 syntax), both caseless and
 * Unicode-aware (UTF + UCP). Either list may be empty; *out is NULL when both are.
 * Returns 0, MK_EINVAL with a sentence in err (a pattern that does not compile, names
 * the entry), MK_ENOMEM. */
int mk_output_policy_new(const char *const *phrases, size_t nphrases, const char *const *patterns,
                         size_t npatterns, struct mk_output_policy **out, mk_buf *err);
void mk_output_policy_free(struct mk_output_policy *p); /* accepts NULL */

/* Builds the policy from cfg->guard and installs it for every request of this
 * process (replacing and freeing any earlier one; call at start, before serving).
 * Returns as mk_output_policy_new. */
int mk_output_guard_open(const struct mk_config *cfg, mk_buf *err);
/* Uninstalls and frees the process's policy (at shutdown, after serving stopped: a
 * request still streaming holds a pointer to it, like the other services). */
void mk_output_guard_close(void);

/* Incremental scanner over one answer: feed the text piece by piece. */
struct mk_output_scan {
    const struct mk_output_policy *policy; /* may be NULL: canary only */
    char canary[MK_OUTPUT_CANARY_HEX + 1]; /* "" = no canary */
    mk_buf tail;                           /* last MK_OUTPUT_TAIL_BYTES of text seen */
    void *md;                              /* PCRE2 match data, made on first use */
};

/* policy may be NULL; canary may be NULL or "" (none). */
void mk_output_scan_init(struct mk_output_scan *s, const struct mk_output_policy *policy, const char *canary);
void mk_output_scan_release(struct mk_output_scan *s);
/*
 * Scans text (UTF-8) together with the kept tail of what came before. Returns 0 when
 * clean, 1 on a hit with *rule set to "canary", "word" or "pattern" (static), or a
 * negative MK_E* (invalid UTF-8, a pattern over its match limit, no memory): the caller
 * must then block too (fail closed).
 */
int mk_output_scan_feed(struct mk_output_scan *s, const char *text, size_t len, const char **rule);

/* Generates a fresh canary: MK_OUTPUT_CANARY_HEX lowercase hex characters + NUL. */
void mk_output_canary_new(char out[MK_OUTPUT_CANARY_HEX + 1]);

#endif
