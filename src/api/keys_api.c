/*
 * keys_api: the admin API for API keys (docs/API.md, "Admin: API keys") — what
 * `mayak keys` does on the command line, over HTTP:
 *
 *   POST   /api/v1/admin/keys                      create; the key is in the answer, once
 *   GET    /api/v1/admin/keys[?tenant=T&include_revoked=true]   list (never secrets)
 *   GET    /api/v1/admin/keys/{id}                 one key
 *   POST   /api/v1/admin/keys/{id}/rotate          new key, same settings; answered once
 *   DELETE /api/v1/admin/keys/{id}                 revoke
 *
 * The route table (routes.c) requires keys.manage (admins only) and marks every call
 * audited; on success the audit record's verdicts name the key acted on ("admin").
 * Bodies are checked on the loop (unknown fields, types and ranges are a 400 naming the
 * field); the store work runs on libuv's pool through mk_store_submit and answers from
 * the loop. The request stays open meanwhile, so the app's services outlive the work
 * (app.c closes them only when no request is in flight).
 *
 * Secrets: a created or rotated key exists in clear only in the job and the response
 * buffer, both wiped after the answer is written; responses carrying one say
 * Cache-Control: no-store. The store keeps only the keyed hash (mk_keys.h).
 */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/mk_keys.h"
#include "core/mk_error.h"
#include "core/mk_time.h"
#include "mk_api.h"
#include "store/mk_store.h"

#define PREFIX "/api/v1/admin/keys/"
/* Bounds the CLI uses too: keys live at most a hundred years; a rotation's grace period
 * at most 90 days (clients switch over within days). */
#define MAX_EXPIRY_DAYS 36500.0
#define MAX_GRACE_S (90.0 * 86400)
#define MAX_BUDGET 1e12

enum op { OP_CREATE, OP_LIST, OP_GET, OP_ROTATE, OP_REVOKE };

struct job {
    mk_ctx *ctx;
    struct mk_keys *keys;
    enum op op;
    struct mk_key_spec spec;        /* create: strings point into ctx->body / the pool */
    const char *tenant;             /* list: filter (pool), NULL = every tenant */
    bool include_revoked;
    char id[MK_KEY_ID_CHARS + 1];   /* get, rotate, revoke */
    int64_t grace_ms;               /* rotate */
    struct mk_key_record rec;
    struct mk_key_record *recs;     /* list (malloc'd) */
    size_t n;
    char key[MK_KEY_STRING_BYTES];  /* create, rotate: the secret, wiped at the end */
    mk_buf err;
};

static void job_free(struct job *j)
{
    sodium_memzero(j->key, sizeof j->key);
    free(j->recs);
    mk_buf_release(&j->err);
    free(j);
}

/* ---- answers ------------------------------------------------------------------------- */

static void bad_request(mk_ctx *ctx, const char *message)
{
    mk_api_fail_code(ctx, MK_EINVAL, "invalid_request_error", message);
}

/* {"object":"api_key",["key":KEY,]...the record's members...}. */
static int record_object(const struct mk_key_record *r, const char *key, mk_buf *out)
{
    mk_buf rec = MK_BUF_INIT;
    int rc = mk_keys_record_json(r, mk_wall_ms(), &rec);
    if (rc == 0) rc = mk_buf_append_str(out, "{\"object\":\"api_key\",");
    if (rc == 0 && key) rc = mk_buf_printf(out, "\"key\":\"%s\",", key);
    if (rc == 0) rc = mk_buf_append(out, rec.data + 1, rec.len - 1); /* the record without its '{' */
    mk_buf_release(&rec);
    return rc;
}

/* Names the key acted on in the audit record (never the secret). */
static void audit_detail(mk_ctx *ctx, const struct job *j)
{
    mk_buf v = MK_BUF_INIT;
    if (j->op == OP_ROTATE)
        mk_buf_printf(&v, "{\"key_id\":\"%s\",\"new_key_id\":\"%s\",\"tenant\":", j->id, j->rec.id);
    else
        mk_buf_printf(&v, "{\"key_id\":\"%s\",\"tenant\":", j->rec.id);
    mk_buf_append_json_string(&v, j->rec.tenant, strlen(j->rec.tenant));
    mk_buf_printf(&v, ",\"role\":\"%s\"}", mk_role_name(j->rec.role));
    if (v.data) mk_ctx_add_verdict(ctx, "admin", v.data);
    mk_buf_release(&v);
}

