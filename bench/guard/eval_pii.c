/*
 * eval_pii: recall and precision of the PII detector (src/guard/mk_pii.h) per type
 * on the shared PII data and on the synthetic Russian identifiers of gen_ru_ids.py,
 * plus its speed.
 *
 *   eval_pii --data ../shared/data/pii [--synthetic ids.jsonl] [--json out.json]
 *
 * Datasets (see ../shared/data/pii/SOURCE.md):
 *   presidio_synth  English: PERSON, CREDIT_CARD, PHONE_NUMBER, EMAIL_ADDRESS,
 *                   IBAN_CODE, IP_ADDRESS mapped to our types; other entity types
 *                   (addresses, dates, US SSN ...) are not ours and are ignored.
 *   factrueval2016  Russian news; Person entities against PERSON, per split.
 *   kaznerd         Kazakh NER (IOB2), PERSON only, valid + test files.
 *   stdnum_ru_ids   INN/OGRN test vectors: validator verdicts, and detection of each
 *                   number inside a sentence with and without a context word.
 *   synthetic       gen_ru_ids.py output; "valid": false spans are negatives.
 *
 * Matching: a prediction is a true positive when it overlaps a gold span of the same
 * type ("overlap"); "exact" also requires the same byte span. Recall counts gold
 * spans found; precision counts predictions that hit a gold span. Gold offsets are
 * code points and are converted to bytes here.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guard/mk_pii.h"

typedef struct counts {
    long gold, found, found_exact, pred, pred_ok, pred_exact;
} counts;

typedef struct gspan {
    size_t start, end;
    mk_pii_type type;
    int valid;
} gspan;

/* CPU time of this thread: the machine may be shared, and wall time would then
 * measure the neighbours. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double total_bytes, total_secs;
/* EVAL_PII_VERBOSE=TYPE prints that type's misses and false positives to stderr. */
static mk_pii_type verbose_type;

/* Code point offset -> byte offset. */
static size_t cp_to_byte(const char *s, size_t len, size_t cp)
{
    size_t i = 0, c = 0;
    while (i < len && c < cp) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        c++;
    }
    return i;
}

/* Prints a span with up to 60 bytes of text either side (cut at UTF-8 boundaries). */
static void show(const char *what, mk_pii_type t, float conf, const char *text, size_t len,
                 size_t a, size_t b)
{
    size_t l = a > 60 ? a - 60 : 0, r = b + 60 < len ? b + 60 : len;
    while (l < a && ((unsigned char)text[l] & 0xC0) == 0x80)
        l++;
    while (r > b && r < len && ((unsigned char)text[r] & 0xC0) == 0x80)
        r--;
    fprintf(stderr, "%s %s %.2f [%.*s] in: %.*s[[%.*s]]%.*s\n", what, mk_pii_type_name(t), conf,
            (int)(b - a), text + a, (int)(a - l), text + l, (int)(b - a), text + a, (int)(r - b),
            text + b);
}

static int overlaps(size_t a0, size_t a1, size_t b0, size_t b1) { return a0 < b1 && b0 < a1; }

/* Scores one text: gold spans against predictions of the types in `mask`. */
static void score(const char *text, size_t len, const gspan *g, size_t ng, uint32_t mask,
                  counts *per, const mk_pii_options *opt)
{
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    double t0 = now_s();
    mk_pii_detect(text, len, opt, &m);
    total_secs += now_s() - t0;
    total_bytes += (double)len;
    for (size_t i = 0; i < ng; i++) {
        if (!g[i].valid || !(mask & MK_PII_BIT(g[i].type)))
            continue;
        counts *c = &per[g[i].type];
        c->gold++;
        int hit = 0, exact = 0;
        for (size_t k = 0; k < m.n; k++)
            if (m.v[k].type == g[i].type && overlaps(m.v[k].start, m.v[k].end, g[i].start, g[i].end)) {
                hit = 1;
                exact |= m.v[k].start == g[i].start && m.v[k].end == g[i].end;
            }
        c->found += hit;
        c->found_exact += exact;
        if (!hit && g[i].type == verbose_type)
            show("MISS", g[i].type, 0, text, len, g[i].start, g[i].end);
    }
    for (size_t k = 0; k < m.n; k++) {
        if (!(mask & MK_PII_BIT(m.v[k].type)))
            continue;
        counts *c = &per[m.v[k].type];
        c->pred++;
        int ok = 0, exact = 0;
        for (size_t i = 0; i < ng; i++)
            if (g[i].valid && g[i].type == m.v[k].type &&
                overlaps(m.v[k].start, m.v[k].end, g[i].start, g[i].end)) {
                ok = 1;
                exact |= m.v[k].start == g[i].start && m.v[k].end == g[i].end;
            }
        c->pred_ok += ok;
        c->pred_exact += exact;
        if (!ok && m.v[k].type == verbose_type)
            show("FP", m.v[k].type, m.v[k].confidence, text, len, m.v[k].start, m.v[k].end);
    }
    mk_pii_matches_release(&m);
}

