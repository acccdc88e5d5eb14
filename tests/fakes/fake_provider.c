/*
 * mayak-fake-provider: a scriptable stand-in for OpenAI, GigaChat and YandexGPT.
 *
 * One process serves all three wire formats on Mayak's own HTTP server, so the
 * integration tests and benchmarks need no network and no keys. This file holds the
 * process: command line, routing table, the control endpoints under /_fake/ (mode,
 * stats, recorded requests, reset) and shutdown. The scripting itself is described
 * in tests/fakes/README.md.
 *
 *   mayak-fake-provider --port N [--host 127.0.0.1] [--port-file PATH] [--verbose]
 *                       [--openai-key KEY] [--gigachat-token-ttl-ms MS]
 */
#include "fake.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"

enum route_kind { ROUTE_PROVIDER, ROUTE_CONTROL, ROUTE_HEALTH };

typedef void (*route_fn)(fake_server *fs, mk_http_req *req);

struct route {
    const char *method;
    const char *path;
    route_fn fn;
    enum route_kind kind;
};

static void ctl_mode_get(fake_server *fs, mk_http_req *req);
static void ctl_mode_post(fake_server *fs, mk_http_req *req);
static void ctl_stats(fake_server *fs, mk_http_req *req);
static void ctl_requests(fake_server *fs, mk_http_req *req);
static void ctl_reset(fake_server *fs, mk_http_req *req);
static void ctl_revoke_tokens(fake_server *fs, mk_http_req *req);
static void health(fake_server *fs, mk_http_req *req);

/* Every endpoint in one place. */
static const struct route routes[] = {
    {"GET", "/v1/models", fake_openai_models, ROUTE_PROVIDER},
    {"POST", "/v1/chat/completions", fake_openai_chat, ROUTE_PROVIDER},
    {"POST", "/v1/embeddings", fake_openai_embeddings, ROUTE_PROVIDER},
    {"POST", "/api/v2/oauth", fake_gigachat_oauth, ROUTE_PROVIDER},
    {"POST", "/api/v1/chat/completions", fake_gigachat_chat, ROUTE_PROVIDER},
    {"POST", "/api/v1/embeddings", fake_gigachat_embeddings, ROUTE_PROVIDER},
    {"GET", "/api/v1/models", fake_gigachat_models, ROUTE_PROVIDER},
    {"POST", "/foundationModels/v1/completion", fake_yandex_completion, ROUTE_PROVIDER},
    {"POST", "/foundationModels/v1/textEmbedding", fake_yandex_embedding, ROUTE_PROVIDER},
    {"GET", "/healthz", health, ROUTE_HEALTH},
    {"GET", "/_fake/mode", ctl_mode_get, ROUTE_CONTROL},
    {"POST", "/_fake/mode", ctl_mode_post, ROUTE_CONTROL},
    {"GET", "/_fake/stats", ctl_stats, ROUTE_CONTROL},
    {"GET", "/_fake/requests", ctl_requests, ROUTE_CONTROL},
    {"POST", "/_fake/reset", ctl_reset, ROUTE_CONTROL},
    {"POST", "/_fake/revoke_tokens", ctl_revoke_tokens, ROUTE_CONTROL},
};

/* ---- mode -------------------------------------------------------------------- */

void fake_opts_from_mode(fake_server *fs, fake_opts *o)
{
    *o = fs->mode.opts;
    if (fs->mode.opts.status && fs->mode.fail_remaining > 0 && --fs->mode.fail_remaining == 0)
        fs->mode.opts.status = 0;
}

static void mode_clear(fake_mode *m)
{
    fake_opts_clear(&m->opts);
    m->fail_remaining = 0;
}

