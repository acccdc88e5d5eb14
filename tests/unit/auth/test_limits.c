/* Limits: buckets refill by an injected clock, debt semantics for tokens, budgets that
 * roll over at UTC midnight and month start, tenant limits, atomic refusal, fail-open
 * and fail-closed, and the same semantics on a real redis-server. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "../kv/redis_fixture.h"
#include "auth/mk_limits.h"
#include "core/mk_error.h"
#include "core/mk_log.h"

static int64_t wall;
static int64_t clock_fn(void *arg) { return wall; }

struct res {
    volatile bool done;
    struct mk_limits_verdict v;
};
static void on_v(const struct mk_limits_verdict *v, void *arg)
{
    struct res *r = arg;
    r->v = *v;
    r->done = true;
}

static uv_loop_t *g_loop;

static struct mk_limits_verdict admit(struct mk_limits *l, const struct mk_principal *p)
{
    struct res r = {0};
    cr_assert_eq(mk_limits_admit(l, p, on_v, &r), 0);
    if (!r.done && g_loop) test_run_until(g_loop, &r.done, 5000);
    cr_assert(r.done);
    return r.v;
}

static struct mk_limits_verdict charge(struct mk_limits *l, const struct mk_principal *p, uint64_t tok, double cost)
{
    struct res r = {0};
    cr_assert_eq(mk_limits_charge(l, p, tok, cost, on_v, &r), 0);
    if (!r.done && g_loop) test_run_until(g_loop, &r.done, 5000);
    cr_assert(r.done);
    return r.v;
}

static struct mk_principal key_principal(const char *id, const char *tenant, enum mk_role role)
{
    struct mk_principal p = {.kind = MK_PRINCIPAL_KEY, .role = role};
    snprintf(p.id, sizeof p.id, "%s", id);
    snprintf(p.tenant, sizeof p.tenant, "%s", tenant);
    return p;
}

static struct mk_kv *mem_kv(void)
{
    struct mk_kv *kv;
    cr_assert_eq(mk_kv_open(NULL, "memory:", NULL, &kv, NULL), 0);
    return kv;
}

static void quiet(void) { mk_log_set_level(MK_LOG_OFF); }
TestSuite(limits, .init = quiet);

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

Test(limits, rpm_refills_by_the_clock)
{
    struct mk_kv *kv = mem_kv();
    struct mk_limits_options o = {.clock_ms = clock_fn};
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, &o, &l), 0);
    wall = utc(2025, 3, 10, 12, 0, 0);
    struct mk_principal p = key_principal("k1", "acme", MK_ROLE_USER);
    p.rpm = 6; /* 6 per minute = one every 10 s */
    for (int i = 0; i < 6; i++) cr_assert_eq(admit(l, &p).rc, 0, "request %d", i);
    struct mk_limits_verdict v = admit(l, &p);
    cr_assert_eq(v.rc, MK_ERATE_LIMITED);
    cr_assert_str_eq(v.limit, "key_rpm");
    cr_assert_eq(v.retry_after_ms, 10000);
    cr_assert_eq(mk_limits_retry_after_s(v.retry_after_ms), 10);
    wall += 9999;
    cr_assert_eq(admit(l, &p).rc, MK_ERATE_LIMITED);
    wall += 1;
    cr_assert_eq(admit(l, &p).rc, 0, "one token back after 10 s");
    /* another key of the same tenant has its own bucket */
    struct mk_principal q = key_principal("k2", "acme", MK_ROLE_USER);
    q.rpm = 6;
    cr_assert_eq(admit(l, &q).rc, 0);
    struct mk_limits_stats st;
    mk_limits_get_stats(l, &st);
    cr_assert_eq(st.limited, 2);
    mk_limits_free(l);
    mk_kv_free(kv);
}

