/* cache_api: POST /api/v1/cache/invalidate — drops cached answers (docs/CACHE.md).
 * Body: {"tenant"?: name, "model_group"?: name, "all"?: true}; at least one is needed,
 * so an empty body never wipes the cache by accident. Callers without admin.tenants
 * act on their own tenant only. Answers {"invalidated": n}. */
#include <stdio.h>
#include <string.h>

#include "cache/mk_cache.h"
#include "core/mk_error.h"
#include "mk_api.h"
#include "pipeline/mk_services.h"

static int opt_name(json_object *body, const char *key, const char **out)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(body, key, &v) || json_object_is_type(v, json_type_null)) return 0;
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
        json_object_get_string_len(v) > MK_CACHE_MAX_NAME_BYTES)
        return MK_EINVAL;
    *out = json_object_get_string(v);
    return 0;
}

void mk_api_cache_invalidate(mk_ctx *ctx)
{
    if (mk_api_parse_body(ctx) != 0) return;
    json_object *body = ctx->body, *v;
    if (!json_object_is_type(body, json_type_object)) {
        mk_api_fail(ctx, MK_EINVAL, "the body must be a JSON object");
        return;
    }
    const char *tenant, *group;
    if (opt_name(body, "tenant", &tenant) != 0 || opt_name(body, "model_group", &group) != 0) {
        mk_api_fail(ctx, MK_EINVAL, "tenant and model_group must be non-empty strings");
        return;
    }
    bool all = false;
    if (json_object_object_get_ex(body, "all", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            mk_api_fail(ctx, MK_EINVAL, "all must be a boolean");
            return;
        }
        all = json_object_get_boolean(v);
    }
    if (!tenant && !group && !all) {
        mk_api_fail(ctx, MK_EINVAL, "name a tenant, a model_group, or set \"all\": true");
        return;
    }
    bool any_tenant = !ctx->principal_rec || mk_principal_can(ctx->principal_rec, MK_PERM_ADMIN_TENANTS);
    if (!any_tenant) {
        if (tenant && strcmp(tenant, ctx->tenant) != 0) {
            mk_api_fail(ctx, MK_EFORBIDDEN, "only your own tenant's cache can be invalidated");
            return;
        }
        tenant = ctx->tenant;
    }
    mk_cache *c = ctx->services ? ctx->services->cache : NULL;
    size_t n = mk_cache_invalidate(c, tenant, group);
    char out[64];
    int len = snprintf(out, sizeof out, "{\"invalidated\":%zu}", n);
    mk_api_send(ctx, 200, "application/json", out, (size_t)len);
}
