/*
 * memory_cli: `mayak memory ...` — agent memory from the command line, for operators
 * (erasure requests, retention runs, looking things up) and for imports.
 *
 * It opens the same store the server uses (<data_dir>/mayak.db unless --store) and
 * writes through the change log, so a running server picks up what the CLI changed
 * within its sync interval. Live sessions live in kv: `erase` deletes them too when
 * given the server's kv (--kv or MAYAK_MEMORY_KV), otherwise it says it did not.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "kv/mk_kv.h"
#include "memory/memory_int.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: mayak memory <command> [--store URL] [options]\n"
            "  stats   --tenant T                          counts of what the tenant's memory holds\n"
            "  search  --tenant T --query Q [--k N]        episodes most similar to Q\n"
            "  add     --tenant T --task X --reward R [--tried X] [--outcome X] [--critique X]\n"
            "          [--user U] [--session S] [--tag T]...  store one episode\n"
            "  import  --tenant T FILE.jsonl               episodes, one JSON object per line\n"
            "  facts   --tenant T [--subject S] [--history] facts (open ones, or every version)\n"
            "  erase   --tenant T --user U [--kv URL]      erase everything about a user; prints the report\n"
            "  sweep                                       apply retention now; prints what went\n"
            "  reindex                                     rebuild the meaning indexes from the store\n");
    return f == stderr ? 2 : 0;
}

struct cli {
    const char *cmd, *store, *tenant, *query, *task, *tried, *outcome, *critique, *user, *session, *subject, *kv,
        *file;
    const char *tags[MK_MEMORY_MAX_TAGS];
    size_t ntags;
    double reward;
    bool has_reward, history;
    long k;
};

static void print_json(json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int parse(int argc, char **argv, struct cli *c)
{
    c->k = 5;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--store")) slot = &c->store;
        else if (!strcmp(a, "--tenant")) slot = &c->tenant;
        else if (!strcmp(a, "--query")) slot = &c->query;
        else if (!strcmp(a, "--task")) slot = &c->task;
        else if (!strcmp(a, "--tried")) slot = &c->tried;
        else if (!strcmp(a, "--outcome")) slot = &c->outcome;
        else if (!strcmp(a, "--critique")) slot = &c->critique;
        else if (!strcmp(a, "--user")) slot = &c->user;
        else if (!strcmp(a, "--session")) slot = &c->session;
        else if (!strcmp(a, "--subject")) slot = &c->subject;
        else if (!strcmp(a, "--kv")) slot = &c->kv;
        if (slot || !strcmp(a, "--config") || !strcmp(a, "-c") || !strcmp(a, "--tag") || !strcmp(a, "--reward") ||
            !strcmp(a, "--k")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mayak memory: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (slot) {
                *slot = v;
            } else if (!strcmp(a, "--tag")) {
                if (c->ntags == MK_MEMORY_MAX_TAGS) {
                    fprintf(stderr, "mayak memory: at most %d tags\n", MK_MEMORY_MAX_TAGS);
                    return 2;
                }
                c->tags[c->ntags++] = v;
            } else if (!strcmp(a, "--reward")) {
                char *end;
                c->reward = strtod(v, &end);
                if (*end || end == v || !isfinite(c->reward)) {
                    fprintf(stderr, "mayak memory: --reward wants a number\n");
                    return 2;
                }
                c->has_reward = true;
            } else if (!strcmp(a, "--k")) {
                char *end;
                errno = 0;
                c->k = strtol(v, &end, 10);
                if (errno || *end || c->k < 1 || c->k > MK_MEMORY_MAX_K) {
                    fprintf(stderr, "mayak memory: --k wants 1..%d\n", MK_MEMORY_MAX_K);
                    return 2;
                }
            }
        } else if (!strncmp(a, "--config=", 9)) {
            continue;
        } else if (!strcmp(a, "--history")) {
            c->history = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return -1;
        } else if (a[0] == '-') {
            fprintf(stderr, "mayak memory: unknown option %s\n", a);
            return 2;
        } else if (!c->cmd) {
            c->cmd = a;
        } else if (!c->file) {
            c->file = a;
        } else {
            fprintf(stderr, "mayak memory: unexpected argument %s\n", a);
            return 2;
        }
    }
    return 0;
}

static bool need(const char *v, const char *opt)
{
    if (v && *v) return true;
    fprintf(stderr, "mayak memory: %s is required\n", opt);
    return false;
}

/* Imports episodes from JSON lines ({"task","tried","outcome","critique","reward",
 * "tags","user","session"}), in batches of one transaction each. */
