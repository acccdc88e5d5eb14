/*
 * kb_store: the knowledge-base library (mk_kb_store.h) — schema, ingestion into the
 * store, removal, listing, reindexing, and keeping a loaded index in step.
 *
 * Writes go in batches (MK_KB_BATCH_DOCS documents or MK_KB_BATCH_BYTES) per
 * transaction: a commit per file would make ingestion fsync-bound (hundreds of files a
 * second instead of megabytes). Every batch bumps kb_meta.generation once and stamps
 * the documents it wrote (and the removals it recorded) with the new value, which is
 * all a syncing reader needs: "what has a version above the one I loaded".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_time.h"
#include "embed/mk_embed.h"
#include "kb/mk_kb_store.h"
#include "store/mk_store.h"

/* --- schema ------------------------------------------------------------------------- */

/* One script serves both SQLite and PostgreSQL: plain types, no AUTOINCREMENT, and
 * column names that are keywords in neither. */
static const struct mk_store_migration migrations[] = {
    {1,
     "CREATE TABLE kb_documents ("
     " doc_key TEXT PRIMARY KEY,"          /* agent/lang/id */
     " agent TEXT NOT NULL, lang TEXT NOT NULL, id TEXT NOT NULL,"
     " title TEXT NOT NULL, source TEXT NOT NULL, format TEXT NOT NULL,"
     " content_hash TEXT NOT NULL, chunker BIGINT NOT NULL,"
     " bytes BIGINT NOT NULL, nchunks BIGINT NOT NULL,"
     " version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
     "CREATE INDEX kb_documents_source ON kb_documents (source);"
     "CREATE INDEX kb_documents_version ON kb_documents (version);"
     "CREATE INDEX kb_documents_id ON kb_documents (id);"
     "CREATE TABLE kb_chunks ("
     " doc_key TEXT NOT NULL, ordinal BIGINT NOT NULL, section TEXT NOT NULL, body TEXT NOT NULL,"
     " lang TEXT NOT NULL, page BIGINT NOT NULL, src_offset BIGINT NOT NULL,"
     " PRIMARY KEY (doc_key, ordinal));"
     "CREATE TABLE kb_removed ("
     " doc_key TEXT PRIMARY KEY, agent TEXT NOT NULL, lang TEXT NOT NULL, id TEXT NOT NULL,"
     " version BIGINT NOT NULL);"
     "CREATE TABLE kb_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
     "INSERT INTO kb_meta (name, value) VALUES ('generation', 0);",
     NULL},
};

struct mk_kb_lib {
    struct mk_store *store;
    pthread_mutex_t wlock;       /* one writer (add, remove, reindex, sync) at a time */
    mk_kb *kb;                   /* NULL unless loaded */
    mk_embedder *emb;            /* owned; NULL without vectors */
    uint64_t gen;                /* store generation the index reflects */
};

/* --- small helpers ---------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void errf(mk_buf *err, const char *fmt, ...)
{
    if (!err || err->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    mk_buf_vprintf(err, fmt, ap);
    va_end(ap);
}

static int doc_key(char *out, size_t cap, const char *agent, const char *lang, const char *id)
{
    int n = snprintf(out, cap, "%s/%s/%s", agent, lang, id);
    return n < 0 || (size_t)n >= cap ? MK_ETOOBIG : 0;
}

#define KEY_CAP (3 * MK_MAX_NAME_BYTES + 16)

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MK_MAX_NAME_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static bool valid_lang(const char *l)
{
    size_t n = strlen(l);
    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (l[i] < 'a' || l[i] > 'z')
            return false;
    return true;
}

static int check_opts(const struct mk_kb_add_opts *o, mk_buf *err)
{
    if (o && o->agent && o->agent[0] && !valid_name(o->agent)) {
        errf(err, "agent id '%s' must be 1-256 characters of A-Z a-z 0-9 . _ -", o->agent);
        return MK_EINVAL;
    }
    if (o && o->lang && !valid_lang(o->lang)) {
        errf(err, "language '%s' must be 2-3 lowercase letters", o->lang);
        return MK_EINVAL;
    }
    return 0;
}

static void hash_hex(const void *data, size_t len, char out[33])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    sodium_bin2hex(out, 33, h, sizeof h);
}

static int store_fail(int rc, struct mk_store_conn *c, mk_buf *err)
{
    if (err && err->len == 0)
        mk_buf_printf(err, "store: %s", c ? mk_store_errmsg(c) : mk_strerror(rc));
    return rc;
}

/* Runs a statement without results. */
static int exec1(struct mk_store_conn *c, const char *sql, const char *a, const char *b)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql, &st);
    if (rc)
        return rc;
    if (a)
        rc = mk_store_bind_cstr(st, 1, a);
    if (!rc && b)
        rc = mk_store_bind_cstr(st, 2, b);
    if (!rc)
        rc = mk_store_step(st);
    mk_store_stmt_done(st);
    return rc == MK_STORE_DONE || rc == MK_STORE_ROW ? 0 : rc;
}

static int read_generation(struct mk_store_conn *c, uint64_t *gen)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT value FROM kb_meta WHERE name = 'generation'", &st);
    if (rc)
        return rc;
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        *gen = (uint64_t)mk_store_column_int64(st, 0);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_ECORRUPT;
    }
    mk_store_stmt_done(st);
    return rc;
}

/* Bumps the generation inside the caller's transaction; *gen gets the new value. */
static int bump_generation(struct mk_store_conn *c, uint64_t *gen)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "UPDATE kb_meta SET value = value + 1 WHERE name = 'generation' RETURNING value", &st);
    if (rc)
        return rc;
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        *gen = (uint64_t)mk_store_column_int64(st, 0);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_ECORRUPT;
    }
    mk_store_stmt_done(st);
    return rc;
}

