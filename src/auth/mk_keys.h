/*
 * mk_keys: API keys. Created, listed, rotated and revoked (CLI and admin API); the
 * key itself is shown once and stored only as a keyed hash.
 *
 * Format: "mk-" + 8-char public id + "_" + 43 base62 chars of secret (~256 bits), e.g.
 * mk-Q3vX9aKd_7Hn...; the id is what lists and logs show. Stored: BLAKE2b-256 of the
 * whole key keyed with a subkey of the server secret (<data_dir>/auth.secret, see
 * mk_auth.h), so a stolen database alone does not let anyone test guesses offline.
 *
 * Hot path: mk_keys_verify never touches SQLite for a key seen recently. Verified
 * keys (and, briefly, unknown ones) are cached in memory by hash. An entry older than
 * cache_ttl_ms (default 5 s) is re-read from the store before it is trusted again, so
 * a revocation or rotation done on ANOTHER node takes effect here within cache_ttl_ms;
 * on this node mk_keys_revoke/rotate drop the entry at once. The same re-read writes
 * last_used_at (at most once a minute per key).
 *
 * Stored in the store under migrations module "keys" (table api_keys).
 */
#ifndef MK_KEYS_H
#define MK_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "auth/mk_auth.h"
#include "core/mk_buf.h"
#include "store/mk_store.h"

#define MK_KEY_ID_CHARS 8
#define MK_KEY_SECRET_CHARS 43
#define MK_KEY_PREFIX "mk-"
/* "mk-" id "_" secret NUL */
#define MK_KEY_STRING_BYTES (3 + MK_KEY_ID_CHARS + 1 + MK_KEY_SECRET_CHARS + 1)
#define MK_KEY_NAME_MAX 128

struct mk_keys;

struct mk_key_record {
    char id[MK_KEY_ID_CHARS + 1];
    char tenant[MK_AUTH_MAX_TENANT];
    enum mk_role role;
    char name[MK_KEY_NAME_MAX];
    char models[MK_AUTH_MAX_MODELS];  /* comma-separated; "" = all */
    uint32_t rpm, tpm;                /* 0 = the role's default */
    double budget_day, budget_month;  /* 0 = none */
    int64_t expires_at_ms;            /* 0 = never */
    int64_t created_at_ms, last_used_at_ms, revoked_at_ms; /* 0 = never */
    char rotated_from[MK_KEY_ID_CHARS + 1]; /* "" unless made by a rotation */
};

/* What a new key is allowed. tenant: 1-63 of [A-Za-z0-9._-]; models: comma-separated
 * model group names without spaces ("" or NULL = all); name: free text label. */
struct mk_key_spec {
    const char *tenant;
    enum mk_role role;
    const char *name;
    const char *models;
    uint32_t rpm, tpm;
    double budget_day, budget_month;
    int64_t expires_at_ms;
};

struct mk_keys_options {
    uint32_t cache_ttl_ms;     /* default 5000: the cross-node revocation delay */
    uint32_t negative_ttl_ms;  /* default 1000: how long an unknown key is remembered */
    uint32_t cache_slots;      /* default 16384 (rounded up to a power of two) */
    /* Wall clock in Unix ms for expiry and timestamps; NULL = the real one (tests). */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
};

/* Opens the key registry over an open store (not owned; must outlive the registry):
 * runs the "keys" migrations and loads the server secret from data_dir (creating it on
 * first use). opt may be NULL. Errors: those of mk_store_migrate and
 * mk_auth_secret_load, with a sentence in err. */
int mk_keys_open(struct mk_store *store, const char *data_dir, const struct mk_keys_options *opt,
                 struct mk_keys **out, mk_buf *err);
void mk_keys_free(struct mk_keys *k); /* accepts NULL */

/* ---- admin (BLOCKING: call from a worker, e.g. inside mk_store_submit, or the CLI) ---- */

/* Creates a key. On success *rec describes it and key_out holds the key string (the
 * only time it exists in clear). MK_EINVAL for a bad spec (err says which field). */
int mk_keys_create(struct mk_keys *k, struct mk_store_conn *c, const struct mk_key_spec *spec,
                   struct mk_key_record *rec, char key_out[MK_KEY_STRING_BYTES], mk_buf *err);
