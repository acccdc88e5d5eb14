/*
 * mk_audit: appending to the audit chain (see mk_audit.h for the contract and
 * docs/AUDIT.md for the format).
 *
 * Shape: mk_audit_append only validates the record, copies it into one allocation (the
 * canonical serialisation with the digest slots still zero, followed by whatever text
 * the digests need beyond what the serialisation holds), and under the append lock
 * takes the next seq, patches it in and queues the record. The writer thread swaps the
 * queue out and, outside the lock, in seq order: digests prompt and answer into their
 * slots, chains the hash H(prev || canonical), drops the text kept for digesting only,
 * and writes the records in one transaction (one prepared INSERT reused per record),
 * adding a seal (Ed25519 over the chain head) when seal_every records or
 * seal_interval_ms have passed. The queue is FIFO and seq is taken under the same lock
 * as the push, so the writer sees the records in exactly seq order. A failed batch is
 * put back in front of the queue and retried with backoff: records that have a seq are
 * never dropped, because a hole would make the chain fail verification. The one
 * exception is a hashing failure (libgcrypt refusing): the chain cannot go on past it,
 * so the writer commits what it hashed, drops the rest with a log line naming them and
 * refuses further appends (fail closed).
 */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_log.h"
#include "core/mk_time.h"

#define DEFAULT_FLUSH_MS 5
#define DEFAULT_BATCH 1024
/* Records per transaction at most: bounds a transaction's size (WAL growth, the time a
 * reader's snapshot lags) while staying far above what one fsync needs to amortise. */
#define TX_MAX_RECORDS 65536
#define DEFAULT_SEAL_EVERY 10000
#define DEFAULT_SEAL_MS 60000
/* Retry backoff of a failed batch: from 50 ms doubling up to 5 s. */
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 5000

/* A queued record: one allocation holding the canonical bytes, then (until the writer
 * hashed it) the text the digests need that the canonical bytes do not hold: the whole
 * prompt/answer when not stored raw, or the part beyond the raw-text cut. Field
 * positions are offsets, not pointers, because the writer shrinks the allocation once
 * the digests are taken; the INSERT binds exactly the bytes that were hashed. */
struct digest_src {
    bool present;
    size_t slot;                     /* offset of the 32-byte digest slot in canon */
    size_t head_off, head_len;       /* text inside canon (the stored raw prefix) */
    size_t tail_off, tail_len;       /* the rest, after canon */
};

struct pending {
    uint64_t seq;
    int64_t ts_ms;
    int32_t status;
    uint8_t alg;
    bool hashed;                     /* digests and hash done (kept across a retry) */
    uint8_t hash[MK_AUDIT_DIGEST_BYTES];
    size_t off[AF_COUNT];            /* field bytes in canon */
    size_t len[AF_COUNT];
    bool present[AF_COUNT];          /* false = SQL NULL */
    struct digest_src dig[2];        /* prompt, answer */
    size_t canon_len;
    size_t alloc;                    /* bytes counted in mk_audit.pending_bytes */
    unsigned char canon[];
};

struct queue {
    struct pending **items;
    size_t n, cap;
};

struct mk_audit {
    struct mk_store *store;
    struct mk_store_conn *conn;      /* the writer's, held for the audit's lifetime */
    char *chain;
    int alg;
    uint32_t flush_ms, batch_max, seal_every, seal_ms;
    size_t max_pending;
    size_t max_pending_bytes;
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];

    pthread_mutex_t mu;              /* guards everything below */
    pthread_cond_t wake;             /* writer: work to do */
    pthread_cond_t durable;          /* flushers: durable_seq moved */
    uint64_t head_seq;
    struct queue q;
    size_t inflight;                 /* records the writer took and has not committed */
    size_t pending_bytes;            /* memory held by queued and in-flight records */
    uint64_t durable_seq;
    uint64_t flush_wanted;           /* a flusher waits for this seq */
    int writer_error;
    int hash_error;                  /* hashing failed (!= 0): appends refused for good */
    uint64_t lost_from;              /* with hash_error: the first seq that never commits */
    bool closing;
    pthread_t thread;
    bool thread_started;

    /* Writer-thread state (no lock needed). */
    uint64_t hashed_seq;             /* last record whose hash is computed */
    uint8_t hashed_hash[MK_AUDIT_DIGEST_BYTES];
    uint64_t written_seq;
    uint8_t written_hash[MK_AUDIT_DIGEST_BYTES];
    uint64_t sealed_seq;
    uint64_t seal_no;
    uint64_t last_seal_ms;           /* monotonic */
};

