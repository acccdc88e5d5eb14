/*
 * ask: `mayak ask` — answers questions as the support desk would, from the command
 * line: one QUESTION from the arguments, or one per line from standard input (one
 * JSON line each), with the agents, classifier and knowledge base loaded once.
 *
 * Two ways to answer, chosen by the config, so the command line matches the running
 * desk:
 *  - the config declares an LLM provider (any type but "local"): the answer is the
 *    LLM's, through Mayak's own pipeline (cache, guards, router, audit, metrics) with
 *    the agent's instructions, the conversation and the retrieved passages spotlighted
 *    as untrusted data (src/api/ask_llm.c runs it; a failed call escalates with
 *    reason llm_error);
 *  - otherwise (or with --no-llm): the local responder composes it from the best
 *    passage, offline.
 * Either way the JSON has the same fields, plus "llm": whether the answer request went
 * to the LLM.
 *
 * Knowledge: the documents `mayak kb add` persisted in the store (store.url, else
 * <data_dir>/mayak.db), loaded the way the server loads them; when the store has none,
 * the embedded demo set. --kb files join them in memory only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/mk_api.h"
#include "config/mk_config.h"
#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_utf8.h"
#include "desk/mk_desk.h"
#include "kb/mk_kb_store.h"
#include "mk_cli.h"
#include "store/mk_store.h"

#define MAX_KB_FILES 16

static const char usage[] =
    "usage: mayak ask [QUESTION...] [--json] [--config FILE] [--kb FILE.jsonl]... [--no-demo] [--no-llm]\n"
    "  Answers QUESTION as the support desk would (agent, confidence, answer, citations,\n"
    "  escalation). With no QUESTION, reads one question per line from standard input and\n"
    "  prints one JSON line per question.\n"
    "  --json         print JSON: {agent, confidence, answer, citations, escalate, reason, llm, ...}\n"
    "  --config FILE  agents from FILE's agents: section; when FILE declares an LLM provider,\n"
    "                 the LLM answers through Mayak's pipeline (router, guards, cache, audit)\n"
    "  --kb FILE      add documents from a JSON-lines file: {id, lang, text, title?, source?, agent?}\n"
    "  --no-demo      do not load the demo knowledge base\n"
    "  --no-llm       answer with the local responder even when providers are configured\n"
    "  Documents added with `mayak kb add` (in the store under data_dir, or store.url) are\n"
    "  searched when there are any; otherwise the demo knowledge base is.\n";

/* Invalid UTF-8 bytes and control characters other than tab become spaces. */
static void clean_text(char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t ok = mk_utf8_valid_prefix(s + i, len - i);
        if (ok == 0) {
            s[i++] = ' ';
            continue;
        }
        for (size_t j = i; j < i + ok; j++)
            if ((unsigned char)s[j] < 0x20 && s[j] != '\t') s[j] = ' ';
        i += ok;
    }
}

static const char *str_field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                           : NULL;
}

/* Adds each line {id, lang, text, title?, source?, agent?} of path as a document. */
static int load_jsonl(mk_kb *kb, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mayak ask: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0) continue;
        json_object *o = json_tokener_parse(line);
        const char *id = o ? str_field(o, "id") : NULL, *lang = o ? str_field(o, "lang") : NULL,
                   *text = o ? str_field(o, "text") : NULL;
        if (!id || !lang || !text) {
            fprintf(stderr, "mayak ask: %s:%zu: expected a JSON object with string id, lang and text\n", path, lineno);
            json_object_put(o);
            status = 1;
            break;
        }
        struct mk_kb_doc doc = {
            .id = id, .lang = lang, .title = str_field(o, "title"), .text = text,
            .text_len = strlen(text), .source = str_field(o, "source"), .agent = str_field(o, "agent"),
        };
        int rc = mk_kb_add_document(kb, &doc);
        json_object_put(o);
        if (rc) {
            fprintf(stderr, "mayak ask: %s:%zu: cannot add document '%s': %s\n", path, lineno, id, mk_strerror(rc));
            status = 1;
            break;
        }
    }
    free(line);
    fclose(f);
    return status;
}

/* Opens the store the server uses and loads its knowledge base into *lib (*store and
 * *lib stay NULL when there is no store yet: a missing SQLite file is not created just
 * to find it empty). Returns 0, or 1 after printing why the store could not be read. */
