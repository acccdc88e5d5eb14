/*
 * ask_llm: the support desk's LLM answers outside the server — for `mayak ask` when
 * the config declares an LLM provider.
 *
 * The point is that the command line answers exactly as the running desk would: the
 * same mk_api_desk_answer (triage with the LLM's second opinion, retrieval, the
 * spotlighted prompt, mk_desk_complete), and every LLM call through the same pipeline
 * as POST /v1/chat/completions — cache, guards, router with its retries and breakers,
 * audit, metrics — via mk_api_internal_chat. So an asker is a small mk_app without
 * an HTTP server: an event loop of its own, one generation (config + router), the
 * services (store, audit, keys, kv, guards, cache) and the upstream HTTP client.
 * Each question runs the loop until its answer is in; the process is single-threaded
 * from the caller's point of view.
 */
#include <stdlib.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "mk_api.h"

struct mk_api_asker {
    uv_loop_t loop;
    mk_app app;
};

static void close_leftover(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Everything the asker opened, in the order the server stops them (app.c stop_now):
 * the router first, then the services, then the client; then the loop runs until the
 * handles they closed are gone. */
static void teardown(struct mk_api_asker *a)
{
    a->app.stopping = true;
    mk_generation_unref(a->app.gen);
    a->app.gen = NULL;
    mk_services_free(a->app.services);
    a->app.services = NULL;
    mk_http_client_free(a->app.client);
    a->app.client = NULL;
    uv_run(&a->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&a->loop) == UV_EBUSY) {
        uv_walk(&a->loop, close_leftover, NULL);
        uv_run(&a->loop, UV_RUN_DEFAULT);
        uv_loop_close(&a->loop);
    }
}

int mk_api_asker_open(struct mk_config *cfg, mk_api_asker **out, mk_buf *why)
{
    if (!out) {
        mk_config_free(cfg);
        return MK_EINVAL;
    }
    *out = NULL;
    if (!cfg) return MK_EINVAL;
    struct mk_api_asker *a = calloc(1, sizeof *a);
    if (!a) {
        mk_config_free(cfg);
        return MK_ENOMEM;
    }
    int rc = uv_loop_init(&a->loop);
    if (rc != 0) {
        mk_buf_printf(why, "cannot start an event loop: %s", uv_strerror(rc));
        mk_config_free(cfg);
        free(a);
        return MK_EINTERNAL;
    }
    a->app.loop = &a->loop;
    a->app.gen = mk_generation_new(cfg, &rc); /* owns cfg from here, even on failure */
    if (!a->app.gen) {
        mk_config_free(cfg);
        mk_buf_printf(why, "cannot set up routing: %s", mk_strerror(rc));
    } else {
        rc = mk_services_open(cfg, &a->loop, &a->app.services, why);
        if (rc == 0 && (rc = mk_http_client_new(&a->loop, &a->app.client)) != 0)
            mk_buf_printf(why, "cannot create the upstream HTTP client: %s", mk_strerror(rc));
    }
    if (rc != 0) {
        teardown(a);
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

struct ask_wait {
    bool done;
    int rc;
    void (*use)(const struct mk_desk_reply *r, void *arg);
    void *arg;
};

static void answered(struct mk_desk_reply *r, int rc, void *arg)
{
    struct ask_wait *w = arg;
    w->rc = rc;
    if (rc == 0 && r) w->use(r, w->arg);
    w->done = true;
}

int mk_api_asker_answer(mk_api_asker *a, const mk_desk *desk, const char *text, const struct mk_desk_context *ctx,
                        void (*use)(const struct mk_desk_reply *r, void *arg), void *arg)
{
    if (!a || !desk || !text || !use) return MK_EINVAL;
    struct ask_wait w = {.use = use, .arg = arg};
    int rc = mk_api_desk_answer(&a->app, desk, text, ctx, answered, &w);
    if (rc != 0) return rc;
    /* The local provider answers inside the call; an upstream one needs the loop. The
     * router's timeouts bound every call, so this always ends. */
    while (!w.done) {
        if (uv_run(&a->loop, UV_RUN_ONCE) == 0 && !w.done) {
            /* Nothing left that could call back: a bug, not a slow provider. */
            mk_log(MK_LOG_ERROR, "ask_llm_stalled", "reason", "the loop ran dry before the answer came", NULL);
            return MK_EINTERNAL;
        }
    }
    return w.rc;
}

void mk_api_asker_free(mk_api_asker *a)
{
    if (!a) return;
    teardown(a);
    free(a);
}
