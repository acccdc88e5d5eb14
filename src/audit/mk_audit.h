/*
 * mk_audit: the tamper-evident audit log. Every API request and admin action appends a
 * record; records form a hash chain (Streebog-256 per GOST R 34.11-2012, or SHA-256),
 * and the chain head is sealed now and then with an Ed25519 signature. `mayak audit
 * verify` recomputes everything and names the first bad record. docs/AUDIT.md gives the
 * record format, the canonical serialisation and the threat model.
 *
 * Speed: mk_audit_append does no hashing: it validates the record, copies it into one
 * allocation, takes the next sequence number and queues the record (a few microseconds
 * whatever the hash, plus a memcpy of the texts). A background writer thread takes the
 * queue, computes in sequence order the digests of prompt and answer, the canonical
 * serialisation's chain hash H(prev || record) (order is exact: seq is assigned under
 * the same lock as the FIFO push), and writes the records in one transaction every
 * flush_interval_ms or batch_max records. The append itself never touches the disk.
 *
 * Durability window: a record is durable once its batch commits (mk_audit_durable_seq
 * reaches its seq), at most about flush_interval_ms after the append plus the commit
 * time. A process crash loses the records appended but not yet committed; a power loss
 * loses nothing committed (the store syncs each commit unless opened with SYNC_NORMAL).
 * Who needs a record on disk before answering calls mk_audit_flush.
 *
 * Thread safety: every function may be called from any thread, except that
 * mk_audit_free must be the last call.
 */
#ifndef MK_AUDIT_H
#define MK_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/mk_buf.h"
#include "store/mk_store.h"

/* Limits (candidates for core/mk_limits.h). */
/* Verdicts JSON of one record: every guard's verdict fits in a few KB. */
#define MK_AUDIT_MAX_VERDICTS_BYTES (64 * 1024)
/* Raw prompt/answer text kept for tenants that opt in; longer text is stored cut at a
 * UTF-8 boundary (the digest always covers the whole text). */
#define MK_AUDIT_MAX_RAW_BYTES (1024 * 1024)
/* Records waiting for the writer (queued, being hashed, or written but not committed).
 * When the store stalls this long, appends fail (MK_EUNAVAILABLE) so requests fail
 * closed instead of going unaudited. */
#define MK_AUDIT_DEFAULT_MAX_PENDING (256 * 1024)
/* Memory those records may hold: until the writer digests them, records keep their
 * whole prompt and answer. Beyond this appends fail with MK_EUNAVAILABLE too. */
#define MK_AUDIT_MAX_PENDING_BYTES ((size_t)1024 * 1024 * 1024)
#define MK_AUDIT_DIGEST_BYTES 32
#define MK_AUDIT_PUBKEY_BYTES 32

enum mk_audit_hash {
    MK_AUDIT_STREEBOG256 = 1,   /* GOST R 34.11-2012, 256-bit (libgcrypt GCRY_MD_STRIBOG256) */
    MK_AUDIT_SHA256 = 2,
};

struct mk_audit_options {
    enum mk_audit_hash hash;      /* 0 = Streebog-256 */
    const char *chain;            /* chain name, one per writing process; NULL = "main" */
    const char *key_path;         /* Ed25519 key; NULL = <data_dir>/audit-ed25519.key (public half: .pub) */
    uint32_t flush_interval_ms;   /* 0 = 5 */
    uint32_t batch_max;           /* 0 = 1024: queued records that wake the writer early */
    uint32_t seal_every;          /* 0 = 10000 records */
    uint32_t seal_interval_ms;    /* 0 = 60000 (also sealed at close) */
    size_t max_pending;           /* 0 = MK_AUDIT_DEFAULT_MAX_PENDING */
};

/* One record as given by the caller. Strings are NUL-terminated and may be NULL
 * (stored as NULL); nothing is kept after the call returns. */
struct mk_audit_record {
    int64_t ts_ms;                /* wall clock ms; 0 = now */
    const char *request_id;
    const char *principal;        /* key id, user subject, "local" */
    const char *tenant;
    const char *action;           /* required: "chat.completions", "admin.keys.create" ... */
    const char *model_group;
    const char *deployment;
    const char *verdicts_json;    /* guards' verdicts as a JSON object (not re-validated) */
    const char *prompt;           /* digested; kept raw only when store_raw */
    size_t prompt_len;
    const char *answer;
    size_t answer_len;
    bool store_raw;               /* the tenant opted in to keeping raw text */
    const char *outcome;          /* "ok", "blocked:prompt_injection", "error:upstream" ... */
    int status;                   /* HTTP status answered */
};

struct mk_audit;

/* The store URL the CLI uses when none is given: "<data_dir>/mayak.db" (appended to out). */
int mk_audit_default_store_url(const char *data_dir, mk_buf *out);

/* The audit tables' migrations (module "audit"); mk_audit_open applies them. */
int mk_audit_migrate(struct mk_store *store, mk_buf *err);

/* Opens the chain `opt->chain` in store: applies migrations, loads the chain head,
 * loads or creates (mode 0600, with <key>.pub beside it) the sealing key, starts the
 * writer thread (which holds one store connection until mk_audit_free). data_dir is
 * created (0700) when missing. opt may be NULL. The store must outlive the audit.
 * MK_ECONFIG: key file readable by group/others, or malformed; MK_EIO; MK_ENOMEM;
 * store errors. err (may be NULL) gets a sentence on failure. */
