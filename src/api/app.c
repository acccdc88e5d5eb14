/*
 * app: one event loop's serving life — start, SIGHUP reload, SIGTERM drain, stop.
 *
 * Reload builds a new generation (config + router) and swaps it in; requests already
 * running keep the generation they started with until they finish, and connections
 * are never dropped. Drain stops accepting, lets in-flight requests and streams
 * finish up to drain_timeout_ms, then closes whatever is left.
 */
#include <signal.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "metrics/mk_metrics.h"
#include "net/mk_busy_poll.h"
#include "kb_api.h"
#include "mk_api.h"

struct mk_generation *mk_generation_new(struct mk_config *cfg, int *err)
{
    struct mk_generation *g = calloc(1, sizeof *g);
    if (!g) {
        *err = MK_ENOMEM;
        return NULL;
    }
    *err = mk_router_new(cfg, &g->router);
    if (*err) {
        free(g);
        return NULL;
    }
    g->config = cfg;
    g->refs = 1;
    return g;
}

void mk_generation_ref(struct mk_generation *g) { g->refs++; }

void mk_generation_unref(struct mk_generation *g)
{
    if (!g || --g->refs > 0) return;
    mk_router_unref(g->router); /* the router points into the config: free it first */
    mk_config_free(g->config);
    free(g);
}

static void apply_log_settings(const struct mk_config *cfg)
{
    int level = cfg->log_level ? mk_log_level_parse(cfg->log_level) : MK_LOG_INFO;
    mk_log_set_level(level < 0 ? MK_LOG_INFO : (enum mk_log_level)level);
}

static void apply_busy_poll(mk_app *app, const struct mk_config *cfg)
{
    if (cfg->busy_poll_us == mk_busy_poll_window_us()) return;
    if (mk_busy_poll_set(app->loop, cfg->busy_poll_us) != 0) {
        mk_log(MK_LOG_WARN, "busy_poll_failed", "reason", "cannot set up the busy-poll window", NULL);
        return;
    }
    char us[16];
    snprintf(us, sizeof us, "%u", (unsigned)cfg->busy_poll_us);
    mk_log(MK_LOG_INFO, "busy_poll", "window_us", us, NULL);
}

static void reload(mk_app *app)
{
    if (!app->config_path) {
        mk_log(MK_LOG_INFO, "reload_skipped", "reason", "running on the embedded defaults; there is no file to re-read",
               NULL);
        return;
    }
    struct mk_config *cfg = NULL;
    struct mk_config_diags diags = {0};
    int rc = mk_config_load(app->config_path, &cfg, &diags);
    if (rc != 0) {
        mk_buf text = MK_BUF_INIT;
        mk_config_diags_format(&diags, &text);
        mk_log(MK_LOG_ERROR, "reload_failed", "file", app->config_path, "problems", text.data ? text.data : "",
               "action", "keeping the running configuration", NULL);
        mk_buf_release(&text);
        mk_config_diags_release(&diags);
        const char *labels[] = {"error"};
        mk_metric_inc(MK_METRIC_CONFIG_RELOADS, labels);
        return;
    }
    /* Warnings for what a reload cannot change (listen, data_dir, workers); those
     * keep their running values so the config in force says what is true. */
    const struct mk_config *old = app->gen->config;
    mk_config_reload_check(old, cfg, &diags);
    if (diags.count) {
        mk_buf text = MK_BUF_INIT;
        mk_config_diags_format(&diags, &text);
        mk_log(MK_LOG_WARN, "reload_warnings", "file", app->config_path, "warnings", text.data ? text.data : "", NULL);
        mk_buf_release(&text);
    }
    mk_config_diags_release(&diags);
    char *keep_host = strdup(old->listen_host), *keep_dir = strdup(old->data_dir);
    if (keep_host && keep_dir) {
        free(cfg->listen_host);
        free(cfg->data_dir);
        cfg->listen_host = keep_host;
        cfg->data_dir = keep_dir;
        cfg->listen_port = old->listen_port;
        cfg->workers = old->workers;
    } else {
        free(keep_host);
        free(keep_dir);
    }
    int err;
    struct mk_generation *g = mk_generation_new(cfg, &err);
    if (!g) {
        mk_log(MK_LOG_ERROR, "reload_failed", "error", mk_strerror(err), NULL);
        mk_config_free(cfg);
        const char *labels[] = {"error"};
        mk_metric_inc(MK_METRIC_CONFIG_RELOADS, labels);
        return;
    }
    mk_router_start_health(g->router, app->loop, app->client);
    struct mk_generation *previous = app->gen;
    app->gen = g;
    /* The old router may live on while its requests finish; its health checks stop
     * now so nothing of it outlives the shared client. */
    mk_router_stop_health(previous->router);
    mk_generation_unref(previous);
    apply_log_settings(cfg);
    apply_busy_poll(app, cfg);
    const char *labels[] = {"ok"};
    mk_metric_inc(MK_METRIC_CONFIG_RELOADS, labels);
    mk_log(MK_LOG_INFO, "reloaded", "file", app->config_path, NULL);
}

