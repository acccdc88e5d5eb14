/*
 * bench_cache: semantic cache quality on intent datasets (docs/CACHE.md has results).
 *
 * Every "fill" text is stored as a cached answer whose content is its intent; every
 * "query" text is looked up. A hit whose answer carries the query's intent is a good
 * hit; any other hit is a false hit (the user would get another question's answer).
 * One lookup per query at the lowest threshold swept gives the outcome at every higher
 * threshold (candidates come nearest first, so a hit at t is the same hit at any
 * t' <= its similarity), so the sweep costs one pass.
 *
 *   bench_cache banking77 <dir> [--no-guard]   tune on train (9/10 fill, 1/10 held out),
 *                                               then fill with all train, query test
 *   bench_cache clinc150 <dir> [--no-guard]    fill in-scope train, query in-scope test
 *                                               and out-of-scope test (any hit is false)
 *   bench_cache multilingual <dir> [--no-guard] Kazakh and English intents (xSID: fill
 *                                               valid, query test), Russian and Kazakh
 *                                               help-page titles vs descriptions (GNOME
 *                                               Help, ../kb_gnome_help), and Russian
 *                                               factoid questions that must not hit each
 *                                               other (RuBQ: a hit is good only when both
 *                                               questions have the same SPARQL query)
 * Dataset text is read at run time and never written anywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cache/mk_cache.h"
#include "core/mk_buf.h"

#define NT 12
static const double thresholds[NT] = {0.60, 0.65, 0.70, 0.75, 0.78, 0.80, 0.82, 0.84, 0.85, 0.86, 0.88, 0.90};

struct item {
    char *text;
    char *label;
};
struct set {
    struct item *v;
    size_t n, cap;
};

static void add(struct set *s, const char *text, size_t tlen, const char *label, size_t llen)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    s->v[s->n].text = strndup(text, tlen);
    s->v[s->n].label = strndup(label, llen);
    s->n++;
}

/* CSV "text,category" with RFC 4180 quoting; the header line is skipped. */
static int read_csv(const char *path, struct set *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    mk_buf field = MK_BUF_INIT, text = MK_BUF_INIT;
    int c, col = 0;
    bool quoted = false, header = true;
    while ((c = fgetc(f)) != EOF) {
        if (quoted) {
            if (c == '"') {
                int d = fgetc(f);
                if (d == '"') mk_buf_append_char(&field, '"');
                else {
                    quoted = false;
                    if (d != EOF) ungetc(d, f);
                }
            } else mk_buf_append_char(&field, (char)c);
            continue;
        }
        if (c == '"') quoted = true;
        else if (c == ',' && col == 0) {
            mk_buf_reset(&text);
            mk_buf_append(&text, field.data ? field.data : "", field.len);
            mk_buf_reset(&field);
            col = 1;
        } else if (c == '\n') {
            if (!header && col == 1) add(s, text.data, text.len, field.data ? field.data : "", field.len);
            header = false;
            col = 0;
            mk_buf_reset(&field);
        } else if (c != '\r') mk_buf_append_char(&field, (char)c);
    }
    fclose(f);
    mk_buf_release(&field);
    mk_buf_release(&text);
    return 0;
}

static json_object *request_for(const char *text)
{
    json_object *b = json_object_new_object(), *msgs = json_object_new_array(), *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("user"));
    json_object_object_add(m, "content", json_object_new_string(text));
    json_object_array_add(msgs, m);
    json_object_object_add(b, "messages", msgs);
    json_object_object_add(b, "temperature", json_object_new_double(0));
    return b;
}

static mk_cache *fill(const struct set *s, size_t skip_mod, bool no_guard)
{
    struct mk_cache_options o = {.no_guard = no_guard, .max_bytes = (size_t)1 << 31};
    mk_cache *c;
    if (mk_cache_new(&o, &c) != 0) abort();
    for (size_t i = 0; i < s->n; i++) {
        if (skip_mod && i % skip_mod == 0) continue;
        json_object *b = request_for(s->v[i].text);
        struct mk_cache_request r;
        mk_cache_request_init(&r, "bench", "g", b, 1);
        if (r.eligible) mk_cache_store(c, &r, s->v[i].label, strlen(s->v[i].label), 0, 0, 0);
        mk_cache_request_release(&r);
        json_object_put(b);
    }
    return c;
}

struct tally {
    size_t queries;
    size_t hits[NT], good[NT];
    size_t exact;
    double lookup_s;
};

