/* The pipeline's filters, in the order a request meets them (see mk_pipeline.h).
 * Adding a filter: write filter_<name>.c defining its ops, add one line here. */
#include "mk_pipeline.h"

extern const struct mk_filter_ops mk_filter_limits;
extern const struct mk_filter_ops mk_filter_guard;
extern const struct mk_filter_ops mk_filter_cache;
extern const struct mk_filter_ops mk_filter_output;
extern const struct mk_filter_ops mk_filter_audit;
extern const struct mk_filter_ops mk_filter_accounting;

const struct mk_filter_ops *const mk_pipeline_filters[] = {
    &mk_filter_limits,     /* cheapest refusal first: over-quota callers cost nothing more */
    &mk_filter_guard,      /* injection scoring, personal data masked; restored on the way out */
    &mk_filter_cache,      /* after the guard: blocked requests never hit; answers stored as restored */
    &mk_filter_output,     /* after the cache (keys stay canary-free): canary + word/pattern policy, fail closed */
    &mk_filter_audit,      /* sees the answer as the client gets it; records every verdict */
    &mk_filter_accounting, /* last on the way out: counts what every filter above decided */
    NULL,
};
