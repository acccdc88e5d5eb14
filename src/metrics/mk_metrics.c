/*
 * mk_metrics: the process-wide registry behind MK_METRIC_MAP and its Prometheus text
 * exposition (format 0.0.4).
 *
 * Layout: one `struct family` per row of the map, each with its own mutex and its own
 * chained hash table of series keyed by the label values. A per-family lock (rather
 * than one global lock) keeps unrelated hot paths (request counters vs. upstream
 * histograms) from contending. A series is one malloc holding the struct, its copied
 * label values and, for histograms, the bucket counts; after it exists, recording a
 * sample is hash + compare + add, with no allocation.
 *
 * Cardinality is capped per family (MK_METRICS_MAX_SERIES): label values come from
 * our own tables (routes, deployments) but a bug or a hostile value must not grow
 * memory without bound; samples for new series beyond the cap are dropped and
 * counted in a warning log line.
 */
#include "mk_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_utf8.h"

static const double buckets_latency[] = {MK_BUCKETS_LATENCY};
static const double buckets_overhead[] = {MK_BUCKETS_OVERHEAD};
#define NBUCKETS_LATENCY (sizeof buckets_latency / sizeof buckets_latency[0])
#define NBUCKETS_OVERHEAD (sizeof buckets_overhead / sizeof buckets_overhead[0])

/* The label-name list of each row, with a leading NULL so that rows without labels
 * still give a valid (non-empty) initializer; the count subtracts it again. */
#define LABELS_ARRAY(id, name, type, help, ...) static const char *const labels_##id[] = {NULL, __VA_ARGS__};
MK_METRIC_MAP(LABELS_ARRAY)
#undef LABELS_ARRAY

struct metric_def {
    const char *name;
    enum mk_metric_type type;
    const char *help;
    const char *const *labels; /* label names */
    size_t nlabels;
};

static const struct metric_def defs[MK_METRIC_COUNT] = {
#define DEF_ROW(id, name, type, help, ...) \
    [MK_METRIC_##id] = {name, type, help, labels_##id + 1, sizeof labels_##id / sizeof labels_##id[0] - 1},
    MK_METRIC_MAP(DEF_ROW)
#undef DEF_ROW
};

struct series {
    struct series *next;     /* hash chain */
    struct series *order;    /* creation order, for stable rendering */
    uint64_t hash;
    double value;            /* counter/gauge */
    double sum;              /* histogram */
    uint64_t count;          /* histogram */
    uint64_t *buckets;       /* histogram: nbuckets + 1 (last = above every bound), not cumulative */
    char *values[];          /* nlabels copied label values (stored in the same block) */
};

struct family {
    pthread_mutex_t lock;
    struct series **table;   /* power-of-two sized, NULL until first use */
    size_t table_size;
    size_t nseries;
    struct series *first, *last; /* creation order */
    uint64_t dropped;        /* samples dropped by the cardinality cap */
};

static struct family families[MK_METRIC_COUNT] = {
#define FAM_ROW(id, ...) [MK_METRIC_##id] = {.lock = PTHREAD_MUTEX_INITIALIZER},
    MK_METRIC_MAP(FAM_ROW)
#undef FAM_ROW
};

static const double *bucket_bounds(enum mk_metric_id id, size_t *n)
{
    if (id == MK_METRIC_GATEWAY_OVERHEAD) {
        *n = NBUCKETS_OVERHEAD;
        return buckets_overhead;
    }
    *n = NBUCKETS_LATENCY;
    return buckets_latency;
}

static inline const char *label_at(const char *const *labels, size_t i)
{
    const char *v = labels[i];
    return v ? v : "";
}

/* FNV-1a over the values, with a 0xff separator (a byte UTF-8 text never holds) so
 * that ("ab","c") and ("a","bc") hash apart. */
static uint64_t hash_labels(const char *const *labels, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)label_at(labels, i); *p; p++) {
            h ^= *p;
            h *= 1099511628211ull;
        }
        h ^= 0xff;
        h *= 1099511628211ull;
    }
    return h;
}

