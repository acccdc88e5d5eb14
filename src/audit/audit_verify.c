/*
 * audit_verify: checking an audit chain end to end, and exporting it as JSON lines.
 *
 * Verification streams the records of each chain in seq order, recomputing every hash
 * from the canonical serialisation (audit_canon.c, the same code the writer uses), and
 * holds the chain's seals in memory (one per seal_every records, so few) to check each
 * signature and compare each sealed head with the recomputed hash at that seq.
 * The first problem found is reported; checking stops there, because everything after
 * a broken link is unverifiable anyway.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit_int.h"
#include "core/mk_error.h"

struct seal {
    uint64_t seal_no, seq;
    int64_t ts_ms;
    int alg;
    uint8_t head[MK_AUDIT_DIGEST_BYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sig[crypto_sign_BYTES];
    bool well_formed;
};

static void fail(struct mk_audit_verify_report *rep, const char *chain, uint64_t seq, int64_t seal_no,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct mk_audit_verify_report *rep, const char *chain, uint64_t seq, int64_t seal_no,
                 const char *fmt, ...)
{
    if (!rep->ok) return;  /* keep the first */
    rep->ok = false;
    snprintf(rep->chain, sizeof rep->chain, "%s", chain);
    rep->first_bad_seq = seq;
    rep->bad_seal_no = seal_no;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->reason, sizeof rep->reason, fmt, ap);
    va_end(ap);
}

static int load_seals(struct mk_store_conn *c, const char *chain, struct seal **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT seal_no, seq, ts_ms, alg, head_hash, public_key, signature FROM audit_seal"
                                 " WHERE chain = ? ORDER BY seal_no", &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, chain);
    size_t cap = 0;
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct seal *s = realloc(*out, ncap * sizeof *s);
            if (!s) {
                rc = MK_ENOMEM;
                break;
            }
            *out = s;
            cap = ncap;
        }
        struct seal *s = &(*out)[(*n)++];
        memset(s, 0, sizeof *s);
        s->seal_no = (uint64_t)mk_store_column_int64(st, 0);
        s->seq = (uint64_t)mk_store_column_int64(st, 1);
        s->ts_ms = mk_store_column_int64(st, 2);
        s->alg = (int)mk_store_column_int64(st, 3);
        mk_slice h = mk_store_column_blob(st, 4), pk = mk_store_column_blob(st, 5), sig = mk_store_column_blob(st, 6);
        s->well_formed = h.len == sizeof s->head && pk.len == sizeof s->pk && sig.len == sizeof s->sig;
        if (s->well_formed) {
            memcpy(s->head, h.ptr, h.len);
            memcpy(s->pk, pk.ptr, pk.len);
            memcpy(s->sig, sig.ptr, sig.len);
        }
    }
    mk_store_stmt_done(st);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    return 0;
}

/* Signature and numbering of every seal, before the records. */
static void check_seals(const char *chain, struct seal *seals, size_t n, const uint8_t *pubkey,
                        struct mk_audit_verify_report *rep)
{
    mk_buf msg = MK_BUF_INIT;
    uint64_t prev_seq = 0;
    for (size_t i = 0; i < n && rep->ok; i++) {
        struct seal *s = &seals[i];
        if (s->seal_no != i + 1) {
            fail(rep, chain, 0, (int64_t)(i + 1), "seal #%zu is missing (next present is #%" PRIu64 ")", i + 1,
                 s->seal_no);
            break;
        }
        if (!s->well_formed) {
            fail(rep, chain, 0, (int64_t)s->seal_no, "seal #%" PRIu64 " is malformed", s->seal_no);
            break;
        }
        if (s->seq <= prev_seq) {
            fail(rep, chain, 0, (int64_t)s->seal_no, "seal #%" PRIu64 " covers seq %" PRIu64 ", not after %" PRIu64,
                 s->seal_no, s->seq, prev_seq);
            break;
        }
        if (pubkey && sodium_memcmp(pubkey, s->pk, sizeof s->pk) != 0) {
            fail(rep, chain, 0, (int64_t)s->seal_no, "seal #%" PRIu64 " was made with another key", s->seal_no);
            break;
        }
        mk_buf_reset(&msg);
        if (audit_seal_message(&msg, s->alg, mk_slice_cstr(chain), s->seal_no, s->seq, s->ts_ms, s->head) ||
            crypto_sign_verify_detached(s->sig, (const unsigned char *)msg.data, msg.len, s->pk) != 0) {
            fail(rep, chain, 0, (int64_t)s->seal_no, "seal #%" PRIu64 " (seq %" PRIu64 "): bad signature",
                 s->seal_no, s->seq);
            break;
        }
        prev_seq = s->seq;
    }
    mk_buf_release(&msg);
}

