/*
 * mk_keys: API key registry (store-backed) and the in-memory verification cache.
 * See mk_keys.h for the format, hashing and the cache's freshness rule.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/mk_keys.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"

#define HASH_BYTES 32
#define KEY_LEN (MK_KEY_STRING_BYTES - 1)
/* last_used_at is written at most this often per key: it is for humans deciding which
 * keys are dead, not an access log (the audit log is that). */
#define LAST_USED_EVERY_MS 60000

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static const struct mk_store_migration key_migrations[] = {
    {1,
     "CREATE TABLE api_keys ("
     " id TEXT PRIMARY KEY,"
     " hash TEXT NOT NULL UNIQUE,"
     " tenant TEXT NOT NULL,"
     " role TEXT NOT NULL,"
     " name TEXT NOT NULL DEFAULT '',"
     " models TEXT NOT NULL DEFAULT '',"
     " rpm BIGINT NOT NULL DEFAULT 0,"
     " tpm BIGINT NOT NULL DEFAULT 0,"
     " budget_day DOUBLE PRECISION NOT NULL DEFAULT 0,"
     " budget_month DOUBLE PRECISION NOT NULL DEFAULT 0,"
     " expires_at BIGINT NOT NULL DEFAULT 0,"
     " created_at BIGINT NOT NULL,"
     " last_used_at BIGINT NOT NULL DEFAULT 0,"
     " revoked_at BIGINT NOT NULL DEFAULT 0,"
     " rotated_from TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX api_keys_tenant ON api_keys(tenant);",
     NULL},
};

struct centry {
    uint8_t hash[HASH_BYTES];
    bool known;                  /* false: a negative entry (no such key) */
    uint64_t checked_ms;         /* monotonic time of the store read */
    bool used;                   /* verified since the last store read */
    struct mk_key_record rec;
};

struct mk_keys {
    struct mk_store *store;
    struct mk_keys_options opt;
    unsigned char hkey[32];      /* subkey for key hashes */
    pthread_mutex_t mu;
    struct centry **slots;
    size_t nslots;               /* power of two */
    atomic_uint_least64_t hits, misses, store_reads;
};

static int64_t wall_now(const struct mk_keys *k)
{
    return k->opt.clock_ms ? k->opt.clock_ms(k->opt.clock_arg) : mk_wall_ms();
}

/* ---- validation ---------------------------------------------------------------------- */

static bool is_b62(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

bool mk_keys_well_formed(const char *s, size_t len)
{
    if (!s || len != KEY_LEN || memcmp(s, MK_KEY_PREFIX, 3) != 0 || s[3 + MK_KEY_ID_CHARS] != '_') return false;
    for (size_t i = 3; i < len; i++)
        if (i != 3 + MK_KEY_ID_CHARS && !is_b62(s[i])) return false;
    return true;
}

static bool id_ok(const char *id)
{
    if (!id || strlen(id) != MK_KEY_ID_CHARS) return false;
    for (size_t i = 0; i < MK_KEY_ID_CHARS; i++)
        if (!is_b62(id[i])) return false;
    return true;
}

static bool tenant_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n >= MK_AUTH_MAX_TENANT) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_b62(t[i]) && t[i] != '.' && t[i] != '_' && t[i] != '-') return false;
    return true;
}

static bool models_ok(const char *m)
{
    if (!m) return true;
    size_t n = strlen(m);
    if (n >= MK_AUTH_MAX_MODELS) return false;
    if (n && (m[0] == ',' || m[n - 1] == ',' || strstr(m, ",,"))) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)m[i] <= 0x20 || m[i] == 0x7f || m[i] == '"') return false;
    return true;
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= MK_KEY_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

static bool money_ok(double v) { return v >= 0 && v <= 1e12; } /* also false for NaN */

/* ---- hashing and cache --------------------------------------------------------------- */

static void key_hash(const struct mk_keys *k, const char *key, size_t len, uint8_t out[HASH_BYTES])
{
    crypto_generichash(out, HASH_BYTES, (const unsigned char *)key, len, k->hkey, sizeof k->hkey);
}

static void hash_hex(const uint8_t h[HASH_BYTES], char out[2 * HASH_BYTES + 1])
{
    sodium_bin2hex(out, 2 * HASH_BYTES + 1, h, HASH_BYTES);
}