static int queue_push(struct queue *q, struct pending *p)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        struct pending **items = realloc(q->items, cap * sizeof *items);
        if (!items) return MK_ENOMEM;
        q->items = items;
        q->cap = cap;
    }
    q->items[q->n++] = p;
    return 0;
}

static void queue_free_items(struct queue *q)
{
    for (size_t i = 0; i < q->n; i++) free(q->items[i]);
    q->n = 0;
}

/* --- the sealing key ----------------------------------------------------------- */

static int read_file_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? MK_ENOTFOUND : MK_EIO;
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return 0;
}

static int write_new_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return errno == EEXIST ? MK_EEXISTS : MK_EIO;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            unlink(path);
            return MK_EIO;
        }
        off += (size_t)w;
    }
    int rc = fsync(fd) == 0 ? 0 : MK_EIO;
    if (close(fd) != 0) rc = MK_EIO;
    return rc;
}

int audit_pub_path(const char *key_path, mk_buf *out)
{
    size_t n = strlen(key_path);
    if (n > 4 && strcmp(key_path + n - 4, ".key") == 0) return mk_buf_printf(out, "%.*s.pub", (int)(n - 4), key_path);
    return mk_buf_printf(out, "%s.pub", key_path);
}

/* Loads the key (128 hex digits of libsodium's 64-byte secret key, which embeds the
 * public key) or creates it. A key readable by anyone but the owner is refused, like
 * ssh does, because whoever reads it can re-seal a rewritten log. */
static int load_or_create_key(struct mk_audit *a, const char *path, mk_buf *err)
{
    char hex[2 * crypto_sign_SECRETKEYBYTES + 2];
    for (int attempt = 0; attempt < 50; attempt++) {
        size_t len = 0;
        int rc = read_file_small(path, hex, sizeof hex, &len);
        if (rc == MK_ENOTFOUND) {
            unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
            crypto_sign_keypair(pk, sk);
            char out[2 * crypto_sign_SECRETKEYBYTES + 2];
            audit_hex(sk, sizeof sk, out);
            out[2 * sizeof sk] = '\n';
            rc = write_new_file(path, out, 2 * sizeof sk + 1, 0600);
            sodium_memzero(sk, sizeof sk);
            sodium_memzero(out, sizeof out);
            if (rc == MK_EEXISTS) continue;  /* another process made it first: read theirs */
            if (rc) {
                if (err) mk_buf_printf(err, "audit: cannot create key file %s: %s", path, strerror(errno));
                return rc;
            }
            /* The public half beside it, for verifiers; a stale one is replaced. */
            mk_buf pubpath = MK_BUF_INIT;
            char pubhex[2 * crypto_sign_PUBLICKEYBYTES + 2];
            audit_hex(pk, sizeof pk, pubhex);
            pubhex[2 * sizeof pk] = '\n';
            if (audit_pub_path(path, &pubpath) == 0) {
                unlink(pubpath.data);
                if (write_new_file(pubpath.data, pubhex, 2 * sizeof pk + 1, 0644))
                    mk_logf(MK_LOG_WARN, "audit_key", "cannot write %s", pubpath.data);
            }
            mk_buf_release(&pubpath);
            mk_logf(MK_LOG_INFO, "audit_key", "created audit sealing key %s", path);
            continue;
        }
        if (rc) {
            if (err) mk_buf_printf(err, "audit: cannot read key file %s: %s", path, strerror(errno));
            return rc;
        }
        struct stat sb;
        if (stat(path, &sb) == 0 && (sb.st_mode & 077)) {
            if (err) mk_buf_printf(err, "audit: key file %s is accessible by group or others; chmod 600 it", path);
            return MK_ECONFIG;
        }
        while (len && (hex[len - 1] == '\n' || hex[len - 1] == '\r' || hex[len - 1] == ' ')) len--;
        if (len == 0) {
            /* Being written by the process that created it: look again shortly. */
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        bool ok = audit_unhex(hex, len, a->sk, sizeof a->sk);
        sodium_memzero(hex, sizeof hex);
        if (!ok) {
            if (err) mk_buf_printf(err, "audit: key file %s is malformed (want 128 hex digits)", path);
            return MK_ECONFIG;
        }
        crypto_sign_ed25519_sk_to_pk(a->pk, a->sk);
        return 0;
    }
    if (err) mk_buf_printf(err, "audit: key file %s stays empty", path);
    return MK_ECONFIG;
}

/* --- writer ---------------------------------------------------------------------- */

static const char insert_sql[] =
    "INSERT INTO audit_log (seq, ts_ms, alg, status, hash, chain, request_id, principal, tenant, action,"
    " model_group, deployment, verdicts, prompt_digest, answer_digest, prompt_text, answer_text, outcome)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char seal_sql[] =
    "INSERT INTO audit_seal (chain, seal_no, seq, ts_ms, alg, head_hash, public_key, signature)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

static bool is_blob_field(int i) { return i == AF_PROMPT_DIGEST || i == AF_ANSWER_DIGEST; }

static int insert_seal(struct mk_audit *a, uint64_t seal_no, uint64_t seq, const uint8_t head[MK_AUDIT_DIGEST_BYTES])
{
    int64_t ts = mk_wall_ms();
    mk_buf msg = MK_BUF_INIT;
    int rc = audit_seal_message(&msg, a->alg, mk_slice_cstr(a->chain), seal_no, seq, ts, head);
    if (rc) return rc;
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)msg.data, msg.len, a->sk);
    mk_buf_release(&msg);
    struct mk_store_stmt *st;
    if ((rc = mk_store_prepare(a->conn, seal_sql, &st))) return rc;
    mk_store_bind_cstr(st, 1, a->chain);
    mk_store_bind_int64(st, 2, (int64_t)seal_no);
    mk_store_bind_int64(st, 3, (int64_t)seq);
    mk_store_bind_int64(st, 4, ts);
    mk_store_bind_int64(st, 5, a->alg);
    mk_store_bind_blob(st, 6, head, MK_AUDIT_DIGEST_BYTES);
    mk_store_bind_blob(st, 7, a->pk, sizeof a->pk);
    mk_store_bind_blob(st, 8, sig, sizeof sig);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    return rc == MK_STORE_DONE ? 0 : (rc ? rc : MK_EINTERNAL);
}