static int verify_chain(struct mk_store_conn *c, const char *chain, const uint8_t *pubkey,
                        struct mk_audit_verify_report *rep)
{
    struct seal *seals;
    size_t nseals;
    int rc = load_seals(c, chain, &seals, &nseals);
    if (rc) return rc;
    check_seals(chain, seals, nseals, pubkey, rep);
    size_t next_seal = 0;

    struct mk_store_stmt *st;
    if ((rc = mk_store_prepare(c, "SELECT " AUDIT_SELECT_COLUMNS " FROM audit_log WHERE chain = ? ORDER BY seq", &st))) {
        free(seals);
        return rc;
    }
    mk_store_bind_cstr(st, 1, chain);
    uint8_t prev[MK_AUDIT_DIGEST_BYTES], h[MK_AUDIT_DIGEST_BYTES];
    uint64_t expect = 1, last_sealed = 0;
    mk_buf canon = MK_BUF_INIT;
    while (rep->ok && (rc = mk_store_step(st)) == MK_STORE_ROW) {
        struct audit_fields f;
        mk_slice stored;
        audit_row_fields(st, &f, &stored);
        if (f.seq != expect) {
            fail(rep, chain, expect, -1, "record %" PRIu64 " is missing (next present is %" PRIu64 ")", expect, f.seq);
            break;
        }
        if (!audit_gcry_algo(f.alg)) {
            fail(rep, chain, f.seq, -1, "record %" PRIu64 " names unknown hash algorithm %d", f.seq, f.alg);
            break;
        }
        if (f.seq == 1 && (rc = audit_genesis(f.alg, mk_slice_cstr(chain), prev))) break;
        if (!f.present[AF_CHAIN] || !mk_slice_eq_cstr(f.v[AF_CHAIN], chain)) {
            fail(rep, chain, f.seq, -1, "record %" PRIu64 " names another chain", f.seq);
            break;
        }
        size_t n = audit_canon_size(&f);
        mk_buf_reset(&canon);
        if ((rc = mk_buf_reserve(&canon, n))) break;
        audit_canon_write((unsigned char *)canon.data, &f, NULL);
        if ((rc = audit_chain_hash(f.alg, prev, canon.data, n, h))) break;
        if (!stored.ptr || sodium_memcmp(stored.ptr, h, sizeof h) != 0) {
            fail(rep, chain, f.seq, -1,
                 "record %" PRIu64 " does not match its hash (edited, inserted, moved, or a predecessor was)", f.seq);
            break;
        }
        /* Seals at this seq: the signed head must be the recomputed hash. A chain
         * rewritten consistently (all hashes recomputed) is caught here. */
        while (rep->ok && next_seal < nseals && seals[next_seal].seq == f.seq) {
            if (sodium_memcmp(seals[next_seal].head, h, sizeof h) != 0)
                fail(rep, chain, f.seq, (int64_t)seals[next_seal].seal_no,
                     "records %" PRIu64 "..%" PRIu64 " were rewritten: seal #%" PRIu64 " signed another head",
                     last_sealed + 1, f.seq, seals[next_seal].seal_no);
            else
                last_sealed = f.seq;
            next_seal++;
        }
        memcpy(prev, h, sizeof h);
        rep->records++;
        expect++;
    }
    mk_store_stmt_done(st);
    mk_buf_release(&canon);
    if (rc < 0) {
        free(seals);
        return rc;
    }
    if (rep->ok && next_seal < nseals)
        fail(rep, chain, expect, (int64_t)seals[next_seal].seal_no,
             "records from %" PRIu64 " are missing: seal #%" PRIu64 " covers up to %" PRIu64, expect,
             seals[next_seal].seal_no, seals[next_seal].seq);
    if (rep->ok) {
        rep->seals += nseals;
        rep->unsealed += (expect - 1) - last_sealed;
    }
    free(seals);
    return 0;
}

int mk_audit_verify(struct mk_store *store, const uint8_t *pubkey, struct mk_audit_verify_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->ok = true;
    rep->bad_seal_no = -1;
    rep->key_pinned = pubkey != NULL;
    if (audit_crypto_init() || sodium_init() < 0) return MK_EINTERNAL;
    struct mk_store_conn *c;
    int rc = mk_store_acquire(store, &c);
    if (rc) return rc;
    /* Chains named by records or by seals: a chain whose records were all deleted
     * still has its seals. */
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c, "SELECT chain FROM audit_log GROUP BY chain UNION SELECT chain FROM audit_seal ORDER BY 1",
                          &st);
    char **chains = NULL;
    size_t n = 0, cap = 0;
    while (rc == 0 && (rc = mk_store_step(st)) == MK_STORE_ROW) {
        rc = 0;
        mk_slice s = mk_store_column_text(st, 0);
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **nc = realloc(chains, ncap * sizeof *nc);
            if (!nc) {
                rc = MK_ENOMEM;
                break;
            }
            chains = nc;
            cap = ncap;
        }
        if (!(chains[n] = strndup(s.ptr, s.len))) {
            rc = MK_ENOMEM;
            break;
        }
        n++;
    }
    if (rc == MK_STORE_DONE) rc = 0;
    if (st) mk_store_stmt_done(st);
    for (size_t i = 0; i < n && !rc && rep->ok; i++) {
        rep->chains++;
        rc = verify_chain(c, chains[i], pubkey, rep);
    }
    for (size_t i = 0; i < n; i++) free(chains[i]);
    free(chains);
    mk_store_release(store, c);
    return rc;
}

