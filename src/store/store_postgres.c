/*
 * store_postgres: the PostgreSQL backend of mk_store (contract in store_int.h), on libpq.
 *
 * What it maps, and why:
 * - URLs. "postgres://..." and "postgresql://..." go to libpq as a connection URI, so
 *   every libpq parameter works (sslmode, connect_timeout, application_name, target
 *   session attributes, several hosts). We set defaults before the URI, which may
 *   override them: fallback_application_name=mayak, connect_timeout=10 (libpq waits
 *   forever by default) and TCP keepalives that notice a dead peer within about a
 *   minute instead of two hours.
 * - Sessions. Each connection runs one SET script: lock_timeout = the store's busy
 *   timeout (a writer waiting for a row lock gives up with MK_EBUSY, as SQLite's busy
 *   timeout does), synchronous_commit on (SYNC_FULL) or off (SYNC_NORMAL: a server crash
 *   may lose the last commits, never corrupts), default_transaction_read_only for
 *   read_only stores, UTF-8, hex bytea output and standard strings (the placeholder
 *   rewriter relies on '' being the only escape in '...').
 * - Statements. `?` and `?NNN` become $n once, at prepare, outside literals, quoted
 *   names, comments and dollar-quoted bodies; each statement is a named server-side
 *   prepared statement (PQprepare), which the generic layer caches per connection.
 *   Parameter types are left to the server to infer from the SQL. Values go as text,
 *   except blobs, which go in binary format so no escaping is needed (bytea).
 * - Rows. Results come in single-row mode: a large SELECT streams instead of landing
 *   in memory at once. libpq allows one query in flight per connection, so starting
 *   another statement while one still streams reads that one's remaining rows into a
 *   queue first (the API lets callers interleave statements, as SQLite does). Columns
 *   are typed by the result's type OIDs: integers and bool as INT, float and numeric
 *   as REAL (a whole numeric that fits, e.g. sum(bigint), as INT), bytea as BLOB, the
 *   rest as TEXT.
 * - Errors. By SQLSTATE: 23505 -> MK_EEXISTS, other 23xxx -> MK_EINVAL, 40001/40P01/
 *   55P03 -> MK_EBUSY, 08xxx/57P0x/53300 and any loss of the socket -> MK_EUNAVAILABLE,
 *   syntax and data errors -> MK_EINVAL, the rest -> MK_EIO; errmsg gives the server's
 *   message and SQLSTATE (never DETAIL, which may quote stored values).
 * - Lost connections. An operation on a connection whose socket broke returns
 *   MK_EUNAVAILABLE at once, including every statement of a transaction that was
 *   open: nothing reconnects mid-transaction, so no half of a transaction can land in
 *   autocommit. conn_ready reports the break (or notices a server that closed the
 *   socket while the connection sat in the pool), and the pool opens a new connection
 *   at the next acquire.
 * - Transactions. "BEGIN" at READ COMMITTED (see mk_store_begin). An error inside a
 *   transaction aborts it on the server; the first error is kept so COMMIT returns it
 *   rather than PostgreSQL's silent "ROLLBACK" reply to COMMIT.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "store/store_int.h"

/* Type OIDs of the built-in types we type columns by. They are fixed in PostgreSQL's
 * catalog (pg_type.dat) and never change; the server headers defining them are not
 * part of libpq-dev. */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

/* The protocol carries parameter counts in 16 bits. */
#define MAX_PARAMS 65535
/* A bound text or blob buffer larger than this is freed at reset instead of kept for
 * the next execution, so one huge value does not pin memory for the connection's life. */
#define KEEP_PARAM_BYTES (64 * 1024)
/* Waiting for another process's migration: a schema change on a big table can take
 * minutes; a migrator that hangs longer than this shows up as MK_EBUSY. */
#define MIGRATION_LOCK_WAIT_MS 300000
/* pg_advisory_lock key of mk_store_migrate: "mayak-mg" as a big-endian int64. */
#define MIGRATION_LOCK_KEY "7881696786574714727"

struct pg_stmt;

struct pg_conn {
    PGconn *pg;
    mk_buf err;                      /* last error's text */
    int64_t changes;
    uint64_t next_name;              /* server-side statement names: mk_1, mk_2, ... */
    struct pg_stmt *streaming;       /* the statement whose rows are arriving, if any */
    mk_buf dealloc;                  /* "DEALLOCATE mk_n;" of finalized statements, sent when idle */
    int tx_error;                    /* first error of the current (aborted) transaction */
    int busy_ms;                     /* lock_timeout to restore after the migration lock */
};

enum stmt_state {
    ST_IDLE,       /* not running: bindable */
    ST_STREAMING,  /* rows arrive from the socket */
    ST_BUFFERED,   /* rows were read into queue (another statement needed the socket) */
    ST_FINISHED,   /* the outcome was returned; the next step runs it again */
};