static void append_mode(mk_buf *b, const fake_mode *m)
{
    const fake_opts *o = &m->opts;
    mk_buf_printf(b,
                  "{\"status\":%d,\"fail_next\":%d,\"latency_ms\":%d,\"ttft_ms\":%d,\"interval_ms\":%d,"
                  "\"trickle_ms\":%d,\"chunks\":%d,\"cut_after\":%d,\"retry_after\":%d,\"malformed\":%s,"
                  "\"hang\":%s,\"text\":",
                  o->status, o->status ? m->fail_remaining : 0, o->latency_ms, o->ttft_ms, o->interval_ms,
                  o->trickle_ms, o->chunks, o->cut_after, o->retry_after, o->malformed ? "true" : "false",
                  o->hang ? "true" : "false");
    mk_buf_append_json_string(b, o->text, strlen(o->text));
    mk_buf_append_char(b, '}');
}

static void reply_mode(fake_server *fs, mk_http_req *req)
{
    mk_buf b = MK_BUF_INIT;
    append_mode(&b, &fs->mode);
    fake_send_json(req, 200, b.data, b.len);
    mk_buf_release(&b);
}

static void ctl_mode_get(fake_server *fs, mk_http_req *req) { reply_mode(fs, req); }

static void ctl_error(mk_http_req *req, int status, const char *msg)
{
    mk_buf b = MK_BUF_INIT;
    mk_buf_append_str(&b, "{\"error\":");
    mk_buf_append_json_string(&b, msg, strlen(msg));
    mk_buf_append_char(&b, '}');
    fake_send_json(req, status, b.data, b.len);
    mk_buf_release(&b);
}

/* POST /_fake/mode merges the given keys into the mode; see README.md. The numeric
 * keys go through the directive parser so both ways accept the same ranges. */
static void ctl_mode_post(fake_server *fs, mk_http_req *req)
{
    json_object *body = fake_parse_json(req->body.ptr, req->body.len);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        ctl_error(req, 400, "body must be a JSON object");
        return;
    }
    fake_mode m = fs->mode;
    json_object *v;
    if (json_object_object_get_ex(body, "reset", &v) && json_object_get_boolean(v)) mode_clear(&m);
    bool has_status = false, has_fail = false;
    int fail_next = 0;
    char err[200] = "";
    json_object_object_foreach(body, key, val)
    {
        if (strcmp(key, "reset") == 0) continue;
        size_t klen = strlen(key);
        if (klen == 0 || klen > 40 || strspn(key, "abcdefghijklmnopqrstuvwxyz_") != klen) {
            snprintf(err, sizeof err, "unknown key");
            break;
        }
        if (strcmp(key, "fail_next") == 0) {
            int64_t k = json_object_is_type(val, json_type_int) ? json_object_get_int64(val) : -1;
            if (k < 0 || k > INT_MAX) {
                snprintf(err, sizeof err, "fail_next must be an integer >= 0");
                break;
            }
            fail_next = (int)k;
            has_fail = true;
            continue;
        }
        if (strcmp(key, "text") == 0) {
            const char *t = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : "";
            if (!json_object_is_type(val, json_type_null) && !json_object_is_type(val, json_type_string)) {
                snprintf(err, sizeof err, "text must be a string or null");
                break;
            }
            snprintf(m.opts.text, sizeof m.opts.text, "%s", t);
            continue;
        }
        char directive[160];
        if (json_object_is_type(val, json_type_null)) {
            /* null turns a key off */
            snprintf(directive, sizeof directive, "[[fake %s=%s]]", key,
                     strcmp(key, "cut_after") == 0 || strcmp(key, "retry_after") == 0 ? "-1" : "0");
        } else if (json_object_is_type(val, json_type_boolean)) {
            snprintf(directive, sizeof directive, "[[fake %s=%d]]", key, json_object_get_boolean(val) ? 1 : 0);
        } else if (json_object_is_type(val, json_type_int)) {
            int64_t x = json_object_get_int64(val);
            if ((strcmp(key, "cut_after") == 0 || strcmp(key, "retry_after") == 0) && x < 0) x = -1;
            snprintf(directive, sizeof directive, "[[fake %s=%lld]]", key, (long long)x);
        } else {
            snprintf(err, sizeof err, "'%s' must be an integer, a boolean or null", key);
            break;
        }
        if (fake_directive_apply(directive, strlen(directive), &m.opts, err, sizeof err)) break;
        if (strcmp(key, "status") == 0) has_status = true;
    }
    json_object_put(body);
    if (err[0]) {
        ctl_error(req, 400, err);
        return;
    }
    if (has_fail) m.fail_remaining = fail_next;
    else if (has_status) m.fail_remaining = -1;
    if (m.opts.status == 0 || m.fail_remaining == 0) {
        m.opts.status = 0;
        m.fail_remaining = 0;
    }
    fs->mode = m;
    reply_mode(fs, req);
}