static json_object *report(const char *name, const counts *per, uint32_t mask)
{
    json_object *ds = json_object_new_object();
    printf("\n### %s\n\n| type | gold | recall | precision | F1 | recall (exact) | precision (exact) | predicted |\n"
           "|---|---|---|---|---|---|---|---|\n", name);
    for (int t = 1; t < MK_PII_TYPE_COUNT; t++) {
        if (!(mask & MK_PII_BIT(t)))
            continue;
        const counts *c = &per[t];
        if (c->gold == 0 && c->pred == 0)
            continue;
        double r = c->gold ? (double)c->found / (double)c->gold : 0;
        double p = c->pred ? (double)c->pred_ok / (double)c->pred : 0;
        double f = r + p > 0 ? 2 * r * p / (r + p) : 0;
        double re = c->gold ? (double)c->found_exact / (double)c->gold : 0;
        double pe = c->pred ? (double)c->pred_exact / (double)c->pred : 0;
        printf("| %s | %ld | %.4f | %.4f | %.4f | %.4f | %.4f | %ld |\n", mk_pii_type_name(t),
               c->gold, r, p, f, re, pe, c->pred);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "gold", json_object_new_int64(c->gold));
        json_object_object_add(o, "predicted", json_object_new_int64(c->pred));
        json_object_object_add(o, "recall", json_object_new_double(r));
        json_object_object_add(o, "precision", json_object_new_double(p));
        json_object_object_add(o, "f1", json_object_new_double(f));
        json_object_object_add(o, "recall_exact", json_object_new_double(re));
        json_object_object_add(o, "precision_exact", json_object_new_double(pe));
        json_object_object_add(ds, mk_pii_type_name(t), o);
    }
    return ds;
}


static mk_pii_type presidio_type(const char *t)
{
    static const struct { const char *a; mk_pii_type b; } map[] = {
        {"PERSON", MK_PII_PERSON}, {"CREDIT_CARD", MK_PII_CARD}, {"PHONE_NUMBER", MK_PII_PHONE},
        {"EMAIL_ADDRESS", MK_PII_EMAIL}, {"IBAN_CODE", MK_PII_IBAN}, {"IP_ADDRESS", MK_PII_IP},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].a, t) == 0)
            return map[i].b;
    return MK_PII_NONE;
}

static json_object *eval_presidio(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/presidio_synth/synth_dataset_v2.json", dir);
    json_object *root = json_object_from_file(path);
    if (!root) {
        fprintf(stderr, "eval_pii: cannot read %s\n", path);
        return NULL;
    }
    counts per[MK_PII_TYPE_COUNT] = {0};
    uint32_t mask = MK_PII_BIT(MK_PII_PERSON) | MK_PII_BIT(MK_PII_CARD) | MK_PII_BIT(MK_PII_PHONE) |
                    MK_PII_BIT(MK_PII_EMAIL) | MK_PII_BIT(MK_PII_IBAN) | MK_PII_BIT(MK_PII_IP);
    size_t n = json_object_array_length(root);
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(root, i), *ft, *spans;
        if (!json_object_object_get_ex(r, "full_text", &ft) || !json_object_object_get_ex(r, "spans", &spans))
            continue;
        const char *text = json_object_get_string(ft);
        size_t len = strlen(text);
        size_t ns = json_object_array_length(spans);
        gspan *g = calloc(ns + 1, sizeof *g);
        size_t k = 0;
        for (size_t j = 0; j < ns; j++) {
            json_object *s = json_object_array_get_idx(spans, j), *ty, *st, *en;
            if (!json_object_object_get_ex(s, "entity_type", &ty) ||
                !json_object_object_get_ex(s, "start_position", &st) ||
                !json_object_object_get_ex(s, "end_position", &en))
                continue;
            mk_pii_type t = presidio_type(json_object_get_string(ty));
            if (!t)
                continue;
            g[k].type = t;
            g[k].start = cp_to_byte(text, len, (size_t)json_object_get_int64(st));
            g[k].end = cp_to_byte(text, len, (size_t)json_object_get_int64(en));
            g[k].valid = 1;
            k++;
        }
        score(text, len, g, k, mask, per, NULL);
        free(g);
    }
    json_object_put(root);
    return report("presidio_synth (English)", per, mask);
}

