/* The accounting filter: at the end of each model request it turns the context's
 * outcome into usage, cost, metrics and the ledger (mk_accounting.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_time.h"
#include "metrics/mk_metrics.h"
#include "mk_accounting.h"
#include "mk_pipeline.h"

double mk_cost_of(const struct mk_usage *u, const struct mk_price *p)
{
    return (double)u->prompt_tokens / 1000.0 * p->input_per_1k +
           (double)u->completion_tokens / 1000.0 * p->output_per_1k;
}

/* The ledger: a short linked list per process. Rows are few (tenants x keys x
 * deployments), so a list keeps this simple; a hot row moves to the front. */
struct ledger_row {
    struct ledger_row *next;
    char *tenant, *principal, *group, *deployment;
    long long requests, prompt_tokens, completion_tokens;
    double cost;
};

static pthread_mutex_t ledger_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ledger_row *ledger;

static bool same(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }
static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

void mk_accounting_add(const char *tenant, const char *principal, const char *model_group,
                       const char *deployment, const struct mk_usage *u, double cost)
{
    pthread_mutex_lock(&ledger_lock);
    struct ledger_row **pp = &ledger, *row = NULL;
    for (; *pp; pp = &(*pp)->next) {
        struct ledger_row *r = *pp;
        if (same(r->tenant, tenant) && same(r->principal, principal) && same(r->group, model_group) &&
            same(r->deployment, deployment)) {
            row = r;
            *pp = r->next; /* unlink; relinked at the front below */
            break;
        }
    }
    if (!row) {
        row = calloc(1, sizeof *row);
        if (!row) {
            pthread_mutex_unlock(&ledger_lock);
            return;
        }
        row->tenant = dup_or_empty(tenant);
        row->principal = dup_or_empty(principal);
        row->group = dup_or_empty(model_group);
        row->deployment = dup_or_empty(deployment);
    }
    row->next = ledger;
    ledger = row;
    row->requests++;
    row->prompt_tokens += u->prompt_tokens;
    row->completion_tokens += u->completion_tokens;
    row->cost += cost;
    pthread_mutex_unlock(&ledger_lock);
}

json_object *mk_accounting_snapshot(void)
{
    json_object *arr = json_object_new_array();
    pthread_mutex_lock(&ledger_lock);
    for (struct ledger_row *r = ledger; r; r = r->next) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tenant", json_object_new_string(r->tenant));
        json_object_object_add(o, "principal", json_object_new_string(r->principal));
        json_object_object_add(o, "model_group", json_object_new_string(r->group));
        json_object_object_add(o, "deployment", json_object_new_string(r->deployment));
        json_object_object_add(o, "requests", json_object_new_int64(r->requests));
        json_object_object_add(o, "prompt_tokens", json_object_new_int64(r->prompt_tokens));
        json_object_object_add(o, "completion_tokens", json_object_new_int64(r->completion_tokens));
        json_object_object_add(o, "cost", json_object_new_double(r->cost));
        json_object_array_add(arr, o);
    }
    pthread_mutex_unlock(&ledger_lock);
    return arr;
}

void mk_accounting_reset(void)
{
    pthread_mutex_lock(&ledger_lock);
    while (ledger) {
        struct ledger_row *r = ledger;
        ledger = r->next;
        free(r->tenant);
        free(r->principal);
        free(r->group);
        free(r->deployment);
        free(r);
    }
    pthread_mutex_unlock(&ledger_lock);
}

static void accounting_end(mk_ctx *ctx)
{
    if (!ctx->group) return; /* not a model request */
    const char *group = ctx->group ? ctx->group->config->name : "none";
    const char *dep = ctx->deployment ? ctx->deployment->label : (ctx->cache_hit ? "cache" : "none");
    char status[16];
    snprintf(status, sizeof status, "%d", ctx->status);
    const char *req_labels[] = {group, dep, status};
    mk_metric_inc(MK_METRIC_LLM_REQUESTS, req_labels);
    const char *g_labels[] = {group};
    uint64_t now = mk_now_us();
    mk_metric_observe(MK_METRIC_LLM_DURATION, g_labels, (double)(now - ctx->start_us) / 1e6);
    if (ctx->first_token_us)
        mk_metric_observe(MK_METRIC_TTFT, g_labels, (double)(ctx->first_token_us - ctx->start_us) / 1e6);
    if (ctx->attempts > 1) mk_metric_add(MK_METRIC_RETRIES, g_labels, ctx->attempts - 1);
    if (!ctx->has_usage) return;
    if (ctx->deployment && !ctx->cache_hit) ctx->cost = mk_cost_of(&ctx->usage, &ctx->deployment->price);
    const char *prompt_labels[] = {group, dep, "prompt"};
    const char *completion_labels[] = {group, dep, "completion"};
    mk_metric_add(MK_METRIC_TOKENS, prompt_labels, (double)ctx->usage.prompt_tokens);
    mk_metric_add(MK_METRIC_TOKENS, completion_labels, (double)ctx->usage.completion_tokens);
    const char *cost_labels[] = {group, dep};
    if (ctx->cost > 0) mk_metric_add(MK_METRIC_COST, cost_labels, ctx->cost);
    mk_accounting_add(ctx->tenant, ctx->principal, group, dep, &ctx->usage, ctx->cost);
}

const struct mk_filter_ops mk_filter_accounting = {
    .name = "accounting",
    .on_end = accounting_end,
};