/* ---- stats and the request ring ------------------------------------------------ */

static void count_path(fake_server *fs, mk_slice path)
{
    char key[128];
    if (path.len >= sizeof key) path.len = sizeof key - 1;
    memcpy(key, path.ptr, path.len);
    key[path.len] = '\0';
    json_object *v;
    if (!json_object_object_get_ex(fs->by_path, key, &v)) {
        if (fs->stat_paths >= FAKE_MAX_STAT_PATHS) {
            snprintf(key, sizeof key, "(other)");
            if (json_object_object_get_ex(fs->by_path, key, &v)) {
                json_object_int_inc(v, 1);
                return;
            }
        }
        fs->stat_paths++;
        json_object_object_add(fs->by_path, key, json_object_new_int64(1));
        return;
    }
    json_object_int_inc(v, 1);
}

static void ring_record(fake_server *fs, const mk_http_req *req)
{
    fake_ring_entry *e = &fs->ring[fs->ring_next];
    fs->ring_next = (fs->ring_next + 1) % FAKE_RING_SIZE;
    e->used = true;
    e->ts_ms = mk_wall_ms();
    e->method = req->method;
    e->nheaders = (uint32_t)req->nheaders;
    e->body_len = req->body.len;
    e->body_cut = req->body.len > FAKE_RING_MAX_BODY;
    memcpy(e->request_id, req->request_id, sizeof e->request_id);
    mk_buf_reset(&e->blob);
    mk_buf_append_slice(&e->blob, req->path);
    mk_buf_append_char(&e->blob, '\0');
    mk_buf_append_slice(&e->blob, req->query);
    mk_buf_append_char(&e->blob, '\0');
    for (size_t i = 0; i < req->nheaders; i++) {
        mk_buf_append_slice(&e->blob, req->headers[i].name);
        mk_buf_append_char(&e->blob, '\0');
        mk_buf_append_slice(&e->blob, req->headers[i].value);
        mk_buf_append_char(&e->blob, '\0');
    }
    mk_buf_append(&e->blob, req->body.ptr, e->body_cut ? FAKE_RING_MAX_BODY : req->body.len);
}

static void ctl_stats(fake_server *fs, mk_http_req *req)
{
    mk_buf b = MK_BUF_INIT;
    mk_buf_printf(&b, "{\"requests\":%llu,\"token_requests\":%llu,\"health_checks\":%llu,\"by_path\":%s,"
                      "\"inflight\":%zu,\"connections\":%zu}",
                  (unsigned long long)fs->requests, (unsigned long long)fs->token_requests,
                  (unsigned long long)fs->health_checks,
                  json_object_to_json_string_ext(fs->by_path, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                  mk_http_server_inflight(fs->http), mk_http_server_connections(fs->http));
    fake_send_json(req, 200, b.data, b.len);
    mk_buf_release(&b);
}

/* Value of `key` in a query string, percent-decoded into out. */
static bool query_param(mk_slice q, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key), i = 0;
    while (i < q.len) {
        size_t j = i;
        while (j < q.len && q.ptr[j] != '&') j++;
        if (j - i > klen && memcmp(q.ptr + i, key, klen) == 0 && q.ptr[i + klen] == '=') {
            size_t o = 0;
            for (size_t k = i + klen + 1; k < j && o + 1 < outlen; k++) {
                char c = q.ptr[k];
                if (c == '%' && k + 2 < j) {
                    char hex[3] = {q.ptr[k + 1], q.ptr[k + 2], '\0'};
                    char *end;
                    long x = strtol(hex, &end, 16);
                    if (*end == '\0') {
                        c = (char)x;
                        k += 2;
                    }
                } else if (c == '+') {
                    c = ' ';
                }
                out[o++] = c;
            }
            out[o] = '\0';
            return true;
        }
        i = j + 1;
    }
    return false;
}

