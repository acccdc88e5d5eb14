/*
 * mk_config_check: the checks that need the whole file read first, and the reload
 * comparison.
 *
 * Names must be unique where requests or deployments look them up: provider names
 * (deployments refer to them), and model group names together with every alias (a
 * request's "model" selects one group, so one string may mean only one group).
 * References must resolve: deployments to providers, default_model_group to a group.
 * Compliance tags are checked here too, because a deployment's tags are its own plus
 * its provider's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/mk_config_int.h"
#include "core/mk_error.h"

static struct cfg_loc at_of(int line, int column)
{
    struct cfg_loc l = {line, column};
    return l;
}

static struct cfg_loc provider_loc(const struct cfg_ctx *c, size_t i)
{
    if (c->provider_name && i < c->nprovider_marks && c->provider_name[i].line) return c->provider_name[i];
    const struct mk_provider_config *p = &c->cfg->providers[i];
    return (struct cfg_loc){p->line, p->column};
}

static struct cfg_loc group_loc(const struct cfg_ctx *c, size_t i)
{
    if (c->groups && i < c->ngroup_marks && c->groups[i].name.line) return c->groups[i].name;
    const struct mk_model_group_config *g = &c->cfg->model_groups[i];
    return (struct cfg_loc){g->line, g->column};
}

static struct cfg_loc alias_loc(const struct cfg_ctx *c, size_t gi, size_t ai)
{
    if (c->groups && gi < c->ngroup_marks && c->groups[gi].aliases && ai < c->groups[gi].naliases)
        return c->groups[gi].aliases[ai];
    return group_loc(c, gi);
}

static struct cfg_loc dep_loc(const struct cfg_ctx *c, size_t gi, size_t di)
{
    if (c->groups && gi < c->ngroup_marks && c->groups[gi].dep_provider && di < c->groups[gi].ndeps)
        return c->groups[gi].dep_provider[di];
    const struct mk_deployment_config *d = &c->cfg->model_groups[gi].deployments[di];
    return (struct cfg_loc){d->line, d->column};
}

/* With no model groups the file behaves like the embedded defaults: the local
 * provider and group "mayak-local" (alias "default") are added. */
static void add_embedded(struct cfg_ctx *c)
{
    struct mk_config *cfg = c->cfg;
    const struct mk_provider_config *local = mk_config_find_provider(cfg, "local");
    if (local && local->type != MK_PROVIDER_LOCAL) {
        cfg_error(c, provider_loc(c, (size_t)(local - cfg->providers)),
                  "no model_groups are defined, so the embedded group 'mayak-local' needs provider 'local' of "
                  "type local, but 'local' has type %s; define model_groups or rename this provider",
                  mk_provider_type_name(local->type));
        return;
    }
    if (!local && cfg_add_local_provider(cfg)) {
        c->nomem = true;
        return;
    }
    if (cfg_add_local_group(cfg)) {
        c->nomem = true;
        return;
    }
    if (!cfg->default_model_group)
        cfg->default_model_group = cfg_strdup(c, "mayak-local");
}

static void check_providers(struct cfg_ctx *c)
{
    const struct mk_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (!cfg->providers[i].name) continue;
        for (size_t j = 0; j < i; j++) {
            if (cfg->providers[j].name && !strcmp(cfg->providers[i].name, cfg->providers[j].name)) {
                cfg_error(c, provider_loc(c, i), "duplicate provider name '%s' (first defined at line %d)",
                          cfg->providers[i].name, provider_loc(c, j).line);
                break;
            }
        }
    }
}

/* Every string a request's "model" can match: group names and aliases. */
struct model_name {
    const char *name;
    size_t group;
    bool alias;
    struct cfg_loc at;
    size_t order;
};

