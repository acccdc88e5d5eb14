/*
 * mk_pii: personal data (PII) in Russian, Kazakh and English text -- detection with
 * validation, masking, a reversible per-request placeholder vault, and restoring the
 * placeholders in streamed output.
 *
 * Why validation and not just shape: a support chat is full of numbers (orders,
 * tracking codes, amounts). A 10-digit number is an INN only when its check digit
 * agrees, a 16-digit one a card only when Luhn agrees; context words ("ИНН", "р/с",
 * "тел.") raise or lower confidence where shape alone is ambiguous.
 *
 * Flow in the input guard (policy "placeholder"):
 *   vault = mk_pii_vault_new();
 *   mk_pii_redact(text, len, &opts, &policy, vault, &masked, NULL);   -> to the provider
 *   r = mk_pii_restorer_new(vault);  feed each streamed chunk; flush at end -> to the caller
 *   mk_pii_vault_free(vault) at the request's end.
 *
 * Detection is a single pass of small state machines over bytes (no regex engine);
 * name lists are hash sets built once on first use (thread-safe) from src/guard/data/.
 * All offsets are byte offsets into the caller's UTF-8 text. Nothing here blocks,
 * logs personal data, or keeps a pointer into the caller's text after returning.
 */
#ifndef MK_PII_H
#define MK_PII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"

/* Matches reported for one text; more is abuse (a 1 MB body of random card numbers)
 * and the scan stops there rather than grow without bound. */
#define MK_PII_MAX_MATCHES 65536
/* Distinct values one vault holds (placeholders per request). */
#define MK_PII_VAULT_MAX 16384
/* Longest value a vault stores; detected spans are far shorter (a name of four
 * words, an e-mail address). Longer values are refused with MK_ETOOBIG. */
#define MK_PII_VALUE_MAX 512
/* A placeholder is "<" TYPE "_" number ">": at most 9 + 1 + 5 + 2 bytes. */
#define MK_PII_PLACEHOLDER_MAX 24

typedef enum mk_pii_type {
    MK_PII_NONE = 0,
    MK_PII_PERSON,
    MK_PII_INN,
    MK_PII_SNILS,
    MK_PII_PASSPORT,
    MK_PII_OGRN,
    MK_PII_OGRNIP,
    MK_PII_CARD,
    MK_PII_ACCOUNT,
    MK_PII_PHONE,
    MK_PII_EMAIL,
    MK_PII_IBAN,
    MK_PII_IP,
    MK_PII_TYPE_COUNT
} mk_pii_type;

#define MK_PII_BIT(t) (1u << (t))
#define MK_PII_ALL (((1u << MK_PII_TYPE_COUNT) - 1u) & ~1u)

/* "PERSON", "INN", ... (the placeholder tag); "NONE" for 0 or out of range. Static. */
const char *mk_pii_type_name(mk_pii_type t);
/* Parses a type name case-insensitively ("inn", "PERSON"); MK_PII_NONE when unknown. */
mk_pii_type mk_pii_type_parse(const char *s, size_t len);

/* Flags on a match: why it was believed. */
#define MK_PII_F_CHECKSUM 0x01u /* a check digit / Luhn / mod 97 agreed */
#define MK_PII_F_CONTEXT  0x02u /* a context word for the type was near */
#define MK_PII_F_LIST     0x04u /* a name came from a name list */

typedef struct mk_pii_match {
    size_t start, end;   /* byte span [start, end) in the scanned text */
    mk_pii_type type;
    float confidence;    /* 0..1 */
    unsigned flags;      /* MK_PII_F_* */
} mk_pii_match;

/* A growable list of matches, sorted by start, never overlapping. */
typedef struct mk_pii_matches {
    mk_pii_match *v;
    size_t n, cap;
} mk_pii_matches;

#define MK_PII_MATCHES_INIT {NULL, 0, 0}
/* Frees the array; the list is then empty and reusable. Accepts NULL. */
void mk_pii_matches_release(mk_pii_matches *m);