static bool labels_match(const struct series *s, const char *const *labels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], label_at(labels, i)) != 0) return false;
    return true;
}

static int grow_table(struct family *f)
{
    size_t nsize = f->table_size ? f->table_size * 2 : 16;
    struct series **nt = calloc(nsize, sizeof *nt);
    if (!nt) return MK_ENOMEM;
    for (size_t i = 0; i < f->table_size; i++) {
        struct series *s = f->table[i];
        while (s) {
            struct series *next = s->next;
            size_t b = (size_t)(s->hash & (nsize - 1));
            s->next = nt[b];
            nt[b] = s;
            s = next;
        }
    }
    free(f->table);
    f->table = nt;
    f->table_size = nsize;
    return 0;
}

/* Finds or creates the series; caller holds f->lock. NULL when the cap is reached or
 * memory ran out (the sample is then dropped: metrics must never fail a request). */
static struct series *lookup(enum mk_metric_id id, const char *const *labels)
{
    const struct metric_def *d = &defs[id];
    struct family *f = &families[id];
    uint64_t h = hash_labels(labels, d->nlabels);
    if (f->table) {
        for (struct series *s = f->table[h & (f->table_size - 1)]; s; s = s->next)
            if (s->hash == h && labels_match(s, labels, d->nlabels)) return s;
    }
    if (f->nseries >= MK_METRICS_MAX_SERIES) {
        if (f->dropped++ == 0)
            mk_log(MK_LOG_WARN, "metrics_series_cap", "metric", d->name, "msg",
                   "too many label combinations; new series are dropped", NULL);
        return NULL;
    }
    if (f->nseries >= f->table_size && grow_table(f) != 0) return NULL;

    size_t nb = 0;
    if (d->type == MK_HISTOGRAM) bucket_bounds(id, &nb);
    size_t nlabels = d->nlabels;
    size_t strbytes = 0;
    for (size_t i = 0; i < nlabels; i++) strbytes += strlen(label_at(labels, i)) + 1;
    size_t head = sizeof(struct series) + nlabels * sizeof(char *);
    head = (head + 7) & ~(size_t)7; /* align the bucket array */
    size_t bucket_bytes = d->type == MK_HISTOGRAM ? (nb + 1) * sizeof(uint64_t) : 0;
    struct series *s = calloc(1, head + bucket_bytes + strbytes);
    if (!s) return NULL;
    char *base = (char *)s;
    if (bucket_bytes) s->buckets = (uint64_t *)(void *)(base + head);
    char *str = base + head + bucket_bytes;
    for (size_t i = 0; i < nlabels; i++) {
        size_t n = strlen(label_at(labels, i)) + 1;
        memcpy(str, label_at(labels, i), n);
        s->values[i] = str;
        str += n;
    }
    s->hash = h;
    size_t b = (size_t)(h & (f->table_size - 1));
    s->next = f->table[b];
    f->table[b] = s;
    if (f->last)
        f->last->order = s;
    else
        f->first = s;
    f->last = s;
    f->nseries++;
    return s;
}

/* Rejects calls that cannot be honoured safely: unknown ids, and a NULL label array
 * for a row that has labels. */
static bool usable(enum mk_metric_id id, const char *const *labels)
{
    if ((unsigned)id >= MK_METRIC_COUNT) return false;
    if (defs[id].nlabels > 0 && !labels) return false;
    return true;
}

void mk_metric_add(enum mk_metric_id id, const char *const *labels, double v)
{
    if (!usable(id, labels)) return;
    const struct metric_def *d = &defs[id];
    if (d->type == MK_HISTOGRAM) return;
    /* A counter only goes up; a negative or NaN add would corrupt rate(). */
    if (d->type == MK_COUNTER && !(v >= 0)) return;
    struct family *f = &families[id];
    pthread_mutex_lock(&f->lock);
    struct series *s = lookup(id, labels);
    if (s) s->value += v;
    pthread_mutex_unlock(&f->lock);
}

