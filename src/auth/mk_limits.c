/*
 * mk_limits: turns a principal into at most eight kv buckets (key and tenant x rpm,
 * tpm, day budget, month budget) and runs them as one atomic kv step. See mk_limits.h
 * for the semantics and the fail-open decision.
 */
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/mk_limits.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"

/* Budget counters outlive their window by a day so a late charge (a long stream that
 * ends after midnight) still lands somewhere, then vanish. */
#define BUDGET_GRACE_MS 86400000LL
#define FAIL_LOG_EVERY_MS 10000

struct tenant_row {
    char *name;
    struct mk_limits_tenant v;
};

struct mk_limits {
    struct mk_kv *kv;
    struct mk_limits_options opt;
    char *prefix;
    struct tenant_row *tenants;
    size_t ntenants;
    atomic_int_least64_t last_fail_log;
    atomic_uint_least64_t admitted, limited, failed_open, failed_closed, charges, charge_errors;
};

enum which { W_KEY_RPM, W_TENANT_RPM, W_KEY_TPM, W_TENANT_TPM, W_KEY_BD, W_KEY_BM, W_TENANT_BD, W_TENANT_BM };
static const char *const which_names[] = {"key_rpm",        "tenant_rpm",       "key_tpm",
                                          "tenant_tpm",     "key_budget_day",   "key_budget_month",
                                          "tenant_budget_day", "tenant_budget_month"};

/* ---- windows ------------------------------------------------------------------------- */

void mk_limits_windows(int64_t now_ms, char day[16], char month[16], int64_t *day_end_ms, int64_t *month_end_ms)
{
    time_t t = (time_t)(now_ms >= 0 ? now_ms / 1000 : 0);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* strftime: the compiler cannot bound %d of struct tm fields for snprintf. */
    strftime(day, 16, "d%Y%m%d", &tm);
    strftime(month, 16, "m%Y%m", &tm);
    int64_t day_start = (int64_t)t - (int64_t)t % 86400;
    if (day_end_ms) *day_end_ms = (day_start + 86400) * 1000;
    if (month_end_ms) {
        struct tm next = {0};
        next.tm_year = tm.tm_mon == 11 ? tm.tm_year + 1 : tm.tm_year;
        next.tm_mon = tm.tm_mon == 11 ? 0 : tm.tm_mon + 1;
        next.tm_mday = 1;
        *month_end_ms = (int64_t)timegm(&next) * 1000;
    }
}

int64_t mk_limits_retry_after_s(int64_t ms)
{
    if (ms <= 1000) return 1;
    return (ms + 999) / 1000;
}

/* ---- setup --------------------------------------------------------------------------- */

static bool money_ok(double v) { return isfinite(v) && v >= 0 && v <= 1e12; }

int mk_limits_new(struct mk_kv *kv, const struct mk_limits_options *opt, struct mk_limits **out)
{
    if (!kv || !out) return MK_EINVAL;
    *out = NULL;
    struct mk_limits_options o = {0};
    if (opt) o = *opt;
    if (!money_ok(o.tenant_budget_day) || !money_ok(o.tenant_budget_month)) return MK_EINVAL;
    for (size_t i = 0; i < o.ntenants; i++)
        if (!o.tenants || !o.tenants[i].name || !*o.tenants[i].name || !money_ok(o.tenants[i].budget_day) ||
            !money_ok(o.tenants[i].budget_month))
            return MK_EINVAL;
    struct mk_limits *l = calloc(1, sizeof *l);
    if (!l) return MK_ENOMEM;
    l->kv = kv;
    l->opt = o;
    l->prefix = strdup(o.prefix && *o.prefix ? o.prefix : "mk:lim:");
    l->tenants = o.ntenants ? calloc(o.ntenants, sizeof *l->tenants) : NULL;
    if (!l->prefix || (o.ntenants && !l->tenants)) {
        mk_limits_free(l);
        return MK_ENOMEM;
    }
    for (size_t i = 0; i < o.ntenants; i++) {
        l->tenants[i].v = o.tenants[i];
        l->tenants[i].name = strdup(o.tenants[i].name);
        if (!l->tenants[i].name) {
            l->ntenants = i;
            mk_limits_free(l);
            return MK_ENOMEM;
        }
        l->tenants[i].v.name = l->tenants[i].name;
    }
    l->ntenants = o.ntenants;
    l->opt.tenants = NULL;
    l->opt.prefix = l->prefix;
    atomic_store(&l->last_fail_log, INT64_MIN / 2);
    *out = l;
    return 0;
}

