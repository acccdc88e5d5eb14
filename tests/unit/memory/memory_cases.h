/*
 * memory_cases: the agent-memory test cases, written once and run against each store
 * backend (test_memory.c: SQLite, test_memory_postgres.c: a real PostgreSQL). Each
 * case gets a store URL from the backend's fixture.
 */
#ifndef MK_TEST_MEMORY_CASES_H
#define MK_TEST_MEMORY_CASES_H

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "kv/mk_kv.h"
#include "memory/mk_memory.h"
#include "store/mk_store.h"

/* A test clock (Unix ms) that tests move forward by hand. */
static int64_t fx_now_ms = 1700000000000ll;
static int64_t fx_clock(void *arg)
{
    (void)arg;
    return fx_now_ms;
}

struct fx {
    struct mk_store *store;
    struct mk_memory *mem;
    struct mk_kv *kv;
    struct mk_store_conn *c;
};

static void fx_open_dir(struct fx *f, const char *url, const char *data_dir)
{
    memset(f, 0, sizeof *f);
    mk_buf err = MK_BUF_INIT;
    int rc = mk_store_open(url, NULL, &f->store, &err);
    cr_assert_eq(rc, 0, "store: %s %s", mk_strerror(rc), err.data ? err.data : "");
    struct mk_kv_options ko = {.clock_ms = fx_clock};
    cr_assert_eq(mk_kv_open(NULL, "memory", &ko, &f->kv, NULL), 0);
    struct mk_memory_options o = {.data_dir = data_dir, .clock_ms = fx_clock};
    rc = mk_memory_open(f->store, f->kv, &o, &f->mem, &err);
    cr_assert_eq(rc, 0, "memory: %s %s", mk_strerror(rc), err.data ? err.data : "");
    mk_buf_release(&err);
    cr_assert_eq(mk_store_acquire(f->store, &f->c), 0);
}

static void fx_open(struct fx *f, const char *url) { fx_open_dir(f, url, NULL); }

static void fx_close(struct fx *f)
{
    mk_store_release(f->store, f->c);
    mk_memory_free(f->mem);
    mk_kv_free(f->kv);
    mk_store_free(f->store);
}

static int64_t add_ep(struct fx *f, const char *tenant, const char *user, const char *task, double reward,
                      const char *tag)
{
    const char *tags[1] = {tag};
    struct mk_memory_episode ep = {.tenant = tenant, .user = user, .session = "s1", .task = task,
                                   .tried = "restarted the service", .outcome = "fixed", .critique = "fine",
                                   .reward = reward, .tags = tags, .ntags = tag ? 1 : 0};
    int64_t id = 0;
    mk_buf err = MK_BUF_INIT;
    int rc = mk_memory_episode_add(f->mem, f->c, &ep, &id, &err);
    cr_assert_eq(rc, 0, "add: %s %s", mk_strerror(rc), err.data ? err.data : "");
    mk_buf_release(&err);
    cr_assert_gt(id, 0);
    return id;
}

static json_object *search(struct fx *f, const char *tenant, const char *q, uint32_t k,
                           const struct mk_memory_episode_filter *flt)
{
    json_object *out = NULL;
    mk_buf err = MK_BUF_INIT;
    int rc = mk_memory_episode_search(f->mem, f->c, tenant, q, k, flt, &out, &err);
    cr_assert_eq(rc, 0, "search: %s %s", mk_strerror(rc), err.data ? err.data : "");
    mk_buf_release(&err);
    return out;
}

static json_object *data_at(json_object *list, size_t i)
{
    json_object *d;
    cr_assert(json_object_object_get_ex(list, "data", &d));
    return json_object_array_get_idx(d, i);
}

static size_t data_len(json_object *list)
{
    json_object *d;
    cr_assert(json_object_object_get_ex(list, "data", &d));
    return json_object_array_length(d);
}

static int64_t get_i(json_object *o, const char *k)
{
    json_object *v;
    cr_assert(json_object_object_get_ex(o, k, &v), "no %s in %s", k, json_object_to_json_string(o));
    return json_object_get_int64(v);
}

static const char *get_s(json_object *o, const char *k)
{
    json_object *v;
    cr_assert(json_object_object_get_ex(o, k, &v), "no %s in %s", k, json_object_to_json_string(o));
    return json_object_get_string(v);
}

static const char *const tasks[] = {
    "VPN client cannot connect after the password change",
    "Printer on the third floor prints blank pages",
    "Outlook asks for the password again and again",
    "Laptop battery drains within an hour",
    "Cannot open the shared drive from home",
    "Wi-Fi drops every few minutes in the meeting room",
};

/* ---- cases ---------------------------------------------------------------------------- */