static json_object *eval_factrueval(const char *dir, json_object *all)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/factrueval2016/factrueval2016_entities.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "eval_pii: cannot read %s\n", path);
        return NULL;
    }
    counts per_dev[MK_PII_TYPE_COUNT] = {0}, per_test[MK_PII_TYPE_COUNT] = {0};
    uint32_t mask = MK_PII_BIT(MK_PII_PERSON);
    char *line = NULL;
    size_t cap = 0;
    ssize_t rl;
    while ((rl = getline(&line, &cap, f)) > 0) {
        json_object *r = json_tokener_parse(line), *tx, *ents, *sp;
        if (!r)
            continue;
        if (json_object_object_get_ex(r, "text", &tx) && json_object_object_get_ex(r, "entities", &ents)) {
            const char *text = json_object_get_string(tx);
            size_t len = strlen(text);
            int test = json_object_object_get_ex(r, "split", &sp) &&
                       strcmp(json_object_get_string(sp), "testset") == 0;
            size_t ne = json_object_array_length(ents);
            gspan *g = calloc(ne + 1, sizeof *g);
            size_t k = 0;
            for (size_t j = 0; j < ne; j++) {
                json_object *e = json_object_array_get_idx(ents, j), *ty, *st, *en;
                if (!json_object_object_get_ex(e, "type", &ty) || strcmp(json_object_get_string(ty), "Person") ||
                    !json_object_object_get_ex(e, "start", &st) || !json_object_object_get_ex(e, "end", &en))
                    continue;
                g[k].type = MK_PII_PERSON;
                g[k].start = cp_to_byte(text, len, (size_t)json_object_get_int64(st));
                g[k].end = cp_to_byte(text, len, (size_t)json_object_get_int64(en));
                g[k].valid = 1;
                k++;
            }
            score(text, len, g, k, mask, test ? per_test : per_dev, NULL);
            free(g);
        }
        json_object_put(r);
    }
    free(line);
    fclose(f);
    json_object_object_add(all, "factrueval2016_devset", report("factrueval2016 devset (Russian news, Person; rules were tuned looking at this split)", per_dev, mask));
    return report("factrueval2016 testset (Russian news, Person; held out)", per_test, mask);
}

/* KazNERD IOB2: "token tag" lines, blank line between sentences. Sentences are
 * rebuilt with single spaces, which is how the spans are computed. */
static json_object *eval_kaznerd(const char *dir)
{
    counts per[MK_PII_TYPE_COUNT] = {0};
    uint32_t mask = MK_PII_BIT(MK_PII_PERSON);
    const char *files[] = {"IOB2_valid.txt", "IOB2_test.txt"};
    for (int fi = 0; fi < 2; fi++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/kaznerd/%s", dir, files[fi]);
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "eval_pii: cannot read %s\n", path);
            return NULL;
        }
        char text[16384];
        size_t tl = 0, ng = 0;
        gspan g[256];
        int in_person = 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t rl;
        for (;;) {
            rl = getline(&line, &cap, f);
            int end = rl <= 0 || line[0] == '\n' || line[0] == '\r';
            if (end) {
                if (tl > 0)
                    score(text, tl, g, ng, mask, per, NULL);
                tl = ng = 0;
                in_person = 0;
                if (rl <= 0)
                    break;
                continue;
            }
            line[strcspn(line, "\r\n")] = '\0';
            char *sp = strrchr(line, ' ');
            if (!sp)
                continue;
            *sp = '\0';
            const char *tag = sp + 1;
            size_t wl = strlen(line);
            if (tl + wl + 2 >= sizeof text)
                continue;
            if (tl > 0)
                text[tl++] = ' ';
            size_t ws = tl;
            memcpy(text + tl, line, wl);
            tl += wl;
            if (strcmp(tag, "B-PERSON") == 0 && ng < 256) {
                g[ng++] = (gspan){ws, tl, MK_PII_PERSON, 1};
                in_person = 1;
            } else if (strcmp(tag, "I-PERSON") == 0 && in_person && ng > 0) {
                g[ng - 1].end = tl;
            } else {
                in_person = 0;
            }
        }
        free(line);
        fclose(f);
    }
    return report("KazNERD valid+test (Kazakh, PERSON)", per, mask);
}

