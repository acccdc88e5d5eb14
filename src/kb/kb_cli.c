/*
 * kb_cli: `mayak kb ...` — the knowledge base from the command line.
 *
 *   mayak kb add PATH... [--agent ID] [--lang xx] [--force] [--json]
 *   mayak kb list [--agent ID] [--json]
 *   mayak kb rm ID [--lang xx] [--agent ID]
 *   mayak kb reindex [--force] [--json]
 *   mayak kb search [QUERY] [--json] [--k N] [--lang xx] [--agent ID]
 *                   [--mode hybrid|bm25|vector] [--rrf-k K] [--per-doc N] [--depth N] [--no-text]
 *                   [--no-vectors]   (--lang auto: each query's detected language)
 *
 * It works on the same store the server uses (<data_dir>/mayak.db unless --store), so a
 * running server sees what the CLI added (kb_store.c explains how). `search` without a
 * QUERY reads one query per line from standard input and prints one JSON line per query,
 * loading the index once — the shape benchmarks and shell pipelines want.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mk_error.h"
#include "core/mk_time.h"
#include "kb/mk_kb_store.h"
#include "store/mk_store.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: mayak kb <command> [--store URL] [options]\n"
            "  add PATH... [--agent ID] [--lang xx] [--force] [--json]\n"
            "                         ingest files or folders (.md .html .txt .pdf); unchanged files are skipped\n"
            "  list [--agent ID] [--json]           documents in the knowledge base\n"
            "  rm ID [--lang xx] [--agent ID]       remove a document (every language unless --lang)\n"
            "  reindex [--force] [--json]           re-read every source; --force re-cuts unchanged ones too\n"
            "  search [QUERY] [--json] [--k N] [--lang xx] [--agent ID] [--mode hybrid|bm25|vector]\n"
            "         [--rrf-k K] [--per-doc N] [--depth N] [--no-text] [--no-vectors]\n"
            "                         --lang auto: only documents in each query's detected language\n"
            "                         ranked passages with scores; no QUERY: one query per stdin line,\n"
            "                         one JSON line each\n");
    return f == stderr ? 2 : 0;
}

struct cli {
    const char *cmd, *store, *agent, *lang, *mode;
    const char *pos[256];
    int npos;
    bool json, force, no_text, no_vectors;
    long k, per_doc, depth;
    double rrf_k;
};

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse(int argc, char **argv, struct cli *c)
{
    c->k = 5;
    c->mode = "hybrid";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = !strcmp(a, "--store") || !strcmp(a, "--agent") || !strcmp(a, "--lang") ||
                         !strcmp(a, "--mode") || !strcmp(a, "--k") || !strcmp(a, "--rrf-k") ||
                         !strcmp(a, "--per-doc") || !strcmp(a, "--depth") || !strcmp(a, "--config") ||
                         !strcmp(a, "-c");
        if (has_value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mayak kb: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            bool ok = true;
            if (!strcmp(a, "--store")) c->store = v;
            else if (!strcmp(a, "--agent")) c->agent = v;
            else if (!strcmp(a, "--lang")) c->lang = v;
            else if (!strcmp(a, "--mode")) c->mode = v;
            else if (!strcmp(a, "--k")) ok = parse_long(v, 1, MK_KB_MAX_K, &c->k);
            else if (!strcmp(a, "--per-doc")) ok = parse_long(v, 0, MK_KB_MAX_K, &c->per_doc);
            else if (!strcmp(a, "--depth")) ok = parse_long(v, 0, MK_KB_MAX_K, &c->depth);
            else if (!strcmp(a, "--rrf-k")) {
                char *end;
                errno = 0;
                c->rrf_k = strtod(v, &end);
                ok = !errno && end != v && !*end && c->rrf_k > 0 && c->rrf_k < 1e6;
            }
            if (!ok) {
                fprintf(stderr, "mayak kb: bad value '%s' for %s\n", v, a);
                return 2;
            }
        } else if (!strncmp(a, "--config=", 9)) {
            continue;
        } else if (!strcmp(a, "--json")) {
            c->json = true;
        } else if (!strcmp(a, "--force")) {
            c->force = true;
        } else if (!strcmp(a, "--no-text")) {
            c->no_text = true;
        } else if (!strcmp(a, "--no-vectors")) {
            c->no_vectors = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return usage(stdout) == 0 ? 3 : 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mayak kb: unknown option %s\n", a);
            return 2;
        } else if (!c->cmd) {
            c->cmd = a;
        } else if (c->npos < (int)(sizeof c->pos / sizeof c->pos[0])) {
            c->pos[c->npos++] = a;
        } else {
            fprintf(stderr, "mayak kb: too many arguments\n");
            return 2;
        }
    }
    return 0;
}

static void print_json(json_object *o, bool pretty)
{
    printf("%s\n", json_object_to_json_string_ext(o, (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
}

static json_object *report_json(const struct mk_kb_report *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "files", json_object_new_int64((int64_t)r->files));
    json_object_object_add(o, "added", json_object_new_int64((int64_t)r->added));
    json_object_object_add(o, "updated", json_object_new_int64((int64_t)r->updated));
    json_object_object_add(o, "unchanged", json_object_new_int64((int64_t)r->unchanged));
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)r->skipped));
    json_object_object_add(o, "failed", json_object_new_int64((int64_t)r->failed));
    json_object_object_add(o, "chunks", json_object_new_int64((int64_t)r->chunks));
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)r->bytes));
    if (r->items)
        json_object_object_add(o, "items", json_object_get(r->items));
    return o;
}

static void print_report(const struct mk_kb_report *r, const struct cli *c, double secs)
{
    if (c->json) {
        json_object *o = report_json(r);
        json_object_object_add(o, "seconds", json_object_new_double(secs));
        print_json(o, true);
        json_object_put(o);
        return;
    }
    size_t n = r->items ? json_object_array_length(r->items) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(r->items, i), *v;
        const char *status = json_object_object_get_ex(it, "status", &v) ? json_object_get_string(v) : "?";
        if (!strcmp(status, "unchanged"))
            continue;
        const char *path = json_object_object_get_ex(it, "path", &v) ? json_object_get_string(v) : "";
        const char *why = json_object_object_get_ex(it, "error", &v) ? json_object_get_string(v) : NULL;
        const char *lang = json_object_object_get_ex(it, "lang", &v) ? json_object_get_string(v) : "";
        long chunks = json_object_object_get_ex(it, "chunks", &v) ? (long)json_object_get_int64(v) : 0;
        if (why)
            fprintf(stderr, "%-9s %s: %s\n", status, path, why);
        else
            printf("%-9s %s (%s, %ld chunks)\n", status, path, lang, chunks);
    }
    printf("%zu files: %zu added, %zu updated, %zu unchanged, %zu skipped, %zu failed; %zu chunks, %.1f MB in %.2f s\n",
           r->files, r->added, r->updated, r->unchanged, r->skipped, r->failed, r->chunks, r->bytes / 1e6, secs);
}

/* --- search ----------------------------------------------------------------------------- */