int mk_audit_open(struct mk_store *store, const char *data_dir, const struct mk_audit_options *opt,
                  struct mk_audit **out, mk_buf *err);
/* Writes everything pending, seals the tail, stops the writer. Accepts NULL. */
void mk_audit_free(struct mk_audit *a);

/* Appends one record. On success *seq_out (may be NULL) is its sequence number: its
 * place in the chain is fixed, but its digests and chain hash are computed later by the
 * writer thread, and it is durable only after its batch commits. MK_EINVAL (no action,
 * a name longer than MK_MAX_NAME_BYTES, bad status), MK_ETOOBIG (verdicts),
 * MK_EUNAVAILABLE (the writer is stuck: max_pending records or
 * MK_AUDIT_MAX_PENDING_BYTES reached; closing; or the writer failed to hash a record
 * earlier and stopped the chain, see mk_audit_writer_error), MK_ENOMEM. A failed
 * append leaves no trace in the chain.
 * Hashing failure (libgcrypt refusing; not expected in practice): the writer cannot
 * chain that record nor any after it, so it commits the records before it, drops that
 * record and every later one (already appended and given a seq: they are lost and
 * logged with their seq range), and fails closed from then on: every later append
 * returns MK_EUNAVAILABLE, mk_audit_writer_error reports the error, and a flush
 * covering a lost record returns MK_EUNAVAILABLE. Reopening the audit resumes the
 * chain from the last committed record.
 * Costs on the caller's thread: validation, one malloc and a copy of the record
 * (prompt and answer whole: they are digested later; the copy held for digesting only
 * is freed as soon as the writer took the digests), one short lock. No hashing. */
int mk_audit_append(struct mk_audit *a, const struct mk_audit_record *r, uint64_t *seq_out);

/* Waits until every record appended before the call is hashed and committed, or
 * timeout_ms passes (MK_ETIMEOUT); MK_EUNAVAILABLE when one of them was lost to a
 * hashing failure (see mk_audit_append). Blocks: not for the event loop. */
int mk_audit_flush(struct mk_audit *a, uint32_t timeout_ms);
/* Last committed sequence number (0 = none). */
uint64_t mk_audit_durable_seq(struct mk_audit *a);
/* Last appended sequence number: the record holds that place in the chain, though its
 * hash may not be computed yet (the writer does that; see mk_audit_durable_seq). */
uint64_t mk_audit_head_seq(struct mk_audit *a);
/* The last error of the writer (0 = healthy), e.g. for a health endpoint: a store
 * error while batches are retried, or for good a hashing failure (appends refused). */
int mk_audit_writer_error(struct mk_audit *a);
/* The sealing public key. */
void mk_audit_public_key(const struct mk_audit *a, uint8_t out[MK_AUDIT_PUBKEY_BYTES]);

/* Reads a public key: 64 hex digits, or a file holding them (e.g. audit-ed25519.pub). */
int mk_audit_parse_public_key(const char *hex_or_path, uint8_t out[MK_AUDIT_PUBKEY_BYTES]);
/* Digest of data with the given algorithm (libgcrypt); MK_EINVAL on an unknown one. */
int mk_audit_digest(enum mk_audit_hash alg, const void *data, size_t len, uint8_t out[MK_AUDIT_DIGEST_BYTES]);
/* "streebog256" / "sha256" / "unknown"; parse gives MK_EINVAL when unknown. */
const char *mk_audit_hash_name(enum mk_audit_hash alg);
int mk_audit_hash_parse(const char *name);

/* Verification. */
struct mk_audit_verify_report {
    bool ok;
    uint64_t chains;              /* chains checked */
    uint64_t records;             /* records checked */
    uint64_t seals;               /* seals whose signature checked out */
    uint64_t unsealed;            /* records after the last seal of their chain: their
                                     hashes chain correctly but no signature covers them */
    bool key_pinned;              /* seals checked against a key given by the caller */
    /* When !ok: the first problem found. */
    char chain[64];
    uint64_t first_bad_seq;       /* the first bad record's seq (0 if the problem is a seal alone) */
    int64_t bad_seal_no;          /* the seal involved, or -1 */
    char reason[256];
};

/* Checks every chain in the store: sequence numbers contiguous from 1, each record's
 * hash equals H(previous hash || canonical record), seals numbered from 1 with
 * increasing seq, each seal's Ed25519 signature valid and its head hash equal to the
 * recomputed hash at its seq, no seal beyond the last record. pubkey pins the key seals
 * must carry; NULL accepts the key stored with each seal (consistency only: whoever
 * can write the store and has the key file could re-seal). Returns 0 when the check
 * ran (the verdict is rep->ok), or a store error. Blocking. */
int mk_audit_verify(struct mk_store *store, const uint8_t *pubkey, struct mk_audit_verify_report *rep);

/* Writes records as JSON lines to out, in chain then seq order, from since_ms (wall
 * clock ms, 0 = all) on. chain NULL = all chains. *count (may be NULL) gets how many.
 * Blocking. MK_EIO when writing fails. */
int mk_audit_export_jsonl(struct mk_store *store, FILE *out, int64_t since_ms, const char *chain, uint64_t *count);

/* `mayak audit verify|export|pubkey ...`: argv[0] is the subcommand. Returns the exit
 * status (0 ok, 1 verification failed, 2 usage or operational error). */
int mk_audit_cli_main(int argc, char **argv, const char *data_dir);

#endif