static size_t slot_of(const struct mk_keys *k, const uint8_t h[HASH_BYTES])
{
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)(v & (k->nslots - 1));
}

static void cache_put(struct mk_keys *k, const uint8_t h[HASH_BYTES], const struct mk_key_record *rec)
{
    struct centry *e = malloc(sizeof *e);
    if (!e) return; /* the cache is an optimisation: without it we read the store */
    memcpy(e->hash, h, HASH_BYTES);
    e->known = rec != NULL;
    if (rec) e->rec = *rec;
    e->checked_ms = mk_now_ms();
    e->used = false;
    pthread_mutex_lock(&k->mu);
    size_t i = slot_of(k, h);
    free(k->slots[i]); /* direct-mapped: a collision replaces (bounded memory, O(1)) */
    k->slots[i] = e;
    pthread_mutex_unlock(&k->mu);
}

void mk_keys_invalidate(struct mk_keys *k, const char *id)
{
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nslots; i++) {
        struct centry *e = k->slots[i];
        if (e && (!id || (e->known && strcmp(e->rec.id, id) == 0))) {
            free(e);
            k->slots[i] = NULL;
        }
    }
    pthread_mutex_unlock(&k->mu);
}

/* Fresh cache answer: 1 and *rec (known) / 0 (known unknown) / -1 (miss or stale). */
static int cache_get(struct mk_keys *k, const uint8_t h[HASH_BYTES], struct mk_key_record *rec, bool *write_used)
{
    int res = -1;
    uint64_t now = mk_now_ms();
    pthread_mutex_lock(&k->mu);
    struct centry *e = k->slots[slot_of(k, h)];
    if (e && sodium_memcmp(e->hash, h, HASH_BYTES) == 0) {
        uint64_t ttl = e->known ? k->opt.cache_ttl_ms : k->opt.negative_ttl_ms;
        if (now - e->checked_ms < ttl) {
            res = e->known ? 1 : 0;
            if (e->known) {
                *rec = e->rec;
                e->used = true;
            }
        } else if (e->known) {
            *write_used = e->used;
        }
    }
    pthread_mutex_unlock(&k->mu);
    return res;
}

/* ---- store rows ---------------------------------------------------------------------- */

#define COLS \
    "id, tenant, role, name, models, rpm, tpm, budget_day, budget_month, expires_at, created_at, " \
    "last_used_at, revoked_at, rotated_from"

static void copy_col(struct mk_store_stmt *st, int col, char *out, size_t cap)
{
    mk_slice s = mk_store_column_text(st, col);
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(out, s.ptr, n);
    out[n] = '\0';
}

static int read_row(struct mk_store_stmt *st, struct mk_key_record *r)
{
    memset(r, 0, sizeof *r);
    copy_col(st, 0, r->id, sizeof r->id);
    copy_col(st, 1, r->tenant, sizeof r->tenant);
    char role[32];
    copy_col(st, 2, role, sizeof role);
    int ro = mk_role_parse(role);
    if (ro < 0) return MK_ECORRUPT;
    r->role = (enum mk_role)ro;
    copy_col(st, 3, r->name, sizeof r->name);
    copy_col(st, 4, r->models, sizeof r->models);
    int64_t rpm = mk_store_column_int64(st, 5), tpm = mk_store_column_int64(st, 6);
    r->rpm = rpm < 0 ? 0 : rpm > UINT32_MAX ? UINT32_MAX : (uint32_t)rpm;
    r->tpm = tpm < 0 ? 0 : tpm > UINT32_MAX ? UINT32_MAX : (uint32_t)tpm;
    r->budget_day = mk_store_column_double(st, 7);
    r->budget_month = mk_store_column_double(st, 8);
    r->expires_at_ms = mk_store_column_int64(st, 9);
    r->created_at_ms = mk_store_column_int64(st, 10);
    r->last_used_at_ms = mk_store_column_int64(st, 11);
    r->revoked_at_ms = mk_store_column_int64(st, 12);
    copy_col(st, 13, r->rotated_from, sizeof r->rotated_from);
    return 0;
}

