/*
 * desk_service: the process's support desk on the serving loop — opened on the first
 * desk request (like the memory service: it is here until mk_services has a desk
 * member), closed when the app stops.
 *
 * It owns a store pool of its own on the process's database (store.url or
 * <data_dir>/mayak.db) with the "desk" migrations, the desk itself (agents, triage
 * classifier, knowledge base: mk_desk.h), the event bus (config `bus:`, default
 * in-process) with the outgoing webhooks of config `webhooks:` subscribed to it, the
 * TOTP registry for console logins, the key of console session tokens (desk_session.c),
 * and a timer that refreshes the analytics gauges of /metrics. The bus and the webhooks are read from the config of
 * the generation serving when the desk opens: changing them needs a restart, and so
 * does `desk.analytics_refresh_ms`, the refresh interval of those gauges.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mk_totp.h"
#include "bus/mk_bus.h"
#include "bus/mk_webhooks.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "desk_int.h"
#include "kb/mk_kb_store.h"
#include "kb_api.h"
#include "metrics/mk_metrics.h"
#include "store/mk_store.h"

static struct desk_svc *g_desk;
static bool g_failed;
/* The webhooks of g_desk's bus. Kept here rather than in struct desk_svc because only
 * this file opens and closes them and there is one desk per process. */
static struct mk_webhooks *g_hooks;

/* ---- jobs --------------------------------------------------------------------------- */

struct desk_job *desk_job_new(struct desk_svc *svc, enum desk_action a, const char *tenant, const char *conv)
{
    struct desk_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->svc = svc;
    j->action = a;
    j->helped = -1;
    snprintf(j->tenant, sizeof j->tenant, "%s", tenant ? tenant : "default");
    if (conv) snprintf(j->conv, sizeof j->conv, "%s", conv);
    /* The desk answers from the server's live knowledge base (what `mayak kb add` and
     * the KB API put in the store) once it has documents; until then from its own demo
     * set. The hold keeps that kb alive until the job (and its reply's citations) is
     * freed, even if the server stops meanwhile; syncs change it in place under its
     * own locks, so searching it from the pool is safe. */
    struct mk_kb_lib *lib = mk_kb_api_hold();
    mk_kb *kb = lib ? mk_kb_lib_kb(lib) : NULL;
    if (kb && mk_kb_document_count(kb) > 0) j->dctx.kb = kb;
    else if (lib) mk_kb_api_unhold();
    return j;
}

void desk_job_free(struct desk_job *j)
{
    if (!j) return;
    free(j->text);
    mk_desk_msg_release(&j->msg);
    mk_desk_msg_release(&j->bot);
    json_object_put(j->result);
    json_object_put(j->history);
    desk_bot_out_free(j->bot_out);
    if (j->dctx.kb) mk_kb_api_unhold();
    free(j);
}

static int job_work(struct mk_store_conn *c, void *arg)
{
    struct desk_job *j = arg;
    return j->work(j, c);
}

static void job_done(int status, void *arg)
{
    struct desk_job *j = arg;
    struct desk_svc *svc = j->svc;
    j->rc = status;
    j->done(j, status);
    svc->inflight--;
}

int desk_job_submit(struct desk_job *j)
{
    struct desk_svc *svc = j->svc;
    if (svc->closing) return MK_EUNAVAILABLE;
    int rc = mk_store_submit(svc->store, svc->loop, job_work, job_done, j);
    if (rc == 0) svc->inflight++;
    return rc;
}

/* ---- analytics gauges -------------------------------------------------------------------- */

static int analytics_work(struct desk_job *j, struct mk_store_conn *c)
{
    return mk_desk_analytics(c, NULL, 0, &j->result);
}

static void set_gauge(enum mk_metric_id id, const char *agent, json_object *v)
{
    const char *labels[] = {agent};
    if (v) mk_metric_set(id, labels, json_object_get_double(v));
}

static void gauges_from(const char *agent, json_object *t)
{
    set_gauge(MK_METRIC_DESK_AUTOMATION_RATE, agent, json_object_object_get(t, "automation_rate"));
    set_gauge(MK_METRIC_DESK_ESCALATION_RATE, agent, json_object_object_get(t, "escalation_rate"));
    set_gauge(MK_METRIC_DESK_CSAT_AVERAGE, agent, json_object_object_get(t, "csat_avg"));
}

