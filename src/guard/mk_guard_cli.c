/*
 * mk_guard_cli: `mayak guard train`, the trainer of the injection classifier.
 *
 * Reads labelled JSONL ({"text": ..., "label": 0|1, "split": ...}), normalises
 * each text exactly as the detector does, extracts the same hashed features
 * (injection_model.c) and fits logistic regression by SGD with class-balanced
 * loss and L2 decay. Deterministic: rows keep file order, each epoch's shuffle
 * comes from a seeded xorshift generator, and float arithmetic runs in a fixed
 * order, so the same data and options give the same model bytes (a test checks).
 *
 * Test rows are never trained on: a row whose "split" is "test" is skipped
 * whatever --split says, and rows of other splits than --split (default
 * "train") are skipped too; rows without a split are used (project-written sets).
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "guard/injection_int.h"
#include "guard/mk_injection.h"
#include "guard/mk_normalize.h"

#define MAX_DATA_FILES 16
#define MAX_LINE_BYTES (4u * 1024 * 1024)

struct train_opts {
    const char *data[MAX_DATA_FILES];
    int ndata;
    const char *out;
    const char *emit_c;
    const char *split;
    unsigned bits;
    unsigned epochs;
    unsigned long long seed;
    double lr;
    double l2;
    double norm_power;
    uint32_t features;
};

struct rows {
    uint32_t *feat;  /* all rows' features, concatenated */
    size_t nfeat, capfeat;
    size_t *off;     /* row i: feat[off[i] .. off[i+1]) */
    uint8_t *label;
    size_t n, cap;
    size_t pos, neg, skipped_test, skipped_split, skipped_bad;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: mayak guard train --data FILE.jsonl [--data FILE ...] --out MODEL\n"
            "         [--emit-c FILE.c] [--split NAME] [--bits N] [--epochs N] [--seed N] [--lr X] [--l2 X] [--norm-power P]\n"
            "         [--features LIST]   LIST: comma-separated c2,c3,c4,c5 (character n-grams), w1,w2 (words)\n"
            "  Trains the prompt-injection classifier from JSONL rows {\"text\", \"label\" (0|1), \"split\"}.\n"
            "  Rows of split \"test\" are never used; rows of another split than NAME (default train) are skipped.\n");
}

static int parse_ull(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
    if (!s || !*s) return MK_EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi || s[0] == '-') return MK_EINVAL;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    if (!s || !*s) return MK_EINVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return MK_EINVAL;
    *out = v;
    return 0;
}

/* "c3,c4,w1" -> INJ_FEAT_* bits; 0 when the list is empty or names something unknown. */
static uint32_t parse_features(const char *s)
{
    static const struct { const char *name; uint32_t bit; } names[] = {
        {"c2", INJ_FEAT_CHAR2}, {"c3", INJ_FEAT_CHAR3}, {"c4", INJ_FEAT_CHAR4},
        {"c5", INJ_FEAT_CHAR5}, {"w1", INJ_FEAT_WORD1}, {"w2", INJ_FEAT_WORD2},
    };
    uint32_t bits = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && !(strlen(names[k].name) == n && memcmp(names[k].name, s, n) == 0)) k++;
        if (k == sizeof(names) / sizeof(names[0])) return 0;
        bits |= names[k].bit;
        s += n;
        if (*s == ',') s++;
    }
    return bits;
}

