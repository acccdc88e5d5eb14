/* Unit tests for mk_audit: the hashes are the standard ones (GOST R 34.11-2012 example
 * M1, FIPS 180-2 "abc"); append + verify; every kind of tampering (edit, delete,
 * insert, reorder, truncate, a consistent rewrite, a forged seal signature, a foreign
 * key) is detected and names the first bad record or seal; raw text only on opt-in;
 * the chain continues across restarts and across a change of hash; concurrent
 * appends; the writer's digests cover whole texts; back-pressure; a hashing failure in
 * the writer fails closed; export as JSON lines; the key file's permissions; the CLI. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "audit/mk_audit.h"
#include "core/mk_error.h"
#include "store/mk_store.h"

static char dir[64];
static char dbpath[128];

static void rm_rf(const char *d)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", d);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/mk-audit-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/mayak.db", dir);
}

static void teardown(void) { rm_rf(dir); }

TestSuite(audit, .init = setup, .fini = teardown, .timeout = 120);

static void hex(const uint8_t *p, size_t n, char *out) { audit_hex(p, n, out); }

/* --- the hashes are the standard ones ------------------------------------------------- */

Test(audit, streebog256_gost_example_m1)
{
    /* GOST R 34.11-2012, example 1: M1 is the 63 ASCII digits "0123456789" repeated
     * (the standard prints it as a little-endian number). Its 256-bit hash, printed
     * in the standard as 00557be5e584fd52a449b16b0251d05d27f94ab76cbaa6da890b59d8ef1e159d,
     * is this byte string in memory order. */
    const char *m1 = "012345678901234567890123456789012345678901234567890123456789012";
    cr_assert_eq(strlen(m1), 63);
    uint8_t d[32];
    char h[65];
    cr_assert_eq(mk_audit_digest(MK_AUDIT_STREEBOG256, m1, 63, d), 0);
    hex(d, 32, h);
    cr_expect_str_eq(h, "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500");
    /* And it is not SHA-256 of the same bytes. */
    cr_assert_eq(mk_audit_digest(MK_AUDIT_SHA256, m1, 63, d), 0);
    hex(d, 32, h);
    cr_expect_str_neq(h, "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500");
}

Test(audit, sha256_fips_example)
{
    uint8_t d[32];
    char h[65];
    cr_assert_eq(mk_audit_digest(MK_AUDIT_SHA256, "abc", 3, d), 0);
    hex(d, 32, h);
    cr_expect_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_expect_eq(mk_audit_digest((enum mk_audit_hash)9, "abc", 3, d), MK_EINVAL);
    cr_expect_eq(mk_audit_hash_parse("streebog256"), MK_AUDIT_STREEBOG256);
    cr_expect_eq(mk_audit_hash_parse("sha256"), MK_AUDIT_SHA256);
    cr_expect_eq(mk_audit_hash_parse("md5"), MK_EINVAL);
}

/* --- helpers ---------------------------------------------------------------------- */