struct pg_stmt {
    struct pg_conn *conn;
    char name[32];
    int nparams;
    const char **values;             /* per parameter: NULL = SQL NULL */
    int *lengths;
    int *formats;                    /* 0 text, 1 binary (blobs) */
    char (*num)[32];                 /* text of numeric parameters */
    char **own;                      /* copies of text/blob parameters */
    size_t *owncap;
    enum stmt_state state;
    PGresult *row;                   /* the current row (one tuple) */
    PGresult **queue;                /* rows read ahead */
    size_t qhead, qlen, qcap;
    int end_rc;                      /* outcome after the queued rows (ST_BUFFERED) */
    mk_buf *dec;                     /* decoded bytea of the current row, per column */
    bool *dec_ok;
    int ndec;
};

/* --- errors ------------------------------------------------------------------------ */

static int map_sqlstate(const char *st)
{
    if (!st || strlen(st) != 5) return MK_EIO;
    if (strcmp(st, "23505") == 0) return MK_EEXISTS;
    if (strncmp(st, "23", 2) == 0) return MK_EINVAL;          /* other integrity constraints */
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0) return MK_EBUSY;
    if (strcmp(st, "57014") == 0) return MK_ETIMEOUT;         /* statement_timeout / cancel */
    if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
        strcmp(st, "57P03") == 0 || strcmp(st, "53300") == 0)
        return MK_EUNAVAILABLE;                               /* connection / server going away / full */
    if (strcmp(st, "53200") == 0) return MK_ENOMEM;
    if (strncmp(st, "54", 2) == 0) return MK_ETOOBIG;         /* program limit exceeded */
    if (strncmp(st, "XX", 2) == 0) return strcmp(st, "XX001") == 0 || strcmp(st, "XX002") == 0 ? MK_ECORRUPT : MK_EIO;
    if (strncmp(st, "42", 2) == 0 || strncmp(st, "22", 2) == 0 || strncmp(st, "0A", 2) == 0 ||
        strncmp(st, "2B", 2) == 0 || strncmp(st, "3F", 2) == 0 || strncmp(st, "21", 2) == 0 ||
        strncmp(st, "26", 2) == 0 || strncmp(st, "34", 2) == 0 || strcmp(st, "25P02") == 0)
        return MK_EINVAL;                                     /* bad SQL, bad value, misuse */
    return MK_EIO;                                            /* disk full, read-only, the rest */
}

/* Copies text into the error buffer without trailing newlines. */
static void set_err(struct pg_conn *c, const char *prefix, const char *msg, const char *state)
{
    mk_buf_reset(&c->err);
    if (prefix) mk_buf_append_str(&c->err, prefix);
    size_t n = msg ? strlen(msg) : 0;
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
    if (n) mk_buf_append(&c->err, msg, n);
    if (state) mk_buf_printf(&c->err, " [SQLSTATE %s]", state);
}

/* Records a failed result (r may be NULL) on the connection: the message, the code,
 * and, inside a transaction, the first failure that aborted it. */
static int fail(struct pg_conn *c, const PGresult *r)
{
    if (PQstatus(c->pg) != CONNECTION_OK) {
        const char *msg = r ? PQresultErrorMessage(r) : "";
        set_err(c, "connection lost: ", *msg ? msg : PQerrorMessage(c->pg), NULL);
        return MK_EUNAVAILABLE;
    }
    if (!r) {
        set_err(c, NULL, PQerrorMessage(c->pg), NULL);
        return MK_ENOMEM;
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    set_err(c, NULL, primary ? primary : PQresultErrorMessage(r), state);
    int code = map_sqlstate(state);
    if (state && strcmp(state, "25P02") == 0 && c->tx_error) code = c->tx_error;
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR && !c->tx_error) c->tx_error = code;
    return code;
}

static int lost(struct pg_conn *c)
{
    set_err(c, "connection lost: ", PQerrorMessage(c->pg), NULL);
    return MK_EUNAVAILABLE;
}

/* Counts rows changed by the finished command, the way SQLite counts changes: only
 * INSERT/UPDATE/DELETE/MERGE move it. */
static void note_changes(struct pg_conn *c, const PGresult *r)
{
    const char *tag = PQcmdStatus((PGresult *)r);
    if (strncmp(tag, "INSERT", 6) && strncmp(tag, "UPDATE", 6) && strncmp(tag, "DELETE", 6) && strncmp(tag, "MERGE", 5))
        return;
    char *end;
    long long n = strtoll(PQcmdTuples((PGresult *)r), &end, 10);
    c->changes = n;
}

static void drain(struct pg_conn *c)
{
    PGresult *r;
    while ((r = PQgetResult(c->pg))) PQclear(r);
}

/* --- statements: reading results ------------------------------------------------------ */

static void clear_row(struct pg_stmt *st)
{
    PQclear(st->row);
    st->row = NULL;
    for (int i = 0; i < st->ndec; i++) st->dec_ok[i] = false;
}

static void clear_queue(struct pg_stmt *st)
{
    for (size_t i = st->qhead; i < st->qlen; i++) PQclear(st->queue[i]);
    st->qhead = st->qlen = 0;
}

/* Handles the result that ends a statement's execution (anything but a row) and reads
 * the protocol up to its end. Returns MK_STORE_DONE or the error. */
