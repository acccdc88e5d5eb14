/*
 * mk_accounting: usage and cost per tenant, principal (API key), model group and
 * deployment, counted at the end of every model request, plus the metrics that go
 * with them. In memory per process (the store-backed ledger comes with the
 * security work); exposed at GET /api/v1/usage.
 */
#ifndef MK_ACCOUNTING_H
#define MK_ACCOUNTING_H

#include <json-c/json.h>

#include "provider/mk_provider.h"

/* Cost of `u` at `p` (price per 1,000 tokens). */
double mk_cost_of(const struct mk_usage *u, const struct mk_price *p);

/* Adds one request's usage to the ledger. Thread-safe. */
void mk_accounting_add(const char *tenant, const char *principal, const char *model_group,
                       const char *deployment, const struct mk_usage *u, double cost);
/* A JSON array of {tenant, principal, model_group, deployment, requests,
 * prompt_tokens, completion_tokens, cost}; caller owns the result. */
json_object *mk_accounting_snapshot(void);
void mk_accounting_reset(void);

#endif
