/*
 * memory_link: causal links between events or facts (cause -> effect, confidence).
 *
 * Evidence accumulates: observing a link again combines the confidences as a noisy-or
 * (1 - (1-a)(1-b)), so independent weak observations add up while one observation
 * never exceeds what it claimed. Likely causes of an effect are found walking links
 * backwards (breadth first, a bounded number of hops and of links per node), scoring
 * a path by the product of its confidences and keeping the best path to each cause.
 * Weak links (and, optionally, stale ones) are pruned on request.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "memory/memory_int.h"

/* Links followed out of one node per hop, and nodes one query may visit: bounds the
 * work of a query on a dense graph. */
#define LINKS_PER_NODE 100
#define MAX_VISITED 2000

int mk_memory_link_add(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *cause,
                       const char *effect, double confidence, const char *user, json_object **out, mk_buf *err)
{
    if (!m || !c) return MK_EINVAL;
    if (out) *out = NULL;
    int rc;
    if ((rc = mem_check_id(tenant, "tenant", false, err)) || (rc = mem_check_id(cause, "cause", false, err)) ||
        (rc = mem_check_id(effect, "effect", false, err)) || (rc = mem_check_id(user, "user", true, err)))
        return rc;
    if (!(confidence > 0 && confidence <= 1)) {
        if (err) mk_buf_printf(err, "confidence must be in (0, 1]");
        return MK_EINVAL;
    }
    if (strcmp(cause, effect) == 0) {
        if (err) mk_buf_printf(err, "a link needs a cause different from its effect");
        return MK_EINVAL;
    }
    int64_t now = mem_now_ms(m);
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c,
                          "INSERT INTO memory_links (tenant, cause, effect, confidence, observations, user_id, created_at,"
                          " updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (tenant, cause, effect) DO UPDATE SET"
                          " confidence = 1 - (1 - memory_links.confidence) * (1 - excluded.confidence),"
                          " observations = memory_links.observations + 1, updated_at = excluded.updated_at,"
                          " user_id = CASE WHEN excluded.user_id <> '' THEN excluded.user_id ELSE memory_links.user_id END"
                          " RETURNING id, confidence, observations",
                          &st);
    if (rc) {
        mem_store_err(c, rc, "storing the link", err);
        return rc;
    }
    mk_store_bind_cstr(st, 1, tenant);
    mk_store_bind_cstr(st, 2, cause);
    mk_store_bind_cstr(st, 3, effect);
    mk_store_bind_double(st, 4, confidence);
    mk_store_bind_cstr(st, 5, mem_str(user));
    mk_store_bind_int64(st, 6, now);
    mk_store_bind_int64(st, 7, now);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        if (out) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_int64(mk_store_column_int64(st, 0)));
            json_object_object_add(o, "cause", json_object_new_string(cause));
            json_object_object_add(o, "effect", json_object_new_string(effect));
            json_object_object_add(o, "confidence", json_object_new_double(mk_store_column_double(st, 1)));
            json_object_object_add(o, "observations", json_object_new_int64(mk_store_column_int64(st, 2)));
            *out = o;
        }
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_EINTERNAL;
    }
    mk_store_stmt_done(st);
    if (rc) mem_store_err(c, rc, "storing the link", err);
    return rc;
}

struct node {
    char *name;
    double conf;                 /* best path confidence to the effect */
    int parent;                  /* index of the node it leads to (-1: the effect) */
    int depth;
    uint32_t observations;
};

static int find_node(struct node *nodes, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(nodes[i].name, name) == 0) return i;
    return -1;
}

static int cmp_conf(const void *a, const void *b)
{
    const struct node *x = *(struct node *const *)a, *y = *(struct node *const *)b;
    return (x->conf < y->conf) - (x->conf > y->conf);
}

