/*
 * injection_match: matching the guard's rules against normalised text.
 *
 * Two stages. Hyperscan (block mode) scans every rule's anchor, a cheap phrase
 * each match must contain, in one pass; PCRE2 JIT then confirms the full rule
 * only for rules whose anchor was seen, starting near the anchor. Benign text
 * rarely hits an anchor, so the expensive stage seldom runs. Compiling the full
 * rules in Hyperscan was measured at ~15 s for the word-gap rules ("ignore ...
 * previous ... instructions" with bounded gaps and Cyrillic stems); anchors
 * compile in well under a second, so the serialised-database cache is an
 * option for very large rule sets, not a necessity.
 *
 * Hyperscan needs SSSE3: where hs_valid_platform() says no (or when asked), the
 * full rules run one by one through PCRE2 JIT: slower, same verdicts.
 *
 * Byte mode, no HS_FLAG_UTF8/UCP, no PCRE2_UTF: the rules are written against
 * normalised text (lower case, single spaces) and use Cyrillic only as literals.
 *
 * Cache file (cache_dir/injection-<digest>.hsdb): the digest covers every anchor
 * (id, flags, text) and the Hyperscan version, so a changed rule or library
 * never loads a stale database. The file is the hs_serialize_database() bytes
 * followed by their FNV-1a 64 checksum; a bad file is ignored and rewritten.
 */
#include "guard/injection_int.h"

#include <errno.h>
#include <fcntl.h>
#include <hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/mk_error.h"
#include "core/mk_log.h"

#define HS_RULE_FLAGS (HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL)

/* A full match's anchor starts at most this many bytes before the end of the
 * first anchor match Hyperscan reports (anchors are short phrases). */
#define CONFIRM_BACKTRACK 192

struct inj_matcher {
    bool use_hs;
    size_t n;
    hs_database_t *db;   /* anchors */
    pcre2_code **codes;  /* n full rules */
    uint8_t *need_confirm; /* n: 1 when the rule has more than what Hyperscan scanned */
    uint8_t *from_start;   /* n: confirm from offset 0 (the scanned phrase is a needle) */
};

struct inj_scratch {
    hs_scratch_t *hs;
    pcre2_match_data *md;
    size_t n;
    uint8_t *seen;        /* n: anchor seen in this view */
    uint64_t *first_end;  /* n: end offset of the first anchor match */
};

uint64_t inj_fnv64(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t rules_digest(const struct mk_injection_pattern *pats, size_t n)
{
    uint64_t h = INJ_FNV64_INIT;
    const char *ver = hs_version();
    h = inj_fnv64(h, ver, strlen(ver));
    unsigned flags = HS_RULE_FLAGS;
    h = inj_fnv64(h, &flags, sizeof(flags));
    for (size_t i = 0; i < n; i++) {
        h = inj_fnv64(h, &pats[i].id, sizeof(pats[i].id));
        const char *scan = pats[i].needle ? pats[i].needle : pats[i].anchor;
        h = inj_fnv64(h, scan, strlen(scan) + 1);
    }
    return h;
}

static hs_database_t *cache_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    hs_database_t *db = NULL;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 9 || st.st_size > 64 * 1024 * 1024) goto out;
    size_t len = (size_t)st.st_size;
    buf = malloc(len);
    if (!buf || fread(buf, 1, len, f) != len) goto out;
    uint64_t want;
    memcpy(&want, buf + len - 8, 8);
    if (inj_fnv64(INJ_FNV64_INIT, buf, len - 8) != want) goto out;
    if (hs_deserialize_database(buf, len - 8, &db) != HS_SUCCESS) db = NULL;
out:
    free(buf);
    fclose(f);
    return db;
}

static void cache_store(const char *path, const hs_database_t *db)
{
    char *bytes = NULL;
    size_t len = 0;
    if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) return;
    char tmp[4096];
    int k = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (k < 0 || (size_t)k >= sizeof(tmp)) { free(bytes); return; }
    FILE *f = fopen(tmp, "wb");
    if (f) {
        uint64_t sum = inj_fnv64(INJ_FNV64_INIT, bytes, len);
        bool ok = fwrite(bytes, 1, len, f) == len && fwrite(&sum, 1, 8, f) == 8;
        ok = (fclose(f) == 0) && ok;
        /* rename is atomic: concurrent starts never see a half-written cache. */
        if (!ok || rename(tmp, path) != 0) {
            unlink(tmp);
            mk_log(MK_LOG_WARN, "guard_cache_write_failed", "path", path, NULL);
        }
    }
    free(bytes);
}