static int parse_args(int argc, char **argv, struct train_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->split = "train";
    o->bits = INJ_MODEL_DEFAULT_BITS;
    o->epochs = 12;
    o->seed = 1;
    o->lr = 4.0;
    o->norm_power = INJ_DEFAULT_NORM_POWER;
    o->l2 = 1e-4;
    o->features = INJ_FEAT_DEFAULT;
    int i = 1;
    /* Accept both `train --data ...` and `--data ...` (argv[0] is the command). */
    if (i < argc && strcmp(argv[i], "train") == 0) i++;
    for (; i < argc; i += 2) { /* every option takes one value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long u;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (!v) { fprintf(stderr, "guard train: %s needs a value\n", a); return MK_EINVAL; }
        if (strcmp(a, "--data") == 0) {
            if (o->ndata == MAX_DATA_FILES) { fprintf(stderr, "guard train: at most %d --data files\n", MAX_DATA_FILES); return MK_EINVAL; }
            o->data[o->ndata++] = v;
        } else if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--emit-c") == 0) o->emit_c = v;
        else if (strcmp(a, "--norm-power") == 0) {
            if (parse_double(v, 0, 1, &o->norm_power)) { fprintf(stderr, "guard train: --norm-power 0..1\n"); return MK_EINVAL; }
        }
        else if (strcmp(a, "--split") == 0) o->split = v;
        else if (strcmp(a, "--features") == 0) {
            if (!(o->features = parse_features(v))) { fprintf(stderr, "guard train: --features: c2,c3,c4,c5,w1,w2\n"); return MK_EINVAL; }
        }
        else if (strcmp(a, "--bits") == 0) {
            if (parse_ull(v, INJ_MODEL_MIN_BITS, INJ_MODEL_MAX_BITS, &u)) { fprintf(stderr, "guard train: --bits %d..%d\n", INJ_MODEL_MIN_BITS, INJ_MODEL_MAX_BITS); return MK_EINVAL; }
            o->bits = (unsigned)u;
        } else if (strcmp(a, "--epochs") == 0) {
            if (parse_ull(v, 1, 1000, &u)) { fprintf(stderr, "guard train: --epochs 1..1000\n"); return MK_EINVAL; }
            o->epochs = (unsigned)u;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_ull(v, 0, ~0ULL, &u)) { fprintf(stderr, "guard train: bad --seed\n"); return MK_EINVAL; }
            o->seed = u;
        } else if (strcmp(a, "--lr") == 0) {
            if (parse_double(v, 1e-6, 100, &o->lr)) { fprintf(stderr, "guard train: bad --lr\n"); return MK_EINVAL; }
        } else if (strcmp(a, "--l2") == 0) {
            if (parse_double(v, 0, 1, &o->l2)) { fprintf(stderr, "guard train: bad --l2\n"); return MK_EINVAL; }
        } else {
            fprintf(stderr, "guard train: unknown option %s\n", a);
            return MK_EINVAL;
        }
    }
    if (o->ndata == 0 || !o->out) { fprintf(stderr, "guard train: --data and --out are required\n"); return MK_EINVAL; }
    /* The model stores the power in thousandths; train with exactly that value. */
    o->norm_power = (double)lrint(o->norm_power * 1000.0) / 1000.0;
    if (strcmp(o->split, "test") == 0) { fprintf(stderr, "guard train: refusing to train on the test split\n"); return MK_EINVAL; }
    return 0;
}

static int rows_add(struct rows *r, const struct inj_feats *f, int label)
{
    if (r->n + 1 >= r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        size_t *off = realloc(r->off, (cap + 1) * sizeof(*off));
        if (!off) return MK_ENOMEM;
        r->off = off;
        uint8_t *lab = realloc(r->label, cap);
        if (!lab) return MK_ENOMEM;
        r->label = lab;
        r->cap = cap;
    }
    if (r->nfeat + f->n > r->capfeat) {
        size_t cap = r->capfeat ? r->capfeat : 65536;
        while (cap < r->nfeat + f->n) cap *= 2;
        uint32_t *v = realloc(r->feat, cap * sizeof(*v));
        if (!v) return MK_ENOMEM;
        r->feat = v;
        r->capfeat = cap;
    }
    if (r->n == 0) r->off[0] = 0;
    memcpy(r->feat + r->nfeat, f->v, f->n * sizeof(*f->v));
    r->nfeat += f->n;
    r->label[r->n] = (uint8_t)label;
    r->n++;
    r->off[r->n] = r->nfeat;
    if (label) r->pos++; else r->neg++;
    return 0;
}

static void rows_release(struct rows *r)
{
    free(r->feat);
    free(r->off);
    free(r->label);
}

/* One JSON line -> features -> rows. Bad rows are counted, not fatal. */
static int load_line(const char *line, size_t len, const struct train_opts *o, struct mk_norm *norm,
                     struct inj_feats *f, struct rows *r)
{
    json_tokener *tok = json_tokener_new();
    if (!tok) return MK_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, line, (int)len);
    json_tokener_free(tok);
    int rc = 0;
    json_object *jt, *jl, *js;
    if (!obj || !json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, "text", &jt) ||
        !json_object_is_type(jt, json_type_string) || !json_object_object_get_ex(obj, "label", &jl)) {
        r->skipped_bad++;
        goto out;
    }
    if (json_object_object_get_ex(obj, "split", &js) && json_object_is_type(js, json_type_string)) {
        const char *split = json_object_get_string(js);
        if (strcmp(split, "test") == 0) { r->skipped_test++; goto out; }
        if (strcmp(split, o->split) != 0) { r->skipped_split++; goto out; }
    }
    int label;
    if (json_object_is_type(jl, json_type_int)) label = (int)json_object_get_int64(jl);
    else if (json_object_is_type(jl, json_type_boolean)) label = json_object_get_boolean(jl);
    else label = -1;
    if (label != 0 && label != 1) { r->skipped_bad++; goto out; }
    const char *text = json_object_get_string(jt);
    size_t tlen = (size_t)json_object_get_string_len(jt);
    if (mk_normalize(norm, text, tlen) != 0) { r->skipped_bad++; goto out; }
    f->n = 0;
    mk_slice b = mk_norm_view_slice(norm, MK_NORM_BASE), d = mk_norm_view_slice(norm, MK_NORM_DECODED);
    if ((rc = inj_features(b.ptr, b.len, o->bits, o->features, f))) goto out;
    if (d.len && (rc = inj_features(d.ptr, d.len, o->bits, o->features, f))) goto out;
    rc = rows_add(r, f, label);