/* --- loading the index ------------------------------------------------------------------- */

/* One document's rows gathered for mk_kb_put_chunks. */
struct loaded_doc {
    char agent[MK_MAX_NAME_BYTES + 1], lang[8], id[MK_MAX_NAME_BYTES + 1];
    mk_buf title, source, hash;
    struct mk_kb_chunk_in *in;
    char **strs;                 /* sections and bodies, owned */
    char (*langs)[4];
    size_t n, cap;
};

static void loaded_reset(struct loaded_doc *d)
{
    for (size_t i = 0; i < 2 * d->n; i++)
        free(d->strs[i]);
    d->n = 0;
    mk_buf_reset(&d->title);
    mk_buf_reset(&d->source);
    mk_buf_reset(&d->hash);
}

static void loaded_release(struct loaded_doc *d)
{
    loaded_reset(d);
    free(d->in);
    free(d->strs);
    free(d->langs);
    mk_buf_release(&d->title);
    mk_buf_release(&d->source);
    mk_buf_release(&d->hash);
}

static int loaded_add_chunk(struct loaded_doc *d, mk_slice section, mk_slice body, mk_slice lang, int64_t page,
                            int64_t off)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        struct mk_kb_chunk_in *in = realloc(d->in, nc * sizeof *in);
        if (in)
            d->in = in;
        char **strs = realloc(d->strs, 2 * nc * sizeof *strs);
        if (strs)
            d->strs = strs;
        char(*langs)[4] = realloc(d->langs, nc * sizeof *langs);
        if (langs)
            d->langs = langs;
        if (!in || !strs || !langs)
            return MK_ENOMEM;
        d->cap = nc;
    }
    char *s = strndup(section.ptr, section.len), *b = strndup(body.ptr, body.len);
    if (!s || !b) {
        free(s);
        free(b);
        return MK_ENOMEM;
    }
    d->strs[2 * d->n] = s;
    d->strs[2 * d->n + 1] = b;
    snprintf(d->langs[d->n], sizeof d->langs[0], "%.*s", (int)(lang.len < 3 ? lang.len : 3), lang.ptr);
    d->in[d->n] = (struct mk_kb_chunk_in){
        .section = s, .text = b, .text_len = body.len, .lang = valid_lang(d->langs[d->n]) ? d->langs[d->n] : NULL,
        .page = page > 0 && page < UINT32_MAX ? (uint32_t)page : 0,
        .offset = off > 0 && off < UINT32_MAX ? (uint32_t)off : 0,
    };
    d->n++;
    return 0;
}

/* The kb's content hash: the file's plus the chunker's version, so re-cut chunks of an
 * unchanged file still replace the old ones in a loaded index. */
static int put_loaded(mk_kb *kb, struct loaded_doc *d)
{
    if (d->n == 0)
        return 0;
    struct mk_kb_doc doc = {
        .id = d->id, .lang = d->lang, .agent = d->agent, .title = d->title.data ? d->title.data : d->id,
        .source = d->source.data ? d->source.data : "", .content_hash = d->hash.data,
        .text = NULL, .text_len = 0,
    };
    int rc = mk_kb_put_chunks(kb, &doc, d->in, d->n, NULL);
    if (rc)
        mk_log(MK_LOG_WARN, "kb_load_document_failed", "id", d->id, "lang", d->lang, "error", mk_strerror(rc), NULL);
    return rc == MK_ENOMEM ? rc : 0; /* one bad stored row must not keep the rest out */
}

/* Puts every document with version > since (or all) into kb. */
static int load_docs(struct mk_store_conn *c, mk_kb *kb, uint64_t since, size_t *count)
{
    static const char sql[] =
        "SELECT d.agent, d.lang, d.id, d.title, d.source, d.content_hash, d.chunker,"
        " c.section, c.body, c.lang, c.page, c.src_offset, d.doc_key"
        " FROM kb_documents d JOIN kb_chunks c ON c.doc_key = d.doc_key"
        " WHERE d.version > ? ORDER BY d.doc_key, c.ordinal";
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, sql, &st);
    if (rc)
        return rc;
    rc = mk_store_bind_int64(st, 1, (int64_t)since);
    struct loaded_doc d = {0};
    mk_buf_init(&d.title, 0);
    mk_buf_init(&d.source, 0);
    mk_buf_init(&d.hash, 0);
    char cur[KEY_CAP] = "";
    size_t n = 0;
    while (!rc && (rc = mk_store_step(st)) == MK_STORE_ROW) {
        rc = 0;
        mk_slice key = mk_store_column_text(st, 12);
        if (key.len >= sizeof cur || strcmp(cur, key.ptr) != 0) {
            if ((rc = put_loaded(kb, &d)) != 0)
                break;
            n += d.n > 0;
            loaded_reset(&d);
            snprintf(cur, sizeof cur, "%s", key.ptr);
            snprintf(d.agent, sizeof d.agent, "%s", mk_store_column_text(st, 0).ptr);
            snprintf(d.lang, sizeof d.lang, "%s", mk_store_column_text(st, 1).ptr);
            snprintf(d.id, sizeof d.id, "%s", mk_store_column_text(st, 2).ptr);
            rc = mk_buf_append_slice(&d.title, mk_store_column_text(st, 3));
            if (!rc)
                rc = mk_buf_append_slice(&d.source, mk_store_column_text(st, 4));
            if (!rc)
                rc = mk_buf_printf(&d.hash, "%s-c%lld", mk_store_column_text(st, 5).ptr,
                                   (long long)mk_store_column_int64(st, 6));
            if (!rc)
                rc = mk_buf_append(&d.title, "", 0) || mk_buf_append(&d.source, "", 0);
        }
        if (!rc)
            rc = loaded_add_chunk(&d, mk_store_column_text(st, 7), mk_store_column_text(st, 8),
                                  mk_store_column_text(st, 9), mk_store_column_int64(st, 10),
                                  mk_store_column_int64(st, 11));
    }
    if (rc == MK_STORE_DONE)
        rc = 0;
    mk_store_stmt_done(st);
    if (!rc) {
        rc = put_loaded(kb, &d);
        n += d.n > 0;
    }
    loaded_release(&d);
    if (count)
        *count = n;
    return rc;
}