static void on_signal_closed(uv_handle_t *h) { (void)h; }

/* Once no request can use them any more. Accepts being called twice. */
static void close_services(mk_app *app)
{
    mk_services_free(app->services);
    app->services = NULL;
}

/* Requests aborted by the stop may still be finishing asynchronously (a store read
 * on the worker pool, a key verification): their end runs the audit and limits
 * filters, so the services close only when the last one is done, or after a bound. */
#define SERVICES_CLOSE_WAIT_MS 5000

static void services_wait_tick(uv_timer_t *t)
{
    mk_app *app = t->data;
    uint64_t waited = uv_now(app->loop) - app->services_started_ms;
    if (app->inflight > 0 && waited < SERVICES_CLOSE_WAIT_MS) return;
    if (app->inflight > 0)
        mk_logf(MK_LOG_WARN, "stop_forced", "%zu requests still finishing; closing the services anyway", app->inflight);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    close_services(app);
    mk_http_client_free(app->client);
    app->client = NULL;
}

static void stop_now(mk_app *app)
{
    if (app->stopping) return;
    app->stopping = true;
    uv_close((uv_handle_t *)&app->sig_hup, on_signal_closed);
    uv_close((uv_handle_t *)&app->sig_term, on_signal_closed);
    uv_close((uv_handle_t *)&app->sig_int, on_signal_closed);
    uv_timer_stop(&app->drain_timer);
    uv_close((uv_handle_t *)&app->drain_timer, NULL);
    uv_close((uv_handle_t *)&app->metrics_timer, NULL);
    mk_busy_poll_close();
    /* Order: the server first (its requests are aborted and finish, cancelling their
     * upstream calls), then the routers (health checks use the client), then the client. */
    mk_http_server_free(app->server);
    app->server = NULL;
    mk_router_stop_health(app->gen->router);
    mk_generation_unref(app->gen);
    app->gen = NULL;
    /* The services (and the client their async work may use) go once the last
     * request has finished; the kv's handles then close with the loop. */
    uv_timer_init(app->loop, &app->services_timer);
    app->services_timer.data = app;
    app->services_started_ms = uv_now(app->loop);
    uv_timer_start(&app->services_timer, services_wait_tick, 0, 10);
}



static void drained(void *arg)
{
    mk_app *app = arg;
    mk_log(MK_LOG_INFO, "drained", NULL);
    stop_now(app);
}

static void drain_deadline(uv_timer_t *t)
{
    mk_app *app = t->data;
    mk_logf(MK_LOG_WARN, "drain_deadline", "%zu requests still in flight are cut off",
            app->server ? mk_http_server_inflight(app->server) : 0);
    stop_now(app);
}

static void on_signal(uv_signal_t *h, int signum)
{
    mk_app *app = h->data;
    if (signum == SIGHUP) {
        reload(app);
        return;
    }
    if (app->draining) { /* a second SIGTERM/SIGINT: stop at once */
        stop_now(app);
        return;
    }
    app->draining = true;
    uint32_t deadline = app->gen->config->drain_timeout_ms ? app->gen->config->drain_timeout_ms
                                                          : MK_DEFAULT_DRAIN_TIMEOUT_MS;
    mk_logf(MK_LOG_INFO, "draining", "signal %d: finishing %zu in-flight requests within %u ms", signum,
            mk_http_server_inflight(app->server), deadline);
    uv_timer_start(&app->drain_timer, drain_deadline, deadline, 0);
    mk_http_server_drain(app->server, drained, app);
}

/* Publishes router gauges now and then so they are fresh even without scrapes of
 * /metrics doing it. */
static void metrics_tick(uv_timer_t *t)
{
    mk_app *app = t->data;
    if (app->gen) mk_router_export_metrics(app->gen->router);
}

/* Every client connection and every upstream call (a stream holds one for its whole
 * life) is a descriptor, and distributions still ship a soft limit of 1024, which
 * would cap a gateway at a few hundred concurrent streams with EMFILE. The hard limit
 * is what the administrator allows (LimitNOFILE=, ulimit -Hn), so take all of it, and
 * say what we got: it bounds the concurrent streams (about half of it). */
