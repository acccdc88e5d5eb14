/*
 * Outgoing webhooks against a small HTTP server run by the test on the same loop
 * (127.0.0.1, a free port): signature checked by recomputing the HMAC here with
 * libsodium; retries after 503s; giving up after max_attempts; 4xx fails at once;
 * connection errors and timeouts are retried; only matching event types are sent;
 * and the `bus:` / `webhooks:` config sections.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bus/mk_webhooks.h"
#include "config/mk_config.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_time.h"

#define MAXREQ 16

struct req {
    char sig[128], event[96], id[64], attempt[16];
    char body[4096];
    size_t body_len;
};

struct server {
    uv_tcp_t listener;
    int port;
    int script[MAXREQ];      /* status per request; 0 = never answer; past the end: last */
    int nscript;
    struct req reqs[MAXREQ];
    int nreq;
};

struct conn {
    uv_tcp_t tcp;
    struct server *s;
    char buf[8192];
    size_t len;
    bool answered;
};

static void on_conn_closed(uv_handle_t *h) { free(h->data); }
static void on_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    free(w);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void header(const char *head, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = head; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (!strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t l = e ? (size_t)(e - v) : strlen(v);
            snprintf(out, n, "%.*s", (int)l, v);
            return;
        }
    }
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct conn *c = h->data;
    b->base = c->buf + c->len;
    b->len = sizeof c->buf - 1 - c->len;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = st->data;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end || c->answered) return;
    char cl[32];
    *end = '\0';
    header(c->buf, "Content-Length", cl, sizeof cl);
    size_t want = (size_t)strtoul(cl, NULL, 10);
    size_t have = c->len - (size_t)(end + 4 - c->buf);
    *end = '\r';
    if (have < want) return;
    struct server *s = c->s;
    c->answered = true;
    int status = s->nscript ? s->script[s->nreq < s->nscript ? s->nreq : s->nscript - 1] : 200;
    if (s->nreq < MAXREQ) {
        struct req *r = &s->reqs[s->nreq];
        *end = '\0';
        header(c->buf, "X-Mayak-Signature", r->sig, sizeof r->sig);
        header(c->buf, "X-Mayak-Event", r->event, sizeof r->event);
        header(c->buf, "X-Mayak-Event-Id", r->id, sizeof r->id);
        header(c->buf, "X-Mayak-Attempt", r->attempt, sizeof r->attempt);
        r->body_len = want < sizeof r->body - 1 ? want : sizeof r->body - 1;
        memcpy(r->body, end + 4, r->body_len);
        r->body[r->body_len] = '\0';
    }
    s->nreq++;
    if (status == 0) return; /* hang: the client's timeout must end it */
    static char resp[256];
    int len = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
    uv_write_t *w = malloc(sizeof *w);
    w->data = c;
    uv_buf_t out = uv_buf_init(resp, (unsigned)len);
    uv_write(w, (uv_stream_t *)&c->tcp, &out, 1, on_written);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct server *s = l->data;
    struct conn *c = calloc(1, sizeof *c);
    c->s = s;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0) uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    else uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void server_start(uv_loop_t *loop, struct server *s)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    cr_assert_eq(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    cr_assert_eq(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&s->listener, 16, on_connection), 0);
    struct sockaddr_in b;
    int bl = sizeof b;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&b, &bl);
    s->port = ntohs(b.sin_port);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, h->type == UV_TCP && h->data && h->data != arg ? on_conn_closed : NULL);
}

static bool wait_for(uv_loop_t *loop, int *counter, int want, long ms)
{
    uint64_t end = mk_now_ms() + (uint64_t)ms;
    while (*counter < want && mk_now_ms() < end) uv_run(loop, UV_RUN_NOWAIT), usleep(200);
    return *counter >= want;
}

