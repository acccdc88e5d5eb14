/*
 * desk_conv_int: helpers shared by the desk's store files (desk_conv.c,
 * desk_analytics.c); not a public API.
 */
#ifndef MK_DESK_CONV_INT_H
#define MK_DESK_CONV_INT_H

#include "desk/mk_desk_conv.h"

/* A name (user, agent, channel, reason...): 1..MK_DESK_MAX_NAME bytes of UTF-8 without
 * control characters; NULL or "" only when may_be_empty. */
bool desk_name_ok(const char *s, bool may_be_empty);
/* Fills cv from a row selected with the CONV_COLS column list of desk_conv.c. */
void desk_row_to_conv(struct mk_store_stmt *st, struct mk_desk_conv *cv);
/* Appends a desk_transitions row (inside the caller's transaction). */
int desk_add_transition(struct mk_store_conn *c, const char *tenant, const char *id, const char *from,
                        const char *to, const char *actor, const char *reason, int64_t now);

#endif
