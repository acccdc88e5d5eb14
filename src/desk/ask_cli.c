/*
 * ask_cli: `mayak ask` — answers questions as the support desk would, from the
 * command line: one QUESTION from the arguments, or one per line from standard
 * input (one JSON line each), with the agents, classifier and knowledge base loaded
 * once. It uses the local responder (no LLM), so it works offline and in tests.
 *
 * Knowledge: the documents `mayak kb add` persisted in the store (store.url, else
 * <data_dir>/mayak.db), loaded the way the server loads them, so `ask` answers what
 * the running desk would; when the store has none, the embedded demo set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/mk_config.h"
#include "core/mk_buf.h"
#include "core/mk_error.h"
#include "core/mk_rand.h"
#include "core/mk_utf8.h"
#include "desk/mk_desk.h"
#include "kb/mk_kb_store.h"
#include "store/mk_store.h"

static const char usage[] =
    "usage: mayak ask [QUESTION...] [--json] [--config FILE] [--kb FILE.jsonl]... [--no-demo]\n"
    "  Answers QUESTION as the support desk would (agent, confidence, answer, citations,\n"
    "  escalation). With no QUESTION, reads one question per line from standard input and\n"
    "  prints one JSON line per question.\n"
    "  --json         print JSON: {agent, confidence, answer, citations, escalate, reason, ...}\n"
    "  --config FILE  take the agents from FILE's agents: section\n"
    "  --kb FILE      add documents from a JSON-lines file: {id, lang, text, title?, source?, agent?}\n"
    "  --no-demo      do not load the demo knowledge base\n"
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

static int answer_one(const mk_desk *d, char *q, bool json, mk_buf *out)
{
    clean_text(q, strlen(q));
    struct mk_desk_reply r;
    int rc = mk_desk_respond(d, q, NULL, NULL, &r);
    if (rc) {
        fprintf(stderr, "mayak ask: %s\n", mk_strerror(rc));
        return 1;
    }
    mk_buf_reset(out);
    if (json) {
        rc = mk_desk_reply_json(&r, out);
    } else {
        rc = mk_buf_printf(out, "%s\n\n[agent: %s, confidence %.2f", r.answer ? r.answer : "", r.agent, r.confidence);
        if (rc == 0 && r.escalate) rc = mk_buf_printf(out, ", escalates to a human: %s", mk_desk_reason_name(r.reason));
        if (rc == 0) rc = mk_buf_append_char(out, ']');
    }
    mk_desk_reply_release(&r);
    if (rc) {
        fprintf(stderr, "mayak ask: %s\n", mk_strerror(rc));
        return 1;
    }
    fwrite(out->data, 1, out->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
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

int mk_desk_ask_cli_main(int argc, char **argv, const char *data_dir)
{
    bool json = false, demo = true;
    const char *config_path = NULL;
    const char *kb_files[16];
    size_t nkb = 0;
    mk_buf question = MK_BUF_INIT;
    int status = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--no-demo") == 0) {
            demo = false;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            mk_buf_release(&question);
            return 0;
        } else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0 || strcmp(a, "--kb") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mayak ask: %s needs a file name\n%s", a, usage);
                mk_buf_release(&question);
                return 2;
            }
            if (strcmp(a, "--kb") != 0) config_path = argv[++i];
            else if (nkb < sizeof kb_files / sizeof kb_files[0]) kb_files[nkb++] = argv[++i];
            else {
                fprintf(stderr, "mayak ask: at most 16 --kb files\n");
                mk_buf_release(&question);
                return 2;
            }
        } else if (strncmp(a, "--config=", 9) == 0) {
            config_path = a + 9;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "mayak ask: unknown option '%s'\n%s", a, usage);
            mk_buf_release(&question);
            return 2;
        } else {
            if ((question.len && mk_buf_append_char(&question, ' ')) || mk_buf_append_str(&question, a)) {
                fprintf(stderr, "mayak ask: out of memory\n");
                mk_buf_release(&question);
                return 1;
            }
        }
    }
    mk_rand_init();
    struct mk_config *cfg = NULL;
    if (config_path) {
        struct mk_config_diags diags = {0};
        if (mk_config_load(config_path, &cfg, &diags) != 0) {
            mk_buf text = MK_BUF_INIT;
            mk_config_diags_format(&diags, &text);
            fprintf(stderr, "%s", text.data ? text.data : "");
            mk_buf_release(&text);
            mk_config_diags_release(&diags);
            mk_buf_release(&question);
            return 1;
        }
        mk_config_diags_release(&diags);
    }
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
        for (size_t i = 0; i < nkb && status == 0; i++) status = load_jsonl(stored, kb_files[i]);
    } else if (status == 0 && (!demo || nkb)) {
        kb = mk_kb_new();
        if (!kb) status = 1;
        if (status == 0 && demo) {
            int rc = mk_kb_load_demo(kb);
            if (rc) {
                fprintf(stderr, "mayak ask: cannot load the demo knowledge base: %s\n", mk_strerror(rc));
                status = 1;
            }
        }
        for (size_t i = 0; i < nkb && status == 0; i++) status = load_jsonl(kb, kb_files[i]);
        use = kb;
    }
    if (status == 0) {
        struct mk_desk_options o = {.config = cfg, .kb = use};
        int rc = mk_desk_new(&o, &d);
        if (rc) {
            fprintf(stderr, "mayak ask: cannot start the desk: %s\n", mk_strerror(rc));
            status = 1;
        }
    }
    mk_config_free(cfg);
    mk_buf out = MK_BUF_INIT;
    if (status == 0 && question.len) {
        status = answer_one(d, question.data, json, &out);
    } else if (status == 0) {
        /* Batch: one question per line, one JSON line per question, in order. */
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (status == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
            size_t lead = strspn(line, " \t");
            if (line[lead] == '\0') continue;
            if ((size_t)n > MK_DESK_MAX_MESSAGE_BYTES) line[mk_utf8_complete_prefix(line, MK_DESK_MAX_MESSAGE_BYTES)] = '\0';
            status = answer_one(d, line + lead, true, &out);
        }
        free(line);
    }
    mk_buf_release(&out);
    mk_buf_release(&question);
    mk_desk_free(d);
    mk_kb_free(kb);
    mk_kb_lib_free(lib);
    mk_store_free(store);
    return status;
}