static json_object *eval_stdnum(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/stdnum_ru_ids/ru_ids_test_vectors.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "eval_pii: cannot read %s\n", path);
        return NULL;
    }
    long rows = 0, agree = 0;
    counts ctx[MK_PII_TYPE_COUNT] = {0}, noctx[MK_PII_TYPE_COUNT] = {0};
    uint32_t mask = MK_PII_BIT(MK_PII_INN) | MK_PII_BIT(MK_PII_OGRN) | MK_PII_BIT(MK_PII_OGRNIP);
    char line[512];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) { /* header */
            first = 0;
            continue;
        }
        char kind[16], num[64], exp[16];
        if (sscanf(line, "%15s %63s %15s", kind, num, exp) != 3)
            continue;
        size_t n = strlen(num);
        int valid = strcmp(exp, "valid") == 0;
        int ours;
        mk_pii_type t;
        if (strcmp(kind, "INN") == 0) {
            ours = mk_pii_valid_inn(num, n);
            t = MK_PII_INN;
        } else {
            ours = n == 15 ? mk_pii_valid_ogrnip(num, n) : mk_pii_valid_ogrn(num, n);
            t = n == 15 ? MK_PII_OGRNIP : MK_PII_OGRN;
        }
        rows++;
        agree += ours == valid;
        if (ours != valid)
            printf("stdnum disagreement: %s %s expected %s\n", kind, num, exp);
        char text[256];
        for (int withctx = 0; withctx < 2; withctx++) {
            int pre = snprintf(text, sizeof text, withctx ? "Реквизиты: %s " : "Номер для сверки: ",
                               t == MK_PII_INN ? "ИНН" : t == MK_PII_OGRN ? "ОГРН" : "ОГРНИП");
            if (!withctx)
                pre = (int)strlen(text);
            int tl = snprintf(text + pre, sizeof text - (size_t)pre, "%s, спасибо.", num) + pre;
            gspan g = {(size_t)pre, (size_t)pre + n, t, valid};
            score(text, (size_t)tl, &g, 1, mask, withctx ? ctx : noctx, NULL);
        }
    }
    fclose(f);
    printf("\n### stdnum_ru_ids\n\nvalidator agrees with the expected verdict on %ld of %ld vectors\n", agree, rows);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vectors", json_object_new_int64(rows));
    json_object_object_add(o, "validator_agrees", json_object_new_int64(agree));
    json_object_object_add(o, "in_sentence_with_context", report("stdnum_ru_ids in a sentence with the context word", ctx, mask));
    json_object_object_add(o, "in_sentence_without_context", report("stdnum_ru_ids in a sentence without a context word", noctx, mask));
    return o;
}

static json_object *eval_synthetic(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "eval_pii: cannot read %s\n", path);
        return NULL;
    }
    counts per[MK_PII_TYPE_COUNT] = {0};
    uint32_t mask = MK_PII_ALL & ~(MK_PII_BIT(MK_PII_PERSON) | MK_PII_BIT(MK_PII_EMAIL) |
                                   MK_PII_BIT(MK_PII_IP) | MK_PII_BIT(MK_PII_IBAN));
    long neg = 0, neg_hit = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_object *r = json_tokener_parse(line), *tx, *spans;
        if (!r)
            continue;
        if (json_object_object_get_ex(r, "text", &tx) && json_object_object_get_ex(r, "spans", &spans)) {
            const char *text = json_object_get_string(tx);
            size_t len = strlen(text);
            size_t ns = json_object_array_length(spans);
            gspan g[8];
            size_t k = 0;
            for (size_t j = 0; j < ns && k < 8; j++) {
                json_object *s = json_object_array_get_idx(spans, j), *ty, *st, *en, *va;
                if (!json_object_object_get_ex(s, "type", &ty) || !json_object_object_get_ex(s, "start", &st) ||
                    !json_object_object_get_ex(s, "end", &en) || !json_object_object_get_ex(s, "valid", &va))
                    continue;
                const char *tn = json_object_get_string(ty);
                g[k].type = mk_pii_type_parse(tn, strlen(tn));
                g[k].start = cp_to_byte(text, len, (size_t)json_object_get_int64(st));
                g[k].end = cp_to_byte(text, len, (size_t)json_object_get_int64(en));
                g[k].valid = json_object_get_boolean(va);
                k++;
            }
            score(text, len, g, k, mask, per, NULL);
            /* Negatives: an invalid identifier must not be reported as its type. */
            mk_pii_matches m = MK_PII_MATCHES_INIT;
            mk_pii_detect(text, len, NULL, &m);
            for (size_t i = 0; i < k; i++) {
                if (g[i].valid)
                    continue;
                neg++;
                for (size_t q = 0; q < m.n; q++)
                    if (m.v[q].type == g[i].type && overlaps(m.v[q].start, m.v[q].end, g[i].start, g[i].end)) {
                        neg_hit++;
                        break;
                    }
            }
            mk_pii_matches_release(&m);
        }
        json_object_put(r);
    }
    free(line);
    fclose(f);
    json_object *o = report("synthetic Russian identifiers (gen_ru_ids.py)", per, mask);
    printf("\ninvalid identifiers reported as their type: %ld of %ld\n", neg_hit, neg);
    json_object_object_add(o, "negatives", json_object_new_int64(neg));
    json_object_object_add(o, "negatives_reported", json_object_new_int64(neg_hit));
    return o;
}

