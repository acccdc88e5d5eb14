/* Tests of the kv contract on both backends: memory (injected clock) and a real
 * redis-server started by the test (reconnect, NOSCRIPT, command timeout, several
 * processes hammering one bucket). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "kv/mk_kv.h"
#include "redis_fixture.h"

/* ---- synchronous wrappers ----------------------------------------------------------- */

struct waiter {
    volatile bool done;
    int rc;
    char value[256];
    size_t vlen;
    int64_t num;
    struct mk_kv_bucket_result br;
};

static uv_loop_t *g_loop;

static void on_get(int rc, mk_slice v, void *arg)
{
    struct waiter *w = arg;
    w->rc = rc;
    w->vlen = v.len < sizeof w->value ? v.len : sizeof w->value - 1;
    memcpy(w->value, v.ptr, w->vlen);
    w->value[w->vlen] = '\0';
    w->done = true;
}
static void on_done(int rc, void *arg)
{
    struct waiter *w = arg;
    w->rc = rc;
    w->done = true;
}
static void on_int(int rc, int64_t v, void *arg)
{
    struct waiter *w = arg;
    w->rc = rc;
    w->num = v;
    w->done = true;
}
static void on_buckets(int rc, const struct mk_kv_bucket_result *r, void *arg)
{
    struct waiter *w = arg;
    w->rc = rc;
    if (r) w->br = *r;
    w->done = true;
}

static int finish(int rc, struct waiter *w)
{
    if (rc != 0) return rc;
    cr_assert(test_run_until(g_loop, &w->done, 5000), "callback never came");
    return w->rc;
}

static int kget(struct mk_kv *kv, const char *k, struct waiter *w)
{
    memset(w, 0, sizeof *w);
    return finish(mk_kv_get(kv, k, strlen(k), on_get, w), w);
}
static int kset(struct mk_kv *kv, const char *k, const char *v, uint64_t ttl)
{
    struct waiter w = {0};
    return finish(mk_kv_set(kv, k, strlen(k), v, strlen(v), ttl, on_done, &w), &w);
}
static int kdel(struct mk_kv *kv, const char *k)
{
    struct waiter w = {0};
    return finish(mk_kv_del(kv, k, strlen(k), on_done, &w), &w);
}
static int kincr(struct mk_kv *kv, const char *k, int64_t d, uint64_t ttl, int64_t *out)
{
    struct waiter w = {0};
    int rc = finish(mk_kv_incr(kv, k, strlen(k), d, ttl, on_int, &w), &w);
    *out = w.num;
    return rc;
}
static int kbuckets(struct mk_kv *kv, const struct mk_kv_bucket *b, size_t n, int64_t now, struct mk_kv_bucket_result *r)
{
    struct waiter w = {0};
    int rc = finish(mk_kv_buckets(kv, b, n, now, on_buckets, &w), &w);
    *r = w.br;
    return rc;
}

static struct mk_kv_bucket bucket(const char *key, double cap, double rate, double cost, enum mk_kv_bucket_mode m)
{
    return (struct mk_kv_bucket){.key = key, .keylen = strlen(key), .capacity = cap, .rate_per_s = rate,
                                 .cost = cost, .mode = m};
}

/* ---- the contract, run on each backend ---------------------------------------------- */

static void check_values(struct mk_kv *kv)
{
    struct waiter w;
    cr_assert_eq(kget(kv, "missing", &w), MK_ENOTFOUND);
    cr_assert_eq(kset(kv, "a", "hello", 0), 0);
    cr_assert_eq(kget(kv, "a", &w), 0);
    cr_assert_str_eq(w.value, "hello");
    cr_assert_eq(kset(kv, "a", "", 0), 0, "empty values are values");
    cr_assert_eq(kget(kv, "a", &w), 0);
    cr_assert_eq(w.vlen, 0);
    cr_assert_eq(kdel(kv, "a"), 0);
    cr_assert_eq(kget(kv, "a", &w), MK_ENOTFOUND);
    cr_assert_eq(kdel(kv, "a"), 0, "deleting a missing key is fine");

    int64_t v = 0;
    cr_assert_eq(kincr(kv, "n", 5, 0, &v), 0);
    cr_assert_eq(v, 5);
    cr_assert_eq(kincr(kv, "n", -7, 0, &v), 0);
    cr_assert_eq(v, -2);
    cr_assert_eq(kget(kv, "n", &w), 0);
    cr_assert_str_eq(w.value, "-2", "counters read back as decimal text");
    cr_assert_eq(kset(kv, "s", "abc", 0), 0);
    cr_assert_eq(kincr(kv, "s", 1, 0, &v), MK_EINVAL, "a non-integer value cannot be incremented");
    cr_assert_eq(kset(kv, "big", "9223372036854775807", 0), 0);
    cr_assert_eq(kincr(kv, "big", 1, 0, &v), MK_EINVAL, "overflow is refused");

    /* binary-safe keys and values */
    const char bk[] = {'k', 0, 'x'};
    const char bv[] = {1, 0, 2};
    struct waiter ws = {0};
    cr_assert_eq(finish(mk_kv_set(kv, bk, 3, bv, 3, 0, on_done, &ws), &ws), 0);
    struct waiter wg = {0};
    cr_assert_eq(finish(mk_kv_get(kv, bk, 3, on_get, &wg), &wg), 0);
    cr_assert_eq(wg.vlen, 3);
    cr_assert_eq(memcmp(wg.value, bv, 3), 0);
}

