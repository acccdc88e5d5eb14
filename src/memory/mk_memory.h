/*
 * mk_memory: what agents remember, within a conversation and across them.
 *
 *   sessions   short-lived conversation state in kv (TTL, sliding: every read or write
 *              renews it), so any node sharing the kv (Redis) continues a session;
 *   state      key-value JSON per session (inside the session record) and per agent;
 *   history    conversation turns in the store, handed back as a token-budgeted
 *              window plus a rolling summary of the older turns (extractive unless a
 *              summariser hook is set);
 *   episodes   reflexion memory (task, what was tried, outcome, critique, reward),
 *              searchable by meaning and by filters;
 *   skills     named, versioned procedures; search returns current versions only;
 *   facts      about a user or tenant, with validity intervals: a contradicting fact
 *              closes the old one's interval, nothing is silently lost;
 *   links      causal links (cause, effect, confidence), likely-cause queries, pruning;
 *   retention  per-kind maximum age (30 days by default) enforced by mk_memory_sweep;
 *   erasure    everything about one user, in this module and (through hooks other
 *              modules register) elsewhere, with a report of what went.
 *
 * Everything is per tenant: every call names the tenant and never sees another's
 * rows. docs/MEMORY.md describes the design; docs/API.md the HTTP API.
 *
 * Meaning search. Episodes, skills and facts are embedded by the built-in embedder
 * and kept in three HNSW indexes (vector/), one namespace per tenant (per tenant and
 * subject for facts), keyed by row id. The store is the truth; the indexes are a
 * cache of it: each index is saved to <data_dir>/memory-<kind>-<fingerprint>.hnsw on
 * close (and by mk_memory_checkpoint) and at open it is loaded and brought up to date
 * from the store's change log (memory_changes), or rebuilt from the rows when there is
 * no usable file. Loading 100k episodes takes well under a second where a rebuild
 * takes tens of seconds (docs/MEMORY.md has the numbers), hence the file. Several
 * processes sharing one store (PostgreSQL, or one SQLite file) see each other's
 * writes through mk_memory_sync, which applies the change log since the last call.
 *
 * Threads. An mk_memory is shared by every thread. Functions taking a store
 * connection BLOCK (disk, embedding, index work): call them on a worker thread (see
 * mk_store_submit) or from tools, never on an event loop. Session and agent-state
 * functions are asynchronous on the kv's loop, and must be called on that loop's
 * thread (kv contract: the in-process kv calls back before returning, Redis later).
 *
 * Results. Reads and searches give JSON (json-c) objects in the shape the HTTP API
 * returns (docs/API.md), owned by the caller (json_object_put): the API and the CLI
 * print them as they are, and C callers read fields by name.
 *
 * Errors: 0 or a negative MK_E* code (core/mk_error.h). MK_EINVAL for a missing or
 * bad argument (with a sentence in `err` where the function takes one), MK_ETOOBIG
 * over a limit below, MK_ENOTFOUND for an id of another tenant or none at all, and
 * the store's and kv's own errors.
 */
#ifndef MK_MEMORY_H
#define MK_MEMORY_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/mk_buf.h"

struct mk_store;
struct mk_store_conn;
struct mk_kv;
struct mk_memory;

/* ---- limits (each with its reason) --------------------------------------------- */
/* Tenant, user, session, agent, skill and predicate names: ids, not text. */
#define MK_MEMORY_MAX_ID_BYTES 256
/* One text field (task, critique, a turn, a procedure): a long support transcript
 * turn fits; anything larger belongs in the knowledge base. */
