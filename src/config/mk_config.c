/*
 * mk_config: loading entry points, the embedded defaults, freeing, and diagnostics.
 *
 * A load reads at most MK_MAX_CONFIG_BYTES, lets libfyaml build the document (its
 * syntax errors are collected, not printed, and keep their line:column), walks the
 * tree (mk_config_parse.c) and cross-checks it (mk_config_check.c). The resulting
 * mk_config owns plain malloc'd copies of everything; the YAML document is gone by
 * the time the caller sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/mk_config_int.h"
#include "core/mk_error.h"
#include "core/mk_limits.h"
#include "core/mk_utf8.h"

const char *const cfg_provider_type_names[] = {"openai", "gigachat", "yandexgpt", "local", NULL};
const char *const cfg_policy_names[] = {"priority", "weighted", "round_robin", "least_latency", "least_cost", NULL};

#define EMBEDDED_SOURCE "<embedded defaults>"

const char *mk_provider_type_name(enum mk_provider_type t)
{
    return (unsigned)t <= MK_PROVIDER_LOCAL ? cfg_provider_type_names[t] : "unknown";
}

const char *mk_route_policy_name(enum mk_route_policy p)
{
    return (unsigned)p <= MK_POLICY_LEAST_COST ? cfg_policy_names[p] : "unknown";
}

int mk_provider_type_parse(const char *s)
{
    for (int i = 0; s && cfg_provider_type_names[i]; i++)
        if (!strcmp(s, cfg_provider_type_names[i])) return i;
    return MK_EINVAL;
}

int mk_route_policy_parse(const char *s)
{
    for (int i = 0; s && cfg_policy_names[i]; i++)
        if (!strcmp(s, cfg_policy_names[i])) return i;
    return MK_EINVAL;
}

/* ---- helpers shared by the loader's files ------------------------------------------ */

char *cfg_strdup(struct cfg_ctx *c, const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) c->nomem = true;
    return d;
}

static bool diag_push(struct mk_config_diags *d, const char *file, struct cfg_loc at, const char *msg,
                      bool warning)
{
    struct mk_config_diag *items = realloc(d->items, (d->count + 1) * sizeof *items);
    if (!items) return false;
    d->items = items;
    struct mk_config_diag *e = &items[d->count];
    e->file = strdup(file);
    e->message = strdup(msg);
    e->line = at.line > 0 ? at.line : 0;
    e->column = at.line > 0 && at.column > 0 ? at.column : 0;
    e->warning = warning;
    if (!e->file || !e->message) {
        free(e->file);
        free(e->message);
        return false;
    }
    d->count++;
    return true;
}

void cfg_report(struct cfg_ctx *c, bool warning, struct cfg_loc at, const char *fmt, ...)
{
    if (!warning) c->nerrors++;
    if (c->diags_full) return;
    if (c->diags->count >= CFG_MAX_DIAGS) {
        c->diags_full = true;
        struct cfg_loc none = {0, 0};
        if (!diag_push(c->diags, c->file, none, "too many problems; the rest are not listed", false))
            c->nomem = true;
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!diag_push(c->diags, c->file, at, msg, warning)) c->nomem = true;
}

size_t cfg_edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN) return SIZE_MAX;
    size_t prev[MAXLEN + 1], cur[MAXLEN + 1];
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

const char *cfg_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = 3, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (!cands[i]) continue;
        size_t d = cfg_edit_distance(word, cands[i]);
        /* A distance as long as the word itself ("ab" -> "api") is no hint at all. */
        if (d < bestd && d < wl) {
            bestd = d;
            best = cands[i];
        }
    }
    return best;
}

void cfg_quote(const char *s, size_t len, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;
    if (outsz == 0) return;
    while (i < len) {
        unsigned char ch = (unsigned char)s[i];
        size_t need = 1, take = 1;
        char tmp[4];
        const char *src = s + i;
        if (ch < 0x20 || ch == 0x7f || ch == '\'') {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[ch >> 4];
            tmp[3] = hex[ch & 15];
            src = tmp;
            need = 4;
        } else if (ch >= 0x80) {
            size_t seq = ch >= 0xc2 && ch <= 0xdf ? 2 : ch >= 0xe0 && ch <= 0xef ? 3 : ch >= 0xf0 && ch <= 0xf4 ? 4 : 0;
            if (seq && seq <= len - i && mk_utf8_valid(s + i, seq)) {
                take = need = seq; /* a whole character: keep it as it is */
            } else {
                tmp[0] = '\\';
                tmp[1] = 'x';
                tmp[2] = hex[ch >> 4];
                tmp[3] = hex[ch & 15];
                src = tmp;
                need = 4;
            }
        }
        if (o + need + 4 > outsz) { /* room for "..." and NUL */
            if (o + 4 <= outsz) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, src, need);
        o += need;
        i += take;
    }
    out[o < outsz ? o : outsz - 1] = '\0';
}

