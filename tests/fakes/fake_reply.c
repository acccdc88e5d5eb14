/*
 * fake_reply: sends a prepared reply the way the script says.
 *
 * A reply is a body split into pieces (stream events, or one piece for a whole
 * body). Without scripting it goes out at once through mk_http_respond (the fast
 * path the benchmarks measure). With delays, pacing, trickle, cut or hang it becomes
 * a small state machine driven by one uv timer, so a slow reply never stops the loop
 * from serving other requests.
 *
 * Lifetime: the reply owns its plan and finishes its request exactly once: when it
 * is done, when the client goes away (on_abort), or when the server is freed.
 * `in_step` guards against the server calling on_abort from inside one of our own
 * write calls: then we only note it and finish once the step unwinds.
 */
#include "fake.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_utf8.h"

/* While cutting, how long we wait for queued bytes to reach the kernel (1 ms ticks)
 * before shutting the socket, so the client really sees the first N chunks. */
#define CUT_DRAIN_TICKS 2000

enum reply_state { ST_HEADERS, ST_WRITING, ST_CUTTING, ST_HANG };

typedef struct reply {
    fake_server *fs;
    mk_http_req *req;
    uv_timer_t timer;
    bool timer_live;     /* timer initialised: must be closed before free */
    fake_plan plan;
    int ttft_ms, interval_ms, trickle_ms;
    char retry_after[16];
    size_t cut_pieces;   /* cut once this many pieces are out; SIZE_MAX = never */
    bool as_stream;      /* headers by stream_start (chunked) rather than respond */
    enum reply_state st;
    size_t piece, off;   /* next piece, next byte */
    int drain_ticks;
    bool started, finished, aborted, in_step;
} reply;

void fake_plan_init(fake_plan *p, int status, const char *content_type, bool stream)
{
    memset(p, 0, sizeof *p);
    p->status = status;
    p->content_type = content_type;
    p->stream = stream;
    mk_buf_init(&p->body, 0);
}

int fake_plan_end_piece(fake_plan *p)
{
    if (p->npieces == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        size_t *e = realloc(p->ends, cap * sizeof *e);
        if (!e) return MK_ENOMEM;
        p->ends = e;
        p->cap = cap;
    }
    p->ends[p->npieces++] = p->body.len;
    return 0;
}

void fake_plan_release(fake_plan *p)
{
    mk_buf_release(&p->body);
    free(p->ends);
    p->ends = NULL;
    p->npieces = p->cap = 0;
}

static size_t piece_start(const fake_plan *p, size_t i) { return i == 0 ? 0 : p->ends[i - 1]; }

void fake_plan_break(fake_plan *p)
{
    if (!p->stream || p->npieces < 2) {
        /* Half an object is never valid JSON. */
        size_t half = mk_utf8_complete_prefix(p->body.data ? p->body.data : "", p->body.len / 2);
        p->body.len = half;
        if (p->body.data) p->body.data[half] = '\0';
        for (size_t i = 0; i < p->npieces; i++)
            if (p->ends[i] > half) p->ends[i] = half;
        return;
    }
    size_t s = piece_start(p, 1), e = p->ends[1];
    const char *ev = p->body.data + s;
    size_t evlen = e - s;
    bool sse = evlen >= 6 && memcmp(ev, "data: ", 6) == 0;
    size_t head = sse ? 6 : 0;
    size_t json_len = evlen - head;
    while (json_len > 0 && (ev[head + json_len - 1] == '\n' || ev[head + json_len - 1] == '\r')) json_len--;
    size_t keep = mk_utf8_complete_prefix(ev + head, json_len / 2);
    mk_buf nb = MK_BUF_INIT;
    mk_buf_append(&nb, p->body.data, s + head + keep);
    mk_buf_append_str(&nb, sse ? "\n\n" : "\n");
    size_t delta = (s + head + keep + (sse ? 2 : 1)) - e; /* wraps: subtracting is what we want */
    mk_buf_append(&nb, p->body.data + e, p->body.len - e);
    for (size_t i = 1; i < p->npieces; i++) p->ends[i] += delta;
    mk_buf_release(&p->body);
    p->body = nb;
}