static void case_episodes(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    int64_t ids[6];
    for (int i = 0; i < 6; i++) ids[i] = add_ep(&f, "acme", "u1", tasks[i], i % 2 ? 0.1 : 0.9, i < 3 ? "network" : "hw");
    add_ep(&f, "other", "u9", tasks[0], 1.0, NULL);

    json_object *r = search(&f, "acme", "the VPN will not connect since I changed my password", 3, NULL);
    cr_assert_geq(data_len(r), 1);
    cr_assert_eq(get_i(data_at(r, 0), "id"), ids[0]);
    cr_assert_str_eq(get_s(data_at(r, 0), "tenant"), "acme");
    json_object *score;
    cr_assert(json_object_object_get_ex(data_at(r, 0), "score", &score));
    cr_assert_gt(json_object_get_double(score), 0.3);
    for (size_t i = 0; i < data_len(r); i++) cr_assert_str_eq(get_s(data_at(r, i), "tenant"), "acme");
    json_object_put(r);

    /* another tenant sees only its own episode */
    r = search(&f, "other", "printer blank pages", 5, NULL);
    cr_assert_eq(data_len(r), 1);
    cr_assert_str_eq(get_s(data_at(r, 0), "tenant"), "other");
    json_object_put(r);
    r = search(&f, "nobody", "printer", 5, NULL);
    cr_assert_eq(data_len(r), 0);
    json_object_put(r);

    /* filters: tags (row filter), success (metadata filter) */
    const char *tag[] = {"hw"};
    struct mk_memory_episode_filter flt = {.tags = tag, .ntags = 1};
    r = search(&f, "acme", "VPN password", 6, &flt);
    cr_assert_eq(data_len(r), 3);
    for (size_t i = 0; i < 3; i++) cr_assert_geq(get_i(data_at(r, i), "id"), ids[3]);
    json_object_put(r);
    struct mk_memory_episode_filter ok = {.success_only = true};
    r = search(&f, "acme", "VPN password", 6, &ok);
    cr_assert_eq(data_len(r), 3);
    json_object_put(r);
    struct mk_memory_episode_filter both = {.tags = tag, .ntags = 1, .failure_only = true};
    r = search(&f, "acme", "battery", 6, &both);
    cr_assert_eq(data_len(r), 2); /* ids[3], ids[5] */
    json_object_put(r);

    /* tags hold LIKE's wildcards literally */
    int64_t wild = add_ep(&f, "acme", "u1", "Card has not arrived", 1, "card_arrival");
    const char *lit[] = {"card_arrival"}, *pat[] = {"card%arrival"}, *pat2[] = {"card_arrivaX"};
    struct mk_memory_episode_filter fl = {.tags = lit, .ntags = 1};
    r = search(&f, "acme", "card", 5, &fl);
    cr_assert_eq(data_len(r), 1);
    cr_assert_eq(get_i(data_at(r, 0), "id"), wild);
    json_object_put(r);
    fl.tags = pat;
    r = search(&f, "acme", "card", 5, &fl);
    cr_assert_eq(data_len(r), 0);
    json_object_put(r);
    fl.tags = pat2;
    r = search(&f, "acme", "card", 5, &fl);
    cr_assert_eq(data_len(r), 0);
    json_object_put(r);
    cr_assert_eq(mk_memory_episode_delete(f.mem, f.c, "acme", wild), 0);

    /* list without a query: newest first */
    r = search(&f, "acme", NULL, 2, NULL);
    cr_assert_eq(data_len(r), 2);
    cr_assert_eq(get_i(data_at(r, 0), "id"), ids[5]);
    json_object_put(r);

    /* get / delete, and isolation of both */
    json_object *one = NULL;
    cr_assert_eq(mk_memory_episode_get(f.mem, f.c, "acme", ids[1], &one), 0);
    cr_assert_str_eq(get_s(one, "task"), tasks[1]);
    json_object_put(one);
    cr_assert_eq(mk_memory_episode_get(f.mem, f.c, "other", ids[1], &one), MK_ENOTFOUND);
    cr_assert_eq(mk_memory_episode_delete(f.mem, f.c, "other", ids[0]), MK_ENOTFOUND);
    cr_assert_eq(mk_memory_episode_delete(f.mem, f.c, "acme", ids[0]), 0);
    r = search(&f, "acme", tasks[0], 1, NULL);
    cr_assert_neq(get_i(data_at(r, 0), "id"), ids[0]);
    json_object_put(r);
    cr_assert_eq(mk_memory_indexed(f.mem, MK_MEMORY_EPISODES), 6);
    fx_close(&f);
}

static void case_episode_validation(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    mk_buf err = MK_BUF_INIT;
    struct mk_memory_episode ep = {.tenant = "acme", .task = "", .reward = 1};
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, NULL, &err), MK_EINVAL);
    cr_assert(strstr(err.data, "task"));
    ep.task = "\xff\xfe";
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, NULL, NULL), MK_EINVAL);
    ep.task = "fine";
    ep.reward = NAN;
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, NULL, NULL), MK_EINVAL);
    ep.reward = 1;
    ep.tenant = "";
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, NULL, NULL), MK_EINVAL);
    ep.tenant = "acme";
    const char *bad[] = {"a,b"};
    ep.tags = bad;
    ep.ntags = 1;
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, NULL, NULL), MK_EINVAL);
    ep.ntags = 0;
    char *big = malloc(MK_MEMORY_MAX_TEXT_BYTES + 2);
    memset(big, 'a', MK_MEMORY_MAX_TEXT_BYTES + 1);
    big[MK_MEMORY_MAX_TEXT_BYTES + 1] = '\0';
    ep.critique = big;
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, NULL, NULL), MK_ETOOBIG);
    free(big);
    json_object *out = NULL;
    cr_assert_eq(mk_memory_episode_search(f.mem, f.c, "acme", "x", 0, NULL, &out, NULL), MK_EINVAL);
    cr_assert_eq(mk_memory_episode_search(f.mem, f.c, "acme", "x", MK_MEMORY_MAX_K + 1, NULL, &out, NULL), MK_EINVAL);
    struct mk_memory_episode_filter flt = {.success_only = true, .failure_only = true};
    cr_assert_eq(mk_memory_episode_search(f.mem, f.c, "acme", "x", 3, &flt, &out, NULL), MK_EINVAL);
    /* a batch with one bad episode stores nothing */
    struct mk_memory_episode two[2] = {{.tenant = "acme", .task = "good", .reward = 1},
                                       {.tenant = "acme", .task = "", .reward = 1}};
    cr_assert_eq(mk_memory_episode_add_batch(f.mem, f.c, two, 2, NULL, NULL), MK_EINVAL);
    json_object *r = search(&f, "acme", NULL, 10, NULL);
    cr_assert_eq(data_len(r), 0);
    json_object_put(r);
    mk_buf_release(&err);
    fx_close(&f);
}