/* only_mod: query items i with i % only_mod == 0 (0 = all). expect_none: every hit is false. */
static void query(mk_cache *c, const struct set *s, size_t only_mod, bool expect_none, struct tally *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < s->n; i++) {
        if (only_mod && i % only_mod != 0) continue;
        json_object *b = request_for(s->v[i].text);
        struct mk_cache_request r;
        mk_cache_request_init(&r, "bench", "g", b, 1);
        struct mk_cache_hit h;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        mk_cache_lookup(c, &r, thresholds[0], &h);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        t->lookup_s += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        t->queries++;
        if (h.kind != MK_CACHE_MISS) {
            bool good = !expect_none && strcmp(h.answer.data, s->v[i].label) == 0;
            if (h.kind == MK_CACHE_HIT_EXACT) t->exact++;
            for (int k = 0; k < NT; k++)
                if (h.similarity >= (float)thresholds[k]) {
                    t->hits[k]++;
                    if (good) t->good[k]++;
                }
        }
        mk_cache_hit_release(&h);
        mk_cache_request_release(&r);
        json_object_put(b);
    }
}

static void report(const char *title, const struct tally *t)
{
    printf("\n%s: %zu queries (%zu exact duplicates), mean lookup %.1f us\n", title, t->queries, t->exact,
           t->queries ? t->lookup_s * 1e6 / (double)t->queries : 0.0);
    printf("  threshold  hit_rate  false_hit_rate  precision\n");
    for (int k = 0; k < NT; k++) {
        double q = (double)t->queries;
        bool dflt = thresholds[k] > MK_CACHE_DEFAULT_THRESHOLD - 1e-9 && thresholds[k] < MK_CACHE_DEFAULT_THRESHOLD + 1e-9;
        printf("  %9.2f  %7.1f%%  %13.2f%%  %8.1f%%%s\n", thresholds[k], 100.0 * (double)t->good[k] / q,
               100.0 * (double)(t->hits[k] - t->good[k]) / q,
               t->hits[k] ? 100.0 * (double)t->good[k] / (double)t->hits[k] : 100.0, dflt ? "  <- default" : "");
    }
}

static void free_set(struct set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].text);
        free(s->v[i].label);
    }
    free(s->v);
}

static int load_clinc(const char *path, const char *part, struct set *s)
{
    json_object *root = json_object_from_file(path), *arr;
    if (!root || !json_object_object_get_ex(root, part, &arr)) return -1;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *row = json_object_array_get_idx(arr, i);
        const char *text = json_object_get_string(json_object_array_get_idx(row, 0));
        const char *label = json_object_get_string(json_object_array_get_idx(row, 1));
        add(s, text, strlen(text), label, strlen(label));
    }
    json_object_put(root);
    return 0;
}

/* JSON Lines: one object per line; text and label are string fields. Rows are kept
 * when every (key, value) pair of `where` (NULL-terminated, may be NULL) matches. */
static int load_jsonl(const char *path, const char *text_key, const char *label_key, const char *const *where,
                      struct set *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_object *row = json_tokener_parse(line), *v;
        if (!row) continue;
        const char *text = json_object_object_get_ex(row, text_key, &v) ? json_object_get_string(v) : NULL;
        const char *label = json_object_object_get_ex(row, label_key, &v) ? json_object_get_string(v) : NULL;
        bool keep = text && label;
        for (size_t i = 0; keep && where && where[i]; i += 2)
            keep = json_object_object_get_ex(row, where[i], &v) && strcmp(json_object_get_string(v), where[i + 1]) == 0;
        if (keep) add(s, text, strlen(text), label, strlen(label));
        json_object_put(row);
    }
    free(line);
    fclose(f);
    return 0;
}

/* RuBQ 1.0 (a JSON array): question_text, labelled by its SPARQL query (two questions
 * with one query ask the same thing). `part` 0 keeps even rows, 1 odd rows. */
static int load_rubq(const char *path, int part, struct set *s)
{
    json_object *root = json_object_from_file(path);
    if (!root || !json_object_is_type(root, json_type_array)) return -1;
    for (size_t i = (size_t)part; i < json_object_array_length(root); i += 2) {
        json_object *row = json_object_array_get_idx(root, i), *q, *sparql, *uid;
        if (!json_object_object_get_ex(row, "question_text", &q)) continue;
        char label[64];
        const char *l = json_object_object_get_ex(row, "query", &sparql) && json_object_is_type(sparql, json_type_string)
                            ? json_object_get_string(sparql)
                            : NULL;
        if (!l) { /* no query: a label nothing else has */
            snprintf(label, sizeof label, "uid:%d",
                     json_object_object_get_ex(row, "uid", &uid) ? json_object_get_int(uid) : (int)i);
            l = label;
        }
        const char *text = json_object_get_string(q);
        add(s, text, strlen(text), l, strlen(l));
    }
    json_object_put(root);
    return 0;
}

static int run_pair(const char *title, const struct set *fillset, const struct set *queries, bool expect_none,
                    bool no_guard)
{
    if (fillset->n == 0 || queries->n == 0) return fprintf(stderr, "%s: no data\n", title), 1;
    struct tally t;
    mk_cache *c = fill(fillset, 0, no_guard);
    query(c, queries, 0, expect_none, &t);
    char head[256];
    snprintf(head, sizeof head, "%s (%zu cached, %zu looked up)", title, fillset->n, queries->n);
    report(head, &t);
    mk_cache_free(c);
    return 0;
}

