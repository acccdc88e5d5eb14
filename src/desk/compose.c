/*
 * compose: the desk's local responder — an answer made of the knowledge base's own
 * words, for when no LLM is configured — and the honest hand-over messages.
 *
 * It never invents: the answer is the best article's title, the first paragraph of
 * its intro and one section, quoted, followed by the sources. The section is chosen
 * among the best article's matching sections: one with numbered steps wins over a
 * better-ranked one without when it ranks close (BM25 favours short asides over the
 * instructions), and among near-equals the earliest in the article (authors put the
 * common case first). Long parts are trimmed at line breaks and point to the article.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_utf8.h"
#include "desk/desk_int.h"

/* Quoted lengths: a chat answer, not the whole article. */
#define MAX_SECTION_BYTES 1500
#define MAX_INTRO_BYTES 500
/* A section with steps beats a better one without when it scores this share of it. */
#define STEPS_RATIO 0.75
/* Sections within this share of each other are equally relevant. */
#define EARLY_RATIO 0.85
/* Another article is cited as "see also" when it scores this share of the best. */
#define RELATED_RATIO 0.75

struct phrases {
    const char *found, *found_other, *full, *see_also, *sources;
    const char *handover[MK_DESK_REASON_LLM_ERROR + 1];
};

static const struct phrases ru = {
    .found = "Вот что говорит база знаний:",
    .found_other = "В базе знаний есть статья на эту тему только на другом языке:",
    .full = "Полностью:",
    .see_also = "См. также:",
    .sources = "Источники:",
    .handover = {
        [MK_DESK_REASON_USER_REQUEST] = "Хорошо, передаю разговор оператору. Он ответит здесь же, как только освободится.",
        [MK_DESK_REASON_FRUSTRATION] = "Простите, что так вышло. Передаю разговор оператору — дальше вам поможет человек.",
        [MK_DESK_REASON_REPEATED_FAILURE] = "Похоже, мои ответы вам не помогают. Передаю разговор оператору — он "
                                            "разберётся.",
        [MK_DESK_REASON_LOW_CONFIDENCE] = "Я не нашёл в базе знаний надёжного ответа на этот вопрос и гадать не буду. "
                                          "Передаю вопрос оператору.",
        [MK_DESK_REASON_OUT_OF_KB] = "В базе знаний нет ответа на этот вопрос, а выдумывать я не буду. Передаю вопрос "
                                     "оператору.",
        [MK_DESK_REASON_LLM_UNSURE] = "В базе знаний нет точного ответа на этот вопрос, а выдумывать я не буду. "
                                      "Передаю вопрос оператору.",
        [MK_DESK_REASON_LLM_ERROR] = "Не удалось подготовить ответ. Передаю вопрос оператору.",
    },
};

static const struct phrases en = {
    .found = "Here is what the knowledge base says:",
    .found_other = "The knowledge base has an article on this only in another language:",
    .full = "Full article:",
    .see_also = "See also:",
    .sources = "Sources:",
    .handover = {
        [MK_DESK_REASON_USER_REQUEST] = "Sure, I am handing this conversation to a human operator. They will reply here "
                                        "as soon as they are free.",
        [MK_DESK_REASON_FRUSTRATION] = "I am sorry about this. I am handing the conversation to a human operator who "
                                       "will take it from here.",
        [MK_DESK_REASON_REPEATED_FAILURE] = "It looks like my answers are not helping. I am handing the conversation to "
                                            "a human operator.",
        [MK_DESK_REASON_LOW_CONFIDENCE] = "I could not find a reliable answer in the knowledge base, and I would rather "
                                          "not guess. I am passing your question to a human operator.",
        [MK_DESK_REASON_OUT_OF_KB] = "The knowledge base has no answer to this question, and I would rather not guess. "
                                     "I am passing it to a human operator.",
        [MK_DESK_REASON_LLM_UNSURE] = "The knowledge base does not answer this exactly, and I would rather not guess. "
                                      "I am passing your question to a human operator.",
        [MK_DESK_REASON_LLM_ERROR] = "I could not prepare an answer. I am passing your question to a human operator.",
    },
};

static const struct phrases kk = {
    .found = "Білім қорында бұл туралы мақала бар:",
    .found_other = "Білім қорында бұл туралы мақала тек басқа тілде бар:",
    .full = "Толық мақала:",
    .see_also = "Сондай-ақ қараңыз:",
    .sources = "Дереккөздер:",
    .handover = {
        [MK_DESK_REASON_USER_REQUEST] = "Жақсы, әңгімені операторға беремін. Ол осында жауап береді.",
        [MK_DESK_REASON_FRUSTRATION] = "Кешіріңіз. Әңгімені операторға беремін — әрі қарай сізге адам көмектеседі.",
        [MK_DESK_REASON_REPEATED_FAILURE] = "Менің жауаптарым көмектеспей жатқан сияқты. Әңгімені операторға беремін.",
        [MK_DESK_REASON_LOW_CONFIDENCE] = "Білім қорынан сенімді жауап таппадым, болжағым келмейді. Сұрағыңызды "
                                          "операторға беремін.",
        [MK_DESK_REASON_OUT_OF_KB] = "Білім қорында бұл сұраққа жауап жоқ, ойдан шығармаймын. Сұрағыңызды операторға "
                                     "беремін.",
        [MK_DESK_REASON_LLM_UNSURE] = "Білім қорында бұған нақты жауап жоқ. Сұрағыңызды операторға беремін.",
        [MK_DESK_REASON_LLM_ERROR] = "Жауап дайындай алмадым. Сұрағыңызды операторға беремін.",
    },
};

static const struct phrases *phrases_for(const char *lang)
{
    if (lang && strcmp(lang, "ru") == 0) return &ru;
    if (lang && strcmp(lang, "kk") == 0) return &kk;
    return &en;
}