static struct mk_store *open_store(void)
{
    struct mk_store *s;
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_store_open(dbpath, NULL, &s, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    return s;
}

static struct mk_audit *open_audit(struct mk_store *s, enum mk_audit_hash alg, uint32_t seal_every)
{
    struct mk_audit_options o = {.hash = alg, .seal_every = seal_every, .flush_interval_ms = 2};
    struct mk_audit *a;
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_audit_open(s, dir, &o, &a, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
    return a;
}

static void append_n(struct mk_audit *a, int n, int base)
{
    for (int i = 0; i < n; i++) {
        char prompt[64], answer[64], tenant[32], rid[32];
        snprintf(prompt, sizeof prompt, "question %d", base + i);
        snprintf(answer, sizeof answer, "answer %d", base + i);
        snprintf(tenant, sizeof tenant, "tenant-%d", (base + i) % 3);
        snprintf(rid, sizeof rid, "req-%d", base + i);
        struct mk_audit_record r = {
            .request_id = rid, .principal = "key_abc", .tenant = tenant, .action = "chat.completions",
            .model_group = "mayak-local", .deployment = "local/kb", .verdicts_json = "{\"injection\":{\"score\":0.01}}",
            .prompt = prompt, .prompt_len = strlen(prompt), .answer = answer, .answer_len = strlen(answer),
            .store_raw = (base + i) % 2 == 0, .outcome = "ok", .status = 200};
        uint64_t seq;
        cr_assert_eq(mk_audit_append(a, &r, &seq), 0);
    }
}

/* Builds a chain of n records sealed every seal_every and closes it (final seal). */
static void build_chain(enum mk_audit_hash alg, int n, uint32_t seal_every)
{
    struct mk_store *s = open_store();
    struct mk_audit *a = open_audit(s, alg, seal_every);
    append_n(a, n, 0);
    cr_assert_eq(mk_audit_flush(a, 10000), 0);
    cr_expect_eq(mk_audit_durable_seq(a), (uint64_t)n);
    cr_expect_eq(mk_audit_head_seq(a), (uint64_t)n);
    mk_audit_free(a);
    mk_store_free(s);
}

static void exec_sql(const char *sql)
{
    struct mk_store *s = open_store();
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    cr_assert_eq(mk_store_exec(c, sql), 0, "%s: %s", sql, mk_store_errmsg(c));
    mk_store_release(s, c);
    mk_store_free(s);
}

static struct mk_audit_verify_report verify(const uint8_t *pin)
{
    struct mk_store *s = open_store();
    struct mk_audit_verify_report rep;
    cr_assert_eq(mk_audit_verify(s, pin, &rep), 0);
    mk_store_free(s);
    return rep;
}

static void expect_bad_record(uint64_t seq)
{
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(!rep.ok, "tampering not detected");
    cr_expect_eq(rep.first_bad_seq, seq, "first bad %llu, want %llu: %s", (unsigned long long)rep.first_bad_seq,
                 (unsigned long long)seq, rep.reason);
    cr_expect_str_eq(rep.chain, "main");
}

/* --- append + verify -------------------------------------------------------------- */

static void append_and_verify(enum mk_audit_hash alg)
{
    build_chain(alg, 95, 10);
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.chains, 1);
    cr_expect_eq(rep.records, 95);
    cr_expect_eq(rep.seals, 10, "9 by count + 1 at close, got %llu", (unsigned long long)rep.seals);
    cr_expect_eq(rep.unsealed, 0);
    cr_expect(!rep.key_pinned);
}

Test(audit, append_verify_streebog) { append_and_verify(MK_AUDIT_STREEBOG256); }
Test(audit, append_verify_sha256) { append_and_verify(MK_AUDIT_SHA256); }

Test(audit, record_hash_uses_configured_algorithm)
{
    /* Recompute record 1's hash by hand from the stored row with each algorithm. */
    build_chain(MK_AUDIT_SHA256, 1, 10);
    struct mk_store *s = open_store();
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "SELECT " AUDIT_SELECT_COLUMNS " FROM audit_log", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    struct audit_fields f;
    mk_slice stored;
    audit_row_fields(st, &f, &stored);
    cr_expect_eq(f.alg, MK_AUDIT_SHA256);
    uint8_t canon[4096], g[32], h[32];
    size_t n = audit_canon_size(&f);
    cr_assert(n < sizeof canon);
    audit_canon_write(canon, &f, NULL);
    cr_assert_eq(audit_genesis(MK_AUDIT_SHA256, MK_SLICE_LIT("main"), g), 0);
    cr_assert_eq(audit_chain_hash(MK_AUDIT_SHA256, g, canon, n, h), 0);
    cr_expect_eq(memcmp(h, stored.ptr, 32), 0);
    cr_assert_eq(audit_genesis(MK_AUDIT_STREEBOG256, MK_SLICE_LIT("main"), g), 0);
    cr_assert_eq(audit_chain_hash(MK_AUDIT_STREEBOG256, g, canon, n, h), 0);
    cr_expect_neq(memcmp(h, stored.ptr, 32), 0);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_free(s);
}

/* --- tampering -------------------------------------------------------------------- */

Test(audit, tamper_update_field)
{
    build_chain(MK_AUDIT_STREEBOG256, 60, 10);
    exec_sql("UPDATE audit_log SET tenant = 'tenant-evil' WHERE seq = 37");
    expect_bad_record(37);
}

Test(audit, tamper_update_status_and_null)
{
    build_chain(MK_AUDIT_SHA256, 30, 10);
    exec_sql("UPDATE audit_log SET status = 403 WHERE seq = 12");
    expect_bad_record(12);
}

Test(audit, tamper_null_versus_empty)
{
    /* NULL and "" serialise differently: turning one into the other is an edit. */
    build_chain(MK_AUDIT_STREEBOG256, 30, 10);
    exec_sql("UPDATE audit_log SET prompt_text = '' WHERE seq = 8 AND prompt_text IS NULL");
    exec_sql("UPDATE audit_log SET prompt_text = '' WHERE seq = 9 AND prompt_text IS NULL");
    expect_bad_record(8);
}

Test(audit, tamper_delete_row)
{
    build_chain(MK_AUDIT_STREEBOG256, 60, 10);
    exec_sql("DELETE FROM audit_log WHERE seq = 40");
    expect_bad_record(40);
}

Test(audit, tamper_delete_first_row)
{
    build_chain(MK_AUDIT_SHA256, 20, 10);
    exec_sql("DELETE FROM audit_log WHERE seq = 1");
    expect_bad_record(1);
}

Test(audit, tamper_truncate_tail)
{
    /* Cutting sealed records off the end: the last seal still names them. */
    build_chain(MK_AUDIT_STREEBOG256, 60, 10);
    exec_sql("DELETE FROM audit_log WHERE seq > 54");
    expect_bad_record(55);
}

Test(audit, tamper_insert_forged_row_at_end)
{
    build_chain(MK_AUDIT_STREEBOG256, 60, 10);
    exec_sql("INSERT INTO audit_log (chain, seq, ts_ms, alg, status, action, hash)"
             " VALUES ('main', 61, 0, 1, 200, 'admin.keys.create', zeroblob(32))");
    expect_bad_record(61);
}

Test(audit, tamper_insert_forged_row_in_middle)
{
    /* Make room at 50 by renumbering the rest, then insert a copy of 49 as 50. */
    build_chain(MK_AUDIT_STREEBOG256, 60, 10);
    exec_sql("UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= 50;"
             "UPDATE audit_log SET seq = seq - 1000000 + 1 WHERE seq >= 1000000;"
             "INSERT INTO audit_log SELECT chain, 50, ts_ms, alg, status, request_id, principal, tenant, action,"
             " model_group, deployment, verdicts, prompt_digest, answer_digest, prompt_text, answer_text, outcome,"
             " hash FROM audit_log WHERE seq = 49");
    expect_bad_record(50);
}

Test(audit, tamper_swap_two_rows)
{
    build_chain(MK_AUDIT_STREEBOG256, 60, 10);
    exec_sql("UPDATE audit_log SET seq = -1 WHERE seq = 20;"
             "UPDATE audit_log SET seq = 20 WHERE seq = 21;"
             "UPDATE audit_log SET seq = 21 WHERE seq = -1");
    expect_bad_record(20);
}

Test(audit, tamper_consistent_rewrite_caught_by_seal)
{
    /* A forger without the key edits record 33 and recomputes every hash after it, so
     * the chain links up; the seal over the old head gives it away. */
    build_chain(MK_AUDIT_STREEBOG256, 45, 10);
    exec_sql("UPDATE audit_log SET outcome = 'blocked' WHERE seq = 33");
    struct mk_store *s = open_store();
    struct mk_store_conn *c, *w;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    cr_assert_eq(mk_store_acquire(s, &w), 0);
    struct mk_store_stmt *st, *up;
    cr_assert_eq(mk_store_prepare(c, "SELECT " AUDIT_SELECT_COLUMNS " FROM audit_log ORDER BY seq", &st), 0);
    uint8_t prev[32], h[32];
    static uint8_t canon[1 << 16];
    cr_assert_eq(audit_genesis(MK_AUDIT_STREEBOG256, MK_SLICE_LIT("main"), prev), 0);
    uint64_t count = 0;
    while (mk_store_step(st) == MK_STORE_ROW) {
        struct audit_fields f;
        mk_slice stored;
        audit_row_fields(st, &f, &stored);
        size_t n = audit_canon_size(&f);
        audit_canon_write(canon, &f, NULL);
        audit_chain_hash(f.alg, prev, canon, n, h);
        cr_assert_eq(mk_store_prepare(w, "UPDATE audit_log SET hash = ? WHERE seq = ?", &up), 0);
        mk_store_bind_blob(up, 1, h, 32);
        mk_store_bind_int64(up, 2, (int64_t)f.seq);
        cr_assert_eq(mk_store_step(up), MK_STORE_DONE);
        mk_store_stmt_done(up);
        memcpy(prev, h, 32);
        count++;
    }
    cr_expect_eq(count, 45);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_release(s, w);
    mk_store_free(s);

    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(!rep.ok);
    cr_expect_eq(rep.first_bad_seq, 40, "the first seal after the edit (%s)", rep.reason);
    cr_expect_eq(rep.bad_seal_no, 4);
    cr_expect(strstr(rep.reason, "31..40") != NULL, "%s", rep.reason);
}

Test(audit, seal_with_wrong_signature)
{
    build_chain(MK_AUDIT_STREEBOG256, 60, 10);
    /* Flip the first byte of seal #3's signature. */
    exec_sql("UPDATE audit_seal SET signature = (CASE WHEN substr(signature, 1, 1) = x'00' THEN x'01' ELSE x'00' END)"
             " || substr(signature, 2) WHERE seal_no = 3");
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(!rep.ok);
    cr_expect_eq(rep.bad_seal_no, 3);
    cr_expect(strstr(rep.reason, "bad signature") != NULL, "%s", rep.reason);
}

Test(audit, seal_head_changed_with_valid_looking_row)
{
    build_chain(MK_AUDIT_STREEBOG256, 30, 10);
    exec_sql("UPDATE audit_seal SET head_hash = zeroblob(32) WHERE seal_no = 2");
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(!rep.ok);
    cr_expect_eq(rep.bad_seal_no, 2, "%s", rep.reason);
}

Test(audit, seal_deleted)
{
    build_chain(MK_AUDIT_SHA256, 30, 10);
    exec_sql("DELETE FROM audit_seal WHERE seal_no = 2");
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(!rep.ok);
    cr_expect_eq(rep.bad_seal_no, 2, "%s", rep.reason);
}

Test(audit, pinned_key)
{
    build_chain(MK_AUDIT_STREEBOG256, 25, 10);
    char pub[192];
    snprintf(pub, sizeof pub, "%s/audit-ed25519.pub", dir);
    uint8_t pk[32];
    cr_assert_eq(mk_audit_parse_public_key(pub, pk), 0);
    struct mk_audit_verify_report rep = verify(pk);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect(rep.key_pinned);
    pk[0] ^= 1;
    rep = verify(pk);
    cr_expect(!rep.ok);
    cr_expect_eq(rep.bad_seal_no, 1);
    cr_expect(strstr(rep.reason, "another key") != NULL, "%s", rep.reason);
}

/* --- lifecycle -------------------------------------------------------------------- */

Test(audit, chain_continues_across_restart_and_hash_change)
{
    build_chain(MK_AUDIT_STREEBOG256, 15, 10);
    struct mk_store *s = open_store();
    struct mk_audit *a = open_audit(s, MK_AUDIT_SHA256, 10);
    cr_expect_eq(mk_audit_head_seq(a), 15);
    append_n(a, 12, 15);
    cr_expect_eq(mk_audit_head_seq(a), 27);
    mk_audit_free(a);
    mk_store_free(s);
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 27);
    cr_expect_eq(rep.unsealed, 0);
}