out:
    json_object_put(obj);
    return rc;
}

static int load_file(const char *path, const struct train_opts *o, struct mk_norm *norm, struct inj_feats *f, struct rows *r)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) { fprintf(stderr, "guard train: cannot open %s: %s\n", path, strerror(errno)); return MK_EIO; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, fp)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        if ((size_t)n > MAX_LINE_BYTES) { r->skipped_bad++; continue; }
        rc = load_line(line, (size_t)n, o, norm, f, r);
    }
    if (rc == 0 && ferror(fp)) rc = MK_EIO;
    free(line);
    fclose(fp);
    return rc;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int fit(const struct rows *r, const struct train_opts *o, struct inj_model *m)
{
    size_t nw = (size_t)1 << o->bits;
    float *w = calloc(nw, sizeof(*w));
    size_t *order = malloc(r->n * sizeof(*order));
    if (!w || !order) { free(w); free(order); return MK_ENOMEM; }
    for (size_t i = 0; i < r->n; i++) order[i] = i;
    const uint32_t mask = (uint32_t)nw - 1;
    /* Class weights: each class contributes half of the loss. */
    double cw[2] = {(double)r->n / (2.0 * (double)(r->neg ? r->neg : 1)), (double)r->n / (2.0 * (double)(r->pos ? r->pos : 1))};
    double bias = 0;
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    if (rng == 0) rng = 1;
    for (unsigned e = 0; e < o->epochs; e++) {
        for (size_t i = r->n; i > 1; i--) {
            size_t j = (size_t)(xorshift(&rng) % i);
            size_t t = order[i - 1]; order[i - 1] = order[j]; order[j] = t;
        }
        double lr = o->lr / (1.0 + 0.5 * e);
        for (size_t k = 0; k < r->n; k++) {
            size_t i = order[k];
            const uint32_t *f = r->feat + r->off[i];
            size_t n = r->off[i + 1] - r->off[i];
            double inv = inj_length_norm(n, (float)o->norm_power);
            double z = 0;
            for (size_t q = 0; q < n; q++) z += (f[q] & 0x80000000u) ? -w[f[q] & mask] : w[f[q] & mask];
            z = bias + z * inv;
            double p = 1.0 / (1.0 + exp(-z));
            double g = (p - r->label[i]) * cw[r->label[i]];
            float step = (float)(lr * g * inv);
            for (size_t q = 0; q < n; q++) {
                if (f[q] & 0x80000000u) w[f[q] & mask] += step;
                else w[f[q] & mask] -= step;
            }
            bias -= lr * g * 0.1; /* the bias moves slower: it sees every row */
        }
        float decay = (float)(1.0 - lr * o->l2);
        for (size_t b = 0; b < nw; b++) w[b] *= decay;
    }
    float maxabs = 0;
    for (size_t b = 0; b < nw; b++) if (fabsf(w[b]) > maxabs) maxabs = fabsf(w[b]);
    m->bits = o->bits;
    m->features = o->features;
    m->bias = (float)bias;
    m->scale = maxabs > 0 ? maxabs / 127.0f : 1.0f;
    m->norm_power = (float)o->norm_power;
    m->w = malloc(nw);
    if (!m->w) { free(w); free(order); return MK_ENOMEM; }
    for (size_t b = 0; b < nw; b++) {
        long q = lrintf(w[b] / m->scale);
        m->w[b] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    free(w);
    free(order);
    return 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    int k = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (k < 0 || (size_t)k >= sizeof(tmp)) return MK_EINVAL;
    FILE *f = fopen(tmp, "wb");
    if (!f) return MK_EIO;
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) { remove(tmp); return MK_EIO; }
    return 0;
}