/* Seal-state of one transaction, applied to the audit only when it commits. */
struct tx_seals {
    uint64_t seal_no, sealed_seq;
    bool sealed;
};

/* Inserts the records, sealing right after each record whose seq is seal_every past
 * the last seal, so seals fall on predictable sequence numbers whatever the batching. */
static int insert_batch(struct mk_audit *a, struct pending **items, size_t n, struct tx_seals *ts)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(a->conn, insert_sql, &st);
    if (rc) return rc;
    for (size_t k = 0; k < n && !rc; k++) {
        struct pending *p = items[k];
        mk_store_bind_int64(st, 1, (int64_t)p->seq);
        mk_store_bind_int64(st, 2, p->ts_ms);
        mk_store_bind_int64(st, 3, p->alg);
        mk_store_bind_int64(st, 4, p->status);
        /* The record outlives the step (freed after commit): bind without copies. */
        struct mk_store_value v = {.type = MK_STORE_BLOB, .ptr = p->hash, .len = sizeof p->hash, .borrowed = true};
        mk_store_bind(st, 5, &v);
        for (int i = 0; i < AF_COUNT; i++) {
            v = (struct mk_store_value){.type = !p->present[i] ? MK_STORE_NULL : is_blob_field(i) ? MK_STORE_BLOB : MK_STORE_TEXT,
                                        .ptr = p->present[i] ? (const char *)p->canon + p->off[i] : NULL,
                                        .len = p->len[i], .borrowed = true};
            mk_store_bind(st, 6 + i, &v);
        }
        rc = mk_store_step(st);
        rc = rc == MK_STORE_DONE ? 0 : (rc == MK_STORE_ROW ? MK_EINTERNAL : rc);
        mk_store_reset(st);
        if (!rc && p->seq - ts->sealed_seq >= a->seal_every) {
            rc = insert_seal(a, ts->seal_no + 1, p->seq, p->hash);
            if (!rc) {
                ts->seal_no++;
                ts->sealed_seq = p->seq;
                ts->sealed = true;
            }
        }
    }
    mk_store_stmt_done(st);
    return rc;
}

/* Test hook (audit_int.h): the writer's hashing fails at this seq; 0 = never. */
uint64_t audit_fault_hash_seq;

/* Digest of the text a record holds for d: its part inside canon, then the rest. */
static int digest_parts(int alg, const struct pending *p, const struct digest_src *d, uint8_t out[MK_AUDIT_DIGEST_BYTES])
{
    int algo = audit_gcry_algo(alg);
    if (!algo) return MK_EINVAL;
    gcry_buffer_t iov[2];
    int n = 0;
    if (d->head_len) iov[n++] = (gcry_buffer_t){.size = d->head_len, .len = d->head_len, .data = (void *)(p->canon + d->head_off)};
    if (d->tail_len) iov[n++] = (gcry_buffer_t){.size = d->tail_len, .len = d->tail_len, .data = (void *)(p->canon + d->tail_off)};
    if (n == 0) {
        gcry_md_hash_buffer(algo, out, "", 0);
        return 0;
    }
    return gcry_md_hash_buffers(algo, 0, out, iov, n) ? MK_EINTERNAL : 0;
}