static void case_skills(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    struct mk_memory_skill s = {.tenant = "acme", .name = "reset-vpn", .description = "Reset a broken VPN profile",
                                .procedure = "1. Remove the profile. 2. Import it again.", .author = "alice"};
    int64_t id1, id2;
    int v;
    cr_assert_eq(mk_memory_skill_put(f.mem, f.c, &s, &id1, &v, NULL), 0);
    cr_assert_eq(v, 1);
    s.procedure = "1. Remove the profile. 2. Reboot. 3. Import the new profile.";
    cr_assert_eq(mk_memory_skill_put(f.mem, f.c, &s, &id2, &v, NULL), 0);
    cr_assert_eq(v, 2);
    struct mk_memory_skill p = {.tenant = "acme", .name = "fix-printer", .description = "Printer prints blank pages",
                                .procedure = "Replace the toner cartridge."};
    cr_assert_eq(mk_memory_skill_put(f.mem, f.c, &p, NULL, NULL, NULL), 0);
    json_object *r = NULL;
    cr_assert_eq(mk_memory_skill_search(f.mem, f.c, "acme", "my VPN profile is broken", 5, &r, NULL), 0);
    cr_assert_eq(data_len(r), 2); /* current versions only */
    cr_assert_eq(get_i(data_at(r, 0), "id"), id2);
    cr_assert_eq(get_i(data_at(r, 0), "version"), 2);
    json_object_put(r);
    cr_assert_eq(mk_memory_skill_get(f.mem, f.c, "acme", "reset-vpn", &r), 0);
    json_object *vs;
    cr_assert(json_object_object_get_ex(r, "versions", &vs));
    cr_assert_eq(json_object_array_length(vs), 2);
    json_object_put(r);
    cr_assert_eq(mk_memory_skill_get(f.mem, f.c, "other", "reset-vpn", &r), MK_ENOTFOUND);
    cr_assert_eq(mk_memory_skill_record_use(f.mem, f.c, "acme", "reset-vpn", true), 0);
    cr_assert_eq(mk_memory_skill_record_use(f.mem, f.c, "acme", "reset-vpn", false), 0);
    cr_assert_eq(mk_memory_skill_get(f.mem, f.c, "acme", "reset-vpn", &r), 0);
    json_object *cur, *rate;
    cr_assert(json_object_object_get_ex(r, "current", &cur));
    cr_assert(json_object_object_get_ex(cur, "success_rate", &rate));
    cr_assert_float_eq(json_object_get_double(rate), 0.5, 1e-9);
    json_object_put(r);

    /* promotion: failures refused, successes become a new skill */
    int64_t bad = add_ep(&f, "acme", "u1", "Mail stuck in the outbox", 0.0, NULL);
    int64_t good = add_ep(&f, "acme", "u1", "Mail stuck in the outbox", 1.0, NULL);
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_memory_skill_promote(f.mem, f.c, "acme", bad, "outbox", "bob", NULL, NULL, &err), MK_EINVAL);
    mk_buf_reset(&err);
    int64_t sid;
    cr_assert_eq(mk_memory_skill_promote(f.mem, f.c, "acme", good, "outbox", "bob", &sid, &v, &err), 0, "%s", err.data);
    cr_assert_eq(mk_memory_skill_promote(f.mem, f.c, "other", good, "outbox", "bob", NULL, NULL, NULL), MK_ENOTFOUND);
    cr_assert_eq(mk_memory_skill_search(f.mem, f.c, "acme", "outbox mail stuck", 1, &r, NULL), 0);
    cr_assert_eq(get_i(data_at(r, 0), "id"), sid);
    cr_assert_str_eq(get_s(data_at(r, 0), "procedure"), "restarted the service");
    json_object_put(r);
    mk_buf_release(&err);
    fx_close(&f);
}

static json_object *facts(struct fx *f, const char *subject, bool history)
{
    json_object *r = NULL;
    cr_assert_eq(mk_memory_fact_list(f->mem, f->c, "acme", subject, history, 100, &r), 0);
    return r;
}