static int finish(struct pg_stmt *st, PGresult *r)
{
    struct pg_conn *c = st->conn;
    int rc;
    /* Read up to ReadyForQuery first: it carries the transaction status that fail()
     * looks at to remember what aborted a transaction. */
    drain(c);
    if (c->streaming == st) c->streaming = NULL;
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK || s == PGRES_EMPTY_QUERY) {
        note_changes(c, r);
        rc = MK_STORE_DONE;
    } else {
        rc = fail(c, r);
    }
    PQclear(r);
    return rc;
}

/* Reads the rest of a streaming statement into its queue, so another statement can use
 * the connection. Its outcome is kept for after the queued rows. */
static void buffer_rest(struct pg_stmt *st)
{
    struct pg_conn *c = st->conn;
    int rc = 0;
    for (;;) {
        PGresult *r = PQgetResult(c->pg);
        if (r && PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
            if (rc) {
                PQclear(r);  /* out of memory already: keep draining, report it at the end */
                continue;
            }
            if (st->qlen == st->qcap) {
                size_t ncap = st->qcap ? st->qcap * 2 : 16;
                PGresult **q = realloc(st->queue, ncap * sizeof *q);
                if (!q) {
                    PQclear(r);
                    rc = MK_ENOMEM;
                    continue;
                }
                st->queue = q;
                st->qcap = ncap;
            }
            st->queue[st->qlen++] = r;
            continue;
        }
        int end = finish(st, r);
        st->end_rc = rc ? rc : end;
        st->state = ST_BUFFERED;
        return;
    }
}

/* Makes the connection free for a new command: buffers a streaming statement. */
static void settle(struct pg_conn *c)
{
    if (c->streaming) buffer_rest(c->streaming);
}

/* Sends the DEALLOCATEs of finalized statements, only outside transactions: inside
 * one, a failing DEALLOCATE would abort the caller's transaction. */
static void flush_dealloc(struct pg_conn *c)
{
    if (!c->dealloc.len || PQtransactionStatus(c->pg) != PQTRANS_IDLE) return;
    PGresult *r = PQexec(c->pg, c->dealloc.data);
    PQclear(r);
    mk_buf_reset(&c->dealloc);
}

/* Common start of every operation: refuses a broken connection (no reconnect here:
 * see the file comment), frees the socket, forgets the error of a finished
 * transaction. */
static int enter(struct pg_conn *c)
{
    if (PQstatus(c->pg) != CONNECTION_OK) return lost(c);
    settle(c);
    if (PQstatus(c->pg) != CONNECTION_OK) return lost(c);
    if (PQtransactionStatus(c->pg) == PQTRANS_IDLE) c->tx_error = 0;
    flush_dealloc(c);
    return 0;
}

/* --- connection ------------------------------------------------------------------------ */

/* Appends url to out with any password masked (user:***@host, password=***). */
static void redact_url(const char *url, mk_buf *out)
{
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    size_t authlen = strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < auth + authlen; p++)
        if (*p == '@') at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
        mk_buf_append(out, url, (size_t)(colon + 1 - url));
        mk_buf_append_str(out, "***");
        url = at;
    }
    /* Query parameters: password=... anywhere. */
    const char *q = strchr(url, '?');
    if (!q) {
        mk_buf_append_str(out, url);
        return;
    }
    mk_buf_append(out, url, (size_t)(q - url));
    const char *p = q;
    while (*p) {
        size_t n = strcspn(p + 1, "&") + 1;  /* "?k=v" or "&k=v" */
        if (strncmp(p + 1, "password=", 9) == 0) {
            mk_buf_append(out, p, 10);
            mk_buf_append_str(out, "***");
        } else {
            mk_buf_append(out, p, n);
        }
        p += n;
    }
}

static int build_url(const char *target, mk_buf *url)
{
    /* The generic layer cut the scheme off; libpq takes either spelling. */
    return mk_buf_printf(url, "postgresql://%s", target);
}

static int pg_check(const char *target, struct mk_store_options *opt, mk_buf *err)
{
    if (!PQisthreadsafe()) {
        if (err) mk_buf_append_str(err, "store: libpq was built without thread safety");
        return MK_ECONFIG;
    }
    mk_buf url = MK_BUF_INIT;
    if (build_url(target, &url)) return MK_ENOMEM;
    char *msg = NULL;
    PQconninfoOption *o = PQconninfoParse(url.data, &msg);
    int rc = 0;
    if (!o) {
        if (err) {
            mk_buf_append_str(err, "store: bad PostgreSQL URL '");
            redact_url(url.data, err);
            mk_buf_printf(err, "': %s", msg ? msg : "out of memory");
            while (err->len && err->data[err->len - 1] == '\n') err->data[--err->len] = '\0';
        }
        rc = msg ? MK_EINVAL : MK_ENOMEM;
    }
    PQfreemem(msg);
    PQconninfoFree(o);
    mk_buf_release(&url);
    return rc;
}