static int hs_build(struct inj_matcher *m, const struct mk_injection_pattern *pats, size_t n, const char *cache_dir)
{
    char path[4096] = "";
    if (cache_dir && *cache_dir) {
        int k = snprintf(path, sizeof(path), "%s/injection-%016llx.hsdb", cache_dir,
                         (unsigned long long)rules_digest(pats, n));
        if (k < 0 || (size_t)k >= sizeof(path)) path[0] = '\0';
        if (path[0] && (m->db = cache_load(path)) != NULL) return 0;
    }
    const char **exprs = calloc(n, sizeof(*exprs));
    unsigned *flags = calloc(n, sizeof(*flags));
    unsigned *ids = calloc(n, sizeof(*ids));
    if (!exprs || !flags || !ids) { free(exprs); free(flags); free(ids); return MK_ENOMEM; }
    for (size_t i = 0; i < n; i++) {
        exprs[i] = pats[i].needle ? pats[i].needle : pats[i].anchor;
        flags[i] = HS_RULE_FLAGS;
        ids[i] = (unsigned)i; /* the index, so a match maps straight to hits[] */
    }
    hs_compile_error_t *err = NULL;
    hs_error_t rc = hs_compile_multi(exprs, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &m->db, &err);
    free(exprs); free(flags); free(ids);
    if (rc != HS_SUCCESS) {
        char idbuf[32] = "?";
        if (err && err->expression >= 0 && (size_t)err->expression < n)
            snprintf(idbuf, sizeof(idbuf), "%u", pats[err->expression].id);
        mk_log(MK_LOG_ERROR, "guard_rule_compile_failed", "rule", idbuf, "error", err ? err->message : "?", NULL);
        hs_free_compile_error(err);
        m->db = NULL;
        return MK_EINTERNAL;
    }
    if (path[0]) cache_store(path, m->db);
    return 0;
}

static int pcre_build(struct inj_matcher *m, const struct mk_injection_pattern *pats, size_t n)
{
    m->codes = calloc(n, sizeof(*m->codes));
    m->need_confirm = calloc(n, 1);
    m->from_start = calloc(n, 1);
    if (!m->codes || !m->need_confirm || !m->from_start) return MK_ENOMEM;
    mk_buf full = MK_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        mk_buf_reset(&full);
        /* (?:anchor)rest: the anchor may hold top-level alternatives. */
        if ((rc = mk_buf_printf(&full, "(?:%s)%s", pats[i].anchor, pats[i].rest ? pats[i].rest : ""))) break;
        m->need_confirm[i] = pats[i].rest != NULL || pats[i].needle != NULL;
        m->from_start[i] = pats[i].needle != NULL;
        int errcode;
        PCRE2_SIZE off;
        m->codes[i] = pcre2_compile((PCRE2_SPTR)full.data, full.len, PCRE2_DOTALL, &errcode, &off, NULL);
        if (!m->codes[i]) {
            char msg[256], idbuf[32];
            pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg));
            snprintf(idbuf, sizeof(idbuf), "%u", pats[i].id);
            mk_log(MK_LOG_ERROR, "guard_rule_compile_failed", "rule", idbuf, "error", msg, NULL);
            rc = MK_EINTERNAL;
            break;
        }
        /* JIT is an optimisation; the interpreter still works where it fails. */
        (void)pcre2_jit_compile(m->codes[i], PCRE2_JIT_COMPLETE);
    }
    mk_buf_release(&full);
    return rc;
}