static void append_entry(mk_buf *b, const fake_ring_entry *e)
{
    const char *p = e->blob.data, *end = e->blob.data + e->blob.len;
    const char *path = p;
    p += strlen(p) + 1;
    const char *query = p;
    p += strlen(p) + 1;
    mk_buf_printf(b, "{\"ts_ms\":%lld,\"request_id\":\"%s\",\"method\":\"%s\",\"path\":", (long long)e->ts_ms,
                  e->request_id, e->method);
    mk_buf_append_json_string(b, path, strlen(path));
    mk_buf_append_str(b, ",\"query\":");
    mk_buf_append_json_string(b, query, strlen(query));
    /* Names lowercased so tests need not guess the client's spelling; a repeated
     * header keeps its last value. */
    json_object *h = json_object_new_object();
    for (uint32_t i = 0; i < e->nheaders && p < end; i++) {
        char name[256];
        size_t nl = strlen(p);
        snprintf(name, sizeof name, "%s", p);
        for (char *c = name; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
        p += nl + 1;
        size_t vl = strlen(p);
        json_object_object_add(h, name, json_object_new_string_len(p, (int)vl));
        p += vl + 1;
    }
    mk_buf_append_str(b, ",\"headers\":");
    /* Header bytes may be any octets: go through mk_buf's escaper for valid JSON. */
    mk_buf_append_char(b, '{');
    bool first = true;
    json_object_object_foreach(h, k, v)
    {
        if (!first) mk_buf_append_char(b, ',');
        first = false;
        mk_buf_append_json_string(b, k, strlen(k));
        mk_buf_append_char(b, ':');
        mk_buf_append_json_string(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    }
    mk_buf_append_char(b, '}');
    json_object_put(h);
    mk_buf_append_str(b, ",\"body\":");
    mk_buf_append_json_string(b, p, (size_t)(end - p));
    mk_buf_printf(b, ",\"body_len\":%zu,\"body_truncated\":%s}", e->body_len, e->body_cut ? "true" : "false");
}

static void ctl_requests(fake_server *fs, mk_http_req *req)
{
    char tmp[512];
    long last = FAKE_RING_SIZE;
    if (query_param(req->query, "last", tmp, sizeof tmp)) {
        char *end;
        errno = 0;
        last = strtol(tmp, &end, 10);
        if (errno || *end || end == tmp || last < 0) {
            ctl_error(req, 400, "last must be an integer >= 0");
            return;
        }
        if (last > FAKE_RING_SIZE) last = FAKE_RING_SIZE;
    }
    char path[512];
    bool filter = query_param(req->query, "path", path, sizeof path);
    /* Newest first to pick the last N that match, then emitted oldest first. */
    size_t picked[FAKE_RING_SIZE], n = 0;
    for (size_t k = 1; k <= FAKE_RING_SIZE && n < (size_t)last; k++) {
        size_t i = (fs->ring_next + FAKE_RING_SIZE - k) % FAKE_RING_SIZE;
        const fake_ring_entry *e = &fs->ring[i];
        if (!e->used) break;
        if (filter && strcmp(e->blob.data, path) != 0) continue;
        picked[n++] = i;
    }
    mk_buf b = MK_BUF_INIT;
    mk_buf_append_char(&b, '[');
    for (size_t k = n; k-- > 0;) {
        append_entry(&b, &fs->ring[picked[k]]);
        if (k) mk_buf_append_char(&b, ',');
    }
    mk_buf_append_char(&b, ']');
    fake_send_json(req, 200, b.data, b.len);
    mk_buf_release(&b);
}

static void stats_clear(fake_server *fs)
{
    fs->requests = fs->token_requests = fs->health_checks = 0;
    json_object_put(fs->by_path);
    fs->by_path = json_object_new_object();
    fs->stat_paths = 0;
    for (size_t i = 0; i < FAKE_RING_SIZE; i++) {
        fs->ring[i].used = false;
        mk_buf_release(&fs->ring[i].blob);
    }
    fs->ring_next = 0;
}

static void ctl_reset(fake_server *fs, mk_http_req *req)
{
    stats_clear(fs);
    mode_clear(&fs->mode);
    fake_send_json(req, 200, "{\"ok\":true}", 11);
}

static void ctl_revoke_tokens(fake_server *fs, mk_http_req *req)
{
    fake_gigachat_tokens_release(fs);
    fake_send_json(req, 200, "{\"ok\":true}", 11);
}

/* /healthz shows the mode so Mayak's health checks see a "dead" deployment; it
 * never consumes fail_next. */
static void health(fake_server *fs, mk_http_req *req)
{
    fake_opts o = fs->mode.opts;
    if (o.status) {
        fake_plan p;
        fake_plan_init(&p, o.status, "application/json", false);
        mk_buf_append_str(&p.body, "{\"status\":\"unavailable\"}");
        o.malformed = false;
        o.cut_after = -1;
        fake_send(fs, req, &p, &o);
        return;
    }
    if (o.hang) {
        fake_plan p;
        fake_plan_init(&p, 200, "application/json", false);
        fake_send(fs, req, &p, &o);
        return;
    }
    fake_send_json(req, 200, "{\"status\":\"ok\"}", 15);
}

/* ---- dispatch ------------------------------------------------------------------ */

static void handle(mk_http_req *req, void *ctx)
{
    fake_server *fs = ctx;
    const struct route *found = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!mk_slice_eq_cstr(req->path, routes[i].path)) continue;
        path_known = true;
        if (strcmp(req->method, routes[i].method) == 0) {
            found = &routes[i];
            break;
        }
    }
    bool control = req->path.len >= 7 && memcmp(req->path.ptr, "/_fake/", 7) == 0;
    if (found && found->kind == ROUTE_HEALTH) {
        fs->health_checks++;
    } else if (!control) {
        fs->requests++;
        count_path(fs, req->path);
        ring_record(fs, req);
    }
    if (fs->verbose)
        mk_logf(MK_LOG_INFO, "fake_request", "%s %.*s (%zu bytes)", req->method, (int)req->path.len, req->path.ptr,
                req->body.len);
    if (found) {
        found->fn(fs, req);
        return;
    }
    enum fake_wire wire = FAKE_WIRE_OPENAI;
    if (req->path.len >= 5 && memcmp(req->path.ptr, "/api/", 5) == 0) wire = FAKE_WIRE_GIGACHAT;
    if (req->path.len >= 17 && memcmp(req->path.ptr, "/foundationModels", 17) == 0) wire = FAKE_WIRE_YANDEX;
    if (path_known) fake_send_error(fs, req, wire, 405, "method not allowed", NULL);
    else if (control) ctl_error(req, 404, "unknown control endpoint");
    else fake_send_error(fs, req, wire, 404, "no such endpoint in the fake provider", NULL);
}

