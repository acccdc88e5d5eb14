/*
 * mk_desk_signals: what a user's message says about the conversation rather than the
 * problem — the user asks for a person, is frustrated, or says the last answer did
 * not help. The desk escalates to a human on these (mk_desk.h).
 *
 * Small hand-written lexicons in Russian, English and Kazakh, matched at word starts
 * on the Unicode case-folded text (so "Позовите" and "ПОЗОВИТЕ" match "позовите", and a
 * stem such as "бесполезн" matches every ending), plus typographic signals of anger:
 * runs of "!!", "?!" and a message written mostly in capitals. Deliberately
 * conservative: a false "frustrated" sends a user to a queue they did not ask for.
 */
#ifndef MK_DESK_SIGNALS_H
#define MK_DESK_SIGNALS_H

#include <stdbool.h>
#include <stddef.h>

/* A message is frustrated when its score reaches this: one strong word (0.6), or a
 * mild word with shouting punctuation or capitals. */
#define MK_DESK_FRUSTRATION_THRESHOLD 0.6

struct mk_desk_signals {
    bool wants_human;        /* "позовите оператора", "I want to talk to a human", "маманмен сөйлескім келеді" */
    bool frustrated;         /* frustration >= MK_DESK_FRUSTRATION_THRESHOLD */
    double frustration;      /* 0.. (sum of the signals found) */
    bool negative_feedback;  /* "не помогло", "that didn't help", "көмектеспеді" */
    const char *matched;     /* the lexicon entry behind wants_human, else behind frustration (static) */
};

/* Scans text[0..len) (UTF-8; invalid bytes are skipped; only the first 16 KB read).
 * Returns 0 with *out filled, MK_EINVAL (NULL out, or NULL text with len > 0), or
 * MK_ENOMEM (then *out is all false). */
int mk_desk_signals_scan(const char *text, size_t len, struct mk_desk_signals *out);

#endif
