/* Agent memory on SQLite: the shared cases (memory_cases.h) plus what only the
 * embedded store shows (index files, the summariser, token estimates). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory_cases.h"

static char dir[64];
static char url[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/mk-memory-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(url, sizeof url, "sqlite://%s/mayak.db", dir);
}

static void teardown(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(memory_sqlite, .init = setup, .fini = teardown, .timeout = 120);

Test(memory_sqlite, episodes) { case_episodes(url); }
Test(memory_sqlite, episode_validation) { case_episode_validation(url); }
Test(memory_sqlite, skills) { case_skills(url); }
Test(memory_sqlite, facts) { case_facts(url); }
Test(memory_sqlite, links) { case_links(url); }
Test(memory_sqlite, history) { case_history(url); }
Test(memory_sqlite, sweep_and_erase) { case_sweep_and_erase(url); }
Test(memory_sqlite, erase_hooks) { case_erase_hooks(url); }
Test(memory_sqlite, sessions) { case_sessions(url); }
Test(memory_sqlite, session_cache) { case_session_cache(url); }
Test(memory_sqlite, search_hydration) { case_search_hydration(url); }
Test(memory_sqlite, sync_and_persist)
{
    char idx[96];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    case_sync_and_persist(url, idx);
}

/* A corrupt or foreign index file is rebuilt from the store, never trusted. */
Test(memory_sqlite, bad_index_file_is_rebuilt)
{
    char idx[96];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    struct fx f;
    fx_open_dir(&f, url, idx);
    add_ep(&f, "acme", "u1", "Scanner jams on every page", 1, NULL);
    fx_close(&f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "for f in %s/memory-episodes-*.hnsw; do printf garbage > \"$f\"; done", idx);
    cr_assert_eq(system(cmd), 0);
    fx_open_dir(&f, url, idx);
    cr_assert_eq(mk_memory_indexed(f.mem, MK_MEMORY_EPISODES), 1);
    json_object *r = search(&f, "acme", "scanner jams", 1, NULL);
    cr_assert_eq(data_len(r), 1);
    json_object_put(r);
    fx_close(&f);
}

Test(memory_sqlite, token_estimate)
{
    cr_assert_eq(mk_memory_estimate_tokens("", 0), 0);
    int en = mk_memory_estimate_tokens("The quick brown fox jumps over the lazy dog.", 44);
    cr_assert(en >= 9 && en <= 16, "%d", en);
    const char *ru = "Съешь же ещё этих мягких французских булок, да выпей чаю.";
    int r = mk_memory_estimate_tokens(ru, strlen(ru));
    cr_assert(r >= 12 && r <= 30, "%d", r);
    cr_assert_eq(mk_memory_estimate_tokens("\xff\xfe", 2), 2); /* bytes, not a crash */
}

Test(memory_sqlite, extractive_summary)
{
    const char *text =
        "Hello. Thanks. The VPN certificate on the laptop expired yesterday. "
        "Okay. The certificate was renewed and the VPN connects again. Bye.";
    mk_buf out = MK_BUF_INIT;
    cr_assert_eq(mk_memory_summarise_extractive(text, strlen(text), 20, &out), 0);
    cr_assert(strstr(out.data, "certificate"), "%s", out.data);
    cr_assert_null(strstr(out.data, "Hello"));
    cr_assert_leq(mk_memory_estimate_tokens(out.data, out.len), 22);
    mk_buf_reset(&out);
    cr_assert_eq(mk_memory_summarise_extractive(text, strlen(text), 0, &out), 0);
    cr_assert_eq(out.len, 0);
    mk_buf_release(&out);
}

static int summariser_calls;
static int fake_llm(void *arg, const char *prior, const struct mk_memory_turn *turns, size_t n, uint32_t max_tokens,
                    mk_buf *out)
{
    (void)arg;
    summariser_calls++;
    return mk_buf_printf(out, "%s[%zu turns]", prior, n);
}

Test(memory_sqlite, summariser_hook)
{
    struct mk_store *s;
    cr_assert_eq(mk_store_open(url, NULL, &s, NULL), 0);
    struct mk_memory_options o = {.summarise = fake_llm};
    struct mk_memory *m;
    cr_assert_eq(mk_memory_open(s, NULL, &o, &m, NULL), 0);
    struct mk_store_conn *c;
    cr_assert_eq(mk_store_acquire(s, &c), 0);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(mk_memory_history_append(m, c, "t", "s", NULL, "user", "a fairly long turn of text here", NULL,
                                              NULL, NULL), 0);
    json_object *w;
    cr_assert_eq(mk_memory_history_window(m, c, "t", "s", 64, &w), 0);
    cr_assert_eq(summariser_calls, 1);
    cr_assert(strstr(get_s(w, "summary"), "turns]"));
    json_object_put(w);
    mk_store_release(s, c);
    mk_memory_free(m);
    mk_store_free(s);
}

Test(memory_sqlite, options_are_checked)
{
    struct mk_store *s;
    cr_assert_eq(mk_store_open(url, NULL, &s, NULL), 0);
    struct mk_memory *m = NULL;
    struct mk_memory_options o = {.session_ttl_ms = 10};
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_memory_open(s, NULL, &o, &m, &err), MK_EINVAL);
    cr_assert_null(m);
    cr_assert(strstr(err.data, "TTL"));
    mk_buf_release(&err);
    struct mk_memory_options d = {.embed_dim = 3};
    cr_assert_neq(mk_memory_open(s, NULL, &d, &m, NULL), 0);
    mk_store_free(s);
}
