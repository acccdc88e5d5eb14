/*
 * desk_llm: the support desk's answers with an LLM, on the serving loop.
 *
 * mk_desk (src/desk) decides and prepares; this file makes the calls, through
 * mk_api_internal_chat so that they get the pipeline's routing, guards, cache, audit
 * and metrics like any API call:
 *   1. triage; when the classifier is unsure, the LLM gets a second opinion
 *      (mk_desk_triage_request -> internal chat -> mk_desk_triage_parse; a failed
 *      or unreadable second opinion leaves the classifier's decision);
 *   2. mk_desk_respond: escalation, retrieval, and the answer request;
 *   3. the answer request -> internal chat -> mk_desk_complete (a failed call
 *      escalates honestly with reason llm_error).
 */
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "mk_api.h"

struct desk_answer {
    mk_app *app;
    const mk_desk *desk;
    char *text;
    struct mk_desk_context ctx;    /* shallow copy: the caller keeps turns alive until done */
    struct mk_desk_triage triage;
    struct mk_desk_reply reply;
    void (*done)(struct mk_desk_reply *r, int rc, void *arg);
    void *arg;
};

static void finish(struct desk_answer *a, int rc)
{
    if (rc) mk_desk_reply_release(&a->reply);
    a->done(rc ? NULL : &a->reply, rc, a->arg);
    mk_desk_reply_release(&a->reply);
    free(a->text);
    free(a);
}

static void answered(int rc, const char *json, size_t len, void *arg)
{
    struct desk_answer *a = arg;
    if (rc) mk_log(MK_LOG_WARN, "desk_llm_failed", "agent", a->reply.agent, "error", mk_strerror(rc), NULL);
    finish(a, mk_desk_complete(a->desk, &a->reply, rc, json, len));
}

static void respond(struct desk_answer *a)
{
    int rc = mk_desk_respond(a->desk, a->text, &a->ctx, &a->triage, &a->reply);
    if (rc || !a->reply.llm_request) {
        finish(a, rc);
        return;
    }
    rc = mk_api_internal_chat(a->app, a->reply.llm_request, answered, a);
    if (rc) answered(rc, NULL, 0, a); /* never called back: escalate now */
}

static void triaged(int rc, const char *json, size_t len, void *arg)
{
    struct desk_answer *a = arg;
    /* A second opinion that failed or said nothing usable leaves the first one. */
    if (rc == 0 && mk_desk_triage_parse(a->desk, json, len, &a->triage) != 0)
        mk_log(MK_LOG_INFO, "desk_triage_llm_unclear", NULL);
    respond(a);
}

int mk_api_desk_answer(mk_app *app, const mk_desk *desk, const char *text, const struct mk_desk_context *ctx,
                       void (*done)(struct mk_desk_reply *r, int rc, void *arg), void *arg)
{
    if (!app || !desk || !text || !done) return MK_EINVAL;
    struct desk_answer *a = calloc(1, sizeof *a);
    if (!a || !(a->text = strndup(text, MK_DESK_MAX_MESSAGE_BYTES))) {
        free(a);
        return MK_ENOMEM;
    }
    a->app = app;
    a->desk = desk;
    a->done = done;
    a->arg = arg;
    if (ctx) a->ctx = *ctx;
    int rc = mk_desk_triage(desk, a->text, &a->ctx, &a->triage);
    if (rc) {
        free(a->text);
        free(a);
        return rc;
    }
    json_object *req = NULL;
    if (a->triage.unsure && a->triage.agent >= 0 && mk_desk_triage_request(desk, a->text, &a->ctx, &req) == 0) {
        rc = mk_api_internal_chat(app, req, triaged, a);
        json_object_put(req); /* the call keeps its own copy */
        if (rc == 0) return 0;
    }
    respond(a);
    return 0;
}