static void case_facts(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    struct mk_memory_fact a = {.tenant = "acme", .subject = "u1", .text = "The user's VPN client is Cisco AnyConnect",
                               .predicate = "vpn_client", .value = "Cisco AnyConnect", .confidence = NAN,
                               .asserted_by = "agent-1"};
    int64_t id1, id2, id3;
    enum mk_memory_fact_status st;
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &a, &id1, &st, NULL, NULL), 0);
    cr_assert_eq(st, MK_MEMORY_FACT_NEW);
    /* the same again: a duplicate, no new row */
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &a, &id2, &st, NULL, NULL), 0);
    cr_assert_eq(st, MK_MEMORY_FACT_DUPLICATE);
    cr_assert_eq(id2, id1);
    /* a contradiction closes the old interval and keeps both */
    fx_now_ms += 60000;
    struct mk_memory_fact b = a;
    b.text = "The user's VPN client is OpenVPN";
    b.value = "OpenVPN";
    b.asserted_by = "operator-7";
    json_object *res = NULL;
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &b, &id3, &st, &res, NULL), 0);
    cr_assert_eq(st, MK_MEMORY_FACT_SUPERSEDED);
    cr_assert_neq(id3, id1);
    json_object *closed;
    cr_assert(json_object_object_get_ex(res, "closed", &closed));
    cr_assert_eq(json_object_array_length(closed), 1);
    cr_assert_eq(json_object_get_int64(json_object_array_get_idx(closed, 0)), id1);
    json_object_put(res);
    json_object *open = facts(&f, "u1", false), *all = facts(&f, "u1", true);
    cr_assert_eq(data_len(open), 1);
    cr_assert_eq(get_i(data_at(open, 0), "id"), id3);
    cr_assert_eq(data_len(all), 2);
    json_object *old = data_at(all, 1);
    cr_assert_eq(get_i(old, "id"), id1);
    cr_assert_eq(get_i(old, "valid_to"), fx_now_ms);
    cr_assert_str_eq(get_s(old, "closed_by"), "operator-7");
    cr_assert_eq(get_i(old, "superseded_by"), id3);
    cr_assert_str_eq(get_s(old, "asserted_by"), "agent-1");
    json_object_put(open);
    json_object_put(all);

    /* free-text facts: negation contradicts, repetition deduplicates */
    struct mk_memory_fact p = {.tenant = "acme", .subject = "u1", .text = "The user prefers answers in Russian",
                               .confidence = 0.8};
    int64_t pid, nid, did;
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &p, &pid, &st, NULL, NULL), 0);
    cr_assert_eq(st, MK_MEMORY_FACT_NEW);
    p.text = "the user prefers answers in Russian.";
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &p, &did, &st, NULL, NULL), 0);
    cr_assert_eq(st, MK_MEMORY_FACT_DUPLICATE);
    cr_assert_eq(did, pid);
    p.text = "The user does not prefer answers in Russian";
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &p, &nid, &st, NULL, NULL), 0);
    cr_assert_eq(st, MK_MEMORY_FACT_SUPERSEDED);
    /* explicit supersedes, and retraction */
    int64_t sup[1] = {nid};
    struct mk_memory_fact q = {.tenant = "acme", .subject = "u1", .text = "Language preference: English",
                               .confidence = 1, .supersedes = sup, .nsupersedes = 1};
    int64_t qid;
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &q, &qid, &st, NULL, NULL), 0);
    cr_assert_eq(st, MK_MEMORY_FACT_SUPERSEDED);
    cr_assert_eq(mk_memory_fact_retract(f.mem, f.c, "other", qid, "x"), MK_ENOTFOUND);
    cr_assert_eq(mk_memory_fact_retract(f.mem, f.c, "acme", qid, "admin"), 0);
    cr_assert_eq(mk_memory_fact_retract(f.mem, f.c, "acme", qid, "admin"), MK_ENOTFOUND);
    open = facts(&f, "u1", false);
    cr_assert_eq(data_len(open), 1); /* the OpenVPN fact */
    json_object_put(open);
    all = facts(&f, "u1", true);
    cr_assert_eq(data_len(all), 5);
    json_object_put(all);
    /* search among open facts, isolated by subject */
    cr_assert_eq(mk_memory_fact_search(f.mem, f.c, "acme", "u1", "which VPN software", 3, &res, NULL), 0);
    cr_assert_eq(data_len(res), 1);
    cr_assert_eq(get_i(data_at(res, 0), "id"), id3);
    json_object_put(res);
    cr_assert_eq(mk_memory_fact_search(f.mem, f.c, "acme", "u2", "which VPN software", 3, &res, NULL), 0);
    cr_assert_eq(data_len(res), 0);
    json_object_put(res);
    /* bad input */
    struct mk_memory_fact bad = {.tenant = "acme", .text = "x", .confidence = 2};
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &bad, NULL, NULL, NULL, NULL), MK_EINVAL);
    fx_close(&f);
}

static void case_links(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    json_object *o = NULL;
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "password changed", "vpn fails", 0.5, "u1", &o, NULL), 0);
    json_object_put(o);
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "password changed", "vpn fails", 0.5, NULL, &o, NULL), 0);
    json_object *c;
    cr_assert(json_object_object_get_ex(o, "confidence", &c));
    cr_assert_float_eq(json_object_get_double(c), 0.75, 1e-9); /* noisy-or */
    cr_assert_eq(get_i(o, "observations"), 2);
    json_object_put(o);
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "password policy rotated", "password changed", 0.8, NULL, NULL,
                                    NULL), 0);
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "cosmic rays", "vpn fails", 0.05, NULL, NULL, NULL), 0);
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "x", "x", 0.5, NULL, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "a", "b", 0, NULL, NULL, NULL), MK_EINVAL);
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "a", "b", 1.5, NULL, NULL, NULL), MK_EINVAL);
    json_object *r = NULL;
    cr_assert_eq(mk_memory_link_causes(f.mem, f.c, "acme", "vpn fails", 2, 0.1, 10, &r), 0);
    cr_assert_eq(data_len(r), 2);
    cr_assert_str_eq(get_s(data_at(r, 0), "cause"), "password changed");
    cr_assert_str_eq(get_s(data_at(r, 1), "cause"), "password policy rotated");
    cr_assert(json_object_object_get_ex(data_at(r, 1), "confidence", &c));
    cr_assert_float_eq(json_object_get_double(c), 0.6, 1e-9);
    cr_assert_eq(get_i(data_at(r, 1), "depth"), 2);
    json_object_put(r);
    cr_assert_eq(mk_memory_link_causes(f.mem, f.c, "other", "vpn fails", 2, 0, 10, &r), 0);
    cr_assert_eq(data_len(r), 0);
    json_object_put(r);
    int64_t pruned = 0;
    cr_assert_eq(mk_memory_link_prune(f.mem, f.c, "acme", 0.1, 0, &pruned), 0);
    cr_assert_eq(pruned, 1);
    cr_assert_eq(mk_memory_link_causes(f.mem, f.c, "acme", "vpn fails", 1, 0, 10, &r), 0);
    cr_assert_eq(data_len(r), 1);
    json_object_put(r);
    fx_close(&f);
}