typedef struct mk_pii_options {
    uint32_t types;          /* MK_PII_BIT() set to look for; 0 means MK_PII_ALL */
    float min_confidence;    /* report matches at or above; 0 means the default 0.5 */
} mk_pii_options;

/*
 * Finds personal data in text (UTF-8; invalid bytes are treated as separators, never
 * an error). opts may be NULL (all types, default threshold). Appends to `out`
 * (which it first empties) non-overlapping matches sorted by start: where candidates
 * overlap, the more confident (then longer) wins.
 * Returns 0, MK_EINVAL (NULL text with len > 0, NULL out), MK_ENOMEM, or MK_ETOOBIG
 * when more than MK_PII_MAX_MATCHES were found (out then holds the first ones).
 */
int mk_pii_detect(const char *text, size_t len, const mk_pii_options *opts, mk_pii_matches *out);

/* ---- validators (digits only, no separators; exposed for tests and callers) ---- */
bool mk_pii_valid_inn(const char *digits, size_t n);    /* 10 or 12 digits */
bool mk_pii_valid_snils(const char *digits, size_t n);  /* 11 digits */
bool mk_pii_valid_ogrn(const char *digits, size_t n);   /* 13 digits, mod 11 */
bool mk_pii_valid_ogrnip(const char *digits, size_t n); /* 15 digits, mod 13 */
bool mk_pii_luhn(const char *digits, size_t n);          /* any length >= 2 */
/* 20-digit account against a 9-digit BIK (control key, weights 7 1 3). */
bool mk_pii_valid_account(const char *account20, const char *bik9);
/* IBAN: letters and digits, spaces allowed between groups, case-insensitive, mod 97. */
bool mk_pii_valid_iban(const char *s, size_t n);

/* ---- the vault: reversible placeholders for one request ---- */
typedef struct mk_pii_vault mk_pii_vault;

/* NULL only when memory is exhausted. Not thread-safe: one request, one loop. */
mk_pii_vault *mk_pii_vault_new(void);
/* Wipes (sodium_memzero) and frees every stored value. Accepts NULL. */
void mk_pii_vault_free(mk_pii_vault *v);
/* Number of distinct values stored. */
size_t mk_pii_vault_count(const mk_pii_vault *v);

/*
 * Stores `value` of type t and gives its placeholder ("<INN_1>"): numbered per type
 * in order of first appearance; the same value (compared in its canonical form --
 * digits only for number types, case-folded for e-mail) gets the same placeholder.
 * *placeholder points into the vault and lives until the vault is freed.
 * Returns 0, MK_EINVAL (bad type, empty value), MK_ETOOBIG (value longer than
 * MK_PII_VALUE_MAX or the vault full), MK_ENOMEM.
 */
int mk_pii_vault_put(mk_pii_vault *v, mk_pii_type t, const char *value, size_t len,
                     mk_slice *placeholder);
/* Placeholder -> original value (as first seen). 0 or MK_ENOTFOUND. Slice into the vault. */
int mk_pii_vault_lookup_placeholder(const mk_pii_vault *v, const char *ph, size_t len,
                                    mk_slice *value);
/* Original value -> placeholder (canonical comparison as in put). 0 or MK_ENOTFOUND. */
int mk_pii_vault_lookup_value(const mk_pii_vault *v, mk_pii_type t, const char *value,
                              size_t len, mk_slice *placeholder);
/* Appends text to out with every known placeholder replaced by its value; unknown
 * "<X_9>" stay as they are. 0, MK_ENOMEM, MK_ETOOBIG (out's cap). */
int mk_pii_vault_restore(const mk_pii_vault *v, const char *text, size_t len, mk_buf *out);