/* Speed on a typical 1 KB support message with a few identifiers. */
static json_object *eval_speed(void)
{
    const char *msg =
        "Здравствуйте! Меня зовут Иванова Мария Петровна, я клиент вашего банка уже пять лет. "
        "Вчера с моей карты 4276 3800 1234 5678 списали 15 400 рублей за подписку, которую я не "
        "оформляла. Прошу вернуть деньги на счёт 40817810099910004312. Мой телефон +7 (912) "
        "345-67-89, почта maria.ivanova@mail.ru. Паспорт 45 06 123456, ИНН 7707083893. "
        "Заказ №5821 от 12.03.2024 так и не был доставлен, трек-номер RA123456789RU. "
        "Hello, my name is John Smith and I also wrote to support@example.com about order 12345. "
        "Пожалуйста, перезвоните мне после 18:00 по московскому времени или напишите в чат. "
        "Заранее спасибо за помощь, надеюсь на быстрое решение вопроса. С уважением, Мария. "
        "P.S. Версия приложения 4.12.1, телефон Android 13, IP адрес был 10.0.0.15. ";
    size_t len = strlen(msg);
    mk_pii_matches m = MK_PII_MATCHES_INIT;
    mk_pii_detect(msg, len, NULL, &m); /* builds the name sets */
    int iters = 20000;
    double t0 = now_s();
    for (int i = 0; i < iters; i++)
        mk_pii_detect(msg, len, NULL, &m);
    double dt = now_s() - t0;
    double us = dt / iters * 1e6;
    printf("\n### speed\n\nmk_pii_detect on a %zu-byte support message (%zu matches): %.2f us per call, "
           "%.2f us per KB, %.0f calls/s on one core (thread CPU time)\n", len, m.n, us, us * 1024.0 / (double)len,
           iters / dt);
    printf("all datasets: %.0f bytes in %.3f s = %.2f us per KB\n", total_bytes, total_secs,
           total_bytes > 0 ? total_secs * 1e6 / (total_bytes / 1024.0) : 0);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message_bytes", json_object_new_int64((int64_t)len));
    json_object_object_add(o, "us_per_call", json_object_new_double(us));
    json_object_object_add(o, "us_per_kb", json_object_new_double(us * 1024.0 / (double)len));
    json_object_object_add(o, "datasets_us_per_kb",
                           json_object_new_double(total_bytes > 0 ? total_secs * 1e6 / (total_bytes / 1024.0) : 0));
    mk_pii_matches_release(&m);
    return o;
}

int main(int argc, char **argv)
{
    const char *data = "../shared/data/pii", *synth = NULL, *jout = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--synthetic") == 0 && i + 1 < argc)
            synth = argv[++i];
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            jout = argv[++i];
        else {
            fprintf(stderr, "usage: eval_pii [--data DIR] [--synthetic FILE] [--json OUT]\n");
            return 2;
        }
    }
    const char *vt = getenv("EVAL_PII_VERBOSE");
    if (vt)
        verbose_type = mk_pii_type_parse(vt, strlen(vt));
    json_object *all = json_object_new_object();
    json_object *o;
    if ((o = eval_presidio(data)))
        json_object_object_add(all, "presidio_synth", o);
    if ((o = eval_factrueval(data, all)))
        json_object_object_add(all, "factrueval2016_testset", o);
    if ((o = eval_kaznerd(data)))
        json_object_object_add(all, "kaznerd", o);
    if ((o = eval_stdnum(data)))
        json_object_object_add(all, "stdnum_ru_ids", o);
    if (synth && (o = eval_synthetic(synth)))
        json_object_object_add(all, "synthetic", o);
    json_object_object_add(all, "speed", eval_speed());
    if (jout && json_object_to_file_ext(jout, all, JSON_C_TO_STRING_PRETTY) != 0)
        fprintf(stderr, "eval_pii: cannot write %s\n", jout);
    json_object_put(all);
    return 0;
}