#define MK_MEMORY_MAX_TEXT_BYTES (64 * 1024)
/* Tags per episode or skill, and bytes per tag. */
#define MK_MEMORY_MAX_TAGS 32
#define MK_MEMORY_MAX_TAG_BYTES 64
/* Results per search or list. */
#define MK_MEMORY_MAX_K 1000
/* A session record (id, owner, state) in kv: hot state, not a document store. */
#define MK_MEMORY_MAX_STATE_BYTES (256 * 1024)
/* Session TTL bounds: a minute to a week. */
#define MK_MEMORY_MIN_SESSION_TTL_MS (60u * 1000)
#define MK_MEMORY_MAX_SESSION_TTL_MS (7u * 24 * 3600 * 1000)
#define MK_MEMORY_DEFAULT_SESSION_TTL_MS (3600u * 1000)
/* Default retention of every kind. */
#define MK_MEMORY_DEFAULT_RETENTION_MS (30ll * 24 * 3600 * 1000)
/* Facts compared for duplicates/contradictions: "the top few candidates only", so an
 * assertion costs one small search, never a scan of the subject's facts. */
#define MK_MEMORY_FACT_CANDIDATES 5
/* Rows a filter may pre-select for a filtered meaning search (beyond: MK_ETOOBIG,
 * narrow the filter). */
#define MK_MEMORY_MAX_FILTER_ROWS 200000
/* Beams of the meaning indexes (M 16, int8 walk, float re-rank), chosen on BANKING77
 * tasks (bench/memory/README.md, memory_tune): against 64/32 they make an insert ~1.5x
 * cheaper and a search at 100k evaluate ~20% fewer distances, for -0.03 top-5
 * agreement with exact search at 100k and intent recall@5 -0.007 at 10k, +0.002 at 100k. */
#define MK_MEMORY_DEFAULT_EF_CONSTRUCTION 40
#define MK_MEMORY_DEFAULT_EF_SEARCH 28
/* Session cache per thread: ~13k sessions of ~250 bytes of JSON (a parsed record
 * costs ~2.5 KB of heap). */
#define MK_MEMORY_DEFAULT_SESSION_CACHE_BYTES (32ll * 1024 * 1024)
/* Hops of a likely-cause query. */
#define MK_MEMORY_MAX_CAUSE_DEPTH 4
/* History turns one window request reads (the newest first). */
#define MK_MEMORY_MAX_WINDOW_TURNS 2000

/* Kinds, for retention and reports. */
enum mk_memory_kind {
    MK_MEMORY_EPISODES = 0,
    MK_MEMORY_SKILLS,
    MK_MEMORY_FACTS,
    MK_MEMORY_LINKS,
    MK_MEMORY_HISTORY,
    MK_MEMORY_KIND_COUNT
};
/* "episodes", "skills", "facts", "links", "history" (static); "" when out of range. */
const char *mk_memory_kind_name(enum mk_memory_kind k);

/* A summariser for history older than the window: given the previous summary (may be
 * empty) and the turns it does not cover yet, writes a new summary of at most
 * max_tokens (estimated) to out. Runs on a worker thread; must be thread-safe.
 * 0, or an error (the extractive summary is used instead). The hook for an LLM. */
struct mk_memory_turn {
    int64_t id;
    const char *role;
    const char *content;
    int64_t created_at_ms;
};
typedef int (*mk_memory_summarise_fn)(void *arg, const char *prior, const struct mk_memory_turn *turns, size_t n,
                                      uint32_t max_tokens, mk_buf *out);

struct mk_memory_options {
    /* Where the index files go; NULL = keep nothing on disk (rebuild at every open). */
    const char *data_dir;
    /* Session TTL (sliding); 0 = MK_MEMORY_DEFAULT_SESSION_TTL_MS. */
    uint32_t session_ttl_ms;
    /* Maximum age per kind: 0 = MK_MEMORY_DEFAULT_RETENTION_MS, < 0 = keep forever. */
    int64_t retention_ms[MK_MEMORY_KIND_COUNT];
    /* Embedding dimension; 0 = 256 (docs/MEMORY.md: recall vs search time). */
    uint32_t embed_dim;
    /* HNSW beam width of searches; 0 = MK_MEMORY_DEFAULT_EF_SEARCH. */
    uint32_t ef_search;
    /* HNSW beam width when a vector is added (graph quality against insert cost; an
     * index loaded from its file keeps the width it was built with); 0 =
     * MK_MEMORY_DEFAULT_EF_CONSTRUCTION. */
    uint32_t ef_construction;
    /* Parsed session records each thread keeps (bytes, estimated); 0 =
     * MK_MEMORY_DEFAULT_SESSION_CACHE_BYTES, < 0 = no cache. See mk_memory_session_get. */
    int64_t session_cache_bytes;
    /* Reward at or above which an episode counts as a success; 0 (or not finite) = 0.5. */
    double success_reward;
    /* Optional LLM summariser (see above). */
    mk_memory_summarise_fn summarise;
    void *summarise_arg;
    /* Tests: the wall clock in Unix ms; NULL = the real one. */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
};