static void fail_job(mk_ctx *ctx, struct job *j, int rc)
{
    char msg[160];
    switch (rc) {
    case MK_EINVAL:
        bad_request(ctx, j->err.len ? j->err.data : "invalid key settings");
        break;
    case MK_ENOTFOUND:
        snprintf(msg, sizeof msg, j->op == OP_GET ? "no key with id 'mk-%s'" : "no active key with id 'mk-%s'", j->id);
        mk_api_fail_code(ctx, MK_ENOTFOUND, "key_not_found", msg);
        break;
    default:
        mk_api_fail(ctx, rc, NULL);
        break;
    }
}

static void job_done(int status, void *arg)
{
    struct job *j = arg;
    mk_ctx *ctx = j->ctx;
    if (status != 0) {
        fail_job(ctx, j, status);
        job_free(j);
        return;
    }
    mk_buf b = MK_BUF_INIT;
    int rc = 0, code = 200;
    bool secret = j->op == OP_CREATE || j->op == OP_ROTATE;
    if (j->op == OP_LIST) {
        int64_t now = mk_wall_ms();
        rc = mk_buf_append_str(&b, "{\"object\":\"list\",\"data\":[");
        for (size_t i = 0; i < j->n && rc == 0; i++) {
            if (i) rc = mk_buf_append_char(&b, ',');
            if (rc == 0) rc = mk_keys_record_json(&j->recs[i], now, &b);
        }
        if (rc == 0) rc = mk_buf_append_str(&b, "]}");
    } else {
        rc = record_object(&j->rec, secret ? j->key : NULL, &b);
        if (j->op == OP_CREATE) code = 201;
        if (j->op != OP_GET) audit_detail(ctx, j);
    }
    if (rc == 0) {
        if (secret) mk_ctx_add_header(ctx, "Cache-Control", "no-store");
        mk_api_send(ctx, code, "application/json", b.data, b.len);
    } else {
        mk_api_fail(ctx, rc, NULL);
    }
    if (b.data) sodium_memzero(b.data, b.len);
    mk_buf_release(&b);
    job_free(j);
}

/* ---- store work (libuv's pool) ------------------------------------------------------- */

static int job_work(struct mk_store_conn *c, void *arg)
{
    struct job *j = arg;
    switch (j->op) {
    case OP_CREATE:
        return mk_keys_create(j->keys, c, &j->spec, &j->rec, j->key, &j->err);
    case OP_LIST:
        return mk_keys_list_tenant(j->keys, c, j->tenant, j->include_revoked, &j->recs, &j->n);
    case OP_GET:
        return mk_keys_get(j->keys, c, j->id, &j->rec);
    case OP_ROTATE:
        return mk_keys_rotate(j->keys, c, j->id, j->grace_ms, &j->rec, j->key);
    case OP_REVOKE: {
        int rc = mk_keys_revoke(j->keys, c, j->id);
        return rc == 0 ? mk_keys_get(j->keys, c, j->id, &j->rec) : rc;
    }
    }
    return MK_EINTERNAL;
}

static struct job *job_new(mk_ctx *ctx, enum op op)
{
    struct mk_services *s = ctx->services;
    if (!s || !s->keys || !s->store) {
        mk_api_fail_code(ctx, MK_EUNAVAILABLE, NULL, "the key registry is not open");
        return NULL;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return NULL;
    }
    j->ctx = ctx;
    j->keys = s->keys;
    j->op = op;
    mk_buf_init(&j->err, 1024);
    return j;
}

static void submit(struct job *j)
{
    mk_ctx *ctx = j->ctx;
    mk_app *app = ctx->app;
    int rc = mk_store_submit(ctx->services->store, app->loop, job_work, job_done, j);
    if (rc != 0) {
        job_free(j);
        mk_api_fail(ctx, rc, NULL);
    }
}

/* ---- request parsing (loop) ---------------------------------------------------------- */