/* Computes, in seq order, the digests and the chain hash of items[0..n) that are not
 * hashed yet, continuing from the writer's hashed head, and gives back the memory of
 * the text held for digesting only (*released grows by the bytes freed). Stops at the
 * first failure: *done is how many items are hashed (all before the failing one). */
static int hash_items(struct mk_audit *a, struct pending **items, size_t n, size_t *done, size_t *released)
{
    for (size_t k = 0; k < n; k++) {
        struct pending *p = items[k];
        if (p->hashed) continue;  /* hashed before a failed write; kept its hash */
        int rc = audit_fault_hash_seq && p->seq == audit_fault_hash_seq ? MK_EINTERNAL : 0;
        uint8_t d[MK_AUDIT_DIGEST_BYTES];
        for (int i = 0; i < 2 && !rc; i++) {
            if (!p->dig[i].present) continue;
            rc = digest_parts(p->alg, p, &p->dig[i], d);
            if (!rc) memcpy(p->canon + p->dig[i].slot, d, sizeof d);
        }
        if (!rc) rc = audit_chain_hash(p->alg, a->hashed_hash, p->canon, p->canon_len, p->hash);
        if (rc) {
            *done = k;
            return rc;
        }
        p->hashed = true;
        a->hashed_seq = p->seq;
        memcpy(a->hashed_hash, p->hash, sizeof p->hash);
        size_t want = sizeof *p + p->canon_len;
        if (p->alloc > want) {
            /* The digest-only text is not needed any more; a queue of big prompts must
             * not stay in memory until the commit. */
            struct pending *q = realloc(p, want);
            if (q) {
                *released += q->alloc - want;
                q->alloc = want;
                items[k] = q;
            }
        }
    }
    *done = n;
    return 0;
}

/* Writes items (may be none) in one transaction, with the seals due: by count inside
 * the batch, and at the end when seal_interval_ms passed or the audit is closing. */
static int write_batch(struct mk_audit *a, struct pending **items, size_t n, bool closing)
{
    uint64_t upto = n ? items[n - 1]->seq : a->written_seq;
    const uint8_t *head = n ? items[n - 1]->hash : a->written_hash;
    bool timed = upto > a->sealed_seq && (closing || mk_now_ms() - a->last_seal_ms >= a->seal_ms);
    if (!n && !timed) return 0;
    struct tx_seals ts = {a->seal_no, a->sealed_seq, false};
    int rc = mk_store_begin(a->conn);
    if (!rc && n) rc = insert_batch(a, items, n, &ts);
    if (!rc && timed && upto > ts.sealed_seq) {
        rc = insert_seal(a, ts.seal_no + 1, upto, head);
        if (!rc) {
            ts.seal_no++;
            ts.sealed_seq = upto;
            ts.sealed = true;
        }
    }
    if (!rc) rc = mk_store_commit(a->conn);
    else if (mk_store_in_transaction(a->conn)) mk_store_rollback(a->conn);
    if (rc) return rc;
    if (n) {
        a->written_seq = upto;
        memcpy(a->written_hash, head, MK_AUDIT_DIGEST_BYTES);
    }
    if (ts.sealed) {
        a->seal_no = ts.seal_no;
        a->sealed_seq = ts.sealed_seq;
        a->last_seal_ms = mk_now_ms();
    }
    return 0;
}

static void abs_deadline(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Puts the unwritten records items[0..n) back in front of the queue, after a failed
 * batch. Called with the lock held. */
static void requeue_front(struct mk_audit *a, struct pending **items, size_t n)
{
    struct queue merged = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) rc = queue_push(&merged, items[i]);
    for (size_t i = 0; i < a->q.n && !rc; i++) rc = queue_push(&merged, a->q.items[i]);
    if (rc) {
        /* Cannot even requeue: the chain will have a hole that verify reports. */
        mk_logf(MK_LOG_ERROR, "audit_writer", "out of memory: %zu audit records lost from seq %llu", n,
                (unsigned long long)items[0]->seq);
        for (size_t i = 0; i < n; i++) {
            a->pending_bytes -= items[i]->alloc;
            free(items[i]);
        }
        free(merged.items);
        return;
    }
    free(a->q.items);
    a->q = merged;
}

