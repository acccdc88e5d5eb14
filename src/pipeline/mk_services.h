/*
 * mk_services: what every request of one process shares and the pipeline's filters
 * use: the store, the audit log, and (as they are wired in) keys, limits, guards and
 * the cache. Opened once at start from the config; one per process, thread-safe where
 * the modules are.
 */
#ifndef MK_SERVICES_H
#define MK_SERVICES_H

#include "config/mk_config.h"
#include "core/mk_buf.h"

struct mk_store;
struct mk_audit;

struct mk_services {
    struct mk_store *store;   /* <data_dir>/mayak.db unless configured otherwise */
    struct mk_audit *audit;   /* NULL when the audit log is disabled */
};

/* Creates data_dir if needed, opens the store and the audit log. On failure returns
 * the error and writes a sentence to err. */
int mk_services_open(const struct mk_config *cfg, struct mk_services **out, mk_buf *err);
/* Flushes and closes everything. Accepts NULL. */
void mk_services_free(struct mk_services *s);

#endif
