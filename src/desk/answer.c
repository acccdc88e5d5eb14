/*
 * answer: one user message in, one desk reply out (mk_desk_respond), the LLM leg
 * (prompt with spotlighted passages, then mk_desk_complete), and the reply as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_rand.h"
#include "desk/desk_int.h"
#include "desk/mk_spotlight.h"

/* Results asked of each search: enough to find the best article's best section. */
#define SEARCH_K 20
/* The LLM is told to end with this line when the passages do not answer. */
#define ESCALATE_MARK "[[ESCALATE]]"

/* ---- small helpers shared with desk.c ------------------------------------------------ */

const char *desk_reply_lang(const char *text, size_t len, const struct mk_desk_context *ctx)
{
    const char *l = mk_kb_detect_language(text, len);
    for (size_t i = ctx && ctx->turns ? ctx->nturns : 0; strcmp(l, "und") == 0 && i > 0; i--) {
        const struct mk_desk_turn *t = &ctx->turns[i - 1];
        if (t->role && strcmp(t->role, "user") == 0 && t->text)
            l = mk_kb_detect_language(t->text, strnlen(t->text, MK_DESK_MAX_MESSAGE_BYTES));
    }
    if (strcmp(l, "ru") == 0) return "ru";
    if (strcmp(l, "kk") == 0) return "kk";
    return "en";
}

static int add_message(json_object *arr, const char *role, const char *content)
{
    json_object *m = json_object_new_object();
    if (!m) return MK_ENOMEM;
    if (json_object_object_add(m, "role", json_object_new_string(role)) ||
        json_object_object_add(m, "content", json_object_new_string(content ? content : "")) ||
        json_object_array_add(arr, m)) {
        json_object_put(m);
        return MK_ENOMEM;
    }
    return 0;
}

json_object *desk_chat_request(const char *model, const char *system, const struct mk_desk_turn *turns,
                               size_t nturns, const char *user)
{
    json_object *req = json_object_new_object(), *msgs = json_object_new_array();
    int rc = (req && msgs) ? 0 : MK_ENOMEM;
    if (rc == 0 && json_object_object_add(req, "model", json_object_new_string(model ? model : "default"))) rc = MK_ENOMEM;
    if (rc == 0) rc = add_message(msgs, "system", system);
    size_t from = nturns > MK_DESK_MAX_PROMPT_TURNS ? nturns - MK_DESK_MAX_PROMPT_TURNS : 0;
    for (size_t i = from; i < nturns && rc == 0; i++) {
        if (!turns[i].text) continue;
        bool is_user = turns[i].role && strcmp(turns[i].role, "user") == 0;
        rc = add_message(msgs, is_user ? "user" : "assistant", turns[i].text);
    }
    if (rc == 0) rc = add_message(msgs, "user", user);
    if (rc == 0 && json_object_object_add(req, "messages", msgs)) rc = MK_ENOMEM;
    else if (rc == 0) msgs = NULL;
    if (rc == 0 && json_object_object_add(req, "temperature", json_object_new_double(0))) rc = MK_ENOMEM;
    json_object_put(msgs);
    if (rc) {
        json_object_put(req);
        return NULL;
    }
    return req;
}

char *desk_completion_text(const char *json, size_t len)
{
    if (!json || len == 0 || len > MK_DESK_MAX_COMPLETION_BYTES) return NULL;
    json_tokener *tok = json_tokener_new();
    if (!tok) return NULL;
    json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    json_object *choices, *choice, *msg, *content;
    char *out = NULL;
    if (root && json_object_object_get_ex(root, "choices", &choices) &&
        json_object_is_type(choices, json_type_array) && json_object_array_length(choices) > 0 &&
        (choice = json_object_array_get_idx(choices, 0)) && json_object_object_get_ex(choice, "message", &msg) &&
        json_object_object_get_ex(msg, "content", &content) && json_object_is_type(content, json_type_string))
        out = strndup(json_object_get_string(content), (size_t)json_object_get_string_len(content));
    json_object_put(root);
    return out;
}

/* ---- retrieval ------------------------------------------------------------------------ */

