/*
 * local: the provider that needs no LLM. It answers a support question from the
 * knowledge base (src/kb/) and says honestly when the knowledge base has no answer.
 *
 * This is Mayak's embedded default: with no config and no API key, chat requests are
 * routed here and answered from the demo articles compiled into the binary. It never
 * invents: the reply is the text of one article section, quoted, with its sources;
 * when retrieval is not confident the reply says so and points to the helpdesk and
 * a human operator.
 *
 * The reply is an OpenAI chat.completion, like any remote provider's, plus a
 * non-standard top-level "mayak_citations" array that OpenAI clients ignore and
 * Mayak's own widget shows. Streaming is the API layer's business: it cuts this
 * answer into chunks.
 *
 * Token usage is estimated, not counted (there is no tokenizer here): for a text of
 * W words and B UTF-8 bytes, tokens = max(ceil(4W/3), ceil(B/4)). 4/3 tokens per word
 * is the usual figure for English; B/4 keeps Cyrillic (2 bytes a letter, more tokens
 * per word) from being undercounted. Each prompt message adds 4 tokens of framing, as
 * in OpenAI's chat format.
 */
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_utf8.h"
#include "kb/mk_kb.h"
#include "provider/mk_provider.h"

/* Retrieval is trusted when the best chunk holds at least this share of the
 * question's term weight (see mk_kb_hit.coverage) and scores at least MIN_SCORE.
 * Measured on the demo set: real questions with one unknown word ("принтер зажевал
 * бумагу") sit near 0.5, off-topic ones sharing one incidental word ("tell me a joke"
 * matches "what to tell the helpdesk") at 0.2-0.4. */
#define MIN_COVERAGE 0.45
#define MIN_SCORE 1.0
/* Another article is mentioned as "see also" when it scores this close to the best. */
#define RELATED_RATIO 0.75
/* A section with numbered steps is preferred over a better-ranked one without, when
 * it scores at least this share of it. */
#define STEPS_RATIO 0.75
/* Sections scoring within this share of each other count as equally relevant. */
#define EARLY_RATIO 0.85
/* Hits considered per search: enough to find the best section of the best article. */
#define SEARCH_K 20
/* Longest quoted section and intro, in bytes: a chat answer, not the whole article. */
#define MAX_SECTION_BYTES 1500
#define MAX_INTRO_BYTES 500
/* Bytes of the question used for language detection (the search reads as much). */
#define MAX_QUESTION_BYTES MK_KB_MAX_QUERY_BYTES

/* --- the shared knowledge base ------------------------------------------------------ */

/* Every local provider in the process answers from the same demo KB: it is read-only
 * after loading and mk_kb_search is thread-safe, so one copy serves all. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static mk_kb *shared_kb;
static size_t shared_refs;

static int local_init(mk_provider *p)
{
    int rc = 0;
    pthread_mutex_lock(&shared_lock);
    if (!shared_kb) {
        mk_kb *kb = mk_kb_new();
        if (!kb) {
            rc = MK_ENOMEM;
        } else if ((rc = mk_kb_load_demo(kb)) != 0) {
            mk_kb_free(kb);
        } else {
            shared_kb = kb;
            mk_logf(MK_LOG_DEBUG, "kb_loaded", "demo knowledge base: %zu documents, %zu chunks",
                    mk_kb_document_count(kb), mk_kb_chunk_count(kb));
        }
    }
    if (rc == 0) {
        shared_refs++;
        p->state = shared_kb;
    }
    pthread_mutex_unlock(&shared_lock);
    return rc;
}

static void local_release(mk_provider *p)
{
    pthread_mutex_lock(&shared_lock);
    if (p->state && shared_refs > 0 && --shared_refs == 0) {
        mk_kb_free(shared_kb);
        shared_kb = NULL;
    }
    p->state = NULL;
    pthread_mutex_unlock(&shared_lock);
}

/* --- phrases ----------------------------------------------------------------------------- */

enum lang { LANG_RU, LANG_EN, LANG_KK };

struct phrases {
    const char *found;       /* first line when the answer is in the user's language */
    const char *found_other; /* ... when it comes from an article in another language */
    const char *full;        /* "the full article:" after a trimmed section */
    const char *see_also;
    const char *sources;
    const char *no_answer;
};