/* The writer already wakes in batches (every flush_ms, or when batch_max records
 * wait), but each wake-up then hashes and writes a few hundred microseconds' worth of
 * records. With the default policy a thread that wakes after sleeping preempts the
 * event loop on its core (CFS wake-up preemption), and those requests wait out the
 * whole burst. SCHED_BATCH keeps the thread's full CPU share (it is never starved, so
 * the queue cannot back up for lack of CPU) but never preempts on waking: it runs when
 * the loop waits for I/O or at the next scheduler tick. Best effort: a system that
 * refuses leaves the default policy. */
static void writer_sched_batch(void)
{
#ifdef SCHED_BATCH
    struct sched_param sp = {0};
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
}

static void *writer_main(void *arg)
{
    struct mk_audit *a = arg;
    writer_sched_batch();
    struct queue mine = {0};
    uint32_t backoff = 0;
    int close_tries = 0;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        /* Sleep until a batch is full, a flush is wanted, closing, or the interval
         * passed (after a failure: the backoff, whatever else happens). */
        if (backoff || (a->q.n < a->batch_max && !a->closing && a->flush_wanted <= a->durable_seq)) {
            struct timespec dl;
            abs_deadline(&dl, backoff ? backoff : a->flush_ms);
            pthread_cond_timedwait(&a->wake, &a->mu, &dl);
        }
        bool closing = a->closing;
        /* Take the queue; appends go on into the (empty) other one. */
        struct queue t = a->q;
        a->q = mine;
        mine = t;
        a->inflight = mine.n;
        pthread_mutex_unlock(&a->mu);

        /* Per chunk of up to TX_MAX_RECORDS: hash it (in seq order), then write it in
         * one transaction. Each commit costs an fsync (milliseconds), so fewer, larger
         * commits are what keeps up with the appends. One call even with no records,
         * for a timed seal. */
        int rc = 0, hash_rc = 0;
        size_t off = 0, released = 0, hashed_upto = mine.n;
        do {
            size_t n = mine.n - off < TX_MAX_RECORDS ? mine.n - off : TX_MAX_RECORDS;
            size_t done = n;
            if (n) hash_rc = hash_items(a, mine.items + off, n, &done, &released);
            if (hash_rc) {
                hashed_upto = off + done;
                n = done;  /* write what is hashed; nothing after it can be chained */
            }
            rc = write_batch(a, n ? mine.items + off : NULL, n, closing && (off + n >= mine.n || hash_rc));
            if (rc) break;
            for (size_t i = off; i < off + n; i++) {
                released += mine.items[i]->alloc;
                free(mine.items[i]);
            }
            off += n;
        } while (off < mine.n && !hash_rc);

        pthread_mutex_lock(&a->mu);
        if (hash_rc) {
            /* Fail closed: the records from the failing one on (taken or still queued)
             * cannot join the chain, and no later append may either. */
            uint64_t lost_from = mine.items[hashed_upto]->seq;
            for (size_t i = hashed_upto; i < mine.n; i++) {
                released += mine.items[i]->alloc;
                free(mine.items[i]);
            }
            mine.n = hashed_upto;
            for (size_t i = 0; i < a->q.n; i++) released += a->q.items[i]->alloc;
            queue_free_items(&a->q);
            a->hash_error = hash_rc;
            a->lost_from = lost_from;
            mk_logf(MK_LOG_ERROR, "audit_writer",
                    "audit hash failed at seq %llu: %s; records %llu..%llu are lost and appends are refused",
                    (unsigned long long)lost_from, mk_strerror(hash_rc), (unsigned long long)lost_from,
                    (unsigned long long)a->head_seq);
        }
        a->pending_bytes -= released;
        a->inflight = 0;
        a->durable_seq = a->written_seq;
        pthread_cond_broadcast(&a->durable);
        if (rc) {
            if (mine.n > off) requeue_front(a, mine.items + off, mine.n - off);
            a->writer_error = rc;
            mk_logf(MK_LOG_ERROR, "audit_writer", "audit batch from seq %llu not written: %s (%s); retrying",
                    (unsigned long long)(a->written_seq + 1), mk_strerror(rc), mk_store_errmsg(a->conn));
            backoff = backoff ? (backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2) : RETRY_MIN_MS;
        } else {
            a->writer_error = a->hash_error;
            backoff = 0;
        }
        mine.n = 0;
        if (closing && a->q.n == 0 && rc == 0) break;
        if (closing && rc && ++close_tries >= 3) {
            /* Rather than hang shutdown forever on a dead store, name what is lost. */
            mk_logf(MK_LOG_ERROR, "audit_writer", "giving up at shutdown: audit records after seq %llu are lost",
                    (unsigned long long)a->durable_seq);
            queue_free_items(&a->q);
            break;
        }
    }
    pthread_cond_broadcast(&a->durable);
    pthread_mutex_unlock(&a->mu);
    free(mine.items);
    return NULL;
}

