/*
 * Tests for GigaChat's OAuth token handling (authorize() in src/provider/gigachat.c)
 * against a tiny token server on 127.0.0.1: a thread with blocking sockets that
 * answers each connection with one configurable reply and records the request.
 * The client side runs the real mk_http_client on a libuv loop.
 */
#include "provider_test.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"
#include "net/mk_http_client.h"
#include "provider/provider_int.h"

/* ------------------------------------------------------------ token server */

struct tsrv {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int requests;
    atomic_int status;            /* reply status */
    atomic_llong expires_in_ms;   /* token lifetime from now */
    atomic_int delay_ms;          /* wait before answering */
    atomic_bool garbage;          /* answer 200 with a body that is no token reply */
    pthread_mutex_t mu;
    char last[8192];              /* the last request, headers and body */
};

static struct tsrv srv;

static void serve_one(int c)
{
    struct timeval tv = {2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[8192];
    size_t len = 0;
    size_t need = 0;
    for (;;) {
        ssize_t n = recv(c, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && !need) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            need = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (need && len >= need) break;
        if (len == sizeof buf - 1) break;
    }
    buf[len] = '\0';
    int nreq = atomic_fetch_add(&srv.requests, 1) + 1;
    pthread_mutex_lock(&srv.mu);
    memcpy(srv.last, buf, len + 1);
    pthread_mutex_unlock(&srv.mu);
    int delay = atomic_load(&srv.delay_ms);
    if (delay) usleep((useconds_t)delay * 1000);
    char body[256];
    int status = atomic_load(&srv.status);
    if (atomic_load(&srv.garbage))
        snprintf(body, sizeof body, "{\"token\":42}");
    else if (status == 200)
        snprintf(body, sizeof body, "{\"access_token\":\"tok-%d\",\"expires_at\":%lld}", nreq,
                 (long long)(mk_wall_ms() + atomic_load(&srv.expires_in_ms)));
    else
        snprintf(body, sizeof body, "{\"code\":6,\"message\":\"credentials doesn't match db data\"}");
    char reply[512];
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    ssize_t w = send(c, reply, (size_t)n, MSG_NOSIGNAL);
    (void)w;
    close(c);
}

static void *srv_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv.stop)) {
        struct pollfd pfd = {srv.fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int c = accept(srv.fd, NULL, NULL);
        if (c >= 0) serve_one(c);
    }
    return NULL;
}

static void srv_start(void)
{
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(srv.fd >= 0);
    int one = 1;
    setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(srv.fd, 64), 0);
    socklen_t al = sizeof a;
    getsockname(srv.fd, (struct sockaddr *)&a, &al);
    srv.port = ntohs(a.sin_port);
    atomic_store(&srv.stop, false);
    atomic_store(&srv.requests, 0);
    atomic_store(&srv.status, 200);
    atomic_store(&srv.expires_in_ms, 1800000);
    atomic_store(&srv.delay_ms, 0);
    atomic_store(&srv.garbage, false);
    pthread_mutex_init(&srv.mu, NULL);
    cr_assert_eq(pthread_create(&srv.thread, NULL, srv_main, NULL), 0);
}

static void srv_stop(void)
{
    atomic_store(&srv.stop, true);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    pthread_mutex_destroy(&srv.mu);
}

/* ------------------------------------------------------------ client side */

static uv_loop_t loop;
static mk_http_client *client;
static uv_timer_t guard;
static bool timed_out;
static char auth_url[128];
static struct mk_provider_config cfg;
static mk_provider *p;

struct result {
    int calls;
    int rc[16];
};

static void on_done(int rc, void *arg)
{
    struct result *r = arg;
    if (r->calls < 16) r->rc[r->calls] = rc;
    r->calls++;
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    timed_out = true;
}

/* Runs the loop until `r` has seen `want` callbacks (or 10 s pass). */
static void run_until(struct result *r, int want)
{
    timed_out = false;
    uv_timer_start(&guard, on_guard, 10000, 0);
    while (r->calls < want && !timed_out) uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
    cr_assert_not(timed_out, "timed out waiting for authorize");
}