static int import_file(struct mk_memory *m, struct mk_store_conn *conn, const struct cli *c)
{
    FILE *f = strcmp(c->file, "-") ? fopen(c->file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "mayak memory: cannot open %s: %s\n", c->file, strerror(errno));
        return 1;
    }
    enum { BATCH = 512 };
    struct mk_memory_episode *eps = calloc(BATCH, sizeof *eps);
    json_object **objs = calloc(BATCH, sizeof *objs);
    const char *(*tags)[MK_MEMORY_MAX_TAGS] = calloc(BATCH, sizeof *tags);
    char *line = NULL;
    size_t cap = 0, n = 0, total = 0, lineno = 0;
    int rc = eps && objs && tags ? 0 : MK_ENOMEM;
    mk_buf err = MK_BUF_INIT;
    for (;;) {
        ssize_t len = rc == 0 ? getline(&line, &cap, f) : -1;
        bool flush = len < 0 ? n > 0 : n == BATCH;
        if (flush && rc == 0) {
            rc = mk_memory_episode_add_batch(m, conn, eps, n, NULL, &err);
            if (rc) fprintf(stderr, "mayak memory: batch ending at line %zu: %s\n", lineno, err.data ? err.data : mk_strerror(rc));
            total += rc == 0 ? n : 0;
            for (size_t i = 0; i < n; i++) json_object_put(objs[i]);
            n = 0;
        }
        if (len < 0 || rc) break;
        lineno++;
        if (len <= 1) continue;
        json_object *o = json_tokener_parse(line), *v;
        if (!o || !json_object_is_type(o, json_type_object)) {
            fprintf(stderr, "mayak memory: line %zu is not a JSON object\n", lineno);
            json_object_put(o);
            rc = MK_EBADJSON;
            break;
        }
        objs[n] = o;
        struct mk_memory_episode *ep = &eps[n];
        memset(ep, 0, sizeof *ep);
        ep->tenant = c->tenant;
#define STR(k) (json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL)
        ep->task = STR("task");
        ep->tried = STR("tried");
        ep->outcome = STR("outcome");
        ep->critique = STR("critique");
        ep->user = STR("user");
        ep->session = STR("session");
#undef STR
        ep->reward = json_object_object_get_ex(o, "reward", &v) ? json_object_get_double(v) : 0;
        if (json_object_object_get_ex(o, "tags", &v) && json_object_is_type(v, json_type_array)) {
            for (size_t t = 0; t < json_object_array_length(v) && t < MK_MEMORY_MAX_TAGS; t++)
                tags[n][ep->ntags++] = json_object_get_string(json_object_array_get_idx(v, t));
            ep->tags = tags[n];
        }
        n++;
    }
    for (size_t i = 0; i < n; i++) json_object_put(objs[i]);
    free(line);
    free(eps);
    free(objs);
    free(tags);
    mk_buf_release(&err);
    if (f != stdin) fclose(f);
    printf("{\"imported\": %zu}\n", total);
    return rc ? 1 : 0;
}

struct kv_wait {
    bool done;
    int rc;
    int64_t n;
};

static void kv_erased(int rc, json_object *v, void *arg)
{
    struct kv_wait *w = arg;
    w->rc = rc;
    json_object *s;
    if (v && json_object_object_get_ex(v, "sessions", &s)) w->n = json_object_get_int64(s);
    w->done = true;
}

static void tick(uv_timer_t *t) { (void)t; }