Test(audit, unsealed_tail_reported)
{
    struct mk_store *s = open_store();
    struct mk_audit_options o = {.seal_every = 10, .seal_interval_ms = 3600 * 1000, .flush_interval_ms = 1};
    struct mk_audit *a;
    cr_assert_eq(mk_audit_open(s, dir, &o, &a, NULL), 0);
    append_n(a, 14, 0);
    cr_assert_eq(mk_audit_flush(a, 10000), 0);
    /* Verify while the writer is still open: 10 sealed, 4 not yet. */
    struct mk_audit_verify_report rep;
    cr_assert_eq(mk_audit_verify(s, NULL, &rep), 0);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 14);
    cr_expect_eq(rep.seals, 1);
    cr_expect_eq(rep.unsealed, 4);
    mk_audit_free(a);
    mk_store_free(s);
}

Test(audit, raw_text_only_on_opt_in)
{
    build_chain(MK_AUDIT_STREEBOG256, 4, 10);
    struct mk_store *s = open_store();
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "SELECT seq, prompt_text, answer_text, prompt_digest FROM audit_log ORDER BY seq",
                                  &st), 0);
    int rows = 0;
    while (mk_store_step(st) == MK_STORE_ROW) {
        int64_t seq = mk_store_column_int64(st, 0);
        char prompt[64];
        snprintf(prompt, sizeof prompt, "question %d", (int)(seq - 1));
        bool opted = (seq - 1) % 2 == 0;  /* append_n opts in on even indexes */
        cr_expect_eq(!mk_store_column_is_null(st, 1), opted, "seq %lld", (long long)seq);
        cr_expect_eq(!mk_store_column_is_null(st, 2), opted);
        if (opted) cr_expect(mk_slice_eq_cstr(mk_store_column_text(st, 1), prompt));
        uint8_t d[32];
        mk_audit_digest(MK_AUDIT_STREEBOG256, prompt, strlen(prompt), d);
        mk_slice got = mk_store_column_blob(st, 3);
        cr_expect_eq(got.len, 32);
        cr_expect_eq(memcmp(got.ptr, d, 32), 0, "digest of the prompt");
        rows++;
    }
    cr_expect_eq(rows, 4);
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_free(s);
}