static void check_buckets(struct mk_kv *kv, int64_t t0)
{
    struct mk_kv_bucket_result r;
    /* capacity 3, refill 1/s, take 1 */
    struct mk_kv_bucket b = bucket("b:rpm", 3, 1, 1, MK_KV_TAKE);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(kbuckets(kv, &b, 1, t0, &r), 0);
        cr_assert(r.allowed, "take %d of 3", i + 1);
        cr_assert_float_eq(r.level[0], 2 - i, 1e-9);
    }
    cr_assert_eq(kbuckets(kv, &b, 1, t0, &r), 0);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.failed, 0);
    cr_assert_eq(r.retry_after_ms, 1000, "one token at 1/s is a second away");
    cr_assert_eq(kbuckets(kv, &b, 1, t0 + 500, &r), 0);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.retry_after_ms, 500);
    cr_assert_eq(kbuckets(kv, &b, 1, t0 + 1000, &r), 0);
    cr_assert(r.allowed, "refilled after a second");
    cr_assert_eq(kbuckets(kv, &b, 1, t0 + 100000, &r), 0);
    cr_assert(r.allowed);
    cr_assert_float_eq(r.level[0], 2, 1e-9, "refill stops at capacity");

    /* debt: admit when not negative, charge always */
    struct mk_kv_bucket tpm = bucket("b:tpm", 100, 10, 0, MK_KV_ADMIT);
    cr_assert_eq(kbuckets(kv, &tpm, 1, t0, &r), 0);
    cr_assert(r.allowed);
    struct mk_kv_bucket charge = bucket("b:tpm", 100, 10, 130, MK_KV_CHARGE);
    cr_assert_eq(kbuckets(kv, &charge, 1, t0, &r), 0);
    cr_assert(r.allowed);
    cr_assert_float_eq(r.level[0], -30, 1e-9, "charged into debt");
    cr_assert_eq(kbuckets(kv, &tpm, 1, t0 + 1000, &r), 0);
    cr_assert_not(r.allowed, "still 20 in debt");
    cr_assert_eq(r.retry_after_ms, 2000);
    cr_assert_eq(kbuckets(kv, &tpm, 1, t0 + 3000, &r), 0);
    cr_assert(r.allowed, "debt repaid at the refill rate");

    /* atomic: when one bucket refuses, none is charged */
    struct mk_kv_bucket two[2] = {bucket("b:a", 10, 1, 1, MK_KV_TAKE), bucket("b:b", 1, 1, 1, MK_KV_TAKE)};
    cr_assert_eq(kbuckets(kv, two, 2, t0, &r), 0);
    cr_assert(r.allowed);
    cr_assert_eq(kbuckets(kv, two, 2, t0, &r), 0);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.failed, 1);
    cr_assert_float_eq(r.level[0], 9, 1e-9, "the first bucket was not charged by the refused step");
    struct mk_kv_bucket only_a = two[0];
    cr_assert_eq(kbuckets(kv, &only_a, 1, t0, &r), 0);
    cr_assert_float_eq(r.level[0], 8, 1e-9);

    /* budget counter: rate 0 stores what was spent; capacity changes apply at once */
    struct mk_kv_bucket bud = bucket("b:budget:d1", 5, 0, 0, MK_KV_ADMIT);
    bud.ttl_ms = 60000;
    struct mk_kv_bucket spend = bud;
    spend.mode = MK_KV_CHARGE;
    spend.cost = 4.5;
    cr_assert_eq(kbuckets(kv, &spend, 1, t0, &r), 0);
    cr_assert_float_eq(r.level[0], 0.5, 1e-9);
    cr_assert_eq(kbuckets(kv, &spend, 1, t0, &r), 0);
    cr_assert_float_eq(r.level[0], -4, 1e-9);
    cr_assert_eq(kbuckets(kv, &bud, 1, t0 + 86400000, &r), 0);
    cr_assert_not(r.allowed, "a budget never refills by itself");
    cr_assert_eq(r.retry_after_ms, -1);
    bud.capacity = 20;
    cr_assert_eq(kbuckets(kv, &bud, 1, t0, &r), 0);
    cr_assert(r.allowed, "a raised budget applies at once");
    cr_assert_float_eq(r.level[0], 11, 1e-9);

    /* a clock going backwards refills nothing and breaks nothing */
    struct mk_kv_bucket back = bucket("b:back", 2, 1, 1, MK_KV_TAKE);
    cr_assert_eq(kbuckets(kv, &back, 1, t0 + 5000, &r), 0);
    cr_assert_eq(kbuckets(kv, &back, 1, t0, &r), 0);
    cr_assert(r.allowed);
    cr_assert_eq(kbuckets(kv, &back, 1, t0, &r), 0);
    cr_assert_not(r.allowed);

    /* a plain value under a bucket's key is replaced */
    cr_assert_eq(kset(kv, "b:plain", "x", 0), 0);
    struct mk_kv_bucket pb = bucket("b:plain", 2, 1, 1, MK_KV_TAKE);
    cr_assert_eq(kbuckets(kv, &pb, 1, t0, &r), 0);
    cr_assert(r.allowed);
    cr_assert_float_eq(r.level[0], 1, 1e-9);
}

