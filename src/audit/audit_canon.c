/*
 * audit_canon: the audit record's canonical serialisation, the chain and seal hashing
 * (libgcrypt), hex helpers and the audit schema. Shared by writer and verifier so the
 * two can never disagree on a record's bytes (see audit_int.h, docs/AUDIT.md).
 */
#include <gcrypt.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit_int.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "store/mk_store.h"

/* Streebog arrived in libgcrypt 1.7; 1.8 is the oldest we build against. */
#define AUDIT_GCRYPT_MIN "1.8.0"

const char *const audit_field_column[AF_COUNT] = {
#define AUDIT_FIELD_COL(e, col) col,
    AUDIT_FIELDS(AUDIT_FIELD_COL)
#undef AUDIT_FIELD_COL
};

void audit_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

size_t audit_canon_size(const struct audit_fields *f)
{
    size_t n = 8 + 1 + 8 + 8 + 4;
    for (int i = 0; i < AF_COUNT; i++) n += 1 + (f->present[i] ? 4 + f->v[i].len : 0);
    return n;
}

void audit_canon_write(unsigned char *dst, const struct audit_fields *f, mk_slice *slices_out)
{
    unsigned char *p = dst;
    memcpy(p, AUDIT_CANON_MAGIC, 8);
    p += 8;
    *p++ = f->alg;
    audit_put_u64(p, f->seq);
    p += 8;
    audit_put_u64(p, (uint64_t)f->ts_ms);
    p += 8;
    put_u32(p, (uint32_t)f->status);
    p += 4;
    for (int i = 0; i < AF_COUNT; i++) {
        if (!f->present[i]) {
            *p++ = 0;
            if (slices_out) slices_out[i] = (mk_slice){NULL, 0};
            continue;
        }
        *p++ = 1;
        put_u32(p, (uint32_t)f->v[i].len);
        p += 4;
        if (f->v[i].len) memcpy(p, f->v[i].ptr, f->v[i].len);
        if (slices_out) slices_out[i] = (mk_slice){(const char *)p, f->v[i].len};
        p += f->v[i].len;
    }
}

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static int crypto_status;

static void crypto_init_once(void)
{
    /* gcry_check_version both checks the runtime library and initialises it. Another
     * module may have finished libgcrypt's initialisation already; then we only check. */
    if (!gcry_check_version(AUDIT_GCRYPT_MIN)) {
        mk_logf(MK_LOG_ERROR, "audit_crypto", "libgcrypt %s is older than %s", gcry_check_version(NULL),
                AUDIT_GCRYPT_MIN);
        crypto_status = MK_EINTERNAL;
        return;
    }
    if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
        /* We hash public data only; secure memory would just cost an mlock'd pool. */
        gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
    if (gcry_md_test_algo(GCRY_MD_STRIBOG256) || gcry_md_test_algo(GCRY_MD_SHA256)) {
        mk_log(MK_LOG_ERROR, "audit_crypto", "error", "libgcrypt lacks Streebog-256 or SHA-256", NULL);
        crypto_status = MK_EINTERNAL;
    }
}

int audit_crypto_init(void)
{
    pthread_once(&crypto_once, crypto_init_once);
    return crypto_status;
}

int audit_gcry_algo(int alg)
{
    switch (alg) {
    case MK_AUDIT_STREEBOG256: return GCRY_MD_STRIBOG256;
    case MK_AUDIT_SHA256: return GCRY_MD_SHA256;
    default: return 0;
    }
}

const char *mk_audit_hash_name(enum mk_audit_hash alg)
{
    switch (alg) {
    case MK_AUDIT_STREEBOG256: return "streebog256";
    case MK_AUDIT_SHA256: return "sha256";
    default: return "unknown";
    }
}

int mk_audit_hash_parse(const char *name)
{
    if (!name) return MK_EINVAL;
    if (!strcmp(name, "streebog256") || !strcmp(name, "streebog") || !strcmp(name, "gost"))
        return MK_AUDIT_STREEBOG256;
    if (!strcmp(name, "sha256") || !strcmp(name, "sha-256")) return MK_AUDIT_SHA256;
    return MK_EINVAL;
}

int mk_audit_digest(enum mk_audit_hash alg, const void *data, size_t len, uint8_t out[MK_AUDIT_DIGEST_BYTES])
{
    int algo = audit_gcry_algo(alg);
    if (!algo || audit_crypto_init()) return MK_EINVAL;
    gcry_md_hash_buffer(algo, out, data ? data : "", len);
    return 0;
}

int audit_chain_hash(int alg, const uint8_t prev[MK_AUDIT_DIGEST_BYTES], const void *canon, size_t len,
                     uint8_t out[MK_AUDIT_DIGEST_BYTES])
{
    int algo = audit_gcry_algo(alg);
    if (!algo) return MK_EINVAL;
    gcry_buffer_t iov[2] = {
        {.size = MK_AUDIT_DIGEST_BYTES, .len = MK_AUDIT_DIGEST_BYTES, .data = (void *)prev},
        {.size = len, .len = len, .data = (void *)canon},
    };
    return gcry_md_hash_buffers(algo, 0, out, iov, 2) ? MK_EINTERNAL : 0;
}