const char *desk_handover_text(enum mk_desk_reason reason, const char *lang)
{
    const struct phrases *p = phrases_for(lang);
    if (reason <= MK_DESK_REASON_NONE || reason > MK_DESK_REASON_LLM_ERROR) reason = MK_DESK_REASON_USER_REQUEST;
    return p->handover[reason];
}

int desk_sources(const char *lang, const struct mk_desk_citation *c, size_t n, mk_buf *out)
{
    if (n == 0) return 0;
    int rc = mk_buf_printf(out, "%s\n", phrases_for(lang)->sources);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mk_buf_printf(out, "%zu. %s — %s%s", i + 1, c[i].title, c[i].source, i + 1 < n ? "\n" : "");
    return rc;
}

/* Whole lines of s that fit in max bytes (a first line longer than that is cut at a
 * character boundary); *trimmed tells whether anything was left out. */
static int append_trimmed(mk_buf *out, const char *s, size_t len, size_t max, bool *trimmed)
{
    *trimmed = len > max;
    if (len <= max) return mk_buf_append(out, s, len);
    size_t cut = 0;
    for (size_t i = 0; i < max; i++)
        if (s[i] == '\n') cut = i;
    if (cut == 0) cut = mk_utf8_complete_prefix(s, max);
    while (cut > 0 && (s[cut - 1] == '\n' || s[cut - 1] == ' ')) cut--;
    int rc = mk_buf_append(out, s, cut);
    return rc ? rc : mk_buf_append_str(out, " …");
}

static bool has_steps(const char *t) { return strncmp(t, "1. ", 3) == 0 || strstr(t, "\n1. ") != NULL; }

/* The section of the best document to quote (see the file comment). */
static bool pick_section(mk_kb *kb, const struct mk_kb_result *res, size_t n, struct mk_kb_hit *out)
{
    size_t doc = res[0].hit.doc_index;
    const struct mk_kb_hit *top = NULL, *steps = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct mk_kb_hit *h = &res[i].hit;
        if (h->doc_index != doc || !h->section[0]) continue;
        if (!top) top = h;
        if (h->score < STEPS_RATIO * top->score) break;
        if (!steps && has_steps(h->text)) steps = h;
    }
    if (steps) {
        const struct mk_kb_hit *pick = steps;
        for (size_t i = 0; i < n; i++) {
            const struct mk_kb_hit *h = &res[i].hit;
            if (h->doc_index == doc && h->section[0] && has_steps(h->text) && h->score >= EARLY_RATIO * steps->score &&
                h->chunk_index < pick->chunk_index)
                pick = h;
        }
        *out = *pick;
        return true;
    }
    if (top) {
        *out = *top;
        return true;
    }
    /* Only the intro matched: the article's first section. */
    size_t first, count;
    if (!mk_kb_document_chunks(kb, doc, &first, &count)) return false;
    for (size_t c = first; c < first + count; c++)
        if (mk_kb_chunk(kb, c, out) && out->section[0]) return true;
    return false;
}

int desk_compose(mk_kb *kb, const char *lang, const struct mk_kb_result *res, size_t n, mk_buf *out,
                 const struct mk_kb_result **cited, size_t *ncited)
{
    const struct phrases *p = phrases_for(lang);
    const struct mk_kb_hit *best = &res[0].hit;
    int rc = mk_buf_printf(out, "%s\n\n**%s**\n\n", strcmp(best->lang, lang) ? p->found_other : p->found, best->title);
    bool trimmed = false, any_trimmed = false;
    size_t first, count;
    struct mk_kb_hit intro, section;
    if (rc == 0 && mk_kb_document_chunks(kb, best->doc_index, &first, &count) && count > 0 &&
        mk_kb_chunk(kb, first, &intro) && intro.section[0] == '\0') {
        const char *end = strstr(intro.text, "\n\n");
        size_t plen = end ? (size_t)(end - intro.text) : strlen(intro.text);
        rc = append_trimmed(out, intro.text, plen, MAX_INTRO_BYTES, &trimmed);
        any_trimmed = trimmed || end != NULL;
        if (rc == 0) rc = mk_buf_append_str(out, "\n\n");
    }
    if (rc == 0 && pick_section(kb, res, n, &section)) {
        rc = mk_buf_printf(out, "**%s**\n\n", section.section);
        if (rc == 0) rc = append_trimmed(out, section.text, strlen(section.text), MAX_SECTION_BYTES, &trimmed);
        any_trimmed |= trimmed;
        if (rc == 0) rc = mk_buf_append_str(out, "\n\n");
    }
    if (rc == 0 && any_trimmed) rc = mk_buf_printf(out, "%s %s\n\n", p->full, best->source);
    cited[0] = &res[0];
    *ncited = 1;
    /* The next article, when close: questions often sit between two (connect vs fix). */
    for (size_t i = 1; i < n && rc == 0; i++) {
        if (res[i].hit.doc_index == best->doc_index) continue;
        if (res[i].hit.score >= RELATED_RATIO * best->score && res[i].bm25 >= MK_DESK_MIN_BM25 &&
            res[i].hit.coverage >= MK_DESK_DEFAULT_ESCALATION && *ncited < MK_DESK_MAX_CITATIONS) {
            rc = mk_buf_printf(out, "%s **%s** (%s)\n\n", p->see_also, res[i].hit.title, res[i].hit.source);
            cited[(*ncited)++] = &res[i];
        }
        break;
    }
    /* No trailing blank line: the sources list follows in the caller. */
    while (rc == 0 && out->len && out->data[out->len - 1] == '\n') out->data[--out->len] = '\0';
    return rc ? MK_ENOMEM : 0;
}
