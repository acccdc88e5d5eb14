/*
 * mk_keys_cli: `mayak keys create|list|show|rotate|revoke`. Works on the store
 * directly (blocking is fine in a CLI); a running server sees changes on its next
 * cache refresh (mk_keys.h: at most cache_ttl_ms later).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/mk_keys.h"
#include "core/mk_error.h"

static const char usage[] =
    "usage: mayak keys <command> [options]\n"
    "  create --tenant T --role R   create a key; prints it ONCE, alone on the last line\n"
    "         [--name TEXT] [--rpm N] [--tpm N] [--budget X] [--budget-month X]\n"
    "         [--models a,b] [--expires DAYS]\n"
    "  list [--json] [--all]        keys (never the secrets); --all includes revoked ones\n"
    "  show ID [--json]             one key\n"
    "  rotate ID [--grace SECONDS]  new key, same settings; the old one stops (after the grace)\n"
    "  revoke ID                    the key stops working (on other nodes within seconds)\n"
    "  every command: --store URL   (default <data_dir>/mayak.db)\n"
    "roles: user, developer, operator, admin\n";

struct opts {
    const char *tenant, *role, *name, *models, *store, *rpm, *tpm, *budget, *budget_month, *expires, *grace;
    const char *id;
    bool json, all;
};

static int parse_u32(const char *what, const char *s, uint32_t *out)
{
    if (!s) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > UINT32_MAX) {
        fprintf(stderr, "mayak keys: %s must be a whole number, got '%s'\n", what, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_num(const char *what, const char *s, double max, double *out)
{
    if (!s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > max) {
        fprintf(stderr, "mayak keys: %s must be a number between 0 and %g, got '%s'\n", what, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int open_all(const struct opts *o, const char *data_dir, struct mk_store **s, struct mk_keys **k)
{
    mk_buf url = MK_BUF_INIT, err = MK_BUF_INIT;
    if (o->store)
        mk_buf_append_str(&url, o->store);
    else
        mk_buf_printf(&url, "sqlite://%s/mayak.db", data_dir ? data_dir : ".");
    *s = NULL;
    *k = NULL;
    int rc = 0;
    if (!o->store && data_dir) {
        /* The secret loader creates data_dir; do it first so the database can be opened. */
        unsigned char tmp[MK_AUTH_SECRET_BYTES];
        rc = mk_auth_secret_load(data_dir, tmp, &err);
        memset(tmp, 0, sizeof tmp);
    }
    if (rc == 0) rc = mk_store_open(url.data, NULL, s, &err);
    if (rc == 0) rc = mk_keys_open(*s, data_dir ? data_dir : ".", NULL, k, &err);
    if (rc != 0) {
        fprintf(stderr, "mayak keys: %s%s%s\n", mk_strerror(rc), err.len ? ": " : "", err.len ? err.data : "");
        mk_store_free(*s);
        *s = NULL;
    }
    mk_buf_release(&url);
    mk_buf_release(&err);
    return rc;
}