/* Notices (e.g. "relation already exists, skipping") would go to stderr by default. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') n--;
    mk_logf(MK_LOG_DEBUG, "store_notice", "%.*s", (int)n, msg);
}

static int pg_conn_open(const char *target, const struct mk_store_options *opt, void **impl, mk_buf *err)
{
    mk_buf url = MK_BUF_INIT;
    if (build_url(target, &url)) return MK_ENOMEM;
    /* Defaults first: later keywords (the URI's own) override them. */
    const char *const keys[] = {"fallback_application_name", "connect_timeout", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "client_encoding", "dbname", NULL};
    const char *const vals[] = {"mayak", "10", "30", "10", "3", "UTF8", url.data, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    int rc = 0;
    if (!pg) {
        rc = MK_ENOMEM;
    } else if (PQstatus(pg) != CONNECTION_OK) {
        rc = MK_EUNAVAILABLE;
        if (err) {
            mk_buf_append_str(err, "store: cannot connect to ");
            redact_url(url.data, err);
            mk_buf_printf(err, ": %s", PQerrorMessage(pg));
            while (err->len && (err->data[err->len - 1] == '\n' || err->data[err->len - 1] == ' '))
                err->data[--err->len] = '\0';
        }
    } else if (PQserverVersion(pg) < 110000) {
        /* ON CONFLICT, identity columns, procedures-era catalogs: 11 is the floor. */
        rc = MK_ECONFIG;
        if (err) mk_buf_printf(err, "store: PostgreSQL %d is too old (11 or later needed)", PQserverVersion(pg) / 10000);
    }
    mk_buf_release(&url);
    if (rc) {
        PQfinish(pg);
        return rc;
    }
    PQsetNoticeProcessor(pg, on_notice, NULL);
    uint32_t busy = opt->busy_timeout_ms > INT_MAX ? INT_MAX : opt->busy_timeout_ms;
    char setup[512];
    snprintf(setup, sizeof setup,
             "SET lock_timeout = %" PRIu32 "; SET synchronous_commit = %s; SET default_transaction_read_only = %s;"
             " SET bytea_output = 'hex'; SET standard_conforming_strings = on; SET client_encoding = 'UTF8'",
             busy, opt->sync == MK_STORE_SYNC_NORMAL ? "off" : "on", opt->read_only ? "on" : "off");
    PGresult *r = PQexec(pg, setup);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        if (err) mk_buf_printf(err, "store: cannot set up the PostgreSQL session: %s", PQresultErrorMessage(r));
        rc = PQstatus(pg) == CONNECTION_OK ? MK_EIO : MK_EUNAVAILABLE;
        PQclear(r);
        PQfinish(pg);
        return rc;
    }
    PQclear(r);
    struct pg_conn *c = calloc(1, sizeof *c);
    if (!c) {
        PQfinish(pg);
        return MK_ENOMEM;
    }
    c->pg = pg;
    c->busy_ms = (int)busy;
    *impl = c;
    return 0;
}

static void pg_conn_close(void *impl)
{
    struct pg_conn *c = impl;
    if (!c) return;
    PQfinish(c->pg);  /* the server drops the session's prepared statements with it */
    mk_buf_release(&c->err);
    mk_buf_release(&c->dealloc);
    free(c);
}

static int pg_conn_ready(void *impl)
{
    struct pg_conn *c = impl;
    if (PQstatus(c->pg) != CONNECTION_OK) return MK_EUNAVAILABLE;
    /* An idle connection has nothing to read unless the server spoke on its own: a
     * FATAL "terminating connection" before closing, a parameter change, or EOF. Read
     * it; a close turns the status bad. A few rounds: the message, then the EOF. */
    for (int i = 0; i < 4; i++) {
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        if (p.fd < 0) return MK_EUNAVAILABLE;
        if (poll(&p, 1, 0) <= 0) break;
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) return MK_EUNAVAILABLE;
        PQisBusy(c->pg);  /* parses what arrived (notices) */
        PGnotify *n;
        while ((n = PQnotifies(c->pg))) PQfreemem(n);
    }
    /* A pooled connection is outside any transaction (release rolls back); anything
     * else means its state is unknown: start over. */
    return PQtransactionStatus(c->pg) == PQTRANS_IDLE ? 0 : MK_EUNAVAILABLE;
}

static const char *pg_errmsg(void *impl)
{
    struct pg_conn *c = impl;
    return c->err.data ? c->err.data : "";
}

static int64_t pg_changes(void *impl) { return ((struct pg_conn *)impl)->changes; }

