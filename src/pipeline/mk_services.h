/*
 * mk_services: what every request of one process shares and the pipeline's filters
 * use: the store, the audit log, API keys, JWT verification, the kv behind limits, the
 * limits themselves, and (as they are wired in) guards and the cache. Opened once at
 * start from the config on the serving loop.
 */
#ifndef MK_SERVICES_H
#define MK_SERVICES_H

#include <uv.h>

#include "auth/mk_auth.h"
#include "config/mk_config.h"
#include "core/mk_buf.h"

struct mk_store;
struct mk_audit;
struct mk_keys;
struct mk_jwt;
struct mk_kv;
struct mk_limits;
struct mk_guard;
struct mk_cache;

struct mk_services {
    struct mk_store *store;   /* store.url, or <data_dir>/mayak.db */
    struct mk_audit *audit;   /* NULL when audit.enabled is false */
    struct mk_keys *keys;     /* API keys (hashed in the store) */
    struct mk_jwt *jwt;       /* NULL unless auth.jwt.issuer is set */
    struct mk_kv *kv;         /* kv.url: in-process by default, Redis when shared */
    struct mk_limits *limits; /* token buckets and budgets on the kv */
    struct mk_guard *guard;   /* input/output guards; NULL when every guard is off */
    struct mk_cache *cache;   /* response cache (docs/CACHE.md); always open, the filter
                                 decides per model group and request whether to use it */
    struct mk_cache_config cache_config; /* top-level cache settings */
    struct mk_auth_policy auth_policy;
    char *listen_host;        /* where we listen: decides whether keys are required */
};

/* Creates data_dir if needed and opens everything. On failure returns the error and
 * writes a sentence to err. */
int mk_services_open(const struct mk_config *cfg, uv_loop_t *loop, struct mk_services **out, mk_buf *err);
/* Flushes and closes everything (the kv's handles close with the loop). Accepts NULL. */
void mk_services_free(struct mk_services *s);

#endif