int inj_matcher_new(const struct mk_injection_pattern *pats, size_t n, const char *cache_dir, bool force_pcre2,
                    struct inj_matcher **out)
{
    *out = NULL;
    if (!pats || n == 0) return MK_EINVAL;
    struct inj_matcher *m = calloc(1, sizeof(*m));
    if (!m) return MK_ENOMEM;
    m->n = n;
    m->use_hs = !force_pcre2 && hs_valid_platform() == HS_SUCCESS;
    int rc = pcre_build(m, pats, n);
    if (rc == 0 && m->use_hs) rc = hs_build(m, pats, n, cache_dir);
    if (rc) { inj_matcher_free(m); return rc; }
    *out = m;
    return 0;
}

void inj_matcher_free(struct inj_matcher *m)
{
    if (!m) return;
    if (m->db) hs_free_database(m->db);
    if (m->codes) {
        for (size_t i = 0; i < m->n; i++) pcre2_code_free(m->codes[i]);
        free(m->codes);
    }
    free(m->need_confirm);
    free(m->from_start);
    free(m);
}

const char *inj_matcher_backend(const struct inj_matcher *m) { return m->use_hs ? "hyperscan" : "pcre2"; }

int inj_scratch_prepare(const struct inj_matcher *m, struct inj_scratch **scr)
{
    if (!*scr) {
        *scr = calloc(1, sizeof(**scr));
        if (!*scr) return MK_ENOMEM;
    }
    struct inj_scratch *s = *scr;
    /* Grows an existing scratch to fit this database as well; cheap when it fits. */
    if (m->use_hs && hs_alloc_scratch(m->db, &s->hs) != HS_SUCCESS) return MK_ENOMEM;
    if (!s->md) {
        s->md = pcre2_match_data_create(1, NULL);
        if (!s->md) return MK_ENOMEM;
    }
    if (s->n < m->n) {
        uint8_t *seen = realloc(s->seen, m->n);
        if (!seen) return MK_ENOMEM;
        s->seen = seen;
        uint64_t *fe = realloc(s->first_end, m->n * sizeof(*fe));
        if (!fe) return MK_ENOMEM;
        s->first_end = fe;
        s->n = m->n;
    }
    return 0;
}

void inj_scratch_free(struct inj_scratch *scr)
{
    if (!scr) return;
    if (scr->hs) hs_free_scratch(scr->hs);
    if (scr->md) pcre2_match_data_free(scr->md);
    free(scr->seen);
    free(scr->first_end);
    free(scr);
}

static int on_anchor(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
    struct inj_scratch *s = ctx;
    s->seen[id] = 1;
    s->first_end[id] = to;
    return 0;
}

/* Full rule i on data from start; a matcher error (match limit) counts as a
 * match: the guard fails closed rather than let a crafted text slip past. */
static bool confirm(const struct inj_matcher *m, struct inj_scratch *s, size_t i, const char *data, size_t len, size_t start)
{
    int rc = pcre2_match(m->codes[i], (PCRE2_SPTR)data, len, start, 0, s->md, NULL);
    return rc >= 0 || rc != PCRE2_ERROR_NOMATCH;
}

int inj_matcher_scan(const struct inj_matcher *m, struct inj_scratch *scr, const char *data, size_t len, uint8_t *hits)
{
    if (len == 0) return 0;
    if (!m->use_hs) {
        for (size_t i = 0; i < m->n; i++)
            if (!hits[i] && confirm(m, scr, i, data, len, 0)) hits[i] = 1;
        return 0;
    }
    if (len > UINT32_MAX) return MK_ETOOBIG;
    memset(scr->seen, 0, m->n);
    /* SINGLEMATCH: one callback per anchor, at its first (earliest-ending) match. */
    hs_error_t rc = hs_scan(m->db, data, (unsigned)len, 0, scr->hs, on_anchor, scr);
    if (rc != HS_SUCCESS) return MK_EINTERNAL;
    for (size_t i = 0; i < m->n; i++) {
        if (!scr->seen[i] || hits[i]) continue;
        if (!m->need_confirm[i]) { hits[i] = 1; continue; }
        size_t start = (!m->from_start[i] && scr->first_end[i] > CONFIRM_BACKTRACK)
                           ? (size_t)scr->first_end[i] - CONFIRM_BACKTRACK : 0;
        if (confirm(m, scr, i, data, len, start)) hits[i] = 1;
    }
    return 0;
}