static int open_stored(const struct mk_config *cfg, const char *data_dir, struct mk_store **store,
                       struct mk_kb_lib **lib)
{
    mk_buf url = MK_BUF_INIT, err = MK_BUF_INIT;
    if (cfg && cfg->store_url && *cfg->store_url) {
        mk_buf_append_str(&url, cfg->store_url);
    } else if (data_dir && *data_dir) {
        mk_buf_printf(&url, "%s/mayak.db", data_dir);
        struct stat st;
        if (url.data && stat(url.data, &st) != 0) {
            mk_buf_release(&url);
            return 0;
        }
    } else {
        return 0;
    }
    int rc = url.data ? mk_store_open(url.data, NULL, store, &err) : MK_ENOMEM;
    struct mk_kb_lib_options lo = {.load = true};
    if (rc == 0) rc = mk_kb_lib_open(*store, &lo, lib, &err);
    if (rc) {
        fprintf(stderr, "mayak ask: cannot load the knowledge base from the store: %s%s%s\n", mk_strerror(rc),
                err.data ? ": " : "", err.data ? err.data : "");
        mk_kb_lib_free(*lib);
        *lib = NULL;
        mk_store_free(*store);
        *store = NULL;
    }
    mk_buf_release(&url);
    mk_buf_release(&err);
    return rc ? 1 : 0;
}

/* Whether cfg names an LLM: any provider but the local (knowledge-base) one. The
 * server's desk decides the same way (desk_service.c). */
static bool has_llm(const struct mk_config *cfg)
{
    for (size_t i = 0; cfg && i < cfg->nproviders; i++)
        if (cfg->providers[i].type != MK_PROVIDER_LOCAL) return true;
    return false;
}

/* One run's answering state. */
struct asking {
    const mk_desk *desk;
    mk_api_asker *asker;   /* NULL: the local responder */
    bool json;
    mk_buf out;
    int status;            /* 0, or 1 once an answer could not be printed */
};

/* The reply as JSON (mk_desk_reply_json plus "llm") or as text; to stdout. An LLM
 * request was built for the reply exactly when it names a model group (answer.c), and
 * the asker always runs the request it built. */
static void print_reply(const struct mk_desk_reply *r, void *arg)
{
    struct asking *a = arg;
    bool llm = r->model_group != NULL;
    mk_buf *out = &a->out;
    mk_buf_reset(out);
    int rc;
    if (a->json) {
        rc = mk_desk_reply_json(r, out);
        /* One more member: the object's closing brace gives way to it. */
        if (rc == 0 && (out->len == 0 || out->data[out->len - 1] != '}')) rc = MK_EINTERNAL;
        if (rc == 0) {
            out->len--;
            rc = mk_buf_printf(out, ",\"llm\":%s}", llm ? "true" : "false");
        }
    } else {
        rc = mk_buf_printf(out, "%s\n\n[agent: %s, confidence %.2f", r->answer ? r->answer : "", r->agent,
                           r->confidence);
        if (rc == 0 && llm) rc = mk_buf_printf(out, ", answered by the LLM (model group %s)", r->model_group);
        if (rc == 0 && r->escalate) rc = mk_buf_printf(out, ", escalates to a human: %s", mk_desk_reason_name(r->reason));
        if (rc == 0) rc = mk_buf_append_char(out, ']');
    }
    if (rc) {
        fprintf(stderr, "mayak ask: %s\n", mk_strerror(rc));
        a->status = 1;
        return;
    }
    fwrite(out->data, 1, out->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static int answer_one(struct asking *a, char *q)
{
    clean_text(q, strlen(q));
    int rc;
    if (a->asker) {
        rc = mk_api_asker_answer(a->asker, a->desk, q, NULL, print_reply, a);
    } else {
        struct mk_desk_reply r;
        rc = mk_desk_respond(a->desk, q, NULL, NULL, &r);
        if (rc == 0) {
            print_reply(&r, a);
            mk_desk_reply_release(&r);
        }
    }
    if (rc) {
        fprintf(stderr, "mayak ask: %s\n", mk_strerror(rc));
        return 1;
    }
    return a->status;
}

/* Answers each non-blank line of standard input as JSON, in order. */
static int answer_lines(struct asking *a)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while (status == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        size_t lead = strspn(line, " \t");
        if (line[lead] == '\0') continue;
        if ((size_t)n > MK_DESK_MAX_MESSAGE_BYTES) line[mk_utf8_complete_prefix(line, MK_DESK_MAX_MESSAGE_BYTES)] = '\0';
        status = answer_one(a, line + lead);
    }
    free(line);
    return status;
}

static struct mk_config *load_config(const char *path)
{
    struct mk_config *cfg = NULL;
    struct mk_config_diags diags = {0};
    int rc = mk_config_load(path, &cfg, &diags);
    if (rc != 0) {
        mk_buf text = MK_BUF_INIT;
        mk_config_diags_format(&diags, &text);
        fprintf(stderr, "%s", text.data ? text.data : "");
        if (!diags.count) fprintf(stderr, "mayak ask: %s: %s\n", path, mk_strerror(rc));
        mk_buf_release(&text);
        cfg = NULL;
    }
    mk_config_diags_release(&diags);
    return cfg;
}

/* The pipeline logs to stderr, where a command line wants warnings and errors only:
 * the config's "info" (its default) becomes "warn"; "debug", "error" and "off" stay. */
static void quiet_logs(const struct mk_config *cfg)
{
    int level = cfg->log_level ? mk_log_level_parse(cfg->log_level) : -1;
    if (level < 0 || level == MK_LOG_INFO) level = MK_LOG_WARN;
    mk_log_set_level((enum mk_log_level)level);
}

struct ask_opts {
    bool json, demo, llm;
    const char *config_path;
    const char *kb_files[MAX_KB_FILES];
    size_t nkb;
    mk_buf question;
};

/* 0 to go on, else the exit status (2 usage, 1 failure, -1 help printed: exit 0). */
static int parse_args(int argc, char **argv, struct ask_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--no-demo") == 0) {
            o->demo = false;
        } else if (strcmp(a, "--no-llm") == 0) {
            o->llm = false;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return -1;
        } else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0 || strcmp(a, "--kb") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mayak ask: %s needs a file name\n%s", a, usage);
                return 2;
            }
            if (strcmp(a, "--kb") != 0) {
                o->config_path = argv[++i];
            } else if (o->nkb < MAX_KB_FILES) {
                o->kb_files[o->nkb++] = argv[++i];
            } else {
                fprintf(stderr, "mayak ask: at most %d --kb files\n", MAX_KB_FILES);
                return 2;
            }
        } else if (strncmp(a, "--config=", 9) == 0) {
            o->config_path = a + 9;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "mayak ask: unknown option '%s'\n%s", a, usage);
            return 2;
        } else if ((o->question.len && mk_buf_append_char(&o->question, ' ')) || mk_buf_append_str(&o->question, a)) {
            fprintf(stderr, "mayak ask: out of memory\n");
            return 1;
        }
    }
    return 0;
}