static void analytics_done(struct desk_job *j, int rc)
{
    j->svc->analytics_running = false;
    if (rc == 0 && j->result) {
        gauges_from("all", json_object_object_get(j->result, "overall"));
        json_object_object_foreach(json_object_object_get(j->result, "agents"), agent, t) gauges_from(agent, t);
        mk_metric_set(MK_METRIC_DESK_QUEUE_LENGTH, NULL,
                      json_object_get_double(json_object_object_get(j->result, "queue_length")));
    }
    mk_metric_set(MK_METRIC_DESK_OPERATORS_ONLINE, NULL, (double)desk_hub_operator_count(j->svc));
    desk_job_free(j);
}

static void on_tick(uv_timer_t *t)
{
    struct desk_svc *svc = t->data;
    if (svc->closing) return;
    desk_sessions_expire(svc);
    if (svc->analytics_running) return;
    struct desk_job *j = desk_job_new(svc, DESK_A_RATE, NULL, NULL);
    if (!j) return;
    j->work = analytics_work;
    j->done = analytics_done;
    if (desk_job_submit(j) != 0) {
        desk_job_free(j);
        return;
    }
    svc->analytics_running = true;
}

/* ---- open / close -------------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    struct desk_svc *svc = h->data;
    if (--svc->handles_open == 0) {
        if (g_desk == svc) g_desk = NULL;
        free(svc);
    }
}

/* Runs every loop iteration (two loads). Once the app stops: close the clients, wait
 * for our jobs and the clients' close callbacks, then free everything. */
static void on_watch(uv_prepare_t *p)
{
    struct desk_svc *svc = p->data;
    if (!svc->app->stopping) return;
    if (!svc->closing) {
        svc->closing = true;
        uv_timer_stop(&svc->tick);
        desk_hub_close_all(svc);
    }
    if (svc->inflight > 0 || svc->clients) return;
    desk_sessions_free(svc);
    sodium_memzero(svc->session_key, sizeof svc->session_key);
    mk_webhooks_free(g_hooks); /* before the bus: it holds a subscription */
    g_hooks = NULL;
    desk_relay_stop(svc);
    mk_bus_free(svc->bus);
    svc->bus = NULL;
    mk_totp_free(svc->totp);
    svc->totp = NULL;
    mk_desk_free(svc->desk);
    svc->desk = NULL;
    mk_store_free(svc->store);
    svc->store = NULL;
    uv_prepare_stop(p);
    uv_close((uv_handle_t *)&svc->tick, handle_closed);
    uv_close((uv_handle_t *)p, handle_closed);
}

