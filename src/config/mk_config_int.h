/*
 * mk_config_int: what the parts of the config loader share and nobody else needs.
 *
 * The loader runs in three steps, one file each:
 *   mk_config.c        reads the bytes, runs libfyaml, owns the public API;
 *   mk_config_parse.c  walks the YAML tree through the key tables into the structs;
 *   mk_config_check.c  cross-entry checks (names, references, aliases, tags) once
 *                      everything is read.
 * mk_config_env.c does the ${NAME} expansion every scalar goes through, and
 * mk_config_values.c decodes single-quoted scalars, URLs and listen addresses.
 *
 * All of them report through one cfg_ctx so that every problem is collected with its
 * place in the file, instead of stopping at the first one.
 */
#ifndef MK_CONFIG_INT_H
#define MK_CONFIG_INT_H

#include <libfyaml.h>

#include "config/mk_config.h"

/* Problems kept per load. A broken file (or a fuzzer) can produce one per line;
 * past this the list stops growing and says so. */
#define CFG_MAX_DIAGS 500
/* Nodes the walker may visit, aliases counted each time they are followed. The walk
 * only descends into known keys, so depth is bounded by the schema; this bounds the
 * breadth an anchor reused many times ("billion laughs") could add. */
#define CFG_MAX_NODES 1000000
/* Event loops per process; more than cores is waste, this only stops nonsense. */
#define CFG_MAX_WORKERS 1024

/* 1-based place in the file; 0 = unknown. */
struct cfg_loc {
    int line, column;
};

/* Where names were written, kept during a load so that cross checks can point at
 * the exact key rather than at the start of the entry. Indexed like the config. */
struct cfg_group_marks {
    struct cfg_loc name;
    struct cfg_loc *aliases;      /* naliases entries, parallel to group->aliases */
    size_t naliases;
    struct cfg_loc *dep_provider; /* one per deployment: its `provider:` value */
    size_t ndeps;
    struct cfg_loc require_tags;
};

struct cfg_ctx {
    const char *file;
    const char *src;               /* the YAML text being loaded (for single-quoted scalars) */
    size_t srclen;
    struct mk_config_diags *diags; /* never NULL inside the loader */
    size_t nerrors;
    bool diags_full;
    bool nomem;
    size_t budget;                 /* nodes left to visit */
    bool budget_spent;
    struct mk_config *cfg;
    struct cfg_loc *provider_name; /* one per provider read from the file */
    size_t nprovider_marks;
    struct cfg_group_marks *groups;/* one per model group read from the file */
    size_t ngroup_marks;
    size_t cur_group;              /* group being parsed (for its marks) */
    struct cfg_loc default_group;
    bool have_providers_key, have_groups_key;
};

/* mk_config.c ------------------------------------------------------------------ */
/* Names as written in YAML, indexed by the enum, NULL-terminated. */
extern const char *const cfg_provider_type_names[];
extern const char *const cfg_policy_names[];
void cfg_report(struct cfg_ctx *c, bool warning, struct cfg_loc at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define cfg_error(c, at, ...) cfg_report((c), false, (at), __VA_ARGS__)
#define cfg_warn(c, at, ...) cfg_report((c), true, (at), __VA_ARGS__)
/* strdup that records out-of-memory in the context; NULL in -> NULL out. */
char *cfg_strdup(struct cfg_ctx *c, const char *s);
/* Levenshtein distance, capped: strings longer than 64 bytes count as far apart. */
size_t cfg_edit_distance(const char *a, const char *b);
/* The candidate closest to `word` within distance 2, or NULL. */
const char *cfg_suggest(const char *word, const char *const *cands, size_t n);
/* Writes s as printable text into out (escaping control bytes, cutting long
 * values with "..."), so a message never carries raw bytes from the input. */
void cfg_quote(const char *s, size_t len, char *out, size_t outsz);
void cfg_free_provider(struct mk_provider_config *p);
void cfg_free_group(struct mk_model_group_config *g);
void cfg_free_strv(char **v, size_t n);
/* Fills a group with the documented defaults (no name, no deployments). */
void cfg_group_defaults(struct mk_model_group_config *g);
/* Append the embedded provider {local, type local} / group "mayak-local" (alias
 * "default", one deployment local/mayak-local) to cfg. 0 or MK_ENOMEM. */
int cfg_add_local_provider(struct mk_config *cfg);
int cfg_add_local_group(struct mk_config *cfg);

/* mk_config_env.c -------------------------------------------------------------- */
typedef void (*cfg_env_report_fn)(void *user, const char *msg);
/* Expands ${NAME}, ${NAME:-default} and $${ in s[0, len) into out (appended). Every
 * problem (unset variable, malformed reference) is passed to report (may be NULL)
 * and expansion continues, so all of them are seen. Returns 0, MK_ECONFIG when a
 * problem was reported, or MK_ENOMEM / MK_ETOOBIG from out. */
int cfg_expand_env(const char *s, size_t len, mk_buf *out, cfg_env_report_fn report, void *user);

/* mk_config_parse.c ------------------------------------------------------------ */
/* Reads the root mapping into c->cfg (which holds the defaults already). */
void cfg_parse_root(struct cfg_ctx *c, struct fy_node *root);
/* mk_config_values.c ----------------------------------------------------------- */
/* Decodes the inside of a single-quoted scalar (between the quotes) into out. */
int cfg_sq_unescape(const char *s, size_t n, mk_buf *out);
/* Splits an http(s) URL: NULL and the host (no brackets) and the index where the path
 * starts, or a reason it is not acceptable. */
const char *cfg_url_split(const char *u, char *host, size_t hostsz, size_t *path_at);
/* True when url's host is localhost, 127.0.0.0/8 or ::1. */
bool cfg_url_is_loopback(const char *url);
/* Splits "host:port" / "[v6]:port": NULL with host and port set, or a reason. */
const char *cfg_listen_split(const char *s, char *host, size_t hostsz, int *port);

/* mk_config_check.c ------------------------------------------------------------ */
/* Adds the embedded local provider and group when the file defines no model groups,
 * then runs the checks that need the whole tree. */
void cfg_check(struct cfg_ctx *c);

#endif