static bool confident(const struct mk_kb_result *r, double threshold)
{
    return r->bm25 >= MK_DESK_MIN_BM25 && r->hit.coverage >= threshold;
}

/* Searches each collection (NULL = all) in one language and merges by fused score. */
static int search_in(mk_kb *kb, const char *q, const char *lang, const char *const *colls, size_t ncolls,
                     struct mk_kb_result *out, struct mk_kb_result *tmp)
{
    size_t n = 0;
    for (size_t c = 0; c < (ncolls ? ncolls : 1); c++) {
        struct mk_kb_search_opts o = {.lang = lang, .agent = ncolls ? colls[c] : NULL, .k = SEARCH_K};
        int got = mk_kb_search_hybrid(kb, q, &o, ncolls > 1 ? tmp : out, NULL);
        if (got < 0) return got;
        if (ncolls <= 1) return got;
        /* Several collections: merge, skipping chunks already present (shared ones). */
        for (int i = 0; i < got; i++) {
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++) dup = out[j].hit.chunk_index == tmp[i].hit.chunk_index;
            if (dup) continue;
            size_t at = n < SEARCH_K ? n++ : SEARCH_K - 1;
            if (at == SEARCH_K - 1 && n == SEARCH_K && out[at].hit.score >= tmp[i].hit.score) continue;
            out[at] = tmp[i];
            while (at > 0 && out[at].hit.score > out[at - 1].hit.score) {
                struct mk_kb_result t = out[at];
                out[at] = out[at - 1];
                out[at - 1] = t;
                at--;
            }
        }
    }
    return (int)n;
}

/* Results whose fused scores are this close count as tied: reciprocal-rank fusion
 * gives equal scores to chunks ranked (a, b) and (b, a), and such ties are then
 * broken by how much of the question each passage covers, then by BM25. */
#define FUSED_TIE 0.002

static int cmp_result(const void *pa, const void *pb)
{
    const struct mk_kb_result *a = pa, *b = pb;
    if (a->fused > b->fused + FUSED_TIE) return -1;
    if (b->fused > a->fused + FUSED_TIE) return 1;
    if (a->hit.coverage != b->hit.coverage) return a->hit.coverage > b->hit.coverage ? -1 : 1;
    if (a->bm25 != b->bm25) return a->bm25 > b->bm25 ? -1 : 1;
    return a->hit.chunk_index < b->hit.chunk_index ? -1 : a->hit.chunk_index > b->hit.chunk_index;
}

/* Puts the first confident result first (a vector-only neighbour may have outranked
 * it). Returns true when there is one. */
static bool promote_confident(struct mk_kb_result *res, int n, double threshold)
{
    for (int i = 0; i < n && i < 3; i++)
        if (confident(&res[i], threshold)) {
            if (i > 0) {
                struct mk_kb_result t = res[i];
                memmove(&res[1], &res[0], (size_t)i * sizeof *res);
                res[0] = t;
            }
            return true;
        }
    return false;
}

/* The user's language, then (for Kazakh) Russian, then every language; the first
 * search with a confident best result wins. *best_n keeps the largest non-empty
 * result for "low confidence vs nothing at all". */
static int retrieve(mk_kb *kb, const char *q, const char *lang, const char *const *colls, size_t ncolls,
                    double threshold, struct mk_kb_result *res, struct mk_kb_result *tmp, int *any)
{
    const char *order[3] = {lang, NULL, NULL};
    size_t norder = 1;
    if (strcmp(lang, "kk") == 0) order[norder++] = "ru";
    order[norder++] = NULL;
    for (size_t i = 0; i < norder; i++) {
        int n = search_in(kb, q, order[i], colls, ncolls, res, tmp);
        if (n < 0) return n;
        if (n > *any) *any = n;
        /* Insertion sort: stable and n <= SEARCH_K (qsort is neither needed nor stable). */
        for (int x = 1; x < n; x++)
            for (int y = x; y > 0 && cmp_result(&res[y], &res[y - 1]) < 0; y--) {
                struct mk_kb_result t = res[y];
                res[y] = res[y - 1];
                res[y - 1] = t;
            }
        if (n > 0 && promote_confident(res, n, threshold)) return n;
    }
    return 0;
}