/* Opens the memory on `store` (applies the "memory" migrations) and, when kv is not
 * NULL, on kv for sessions (both borrowed: they must outlive the memory; kv may be
 * NULL for tools that touch no session). Loads or rebuilds the indexes (blocking: call
 * at start-up, not from a loop callback). opt may be NULL. MK_EINVAL, MK_ENOMEM, store
 * errors, MK_EIO/MK_ECORRUPT never (a bad index file is rebuilt, with a log line);
 * err gets a sentence. *out is the caller's (mk_memory_free). */
int mk_memory_open(struct mk_store *store, struct mk_kv *kv, const struct mk_memory_options *opt,
                   struct mk_memory **out, mk_buf *err);
/* Saves the indexes (when data_dir was given) and frees everything. No call may be in
 * flight. Accepts NULL. */
void mk_memory_free(struct mk_memory *m);
/* Saves the indexes now (blocking; exclusive on each index while it writes). */
int mk_memory_checkpoint(struct mk_memory *m);
/* Applies the change log of the store since the last call (writes of other processes
 * sharing it). Blocking. *applied (may be NULL) gets the number of changes applied. */
int mk_memory_sync(struct mk_memory *m, struct mk_store_conn *c, size_t *applied);
/* The embedder's model name ("mayak-embed-256") and the vectors indexed per kind
 * (episodes, skills, facts; tests and metrics). */
const char *mk_memory_embedder_name(const struct mk_memory *m);
size_t mk_memory_indexed(const struct mk_memory *m, enum mk_memory_kind k);

/* ---- episodes --------------------------------------------------------------------- */
struct mk_memory_episode {
    const char *tenant;          /* required */
    const char *user;            /* who it is about (erasure finds it by this); NULL = "" */
    const char *session;         /* NULL = "" */
    const char *task;            /* required, non-empty: what it is searched by */
    const char *tried;           /* what was tried; NULL = "" */
    const char *outcome;         /* NULL = "" */
    const char *critique;        /* NULL = "" */
    double reward;               /* finite */
    const char *const *tags;     /* ntags strings */
    size_t ntags;
};
/* Stores one episode (one transaction, durable on return) and indexes it. *id gets
 * its id. MK_EINVAL with a sentence in err for a bad field. */
int mk_memory_episode_add(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_episode *ep,
                          int64_t *id, mk_buf *err);
/* Stores n episodes in one transaction (all or none) and indexes them; ids gets n ids
 * (may be NULL). For imports and benchmarks. */
int mk_memory_episode_add_batch(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_episode *eps,
                                size_t n, int64_t *ids, mk_buf *err);
/* The episode as JSON; MK_ENOTFOUND when tenant has none with that id. */
int mk_memory_episode_get(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t id,
                          json_object **out);
int mk_memory_episode_delete(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t id);

/* Filters of an episode search or list; zeroed = none. */
struct mk_memory_episode_filter {
    const char *user, *session;  /* exact; NULL = any */
    const char *const *tags;     /* every tag must be present */
    size_t ntags;
    bool has_min_reward;
    double min_reward;
    bool success_only;           /* reward >= options.success_reward */
    bool failure_only;
    int64_t since_ms, until_ms;  /* created_at window; 0 = open */
};
/* The k episodes of tenant most similar to query (that pass the filter), best first:
 * {"object":"list","data":[{episode fields..., "score": cosine similarity}]}.
 * query empty or NULL: the newest k that pass the filter (a list). k 1..MAX_K. */