/* ---- process ------------------------------------------------------------------- */

static void on_signal(uv_signal_t *s, int signum)
{
    fake_server *fs = s->data;
    mk_logf(MK_LOG_INFO, "fake_stop", "signal %d", signum);
    uv_signal_stop(&fs->sigterm);
    uv_signal_stop(&fs->sigint);
    uv_close((uv_handle_t *)&fs->sigterm, NULL);
    uv_close((uv_handle_t *)&fs->sigint, NULL);
    /* Aborts what is in flight (hung and paced replies finish through on_abort). */
    mk_http_server_free(fs->http);
    fs->http = NULL;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    /* rename: a test polling the file never reads half a number */
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mayak-fake-provider --port N [--host 127.0.0.1] [--port-file PATH] [--verbose]\n"
               "                           [--openai-key KEY] [--gigachat-token-ttl-ms MS]\n"
               "A scriptable fake of the OpenAI, GigaChat and YandexGPT APIs; see tests/fakes/README.md.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},
        {"port-file", required_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"openai-key", required_argument, NULL, 'k'},
        {"gigachat-token-ttl-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *port_file = NULL;
    long port = -1, ttl = 1800000;
    static fake_server fs_storage; /* large (the ring); static keeps it off the stack */
    fake_server *fs = &fs_storage;
    int c;
    while ((c = getopt_long(argc, argv, "p:H:f:vk:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_long(optarg, 0, 65535, &port)) {
                fprintf(stderr, "mayak-fake-provider: bad --port '%s'\n", optarg);
                return 2;
            }
            break;
        case 'H': host = optarg; break;
        case 'f': port_file = optarg; break;
        case 'v': fs->verbose = true; break;
        case 'k': fs->openai_key = optarg; break;
        case 't':
            if (parse_long(optarg, 1, 365L * 24 * 3600 * 1000, &ttl)) {
                fprintf(stderr, "mayak-fake-provider: bad --gigachat-token-ttl-ms '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (port < 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    fs->token_ttl_ms = ttl;
    if (mk_rand_init()) {
        fprintf(stderr, "mayak-fake-provider: no randomness\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    mode_clear(&fs->mode);
    fs->by_path = json_object_new_object();
    fs->tokens = json_object_new_object();
    fs->token_order = calloc(FAKE_MAX_TOKENS, sizeof *fs->token_order);
    if (!fs->by_path || !fs->tokens || !fs->token_order) return 1;

    uv_loop_t loop;
    uv_loop_init(&loop);
    fs->loop = &loop;
    struct mk_http_server_opts hopts = {.server_name = "mayak-fake-provider"};
    int rc = mk_http_server_new(&loop, &hopts, handle, fs, &fs->http);
    if (rc == 0) rc = mk_http_server_listen(fs->http, host, (int)port);
    if (rc) {
        fprintf(stderr, "mayak-fake-provider: cannot listen on %s:%ld: %s\n", host, port, mk_strerror(rc));
        mk_http_server_free(fs->http);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    int bound = mk_http_server_port(fs->http);
    if (port_file && write_port_file(port_file, bound)) {
        fprintf(stderr, "mayak-fake-provider: cannot write %s\n", port_file);
        mk_http_server_free(fs->http);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_init(&loop, &fs->sigterm);
    uv_signal_init(&loop, &fs->sigint);
    fs->sigterm.data = fs->sigint.data = fs;
    uv_signal_start(&fs->sigterm, on_signal, SIGTERM);
    uv_signal_start(&fs->sigint, on_signal, SIGINT);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", bound);
    mk_log(MK_LOG_INFO, "fake_listening", "host", host, "port", portstr, NULL);

    uv_run(&loop, UV_RUN_DEFAULT);

    stats_clear(fs);
    json_object_put(fs->by_path);
    fake_gigachat_tokens_release(fs);
    json_object_put(fs->tokens);
    free(fs->token_order);
    rc = uv_loop_close(&loop);
    if (rc) mk_logf(MK_LOG_WARN, "fake_loop_busy", "%s", uv_strerror(rc));
    return 0;
}
