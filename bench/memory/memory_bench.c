/*
 * memory_bench: agent memory speed and recall, the numbers bench/memory/README.md
 * reports next to agentdb's (peers/agentdb_bench.mjs runs the same operations on the
 * same data, exported by this program with --export).
 *
 *   memory_bench --train train.csv --test test.csv --dir SCRATCH [--export DIR]
 *                [--redis redis://127.0.0.1:PORT] [--n 100000] [--queries 2000]
 *                [--only all|insert|search|sessions] [--reuse] [--ef N] [--efc N]
 *
 * --only runs one part (insert: the in-memory rate only); --reuse keeps the search
 * databases and their index files in SCRATCH and reopens them on the next run, so a
 * profiler (valgrind --tool=callgrind --toggle-collect=mk_memory_episode_search_ids)
 * sees searches without the build; --ef / --efc override the index beams.
 *
 * Data: BANKING77 train texts are the episodes' tasks (their intent is the episode's
 * tag); test texts are the queries. Sizes beyond the 10k train texts are made of
 * pairs of train texts ("A B", pairs drawn by a fixed generator), so every run and
 * the peer see the same 100k tasks. The texts are read at run time and never stored
 * anywhere but SCRATCH/EXPORT (temporary directories the caller removes).
 *
 * Measured (one thread; run under `taskset -c 0` for "one core"):
 *   insert      episodes/s, one durable transaction each: SQLite file with
 *               synchronous=FULL (survives power loss), NORMAL (survives kill -9), and
 *               an in-memory database (what agentdb's sql.js is); bulk batches too;
 *   search      latency p50/p99 at 10k and 100k: ids only (embed the query + HNSW) and
 *               full (+ row reads and JSON, the HTTP API's path), k = 5; wall and
 *               thread CPU time (the full search runs right after the ids search of
 *               the same query, so it finds the graph in cache);
 *   recall@5    share of test queries with an episode of the same intent in the top 5
 *               (10k train texts stored);
 *   sessions    state writes/s and reads/s with 10,000 live sessions, in-process kv and,
 *               with --redis, Redis (pipelined, 64 requests in flight).
 * Output: one JSON object on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "kv/mk_kv.h"
#include "memory/mk_memory.h"
#include "store/mk_store.h"

#include "bench_data.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void export_data(const char *dir, char **tasks, const char **intents, size_t n, const struct row *test,
                        size_t ntest)
{
    char path[512];
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/episodes.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; f && i < n; i++) {
        fputs("{\"task\":", f);
        json_str(f, tasks[i]);
        fputs(",\"intent\":", f);
        json_str(f, intents[i]);
        fputs("}\n", f);
    }
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/queries.jsonl", dir);
    f = fopen(path, "w");
    for (size_t i = 0; f && i < ntest; i++) {
        fputs("{\"text\":", f);
        json_str(f, test[i].text);
        fputs(",\"intent\":", f);
        json_str(f, test[i].intent);
        fputs("}\n", f);
    }
    if (f) fclose(f);
}

struct env {
    struct mk_store *store;
    struct mk_memory *mem;
    struct mk_store_conn *c;
};

/* --ef / --efc: index beams (0 = the memory's defaults) */
static uint32_t bench_ef, bench_efc;

static void env_open_dir(struct env *e, const char *url, enum mk_store_sync sync, struct mk_kv *kv,
                         const char *index_dir)
{
    struct mk_store_options so = {.sync = sync};
    struct mk_memory_options mo = {.data_dir = index_dir, .ef_search = bench_ef, .ef_construction = bench_efc};
    mk_buf err = MK_BUF_INIT;
    if (mk_store_open(url, &so, &e->store, &err) != 0 || mk_memory_open(e->store, kv, &mo, &e->mem, &err) != 0 ||
        mk_store_acquire(e->store, &e->c) != 0) {
        fprintf(stderr, "memory_bench: %s: %s\n", url, err.data ? err.data : "open failed");
        exit(1);
    }
    mk_buf_release(&err);
}

static void env_open(struct env *e, const char *url, enum mk_store_sync sync, struct mk_kv *kv)
{
    env_open_dir(e, url, sync, kv, NULL);
}

static void env_close(struct env *e)
{
    mk_store_release(e->store, e->c);
    mk_memory_free(e->mem);
    mk_store_free(e->store);
}

/* Single durable inserts: episodes per second. */
static double insert_cpu_rate;

