/*
 * mk_injection: prompt-injection detection for the input guard.
 *
 * Two detectors look at the normalised text (mk_normalize: every view):
 *   1. Mayak's own pattern set (src/guard/patterns/), compiled with Hyperscan
 *      (PCRE2 JIT where Hyperscan cannot run): override ("ignore previous
 *      instructions"), system-prompt extraction, role-play jailbreaks, indirect
 *      injection in pasted documents, in English, Russian and Kazakh. Each rule
 *      has a category and a weight.
 *   2. A logistic-regression classifier over hashed character n-grams and word
 *      n-grams, trained by `mayak guard train` (mk_guard_train_main); a default
 *      model is compiled in (src/guard/models/, provenance in docs/GUARD.md).
 * The score is their noisy-OR in [0,1]; a policy (per tenant) turns it into
 * allow / flag / block.
 *
 * A detector is immutable once made and may be shared by threads; scanning uses
 * a per-thread workspace (normalisation buffers, Hyperscan scratch) kept in
 * thread-local storage and freed when the thread exits.
 */
#ifndef MK_INJECTION_H
#define MK_INJECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mk_injection_category {
    MK_INJ_NONE = 0,
    MK_INJ_OVERRIDE,   /* "ignore previous instructions", "забудь все инструкции" */
    MK_INJ_EXTRACTION, /* system prompt / secret extraction */
    MK_INJ_ROLEPLAY,   /* jailbreak personas: DAN, developer mode, "ты теперь..." */
    MK_INJ_INDIRECT,   /* instructions aimed at the model inside documents */
    MK_INJ_CLASSIFIER, /* no rule matched; the classifier alone scored high */
    MK_INJ_CATEGORY_COUNT
};

/* "override", "extraction", "roleplay", "indirect", "classifier", "none". Static. */
const char *mk_injection_category_name(enum mk_injection_category c);

enum mk_guard_decision { MK_GUARD_ALLOW = 0, MK_GUARD_FLAG, MK_GUARD_BLOCK };
/* "allow", "flag", "block". Static. */
const char *mk_guard_decision_name(enum mk_guard_decision d);

/* What a tenant lets the guard do at most: ALLOW only scores (decision is always
 * allow), FLAG flags but never blocks, BLOCK flags and blocks. */
struct mk_injection_policy {
    enum mk_guard_decision action;
    float flag_threshold;  /* score >= this -> flag (when action >= FLAG) */
    float block_threshold; /* score >= this -> block (when action == BLOCK) */
};

/* The default policy: block, with thresholds tuned on the train/valid splits
 * (docs/GUARD.md). */
void mk_injection_policy_default(struct mk_injection_policy *p);
/* Parses "allow" | "flag" | "block" into *out; MK_EINVAL otherwise. */
int mk_injection_action_parse(const char *s, enum mk_guard_decision *out);
/* MK_EINVAL unless 0 <= flag_threshold <= block_threshold <= 1 (either may be > 1
 * to mean "never") and action is known. */
int mk_injection_policy_check(const struct mk_injection_policy *p);

#define MK_INJ_MAX_MATCHES 16

struct mk_injection_verdict {
    float score;         /* combined, [0,1] */
    float pattern_score; /* noisy-OR of matched rule weights, [0,1] */
    float model_score;   /* classifier probability, [0,1]; 0 when no model */
    enum mk_guard_decision decision;
    enum mk_injection_category top_category;
    unsigned nmatches;                    /* rules matched (may exceed the array) */
    unsigned matches[MK_INJ_MAX_MATCHES]; /* their ids, ascending */
    unsigned norm_flags;                  /* MK_NORM_F_* of the text */
};

struct mk_injection_options {
    /* Classifier model file (from `mayak guard train`); NULL = the built-in default. */
    const char *model_path;
    /* Directory for the compiled pattern database cache; NULL = compile at start. */
    const char *cache_dir;
    /* Use the PCRE2 matcher even where Hyperscan runs (tests, comparisons). */
    bool force_pcre2;
    /* Skip the classifier (rules only). */
    bool no_model;
    /* Default policy for mk_injection_scan; NULL = mk_injection_policy_default. */
    const struct mk_injection_policy *policy;
};

struct mk_injection;

/*
 * Build a detector. opt may be NULL (all defaults).
 * Returns 0 and *out (free with mk_injection_free); MK_ENOTFOUND / MK_EIO when the
 * model file cannot be read; MK_ECORRUPT when it is not a valid model; MK_EINVAL
 * for a bad policy; MK_EINTERNAL if the pattern set does not compile (a bug);
 * MK_ENOMEM.
 */
int mk_injection_new(const struct mk_injection_options *opt, struct mk_injection **out);
void mk_injection_free(struct mk_injection *det);

/* "hyperscan" or "pcre2". Static. */
const char *mk_injection_backend(const struct mk_injection *det);

/*
 * Score text[0..len) (UTF-8, need not be NUL-terminated) under the detector's
 * default policy. Fills *out completely on success.
 * Returns 0; MK_EBADUTF8 for invalid UTF-8; MK_ETOOBIG past MK_NORM_MAX_INPUT;
 * MK_EINVAL for NULL arguments; MK_ENOMEM. On failure *out says block (fail
 * closed) with score 1.
 */
int mk_injection_scan(const struct mk_injection *det, const char *text, size_t len,
                      struct mk_injection_verdict *out);
/* The same under an explicit policy (a tenant's). */
int mk_injection_scan_policy(const struct mk_injection *det, const char *text, size_t len,
                             const struct mk_injection_policy *policy, struct mk_injection_verdict *out);

/* Rule metadata by id (for logs, audit and docs): category and weight. MK_ENOTFOUND
 * for an unknown id. */
int mk_injection_rule_info(unsigned id, enum mk_injection_category *category, float *weight, const char **lang);

/*
 * `mayak guard train --data FILE.jsonl [--data FILE2.jsonl ...] --out MODEL
 *   [--emit-c FILE.c] [--bits N] [--epochs N] [--seed N] [--split NAME]`
 * Trains the classifier from labelled JSONL ({"text": ..., "label": 0|1}; rows
 * with "split" other than NAME (default "train") are skipped, and rows whose split
 * is "test" are never used). Same data and options -> the same model bytes.
 * Returns a process exit status (0 ok, 1 failure, 2 usage); messages on stderr.
 */
int mk_guard_train_main(int argc, char **argv);

#endif