/* Deletes the erased user's live sessions from the server's kv. */
static void erase_kv(struct mk_memory *m, const char *url, const char *tenant, json_object *sessions, json_object *report)
{
    json_object *erased;
    json_object_object_get_ex(report, "erased", &erased);
    if (!url || !*url) {
        json_object_object_add(report, "kv_sessions", json_object_new_string("not deleted: no --kv given (they expire with their TTL)"));
        return;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mk_kv *kv = NULL;
    mk_buf err = MK_BUF_INIT;
    struct kv_wait w = {0};
    int rc = mk_kv_open(&loop, url, NULL, &kv, &err);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    uint64_t start = uv_now(&loop);
    while (rc == 0 && !mk_kv_ready(kv) && uv_now(&loop) - start < 5000) uv_run(&loop, UV_RUN_ONCE);
    if (rc == 0 && !mk_kv_ready(kv)) rc = MK_EUNAVAILABLE;
    if (rc == 0) {
        m->kv = kv;
        rc = mk_memory_erase_sessions(m, tenant, sessions, kv_erased, &w);
        while (rc == 0 && !w.done && uv_now(&loop) - start < 10000) uv_run(&loop, UV_RUN_ONCE);
        m->kv = NULL;
        if (rc == 0) rc = w.done ? w.rc : MK_ETIMEOUT;
    }
    mk_kv_free(kv);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc) json_object_object_add(report, "kv_error", json_object_new_string(mk_strerror(rc)));
    else json_object_object_add(erased, "kv_sessions", json_object_new_int64(w.n));
    mk_buf_release(&err);
}

