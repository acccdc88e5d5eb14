/*
 * mk_injection: the prompt-injection detector (see mk_injection.h).
 *
 * A scan: normalise (all views) -> match the rules on every view -> score the
 * classifier on BASE and DECODED -> combine -> apply the policy. Rules that
 * match only in a decoded (base64/hex/URL) segment count like any other: hiding
 * an instruction in an encoding is itself a sign of intent.
 *
 * Per-thread workspace: normalisation buffers, the matcher's scratch, feature
 * and hit arrays. It lives in thread-local storage (a pthread key, so it is
 * freed at thread exit) and is rebound when the thread scans with a different
 * detector (a detector generation number, not its address, tells them apart:
 * a freed detector's address can be reused).
 */
#include "guard/mk_injection.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "guard/injection_int.h"
#include "guard/mk_normalize.h"

/* Default thresholds: tuned on the train and valid splits only (bench/guard,
 * docs/GUARD.md). flag catches more, block is kept for confident scores. */
#define DEFAULT_FLAG_THRESHOLD 0.50f
#define DEFAULT_BLOCK_THRESHOLD 0.60f

struct mk_injection {
    struct inj_matcher *matcher;
    struct inj_model *model; /* NULL when no_model */
    struct mk_injection_policy policy;
    uint64_t generation;
};

struct workspace {
    uint64_t generation; /* detector the scratch is prepared for */
    struct mk_norm norm;
    struct inj_scratch *scratch;
    uint8_t *hits;
    size_t hits_cap;
};

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t next_generation = 1;

static void ws_destroy(void *p)
{
    struct workspace *ws = p;
    if (!ws) return;
    mk_norm_release(&ws->norm);
    inj_scratch_free(ws->scratch);
    free(ws->hits);
    free(ws);
}

static void ws_key_init(void) { (void)pthread_key_create(&ws_key, ws_destroy); }

static struct workspace *ws_get(const struct mk_injection *det)
{
    pthread_once(&ws_once, ws_key_init);
    struct workspace *ws = pthread_getspecific(ws_key);
    if (!ws) {
        ws = calloc(1, sizeof(*ws));
        if (!ws) return NULL;
        mk_norm_init(&ws->norm);
        if (pthread_setspecific(ws_key, ws) != 0) { free(ws); return NULL; }
    }
    if (ws->generation != det->generation) {
        if (inj_scratch_prepare(det->matcher, &ws->scratch) != 0) return NULL;
        if (ws->hits_cap < mk_injection_pattern_count) {
            uint8_t *h = realloc(ws->hits, mk_injection_pattern_count);
            if (!h) return NULL;
            ws->hits = h;
            ws->hits_cap = mk_injection_pattern_count;
        }
        ws->generation = det->generation;
    }
    return ws;
}

/* ---- names and policy ---- */

const char *mk_injection_category_name(enum mk_injection_category c)
{
    switch (c) {
    case MK_INJ_OVERRIDE: return "override";
    case MK_INJ_EXTRACTION: return "extraction";
    case MK_INJ_ROLEPLAY: return "roleplay";
    case MK_INJ_INDIRECT: return "indirect";
    case MK_INJ_CLASSIFIER: return "classifier";
    default: return "none";
    }
}

const char *mk_guard_decision_name(enum mk_guard_decision d)
{
    switch (d) {
    case MK_GUARD_FLAG: return "flag";
    case MK_GUARD_BLOCK: return "block";
    default: return "allow";
    }
}

void mk_injection_policy_default(struct mk_injection_policy *p)
{
    p->action = MK_GUARD_BLOCK;
    p->flag_threshold = DEFAULT_FLAG_THRESHOLD;
    p->block_threshold = DEFAULT_BLOCK_THRESHOLD;
}

int mk_injection_action_parse(const char *s, enum mk_guard_decision *out)
{
    if (!s || !out) return MK_EINVAL;
    if (strcmp(s, "allow") == 0) *out = MK_GUARD_ALLOW;
    else if (strcmp(s, "flag") == 0) *out = MK_GUARD_FLAG;
    else if (strcmp(s, "block") == 0) *out = MK_GUARD_BLOCK;
    else return MK_EINVAL;
    return 0;
}

int mk_injection_policy_check(const struct mk_injection_policy *p)
{
    if (!p) return MK_EINVAL;
    if (p->action != MK_GUARD_ALLOW && p->action != MK_GUARD_FLAG && p->action != MK_GUARD_BLOCK) return MK_EINVAL;
    if (!(p->flag_threshold >= 0.0f) || !(p->block_threshold >= p->flag_threshold)) return MK_EINVAL;
    return 0;
}

int mk_injection_rule_info(unsigned id, enum mk_injection_category *category, float *weight, const char **lang)
{
    for (size_t i = 0; i < mk_injection_pattern_count; i++) {
        if (mk_injection_patterns[i].id != id) continue;
        if (category) *category = mk_injection_patterns[i].category;
        if (weight) *weight = mk_injection_patterns[i].weight;
        if (lang) *lang = mk_injection_patterns[i].lang;
        return 0;
    }
    return MK_ENOTFOUND;
}

/* ---- lifecycle ---- */