static void settle(uv_loop_t *loop, long ms)
{
    uint64_t end = mk_now_ms() + (uint64_t)ms;
    while (mk_now_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

TestSuite(webhooks, .timeout = 30);

struct fixture {
    uv_loop_t loop;
    struct server srv;
    struct mk_bus *bus;
    struct mk_webhooks *wh;
    char url[64];
};

static void fx_open(struct fixture *f, const int *script, int nscript)
{
    memset(f, 0, sizeof *f);
    mk_log_set_level(MK_LOG_OFF);
    cr_assert_eq(sodium_init() >= 0, true);
    uv_loop_init(&f->loop);
    memcpy(f->srv.script, script, sizeof(int) * (size_t)nscript);
    f->srv.nscript = nscript;
    server_start(&f->loop, &f->srv);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/hook", f->srv.port);
    struct mk_bus_options o = {.retry_delay_ms = 10};
    cr_assert_eq(mk_bus_open(&f->loop, "inproc", &o, &f->bus, NULL), 0);
}

static void fx_hooks(struct fixture *f, struct mk_webhook_config *h, size_t n)
{
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_webhooks_new(&f->loop, f->bus, NULL, h, n, NULL, &f->wh, &err), 0, "%s",
                 err.data ? err.data : "");
    mk_buf_release(&err);
}

static void fx_close(struct fixture *f)
{
    mk_webhooks_free(f->wh);
    mk_bus_free(f->bus);
    uv_walk(&f->loop, close_walk, &f->srv);
    for (int i = 0; i < 50; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(&f->loop), 0, "handles left open");
}

static struct mk_webhook_config hook(const char *url, const char *secret, char **events, size_t nevents)
{
    return (struct mk_webhook_config){.name = "crm", .url = (char *)url, .secret = (char *)secret,
                                      .events = events, .nevents = nevents, .max_attempts = 4, .timeout_ms = 2000,
                                      .backoff_base_ms = 10, .backoff_max_ms = 40};
}

/* The receiver's side, written out with libsodium: HMAC-SHA256(secret, t + "." + body). */
static bool signature_ok(const char *secret, const struct req *r)
{
    long long t = 0;
    char hex[65] = {0};
    if (sscanf(r->sig, "t=%lld,v1=%64[0-9a-f]", &t, hex) != 2 || strlen(hex) != 64) return false;
    char ts[32];
    int n = snprintf(ts, sizeof ts, "%lld.", t);
    unsigned char mac[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)r->body, r->body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    char want[65];
    sodium_bin2hex(want, sizeof want, mac, sizeof mac);
    long long now = (long long)(mk_wall_ms() / 1000);
    return strcmp(want, hex) == 0 && t <= now + 1 && t >= now - 60;
}

static int acked(struct mk_bus *bus)
{
    struct mk_bus_stats st;
    mk_bus_get_stats(bus, &st);
    return (int)st.acked;
}

Test(webhooks, signed_delivery_of_matching_events)
{
    struct fixture f;
    int ok[] = {200};
    fx_open(&f, ok, 1);
    char *conv[] = {"conversation.*"};
    char *tickets[] = {"ticket.#"};
    const char *secret = "s3cr3t-key-for-tests";
    struct mk_webhook_config h[2] = {hook(f.url, secret, conv, 1), hook("http://127.0.0.1:9/never", secret, tickets, 1)};
    h[1].name = "tickets";
    fx_hooks(&f, h, 2);
    char id[37];
    const char *p = "{\"conversation\":\"c-42\",\"reason\":\"asked for a person\"}";
    cr_assert_eq(mk_bus_publish(f.bus, MK_BUS_CONVERSATION_ESCALATED, "acme", p, strlen(p), NULL, NULL, id), 0);
    cr_assert(wait_for(&f.loop, &f.srv.nreq, 1, 5000), "no request arrived");
    struct req *r = &f.srv.reqs[0];
    cr_assert(signature_ok(secret, r), "bad signature '%s'", r->sig);
    cr_assert(!signature_ok("another-secret", r));
    cr_assert_str_eq(r->event, MK_BUS_CONVERSATION_ESCALATED);
    cr_assert_str_eq(r->id, id);
    cr_assert_str_eq(r->attempt, "1");
    struct mk_bus_wire_event ev;
    cr_assert_eq(mk_bus_wire_event_parse(r->body, r->body_len, &ev, NULL), 0, "body is not the event: %s", r->body);
    cr_assert_str_eq(ev.id, id);
    cr_assert_str_eq(ev.tenant, "acme");
    cr_assert_str_eq(ev.payload, "{\"conversation\":\"c-42\",\"reason\":\"asked for a person\"}");
    mk_bus_wire_event_release(&ev);
    /* the library's own verifier agrees, and refuses tampering and stale stamps */
    int64_t now = mk_wall_ms() / 1000;
    cr_assert(mk_webhook_verify(secret, strlen(secret), r->sig, r->body, r->body_len, now, 300));
    cr_assert(!mk_webhook_verify(secret, strlen(secret), r->sig, r->body, r->body_len - 1, now, 300));
    cr_assert(!mk_webhook_verify(secret, strlen(secret), r->sig, r->body, r->body_len, now + 3600, 300));
    cr_assert(!mk_webhook_verify(secret, strlen(secret), "t=1,v1=00", r->body, r->body_len, 1, 300));
    /* the event is acknowledged once delivered; the tickets hook saw nothing */
    uint64_t end = mk_now_ms() + 5000;
    while (acked(f.bus) < 1 && mk_now_ms() < end) uv_run(&f.loop, UV_RUN_NOWAIT), usleep(500);
    cr_assert_eq(acked(f.bus), 1);
    struct mk_webhook_stats st;
    cr_assert_eq(mk_webhooks_count(f.wh), 2);
    cr_assert_str_eq(mk_webhooks_name(f.wh, 1), "tickets");
    cr_assert_eq(mk_webhooks_get_stats(f.wh, 0, &st), 0);
    cr_assert_eq(st.events, 1);
    cr_assert_eq(st.delivered, 1);
    cr_assert_eq(st.in_flight, 0);
    cr_assert_eq(mk_webhooks_get_stats(f.wh, 1, &st), 0);
    cr_assert_eq(st.events, 0);
    cr_assert_eq(st.attempts, 0);
    cr_assert_eq(mk_webhooks_get_stats(f.wh, 2, &st), MK_EINVAL);
    fx_close(&f);
}

Test(webhooks, retries_after_503_then_delivers)
{
    struct fixture f;
    int script[] = {503, 503, 200};
    fx_open(&f, script, 3);
    struct mk_webhook_config h = hook(f.url, "k-0123456789abcdef", NULL, 0);
    fx_hooks(&f, &h, 1);
    char id[37];
    cr_assert_eq(mk_bus_publish(f.bus, MK_BUS_CONVERSATION_RESOLVED, "t", NULL, 0, NULL, NULL, id), 0);
    cr_assert(wait_for(&f.loop, &f.srv.nreq, 3, 5000), "requests: %d", f.srv.nreq);
    settle(&f.loop, 50);
    cr_assert_eq(f.srv.nreq, 3);
    for (int i = 0; i < 3; i++) {
        char a[8];
        snprintf(a, sizeof a, "%d", i + 1);
        cr_assert_str_eq(f.srv.reqs[i].attempt, a);
        cr_assert_str_eq(f.srv.reqs[i].id, id);
        cr_assert(signature_ok("k-0123456789abcdef", &f.srv.reqs[i]));
    }
    struct mk_webhook_stats st;
    mk_webhooks_get_stats(f.wh, 0, &st);
    cr_assert_eq(st.attempts, 3);
    cr_assert_eq(st.retries, 2);
    cr_assert_eq(st.delivered, 1);
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(acked(f.bus), 1);
    fx_close(&f);
}

Test(webhooks, gives_up_after_max_attempts)
{
    struct fixture f;
    int script[] = {503};
    fx_open(&f, script, 1);
    struct mk_webhook_config h = hook(f.url, "k-0123456789abcdef", NULL, 0);
    h.max_attempts = 3;
    fx_hooks(&f, &h, 1);
    cr_assert_eq(mk_bus_publish(f.bus, "conversation.rated", "t", NULL, 0, NULL, NULL, NULL), 0);
    cr_assert(wait_for(&f.loop, &f.srv.nreq, 3, 5000));
    settle(&f.loop, 200); /* longer than every backoff: no fourth try may come */
    cr_assert_eq(f.srv.nreq, 3);
    struct mk_webhook_stats st;
    mk_webhooks_get_stats(f.wh, 0, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.delivered, 0);
    cr_assert_eq(st.in_flight, 0);
    cr_assert_eq(acked(f.bus), 1, "given up is finished: the bus must not redeliver it");
    fx_close(&f);
}

Test(webhooks, client_error_is_not_retried)
{
    struct fixture f;
    int script[] = {400};
    fx_open(&f, script, 1);
    struct mk_webhook_config h = hook(f.url, "k-0123456789abcdef", NULL, 0);
    fx_hooks(&f, &h, 1);
    cr_assert_eq(mk_bus_publish(f.bus, "conversation.rated", "t", NULL, 0, NULL, NULL, NULL), 0);
    cr_assert(wait_for(&f.loop, &f.srv.nreq, 1, 5000));
    settle(&f.loop, 150);
    cr_assert_eq(f.srv.nreq, 1);
    struct mk_webhook_stats st;
    mk_webhooks_get_stats(f.wh, 0, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.retries, 0);
    fx_close(&f);
}

Test(webhooks, connection_errors_and_timeouts_are_retried)
{
    struct fixture f;
    int script[] = {0, 200}; /* first request hangs until the client's timeout */
    fx_open(&f, script, 2);
    /* 1: nobody listens on the URL: every attempt is a connection error. */
    struct sockaddr_in a;
    uv_tcp_t probe;
    uv_tcp_init(&f.loop, &probe);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&probe, (struct sockaddr *)&a, 0);
    int al = sizeof a;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&a, &al);
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/", ntohs(a.sin_port)); /* bound, not listening */
    struct mk_webhook_config h[2] = {hook(dead, "k-0123456789abcdef", NULL, 0),
                                     hook(f.url, "k-0123456789abcdef", NULL, 0)};
    h[0].name = "dead";
    h[0].max_attempts = 3;
    h[1].name = "slow";
    h[1].timeout_ms = 300;
    fx_hooks(&f, h, 2);
    cr_assert_eq(mk_bus_publish(f.bus, "conversation.created", "t", NULL, 0, NULL, NULL, NULL), 0);
    uint64_t end = mk_now_ms() + 10000;
    while (mk_now_ms() < end && acked(f.bus) < 1) uv_run(&f.loop, UV_RUN_NOWAIT), usleep(200);
    cr_assert_eq(acked(f.bus), 1, "the event never finished");
    struct mk_webhook_stats st;
    mk_webhooks_get_stats(f.wh, 0, &st);
    cr_assert_eq(st.attempts, 3);
    cr_assert_eq(st.failed, 1);
    mk_webhooks_get_stats(f.wh, 1, &st);
    cr_assert_eq(st.attempts, 2, "the timed-out attempt is retried");
    cr_assert_eq(st.delivered, 1);
    cr_assert_eq(f.srv.nreq, 2);
    uv_close((uv_handle_t *)&probe, NULL);
    fx_close(&f);
}