/* --- open / close ---------------------------------------------------------------- */

static int load_head(struct mk_audit *a)
{
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(a->conn, "SELECT seq, hash FROM audit_log WHERE chain = ? ORDER BY seq DESC LIMIT 1", &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, a->chain);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        a->head_seq = (uint64_t)mk_store_column_int64(st, 0);
        mk_slice h = mk_store_column_blob(st, 1);
        if (h.len != MK_AUDIT_DIGEST_BYTES) {
            mk_store_stmt_done(st);
            return MK_ECORRUPT;
        }
        memcpy(a->hashed_hash, h.ptr, h.len);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        a->head_seq = 0;
        rc = audit_genesis(a->alg, mk_slice_cstr(a->chain), a->hashed_hash);
    }
    mk_store_stmt_done(st);
    if (rc) return rc;
    a->written_seq = a->durable_seq = a->hashed_seq = a->head_seq;
    memcpy(a->written_hash, a->hashed_hash, sizeof a->hashed_hash);

    if ((rc = mk_store_prepare(a->conn, "SELECT seal_no, seq FROM audit_seal WHERE chain = ? ORDER BY seal_no DESC LIMIT 1",
                               &st)))
        return rc;
    mk_store_bind_cstr(st, 1, a->chain);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        a->seal_no = (uint64_t)mk_store_column_int64(st, 0);
        a->sealed_seq = (uint64_t)mk_store_column_int64(st, 1);
        rc = 0;
    }
    mk_store_stmt_done(st);
    a->last_seal_ms = mk_now_ms();
    return rc < 0 ? rc : 0;
}

int mk_audit_open(struct mk_store *store, const char *data_dir, const struct mk_audit_options *opt,
                  struct mk_audit **out, mk_buf *err)
{
    *out = NULL;
    struct mk_audit_options o = opt ? *opt : (struct mk_audit_options){0};
    if (!store || !data_dir || !*data_dir) return MK_EINVAL;
    if (!o.hash) o.hash = MK_AUDIT_STREEBOG256;
    if (!audit_gcry_algo(o.hash)) {
        if (err) mk_buf_append_str(err, "audit: unknown hash algorithm");
        return MK_EINVAL;
    }
    const char *chain = o.chain ? o.chain : "main";
    if (!*chain || strlen(chain) >= sizeof ((struct mk_audit_verify_report *)0)->chain) {
        if (err) mk_buf_append_str(err, "audit: chain name empty or longer than 63 bytes");
        return MK_EINVAL;
    }
    if (audit_crypto_init() || sodium_init() < 0) {
        if (err) mk_buf_append_str(err, "audit: cannot initialise libgcrypt/libsodium");
        return MK_EINTERNAL;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        if (err) mk_buf_printf(err, "audit: cannot create %s: %s", data_dir, strerror(errno));
        return MK_EIO;
    }
    int rc = mk_audit_migrate(store, err);
    if (rc) return rc;

    struct mk_audit *a = calloc(1, sizeof *a);
    if (!a || !(a->chain = strdup(chain))) {
        free(a);
        return MK_ENOMEM;
    }
    a->store = store;
    a->alg = o.hash;
    a->flush_ms = o.flush_interval_ms ? o.flush_interval_ms : DEFAULT_FLUSH_MS;
    a->batch_max = o.batch_max ? o.batch_max : DEFAULT_BATCH;
    a->seal_every = o.seal_every ? o.seal_every : DEFAULT_SEAL_EVERY;
    a->seal_ms = o.seal_interval_ms ? o.seal_interval_ms : DEFAULT_SEAL_MS;
    a->max_pending = o.max_pending ? o.max_pending : MK_AUDIT_DEFAULT_MAX_PENDING;
    a->max_pending_bytes = MK_AUDIT_MAX_PENDING_BYTES;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);  /* wall-clock jumps must not stall flushing */
    pthread_cond_init(&a->wake, &ca);
    pthread_cond_init(&a->durable, &ca);
    pthread_condattr_destroy(&ca);

    mk_buf path = MK_BUF_INIT;
    if (o.key_path) rc = mk_buf_append_str(&path, o.key_path);
    else rc = mk_buf_printf(&path, "%s/" AUDIT_KEY_FILE, data_dir);
    if (!rc) rc = load_or_create_key(a, path.data, err);
    mk_buf_release(&path);
    if (!rc) rc = mk_store_acquire(store, &a->conn);
    if (!rc) rc = load_head(a);
    if (!rc && pthread_create(&a->thread, NULL, writer_main, a) != 0) rc = MK_EINTERNAL;
    if (rc) {
        if (err && !err->len) mk_buf_printf(err, "audit: cannot open chain %s: %s", chain, mk_strerror(rc));
        mk_audit_free(a);
        return rc;
    }
    a->thread_started = true;
    *out = a;
    return 0;
}

