/*
 * memory_fact: facts about a user (or the tenant) with validity intervals.
 *
 * Nothing is silently lost (the common complaint about memory layers that overwrite):
 * a fact that contradicts an open one closes that one's interval (valid_to, closed_by,
 * superseded_by) and both rows stay, so "what did we believe on 3 March, and who told
 * us otherwise" has an answer. A fact that repeats an open one is a duplicate: the old
 * row's seen count and last_seen_at go up instead of a second row appearing.
 *
 * Comparison is bounded: the new fact is compared with the MK_MEMORY_FACT_CANDIDATES
 * open facts of the same subject nearest in meaning, plus (inside the write
 * transaction, so concurrent writers cannot both stay open) the open fact of the same
 * predicate. Without an LLM, "contradicts" means: same predicate with another value,
 * the same statement negated (similar wording, negation on one side only), or the
 * caller said so (supersedes).
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "memory/memory_int.h"

#define FACT_COLS                                                                                                   \
    "id, subject, predicate, value, fact, confidence, valid_from, valid_to, asserted_by, source, closed_by,"      \
    " superseded_by, seen, last_seen_at"
/* Similarity above which two facts of one subject say the same thing... */
#define DUP_SIMILARITY 0.93
/* ...and above which one negating the other is a contradiction. */
#define NEG_SIMILARITY 0.60

static json_object *fact_json(struct mk_store_stmt *st)
{
    static const char *const names[] = {"id", "subject", "predicate", "value", "text", "confidence", "valid_from",
                                        "valid_to", "asserted_by", "source", "closed_by", "superseded_by", "seen",
                                        "last_seen_at"};
    json_object *o = json_object_new_object();
    for (int i = 0; i < 14; i++) {
        json_object *v;
        if (i == 5) {
            v = json_object_new_double(mk_store_column_double(st, i));
        } else if (i == 0 || i == 6 || i == 7 || i == 11 || i == 12 || i == 13) {
            int64_t x = mk_store_column_int64(st, i);
            v = (i == 7 || i == 11) && x == 0 ? NULL : json_object_new_int64(x);
        } else {
            mk_slice s = mk_store_column_text(st, i);
            v = json_object_new_string_len(s.ptr, (int)s.len);
        }
        json_object_object_add(o, names[i], v);
    }
    json_object_object_add(o, "open", json_object_new_boolean(mk_store_column_int64(st, 7) == 0));
    return o;
}

/* Lower-cased ASCII, whitespace collapsed, trailing punctuation dropped. */
static void normalise(const char *s, mk_buf *out)
{
    mk_buf_reset(out);
    bool space = false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isspace(ch)) {
            space = out->len > 0;
            continue;
        }
        if (space) mk_buf_append_char(out, ' ');
        space = false;
        mk_buf_append_char(out, (char)tolower(ch));
    }
    while (out->len && strchr(".!?;, ", out->data[out->len - 1])) out->data[--out->len] = '\0';
    mk_buf_append(out, "", 0);
}

/* Whether the text carries a negation (English and Russian). */
static bool negated(const char *s)
{
    static const char *const words[] = {"not",   "no",     "never",   "none",  "nobody", "cannot", "can't",
                                        "don't", "doesn't", "isn't",  "aren't", "won't", "wasn't", "didn't",
                                        "не",    "нет",    "никогда", "ни",    "Не",     "Нет",    "Никогда"};
    const char *p = s;
    while (*p) {
        while (*p && (isspace((unsigned char)*p) || strchr(".,;:!?\"'()", *p))) p++;
        const char *w = p;
        while (*p && !isspace((unsigned char)*p) && !strchr(".,;:!?\"()", *p)) p++;
        size_t n = (size_t)(p - w);
        for (size_t i = 0; n && i < sizeof words / sizeof words[0]; i++) {
            size_t wl = strlen(words[i]);
            if (wl != n) continue;
            bool eq = true;
            for (size_t j = 0; j < n && eq; j++) eq = tolower((unsigned char)w[j]) == (unsigned char)words[i][j] ||
                                                      (unsigned char)w[j] == (unsigned char)words[i][j];
            if (eq) return true;
        }
    }
    return false;
}

struct cand {
    int64_t id;
    float sim;
    char *predicate, *value, *text;
};

