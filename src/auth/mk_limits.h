/*
 * mk_limits: request and token rate limits and cost budgets, per key and per tenant,
 * on the kv (mk_kv.h): in-process by default, shared by every node with redis.
 *
 * Semantics (docs/AUTH.md has the long form):
 *  - Requests per minute: a token bucket of capacity rpm refilled at rpm/60 per
 *    second. A request takes one token; none left -> refused.
 *  - Tokens per minute: a bucket of capacity tpm refilled at tpm/60 per second. The
 *    real usage is only known after the answer, so admission asks only that the
 *    bucket is NOT IN DEBT (level >= 0); mk_limits_charge then subtracts the real
 *    tokens, possibly into debt, which later requests wait out.
 *  - Cost budgets per UTC calendar day and month: spent amounts in counters whose key
 *    names the window (d20250131, m202501), so they roll over at 00:00 UTC and on the
 *    1st; admission asks that the budget is not exceeded, the charge adds the cost.
 *  - Every bucket of a step is checked and charged atomically (mk_kv_buckets): a
 *    refused request charges nothing anywhere.
 *  - Refusal: MK_ERATE_LIMITED with retry_after_ms (the API answers 429, Retry-After
 *    in seconds, OpenAI's error shape) and the name of the limit that refused.
 *  - Per key limits come from the key (0 = its role's default, mk_roles.h or
 *    role_rpm/role_tpm here); per tenant limits from `tenants` or tenant_* defaults
 *    (0 = no tenant-wide limit). A JWT principal is limited per subject like a key.
 *  - kv unavailable (redis down): FAIL OPEN by default - the request is admitted, a
 *    warning is logged (at most every 10 s) and failed_open is counted - because a
 *    gateway that stops serving when its rate-limit cache blinks turns a cache outage
 *    into a full outage. fail_closed: true answers MK_EUNAVAILABLE (503) instead,
 *    for deployments where budgets are a hard contract.
 *
 * Thread safety: a mk_limits is immutable after mk_limits_new and may be shared by
 * loops when its kv may (memory); with redis, make one kv + mk_limits per loop.
 */
#ifndef MK_LIMITS_AUTH_H
#define MK_LIMITS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/mk_auth.h"
#include "kv/mk_kv.h"

struct mk_limits;

struct mk_limits_tenant {
    const char *name;
    uint32_t rpm, tpm;               /* 0 = no tenant-wide limit */
    double budget_day, budget_month; /* 0 = none */
};

struct mk_limits_options {
    uint32_t role_rpm[MK_ROLE_COUNT];  /* 0 = the role table's default */
    uint32_t role_tpm[MK_ROLE_COUNT];
    /* Every tenant not listed in `tenants`: */
    uint32_t tenant_rpm, tenant_tpm;
    double tenant_budget_day, tenant_budget_month;
    const struct mk_limits_tenant *tenants; /* copied */
    size_t ntenants;
    bool fail_closed;
    const char *prefix;                /* kv key prefix; default "mk:lim:" (copied) */
    /* Wall clock in Unix ms; NULL = the kv's clock for buckets (redis: the server's,
     * one for all nodes) and the real clock for budget windows. Tests inject one. */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
};

struct mk_limits_verdict {
    int rc;                  /* 0 admitted/charged, MK_ERATE_LIMITED, MK_EUNAVAILABLE (fail closed), other errors */
    int64_t retry_after_ms;  /* when rate limited: > 0 */
    const char *limit;       /* which limit refused: "key_rpm", "tenant_tpm", "key_budget_day"...; "" otherwise */
    bool failed_open;        /* admitted only because the kv was unavailable */
};
typedef void (*mk_limits_cb)(const struct mk_limits_verdict *v, void *arg);

/* kv is not owned and must outlive the limits. opt may be NULL (defaults). 0,
 * MK_EINVAL (a tenant without a name, NaN/negative budgets), MK_ENOMEM. */
int mk_limits_new(struct mk_kv *kv, const struct mk_limits_options *opt, struct mk_limits **out);
void mk_limits_free(struct mk_limits *l); /* accepts NULL */

/* Admission before a request runs: takes one request token, checks the token buckets
 * are not in debt and the budgets are not spent. cb runs exactly once (immediately with
 * the memory kv, later with redis) when 0 is returned; MK_EINVAL/MK_ENOMEM otherwise. */
int mk_limits_admit(struct mk_limits *l, const struct mk_principal *p, mk_limits_cb cb, void *arg);

/* After the answer: charges the real tokens and cost (either may be 0). cb may be
 * NULL. Never refuses (rc 0, or a kv error; charges lost to a kv outage are logged). */
int mk_limits_charge(struct mk_limits *l, const struct mk_principal *p, uint64_t tokens, double cost,
                     mk_limits_cb cb, void *arg);

/* The effective limits for a principal (what admission will use; 0 = none). */
struct mk_limits_effective {
    uint32_t key_rpm, key_tpm, tenant_rpm, tenant_tpm;
    double key_budget_day, key_budget_month, tenant_budget_day, tenant_budget_month;
};
void mk_limits_effective(const struct mk_limits *l, const struct mk_principal *p, struct mk_limits_effective *out);

/* Retry-After header value: whole seconds, rounded up, at least 1. */
int64_t mk_limits_retry_after_s(int64_t retry_after_ms);

/* UTC windows of a wall time (ms): the day's and month's ids ("d20250131", "m202501")
 * and their ends (ms). For tests and for showing usage. */
void mk_limits_windows(int64_t now_ms, char day[16], char month[16], int64_t *day_end_ms, int64_t *month_end_ms);

struct mk_limits_stats {
    uint64_t admitted, limited, failed_open, failed_closed, charges, charge_errors;
};
void mk_limits_get_stats(const struct mk_limits *l, struct mk_limits_stats *out);

#endif