static int pg_exec(void *impl, const char *sql)
{
    struct pg_conn *c = impl;
    bool commit = strcmp(sql, "COMMIT") == 0;
    bool end_tx = commit || strcmp(sql, "ROLLBACK") == 0;
    if (PQstatus(c->pg) != CONNECTION_OK) {
        /* A rollback of a transaction the server already dropped with the connection:
         * nothing is left to undo, and nothing was committed. */
        if (end_tx) c->tx_error = 0;
        return lost(c);
    }
    int rc = enter(c);
    if (rc) return rc;
    if (commit && PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        /* COMMIT of an aborted transaction "succeeds" as a rollback: report the error
         * that aborted it instead (its message is still in err). */
        rc = c->tx_error ? c->tx_error : MK_EIO;
        PQclear(PQexec(c->pg, "ROLLBACK"));
        c->tx_error = 0;
        return rc;
    }
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY) {
        note_changes(c, r);
        if (commit && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
            rc = c->tx_error ? c->tx_error : MK_EIO;
            set_err(c, NULL, "the transaction was aborted by an earlier error and rolled back", NULL);
        }
    } else if (s == PGRES_COPY_IN || s == PGRES_COPY_OUT || s == PGRES_COPY_BOTH) {
        /* COPY needs its own data exchange, which this API does not offer: end it
         * (failing a COPY IN, reading away a COPY OUT) and say so. */
        PQclear(r);
        r = NULL;
        if (s == PGRES_COPY_IN) {
            PQputCopyEnd(c->pg, "COPY is not supported through mk_store");
        } else {
            char *buf;
            while (PQgetCopyData(c->pg, &buf, 0) > 0) PQfreemem(buf);
        }
        drain(c);
        set_err(c, NULL, "COPY is not supported through mk_store_exec", NULL);
        rc = MK_EINVAL;
    } else {
        rc = fail(c, r);
    }
    PQclear(r);
    if (end_tx) c->tx_error = 0;
    return rc;
}

/* --- statements: prepare and bind --------------------------------------------------- */

static bool ident_char(char ch)
{
    unsigned char u = (unsigned char)ch;
    return isalnum(u) || ch == '_' || ch == '$' || u >= 0x80;
}

static bool tag_char(char ch)
{
    unsigned char u = (unsigned char)ch;
    return isalnum(u) || ch == '_' || u >= 0x80;
}

/* Reads 1..5 decimal digits at p as a parameter number; 0 when out of range. */
static int param_number(const char *p, const char **end)
{
    long v = 0;
    const char *q = p;
    while (isdigit((unsigned char)*q)) {
        if (v <= MAX_PARAMS) v = v * 10 + (*q - '0');
        q++;
    }
    *end = q;
    return v >= 1 && v <= MAX_PARAMS ? (int)v : 0;
}

/* Rewrites SQLite-style parameters into PostgreSQL's: `?` takes the number after the
 * largest so far (SQLite's rule), `?NNN` is $NNN. Text inside '...', E'...', "...",
 * comments and $tag$...$tag$ is copied untouched. Native $n is accepted only when the
 * SQL has no `?` at all (mixing the two would number them ambiguously). */
static int rewrite_params(const char *sql, mk_buf *out, int *nparams, const char **why)
{
    int maxidx = 0;
    bool qmark = false, native = false;
    const char *p = sql;
    *why = NULL;
    while (*p) {
        const char *q = p + 1;
        char ch = *p;
        if (ch == '\'') {
            bool esc = p > sql && (p[-1] == 'E' || p[-1] == 'e') && (p - 1 == sql || !ident_char(p[-2]));
            while (*q) {
                if (esc && *q == '\\' && q[1]) {
                    q += 2;
                } else if (*q == '\'') {
                    if (q[1] != '\'') {
                        q++;
                        break;
                    }
                    q += 2;
                } else {
                    q++;
                }
            }
        } else if (ch == '"') {
            while (*q) {
                if (*q == '"') {
                    if (q[1] != '"') {
                        q++;
                        break;
                    }
                    q++;
                }
                q++;
            }
        } else if (ch == '-' && p[1] == '-') {
            q = p + strcspn(p, "\n");
        } else if (ch == '/' && p[1] == '*') {
            int depth = 1;  /* PostgreSQL comments nest */
            q = p + 2;
            while (*q && depth) {
                if (q[0] == '/' && q[1] == '*') {
                    depth++;
                    q += 2;
                } else if (q[0] == '*' && q[1] == '/') {
                    depth--;
                    q += 2;
                } else {
                    q++;
                }
            }
        } else if (ch == '$' && !(p > sql && ident_char(p[-1]))) {
            if (isdigit((unsigned char)p[1])) {
                int n = param_number(p + 1, &q);
                if (!n) {
                    *why = "parameter number out of range";
                    return MK_EINVAL;
                }
                native = true;
                if (n > maxidx) maxidx = n;
            } else {
                /* $tag$ ... $tag$ (the tag may be empty). */
                const char *t = p + 1;
                if (*t != '$' && (isdigit((unsigned char)*t) || !tag_char(*t))) {
                    t = NULL;
                } else {
                    while (*t && *t != '$' && tag_char(*t)) t++;
                    if (*t != '$') t = NULL;
                }
                if (t) {
                    size_t taglen = (size_t)(t - p) + 1;
                    const char *e = t + 1;
                    while (*e && strncmp(e, p, taglen) != 0) e++;
                    q = *e ? e + taglen : e;
                }
            }
        } else if (ch == '?') {
            int n;
            if (isdigit((unsigned char)p[1])) {
                n = param_number(p + 1, &q);
                if (!n) {
                    *why = "parameter number out of range";
                    return MK_EINVAL;
                }
            } else {
                n = maxidx + 1;
            }
            if (n > MAX_PARAMS) {
                *why = "too many parameters";
                return MK_EINVAL;
            }
            if (n > maxidx) maxidx = n;
            qmark = true;
            if (mk_buf_printf(out, "$%d", n)) return MK_ENOMEM;
            p = q;
            continue;
        }
        if (mk_buf_append(out, p, (size_t)(q - p))) return MK_ENOMEM;
        p = q;
    }
    if (qmark && native) {
        *why = "the SQL mixes ? and $n parameters";
        return MK_EINVAL;
    }
    if (!out->data) mk_buf_append_str(out, "");
    *nparams = maxidx;
    return 0;
}