/* The helpdesk contacts are the demo company's (see helpdesk-contacts.md in kb/demo). */
static const struct phrases phrases[] = {
    [LANG_RU] = {
        .found = "Вот что говорит база знаний:",
        .found_other = "В базе знаний есть статья на эту тему только на другом языке:",
        .full = "Полностью:",
        .see_also = "См. также:",
        .sources = "Источники:",
        .no_answer = "К сожалению, в базе знаний нет ответа на этот вопрос, а угадывать я не буду. "
                     "Обратитесь, пожалуйста, в службу поддержки: +7 (495) 000-00-00, доб. 1234, "
                     "helpdesk@example.com — или напишите «позовите оператора», и вопрос передадут специалисту.",
    },
    [LANG_EN] = {
        .found = "Here is what the knowledge base says:",
        .found_other = "The knowledge base has an article on this only in another language:",
        .full = "Full article:",
        .see_also = "See also:",
        .sources = "Sources:",
        .no_answer = "Sorry, the knowledge base has no answer to this question, and I would rather not guess. "
                     "Please contact the helpdesk: +7 (495) 000-00-00 ext. 1234, helpdesk@example.com — "
                     "or type \"call an operator\" and a person will take over.",
    },
    [LANG_KK] = {
        .found = "Білім қорында бұл туралы мақала бар:",
        .found_other = "Білім қорында бұл туралы мақала тек басқа тілде бар:",
        .full = "Толық мақала:",
        .see_also = "Сондай-ақ қараңыз:",
        .sources = "Дереккөздер:",
        .no_answer = "Кешіріңіз, білім қорында бұл сұраққа жауап жоқ. Қолдау қызметіне хабарласыңыз: "
                     "+7 (495) 000-00-00, ішкі нөмір 1234, helpdesk@example.com — немесе «операторды шақырыңыз» "
                     "деп жазыңыз.",
    },
};

static const char *lang_code(enum lang l) { return l == LANG_EN ? "en" : l == LANG_KK ? "kk" : "ru"; }

/* --- the question ------------------------------------------------------------------------ */

/* Appends the text of a message content: a string, or the "text" parts of an array
 * (images and other parts cannot be read here and are skipped). */
static int append_content_text(json_object *content, mk_buf *out)
{
    if (json_object_is_type(content, json_type_string))
        return mk_buf_append(out, json_object_get_string(content), (size_t)json_object_get_string_len(content));
    if (!json_object_is_type(content, json_type_array))
        return 0;
    size_t n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(content, i), *type, *text;
        if (!json_object_is_type(part, json_type_object) || !json_object_object_get_ex(part, "type", &type) ||
            !json_object_is_type(type, json_type_string) || strcmp(json_object_get_string(type), "text") != 0 ||
            !json_object_object_get_ex(part, "text", &text) || !json_object_is_type(text, json_type_string))
            continue;
        if (out->len && mk_buf_append_char(out, '\n'))
            return MK_ENOMEM;
        if (mk_buf_append(out, json_object_get_string(text), (size_t)json_object_get_string_len(text)))
            return MK_ENOMEM;
    }
    return 0;
}

static int64_t estimate_tokens(const char *s, size_t len)
{
    size_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < len; i++) {
        bool space = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
        if (!space && !in_word)
            words++;
        in_word = !space;
    }
    int64_t by_words = (int64_t)((words * 4 + 2) / 3);
    int64_t by_bytes = (int64_t)((len + 3) / 4);
    return by_words > by_bytes ? by_words : by_bytes;
}

/* Finds the last user message's text and estimates the prompt's tokens. */
static int read_request(json_object *request, mk_buf *question, int64_t *prompt_tokens)
{
    json_object *messages;
    if (!json_object_is_type(request, json_type_object) ||
        !json_object_object_get_ex(request, "messages", &messages) ||
        !json_object_is_type(messages, json_type_array))
        return MK_EINVAL;
    size_t n = json_object_array_length(messages);
    mk_buf text = MK_BUF_INIT;
    int64_t tokens = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *m = json_object_array_get_idx(messages, i), *role, *content;
        if (!json_object_is_type(m, json_type_object))
            continue;
        mk_buf_reset(&text);
        if (json_object_object_get_ex(m, "content", &content))
            rc = append_content_text(content, &text);
        tokens += 4 + estimate_tokens(text.data ? text.data : "", text.len);
        if (rc == 0 && json_object_object_get_ex(m, "role", &role) && json_object_is_type(role, json_type_string) &&
            strcmp(json_object_get_string(role), "user") == 0) {
            mk_buf_reset(question);
            rc = mk_buf_append(question, text.data ? text.data : "", text.len);
        }
    }
    mk_buf_release(&text);
    *prompt_tokens = tokens;
    return rc;
}

