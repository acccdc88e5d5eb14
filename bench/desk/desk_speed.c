/*
 * desk_speed: end-to-end latency of a desk answer by the local responder (no LLM):
 * signals + triage + hybrid retrieval + composing + JSON, one question at a time on
 * one thread, with the GNOME help knowledge base loaded in English, Russian and
 * Kazakh (951 articles, read from --data, never copied).
 *
 * Questions are the GNOME evaluation queries (titles and descriptions of pages, in
 * the three languages) plus a few conversational ones; each is answered --rounds
 * times. Prints p50/p90/p99/max in milliseconds and the share of questions answered
 * (not escalated).
 *
 * Usage: desk_speed [--data DIR] [--rounds N] [--limit N] [--no-vectors] [--json]
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_rand.h"
#include "desk/mk_desk.h"
#include "embed/mk_embed.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread: on a shared machine wall-clock tails are mostly other
 * processes' time slices, which this does not count. Both are reported. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

int main(int argc, char **argv)
{
    const char *data = "../shared/data";
    int rounds = 1;
    size_t limit = 0;
    bool vectors = true, as_json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) data = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) limit = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--no-vectors") == 0) vectors = false;
        else if (strcmp(argv[i], "--json") == 0) as_json = true;
        else return fprintf(stderr, "usage: desk_speed [--data DIR] [--rounds N] [--limit N] [--no-vectors] [--json]\n"), 2;
    }
    mk_rand_init();
    char path[4096];
    snprintf(path, sizeof path, "%s/kb_gnome_help/articles.jsonl", data);
    FILE *f = fopen(path, "r");
    if (!f) return fprintf(stderr, "cannot open %s\n", path), 1;
    double t0 = now_ms();
    mk_kb *kb = mk_kb_new();
    mk_embedder *e = NULL;
    if (vectors && (mk_embedder_new(NULL, &e) != 0 || mk_kb_enable_vectors(kb, e) != 0))
        return fprintf(stderr, "cannot enable vectors\n"), 1;
    char *line = NULL;
    size_t cap = 0, ndocs = 0;
    while (getline(&line, &cap, f) > 0) {
        json_object *o = json_tokener_parse(line);
        if (!o) continue;
        const char *text = field(o, "text");
        struct mk_kb_doc doc = {.id = field(o, "id"), .lang = field(o, "lang"), .title = field(o, "title"),
                                .text = text, .text_len = text ? strlen(text) : 0};
        int rc = mk_kb_add_document(kb, &doc);
        if (rc == 0) ndocs++;
        else fprintf(stderr, "skipped %s/%s: %d\n", doc.lang, doc.id, rc);
        json_object_put(o);
    }
    fclose(f);
    double t1 = now_ms();
    mk_desk *d = NULL;
    struct mk_desk_options o = {.kb = kb};
    if (mk_desk_new(&o, &d) != 0) return fprintf(stderr, "desk failed\n"), 1;
    double t2 = now_ms();

    /* Questions: the evaluation queries, then some conversational ones. */
    size_t nq = 0, qcap = 2048;
    char **qs = malloc(qcap * sizeof *qs);
    snprintf(path, sizeof path, "%s/kb_gnome_help/eval_queries.jsonl", data);
    f = fopen(path, "r");
    if (!f) return fprintf(stderr, "cannot open %s\n", path), 1;
    while (getline(&line, &cap, f) > 0 && nq + 16 < qcap && (!limit || nq < limit)) {
        json_object *q = json_tokener_parse(line);
        if (q && field(q, "query")) qs[nq++] = strdup(field(q, "query"));
        json_object_put(q);
    }
    fclose(f);
    free(line);
    const char *extra[] = {"my wifi does not connect", "не работает звук в наушниках", "как подключить принтер",
                           "позовите оператора", "экран не включается после сна",
                           "how do I change my password"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) qs[nq++] = strdup(extra[i]);

    size_t total = nq * (size_t)rounds, k = 0, answered = 0;
    double *lat = malloc(total * sizeof *lat), *cpu = malloc(total * sizeof *cpu);
    mk_buf out = MK_BUF_INIT;
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < nq; i++) {
            double a = now_ms(), ca = cpu_ms();
            struct mk_desk_reply rep;
            if (mk_desk_respond(d, qs[i], NULL, NULL, &rep) != 0) return fprintf(stderr, "respond failed\n"), 1;
            mk_buf_reset(&out);
            mk_desk_reply_json(&rep, &out);
            if (r == 0 && !rep.escalate) answered++;
            mk_desk_reply_release(&rep);
            cpu[k] = cpu_ms() - ca;
            lat[k++] = now_ms() - a;
        }
    qsort(lat, k, sizeof *lat, cmp_double);
    qsort(cpu, k, sizeof *cpu, cmp_double);
    double c50 = cpu[k / 2], c99 = cpu[(size_t)(0.99 * (double)(k - 1))], cmx = cpu[k - 1];
    double p50 = lat[k / 2], p90 = lat[(size_t)(0.90 * (double)(k - 1))], p99 = lat[(size_t)(0.99 * (double)(k - 1))],
           mx = lat[k - 1];
    if (as_json)
        printf("{\"docs\":%zu,\"chunks\":%zu,\"vectors\":%s,\"load_ms\":%.0f,\"desk_ms\":%.0f,\"questions\":%zu,"
               "\"answered\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
               "\"cpu_p50_ms\":%.3f,\"cpu_p99_ms\":%.3f,\"cpu_max_ms\":%.3f}\n",
               ndocs, mk_kb_chunk_count(kb), vectors ? "true" : "false", t1 - t0, t2 - t1, k,
               (double)answered / (double)nq, p50, p90, p99, mx, c50, c99, cmx);
    else
        printf("GNOME KB: %zu documents (en+ru+kk), %zu chunks, vectors %s; load %.0f ms, desk %.0f ms\n"
               "%zu answers (%d rounds of %zu questions), %.1f%% answered without escalation\n"
               "latency per answer: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n"
               "CPU time per answer: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               ndocs, mk_kb_chunk_count(kb), vectors ? "on" : "off", t1 - t0, t2 - t1, k, rounds, nq,
               100.0 * (double)answered / (double)nq, p50, p90, p99, mx, c50, c99, cmx);
    mk_buf_release(&out);
    for (size_t i = 0; i < nq; i++) free(qs[i]);
    free(qs);
    free(lat);
    free(cpu);
    mk_desk_free(d);
    mk_kb_free(kb);
    mk_embedder_free(e);
    return 0;
}