static void case_history(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    char text[512];
    for (int i = 0; i < 40; i++) {
        snprintf(text, sizeof text,
                 i == 3 ? "My VPN certificate expired on the laptop with serial %d. The certificate needs renewal."
                        : "Turn %d: okay, thanks, let me check that and get back to you shortly.",
                 i);
        cr_assert_eq(mk_memory_history_append(f.mem, f.c, "acme", "sess-1", "u1", i % 2 ? "assistant" : "user", text,
                                              NULL, NULL, NULL), 0);
    }
    cr_assert_eq(mk_memory_history_append(f.mem, f.c, "acme", "sess-1", "u1", "wizard", "x", NULL, NULL, NULL),
                 MK_EINVAL);
    json_object *w = NULL;
    cr_assert_eq(mk_memory_history_window(f.mem, f.c, "acme", "sess-1", 200, &w), 0);
    json_object *msgs;
    cr_assert(json_object_object_get_ex(w, "messages", &msgs));
    size_t n = json_object_array_length(msgs);
    cr_assert_gt(n, 0);
    cr_assert_lt(n, 40);
    cr_assert_leq(get_i(w, "tokens"), 200);
    cr_assert_eq(get_i(w, "total_turns"), 40);
    cr_assert_eq(get_i(w, "summary_covers") + (int64_t)n, 40);
    /* the informative turn survived into the summary */
    cr_assert(strstr(get_s(w, "summary"), "certificate"), "summary: %s", get_s(w, "summary"));
    /* the last message is the newest turn */
    cr_assert(strstr(get_s(json_object_array_get_idx(msgs, n - 1), "content"), "Turn 39"));
    int64_t covers = get_i(w, "summary_covers");
    json_object_put(w);
    /* the summary never moves back, even with a larger budget */
    cr_assert_eq(mk_memory_history_window(f.mem, f.c, "acme", "sess-1", 100000, &w), 0);
    cr_assert_eq(get_i(w, "summary_covers"), covers);
    json_object_put(w);
    /* another tenant's session of the same name is empty */
    cr_assert_eq(mk_memory_history_window(f.mem, f.c, "other", "sess-1", 200, &w), 0);
    cr_assert_eq(get_i(w, "total_turns"), 0);
    json_object_put(w);
    fx_close(&f);
}

static void case_sweep_and_erase(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    int64_t old_ep = add_ep(&f, "acme", "u1", "old problem with the scanner", 1, NULL);
    fx_now_ms += 31ll * 24 * 3600 * 1000;
    int64_t e1 = add_ep(&f, "acme", "u1", "VPN broken again", 1, NULL);
    int64_t e2 = add_ep(&f, "acme", "u2", "VPN broken again", 1, NULL);
    struct mk_memory_fact fa = {.tenant = "acme", .subject = "u1", .text = "u1 works from Almaty", .confidence = 1};
    cr_assert_eq(mk_memory_fact_assert(f.mem, f.c, &fa, NULL, NULL, NULL, NULL), 0);
    cr_assert_eq(mk_memory_history_append(f.mem, f.c, "acme", "s-u1", "u1", "user", "hello", NULL, NULL, NULL), 0);
    cr_assert_eq(mk_memory_link_add(f.mem, f.c, "acme", "a", "b", 0.5, "u1", NULL, NULL), 0);
    cr_assert_eq(mk_memory_session_register(f.mem, f.c, "acme", "sess-of-u1", "u1", "agent"), 0);
    struct mk_memory_skill sk = {.tenant = "acme", .name = "vpn", .procedure = "reinstall", .author = "u1",
                                 .source_episode = e1};
    cr_assert_eq(mk_memory_skill_put(f.mem, f.c, &sk, NULL, NULL, NULL), 0);

    json_object *rep = NULL;
    cr_assert_eq(mk_memory_sweep(f.mem, f.c, &rep), 0);
    cr_assert_eq(get_i(rep, "episodes"), 1);
    json_object_put(rep);
    json_object *one = NULL;
    cr_assert_eq(mk_memory_episode_get(f.mem, f.c, "acme", old_ep, &one), MK_ENOTFOUND);

    json_object *sessions = NULL;
    cr_assert_eq(mk_memory_erase_user(f.mem, f.c, "acme", "u1", "admin", &rep, &sessions), 0);
    json_object *er;
    cr_assert(json_object_object_get_ex(rep, "erased", &er));
    cr_assert_eq(get_i(er, "episodes"), 1);
    cr_assert_eq(get_i(er, "facts"), 1);
    cr_assert_eq(get_i(er, "history"), 1);
    cr_assert_eq(get_i(er, "links"), 1);
    cr_assert_eq(get_i(er, "sessions"), 1);
    cr_assert_eq(get_i(er, "vectors"), 2);
    cr_assert_geq(get_i(er, "skills_unlinked"), 1);
    cr_assert_eq(json_object_array_length(sessions), 1);
    cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(sessions, 0)), "sess-of-u1");
    json_object_put(rep);
    json_object_put(sessions);
    cr_assert_eq(mk_memory_episode_get(f.mem, f.c, "acme", e1, &one), MK_ENOTFOUND);
    cr_assert_eq(mk_memory_episode_get(f.mem, f.c, "acme", e2, &one), 0); /* someone else's stays */
    json_object_put(one);
    json_object *r = search(&f, "acme", "VPN broken", 5, NULL);
    cr_assert_eq(data_len(r), 1);
    json_object_put(r);
    /* the erasure record holds a digest, never the id */
    struct mk_store_stmt *st;
    cr_assert_eq(mk_store_prepare(f.c, "SELECT user_digest, report FROM memory_erasures", &st), 0);
    cr_assert_eq(mk_store_step(st), MK_STORE_ROW);
    cr_assert_eq(strlen(mk_store_column_text(st, 0).ptr), 64);
    cr_assert_null(strstr(mk_store_column_text(st, 1).ptr, "\"u1\""));
    mk_store_stmt_done(st);
    fx_close(&f);
}

static int hook_calls;
static int test_hook(void *arg, struct mk_store_conn *c, const char *tenant, const char *user, json_object *report)
{
    (void)arg;
    (void)c;
    hook_calls++;
    cr_assert_str_eq(tenant, "acme");
    cr_assert_str_eq(user, "u7");
    json_object_object_add(report, "conversations", json_object_new_int(3));
    return 0;
}

static int failing_hook(void *arg, struct mk_store_conn *c, const char *tenant, const char *user, json_object *report)
{
    return MK_EIO;
}