static double insert_rate(const char *url, enum mk_store_sync sync, char **tasks, const char **intents, size_t n)
{
    struct env e;
    env_open(&e, url, sync, NULL);
    double t0 = now_s(), c0 = cpu_s();
    for (size_t i = 0; i < n; i++) {
        const char *tag[1] = {intents[i]};
        struct mk_memory_episode ep = {.tenant = "bench", .session = "s", .task = tasks[i], .tried = "tried",
                                       .outcome = "outcome", .critique = "critique", .reward = 1, .tags = tag,
                                       .ntags = 1};
        if (mk_memory_episode_add(e.mem, e.c, &ep, NULL, NULL) != 0) {
            fprintf(stderr, "memory_bench: insert failed\n");
            exit(1);
        }
    }
    double dt = now_s() - t0;
    insert_cpu_rate = (double)n / (cpu_s() - c0);
    env_close(&e);
    return (double)n / dt;
}

static void bulk(struct env *e, char **tasks, const char **intents, size_t from, size_t to, int64_t *ids)
{
    enum { B = 1000 };
    struct mk_memory_episode *eps = calloc(B, sizeof *eps);
    const char **tags = calloc(B, sizeof *tags);
    for (size_t i = from; i < to; i += B) {
        size_t n = to - i < B ? to - i : B;
        for (size_t j = 0; j < n; j++) {
            tags[j] = intents[i + j];
            eps[j] = (struct mk_memory_episode){.tenant = "bench", .session = "s", .task = tasks[i + j],
                                                .tried = "tried", .outcome = "outcome", .critique = "critique",
                                                .reward = 1, .tags = &tags[j], .ntags = 1};
        }
        if (mk_memory_episode_add_batch(e->mem, e->c, eps, n, ids + i, NULL) != 0) {
            fprintf(stderr, "memory_bench: batch failed\n");
            exit(1);
        }
    }
    free(eps);
    free(tags);
}

struct search_result {
    double ids_p50, ids_p99, full_p50, full_p99, cpu_p50, cpu_p99, full_cpu_p50, full_cpu_p99, recall5;
};

static struct search_result search_bench(struct env *e, const struct row *test, size_t nq, const int64_t *ids,
                                         const char **intents, size_t nstored)
{
    struct search_result r = {0};
    double *lat = malloc(nq * sizeof *lat), *lat2 = malloc(nq * sizeof *lat2), *lat3 = malloc(nq * sizeof *lat3),
           *lat4 = malloc(nq * sizeof *lat4);
    size_t hits = 0;
    /* warm-up: page in the index and the statement cache */
    for (size_t i = 0; i < 50 && i < nq; i++) {
        int64_t out[5];
        size_t n;
        mk_memory_episode_search_ids(e->mem, "bench", test[i].text, 5, out, NULL, &n);
    }
    for (size_t i = 0; i < nq; i++) {
        int64_t out[5];
        size_t n = 0;
        double t0 = now_s(), c0 = cpu_s();
        mk_memory_episode_search_ids(e->mem, "bench", test[i].text, 5, out, NULL, &n);
        lat3[i] = cpu_s() - c0;
        lat[i] = now_s() - t0;
        bool hit = false;
        /* ids are consecutive from ids[0]: map back to the stored intent */
        for (size_t j = 0; j < n && !hit; j++) {
            int64_t idx = out[j] - ids[0];
            if (idx >= 0 && (size_t)idx < nstored && strcmp(intents[idx], test[i].intent) == 0) hit = true;
        }
        hits += hit;
        json_object *res = NULL;
        t0 = now_s();
        c0 = cpu_s();
        mk_memory_episode_search(e->mem, e->c, "bench", test[i].text, 5, NULL, &res, NULL);
        lat4[i] = cpu_s() - c0;
        lat2[i] = now_s() - t0;
        json_object_put(res);
    }
    r.recall5 = (double)hits / (double)nq;
    r.ids_p50 = pct(lat, nq, 0.50) * 1e6;
    r.ids_p99 = pct(lat, nq, 0.99) * 1e6;
    r.full_p50 = pct(lat2, nq, 0.50) * 1e6;
    r.full_p99 = pct(lat2, nq, 0.99) * 1e6;
    r.cpu_p50 = pct(lat3, nq, 0.50) * 1e6;
    r.cpu_p99 = pct(lat3, nq, 0.99) * 1e6;
    r.full_cpu_p50 = pct(lat4, nq, 0.50) * 1e6;
    r.full_cpu_p99 = pct(lat4, nq, 0.99) * 1e6;
    free(lat4);
    free(lat3);
    free(lat);
    free(lat2);
    return r;
}