static void stmt_free(struct pg_stmt *st)
{
    if (!st) return;
    clear_row(st);
    clear_queue(st);
    free(st->queue);
    for (int i = 0; i < st->nparams; i++) free(st->own[i]);
    for (int i = 0; i < st->ndec; i++) mk_buf_release(&st->dec[i]);
    free(st->dec);
    free(st->dec_ok);
    free(st->values);
    free(st->lengths);
    free(st->formats);
    free(st->num);
    free(st->own);
    free(st->owncap);
    free(st);
}

static int pg_prepare(void *impl, const char *sql, void **stmt)
{
    struct pg_conn *c = impl;
    int rc = enter(c);
    if (rc) return rc;
    const char *s = sql;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) {
        set_err(c, NULL, "empty statement", NULL);
        return MK_EINVAL;
    }
    mk_buf text = MK_BUF_INIT;
    int n = 0;
    const char *why;
    if ((rc = rewrite_params(sql, &text, &n, &why))) {
        if (why) set_err(c, NULL, why, NULL);
        mk_buf_release(&text);
        return rc;
    }
    struct pg_stmt *st = calloc(1, sizeof *st);
    if (!st) {
        mk_buf_release(&text);
        return MK_ENOMEM;
    }
    st->conn = c;
    st->nparams = n;
    if (n) {
        st->values = calloc((size_t)n, sizeof *st->values);
        st->lengths = calloc((size_t)n, sizeof *st->lengths);
        st->formats = calloc((size_t)n, sizeof *st->formats);
        st->num = calloc((size_t)n, sizeof *st->num);
        st->own = calloc((size_t)n, sizeof *st->own);
        st->owncap = calloc((size_t)n, sizeof *st->owncap);
        if (!st->values || !st->lengths || !st->formats || !st->num || !st->own || !st->owncap) {
            stmt_free(st);
            mk_buf_release(&text);
            return MK_ENOMEM;
        }
    }
    snprintf(st->name, sizeof st->name, "mk_%" PRIu64, ++c->next_name);
    /* Types are left to the server (NULL): it infers each $n from its use. */
    PGresult *r = PQprepare(c->pg, st->name, text.data, n, NULL);
    mk_buf_release(&text);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = fail(c, r);
        PQclear(r);
        stmt_free(st);
        return rc;
    }
    PQclear(r);
    *stmt = st;
    return 0;
}

static void pg_finalize(void *stmt)
{
    struct pg_stmt *st = stmt;
    if (!st) return;
    struct pg_conn *c = st->conn;
    if (c->streaming == st) {
        drain(c);
        c->streaming = NULL;
    }
    /* The server keeps the prepared statement until told or the session ends; tell it
     * at the next idle moment (no round trip now, and never inside a transaction). */
    if (PQstatus(c->pg) == CONNECTION_OK) mk_buf_printf(&c->dealloc, "DEALLOCATE %s;", st->name);
    stmt_free(st);
}

static void clear_params(struct pg_stmt *st)
{
    for (int i = 0; i < st->nparams; i++) {
        st->values[i] = NULL;
        st->lengths[i] = 0;
        st->formats[i] = 0;
        if (st->owncap[i] > KEEP_PARAM_BYTES) {
            free(st->own[i]);
            st->own[i] = NULL;
            st->owncap[i] = 0;
        }
    }
}

static int pg_reset(void *stmt)
{
    struct pg_stmt *st = stmt;
    struct pg_conn *c = st->conn;
    if (st->state == ST_STREAMING) {
        /* Abandoned mid-way: read and drop the rest (a cancel would abort the caller's
         * transaction). finish() still records an error that arrives meanwhile. */
        PGresult *r;
        while ((r = PQgetResult(c->pg)) && PQresultStatus(r) == PGRES_SINGLE_TUPLE) PQclear(r);
        finish(st, r);
    }
    clear_row(st);
    clear_queue(st);
    st->state = ST_IDLE;
    clear_params(st);
    return 0;
}