void cfg_free_strv(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void cfg_free_provider(struct mk_provider_config *p)
{
    if (!p) return;
    free(p->name);
    free(p->base_url);
    free(p->api_key);
    free(p->iam_token);
    free(p->folder_id);
    free(p->auth_url);
    free(p->credentials);
    free(p->scope);
    free(p->ca_file);
    cfg_free_strv(p->tags, p->ntags);
    cfg_free_strv(p->headers, p->nheaders);
    free(p->health_path);
}

void cfg_free_group(struct mk_model_group_config *g)
{
    if (!g) return;
    free(g->name);
    for (size_t i = 0; i < g->ndeployments; i++) {
        free(g->deployments[i].provider);
        free(g->deployments[i].model);
        cfg_free_strv(g->deployments[i].tags, g->deployments[i].ntags);
    }
    free(g->deployments);
    cfg_free_strv(g->require_tags, g->nrequire_tags);
    cfg_free_strv(g->aliases, g->naliases);
}

void cfg_group_defaults(struct mk_model_group_config *g)
{
    g->policy = MK_POLICY_PRIORITY;
    g->timeouts = (struct mk_timeouts){MK_DEFAULT_CONNECT_TIMEOUT_MS, MK_DEFAULT_FIRST_TOKEN_TIMEOUT_MS,
                                       MK_DEFAULT_CHUNK_GAP_TIMEOUT_MS, MK_DEFAULT_TOTAL_TIMEOUT_MS};
    g->retry = (struct mk_retry_config){.max_attempts = 3, .backoff_base_ms = 25, .backoff_max_ms = 1000,
                                        .budget_ratio = 0.2, .budget_min_per_s = 10};
    g->breaker = (struct mk_breaker_config){.consecutive_failures = 5, .error_rate = 0.5, .min_requests = 20,
                                            .window_ms = 10000, .open_ms = 5000, .half_open_probes = 2};
    g->health = (struct mk_health_config){.enabled = true, .interval_ms = 10000, .timeout_ms = 2000};
}

int cfg_add_local_provider(struct mk_config *cfg)
{
    struct mk_provider_config *p = realloc(cfg->providers, (cfg->nproviders + 1) * sizeof *p);
    if (!p) return MK_ENOMEM;
    cfg->providers = p;
    p = &cfg->providers[cfg->nproviders];
    memset(p, 0, sizeof *p);
    p->type = MK_PROVIDER_LOCAL;
    if (!(p->name = strdup("local"))) return MK_ENOMEM;
    cfg->nproviders++;
    return 0;
}

int cfg_add_local_group(struct mk_config *cfg)
{
    struct mk_model_group_config *g = realloc(cfg->model_groups, (cfg->nmodel_groups + 1) * sizeof *g);
    if (!g) return MK_ENOMEM;
    cfg->model_groups = g;
    g = &cfg->model_groups[cfg->nmodel_groups];
    memset(g, 0, sizeof *g);
    cfg_group_defaults(g);
    cfg->nmodel_groups++; /* counted now so that mk_config_free sees what is allocated */
    g->name = strdup("mayak-local");
    g->aliases = calloc(1, sizeof *g->aliases);
    g->deployments = calloc(1, sizeof *g->deployments);
    if (!g->name || !g->aliases || !g->deployments) return MK_ENOMEM;
    if (!(g->aliases[0] = strdup("default"))) return MK_ENOMEM;
    g->naliases = 1;
    struct mk_deployment_config *d = &g->deployments[0];
    g->ndeployments = 1;
    d->weight = 1;
    d->priority = 0;
    d->provider = strdup("local");
    d->model = strdup("mayak-local");
    if (!d->provider || !d->model) return MK_ENOMEM;
    return 0;
}

/* The top-level defaults, no providers or groups yet. */
static struct mk_config *config_new(const char *source)
{
    struct mk_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return NULL;
    cfg->source = strdup(source);
    cfg->listen_host = strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->data_dir = strdup("./mayak-data");
    cfg->log_level = strdup("info");
    cfg->access_log = true;
    cfg->drain_timeout_ms = MK_DEFAULT_DRAIN_TIMEOUT_MS;
    cfg->workers = 1;
    cfg->audit.enabled = true;
    cfg->auth.jwt.clock_skew_s = 60;
    cfg->memory.session_ttl_s = 3600;
    cfg->memory.sync_ms = 1000;
    cfg->memory.retention_days = 30;
    cfg->memory.retention = (struct mk_memory_retention_config){-1, -1, -1, -1, -1};
    cfg->desk.analytics_refresh_ms = 5000;
    if (!cfg->source || !cfg->listen_host || !cfg->data_dir || !cfg->log_level) {
        mk_config_free(cfg);
        return NULL;
    }
    return cfg;
}

struct mk_config *mk_config_default(void)
{
    struct mk_config *cfg = config_new(EMBEDDED_SOURCE);
    if (!cfg) return NULL;
    if (cfg_add_local_provider(cfg) || cfg_add_local_group(cfg) ||
        !(cfg->default_model_group = strdup("mayak-local"))) {
        mk_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void mk_config_free(struct mk_config *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->nproviders; i++) cfg_free_provider(&cfg->providers[i]);
    free(cfg->providers);
    for (size_t i = 0; i < cfg->nmodel_groups; i++) cfg_free_group(&cfg->model_groups[i]);
    free(cfg->model_groups);
    free(cfg->source);
    free(cfg->listen_host);
    free(cfg->data_dir);
    free(cfg->log_level);
    free(cfg->default_model_group);
    free(cfg->store_url);
    free(cfg->kv_url);
    free(cfg->auth.jwt.issuer);
    free(cfg->auth.jwt.audience);
    free(cfg->auth.jwt.jwks_file);
    free(cfg->auth.jwt.jwks_url);
    free(cfg->auth.jwt.tenant_claim);
    free(cfg->auth.jwt.role_claim);
    free(cfg->audit.hash);
    free(cfg->audit.chain);
    free(cfg->guard.injection);
    free(cfg->guard.pii);
    free(cfg->guard.jurisdiction);
    cfg_free_strv(cfg->guard.output_block, cfg->guard.noutput_block);
    cfg_free_strv(cfg->guard.output_patterns, cfg->guard.noutput_patterns);
    for (size_t i = 0; i < cfg->nagents; i++) {
        struct mk_agent_config *a = &cfg->agents[i];
        free(a->id);
        free(a->name);
        free(a->description);
        cfg_free_strv(a->knowledge, a->nknowledge);
        free(a->instructions);
        free(a->model_group);
        cfg_free_strv(a->examples, a->nexamples);
    }
    free(cfg->agents);
    free(cfg->bus.url);
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        struct mk_webhook_config *w = &cfg->webhooks[i];
        free(w->name);
        free(w->url);
        free(w->secret);
        cfg_free_strv(w->events, w->nevents);
    }
    free(cfg->webhooks);
    free(cfg);
}

/* ---- loading ------------------------------------------------------------------------ */

static void fy_sink(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    /* Collect mode keeps errors for us; anything else libfyaml would print is dropped
     * so a library never writes to our stderr. */
    (void)diag, (void)user, (void)buf, (void)len;
}

static struct cfg_loc root_loc(struct fy_document *fyd)
{
    struct cfg_loc l = {0, 0};
    struct fy_node *n = fyd ? fy_document_root(fyd) : NULL;
    for (int i = 0; n && i < 8; i++) {
        void *it = NULL;
        if (fy_node_is_scalar(n)) {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (m) {
                l.line = m->line + 1;
                l.column = m->column + 1;
            }
            break;
        }
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
        } else {
            n = fy_node_sequence_iterate(n, &it);
        }
    }
    return l;
}