static void case_erase_hooks(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    hook_calls = 0;
    cr_assert_eq(mk_memory_erase_hook_add(f.mem, "desk", test_hook, NULL), 0);
    cr_assert_eq(mk_memory_erase_hook_add(f.mem, "desk", test_hook, NULL), MK_EEXISTS);
    cr_assert_eq(mk_memory_erase_hook_add(f.mem, "cache", failing_hook, NULL), 0);
    json_object *rep = NULL;
    cr_assert_eq(mk_memory_erase_user(f.mem, f.c, "acme", "u7", "admin", &rep, NULL), 0);
    cr_assert_eq(hook_calls, 1);
    json_object *hooks, *desk, *cache, *e;
    cr_assert(json_object_object_get_ex(rep, "hooks", &hooks));
    cr_assert(json_object_object_get_ex(hooks, "desk", &desk));
    cr_assert_eq(get_i(desk, "conversations"), 3);
    cr_assert(json_object_object_get_ex(hooks, "cache", &cache));
    cr_assert(json_object_object_get_ex(cache, "error", &e));
    json_object_put(rep);
    fx_close(&f);
}

/* Sessions on the in-process kv (callbacks run before the call returns). */
struct got {
    int rc;
    json_object *v;
    int calls;
};
static void got_cb(int rc, json_object *v, void *arg)
{
    struct got *g = arg;
    g->rc = rc;
    json_object_put(g->v);
    g->v = v ? json_object_get(v) : NULL;
    g->calls++;
}

static void case_sessions(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    struct got g = {0};
    json_object *init = json_object_new_object();
    json_object_object_add(init, "lang", json_object_new_string("ru"));
    cr_assert_eq(mk_memory_session_create(f.mem, f.c, "acme", "u1", "triage", 0, init, got_cb, &g), 0);
    json_object_put(init);
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.rc, 0);
    char id[64];
    snprintf(id, sizeof id, "%s", get_s(g.v, "id"));
    cr_assert_eq(get_i(g.v, "expires_at"), fx_now_ms + MK_MEMORY_DEFAULT_SESSION_TTL_MS);

    json_object *patch = json_object_new_object();
    json_object_object_add(patch, "step", json_object_new_int(2));
    json_object_object_add(patch, "lang", NULL); /* delete */
    cr_assert_eq(mk_memory_session_put_state(f.mem, "acme", id, patch, got_cb, &g), 0);
    json_object_put(patch);
    cr_assert_eq(g.rc, 0);
    cr_assert_eq(mk_memory_session_get(f.mem, "acme", id, got_cb, &g), 0);
    json_object *state, *v;
    cr_assert(json_object_object_get_ex(g.v, "state", &state));
    cr_assert(json_object_object_get_ex(state, "step", &v));
    cr_assert_eq(json_object_get_int(v), 2);
    cr_assert_not(json_object_object_get_ex(state, "lang", &v));
    /* other tenants cannot see it */
    cr_assert_eq(mk_memory_session_get(f.mem, "other", id, got_cb, &g), 0);
    cr_assert_eq(g.rc, MK_ENOTFOUND);
    /* sliding TTL: reads past half the TTL renew it, idleness ends it */
    fx_now_ms += 40 * 60 * 1000;
    cr_assert_eq(mk_memory_session_get(f.mem, "acme", id, got_cb, &g), 0);
    cr_assert_eq(g.rc, 0);
    fx_now_ms += 40 * 60 * 1000; /* 80 min after the last write, 40 after the read */
    cr_assert_eq(mk_memory_session_get(f.mem, "acme", id, got_cb, &g), 0);
    cr_assert_eq(g.rc, 0);
    fx_now_ms += 61 * 60 * 1000;
    cr_assert_eq(mk_memory_session_get(f.mem, "acme", id, got_cb, &g), 0);
    cr_assert_eq(g.rc, MK_ENOTFOUND);
    /* delete */
    cr_assert_eq(mk_memory_session_create(f.mem, NULL, "acme", NULL, NULL, 0, NULL, got_cb, &g), 0);
    snprintf(id, sizeof id, "%s", get_s(g.v, "id"));
    cr_assert_eq(mk_memory_session_delete(f.mem, "acme", id, got_cb, &g), 0);
    cr_assert_eq(g.rc, 0);
    cr_assert_eq(mk_memory_session_get(f.mem, "acme", id, got_cb, &g), 0);
    cr_assert_eq(g.rc, MK_ENOTFOUND);
    /* a user's session needs the store to register it */
    cr_assert_eq(mk_memory_session_create(f.mem, NULL, "acme", "u1", NULL, 0, NULL, got_cb, &g), MK_EINVAL);
    cr_assert_eq(mk_memory_session_create(f.mem, NULL, "acme", NULL, NULL, 1000, NULL, got_cb, &g), MK_EINVAL);
    /* agent state */
    patch = json_object_new_object();
    json_object_object_add(patch, "runs", json_object_new_int(5));
    cr_assert_eq(mk_memory_agent_get(f.mem, "acme", "triage", got_cb, &g), 0);
    cr_assert_eq(g.rc, 0);
    cr_assert_eq(mk_memory_agent_put(f.mem, "acme", "triage", patch, got_cb, &g), 0);
    json_object_put(patch);
    cr_assert_eq(mk_memory_agent_get(f.mem, "acme", "triage", got_cb, &g), 0);
    cr_assert(json_object_object_get_ex(g.v, "state", &state));
    cr_assert(json_object_object_get_ex(state, "runs", &v));
    cr_assert_eq(json_object_get_int(v), 5);
    json_object_put(g.v);
    fx_close(&f);
}

/* Hydration reads hits in batches by id: rows gone behind the index's back are
 * skipped and later hits fill in, results keep the index's order across batches, and
 * an episode insert refuses to join a caller's open transaction. */
