/*
 * mk_audit_cli: `mayak audit verify|export|pubkey` (see usage below). The lead's
 * command table resolves --config to a data directory and hands the rest of the
 * arguments here; --config options that still reach us are skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "core/mk_error.h"
#include "store/mk_store.h"

static const char usage[] =
    "usage: mayak audit verify [--store URL] [--pubkey HEX|FILE]\n"
    "       mayak audit export --format jsonl [--since TIME] [--chain NAME] [--output FILE] [--store URL]\n"
    "       mayak audit pubkey\n"
    "  --store URL     the store holding audit_log (default <data_dir>/mayak.db)\n"
    "  --pubkey K      pin the seals' Ed25519 public key (64 hex digits or a file);\n"
    "                  default: <data_dir>/audit-ed25519.pub when present\n"
    "  --since TIME    2024-05-01, 2024-05-01T12:00:00Z, or Unix seconds\n"
    "exit status: 0 ok, 1 verification failed, 2 usage or operational error\n";

struct opts {
    const char *store_url, *pubkey, *format, *since, *chain, *output;
};

/* Parses --since into ms since the epoch; false when malformed. */
static bool parse_since(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, n2 = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10 &&
        (s[n] == '\0' || (sscanf(s + n, "T%2d:%2d:%2dZ%n", &h, &mi, &sec, &n2) == 3 && n2 > 0 && s[n + n2] == '\0'))) {
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0)
            return false;
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
        time_t t = timegm(&tm);
        if (t == (time_t)-1) return false;
        *ms = (int64_t)t * 1000;
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT64_MAX / 1000) return false;
    *ms = (int64_t)v * 1000;
    return true;
}

static int open_store(const struct opts *o, const char *data_dir, struct mk_store **s)
{
    mk_buf url = MK_BUF_INIT, err = MK_BUF_INIT;
    int rc = o->store_url ? mk_buf_append_str(&url, o->store_url) : mk_audit_default_store_url(data_dir, &url);
    if (rc) {
        fprintf(stderr, "mayak audit: no store: give --store URL or a data directory\n");
        mk_buf_release(&url);
        return rc;
    }
    struct mk_store_options so = {.read_only = true, .max_connections = 1};
    rc = mk_store_open(url.data, &so, s, &err);
    if (rc) fprintf(stderr, "mayak audit: %s\n", err.len ? err.data : mk_strerror(rc));
    mk_buf_release(&url);
    mk_buf_release(&err);
    return rc;
}

/* The default pinned key: <data_dir>/audit-ed25519.pub, when it exists. */
static bool default_pubkey(const char *data_dir, uint8_t pk[MK_AUDIT_PUBKEY_BYTES], mk_buf *where)
{
    if (!data_dir) return false;
    mk_buf key = MK_BUF_INIT;
    bool ok = mk_buf_printf(&key, "%s/" AUDIT_KEY_FILE, data_dir) == 0 && audit_pub_path(key.data, where) == 0 &&
              access(where->data, R_OK) == 0 && mk_audit_parse_public_key(where->data, pk) == 0;
    mk_buf_release(&key);
    return ok;
}

static int cmd_verify(const struct opts *o, const char *data_dir)
{
    uint8_t pk[MK_AUDIT_PUBKEY_BYTES];
    const uint8_t *pin = NULL;
    mk_buf where = MK_BUF_INIT;
    if (o->pubkey) {
        if (mk_audit_parse_public_key(o->pubkey, pk) != 0) {
            fprintf(stderr, "mayak audit: --pubkey wants 64 hex digits or a file holding them\n");
            return 2;
        }
        pin = pk;
        mk_buf_append_str(&where, o->pubkey);
    } else if (default_pubkey(data_dir, pk, &where)) {
        pin = pk;
    }
    struct mk_store *s;
    if (open_store(o, data_dir, &s)) {
        mk_buf_release(&where);
        return 2;
    }
    struct mk_audit_verify_report rep;
    int rc = mk_audit_verify(s, pin, &rep);
    mk_store_free(s);
    if (rc) {
        fprintf(stderr, "mayak audit: verification could not run: %s\n", mk_strerror(rc));
        mk_buf_release(&where);
        return 2;
    }
    char hex[2 * MK_AUDIT_PUBKEY_BYTES + 1];
    if (pin) audit_hex(pin, MK_AUDIT_PUBKEY_BYTES, hex);
    if (!rep.ok) {
        printf("audit: FAILED: chain %s: ", rep.chain);
        if (rep.first_bad_seq) printf("first bad record: seq %" PRIu64 ": ", rep.first_bad_seq);
        else if (rep.bad_seal_no >= 0) printf("bad seal #%" PRId64 ": ", rep.bad_seal_no);
        printf("%s\n", rep.reason);
        mk_buf_release(&where);
        return 1;
    }
    printf("audit: OK: %" PRIu64 " chain%s, %" PRIu64 " records, %" PRIu64 " seals verified\n", rep.chains,
           rep.chains == 1 ? "" : "s", rep.records, rep.seals);
    if (pin) printf("seals checked against public key %s (%s)\n", hex, where.data);
    else printf("warning: no public key pinned (--pubkey); seals were checked against the keys they carry\n");
    if (rep.unsealed)
        printf("note: %" PRIu64 " record%s after the last seal %s chained but not yet signed\n", rep.unsealed,
               rep.unsealed == 1 ? "" : "s", rep.unsealed == 1 ? "is" : "are");
    mk_buf_release(&where);
    return 0;
}

