/*
 * The guard filter: the input guard of every chat request (prompt-injection scoring
 * and personal-data masking) and the matching output side (placeholders restored for
 * the caller, also across stream chunks).
 *
 * Masking follows the data, not the request: the guard prepares a masked copy of the
 * request, and the terminal stage sends it only to deployments outside the tenant's
 * jurisdiction (not tagged residency:<jurisdiction>, default "ru"), so a provider
 * abroad never sees personal data (152-FZ) while one at home gets the text as is.
 */
#ifndef MK_GUARD_FILTER_H
#define MK_GUARD_FILTER_H

#include <json-c/json.h>

#include "config/mk_config.h"
#include "core/mk_buf.h"
#include "mk_pipeline.h"

struct mk_guard;

/* Builds the guards the config asks for (*out NULL when every guard is off). */
int mk_guard_open(const struct mk_config *cfg, struct mk_guard **out, mk_buf *err);
void mk_guard_close(struct mk_guard *g);

/* The request body to send to deployment d: the original, or the masked copy when d
 * is outside the jurisdiction and something was masked. Records which was sent so
 * the answer is restored accordingly. */
json_object *mk_guard_request_for(mk_ctx *ctx, const mk_deployment *d);

#endif