/* YAML is Unicode text; rejecting bad UTF-8 up front keeps libfyaml 0.7 away from
 * inputs it mishandles (a truncated sequence after '%' makes it loop forever). */
static bool check_utf8(struct cfg_ctx *c, const char *yaml, size_t len)
{
    struct cfg_loc at = {1, 1};
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)yaml[i];
        size_t n = ch < 0x80 ? 1 : mk_utf8_valid_prefix(yaml + i, len - i);
        if (n == 0) {
            cfg_error(c, at, "the file is not valid UTF-8 (byte 0x%02x)", ch);
            return false;
        }
        if (ch == '\n') {
            at.line++;
            at.column = 1;
        } else {
            at.column++; /* characters, not bytes */
        }
        i += n;
    }
    return true;
}

/* Runs libfyaml over the text, then walks and checks the document. */
static void parse_and_walk(struct cfg_ctx *c, const char *yaml, size_t len)
{
    if (len && !check_utf8(c, yaml, len)) return;
    struct fy_diag_cfg dc;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = fy_sink;
    dc.user = NULL;
    dc.level = FYET_WARNING;
    dc.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dc);
    if (!diag) {
        c->nomem = true;
        return;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pc = {.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE, .diag = diag};
    struct fy_parser *fyp = fy_parser_create(&pc);
    if (!fyp) {
        fy_diag_destroy(diag);
        c->nomem = true;
        return;
    }
    struct fy_document *fyd = NULL;
    if (fy_parser_set_string(fyp, len ? yaml : "", len) == 0) {
        fyd = fy_parse_load_document(fyp);
        if (fyd) {
            struct fy_document *extra = fy_parse_load_document(fyp);
            if (extra) {
                cfg_error(c, root_loc(extra),
                          "only one YAML document is allowed; remove the second one (after '---')");
                fy_parse_document_destroy(fyp, extra);
            }
        }
    } else {
        c->nomem = true;
    }
    bool syntax = false;
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (e->type < FYET_WARNING) continue;
        struct cfg_loc at = {e->line > 0 ? e->line : 0, e->column > 0 ? e->column : 0}; /* already 1-based */
        char q[300];
        cfg_quote(e->msg ? e->msg : "syntax error", strlen(e->msg ? e->msg : "syntax error"), q, sizeof q);
        if (e->type == FYET_WARNING) {
            cfg_warn(c, at, "YAML: %s", q);
        } else {
            cfg_error(c, at, "YAML syntax error: %s", q);
            syntax = true;
        }
    }
    if (fyd && !syntax) {
        cfg_parse_root(c, fy_document_root(fyd));
        cfg_check(c);
    } else if (!fyd && !syntax && !c->nomem) {
        cfg_check(c); /* an empty file: the defaults, embedded group included */
    }
    if (fyd) fy_parse_document_destroy(fyp, fyd);
    fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
}