void mk_limits_free(struct mk_limits *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->ntenants; i++) free(l->tenants[i].name);
    free(l->tenants);
    free(l->prefix);
    free(l);
}

void mk_limits_get_stats(const struct mk_limits *l, struct mk_limits_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!l) return;
    out->admitted = atomic_load(&l->admitted);
    out->limited = atomic_load(&l->limited);
    out->failed_open = atomic_load(&l->failed_open);
    out->failed_closed = atomic_load(&l->failed_closed);
    out->charges = atomic_load(&l->charges);
    out->charge_errors = atomic_load(&l->charge_errors);
}

void mk_limits_effective(const struct mk_limits *l, const struct mk_principal *p, struct mk_limits_effective *e)
{
    memset(e, 0, sizeof *e);
    enum mk_role r = (unsigned)p->role < MK_ROLE_COUNT ? p->role : MK_ROLE_USER;
    uint32_t role_rpm = l->opt.role_rpm[r] ? l->opt.role_rpm[r] : mk_role_default_rpm(r);
    uint32_t role_tpm = l->opt.role_tpm[r] ? l->opt.role_tpm[r] : mk_role_default_tpm(r);
    e->key_rpm = p->rpm ? p->rpm : role_rpm;
    e->key_tpm = p->tpm ? p->tpm : role_tpm;
    e->key_budget_day = p->budget_day;
    e->key_budget_month = p->budget_month;
    e->tenant_rpm = l->opt.tenant_rpm;
    e->tenant_tpm = l->opt.tenant_tpm;
    e->tenant_budget_day = l->opt.tenant_budget_day;
    e->tenant_budget_month = l->opt.tenant_budget_month;
    for (size_t i = 0; i < l->ntenants; i++)
        if (strcmp(l->tenants[i].name, p->tenant) == 0) {
            e->tenant_rpm = l->tenants[i].v.rpm;
            e->tenant_tpm = l->tenants[i].v.tpm;
            e->tenant_budget_day = l->tenants[i].v.budget_day;
            e->tenant_budget_month = l->tenants[i].v.budget_month;
            break;
        }
}

/* ---- bucket keys --------------------------------------------------------------------- */

/* Names that are safe in a kv key as they are; anything else goes in as a hash (a JWT
 * subject or tenant claim may hold any bytes, and braces would break the hash tag). */
static bool plain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static void safe_name(const char *s, char out[72])
{
    if (plain(s)) {
        snprintf(out, 72, "%s", s);
        return;
    }
    unsigned char h[16];
    crypto_generichash(h, sizeof h, (const unsigned char *)s, strlen(s), NULL, 0);
    out[0] = '#';
    sodium_bin2hex(out + 1, 33, h, sizeof h);
}

/* Keys are "<prefix>{<tenant>}:..." so every bucket of one request shares a Redis
 * Cluster hash slot (the {tag}); a multi-key script needs that. */
struct step {
    struct mk_kv_bucket b[MK_KV_MAX_BUCKETS];
    enum which w[MK_KV_MAX_BUCKETS];
    char keys[MK_KV_MAX_BUCKETS][MK_KV_MAX_KEY_BYTES];
    size_t n;
    int64_t now;            /* what the buckets get (0 = kv clock) */
    int64_t wall;           /* for windows */
    int64_t day_end, month_end;
};

static void add(struct step *s, enum which w, const char *key, double cap, double rate, double cost,
                enum mk_kv_bucket_mode mode, uint64_t ttl)
{
    size_t i = s->n++;
    snprintf(s->keys[i], sizeof s->keys[i], "%s", key);
    s->b[i] = (struct mk_kv_bucket){.key = s->keys[i], .keylen = strlen(s->keys[i]), .capacity = cap,
                                    .rate_per_s = rate, .cost = cost, .mode = mode, .ttl_ms = ttl};
    s->w[i] = w;
}