static int emit_c(const char *path, const mk_buf *model, int argc, char **argv)
{
    mk_buf c = MK_BUF_INIT;
    int rc = mk_buf_append_str(&c, "/*\n * The built-in default injection classifier (see docs/GUARD.md for its data,\n"
                                   " * licences and the exact command). Generated by the trainer; do not edit:\n *  ");
    for (int i = 0; rc == 0 && i < argc; i++) {
        /* Never let an argument end the comment. */
        for (const char *p = argv[i]; rc == 0 && *p; p++)
            rc = mk_buf_append_char(&c, (p[0] == '*' && p[1] == '/') ? '_' : *p);
        if (rc == 0) rc = mk_buf_append_char(&c, ' ');
    }
    if (rc == 0) rc = mk_buf_append_str(&c, "\n */\n#include \"guard/injection_int.h\"\n\nconst uint8_t mk_guard_default_model[] = {\n");
    const uint8_t *d = (const uint8_t *)model->data;
    for (size_t i = 0; rc == 0 && i < model->len; i++)
        rc = mk_buf_printf(&c, "%u,%s", d[i], (i % 24 == 23) ? "\n" : "");
    if (rc == 0) rc = mk_buf_printf(&c, "\n};\nconst size_t mk_guard_default_model_len = sizeof(mk_guard_default_model);\n");
    if (rc == 0) rc = write_file(path, c.data, c.len);
    mk_buf_release(&c);
    return rc;
}

int mk_guard_train_main(int argc, char **argv)
{
    struct train_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) { usage(); return rc == 1 ? 0 : 2; }
    struct rows r = {0};
    struct mk_norm norm;
    mk_norm_init(&norm);
    struct inj_feats f = {0};
    struct inj_model m = {0};
    mk_buf out = MK_BUF_INIT;
    for (int i = 0; rc == 0 && i < o.ndata; i++) rc = load_file(o.data[i], &o, &norm, &f, &r);
    if (rc == 0 && (r.pos == 0 || r.neg == 0)) {
        fprintf(stderr, "guard train: need both labels (have %zu attacks, %zu benign)\n", r.pos, r.neg);
        rc = MK_EINVAL;
    }
    if (rc == 0) rc = fit(&r, &o, &m);
    if (rc == 0) rc = inj_model_serialize(&m, &out);
    if (rc == 0) rc = write_file(o.out, out.data, out.len);
    if (rc == 0 && o.emit_c) rc = emit_c(o.emit_c, &out, argc, argv);
    if (rc == 0) {
        /* Training-set fit, as a sanity check (not an evaluation). */
        size_t right = 0;
        for (size_t i = 0; i < r.n; i++) {
            float z = inj_model_logit(&m, r.feat + r.off[i], r.off[i + 1] - r.off[i]);
            right += (z >= 0) == (r.label[i] == 1);
        }
        fprintf(stderr,
                "guard train: %zu rows (%zu attacks, %zu benign); skipped %zu test, %zu other split, %zu bad; "
                "train accuracy %.4f; %zu bytes -> %s\n",
                r.n, r.pos, r.neg, r.skipped_test, r.skipped_split, r.skipped_bad,
                r.n ? (double)right / (double)r.n : 0.0, out.len, o.out);
    } else {
        fprintf(stderr, "guard train: failed: %s\n", mk_strerror(rc));
    }
    free(m.w);
    mk_buf_release(&out);
    inj_feats_release(&f);
    mk_norm_release(&norm);
    rows_release(&r);
    return rc == 0 ? 0 : 1;
}