void mk_metric_set(enum mk_metric_id id, const char *const *labels, double v)
{
    if (!usable(id, labels)) return;
    if (defs[id].type != MK_GAUGE) return; /* setting a counter would break monotonicity */
    struct family *f = &families[id];
    pthread_mutex_lock(&f->lock);
    struct series *s = lookup(id, labels);
    if (s) s->value = v;
    pthread_mutex_unlock(&f->lock);
}

void mk_metric_observe(enum mk_metric_id id, const char *const *labels, double seconds)
{
    if (!usable(id, labels)) return;
    if (defs[id].type != MK_HISTOGRAM) return;
    if (isnan(seconds)) return;
    size_t nb;
    const double *bounds = bucket_bounds(id, &nb);
    size_t bi = 0;
    while (bi < nb && seconds > bounds[bi]) bi++; /* le is inclusive */
    struct family *f = &families[id];
    pthread_mutex_lock(&f->lock);
    struct series *s = lookup(id, labels);
    if (s) {
        s->buckets[bi]++;
        s->count++;
        s->sum += seconds;
    }
    pthread_mutex_unlock(&f->lock);
}

double mk_metric_value(enum mk_metric_id id, const char *const *labels)
{
    if (!usable(id, labels)) return 0;
    const struct metric_def *d = &defs[id];
    struct family *f = &families[id];
    double v = 0;
    pthread_mutex_lock(&f->lock);
    if (f->table) {
        uint64_t h = hash_labels(labels, d->nlabels);
        for (struct series *s = f->table[h & (f->table_size - 1)]; s; s = s->next) {
            if (s->hash == h && labels_match(s, labels, d->nlabels)) {
                v = d->type == MK_HISTOGRAM ? (double)s->count : s->value;
                break;
            }
        }
    }
    pthread_mutex_unlock(&f->lock);
    return v;
}

void mk_metrics_reset(void)
{
    for (size_t id = 0; id < MK_METRIC_COUNT; id++) {
        struct family *f = &families[id];
        pthread_mutex_lock(&f->lock);
        struct series *s = f->first;
        while (s) {
            struct series *next = s->order;
            free(s);
            s = next;
        }
        free(f->table);
        f->table = NULL;
        f->table_size = 0;
        f->nseries = 0;
        f->first = f->last = NULL;
        f->dropped = 0;
        pthread_mutex_unlock(&f->lock);
    }
}

/* ---- exposition ----------------------------------------------------------- */

int mk_metrics_format_number(char *out, size_t outlen, double v)
{
    if (outlen < 32) return MK_EINVAL;
    if (isnan(v) || isinf(v)) {
        snprintf(out, outlen, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return 0;
    }
    /* Integral values below 2^53 are exact in a double: print them as integers so
     * counters read "12" and not "1.2e+01"-style forms. */
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, outlen, "%.0f", v);
        if (strcmp(out, "-0") == 0) snprintf(out, outlen, "0");
        return 0;
    }
    /* Shortest of 15/16/17 significant digits that reads back as the same double. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v) break;
    }
    return 0;
}

/* Label values: Prometheus wants \\, \" and \n escaped and UTF-8 text; an invalid
 * byte becomes U+FFFD so one bad value cannot make the whole scrape unparsable. */
static int append_label_value(mk_buf *out, const char *s)
{
    size_t len = strlen(s);
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len) {
            unsigned char c = (unsigned char)s[run];
            if (c == '\\' || c == '"' || c == '\n') break;
            if (c < 0x80) {
                run++;
                continue;
            }
            size_t n = mk_utf8_valid_prefix(s + run, len - run);
            if (n == 0) break;
            run += n;
        }
        if (run > i) {
            int rc = mk_buf_append(out, s + i, run - i);
            if (rc) return rc;
        }
        i = run;
        if (i >= len) break;
        unsigned char c = (unsigned char)s[i];
        const char *rep = c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : "\xEF\xBF\xBD";
        int rc = mk_buf_append_str(out, rep);
        if (rc) return rc;
        i++;
    }
    return 0;
}

/* HELP text escapes only \\ and \n. */
static int append_help(mk_buf *out, const char *s)
{
    for (; *s; s++) {
        int rc = *s == '\\' ? mk_buf_append_str(out, "\\\\")
                 : *s == '\n' ? mk_buf_append_str(out, "\\n")
                              : mk_buf_append_char(out, *s);
        if (rc != 0) return rc;
    }
    return 0;
}