/* Extra headers of a reply; `out` must have room for 3. */
static size_t plan_headers(const fake_plan *p, const char *retry_after, mk_http_header *out)
{
    size_t n = 0;
    out[n++] = (mk_http_header){MK_SLICE_LIT("Content-Type"), mk_slice_cstr(p->content_type)};
    if (p->stream && strncmp(p->content_type, "text/event-stream", 17) == 0)
        out[n++] = (mk_http_header){MK_SLICE_LIT("Cache-Control"), MK_SLICE_LIT("no-cache")};
    if (retry_after && retry_after[0])
        out[n++] = (mk_http_header){MK_SLICE_LIT("Retry-After"), mk_slice_cstr(retry_after)};
    return n;
}

/* ---- cutting a connection ---------------------------------------------------
 * mk_http has no call to drop a connection without finishing its response, and a
 * broken upstream is exactly what the tests need. The request knows its peer
 * address, so we find our socket with that peer and shut it down: the client sees
 * the bytes written so far and then EOF in the middle of the body. The server then
 * fails its next write or read on that socket and closes the connection itself. */
static bool same_peer(const struct sockaddr_storage *ss, const char *peer)
{
    char ip[INET6_ADDRSTRLEN], a[96], b[96];
    unsigned port;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
    } else {
        return false;
    }
    snprintf(a, sizeof a, "%s:%u", ip, port);
    snprintf(b, sizeof b, "[%s]:%u", ip, port);
    return strcmp(peer, a) == 0 || strcmp(peer, b) == 0;
}

static bool cut_connection(const mk_http_req *req)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return false;
    bool done = false;
    struct dirent *de;
    while (!done && (de = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end || end == de->d_name || fd == dirfd(d)) continue;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername((int)fd, (struct sockaddr *)&ss, &sl) != 0) continue;
        if (same_peer(&ss, req->peer)) {
            shutdown((int)fd, SHUT_RDWR);
            done = true;
        }
    }
    closedir(d);
    return done;
}

/* ---- the state machine ------------------------------------------------------ */

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

static void reply_free(reply *r)
{
    fake_plan_release(&r->plan);
    if (r->timer_live) {
        uv_timer_stop(&r->timer);
        r->timer.data = r;
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    } else {
        free(r);
    }
}

/* Finishes the request (writes nothing if the client is gone). */
static void reply_finish(reply *r)
{
    if (r->finished) return;
    r->finished = true;
    if (r->started) {
        mk_http_stream_end(r->req);
    } else {
        mk_http_header h[3];
        size_t nh = plan_headers(&r->plan, r->retry_after, h);
        mk_http_respond(r->req, r->plan.status, h, nh, r->plan.body.data ? r->plan.body.data : "",
                        r->plan.body.len);
    }
}

static void step(reply *r);

static void on_timer(uv_timer_t *t) { step((reply *)t->data); }

static void arm(reply *r, int ms)
{
    if (!r->timer_live) {
        uv_timer_init(r->fs->loop, &r->timer);
        r->timer.data = r;
        r->timer_live = true;
    }
    uv_timer_start(&r->timer, on_timer, (uint64_t)ms, 0);
}

static void on_abort(mk_http_req *req, void *arg)
{
    reply *r = arg;
    r->aborted = true;
    if (r->in_step) return; /* step() finishes once it unwinds */
    reply_finish(r);
    reply_free(r);
}

/* Advances as far as possible without waiting; returns when a timer is armed, the
 * reply is finished, or the client has gone. */
