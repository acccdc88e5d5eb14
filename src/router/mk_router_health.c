/*
 * mk_router_health: active health checks. One uv_timer per router; on each tick every
 * provider with a health path gets a GET (unless its previous probe is still running).
 * A 2xx reply marks all of that provider's deployments healthy; anything else (other
 * status, connect error, timeout) marks them unhealthy until a later probe succeeds.
 *
 * Which providers are probed: those used by at least one group whose health checks
 * are enabled, and that have a path — the configured health_path, or "/models" for
 * OpenAI-compatible providers. GigaChat and YandexGPT have no default (their APIs
 * offer no cheap unauthenticated endpoint), local providers have no URL. A probe's
 * timeout is the smallest among the groups using the provider; the one timer ticks
 * at the smallest interval among all probed providers (one timer keeps it simple;
 * a health GET every few seconds costs nothing worth a timer per provider).
 *
 * The health state is a separate allocation from the router because libuv closes the
 * timer asynchronously: the router can be freed at once while the timer's memory
 * waits for its close callback.
 */
#include "router/mk_router_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "metrics/mk_metrics.h"

struct health_target {
    struct mk_router_health *h;
    size_t provider;         /* index into router->providers */
    char *url;
    char **headers;
    size_t nheaders;
    uint32_t timeout_ms;
    mk_http_call *call;      /* valid while in_flight */
    bool in_flight;
    int last;                /* -1 unknown, 0 failing, 1 healthy: for logging changes only */
};

struct mk_router_health {
    uv_timer_t timer;
    mk_router *router;       /* NULL once stopped */
    mk_http_client *client;
    struct health_target *targets;
    size_t ntargets;
};

static void free_target(struct health_target *t)
{
    free(t->url);
    for (size_t i = 0; i < t->nheaders; i++) free(t->headers[i]);
    free(t->headers);
}

static void free_health(struct mk_router_health *h)
{
    for (size_t i = 0; i < h->ntargets; i++) free_target(&h->targets[i]);
    free(h->targets);
    free(h);
}

static void on_timer_closed(uv_handle_t *handle) { free_health((struct mk_router_health *)handle->data); }

void mk_router_health_stop(struct mk_router_health *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->ntargets; i++) {
        struct health_target *t = &h->targets[i];
        if (t->in_flight && t->call) mk_http_call_cancel(t->call);
        t->in_flight = false;
        t->call = NULL;
    }
    h->router = NULL;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

void mk_router_stop_health(mk_router *r)
{
    if (!r) return;
    mk_router_health_stop(r->health);
    r->health = NULL;
}

static void set_provider_health(mk_router *r, size_t p, bool ok)
{
    mk_provider *prov = r->providers[p];
    for (size_t gi = 0; gi < r->ngroups; gi++) {
        mk_model_group *g = &r->groups[gi];
        for (size_t i = 0; i < g->ndeployments; i++) {
            mk_deployment *d = &g->deployments[i];
            if (d->provider != prov) continue;
            d->healthy = ok;
            const char *l[] = {d->label};
            mk_metric_set(MK_METRIC_DEPLOYMENT_HEALTHY, l, ok ? 1 : 0);
        }
    }
}

static void on_probe_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    (void)call;
    (void)body;
    struct health_target *t = arg;
    t->in_flight = false;
    t->call = NULL;
    mk_router *r = t->h->router;
    if (!r) return;
    bool ok = rc == 0 && status >= 200 && status < 300;
    const char *name = r->cfg->providers[t->provider].name;
    if (t->last != (ok ? 1 : 0)) {
        char st[16];
        snprintf(st, sizeof st, "%d", status);
        /* The first result is logged only when it is bad: healthy is the assumed start. */
        if (!ok || t->last != -1)
            mk_log(ok ? MK_LOG_INFO : MK_LOG_WARN, "provider_health", "provider", name, "healthy",
                   ok ? "true" : "false", "status", st, "error", rc ? mk_strerror(rc) : NULL, NULL);
        t->last = ok ? 1 : 0;
    }
    set_provider_health(r, t->provider, ok);
}

static void probe(struct health_target *t)
{
    struct mk_http_call_opts o = {0};
    o.method = "GET";
    o.url = t->url;
    o.headers = (const char *const *)t->headers;
    o.nheaders = t->nheaders;
    o.connect_timeout_ms = t->timeout_ms;
    o.total_timeout_ms = t->timeout_ms;
    const struct mk_provider_config *pc = &t->h->router->cfg->providers[t->provider];
    o.ca_file = pc->ca_file;
    o.insecure = pc->insecure;
    o.max_body_bytes = 64 * 1024; /* a health reply is small; we only read its status */
    o.on_done = on_probe_done;
    o.arg = t;
    mk_http_call *call = NULL;
    t->in_flight = true;
    int rc = mk_http_call_start(t->h->client, &o, &call);
    if (rc != 0) {
        /* A local failure (memory, bad URL): it says nothing about the provider, so
         * its state stays; the next tick tries again. */
        t->in_flight = false;
        mk_log(MK_LOG_WARN, "provider_health", "provider", pc->name, "msg", "could not start health probe", "error",
               mk_strerror(rc), NULL);
        return;
    }
    if (t->in_flight) t->call = call; /* on_done may already have run */
}