static void fmt_time(int64_t ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_json(const struct mk_key_record *r, FILE *f)
{
    mk_buf b = MK_BUF_INIT;
    if (mk_keys_record_json(r, (int64_t)time(NULL) * 1000, &b) == 0) fwrite(b.data, 1, b.len, f);
    else fputs("{}", f);
    mk_buf_release(&b);
}

static void print_table(const struct mk_key_record *r, size_t n)
{
    printf("%-11s %-16s %-9s %7s %9s %10s %-20s %-20s %-8s %s\n", "ID", "TENANT", "ROLE", "RPM", "TPM", "BUDGET/D",
           "EXPIRES", "LAST USED", "STATUS", "MODELS");
    for (size_t i = 0; i < n; i++) {
        char e[32], u[32], rpm[16], tpm[16], bud[24];
        fmt_time(r[i].expires_at_ms, e, sizeof e);
        fmt_time(r[i].last_used_at_ms, u, sizeof u);
        snprintf(rpm, sizeof rpm, r[i].rpm ? "%" PRIu32 : "role", r[i].rpm);
        snprintf(tpm, sizeof tpm, r[i].tpm ? "%" PRIu32 : "role", r[i].tpm);
        if (r[i].budget_day > 0)
            snprintf(bud, sizeof bud, "%.2f", r[i].budget_day);
        else
            snprintf(bud, sizeof bud, "-");
        const char *status = r[i].revoked_at_ms ? "revoked"
                             : (r[i].expires_at_ms && r[i].expires_at_ms <= (int64_t)time(NULL) * 1000) ? "expired"
                                                                                                         : "active";
        printf("mk-%-8s %-16s %-9s %7s %9s %10s %-20s %-20s %-8s %s\n", r[i].id, r[i].tenant, mk_role_name(r[i].role),
               rpm, tpm, bud, e, u, status, r[i].models[0] ? r[i].models : "*");
    }
}

static int cmd_create(const struct opts *o, const char *data_dir)
{
    if (!o->tenant || !o->role) {
        fprintf(stderr, "mayak keys create: --tenant and --role are required\n%s", usage);
        return 2;
    }
    struct mk_key_spec spec = {.tenant = o->tenant, .name = o->name, .models = o->models};
    int role = mk_role_parse(o->role);
    if (role < 0) {
        fprintf(stderr, "mayak keys create: unknown role '%s' (user, developer, operator, admin)\n", o->role);
        return 2;
    }
    spec.role = (enum mk_role)role;
    double days = 0;
    if (parse_u32("--rpm", o->rpm, &spec.rpm) || parse_u32("--tpm", o->tpm, &spec.tpm) ||
        parse_num("--budget", o->budget, 1e12, &spec.budget_day) ||
        parse_num("--budget-month", o->budget_month, 1e12, &spec.budget_month) ||
        parse_num("--expires", o->expires, 36500, &days))
        return 2;
    if (o->expires) {
        if (days <= 0) {
            fprintf(stderr, "mayak keys create: --expires must be a positive number of days\n");
            return 2;
        }
        spec.expires_at_ms = (int64_t)time(NULL) * 1000 + (int64_t)(days * 86400000.0);
    }
    struct mk_store *s;
    struct mk_keys *k;
    if (open_all(o, data_dir, &s, &k) != 0) return 1;
    struct mk_store_conn *c = NULL;
    struct mk_key_record rec;
    char key[MK_KEY_STRING_BYTES];
    mk_buf err = MK_BUF_INIT;
    int rc = mk_store_acquire(s, &c);
    if (rc == 0) rc = mk_keys_create(k, c, &spec, &rec, key, &err);
    mk_store_release(s, c);
    if (rc == 0) {
        printf("created key mk-%s for tenant %s, role %s. Store it now: it is not shown again.\n", rec.id,
               rec.tenant, mk_role_name(rec.role));
        printf("%s\n", key);
        memset(key, 0, sizeof key);
    } else {
        fprintf(stderr, "mayak keys create: %s%s%s\n", mk_strerror(rc), err.len ? ": " : "", err.len ? err.data : "");
    }
    mk_buf_release(&err);
    mk_keys_free(k);
    mk_store_free(s);
    return rc == 0 ? 0 : rc == MK_EINVAL ? 2 : 1;
}

/* Accepts "mk-XXXXXXXX" (as lists show it) or the bare id. */
static const char *bare_id(const char *id) { return id && strncmp(id, MK_KEY_PREFIX, 3) == 0 ? id + 3 : id; }

static int cmd_list(const struct opts *o, const char *data_dir, bool one)
{
    struct mk_store *s;
    struct mk_keys *k;
    if (open_all(o, data_dir, &s, &k) != 0) return 1;
    struct mk_store_conn *c = NULL;
    struct mk_key_record *recs = NULL, single;
    size_t n = 0;
    int rc = mk_store_acquire(s, &c);
    if (rc == 0) {
        if (one) {
            rc = mk_keys_get(k, c, bare_id(o->id), &single);
            if (rc == 0) {
                recs = &single;
                n = 1;
            }
        } else {
            rc = mk_keys_list(k, c, o->all, &recs, &n);
        }
    }
    mk_store_release(s, c);
    if (rc == 0) {
        if (o->json) {
            if (!one) printf("[");
            for (size_t i = 0; i < n; i++) {
                if (i) printf(",");
                print_json(&recs[i], stdout);
            }
            printf(one ? "\n" : "]\n");
        } else {
            print_table(recs, n);
        }
    } else {
        fprintf(stderr, "mayak keys: %s\n", rc == MK_ENOTFOUND ? "no such key" : mk_strerror(rc));
    }
    if (!one) free(recs);
    mk_keys_free(k);
    mk_store_free(s);
    return rc == 0 ? 0 : 1;
}

static int cmd_rotate_revoke(const struct opts *o, const char *data_dir, bool rotate)
{
    double grace = 0;
    if (parse_num("--grace", o->grace, 86400.0 * 90, &grace)) return 2;
    struct mk_store *s;
    struct mk_keys *k;
    if (open_all(o, data_dir, &s, &k) != 0) return 1;
    struct mk_store_conn *c = NULL;
    struct mk_key_record rec;
    char key[MK_KEY_STRING_BYTES];
    const char *id = bare_id(o->id);
    int rc = mk_store_acquire(s, &c);
    if (rc == 0) rc = rotate ? mk_keys_rotate(k, c, id, (int64_t)(grace * 1000), &rec, key) : mk_keys_revoke(k, c, id);
    mk_store_release(s, c);
    if (rc == 0 && rotate) {
        printf("rotated mk-%s -> mk-%s (the old key %s). Store the new key now: it is not shown again.\n", id, rec.id,
               grace > 0 ? "expires after the grace period" : "no longer works");
        printf("%s\n", key);
        memset(key, 0, sizeof key);
    } else if (rc == 0) {
        printf("revoked mk-%s\n", id);
    } else {
        fprintf(stderr, "mayak keys: %s\n", rc == MK_ENOTFOUND ? "no such active key" : mk_strerror(rc));
    }
    mk_keys_free(k);
    mk_store_free(s);
    return rc == 0 ? 0 : 1;
}

int mk_keys_cli_main(int argc, char **argv, const char *data_dir)
{
    if (argc >= 1 && argv[0] && strcmp(argv[0], "keys") == 0) {
        argc--;
        argv++;
    }
    if (argc < 1 || !argv[0]) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[0];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    struct opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--json")) {
            o.json = true;
            continue;
        }
        if (!strcmp(a, "--all")) {
            o.all = true;
            continue;
        }
        if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
            i++; /* resolved by the caller into data_dir */
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--tenant")) slot = &o.tenant;
        else if (!strcmp(a, "--role")) slot = &o.role;
        else if (!strcmp(a, "--name")) slot = &o.name;
        else if (!strcmp(a, "--models")) slot = &o.models;
        else if (!strcmp(a, "--store")) slot = &o.store;
        else if (!strcmp(a, "--rpm")) slot = &o.rpm;
        else if (!strcmp(a, "--tpm")) slot = &o.tpm;
        else if (!strcmp(a, "--budget")) slot = &o.budget;
        else if (!strcmp(a, "--budget-month")) slot = &o.budget_month;
        else if (!strcmp(a, "--expires")) slot = &o.expires;
        else if (!strcmp(a, "--grace")) slot = &o.grace;
        else if (a[0] != '-' && !o.id) {
            o.id = a;
            continue;
        } else {
            fprintf(stderr, "mayak keys: unknown argument '%s'\n%s", a, usage);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mayak keys: %s needs a value\n", a);
            return 2;
        }
        *slot = argv[++i];
    }
    bool needs_id = !strcmp(cmd, "rotate") || !strcmp(cmd, "revoke") || !strcmp(cmd, "show");
    if (needs_id && !o.id) {
        fprintf(stderr, "mayak keys %s: which key? (an ID from `mayak keys list`)\n", cmd);
        return 2;
    }
    if (!needs_id && o.id) {
        fprintf(stderr, "mayak keys %s: unexpected argument '%s'\n", cmd, o.id);
        return 2;
    }
    if (!strcmp(cmd, "create")) return cmd_create(&o, data_dir);
    if (!strcmp(cmd, "list")) return cmd_list(&o, data_dir, false);
    if (!strcmp(cmd, "show")) return cmd_list(&o, data_dir, true);
    if (!strcmp(cmd, "rotate")) return cmd_rotate_revoke(&o, data_dir, true);
    if (!strcmp(cmd, "revoke")) return cmd_rotate_revoke(&o, data_dir, false);
    fprintf(stderr, "mayak keys: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