Test(audit, bad_records_leave_no_trace)
{
    struct mk_store *s = open_store();
    struct mk_audit *a = open_audit(s, MK_AUDIT_STREEBOG256, 10);
    struct mk_audit_record r = {.action = NULL};
    cr_expect_eq(mk_audit_append(a, &r, NULL), MK_EINVAL);
    r.action = "";
    cr_expect_eq(mk_audit_append(a, &r, NULL), MK_EINVAL);
    r.action = "x";
    r.status = -5;
    cr_expect_eq(mk_audit_append(a, &r, NULL), MK_EINVAL);
    r.status = 200;
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    r.tenant = big;
    cr_expect_eq(mk_audit_append(a, &r, NULL), MK_EINVAL);
    r.tenant = "t";
    char *verdicts = malloc(MK_AUDIT_MAX_VERDICTS_BYTES + 2);
    memset(verdicts, ' ', MK_AUDIT_MAX_VERDICTS_BYTES + 1);
    verdicts[MK_AUDIT_MAX_VERDICTS_BYTES + 1] = '\0';
    r.verdicts_json = verdicts;
    cr_expect_eq(mk_audit_append(a, &r, NULL), MK_ETOOBIG);
    free(verdicts);
    r.verdicts_json = NULL;
    /* Raw text longer than the cap is cut at a character boundary. */
    size_t n = MK_AUDIT_MAX_RAW_BYTES + 1;
    char *longp = malloc(n + 1);
    for (size_t i = 0; i + 1 < n; i += 2) memcpy(longp + i, "\xd0\xb6", 2);  /* "ж" */
    longp[n - 1] = 'x';
    longp[n] = '\0';
    r.prompt = longp;
    r.prompt_len = n;
    r.store_raw = true;
    uint64_t seq = 0;
    cr_expect_eq(mk_audit_append(a, &r, &seq), 0);
    cr_expect_eq(seq, 1, "failed appends took no seq");
    free(longp);
    mk_audit_free(a);
    cr_expect_eq(mk_audit_open(s, dir, &(struct mk_audit_options){.chain = ""}, &a, NULL), MK_EINVAL);
    mk_store_free(s);
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 1);
}