/* The body as a JSON object; an empty body is {} when allowed. NULL after answering. */
static json_object *body_object(mk_ctx *ctx, bool empty_ok)
{
    if (empty_ok && ctx->req->body.len == 0) {
        json_object *o = json_object_new_object();
        if (!o) mk_api_fail(ctx, MK_ENOMEM, NULL);
        return o;
    }
    if (mk_api_parse_body(ctx) != 0) return NULL;
    if (!json_object_is_type(ctx->body, json_type_object)) {
        bad_request(ctx, "the body must be a JSON object");
        return NULL;
    }
    return json_object_get(ctx->body);
}

static bool fail_field(mk_ctx *ctx, const char *field, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof msg, "'%s' %s", field, what);
    bad_request(ctx, msg);
    return false;
}

static bool get_string(mk_ctx *ctx, json_object *v, const char *field, const char **out)
{
    if (!json_object_is_type(v, json_type_string)) return fail_field(ctx, field, "must be a string");
    *out = json_object_get_string(v);
    return true;
}

static bool get_u32(mk_ctx *ctx, json_object *v, const char *field, uint32_t *out)
{
    if (!json_object_is_type(v, json_type_int)) return fail_field(ctx, field, "must be a whole number");
    int64_t n = json_object_get_int64(v); /* INT64_MAX for anything larger */
    if (n < 0 || n > UINT32_MAX)
        return fail_field(ctx, field, "must be between 0 and 4294967295 (0 = the role's default)");
    *out = (uint32_t)n;
    return true;
}

static bool get_number(mk_ctx *ctx, json_object *v, const char *field, double lo, double hi, double *out)
{
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return fail_field(ctx, field, "must be a number");
    double d = json_object_get_double(v);
    if (!isfinite(d) || d < lo || d > hi) {
        char what[96];
        snprintf(what, sizeof what, "must be between %g and %g", lo, hi);
        return fail_field(ctx, field, what);
    }
    *out = d;
    return true;
}

/* "2030-01-31T12:00:00Z" or "2030-01-31" (midnight UTC) -> Unix ms; false when not. */
static bool parse_utc(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    char tail[4] = "";
    int n = 0;
    size_t len = strlen(s);
    if (len == 10) {
        if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10) return false;
    } else if (len == 20) {
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%1[Z]%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec, tail, &n) != 7 || n != 20)
            return false;
    } else {
        return false;
    }
    if (s[4] != '-' || s[7] != '-' || tm.tm_year < 1970 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return false;
    int year = tm.tm_year, mon = tm.tm_mon, day = tm.tm_mday;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    /* timegm normalises 31 February into March: such a date is not a date. */
    struct tm back;
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_year + 1900 != year || back.tm_mon + 1 != mon ||
        back.tm_mday != day)
        return false;
    *ms = (int64_t)t * 1000;
    return true;
}

/* "models": an array of model group names, joined with commas into the pool. */
static bool get_models(mk_ctx *ctx, json_object *v, const char **out)
{
    if (!json_object_is_type(v, json_type_array))
        return fail_field(ctx, "models", "must be an array of model group names ([] = every group)");
    mk_buf b = MK_BUF_INIT;
    size_t n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        const char *name = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
        size_t len = name ? strlen(name) : 0;
        bool ok = len > 0;
        for (size_t k = 0; k < len && ok; k++)
            ok = (unsigned char)name[k] > 0x20 && name[k] != 0x7f && name[k] != ',' && name[k] != '"';
        if (!ok) {
            mk_buf_release(&b);
            return fail_field(ctx, "models",
                              "must hold model group names (non-empty, no spaces, commas or quotes)");
        }
        if ((i && mk_buf_append_char(&b, ',')) || mk_buf_append_str(&b, name)) {
            mk_buf_release(&b);
            mk_api_fail(ctx, MK_ENOMEM, NULL);
            return false;
        }
    }
    if (b.len >= MK_AUTH_MAX_MODELS) {
        mk_buf_release(&b);
        return fail_field(ctx, "models", "is too long");
    }
    *out = mk_pool_strdup(ctx->pool, b.data ? b.data : "");
    mk_buf_release(&b);
    if (!*out) {
        mk_api_fail(ctx, MK_ENOMEM, NULL);
        return false;
    }
    return true;
}