int mk_memory_episode_search(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *query,
                             uint32_t k, const struct mk_memory_episode_filter *f, json_object **out, mk_buf *err);
/* The ids and scores only (no row reads): for hot paths and benchmarks. Returns the
 * number of hits written (<= k) through *n. */
int mk_memory_episode_search_ids(struct mk_memory *m, const char *tenant, const char *query, uint32_t k,
                                 int64_t *ids, float *scores, size_t *n);

/* ---- skills ----------------------------------------------------------------------- */
struct mk_memory_skill {
    const char *tenant, *name;   /* required */
    const char *description;     /* what it solves (searched by, with the name) */
    const char *procedure;       /* required: the steps */
    const char *const *tags;
    size_t ntags;
    const char *author;          /* who; NULL = "" */
    int64_t source_episode;      /* 0 = none */
};
/* Stores a new version of skill `name` (1 for a new name) and makes it the current
 * one; older versions stay readable. *id and *version (either may be NULL). */
int mk_memory_skill_put(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_skill *s, int64_t *id,
                        int *version, mk_buf *err);
/* Promotes a successful episode (reward >= success_reward, else MK_EINVAL) to a new
 * version of skill `name`: description = the task, procedure = what was tried (or the
 * outcome when nothing was recorded as tried). */
int mk_memory_skill_promote(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t episode,
                            const char *name, const char *author, int64_t *id, int *version, mk_buf *err);
/* Current versions most similar to query, best first, with "score". */
int mk_memory_skill_search(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *query,
                           uint32_t k, json_object **out, mk_buf *err);
/* Every version of skill `name`, newest first ({"name","current","versions":[...]}). */
int mk_memory_skill_get(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *name,
                        json_object **out);
/* Records a use of the current version and whether it worked (success rate). */
int mk_memory_skill_record_use(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *name,
                               bool success);

/* ---- facts ------------------------------------------------------------------------ */
struct mk_memory_fact {
    const char *tenant;          /* required */
    const char *subject;         /* the user it is about; "" = the tenant itself */
    const char *text;            /* required: the fact as a sentence */
    const char *predicate;       /* optional key ("vpn_client"): at most one open fact per
                                    subject and predicate; a different value closes it */
    const char *value;           /* with predicate: the value compared; NULL = text */
    double confidence;           /* 0..1; NaN = 1 */
    const char *asserted_by;     /* who; NULL = "" */
    const char *source;          /* where from (a session, a document); NULL = "" */
    const int64_t *supersedes;   /* ids the caller says this fact replaces */
    size_t nsupersedes;
};
enum mk_memory_fact_status {
    MK_MEMORY_FACT_NEW = 0,      /* stored; nothing it contradicts */
    MK_MEMORY_FACT_DUPLICATE,    /* an open fact says the same: that one's id is returned */
    MK_MEMORY_FACT_SUPERSEDED,   /* stored, and the open facts it contradicts were closed */
};
/* Asserts a fact. Compares it with the subject's MK_MEMORY_FACT_CANDIDATES nearest
 * open facts (plus the open fact of the same predicate): a near-identical one makes it
 * a duplicate (nothing stored, its id returned); one it contradicts (same predicate
 * with another value, or the same statement negated, or listed in supersedes) has its
 * interval closed (valid_to = now, closed_by, superseded_by) and both are kept.
 * *result (may be NULL) gets {"id","status","closed":[ids]}. */
int mk_memory_fact_assert(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_fact *f, int64_t *id,
                          enum mk_memory_fact_status *status, json_object **result, mk_buf *err);
/* Facts of subject (NULL = every subject): open ones only, or with history every
 * version with its interval, newest first. */
int mk_memory_fact_list(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *subject,
                        bool history, uint32_t limit, json_object **out);
