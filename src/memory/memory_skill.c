/*
 * memory_skill: named, versioned procedures ("reset a VPN profile"). Each put makes a
 * new version the current one; old versions stay readable (who changed what, and
 * when) but only current versions are in the index, so a search never offers a
 * superseded procedure. Successful episodes can be promoted to skills.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mk_error.h"
#include "memory/memory_int.h"

#define SKILL_COLS "id, name, version, description, steps, tags, author, source_episode, is_current, uses, successes, created_at"

static json_object *skill_json(struct mk_store_stmt *st)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(mk_store_column_int64(st, 0)));
    mk_slice s = mk_store_column_text(st, 1);
    json_object_object_add(o, "name", json_object_new_string_len(s.ptr, (int)s.len));
    json_object_object_add(o, "version", json_object_new_int64(mk_store_column_int64(st, 2)));
    s = mk_store_column_text(st, 3);
    json_object_object_add(o, "description", json_object_new_string_len(s.ptr, (int)s.len));
    s = mk_store_column_text(st, 4);
    json_object_object_add(o, "procedure", json_object_new_string_len(s.ptr, (int)s.len));
    json_object_object_add(o, "tags", mem_tags_json(mk_store_column_text(st, 5).ptr));
    s = mk_store_column_text(st, 6);
    json_object_object_add(o, "author", json_object_new_string_len(s.ptr, (int)s.len));
    int64_t src = mk_store_column_int64(st, 7);
    json_object_object_add(o, "source_episode", src ? json_object_new_int64(src) : NULL);
    json_object_object_add(o, "current", json_object_new_boolean(mk_store_column_int64(st, 8) != 0));
    int64_t uses = mk_store_column_int64(st, 9), ok = mk_store_column_int64(st, 10);
    json_object_object_add(o, "uses", json_object_new_int64(uses));
    json_object_object_add(o, "success_rate", uses ? json_object_new_double((double)ok / (double)uses) : NULL);
    json_object_object_add(o, "created_at", json_object_new_int64(mk_store_column_int64(st, 11)));
    return o;
}

struct put_job {
    struct mk_memory *m;
    const struct mk_memory_skill *s;
    const char *tags;
    int64_t id, old_id;
    int version;
    int64_t now;
};

static int put_tx(struct mk_store_conn *c, void *arg)
{
    struct put_job *j = arg;
    const struct mk_memory_skill *s = j->s;
    struct mk_store_stmt *st;
    j->old_id = 0;
    j->version = 1;
    int rc = mk_store_prepare(c, "SELECT id, version, is_current FROM memory_skills WHERE tenant = ? AND name = ?"
                                 " ORDER BY version DESC LIMIT 1",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, s->tenant);
    mk_store_bind_cstr(st, 2, s->name);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        j->version = (int)mk_store_column_int64(st, 1) + 1;
        if (mk_store_column_int64(st, 2)) j->old_id = mk_store_column_int64(st, 0);
        rc = 0;
    }
    mk_store_stmt_done(st);
    if (rc < 0) return rc;
    if (j->old_id) {
        char idbuf[24];
        snprintf(idbuf, sizeof idbuf, "%lld", (long long)j->old_id);
        rc = mem_exec_bind(c, "UPDATE memory_skills SET is_current = 0 WHERE id = CAST(? AS BIGINT)", NULL, 1, idbuf);
        if (rc == 0) rc = mem_log_change(j->m, c, MK_MEMORY_SKILLS, j->old_id, MEM_OP_DEL);
        if (rc) return rc;
    }
    rc = mk_store_prepare(c, "INSERT INTO memory_skills (tenant, name, version, description, steps, tags, author,"
                             " source_episode, is_current, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?) RETURNING id",
                          &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, s->tenant);
    mk_store_bind_cstr(st, 2, s->name);
    mk_store_bind_int64(st, 3, j->version);
    mk_store_bind_cstr(st, 4, mem_str(s->description));
    mk_store_bind_cstr(st, 5, s->procedure);
    mk_store_bind_cstr(st, 6, j->tags);
    mk_store_bind_cstr(st, 7, mem_str(s->author));
    mk_store_bind_int64(st, 8, s->source_episode);
    mk_store_bind_int64(st, 9, j->now);
    rc = mk_store_step(st);
    if (rc == MK_STORE_ROW) {
        j->id = mk_store_column_int64(st, 0);
        rc = 0;
    } else if (rc == MK_STORE_DONE) {
        rc = MK_EINTERNAL;
    }
    mk_store_stmt_done(st);
    if (rc == 0) rc = mem_log_change(j->m, c, MK_MEMORY_SKILLS, j->id, MEM_OP_ADD);
    return rc;
}

int mk_memory_skill_put(struct mk_memory *m, struct mk_store_conn *c, const struct mk_memory_skill *s, int64_t *id,
                        int *version, mk_buf *err)
{
    if (!m || !c || !s) return MK_EINVAL;
    int rc;
    mk_buf tags = MK_BUF_INIT, text = MK_BUF_INIT;
    if ((rc = mem_check_id(s->tenant, "tenant", false, err)) || (rc = mem_check_id(s->name, "name", false, err)) ||
        (rc = mem_check_text(s->description, "description", false, err)) ||
        (rc = mem_check_text(s->procedure, "procedure", true, err)) ||
        (rc = mem_check_id(s->author, "author", true, err)) ||
        (s->ntags && !s->tags ? (rc = MK_EINVAL) : 0) || (rc = mem_join_tags(s->tags, s->ntags, &tags, err))) {
        mk_buf_release(&tags);
        return rc;
    }
    float *vec = malloc(sizeof(float) * m->dim);
    if (!vec) rc = MK_ENOMEM;
    mk_buf_printf(&text, "%s. %s. %s", s->name, mem_str(s->description), s->procedure);
    if (rc == 0) rc = mem_embed(m, text.data, text.len, vec);
    struct put_job j = {.m = m, .s = s, .tags = tags.data ? tags.data : "", .now = mem_now_ms(m)};
    /* two writers putting the same name at once collide on (tenant, name, version):
     * the loser reads the new latest version and goes again */
    for (int attempt = 0; rc == 0 && attempt < 5; attempt++) {
        rc = mem_tx(c, put_tx, &j);
        if (rc != MK_EEXISTS) break;
        if (attempt < 4) rc = 0;
    }
    if (rc == 0) {
        if (j.old_id) mem_index_del(m, MK_MEMORY_SKILLS, j.old_id);
        mem_index_put(m, MK_MEMORY_SKILLS, j.id, vec, mem_ns_tenant(s->tenant), 0);
        if (id) *id = j.id;
        if (version) *version = j.version;
    } else if (err && !err->len) {
        mem_store_err(c, rc, "storing the skill", err);
    }
    free(vec);
    mk_buf_release(&tags);
    mk_buf_release(&text);
    return rc;
}

