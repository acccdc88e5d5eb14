/*
 * mk_desk: the support desk's brain — agents, triage, answers, escalation.
 *
 * A desk holds the agents (from the config's `agents:` section, or five built-in
 * tech-support agents: network, hardware, accounts, software, billing), a triage
 * classifier trained at start from the agents' example messages
 * (mk_desk_classifier.h), and a knowledge base (borrowed, or the demo one).
 *
 * One user message goes through:
 *  1. signals (mk_desk_signals.h): a request for a person or frustration sends the
 *     conversation straight to a human; "that did not help" counts as a bot failure;
 *  2. triage: the classifier's probabilities, mixed with the previous agent of the
 *     conversation as a prior (a short follow-up such as "still nothing" stays with
 *     the agent that was helping). Unsure triage (confidence below
 *     MK_DESK_TRIAGE_UNSURE) can ask the LLM when one is configured
 *     (mk_desk_triage_request / mk_desk_triage_parse), else lets retrieval decide;
 *  3. retrieval in the agent's knowledge collections (its own documents and the
 *     shared ones), in the user's language first (Kazakh falls back to Russian), then
 *     in every language; then, if the agent has nothing, in the whole knowledge base;
 *  4. the answer: without an LLM, composed from the best passage (title, intro,
 *     the best section — numbered steps preferred — and sources); with an LLM, a chat
 *     request holding the agent's instructions, the conversation and the passages
 *     spotlighted as untrusted data (mk_spotlight.h), which the caller runs through
 *     Mayak's own pipeline and hands back to mk_desk_complete();
 *  5. escalation when retrieval is not confident, nothing matched, the LLM says the
 *     passages do not answer, or the bot has now failed twice: the reply says so
 *     honestly and names the reason instead of guessing.
 *
 * Thread safety: after mk_desk_new() a desk is read-only; mk_desk_respond and the
 * other calls may run from many threads at once (the kb and the classifier are
 * thread-safe for reads). Each reply is the caller's.
 */
#ifndef MK_DESK_H
#define MK_DESK_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/mk_config.h"
#include "kb/mk_kb.h"

/* --- Limits and tuned constants (the reason beside each) ------------------------- */
/* Agents of one desk: a support team has a handful; a hundred is a misconfiguration. */
#define MK_DESK_MAX_AGENTS 64
/* Example messages per agent: 10-50 is typical; more only slows the start. */
#define MK_DESK_MAX_EXAMPLES 1000
/* Bytes of one example, instruction text, and one user message that are read. */
#define MK_DESK_MAX_EXAMPLE_BYTES 1000
#define MK_DESK_MAX_INSTRUCTIONS_BYTES (16 * 1024)
#define MK_DESK_MAX_MESSAGE_BYTES (16 * 1024)
/* Earlier turns put into an LLM prompt: the recent ones carry the context. */
#define MK_DESK_MAX_PROMPT_TURNS 12
/* Passages given to the LLM / cited. */
#define MK_DESK_MAX_PASSAGES 4
#define MK_DESK_MAX_CITATIONS 4
/* Share of the query's term weight the best passage must cover (mk_kb_hit.coverage)
 * for an answer: measured on the demo set, real questions with one unknown word sit
 * near 0.5, off-topic ones sharing one incidental word at 0.2-0.4. An agent's
 * escalation_threshold overrides it. */
#define MK_DESK_DEFAULT_ESCALATION 0.45
/* ... and the BM25 score it must reach (one incidental rare word scores below). */
#define MK_DESK_MIN_BM25 1.0
/* Triage below this confidence is unsure (asks the LLM or lets retrieval decide). */
#define MK_DESK_TRIAGE_UNSURE 0.5
/* Weight of the previous agent as a prior: p = (1 - w) * classifier + w * [previous]. */
#define MK_DESK_PRIOR_WEIGHT 0.3
/* A chat.completion read back from the LLM: the upstream body cap. */
#define MK_DESK_MAX_COMPLETION_BYTES (32u * 1024 * 1024)
/* Failed bot replies in one conversation after which a human takes over. */
#define MK_DESK_MAX_FAILURES 2

typedef struct mk_desk mk_desk;

