/*
 * bench/guard/eval_injection: scores every row of a labelled JSONL file with the
 * injection detector and writes one prediction per row (JSONL) for
 * eval_injection.py, which computes precision/recall/F1 per language and source
 * and compares with peers on the same rows.
 *
 *   guard_eval_injection --data combined_labeled.jsonl [--split test] [--model M]
 *                        [--no-model] [--pcre2] --out preds.jsonl
 * --split all keeps every row. Rows keep their "id" (or their line number).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mk_buf.h"
#include "guard/mk_injection.h"

int main(int argc, char **argv)
{
    const char *data = NULL, *split = "test", *model = NULL, *outp = NULL;
    bool no_model = false, pcre2 = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) data = argv[++i];
        else if (strcmp(argv[i], "--split") == 0 && i + 1 < argc) split = argv[++i];
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) outp = argv[++i];
        else if (strcmp(argv[i], "--no-model") == 0) no_model = true;
        else if (strcmp(argv[i], "--pcre2") == 0) pcre2 = true;
        else {
            fprintf(stderr, "usage: %s --data FILE.jsonl [--split NAME|all] [--model M] [--no-model] [--pcre2] --out PRED.jsonl\n", argv[0]);
            return 2;
        }
    }
    if (!data || !outp) { fprintf(stderr, "--data and --out are required\n"); return 2; }
    struct mk_injection_options opt = {.model_path = model, .no_model = no_model, .force_pcre2 = pcre2};
    struct mk_injection *det;
    int rc = mk_injection_new(&opt, &det);
    if (rc) { fprintf(stderr, "detector: %d\n", rc); return 1; }
    FILE *in = fopen(data, "rb"), *out = fopen(outp, "wb");
    if (!in || !out) { fprintf(stderr, "cannot open files: %s\n", strerror(errno)); return 1; }
    char *line = NULL;
    size_t cap = 0, lineno = 0, rows = 0;
    ssize_t n;
    mk_buf ob = MK_BUF_INIT;
    struct timespec t0, t1;
    double busy = 0, bytes = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        json_object *o = json_tokener_parse(line), *jt, *js, *jid;
        if (!o || !json_object_object_get_ex(o, "text", &jt)) { json_object_put(o); continue; }
        if (strcmp(split, "all") != 0 &&
            (!json_object_object_get_ex(o, "split", &js) || strcmp(json_object_get_string(js), split) != 0)) {
            json_object_put(o);
            continue;
        }
        const char *text = json_object_get_string(jt);
        size_t len = (size_t)json_object_get_string_len(jt);
        struct mk_injection_verdict v;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        rc = mk_injection_scan(det, text, len, &v);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        busy += dt;
        bytes += (double)len;
        mk_buf_reset(&ob);
        if (json_object_object_get_ex(o, "id", &jid)) {
            mk_buf_append_str(&ob, "{\"id\":");
            mk_buf_append_str(&ob, json_object_to_json_string_ext(jid, JSON_C_TO_STRING_PLAIN));
        } else {
            mk_buf_printf(&ob, "{\"id\":%zu", lineno);
        }
        mk_buf_printf(&ob, ",\"rc\":%d,\"score\":%.5f,\"ps\":%.5f,\"mp\":%.5f,\"decision\":\"%s\",\"cat\":\"%s\",\"rules\":[",
                      rc, v.score, v.pattern_score, v.model_score, mk_guard_decision_name(v.decision),
                      mk_injection_category_name(v.top_category));
        unsigned k = v.nmatches < MK_INJ_MAX_MATCHES ? v.nmatches : MK_INJ_MAX_MATCHES;
        for (unsigned i = 0; i < k; i++) mk_buf_printf(&ob, "%s%u", i ? "," : "", v.matches[i]);
        mk_buf_printf(&ob, "],\"norm_flags\":%u,\"bytes\":%zu,\"us\":%.2f}\n", v.norm_flags, len, dt * 1e6);
        fwrite(ob.data, 1, ob.len, out);
        rows++;
        json_object_put(o);
    }
    fprintf(stderr, "eval_injection: %zu rows, backend %s, %.2f us/KB over %.0f KB\n", rows, mk_injection_backend(det),
            bytes > 0 ? busy * 1e6 / (bytes / 1024.0) : 0.0, bytes / 1024.0);
    mk_buf_release(&ob);
    free(line);
    fclose(in);
    fclose(out);
    mk_injection_free(det);
    return 0;
}