void mk_audit_free(struct mk_audit *a)
{
    if (!a) return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->closing = true;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    queue_free_items(&a->q);
    free(a->q.items);
    if (a->conn) mk_store_release(a->store, a->conn);
    sodium_memzero(a->sk, sizeof a->sk);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->durable);
    pthread_mutex_destroy(&a->mu);
    free(a->chain);
    free(a);
}

/* --- append ---------------------------------------------------------------------- */

/* Cuts s to at most max bytes at a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return n;
}

static int set_name(struct audit_fields *f, int i, const char *s)
{
    if (!s) return 0;
    size_t n = strlen(s);
    if (n > MK_MAX_NAME_BYTES) return MK_EINVAL;
    f->v[i] = (mk_slice){s, n};
    f->present[i] = true;
    return 0;
}

/* Zero digest placeholders: the writer fills the slots in the record's own copy. */
static const char zero_digest[MK_AUDIT_DIGEST_BYTES];

/* Sets up field i (digest) and t (raw text) of a text the writer will digest, and what
 * the allocation must hold beyond the canonical bytes: the whole text when it is not
 * kept raw, or the part after the raw-text cut. Returns that tail length. */
static size_t plan_text(struct audit_fields *f, int i, int t, const char *text, size_t len, bool raw)
{
    f->v[i] = (mk_slice){zero_digest, sizeof zero_digest};
    f->present[i] = true;
    if (!raw) return len;
    size_t cut = utf8_cut(text, len, MK_AUDIT_MAX_RAW_BYTES);
    f->v[t] = (mk_slice){text, cut};
    f->present[t] = true;
    return len - cut;
}

/* Fills d from the slices audit_canon_write gave back and copies the tail text. */
static void place_text(struct pending *p, struct digest_src *d, const mk_slice *sl, int i, int t, const char *text,
                       size_t len, size_t *tail_at)
{
    d->present = true;
    d->slot = (size_t)((const unsigned char *)sl[i].ptr - p->canon);
    d->head_off = sl[t].ptr ? (size_t)((const unsigned char *)sl[t].ptr - p->canon) : 0;
    d->head_len = sl[t].ptr ? sl[t].len : 0;
    d->tail_off = *tail_at;
    d->tail_len = len - d->head_len;
    if (d->tail_len) memcpy(p->canon + *tail_at, text + d->head_len, d->tail_len);
    *tail_at += d->tail_len;
}