int mk_memory_skill_promote(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, int64_t episode,
                            const char *name, const char *author, int64_t *id, int *version, mk_buf *err)
{
    if (!m || !c) return MK_EINVAL;
    int rc;
    if ((rc = mem_check_id(tenant, "tenant", false, err)) || (rc = mem_check_id(name, "name", false, err))) return rc;
    struct mk_store_stmt *st;
    rc = mk_store_prepare(c, "SELECT task, tried, outcome, reward, tags FROM memory_episodes WHERE id = ? AND tenant = ?",
                          &st);
    if (rc) return rc;
    mk_store_bind_int64(st, 1, episode);
    mk_store_bind_cstr(st, 2, tenant);
    rc = mk_store_step(st);
    if (rc != MK_STORE_ROW) {
        mk_store_stmt_done(st);
        if (err) mk_buf_printf(err, "no episode %lld", (long long)episode);
        return rc == MK_STORE_DONE ? MK_ENOTFOUND : rc;
    }
    char *task = strdup(mk_store_column_text(st, 0).ptr);
    char *tried = strdup(mk_store_column_text(st, 1).ptr);
    char *outcome = strdup(mk_store_column_text(st, 2).ptr);
    double reward = mk_store_column_double(st, 3);
    char *tags = strdup(mk_store_column_text(st, 4).ptr);
    mk_store_stmt_done(st);
    rc = task && tried && outcome && tags ? 0 : MK_ENOMEM;
    if (rc == 0 && reward < m->opt.success_reward) {
        if (err) mk_buf_printf(err, "episode %lld did not succeed (reward %g < %g); only successes become skills",
                               (long long)episode, reward, m->opt.success_reward);
        rc = MK_EINVAL;
    }
    const char *tagv[MK_MEMORY_MAX_TAGS];
    size_t ntags = 0;
    for (char *p = tags; rc == 0 && p && *p && ntags < MK_MEMORY_MAX_TAGS;) {
        if (*p == ',') {
            *p++ = '\0';
            continue;
        }
        tagv[ntags++] = p;
        p = strchr(p, ',');
    }
    if (rc == 0) {
        struct mk_memory_skill s = {.tenant = tenant, .name = name, .description = task,
                                    .procedure = *tried ? tried : outcome, .tags = tagv, .ntags = ntags,
                                    .author = author, .source_episode = episode};
        if (!*s.procedure) {
            if (err) mk_buf_printf(err, "episode %lld records neither what was tried nor the outcome", (long long)episode);
            rc = MK_EINVAL;
        } else {
            rc = mk_memory_skill_put(m, c, &s, id, version, err);
        }
    }
    free(task);
    free(tried);
    free(outcome);
    free(tags);
    return rc;
}