static void step(reply *r)
{
    r->in_step = true;
    while (!r->aborted && !r->finished) {
        if (r->st == ST_HANG) break;
        if (r->st == ST_HEADERS) {
            if (!r->as_stream) {
                reply_finish(r);
                break;
            }
            mk_http_header h[3];
            size_t nh = plan_headers(&r->plan, r->retry_after, h);
            mk_http_stream_start(r->req, r->plan.status, h, nh);
            r->started = true;
            r->st = ST_WRITING;
            if (r->ttft_ms > 0 && r->plan.npieces > 0) {
                arm(r, r->ttft_ms);
                break;
            }
            continue;
        }
        if (r->st == ST_WRITING) {
            if (r->piece >= r->cut_pieces) {
                r->st = ST_CUTTING;
                continue;
            }
            if (r->piece >= r->plan.npieces) {
                reply_finish(r);
                break;
            }
            size_t end = r->plan.ends[r->piece];
            size_t n = r->trickle_ms > 0 ? 1 : end - r->off;
            int rc = n ? mk_http_stream_write(r->req, r->plan.body.data + r->off, n) : 0;
            r->off += n;
            bool piece_done = r->off >= end;
            if (piece_done) r->piece++;
            if (rc == MK_ECANCELLED) {
                r->aborted = true;
                break;
            }
            bool more = r->piece < r->plan.npieces && r->piece < r->cut_pieces;
            int delay = !piece_done ? r->trickle_ms : (more ? (r->interval_ms > 0 ? r->interval_ms : r->trickle_ms) : 0);
            if (delay > 0) {
                arm(r, delay);
                break;
            }
            continue;
        }
        /* ST_CUTTING: let queued bytes reach the kernel, then drop the connection. */
        if (mk_http_req_write_queue_bytes(r->req) > 0 && r->drain_ticks < CUT_DRAIN_TICKS) {
            r->drain_ticks++;
            arm(r, 1);
            break;
        }
        if (!cut_connection(r->req))
            mk_log(MK_LOG_WARN, "fake_cut_failed", "peer", r->req->peer, NULL);
        reply_finish(r);
    }
    r->in_step = false;
    if (r->aborted && !r->finished) reply_finish(r);
    if (r->finished) reply_free(r);
}

void fake_send(fake_server *fs, mk_http_req *req, fake_plan *p, const fake_opts *o)
{
    char retry_after[16] = "";
    if (o && o->retry_after >= 0 && (p->status == 429 || p->status == 503))
        snprintf(retry_after, sizeof retry_after, "%d", o->retry_after);
    if (o && o->malformed) fake_plan_break(p);
    if (p->npieces == 0 || p->ends[p->npieces - 1] != p->body.len) fake_plan_end_piece(p);

    bool cut = o && o->cut_after >= 0;
    bool paced = o && (o->latency_ms > 0 || o->hang || o->trickle_ms > 0 || cut ||
                       (p->stream && (o->ttft_ms > 0 || o->interval_ms > 0)));
    if (fs->verbose)
        mk_logf(MK_LOG_INFO, "fake_reply", "%s %.*s -> %d%s%s", req->method, (int)req->path.len, req->path.ptr,
                p->status, p->stream ? " stream" : "", paced ? " scripted" : "");
    if (!paced) {
        mk_http_header h[3];
        size_t nh = plan_headers(p, retry_after, h);
        const char *body = p->body.data ? p->body.data : "";
        if (p->stream) {
            /* Whole stream in one write: the events are already concatenated. */
            mk_http_stream_start(req, p->status, h, nh);
            mk_http_stream_write(req, body, p->body.len);
            mk_http_stream_end(req);
        } else {
            mk_http_respond(req, p->status, h, nh, body, p->body.len);
        }
        fake_plan_release(p);
        return;
    }

    reply *r = calloc(1, sizeof *r);
    if (!r) {
        fake_plan_release(p);
        mk_http_respond(req, 500, NULL, 0, "", 0);
        return;
    }
    r->fs = fs;
    r->req = req;
    r->plan = *p;
    memset(p, 0, sizeof *p);
    memcpy(r->retry_after, retry_after, sizeof retry_after);
    r->ttft_ms = r->plan.stream ? o->ttft_ms : 0;
    r->interval_ms = r->plan.stream ? o->interval_ms : 0;
    r->trickle_ms = o->trickle_ms;
    r->cut_pieces = SIZE_MAX;
    r->as_stream = r->plan.stream || r->trickle_ms > 0 || cut;
    if (cut) {
        if (r->plan.stream) {
            r->cut_pieces = (size_t)o->cut_after;
        } else {
            /* A whole body: headers and half of it, then the connection drops. */
            size_t half = mk_utf8_complete_prefix(r->plan.body.data ? r->plan.body.data : "", r->plan.body.len / 2);
            r->plan.ends[0] = half;
            r->plan.npieces = 1;
            r->cut_pieces = 1;
        }
    }
    r->st = o->hang ? ST_HANG : ST_HEADERS;
    mk_http_req_on_abort(req, on_abort, r);
    if (r->st == ST_HANG) return;
    if (o->latency_ms > 0) {
        arm(r, o->latency_ms);
        return;
    }
    step(r);
}