/* One agent as the desk uses it. Strings are owned by the desk. */
struct mk_desk_agent {
    const char *id;              /* [A-Za-z0-9._-]; "human" is reserved */
    const char *name;
    const char *description;
    const char *instructions;    /* the LLM's system prompt core */
    const char *model_group;     /* NULL = the config's default model group */
    const char *const *knowledge;/* knowledge collections (kb agent ids); none = its own id */
    size_t nknowledge;
    double escalation_threshold; /* retrieval coverage below this escalates */
    const char *const *examples; /* triage training messages */
    size_t nexamples;
};

struct mk_desk_options {
    /* Agents come from config->agents when it declares any; else the built-in five.
     * NULL = the built-in five. Borrowed for the call only. */
    const struct mk_config *config;
    /* Knowledge base, borrowed (must outlive the desk); NULL = the desk creates one
     * and loads the demo articles into it. */
    mk_kb *kb;
    /* An LLM provider is configured: mk_desk_respond prepares LLM requests
     * (reply->llm_request) instead of composing answers locally. */
    bool use_llm;
};

/* Builds a desk: agents, their triage classifier, the knowledge base.
 * Returns 0 and *out; MK_EINVAL (an agent without examples, a duplicate or reserved
 * id, too many agents), MK_ENOMEM, or a kb error. On failure *out is NULL. */
int mk_desk_new(const struct mk_desk_options *opts, mk_desk **out);
void mk_desk_free(mk_desk *d); /* accepts NULL */

size_t mk_desk_agent_count(const mk_desk *d);
/* The agent at index i (< count), or NULL. */
const struct mk_desk_agent *mk_desk_agent_at(const mk_desk *d, size_t i);
/* Index of the agent with that id, or -1. */
int mk_desk_agent_find(const mk_desk *d, const char *id);
mk_kb *mk_desk_kb(const mk_desk *d);

/* The built-in agents (static storage), for docs, tests and `mayak config`. */
size_t mk_desk_default_agent_count(void);
const struct mk_desk_agent *mk_desk_default_agent(size_t i);

/* --- The conversation so far (kept by the caller's conversation store) --------------- */
struct mk_desk_turn {
    const char *role;            /* "user", "assistant" (the bot) or "operator" */
    const char *text;
};

struct mk_desk_context {
    const struct mk_desk_turn *turns; /* earlier messages, oldest first; may be NULL */
    size_t nturns;
    const char *prev_agent;      /* id of the agent that answered last; NULL = none */
    unsigned bot_failures;       /* earlier bot replies that failed (reply->failed) */
    mk_kb *kb;                   /* search this knowledge base instead of the desk's own
                                    (borrowed: it must outlive the reply, whose citations
                                    point into it); NULL = the desk's */
};

/* --- Triage ------------------------------------------------------------------------ */
enum mk_desk_reason {
    MK_DESK_REASON_NONE = 0,
    MK_DESK_REASON_USER_REQUEST,   /* the user asked for a person */
    MK_DESK_REASON_FRUSTRATION,    /* the user's frustration shows */
    MK_DESK_REASON_REPEATED_FAILURE, /* the bot failed MK_DESK_MAX_FAILURES times */
    MK_DESK_REASON_LOW_CONFIDENCE, /* passages matched, but not well enough */
    MK_DESK_REASON_OUT_OF_KB,      /* nothing in the knowledge base matched */
    MK_DESK_REASON_LLM_UNSURE,     /* the LLM said the passages do not answer it */
    MK_DESK_REASON_LLM_ERROR,      /* the LLM call failed */
};
/* "user_request", "frustration", ... ("none" for NONE). Static. */
const char *mk_desk_reason_name(enum mk_desk_reason r);

struct mk_desk_triage {
    int agent;                   /* agent index, or -1 = straight to a human */
    double confidence;           /* probability of that agent (1 for signals) */
    int runner_up;               /* second agent, -1 when none */
    double runner_up_confidence;
    bool unsure;                 /* confidence < MK_DESK_TRIAGE_UNSURE */
    bool used_prior;             /* the previous agent changed the decision */
    bool llm;                    /* the LLM made the decision */
    enum mk_desk_reason reason;  /* why a human (agent == -1) */
    bool negative_feedback;      /* the message says the last answer did not help */
    double frustration;          /* the signals' frustration score */
};

