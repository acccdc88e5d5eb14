/*
 * kb_json: search results as JSON — the one shape the CLI (`mayak kb search --json`)
 * and the admin API (/api/v1/kb/search) print, so scripts and the web admin page read
 * both alike: the query, the language it was read in, the confidence signals, and per
 * passage its document id, title, section, language, source, position (and page),
 * scores (bm25, vector, fused, coverage), ranks in each list, a ready citation line and
 * (optionally) the text.
 */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_time.h"
#include "kb/mk_kb_store.h"

/* Six significant digits as printed, not the binary double's 17. */
static json_object *num(double v)
{
    char b[32];
    if (!isfinite(v))
        v = 0;
    snprintf(b, sizeof b, "%.6g", v);
    return json_object_new_double_s(v, b);
}

json_object *mk_kb_search_json(mk_kb *kb, const char *query, const struct mk_kb_search_opts *so, bool with_text,
                               int *err)
{
    struct mk_kb_result res[MK_KB_MAX_K];
    struct mk_kb_confidence conf;
    uint64_t t0 = mk_now_us();
    struct mk_kb_search_opts qo = *so;
    if (qo.lang && !strcmp(qo.lang, "auto")) { /* each query in its own language */
        const char *l = mk_kb_detect_language(query, strnlen(query, MK_KB_MAX_QUERY_BYTES));
        qo.lang = strcmp(l, "und") ? l : NULL;
    }
    int n = mk_kb_search_hybrid(kb, query, &qo, res, &conf);
    double ms = (mk_now_us() - t0) / 1000.0;
    *err = n < 0 ? n : 0;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "query", json_object_new_string(query));
    if (n < 0) {
        json_object_object_add(o, "error", json_object_new_string(mk_strerror(n)));
        return o;
    }
    json_object_object_add(o, "lang", json_object_new_string(conf.query_lang ? conf.query_lang : "und"));
    json_object_object_add(o, "took_ms", num(ms));
    json_object *cf = json_object_new_object();
    json_object_object_add(cf, "top_fused", num(conf.top_fused));
    json_object_object_add(cf, "margin", num(conf.margin));
    json_object_object_add(cf, "top_bm25", num(conf.top_bm25));
    json_object_object_add(cf, "top_coverage", num(conf.top_coverage));
    json_object_object_add(cf, "top_vector", num(conf.top_vector));
    json_object_object_add(cf, "max_coverage", num(conf.max_coverage));
    json_object_object_add(cf, "agree", json_object_new_boolean(conf.agree));
    json_object_object_add(o, "confidence", cf);
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n; i++) {
        const struct mk_kb_result *r = &res[i];
        const struct mk_kb_hit *h = &r->hit;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "rank", json_object_new_int(i + 1));
        json_object_object_add(e, "doc_id", json_object_new_string(h->doc_id));
        json_object_object_add(e, "title", json_object_new_string(h->title));
        json_object_object_add(e, "section", json_object_new_string(h->section));
        json_object_object_add(e, "lang", json_object_new_string(h->lang));
        json_object_object_add(e, "chunk_lang", json_object_new_string(h->chunk_lang));
        json_object_object_add(e, "agent", json_object_new_string(h->agent));
        json_object_object_add(e, "source", json_object_new_string(h->source));
        json_object_object_add(e, "position", json_object_new_int64(h->position));
        if (h->page)
            json_object_object_add(e, "page", json_object_new_int64(h->page));
        json_object *sc = json_object_new_object();
        json_object_object_add(sc, "bm25", num(r->bm25));
        json_object_object_add(sc, "vector", num(r->vector));
        json_object_object_add(sc, "fused", num(r->fused));
        json_object_object_add(sc, "coverage", num(h->coverage));
        json_object_object_add(e, "scores", sc);
        json_object *rk = json_object_new_object();
        json_object_object_add(rk, "bm25", r->bm25_rank ? json_object_new_int((int)r->bm25_rank) : NULL);
        json_object_object_add(rk, "vector", r->vector_rank ? json_object_new_int((int)r->vector_rank) : NULL);
        json_object_object_add(e, "ranks", rk);
        char cite[1024];
        if (h->page)
            snprintf(cite, sizeof cite, "[%d] %s%s%s (%s, p. %u)", i + 1, h->title, h->section[0] ? " — " : "",
                     h->section, h->source, h->page);
        else
            snprintf(cite, sizeof cite, "[%d] %s%s%s (%s)", i + 1, h->title, h->section[0] ? " — " : "", h->section,
                     h->source);
        json_object_object_add(e, "citation", json_object_new_string(cite));
        if (with_text)
            json_object_object_add(e, "text", json_object_new_string(h->text));
        json_object_array_add(arr, e);
    }
    json_object_object_add(o, "results", arr);
    return o;
}