struct thr {
    struct mk_audit *a;
    int base;
};

static void *appender(void *p)
{
    struct thr *t = p;
    for (int i = 0; i < 500; i++) {
        char rid[32];
        snprintf(rid, sizeof rid, "t%d-%d", t->base, i);
        struct mk_audit_record r = {.request_id = rid, .action = "chat.completions", .tenant = "t",
                                    .prompt = rid, .prompt_len = strlen(rid), .outcome = "ok", .status = 200};
        if (mk_audit_append(t->a, &r, NULL)) return (void *)1;
    }
    return NULL;
}

Test(audit, concurrent_appends)
{
    struct mk_store *s = open_store();
    struct mk_audit_options o = {.seal_every = 100, .batch_max = 64, .flush_interval_ms = 1};
    struct mk_audit *a;
    cr_assert_eq(mk_audit_open(s, dir, &o, &a, NULL), 0);
    pthread_t th[4];
    struct thr args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thr){a, i};
        pthread_create(&th[i], NULL, appender, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        cr_expect_null(ret);
    }
    mk_audit_free(a);
    struct mk_audit_verify_report rep;
    cr_assert_eq(mk_audit_verify(s, NULL, &rep), 0);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 2000);
    cr_expect_eq(rep.unsealed, 0);
    mk_store_free(s);
}