static json_object *search_json(mk_kb *kb, const char *query, const struct mk_kb_search_opts *so, const struct cli *c,
                                int *err)
{
    json_object *o = mk_kb_search_json(kb, query, so, !c->no_text, err);
    if (o && !*err)
        json_object_object_add(o, "mode", json_object_new_string(c->mode));
    return o;
}

static void print_human(json_object *o)
{
    json_object *res, *v;
    if (json_object_object_get_ex(o, "error", &v)) {
        fprintf(stderr, "mayak kb: search failed: %s\n", json_object_get_string(v));
        return;
    }
    if (!json_object_object_get_ex(o, "results", &res) || json_object_array_length(res) == 0) {
        printf("no results\n");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(res); i++) {
        json_object *e = json_object_array_get_idx(res, i), *sc, *t;
        json_object_object_get_ex(e, "scores", &sc);
        json_object *b, *vv, *f;
        json_object_object_get_ex(sc, "bm25", &b);
        json_object_object_get_ex(sc, "vector", &vv);
        json_object_object_get_ex(sc, "fused", &f);
        json_object_object_get_ex(e, "citation", &v);
        printf("%s\n    fused %.4f  bm25 %.3f  vector %.3f\n", json_object_get_string(v), json_object_get_double(f),
               json_object_get_double(b), json_object_get_double(vv));
        if (json_object_object_get_ex(e, "text", &t)) {
            const char *s = json_object_get_string(t);
            size_t n = strlen(s) > 240 ? 240 : strlen(s);
            while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xC0) == 0x80)
                n--;
            printf("    %.*s%s\n", (int)n, s, n < strlen(s) ? "…" : "");
        }
    }
}