/* ---- sessions ------------------------------------------------------------------------ */

struct sess_bench {
    struct mk_memory *mem;
    char (*ids)[24];
    size_t nids;
    size_t issued, done, total, inflight;
    bool write;
    int errors;
    uv_loop_t *loop;
};

static void sess_issue(struct sess_bench *b);

static void sess_cb(int rc, json_object *v, void *arg)
{
    struct sess_bench *b = arg;
    if (rc) b->errors++;
    b->done++;
    b->inflight--;
    if (b->loop) sess_issue(b); /* redis: keep the window full */
}

static void sess_issue(struct sess_bench *b)
{
    static json_object *patch;
    if (!patch) {
        patch = json_object_new_object();
        json_object_object_add(patch, "step", json_object_new_int(3));
        json_object_object_add(patch, "last_intent", json_object_new_string("card_arrival"));
    }
    size_t window = b->loop ? 64 : 1;
    while (b->issued < b->total && b->inflight < window) {
        const char *id = b->ids[lcg() % b->nids];
        b->issued++;
        b->inflight++;
        int rc = b->write ? mk_memory_session_put_state(b->mem, "bench", id, patch, sess_cb, b)
                          : mk_memory_session_get(b->mem, "bench", id, sess_cb, b);
        if (rc) {
            b->errors++;
            b->inflight--;
            b->done++;
        }
        if (!b->loop) break; /* in-process: the callback already ran */
    }
}

static void sess_created(int rc, json_object *v, void *arg)
{
    char *out = arg;
    json_object *id;
    if (rc == 0 && json_object_object_get_ex(v, "id", &id)) snprintf(out, 24, "%s", json_object_get_string(id));
}

static void tick(uv_timer_t *t) { (void)t; }

/* Rate of reads and writes over nsess live sessions. */
static void session_bench(const char *kv_url, struct env *e, size_t nsess, size_t ops, double *wps, double *rps,
                          int *errors)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mk_kv *kv = NULL;
    /* a shared, busy machine can stall redis-server for a while: a generous command
     * timeout keeps one stall from failing the run (errors are counted anyway) */
    struct mk_kv_options ko = {.command_timeout_ms = 10000};
    if (mk_kv_open(&loop, kv_url, &ko, &kv, NULL) != 0) exit(1);
    bool remote = strcmp(mk_kv_backend_name(kv), "memory") != 0;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    double deadline = now_s() + 5;
    while (!mk_kv_ready(kv) && now_s() < deadline) uv_run(&loop, UV_RUN_ONCE);
    struct mk_memory *mem = NULL;
    struct mk_memory_options o = {0};
    if (mk_memory_open(e->store, kv, &o, &mem, NULL) != 0) exit(1);
    struct sess_bench b = {.mem = mem, .nids = nsess, .loop = remote ? &loop : NULL};
    b.ids = calloc(nsess, sizeof *b.ids);
    for (size_t i = 0; i < nsess; i++) {
        json_object *st = json_object_new_object();
        json_object_object_add(st, "lang", json_object_new_string("ru"));
        mk_memory_session_create(mem, NULL, "bench", NULL, "triage", 0, st, sess_created, b.ids[i]);
        json_object_put(st);
        if (remote && i % 256 == 255) uv_run(&loop, UV_RUN_NOWAIT);
    }
    while (remote && !b.ids[nsess - 1][0] && now_s() < deadline + 30) uv_run(&loop, UV_RUN_ONCE);
    for (int pass = 0; pass < 2; pass++) {
        b.write = pass == 0;
        b.issued = b.done = b.inflight = 0;
        b.total = ops;
        double t0 = now_s(), c0 = cpu_s();
        if (remote) {
            sess_issue(&b);
            while (b.done < b.total) uv_run(&loop, UV_RUN_ONCE);
        } else {
            while (b.done < b.total) sess_issue(&b);
        }
        /* in-process: the thread's CPU time (the machine may be shared); Redis: wall
         * time, since the work is the server's and the network's */
        double rate = (double)ops / (remote ? now_s() - t0 : cpu_s() - c0);
        if (b.write) *wps = rate;
        else *rps = rate;
    }
    *errors = b.errors;
    mk_memory_free(mem);
    mk_kv_free(kv);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(b.ids);
}

