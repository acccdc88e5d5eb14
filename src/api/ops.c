/* ops: the small routes — model list, metrics, health, readiness, usage. */
#include <string.h>

#include "core/mk_error.h"
#include "metrics/mk_metrics.h"
#include "pipeline/mk_accounting.h"
#include "auth/mk_auth.h"
#include "auth/mk_roles.h"
#include "mk_api.h"

static void add_model(json_object *data, const char *id, const char *group)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "id", json_object_new_string(id));
    json_object_object_add(m, "object", json_object_new_string("model"));
    json_object_object_add(m, "created", json_object_new_int64(0));
    json_object_object_add(m, "owned_by", json_object_new_string("mayak"));
    if (strcmp(id, group) != 0) json_object_object_add(m, "mayak_model_group", json_object_new_string(group));
    json_object_array_add(data, m);
}

static void send_json_object(mk_ctx *ctx, int status, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    mk_api_send(ctx, status, "application/json", s, len);
    json_object_put(obj);
}

void mk_api_models(mk_ctx *ctx)
{
    mk_app *app = ctx->app;
    mk_router *r = app->gen->router;
    json_object *root = json_object_new_object(), *data = json_object_new_array();
    json_object_object_add(root, "object", json_object_new_string("list"));
    for (size_t i = 0; i < mk_router_group_count(r); i++) {
        const struct mk_model_group_config *gc = mk_router_group_at(r, i)->config;
        add_model(data, gc->name, gc->name);
        for (size_t a = 0; a < gc->naliases; a++) add_model(data, gc->aliases[a], gc->name);
    }
    add_model(data, MK_BUILTIN_EMBED_MODEL, MK_BUILTIN_EMBED_MODEL);
    json_object_object_add(root, "data", data);
    send_json_object(ctx, 200, root);
}

void mk_api_model_get(mk_ctx *ctx)
{
    mk_app *app = ctx->app;
    mk_slice path = ctx->req->path;
    size_t prefix = strlen("/v1/models/");
    char *id = mk_pool_strndup(ctx->pool, path.ptr + prefix, path.len - prefix);
    mk_model_group *g = id ? mk_router_group(app->gen->router, id) : NULL;
    if (!g) {
        mk_api_fail_code(ctx, MK_ENOTFOUND, "model_not_found", "The model does not exist");
        return;
    }
    json_object *arr = json_object_new_array();
    add_model(arr, id, g->config->name);
    json_object *m = json_object_get(json_object_array_get_idx(arr, 0));
    json_object_put(arr);
    send_json_object(ctx, 200, m);
}

void mk_api_metrics(mk_ctx *ctx)
{
    mk_app *app = ctx->app;
    mk_router_export_metrics(app->gen->router);
    mk_metric_set(MK_METRIC_CONNECTIONS, NULL, (double)mk_http_server_connections(app->server));
    mk_buf out = MK_BUF_INIT;
    if (mk_metrics_render(&out) != 0) {
        mk_buf_release(&out);
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    mk_api_send(ctx, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "", out.len);
    mk_buf_release(&out);
}

void mk_api_healthz(mk_ctx *ctx)
{
    static const char body[] = "{\"status\":\"ok\"}";
    mk_api_send(ctx, 200, "application/json", body, sizeof body - 1);
}

/* Ready = not draining, and every model group has at least one deployment whose
 * breaker is not open and whose health check passes. */
void mk_api_readyz(mk_ctx *ctx)
{
    mk_app *app = ctx->app;
    if (app->draining) {
        static const char body[] = "{\"status\":\"draining\"}";
        mk_api_send(ctx, 503, "application/json", body, sizeof body - 1);
        return;
    }
    mk_router *r = app->gen->router;
    json_object *root = json_object_new_object(), *groups = json_object_new_object();
    bool ready = true;
    for (size_t i = 0; i < mk_router_group_count(r); i++) {
        mk_model_group *g = mk_router_group_at(r, i);
        int usable = 0;
        for (size_t d = 0; d < g->ndeployments; d++)
            if (g->deployments[d].breaker != MK_BREAKER_OPEN && g->deployments[d].healthy) usable++;
        json_object_object_add(groups, g->config->name, json_object_new_int(usable));
        if (usable == 0) ready = false;
    }
    json_object_object_add(root, "status", json_object_new_string(ready ? "ready" : "degraded"));
    json_object_object_add(root, "usable_deployments", groups);
    send_json_object(ctx, ready ? 200 : 503, root);
}

/* Usage of the caller's tenant; every tenant's for roles that may read them all. */
void mk_api_usage(mk_ctx *ctx)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "object", json_object_new_string("list"));
    json_object *rows = mk_accounting_snapshot();
    bool all = !ctx->principal_rec || mk_principal_can(ctx->principal_rec, MK_PERM_ADMIN_TENANTS);
    if (!all) {
        json_object *mine = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
            json_object *r = json_object_array_get_idx(rows, i);
            if (strcmp(json_object_get_string(json_object_object_get(r, "tenant")), ctx->tenant) == 0)
                json_object_array_add(mine, json_object_get(r));
        }
        json_object_put(rows);
        rows = mine;
    }
    json_object_object_add(root, "data", rows);
    send_json_object(ctx, 200, root);
}