/* ---- error shapes ------------------------------------------------------------ */

static const char *openai_type(int status)
{
    switch (status) {
    case 400: case 404: case 409: case 413: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static const char *openai_code(int status)
{
    switch (status) {
    case 401: return "invalid_api_key";
    case 404: return "model_not_found";
    case 429: return "rate_limit_exceeded";
    default: return NULL;
    }
}

/* gRPC code Yandex Cloud puts beside the HTTP status. */
static int grpc_code(int status)
{
    switch (status) {
    case 400: return 3;  /* INVALID_ARGUMENT */
    case 401: return 16; /* UNAUTHENTICATED */
    case 403: return 7;  /* PERMISSION_DENIED */
    case 404: return 5;  /* NOT_FOUND */
    case 409: return 6;  /* ALREADY_EXISTS */
    case 429: return 8;  /* RESOURCE_EXHAUSTED */
    case 499: return 1;  /* CANCELLED */
    case 501: return 12; /* UNIMPLEMENTED */
    case 503: return 14; /* UNAVAILABLE */
    case 504: return 4;  /* DEADLINE_EXCEEDED */
    default: return status >= 500 ? 13 : 2; /* INTERNAL : UNKNOWN */
    }
}

void fake_send_error(fake_server *fs, mk_http_req *req, enum fake_wire wire, int status, const char *message,
                     const fake_opts *o)
{
    fake_plan p;
    fake_plan_init(&p, status, "application/json", false);
    mk_buf *b = &p.body;
    if (wire == FAKE_WIRE_OPENAI) {
        const char *code = openai_code(status);
        mk_buf_append_str(b, "{\"error\":{\"message\":");
        mk_buf_append_json_string(b, message, strlen(message));
        mk_buf_printf(b, ",\"type\":\"%s\",\"param\":null,\"code\":", openai_type(status));
        if (code) mk_buf_printf(b, "\"%s\"}}", code);
        else mk_buf_append_str(b, "null}}");
    } else if (wire == FAKE_WIRE_GIGACHAT) {
        mk_buf_printf(b, "{\"status\":%d,\"message\":", status);
        mk_buf_append_json_string(b, message, strlen(message));
        mk_buf_append_char(b, '}');
    } else {
        mk_buf_printf(b, "{\"error\":{\"grpcCode\":%d,\"httpCode\":%d,\"message\":", grpc_code(status), status);
        mk_buf_append_json_string(b, message, strlen(message));
        mk_buf_printf(b, ",\"httpStatus\":\"%s\"}}", mk_http_status_text(status));
    }
    fake_plan_end_piece(&p);
    /* A scripted error keeps its delays; malformed, cut and trickle apply to it too. */
    fake_send(fs, req, &p, o);
}

void fake_send_json(mk_http_req *req, int status, const char *body, size_t len)
{
    mk_http_header h = {MK_SLICE_LIT("Content-Type"), MK_SLICE_LIT("application/json")};
    mk_http_respond(req, status, &h, 1, body, len);
}