/* ---- replies -------------------------------------------------------------------------- */

void mk_desk_reply_release(struct mk_desk_reply *r)
{
    if (!r) return;
    free(r->answer);
    json_object_put(r->llm_request);
    memset(r, 0, sizeof *r);
}

static int set_answer(struct mk_desk_reply *r, mk_buf *b)
{
    free(r->answer);
    r->answer = mk_buf_steal(b, &r->answer_len);
    if (!r->answer) {
        r->answer = strdup("");
        r->answer_len = 0;
    }
    return r->answer ? 0 : MK_ENOMEM;
}

static int escalate(struct mk_desk_reply *r, enum mk_desk_reason why)
{
    r->escalate = true;
    r->reason = why;
    mk_buf b = MK_BUF_INIT;
    int rc = mk_buf_append_str(&b, desk_handover_text(why, r->lang));
    if (rc == 0) rc = set_answer(r, &b);
    mk_buf_release(&b);
    return rc;
}

static void cite(struct mk_desk_reply *r, const struct mk_kb_result *res)
{
    if (r->ncitations >= MK_DESK_MAX_CITATIONS) return;
    struct mk_desk_citation *c = &r->citations[r->ncitations++];
    c->doc_id = res->hit.doc_id;
    c->title = res->hit.title;
    c->source = res->hit.source;
    c->lang = res->hit.lang;
    c->section = res->hit.section;
    c->score = res->hit.score;
}

/* The LLM request: instructions, rules, spotlighted passages, the conversation. */
static int build_llm_request(const mk_desk *d, const struct mk_desk_agent *a, const char *text,
                             const struct mk_desk_context *ctx, const struct mk_kb_result *res, int n,
                             struct mk_desk_reply *r)
{
    struct mk_spotlight s;
    uint64_t seed = 0;
    mk_rand_bytes(&seed, sizeof seed); /* a tag the passages cannot know */
    mk_spotlight_init(&s, seed);
    mk_buf sys = MK_BUF_INIT;
    int rc = mk_buf_append_str(&sys, a->instructions && *a->instructions ? a->instructions
                                                                         : "You are a helpdesk support agent.");
    if (rc == 0)
        rc = mk_buf_printf(&sys,
                           "\n\nIf the passages do not contain the answer, say so briefly and end your reply with "
                           "the line %s. Reply in %s.\n\n",
                           ESCALATE_MARK, strcmp(r->lang, "ru") == 0 ? "Russian" : strcmp(r->lang, "kk") == 0 ? "Kazakh" : "English");
    if (rc == 0) rc = mk_spotlight_rules(&s, r->lang, &sys);
    if (rc == 0) rc = mk_buf_append_str(&sys, "\n\n");
    int used = 0;
    for (int i = 0; i < n && used < MK_DESK_MAX_PASSAGES && rc == 0; i++) {
        const struct mk_kb_hit *h = &res[i].hit;
        char title[512];
        snprintf(title, sizeof title, "%s%s%s", h->title, h->section[0] ? " — " : "", h->section);
        rc = mk_spotlight_passage(&s, &sys, h->source, title, h->text, strlen(h->text));
        if (rc == 0) cite(r, &res[i]);
        used++;
    }
    if (rc) {
        mk_buf_release(&sys);
        return rc;
    }
    r->model_group = a->model_group ? a->model_group : d->default_model_group;
    r->llm_request = desk_chat_request(r->model_group, sys.data, ctx ? ctx->turns : NULL, ctx ? ctx->nturns : 0,
                                       text);
    mk_buf_release(&sys);
    return r->llm_request ? 0 : MK_ENOMEM;
}

