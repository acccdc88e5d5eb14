/*
 * audit_int: what the writer (mk_audit.c), the verifier and exporter (audit_verify.c)
 * and the CLI share: the record's fields in canonical order, the canonical
 * serialisation, the chain and seal hashing, and the SQL naming the columns. Keeping
 * the field table in one place is what guarantees the writer and the verifier
 * serialise a record the same way.
 */
#ifndef AUDIT_INT_H
#define AUDIT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "audit/mk_audit.h"
#include "core/mk_buf.h"

/* Variable fields in canonical order: enum name, column name. Appending a field is a
 * format change (bump AUDIT_CANON_MAGIC and document it in docs/AUDIT.md). */
#define AUDIT_FIELDS(X)                 \
    X(CHAIN, "chain")                   \
    X(REQUEST_ID, "request_id")         \
    X(PRINCIPAL, "principal")           \
    X(TENANT, "tenant")                 \
    X(ACTION, "action")                 \
    X(MODEL_GROUP, "model_group")       \
    X(DEPLOYMENT, "deployment")         \
    X(VERDICTS, "verdicts")             \
    X(PROMPT_DIGEST, "prompt_digest")   \
    X(ANSWER_DIGEST, "answer_digest")   \
    X(PROMPT_TEXT, "prompt_text")       \
    X(ANSWER_TEXT, "answer_text")       \
    X(OUTCOME, "outcome")

enum audit_field {
#define AUDIT_FIELD_ENUM(e, col) AF_##e,
    AUDIT_FIELDS(AUDIT_FIELD_ENUM)
#undef AUDIT_FIELD_ENUM
    AF_COUNT
};

extern const char *const audit_field_column[AF_COUNT];

/* Canonical form v1 (docs/AUDIT.md):
 *   "MKAUDIT1" | alg u8 | seq u64be | ts_ms i64be | status i32be |
 *   per field in AUDIT_FIELDS order: 0x00 (NULL) or 0x01 | len u32be | bytes */
#define AUDIT_CANON_MAGIC "MKAUDIT1"
#define AUDIT_CANON_SEQ_OFFSET 9  /* where seq sits, patched under the append lock */

/* Test hook: when not 0, the writer's hashing of the record with this seq fails, as if
 * libgcrypt had refused (exercises the fail-closed path). Set it before appending. */
extern uint64_t audit_fault_hash_seq;
#define AUDIT_GENESIS_TAG "MKAUDIT1-GENESIS"
#define AUDIT_SEAL_MAGIC "MKSEAL01"

struct audit_fields {
    uint8_t alg;
    uint64_t seq;
    int64_t ts_ms;
    int32_t status;
    mk_slice v[AF_COUNT];
    bool present[AF_COUNT];
};

/* Bytes the canonical form of f takes. */
size_t audit_canon_size(const struct audit_fields *f);
/* Writes the canonical form into dst (audit_canon_size bytes). When slices_out is not
 * NULL it gets, per field, the slice inside dst holding that field's bytes, so the
 * caller can keep one copy. */
void audit_canon_write(unsigned char *dst, const struct audit_fields *f, mk_slice *slices_out);
void audit_put_u64(unsigned char *p, uint64_t v);

/* libgcrypt: version check and initialisation, once per process. 0 or MK_EINTERNAL. */
int audit_crypto_init(void);
/* gcrypt algorithm id for ours, 0 when unknown. */
int audit_gcry_algo(int alg);
/* out = H(prev || canon). */
int audit_chain_hash(int alg, const uint8_t prev[MK_AUDIT_DIGEST_BYTES], const void *canon, size_t len,
                     uint8_t out[MK_AUDIT_DIGEST_BYTES]);
/* The hash before record 1: H(AUDIT_GENESIS_TAG || chain name). */
int audit_genesis(int alg, mk_slice chain, uint8_t out[MK_AUDIT_DIGEST_BYTES]);
/* The message a seal signs (appended to out). */
int audit_seal_message(mk_buf *out, int alg, mk_slice chain, uint64_t seal_no, uint64_t seq, int64_t ts_ms,
                       const uint8_t head[MK_AUDIT_DIGEST_BYTES]);

void audit_hex(const uint8_t *p, size_t n, char *out /* 2n+1 */);
/* Parses exactly 2n hex digits. */
bool audit_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

/* Column list of audit_log in the order SELECTs return it: seq, ts_ms, alg, status,
 * hash, then AUDIT_FIELDS order. */
#define AUDIT_SELECT_COLUMNS                                                                                 \
    "seq, ts_ms, alg, status, hash, chain, request_id, principal, tenant, action, model_group, deployment, " \
    "verdicts, prompt_digest, answer_digest, prompt_text, answer_text, outcome"
#define AUDIT_SELECT_FIRST_FIELD 5

/* The public key file beside a key file: "x.key" -> "x.pub", else "<path>.pub". */
int audit_pub_path(const char *key_path, mk_buf *out);
#define AUDIT_KEY_FILE "audit-ed25519.key"

struct mk_store_stmt;
/* Reads the current row of a SELECT AUDIT_SELECT_COLUMNS into f (slices point into the
 * statement's row) and the stored hash into *hash (NULL when missing or mis-sized). */
void audit_row_fields(struct mk_store_stmt *st, struct audit_fields *f, mk_slice *hash);

#endif