int mk_cli_ask_main(int argc, char **argv, const char *data_dir)
{
    struct ask_opts o = {.demo = true, .llm = true, .question = MK_BUF_INIT};
    int status = parse_args(argc, argv, &o);
    if (status != 0) {
        mk_buf_release(&o.question);
        return status < 0 ? 0 : status;
    }
    mk_rand_init();
    struct mk_config *cfg = NULL;
    if (o.config_path && !(cfg = load_config(o.config_path))) {
        mk_buf_release(&o.question);
        return 1;
    }
    if (cfg) quiet_logs(cfg);
    bool use_llm = o.llm && has_llm(cfg);
    mk_kb *kb = NULL;        /* owned: the demo and/or --kb files */
    mk_kb *use = NULL;       /* what the desk searches (NULL = its own demo set) */
    mk_desk *d = NULL;
    struct mk_store *store = NULL;
    struct mk_kb_lib *lib = NULL;
    status = open_stored(cfg, data_dir, &store, &lib);
    mk_kb *stored = lib ? mk_kb_lib_kb(lib) : NULL;
    if (status == 0 && stored && mk_kb_document_count(stored) > 0) {
        /* The store's documents replace the demo; --kb files join them in memory only. */
        use = stored;
        for (size_t i = 0; i < o.nkb && status == 0; i++) status = load_jsonl(stored, o.kb_files[i]);
    } else if (status == 0 && (!o.demo || o.nkb)) {
        kb = mk_kb_new();
        if (!kb) status = 1;
        if (status == 0 && o.demo) {
            int rc = mk_kb_load_demo(kb);
            if (rc) {
                fprintf(stderr, "mayak ask: cannot load the demo knowledge base: %s\n", mk_strerror(rc));
                status = 1;
            }
        }
        for (size_t i = 0; i < o.nkb && status == 0; i++) status = load_jsonl(kb, o.kb_files[i]);
        use = kb;
    }
    if (status == 0) {
        struct mk_desk_options dopt = {.config = cfg, .kb = use, .use_llm = use_llm};
        int rc = mk_desk_new(&dopt, &d);
        if (rc) {
            fprintf(stderr, "mayak ask: cannot start the desk: %s\n", mk_strerror(rc));
            status = 1;
        }
    }
    struct asking a = {.desk = d, .json = o.json, .out = MK_BUF_INIT};
    if (status == 0 && use_llm) {
        mk_buf why = MK_BUF_INIT;
        int rc = mk_api_asker_open(cfg, &a.asker, &why); /* takes cfg */
        cfg = NULL;
        if (rc) {
            fprintf(stderr, "mayak ask: cannot reach the LLM through the pipeline: %s%s%s\n", mk_strerror(rc),
                    why.len ? ": " : "", why.len ? why.data : "");
            status = 1;
        }
        mk_buf_release(&why);
    }
    mk_config_free(cfg);
    if (status == 0 && o.question.len) {
        status = answer_one(&a, o.question.data);
    } else if (status == 0) {
        a.json = true; /* batch: one JSON line per question, in order */
        status = answer_lines(&a);
    }
    mk_api_asker_free(a.asker);
    mk_buf_release(&a.out);
    mk_buf_release(&o.question);
    mk_desk_free(d);
    mk_kb_free(kb);
    mk_kb_lib_free(lib);
    mk_store_free(store);
    return status;
}