static int cmp_model_name(const void *a, const void *b)
{
    const struct model_name *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r) return r;
    if (x->at.line != y->at.line) return x->at.line < y->at.line ? -1 : 1;
    if (x->at.column != y->at.column) return x->at.column < y->at.column ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void check_model_names(struct cfg_ctx *c)
{
    const struct mk_config *cfg = c->cfg;
    size_t n = 0;
    for (size_t i = 0; i < cfg->nmodel_groups; i++) n += 1 + cfg->model_groups[i].naliases;
    if (n == 0) return;
    struct model_name *v = calloc(n, sizeof *v);
    if (!v) {
        c->nomem = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < cfg->nmodel_groups; i++) {
        const struct mk_model_group_config *g = &cfg->model_groups[i];
        if (g->name) v[k] = (struct model_name){g->name, i, false, group_loc(c, i), k}, k++;
        for (size_t j = 0; j < g->naliases; j++)
            v[k] = (struct model_name){g->aliases[j], i, true, alias_loc(c, i, j), k}, k++;
    }
    qsort(v, k, sizeof *v, cmp_model_name);
    for (size_t i = 1; i < k; i++) {
        size_t first = i - 1;
        while (first > 0 && !strcmp(v[first - 1].name, v[i].name)) first--;
        if (strcmp(v[first].name, v[i].name)) continue;
        const struct model_name *a = &v[first], *b = &v[i];
        const char *ga = cfg->model_groups[a->group].name ? cfg->model_groups[a->group].name : "(unnamed)";
        if (!a->alias && !b->alias)
            cfg_error(c, b->at, "duplicate model group name '%s' (first defined at line %d)", b->name, a->at.line);
        else if (!a->alias)
            cfg_error(c, b->at, "alias '%s' clashes with the name of model group '%s' (line %d)", b->name, ga,
                      a->at.line);
        else if (!b->alias)
            cfg_error(c, b->at, "model group name '%s' clashes with an alias of model group '%s' (line %d)",
                      b->name, ga, a->at.line);
        else if (a->group == b->group)
            cfg_error(c, b->at, "alias '%s' is listed twice (first at line %d)", b->name, a->at.line);
        else
            cfg_error(c, b->at, "alias '%s' is already an alias of model group '%s' (line %d)", b->name, ga,
                      a->at.line);
    }
    free(v);
}

static bool has_tag(char *const *tags, size_t n, const char *tag)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tags[i], tag)) return true;
    return false;
}

static void check_deployments(struct cfg_ctx *c)
{
    struct mk_config *cfg = c->cfg;
    bool *used = calloc(cfg->nproviders + 1, sizeof *used);
    const char **pnames = calloc(cfg->nproviders + 1, sizeof *pnames);
    if (!used || !pnames) {
        free(used);
        free(pnames);
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < cfg->nproviders; i++) pnames[i] = cfg->providers[i].name;
    for (size_t gi = 0; gi < cfg->nmodel_groups; gi++) {
        struct mk_model_group_config *g = &cfg->model_groups[gi];
        const char *gname = g->name ? g->name : "(unnamed)";
        size_t compliant = 0, checked = 0;
        for (size_t di = 0; di < g->ndeployments; di++) {
            struct mk_deployment_config *d = &g->deployments[di];
            if (!d->provider) continue;
            const struct mk_provider_config *p = mk_config_find_provider(cfg, d->provider);
            if (!p) {
                const char *sug = cfg_suggest(d->provider, pnames, cfg->nproviders);
                if (sug)
                    cfg_error(c, dep_loc(c, gi, di), "deployment names unknown provider '%s' (did you mean '%s'?)",
                              d->provider, sug);
                else if (cfg->nproviders == 0)
                    cfg_error(c, dep_loc(c, gi, di),
                              "deployment names unknown provider '%s' (no providers are defined)", d->provider);
                else
                    cfg_error(c, dep_loc(c, gi, di), "deployment names unknown provider '%s'", d->provider);
                continue;
            }
            used[p - cfg->providers] = true;
            if (!d->has_price) d->price = p->price; /* the provider's price unless overridden */
            checked++;
            const char *missing = NULL;
            for (size_t t = 0; t < g->nrequire_tags && !missing; t++) {
                const char *tag = g->require_tags[t];
                if (!has_tag(p->tags, p->ntags, tag) && !has_tag(d->tags, d->ntags, tag)) missing = tag;
            }
            if (missing)
                cfg_warn(c, at_of(d->line, d->column),
                         "deployment %s/%s lacks tag '%s' required by model group '%s' and will never be used",
                         d->provider, d->model ? d->model : "?", missing, gname);
            else
                compliant++;
        }
        if (g->nrequire_tags > 0 && checked > 0 && compliant == 0) {
            struct cfg_loc at = (c->groups && gi < c->ngroup_marks) ? c->groups[gi].require_tags : group_loc(c, gi);
            cfg_error(c, at, "model group '%s': no deployment carries every tag in require_tags", gname);
        }
    }
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (!used[i] && cfg->providers[i].name)
            cfg_warn(c, provider_loc(c, i), "provider '%s' is not used by any model group", cfg->providers[i].name);
    }
    free(used);
    free(pnames);
}

