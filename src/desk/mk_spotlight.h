/*
 * mk_spotlight: spotlighting — putting untrusted text (retrieved passages, documents
 * users uploaded) into an LLM prompt so the model can tell it from instructions.
 *
 * Two of the known spotlighting techniques together:
 *  - delimiting: each passage sits between a start and an end line carrying a random
 *    per-prompt tag ("<<<mk-3f9a1c2e source=... >>>" ... "<<<end-mk-3f9a1c2e>>>"), so a
 *    passage cannot close its own block: it does not know the tag, and any "<<<" or
 *    ">>>" it contains is defused;
 *  - datamarking: every run of white space inside the passage becomes one marker
 *    character (U+02C6 "ˆ" by default), so instructions hidden in a passage no longer
 *    read as ordinary prose and the model can see, word by word, what is data.
 * The system prompt explains both (mk_spotlight_rules), in the user's language.
 *
 * Line structure survives (a line break becomes "ˆ\n"), so numbered steps stay legible.
 */
#ifndef MK_SPOTLIGHT_H
#define MK_SPOTLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"

/* One prompt's spotlighting state: the tag all its passages share. */
struct mk_spotlight {
    char tag[24];        /* "mk-" + 16 hex digits */
    const char *mark;    /* the datamark (UTF-8, no white space); default "ˆ" */
};

/* Initialises s with a tag derived from seed (give each prompt a fresh random one,
 * e.g. from mk_rand; equal seeds give equal tags, which tests use). */
void mk_spotlight_init(struct mk_spotlight *s, uint64_t seed);

/* Appends one delimited, datamarked passage to out:
 *   <<<TAG source="SOURCE" title="TITLE">>>\n DATAMARKED TEXT \n<<<end-TAG>>>\n
 * source and title (may be NULL) are attribute values: quotes, '<', '>' and control
 * characters in them are replaced. Text bytes that are not valid UTF-8 become U+FFFD.
 * Returns 0 or MK_ENOMEM / MK_ETOOBIG (out's cap); out may then hold part of it. */
int mk_spotlight_passage(const struct mk_spotlight *s, mk_buf *out, const char *source, const char *title,
                         const char *text, size_t len);

/* Appends the instructions that tell the model how to treat the blocks, in lang
 * ("ru", "kk"; anything else = English). 0 or an mk_buf error. */
int mk_spotlight_rules(const struct mk_spotlight *s, const char *lang, mk_buf *out);

#endif