static void check_bad_args(struct mk_kv *kv)
{
    struct waiter w = {0};
    cr_assert_eq(mk_kv_get(kv, "", 0, on_get, &w), MK_EINVAL);
    char longkey[MK_KV_MAX_KEY_BYTES + 1];
    memset(longkey, 'k', sizeof longkey);
    cr_assert_eq(mk_kv_get(kv, longkey, sizeof longkey, on_get, &w), MK_EINVAL);
    cr_assert_eq(mk_kv_get(kv, "k", 1, NULL, &w), MK_EINVAL);
    struct mk_kv_bucket b = bucket("x", 0, 1, 1, MK_KV_TAKE);
    cr_assert_eq(mk_kv_buckets(kv, &b, 1, 0, on_buckets, &w), MK_EINVAL, "capacity 0");
    b = bucket("x", 1, NAN, 1, MK_KV_TAKE);
    cr_assert_eq(mk_kv_buckets(kv, &b, 1, 0, on_buckets, &w), MK_EINVAL, "NaN rate");
    b = bucket("x", 1, 1, -1, MK_KV_TAKE);
    cr_assert_eq(mk_kv_buckets(kv, &b, 1, 0, on_buckets, &w), MK_EINVAL, "negative cost");
    struct mk_kv_bucket dup[2] = {bucket("x", 1, 1, 1, MK_KV_TAKE), bucket("x", 1, 1, 1, MK_KV_TAKE)};
    cr_assert_eq(mk_kv_buckets(kv, dup, 2, 0, on_buckets, &w), MK_EINVAL, "same bucket twice");
    cr_assert_eq(mk_kv_buckets(kv, dup, 0, 0, on_buckets, &w), MK_EINVAL);
    cr_assert_eq(mk_kv_buckets(kv, dup, MK_KV_MAX_BUCKETS + 1, 0, on_buckets, &w), MK_EINVAL);
    cr_assert_not(w.done, "no callback after a refused call");
}

/* ---- memory ------------------------------------------------------------------------- */

static int64_t fake_now;
static int64_t fake_clock(void *arg) { return fake_now; }

static void setup_loop(void)
{
    mk_log_set_level(getenv("KV_DEBUG") ? MK_LOG_DEBUG : MK_LOG_OFF);
    g_loop = malloc(sizeof *g_loop);
    uv_loop_init(g_loop);
}
static void teardown_loop(void)
{
    uv_run(g_loop, UV_RUN_NOWAIT);
    uv_loop_close(g_loop);
    free(g_loop);
}

TestSuite(kv_memory, .init = setup_loop, .fini = teardown_loop);

Test(kv_memory, contract)
{
    struct mk_kv *kv;
    cr_assert_eq(mk_kv_open(NULL, "memory:", NULL, &kv, NULL), 0);
    cr_assert_str_eq(mk_kv_backend_name(kv), "memory");
    cr_assert(mk_kv_ready(kv));
    check_values(kv);
    check_buckets(kv, 1700000000000);
    check_bad_args(kv);
    mk_kv_free(kv);
}