static void case_search_hydration(const char *url)
{
    struct fx f;
    fx_open(&f, url);
    char task[128];
    int64_t ids[24];
    for (int i = 0; i < 24; i++) {
        snprintf(task, sizeof task, "printer %d on floor %d jams with paper tray %d", i, i % 5, i % 3);
        ids[i] = add_ep(&f, "acme", "u1", task, 1, NULL);
        if (i) cr_assert_gt(ids[i], ids[i - 1]);
    }
    add_ep(&f, "other", "u2", "printer jams with paper", 1, NULL);
    json_object *r = search(&f, "acme", "printer jams paper tray", 20, NULL);
    cr_assert_eq(data_len(r), 20); /* two batches */
    double prev = 2;
    for (size_t i = 0; i < 20; i++) {
        json_object *v;
        cr_assert_str_eq(get_s(data_at(r, i), "tenant"), "acme");
        cr_assert(json_object_object_get_ex(data_at(r, i), "score", &v));
        cr_assert_leq(json_object_get_double(v), prev + 1e-9, "results out of order at %zu", i);
        prev = json_object_get_double(v);
        for (size_t j = 0; j < i; j++) cr_assert_neq(get_i(data_at(r, j), "id"), get_i(data_at(r, i), "id"));
    }
    int64_t best = get_i(data_at(r, 0), "id");
    json_object_put(r);
    /* the best row disappears without the index knowing: the next hits answer */
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM memory_episodes WHERE id = %lld", (long long)best);
    cr_assert_eq(mk_store_exec(f.c, sql), 0);
    r = search(&f, "acme", "printer jams paper tray", 3, NULL);
    cr_assert_eq(data_len(r), 3);
    for (size_t i = 0; i < 3; i++) cr_assert_neq(get_i(data_at(r, i), "id"), best);
    json_object_put(r);
    /* the ids-only search still sees the stale vector: that is what hydration is for */
    int64_t hit[3];
    size_t n = 0;
    cr_assert_eq(mk_memory_episode_search_ids(f.mem, "acme", "printer jams paper tray", 3, hit, NULL, &n), 0);
    cr_assert_eq(n, 3);
    /* one transaction per call, never the caller's */
    cr_assert_eq(mk_store_begin(f.c), 0);
    struct mk_memory_episode ep = {.tenant = "acme", .task = "inside a transaction", .reward = 1};
    int64_t id = 0;
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, &id, NULL), MK_EINVAL);
    cr_assert_eq(mk_store_rollback(f.c), 0);
    cr_assert_eq(mk_memory_episode_add(f.mem, f.c, &ep, &id, NULL), 0);
    cr_assert_gt(id, ids[23]);
    fx_close(&f);
}

/* The per-thread cache of parsed session records is checked against the kv on every
 * read: a write by another memory on the same kv (another node's, in effect) shows at
 * once; a value a caller keeps a reference to never changes under it; a tiny budget
 * or none at all changes nothing but speed. */
static void session_state_is(struct mk_memory *m, const char *id, const char *key, int64_t want)
{
    struct got g = {0};
    cr_assert_eq(mk_memory_session_get(m, "acme", id, got_cb, &g), 0);
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.rc, 0);
    json_object *state, *v;
    cr_assert(json_object_object_get_ex(g.v, "state", &state));
    cr_assert(json_object_object_get_ex(state, key, &v), "no %s in %s", key, json_object_to_json_string(g.v));
    cr_assert_eq(json_object_get_int64(v), want);
    json_object_put(g.v);
}

static void put_state(struct mk_memory *m, const char *id, const char *key, int64_t val)
{
    struct got g = {0};
    json_object *patch = json_object_new_object();
    json_object_object_add(patch, key, json_object_new_int64(val));
    cr_assert_eq(mk_memory_session_put_state(m, "acme", id, patch, got_cb, &g), 0);
    json_object_put(patch);
    cr_assert_eq(g.rc, 0);
    json_object_put(g.v);
}

static void *reader_thread(void *arg)
{
    struct fx *f = arg;
    /* this thread's cache is empty: it parses, then hits */
    for (int i = 0; i < 3; i++) session_state_is(f->mem, "shared-session", "step", 7);
    return NULL;
}