static int cmd_export(const struct opts *o, const char *data_dir)
{
    if (!o->format || strcmp(o->format, "jsonl") != 0) {
        fprintf(stderr, "mayak audit: export needs --format jsonl (the only format)\n");
        return 2;
    }
    int64_t since = 0;
    if (o->since && !parse_since(o->since, &since)) {
        fprintf(stderr, "mayak audit: --since wants 2024-05-01, 2024-05-01T12:00:00Z or Unix seconds, got '%s'\n",
                o->since);
        return 2;
    }
    FILE *out = stdout;
    if (o->output && !(out = fopen(o->output, "w"))) {
        fprintf(stderr, "mayak audit: cannot write %s: %s\n", o->output, strerror(errno));
        return 2;
    }
    struct mk_store *s;
    if (open_store(o, data_dir, &s)) {
        if (out != stdout) fclose(out);
        return 2;
    }
    uint64_t n = 0;
    int rc = mk_audit_export_jsonl(s, out, since, o->chain, &n);
    mk_store_free(s);
    if (out != stdout && fclose(out) != 0 && !rc) rc = MK_EIO;
    if (rc) {
        fprintf(stderr, "mayak audit: export failed: %s\n", mk_strerror(rc));
        return 2;
    }
    fprintf(stderr, "mayak audit: exported %" PRIu64 " record%s\n", n, n == 1 ? "" : "s");
    return 0;
}

static int cmd_pubkey(const char *data_dir)
{
    uint8_t pk[MK_AUDIT_PUBKEY_BYTES];
    mk_buf where = MK_BUF_INIT;
    bool ok = default_pubkey(data_dir, pk, &where);
    if (!ok) {
        fprintf(stderr, "mayak audit: no public key at %s (it is created when the server first starts)\n",
                where.len ? where.data : "<data_dir>/audit-ed25519.pub");
        mk_buf_release(&where);
        return 2;
    }
    char hex[2 * MK_AUDIT_PUBKEY_BYTES + 1];
    audit_hex(pk, sizeof pk, hex);
    printf("%s\n", hex);
    mk_buf_release(&where);
    return 0;
}

int mk_audit_cli_main(int argc, char **argv, const char *data_dir)
{
    if (argc < 1 || !argv[0]) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[0];
    struct opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--store")) slot = &o.store_url;
        else if (!strcmp(a, "--pubkey")) slot = &o.pubkey;
        else if (!strcmp(a, "--format")) slot = &o.format;
        else if (!strcmp(a, "--since")) slot = &o.since;
        else if (!strcmp(a, "--chain")) slot = &o.chain;
        else if (!strcmp(a, "--output") || !strcmp(a, "-o")) slot = &o.output;
        else if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
            i++;  /* resolved by the caller into data_dir */
            continue;
        } else if (!strncmp(a, "--config=", 9)) {
            continue;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "mayak audit: unknown argument '%s'\n%s", a, usage);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mayak audit: %s needs a value\n", a);
            return 2;
        }
        *slot = argv[++i];
    }
    if (!strcmp(cmd, "verify")) return cmd_verify(&o, data_dir);
    if (!strcmp(cmd, "export")) return cmd_export(&o, data_dir);
    if (!strcmp(cmd, "pubkey")) return cmd_pubkey(data_dir);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "mayak audit: unknown subcommand '%s'\n%s", cmd, usage);
    return 2;
}