static void on_tick(uv_timer_t *timer)
{
    struct mk_router_health *h = timer->data;
    if (!h->router) return;
    for (size_t i = 0; i < h->ntargets; i++)
        if (!h->targets[i].in_flight) probe(&h->targets[i]);
}

static const char *health_path(const struct mk_provider_config *pc)
{
    if (pc->health_path) return pc->health_path[0] ? pc->health_path : NULL;
    return pc->type == MK_PROVIDER_OPENAI ? "/models" : NULL;
}

/* Appends the header line a + b (b may be ""). */
static int push_header(struct health_target *t, const char *a, const char *b)
{
    mk_buf line = MK_BUF_INIT;
    if (mk_buf_printf(&line, "%s%s", a, b) != 0) {
        mk_buf_release(&line);
        return MK_ENOMEM;
    }
    t->headers[t->nheaders++] = mk_buf_steal(&line, NULL);
    return 0;
}

static int build_target(mk_router *r, size_t p, const char *path, struct health_target *t)
{
    const struct mk_provider_config *pc = &r->cfg->providers[p];
    t->provider = p;
    t->last = -1;
    size_t blen = strlen(pc->base_url);
    bool base_slash = blen > 0 && pc->base_url[blen - 1] == '/';
    bool path_slash = path[0] == '/';
    mk_buf url = MK_BUF_INIT;
    int rc = mk_buf_append(&url, pc->base_url, blen - (base_slash && path_slash ? 1 : 0));
    if (!rc && !base_slash && !path_slash) rc = mk_buf_append_char(&url, '/');
    if (!rc) rc = mk_buf_append_str(&url, path);
    if (rc) {
        mk_buf_release(&url);
        return MK_ENOMEM;
    }
    t->url = mk_buf_steal(&url, NULL);

    t->headers = calloc(pc->nheaders + 2, sizeof *t->headers);
    if (!t->headers) return MK_ENOMEM;
    rc = 0;
    if (pc->type == MK_PROVIDER_OPENAI && pc->api_key && pc->api_key[0])
        rc = push_header(t, "Authorization: Bearer ", pc->api_key);
    else if (pc->type == MK_PROVIDER_YANDEXGPT && pc->api_key && pc->api_key[0])
        rc = push_header(t, "Authorization: Api-Key ", pc->api_key);
    else if (pc->type == MK_PROVIDER_YANDEXGPT && pc->iam_token && pc->iam_token[0])
        rc = push_header(t, "Authorization: Bearer ", pc->iam_token);
    for (size_t i = 0; !rc && i < pc->nheaders; i++)
        if (pc->headers[i]) rc = push_header(t, pc->headers[i], "");
    return rc;
}

int mk_router_start_health(mk_router *r, uv_loop_t *loop, mk_http_client *client)
{
    if (!r || !loop || !client) return MK_EINVAL;
    if (r->health) return MK_EINVAL; /* already running */

    /* Per provider: is it probed, and with which interval/timeout. */
    uint32_t *interval = calloc(r->nproviders + 1, sizeof *interval);
    uint32_t *timeout = calloc(r->nproviders + 1, sizeof *timeout);
    if (!interval || !timeout) {
        free(interval);
        free(timeout);
        return MK_ENOMEM;
    }
    for (size_t gi = 0; gi < r->ngroups; gi++) {
        const struct mk_group_settings *st = &r->settings[gi];
        if (!st->health.enabled) continue;
        mk_model_group *g = &r->groups[gi];
        for (size_t i = 0; i < g->ndeployments; i++) {
            for (size_t p = 0; p < r->nproviders; p++) {
                if (r->providers[p] != g->deployments[i].provider) continue;
                if (!interval[p] || st->health.interval_ms < interval[p]) interval[p] = st->health.interval_ms;
                if (!timeout[p] || st->health.timeout_ms < timeout[p]) timeout[p] = st->health.timeout_ms;
            }
        }
    }
    size_t n = 0;
    uint32_t tick = 0;
    for (size_t p = 0; p < r->nproviders; p++) {
        const struct mk_provider_config *pc = &r->cfg->providers[p];
        if (!interval[p] || !pc->base_url || !health_path(pc)) {
            interval[p] = 0;
            continue;
        }
        n++;
        if (!tick || interval[p] < tick) tick = interval[p];
    }
    int rc = 0;
    struct mk_router_health *h = NULL;
    if (n == 0) goto out; /* nothing to probe: not an error */
    h = calloc(1, sizeof *h);
    if (!h || !(h->targets = calloc(n, sizeof *h->targets))) {
        rc = MK_ENOMEM;
        goto out;
    }
    h->router = r;
    h->client = client;
    for (size_t p = 0; p < r->nproviders; p++) {
        if (!interval[p]) continue;
        struct health_target *t = &h->targets[h->ntargets++];
        t->h = h;
        t->timeout_ms = timeout[p];
        rc = build_target(r, p, health_path(&r->cfg->providers[p]), t);
        if (rc) goto out;
    }
    if (uv_timer_init(loop, &h->timer) != 0) {
        rc = MK_EINTERNAL;
        goto out;
    }
    h->timer.data = h;
    /* First round at once, so a dead provider is known before the first interval. */
    uv_timer_start(&h->timer, on_tick, 0, tick);
    r->health = h;
    h = NULL;
out:
    if (h) free_health(h);
    free(interval);
    free(timeout);
    return rc;
}
