/* mk_services: opening and closing the process-wide services (see mk_services.h). */
#include "mk_services.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/mk_audit.h"
#include "auth/mk_jwt.h"
#include "auth/mk_keys.h"
#include "auth/mk_limits.h"
#include "auth/mk_roles.h"
#include "cache/mk_cache.h"
#include "core/mk_error.h"
#include "kv/mk_kv.h"
#include "mk_guard_filter.h"
#include "mk_output_filter.h"
#include "store/mk_store.h"

static int open_jwt(const struct mk_jwt_config *jc, struct mk_jwt **out, mk_buf *err)
{
    const char *aud[1] = {jc->audience};
    struct mk_jwt_options o = {
        .issuer = jc->issuer,
        .audiences = jc->audience ? aud : NULL,
        .naudiences = jc->audience ? 1 : 0,
        .jwks_file = jc->jwks_file,
        .jwks_url = jc->jwks_url,
        .clock_skew_s = jc->clock_skew_s,
        .tenant_claims = jc->tenant_claim,
        .role_claims = jc->role_claim,
        .accept_role_names = true,
        .default_role = -1,
    };
    return mk_jwt_new(&o, out, err);
}

static void role_limits(struct mk_limits_options *lo, enum mk_role r, const struct mk_role_limits *rl)
{
    lo->role_rpm[r] = rl->rpm;
    lo->role_tpm[r] = rl->tpm;
}

int mk_services_open(const struct mk_config *cfg, uv_loop_t *loop, struct mk_services **out, mk_buf *err)
{
    *out = NULL;
    struct mk_services *s = calloc(1, sizeof *s);
    if (!s) return MK_ENOMEM;
    int rc = 0;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        mk_buf_printf(err, "cannot create data_dir %s: %s", cfg->data_dir, strerror(errno));
        rc = MK_EIO;
    }
    mk_buf url = MK_BUF_INIT;
    if (rc == 0) rc = cfg->store_url ? mk_buf_append_str(&url, cfg->store_url)
                                     : mk_audit_default_store_url(cfg->data_dir, &url);
    if (rc == 0) rc = mk_store_open(url.data, NULL, &s->store, err);
    mk_buf_release(&url);
    if (rc == 0 && cfg->audit.enabled) {
        struct mk_audit_options ao = {0};
        if (cfg->audit.hash) ao.hash = (enum mk_audit_hash)mk_audit_hash_parse(cfg->audit.hash);
        ao.chain = cfg->audit.chain;
        rc = mk_audit_open(s->store, cfg->data_dir, &ao, &s->audit, err);
    }
    if (rc == 0) rc = mk_keys_open(s->store, cfg->data_dir, NULL, &s->keys, err);
    if (rc == 0 && cfg->auth.jwt.issuer) rc = open_jwt(&cfg->auth.jwt, &s->jwt, err);
    if (rc == 0) rc = mk_kv_open(loop, cfg->kv_url, NULL, &s->kv, err);
    if (rc == 0) {
        struct mk_limits_options lo = {.fail_closed = cfg->limits.fail_closed};
        role_limits(&lo, MK_ROLE_USER, &cfg->limits.user);
        role_limits(&lo, MK_ROLE_DEVELOPER, &cfg->limits.developer);
        role_limits(&lo, MK_ROLE_OPERATOR, &cfg->limits.operator_);
        role_limits(&lo, MK_ROLE_ADMIN, &cfg->limits.admin);
        rc = mk_limits_new(s->kv, &lo, &s->limits);
    }
    if (rc == 0) rc = mk_guard_open(cfg, &s->guard, err);
    if (rc == 0) rc = mk_output_guard_open(cfg, err);
    if (rc == 0) {
        struct mk_cache_options co = {.threshold = cfg->cache.threshold,
                                      .ttl_s = cfg->cache.ttl_s,
                                      .max_bytes = (size_t)cfg->cache.max_mb * 1024 * 1024};
        s->cache_config = cfg->cache;
        rc = mk_cache_new(&co, &s->cache);
        /* With a shared kv (Redis) every node sees every entry (docs/CACHE.md). */
        if (rc == 0 && strcmp(mk_kv_backend_name(s->kv), "redis") == 0) rc = mk_cache_attach_kv(s->cache, s->kv, loop, 0);
        if (rc != 0) mk_buf_printf(err, "cannot open the response cache: %s", mk_strerror(rc));
    }
    if (rc == 0) {
        s->auth_policy.required = cfg->auth.required == MK_AUTH_REQUIRED_AUTO  ? -1
                                  : cfg->auth.required == MK_AUTH_REQUIRED_YES ? 1
                                                                               : 0;
        s->auth_policy.local_admin = cfg->auth.local_admin;
        if (!(s->listen_host = strdup(cfg->listen_host))) rc = MK_ENOMEM;
    }
    if (rc != 0) {
        mk_services_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void mk_services_free(struct mk_services *s)
{
    if (!s) return;
    mk_guard_close(s->guard);
    mk_output_guard_close();
    mk_cache_free(s->cache);
    mk_limits_free(s->limits);
    mk_kv_free(s->kv);
    mk_jwt_free(s->jwt);
    mk_keys_free(s->keys);
    mk_audit_free(s->audit); /* flushes and seals: before the store goes */
    mk_store_free(s->store);
    free(s->listen_host);
    free(s);
}