Test(kv_memory, ttl_with_injected_clock)
{
    struct mk_kv_options o = {.clock_ms = fake_clock};
    fake_now = 1000;
    struct mk_kv *kv;
    cr_assert_eq(mk_kv_open(NULL, NULL, &o, &kv, NULL), 0);
    struct waiter w;
    cr_assert_eq(kset(kv, "t", "v", 100), 0);
    fake_now = 1099;
    cr_assert_eq(kget(kv, "t", &w), 0);
    fake_now = 1100;
    cr_assert_eq(kget(kv, "t", &w), MK_ENOTFOUND, "expired exactly at its TTL");

    int64_t v;
    cr_assert_eq(kincr(kv, "c", 1, 50, &v), 0);
    fake_now = 1140;
    cr_assert_eq(kincr(kv, "c", 1, 50, &v), 0, "a bump does not extend the window");
    cr_assert_eq(v, 2);
    fake_now = 1150;
    cr_assert_eq(kincr(kv, "c", 1, 50, &v), 0);
    cr_assert_eq(v, 1, "the window ended: a new counter");

    /* a rate bucket's state goes once it would be full again */
    struct mk_kv_bucket b = bucket("rb", 10, 10, 5, MK_KV_TAKE);
    struct mk_kv_bucket_result r;
    cr_assert_eq(kbuckets(kv, &b, 1, 0, &r), 0);
    cr_assert_float_eq(r.level[0], 5, 1e-9);
    fake_now += 200;
    cr_assert_eq(kbuckets(kv, &b, 1, 0, &r), 0, "now 0 uses the kv clock");
    cr_assert_float_eq(r.level[0], 2, 1e-9, "refilled 2 tokens in 200 ms then took 5");
    mk_kv_free(kv);
}

Test(kv_memory, bad_urls)
{
    struct mk_kv *kv = (void *)1;
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_kv_open(g_loop, "memcached://x", NULL, &kv, &err), MK_EINVAL);
    cr_assert_null(kv);
    cr_assert(err.len > 0);
    const char *bad[] = {"redis://", "redis://:@h", "redis://h:0", "redis://h:70000", "redis://h:12x",
                         "redis://h/abc", "redis://h:1/2/3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(mk_kv_open(g_loop, bad[i], NULL, &kv, NULL), MK_EINVAL, "%s", bad[i]);
    cr_assert_eq(mk_kv_open(NULL, "redis://127.0.0.1", NULL, &kv, NULL), MK_EINVAL, "redis needs a loop");
    mk_buf_release(&err);
}

/* ---- redis -------------------------------------------------------------------------- */

static struct test_redis g_redis;

static void setup_redis(void)
{
    setup_loop();
    cr_assert(test_redis_start(&g_redis, 0), "redis-server did not start (is it installed?)");
}
static void teardown_redis(void)
{
    test_redis_stop(&g_redis);
    teardown_loop();
}

static struct mk_kv *open_redis(const struct mk_kv_options *o)
{
    char url[64];
    test_redis_url(&g_redis, url, sizeof url);
    struct mk_kv *kv;
    cr_assert_eq(mk_kv_open(g_loop, url, o, &kv, NULL), 0);
    bool ready = false;
    for (int i = 0; i < 500 && !ready; i++) {
        volatile bool never = false;
        test_run_until(g_loop, &never, 10);
        ready = mk_kv_ready(kv);
    }
    cr_assert(ready, "no connection to redis");
    return kv;
}

static void close_kv(struct mk_kv *kv)
{
    mk_kv_free(kv);
    for (int i = 0; i < 10; i++) uv_run(g_loop, UV_RUN_NOWAIT);
}

TestSuite(kv_redis, .init = setup_redis, .fini = teardown_redis, .timeout = 60);

Test(kv_redis, contract)
{
    struct mk_kv *kv = open_redis(NULL);
    cr_assert_str_eq(mk_kv_backend_name(kv), "redis");
    check_values(kv);
    check_buckets(kv, 1700000000000);
    check_bad_args(kv);
    close_kv(kv);
}

