/*
 * bench_embed: throughput of the built-in embedder on one core.
 *
 *   bench_embed [--seconds S] [--dim N] [--threads T] [--file lines.txt]
 *
 * Without --file it builds its own texts, deterministically, from a small Russian,
 * English and Kazakh support vocabulary written for this benchmark: "short" texts of
 * ~60 bytes (a chat question) and "long" texts of ~1 KB (a knowledge-base chunk).
 * With --file each non-empty line is one text (e.g. BANKING77 questions). Each case
 * runs for S seconds (default 2) after a short warm-up, round-robin over 4096 texts,
 * and prints texts/s, MB/s and µs per text (wall clock), and texts per CPU-second of
 * the embedding thread (CLOCK_THREAD_CPUTIME_ID), which stays meaningful on a busy
 * machine where other processes steal the core. --threads T runs T threads on one
 * shared embedder (to check scaling; the one-core figure is T = 1, pin it with taskset).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_error.h"
#include "embed/mk_embed.h"

#define NTEXTS 4096

static const char *const words_en[] = {
    "printer", "cannot", "connect", "wifi", "password", "reset", "account", "locked", "invoice", "refund",
    "payment", "card", "email", "outlook", "not", "working", "after", "update", "how", "do", "i",
    "change", "my", "the", "network", "vpn", "laptop", "screen", "sound", "battery",
};
static const char *const words_ru[] = {
    "принтер", "не", "печатает", "как", "сбросить", "пароль", "учётная", "запись", "заблокирована",
    "счёт", "оплата", "карта", "почта", "не", "работает", "после", "обновления", "подключиться",
    "сеть", "ноутбук", "экран", "звук", "батарея", "возврат", "денег", "интернет", "роутер",
};
static const char *const words_kk[] = {
    "принтер", "басып", "шығармайды", "құпиясөзді", "қалай", "өзгертуге", "болады", "есептік",
    "жазба", "бұғатталған", "төлем", "карта", "пошта", "жұмыс", "істемейді", "жаңартудан", "кейін",
    "желіге", "қосылу", "ноутбук", "экран", "дыбыс", "батарея", "интернет", "ақша", "қайтару",
};

struct lang { const char *const *w; size_t n; };
static const struct lang langs[] = {
    {words_en, sizeof words_en / sizeof words_en[0]},
    {words_ru, sizeof words_ru / sizeof words_ru[0]},
    {words_kk, sizeof words_kk / sizeof words_kk[0]},
};

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* A text of about `target` bytes in one language, sentences of 5-12 words. */
static char *make_text(size_t target)
{
    const struct lang *l = &langs[rnd() % 3];
    size_t cap = target + 128, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t in_sentence = 0, sentence_len = 5 + rnd() % 8;
    while (len < target) {
        const char *w = l->w[rnd() % l->n];
        size_t wl = strlen(w);
        if (len + wl + 3 >= cap)
            break;
        if (len)
            s[len++] = ' ';
        memcpy(s + len, w, wl);
        len += wl;
        if (++in_sentence == sentence_len) {
            s[len++] = rnd() % 2 ? '?' : '.';
            in_sentence = 0;
            sentence_len = 5 + rnd() % 8;
        }
    }
    s[len] = '\0';
    return s;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct job {
    const mk_embedder *e;
    char **texts;
    size_t *lens;
    size_t n;
    double seconds;
    size_t done;
    size_t bytes;
    double cpu;     /* thread CPU seconds of the measured part */
    int rc;
};

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    float *v = malloc(mk_embedder_dim(j->e) * sizeof *v);
    if (!v) {
        j->rc = MK_ENOMEM;
        return NULL;
    }
    size_t i = 0;
    double t_end = now() + 0.2;
    while (now() < t_end) /* warm-up: stemmer caches, page faults */
        for (int r = 0; r < 64; r++, i++)
            mk_embed_text(j->e, j->texts[i % j->n], j->lens[i % j->n], v);
    j->done = j->bytes = 0;
    double c0 = cpu_now();
    double t0 = now();
    t_end = t0 + j->seconds;
    while (now() < t_end) {
        for (int r = 0; r < 64; r++, i++) {
            size_t k = i % j->n;
            int rc = mk_embed_text(j->e, j->texts[k], j->lens[k], v);
            if (rc) {
                j->rc = rc;
                free(v);
                return NULL;
            }
            j->bytes += j->lens[k];
        }
        j->done += 64;
    }
    j->seconds = now() - t0;
    j->cpu = cpu_now() - c0;
    free(v);
    return NULL;
}