Test(limits, role_defaults_and_overrides)
{
    struct mk_kv *kv = mem_kv();
    struct mk_limits_options o = {.clock_ms = clock_fn};
    o.role_rpm[MK_ROLE_USER] = 2;
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, &o, &l), 0);
    struct mk_principal u = key_principal("u", "t", MK_ROLE_USER), a = key_principal("a", "t", MK_ROLE_ADMIN);
    struct mk_limits_effective e;
    mk_limits_effective(l, &u, &e);
    cr_assert_eq(e.key_rpm, 2, "configured per role");
    mk_limits_effective(l, &a, &e);
    cr_assert_eq(e.key_rpm, mk_role_default_rpm(MK_ROLE_ADMIN));
    cr_assert_geq(e.key_rpm, 1000);
    wall = 1000000;
    cr_assert_eq(admit(l, &u).rc, 0);
    cr_assert_eq(admit(l, &u).rc, 0);
    cr_assert_eq(admit(l, &u).rc, MK_ERATE_LIMITED);
    mk_limits_free(l);
    mk_kv_free(kv);
}

Test(limits, tokens_admit_unless_in_debt)
{
    struct mk_kv *kv = mem_kv();
    struct mk_limits_options o = {.clock_ms = clock_fn};
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, &o, &l), 0);
    wall = 5000000;
    struct mk_principal p = key_principal("k", "acme", MK_ROLE_USER);
    p.tpm = 600; /* 10 tokens per second */
    p.rpm = 1000;
    cr_assert_eq(admit(l, &p).rc, 0);
    cr_assert_eq(charge(l, &p, 500, 0).rc, 0);
    cr_assert_eq(admit(l, &p).rc, 0, "100 tokens left: not in debt");
    cr_assert_eq(charge(l, &p, 400, 0).rc, 0, "a charge is never refused");
    struct mk_limits_verdict v = admit(l, &p);
    cr_assert_eq(v.rc, MK_ERATE_LIMITED, "300 tokens in debt");
    cr_assert_str_eq(v.limit, "key_tpm");
    cr_assert_eq(v.retry_after_ms, 30000, "debt of 300 at 10/s");
    wall += 30000;
    cr_assert_eq(admit(l, &p).rc, 0, "debt repaid");
    mk_limits_free(l);
    mk_kv_free(kv);
}

Test(limits, budgets_roll_over_at_utc_midnight_and_month_start)
{
    struct mk_kv *kv = mem_kv();
    struct mk_limits_options o = {.clock_ms = clock_fn};
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, &o, &l), 0);
    struct mk_principal p = key_principal("k", "acme", MK_ROLE_USER);
    p.budget_day = 1.0;
    p.budget_month = 2.5;
    wall = utc(2025, 1, 31, 23, 0, 0);
    cr_assert_eq(admit(l, &p).rc, 0);
    charge(l, &p, 0, 0.6);
    cr_assert_eq(admit(l, &p).rc, 0, "0.6 of 1.0 spent today");
    charge(l, &p, 0, 0.6);
    struct mk_limits_verdict v = admit(l, &p);
    cr_assert_eq(v.rc, MK_ERATE_LIMITED, "1.2 of 1.0 spent today");
    cr_assert_str_eq(v.limit, "key_budget_day");
    cr_assert_eq(v.retry_after_ms, 3600000, "until 00:00 UTC");
    wall = utc(2025, 1, 31, 23, 59, 59);
    cr_assert_eq(admit(l, &p).rc, MK_ERATE_LIMITED);
    wall = utc(2025, 2, 1, 0, 0, 0);
    cr_assert_eq(admit(l, &p).rc, 0, "a new day (and a new month)");
    charge(l, &p, 0, 0.9);
    wall = utc(2025, 2, 2, 10, 0, 0);
    charge(l, &p, 0, 0.9);
    wall = utc(2025, 2, 3, 10, 0, 0);
    charge(l, &p, 0, 0.9);
    v = admit(l, &p);
    cr_assert_eq(v.rc, MK_ERATE_LIMITED, "2.7 of 2.5 this month");
    cr_assert_str_eq(v.limit, "key_budget_month");
    cr_assert_eq(v.retry_after_ms, utc(2025, 3, 1, 0, 0, 0) - wall, "until the 1st");
    wall = utc(2025, 3, 1, 0, 0, 1);
    cr_assert_eq(admit(l, &p).rc, 0, "March");
    /* December rolls into January of the next year */
    char day[16], month[16];
    int64_t de, me;
    mk_limits_windows(utc(2024, 12, 31, 18, 0, 0), day, month, &de, &me);
    cr_assert_str_eq(day, "d20241231");
    cr_assert_str_eq(month, "m202412");
    cr_assert_eq(de, utc(2025, 1, 1, 0, 0, 0));
    cr_assert_eq(me, utc(2025, 1, 1, 0, 0, 0));
    mk_limits_windows(utc(2024, 2, 29, 0, 0, 0), day, month, &de, &me);
    cr_assert_str_eq(day, "d20240229");
    cr_assert_eq(me, utc(2024, 3, 1, 0, 0, 0));
    mk_limits_free(l);
    mk_kv_free(kv);
}