int mk_injection_new(const struct mk_injection_options *opt, struct mk_injection **out)
{
    if (!out) return MK_EINVAL;
    *out = NULL;
    struct mk_injection_options none = {0};
    if (!opt) opt = &none;
    struct mk_injection *det = calloc(1, sizeof(*det));
    if (!det) return MK_ENOMEM;
    int rc = 0;
    if (opt->policy) {
        if ((rc = mk_injection_policy_check(opt->policy))) goto fail;
        det->policy = *opt->policy;
    } else {
        mk_injection_policy_default(&det->policy);
    }
    if (!opt->no_model) {
        rc = opt->model_path ? inj_model_load(opt->model_path, &det->model)
                             : inj_model_parse(mk_guard_default_model, mk_guard_default_model_len, &det->model);
        if (rc) goto fail;
    }
    if ((rc = inj_matcher_new(mk_injection_patterns, mk_injection_pattern_count, opt->cache_dir, opt->force_pcre2,
                              &det->matcher)))
        goto fail;
    det->generation = atomic_fetch_add(&next_generation, 1);
    *out = det;
    return 0;
fail:
    mk_injection_free(det);
    return rc;
}

void mk_injection_free(struct mk_injection *det)
{
    if (!det) return;
    inj_matcher_free(det->matcher);
    inj_model_free(det->model);
    free(det);
}

const char *mk_injection_backend(const struct mk_injection *det) { return inj_matcher_backend(det->matcher); }

/* ---- scanning ---- */

static void fail_closed(struct mk_injection_verdict *out)
{
    memset(out, 0, sizeof(*out));
    out->score = 1.0f;
    out->decision = MK_GUARD_BLOCK;
}

int mk_injection_scan_policy(const struct mk_injection *det, const char *text, size_t len,
                             const struct mk_injection_policy *policy, struct mk_injection_verdict *out)
{
    if (!out) return MK_EINVAL;
    fail_closed(out);
    if (!det || !policy || (!text && len)) return MK_EINVAL;
    struct workspace *ws = ws_get(det);
    if (!ws) return MK_ENOMEM;
    int rc = mk_normalize(&ws->norm, text, len);
    if (rc) return rc;

    /* Rules over every view. */
    memset(ws->hits, 0, mk_injection_pattern_count);
    for (int v = 0; v < MK_NORM_VIEW_COUNT; v++) {
        mk_slice s = mk_norm_view_slice(&ws->norm, (enum mk_norm_view)v);
        if (s.len && (rc = inj_matcher_scan(det->matcher, ws->scratch, s.ptr, s.len, ws->hits))) return rc;
    }
    double keep = 1.0; /* prod(1 - w) over matched rules */
    float best = 0.0f;
    enum mk_injection_category top = MK_INJ_NONE;
    unsigned nm = 0;
    unsigned ids[MK_INJ_MAX_MATCHES];
    for (size_t i = 0; i < mk_injection_pattern_count; i++) {
        if (!ws->hits[i]) continue;
        const struct mk_injection_pattern *p = &mk_injection_patterns[i];
        keep *= 1.0 - p->weight;
        if (p->weight > best) { best = p->weight; top = p->category; }
        if (nm < MK_INJ_MAX_MATCHES) ids[nm] = p->id;
        nm++;
    }
    /* Ids ascending (the table is ordered by id, but do not rely on it). */
    unsigned kept = nm < MK_INJ_MAX_MATCHES ? nm : MK_INJ_MAX_MATCHES;
    for (unsigned a = 1; a < kept; a++)
        for (unsigned b = a; b > 0 && ids[b - 1] > ids[b]; b--) { unsigned t = ids[b]; ids[b] = ids[b - 1]; ids[b - 1] = t; }

    /* Classifier over BASE and DECODED. */
    float mp = 0.0f;
    if (det->model) {
        const struct inj_model *m = det->model;
        struct inj_score_acc acc = {0, 0};
        mk_slice b = mk_norm_view_slice(&ws->norm, MK_NORM_BASE);
        mk_slice d = mk_norm_view_slice(&ws->norm, MK_NORM_DECODED);
        inj_model_accumulate(m, b.ptr, b.len, &acc);
        if (d.len) inj_model_accumulate(m, d.ptr, d.len, &acc);
        float z = inj_model_logit_acc(m, &acc);
        mp = 1.0f / (1.0f + expf(-z));
    }

    float ps = (float)(1.0 - keep);
    float score = 1.0f - (1.0f - ps) * (1.0f - mp);
    memset(out, 0, sizeof(*out));
    out->score = score;
    out->pattern_score = ps;
    out->model_score = mp;
    out->nmatches = nm;
    memcpy(out->matches, ids, kept * sizeof(ids[0]));
    out->norm_flags = ws->norm.flags;
    out->top_category = top != MK_INJ_NONE ? top : (mp >= policy->flag_threshold ? MK_INJ_CLASSIFIER : MK_INJ_NONE);
    out->decision = MK_GUARD_ALLOW;
    if (policy->action >= MK_GUARD_FLAG && score >= policy->flag_threshold) out->decision = MK_GUARD_FLAG;
    if (policy->action == MK_GUARD_BLOCK && score >= policy->block_threshold) out->decision = MK_GUARD_BLOCK;
    return 0;
}

int mk_injection_scan(const struct mk_injection *det, const char *text, size_t len, struct mk_injection_verdict *out)
{
    if (!det) {
        if (out) fail_closed(out);
        return MK_EINVAL;
    }
    return mk_injection_scan_policy(det, text, len, &det->policy, out);
}