/* The digests are the writer's now: they must still cover the whole text, for a text
 * kept raw and cut at the cap as for one kept only as a digest, and an empty text
 * digests as "". */
Test(audit, writer_digests_whole_text)
{
    size_t n = MK_AUDIT_MAX_RAW_BYTES + 4097;
    char *big = malloc(n);
    cr_assert_not_null(big);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 23);
    struct mk_store *s = open_store();
    struct mk_audit *a = open_audit(s, MK_AUDIT_SHA256, 10);
    struct mk_audit_record r = {.action = "chat.completions", .status = 200, .prompt = big, .prompt_len = n,
                                .answer = "", .answer_len = 0, .store_raw = true};
    cr_assert_eq(mk_audit_append(a, &r, NULL), 0);
    r.store_raw = false;
    r.answer = big + 1;
    r.answer_len = n - 1;
    cr_assert_eq(mk_audit_append(a, &r, NULL), 0);
    /* The caller's buffer may change as soon as append returns. */
    memset(big, 'z', n);
    cr_assert_eq(mk_audit_flush(a, 30000), 0);
    mk_audit_free(a);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 23);
    uint8_t full[32], tail[32], empty[32];
    mk_audit_digest(MK_AUDIT_SHA256, big, n, full);
    mk_audit_digest(MK_AUDIT_SHA256, big + 1, n - 1, tail);
    mk_audit_digest(MK_AUDIT_SHA256, "", 0, empty);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(c, "SELECT seq, prompt_digest, answer_digest, prompt_text, answer_text FROM audit_log ORDER BY seq",
                                  &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(memcmp(mk_store_column_blob(st, 1).ptr, full, 32), 0, "raw, cut: digest of the whole prompt");
    cr_expect_eq(memcmp(mk_store_column_blob(st, 2).ptr, empty, 32), 0, "empty answer");
    cr_expect_eq(mk_store_column_text(st, 3).len, MK_AUDIT_MAX_RAW_BYTES);
    cr_expect_eq(memcmp(mk_store_column_text(st, 3).ptr, big, MK_AUDIT_MAX_RAW_BYTES), 0);
    cr_expect_eq(mk_store_column_text(st, 4).len, 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_expect_eq(memcmp(mk_store_column_blob(st, 1).ptr, full, 32), 0, "digest only");
    cr_expect_eq(memcmp(mk_store_column_blob(st, 2).ptr, tail, 32), 0);
    cr_expect(mk_store_column_is_null(st, 3));
    cr_expect(mk_store_column_is_null(st, 4));
    mk_store_stmt_done(st);
    mk_store_release(s, c);
    mk_store_free(s);
    free(big);
    struct mk_audit_verify_report rep = verify(NULL);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 2);
}