/*
 * Leak check for output guards: does text contain any original value of the vault?
 * Number types are compared on digits only (so "7707 083 893" matches "7707083893"),
 * e-mail case-insensitively, names on their words (Cyrillic/Latin case folded).
 * Returns true and, when non-NULL, the byte offset of the first hit and its type.
 */
bool mk_pii_vault_leaks(const mk_pii_vault *v, const char *text, size_t len, size_t *at,
                        mk_pii_type *type);

/* ---- streaming restore ---- */
typedef struct mk_pii_restorer mk_pii_restorer;

/* The vault must outlive the restorer (it is only read). NULL when out of memory
 * or v is NULL. */
mk_pii_restorer *mk_pii_restorer_new(const mk_pii_vault *v);
void mk_pii_restorer_free(mk_pii_restorer *r);
/*
 * Feeds one chunk of output; appends to out the text that is now certain, with
 * placeholders replaced. Holds back only the shortest tail that could still become
 * a placeholder of this vault (at most MK_PII_PLACEHOLDER_MAX - 1 bytes), so a
 * placeholder split across chunks ("<PER" + "SON_1>") is restored whole.
 * Returns 0, MK_ENOMEM, MK_ETOOBIG (out's cap), MK_EINVAL (NULL args).
 */
int mk_pii_restorer_feed(mk_pii_restorer *r, const char *chunk, size_t len, mk_buf *out);
/* End of stream: appends whatever was held back. The restorer can then be reused. */
int mk_pii_restorer_flush(mk_pii_restorer *r, mk_buf *out);
/* Bytes currently held back (for tests and stream guards). */
size_t mk_pii_restorer_pending(const mk_pii_restorer *r);

/* ---- masking ---- */
typedef enum mk_pii_mode {
    MK_PII_MODE_OFF = 0,     /* leave the value as it is (detect only) */
    MK_PII_MODE_REDACT,      /* "[REDACTED]" */
    MK_PII_MODE_MASK,        /* keep the last 4 digits, the e-mail domain, initials */
    MK_PII_MODE_HASH,        /* "<INN#3fa9c0d2e81b>": keyed BLAKE2b, stable per tenant key */
    MK_PII_MODE_PLACEHOLDER, /* "<INN_1>" in the vault, restored on the way out */
} mk_pii_mode;

/* "off|redact|mask|hash|placeholder" -> mode; -1 when unknown. */
int mk_pii_mode_parse(const char *s, size_t len);
const char *mk_pii_mode_name(mk_pii_mode m);

#define MK_PII_HASH_KEY_MIN 16
#define MK_PII_HASH_KEY_MAX 64

typedef struct mk_pii_policy {
    mk_pii_mode mode;                          /* for every type without its own */
    mk_pii_mode per_type[MK_PII_TYPE_COUNT];   /* OFF entries fall back to mode */
    const unsigned char *hash_key;             /* HASH mode: the tenant's key */
    size_t hash_key_len;                       /* MK_PII_HASH_KEY_MIN..MAX */
} mk_pii_policy;

/*
 * Appends text to out with each match replaced per policy. Matches must be sorted
 * and non-overlapping within [0, len) (as mk_pii_detect gives). vault is needed
 * (non-NULL) only when some match resolves to PLACEHOLDER. If `applied` is non-NULL
 * it receives the number of spans replaced.
 * Returns 0, MK_EINVAL (bad matches, missing vault or hash key), MK_ENOMEM,
 * MK_ETOOBIG (out's cap, vault full). On error out may hold a partial result which
 * the caller must not send anywhere.
 */
int mk_pii_apply(const char *text, size_t len, const mk_pii_match *m, size_t n,
                 const mk_pii_policy *policy, mk_pii_vault *vault, mk_buf *out,
                 size_t *applied);

/* Detect + apply in one call. Same returns as the two. */
int mk_pii_redact(const char *text, size_t len, const mk_pii_options *opts,
                  const mk_pii_policy *policy, mk_pii_vault *vault, mk_buf *out,
                  size_t *applied);

#endif