int mk_memory_cli_main(int argc, char **argv, const char *data_dir)
{
    struct cli c = {0};
    int prc = parse(argc, argv, &c);
    if (prc < 0) return usage(stdout);
    if (prc) return prc;
    if (!c.cmd || !strcmp(c.cmd, "help")) return usage(c.cmd ? stdout : stderr);
    static const char *const cmds[] = {"stats", "search", "add", "import", "facts", "erase", "sweep", "reindex"};
    bool known = false;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) known |= !strcmp(c.cmd, cmds[i]);
    if (!known) {
        fprintf(stderr, "mayak memory: unknown command %s\n", c.cmd);
        return usage(stderr);
    }
    if (strcmp(c.cmd, "sweep") && strcmp(c.cmd, "reindex") && !need(c.tenant, "--tenant")) return 2;
    if (!strcmp(c.cmd, "search") && !need(c.query, "--query")) return 2;
    if (!strcmp(c.cmd, "add") && (!need(c.task, "--task") || !(c.has_reward || need(NULL, "--reward")))) return 2;
    if (!strcmp(c.cmd, "erase") && !need(c.user, "--user")) return 2;
    if (!strcmp(c.cmd, "import") && !need(c.file, "FILE")) return 2;
    if (!c.kv) c.kv = getenv("MAYAK_MEMORY_KV");
    if (!c.store) c.store = getenv("MAYAK_MEMORY_STORE");

    mk_log_set_level(MK_LOG_WARN); /* stdout is the answer; keep info lines out of the way */
    mk_buf url = MK_BUF_INIT, err = MK_BUF_INIT;
    if (c.store && *c.store) mk_buf_append_str(&url, c.store);
    else mk_buf_printf(&url, "%s/mayak.db", data_dir);
    struct mk_store *store = NULL;
    struct mk_memory *m = NULL;
    struct mk_store_conn *conn = NULL;
    int rc = mk_store_open(url.data, NULL, &store, &err);
    if (rc == 0 && !strcmp(c.cmd, "reindex")) {
        /* a memory without index files rebuilds from the rows; saving it then
         * replaces the files the server loads at its next start */
        struct mk_memory_options o = {0};
        rc = mk_memory_open(store, NULL, &o, &m, &err);
        if (rc == 0) {
            free(m->data_dir);
            m->data_dir = strdup(data_dir);
            rc = m->data_dir ? mk_memory_checkpoint(m) : MK_ENOMEM;
        }
        if (rc == 0)
            printf("{\"episodes\": %zu, \"skills\": %zu, \"facts\": %zu}\n", mk_memory_indexed(m, MK_MEMORY_EPISODES),
                   mk_memory_indexed(m, MK_MEMORY_SKILLS), mk_memory_indexed(m, MK_MEMORY_FACTS));
    } else if (rc == 0) {
        struct mk_memory_options o = {.data_dir = data_dir};
        rc = mk_memory_open(store, NULL, &o, &m, &err);
    }
    if (rc == 0) rc = mk_store_acquire(store, &conn);
    int status = 0;
    json_object *out = NULL;
    if (rc == 0 && !strcmp(c.cmd, "reindex")) {
        /* done above */
    } else if (rc == 0 && !strcmp(c.cmd, "search")) {
        rc = mk_memory_episode_search(m, conn, c.tenant, c.query, (uint32_t)c.k, NULL, &out, &err);
    } else if (rc == 0 && !strcmp(c.cmd, "add")) {
        struct mk_memory_episode ep = {.tenant = c.tenant, .task = c.task, .tried = c.tried, .outcome = c.outcome,
                                       .critique = c.critique, .user = c.user, .session = c.session,
                                       .reward = c.reward, .tags = c.tags, .ntags = c.ntags};
        int64_t id;
        rc = mk_memory_episode_add(m, conn, &ep, &id, &err);
        if (rc == 0) printf("{\"id\": %lld}\n", (long long)id);
    } else if (rc == 0 && !strcmp(c.cmd, "import")) {
        status = import_file(m, conn, &c);
    } else if (rc == 0 && !strcmp(c.cmd, "facts")) {
        rc = mk_memory_fact_list(m, conn, c.tenant, c.subject, c.history, MK_MEMORY_MAX_K, &out);
    } else if (rc == 0 && !strcmp(c.cmd, "sweep")) {
        rc = mk_memory_sweep(m, conn, &out);
    } else if (rc == 0 && !strcmp(c.cmd, "erase")) {
        json_object *sessions = NULL;
        const char *by = getenv("USER");
        mk_buf who = MK_BUF_INIT;
        mk_buf_printf(&who, "cli:%s", by ? by : "unknown");
        rc = mk_memory_erase_user(m, conn, c.tenant, c.user, who.data, &out, &sessions);
        mk_buf_release(&who);
        if (rc == 0) erase_kv(m, c.kv, c.tenant, sessions, out);
        json_object_put(sessions);
    } else if (rc == 0 && !strcmp(c.cmd, "stats")) {
        out = json_object_new_object();
        static const char *const tables[] = {"memory_episodes", "memory_skills", "memory_facts", "memory_links",
                                             "memory_history"};
        for (int k = 0; rc == 0 && k < MK_MEMORY_KIND_COUNT; k++) {
            char sql[96];
            snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE tenant = ?", tables[k]);
            struct mk_store_stmt *st;
            rc = mk_store_prepare(conn, sql, &st);
            if (rc) break;
            mk_store_bind_cstr(st, 1, c.tenant);
            int64_t n = mk_store_step(st) == MK_STORE_ROW ? mk_store_column_int64(st, 0) : 0;
            mk_store_stmt_done(st);
            json_object_object_add(out, mk_memory_kind_name((enum mk_memory_kind)k), json_object_new_int64(n));
        }
        json_object_object_add(out, "embedder", json_object_new_string(mk_memory_embedder_name(m)));
    }
    if (rc) {
        fprintf(stderr, "mayak memory %s: %s%s%s\n", c.cmd, mk_strerror(rc), err.len ? ": " : "", err.len ? err.data : "");
        status = 1;
    } else if (out) {
        print_json(out);
    }
    json_object_put(out);
    mk_store_release(store, conn);
    mk_memory_free(m);
    mk_store_free(store);
    mk_buf_release(&url);
    mk_buf_release(&err);
    return status;
}