int audit_genesis(int alg, mk_slice chain, uint8_t out[MK_AUDIT_DIGEST_BYTES])
{
    int algo = audit_gcry_algo(alg);
    if (!algo) return MK_EINVAL;
    gcry_buffer_t iov[2] = {
        {.size = sizeof AUDIT_GENESIS_TAG - 1, .len = sizeof AUDIT_GENESIS_TAG - 1, .data = (void *)AUDIT_GENESIS_TAG},
        {.size = chain.len, .len = chain.len, .data = (void *)(chain.ptr ? chain.ptr : "")},
    };
    return gcry_md_hash_buffers(algo, 0, out, iov, 2) ? MK_EINTERNAL : 0;
}

int audit_seal_message(mk_buf *out, int alg, mk_slice chain, uint64_t seal_no, uint64_t seq, int64_t ts_ms,
                       const uint8_t head[MK_AUDIT_DIGEST_BYTES])
{
    unsigned char fixed[8 + 1 + 4];
    memcpy(fixed, AUDIT_SEAL_MAGIC, 8);
    fixed[8] = (unsigned char)alg;
    put_u32(fixed + 9, (uint32_t)chain.len);
    unsigned char nums[24];
    audit_put_u64(nums, seal_no);
    audit_put_u64(nums + 8, seq);
    audit_put_u64(nums + 16, (uint64_t)ts_ms);
    int rc = mk_buf_append(out, fixed, sizeof fixed);
    if (!rc && chain.len) rc = mk_buf_append(out, chain.ptr, chain.len);
    if (!rc) rc = mk_buf_append(out, nums, sizeof nums);
    if (!rc) rc = mk_buf_append(out, head, MK_AUDIT_DIGEST_BYTES);
    return rc;
}

void audit_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool audit_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void audit_row_fields(struct mk_store_stmt *st, struct audit_fields *f, mk_slice *hash)
{
    memset(f, 0, sizeof *f);
    f->seq = (uint64_t)mk_store_column_int64(st, 0);
    f->ts_ms = mk_store_column_int64(st, 1);
    f->alg = (uint8_t)mk_store_column_int64(st, 2);
    f->status = (int32_t)mk_store_column_int64(st, 3);
    mk_slice h = mk_store_column_blob(st, 4);
    *hash = h.len == MK_AUDIT_DIGEST_BYTES ? h : (mk_slice){NULL, 0};
    for (int i = 0; i < AF_COUNT; i++) {
        struct mk_store_value v;
        mk_store_column(st, AUDIT_SELECT_FIRST_FIELD + i, &v);
        f->present[i] = v.type != MK_STORE_NULL;
        f->v[i] = f->present[i] ? (mk_slice){v.ptr, v.len} : (mk_slice){NULL, 0};
    }
}

/* --- schema ------------------------------------------------------------------------ */

static const struct mk_store_migration audit_migrations[] = {
    {1,
     "CREATE TABLE audit_log ("
     " chain TEXT NOT NULL, seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, alg INTEGER NOT NULL,"
     " status INTEGER NOT NULL, request_id TEXT, principal TEXT, tenant TEXT, action TEXT,"
     " model_group TEXT, deployment TEXT, verdicts TEXT, prompt_digest BLOB, answer_digest BLOB,"
     " prompt_text TEXT, answer_text TEXT, outcome TEXT, hash BLOB NOT NULL,"
     " PRIMARY KEY (chain, seq));"
     "CREATE INDEX audit_log_ts ON audit_log(ts_ms);"
     "CREATE TABLE audit_seal ("
     " chain TEXT NOT NULL, seal_no INTEGER NOT NULL, seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
     " alg INTEGER NOT NULL, head_hash BLOB NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,"
     " PRIMARY KEY (chain, seal_no));",
     "CREATE TABLE audit_log ("
     " chain TEXT NOT NULL, seq BIGINT NOT NULL, ts_ms BIGINT NOT NULL, alg SMALLINT NOT NULL,"
     " status INTEGER NOT NULL, request_id TEXT, principal TEXT, tenant TEXT, action TEXT,"
     " model_group TEXT, deployment TEXT, verdicts TEXT, prompt_digest BYTEA, answer_digest BYTEA,"
     " prompt_text TEXT, answer_text TEXT, outcome TEXT, hash BYTEA NOT NULL,"
     " PRIMARY KEY (chain, seq));"
     "CREATE INDEX audit_log_ts ON audit_log(ts_ms);"
     "CREATE TABLE audit_seal ("
     " chain TEXT NOT NULL, seal_no BIGINT NOT NULL, seq BIGINT NOT NULL, ts_ms BIGINT NOT NULL,"
     " alg SMALLINT NOT NULL, head_hash BYTEA NOT NULL, public_key BYTEA NOT NULL, signature BYTEA NOT NULL,"
     " PRIMARY KEY (chain, seal_no));"},
};

int mk_audit_migrate(struct mk_store *store, mk_buf *err)
{
    return mk_store_migrate(store, "audit", audit_migrations, sizeof audit_migrations / sizeof audit_migrations[0],
                            err);
}

int mk_audit_default_store_url(const char *data_dir, mk_buf *out)
{
    if (!data_dir || !*data_dir) return MK_EINVAL;
    size_t n = strlen(data_dir);
    return mk_buf_printf(out, "%s%smayak.db", data_dir, data_dir[n - 1] == '/' ? "" : "/");
}