static void case_session_cache(const char *url)
{
    struct fx a;
    fx_open(&a, url);
    /* a second memory on the same in-process kv: a second node, as far as caching goes */
    struct mk_memory *b = NULL;
    struct mk_memory_options ob = {.clock_ms = fx_clock};
    cr_assert_eq(mk_memory_open(a.store, a.kv, &ob, &b, NULL), 0);
    struct got g = {0};
    cr_assert_eq(mk_memory_session_create_id(a.mem, "acme", "shared-session", NULL, "triage", 0, NULL, got_cb, &g), 0);
    cr_assert_eq(g.rc, 0);
    put_state(a.mem, "shared-session", "step", 1);
    session_state_is(a.mem, "shared-session", "step", 1);
    session_state_is(a.mem, "shared-session", "step", 1); /* from the cache */
    session_state_is(b, "shared-session", "step", 1);
    put_state(b, "shared-session", "step", 2);
    session_state_is(a.mem, "shared-session", "step", 2); /* the kv's bytes changed */

    /* a kept reference keeps its value */
    struct got keep = {0};
    cr_assert_eq(mk_memory_session_get(a.mem, "acme", "shared-session", got_cb, &keep), 0);
    put_state(a.mem, "shared-session", "step", 3);
    session_state_is(a.mem, "shared-session", "step", 3);
    json_object *state, *v;
    cr_assert(json_object_object_get_ex(keep.v, "state", &state));
    cr_assert(json_object_object_get_ex(state, "step", &v));
    cr_assert_eq(json_object_get_int(v), 2);
    json_object_put(keep.v);

    /* deleted elsewhere: gone here too */
    cr_assert_eq(mk_memory_session_delete(b, "acme", "shared-session", got_cb, &g), 0);
    cr_assert_eq(g.rc, 0);
    cr_assert_eq(mk_memory_session_get(a.mem, "acme", "shared-session", got_cb, &g), 0);
    cr_assert_eq(g.rc, MK_ENOTFOUND);

    /* another thread has its own cache and sees the same */
    cr_assert_eq(mk_memory_session_create_id(a.mem, "acme", "shared-session", NULL, NULL, 0, NULL, got_cb, &g), 0);
    put_state(a.mem, "shared-session", "step", 7);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_thread, &a), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    mk_memory_free(b);

    /* budgets: none, one too small for any record, and room for about three */
    const int64_t budgets[] = {-1, 1, 8 * 1024};
    for (size_t k = 0; k < sizeof budgets / sizeof budgets[0]; k++) {
        struct mk_memory_options o = {.clock_ms = fx_clock, .session_cache_bytes = budgets[k]};
        cr_assert_eq(mk_memory_open(a.store, a.kv, &o, &b, NULL), 0);
        char id[32];
        for (int i = 0; i < 12; i++) {
            snprintf(id, sizeof id, "s-%zu-%d", k, i);
            cr_assert_eq(mk_memory_session_create_id(b, "acme", id, NULL, NULL, 0, NULL, got_cb, &g), 0);
            put_state(b, id, "n", i);
        }
        for (int round = 0; round < 2; round++)
            for (int i = 0; i < 12; i++) {
                snprintf(id, sizeof id, "s-%zu-%d", k, i);
                session_state_is(b, id, "n", i);
            }
        mk_memory_free(b);
    }

    /* ids: checked a word at a time, so every position of a bad byte is tried */
    char bad[40];
    for (size_t pos = 0; pos < 20; pos++) {
        memset(bad, 'a', sizeof bad);
        bad[24] = '\0';
        bad[pos] = 0x7f;
        cr_assert_eq(mk_memory_session_get(a.mem, "acme", bad, got_cb, &g), MK_EINVAL, "DEL at %zu", pos);
        bad[pos] = 0x1f;
        cr_assert_eq(mk_memory_session_get(a.mem, bad, "x", got_cb, &g), MK_EINVAL, "control at %zu", pos);
        bad[pos] = ' ';
        cr_assert_eq(mk_memory_session_get(a.mem, bad, "x", got_cb, &g), 0, "space at %zu", pos);
        cr_assert_eq(g.rc, MK_ENOTFOUND);
        memcpy(bad + pos, "\xd0\xb6", 2); /* UTF-8 */
        cr_assert_eq(mk_memory_session_get(a.mem, "acme", bad, got_cb, &g), 0, "utf-8 at %zu", pos);
        bad[pos] = (char)0xff;
        cr_assert_eq(mk_memory_session_get(a.mem, "acme", bad, got_cb, &g), MK_EINVAL, "bad utf-8 at %zu", pos);
    }
    char longid[300];
    memset(longid, 'x', sizeof longid);
    longid[MK_MEMORY_MAX_ID_BYTES] = '\0';
    cr_assert_eq(mk_memory_session_get(a.mem, "acme", longid, got_cb, &g), 0);
    longid[MK_MEMORY_MAX_ID_BYTES] = 'x';
    longid[MK_MEMORY_MAX_ID_BYTES + 1] = '\0';
    cr_assert_eq(mk_memory_session_get(a.mem, "acme", longid, got_cb, &g), MK_EINVAL);
    /* the longest tenant and id together do not fit a kv key: refused, not truncated */
    longid[MK_MEMORY_MAX_ID_BYTES] = '\0';
    cr_assert_eq(mk_memory_session_get(a.mem, longid, longid, got_cb, &g), MK_EINVAL);
    json_object_put(g.v);
    fx_close(&a);
}

/* Two memories on one store: the second sees the first's writes through the change
 * log; an index saved at close is loaded at the next open and caught up. */
static void case_sync_and_persist(const char *url, const char *dir)
{
    struct fx a, b;
    fx_open_dir(&a, url, dir);
    fx_open(&b, url);
    int64_t id = add_ep(&a, "acme", "u1", "Keyboard types wrong letters", 1, NULL);
    json_object *r = search(&b, "acme", "keyboard wrong letters", 1, NULL);
    cr_assert_eq(data_len(r), 0); /* not replayed yet */
    json_object_put(r);
    size_t applied = 0;
    cr_assert_eq(mk_memory_sync(b.mem, b.c, &applied), 0);
    cr_assert_eq(applied, 1);
    r = search(&b, "acme", "keyboard wrong letters", 1, NULL);
    cr_assert_eq(get_i(data_at(r, 0), "id"), id);
    json_object_put(r);
    cr_assert_eq(mk_memory_episode_delete(b.mem, b.c, "acme", id), 0);
    cr_assert_eq(mk_memory_sync(a.mem, a.c, &applied), 0);
    cr_assert_eq(applied, 1);
    cr_assert_eq(mk_memory_indexed(a.mem, MK_MEMORY_EPISODES), 0);
    int64_t id2 = add_ep(&a, "acme", "u1", "Mouse cursor jumps around", 1, NULL);
    fx_close(&a); /* saves the index */
    int64_t id3 = add_ep(&b, "acme", "u1", "Monitor flickers at 60 Hz", 1, NULL);
    fx_open_dir(&a, url, dir); /* loads the file, replays id3 */
    cr_assert_eq(mk_memory_indexed(a.mem, MK_MEMORY_EPISODES), 2);
    r = search(&a, "acme", "monitor flicker", 1, NULL);
    cr_assert_eq(get_i(data_at(r, 0), "id"), id3);
    json_object_put(r);
    r = search(&a, "acme", "mouse cursor", 1, NULL);
    cr_assert_eq(get_i(data_at(r, 0), "id"), id2);
    json_object_put(r);
    fx_close(&a);
    fx_close(&b);
}

#endif