static void setup(void)
{
    cr_assert_eq(mk_rand_init(), 0);
    mk_log_set_level(MK_LOG_ERROR); /* the failure cases log warnings on purpose */
    srv_start();
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(mk_http_client_new(&loop, &client), 0);
    uv_timer_init(&loop, &guard);
    snprintf(auth_url, sizeof auth_url, "http://127.0.0.1:%d/api/v2/oauth", srv.port);
    cfg = (struct mk_provider_config){.name = "giga", .type = MK_PROVIDER_GIGACHAT, .auth_url = auth_url,
                                      .credentials = "Y2xpZW50OnNlY3JldA=="};
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
}

static void teardown(void)
{
    mk_provider_free(p);
    p = NULL;
    /* let any call still running finish, then close everything */
    timed_out = false;
    uv_timer_start(&guard, on_guard, 5000, 0);
    while (mk_http_client_active(client) > 0 && !timed_out) uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    mk_http_client_free(client);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    srv_stop();
}

TestSuite(gigachat_auth, .init = setup, .fini = teardown, .timeout = 60);

static bool is_uuid4(const char *s)
{
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL && (s[36] == '\r' || s[36] == '\0');
}

static bool last_has(const char *needle)
{
    pthread_mutex_lock(&srv.mu);
    bool yes = strcasestr(srv.last, needle) != NULL;
    pthread_mutex_unlock(&srv.mu);
    return yes;
}

static void expect_bearer(const char *token_line)
{
    json_object *rq = json_tokener_parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    struct mk_chat_call c = {.request = rq, .model = "GigaChat"};
    struct mk_upstream_request r = {0};
    cr_assert_eq(p->ops->build_chat(p, &c, &r), 0);
    cr_expect(has_header(&r, token_line), "no '%s'", token_line);
    mk_upstream_request_release(&r);
    json_object_put(rq);
}

Test(gigachat_auth, one_fetch_for_concurrent_waiters)
{
    struct result r = {0};
    for (int i = 0; i < 5; i++) p->ops->authorize(p, client, on_done, &r);
    cr_expect_eq(r.calls, 0, "nobody is answered before the token arrives");
    run_until(&r, 5);
    cr_expect_eq(atomic_load(&srv.requests), 1, "one token request for five waiters");
    for (int i = 0; i < 5; i++) cr_expect_eq(r.rc[i], 0);

    /* the request */
    cr_expect(last_has("POST /api/v2/oauth HTTP/1.1\r\n"));
    cr_expect(last_has("\r\nAuthorization: Basic Y2xpZW50OnNlY3JldA==\r\n"));
    cr_expect(last_has("\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
    cr_expect(last_has("\r\nAccept: application/json\r\n"));
    pthread_mutex_lock(&srv.mu);
    const char *rq = strcasestr(srv.last, "\r\nRqUID: ");
    cr_expect(rq && is_uuid4(rq + 9), "RqUID is a UUID v4");
    const char *body = strstr(srv.last, "\r\n\r\n");
    cr_expect(body && !strcmp(body + 4, "scope=GIGACHAT_API_PERS"), "body: %s", body ? body + 4 : "(none)");
    pthread_mutex_unlock(&srv.mu);

    /* a fresh token answers at once, without a request */
    struct result again = {0};
    p->ops->authorize(p, client, on_done, &again);
    cr_expect_eq(again.calls, 1);
    cr_expect_eq(again.rc[0], 0);
    cr_expect_eq(atomic_load(&srv.requests), 1);
    expect_bearer("Authorization: Bearer tok-1");
}

Test(gigachat_auth, near_expiry_refreshes)
{
    atomic_store(&srv.expires_in_ms, 30000); /* inside the 60 s margin */
    struct result r = {0};
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 1);
    cr_expect_eq(r.rc[0], 0);
    expect_bearer("Authorization: Bearer tok-1");
    atomic_store(&srv.expires_in_ms, 1800000);
    p->ops->authorize(p, client, on_done, &r);
    cr_expect_eq(r.calls, 1, "a token about to expire is not used");
    run_until(&r, 2);
    cr_expect_eq(r.rc[1], 0);
    cr_expect_eq(atomic_load(&srv.requests), 2);
    expect_bearer("Authorization: Bearer tok-2");
    p->ops->authorize(p, client, on_done, &r);
    cr_expect_eq(r.calls, 3);
    cr_expect_eq(atomic_load(&srv.requests), 2);
}

Test(gigachat_auth, rejected_credentials_and_recovery)
{
    atomic_store(&srv.status, 401);
    struct result r = {0};
    for (int i = 0; i < 3; i++) p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 3);
    for (int i = 0; i < 3; i++) cr_expect_eq(r.rc[i], MK_EUPSTREAM_AUTH);
    cr_expect_eq(atomic_load(&srv.requests), 1);
    cr_expect_not(mk_gigachat_has_token(p));

    atomic_store(&srv.status, 400); /* bad scope: also our credentials' fault */
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 4);
    cr_expect_eq(r.rc[3], MK_EUPSTREAM_AUTH);

    atomic_store(&srv.status, 503);
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 5);
    cr_expect_eq(r.rc[4], MK_EUPSTREAM);

    atomic_store(&srv.status, 200);
    atomic_store(&srv.garbage, true);
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 6);
    cr_expect_eq(r.rc[5], MK_EUPSTREAM_BADREPLY);

    atomic_store(&srv.garbage, false);
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 7);
    cr_expect_eq(r.rc[6], 0);
    cr_expect_eq(atomic_load(&srv.requests), 5);
}