Test(kv_redis, ttl_and_server_clock)
{
    struct mk_kv *kv = open_redis(NULL);
    struct waiter w;
    cr_assert_eq(kset(kv, "t", "v", 60000), 0);
    cr_assert(test_redis_cmd(&g_redis, "PEXPIRE t 1"), "shorten the TTL from outside");
    test_sleep_ms(5);
    cr_assert_eq(kget(kv, "t", &w), MK_ENOTFOUND);
    int64_t v;
    cr_assert_eq(kincr(kv, "c", 3, 60000, &v), 0);
    cr_assert(test_redis_cmd(&g_redis, "PEXPIRE c 1"));
    test_sleep_ms(5);
    cr_assert_eq(kincr(kv, "c", 1, 60000, &v), 0);
    cr_assert_eq(v, 1, "a counter whose window expired starts again");

    /* now 0: the server's clock */
    struct mk_kv_bucket b = bucket("srv", 2, 0.001, 1, MK_KV_TAKE);
    struct mk_kv_bucket_result r;
    cr_assert_eq(kbuckets(kv, &b, 1, 0, &r), 0);
    cr_assert(r.allowed);
    cr_assert_eq(kbuckets(kv, &b, 1, 0, &r), 0);
    cr_assert(r.allowed);
    cr_assert_eq(kbuckets(kv, &b, 1, 0, &r), 0);
    cr_assert_not(r.allowed);
    cr_assert_gt(r.retry_after_ms, 0);
    close_kv(kv);
}

Test(kv_redis, script_flushed_is_resent)
{
    struct mk_kv *kv = open_redis(NULL);
    struct mk_kv_bucket b = bucket("f", 10, 1, 1, MK_KV_TAKE);
    struct mk_kv_bucket_result r;
    cr_assert_eq(kbuckets(kv, &b, 1, 1000, &r), 0);
    cr_assert(test_redis_cmd(&g_redis, "SCRIPT FLUSH"));
    cr_assert_eq(kbuckets(kv, &b, 1, 1000, &r), 0);
    cr_assert(r.allowed);
    cr_assert_float_eq(r.level[0], 8, 1e-9);
    int64_t v;
    cr_assert_eq(kincr(kv, "g", 2, 0, &v), 0);
    struct mk_kv_stats st;
    mk_kv_get_stats(kv, &st);
    cr_assert_geq(st.script_loads, 1, "NOSCRIPT answered by sending the script");
    close_kv(kv);
}

Test(kv_redis, fails_fast_and_reconnects)
{
    struct mk_kv_options o = {.reconnect_min_ms = 20, .reconnect_max_ms = 100};
    struct mk_kv *kv = open_redis(&o);
    cr_assert_eq(kset(kv, "k", "v", 0), 0);

    /* a request in flight when the server dies fails with MK_EUNAVAILABLE */
    struct waiter inflight = {0};
    cr_assert_eq(mk_kv_get(kv, "k", 1, on_get, &inflight), 0);
    int port = g_redis.port;
    test_redis_stop(&g_redis);
    cr_assert(test_run_until(g_loop, &inflight.done, 5000));
    cr_assert(inflight.rc == MK_EUNAVAILABLE || inflight.rc == 0, "rc %d", inflight.rc);
    volatile bool never = false;
    for (int i = 0; i < 200 && mk_kv_ready(kv); i++) test_run_until(g_loop, &never, 10);
    cr_assert_not(mk_kv_ready(kv));

    /* while down: refused at once, no callback */
    struct waiter w = {0};
    cr_assert_eq(mk_kv_get(kv, "k", 1, on_get, &w), MK_EUNAVAILABLE);
    struct mk_kv_bucket b = bucket("x", 1, 1, 1, MK_KV_TAKE);
    cr_assert_eq(mk_kv_buckets(kv, &b, 1, 0, on_buckets, &w), MK_EUNAVAILABLE);
    cr_assert_not(w.done);

    /* back on the same port: the kv finds it again by itself */
    cr_assert(test_redis_start(&g_redis, port));
    bool ready = false;
    for (int i = 0; i < 500 && !ready; i++) {
        test_run_until(g_loop, &never, 10);
        ready = mk_kv_ready(kv);
    }
    cr_assert(ready, "did not reconnect");
    cr_assert_eq(kset(kv, "k2", "v2", 0), 0);
    cr_assert_eq(kget(kv, "k2", &w), 0);
    struct mk_kv_stats st;
    mk_kv_get_stats(kv, &st);
    cr_assert_geq(st.reconnects, 1);
    cr_assert_geq(st.unavailable, 2);
    close_kv(kv);
}

