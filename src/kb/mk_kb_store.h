/*
 * mk_kb_store: the knowledge-base library — documents and chunks kept in the store
 * (SQLite or PostgreSQL, module "kb" migrations), ingestion of files into it, and an
 * in-memory index (mk_kb: BM25 + vectors) kept in step with it.
 *
 * The store is the truth; an index is a cache of it. The CLI (`mayak kb add`) writes
 * the store; a running server that shares the database notices through a generation
 * counter (kb_meta.generation, bumped by every write) and applies what changed since it
 * last looked (mk_kb_lib_sync: documents whose version is newer, removals recorded in
 * kb_removed), on SIGHUP, on the admin API's reload, and before its own kb requests.
 *
 * Identity. A document is (agent, lang, id): id is the source file's name without its
 * extension, lang is detected (or given), agent is the knowledge collection it was
 * added to. Its source is the file's absolute path (or "upload://NAME" for content
 * sent through the API). Re-adding a file whose bytes hash (BLAKE2b) the same and that
 * was cut by the current chunker does nothing; a changed one replaces its chunks in one
 * transaction, and indexes that load the change call the kb's change hooks.
 *
 * Blocking: every function may block on disk and the database (it acquires its own
 * store connections). Servers call them on worker threads (src/api/kb_api.c).
 * Thread-safety: one library may be used from several threads; writers serialise on
 * an internal mutex, searches go straight to the index (mk_kb is thread-safe).
 */
#ifndef MK_KB_STORE_H
#define MK_KB_STORE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mk_buf.h"
#include "kb/mk_kb.h"
#include "kb/mk_kb_ingest.h"

struct mk_store;
struct mk_kb_lib;

/* Files one `add` call walks (directories are recursive): bounds a mistaken "/". */
#define MK_KB_MAX_FILES 100000
/* Directory depth of a walk (symlink loops end here). */
#define MK_KB_MAX_DIR_DEPTH 32
/* Documents (or bytes of them) written per transaction: big enough that commits do not
 * dominate (an fsync each), small enough that a server's writers never wait long. */
#define MK_KB_BATCH_DOCS 256
#define MK_KB_BATCH_BYTES (8u * 1024 * 1024)
/* Version of the chunking rules; stored per document so `reindex` knows what to redo. */
#define MK_KB_CHUNKER_VERSION 1

struct mk_kb_lib_options {
    bool load;             /* build the in-memory index from the store at open */
    bool no_vectors;       /* BM25 only (no embedder, no HNSW): quicker loads for tools */
};

/* Migrates the "kb" schema and, when o->load, builds the index from the store. store
 * is borrowed (it must outlive the library). Returns 0 and *out, or the store's error
 * with a sentence in err. */
int mk_kb_lib_open(struct mk_store *store, const struct mk_kb_lib_options *o, struct mk_kb_lib **out, mk_buf *err);
/* Frees the library and its index (hits from it become invalid). Accepts NULL. */
void mk_kb_lib_free(struct mk_kb_lib *lib);
/* The index, or NULL when the library was opened without load. Owned by the library. */
mk_kb *mk_kb_lib_kb(struct mk_kb_lib *lib);
/* The store generation the index reflects. */
uint64_t mk_kb_lib_generation(struct mk_kb_lib *lib);

struct mk_kb_add_opts {
    const char *agent;     /* knowledge collection; NULL or "" = shared by every agent */
    const char *lang;      /* force this language; NULL = detect per document */
    bool force;            /* re-parse even when unchanged */
};

/* What an add or reindex did. items (when not NULL) gets one object per file:
 * {"path","id","lang","status":"added|updated|unchanged|skipped|failed","chunks","error"}. */
struct mk_kb_report {
    size_t files, added, updated, unchanged, skipped, failed, removed, chunks;
    uint64_t bytes;        /* bytes of the files read */
    json_object *items;    /* array, owned by the caller; NULL = not wanted */
};

/* Ingests a file, or every file of a known format under a directory (hidden entries
 * skipped, sorted by name). Problems with single files are counted in the report (and
 * described in items) without stopping the rest. Returns 0, or MK_ENOTFOUND / MK_EIO
 * for an unreadable path, MK_EINVAL for bad options, MK_ETOOBIG past MK_KB_MAX_FILES,
 * or a store error (then the current batch is rolled back; earlier batches stay). */
int mk_kb_lib_add_path(struct mk_kb_lib *lib, const char *path, const struct mk_kb_add_opts *o,
                       struct mk_kb_report *rep, mk_buf *err);
/* Ingests content that came without a file (the admin API): name gives the id and,
 * when format is UNKNOWN, the format; the source is "upload://<name>". Same returns. */
int mk_kb_lib_add_data(struct mk_kb_lib *lib, const char *name, const char *data, size_t len,
                       enum mk_kb_format format, const struct mk_kb_add_opts *o, struct mk_kb_report *rep,
                       mk_buf *err);
/* Removes the documents with this id (every language when lang is NULL, every agent
 * when agent is NULL). *removed gets how many. 0, MK_EINVAL, MK_ENOTFOUND when none
 * matched, or a store error. */
int mk_kb_lib_remove(struct mk_kb_lib *lib, const char *id, const char *lang, const char *agent, size_t *removed,
                     mk_buf *err);
/* Re-reads every document's source file: changed files are re-ingested, unchanged ones
 * too when force or when they were cut by an older chunker; documents whose source is
 * gone (or was an upload) keep their stored chunks (status "kept"). A loaded index
 * takes the changes as they are written. 0 or a store error. */
int mk_kb_lib_reindex(struct mk_kb_lib *lib, bool force, struct mk_kb_report *rep, mk_buf *err);
/* The documents in the store, as a JSON array of {"id","lang","agent","title","source",
 * "format","chunks","bytes","updated_at"} sorted by id, lang, agent (agent NULL = all).
 * *out is the caller's. 0 or a store error / MK_ENOMEM. */
int mk_kb_lib_list(struct mk_kb_lib *lib, const char *agent, json_object **out, mk_buf *err);
/* Brings a loaded index up to the store's generation. *changed (may be NULL) tells
 * whether anything was applied. 0 (also when not loaded: nothing to do) or an error. */
int mk_kb_lib_sync(struct mk_kb_lib *lib, bool *changed, mk_buf *err);

/* Runs mk_kb_search_hybrid and renders the outcome as JSON: {"query","lang","took_ms",
 * "confidence":{...},"results":[{"rank","doc_id","title","section","lang","chunk_lang",
 * "agent","source","position","page"?,"scores":{"bm25","vector","fused","coverage"},
 * "ranks":{"bm25","vector"},"citation","text"?}]}, or {"query","error"} with *err set
 * to the failure. so->lang "auto" filters by each query's detected language. The
 * object is the caller's (json_object_put); NULL only when out of memory. */
json_object *mk_kb_search_json(mk_kb *kb, const char *query, const struct mk_kb_search_opts *so, bool with_text,
                               int *err);

/* `mayak kb ...`: argv holds the words after "kb" (add|list|rm|reindex|search and
 * their options; --config FILE is skipped, the caller already used it to find
 * data_dir). Opens --store URL or <data_dir>/mayak.db. Returns the exit status
 * (0 ok, 1 failure, 2 usage). */
int mk_kb_cli_main(int argc, char **argv, const char *data_dir);

#endif