static int multilingual(const char *dir, bool no_guard)
{
    char a[4096], b[4096];
    int rc = 0;
    printf("Multilingual%s\n", no_guard ? " (guard off)" : "");
    for (int lang = 0; lang < 2; lang++) {
        const char *l = lang == 0 ? "kk" : "en";
        struct set fillset = {0}, queries = {0};
        snprintf(a, sizeof a, "%s/xsid_kk_en/%s.valid.jsonl", dir, l);
        snprintf(b, sizeof b, "%s/xsid_kk_en/%s.test.jsonl", dir, l);
        if (load_jsonl(a, "text", "intent", NULL, &fillset) || load_jsonl(b, "text", "intent", NULL, &queries))
            return perror(a), 1;
        char title[128];
        snprintf(title, sizeof title, "xSID %s intents: valid cached, test looked up", l);
        rc |= run_pair(title, &fillset, &queries, false, no_guard);
        free_set(&fillset);
        free_set(&queries);
    }
    for (int lang = 0; lang < 2; lang++) {
        const char *l = lang == 0 ? "ru" : "kk";
        struct set fillset = {0}, queries = {0};
        snprintf(a, sizeof a, "%s/../kb_gnome_help/eval_queries.jsonl", dir);
        const char *titles[] = {"lang", l, "query_type", "title", NULL};
        const char *descs[] = {"lang", l, "query_type", "desc", NULL};
        if (load_jsonl(a, "query", "gold_id", titles, &fillset) || load_jsonl(a, "query", "gold_id", descs, &queries))
            return perror(a), 1;
        char title[128];
        snprintf(title, sizeof title, "GNOME Help %s: page titles cached, descriptions looked up", l);
        rc |= run_pair(title, &fillset, &queries, false, no_guard);
        free_set(&fillset);
        free_set(&queries);
    }
    struct set even = {0}, odd = {0};
    for (int f = 0; f < 2; f++) {
        snprintf(a, sizeof a, "%s/rubq/%s", dir, f == 0 ? "RuBQ_1.0_dev.json" : "RuBQ_1.0_test.json");
        if (load_rubq(a, 0, &even) || load_rubq(a, 1, &odd)) return perror(a), 1;
    }
    rc |= run_pair("RuBQ ru factoid questions (distinct questions must not hit)", &even, &odd, false, no_guard);
    free_set(&even);
    free_set(&odd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s banking77|clinc150|multilingual <dataset dir> [--no-guard]\n", argv[0]);
        return 2;
    }
    bool no_guard = argc > 3 && strcmp(argv[3], "--no-guard") == 0;
    char path[4096];
    struct tally t;
    if (strcmp(argv[1], "banking77") == 0) {
        struct set train = {0}, test = {0};
        snprintf(path, sizeof path, "%s/train.csv", argv[2]);
        if (read_csv(path, &train) != 0) return perror(path), 1;
        snprintf(path, sizeof path, "%s/test.csv", argv[2]);
        if (read_csv(path, &test) != 0) return perror(path), 1;
        printf("BANKING77%s: %zu train, %zu test\n", no_guard ? " (guard off)" : "", train.n, test.n);
        mk_cache *c = fill(&train, 10, no_guard);
        query(c, &train, 10, false, &t);
        report("tuning: 9/10 of train cached, 1/10 held out", &t);
        mk_cache_free(c);
        c = fill(&train, 0, no_guard);
        query(c, &test, 0, false, &t);
        report("test: all train cached, test looked up", &t);
        mk_cache_free(c);
        free_set(&train);
        free_set(&test);
        return 0;
    }
    if (strcmp(argv[1], "clinc150") == 0) {
        struct set train = {0}, test = {0}, oos = {0};
        snprintf(path, sizeof path, "%s/data_full.json", argv[2]);
        if (load_clinc(path, "train", &train) || load_clinc(path, "test", &test) ||
            load_clinc(path, "oos_test", &oos))
            return fprintf(stderr, "cannot read %s\n", path), 1;
        printf("CLINC150%s: %zu train, %zu test, %zu out-of-scope test\n", no_guard ? " (guard off)" : "", train.n,
               test.n, oos.n);
        mk_cache *c = fill(&train, 0, no_guard);
        query(c, &test, 0, false, &t);
        report("in-scope test", &t);
        query(c, &oos, 0, true, &t);
        report("out-of-scope test (every hit is false)", &t);
        mk_cache_free(c);
        free_set(&train);
        free_set(&test);
        free_set(&oos);
        return 0;
    }
    if (strcmp(argv[1], "multilingual") == 0) return multilingual(argv[2], no_guard);
    fprintf(stderr, "unknown dataset %s\n", argv[1]);
    return 2;
}