/* Fills j->spec from the create body. false after answering 400. */
static bool parse_spec(mk_ctx *ctx, json_object *body, struct job *j)
{
    struct mk_key_spec *sp = &j->spec;
    const char *role = "user";
    bool have_budget = false, have_expiry = false;
    sp->tenant = ctx->tenant; /* the caller's tenant unless named */
    json_object_object_foreach(body, k, v) {
        bool ok = true;
        if (strcmp(k, "tenant") == 0) {
            ok = get_string(ctx, v, k, &sp->tenant);
        } else if (strcmp(k, "role") == 0) {
            ok = get_string(ctx, v, k, &role);
        } else if (strcmp(k, "name") == 0) {
            ok = get_string(ctx, v, k, &sp->name);
        } else if (strcmp(k, "models") == 0) {
            ok = get_models(ctx, v, &sp->models);
        } else if (strcmp(k, "rpm") == 0) {
            ok = get_u32(ctx, v, k, &sp->rpm);
        } else if (strcmp(k, "tpm") == 0) {
            ok = get_u32(ctx, v, k, &sp->tpm);
        } else if (strcmp(k, "budget") == 0 || strcmp(k, "budget_day") == 0) {
            if (have_budget) return fail_field(ctx, k, "repeats the daily budget: give 'budget' or 'budget_day'");
            have_budget = true;
            ok = get_number(ctx, v, k, 0, MAX_BUDGET, &sp->budget_day);
        } else if (strcmp(k, "budget_month") == 0) {
            ok = get_number(ctx, v, k, 0, MAX_BUDGET, &sp->budget_month);
        } else if (strcmp(k, "expires_in_days") == 0) {
            double days = 0;
            if (have_expiry) return fail_field(ctx, k, "conflicts with 'expires_at': give one of them");
            have_expiry = true;
            ok = get_number(ctx, v, k, 0, MAX_EXPIRY_DAYS, &days);
            if (ok && days <= 0) ok = fail_field(ctx, k, "must be a positive number of days");
            if (ok) sp->expires_at_ms = mk_wall_ms() + (int64_t)(days * 86400000.0);
        } else if (strcmp(k, "expires_at") == 0) {
            const char *s = NULL;
            if (have_expiry) return fail_field(ctx, k, "conflicts with 'expires_in_days': give one of them");
            have_expiry = true;
            ok = get_string(ctx, v, k, &s);
            if (ok && !parse_utc(s, &sp->expires_at_ms))
                ok = fail_field(ctx, k, "must be a UTC time like 2030-01-31T12:00:00Z (or a date, 2030-01-31)");
            if (ok && sp->expires_at_ms <= mk_wall_ms()) ok = fail_field(ctx, k, "is in the past");
        } else {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "unknown field '%.64s' (known: tenant, role, name, models, rpm, tpm, budget_day, budget_month, "
                     "expires_at, expires_in_days)",
                     k);
            bad_request(ctx, msg);
            return false;
        }
        if (!ok) return false;
    }
    int r = mk_role_parse(role);
    if (r < 0) return fail_field(ctx, "role", "must be one of user, developer, operator, admin");
    sp->role = (enum mk_role)r;
    return true;
}

/* The {id} of /api/v1/admin/keys/{id}[/rotate]: "mk-XXXXXXXX" or the bare id. false
 * (after answering 404) when the path does not have that shape. */