/* The search database of n episodes: built with batches, or (--reuse) reopened from an
 * earlier run's SCRATCH, index file included, so profiling runs skip the build. Ids
 * are consecutive (a fresh database numbers from 1). */
static void search_env(struct env *e, const char *dir, const char *name, bool reuse, char **tasks,
                       const char **intents, size_t from_n, size_t n, int64_t *ids, double *bulk_rate)
{
    char url[600], ixdir[600];
    snprintf(url, sizeof url, "sqlite://%s/%s.db", dir, name);
    snprintf(ixdir, sizeof ixdir, "%s/%s-index", dir, name);
    env_open_dir(e, url, MK_STORE_SYNC_NORMAL, NULL, reuse ? ixdir : NULL);
    size_t have = mk_memory_indexed(e->mem, MK_MEMORY_EPISODES);
    if (reuse && have == n) {
        for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i + 1;
        *bulk_rate = 0;
        return;
    }
    if (have != from_n) {
        fprintf(stderr, "memory_bench: %s holds %zu episodes; remove SCRATCH or drop --reuse\n", name, have);
        exit(1);
    }
    double t0 = now_s();
    bulk(e, tasks, intents, from_n, n, ids);
    *bulk_rate = (double)(n - from_n) / (now_s() - t0);
}

int main(int argc, char **argv)
{
    const char *train_path = NULL, *test_path = NULL, *dir = NULL, *export_dir = NULL, *redis = NULL;
    const char *only = "all";
    size_t nmax = 100000, nq = 2000;
    bool reuse = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only-sessions")) only = "sessions";
        else if (!strcmp(argv[i], "--reuse")) reuse = true;
        else if (i + 1 >= argc) break;
        else if (!strcmp(argv[i], "--train")) train_path = argv[++i];
        else if (!strcmp(argv[i], "--test")) test_path = argv[++i];
        else if (!strcmp(argv[i], "--dir")) dir = argv[++i];
        else if (!strcmp(argv[i], "--export")) export_dir = argv[++i];
        else if (!strcmp(argv[i], "--redis")) redis = argv[++i];
        else if (!strcmp(argv[i], "--n")) nmax = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--queries")) nq = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--only")) only = argv[++i];
        else if (!strcmp(argv[i], "--ef")) bench_ef = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--efc")) bench_efc = (uint32_t)strtoul(argv[++i], NULL, 10);
    }
    bool all = !strcmp(only, "all"), do_insert = all || !strcmp(only, "insert"),
         do_search = all || !strcmp(only, "search"), do_sessions = all || !strcmp(only, "sessions");
    if (!train_path || !test_path || !dir || nmax < 10000 || !(do_insert || do_search || do_sessions)) {
        fprintf(stderr, "usage: memory_bench --train train.csv --test test.csv --dir SCRATCH [--export DIR]"
                        " [--redis URL] [--n N>=10000] [--queries N] [--only all|insert|search|sessions]"
                        " [--reuse] [--ef N] [--efc N]\n");
        return 2;
    }
    mk_log_set_level(MK_LOG_WARN);
    size_t ntrain, ntest;
    struct row *train = load_csv(train_path, &ntrain), *test = load_csv(test_path, &ntest);
    if (nq > ntest) nq = ntest;
    const char **intents;
    char **tasks = make_tasks(train, ntrain, nmax, &intents);
    if (export_dir) export_data(export_dir, tasks, intents, nmax, test, nq);
    mkdir(dir, 0700);
    char url[600];
    printf("{\n  \"embedder\": \"mayak-embed-256\"");

    if (do_insert) {
        snprintf(url, sizeof url, "sqlite://%s/full.db", dir);
        double ins_full = all ? insert_rate(url, MK_STORE_SYNC_FULL, tasks, intents, 2000) : 0;
        snprintf(url, sizeof url, "sqlite://%s/normal.db", dir);
        double ins_normal = all ? insert_rate(url, MK_STORE_SYNC_NORMAL, tasks, intents, 10000) : 0;
        double ins_mem = insert_rate("sqlite::memory:", MK_STORE_SYNC_NORMAL, tasks, intents, 10000);
        double ins_mem_cpu = insert_cpu_rate;
        printf(",\n  \"insert_per_s\": {\"sqlite_full\": %.0f, \"sqlite_normal\": %.0f, \"sqlite_memory\": %.0f,"
               " \"sqlite_memory_cpu\": %.0f}",
               ins_full, ins_normal, ins_mem, ins_mem_cpu);
        fflush(stdout);
    }

    struct env e;
    bool have_env = false;
    if (do_search) {
        int64_t *ids = malloc(nmax * sizeof *ids);
        size_t n10 = ntrain < 10000 ? ntrain : 10000;
        double bulk10 = 0, bulk100 = 0;
        struct search_result s10, s100;
        if (reuse) {
            /* two databases, so each size can be reopened on its own */
            struct env e10;
            search_env(&e10, dir, "search10k", true, tasks, intents, 0, n10, ids, &bulk10);
            s10 = search_bench(&e10, test, nq, ids, intents, n10);
            env_close(&e10);
            search_env(&e, dir, "search", true, tasks, intents, 0, nmax, ids, &bulk100);
        } else {
            search_env(&e, dir, "search", false, tasks, intents, 0, n10, ids, &bulk10);
            s10 = search_bench(&e, test, nq, ids, intents, n10);
            double t0 = now_s();
            bulk(&e, tasks, intents, n10, nmax, ids);
            bulk100 = (double)(nmax - n10) / (now_s() - t0);
        }
        s100 = search_bench(&e, test, nq, ids, intents, nmax);
        have_env = true;
        free(ids);
        printf(",\n  \"bulk_insert_per_s\": {\"first_10k\": %.0f, \"to_%zu\": %.0f}", bulk10, nmax, bulk100);
        printf(",\n  \"search_us\": {\"10k\": {\"ids_p50\": %.1f, \"ids_p99\": %.1f, \"cpu_p50\": %.1f,"
               " \"cpu_p99\": %.1f, \"full_p50\": %.1f, \"full_p99\": %.1f, \"full_cpu_p50\": %.1f,"
               " \"full_cpu_p99\": %.1f},"
               " \"%zu\": {\"ids_p50\": %.1f, \"ids_p99\": %.1f, \"cpu_p50\": %.1f, \"cpu_p99\": %.1f,"
               " \"full_p50\": %.1f, \"full_p99\": %.1f, \"full_cpu_p50\": %.1f, \"full_cpu_p99\": %.1f}}",
               s10.ids_p50, s10.ids_p99, s10.cpu_p50, s10.cpu_p99, s10.full_p50, s10.full_p99, s10.full_cpu_p50,
               s10.full_cpu_p99, nmax, s100.ids_p50, s100.ids_p99, s100.cpu_p50, s100.cpu_p99, s100.full_p50,
               s100.full_p99, s100.full_cpu_p50, s100.full_cpu_p99);
        printf(",\n  \"recall_at_5\": {\"10k_train\": %.4f, \"%zu\": %.4f, \"queries\": %zu}", s10.recall5,
               nmax, s100.recall5, nq);
        fflush(stdout);
    }

    if (do_sessions) {
        if (!have_env) {
            snprintf(url, sizeof url, "sqlite://%s/sessions.db", dir);
            env_open(&e, url, MK_STORE_SYNC_NORMAL, NULL);
            have_env = true;
        }
        double mw = 0, mr = 0, rw = 0, rr = 0;
        int merr = 0, rerr = 0;
        session_bench("memory", &e, 10000, 200000, &mw, &mr, &merr);
        if (redis) session_bench(redis, &e, 10000, 200000, &rw, &rr, &rerr);
        printf(",\n  \"sessions_per_s\": {\"memory_write\": %.0f, \"memory_read\": %.0f, \"memory_errors\": %d",
               mw, mr, merr);
        if (redis) printf(", \"redis_write\": %.0f, \"redis_read\": %.0f, \"redis_errors\": %d", rw, rr, rerr);
        printf("}");
    }
    if (have_env) env_close(&e);
    printf("\n}\n");
    for (size_t i = 0; i < nmax; i++) free(tasks[i]);
    free(tasks);
    free(intents);
    for (size_t i = 0; i < ntrain; i++) free(train[i].text), free(train[i].intent);
    for (size_t i = 0; i < ntest; i++) free(test[i].text), free(test[i].intent);
    free(train);
    free(test);
    return 0;
}