/* Routes `text` (UTF-8; the first MK_DESK_MAX_MESSAGE_BYTES are read). ctx may be NULL.
 * Returns 0 and *out, MK_EINVAL, MK_ENOMEM. */
int mk_desk_triage(const mk_desk *d, const char *text, const struct mk_desk_context *ctx,
                   struct mk_desk_triage *out);

/* For unsure triage with an LLM: a chat request (json object with "model" = the
 * first agent's model group or NULL-less default "default", "messages", "temperature" 0)
 * asking which agent fits; the caller owns it (json_object_put). 0, MK_EINVAL, MK_ENOMEM. */
int mk_desk_triage_request(const mk_desk *d, const char *text, const struct mk_desk_context *ctx,
                           json_object **request);
/* Reads the LLM's reply (a chat.completion JSON) to that request and, when it names a
 * known agent (or "human"), updates *t (agent, confidence 0.9 for an agent the
 * classifier also ranked first or second, else 0.7; llm = true, unsure = false).
 * Returns 0 when it was understood, MK_EUPSTREAM_BADREPLY when not (t unchanged). */
int mk_desk_triage_parse(const mk_desk *d, const char *completion_json, size_t len, struct mk_desk_triage *t);

/* --- Answers ------------------------------------------------------------------------ */
struct mk_desk_citation {
    const char *doc_id, *title, *source, *lang, *section; /* owned by the kb */
    double score;                /* fused retrieval score */
};

struct mk_desk_reply {
    const char *agent;           /* agent id, or "human" (static / desk-owned) */
    int agent_index;             /* -1 for human */
    double confidence;           /* the reply's confidence: triage x retrieval, 0..1 */
    double triage_confidence;
    double retrieval_confidence; /* best passage's coverage of the question, 0..1 */
    struct mk_desk_triage triage;
    const char *triage_agent;    /* the agent triage chose ("human" for signals); agent may differ
                                    when retrieval found the answer in another agent's collection */
    char *answer;                /* NUL-terminated, owned (mk_desk_reply_release); NULL while
                                    llm_request is pending */
    size_t answer_len;
    struct mk_desk_citation citations[MK_DESK_MAX_CITATIONS];
    size_t ncitations;
    bool escalate;               /* hand the conversation to a human */
    enum mk_desk_reason reason;
    const char *lang;            /* language of the reply: "ru", "en", "kk" (static) */
    bool failed;                 /* the bot could not help (counts toward bot_failures) */
    /* With use_llm and a confident retrieval: the chat request to run (owned; the
     * caller runs it and calls mk_desk_complete, or mk_desk_reply_release drops it). */
    json_object *llm_request;
    const char *model_group;     /* the group llm_request names */
};

/* Answers one user message as the desk would. triage may be NULL (the desk triages),
 * or a decision made earlier (e.g. updated by the LLM). ctx may be NULL.
 * Returns 0 and *out (release with mk_desk_reply_release), MK_EINVAL, MK_ENOMEM or a
 * kb error. */
int mk_desk_respond(const mk_desk *d, const char *text, const struct mk_desk_context *ctx,
                    const struct mk_desk_triage *triage, struct mk_desk_reply *out);

/* Completes a reply whose llm_request was run: rc is the call's result (0 = success),
 * completion_json the chat.completion it returned. Fills answer (the LLM's text, plus
 * the sources list), or on failure / an "I cannot answer" reply, escalates honestly.
 * Drops llm_request. Returns 0 or MK_ENOMEM. */
int mk_desk_complete(const mk_desk *d, struct mk_desk_reply *r, int rc, const char *completion_json, size_t len);

void mk_desk_reply_release(struct mk_desk_reply *r); /* accepts NULL; zeroes r */

/* The reply as one JSON object (mayak ask --json):
 * {"agent","confidence","answer","citations":[{"id","title","url","lang","section","score"}],
 *  "escalate","reason","lang","triage":{"agent","confidence","unsure","llm"}}. 0 or MK_ENOMEM. */
int mk_desk_reply_json(const struct mk_desk_reply *r, mk_buf *out);

#endif