/* Replaces key `id` by a new one with the same attributes (new id and secret). The old
 * key stops working at once when grace_ms is 0, else it expires grace_ms from now
 * (clients can switch over). MK_ENOTFOUND for an unknown or already revoked id. */
int mk_keys_rotate(struct mk_keys *k, struct mk_store_conn *c, const char *id, int64_t grace_ms,
                   struct mk_key_record *rec, char key_out[MK_KEY_STRING_BYTES]);
/* Revokes key `id` (kept for the audit trail, marked revoked). MK_ENOTFOUND when
 * unknown or already revoked. */
int mk_keys_revoke(struct mk_keys *k, struct mk_store_conn *c, const char *id);
int mk_keys_get(struct mk_keys *k, struct mk_store_conn *c, const char *id, struct mk_key_record *rec);
/* Every key (revoked ones too when include_revoked), newest first. *out is malloc'd
 * (free() it); *n its length. */
int mk_keys_list(struct mk_keys *k, struct mk_store_conn *c, bool include_revoked, struct mk_key_record **out,
                 size_t *n);
/* The same, only tenant's keys (tenant NULL = every tenant's). */
int mk_keys_list_tenant(struct mk_keys *k, struct mk_store_conn *c, const char *tenant, bool include_revoked,
                        struct mk_key_record **out, size_t *n);

/* "active", "expired" (expires_at passed at now_ms) or "revoked". Static. */
const char *mk_keys_status(const struct mk_key_record *r, int64_t now_ms);
/* Appends the record as one JSON object — never a secret or hash:
 * {"id","tenant","role","name","models":[..],"rpm","tpm","budget_day","budget_month",
 *  "created_at","expires_at","last_used_at","revoked_at" (RFC 3339 UTC or null),
 *  "rotated_from" (id or null),"status"}. The CLI's --json and the admin API print
 * this. 0, MK_EINVAL, or an mk_buf error (out may then hold part of it). */
int mk_keys_record_json(const struct mk_key_record *r, int64_t now_ms, mk_buf *out);

/* ---- hot path -------------------------------------------------------------------------- */

/* rc 0 and the principal (valid during the callback; copy it), or MK_EUNAUTHORIZED
 * (unknown, malformed, revoked or expired key), or a store error (MK_EIO, MK_EBUSY...:
 * callers answer 503, not 401). */
typedef void (*mk_keys_verify_cb)(int rc, const struct mk_principal *p, void *arg);

/* Verifies a presented key. A fresh cache entry answers IMMEDIATELY (the callback runs
 * before this returns); otherwise the store is read on libuv's pool and the callback
 * runs later on `loop`. Returns 0 (callback exactly once) or MK_ENOMEM/MK_EINVAL (no
 * callback). Thread-safe: every loop of the process may share one registry. */
int mk_keys_verify(struct mk_keys *k, uv_loop_t *loop, const char *key, size_t len, mk_keys_verify_cb cb,
                   void *arg);
/* The same, synchronously on a held connection (workers, tests). */
int mk_keys_verify_sync(struct mk_keys *k, struct mk_store_conn *c, const char *key, size_t len,
                        struct mk_principal *out);
/* Forgets cached entries of key `id` (all entries when id is NULL). */
void mk_keys_invalidate(struct mk_keys *k, const char *id);
/* True when `s` has the shape of a key (prefix, lengths, alphabet). */
bool mk_keys_well_formed(const char *s, size_t len);

/* Cache counters (tests, metrics). */
struct mk_keys_stats {
    uint64_t hits, misses, store_reads;
};
void mk_keys_get_stats(const struct mk_keys *k, struct mk_keys_stats *out);

/* ---- CLI --------------------------------------------------------------------------------- */

/* `mayak keys ...`: argv[0] is the subcommand (create | list | rotate ID | revoke ID |
 * show ID). Options: create --tenant T --role R [--name N] [--rpm N] [--tpm N]
 * [--budget X (per day)] [--budget-month X] [--models a,b] [--expires DAYS];
 * list [--json] [--all]; rotate ID [--grace SECONDS]; every subcommand --store URL
 * (default sqlite at <data_dir>/mayak.db). --config/-c and its value are skipped (the
 * caller resolved data_dir from it). `create` and `rotate` print the new key ALONE on
 * the last line of stdout. Returns the exit status (0 ok, 1 failure, 2 usage). */
int mk_keys_cli_main(int argc, char **argv, const char *data_dir);

#endif