static bool path_id(mk_ctx *ctx, const char *suffix, char id[MK_KEY_ID_CHARS + 1])
{
    mk_slice p = ctx->req->path;
    size_t pre = strlen(PREFIX), suf = strlen(suffix);
    const char *s = p.ptr + pre;
    size_t n = p.len - pre; /* the route matched the prefix: p.len > pre */
    if (n > suf && memcmp(s + n - suf, suffix, suf) == 0) n -= suf;
    else if (suf) n = 0;
    if (n == 3 + MK_KEY_ID_CHARS && memcmp(s, MK_KEY_PREFIX, 3) == 0) {
        s += 3;
        n -= 3;
    }
    bool ok = n == MK_KEY_ID_CHARS;
    for (size_t i = 0; i < n && ok; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z');
    if (!ok) {
        mk_api_fail_code(ctx, MK_ENOTFOUND, "not_found",
                         suf ? "expected /api/v1/admin/keys/{id}/rotate with a key id like mk-AbC123xy"
                             : "expected /api/v1/admin/keys/{id} with a key id like mk-AbC123xy");
        return false;
    }
    memcpy(id, s, MK_KEY_ID_CHARS);
    id[MK_KEY_ID_CHARS] = '\0';
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The decoded value of query parameter name (in the pool); NULL when absent. *bad on
 * a malformed escape or a NUL byte. */
static const char *query_param(mk_ctx *ctx, const char *name, bool *bad)
{
    mk_slice q = ctx->req->query;
    size_t nl = strlen(name);
    for (size_t i = 0; i < q.len;) {
        size_t e = i;
        while (e < q.len && q.ptr[e] != '&') e++;
        if (e - i >= nl + 1 && memcmp(q.ptr + i, name, nl) == 0 && q.ptr[i + nl] == '=') {
            const char *v = q.ptr + i + nl + 1;
            size_t vl = e - i - nl - 1, o = 0;
            char *out = mk_pool_alloc(ctx->pool, vl + 1);
            if (!out) {
                *bad = true;
                return NULL;
            }
            for (size_t k = 0; k < vl; k++) {
                if (v[k] == '%') {
                    int hi = k + 2 < vl ? hexval(v[k + 1]) : -1, lo = k + 2 < vl ? hexval(v[k + 2]) : -1;
                    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                        *bad = true;
                        return NULL;
                    }
                    out[o++] = (char)(hi * 16 + lo);
                    k += 2;
                } else {
                    out[o++] = v[k] == '+' ? ' ' : v[k];
                }
            }
            out[o] = '\0';
            return out;
        }
        i = e + 1;
    }
    return NULL;
}

/* ---- handlers ------------------------------------------------------------------------ */

void mk_api_admin_keys_create(mk_ctx *ctx)
{
    json_object *body = body_object(ctx, false);
    if (!body) return;
    struct job *j = job_new(ctx, OP_CREATE);
    if (j && !parse_spec(ctx, body, j)) {
        job_free(j);
        j = NULL;
    }
    json_object_put(body); /* the pool keeps ctx->body, which spec's strings point into */
    if (j) submit(j);
}

void mk_api_admin_keys_list(mk_ctx *ctx)
{
    bool bad = false;
    const char *tenant = query_param(ctx, "tenant", &bad);
    const char *all = bad ? NULL : query_param(ctx, "include_revoked", &bad);
    if (bad) {
        bad_request(ctx, "malformed query string");
        return;
    }
    if (tenant && !*tenant) {
        bad_request(ctx, "'tenant' must not be empty");
        return;
    }
    if (all && strcmp(all, "true") != 0 && strcmp(all, "false") != 0) {
        bad_request(ctx, "'include_revoked' must be true or false");
        return;
    }
    struct job *j = job_new(ctx, OP_LIST);
    if (!j) return;
    j->tenant = tenant;
    j->include_revoked = all && strcmp(all, "true") == 0;
    submit(j);
}

void mk_api_admin_keys_get(mk_ctx *ctx)
{
    char id[MK_KEY_ID_CHARS + 1];
    if (!path_id(ctx, "", id)) return;
    struct job *j = job_new(ctx, OP_GET);
    if (!j) return;
    memcpy(j->id, id, sizeof id);
    submit(j);
}

void mk_api_admin_keys_rotate(mk_ctx *ctx)
{
    char id[MK_KEY_ID_CHARS + 1];
    if (!path_id(ctx, "/rotate", id)) return;
    json_object *body = body_object(ctx, true);
    if (!body) return;
    double grace = 0;
    bool ok = true;
    json_object_object_foreach(body, k, v) {
        if (strcmp(k, "grace_seconds") == 0) {
            ok = get_number(ctx, v, k, 0, MAX_GRACE_S, &grace);
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown field '%.64s' (known: grace_seconds)", k);
            bad_request(ctx, msg);
            ok = false;
        }
        if (!ok) break;
    }
    json_object_put(body);
    if (!ok) return;
    struct job *j = job_new(ctx, OP_ROTATE);
    if (!j) return;
    memcpy(j->id, id, sizeof id);
    j->grace_ms = (int64_t)(grace * 1000);
    submit(j);
}

void mk_api_admin_keys_revoke(mk_ctx *ctx)
{
    char id[MK_KEY_ID_CHARS + 1];
    if (!path_id(ctx, "", id)) return;
    struct job *j = job_new(ctx, OP_REVOKE);
    if (!j) return;
    memcpy(j->id, id, sizeof id);
    submit(j);
}