/* The open facts of subject most similar to query. */
int mk_memory_fact_search(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *subject,
                          const char *query, uint32_t k, json_object **out, mk_buf *err);
/* Closes a fact's interval by hand (retraction), keeping it. */
int mk_memory_fact_retract(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t id,
                           const char *by);

/* ---- causal links ----------------------------------------------------------------- */
/* Records evidence that cause leads to effect with confidence in (0, 1]. A repeated
 * link combines its evidence (noisy-or: 1 - (1-a)(1-b)) and counts observations.
 * user (may be NULL) ties it to a person for erasure. */
int mk_memory_link_add(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *cause,
                       const char *effect, double confidence, const char *user, json_object **out, mk_buf *err);
/* Likely causes of effect: direct causes and, up to depth hops back, their causes,
 * each with the path's confidence (product along the path, best path kept), at least
 * min_confidence, best first, at most limit. */
int mk_memory_link_causes(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *effect,
                          uint32_t depth, double min_confidence, uint32_t limit, json_object **out);
/* Deletes links of tenant below min_confidence (and, when older_than_ms > 0, also
 * those not observed for that long). *pruned gets how many. */
int mk_memory_link_prune(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, double min_confidence,
                         int64_t older_than_ms, int64_t *pruned);

/* ---- history ---------------------------------------------------------------------- */
/* Appends a turn (role: system, user, assistant, tool) to session's history. */
int mk_memory_history_append(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *session,
                             const char *user, const char *role, const char *content, int64_t *id, int *tokens,
                             mk_buf *err);
/* The prompt window: the newest turns whose estimated tokens fit in budget_tokens,
 * preceded by a summary of everything older (rolled forward and stored as turns fall
 * out of the window; the summary takes at most a quarter of the budget):
 * {"summary":"...","summary_covers":N,"messages":[{"id","role","content","tokens"}],
 *  "tokens":T,"total_turns":N}. */
int mk_memory_history_window(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *session,
                             uint32_t budget_tokens, json_object **out);
/* Token estimate of a text (words and punctuation, longer words count more): an
 * approximation of BPE tokenisers good to about ±25% for Russian and English. */
int mk_memory_estimate_tokens(const char *text, size_t len);
/* The extractive summary: the most informative sentences of text (term weight by
 * rarity within the text, length-normalised), in their original order, within
 * max_tokens. Appends to out. */
int mk_memory_summarise_extractive(const char *text, size_t len, uint32_t max_tokens, mk_buf *out);

/* ---- sessions and state (asynchronous, on the kv's loop) -------------------------- */
/* Callback with rc 0 and the session/state JSON, or an error (MK_ENOTFOUND: no such
 * live session). The value is valid during the callback; take a reference
 * (json_object_get) to keep it. It is READ-ONLY: reads hand out the calling thread's
 * cached parse of the record (see mk_memory_options.session_cache_bytes), so copy it
 * (json_object_deep_copy) to change it. Serialising it is fine. */
typedef void (*mk_memory_json_cb)(int rc, json_object *value, void *arg);
/* Creates a session {"id","tenant","user","agent","created_at","expires_at","state"}
 * with a random id, the default TTL when ttl_ms is 0, and initial state (an object or
 * NULL). The user, when given, is recorded in the store too (so erasure finds the
 * session): pass c for that (NULL when the session has no user), which makes this
 * call block on the store first: from a loop, create user sessions on a worker via
 * mk_memory_session_register and then call with c NULL. */
int mk_memory_session_create(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *user,
                             const char *agent, uint32_t ttl_ms, json_object *state, mk_memory_json_cb cb, void *arg);
/* Records (tenant, session id, user) for erasure; blocking. id must be a fresh id from
 * mk_memory_session_new_id. */
int mk_memory_session_register(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *id,
                               const char *user, const char *agent);