int mk_memory_skill_search(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *query,
                           uint32_t k, json_object **out, mk_buf *err)
{
    if (!m || !c || !out) return MK_EINVAL;
    *out = NULL;
    int rc;
    if ((rc = mem_check_id(tenant, "tenant", false, err)) || (rc = mem_check_text(query, "query", true, err)))
        return rc;
    if (k == 0 || k > MK_MEMORY_MAX_K) {
        if (err) mk_buf_printf(err, "k must be between 1 and %d", MK_MEMORY_MAX_K);
        return MK_EINVAL;
    }
    float *q = malloc(sizeof(float) * m->dim);
    uint32_t want = k + 4;
    mk_vector_hit *hits = malloc(sizeof *hits * want);
    size_t nh = 0;
    rc = q && hits ? mem_embed(m, query, strlen(query), q) : MK_ENOMEM;
    mk_vector_filter vf = {.use_ns = true, .ns = mem_ns_tenant(tenant)};
    mk_vector_search_opts so = {.filter = &vf};
    if (rc == 0) rc = mk_vector_search(m->idx[MK_MEMORY_SKILLS].ix, q, m->dim, want, &so, hits, &nh);
    json_object *data = json_object_new_array();
    for (size_t i = 0; rc == 0 && i < nh && json_object_array_length(data) < k; i++) {
        struct mk_store_stmt *st;
        rc = mk_store_prepare(c, "SELECT " SKILL_COLS " FROM memory_skills WHERE id = ? AND tenant = ? AND is_current = 1",
                              &st);
        if (rc) break;
        mk_store_bind_int64(st, 1, (int64_t)hits[i].key);
        mk_store_bind_cstr(st, 2, tenant);
        int s = mk_store_step(st);
        if (s == MK_STORE_ROW) {
            json_object *o = skill_json(st);
            json_object_object_add(o, "score", json_object_new_double(1.0 - (double)hits[i].distance));
            json_object_array_add(data, o);
        } else if (s < 0) {
            rc = s;
        }
        mk_store_stmt_done(st);
    }
    free(q);
    free(hits);
    if (rc) {
        json_object_put(data);
        if (err && !err->len) mem_store_err(c, rc, "searching skills", err);
        return rc;
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("list"));
    json_object_object_add(res, "data", data);
    *out = res;
    return 0;
}

int mk_memory_skill_get(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *name,
                        json_object **out)
{
    if (!m || !c || !out || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(name, "name", false, NULL))
        return MK_EINVAL;
    *out = NULL;
    struct mk_store_stmt *st;
    int rc = mk_store_prepare(c, "SELECT " SKILL_COLS " FROM memory_skills WHERE tenant = ? AND name = ?"
                                 " ORDER BY version DESC LIMIT 1000",
                              &st);
    if (rc) return rc;
    mk_store_bind_cstr(st, 1, tenant);
    mk_store_bind_cstr(st, 2, name);
    json_object *versions = json_object_new_array();
    json_object *current = NULL;
    while ((rc = mk_store_step(st)) == MK_STORE_ROW) {
        json_object *o = skill_json(st);
        if (mk_store_column_int64(st, 8)) current = json_object_get(o);
        json_object_array_add(versions, o);
    }
    mk_store_stmt_done(st);
    if (rc < 0 || json_object_array_length(versions) == 0) {
        json_object_put(versions);
        json_object_put(current);
        return rc < 0 ? rc : MK_ENOTFOUND;
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "name", json_object_new_string(name));
    json_object_object_add(res, "current", current);
    json_object_object_add(res, "versions", versions);
    *out = res;
    return 0;
}

int mk_memory_skill_record_use(struct mk_memory *m, struct mk_store_conn *c, const char *tenant, const char *name,
                               bool success)
{
    if (!m || !c || mem_check_id(tenant, "tenant", false, NULL) || mem_check_id(name, "name", false, NULL))
        return MK_EINVAL;
    int64_t changed = 0;
    int rc = mem_exec_bind(c, success ? "UPDATE memory_skills SET uses = uses + 1, successes = successes + 1"
                                        " WHERE tenant = ? AND name = ? AND is_current = 1"
                                      : "UPDATE memory_skills SET uses = uses + 1 WHERE tenant = ? AND name = ? AND is_current = 1",
                           &changed, 2, tenant, name);
    if (rc == 0 && changed == 0) rc = MK_ENOTFOUND;
    return rc;
}