/* One row by a text column; MK_ENOTFOUND when none. */
static int fetch_one(struct mk_store_conn *c, const char *sql, const char *val, struct mk_key_record *r)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql, &st);
    if (rc != 0) return rc;
    mk_store_bind_cstr(st, 1, val);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW)
        rc = read_row(st, r);
    else if (rc == MK_STORE_DONE)
        rc = MK_ENOTFOUND;
    mk_store_stmt_done(st);
    return rc;
}

static void random_b62(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = b62[randombytes_uniform(62)];
    out[n] = '\0';
}

/* Inserts rec with a fresh id and secret (retrying an id collision). A collision is
 * found by the insert changing no row (ON CONFLICT DO NOTHING), never by a failed
 * statement: inside a transaction (mk_keys_rotate) a failed statement would abort the
 * whole transaction on PostgreSQL, and the retry could not succeed. */
static int insert_new(struct mk_keys *k, struct mk_store_conn *c, struct mk_key_record *rec,
                      char key_out[MK_KEY_STRING_BYTES])
{
    for (int attempt = 0; attempt < 5; attempt++) {
        char secret[MK_KEY_SECRET_CHARS + 1];
        random_b62(rec->id, MK_KEY_ID_CHARS);
        random_b62(secret, MK_KEY_SECRET_CHARS);
        snprintf(key_out, MK_KEY_STRING_BYTES, MK_KEY_PREFIX "%s_%s", rec->id, secret);
        sodium_memzero(secret, sizeof secret);
        uint8_t h[HASH_BYTES];
        char hex[2 * HASH_BYTES + 1];
        key_hash(k, key_out, KEY_LEN, h);
        hash_hex(h, hex);
        struct mk_store_stmt *st;
        int rc = mk_store_prepare(c,
                                  "INSERT INTO api_keys (id, hash, tenant, role, name, models, rpm, tpm, budget_day,"
                                  " budget_month, expires_at, created_at, rotated_from)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                  &st);
        if (rc != 0) return rc;
        mk_store_bind_cstr(st, 1, rec->id);
        mk_store_bind_cstr(st, 2, hex);
        mk_store_bind_cstr(st, 3, rec->tenant);
        mk_store_bind_cstr(st, 4, mk_role_name(rec->role));
        mk_store_bind_cstr(st, 5, rec->name);
        mk_store_bind_cstr(st, 6, rec->models);
        mk_store_bind_int64(st, 7, rec->rpm);
        mk_store_bind_int64(st, 8, rec->tpm);
        mk_store_bind_double(st, 9, rec->budget_day);
        mk_store_bind_double(st, 10, rec->budget_month);
        mk_store_bind_int64(st, 11, rec->expires_at_ms);
        mk_store_bind_int64(st, 12, rec->created_at_ms);
        mk_store_bind_cstr(st, 13, rec->rotated_from);
        rc = mk_store_step(st);
        mk_store_stmt_done(st);
        if (rc != MK_STORE_DONE) {
            sodium_memzero(key_out, MK_KEY_STRING_BYTES);
            return rc < 0 ? rc : MK_EIO;
        }
        if (mk_store_changes(c) == 1) return 0;
        /* 62^8 ids: a collision is rare; a secret collision is impossible in practice. */
    }
    sodium_memzero(key_out, MK_KEY_STRING_BYTES);
    return MK_EEXISTS;
}

/* ---- admin --------------------------------------------------------------------------- */

int mk_keys_create(struct mk_keys *k, struct mk_store_conn *c, const struct mk_key_spec *spec,
                   struct mk_key_record *rec, char key_out[MK_KEY_STRING_BYTES], mk_buf *err)
{
    if (!k || !c || !spec || !rec || !key_out) return MK_EINVAL;
    const char *bad = NULL;
    if (!tenant_ok(spec->tenant))
        bad = "tenant must be 1-63 characters of A-Z a-z 0-9 . _ -";
    else if ((unsigned)spec->role >= MK_ROLE_COUNT)
        bad = "unknown role";
    else if (!name_ok(spec->name))
        bad = "name is too long or has control characters";
    else if (!models_ok(spec->models))
        bad = "models must be a comma-separated list of model group names";
    else if (!money_ok(spec->budget_day) || !money_ok(spec->budget_month))
        bad = "budgets must be between 0 and 1e12";
    else if (spec->expires_at_ms < 0)
        bad = "expiry must not be negative";
    if (bad) {
        if (err) mk_buf_append_str(err, bad);
        return MK_EINVAL;
    }
    memset(rec, 0, sizeof *rec);
    snprintf(rec->tenant, sizeof rec->tenant, "%s", spec->tenant);
    rec->role = spec->role;
    snprintf(rec->name, sizeof rec->name, "%s", spec->name ? spec->name : "");
    snprintf(rec->models, sizeof rec->models, "%s", spec->models ? spec->models : "");
    rec->rpm = spec->rpm;
    rec->tpm = spec->tpm;
    rec->budget_day = spec->budget_day;
    rec->budget_month = spec->budget_month;
    rec->expires_at_ms = spec->expires_at_ms;
    rec->created_at_ms = wall_now(k);
    int rc = insert_new(k, c, rec, key_out);
    if (rc != 0 && err) mk_buf_printf(err, "cannot store the key: %s", mk_store_errmsg(c));
    return rc;
}

int mk_keys_get(struct mk_keys *k, struct mk_store_conn *c, const char *id, struct mk_key_record *rec)
{
    if (!k || !c || !rec || !id_ok(id)) return id_ok(id) ? MK_EINVAL : MK_ENOTFOUND;
    return fetch_one(c, "SELECT " COLS " FROM api_keys WHERE id = ?", id, rec);
}

/* Revokes key `id` now, or (grace_ms > 0) makes it expire grace_ms from now unless it
 * expires sooner anyway. Either statement changes the row exactly when the key is not
 * revoked yet, so mk_store_changes() tells whether there was such a key. */
static int mark_revoked(struct mk_keys *k, struct mk_store_conn *c, const char *id, int64_t grace_ms)
{
    int64_t now = wall_now(k);
    struct mk_store_stmt *st;
    int rc = grace_ms > 0
                 ? mk_store_prepare(c,
                                    "UPDATE api_keys SET expires_at = CASE WHEN expires_at = 0 OR expires_at > ?"
                                    " THEN ? ELSE expires_at END WHERE id = ? AND revoked_at = 0",
                                    &st)
                 : mk_store_prepare(c, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0", &st);
    if (rc != 0) return rc;
    if (grace_ms > 0) {
        mk_store_bind_int64(st, 1, now + grace_ms);
        mk_store_bind_int64(st, 2, now + grace_ms);
        mk_store_bind_cstr(st, 3, id);
    } else {
        mk_store_bind_int64(st, 1, now);
        mk_store_bind_cstr(st, 2, id);
    }
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) return rc < 0 ? rc : MK_EIO;
    return 0;
}

int mk_keys_revoke(struct mk_keys *k, struct mk_store_conn *c, const char *id)
{
    if (!k || !c) return MK_EINVAL;
    if (!id_ok(id)) return MK_ENOTFOUND;
    int rc = mark_revoked(k, c, id, 0);
    if (rc == 0 && mk_store_changes(c) == 0) rc = MK_ENOTFOUND;
    mk_keys_invalidate(k, id);
    return rc;
}

int mk_keys_rotate(struct mk_keys *k, struct mk_store_conn *c, const char *id, int64_t grace_ms,
                   struct mk_key_record *rec, char key_out[MK_KEY_STRING_BYTES])
{
    if (!k || !c || !rec || !key_out || grace_ms < 0) return MK_EINVAL;
    struct mk_key_record old;
    int rc = mk_keys_get(k, c, id, &old);
    if (rc != 0) return rc;
    if (old.revoked_at_ms) return MK_ENOTFOUND;
    rc = mk_store_begin(c);
    if (rc != 0) return rc;
    *rec = old;
    rec->created_at_ms = wall_now(k);
    rec->last_used_at_ms = 0;
    rec->revoked_at_ms = 0;
    snprintf(rec->rotated_from, sizeof rec->rotated_from, "%s", old.id);
    rc = insert_new(k, c, rec, key_out);
    if (rc == 0) rc = mark_revoked(k, c, old.id, grace_ms);
    /* Revoked by someone else since the read above: no successor for a dead key. */
    if (rc == 0 && mk_store_changes(c) == 0) rc = MK_ENOTFOUND;
    if (rc == 0) rc = mk_store_commit(c);
    if (rc != 0) {
        if (mk_store_in_transaction(c)) mk_store_rollback(c);
        sodium_memzero(key_out, MK_KEY_STRING_BYTES);
        return rc;
    }
    mk_keys_invalidate(k, old.id);
    return 0;
}

int mk_keys_list(struct mk_keys *k, struct mk_store_conn *c, bool include_revoked, struct mk_key_record **out,
                 size_t *n)
{
    return mk_keys_list_tenant(k, c, NULL, include_revoked, out, n);
}

int mk_keys_list_tenant(struct mk_keys *k, struct mk_store_conn *c, const char *tenant, bool include_revoked,
                        struct mk_key_record **out, size_t *n)
{
    if (!k || !c || !out || !n) return MK_EINVAL;
    *out = NULL;
    *n = 0;
    /* Four fixed statements (no SQL built from input); the tenant is a bound value. */
    static const char *const sql[2][2] = {
        {"SELECT " COLS " FROM api_keys WHERE revoked_at = 0 ORDER BY created_at DESC, id",
         "SELECT " COLS " FROM api_keys ORDER BY created_at DESC, id"},
        {"SELECT " COLS " FROM api_keys WHERE tenant = ? AND revoked_at = 0 ORDER BY created_at DESC, id",
         "SELECT " COLS " FROM api_keys WHERE tenant = ? ORDER BY created_at DESC, id"},
    };
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql[tenant != NULL][include_revoked], &st);
    if (rc != 0) return rc;
    if (tenant) mk_store_bind_cstr(st, 1, tenant);
    size_t cap = 0;
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mk_key_record *nr = realloc(*out, ncap * sizeof *nr);
            if (!nr) {
                rc = MK_ENOMEM;
                break;
            }
            *out = nr;
            cap = ncap;
        }
        rc = read_row(st, &(*out)[*n]);
        if (rc != 0) break;
        (*n)++;
    }
    mk_store_stmt_done(st);
    if (rc != MK_STORE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return rc < 0 ? rc : MK_EIO;
    }
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------------ */