struct assert_job {
    struct mk_memory *m;
    const struct mk_memory_fact *f;
    const char *subject, *value;
    double confidence;
    int64_t now;
    int64_t id;                  /* new fact */
    int64_t *close;              /* to close by id (semantic contradictions, supersedes) */
    size_t nclose;
    int64_t *closed;             /* actually closed */
    size_t nclosed, capclosed;
};

static int push_closed(struct assert_job *j, int64_t id)
{
    for (size_t i = 0; i < j->nclosed; i++)
        if (j->closed[i] == id) return 0;
    if (j->nclosed == j->capclosed) {
        size_t cap = j->capclosed ? j->capclosed * 2 : 8;
        int64_t *b = realloc(j->closed, sizeof *b * cap);
        if (!b) return MK_ENOMEM;
        j->closed = b;
        j->capclosed = cap;
    }
    j->closed[j->nclosed++] = id;
    return 0;
}

static int assert_tx(struct mk_store_conn *c, void *arg)
{
    struct assert_job *j = arg;
    const struct mk_memory_fact *f = j->f;
    j->nclosed = 0;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "INSERT INTO memory_facts (tenant, subject, predicate, value, fact, confidence,"
                                 " valid_from, asserted_by, source, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                                 " RETURNING id",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, f->tenant);
    mk_store_bind_cstr(st, 2, j->subject);
    mk_store_bind_cstr(st, 3, mem_str(f->predicate));
    mk_store_bind_cstr(st, 4, j->value);
    mk_store_bind_cstr(st, 5, f->text);
    mk_store_bind_double(st, 6, j->confidence);
    mk_store_bind_int64(st, 7, j->now);
    mk_store_bind_cstr(st, 8, mem_str(f->asserted_by));
    mk_store_bind_cstr(st, 9, mem_str(f->source));
    mk_store_bind_int64(st, 10, j->now);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        j->id = mk_store_column_int64(st, 0);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_EINTERNAL;
    }
    mk_store_stmt_done(st);
    if (rc == 0) rc = mem_log_change(j->m, c, MK_MEMORY_FACTS, j->id, MEM_OP_ADD);
    if (rc) return rc;
    /* the open fact of the same predicate with another value: one statement, so two
     * concurrent writers cannot both leave theirs open */
    if (f->predicate && *f->predicate) {
        rc = mk_store_prepare(c, "UPDATE memory_facts SET valid_to = ?, closed_by = ?, superseded_by = ?"
                                 " WHERE tenant = ? AND subject = ? AND predicate = ? AND valid_to = 0 AND id <> ?"
                                 " RETURNING id",
                              &st);
        if (rc) return rc;
        mk_store_bind_int64(st, 1, j->now);
        mk_store_bind_cstr(st, 2, mem_str(f->asserted_by));
        mk_store_bind_int64(st, 3, j->id);
        mk_store_bind_cstr(st, 4, f->tenant);
        mk_store_bind_cstr(st, 5, j->subject);
        mk_store_bind_cstr(st, 6, f->predicate);
        mk_store_bind_int64(st, 7, j->id);
        while (rc == 0 && mk_store_step(st) == MK_STORE_ROW) rc = push_closed(j, mk_store_column_int64(st, 0));
        mk_store_stmt_done(st);
        if (rc) return rc;
    }
    for (size_t i = 0; i < j->nclose; i++) {
        rc = mk_store_prepare(c, "UPDATE memory_facts SET valid_to = ?, closed_by = ?, superseded_by = ?"
                                 " WHERE id = ? AND tenant = ? AND valid_to = 0",
                              &st);
        if (rc) return rc;
        mk_store_bind_int64(st, 1, j->now);
        mk_store_bind_cstr(st, 2, mem_str(f->asserted_by));
        mk_store_bind_int64(st, 3, j->id);
        mk_store_bind_int64(st, 4, j->close[i]);
        mk_store_bind_cstr(st, 5, f->tenant);
        rc = mk_store_step(st);
        mk_store_stmt_done(st);
        if (rc < 0) return rc;
        rc = mk_store_changes(c) > 0 ? push_closed(j, j->close[i]) : 0;
        if (rc) return rc;
    }
    for (size_t i = 0; i < j->nclosed && rc == 0; i++) rc = mem_log_change(j->m, c, MK_MEMORY_FACTS, j->closed[i], MEM_OP_DEL);
    return rc;
}

/* The subject's open facts nearest to vec (at most FACT_CANDIDATES) plus the open
 * fact of the same predicate, read into cands. */