/* Copies len bytes (plus a NUL) into parameter i's own buffer. */
static int own_copy(struct pg_stmt *st, int i, const void *p, size_t len)
{
    if (st->owncap[i] < len + 1) {
        size_t cap = len + 1 < 64 ? 64 : len + 1;
        char *b = realloc(st->own[i], cap);
        if (!b) return MK_ENOMEM;
        st->own[i] = b;
        st->owncap[i] = cap;
    }
    if (len) memcpy(st->own[i], p, len);
    st->own[i][len] = '\0';
    return 0;
}

static int pg_bind(void *stmt, int idx, const struct mk_store_value *v)
{
    struct pg_stmt *st = stmt;
    struct pg_conn *c = st->conn;
    if (idx < 1 || idx > st->nparams) {
        set_err(c, NULL, "parameter index out of range", NULL);
        return MK_EINVAL;
    }
    if (st->state != ST_IDLE) {
        set_err(c, NULL, "statement is running: reset it before binding", NULL);
        return MK_EINVAL;
    }
    int i = idx - 1;
    st->formats[i] = 0;
    st->lengths[i] = 0;
    switch (v->type) {
    case MK_STORE_NULL: st->values[i] = NULL; return 0;
    case MK_STORE_INT:
        snprintf(st->num[i], sizeof st->num[i], "%" PRId64, v->i);
        st->values[i] = st->num[i];
        return 0;
    case MK_STORE_REAL:
        /* %.17g round-trips every double; the server's spellings for the rest. */
        if (isnan(v->d)) snprintf(st->num[i], sizeof st->num[i], "NaN");
        else if (isinf(v->d)) snprintf(st->num[i], sizeof st->num[i], "%s", v->d > 0 ? "Infinity" : "-Infinity");
        else snprintf(st->num[i], sizeof st->num[i], "%.17g", v->d);
        st->values[i] = st->num[i];
        return 0;
    case MK_STORE_TEXT:
        if (v->len > INT_MAX) return MK_ETOOBIG;
        if (v->len && memchr(v->ptr, 0, v->len)) {
            /* Text parameters travel NUL-terminated and PostgreSQL text cannot hold
             * NUL: refuse instead of storing a silently cut value. */
            set_err(c, NULL, "text contains a NUL byte, which PostgreSQL cannot store (bind it as a blob)", NULL);
            st->values[i] = NULL;
            return MK_EINVAL;
        }
        if (own_copy(st, i, v->ptr, v->len)) return MK_ENOMEM;
        st->values[i] = st->own[i];
        return 0;
    case MK_STORE_BLOB:
        if (v->len > INT_MAX) return MK_ETOOBIG;
        st->formats[i] = 1;
        st->lengths[i] = (int)v->len;
        if (v->borrowed && v->ptr) {
            st->values[i] = v->ptr;
            return 0;
        }
        if (own_copy(st, i, v->ptr, v->len)) return MK_ENOMEM;
        st->values[i] = st->own[i];
        return 0;
    default: return MK_EINVAL;
    }
}

/* --- statements: execution ---------------------------------------------------------- */

static int start(struct pg_stmt *st)
{
    struct pg_conn *c = st->conn;
    int rc = enter(c);
    if (rc) return rc;
    if (!PQsendQueryPrepared(c->pg, st->name, st->nparams, st->values, st->lengths, st->formats, 0)) {
        if (PQstatus(c->pg) != CONNECTION_OK) return lost(c);
        set_err(c, NULL, PQerrorMessage(c->pg), NULL);
        return MK_EIO;
    }
    /* Rows one by one: a big result streams instead of being read whole first. */
    PQsetSingleRowMode(c->pg);
    st->state = ST_STREAMING;
    c->streaming = st;
    return 0;
}

static int pg_step(void *stmt)
{
    struct pg_stmt *st = stmt;
    clear_row(st);
    if (st->state == ST_FINISHED) st->state = ST_IDLE;  /* SQLite runs it again too */
    if (st->state == ST_IDLE) {
        int rc = start(st);
        if (rc) {
            st->state = ST_FINISHED;
            return rc;
        }
    }
    if (st->state == ST_BUFFERED) {
        if (st->qhead < st->qlen) {
            st->row = st->queue[st->qhead++];
            return MK_STORE_ROW;
        }
        clear_queue(st);
        st->state = ST_FINISHED;
        return st->end_rc;
    }
    PGresult *r = PQgetResult(st->conn->pg);
    if (r && PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
        st->row = r;
        return MK_STORE_ROW;
    }
    st->state = ST_FINISHED;
    return finish(st, r);
}