static void check_default_group(struct cfg_ctx *c)
{
    const struct mk_config *cfg = c->cfg;
    if (!cfg->default_model_group || mk_config_find_group(cfg, cfg->default_model_group)) return;
    size_t n = 0;
    for (size_t i = 0; i < cfg->nmodel_groups; i++) n += 1 + cfg->model_groups[i].naliases;
    const char **names = calloc(n + 1, sizeof *names);
    if (!names) {
        c->nomem = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < cfg->nmodel_groups; i++) {
        names[k++] = cfg->model_groups[i].name;
        for (size_t j = 0; j < cfg->model_groups[i].naliases; j++) names[k++] = cfg->model_groups[i].aliases[j];
    }
    const char *sug = cfg_suggest(cfg->default_model_group, names, k);
    if (sug)
        cfg_error(c, c->default_group, "default_model_group '%s' is not a model group or alias (did you mean '%s'?)",
                  cfg->default_model_group, sug);
    else
        cfg_error(c, c->default_group, "default_model_group '%s' is not a model group or alias",
                  cfg->default_model_group);
    free(names);
}

void cfg_check(struct cfg_ctx *c)
{
    if (c->cfg->nmodel_groups == 0) add_embedded(c);
    if (c->nomem) return;
    check_providers(c);
    check_model_names(c);
    check_deployments(c);
    check_default_group(c);
    /* Accepted so that files written for a later version still load, but said plainly:
     * one process runs one event loop today. */
    struct cfg_loc nowhere = {0, 0};
    if (c->cfg->workers > 1)
        cfg_warn(c, nowhere,
                 "workers: %d: this version runs one event loop per process; to use more cores run several "
                 "processes behind HAProxy or nginx (docs/CONFIG.md)",
                 c->cfg->workers);
}

/* ---- reload --------------------------------------------------------------------------- */

static bool str_differs(const char *a, const char *b)
{
    if (!a || !b) return a != b;
    return strcmp(a, b) != 0;
}

int mk_config_reload_check(const struct mk_config *running, const struct mk_config *next,
                           struct mk_config_diags *diags)
{
    if (!running || !next) return MK_EINVAL;
    struct mk_config_diags scratch = {0};
    struct cfg_ctx c = {.file = next->source ? next->source : "<config>", .diags = diags ? diags : &scratch};
    struct cfg_loc none = {0, 0};
    int changed = 0;
    if (str_differs(running->listen_host, next->listen_host) || running->listen_port != next->listen_port) {
        changed++;
        cfg_warn(&c, none, "listen changed from %s:%d to %s:%d; restart Mayak to apply it (still listening on %s:%d)",
                 running->listen_host ? running->listen_host : "?", running->listen_port,
                 next->listen_host ? next->listen_host : "?", next->listen_port,
                 running->listen_host ? running->listen_host : "?", running->listen_port);
    }
    if (str_differs(running->data_dir, next->data_dir)) {
        changed++;
        cfg_warn(&c, none, "data_dir changed from '%s' to '%s'; restart Mayak to apply it (still using '%s')",
                 running->data_dir ? running->data_dir : "", next->data_dir ? next->data_dir : "",
                 running->data_dir ? running->data_dir : "");
    }
    if (running->workers != next->workers) {
        changed++;
        cfg_warn(&c, none, "workers changed from %d to %d; restart Mayak to apply it", running->workers,
                 next->workers);
    }
    mk_config_diags_release(&scratch);
    return c.nomem ? MK_ENOMEM : changed;
}