/* Removes from kb what kb_removed records above since. */
static int apply_removals(struct mk_store_conn *c, mk_kb *kb, uint64_t since)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT agent, lang, id FROM kb_removed WHERE version > ?", &st);
    if (rc)
        return rc;
    rc = mk_store_bind_int64(st, 1, (int64_t)since);
    while (!rc && (rc = mk_store_step(st)) == MK_STORE_ROW) {
        rc = 0;
        mk_kb_remove_document(kb, mk_store_column_text(st, 0).ptr, mk_store_column_text(st, 2).ptr,
                              mk_store_column_text(st, 1).ptr);
    }
    if (rc == MK_STORE_DONE)
        rc = 0;
    mk_store_stmt_done(st);
    return rc;
}

int mk_kb_lib_open(struct mk_store *store, const struct mk_kb_lib_options *o, struct mk_kb_lib **out, mk_buf *err)
{
    if (!store || !out)
        return MK_EINVAL;
    *out = NULL;
    struct mk_kb_lib_options opts = o ? *o : (struct mk_kb_lib_options){0};
    int rc = mk_store_migrate(store, "kb", migrations, sizeof migrations / sizeof migrations[0], err);
    if (rc)
        return rc;
    struct mk_kb_lib *lib = calloc(1, sizeof *lib);
    if (!lib)
        return MK_ENOMEM;
    lib->store = store;
    pthread_mutex_init(&lib->wlock, NULL);
    if (!opts.load) {
        *out = lib;
        return 0;
    }
    lib->kb = mk_kb_new();
    if (!lib->kb) {
        mk_kb_lib_free(lib);
        return MK_ENOMEM;
    }
    struct mk_store_conn *c = NULL;
    rc = mk_store_acquire(store, &c);
    uint64_t gen = 0;
    size_t ndocs = 0;
    uint64_t t0 = mk_now_us();
    /* The generation is read first: a write landing while we load has a higher version
     * and is picked up by the next sync (applying it twice is harmless: same hash). */
    if (!rc)
        rc = read_generation(c, &gen);
    if (!rc)
        rc = load_docs(c, lib->kb, 0, &ndocs);
    if (rc)
        store_fail(rc, c, err);
    mk_store_release(store, c);
    uint64_t t1 = mk_now_us();
    if (!rc && !opts.no_vectors) {
        rc = mk_embedder_new(NULL, &lib->emb);
        if (!rc)
            rc = mk_kb_enable_vectors(lib->kb, lib->emb);
        if (rc)
            errf(err, "cannot build the vector index: %s", mk_strerror(rc));
    }
    if (rc) {
        mk_kb_lib_free(lib);
        return rc;
    }
    lib->gen = gen;
    char a[32], b[32], t[48];
    snprintf(a, sizeof a, "%zu", ndocs);
    snprintf(b, sizeof b, "%zu", mk_kb_chunk_count(lib->kb));
    snprintf(t, sizeof t, "%.1f ms load, %.1f ms vectors", (t1 - t0) / 1000.0, (mk_now_us() - t1) / 1000.0);
    mk_log(MK_LOG_DEBUG, "kb_loaded", "documents", a, "chunks", b, "took", t, NULL);
    *out = lib;
    return 0;
}

void mk_kb_lib_free(struct mk_kb_lib *lib)
{
    if (!lib)
        return;
    mk_kb_free(lib->kb);
    mk_embedder_free(lib->emb);
    pthread_mutex_destroy(&lib->wlock);
    free(lib);
}

mk_kb *mk_kb_lib_kb(struct mk_kb_lib *lib) { return lib ? lib->kb : NULL; }

uint64_t mk_kb_lib_generation(struct mk_kb_lib *lib)
{
    if (!lib)
        return 0;
    pthread_mutex_lock(&lib->wlock);
    uint64_t g = lib->gen;
    pthread_mutex_unlock(&lib->wlock);
    return g;
}

/* Applies store changes above lib->gen to the index. wlock held. */
static int sync_locked(struct mk_kb_lib *lib, bool *changed, mk_buf *err)
{
    if (changed)
        *changed = false;
    if (!lib->kb)
        return 0;
    struct mk_store_conn *c = NULL;
    int rc = mk_store_acquire(lib->store, &c);
    uint64_t gen = 0;
    if (!rc)
        rc = read_generation(c, &gen);
    if (!rc && gen != lib->gen) {
        rc = apply_removals(c, lib->kb, lib->gen);
        if (!rc)
            rc = load_docs(c, lib->kb, lib->gen, NULL);
        if (!rc) {
            lib->gen = gen;
            if (changed)
                *changed = true;
        }
    }
    if (rc)
        store_fail(rc, c, err);
    mk_store_release(lib->store, c);
    return rc;
}

int mk_kb_lib_sync(struct mk_kb_lib *lib, bool *changed, mk_buf *err)
{
    if (!lib)
        return MK_EINVAL;
    pthread_mutex_lock(&lib->wlock);
    int rc = sync_locked(lib, changed, err);
    pthread_mutex_unlock(&lib->wlock);
    return rc;
}