int mk_desk_respond(const mk_desk *d, const char *text, const struct mk_desk_context *ctx,
                    const struct mk_desk_triage *triage, struct mk_desk_reply *r)
{
    if (!d || !text || !r) return MK_EINVAL;
    memset(r, 0, sizeof *r);
    size_t len = strnlen(text, MK_DESK_MAX_MESSAGE_BYTES);
    int rc = 0;
    if (triage) r->triage = *triage;
    else if ((rc = mk_desk_triage(d, text, ctx, &r->triage)) != 0) return rc;
    r->lang = desk_reply_lang(text, len, ctx);
    r->agent_index = r->triage.agent;
    r->agent = r->agent_index >= 0 ? d->agents[r->agent_index].id : "human";
    r->triage_agent = r->agent;
    r->triage_confidence = r->triage.confidence;
    if (r->triage.agent < 0) {
        r->confidence = r->triage.confidence;
        rc = escalate(r, r->triage.reason);
        if (rc) mk_desk_reply_release(r);
        return rc;
    }

    /* The query: the message, capped (the kb reads at most its own limit anyway). */
    char *q = strndup(text, len);
    struct mk_kb_result *res = calloc(2 * SEARCH_K, sizeof *res);
    if (!q || !res) {
        free(q);
        free(res);
        return MK_ENOMEM;
    }
    struct mk_kb_result *tmp = res + SEARCH_K;
    /* The caller's knowledge base (the server's live one) when it gives one. */
    mk_kb *kb = ctx && ctx->kb ? ctx->kb : d->kb;
    const struct mk_desk_agent *a = &d->agents[r->agent_index];
    int any = 0, n = 0;
    /* Unsure triage without the LLM's opinion: the whole knowledge base decides, and a
     * confident passage of one agent's collection gives the message to that agent. */
    if (!r->triage.unsure) n = retrieve(kb, q, r->lang, a->knowledge, a->nknowledge, a->escalation_threshold, res, tmp, &any);
    if (n == 0 && rc == 0) {
        n = retrieve(kb, q, r->lang, NULL, 0, a->escalation_threshold, res, tmp, &any);
        if (n > 0 && res[0].hit.agent && res[0].hit.agent[0]) {
            int owner = mk_desk_agent_find(d, res[0].hit.agent);
            if (owner >= 0 && owner != r->agent_index) {
                r->agent_index = owner;
                r->agent = d->agents[owner].id;
                a = &d->agents[owner];
            }
        }
    }
    free(q);
    if (n < 0) {
        free(res);
        mk_desk_reply_release(r);
        return n;
    }
    if (n == 0) {
        /* Honest: either nothing matched at all, or only weakly. */
        r->failed = true;
        r->retrieval_confidence = 0;
        r->confidence = 0;
        rc = escalate(r, any > 0 ? MK_DESK_REASON_LOW_CONFIDENCE : MK_DESK_REASON_OUT_OF_KB);
        free(res);
        if (rc) mk_desk_reply_release(r);
        return rc;
    }
    r->retrieval_confidence = res[0].hit.coverage;
    r->confidence = r->triage_confidence * r->retrieval_confidence;
    if (d->use_llm) {
        rc = build_llm_request(d, a, text, ctx, res, n, r);
    } else {
        mk_buf b = MK_BUF_INIT;
        const struct mk_kb_result *cited[MK_DESK_MAX_CITATIONS];
        size_t ncited = 0;
        rc = desk_compose(kb, r->lang, res, (size_t)n, &b, cited, &ncited);
        for (size_t i = 0; i < ncited && rc == 0; i++) cite(r, cited[i]);
        if (rc == 0) rc = mk_buf_append_str(&b, "\n\n");
        if (rc == 0) rc = desk_sources(r->lang, r->citations, r->ncitations, &b);
        if (rc == 0) rc = set_answer(r, &b);
        mk_buf_release(&b);
    }
    free(res);
    if (rc) mk_desk_reply_release(r);
    return rc;
}