/* --- composing the answer ------------------------------------------------------------ */

static bool confident(const struct mk_kb_hit *h) { return h->coverage >= MIN_COVERAGE && h->score >= MIN_SCORE; }

/* Appends whole lines of s while they fit in max bytes; true when something was left
 * out. A first line longer than max is cut at a character boundary. */
static int append_trimmed(mk_buf *out, const char *s, size_t max, bool *trimmed)
{
    size_t len = strlen(s);
    *trimmed = false;
    if (len <= max)
        return mk_buf_append(out, s, len);
    size_t cut = 0;
    for (size_t i = 0; i < max; i++)
        if (s[i] == '\n')
            cut = i;
    if (cut == 0)
        cut = mk_utf8_complete_prefix(s, max);
    while (cut > 0 && (s[cut - 1] == '\n' || s[cut - 1] == ' '))
        cut--;
    *trimmed = true;
    if (mk_buf_append(out, s, cut))
        return MK_ENOMEM;
    return mk_buf_append_str(out, " …");
}

/* The first paragraph of the article's intro, if it has one. */
static bool intro_of(mk_kb *kb, size_t doc, struct mk_kb_hit *intro)
{
    size_t first, count;
    return mk_kb_document_chunks(kb, doc, &first, &count) && count > 0 && mk_kb_chunk(kb, first, intro) &&
           intro->section[0] == '\0';
}

static bool has_steps(const char *text) { return strncmp(text, "1. ", 3) == 0 || strstr(text, "\n1. ") != NULL; }

/* The section to quote, among the best article's sections (not its intro):
 *  - those with numbered steps are preferred when they rank at least STEPS_RATIO of
 *    the top one: BM25 favours short sections, and a short aside should not beat the
 *    instructions;
 *  - among near-equals (EARLY_RATIO of the best of them) the earliest in the article
 *    wins: when the question does not choose (Windows or macOS?), authors put the
 *    common case first;
 *  - when only the intro matched, the article's first section. */
static bool section_of(mk_kb *kb, const struct mk_kb_hit *hits, int n, struct mk_kb_hit *out)
{
    const struct mk_kb_hit *top = NULL, *best_steps = NULL;
    for (int i = 0; i < n; i++) {
        const struct mk_kb_hit *h = &hits[i];
        if (h->doc_index != hits[0].doc_index || !h->section[0])
            continue;
        if (!top)
            top = h;
        if (h->score < STEPS_RATIO * top->score)
            break;
        if (!best_steps && has_steps(h->text))
            best_steps = h;
    }
    if (best_steps) {
        const struct mk_kb_hit *pick = best_steps;
        for (int i = 0; i < n; i++) {
            const struct mk_kb_hit *h = &hits[i];
            if (h->doc_index == hits[0].doc_index && h->section[0] && has_steps(h->text) &&
                h->score >= EARLY_RATIO * best_steps->score && h->chunk_index < pick->chunk_index)
                pick = h;
        }
        *out = *pick;
        return true;
    }
    if (top) {
        *out = *top;
        return true;
    }
    size_t first, count;
    if (!mk_kb_document_chunks(kb, hits[0].doc_index, &first, &count))
        return false;
    for (size_t c = first; c < first + count; c++)
        if (mk_kb_chunk(kb, c, out) && out->section[0])
            return true;
    return false;
}