static int candidates(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_fact *f,
                      const char *subject, const float *vec, struct cand *cands, size_t *ncand)
{
    mk_vector_hit hits[MK_MEMORY_FACT_CANDIDATES];
    size_t nh = 0;
    mk_vector_filter vf = {.use_ns = true, .ns = mem_ns_subject(f->tenant, subject)};
    mk_vector_search_opts so = {.filter = &vf};
    int rc = mk_vector_search(m->idx[MK_MEMORY_FACTS].ix, vec, m->dim, MK_MEMORY_FACT_CANDIDATES, &so, hits, &nh);
    if (rc) return rc;
    *ncand = 0;
    for (size_t i = 0; i <= nh; i++) {
        struct mk_store_stmt *st;
        if (i < nh) {
            rc = mk_store_prepare(c, "SELECT id, predicate, value, fact FROM memory_facts"
                                     " WHERE id = ? AND tenant = ? AND subject = ? AND valid_to = 0",
                                  &st);
            if (rc) return rc;
            mk_store_bind_int64(st, 1, (int64_t)hits[i].key);
        } else {
            if (!f->predicate || !*f->predicate) break;
            rc = mk_store_prepare(c, "SELECT id, predicate, value, fact FROM memory_facts"
                                     " WHERE tenant = ? AND subject = ? AND predicate = ? AND valid_to = 0"
                                     " ORDER BY id DESC LIMIT 1",
                                  &st);
            if (rc) return rc;
        }
        int b = i < nh ? 2 : 1;
        mk_store_bind_cstr(st, b, f->tenant);
        mk_store_bind_cstr(st, b + 1, subject);
        if (i == nh) mk_store_bind_cstr(st, 3, f->predicate);
        if (mk_store_step(st) == MK_STORE_ROW) {
            int64_t id = mk_store_column_int64(st, 0);
            bool seen = false;
            for (size_t k = 0; k < *ncand; k++) seen |= cands[k].id == id;
            if (!seen) {
                struct cand *cd = &cands[(*ncand)++];
                cd->id = id;
                cd->sim = i < nh ? 1.0f - hits[i].distance : -1.0f;
                cd->predicate = strdup(mk_store_column_text(st, 1).ptr);
                cd->value = strdup(mk_store_column_text(st, 2).ptr);
                cd->text = strdup(mk_store_column_text(st, 3).ptr);
                if (!cd->predicate || !cd->value || !cd->text) rc = MK_ENOMEM;
            }
        }
        mk_store_stmt_done(st);
        if (rc) return rc;
    }
    return 0;
}

int mk_memory_fact_assert(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_fact *f, int64_t *id,
                          enum mk_memory_fact_status *status, json_object **result, mk_buf *err)
{
    if (!m || !c || !f) return MK_EINVAL;
    if (result) *result = NULL;
    int rc;
    if ((rc = mem_check_id(f->tenant, "tenant", false, err)) || (rc = mem_check_id(f->subject, "subject", true, err)) ||
        (rc = mem_check_text(f->text, "text", true, err)) ||
        (rc = mem_check_id(f->predicate, "predicate", true, err)) ||
        (rc = mem_check_text(f->value, "value", false, err)) ||
        (rc = mem_check_id(f->asserted_by, "asserted_by", true, err)) ||
        (rc = mem_check_id(f->source, "source", true, err)))
        return rc;
    double conf = isnan(f->confidence) ? 1.0 : f->confidence;
    if (!(conf >= 0 && conf <= 1)) {
        if (err) mk_buf_printf(err, "confidence must be between 0 and 1");
        return MK_EINVAL;
    }
    if (f->nsupersedes > MK_MEMORY_MAX_K || (f->nsupersedes && !f->supersedes)) return MK_EINVAL;
    const char *subject = mem_str(f->subject);
    const char *value = f->predicate && *f->predicate ? (f->value ? f->value : f->text) : mem_str(f->value);

    float *vec = malloc(sizeof(float) * m->dim);
    struct cand cands[MK_MEMORY_FACT_CANDIDATES + 1];
    size_t ncand = 0;
    rc = vec ? mem_embed(m, f->text, strlen(f->text), vec) : MK_ENOMEM;
    if (rc == 0) rc = candidates(m, c, f, subject, vec, cands, &ncand);