static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = before;
    }
    char soft[24], hard[24], was[24];
    snprintf(soft, sizeof soft, "%" PRIuMAX, (uintmax_t)rl.rlim_cur);
    snprintf(hard, sizeof hard, "%" PRIuMAX, (uintmax_t)rl.rlim_max);
    snprintf(was, sizeof was, "%" PRIuMAX, (uintmax_t)before);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur < 4096)
        mk_log(MK_LOG_WARN, "nofile_limit", "soft", soft, "hard", hard, "was", was, "note",
               "few descriptors: each connection and each upstream call takes one; raise LimitNOFILE", NULL);
    else
        mk_log(MK_LOG_INFO, "nofile_limit", "soft", soft, "hard", hard, "was", was, NULL);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

int mk_app_run(struct mk_config *cfg, const char *config_path)
{
    if (mk_rand_init() != 0) {
        fprintf(stderr, "mayak: cannot initialise the random number generator\n");
        mk_config_free(cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    apply_log_settings(cfg);
    raise_nofile_limit();
    mk_app app_storage = {0}, *app = &app_storage;
    uv_loop_t loop;
    uv_loop_init(&loop);
    app->loop = &loop;
    app->config_path = config_path ? strdup(config_path) : NULL;
    int err;
    app->gen = mk_generation_new(cfg, &err);
    if (!app->gen) {
        fprintf(stderr, "mayak: cannot start routing: %s\n", mk_strerror(err));
        mk_config_free(cfg);
        free(app->config_path);
        uv_loop_close(&loop);
        return 1;
    }
    mk_buf why = MK_BUF_INIT;
    if (mk_services_open(cfg, app->loop, &app->services, &why) != 0) {
        fprintf(stderr, "mayak: cannot open the data in %s: %s\n", cfg->data_dir, why.data ? why.data : "");
        mk_buf_release(&why);
        mk_generation_unref(app->gen);
        free(app->config_path);
        uv_loop_close(&loop);
        return 1;
    }
    mk_buf_release(&why);
    if (mk_http_client_new(app->loop, &app->client) != 0) {
        fprintf(stderr, "mayak: cannot create the upstream HTTP client\n");
        return 1;
    }
    mk_router_start_health(app->gen->router, app->loop, app->client);
    mk_kb_api_start(app); /* the knowledge base is searchable from the first request */
    struct mk_http_server_opts opts = {.server_name = "mayak"};
    if (mk_http_server_new(app->loop, &opts, mk_api_handle, app, &app->server) != 0 ||
        mk_http_server_listen(app->server, cfg->listen_host, cfg->listen_port) != 0) {
        fprintf(stderr, "mayak: cannot listen on %s:%d (in use, or not an address of this machine?)\n",
                cfg->listen_host, cfg->listen_port);
        app->exit_code = 1;
        mk_http_server_free(app->server);
        mk_generation_unref(app->gen);
        close_services(app);
        mk_http_client_free(app->client);
        uv_run(app->loop, UV_RUN_DEFAULT);
        uv_loop_close(app->loop);
        free(app->config_path);
        return 1;
    }
    uv_signal_init(app->loop, &app->sig_hup);
    uv_signal_init(app->loop, &app->sig_term);
    uv_signal_init(app->loop, &app->sig_int);
    app->sig_hup.data = app->sig_term.data = app->sig_int.data = app;
    uv_signal_start(&app->sig_hup, on_signal, SIGHUP);
    uv_signal_start(&app->sig_term, on_signal, SIGTERM);
    uv_signal_start(&app->sig_int, on_signal, SIGINT);
    uv_timer_init(app->loop, &app->drain_timer);
    app->drain_timer.data = app;
    uv_timer_init(app->loop, &app->metrics_timer);
    app->metrics_timer.data = app;
    uv_timer_start(&app->metrics_timer, metrics_tick, 5000, 5000);
    uv_unref((uv_handle_t *)&app->metrics_timer);
    apply_busy_poll(app, cfg);

    const char *version_label[] = {MAYAK_VERSION};
    mk_metric_set(MK_METRIC_BUILD_INFO, version_label, 1);
    char port[16];
    snprintf(port, sizeof port, "%d", mk_http_server_port(app->server));
    mk_log(MK_LOG_INFO, "listening", "host", cfg->listen_host, "port", port, "config",
           config_path ? config_path : "<embedded defaults>", "version", MAYAK_VERSION, NULL);

    uv_run(app->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(app->loop) == UV_EBUSY) {
        uv_walk(app->loop, close_leftover, NULL);
        uv_run(app->loop, UV_RUN_DEFAULT);
        uv_loop_close(app->loop);
    }
    close_services(app);
    mk_log(MK_LOG_INFO, "stopped", NULL);
    free(app->config_path);
    return app->exit_code;
}