static int compose(mk_kb *kb, enum lang lang, const struct mk_kb_hit *hits, int n, mk_buf *out,
                   const struct mk_kb_hit **cited, size_t *ncited)
{
    const struct phrases *ph = &phrases[lang];
    const struct mk_kb_hit *best = &hits[0];
    bool other_lang = strcmp(best->lang, lang_code(lang)) != 0;
    int rc = 0;
    rc |= mk_buf_printf(out, "%s\n\n**%s**\n\n", other_lang ? ph->found_other : ph->found, best->title);

    struct mk_kb_hit intro, section;
    bool trimmed = false, any_trimmed = false;
    if (intro_of(kb, best->doc_index, &intro)) {
        const char *para_end = strstr(intro.text, "\n\n");
        size_t plen = para_end ? (size_t)(para_end - intro.text) : strlen(intro.text);
        char *para = strndup(intro.text, plen);
        if (!para)
            return MK_ENOMEM;
        rc |= append_trimmed(out, para, MAX_INTRO_BYTES, &trimmed);
        any_trimmed |= trimmed || para_end != NULL;
        free(para);
        rc |= mk_buf_append_str(out, "\n\n");
    }
    if (section_of(kb, hits, n, &section)) {
        rc |= mk_buf_printf(out, "**%s**\n\n", section.section);
        rc |= append_trimmed(out, section.text, MAX_SECTION_BYTES, &trimmed);
        any_trimmed |= trimmed;
        rc |= mk_buf_append_str(out, "\n\n");
    }
    if (any_trimmed)
        rc |= mk_buf_printf(out, "%s %s\n\n", ph->full, best->source);

    /* The next article close in score is worth a mention: questions often sit
     * between two (connect vs troubleshoot). */
    cited[0] = best;
    *ncited = 1;
    for (int i = 1; i < n; i++) {
        if (hits[i].doc_index == best->doc_index)
            continue;
        if (hits[i].score >= RELATED_RATIO * best->score && confident(&hits[i])) {
            rc |= mk_buf_printf(out, "%s **%s** (%s)\n\n", ph->see_also, hits[i].title, hits[i].source);
            cited[(*ncited)++] = &hits[i];
        }
        break;
    }
    rc |= mk_buf_printf(out, "%s\n", ph->sources);
    for (size_t i = 0; i < *ncited; i++)
        rc |= mk_buf_printf(out, "%zu. %s — %s\n", i + 1, cited[i]->title, cited[i]->source);
    /* Drop the final newline: chat clients show the content as is. */
    if (out->len && out->data[out->len - 1] == '\n')
        out->data[--out->len] = '\0';
    return rc ? MK_ENOMEM : 0;
}

/* Searches the user's language first, then (for Kazakh) Russian, then everything;
 * the first search whose best hit is confident wins. Returns the hit count of the
 * winning search, 0 when none is confident, or an error. */
static int retrieve(mk_kb *kb, const char *question, enum lang lang, struct mk_kb_hit *hits)
{
    const char *order[3];
    size_t norder = 0;
    order[norder++] = lang_code(lang);
    if (lang == LANG_KK)
        order[norder++] = "ru";
    order[norder++] = NULL;
    for (size_t i = 0; i < norder; i++) {
        int n = mk_kb_search(kb, question, order[i], SEARCH_K, hits);
        if (n < 0)
            return n;
        if (n > 0 && confident(&hits[0]))
            return n;
    }
    return 0;
}

static enum lang pick_lang(const mk_buf *question, json_object *request)
{
    const char *code = mk_kb_detect_language(question->data ? question->data : "",
                                             question->len < MAX_QUESTION_BYTES ? question->len : MAX_QUESTION_BYTES);
    if (strcmp(code, "und") == 0) {
        /* "???" or an emoji: answer in the language the conversation is in. */
        const char *all = json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN);
        size_t len = all ? strlen(all) : 0;
        code = mk_kb_detect_language(all ? all : "", len < MAX_QUESTION_BYTES ? len : MAX_QUESTION_BYTES);
    }
    if (strcmp(code, "ru") == 0)
        return LANG_RU;
    if (strcmp(code, "kk") == 0)
        return LANG_KK;
    return LANG_EN;
}

/* --- the chat.completion ------------------------------------------------------------ */

static int add(json_object *o, const char *key, json_object *v)
{
    if (!v)
        return MK_ENOMEM;
    if (json_object_object_add(o, key, v)) {
        json_object_put(v);
        return MK_ENOMEM;
    }
    return 0;
}

static json_object *new_str(const char *s, size_t len) { return json_object_new_string_len(s, (int)len); }