    struct assert_job j = {.m = m, .f = f, .subject = subject, .value = value, .confidence = conf,
                           .now = mem_now_ms(m)};
    j.close = malloc(sizeof(int64_t) * (ncand + f->nsupersedes + 1));
    if (rc == 0 && !j.close) rc = MK_ENOMEM;
    int64_t dup = 0;
    mk_buf na = MK_BUF_INIT, nb = MK_BUF_INIT, va = MK_BUF_INIT, vb = MK_BUF_INIT;
    if (rc == 0) {
        normalise(f->text, &na);
        normalise(value, &va);
        bool neg = negated(f->text);
        const char *pred = mem_str(f->predicate);
        for (size_t i = 0; i < ncand; i++) {
            struct cand *cd = &cands[i];
            normalise(cd->text, &nb);
            normalise(cd->value, &vb);
            bool same_pred = strcmp(cd->predicate, pred) == 0;
            bool same_text = strcmp(na.data, nb.data) == 0;
            bool neg_mismatch = neg != negated(cd->text);
            if (*pred && same_pred) {
                if (strcmp(va.data, vb.data) == 0) dup = dup ? dup : cd->id;
                /* else: closed by the predicate UPDATE inside the transaction */
            } else if (same_pred && (same_text || (cd->sim >= DUP_SIMILARITY && !neg_mismatch))) {
                dup = dup ? dup : cd->id;
            } else if (same_pred && neg_mismatch && cd->sim >= NEG_SIMILARITY) {
                j.close[j.nclose++] = cd->id;
            }
        }
        for (size_t i = 0; i < f->nsupersedes; i++) j.close[j.nclose++] = f->supersedes[i];
    }
    enum mk_memory_fact_status st_out = MK_MEMORY_FACT_NEW;
    if (rc == 0 && dup && f->nsupersedes == 0) {
        /* said again: count it, keep the higher confidence */
        struct mk_store_stmt *st;
        rc = mk_store_prepare(c, "UPDATE memory_facts SET seen = seen + 1, last_seen_at = ?,"
                                 " confidence = CASE WHEN confidence < ? THEN ? ELSE confidence END"
                                 " WHERE id = ? AND tenant = ?",
                              &st);
        if (rc == 0) {
            mk_store_bind_int64(st, 1, j.now);
            mk_store_bind_double(st, 2, conf);
            mk_store_bind_double(st, 3, conf);
            mk_store_bind_int64(st, 4, dup);
            mk_store_bind_cstr(st, 5, f->tenant);
            rc = mk_store_step(st);
            rc = rc < 0 ? rc : 0;
            mk_store_stmt_done(st);
        }
        j.id = dup;
        st_out = MK_MEMORY_FACT_DUPLICATE;
    } else if (rc == 0) {
        rc = mem_tx(c, assert_tx, &j);
        if (rc == 0) {
            mem_index_put(m, MK_MEMORY_FACTS, j.id, vec, mem_ns_subject(f->tenant, subject), 0);
            for (size_t i = 0; i < j.nclosed; i++) mem_index_del(m, MK_MEMORY_FACTS, j.closed[i]);
            st_out = j.nclosed ? MK_MEMORY_FACT_SUPERSEDED : MK_MEMORY_FACT_NEW;
        }
    }
    if (rc == 0) {
        if (id) *id = j.id;
        if (status) *status = st_out;
        if (result) {
            static const char *const names[] = {"new", "duplicate", "superseded"};
            json_object *r = json_object_new_object();
            json_object_object_add(r, "id", json_object_new_int64(j.id));
            json_object_object_add(r, "status", json_object_new_string(names[st_out]));
            json_object_object_add(r, "closed", mem_ids_json(j.closed, j.nclosed));
            *result = r;
        }
    } else if (err && !err->len) {
        mem_store_err(c, rc, "storing the fact", err);
    }
    for (size_t i = 0; i < ncand; i++) {
        free(cands[i].predicate);
        free(cands[i].value);
        free(cands[i].text);
    }
    mk_buf_release(&na);
    mk_buf_release(&nb);
    mk_buf_release(&va);
    mk_buf_release(&vb);
    free(j.close);
    free(j.closed);
    free(vec);
    return rc;
}

