/*
 * mk_webhooks: delivers bus events to HTTP endpoints, signed, with retries (contract
 * in mk_webhooks.h).
 *
 * One bus subscription (group "webhooks") carries every event any webhook wants. For
 * an event the handler starts one job per matching webhook and keeps the bus delivery
 * (MK_BUS_LATER) until every job has finished, delivered or given up: the event is
 * acknowledged only then. A job is one HTTP call at a time through the project's async
 * client; between attempts it waits on its own timer.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/mk_webhooks.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"

struct hook {
    struct mk_webhook_config cfg; /* owned copies */
    struct mk_webhook_stats st;
};

struct event_work {              /* one bus delivery, shared by its jobs */
    mk_bus_delivery *d;
    const struct mk_bus_event *ev;
    size_t jobs_left;
};

struct job {
    struct mk_webhooks *w;
    struct hook *h;
    struct event_work *ew;
    int attempt;
    mk_http_call *call;
    uv_timer_t timer;
    bool timer_on;
    struct job *prev, *next;
};

struct mk_webhooks {
    uv_loop_t *loop;
    struct mk_bus *bus;
    mk_http_client *http;
    bool own_http;
    struct mk_bus_sub *sub;
    struct hook *hooks;
    size_t nhooks;
    struct job *jobs;
    size_t open_handles;         /* job timers still closing */
    bool closing;
};

/* ---- signatures ------------------------------------------------------------------ */

static void hmac_hex(const char *secret, size_t slen, int64_t t, const char *body, size_t len, char hex[65])
{
    char ts[24];
    int n = snprintf(ts, sizeof ts, "%" PRId64 ".", t);
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, slen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, 65, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
}

int mk_webhook_sign(const char *secret, size_t secret_len, int64_t t, const char *body, size_t len,
                    char out[MK_WEBHOOK_SIGNATURE_MAX])
{
    if (!secret || !secret_len || !out || (!body && len)) return MK_EINVAL;
    char hex[65];
    hmac_hex(secret, secret_len, t, body ? body : "", len, hex);
    snprintf(out, MK_WEBHOOK_SIGNATURE_MAX, "t=%" PRId64 ",v1=%s", t, hex);
    return 0;
}

bool mk_webhook_verify(const char *secret, size_t secret_len, const char *header, const char *body, size_t len,
                       int64_t now, uint32_t tolerance_s)
{
    if (!secret || !secret_len || !header || (!body && len) || strncmp(header, "t=", 2) != 0) return false;
    char *end = NULL;
    long long t = strtoll(header + 2, &end, 10);
    if (!end || end == header + 2 || strncmp(end, ",v1=", 4) != 0 || strlen(end + 4) != 64) return false;
    if (t > now + (int64_t)tolerance_s || t < now - (int64_t)tolerance_s) return false;
    char hex[65];
    hmac_hex(secret, secret_len, (int64_t)t, body ? body : "", len, hex);
    return sodium_memcmp(hex, end + 4, 64) == 0;
}

/* ---- jobs -------------------------------------------------------------------------- */

static bool hook_matches(const struct hook *h, const char *type)
{
    if (strncmp(type, MK_BUS_INTERNAL_PREFIX, strlen(MK_BUS_INTERNAL_PREFIX)) == 0) return false;
    if (h->cfg.nevents == 0) return true;
    for (size_t i = 0; i < h->cfg.nevents; i++)
        if (mk_bus_topic_match(h->cfg.events[i], type)) return true;
    return false;
}

