/*
 * auth_step: who is calling, before any API route runs. An API key (stored hashed;
 * verified from a cache, or the store on a miss) or an OIDC/JWT bearer token gives a
 * principal; no credentials are accepted only where the policy allows (loopback by
 * default). The route's permission is then checked against the principal's role.
 */
#include <stdio.h>
#include <string.h>

#include "auth/mk_jwt.h"
#include "auth/mk_keys.h"
#include "auth/mk_roles.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "mk_api.h"

struct auth_wait {
    mk_ctx *ctx;
    int perm;
    void (*next)(mk_ctx *ctx);
    bool aborted;
};

/* "127.0.0.1:5555" -> "127.0.0.1"; "[::1]:5555" -> "::1". */
static void peer_ip(const char *peer, char *out, size_t outlen)
{
    const char *start = peer, *end = strrchr(peer, ':');
    if (peer[0] == '[') {
        start = peer + 1;
        end = strchr(start, ']');
    }
    size_t n = end && end > start ? (size_t)(end - start) : strlen(start);
    if (n >= outlen) n = outlen - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

static void proceed(struct auth_wait *w, int rc, const struct mk_principal *p)
{
    mk_ctx *ctx = w->ctx;
    if (w->aborted) {
        mk_api_send(ctx, 499, "application/json", "", 0);
        return;
    }
    if (rc == MK_EUNAUTHORIZED) {
        mk_ctx_add_header(ctx, "WWW-Authenticate", "Bearer");
        mk_api_fail_code(ctx, MK_EUNAUTHORIZED, "invalid_api_key", "Missing or invalid API key or token.");
        return;
    }
    if (rc == MK_EFORBIDDEN) {
        mk_api_fail_code(ctx, MK_EFORBIDDEN, "permission_denied", "The token maps to no role.");
        return;
    }
    if (rc != 0) { /* the store behind the keys is unavailable: not the caller's fault */
        mk_api_fail(ctx, MK_EUNAVAILABLE, "credentials cannot be checked right now");
        return;
    }
    struct mk_principal *copy = mk_pool_alloc(ctx->pool, sizeof *copy);
    if (!copy) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    *copy = *p;
    ctx->principal_rec = copy;
    ctx->principal = copy->id;
    ctx->tenant = copy->tenant;
    if (w->perm >= 0 && !mk_principal_can(copy, (enum mk_perm)w->perm)) {
        char msg[160];
        snprintf(msg, sizeof msg, "The role '%s' may not %s.", mk_role_name(copy->role),
                 mk_perm_name((enum mk_perm)w->perm));
        mk_api_fail_code(ctx, MK_EFORBIDDEN, "permission_denied", msg);
        return;
    }
    w->next(ctx);
}

static void key_verified(int rc, const struct mk_principal *p, void *arg) { proceed(arg, rc, p); }

static void on_abort(mk_http_req *req, void *arg)
{
    struct auth_wait *w = arg;
    w->aborted = true; /* finished when the verification answers */
}

void mk_api_authenticate(mk_ctx *ctx, int perm, void (*next)(mk_ctx *ctx))
{
    struct mk_services *s = ctx->services;
    if (!s || !s->keys) { /* no services (unit tests of routes): nothing to check */
        next(ctx);
        return;
    }
    struct auth_wait *w = mk_pool_alloc(ctx->pool, sizeof *w);
    if (!w) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return;
    }
    w->ctx = ctx;
    w->perm = perm;
    w->next = next;
    mk_slice header = mk_http_req_header(ctx->req, "authorization");
    struct mk_principal p;
    if (!header.ptr || header.len == 0) {
        char ip[64];
        peer_ip(ctx->req->peer, ip, sizeof ip);
        int rc = mk_auth_anonymous(&s->auth_policy, s->listen_host, ip, &p);
        proceed(w, rc, &p);
        return;
    }
    mk_slice cred;
    int rc = mk_auth_bearer(header, &cred);
    if (rc != 0) {
        proceed(w, MK_EUNAUTHORIZED, NULL);
        return;
    }
    if (mk_auth_is_api_key(cred)) {
        mk_app *app = ctx->app;
        mk_http_req_on_abort(ctx->req, on_abort, w);
        rc = mk_keys_verify(s->keys, app->loop, cred.ptr, cred.len, key_verified, w);
        if (rc != 0) proceed(w, rc == MK_EINVAL ? MK_EUNAUTHORIZED : rc, NULL);
        return;
    }
    if (!s->jwt) {
        /* Not a Mayak key and no JWT issuer configured. Where keys are not required
         * (loopback by default) this is a client that must send *some* key, like the
         * official SDKs with apiKey "unused": it gets what an anonymous caller gets.
         * A malformed "mk-" key is still refused above, so typos of real keys show. */
        char ip[64];
        peer_ip(ctx->req->peer, ip, sizeof ip);
        if (!mk_auth_credentials_required(&s->auth_policy, s->listen_host) &&
            mk_auth_anonymous(&s->auth_policy, s->listen_host, ip, &p) == 0) {
            proceed(w, 0, &p);
            return;
        }
        proceed(w, MK_EUNAUTHORIZED, NULL);
        return;
    }
    mk_buf why = MK_BUF_INIT;
    rc = mk_jwt_verify(s->jwt, cred.ptr, cred.len, &p, &why);
    if (rc != 0)
        mk_log(MK_LOG_INFO, "jwt_rejected", "request_id", ctx->req->request_id, "why", why.data ? why.data : "", NULL);
    mk_buf_release(&why);
    proceed(w, rc, &p);
}