int mk_memory_fact_list(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *subject,
                        bool history, uint32_t limit, json_object **out)
{
    if (!m || !c || !out || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(subject, "subject", true, NULL))
        return MK_EINVAL;
    if (limit == 0 || limit > MK_MEMORY_MAX_K) return MK_EINVAL;
    *out = NULL;
    mk_buf sql = MK_BUF_INIT;
    mk_buf_append_str(&sql, "SELECT " FACT_COLS " FROM memory_facts WHERE tenant = ?");
    if (subject) mk_buf_append_str(&sql, " AND subject = ?");
    if (!history) mk_buf_append_str(&sql, " AND valid_to = 0");
    mk_buf_append_str(&sql, " ORDER BY id DESC LIMIT ?");
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql.data, &st);
    mk_buf_release(&sql);
    if (rc) return rc;
    int i = 1;
    mk_store_bind_cstr(st, i++, tenant);
    if (subject) mk_store_bind_cstr(st, i++, subject);
    mk_store_bind_int64(st, i, limit);
    json_object *data = json_object_new_array();
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) json_object_array_add(data, fact_json(st));
    mk_store_stmt_done(st);
    if (rc < 0) {
        json_object_put(data);
        return rc;
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("list"));
    json_object_object_add(res, "data", data);
    *out = res;
    return 0;
}

int mk_memory_fact_search(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *subject,
                          const char *query, uint32_t k, json_object **out, mk_buf *err)
{
    if (!m || !c || !out) return MK_EINVAL;
    *out = NULL;
    int rc;
    if ((rc = mem_check_id(tenant, "tenant", false, err)) || (rc = mem_check_id(subject, "subject", true, err)) ||
        (rc = mem_check_text(query, "query", true, err)))
        return rc;
    if (k == 0 || k > MK_MEMORY_MAX_K) return MK_EINVAL;
    subject = mem_str(subject);
    float *q = malloc(sizeof(float) * m->dim);
    mk_vector_hit *hits = malloc(sizeof *hits * (k + 4));
    size_t nh = 0;
    rc = q && hits ? mem_embed(m, query, strlen(query), q) : MK_ENOMEM;
    mk_vector_filter vf = {.use_ns = true, .ns = mem_ns_subject(tenant, subject)};
    mk_vector_search_opts so = {.filter = &vf};
    if (rc == 0) rc = mk_vector_search(m->idx[MK_MEMORY_FACTS].ix, q, m->dim, k + 4, &so, hits, &nh);
    json_object *data = json_object_new_array();
    for (size_t i = 0; rc == 0 && i < nh && json_object_array_length(data) < k; i++) {
        struct mk_store_stmt *st;
        rc = mk_store_prepare(c, "SELECT " FACT_COLS " FROM memory_facts WHERE id = ? AND tenant = ? AND subject = ?"
                                 " AND valid_to = 0",
                              &st);
        if (rc) break;
        mk_store_bind_int64(st, 1, (int64_t)hits[i].key);
        mk_store_bind_cstr(st, 2, tenant);
        mk_store_bind_cstr(st, 3, subject);
        if (mk_store_step(st) == MK_STORE_ROW) {
            json_object *o = fact_json(st);
            json_object_object_add(o, "score", json_object_new_double(1.0 - (double)hits[i].distance));
            json_object_array_add(data, o);
        }
        mk_store_stmt_done(st);
    }
    free(q);
    free(hits);
    if (rc) {
        json_object_put(data);
        return rc;
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("list"));
    json_object_object_add(res, "data", data);
    *out = res;
    return 0;
}

struct retract_job {
    struct mk_memory *m;
    const char *tenant, *by;
    int64_t id, now;
};

static int retract_tx(struct mk_store_conn *c, void *arg)
{
    struct retract_job *j = arg;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "UPDATE memory_facts SET valid_to = ?, closed_by = ? WHERE id = ? AND tenant = ?"
                                 " AND valid_to = 0",
                              &st);
    if (rc) return rc;
    mk_store_bind_int64(st, 1, j->now);
    mk_store_bind_cstr(st, 2, mem_str(j->by));
    mk_store_bind_int64(st, 3, j->id);
    mk_store_bind_cstr(st, 4, j->tenant);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc < 0) return rc;
    if (mk_store_changes(c) == 0) return MK_ENOTFOUND;
    return mem_log_change(j->m, c, MK_MEMORY_FACTS, j->id, MEM_OP_DEL);
}

int mk_memory_fact_retract(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t id, const char *by)
{
    if (!m || !c || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(by, "by", true, NULL)) return MK_EINVAL;
    struct retract_job j = {m, tenant, by, id, mem_now_ms(m)};
    int rc = mem_tx(c, retract_tx, &j);
    if (rc == 0) mem_index_del(m, MK_MEMORY_FACTS, id);
    return rc;
}