/* phase: 0 admission, 1 charge. */
static void build(const struct mk_limits *l, const struct mk_principal *p, int phase, uint64_t tokens, double cost,
                  struct step *s)
{
    memset(s, 0, sizeof *s);
    s->wall = l->opt.clock_ms ? l->opt.clock_ms(l->opt.clock_arg) : mk_wall_ms();
    s->now = l->opt.clock_ms ? s->wall : 0;
    char day[16], month[16];
    mk_limits_windows(s->wall, day, month, &s->day_end, &s->month_end);
    struct mk_limits_effective e;
    mk_limits_effective(l, p, &e);
    char tenant[72], who[72];
    safe_name(p->tenant[0] ? p->tenant : "-", tenant);
    safe_name(p->id[0] ? p->id : "-", who);
    const char kind = p->kind == MK_PRINCIPAL_KEY ? 'k' : p->kind == MK_PRINCIPAL_JWT ? 'j' : 'a';
    char k[MK_KV_MAX_KEY_BYTES];
    uint64_t day_ttl = (uint64_t)(s->day_end - s->wall + BUDGET_GRACE_MS);
    uint64_t month_ttl = (uint64_t)(s->month_end - s->wall + BUDGET_GRACE_MS);
    double tcost = (double)tokens;
    enum mk_kv_bucket_mode admit = phase == 0 ? MK_KV_ADMIT : MK_KV_CHARGE;

    if (phase == 0 && e.key_rpm) {
        snprintf(k, sizeof k, "%s{%s}:%c:%s:rpm", l->prefix, tenant, kind, who);
        add(s, W_KEY_RPM, k, e.key_rpm, e.key_rpm / 60.0, 1, MK_KV_TAKE, 0);
    }
    if (phase == 0 && e.tenant_rpm) {
        snprintf(k, sizeof k, "%s{%s}:t:rpm", l->prefix, tenant);
        add(s, W_TENANT_RPM, k, e.tenant_rpm, e.tenant_rpm / 60.0, 1, MK_KV_TAKE, 0);
    }
    if (e.key_tpm && (phase == 0 || tokens)) {
        snprintf(k, sizeof k, "%s{%s}:%c:%s:tpm", l->prefix, tenant, kind, who);
        add(s, W_KEY_TPM, k, e.key_tpm, e.key_tpm / 60.0, phase ? tcost : 0, admit, 0);
    }
    if (e.tenant_tpm && (phase == 0 || tokens)) {
        snprintf(k, sizeof k, "%s{%s}:t:tpm", l->prefix, tenant);
        add(s, W_TENANT_TPM, k, e.tenant_tpm, e.tenant_tpm / 60.0, phase ? tcost : 0, admit, 0);
    }
    bool spend = phase == 0 || cost > 0;
    if (e.key_budget_day > 0 && spend) {
        snprintf(k, sizeof k, "%s{%s}:%c:%s:%s", l->prefix, tenant, kind, who, day);
        add(s, W_KEY_BD, k, e.key_budget_day, 0, phase ? cost : 0, admit, day_ttl);
    }
    if (e.key_budget_month > 0 && spend) {
        snprintf(k, sizeof k, "%s{%s}:%c:%s:%s", l->prefix, tenant, kind, who, month);
        add(s, W_KEY_BM, k, e.key_budget_month, 0, phase ? cost : 0, admit, month_ttl);
    }
    if (e.tenant_budget_day > 0 && spend) {
        snprintf(k, sizeof k, "%s{%s}:t:%s", l->prefix, tenant, day);
        add(s, W_TENANT_BD, k, e.tenant_budget_day, 0, phase ? cost : 0, admit, day_ttl);
    }
    if (e.tenant_budget_month > 0 && spend) {
        snprintf(k, sizeof k, "%s{%s}:t:%s", l->prefix, tenant, month);
        add(s, W_TENANT_BM, k, e.tenant_budget_month, 0, phase ? cost : 0, admit, month_ttl);
    }
}

/* ---- admission and charge ------------------------------------------------------------ */

struct job {
    struct mk_limits *l;
    struct step s;
    int phase;
    mk_limits_cb cb;
    void *arg;
};