int mk_desk_complete(const mk_desk *d, struct mk_desk_reply *r, int rc, const char *completion_json, size_t len)
{
    if (!d || !r) return MK_EINVAL;
    json_object_put(r->llm_request);
    r->llm_request = NULL;
    char *text = rc == 0 ? desk_completion_text(completion_json, len) : NULL;
    if (!text) {
        r->failed = true;
        return escalate(r, MK_DESK_REASON_LLM_ERROR);
    }
    char *mark = strstr(text, ESCALATE_MARK);
    if (mark) {
        free(text);
        r->failed = true;
        r->confidence = 0;
        return escalate(r, MK_DESK_REASON_LLM_UNSURE);
    }
    mk_buf b = MK_BUF_INIT;
    /* Trailing white space out; the sources list after a blank line. */
    size_t tl = strlen(text);
    while (tl > 0 && strchr(" \t\r\n", text[tl - 1])) tl--;
    int err = mk_buf_append(&b, text, tl);
    free(text);
    if (err == 0 && r->ncitations) err = mk_buf_append_str(&b, "\n\n");
    if (err == 0) err = desk_sources(r->lang, r->citations, r->ncitations, &b);
    if (err == 0) err = set_answer(r, &b);
    mk_buf_release(&b);
    return err;
}

int mk_desk_reply_json(const struct mk_desk_reply *r, mk_buf *out)
{
    if (!r || !out) return MK_EINVAL;
    json_object *o = json_object_new_object(), *cites = json_object_new_array(), *tr = json_object_new_object();
    int rc = (o && cites && tr) ? 0 : MK_ENOMEM;
    char num[32];
#define ADD(obj, k, v)                                                                                                 \
    do {                                                                                                               \
        json_object *v_ = (v);                                                                                         \
        if (rc == 0 && (!v_ || json_object_object_add((obj), (k), v_))) {                                              \
            json_object_put(v_);                                                                                       \
            rc = MK_ENOMEM;                                                                                            \
        }                                                                                                              \
    } while (0)
    /* Three decimals, printed as such (json-c would print 0.84999999999999998). */
#define NUM(x) (snprintf(num, sizeof num, "%.3f", (x)), json_object_new_double_s(strtod(num, NULL), num))
    ADD(o, "agent", json_object_new_string(r->agent ? r->agent : "human"));
    ADD(o, "confidence", NUM(r->confidence));
    ADD(o, "answer", json_object_new_string_len(r->answer ? r->answer : "", (int)r->answer_len));
    for (size_t i = 0; i < r->ncitations && rc == 0; i++) {
        const struct mk_desk_citation *c = &r->citations[i];
        json_object *co = json_object_new_object();
        if (!co) {
            rc = MK_ENOMEM;
            break;
        }
        ADD(co, "id", json_object_new_string(c->doc_id));
        ADD(co, "title", json_object_new_string(c->title));
        ADD(co, "url", json_object_new_string(c->source));
        ADD(co, "lang", json_object_new_string(c->lang));
        ADD(co, "section", json_object_new_string(c->section ? c->section : ""));
        ADD(co, "score", NUM(c->score));
        if (rc || json_object_array_add(cites, co)) {
            json_object_put(co);
            rc = MK_ENOMEM;
        }
    }
    if (rc == 0 && json_object_object_add(o, "citations", cites)) rc = MK_ENOMEM;
    else if (rc == 0) cites = NULL;
    ADD(o, "escalate", json_object_new_boolean(r->escalate));
    if (r->escalate) ADD(o, "reason", json_object_new_string(mk_desk_reason_name(r->reason)));
    else if (rc == 0 && json_object_object_add(o, "reason", NULL)) rc = MK_ENOMEM;
    ADD(o, "lang", json_object_new_string(r->lang ? r->lang : "en"));
    ADD(tr, "agent", json_object_new_string(r->triage_agent ? r->triage_agent : "human"));
    ADD(tr, "confidence", NUM(r->triage.confidence));
    ADD(tr, "unsure", json_object_new_boolean(r->triage.unsure));
    ADD(tr, "llm", json_object_new_boolean(r->triage.llm));
    ADD(tr, "retrieval_confidence", NUM(r->retrieval_confidence));
    if (rc == 0 && json_object_object_add(o, "triage", tr)) rc = MK_ENOMEM;
    else if (rc == 0) tr = NULL;
#undef ADD
#undef NUM
    if (rc == 0) {
        size_t len = 0;
        const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        rc = s ? mk_buf_append(out, s, len) : MK_ENOMEM;
    }
    json_object_put(cites);
    json_object_put(tr);
    json_object_put(o);
    return rc;
}