struct desk_svc *desk_service(mk_ctx *ctx, mk_buf *why)
{
    mk_app *app = ctx->app;
    if (g_desk) {
        if (g_desk->app == app && !g_desk->closing) return g_desk;
        mk_buf_append_str(why, "the desk is shutting down");
        return NULL;
    }
    if (g_failed) {
        mk_buf_append_str(why, "the desk could not be opened (see the log)");
        return NULL;
    }
    if (!app || !app->services || !app->gen || app->stopping) {
        mk_buf_append_str(why, "the server is not serving");
        return NULL;
    }
    struct desk_svc *svc = calloc(1, sizeof *svc);
    if (!svc) return NULL;
    svc->app = app;
    svc->loop = app->loop;
    const struct mk_config *cfg = app->gen->config;
    mk_buf url = MK_BUF_INIT;
    if (cfg->store_url) mk_buf_append_str(&url, cfg->store_url);
    else mk_buf_printf(&url, "%s/mayak.db", cfg->data_dir);
    int rc = url.data ? mk_store_open(url.data, NULL, &svc->store, why) : MK_ENOMEM;
    mk_buf_release(&url);
    if (rc == 0) rc = mk_desk_migrate(svc->store, why);
    if (rc == 0) rc = mk_totp_open(svc->store, cfg->data_dir, &svc->totp, why);
    if (rc == 0) rc = desk_session_init(svc, cfg->data_dir, why);
    if (rc == 0) {
        /* Answers come from an LLM when one is configured; with only the local
         * provider (the embedded default) the desk composes them itself. */
        for (size_t i = 0; i < cfg->nproviders; i++)
            if (cfg->providers[i].type != MK_PROVIDER_LOCAL) svc->use_llm = true;
        struct mk_desk_options o = {.config = cfg, .kb = NULL, .use_llm = svc->use_llm};
        rc = mk_desk_new(&o, &svc->desk);
        if (rc) mk_buf_printf(why, "agents: %s", mk_strerror(rc));
    }
    if (rc == 0) {
        struct mk_bus_options bo = {.max_pending = cfg->bus.max_pending};
        const char *bus_url = cfg->bus.url && *cfg->bus.url ? cfg->bus.url : "inproc";
        rc = mk_bus_open(app->loop, bus_url, &bo, &svc->bus, why);
        if (rc) mk_buf_append_str(why, " (bus.url)");
    }
    if (rc == 0 && cfg->nwebhooks > 0) {
        /* The webhooks make their own HTTP client: the app's may be freed before the
         * desk finishes closing. */
        rc = mk_webhooks_new(app->loop, svc->bus, NULL, cfg->webhooks, cfg->nwebhooks, NULL, &g_hooks, why);
        if (rc) mk_buf_append_str(why, " (webhooks)");
    }
    if (rc == 0 && (rc = desk_relay_start(svc)) != 0) mk_buf_printf(why, "cannot subscribe to the other nodes' live updates: %s", mk_strerror(rc));
    if (rc) {
        mk_log(MK_LOG_ERROR, "desk_unavailable", "error", mk_strerror(rc), "reason", why->data ? why->data : "", NULL);
        mk_webhooks_free(g_hooks);
        g_hooks = NULL;
        mk_bus_free(svc->bus);
        mk_totp_free(svc->totp);
        mk_desk_free(svc->desk);
        mk_store_free(svc->store);
        free(svc);
        g_failed = true;
        return NULL;
    }
    uv_prepare_init(app->loop, &svc->watch);
    svc->watch.data = svc;
    uv_prepare_start(&svc->watch, on_watch);
    uv_timer_init(app->loop, &svc->tick);
    svc->tick.data = svc;
    uv_timer_start(&svc->tick, on_tick, 0, cfg->desk.analytics_refresh_ms);
    uv_unref((uv_handle_t *)&svc->tick);
    svc->handles_open = 2;
    g_desk = svc;
    char nagents[16], nhooks[16];
    snprintf(nagents, sizeof nagents, "%zu", mk_desk_agent_count(svc->desk));
    snprintf(nhooks, sizeof nhooks, "%zu", mk_webhooks_count(g_hooks));
    mk_log(MK_LOG_INFO, "desk_ready", "store", mk_store_backend_name(svc->store), "bus",
           mk_bus_backend_name(svc->bus), "agents", nagents, "webhooks", nhooks, NULL);
    return svc;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

const char *desk_query(mk_ctx *ctx, const char *name)
{
    mk_slice q = ctx->req->query;
    size_t nl = strlen(name), i = 0;
    while (i < q.len) {
        size_t start = i;
        while (i < q.len && q.ptr[i] != '&') i++;
        size_t end = i++;
        if (end - start > nl && q.ptr[start + nl] == '=' && memcmp(q.ptr + start, name, nl) == 0) {
            const char *v = q.ptr + start + nl + 1;
            size_t vl = end - start - nl - 1;
            char *out = mk_pool_alloc(ctx->pool, vl + 1);
            if (!out) return NULL;
            size_t o = 0;
            for (size_t k = 0; k < vl; k++) {
                if (v[k] == '+') out[o++] = ' ';
                else if (v[k] == '%' && k + 2 < vl && hexval(v[k + 1]) >= 0 && hexval(v[k + 2]) >= 0) {
                    out[o++] = (char)(hexval(v[k + 1]) * 16 + hexval(v[k + 2]));
                    k += 2;
                } else out[o++] = v[k];
            }
            out[o] = '\0';
            if (memchr(out, '\0', o)) return NULL; /* %00 */
            return out;
        }
    }
    return NULL;
}

const char *desk_jstr(json_object *o, const char *key)
{
    json_object *v = o ? json_object_object_get(o, key) : NULL;
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

const char *desk_code_name(int err, char buf[48])
{
    const char *n = mk_error_name(err);
    if (strncmp(n, "MK_E", 4) == 0) n += 4;
    size_t i = 0;
    for (; n[i] && i < 47; i++) buf[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    buf[i] = '\0';
    return buf;
}

json_object *desk_error_json(int err, const char *message)
{
    char code[48];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("error"));
    json_object_object_add(o, "code", json_object_new_string(desk_code_name(err, code)));
    json_object_object_add(o, "message", json_object_new_string(message ? message : mk_strerror(err)));
    return o;
}