Test(gigachat_auth, chat_401_forces_a_new_token)
{
    struct result r = {0};
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 1);
    expect_bearer("Authorization: Bearer tok-1");
    struct mk_provider_error err;
    p->ops->decode_error(p, 401, mk_slice_cstr("{\"status\":401,\"message\":\"Unauthorized\"}"), (mk_slice){NULL, 0},
                         &err);
    cr_expect_eq(err.code, MK_EUPSTREAM_AUTH);
    cr_expect(err.retryable);
    p->ops->authorize(p, client, on_done, &r);
    cr_expect_eq(r.calls, 1);
    run_until(&r, 2);
    cr_expect_eq(r.rc[1], 0);
    cr_expect_eq(atomic_load(&srv.requests), 2);
    expect_bearer("Authorization: Bearer tok-2");
}

Test(gigachat_auth, custom_scope_and_callback_reentry)
{
    mk_provider_free(p);
    cfg.scope = "GIGACHAT_API_CORP";
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
    struct result r = {0};
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 1);
    cr_expect_eq(r.rc[0], 0);
    pthread_mutex_lock(&srv.mu);
    const char *body = strstr(srv.last, "\r\n\r\n");
    cr_expect(body && !strcmp(body + 4, "scope=GIGACHAT_API_CORP"));
    pthread_mutex_unlock(&srv.mu);
}

Test(gigachat_auth, free_while_fetching)
{
    atomic_store(&srv.delay_ms, 200);
    struct result r = {0};
    p->ops->authorize(p, client, on_done, &r);
    p->ops->authorize(p, client, on_done, &r);
    mk_provider_free(p); /* waiters are told at once; the late reply touches nothing */
    p = NULL;
    cr_expect_eq(r.calls, 2);
    cr_expect_eq(r.rc[0], MK_ECANCELLED);
    cr_expect_eq(r.rc[1], MK_ECANCELLED);
    timed_out = false;
    uv_timer_start(&guard, on_guard, 10000, 0);
    while (mk_http_client_active(client) > 0 && !timed_out) uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
    cr_expect_not(timed_out);
    cr_expect_eq(r.calls, 2);
}

Test(gigachat_auth, unreachable_and_unconfigured)
{
    /* a port with nobody listening */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    static char dead[128];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/oauth", ntohs(a.sin_port));
    mk_provider_free(p);
    cfg.auth_url = dead;
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
    struct result r = {0};
    p->ops->authorize(p, client, on_done, &r);
    run_until(&r, 1);
    cr_expect_eq(r.rc[0], MK_EUPSTREAM);

    mk_provider_free(p);
    cfg.credentials = NULL;
    cr_assert_eq(mk_provider_new(&cfg, &p), 0);
    p->ops->authorize(p, client, on_done, &r);
    cr_expect_eq(r.calls, 2, "answered at once");
    cr_expect_eq(r.rc[1], MK_ECONFIG);
}