Test(limits, tenant_limits_are_shared_and_refusal_is_atomic)
{
    struct mk_kv *kv = mem_kv();
    struct mk_limits_tenant t = {.name = "small", .rpm = 3};
    struct mk_limits_options o = {.clock_ms = clock_fn, .tenants = &t, .ntenants = 1, .tenant_rpm = 100};
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, &o, &l), 0);
    wall = 77000000;
    struct mk_principal a = key_principal("a", "small", MK_ROLE_USER), b = key_principal("b", "small", MK_ROLE_USER);
    a.rpm = b.rpm = 2;
    cr_assert_eq(admit(l, &a).rc, 0);
    cr_assert_eq(admit(l, &b).rc, 0);
    cr_assert_eq(admit(l, &b).rc, 0);
    struct mk_limits_verdict v = admit(l, &a);
    cr_assert_eq(v.rc, MK_ERATE_LIMITED);
    cr_assert_str_eq(v.limit, "tenant_rpm", "the tenant's 3/min are used up");
    /* key a had one request left; the refused step must not have taken it */
    wall += 20000; /* the tenant bucket (3/min) regains one token */
    cr_assert_eq(admit(l, &a).rc, 0, "key a still had its second token");
    struct mk_principal other = key_principal("c", "big", MK_ROLE_USER);
    struct mk_limits_effective e;
    mk_limits_effective(l, &other, &e);
    cr_assert_eq(e.tenant_rpm, 100, "the default tenant limit");
    mk_limits_free(l);
    mk_kv_free(kv);
}

Test(limits, odd_names_and_bad_arguments)
{
    struct mk_kv *kv = mem_kv();
    struct mk_limits *l;
    struct mk_limits_tenant bad = {.name = NULL};
    struct mk_limits_options o = {.tenants = &bad, .ntenants = 1};
    cr_assert_eq(mk_limits_new(kv, &o, &l), MK_EINVAL);
    o = (struct mk_limits_options){.tenant_budget_day = -1};
    cr_assert_eq(mk_limits_new(kv, &o, &l), MK_EINVAL);
    cr_assert_eq(mk_limits_new(kv, NULL, &l), 0);
    struct mk_principal p = {.kind = MK_PRINCIPAL_JWT, .role = MK_ROLE_USER};
    snprintf(p.id, sizeof p.id, "user with spaces {and braces} ünïcode");
    snprintf(p.tenant, sizeof p.tenant, "org/with:odd}chars");
    cr_assert_eq(admit(l, &p).rc, 0, "odd names are hashed into safe keys");
    cr_assert_eq(mk_limits_charge(l, &p, 1, -1, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_limits_admit(l, &p, NULL, NULL), MK_EINVAL);
    mk_limits_free(l);
    mk_kv_free(kv);
}

/* ---- kv outage ------------------------------------------------------------------------ */

static struct mk_kv *dead_redis(void)
{
    uv_loop_t *loop = malloc(sizeof *loop);
    uv_loop_init(loop);
    g_loop = loop;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", test_free_port());
    struct mk_kv *kv;
    cr_assert_eq(mk_kv_open(loop, url, NULL, &kv, NULL), 0);
    return kv;
}

Test(limits, fails_open_by_default)
{
    struct mk_kv *kv = dead_redis();
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, NULL, &l), 0);
    struct mk_principal p = key_principal("k", "t", MK_ROLE_USER);
    struct mk_limits_verdict v = admit(l, &p);
    cr_assert_eq(v.rc, 0);
    cr_assert(v.failed_open);
    struct mk_limits_stats st;
    mk_limits_get_stats(l, &st);
    cr_assert_eq(st.failed_open, 1);
    mk_limits_free(l);
    mk_kv_free(kv);
    uv_run(g_loop, UV_RUN_NOWAIT);
}