/* A new random session id (22 URL-safe characters + NUL). */
void mk_memory_session_new_id(char out[24]);
/* Like create, with the id given (after mk_memory_session_register). */
int mk_memory_session_create_id(struct mk_memory *m, const char *tenant, const char *id, const char *user,
                                const char *agent, uint32_t ttl_ms, json_object *state, mk_memory_json_cb cb,
                                void *arg);
/* Reads the session and slides its expiry. Each read fetches the record from the kv;
 * when its bytes are those this thread parsed last time, the cached tree answers
 * without parsing (so writes by other threads, processes or nodes show at once). */
int mk_memory_session_get(struct mk_memory *m, const char *tenant, const char *id, mk_memory_json_cb cb, void *arg);
/* Merges patch (an object) into the session's state: each member replaces the key, a
 * null member deletes it. Answers with the whole session. Last writer wins per
 * session record (concurrent patches from two nodes may lose one of them). */
int mk_memory_session_put_state(struct mk_memory *m, const char *tenant, const char *id, json_object *patch,
                                mk_memory_json_cb cb, void *arg);
int mk_memory_session_delete(struct mk_memory *m, const char *tenant, const char *id, mk_memory_json_cb cb,
                             void *arg);
/* Agent state: one JSON object per (tenant, agent), no expiry. get answers {} for an
 * agent with none. */
int mk_memory_agent_get(struct mk_memory *m, const char *tenant, const char *agent, mk_memory_json_cb cb, void *arg);
int mk_memory_agent_put(struct mk_memory *m, const char *tenant, const char *agent, json_object *patch,
                        mk_memory_json_cb cb, void *arg);

/* ---- retention and erasure ------------------------------------------------------- */
/* Deletes what is older than each kind's retention (and fact versions closed longer
 * ago than that; open facts are kept while valid), drops it from the indexes, prunes
 * the change log. *report (may be NULL) gets {"episodes":n,...}. Blocking. */
int mk_memory_sweep(struct mk_memory *m, struct mk_store_conn *c, json_object **report);

/* An erasure hook of another module (conversations, cache, audit raw text...): erases
 * what it holds about (tenant, user) and writes what it erased into `report` (an
 * object it adds members to, e.g. "conversations": 3). Runs on a worker thread with
 * a store connection; must be thread-safe. 0 or an error (reported, erasure goes on). */
typedef int (*mk_memory_erase_fn)(void *arg, struct mk_store_conn *c, const char *tenant, const char *user,
                                  json_object *report);
/* Registers a hook under name (kept, not copied: a static string). m NULL registers it
 * for every memory of the process (modules that start before the memory, or do not
 * know it, register this way). At most 16 per memory and 16 process-wide; a name
 * registered twice is MK_EEXISTS. */
int mk_memory_erase_hook_add(struct mk_memory *m, const char *name, mk_memory_erase_fn fn, void *arg);

/* The store part of erasing user of tenant: their episodes, history, facts (as
 * subject), links, session registrations and index vectors, then every hook. The
 * session ids found are returned in *sessions (a JSON array, caller owns) so the
 * caller can delete them from kv (mk_memory_erase_sessions, on the loop). A record of
 * the erasure (a digest of the user id, who asked, when, the counts) is kept in
 * memory_erasures. *report gets {"tenant","user","erased":{...},"hooks":{...},"at"}. */
int mk_memory_erase_user(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *user,
                         const char *requested_by, json_object **report, json_object **sessions);
/* Deletes the listed sessions from kv (on the loop), then calls cb with the number
 * deleted as {"sessions": n}. */
int mk_memory_erase_sessions(struct mk_memory *m, const char *tenant, json_object *sessions, mk_memory_json_cb cb,
                             void *arg);

/* ---- CLI ---------------------------------------------------------------------------- */
/* `mayak memory ...` (argv after "memory"): stats, sweep, erase, search, add, facts,
 * reindex. Opens <data_dir>/mayak.db or --store URL. Returns the exit status. */
int mk_memory_cli_main(int argc, char **argv, const char *data_dir);

#endif