static void ctx_release(struct cfg_ctx *c)
{
    free(c->provider_name);
    if (c->groups) {
        for (size_t i = 0; i < c->ngroup_marks; i++) {
            free(c->groups[i].aliases);
            free(c->groups[i].dep_provider);
        }
        free(c->groups);
    }
}

static int load(const char *name, const char *yaml, size_t len, struct mk_config **out,
                struct mk_config_diags *diags)
{
    struct mk_config_diags local = {0};
    struct cfg_ctx c = {0};
    c.file = name ? name : "<config>";
    c.diags = diags ? diags : &local;
    c.budget = CFG_MAX_NODES;
    c.src = yaml;
    c.srclen = len;
    if (out) *out = NULL;
    int rc = 0;
    if (len > MK_MAX_CONFIG_BYTES) {
        struct cfg_loc none = {0, 0};
        cfg_error(&c, none, "the configuration is %zu bytes; the limit is %d", len, MK_MAX_CONFIG_BYTES);
        rc = MK_ETOOBIG;
    } else if (!(c.cfg = config_new(c.file))) {
        rc = MK_ENOMEM;
    } else {
        parse_and_walk(&c, yaml, len);
        rc = c.nomem ? MK_ENOMEM : c.nerrors ? MK_ECONFIG : 0;
    }
    ctx_release(&c);
    if (rc == 0 && out) *out = c.cfg;
    else mk_config_free(c.cfg);
    if (!diags) mk_config_diags_release(&local);
    return rc;
}

int mk_config_load_string(const char *name, const char *yaml, size_t len, struct mk_config **out,
                          struct mk_config_diags *diags)
{
    if (!yaml && len) return MK_EINVAL;
    return load(name, yaml, len, out, diags);
}

/* Reads a whole file, refusing more than MK_MAX_CONFIG_BYTES even if the file grows
 * while we read (or is a pipe that never ends). */