/* name{l1="v1",l2="v2"[,le="x"]} value\n */
static int append_sample(mk_buf *out, const struct metric_def *d, const char *suffix, const struct series *s,
                         const char *le, double v)
{
    char num[64];
    int rc = mk_buf_append_str(out, d->name);
    if (!rc && suffix) rc = mk_buf_append_str(out, suffix);
    bool any = s && d->nlabels > 0;
    if (!rc && (any || le)) {
        rc = mk_buf_append_char(out, '{');
        for (size_t i = 0; !rc && any && i < d->nlabels; i++) {
            if (i > 0) rc = mk_buf_append_char(out, ',');
            if (!rc) rc = mk_buf_printf(out, "%s=\"", d->labels[i]);
            if (!rc) rc = append_label_value(out, s->values[i]);
            if (!rc) rc = mk_buf_append_char(out, '"');
        }
        if (!rc && le) rc = mk_buf_printf(out, "%sle=\"%s\"", any ? "," : "", le);
        if (!rc) rc = mk_buf_append_char(out, '}');
    }
    mk_metrics_format_number(num, sizeof num, v);
    if (!rc) rc = mk_buf_printf(out, " %s\n", num);
    return rc;
}

static int render_histogram(mk_buf *out, enum mk_metric_id id, const struct series *s)
{
    const struct metric_def *d = &defs[id];
    size_t nb;
    const double *bounds = bucket_bounds(id, &nb);
    uint64_t cum = 0;
    char le[64];
    for (size_t i = 0; i < nb; i++) {
        cum += s ? s->buckets[i] : 0;
        mk_metrics_format_number(le, sizeof le, bounds[i]);
        int rc = append_sample(out, d, "_bucket", s, le, (double)cum);
        if (rc) return rc;
    }
    uint64_t count = s ? s->count : 0;
    int rc = append_sample(out, d, "_bucket", s, "+Inf", (double)count);
    if (!rc) rc = append_sample(out, d, "_sum", s, NULL, s ? s->sum : 0);
    if (!rc) rc = append_sample(out, d, "_count", s, NULL, (double)count);
    return rc;
}

static int render_family(mk_buf *out, enum mk_metric_id id)
{
    static const char *const type_names[] = {[MK_COUNTER] = "counter", [MK_GAUGE] = "gauge",
                                              [MK_HISTOGRAM] = "histogram"};
    const struct metric_def *d = &defs[id];
    int rc = mk_buf_printf(out, "# HELP %s ", d->name);
    if (!rc) rc = append_help(out, d->help);
    if (!rc) rc = mk_buf_printf(out, "\n# TYPE %s %s\n", d->name, type_names[d->type]);
    if (rc) return rc;

    struct family *f = &families[id];
    /* The label-less metrics render a zero sample before first use, so dashboards see
     * "0 in flight" instead of no data. */
    if (!f->first && d->nlabels == 0) {
        if (d->type == MK_HISTOGRAM) return render_histogram(out, id, NULL);
        return append_sample(out, d, NULL, NULL, NULL, 0);
    }
    for (const struct series *s = f->first; s; s = s->order) {
        rc = d->type == MK_HISTOGRAM ? render_histogram(out, id, s) : append_sample(out, d, NULL, s, NULL, s->value);
        if (rc) return rc;
    }
    return 0;
}

int mk_metrics_render(mk_buf *out)
{
    if (!out) return MK_EINVAL;
    size_t start = out->len;
    for (size_t id = 0; id < MK_METRIC_COUNT; id++) {
        struct family *f = &families[id];
        pthread_mutex_lock(&f->lock);
        int rc = render_family(out, (enum mk_metric_id)id);
        pthread_mutex_unlock(&f->lock);
        if (rc) {
            /* Never hand out half a scrape. */
            out->len = start;
            if (out->data) out->data[start] = '\0';
            return rc;
        }
    }
    return 0;
}