int mk_audit_append(struct mk_audit *a, const struct mk_audit_record *r, uint64_t *seq_out)
{
    if (!a || !r || !r->action || !*r->action) return MK_EINVAL;
    if (r->status < 0 || r->status > 999) return MK_EINVAL;
    struct audit_fields f = {.alg = (uint8_t)a->alg, .ts_ms = r->ts_ms ? r->ts_ms : mk_wall_ms(), .status = r->status};
    int rc = 0;
    f.v[AF_CHAIN] = mk_slice_cstr(a->chain);
    f.present[AF_CHAIN] = true;
    rc |= set_name(&f, AF_REQUEST_ID, r->request_id);
    rc |= set_name(&f, AF_PRINCIPAL, r->principal);
    rc |= set_name(&f, AF_TENANT, r->tenant);
    rc |= set_name(&f, AF_ACTION, r->action);
    rc |= set_name(&f, AF_MODEL_GROUP, r->model_group);
    rc |= set_name(&f, AF_DEPLOYMENT, r->deployment);
    rc |= set_name(&f, AF_OUTCOME, r->outcome);
    if (rc) return MK_EINVAL;
    if (r->verdicts_json) {
        size_t n = strlen(r->verdicts_json);
        if (n > MK_AUDIT_MAX_VERDICTS_BYTES) return MK_ETOOBIG;
        f.v[AF_VERDICTS] = (mk_slice){r->verdicts_json, n};
        f.present[AF_VERDICTS] = true;
    }
    /* No hashing here: the digests and the chain hash are the writer's (they cost tens
     * of microseconds with Streebog, more than the rest of a request). */
    size_t tail = 0;
    if (r->prompt) tail += plan_text(&f, AF_PROMPT_DIGEST, AF_PROMPT_TEXT, r->prompt, r->prompt_len, r->store_raw);
    if (r->answer) tail += plan_text(&f, AF_ANSWER_DIGEST, AF_ANSWER_TEXT, r->answer, r->answer_len, r->store_raw);
    size_t clen = audit_canon_size(&f);
    if (tail > SIZE_MAX - sizeof(struct pending) - clen) return MK_ETOOBIG;
    size_t alloc = sizeof(struct pending) + clen + tail;
    struct pending *p = malloc(alloc);
    if (!p) return MK_ENOMEM;
    memset(p, 0, sizeof *p);
    p->ts_ms = f.ts_ms;
    p->status = f.status;
    p->alg = f.alg;
    p->canon_len = clen;
    p->alloc = alloc;
    mk_slice sl[AF_COUNT];
    audit_canon_write(p->canon, &f, sl);  /* seq 0 for now, patched below */
    for (int i = 0; i < AF_COUNT; i++) {
        p->present[i] = f.present[i];
        p->off[i] = f.present[i] ? (size_t)((const unsigned char *)sl[i].ptr - p->canon) : 0;
        p->len[i] = sl[i].len;
    }
    size_t tail_at = clen;
    if (r->prompt) place_text(p, &p->dig[0], sl, AF_PROMPT_DIGEST, AF_PROMPT_TEXT, r->prompt, r->prompt_len, &tail_at);
    if (r->answer) place_text(p, &p->dig[1], sl, AF_ANSWER_DIGEST, AF_ANSWER_TEXT, r->answer, r->answer_len, &tail_at);

    pthread_mutex_lock(&a->mu);
    if (a->closing || a->hash_error || a->q.n + a->inflight >= a->max_pending ||
        a->pending_bytes + alloc > a->max_pending_bytes) {
        pthread_mutex_unlock(&a->mu);
        free(p);
        return MK_EUNAVAILABLE;
    }
    p->seq = a->head_seq + 1;
    audit_put_u64(p->canon + AUDIT_CANON_SEQ_OFFSET, p->seq);
    rc = queue_push(&a->q, p);
    if (rc) {
        pthread_mutex_unlock(&a->mu);
        free(p);
        return rc;
    }
    a->head_seq = p->seq;
    a->pending_bytes += alloc;
    if (a->q.n >= a->batch_max) pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->mu);
    if (seq_out) *seq_out = p->seq;
    return 0;
}

int mk_audit_flush(struct mk_audit *a, uint32_t timeout_ms)
{
    struct timespec dl;
    abs_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&a->mu);
    uint64_t want = a->head_seq;
    if (want > a->flush_wanted) a->flush_wanted = want;
    pthread_cond_signal(&a->wake);
    int rc = 0;
    while (a->durable_seq < want && rc == 0) {
        /* After a hashing failure the writer commits what it could; the rest never will. */
        if (a->hash_error && want >= a->lost_from) {
            rc = MK_EUNAVAILABLE;
            break;
        }
        if (pthread_cond_timedwait(&a->durable, &a->mu, &dl) == ETIMEDOUT && a->durable_seq < want) rc = MK_ETIMEOUT;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

uint64_t mk_audit_durable_seq(struct mk_audit *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t v = a->durable_seq;
    pthread_mutex_unlock(&a->mu);
    return v;
}

uint64_t mk_audit_head_seq(struct mk_audit *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t v = a->head_seq;
    pthread_mutex_unlock(&a->mu);
    return v;
}

int mk_audit_writer_error(struct mk_audit *a)
{
    pthread_mutex_lock(&a->mu);
    int v = a->writer_error;
    pthread_mutex_unlock(&a->mu);
    return v;
}

void mk_audit_public_key(const struct mk_audit *a, uint8_t out[MK_AUDIT_PUBKEY_BYTES])
{
    memcpy(out, a->pk, MK_AUDIT_PUBKEY_BYTES);
}

int mk_audit_parse_public_key(const char *hex_or_path, uint8_t out[MK_AUDIT_PUBKEY_BYTES])
{
    if (!hex_or_path) return MK_EINVAL;
    size_t n = strlen(hex_or_path);
    if (audit_unhex(hex_or_path, n, out, MK_AUDIT_PUBKEY_BYTES)) return 0;
    char buf[2 * MK_AUDIT_PUBKEY_BYTES + 8];
    size_t len = 0;
    int rc = read_file_small(hex_or_path, buf, sizeof buf, &len);
    if (rc) return rc;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) len--;
    return audit_unhex(buf, len, out, MK_AUDIT_PUBKEY_BYTES) ? 0 : MK_EINVAL;
}