static int read_file(const char *path, char **data, size_t *len, int *err)
{
    *data = NULL;
    *len = 0;
    *err = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return MK_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        *err = errno;
    else if (S_ISDIR(st.st_mode))
        *err = EISDIR;
    if (*err) {
        close(fd);
        return MK_EIO;
    }
    /* Pipes and devices are read too (`--config /dev/stdin`); the cap below still holds. */
    if (S_ISREG(st.st_mode) && st.st_size > MK_MAX_CONFIG_BYTES) {
        close(fd);
        *len = (size_t)st.st_size;
        return MK_ETOOBIG;
    }
    size_t cap = (S_ISREG(st.st_mode) ? (size_t)st.st_size : 4096) + 1, used = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return MK_ENOMEM;
    }
    for (;;) {
        if (used == cap) {
            if (cap > MK_MAX_CONFIG_BYTES) {
                free(buf);
                close(fd);
                *len = used;
                return MK_ETOOBIG;
            }
            size_t ncap = cap * 2 > (size_t)MK_MAX_CONFIG_BYTES + 1 ? (size_t)MK_MAX_CONFIG_BYTES + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return MK_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *err = errno;
            free(buf);
            close(fd);
            return MK_EIO;
        }
        if (n == 0) break;
        used += (size_t)n;
    }
    close(fd);
    if (used > MK_MAX_CONFIG_BYTES) {
        free(buf);
        *len = used;
        return MK_ETOOBIG;
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    return 0;
}

int mk_config_load(const char *path, struct mk_config **out, struct mk_config_diags *diags)
{
    if (out) *out = NULL;
    if (!path) return MK_EINVAL;
    char *data;
    size_t len;
    int err;
    int rc = read_file(path, &data, &len, &err);
    if (rc) {
        if (diags) {
            struct cfg_ctx c = {.file = path, .diags = diags};
            struct cfg_loc none = {0, 0};
            if (rc == MK_ETOOBIG)
                cfg_error(&c, none, "the file is larger than the limit of %d bytes", MK_MAX_CONFIG_BYTES);
            else if (rc == MK_EIO)
                cfg_error(&c, none, "cannot read the file: %s", strerror(err ? err : EIO));
            else
                cfg_error(&c, none, "%s", mk_strerror(rc));
            if (c.nomem) rc = MK_ENOMEM;
        }
        return rc;
    }
    rc = load(path, data, len, out, diags);
    free(data);
    return rc;
}

/* ---- diagnostics and lookups --------------------------------------------------------- */

void mk_config_diags_release(struct mk_config_diags *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].message);
    }
    free(d->items);
    d->items = NULL;
    d->count = 0;
}

bool mk_config_diags_has_errors(const struct mk_config_diags *d)
{
    for (size_t i = 0; d && i < d->count; i++)
        if (!d->items[i].warning) return true;
    return false;
}

int mk_config_diags_format(const struct mk_config_diags *d, mk_buf *out)
{
    int rc = 0;
    for (size_t i = 0; d && i < d->count && rc == 0; i++) {
        const struct mk_config_diag *e = &d->items[i];
        const char *file = e->file ? e->file : "<config>";
        const char *w = e->warning ? "warning: " : "";
        if (e->line > 0 && e->column > 0)
            rc = mk_buf_printf(out, "%s:%d:%d: %s%s\n", file, e->line, e->column, w, e->message);
        else if (e->line > 0)
            rc = mk_buf_printf(out, "%s:%d: %s%s\n", file, e->line, w, e->message);
        else
            rc = mk_buf_printf(out, "%s: %s%s\n", file, w, e->message);
    }
    return rc;
}

const struct mk_provider_config *mk_config_find_provider(const struct mk_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->nproviders; i++)
        if (cfg->providers[i].name && !strcmp(cfg->providers[i].name, name)) return &cfg->providers[i];
    return NULL;
}

const struct mk_model_group_config *mk_config_find_group(const struct mk_config *cfg, const char *model)
{
    if (!cfg || !model) return NULL;
    for (size_t i = 0; i < cfg->nmodel_groups; i++)
        if (cfg->model_groups[i].name && !strcmp(cfg->model_groups[i].name, model)) return &cfg->model_groups[i];
    for (size_t i = 0; i < cfg->nmodel_groups; i++) {
        const struct mk_model_group_config *g = &cfg->model_groups[i];
        for (size_t j = 0; j < g->naliases; j++)
            if (!strcmp(g->aliases[j], model)) return g;
    }
    return NULL;
}