static void log_kv_failure(struct mk_limits *l, int rc, const char *what)
{
    int64_t now = (int64_t)mk_now_ms();
    int64_t last = atomic_load(&l->last_fail_log);
    if (now - last < FAIL_LOG_EVERY_MS || !atomic_compare_exchange_strong(&l->last_fail_log, &last, now)) return;
    mk_log(MK_LOG_WARN, "limits_kv_unavailable", "during", what, "error", mk_error_name(rc), "policy",
           l->opt.fail_closed ? "fail_closed" : "fail_open", NULL);
}

static void verdict_of_kv_error(struct mk_limits *l, int rc, struct mk_limits_verdict *v)
{
    log_kv_failure(l, rc, "admission");
    if (l->opt.fail_closed) {
        atomic_fetch_add(&l->failed_closed, 1);
        v->rc = rc == MK_EUNAVAILABLE ? MK_EUNAVAILABLE : rc;
    } else {
        atomic_fetch_add(&l->failed_open, 1);
        v->rc = 0;
        v->failed_open = true;
    }
}

static void job_done(int rc, const struct mk_kv_bucket_result *r, void *arg)
{
    struct job *j = arg;
    struct mk_limits *l = j->l;
    struct mk_limits_verdict v = {.rc = 0, .limit = ""};
    if (j->phase == 1) {
        if (rc != 0) {
            atomic_fetch_add(&l->charge_errors, 1);
            log_kv_failure(l, rc, "charge");
            v.rc = rc;
        }
    } else if (rc != 0) {
        verdict_of_kv_error(l, rc, &v);
    } else if (!r->allowed) {
        atomic_fetch_add(&l->limited, 1);
        v.rc = MK_ERATE_LIMITED;
        v.limit = r->failed >= 0 && (size_t)r->failed < j->s.n ? which_names[j->s.w[r->failed]] : "";
        int64_t wait = r->retry_after_ms;
        if (wait < 0) {
            /* A spent budget: wait for the end of its window (the longest one spent). */
            wait = 0;
            for (size_t i = 0; i < j->s.n; i++) {
                if (j->s.b[i].rate_per_s > 0 || r->level[i] >= 0) continue;
                enum which w = j->s.w[i];
                int64_t end = (w == W_KEY_BD || w == W_TENANT_BD) ? j->s.day_end : j->s.month_end;
                if (end - j->s.wall > wait) wait = end - j->s.wall;
            }
        }
        v.retry_after_ms = wait > 0 ? wait : 1;
    } else {
        atomic_fetch_add(&l->admitted, 1);
    }
    if (j->cb) j->cb(&v, j->arg);
    free(j);
}

static int run(struct mk_limits *l, const struct mk_principal *p, int phase, uint64_t tokens, double cost,
               mk_limits_cb cb, void *arg)
{
    struct job *j = malloc(sizeof *j);
    if (!j) return MK_ENOMEM;
    j->l = l;
    j->phase = phase;
    j->cb = cb;
    j->arg = arg;
    build(l, p, phase, tokens, cost, &j->s);
    if (j->s.n == 0) {
        /* Nothing to check or charge. */
        if (phase == 0) atomic_fetch_add(&l->admitted, 1);
        struct mk_limits_verdict v = {.rc = 0, .limit = ""};
        free(j);
        if (cb) cb(&v, arg);
        return 0;
    }
    int rc = mk_kv_buckets(l->kv, j->s.b, j->s.n, j->s.now, job_done, j);
    if (rc == 0) return 0;
    if (rc == MK_EINVAL || rc == MK_ENOMEM) {
        free(j);
        return rc;
    }
    /* MK_EUNAVAILABLE and friends: the callback never ran; decide here. */
    job_done(rc, NULL, j);
    return 0;
}

int mk_limits_admit(struct mk_limits *l, const struct mk_principal *p, mk_limits_cb cb, void *arg)
{
    if (!l || !p || !cb) return MK_EINVAL;
    return run(l, p, 0, 0, 0, cb, arg);
}

int mk_limits_charge(struct mk_limits *l, const struct mk_principal *p, uint64_t tokens, double cost,
                     mk_limits_cb cb, void *arg)
{
    if (!l || !p || !isfinite(cost) || cost < 0 || cost > 1e12 || tokens > (uint64_t)1e15) return MK_EINVAL;
    atomic_fetch_add(&l->charges, 1);
    return run(l, p, 1, tokens, cost, cb, arg);
}