static int cmd_search(struct mk_kb_lib *lib, const struct cli *c)
{
    mk_kb *kb = mk_kb_lib_kb(lib);
    struct mk_kb_search_opts so = {
        .lang = c->lang, .agent = c->agent, .k = (size_t)c->k, .max_per_doc = (unsigned)c->per_doc,
        .rrf_k = c->rrf_k, .depth = (size_t)c->depth,
    };
    if (!strcmp(c->mode, "hybrid")) so.mode = MK_KB_HYBRID;
    else if (!strcmp(c->mode, "bm25")) so.mode = MK_KB_BM25;
    else if (!strcmp(c->mode, "vector")) so.mode = MK_KB_VECTOR;
    else {
        fprintf(stderr, "mayak kb: --mode is hybrid, bm25 or vector\n");
        return 2;
    }
    if (so.mode == MK_KB_VECTOR && c->no_vectors) {
        fprintf(stderr, "mayak kb: --mode vector needs vectors (drop --no-vectors)\n");
        return 2;
    }
    int status = 0, err = 0;
    if (c->npos > 0) {
        mk_buf q = MK_BUF_INIT;
        for (int i = 0; i < c->npos; i++)
            if ((i && mk_buf_append_char(&q, ' ')) || mk_buf_append_str(&q, c->pos[i])) {
                mk_buf_release(&q);
                return 1;
            }
        json_object *o = search_json(kb, q.data, &so, c, &err);
        if (c->json)
            print_json(o, false);
        else
            print_human(o);
        json_object_put(o);
        mk_buf_release(&q);
        return err ? 1 : 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if ((size_t)len != strlen(line)) /* a NUL inside: keep the part before it */
            len = (ssize_t)strlen(line);
        json_object *o = search_json(kb, line, &so, c, &err);
        if (err)
            status = 1;
        if (c->json)
            print_json(o, false);
        else
            print_human(o);
        json_object_put(o);
        fflush(stdout);
    }
    free(line);
    return status;
}

/* --- main --------------------------------------------------------------------------------- */