int mk_memory_link_causes(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *effect,
                          uint32_t depth, double min_confidence, uint32_t limit, json_object **out)
{
    if (!m || !c || !out || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(effect, "effect", false, NULL))
        return MK_EINVAL;
    if (depth == 0) depth = 1;
    if (depth > MK_MEMORY_MAX_CAUSE_DEPTH || limit == 0 || limit > MK_MEMORY_MAX_K || !(min_confidence >= 0) ||
        min_confidence > 1)
        return MK_EINVAL;
    *out = NULL;
    struct node *nodes = calloc(MAX_VISITED + 1, sizeof *nodes);
    if (!nodes) return MK_ENOMEM;
    int n = 0, rc = 0;
    nodes[n++] = (struct node){strdup(effect), 1.0, -1, 0, 0};
    if (!nodes[0].name) rc = MK_ENOMEM;
    int level_start = 0, level_end = 1;
    for (uint32_t d = 1; rc == 0 && d <= depth && level_start < level_end; d++) {
        for (int v = level_start; rc == 0 && v < level_end; v++) {
            struct mk_store_stmt *st;
            rc = mk_store_prepare(c, "SELECT cause, confidence, observations FROM memory_links WHERE tenant = ?"
                                     " AND effect = ? ORDER BY confidence DESC LIMIT ?",
                                  &st);
            if (rc) break;
            mk_store_bind_cstr(st, 1, tenant);
            mk_store_bind_cstr(st, 2, nodes[v].name);
            mk_store_bind_int64(st, 3, LINKS_PER_NODE);
            int s;
            while ((s = mk_store_step(st)) == MK_STORE_ROW) {
                const char *cause = mk_store_column_text(st, 0).ptr;
                double conf = nodes[v].conf * mk_store_column_double(st, 1);
                if (conf < min_confidence) continue;
                int at = find_node(nodes, n, cause);
                if (at == 0) continue; /* a cycle back to the effect */
                if (at > 0) {
                    if (conf > nodes[at].conf && at >= level_end) { /* a better path found on this level */
                        nodes[at].conf = conf;
                        nodes[at].parent = v;
                    }
                    continue;
                }
                if (n >= MAX_VISITED) break;
                nodes[n] = (struct node){strdup(cause), conf, v, (int)d, (uint32_t)mk_store_column_int64(st, 2)};
                if (!nodes[n].name) {
                    rc = MK_ENOMEM;
                    break;
                }
                n++;
            }
            if (s < 0 && rc == 0) rc = s;
            mk_store_stmt_done(st);
        }
        level_start = level_end;
        level_end = n;
    }
    if (rc == 0) {
        struct node **order = malloc(sizeof *order * (size_t)(n ? n : 1));
        if (!order) rc = MK_ENOMEM;
        for (int i = 1; order && i < n; i++) order[i - 1] = &nodes[i];
        if (order && n > 1) qsort(order, (size_t)(n - 1), sizeof *order, cmp_conf);
        json_object *data = json_object_new_array();
        for (int i = 0; order && i < n - 1 && (uint32_t)i < limit; i++) {
            struct node *x = order[i];
            json_object *o = json_object_new_object();
            json_object_object_add(o, "cause", json_object_new_string(x->name));
            json_object_object_add(o, "confidence", json_object_new_double(x->conf));
            json_object_object_add(o, "depth", json_object_new_int(x->depth));
            json_object *path = json_object_new_array();
            for (const struct node *p = x; p; p = p->parent >= 0 ? &nodes[p->parent] : NULL)
                json_object_array_add(path, json_object_new_string(p->name));
            json_object_object_add(o, "path", path);
            json_object_array_add(data, o);
        }
        free(order);
        json_object *res = json_object_new_object();
        json_object_object_add(res, "effect", json_object_new_string(effect));
        json_object_object_add(res, "data", data);
        *out = res;
    }
    for (int i = 0; i < n; i++) free(nodes[i].name);
    free(nodes);
    return rc;
}

int mk_memory_link_prune(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, double min_confidence,
                         int64_t older_than_ms, int64_t *pruned)
{
    if (!m || !c || mem_check_id(tenant, "tenant", false, NULL) || !(min_confidence >= 0) || min_confidence > 1 ||
        older_than_ms < 0)
        return MK_EINVAL;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "DELETE FROM memory_links WHERE tenant = ? AND (confidence < ? OR (? > 0 AND updated_at < ?))",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, tenant);
    mk_store_bind_double(st, 2, min_confidence);
    mk_store_bind_int64(st, 3, older_than_ms);
    mk_store_bind_int64(st, 4, mem_now_ms(m) - older_than_ms);
    rc = mk_store_step(st);
    mk_store_stmt_done(st);
    if (rc < 0) return rc;
    if (pruned) *pruned = mk_store_changes(c);
    return 0;
}