static int run_case(const char *name, const mk_embedder *e, char **texts, size_t *lens, size_t n,
                    double seconds, int threads)
{
    struct job jobs[64];
    pthread_t tids[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){e, texts, lens, n, seconds, 0, 0, 0, 0};
        if (pthread_create(&tids[t], NULL, worker, &jobs[t]) != 0)
            return 1;
    }
    double texts_s = 0, mb_s = 0, texts_cpu_s = 0;
    size_t total_bytes = 0;
    for (size_t i = 0; i < n; i++)
        total_bytes += lens[i];
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        if (jobs[t].rc) {
            fprintf(stderr, "bench_embed: %s\n", mk_strerror(jobs[t].rc));
            return 1;
        }
        texts_s += jobs[t].done / jobs[t].seconds;
        texts_cpu_s += jobs[t].cpu > 0 ? jobs[t].done / jobs[t].cpu : 0;
        mb_s += jobs[t].bytes / jobs[t].seconds / 1e6;
    }
    printf("%-6s avg %5zu B/text  threads %d  %10.0f texts/s  %7.1f MB/s  %8.2f us/text/thread  "
           "%10.0f texts per CPU-second\n",
           name, total_bytes / n, threads, texts_s, mb_s, 1e6 * threads / texts_s, texts_cpu_s / threads);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 2;
    int threads = 1;
    struct mk_embed_options o = {0};
    const char *file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--dim") == 0)
            o.dim = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--file") == 0)
            file = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_embed [--seconds S] [--dim N] [--threads T] [--file lines.txt]\n");
            return 2;
        }
    }
    if (seconds <= 0 || threads < 1 || threads > 64) {
        fprintf(stderr, "bench_embed: bad --seconds or --threads\n");
        return 2;
    }
    mk_embedder *e = NULL;
    int rc = mk_embedder_new(&o, &e);
    if (rc) {
        fprintf(stderr, "bench_embed: %s\n", mk_strerror(rc));
        return 2;
    }
    printf("mayak-embed %s, dim %u\n", mk_embedder_name(e), mk_embedder_dim(e));
    static char *texts[NTEXTS];
    static size_t lens[NTEXTS];
    int fail = 0;
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            perror(file);
            return 1;
        }
        size_t n = 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t r;
        while (n < NTEXTS && (r = getline(&line, &cap, f)) > 0) {
            while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
                line[--r] = '\0';
            if (r == 0)
                continue;
            texts[n] = strdup(line);
            lens[n] = (size_t)r;
            n++;
        }
        free(line);
        fclose(f);
        if (n == 0) {
            fprintf(stderr, "bench_embed: no lines in %s\n", file);
            return 1;
        }
        fail |= run_case("file", e, texts, lens, n, seconds, threads);
        for (size_t i = 0; i < n; i++)
            free(texts[i]);
    } else {
        const struct { const char *name; size_t bytes; } cases[] = {{"short", 60}, {"long", 1000}};
        for (size_t c = 0; c < 2; c++) {
            for (size_t i = 0; i < NTEXTS; i++) {
                texts[i] = make_text(cases[c].bytes);
                if (!texts[i])
                    return 1;
                lens[i] = strlen(texts[i]);
            }
            fail |= run_case(cases[c].name, e, texts, lens, NTEXTS, seconds, threads);
            for (size_t i = 0; i < NTEXTS; i++)
                free(texts[i]);
        }
    }
    mk_embedder_free(e);
    return fail;
}
