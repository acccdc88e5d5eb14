/* Unit tests of the response cache: key canonicalisation, namespaces, the false-hit
 * guard, TTL, LRU under a memory cap, eligibility, invalidation. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cache/mk_cache.h"
#include "core/mk_error.h"
#include "kv/mk_kv.h"

static int64_t fake_now;
static int64_t test_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static json_object *req(const char *json)
{
    json_object *o = json_tokener_parse(json);
    cr_assert_not_null(o, "bad test JSON: %s", json);
    return o;
}

static void key_of(struct mk_cache_request *r, const char *tenant, const char *group, const char *json)
{
    json_object *b = req(json);
    cr_assert_eq(mk_cache_request_init(r, tenant, group, b, -1), 0);
    json_object_put(b);
}

static mk_cache *new_cache_at(size_t max_bytes, double threshold)
{
    struct mk_cache_options o = {.max_bytes = max_bytes, .clock_ms = test_clock, .ttl_s = 60, .threshold = threshold};
    mk_cache *c = NULL;
    cr_assert_eq(mk_cache_new(&o, &c), 0);
    return c;
}

static mk_cache *new_cache(size_t max_bytes) { return new_cache_at(max_bytes, 0); }

static enum mk_cache_hit_kind look(mk_cache *c, const char *tenant, const char *group, const char *json, float *sim)
{
    struct mk_cache_request r;
    key_of(&r, tenant, group, json);
    cr_assert(r.eligible, "not eligible: %s", r.why);
    struct mk_cache_hit h;
    cr_assert_eq(mk_cache_lookup(c, &r, -1, &h), 0);
    enum mk_cache_hit_kind k = h.kind;
    if (sim) *sim = h.similarity;
    if (k != MK_CACHE_MISS) cr_assert_str_eq(h.answer.data, "{\"answer\":1}");
    mk_cache_hit_release(&h);
    mk_cache_request_release(&r);
    return k;
}

static void put(mk_cache *c, const char *tenant, const char *group, const char *json, const char *answer)
{
    struct mk_cache_request r;
    key_of(&r, tenant, group, json);
    cr_assert(r.eligible, "not eligible: %s", r.why);
    cr_assert_eq(mk_cache_store(c, &r, answer, strlen(answer), 10, 20, 0), 0);
    mk_cache_request_release(&r);
}

#define USER(text) "{\"model\":\"m\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"" text "\"}]}"

Test(cache_key, canonical_form_ignores_order_spelling_and_transport_fields)
{
    struct mk_cache_request a, b, c, d;
    key_of(&a, "t", "g", "{\"model\":\"x\",\"temperature\":0,\"top_p\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    key_of(&b, "t", "g",
           "{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"top_p\":1.0,\"temperature\":0.0,\"stream\":true,"
           "\"model\":\"other-alias\",\"user\":\"u1\",\"stream_options\":{\"include_usage\":true}}");
    cr_assert(a.eligible && b.eligible);
    cr_assert_eq(memcmp(a.exact, b.exact, 32), 0, "same request, different spelling, same key");
    key_of(&c, "t", "g", "{\"temperature\":0.2,\"top_p\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_neq(memcmp(a.exact, c.exact, 32), 0, "temperature changes the key");
    key_of(&d, "t", "g",
           "{\"temperature\":0,\"top_p\":1,\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_neq(memcmp(a.exact, d.exact, 32), 0, "max_tokens changes the key");
    cr_assert_neq(memcmp(a.ns_digest, d.ns_digest, 32), 0, "and the namespace");
    cr_assert_str_eq(a.query, "hi");
    mk_cache_request_release(&a);
    mk_cache_request_release(&b);
    mk_cache_request_release(&c);
    mk_cache_request_release(&d);
}

Test(cache_key, tools_seed_stop_and_response_format_split_the_key)
{
    const char *variants[] = {
        "{\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
        "{\"temperature\":0,\"seed\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
        "{\"temperature\":0,\"stop\":[\"x\"],\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
        "{\"temperature\":0,\"response_format\":{\"type\":\"json_object\"},\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
        "{\"temperature\":0,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
    };
    struct mk_cache_request r[5];
    for (int i = 0; i < 5; i++) key_of(&r[i], "t", "g", variants[i]);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) cr_assert_neq(memcmp(r[i].exact, r[j].exact, 32), 0, "%d vs %d", i, j);
    for (int i = 0; i < 5; i++) mk_cache_request_release(&r[i]);
}

Test(cache_key, numbers_by_value_and_sign_and_turns_split_the_right_key)
{
    struct mk_cache_request a, b, c, d, e, f;
    key_of(&a, "t", "g", "{\"temperature\":0,\"seed\":-7,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    key_of(&b, "t", "g", "{\"temperature\":0,\"seed\":7,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    key_of(&c, "t", "g", "{\"temperature\":0,\"seed\":-7.0,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cr_assert_neq(memcmp(a.exact, b.exact, 32), 0, "-7 and 7 differ");
    cr_assert_eq(memcmp(a.exact, c.exact, 32), 0, "-7 and -7.0 are one number");
    /* The last turn changes the exact key only; an earlier turn changes both keys. */
    key_of(&d, "t", "g", "{\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                         "{\"role\":\"user\",\"content\":\"q1\"}]}");
    key_of(&e, "t", "g", "{\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                         "{\"role\":\"user\",\"content\":\"q2\"}]}");
    key_of(&f, "t", "g", "{\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"s2\"},"
                         "{\"role\":\"user\",\"content\":\"q1\"}]}");
    cr_assert_neq(memcmp(d.exact, e.exact, 32), 0);
    cr_assert_eq(memcmp(d.ns_digest, e.ns_digest, 32), 0, "same conversation so far, same namespace");
    cr_assert_neq(memcmp(d.exact, f.exact, 32), 0);
    cr_assert_neq(memcmp(d.ns_digest, f.ns_digest, 32), 0, "another system prompt, another namespace");
    cr_assert_neq(memcmp(d.exact, d.ns_digest, 32), 0);
    struct mk_cache_request *all[] = {&a, &b, &c, &d, &e, &f};
    for (size_t i = 0; i < 6; i++) mk_cache_request_release(all[i]);
}

Test(cache_key, eligibility_rules)
{
    struct mk_cache_request r;
    key_of(&r, "t", "g", "{\"temperature\":0.9,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cr_assert(!r.eligible);
    mk_cache_request_release(&r);
    key_of(&r, "t", "g", "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cr_assert(!r.eligible, "no temperature = the API's default 1.0");
    mk_cache_request_release(&r);
    key_of(&r, "t", "g", "{\"temperature\":0,\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cr_assert(!r.eligible);
    mk_cache_request_release(&r);
    key_of(&r, "t", "g", "{\"temperature\":0,\"mayak_cache\":false,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cr_assert(!r.eligible);
    mk_cache_request_release(&r);
    key_of(&r, "t", "g", "{\"temperature\":0,\"messages\":[]}");
    cr_assert(!r.eligible);
    mk_cache_request_release(&r);
    /* A final tool message: exact level only */
    key_of(&r, "t", "g", "{\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                         "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"x\"}]}");
    cr_assert(r.eligible);
    cr_assert_null(r.query);
    mk_cache_request_release(&r);
    /* The bound is the caller's */
    json_object *b = req("{\"temperature\":0.9,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cr_assert_eq(mk_cache_request_init(&r, "t", "g", b, 1.0), 0);
    cr_assert(r.eligible);
    mk_cache_request_release(&r);
    json_object_put(b);
    cr_assert_eq(mk_cache_request_init(NULL, "t", "g", NULL, 0), MK_EINVAL);
}

Test(cache, exact_then_semantic_hit)
{
    /* A low threshold: the antonym below is then refused by the guard, not by distance. */
    mk_cache *c = new_cache_at(0, 0.6);
    put(c, "t", "g", USER("Как включить Wi-Fi на ноутбуке?"), "{\"answer\":1}");
    float sim = 0;
    cr_assert_eq(look(c, "t", "g", USER("Как включить Wi-Fi на ноутбуке?"), &sim), MK_CACHE_HIT_EXACT);
    cr_assert_float_eq(sim, 1.0f, 1e-6);
    cr_assert_eq(look(c, "t", "g", USER("Как мне включить Wi-Fi на ноутбуке?"), &sim), MK_CACHE_HIT_SEMANTIC);
    cr_assert(sim >= 0.8f && sim < 1.0f, "similarity %f", sim);
    cr_assert_eq(look(c, "t", "g", USER("Как выключить Wi-Fi на ноутбуке?"), NULL), MK_CACHE_MISS);
    cr_assert_eq(look(c, "t", "g", USER("Почему падает котировка нефти?"), NULL), MK_CACHE_MISS);
    struct mk_cache_stats s;
    mk_cache_get_stats(c, &s);
    cr_assert_eq(s.hits_exact, 1);
    cr_assert_eq(s.hits_semantic, 1);
    cr_assert_eq(s.misses, 2);
    cr_assert_geq(s.guard_rejects, 1);
    mk_cache_free(c);
}

Test(cache, namespaces_never_mix)
{
    mk_cache *c = new_cache(0);
    put(c, "t1", "g", USER("How do I reset my password?"), "{\"answer\":1}");
    cr_assert_eq(look(c, "t2", "g", USER("How do I reset my password?"), NULL), MK_CACHE_MISS, "other tenant");
    cr_assert_eq(look(c, "t1", "g2", USER("How do I reset my password?"), NULL), MK_CACHE_MISS, "other group");
    put(c, "t1", "g",
        "{\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"You sell phones.\"},"
        "{\"role\":\"user\",\"content\":\"What is the price?\"}]}",
        "{\"answer\":1}");
    cr_assert_eq(look(c, "t1", "g",
                      "{\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"You sell cars.\"},"
                      "{\"role\":\"user\",\"content\":\"What is the price?\"}]}",
                      NULL),
                 MK_CACHE_MISS, "other system prompt");
    cr_assert_eq(look(c, "t1", "g",
                      "{\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"You sell phones.\"},"
                      "{\"role\":\"user\",\"content\":\"what is the price\"}]}",
                      NULL),
                 MK_CACHE_HIT_SEMANTIC, "same context, same question");
    mk_cache_free(c);
}

Test(cache_guard, negation_antonyms_numbers_entities)
{
    struct {
        const char *a, *b;
        bool ok;
        const char *why;
    } cases[] = {
        {"Как включить Wi-Fi?", "как включить wifi", true, NULL},
        {"Как включить Wi-Fi?", "Как выключить Wi-Fi?", false, "antonym"},
        {"Как подключить принтер", "Как отключить принтер", false, "antonym"},
        {"How do I enable VPN?", "How do I disable VPN?", false, "antonym"},
        {"How to connect bluetooth", "How to disconnect bluetooth", false, "antonym"},
        {"turn on the router", "turn off the router", false, "antonym"},
        {"unlock my card", "lock my card", false, "antonym"},
        {"Как разблокировать карту", "Как заблокировать карту", false, "antonym"},
        {"My card works", "My card doesn't work", false, "negation"},
        {"Платёж прошёл", "Платёж не прошёл", false, "negation"},
        {"Оплата без комиссии", "Оплата с комиссией", false, "negation"},
        {"Интернет жұмыс істейді", "Интернет жұмыс істемейді емес", false, "negation"},
        {"Transfer 100 dollars", "Transfer 1000 dollars", false, "number"},
        {"iPhone 12 battery", "iPhone 13 battery", false, "number"},
        {"My printer is jammed", "My scanner is jammed", false, "entity"},
        {"Принтер не печатает", "Сканер не печатает", false, "entity"},
        {"pay with Visa", "pay with Mastercard", false, "entity"},
        {"My printer is jammed", "the printer is jammed again", true, NULL},
        {"Exchange rate for euro", "exchange rate for EUR", true, NULL},
        /* names: capitalised inside a sentence, acronyms, Latin words in Cyrillic text */
        {"Какой город является столицей Исландии?", "Какой город является столицей Новой Зеландии?", false, "name"},
        {"Какой стране принадлежит авиакомпания \"Malev\"?", "Какой стране принадлежит авиакомпания \"KLM\"?",
         false, "name"},
        {"How long does a UK transfer take?", "How long does a transfer take?", false, "name"},
        {"Где находится Исландия?", "где находится исландия", true, NULL},  /* case endings and case */
        {"Where is Iceland?", "where is iceland", true, NULL},
        {"Не работает Outlook", "Outlook не работает", true, NULL},
        {"Не работает Outlook", "Thunderbird не работает", false, "name"},
        {"I'm unable to verify my ID", "I am unable to verify my id", true, NULL}, /* I'm is no name */
        {"My Card Has Not Arrived Yet", "my card has not arrived yet", true, NULL}, /* Title Case is no name */
        {"Can I get a Visa card?", "can i get a visa card", true, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        bool ok = mk_cache_guard_compatible(cases[i].a, strlen(cases[i].a), cases[i].b, strlen(cases[i].b), &why);
        cr_expect_eq(ok, cases[i].ok, "case %zu: '%s' vs '%s'", i, cases[i].a, cases[i].b);
        if (!cases[i].ok && why) cr_expect_str_eq(why, cases[i].why, "case %zu reason", i);
    }
    /* Invalid UTF-8 and empty input are handled. */
    cr_assert(mk_cache_guard_compatible("\xff\xfe", 2, "", 0, NULL));
    cr_assert(mk_cache_guard_compatible(NULL, 0, NULL, 0, NULL));
}

Test(cache, ttl_expires_entries)
{
    fake_now = 1000;
    mk_cache *c = new_cache(0);
    put(c, "t", "g", USER("hello"), "{\"answer\":1}");
    fake_now += 59 * 1000;
    cr_assert_eq(look(c, "t", "g", USER("hello"), NULL), MK_CACHE_HIT_EXACT);
    fake_now += 2 * 1000;
    cr_assert_eq(look(c, "t", "g", USER("hello"), NULL), MK_CACHE_MISS);
    struct mk_cache_stats s;
    mk_cache_get_stats(c, &s);
    cr_assert_eq(s.entries, 0);
    cr_assert_eq(s.expirations, 1);
    mk_cache_free(c);
    fake_now = 0;
}

Test(cache, lru_eviction_under_a_memory_cap)
{
    /* Room for about four entries (each holds a 2 KB vector plus its answer). */
    mk_cache *c = new_cache(4 * 3000);
    char q[160];
    for (int i = 0; i < 4; i++) {
        snprintf(q, sizeof q, USER("question number %c"), 'a' + i);
        put(c, "t", "g", q, "{\"answer\":1}");
    }
    struct mk_cache_stats s;
    mk_cache_get_stats(c, &s);
    size_t fit = s.entries;
    cr_assert_geq(fit, 2);
    cr_assert_leq(s.bytes, 4 * 3000);
    /* Use the oldest still present, then add more: the used one survives. */
    snprintf(q, sizeof q, USER("question number %c"), 'a' + (int)(4 - fit));
    cr_assert_eq(look(c, "t", "g", q, NULL), MK_CACHE_HIT_EXACT);
    for (int i = 4; i < 10; i++) {
        char q2[160];
        snprintf(q2, sizeof q2, USER("question number %c"), 'a' + i);
        put(c, "t", "g", q2, "{\"answer\":1}");
        mk_cache_get_stats(c, &s);
        cr_assert_leq(s.bytes, 4 * 3000);
        if (i == 4) cr_assert_eq(look(c, "t", "g", q, NULL), MK_CACHE_HIT_EXACT, "recently used entry kept");
    }
    cr_assert_neq(look(c, "t", "g", USER("question number a"), NULL), MK_CACHE_HIT_EXACT, "oldest evicted");
    mk_cache_get_stats(c, &s);
    cr_assert_gt(s.evictions, 0);
    mk_cache_free(c);
}

Test(cache, invalidation_by_tenant_group_and_all)
{
    mk_cache *c = new_cache(0);
    mk_cache *c2 = new_cache(0);
    put(c, "t1", "g1", USER("a"), "{\"answer\":1}");
    put(c, "t1", "g2", USER("b"), "{\"answer\":1}");
    put(c, "t2", "g1", USER("c"), "{\"answer\":1}");
    put(c2, "t2", "g1", USER("c"), "{\"answer\":1}");
    cr_assert_eq(mk_cache_invalidate(c, "t1", "g2"), 1);
    cr_assert_eq(mk_cache_invalidate(c, NULL, "g1"), 2);
    cr_assert_eq(look(c, "t1", "g2", USER("b"), NULL), MK_CACHE_MISS);
    put(c, "t1", "g1", USER("a"), "{\"answer\":1}");
    mk_cache_invalidate_all();
    struct mk_cache_stats s;
    mk_cache_get_stats(c, &s);
    cr_assert_eq(s.entries, 0);
    mk_cache_get_stats(c2, &s);
    cr_assert_eq(s.entries, 0);
    mk_cache_free(c);
    mk_cache_free(c2);
}

Test(cache, bad_arguments)
{
    mk_cache *c = NULL;
    struct mk_cache_options o = {.threshold = 1.5};
    cr_assert_eq(mk_cache_new(&o, &c), MK_EINVAL);
    c = new_cache(0);
    struct mk_cache_request r;
    key_of(&r, "t", "g", USER("x"));
    cr_assert_eq(mk_cache_store(c, &r, "", 0, 0, 0, 0), MK_EINVAL);
    cr_assert_eq(mk_cache_store(c, &r, NULL, 3, 0, 0, 0), MK_EINVAL);
    mk_cache_request_release(&r);
    struct mk_cache_request bad = {0};
    struct mk_cache_hit h;
    cr_assert_eq(mk_cache_lookup(c, &bad, -1, &h), MK_EINVAL);
    mk_cache_free(c);
    mk_cache_free(NULL);
}

Test(cache_sync, entries_and_invalidations_reach_other_nodes_through_the_kv)
{
    struct mk_kv *kv = NULL;
    cr_assert_eq(mk_kv_open(NULL, "memory:", NULL, &kv, NULL), 0);
    mk_cache *a = new_cache(0), *b = new_cache(0);
    cr_assert_eq(mk_cache_attach_kv(a, kv, NULL, 0), 0);
    cr_assert_eq(mk_cache_attach_kv(b, kv, NULL, 0), 0);
    cr_assert_eq(mk_cache_attach_kv(b, kv, NULL, 0), MK_EEXISTS);
    mk_cache_sync_now(b); /* first pull: reads where the log stands */
    put(a, "t", "g", USER("Как включить Wi-Fi на ноутбуке?"), "{\"answer\":1}");
    cr_assert_eq(look(b, "t", "g", USER("Как включить Wi-Fi на ноутбуке?"), NULL), MK_CACHE_MISS, "not pulled yet");
    mk_cache_sync_now(b);
    cr_assert_eq(look(b, "t", "g", USER("Как включить Wi-Fi на ноутбуке?"), NULL), MK_CACHE_HIT_EXACT);
    cr_assert_eq(look(b, "t", "g", USER("Как мне включить Wi-Fi на ноутбуке?"), NULL), MK_CACHE_HIT_SEMANTIC);
    /* A's own op is not applied twice */
    mk_cache_sync_now(a);
    struct mk_cache_stats s;
    mk_cache_get_stats(a, &s);
    cr_assert_eq(s.stores, 1);
    /* invalidation travels too */
    cr_assert_eq(mk_cache_invalidate(a, "t", NULL), 1);
    mk_cache_sync_now(b);
    cr_assert_eq(look(b, "t", "g", USER("Как включить Wi-Fi на ноутбуке?"), NULL), MK_CACHE_MISS);
    /* a late node catches up on the log */
    put(a, "t", "g", USER("How do I reset my password?"), "{\"answer\":1}");
    mk_cache *late = new_cache(0);
    cr_assert_eq(mk_cache_attach_kv(late, kv, NULL, 0), 0);
    mk_cache_sync_now(late);
    cr_assert_eq(look(late, "t", "g", USER("How do I reset my password?"), NULL), MK_CACHE_HIT_EXACT);
    mk_cache_free(a);
    mk_cache_free(b);
    mk_cache_free(late);
    mk_kv_free(kv);
}

struct store_job {
    mk_cache *cache;
    int rc;
};

/* Stores from a thread that is not the kv's loop (as the knowledge base's invalidation
 * and extra worker loops do). No Criterion asserts off the main thread. */
static void *store_elsewhere(void *arg)
{
    struct store_job *j = arg;
    json_object *b = json_tokener_parse(USER("Where do I download the VPN client?"));
    struct mk_cache_request r;
    j->rc = b ? mk_cache_request_init(&r, "t", "g", b, -1) : -1;
    if (j->rc == 0) j->rc = mk_cache_store(j->cache, &r, "{\"answer\":1}", 12, 1, 2, 0);
    if (b) mk_cache_request_release(&r);
    json_object_put(b);
    return NULL;
}

static void noop_timer(uv_timer_t *t) { (void)t; }

Test(cache_sync, stores_from_another_thread_reach_the_kv_through_the_loop)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    struct mk_kv *kv = NULL;
    cr_assert_eq(mk_kv_open(NULL, "memory:", NULL, &kv, NULL), 0);
    mk_cache *a = new_cache(0), *b = new_cache(0);
    cr_assert_eq(mk_cache_attach_kv(a, kv, &loop, 60000), 0);
    cr_assert_eq(mk_cache_attach_kv(b, kv, NULL, 0), 0);
    mk_cache_sync_now(b);
    struct store_job job = {.cache = a, .rc = -1};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, store_elsewhere, &job), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(job.rc, 0);
    /* The record waits for the loop: nothing was sent from the storing thread. */
    mk_cache_sync_now(b);
    cr_assert_eq(look(b, "t", "g", USER("Where do I download the VPN client?"), NULL), MK_CACHE_MISS);
    /* The sync's handles do not keep a loop alive (a server's listeners do): a short
     * timer stands in for them while the wake-up is processed. */
    uv_timer_t keep;
    cr_assert_eq(uv_timer_init(&loop, &keep), 0);
    cr_assert_eq(uv_timer_start(&keep, noop_timer, 20, 0), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&keep, NULL);
    mk_cache_sync_now(b);
    cr_assert_eq(look(b, "t", "g", USER("Where do I download the VPN client?"), NULL), MK_CACHE_HIT_EXACT);
    /* Freeing closes the loop's handles: the loop ends with nothing left open. */
    mk_cache_free(a);
    mk_cache_free(b);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    mk_kv_free(kv);
}