static void job_unlink(struct job *j)
{
    struct mk_webhooks *w = j->w;
    if (j->prev) j->prev->next = j->next;
    else if (w->jobs == j) w->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

static void maybe_release(struct mk_webhooks *w)
{
    if (!w->closing || w->open_handles || w->jobs) return;
    for (size_t i = 0; i < w->nhooks; i++) {
        struct mk_webhook_config *c = &w->hooks[i].cfg;
        free(c->name);
        free(c->url);
        if (c->secret) sodium_memzero(c->secret, strlen(c->secret));
        free(c->secret);
        for (size_t k = 0; k < c->nevents; k++) free(c->events[k]);
        free(c->events);
    }
    free(w->hooks);
    free(w);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    struct mk_webhooks *w = j->w;
    free(j);
    w->open_handles--;
    maybe_release(w);
}

/* The job is over (delivered, given up or cancelled): tell its event, free it. */
static void job_finish(struct job *j, int bus_rc)
{
    struct mk_webhooks *w = j->w;
    struct event_work *ew = j->ew;
    j->h->st.in_flight--;
    job_unlink(j);
    if (--ew->jobs_left == 0 || bus_rc != 0) {
        /* Cancelled: hand the event back at once (the other jobs are being cancelled
         * too and only the first one reports). */
        if (ew->d) mk_bus_delivery_done(ew->d, bus_rc);
        ew->d = NULL;
    }
    if (ew->jobs_left == 0) free(ew);
    if (j->timer_on) {
        w->open_handles++;
        uv_close((uv_handle_t *)&j->timer, on_timer_closed);
    } else {
        free(j);
        maybe_release(w);
    }
}

static void job_send(struct job *j);

static void on_retry(uv_timer_t *t) { job_send(t->data); }

static uint64_t backoff_ms(const struct mk_webhook_config *c, int attempt)
{
    uint64_t d = c->backoff_base_ms;
    for (int i = 1; i < attempt && d < c->backoff_max_ms; i++) d *= 2;
    if (d > c->backoff_max_ms) d = c->backoff_max_ms;
    /* "Equal jitter": at least half the step, so retries of many events spread out
     * without collapsing to nothing. */
    return d / 2 + mk_rand_uniform((uint32_t)(d / 2 + 1));
}

static bool retryable(int rc, int status)
{
    if (rc == MK_EUPSTREAM || rc == MK_EUPSTREAM_TIMEOUT) return true;
    if (rc != 0) return false;
    return status >= 500 || status == 408 || status == 429;
}

static void on_call_done(mk_http_call *call, int rc, int status, mk_slice body, void *arg)
{
    struct job *j = arg;
    struct hook *h = j->h;
    j->call = NULL;
    char st[16], att[16];
    snprintf(st, sizeof st, "%d", status);
    snprintf(att, sizeof att, "%d", j->attempt);
    if (rc == 0 && status >= 200 && status < 300) {
        h->st.delivered++;
        job_finish(j, 0);
        return;
    }
    const char *why = rc ? mk_strerror(rc) : "HTTP status";
    if (retryable(rc, status) && j->attempt < h->cfg.max_attempts) {
        uint64_t delay = backoff_ms(&h->cfg, j->attempt);
        mk_slice ra = rc == 0 ? mk_http_call_response_header(call, "Retry-After") : (mk_slice){NULL, 0};
        if (ra.len > 0 && ra.len < 10) {
            uint64_t secs = 0;
            size_t i = 0;
            for (; i < ra.len && ra.ptr[i] >= '0' && ra.ptr[i] <= '9'; i++) secs = secs * 10 + (uint64_t)(ra.ptr[i] - '0');
            if (i == ra.len && secs * 1000 > delay) delay = secs * 1000;
            if (delay > h->cfg.backoff_max_ms) delay = h->cfg.backoff_max_ms;
        }
        mk_log(MK_LOG_WARN, "webhook_retry", "webhook", h->cfg.name, "event_id", j->ew->ev->id, "attempt", att,
               "status", st, "why", why, NULL);
        h->st.retries++;
        uv_timer_start(&j->timer, on_retry, delay, 0);
        return;
    }
    h->st.failed++;
    mk_log(MK_LOG_ERROR, "webhook_failed", "webhook", h->cfg.name, "event_id", j->ew->ev->id, "type",
           j->ew->ev->type, "attempts", att, "status", st, "why", why, NULL);
    job_finish(j, 0); /* given up: the event is done for this webhook */
}

static void ignore_body(mk_http_call *call, const char *data, size_t len, void *arg) {}

static void job_send(struct job *j)
{
    struct hook *h = j->h;
    const struct mk_bus_event *ev = j->ew->ev;
    j->attempt++;
    h->st.attempts++;
    char sig[MK_WEBHOOK_SIGNATURE_MAX], hsig[MK_WEBHOOK_SIGNATURE_MAX + 32], htype[MK_BUS_MAX_TYPE_BYTES + 32],
        hid[64], hatt[40];
    mk_webhook_sign(h->cfg.secret, strlen(h->cfg.secret), mk_wall_ms() / 1000, ev->json.ptr, ev->json.len, sig);
    snprintf(hsig, sizeof hsig, "X-Mayak-Signature: %s", sig);
    snprintf(htype, sizeof htype, "X-Mayak-Event: %s", ev->type);
    snprintf(hid, sizeof hid, "X-Mayak-Event-Id: %s", ev->id);
    snprintf(hatt, sizeof hatt, "X-Mayak-Attempt: %d", j->attempt);
    const char *headers[] = {"Content-Type: application/json", "User-Agent: Mayak-Webhooks/" MAYAK_VERSION, htype, hid,
                             hatt, hsig};
    uint32_t t = h->cfg.timeout_ms;
    struct mk_http_call_opts o = {
        .method = "POST",
        .url = h->cfg.url,
        .headers = headers,
        .nheaders = sizeof headers / sizeof headers[0],
        .body = ev->json.ptr,
        .body_len = ev->json.len,
        .connect_timeout_ms = t < 5000 ? t : 5000,
        .first_byte_timeout_ms = t,
        .total_timeout_ms = t,
        .on_data = ignore_body, /* only the status matters; nothing is buffered */
        .on_done = on_call_done,
        .arg = j,
    };
    int rc = mk_http_call_start(j->w->http, &o, &j->call);
    if (rc != 0) on_call_done(NULL, rc == MK_ENOMEM ? MK_EUPSTREAM : rc, 0, (mk_slice){NULL, 0}, j);
}

static int on_event(const struct mk_bus_event *ev, mk_bus_delivery *d, void *arg)
{
    struct mk_webhooks *w = arg;
    size_t n = 0;
    for (size_t i = 0; i < w->nhooks; i++)
        if (hook_matches(&w->hooks[i], ev->type)) n++;
    if (n == 0) return 0;
    struct event_work *ew = calloc(1, sizeof *ew);
    struct job **js = calloc(n, sizeof *js);
    bool oom = !ew || !js;
    for (size_t i = 0; !oom && i < n; i++)
        if (!(js[i] = calloc(1, sizeof **js)) || uv_timer_init(w->loop, &js[i]->timer) != 0) oom = true;
    if (oom) {
        /* Timers that were initialised must be closed before their memory goes. */
        for (size_t i = 0; js && i < n && js[i]; i++) {
            if (js[i]->timer.loop) {
                js[i]->w = w;
                js[i]->timer.data = js[i];
                w->open_handles++;
                uv_close((uv_handle_t *)&js[i]->timer, on_timer_closed);
            } else {
                free(js[i]);
            }
        }
        free(js);
        free(ew);
        return MK_ENOMEM; /* the bus delivers it again later */
    }
    ew->d = d;
    ew->ev = ev;
    ew->jobs_left = n;
    size_t k = 0;
    for (size_t i = 0; i < w->nhooks; i++) {
        struct hook *h = &w->hooks[i];
        if (!hook_matches(h, ev->type)) continue;
        struct job *j = js[k++];
        j->w = w;
        j->h = h;
        j->ew = ew;
        j->timer.data = j;
        j->timer_on = true;
        j->next = w->jobs;
        if (w->jobs) w->jobs->prev = j;
        w->jobs = j;
        h->st.events++;
        h->st.in_flight++;
    }
    /* Started after every job is linked: a call can fail at once and finish its job
     * inside job_send; the jobs not yet started keep the event alive meanwhile. */
    for (size_t i = 0; i < n; i++) job_send(js[i]);
    free(js);
    return MK_BUS_LATER;
}

/* ---- lifecycle --------------------------------------------------------------------- */

static int copy_hook(const struct mk_webhook_config *src, size_t idx, struct hook *h, mk_buf *err)
{
    const char *name = src->name && *src->name ? src->name : NULL;
    char defname[32];
    snprintf(defname, sizeof defname, "webhook-%zu", idx + 1);
    if (!name) name = defname;
    if (!src->url || (strncmp(src->url, "http://", 7) != 0 && strncmp(src->url, "https://", 8) != 0)) {
        if (err) mk_buf_printf(err, "webhook '%s': url must be http:// or https://", name);
        return MK_EINVAL;
    }
    if (!src->secret || !*src->secret) {
        if (err) mk_buf_printf(err, "webhook '%s': a secret is required (it signs every request)", name);
        return MK_EINVAL;
    }
    if (src->max_attempts < 0 || src->max_attempts > 100) {
        if (err) mk_buf_printf(err, "webhook '%s': max_attempts must be 1..100", name);
        return MK_EINVAL;
    }
    for (size_t i = 0; i < src->nevents; i++)
        if (!mk_bus_pattern_valid(src->events[i])) {
            if (err) mk_buf_printf(err, "webhook '%s': '%s' is not an event pattern", name, src->events[i]);
            return MK_EINVAL;
        }
    struct mk_webhook_config *c = &h->cfg;
    c->name = strdup(name);
    c->url = strdup(src->url);
    c->secret = strdup(src->secret);
    c->events = src->nevents ? calloc(src->nevents, sizeof *c->events) : NULL;
    if (!c->name || !c->url || !c->secret || (src->nevents && !c->events)) return MK_ENOMEM;
    for (size_t i = 0; i < src->nevents; i++) {
        if (!(c->events[i] = strdup(src->events[i]))) return MK_ENOMEM;
        c->nevents++;
    }
    c->max_attempts = src->max_attempts ? src->max_attempts : 6;
    c->timeout_ms = src->timeout_ms ? src->timeout_ms : 10000;
    c->backoff_base_ms = src->backoff_base_ms ? src->backoff_base_ms : 1000;
    c->backoff_max_ms = src->backoff_max_ms ? src->backoff_max_ms : 60000;
    if (c->backoff_max_ms < c->backoff_base_ms) c->backoff_max_ms = c->backoff_base_ms;
    return 0;
}

int mk_webhooks_new(uv_loop_t *loop, struct mk_bus *bus, mk_http_client *http, const struct mk_webhook_config *hooks,
                    size_t n, const struct mk_webhooks_options *opt, struct mk_webhooks **out, mk_buf *err)
{
    if (!out) return MK_EINVAL;
    *out = NULL;
    if (!loop || !bus || (n && !hooks)) return MK_EINVAL;
    if (sodium_init() < 0 || mk_rand_init() != 0) return MK_EINTERNAL;
    struct mk_webhooks *w = calloc(1, sizeof *w);
    if (!w) return MK_ENOMEM;
    w->loop = loop;
    w->bus = bus;
    w->hooks = n ? calloc(n, sizeof *w->hooks) : NULL;
    int rc = n && !w->hooks ? MK_ENOMEM : 0;
    for (size_t i = 0; !rc && i < n; i++) {
        w->nhooks++;
        rc = copy_hook(&hooks[i], i, &w->hooks[i], err);
    }
    /* The bus subscription: the union of every webhook's patterns, or "#" when one
     * wants everything or there are too many to list. */
    const char *patterns[MK_BUS_MAX_PATTERNS];
    size_t np = 0;
    bool everything = false;
    for (size_t i = 0; !rc && i < w->nhooks && !everything; i++) {
        if (w->hooks[i].cfg.nevents == 0) everything = true;
        for (size_t k = 0; !everything && k < w->hooks[i].cfg.nevents; k++) {
            const char *p = w->hooks[i].cfg.events[k];
            bool dup = false;
            for (size_t m = 0; m < np; m++) dup = dup || !strcmp(patterns[m], p);
            if (dup) continue;
            if (np == MK_BUS_MAX_PATTERNS) everything = true;
            else patterns[np++] = p;
        }
    }
    if (everything) {
        patterns[0] = "#";
        np = 1;
    }
    if (!rc && !http) {
        rc = mk_http_client_new(loop, &w->http);
        w->own_http = rc == 0;
    } else {
        w->http = http;
    }
    if (!rc && n) {
        rc = mk_bus_subscribe(bus, opt && opt->group ? opt->group : "webhooks", patterns, np,
                              opt && opt->prefetch ? opt->prefetch : 32, on_event, w, &w->sub);
        if (rc && err) mk_buf_printf(err, "webhooks: cannot subscribe to the bus: %s", mk_strerror(rc));
    }
    if (rc) {
        w->sub = NULL;
        mk_webhooks_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void mk_webhooks_free(struct mk_webhooks *w)
{
    if (!w || w->closing) return;
    w->closing = true;
    mk_bus_unsubscribe(w->sub);
    w->sub = NULL;
    while (w->jobs) {
        struct job *j = w->jobs;
        if (j->call) mk_http_call_cancel(j->call); /* no callback follows */
        j->call = NULL;
        uv_timer_stop(&j->timer);
        job_finish(j, MK_ECANCELLED);
    }
    if (w->own_http) mk_http_client_free(w->http);
    w->http = NULL;
    maybe_release(w);
}

size_t mk_webhooks_count(const struct mk_webhooks *w) { return w ? w->nhooks : 0; }

const char *mk_webhooks_name(const struct mk_webhooks *w, size_t i)
{
    return w && i < w->nhooks && w->hooks[i].cfg.name ? w->hooks[i].cfg.name : "";
}

int mk_webhooks_get_stats(const struct mk_webhooks *w, size_t i, struct mk_webhook_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!w || i >= w->nhooks) return MK_EINVAL;
    *out = w->hooks[i].st;
    return 0;
}