/* --- ingestion ------------------------------------------------------------------------------- */

/* A parsed file waiting for its batch's commit. */
struct pend {
    char id[MK_MAX_NAME_BYTES + 1];
    char *source;
    char hash[33];
    uint64_t bytes;
    struct mk_kb_parsed parsed;
    json_object *item;           /* its report entry (borrowed from the items array) */
    bool existed;
};

struct batch {
    struct mk_kb_lib *lib;
    const struct mk_kb_add_opts *o;
    struct mk_kb_report *rep;
    struct pend *p;
    size_t n, cap;
    size_t bytes;
    size_t nfiles;               /* files seen by this call (bounded by MK_KB_MAX_FILES) */
};

static json_object *report_item(struct mk_kb_report *rep, const char *path)
{
    if (!rep || !rep->items)
        return NULL;
    json_object *it = json_object_new_object();
    if (!it)
        return NULL;
    json_object_object_add(it, "path", json_object_new_string(path));
    json_object_array_add(rep->items, it);
    return it;
}

static void item_set(json_object *it, const char *k, const char *v)
{
    if (it && v)
        json_object_object_add(it, k, json_object_new_string(v));
}

static void item_fail(struct mk_kb_report *rep, json_object *it, const char *status, const char *why)
{
    if (strcmp(status, "failed") == 0)
        rep->failed++;
    else
        rep->skipped++;
    item_set(it, "status", status);
    item_set(it, "error", why);
}

static void pend_release(struct pend *p)
{
    free(p->source);
    mk_kb_parsed_release(&p->parsed);
}