Test(limits, fails_closed_when_asked)
{
    struct mk_kv *kv = dead_redis();
    struct mk_limits_options o = {.fail_closed = true};
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, &o, &l), 0);
    struct mk_principal p = key_principal("k", "t", MK_ROLE_USER);
    struct mk_limits_verdict v = admit(l, &p);
    cr_assert_eq(v.rc, MK_EUNAVAILABLE);
    cr_assert_not(v.failed_open);
    mk_limits_free(l);
    mk_kv_free(kv);
    uv_run(g_loop, UV_RUN_NOWAIT);
}

/* ---- the same semantics on redis ------------------------------------------------------ */

Test(limits, on_real_redis, .timeout = 60)
{
    struct test_redis r;
    cr_assert(test_redis_start(&r, 0), "redis-server did not start");
    uv_loop_t *loop = malloc(sizeof *loop);
    uv_loop_init(loop);
    g_loop = loop;
    char url[64];
    test_redis_url(&r, url, sizeof url);
    struct mk_kv *kv;
    cr_assert_eq(mk_kv_open(loop, url, NULL, &kv, NULL), 0);
    volatile bool never = false;
    for (int i = 0; i < 500 && !mk_kv_ready(kv); i++) test_run_until(loop, &never, 10);
    cr_assert(mk_kv_ready(kv));
    struct mk_limits_options o = {.clock_ms = clock_fn};
    struct mk_limits *l;
    cr_assert_eq(mk_limits_new(kv, &o, &l), 0);
    wall = utc(2025, 1, 31, 23, 0, 0);
    struct mk_principal p = key_principal("k", "acme", MK_ROLE_USER);
    p.rpm = 2;
    p.tpm = 600;
    p.budget_day = 1;
    cr_assert_eq(admit(l, &p).rc, 0);
    cr_assert_eq(admit(l, &p).rc, 0);
    struct mk_limits_verdict v = admit(l, &p);
    cr_assert_eq(v.rc, MK_ERATE_LIMITED);
    cr_assert_str_eq(v.limit, "key_rpm");
    cr_assert_eq(v.retry_after_ms, 30000);
    wall += 60000;
    cr_assert_eq(charge(l, &p, 900, 1.5).rc, 0);
    v = admit(l, &p);
    cr_assert_eq(v.rc, MK_ERATE_LIMITED);
    cr_assert(strcmp(v.limit, "key_tpm") == 0 || strcmp(v.limit, "key_budget_day") == 0);
    cr_assert_eq(v.retry_after_ms, utc(2025, 2, 1, 0, 0, 0) - wall, "the longest wait: the day budget");
    wall = utc(2025, 2, 1, 0, 1, 0);
    cr_assert_eq(admit(l, &p).rc, 0, "new day, tokens repaid");
    mk_limits_free(l);
    mk_kv_free(kv);
    for (int i = 0; i < 10; i++) uv_run(loop, UV_RUN_NOWAIT);
    test_redis_stop(&r);
}