/* --- export ------------------------------------------------------------------------ */

static void json_hex(mk_buf *b, const char *key, mk_slice v)
{
    mk_buf_printf(b, ",\"%s\":", key);
    if (!v.ptr) {
        mk_buf_append_str(b, "null");
        return;
    }
    char hex[2 * 64 + 1];
    size_t n = v.len > 64 ? 64 : v.len;
    audit_hex((const uint8_t *)v.ptr, n, hex);
    mk_buf_printf(b, "\"%s\"", hex);
}

static void json_str(mk_buf *b, const char *key, mk_slice v)
{
    mk_buf_printf(b, ",\"%s\":", key);
    if (!v.ptr) mk_buf_append_str(b, "null");
    else mk_buf_append_json_string(b, v.ptr, v.len);
}

/* True when v is exactly one JSON object (and nothing after it). */
static bool is_json_object(mk_slice v)
{
    if (v.len == 0 || v.len > INT_MAX) return false;
    struct json_tokener *tok = json_tokener_new();
    if (!tok) return false;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *o = json_tokener_parse_ex(tok, v.ptr, (int)v.len);
    bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == v.len && json_object_is_type(o, json_type_object);
    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

static void iso8601(int64_t ms, char out[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 64, "invalid");
        return;
    }
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000 < 0 ? 0 : ms % 1000));
}

int mk_audit_export_jsonl(struct mk_store *store, FILE *out, int64_t since_ms, const char *chain, uint64_t *count)
{
    if (count) *count = 0;
    struct mk_store_conn *c;
    int rc = mk_store_acquire(store, &c);
    if (rc) return rc;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c, chain ? "SELECT " AUDIT_SELECT_COLUMNS " FROM audit_log WHERE ts_ms >= ? AND chain = ?"
                                     " ORDER BY chain, seq"
                                   : "SELECT " AUDIT_SELECT_COLUMNS " FROM audit_log WHERE ts_ms >= ?"
                                     " ORDER BY chain, seq",
                          &st);
    if (rc) {
        mk_store_release(store, c);
        return rc;
    }
    mk_store_bind_int64(st, 1, since_ms);
    if (chain) mk_store_bind_cstr(st, 2, chain);
    mk_buf line = MK_BUF_INIT;
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        struct audit_fields f;
        mk_slice hash;
        audit_row_fields(st, &f, &hash);
        char when[64];
        iso8601(f.ts_ms, when);
        mk_buf_reset(&line);
        mk_buf_printf(&line, "{\"chain\":");
        mk_buf_append_json_string(&line, f.v[AF_CHAIN].ptr ? f.v[AF_CHAIN].ptr : "", f.v[AF_CHAIN].len);
        mk_buf_printf(&line, ",\"seq\":%" PRIu64 ",\"ts\":\"%s\",\"ts_ms\":%" PRId64 ",\"hash_alg\":\"%s\",\"status\":%d",
                      f.seq, when, f.ts_ms, mk_audit_hash_name(f.alg), (int)f.status);
        for (int i = 1; i < AF_COUNT; i++) {
            if (i == AF_PROMPT_DIGEST || i == AF_ANSWER_DIGEST) json_hex(&line, audit_field_column[i], f.v[i]);
            else if (i == AF_VERDICTS && f.present[i] && is_json_object(f.v[i])) {
                /* Verdicts are JSON already; embedding them keeps the line queryable
                 * (jq .verdicts.pii). Anything else is exported as a string. */
                mk_buf_append_str(&line, ",\"verdicts\":");
                mk_buf_append(&line, f.v[i].ptr, f.v[i].len);
            } else json_str(&line, audit_field_column[i], f.v[i]);
        }
        json_hex(&line, "hash", hash);
        if (mk_buf_append_str(&line, "}\n")) {
            rc = MK_ENOMEM;
            break;
        }
        if (fwrite(line.data, 1, line.len, out) != line.len) {
            rc = MK_EIO;
            break;
        }
        if (count) (*count)++;
    }
    mk_buf_release(&line);
    mk_store_stmt_done(st);
    mk_store_release(store, c);
    if (rc == MK_STORE_DONE) rc = fflush(out) == 0 ? 0 : MK_EIO;
    return rc;
}