/* Writes the batch in one transaction and applies it to a loaded index. */
static int flush_batch(struct batch *b, mk_buf *err)
{
    if (b->n == 0)
        return 0;
    struct mk_kb_lib *lib = b->lib;
    const char *agent = b->o && b->o->agent ? b->o->agent : "";
    struct mk_store_conn *c = NULL;
    int rc = mk_store_acquire(lib->store, &c);
    if (!rc)
        rc = mk_store_begin(c);
    uint64_t gen = 0;
    if (!rc)
        rc = bump_generation(c, &gen);
    int64_t now = mk_wall_ms();
    for (size_t i = 0; i < b->n && !rc; i++) {
        struct pend *p = &b->p[i];
        char key[KEY_CAP];
        if ((rc = doc_key(key, sizeof key, agent, p->parsed.lang, p->id)) != 0)
            break;
        /* The same file under another key (its language changed, say) goes away. */
        struct mk_store_stmt *st;
        rc = mk_store_prepare(c,
                              "INSERT INTO kb_removed (doc_key, agent, lang, id, version)"
                              " SELECT doc_key, agent, lang, id, CAST(? AS BIGINT) FROM kb_documents"
                              " WHERE source = ? AND agent = ? AND doc_key <> ?"
                              " ON CONFLICT (doc_key) DO UPDATE SET version = excluded.version",
                              &st);
        if (!rc) {
            mk_store_bind_int64(st, 1, (int64_t)gen);
            mk_store_bind_cstr(st, 2, p->source);
            mk_store_bind_cstr(st, 3, agent);
            mk_store_bind_cstr(st, 4, key);
            rc = mk_store_step(st);
            rc = rc == MK_STORE_DONE ? 0 : rc;
            mk_store_stmt_done(st);
        }
        if (!rc)
            rc = exec1(c,
                       "DELETE FROM kb_chunks WHERE doc_key IN (SELECT doc_key FROM kb_documents"
                       " WHERE source = ? AND agent = ?)",
                       p->source, agent);
        if (!rc)
            rc = exec1(c, "DELETE FROM kb_documents WHERE source = ? AND agent = ?", p->source, agent);
        if (!rc)
            rc = exec1(c, "DELETE FROM kb_chunks WHERE doc_key = ?", key, NULL);
        if (!rc)
            rc = exec1(c, "DELETE FROM kb_removed WHERE doc_key = ?", key, NULL);
        if (!rc)
            rc = mk_store_prepare(c,
                                  "INSERT INTO kb_documents (doc_key, agent, lang, id, title, source, format,"
                                  " content_hash, chunker, bytes, nchunks, version, created_at, updated_at)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                                  " ON CONFLICT (doc_key) DO UPDATE SET title = excluded.title,"
                                  " source = excluded.source, format = excluded.format,"
                                  " content_hash = excluded.content_hash, chunker = excluded.chunker,"
                                  " bytes = excluded.bytes, nchunks = excluded.nchunks,"
                                  " version = excluded.version, updated_at = excluded.updated_at",
                                  &st);
        if (!rc) {
            mk_store_bind_cstr(st, 1, key);
            mk_store_bind_cstr(st, 2, agent);
            mk_store_bind_cstr(st, 3, p->parsed.lang);
            mk_store_bind_cstr(st, 4, p->id);
            mk_store_bind_cstr(st, 5, p->parsed.title);
            mk_store_bind_cstr(st, 6, p->source);
            mk_store_bind_cstr(st, 7, mk_kb_format_name(p->parsed.format));
            mk_store_bind_cstr(st, 8, p->hash);
            mk_store_bind_int64(st, 9, MK_KB_CHUNKER_VERSION);
            mk_store_bind_int64(st, 10, (int64_t)p->bytes);
            mk_store_bind_int64(st, 11, (int64_t)p->parsed.n);
            mk_store_bind_int64(st, 12, (int64_t)gen);
            mk_store_bind_int64(st, 13, now);
            mk_store_bind_int64(st, 14, now);
            rc = mk_store_step(st);
            rc = rc == MK_STORE_DONE ? 0 : rc;
            mk_store_stmt_done(st);
        }
        for (size_t k = 0; k < p->parsed.n && !rc; k++) {
            const struct mk_kb_parsed_chunk *ch = &p->parsed.chunks[k];
            rc = mk_store_prepare(c,
                                  "INSERT INTO kb_chunks (doc_key, ordinal, section, body, lang, page, src_offset)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  &st);
            if (rc)
                break;
            mk_store_bind_cstr(st, 1, key);
            mk_store_bind_int64(st, 2, (int64_t)k);
            mk_store_bind_cstr(st, 3, ch->section);
            mk_store_bind_text(st, 4, ch->text, ch->text_len);
            mk_store_bind_cstr(st, 5, ch->lang);
            mk_store_bind_int64(st, 6, ch->page);
            mk_store_bind_int64(st, 7, ch->offset);
            rc = mk_store_step(st);
            rc = rc == MK_STORE_DONE ? 0 : rc;
            mk_store_stmt_done(st);
        }
    }
    if (!rc)
        rc = mk_store_commit(c);
    if (rc) {
        store_fail(rc, c, err);
        if (c && mk_store_in_transaction(c))
            mk_store_rollback(c);
    }
    mk_store_release(lib->store, c);
    /* A loaded index takes the batch through the same path a server's sync does. */
    if (!rc && lib->kb)
        rc = sync_locked(lib, NULL, err);
    for (size_t i = 0; i < b->n; i++) {
        struct pend *p = &b->p[i];
        if (!rc) {
            if (p->existed)
                b->rep->updated++;
            else
                b->rep->added++;
            b->rep->chunks += p->parsed.n;
            item_set(p->item, "status", p->existed ? "updated" : "added");
        } else {
            item_fail(b->rep, p->item, "failed", err && err->data ? err->data : mk_strerror(rc));
        }
        pend_release(p);
    }
    b->n = 0;
    b->bytes = 0;
    return rc;
}

/* The stored hash and chunker of the document this source produced, if any. */
static int stored_state(struct mk_kb_lib *lib, const char *source, const char *agent, char hash[33], int64_t *chunker,
                        bool *found)
{
    *found = false;
    struct mk_store_conn *c = NULL;
    int rc = mk_store_acquire(lib->store, &c);
    struct mk_store_stmt *st = NULL;
    if (!rc)
        rc = mk_store_prepare(c, "SELECT content_hash, chunker FROM kb_documents WHERE source = ? AND agent = ?", &st);
    if (!rc) {
        mk_store_bind_cstr(st, 1, source);
        mk_store_bind_cstr(st, 2, agent);
        rc = mk_store_step(st);
        if (rc == MK_STORE_ROW) {
            snprintf(hash, 33, "%s", mk_store_column_text(st, 0).ptr);
            *chunker = mk_store_column_int64(st, 1);
            *found = true;
        }
        rc = rc < 0 ? rc : 0;
        mk_store_stmt_done(st);
    }
    mk_store_release(lib->store, c);
    return rc;
}

/* The source of the stored document with this key ("" when none). */
static int stored_source(struct mk_kb_lib *lib, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    struct mk_store_conn *c = NULL;
    int rc = mk_store_acquire(lib->store, &c);
    struct mk_store_stmt *st = NULL;
    if (!rc)
        rc = mk_store_prepare(c, "SELECT source FROM kb_documents WHERE doc_key = ?", &st);
    if (!rc) {
        mk_store_bind_cstr(st, 1, key);
        rc = mk_store_step(st);
        if (rc == MK_STORE_ROW)
            snprintf(out, cap, "%s", mk_store_column_text(st, 0).ptr);
        rc = rc < 0 ? rc : 0;
        mk_store_stmt_done(st);
    }
    mk_store_release(lib->store, c);
    return rc;
}

/* Whether the other source of a key still stands in the way of `source`: a file that
 * still exists; an upload, unless the new one is an upload too. */
static bool source_alive(const char *other, const char *source)
{
    if (strncmp(other, "upload://", 9) == 0)
        return strncmp(source, "upload://", 9) != 0;
    struct stat sb;
    return stat(other, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Parses one file's bytes and queues it (or counts it unchanged / skipped). */
static int ingest_bytes(struct batch *b, const char *display, const char *source, const char *name,
                        enum mk_kb_format f, const char *data, size_t len, mk_buf *err)
{
    struct mk_kb_report *rep = b->rep;
    const char *agent = b->o && b->o->agent ? b->o->agent : "";
    json_object *it = report_item(rep, display);
    rep->files++;
    rep->bytes += len;
    struct pend p = {0};
    if (mk_kb_id_from_path(name, p.id, sizeof p.id) != 0) {
        item_fail(rep, it, "skipped", "no usable document id in the file name");
        return 0;
    }
    item_set(it, "id", p.id);
    hash_hex(data, len, p.hash);
    char old[33] = "";
    int64_t chunker = 0;
    int rc = stored_state(b->lib, source, agent, old, &chunker, &p.existed);
    if (rc)
        return store_fail(rc, NULL, err);
    if (p.existed && strcmp(old, p.hash) == 0 && chunker == MK_KB_CHUNKER_VERSION && !(b->o && b->o->force)) {
        rep->unchanged++;
        item_set(it, "status", "unchanged");
        return 0;
    }
    /* Also a change queued earlier in this batch (the same path given twice) counts. */
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->p[i].source, source) == 0) {
            rep->unchanged++;
            item_set(it, "status", "unchanged");
            return 0;
        }
    mk_buf why = MK_BUF_INIT;
    char fallback[MK_MAX_NAME_BYTES + 1];
    snprintf(fallback, sizeof fallback, "%s", p.id);
    rc = mk_kb_parse(f, data, len, fallback, b->o ? b->o->lang : NULL, &p.parsed, &why);
    if (rc) {
        item_fail(rep, it, rc == MK_ENOMEM ? "failed" : "skipped", why.data ? why.data : mk_strerror(rc));
        mk_buf_release(&why);
        mk_kb_parsed_release(&p.parsed);
        return rc == MK_ENOMEM ? rc : 0;
    }
    mk_buf_release(&why);
    if (p.parsed.n == 0) {
        item_fail(rep, it, "skipped", "no text in the document");
        mk_kb_parsed_release(&p.parsed);
        return 0;
    }
    item_set(it, "lang", p.parsed.lang);
    item_set(it, "title", p.parsed.title);
    /* Another source may already hold this (agent, lang, id): two files named alike in
     * different folders, or an untranslated page detected as the original's language.
     * Replacing it silently would lose a document, so that is refused unless the other
     * source is gone (the folder moved) or both are uploads (a new version). */
    char key[KEY_CAP], other[PATH_MAX] = "";
    rc = doc_key(key, sizeof key, agent, p.parsed.lang, p.id);
    if (!rc)
        rc = stored_source(b->lib, key, other, sizeof other);
    for (size_t i = 0; !rc && i < b->n; i++)
        if (strcmp(b->p[i].id, p.id) == 0 && strcmp(b->p[i].parsed.lang, p.parsed.lang) == 0)
            snprintf(other, sizeof other, "%s", b->p[i].source);
    if (rc) {
        mk_kb_parsed_release(&p.parsed);
        return store_fail(rc, NULL, err);
    }
    if (other[0] && strcmp(other, source) != 0 && source_alive(other, source)) {
        mk_buf msg = MK_BUF_INIT;
        mk_buf_printf(&msg, "document '%s' (%s) already comes from %s; rename the file or add it with another "
                      "--agent or --lang", p.id, p.parsed.lang, other);
        item_fail(rep, it, "skipped", msg.data ? msg.data : "conflicting document id");
        mk_buf_release(&msg);
        mk_kb_parsed_release(&p.parsed);
        return 0;
    }
    if (it)
        json_object_object_add(it, "chunks", json_object_new_int64((int64_t)p.parsed.n));
    p.source = strdup(source);
    p.bytes = len;
    p.item = it;
    if (!p.source) {
        mk_kb_parsed_release(&p.parsed);
        return MK_ENOMEM;
    }
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 32;
        struct pend *np = realloc(b->p, nc * sizeof *np);
        if (!np) {
            pend_release(&p);
            return MK_ENOMEM;
        }
        b->p = np;
        b->cap = nc;
    }
    b->p[b->n++] = p;
    b->bytes += len;
    if (b->n >= MK_KB_BATCH_DOCS || b->bytes >= MK_KB_BATCH_BYTES)
        return flush_batch(b, err);
    return 0;
}