Test(webhooks, bad_entries_are_refused)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mk_bus *bus;
    cr_assert_eq(mk_bus_open(&loop, NULL, NULL, &bus, NULL), 0);
    struct mk_webhooks *wh = NULL;
    mk_buf err = MK_BUF_INIT;
    struct mk_webhook_config h = hook("ftp://x/", "secret-secret-secret", NULL, 0);
    cr_assert_eq(mk_webhooks_new(&loop, bus, NULL, &h, 1, NULL, &wh, &err), MK_EINVAL);
    cr_assert(strstr(err.data, "crm"));
    h = hook("http://127.0.0.1:1/", "", NULL, 0);
    cr_assert_eq(mk_webhooks_new(&loop, bus, NULL, &h, 1, NULL, &wh, &err), MK_EINVAL);
    char *bad[] = {"Conversation.*"};
    h = hook("http://127.0.0.1:1/", "secret-secret-secret", bad, 1);
    cr_assert_eq(mk_webhooks_new(&loop, bus, NULL, &h, 1, NULL, &wh, &err), MK_EINVAL);
    cr_assert_null(wh);
    mk_buf_release(&err);
    /* the sign helper refuses an empty key */
    char sig[MK_WEBHOOK_SIGNATURE_MAX];
    cr_assert_eq(mk_webhook_sign("", 0, 1, "x", 1, sig), MK_EINVAL);
    cr_assert_eq(mk_webhook_sign("k", 1, 1700000000, "x", 1, sig), 0);
    cr_assert(!strncmp(sig, "t=1700000000,v1=", 16));
    mk_bus_free(bus);
    for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(webhooks, config_sections)
{
    const char *yaml = "bus:\n"
                       "  url: amqp://mayak:pw@10.0.0.5:5672/%2f\n"
                       "  max_pending: 5000\n"
                       "webhooks:\n"
                       "  - name: crm\n"
                       "    url: https://crm.example.com/hooks/mayak\n"
                       "    secret: ${MK_TEST_HOOK_SECRET:-0123456789abcdef0123}\n"
                       "    events: [conversation.escalated, conversation.resolved]\n"
                       "    max_attempts: 8\n"
                       "  - url: http://127.0.0.1:9000/all\n"
                       "    secret: another-long-secret!\n";
    struct mk_config *cfg = NULL;
    struct mk_config_diags d = {0};
    int rc = mk_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &d);
    mk_buf out = MK_BUF_INIT;
    mk_config_diags_format(&d, &out);
    cr_assert_eq(rc, 0, "%s", out.data ? out.data : "");
    cr_assert_str_eq(cfg->bus.url, "amqp://mayak:pw@10.0.0.5:5672/%2f");
    cr_assert_eq(cfg->bus.max_pending, 5000);
    cr_assert_eq(cfg->nwebhooks, 2);
    cr_assert_str_eq(cfg->webhooks[0].name, "crm");
    cr_assert_str_eq(cfg->webhooks[0].secret, "0123456789abcdef0123");
    cr_assert_eq(cfg->webhooks[0].nevents, 2);
    cr_assert_eq(cfg->webhooks[0].max_attempts, 8);
    cr_assert_str_eq(cfg->webhooks[1].name, "webhook-2");
    cr_assert_eq(cfg->webhooks[1].max_attempts, 6);
    cr_assert_eq(cfg->webhooks[1].backoff_max_ms, 60000);
    mk_config_free(cfg);
    mk_config_diags_release(&d);
    mk_buf_reset(&out);

    const char *bad = "bus:\n  url: kafka://x\nwebhooks:\n  - url: ftp://x\n    events: [\"a b\"]\n"
                      "  - url: http://h/\n    secret: s\n    backoff_base_ms: 10\n    backoff_max_ms: 5\n";
    struct mk_config_diags d2 = {0};
    cr_assert_neq(mk_config_load_string("b.yaml", bad, strlen(bad), &cfg, &d2), 0);
    mk_config_diags_format(&d2, &out);
    cr_assert(strstr(out.data, "bus.url"), "%s", out.data);
    cr_assert(strstr(out.data, "missing required key 'secret'"), "%s", out.data);
    cr_assert(strstr(out.data, "ftp://x"), "%s", out.data);
    cr_assert(strstr(out.data, "backoff_max_ms"), "%s", out.data);
    cr_assert(strstr(out.data, "shorter than 16"), "%s", out.data);
    mk_config_diags_release(&d2);
    mk_buf_release(&out);
}