static int pg_column_count(void *stmt)
{
    struct pg_stmt *st = stmt;
    return st->row ? PQnfields(st->row) : 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decodes column col's bytea text into the statement's per-column buffer. */
static int decode_bytea(struct pg_stmt *st, int col, const char *s, size_t n, mk_slice *out)
{
    int nf = PQnfields(st->row);
    if (st->ndec < nf) {
        mk_buf *d = realloc(st->dec, (size_t)nf * sizeof *d);
        if (!d) return MK_ENOMEM;
        st->dec = d;
        bool *ok = realloc(st->dec_ok, (size_t)nf * sizeof *ok);
        if (!ok) return MK_ENOMEM;
        st->dec_ok = ok;
        for (int i = st->ndec; i < nf; i++) {
            mk_buf_init(&st->dec[i], 0);
            st->dec_ok[i] = false;
        }
        st->ndec = nf;
    }
    mk_buf *b = &st->dec[col];
    if (!st->dec_ok[col]) {
        mk_buf_reset(b);
        if (n >= 2 && s[0] == '\\' && s[1] == 'x' && n % 2 == 0) {
            if (mk_buf_reserve(b, (n - 2) / 2 + 1)) return MK_ENOMEM;
            for (size_t i = 2; i < n; i += 2) {
                int hi = hexval(s[i]), lo = hexval(s[i + 1]);
                if (hi < 0 || lo < 0) return MK_ECORRUPT;
                b->data[b->len++] = (char)(hi << 4 | lo);
            }
            b->data[b->len] = '\0';
        } else {
            /* The old escape format (someone changed bytea_output): libpq decodes it. */
            size_t len = 0;
            unsigned char *raw = PQunescapeBytea((const unsigned char *)s, &len);
            if (!raw) return MK_ENOMEM;
            int rc = mk_buf_append(b, raw, len);
            PQfreemem(raw);
            if (rc) return rc;
        }
        st->dec_ok[col] = true;
    }
    *out = (mk_slice){b->data ? b->data : "", b->len};
    return 0;
}

/* True when s is an optional minus and digits only (a whole numeric). */
static bool whole_number(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

static void pg_column(void *stmt, int col, struct mk_store_value *out)
{
    struct pg_stmt *st = stmt;
    memset(out, 0, sizeof *out);
    out->type = MK_STORE_NULL;
    if (!st->row || col < 0 || col >= PQnfields(st->row) || PQgetisnull(st->row, 0, col)) return;
    const char *s = PQgetvalue(st->row, 0, col);
    size_t n = (size_t)PQgetlength(st->row, 0, col);
    char *end;
    switch (PQftype(st->row, col)) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        out->type = MK_STORE_INT;
        out->i = strtoll(s, &end, 10);
        return;
    case OID_BOOL:
        out->type = MK_STORE_INT;
        out->i = s[0] == 't';
        return;
    case OID_NUMERIC:
        if (whole_number(s)) {
            errno = 0;
            long long v = strtoll(s, &end, 10);
            if (errno == 0) {
                out->type = MK_STORE_INT;
                out->i = v;
                return;
            }
        }
        out->type = MK_STORE_REAL;
        out->d = strtod(s, &end);
        return;
    case OID_FLOAT4:
    case OID_FLOAT8:
        out->type = MK_STORE_REAL;
        out->d = strtod(s, &end);  /* accepts NaN, Infinity, -Infinity */
        return;
    case OID_BYTEA: {
        mk_slice b;
        if (decode_bytea(st, col, s, n, &b)) {
            /* Out of memory (or a malformed reply): a NULL is the only honest value. */
            mk_logf(MK_LOG_ERROR, "store_column", "cannot decode bytea column %d", col);
            return;
        }
        out->type = MK_STORE_BLOB;
        out->ptr = b.ptr;
        out->len = b.len;
        return;
    }
    default:
        out->type = MK_STORE_TEXT;
        out->ptr = s;
        out->len = n;
        return;
    }
}

/* --- migrations -------------------------------------------------------------------- */

static int pg_migrate_lock(void *impl, bool lock)
{
    struct pg_conn *c = impl;
    if (!lock) {
        if (PQstatus(c->pg) != CONNECTION_OK) return 0;  /* the server released it with the session */
        return pg_exec(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")");
    }
    /* Session-level, so it spans the per-version transactions; a longer lock_timeout
     * while waiting for it, since another process's migration may take a while. */
    char sql[96];
    snprintf(sql, sizeof sql, "SET lock_timeout = %d", MIGRATION_LOCK_WAIT_MS);
    int rc = pg_exec(c, sql);
    if (!rc) rc = pg_exec(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")");
    snprintf(sql, sizeof sql, "SET lock_timeout = %d", c->busy_ms);
    mk_buf keep = MK_BUF_INIT;
    if (rc) mk_buf_append_slice(&keep, mk_buf_slice(&c->err));  /* the lock's error, not the SET's */
    int rc2 = pg_exec(c, sql);
    if (rc) {
        mk_buf_reset(&c->err);
        mk_buf_append_slice(&c->err, mk_buf_slice(&keep));
    }
    mk_buf_release(&keep);
    return rc ? rc : rc2;
}

const struct mk_store_backend mk_store_backend_postgres = {
    .name = "postgres",
    .check = pg_check,
    .conn_open = pg_conn_open,
    .conn_close = pg_conn_close,
    .exec = pg_exec,
    .errmsg = pg_errmsg,
    .changes = pg_changes,
    .begin_sql = "BEGIN",
    .conn_ready = pg_conn_ready,
    .migrate_lock = pg_migrate_lock,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .bind = pg_bind,
    .step = pg_step,
    .column_count = pg_column_count,
    .column = pg_column,
};