/* max_pending counts the records the writer has not hashed yet. */
Test(audit, back_pressure_counts_unhashed)
{
    struct mk_store *s = open_store();
    struct mk_audit_options o = {.max_pending = 3, .flush_interval_ms = 60000, .batch_max = 1000};
    struct mk_audit *a;
    cr_assert_eq(mk_audit_open(s, dir, &o, &a, NULL), 0);
    struct mk_audit_record r = {.action = "x", .status = 200, .prompt = "p", .prompt_len = 1};
    for (int i = 0; i < 3; i++) cr_assert_eq(mk_audit_append(a, &r, NULL), 0);
    cr_expect_eq(mk_audit_append(a, &r, NULL), MK_EUNAVAILABLE);
    cr_expect_eq(mk_audit_head_seq(a), 3);
    cr_assert_eq(mk_audit_flush(a, 30000), 0);
    cr_expect_eq(mk_audit_durable_seq(a), 3);
    cr_expect_eq(mk_audit_append(a, &r, NULL), 0);
    mk_audit_free(a);
    struct mk_audit_verify_report rep;
    cr_assert_eq(mk_audit_verify(s, NULL, &rep), 0);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 4);
    mk_store_free(s);
}

/* A hashing failure in the writer: what was hashed before commits, the failing record
 * and everything after it is dropped, appends and flushes fail closed, and the chain
 * verifies and resumes from the last committed record after a reopen. */
Test(audit, writer_hash_failure_fails_closed)
{
    struct mk_store *s = open_store();
    struct mk_audit_options o = {.flush_interval_ms = 60000, .batch_max = 1000, .seal_every = 2};
    struct mk_audit *a;
    cr_assert_eq(mk_audit_open(s, dir, &o, &a, NULL), 0);
    audit_fault_hash_seq = 4;
    struct mk_audit_record r = {.action = "x", .status = 200, .answer = "a", .answer_len = 1};
    for (int i = 0; i < 6; i++) cr_assert_eq(mk_audit_append(a, &r, NULL), 0);
    cr_expect_eq(mk_audit_flush(a, 30000), MK_EUNAVAILABLE);
    audit_fault_hash_seq = 0;
    cr_expect_eq(mk_audit_durable_seq(a), 3);
    cr_expect_eq(mk_audit_writer_error(a), MK_EINTERNAL);
    cr_expect_eq(mk_audit_append(a, &r, NULL), MK_EUNAVAILABLE);
    mk_audit_free(a);
    struct mk_audit_verify_report rep;
    cr_assert_eq(mk_audit_verify(s, NULL, &rep), 0);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 3);
    cr_expect_eq(rep.unsealed, 0, "the tail is sealed at close");
    cr_assert_eq(mk_audit_open(s, dir, &o, &a, NULL), 0);
    uint64_t seq = 0;
    cr_expect_eq(mk_audit_append(a, &r, &seq), 0);
    cr_expect_eq(seq, 4);
    mk_audit_free(a);
    cr_assert_eq(mk_audit_verify(s, NULL, &rep), 0);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.records, 4);
    mk_store_free(s);
}

Test(audit, two_chains)
{
    struct mk_store *s = open_store();
    struct mk_audit *a, *b;
    cr_assert_eq(mk_audit_open(s, dir, &(struct mk_audit_options){.chain = "node-a", .seal_every = 5}, &a, NULL), 0);
    cr_assert_eq(mk_audit_open(s, dir, &(struct mk_audit_options){.chain = "node-b", .seal_every = 5}, &b, NULL), 0);
    append_n(a, 7, 0);
    append_n(b, 9, 100);
    mk_audit_free(a);
    mk_audit_free(b);
    struct mk_audit_verify_report rep;
    cr_assert_eq(mk_audit_verify(s, NULL, &rep), 0);
    cr_expect(rep.ok, "%s", rep.reason);
    cr_expect_eq(rep.chains, 2);
    cr_expect_eq(rep.records, 16);
    mk_store_free(s);
    exec_sql("UPDATE audit_log SET action = 'x' WHERE chain = 'node-b' AND seq = 3");
    rep = verify(NULL);
    cr_expect(!rep.ok);
    cr_expect_str_eq(rep.chain, "node-b");
    cr_expect_eq(rep.first_bad_seq, 3);
}