static int build_json(const struct mk_chat_call *call, const mk_buf *content, const struct mk_kb_hit *const *cited,
                      size_t ncited, const struct mk_usage *u, mk_buf *out)
{
    json_object *root = json_object_new_object(), *choices = json_object_new_array(),
                *choice = json_object_new_object(), *msg = json_object_new_object(),
                *usage = json_object_new_object(), *cites = json_object_new_array();
    int rc = (!root || !choices || !choice || !msg || !usage || !cites) ? MK_ENOMEM : 0;
    if (rc) {
        json_object_put(root);
        json_object_put(choices);
        json_object_put(choice);
        json_object_put(msg);
        json_object_put(usage);
        json_object_put(cites);
        return rc;
    }
    const char *id = call->response_id ? call->response_id : "chatcmpl-local";
    const char *model = call->model ? call->model : "local";
    rc |= add(root, "id", json_object_new_string(id));
    rc |= add(root, "object", json_object_new_string("chat.completion"));
    rc |= add(root, "created", json_object_new_int64(call->created));
    rc |= add(root, "model", json_object_new_string(model));

    rc |= add(msg, "role", json_object_new_string("assistant"));
    rc |= add(msg, "content", new_str(content->data ? content->data : "", content->len));
    rc |= add(choice, "index", json_object_new_int(0));
    rc |= add(choice, "message", msg);
    rc |= json_object_object_add(choice, "logprobs", NULL) ? MK_ENOMEM : 0;
    rc |= add(choice, "finish_reason", json_object_new_string("stop"));
    if (json_object_array_add(choices, choice)) {
        json_object_put(choice);
        rc = MK_ENOMEM;
    }
    rc |= add(root, "choices", choices);

    rc |= add(usage, "prompt_tokens", json_object_new_int64(u->prompt_tokens));
    rc |= add(usage, "completion_tokens", json_object_new_int64(u->completion_tokens));
    rc |= add(usage, "total_tokens", json_object_new_int64(u->total_tokens));
    rc |= add(root, "usage", usage);

    for (size_t i = 0; i < ncited; i++) {
        json_object *c = json_object_new_object();
        if (!c) {
            rc = MK_ENOMEM;
            break;
        }
        rc |= add(c, "id", json_object_new_string(cited[i]->doc_id));
        rc |= add(c, "title", json_object_new_string(cited[i]->title));
        rc |= add(c, "url", json_object_new_string(cited[i]->source));
        /* Three decimals, printed as such: a score is a ranking aid, and json-c would
         * otherwise print 10.984999999999999. */
        char num[32];
        snprintf(num, sizeof num, "%.3f", cited[i]->score);
        rc |= add(c, "score", json_object_new_double_s(strtod(num, NULL), num));
        if (json_object_array_add(cites, c)) {
            json_object_put(c);
            rc = MK_ENOMEM;
        }
    }
    rc |= add(root, "mayak_citations", cites);
    if (rc == 0) {
        size_t len = 0;
        const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                           &len);
        rc = s ? mk_buf_append(out, s, len) : MK_ENOMEM;
    }
    json_object_put(root);
    return rc ? MK_ENOMEM : 0; /* every failure above is an allocation failing */
}

static int local_answer(mk_provider *p, const struct mk_chat_call *call, mk_buf *out_json, struct mk_usage *usage)
{
    if (!p || !p->state || !call || !call->request || !out_json)
        return MK_EINVAL;
    mk_kb *kb = p->state;
    mk_buf question = MK_BUF_INIT, content = MK_BUF_INIT;
    struct mk_kb_hit *hits = calloc(SEARCH_K, sizeof *hits);
    struct mk_usage u = {0};
    int rc = hits ? read_request(call->request, &question, &u.prompt_tokens) : MK_ENOMEM;
    if (rc)
        goto out;
    enum lang lang = pick_lang(&question, call->request);
    int n = retrieve(kb, question.data ? question.data : "", lang, hits);
    if (n < 0) {
        rc = n;
        goto out;
    }
    const struct mk_kb_hit *cited[2];
    size_t ncited = 0;
    if (n > 0)
        rc = compose(kb, lang, hits, n, &content, cited, &ncited);
    else
        rc = mk_buf_append_str(&content, phrases[lang].no_answer);
    if (rc)
        goto out;
    u.completion_tokens = estimate_tokens(content.data, content.len);
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    rc = build_json(call, &content, cited, ncited, &u, out_json);
    if (rc == 0 && usage)
        *usage = u;
out:
    free(hits);
    mk_buf_release(&question);
    mk_buf_release(&content);
    return rc;
}

const struct mk_provider_ops mk_provider_local_ops = {
    .type = "local",
    .init = local_init,
    .release = local_release,
    .answer_local = local_answer,
};