const char *mk_keys_status(const struct mk_key_record *r, int64_t now_ms)
{
    if (r->revoked_at_ms) return "revoked";
    if (r->expires_at_ms && r->expires_at_ms <= now_ms) return "expired";
    return "active";
}

/* "2024-05-01T12:00:00Z", or JSON null for 0 (never). */
static int put_time(mk_buf *b, const char *name, int64_t ms)
{
    if (ms <= 0) return mk_buf_printf(b, ",\"%s\":null", name);
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char when[32];
    if (!gmtime_r(&t, &tm) || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return mk_buf_printf(b, ",\"%s\":null", name);
    return mk_buf_printf(b, ",\"%s\":\"%s\"", name, when);
}

int mk_keys_record_json(const struct mk_key_record *r, int64_t now_ms, mk_buf *out)
{
    if (!r || !out) return MK_EINVAL;
    int rc = mk_buf_printf(out, "{\"id\":\"%s\",\"tenant\":", r->id);
    if (rc == 0) rc = mk_buf_append_json_string(out, r->tenant, strlen(r->tenant));
    if (rc == 0) rc = mk_buf_printf(out, ",\"role\":\"%s\",\"name\":", mk_role_name(r->role));
    if (rc == 0) rc = mk_buf_append_json_string(out, r->name, strlen(r->name));
    if (rc == 0) rc = mk_buf_append_str(out, ",\"models\":[");
    for (const char *s = r->models; rc == 0 && *s;) {
        const char *comma = strchr(s, ',');
        size_t l = comma ? (size_t)(comma - s) : strlen(s);
        if (s != r->models) rc = mk_buf_append_char(out, ',');
        if (rc == 0) rc = mk_buf_append_json_string(out, s, l);
        if (!comma) break;
        s = comma + 1;
    }
    if (rc == 0)
        rc = mk_buf_printf(out, "],\"rpm\":%" PRIu32 ",\"tpm\":%" PRIu32 ",\"budget_day\":%.17g,\"budget_month\":%.17g",
                           r->rpm, r->tpm, r->budget_day, r->budget_month);
    if (rc == 0) rc = put_time(out, "created_at", r->created_at_ms);
    if (rc == 0) rc = put_time(out, "expires_at", r->expires_at_ms);
    if (rc == 0) rc = put_time(out, "last_used_at", r->last_used_at_ms);
    if (rc == 0) rc = put_time(out, "revoked_at", r->revoked_at_ms);
    if (rc == 0)
        rc = r->rotated_from[0] ? mk_buf_printf(out, ",\"rotated_from\":\"%s\"", r->rotated_from)
                                : mk_buf_append_str(out, ",\"rotated_from\":null");
    if (rc == 0) rc = mk_buf_printf(out, ",\"status\":\"%s\"}", mk_keys_status(r, now_ms));
    return rc;
}

/* ---- verification -------------------------------------------------------------------- */

static void to_principal(const struct mk_key_record *r, struct mk_principal *p)
{
    memset(p, 0, sizeof *p);
    p->kind = MK_PRINCIPAL_KEY;
    snprintf(p->id, sizeof p->id, "%s", r->id);
    snprintf(p->tenant, sizeof p->tenant, "%s", r->tenant);
    p->role = r->role;
    snprintf(p->models, sizeof p->models, "%s", r->models);
    p->rpm = r->rpm;
    p->tpm = r->tpm;
    p->budget_day = r->budget_day;
    p->budget_month = r->budget_month;
    p->expires_at_ms = r->expires_at_ms;
}

static bool usable(const struct mk_keys *k, const struct mk_key_record *r)
{
    if (r->revoked_at_ms) return false;
    return r->expires_at_ms == 0 || wall_now(k) < r->expires_at_ms;
}

/* Reads the key by hash (and writes last_used_at when due). 0 with *found. */
static int lookup(struct mk_keys *k, struct mk_store_conn *c, const uint8_t h[HASH_BYTES], bool write_used,
                  struct mk_key_record *rec, bool *found)
{
    atomic_fetch_add(&k->store_reads, 1);
    char hex[2 * HASH_BYTES + 1];
    hash_hex(h, hex);
    int rc = fetch_one(c, "SELECT " COLS " FROM api_keys WHERE hash = ?", hex, rec);
    *found = rc == 0;
    if (rc == MK_ENOTFOUND) return 0;
    if (rc != 0) return rc;
    int64_t now = wall_now(k);
    if (write_used && rec->last_used_at_ms < now - LAST_USED_EVERY_MS) {
        struct mk_store_stmt *st;
        if (mk_store_prepare(c, "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND last_used_at < ?", &st) == 0) {
            mk_store_bind_int64(st, 1, now);
            mk_store_bind_cstr(st, 2, rec->id);
            mk_store_bind_int64(st, 3, now - LAST_USED_EVERY_MS);
            if (mk_store_step(st) == MK_STORE_DONE) rec->last_used_at_ms = now;
            mk_store_stmt_done(st);
        }
        /* A failed write of a timestamp must not fail the request. */
    }
    return 0;
}

static int finish_verify(struct mk_keys *k, const struct mk_key_record *rec, bool found, struct mk_principal *out)
{
    if (!found || !usable(k, rec)) return MK_EUNAUTHORIZED;
    to_principal(rec, out);
    return 0;
}

int mk_keys_verify_sync(struct mk_keys *k, struct mk_store_conn *c, const char *key, size_t len,
                        struct mk_principal *out)
{
    if (!k || !c || !out) return MK_EINVAL;
    if (!mk_keys_well_formed(key, len)) return MK_EUNAUTHORIZED;
    uint8_t h[HASH_BYTES];
    key_hash(k, key, len, h);
    struct mk_key_record rec;
    bool write_used = true;
    int hit = cache_get(k, h, &rec, &write_used);
    if (hit >= 0) {
        atomic_fetch_add(&k->hits, 1);
        return finish_verify(k, &rec, hit == 1, out);
    }
    atomic_fetch_add(&k->misses, 1);
    bool found;
    int rc = lookup(k, c, h, true, &rec, &found);
    if (rc != 0) return rc;
    cache_put(k, h, found ? &rec : NULL);
    return finish_verify(k, &rec, found, out);
}

struct vjob {
    struct mk_keys *k;
    uint8_t h[HASH_BYTES];
    bool write_used, found;
    struct mk_key_record rec;
    mk_keys_verify_cb cb;
    void *arg;
};

static int vjob_work(struct mk_store_conn *c, void *arg)
{
    struct vjob *j = arg;
    return lookup(j->k, c, j->h, j->write_used, &j->rec, &j->found);
}

static void vjob_done(int status, void *arg)
{
    struct vjob *j = arg;
    struct mk_principal p;
    int rc = status;
    if (rc == 0) {
        cache_put(j->k, j->h, j->found ? &j->rec : NULL);
        rc = finish_verify(j->k, &j->rec, j->found, &p);
    }
    j->cb(rc, rc == 0 ? &p : NULL, j->arg);
    free(j);
}

int mk_keys_verify(struct mk_keys *k, uv_loop_t *loop, const char *key, size_t len, mk_keys_verify_cb cb, void *arg)
{
    if (!k || !loop || !cb) return MK_EINVAL;
    if (!mk_keys_well_formed(key, len)) {
        cb(MK_EUNAUTHORIZED, NULL, arg);
        return 0;
    }
    struct vjob *j = calloc(1, sizeof *j);
    if (!j) return MK_ENOMEM;
    key_hash(k, key, len, j->h);
    j->write_used = true; /* a key not in the cache at all: this is a use */
    int hit = cache_get(k, j->h, &j->rec, &j->write_used);
    if (hit >= 0) {
        atomic_fetch_add(&k->hits, 1);
        struct mk_principal p;
        int rc = finish_verify(k, &j->rec, hit == 1, &p);
        free(j);
        cb(rc, rc == 0 ? &p : NULL, arg);
        return 0;
    }
    atomic_fetch_add(&k->misses, 1);
    j->k = k;
    j->cb = cb;
    j->arg = arg;
    int rc = mk_store_submit(k->store, loop, vjob_work, vjob_done, j);
    if (rc != 0) free(j);
    return rc;
}

void mk_keys_get_stats(const struct mk_keys *k, struct mk_keys_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!k) return;
    out->hits = atomic_load(&k->hits);
    out->misses = atomic_load(&k->misses);
    out->store_reads = atomic_load(&k->store_reads);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int mk_keys_open(struct mk_store *store, const char *data_dir, const struct mk_keys_options *opt,
                 struct mk_keys **out, mk_buf *err)
{
    if (!store || !data_dir || !out) return MK_EINVAL;
    *out = NULL;
    if (sodium_init() < 0) return MK_EINTERNAL;
    unsigned char secret[MK_AUTH_SECRET_BYTES];
    int rc = mk_auth_secret_load(data_dir, secret, err);
    if (rc != 0) return rc;
    rc = mk_store_migrate(store, "keys", key_migrations, sizeof key_migrations / sizeof key_migrations[0], err);
    if (rc != 0) {
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    struct mk_keys *k = calloc(1, sizeof *k);
    if (!k) {
        sodium_memzero(secret, sizeof secret);
        return MK_ENOMEM;
    }
    if (opt) k->opt = *opt;
    if (!k->opt.cache_ttl_ms) k->opt.cache_ttl_ms = 5000;
    if (!k->opt.negative_ttl_ms) k->opt.negative_ttl_ms = 1000;
    uint32_t want = k->opt.cache_slots ? k->opt.cache_slots : 16384;
    if (want > (1u << 24)) want = 1u << 24;
    k->nslots = 1;
    while (k->nslots < want) k->nslots <<= 1;
    k->slots = calloc(k->nslots, sizeof *k->slots);
    if (!k->slots) {
        free(k);
        sodium_memzero(secret, sizeof secret);
        return MK_ENOMEM;
    }
    mk_auth_subkey(secret, 1, "apikeys_", k->hkey);
    sodium_memzero(secret, sizeof secret);
    pthread_mutex_init(&k->mu, NULL);
    k->store = store;
    *out = k;
    return 0;
}

void mk_keys_free(struct mk_keys *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->nslots; i++) free(k->slots[i]);
    free(k->slots);
    pthread_mutex_destroy(&k->mu);
    sodium_memzero(k->hkey, sizeof k->hkey);
    free(k);
}