int mk_kb_cli_main(int argc, char **argv, const char *data_dir)
{
    struct cli c = {0};
    int rc = parse(argc, argv, &c);
    if (rc == 3)
        return 0;
    if (rc)
        return usage(stderr);
    if (!c.cmd)
        return usage(stderr);
    if (!strcmp(c.cmd, "help"))
        return usage(stdout);
    bool is_add = !strcmp(c.cmd, "add"), is_list = !strcmp(c.cmd, "list"), is_rm = !strcmp(c.cmd, "rm"),
         is_reindex = !strcmp(c.cmd, "reindex"), is_search = !strcmp(c.cmd, "search");
    if (!is_add && !is_list && !is_rm && !is_reindex && !is_search) {
        fprintf(stderr, "mayak kb: unknown command '%s'\n", c.cmd);
        return usage(stderr);
    }
    if ((is_add && c.npos == 0) || (is_rm && c.npos != 1) || ((is_list || is_reindex) && c.npos != 0)) {
        fprintf(stderr, "mayak kb %s: wrong number of arguments\n", c.cmd);
        return usage(stderr);
    }

    mk_buf url = MK_BUF_INIT, err = MK_BUF_INIT;
    if (c.store) {
        mk_buf_append_str(&url, c.store);
    } else {
        if (!data_dir || !*data_dir) {
            fprintf(stderr, "mayak kb: no data_dir configured (give --store URL)\n");
            return 1;
        }
        if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "mayak kb: cannot create %s: %s\n", data_dir, strerror(errno));
            return 1;
        }
        mk_buf_printf(&url, "%s/mayak.db", data_dir);
    }
    struct mk_store *store = NULL;
    struct mk_kb_lib *lib = NULL;
    rc = url.data ? mk_store_open(url.data, NULL, &store, &err) : MK_ENOMEM;
    struct mk_kb_lib_options lo = {.load = is_search, .no_vectors = c.no_vectors};
    if (!rc)
        rc = mk_kb_lib_open(store, &lo, &lib, &err);
    if (rc) {
        fprintf(stderr, "mayak kb: %s\n", err.data ? err.data : mk_strerror(rc));
        mk_store_free(store);
        mk_buf_release(&url);
        mk_buf_release(&err);
        return 1;
    }
    int status = 0;
    uint64_t t0 = mk_now_us();
    if (is_add || is_reindex) {
        struct mk_kb_report rep = {.items = json_object_new_array()};
        struct mk_kb_add_opts ao = {.agent = c.agent, .lang = c.lang, .force = c.force};
        for (int i = 0; is_add && i < c.npos && !rc; i++) {
            rc = mk_kb_lib_add_path(lib, c.pos[i], &ao, &rep, &err);
            if (rc == MK_ENOTFOUND || rc == MK_EIO) { /* a bad path among several: say so, go on */
                fprintf(stderr, "mayak kb: %s\n", err.data ? err.data : mk_strerror(rc));
                mk_buf_reset(&err);
                rep.failed++;
                rc = 0;
            }
        }
        if (is_reindex)
            rc = mk_kb_lib_reindex(lib, c.force, &rep, &err);
        if (rc)
            fprintf(stderr, "mayak kb: %s\n", err.data ? err.data : mk_strerror(rc));
        print_report(&rep, &c, (mk_now_us() - t0) / 1e6);
        status = rc || rep.failed ? 1 : 0;
        json_object_put(rep.items);
    } else if (is_list) {
        json_object *arr = NULL;
        rc = mk_kb_lib_list(lib, c.agent, &arr, &err);
        if (rc) {
            fprintf(stderr, "mayak kb: %s\n", err.data ? err.data : mk_strerror(rc));
            status = 1;
        } else if (c.json) {
            print_json(arr, true);
        } else {
            size_t n = json_object_array_length(arr);
            for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                const char *f[4];
                static const char *const keys[] = {"id", "lang", "agent", "title"};
                for (int k = 0; k < 4; k++)
                    f[k] = json_object_object_get_ex(o, keys[k], &v) ? json_object_get_string(v) : "";
                long chunks = json_object_object_get_ex(o, "chunks", &v) ? (long)json_object_get_int64(v) : 0;
                printf("%-32s %-3s %-12s %4ld  %s\n", f[0], f[1], f[2][0] ? f[2] : "-", chunks, f[3]);
            }
            printf("%zu documents\n", n);
        }
        json_object_put(arr);
    } else if (is_rm) {
        size_t n = 0;
        rc = mk_kb_lib_remove(lib, c.pos[0], c.lang, c.agent, &n, &err);
        if (rc) {
            fprintf(stderr, "mayak kb: %s\n", err.data ? err.data : mk_strerror(rc));
            status = 1;
        } else {
            printf("removed %zu document%s\n", n, n == 1 ? "" : "s");
        }
    } else {
        status = cmd_search(lib, &c);
    }
    mk_kb_lib_free(lib);
    mk_store_free(store);
    mk_buf_release(&url);
    mk_buf_release(&err);
    return status;
}