/* Reads a whole regular file (at most max bytes). */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MK_ENOTFOUND : MK_EIO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return MK_EIO;
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return MK_ETOOBIG;
    }
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return MK_ENOMEM;
    }
    for (;;) {
        if (n == cap - 1) { /* the file grew while we read it: read what fits the limit */
            if (cap > max) {
                free(buf);
                close(fd);
                return MK_ETOOBIG;
            }
            size_t nc = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                close(fd);
                return MK_ENOMEM;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            close(fd);
            return MK_EIO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int ingest_file(struct batch *b, const char *path, bool explicit, mk_buf *err)
{
    enum mk_kb_format f = mk_kb_format_from_name(path);
    if (f == MK_KB_FORMAT_UNKNOWN) {
        if (explicit) {
            json_object *it = report_item(b->rep, path);
            b->rep->files++;
            item_fail(b->rep, it, "skipped", "unknown format (use .md, .html, .txt or .pdf)");
        }
        return 0;
    }
    if (++b->nfiles > MK_KB_MAX_FILES) {
        errf(err, "more than %d files in one add", MK_KB_MAX_FILES);
        return MK_ETOOBIG;
    }
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        snprintf(abs, sizeof abs, "%s", path);
    char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, MK_KB_MAX_FILE_BYTES, &data, &len);
    if (rc) {
        json_object *it = report_item(b->rep, path);
        b->rep->files++;
        item_fail(b->rep, it, "failed", rc == MK_ETOOBIG ? "file too large" : mk_strerror(rc));
        return rc == MK_ENOMEM ? rc : 0;
    }
    rc = ingest_bytes(b, path, abs, path, f, data, len, err);
    free(data);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk_dir(struct batch *b, const char *dir, int depth, mk_buf *err)
{
    if (depth > MK_KB_MAX_DIR_DEPTH)
        return 0;
    DIR *d = opendir(dir);
    if (!d) {
        json_object *it = report_item(b->rep, dir);
        item_fail(b->rep, it, "failed", strerror(errno));
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* hidden files, ".", ".." and VCS folders */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = MK_ENOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = MK_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    mk_buf p = MK_BUF_INIT;
    for (size_t i = 0; i < n && !rc; i++) {
        mk_buf_reset(&p);
        if (mk_buf_printf(&p, "%s/%s", dir, names[i])) {
            rc = MK_ENOMEM;
            break;
        }
        struct stat sb;
        if (stat(p.data, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            rc = walk_dir(b, p.data, depth + 1, err);
        else if (S_ISREG(sb.st_mode))
            rc = ingest_file(b, p.data, false, err);
    }
    mk_buf_release(&p);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static void batch_release(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        pend_release(&b->p[i]);
    free(b->p);
}

int mk_kb_lib_add_path(struct mk_kb_lib *lib, const char *path, const struct mk_kb_add_opts *o,
                       struct mk_kb_report *rep, mk_buf *err)
{
    if (!lib || !path || !rep || !*path)
        return MK_EINVAL;
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        errf(err, "%s: %s", path, strerror(e));
        return e == ENOENT ? MK_ENOTFOUND : MK_EIO;
    }
    pthread_mutex_lock(&lib->wlock);
    struct batch b = {.lib = lib, .o = o, .rep = rep};
    if (S_ISDIR(sb.st_mode)) {
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/')
            len--;
        char *dir = strndup(path, len);
        rc = dir ? walk_dir(&b, dir, 0, err) : MK_ENOMEM;
        free(dir);
    } else {
        rc = ingest_file(&b, path, true, err);
    }
    if (!rc)
        rc = flush_batch(&b, err);
    batch_release(&b);
    pthread_mutex_unlock(&lib->wlock);
    return rc;
}

int mk_kb_lib_add_data(struct mk_kb_lib *lib, const char *name, const char *data, size_t len,
                       enum mk_kb_format format, const struct mk_kb_add_opts *o, struct mk_kb_report *rep,
                       mk_buf *err)
{
    if (!lib || !name || !*name || (!data && len) || !rep)
        return MK_EINVAL;
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    if (format == MK_KB_FORMAT_UNKNOWN)
        format = mk_kb_format_from_name(name);
    if (format == MK_KB_FORMAT_UNKNOWN) {
        errf(err, "cannot tell the format of '%s' (give format, or name it .md, .html, .txt or .pdf)", name);
        return MK_EINVAL;
    }
    if (strlen(name) > MK_MAX_NAME_BYTES || strchr(name, '/')) {
        errf(err, "name '%s' must be a file name (no '/', at most 256 bytes)", name);
        return MK_EINVAL;
    }
    mk_buf src = MK_BUF_INIT;
    if (mk_buf_printf(&src, "upload://%s", name))
        return MK_ENOMEM;
    pthread_mutex_lock(&lib->wlock);
    struct batch b = {.lib = lib, .o = o, .rep = rep};
    rc = ingest_bytes(&b, name, src.data, name, format, data ? data : "", len, err);
    if (!rc)
        rc = flush_batch(&b, err);
    batch_release(&b);
    pthread_mutex_unlock(&lib->wlock);
    mk_buf_release(&src);
    return rc;
}

/* --- remove, list, reindex -------------------------------------------------------------------- */

int mk_kb_lib_remove(struct mk_kb_lib *lib, const char *id, const char *lang, const char *agent, size_t *removed,
                     mk_buf *err)
{
    if (removed)
        *removed = 0;
    if (!lib || !id || !valid_name(id) || (lang && !valid_lang(lang)) || (agent && agent[0] && !valid_name(agent))) {
        errf(err, "bad document id, language or agent");
        return MK_EINVAL;
    }
    /* One filter clause per given argument; NULL parameters match everything. */
    /* One filter clause per given argument; NULL parameters match everything. */
#define WHERE " WHERE id = ?1 AND (?2 IS NULL OR lang = ?2) AND (?3 IS NULL OR agent = ?3)"
    static const char mark[] = "INSERT INTO kb_removed (doc_key, agent, lang, id, version) SELECT doc_key, agent,"
                               " lang, id, CAST(?4 AS BIGINT) FROM kb_documents" WHERE
                               " ON CONFLICT (doc_key) DO UPDATE SET version = excluded.version";
    static const char drop_chunks[] = "DELETE FROM kb_chunks WHERE doc_key IN (SELECT doc_key FROM kb_documents" WHERE ")";
    static const char drop_docs[] = "DELETE FROM kb_documents" WHERE;
    const char *const steps[] = {mark, drop_chunks, drop_docs};
#undef WHERE
    pthread_mutex_lock(&lib->wlock);
    struct mk_store_conn *c = NULL;
    int rc = mk_store_acquire(lib->store, &c);
    if (!rc)
        rc = mk_store_begin(c);
    uint64_t gen = 0;
    if (!rc)
        rc = bump_generation(c, &gen);
    struct mk_store_stmt *st;
    int64_t n = 0;
    for (size_t s = 0; s < 3 && !rc; s++) {
        if ((rc = mk_store_prepare(c, steps[s], &st)) != 0)
            break;
        mk_store_bind_cstr(st, 1, id);
        if (lang)
            mk_store_bind_cstr(st, 2, lang);
        else
            mk_store_bind_null(st, 2);
        if (agent)
            mk_store_bind_cstr(st, 3, agent);
        else
            mk_store_bind_null(st, 3);
        if (s == 0)
            mk_store_bind_int64(st, 4, (int64_t)gen);
        rc = mk_store_step(st);
        rc = rc == MK_STORE_DONE ? 0 : rc;
        if (!rc && s == 2)
            n = mk_store_changes(c);
        mk_store_stmt_done(st);
    }
    if (!rc && n == 0) {
        rc = MK_ENOTFOUND; /* roll back the generation bump: nothing changed */
        errf(err, "no document '%s' in the knowledge base", id);
    }
    if (!rc)
        rc = mk_store_commit(c);
    if (rc && c && mk_store_in_transaction(c))
        mk_store_rollback(c);
    if (rc && rc != MK_ENOTFOUND)
        store_fail(rc, c, err);
    mk_store_release(lib->store, c);
    if (!rc && lib->kb)
        rc = sync_locked(lib, NULL, err);
    pthread_mutex_unlock(&lib->wlock);
    if (!rc && removed)
        *removed = (size_t)n;
    return rc;
}

int mk_kb_lib_list(struct mk_kb_lib *lib, const char *agent, json_object **out, mk_buf *err)
{
    if (!lib || !out)
        return MK_EINVAL;
    *out = NULL;
    struct mk_store_conn *c = NULL;
    int rc = mk_store_acquire(lib->store, &c);
    struct mk_store_stmt *st = NULL;
    if (!rc)
        rc = mk_store_prepare(c,
                              "SELECT id, lang, agent, title, source, format, nchunks, bytes, updated_at"
                              " FROM kb_documents WHERE (?1 IS NULL OR agent = ?1) ORDER BY id, lang, agent",
                              &st);
    json_object *arr = rc ? NULL : json_object_new_array();
    if (!rc && !arr)
        rc = MK_ENOMEM;
    if (!rc) {
        if (agent)
            mk_store_bind_cstr(st, 1, agent);
        else
            mk_store_bind_null(st, 1);
    }
    static const char *const names[] = {"id", "lang", "agent", "title", "source", "format"};
    while (!rc && (rc = mk_store_step(st)) == MK_STORE_ROW) {
        rc = 0;
        json_object *o = json_object_new_object();
        if (!o) {
            rc = MK_ENOMEM;
            break;
        }
        for (int i = 0; i < 6; i++) {
            mk_slice v = mk_store_column_text(st, i);
            json_object_object_add(o, names[i], json_object_new_string_len(v.ptr, (int)v.len));
        }
        json_object_object_add(o, "chunks", json_object_new_int64(mk_store_column_int64(st, 6)));
        json_object_object_add(o, "bytes", json_object_new_int64(mk_store_column_int64(st, 7)));
        json_object_object_add(o, "updated_at", json_object_new_int64(mk_store_column_int64(st, 8)));
        json_object_array_add(arr, o);
    }
    if (rc == MK_STORE_DONE)
        rc = 0;
    if (rc)
        store_fail(rc, c, err);
    mk_store_stmt_done(st);
    mk_store_release(lib->store, c);
    if (rc)
        json_object_put(arr);
    else
        *out = arr;
    return rc;
}

int mk_kb_lib_reindex(struct mk_kb_lib *lib, bool force, struct mk_kb_report *rep, mk_buf *err)
{
    if (!lib || !rep)
        return MK_EINVAL;
    /* Gather (source, agent, lang) first: ingesting rewrites the rows being read. */
    struct mk_store_conn *c = NULL;
    int rc = mk_store_acquire(lib->store, &c);
    struct mk_store_stmt *st = NULL;
    if (!rc)
        rc = mk_store_prepare(c, "SELECT source, agent, lang FROM kb_documents ORDER BY agent, lang, source", &st);
    char **src = NULL, **agents = NULL;
    char (*langs)[8] = NULL;
    size_t n = 0, cap = 0;
    while (!rc && (rc = mk_store_step(st)) == MK_STORE_ROW) {
        rc = 0;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **a = realloc(src, nc * sizeof *a);
            if (a)
                src = a;
            char **g = realloc(agents, nc * sizeof *g);
            if (g)
                agents = g;
            char(*l)[8] = realloc(langs, nc * sizeof *l);
            if (l)
                langs = l;
            if (!a || !g || !l) {
                rc = MK_ENOMEM;
                break;
            }
            cap = nc;
        }
        src[n] = strdup(mk_store_column_text(st, 0).ptr);
        agents[n] = strdup(mk_store_column_text(st, 1).ptr);
        snprintf(langs[n], sizeof langs[n], "%s", mk_store_column_text(st, 2).ptr);
        if (!src[n] || !agents[n]) {
            free(src[n]);
            free(agents[n]);
            rc = MK_ENOMEM;
            break;
        }
        n++;
    }
    if (rc == MK_STORE_DONE)
        rc = 0;
    if (rc)
        store_fail(rc, c, err);
    mk_store_stmt_done(st);
    mk_store_release(lib->store, c);

    /* Documents of one (agent, language) share a batch: a transaction per file would
     * make a reindex fsync-bound. */
    struct mk_kb_add_opts o = {.force = force};
    struct batch b = {.lib = lib, .o = &o, .rep = rep};
    pthread_mutex_lock(&lib->wlock);
    for (size_t i = 0; i < n && !rc; i++) {
        /* The stored language stays: it is part of the document's identity, and may have
         * been given (--lang) rather than detected. */
        const char *lang = valid_lang(langs[i]) ? langs[i] : NULL;
        if (i > 0 && (strcmp(agents[i], agents[i - 1]) || strcmp(langs[i], langs[i - 1])))
            rc = flush_batch(&b, err);
        o.agent = agents[i];
        o.lang = lang;
        struct stat sb;
        if (rc)
            break;
        if (strncmp(src[i], "upload://", 9) == 0 || stat(src[i], &sb) != 0 || !S_ISREG(sb.st_mode)) {
            json_object *it = report_item(rep, src[i]);
            item_set(it, "status", "kept");
            item_set(it, "error", strncmp(src[i], "upload://", 9) == 0 ? "uploaded content: nothing to re-read"
                                                                       : "source file is gone; stored chunks kept");
            rep->skipped++;
            continue;
        }
        rc = ingest_file(&b, src[i], true, err);
    }
    if (!rc)
        rc = flush_batch(&b, err);
    batch_release(&b);
    pthread_mutex_unlock(&lib->wlock);
    for (size_t i = 0; i < n; i++) {
        free(src[i]);
        free(agents[i]);
    }
    free(src);
    free(agents);
    free(langs);
    return rc;
}