Test(kv_redis, hung_server_times_out)
{
    struct mk_kv_options o = {.command_timeout_ms = 100, .reconnect_min_ms = 20, .reconnect_max_ms = 50};
    struct mk_kv *kv = open_redis(&o);
    cr_assert(test_redis_cmd(&g_redis, "CLIENT PAUSE 1500 ALL"));
    struct waiter w = {0};
    cr_assert_eq(mk_kv_set(kv, "p", 1, "v", 1, 0, on_done, &w), 0);
    cr_assert(test_run_until(g_loop, &w.done, 5000), "a hung command must end");
    cr_assert_eq(w.rc, MK_EUNAVAILABLE);
    /* once the pause ends the kv is usable again */
    bool ok = false;
    for (int i = 0; i < 400 && !ok; i++) {
        volatile bool never = false;
        test_run_until(g_loop, &never, 10);
        if (mk_kv_ready(kv)) {
            struct waiter g = {0};
            int rc = mk_kv_get(kv, "p", 1, on_get, &g);
            if (rc == 0) {
                test_run_until(g_loop, &g.done, 3000);
                ok = g.done && (g.rc == 0 || g.rc == MK_ENOTFOUND);
            }
        }
    }
    cr_assert(ok, "no recovery after the pause");
    close_kv(kv);
}

Test(kv_redis, pending_requests_cancelled_on_free)
{
    struct mk_kv *kv = open_redis(NULL);
    struct waiter w = {0};
    cr_assert_eq(mk_kv_get(kv, "k", 1, on_get, &w), 0);
    mk_kv_free(kv);
    cr_assert(w.done, "callback ran inside mk_kv_free");
    cr_assert_eq(w.rc, MK_ECANCELLED);
    for (int i = 0; i < 10; i++) uv_run(g_loop, UV_RUN_NOWAIT);
}

/* Several processes, each with its own connection, take from one bucket at the same
 * time. With the clock fixed there is no refill, so exactly `capacity` takes succeed. */
struct hammer {
    struct mk_kv *kv;
    int left, inflight, allowed, errors;
    volatile bool done;
};

static void hammer_next(struct hammer *h);
static void hammer_cb(int rc, const struct mk_kv_bucket_result *r, void *arg)
{
    struct hammer *h = arg;
    h->inflight--;
    if (rc != 0)
        h->errors++;
    else if (r->allowed)
        h->allowed++;
    hammer_next(h);
}
static void hammer_next(struct hammer *h)
{
    while (h->left > 0 && h->inflight < 16) {
        struct mk_kv_bucket b = bucket("shared", 1000, 1e-9, 1, MK_KV_TAKE);
        h->left--;
        h->inflight++;
        if (mk_kv_buckets(h->kv, &b, 1, 1700000000000, hammer_cb, h) != 0) {
            h->inflight--;
            h->errors++;
        }
    }
    if (h->left == 0 && h->inflight == 0) h->done = true;
}

Test(kv_redis, concurrent_processes_stay_exact)
{
    enum { PROCS = 4, EACH = 600 };
    int pipes[PROCS][2];
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        cr_assert_eq(pipe(pipes[p]), 0);
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            uv_loop_t loop;
            uv_loop_init(&loop);
            g_loop = &loop;
            char url[64];
            test_redis_url(&g_redis, url, sizeof url);
            struct hammer h = {.left = EACH};
            int res[2] = {-1, -1};
            if (mk_kv_open(&loop, url, NULL, &h.kv, NULL) == 0) {
                volatile bool never = false;
                for (int i = 0; i < 500 && !mk_kv_ready(h.kv); i++) test_run_until(&loop, &never, 10);
                hammer_next(&h);
                test_run_until(&loop, &h.done, 20000);
                res[0] = h.allowed;
                res[1] = h.errors;
                mk_kv_free(h.kv);
                uv_run(&loop, UV_RUN_NOWAIT);
            }
            ssize_t wr = write(pipes[p][1], res, sizeof res);
            _exit(wr == sizeof res ? 0 : 1);
        }
        close(pipes[p][1]);
    }
    int total = 0, errors = 0;
    for (int p = 0; p < PROCS; p++) {
        int res[2] = {0, 0};
        cr_assert_eq(read(pipes[p][0], res, sizeof res), (ssize_t)sizeof res);
        close(pipes[p][0]);
        int st;
        waitpid(pids[p], &st, 0);
        cr_assert_geq(res[0], 0, "child %d could not connect", p);
        total += res[0];
        errors += res[1];
    }
    cr_assert_eq(errors, 0);
    cr_assert_eq(total, 1000, "exactly the bucket's capacity was granted across processes, got %d", total);
}
