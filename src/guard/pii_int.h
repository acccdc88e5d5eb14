/*
 * pii_int: the contract between the PII detector's files (not for other modules).
 *
 * mk_pii.c runs the scanners over the text; each scanner appends candidates with a
 * confidence to a candidate list; mk_pii.c then resolves overlaps. pii_names.c owns
 * the name hash sets built from src/guard/data/; pii_fold.c has the small UTF-8 case
 * folding the detector, the vault and the leak check share.
 */
#ifndef MK_PII_INT_H
#define MK_PII_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guard/mk_pii.h"

typedef struct pii_cands {
    mk_pii_match *v;
    size_t n, cap;
    bool overflow;   /* MK_PII_MAX_MATCHES reached */
    bool nomem;
} pii_cands;

/* Appends a candidate; on failure sets overflow/nomem and drops it. */
void pii_cand_add(pii_cands *c, size_t start, size_t end, mk_pii_type t, float conf,
                  unsigned flags);

/* Scanners, each over the whole text. */
void pii_scan_digits(const char *s, size_t len, uint32_t types, pii_cands *c);
void pii_scan_email(const char *s, size_t len, pii_cands *c);
void pii_scan_iban(const char *s, size_t len, pii_cands *c);
void pii_scan_ipv6(const char *s, size_t len, pii_cands *c);
void pii_scan_names(const char *s, size_t len, pii_cands *c);

/* Context words: the folded text around a span, built once and then asked about
 * several keyword lists. The span itself is replaced by a marker so a keyword never
 * runs through it. */
#define PII_CTX_MAX 96
typedef struct pii_window {
    char buf[2 * 4 * PII_CTX_MAX + 8];
} pii_window;
void pii_window_fill(pii_window *w, const char *s, size_t len, size_t start, size_t end,
                     size_t before, size_t after);
/* True when one of the NUL-terminated lower-case keywords occurs in the window. */
bool pii_window_has(const pii_window *w, const char *const *keywords);
/* Both in one (for a single question). before/after are at most PII_CTX_MAX. */
bool pii_context(const char *s, size_t len, size_t start, size_t end, size_t before,
                 size_t after, const char *const *keywords);

/* ---- UTF-8 case folding (ASCII, Latin-1 letters, Cyrillic incl. Kazakh) ---- */
/* Decodes one code point at s[0..len); *n gets its length (1 for an invalid byte,
 * which decodes as U+FFFD). len must be > 0. */
uint32_t pii_utf8_decode(const char *s, size_t len, size_t *n);
/* Encodes cp into out (4 bytes room); returns the length. */
size_t pii_utf8_encode(uint32_t cp, char *out);
/* Lower-case of cp for the scripts above, ё -> е folded too; other cp unchanged. */
uint32_t pii_lower(uint32_t cp);
bool pii_is_upper(uint32_t cp);
bool pii_is_letter(uint32_t cp);
/* Folds s into out (cap bytes incl. NUL); returns the folded length, or 0 when it
 * does not fit. */
size_t pii_fold(const char *s, size_t len, char *out, size_t cap);

/* ---- name lists (pii_names.c) ---- */
#define PII_NAME_RU_FIRST 0x01u
#define PII_NAME_RU_SURNAME 0x02u
#define PII_NAME_KZ_FIRST 0x04u
#define PII_NAME_EN_FIRST 0x08u
#define PII_NAME_STOP 0x10u      /* a capitalised word that is not a name */
#define PII_NAME_TITLE 0x20u     /* Mr, Dr, господин: a name follows */
#define PII_NAME_FOREIGN_FIRST 0x40u /* foreign first names spelt in Cyrillic */
#define PII_NAME_AMBIG 0x80u     /* also a common word ("Вера", "Will"): weak alone */

/* The data tables (src/guard/data/): NULL-terminated arrays of UTF-8 strings. An
 * entry "Павел/павл" gives an extra oblique stem after the slash. */
extern const char *const pii_data_ru_first[];
extern const char *const pii_data_ru_surnames[];
extern const char *const pii_data_kz_first[];
extern const char *const pii_data_en_first[];
extern const char *const pii_data_cyr_foreign_first[];
extern const char *const pii_data_stop[];
extern const char *const pii_data_titles[];

/* Class bits of a folded key in the name sets: the low byte for the word as listed,
 * the next byte (<< 8) when the key is the oblique-case stem of a listed name
 * ("петр" of Петр/Петра/Петру, "анн" of Анна/Анне). 0 when absent. Builds the sets
 * on first use (thread-safe). */
unsigned pii_names_lookup(const char *folded, size_t len);
/* Entries loaded into the sets and entries dropped because the static tables were
 * too small (must be 0: a test checks it). */
void pii_names_stats(size_t *loaded, size_t *dropped);
/* Is the folded word a first name in any case form ("петру", "марией")? */
bool pii_names_is_first(const char *folded, size_t n);

/* ---- canonical values (pii_vault.c): what "the same value" means ---- */
/* Digits only for number types (a phone's leading 8 becomes 7), upper-case
 * alphanumerics for IBAN, case-folded text with single spaces otherwise. Writes to
 * out (cap bytes); returns the length, 0 when it does not fit or nothing is left. */
size_t pii_canon(mk_pii_type t, const char *v, size_t len, char *out, size_t cap);
bool pii_type_is_numeric(mk_pii_type t);

/* Matches a placeholder at s[0..n) (s[0] == '<'). Returns 1 with *ent and *used for
 * a complete placeholder of this vault, 2 when s[0..n) is a proper prefix of one
 * (more bytes could complete it), 0 otherwise. */
int pii_vault_match(const mk_pii_vault *v, const char *s, size_t n, const void **ent,
                    size_t *used);
/* The original value of an entry pii_vault_match returned. */
mk_slice pii_vault_entry_value(const void *ent);

#endif