Test(audit, key_file_permissions)
{
    build_chain(MK_AUDIT_STREEBOG256, 1, 10);
    char key[192];
    snprintf(key, sizeof key, "%s/audit-ed25519.key", dir);
    struct stat sb;
    cr_assert_eq(stat(key, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600);
    cr_assert_eq(chmod(key, 0644), 0);
    struct mk_store *s = open_store();
    struct mk_audit *a = NULL;
    mk_buf err = MK_BUF_INIT;
    cr_expect_eq(mk_audit_open(s, dir, NULL, &a, &err), MK_ECONFIG);
    cr_expect(strstr(err.data, "chmod 600") != NULL, "%s", err.data);
    cr_expect_null(a);
    /* A malformed key is refused too. */
    cr_assert_eq(chmod(key, 0600), 0);
    FILE *f = fopen(key, "w");
    fputs("not hex\n", f);
    fclose(f);
    mk_buf_reset(&err);
    cr_expect_eq(mk_audit_open(s, dir, NULL, &a, &err), MK_ECONFIG);
    mk_buf_release(&err);
    mk_store_free(s);
}

/* --- export and CLI ---------------------------------------------------------------- */

Test(audit, export_jsonl)
{
    build_chain(MK_AUDIT_STREEBOG256, 12, 10);
    char out[192];
    snprintf(out, sizeof out, "%s/export.jsonl", dir);
    FILE *f = fopen(out, "w+");
    struct mk_store *s = open_store();
    uint64_t n = 0;
    cr_assert_eq(mk_audit_export_jsonl(s, f, 0, NULL, &n), 0);
    cr_expect_eq(n, 12);
    rewind(f);
    char line[8192];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        struct json_object *o = json_tokener_parse(line);
        cr_assert_not_null(o, "line %d is JSON: %s", lines, line);
        struct json_object *v;
        cr_expect(json_object_object_get_ex(o, "seq", &v));
        cr_expect_eq(json_object_get_int64(v), lines + 1);
        cr_expect(json_object_object_get_ex(o, "hash", &v));
        cr_expect_eq(strlen(json_object_get_string(v)), 64);
        cr_expect(json_object_object_get_ex(o, "verdicts", &v));
        cr_expect(json_object_is_type(v, json_type_object), "verdicts embedded as JSON");
        cr_expect(json_object_object_get_ex(o, "hash_alg", &v));
        cr_expect_str_eq(json_object_get_string(v), "streebog256");
        json_object_put(o);
        lines++;
    }
    cr_expect_eq(lines, 12);
    fclose(f);
    /* Since the far future: nothing. */
    f = fopen(out, "w");
    cr_assert_eq(mk_audit_export_jsonl(s, f, INT64_MAX / 2, NULL, &n), 0);
    cr_expect_eq(n, 0);
    fclose(f);
    mk_store_free(s);
}

static int cli(int argc, const char **argv) { return mk_audit_cli_main(argc, (char **)argv, dir); }

Test(audit, cli_verify_export_pubkey)
{
    build_chain(MK_AUDIT_STREEBOG256, 20, 10);
    const char *v[] = {"verify"};
    cr_expect_eq(cli(1, v), 0);
    char out[192];
    snprintf(out, sizeof out, "%s/e.jsonl", dir);
    const char *e[] = {"export", "--format", "jsonl", "--since", "2001-09-09", "--output", out};
    cr_expect_eq(cli(7, e), 0);
    struct stat sb;
    cr_expect_eq(stat(out, &sb), 0);
    cr_expect_gt(sb.st_size, 1000);
    const char *bad_since[] = {"export", "--format", "jsonl", "--since", "2001-13-45"};
    cr_expect_eq(cli(5, bad_since), 2);
    const char *bad_fmt[] = {"export", "--format", "csv"};
    cr_expect_eq(cli(3, bad_fmt), 2);
    const char *pk[] = {"pubkey"};
    cr_expect_eq(cli(1, pk), 0);
    const char *unknown[] = {"frobnicate"};
    cr_expect_eq(cli(1, unknown), 2);
    const char *cfg[] = {"verify", "--config", "/etc/whatever.yaml"};
    cr_expect_eq(cli(3, cfg), 0, "--config is resolved by the caller and skipped");
    exec_sql("DELETE FROM audit_log WHERE seq = 7");
    cr_expect_eq(cli(1, v), 1);
    const char *wrongkey[] = {"verify", "--pubkey", "00000000000000000000000000000000000000000000000000000000000000ff"};
    cr_expect_eq(cli(3, wrongkey), 1);
    const char *badkey[] = {"verify", "--pubkey", "xyz"};
    cr_expect_eq(cli(3, badkey), 2);
}
