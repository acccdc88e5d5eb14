/* API keys: create/verify/list/rotate/revoke on a real SQLite store, the hashed-only
 * storage, the cache (hot path, cross-node delay), the async path and the CLI. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/mk_keys.h"
#include "core/mk_error.h"
#include "core/mk_log.h"

static char dir[128];
static struct mk_store *store;
static struct mk_keys *keys;
static struct mk_store_conn *conn;
static int64_t wall;

static int64_t fake_wall(void *arg) { return wall; }

static void open_keys(struct mk_keys **k, uint32_t ttl_ms)
{
    struct mk_keys_options o = {.cache_ttl_ms = ttl_ms, .negative_ttl_ms = ttl_ms, .clock_ms = fake_wall};
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_keys_open(store, dir, &o, k, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
}

static void setup(void)
{
    mk_log_set_level(MK_LOG_OFF);
    snprintf(dir, sizeof dir, "/tmp/mk-keys-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char url[256];
    snprintf(url, sizeof url, "sqlite://%s/mayak.db", dir);
    cr_assert_eq(mk_store_open(url, NULL, &store, NULL), 0);
    wall = 1700000000000;
    open_keys(&keys, 60000);
    cr_assert_eq(mk_store_acquire(store, &conn), 0);
}

static void teardown(void)
{
    mk_store_release(store, conn);
    mk_keys_free(keys);
    mk_store_free(store);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) { /* best effort */
    }
}

TestSuite(keys, .init = setup, .fini = teardown, .timeout = 60);

static void create(const char *tenant, enum mk_role role, struct mk_key_record *rec, char key[MK_KEY_STRING_BYTES])
{
    struct mk_key_spec spec = {.tenant = tenant, .role = role, .name = "ci", .models = "gpt,local", .rpm = 30,
                               .budget_day = 2.5};
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_keys_create(keys, conn, &spec, rec, key, &err), 0, "%s", err.data ? err.data : "");
    mk_buf_release(&err);
}

Test(keys, create_verify_and_hashed_storage)
{
    struct mk_key_record rec;
    char key[MK_KEY_STRING_BYTES];
    create("acme", MK_ROLE_DEVELOPER, &rec, key);
    cr_assert(mk_keys_well_formed(key, strlen(key)));
    cr_assert_eq(strncmp(key + 3, rec.id, MK_KEY_ID_CHARS), 0, "the public id is inside the key");
    struct mk_principal p;
    cr_assert_eq(mk_keys_verify_sync(keys, conn, key, strlen(key), &p), 0);
    cr_assert_eq(p.kind, MK_PRINCIPAL_KEY);
    cr_assert_str_eq(p.id, rec.id);
    cr_assert_str_eq(p.tenant, "acme");
    cr_assert_eq(p.role, MK_ROLE_DEVELOPER);
    cr_assert_str_eq(p.models, "gpt,local");
    cr_assert_eq(p.rpm, 30);
    cr_assert_float_eq(p.budget_day, 2.5, 1e-12);

    /* a near miss is not a key */
    char other[MK_KEY_STRING_BYTES];
    memcpy(other, key, sizeof other);
    other[20] = other[20] == 'a' ? 'b' : 'a';
    cr_assert_eq(mk_keys_verify_sync(keys, conn, other, strlen(other), &p), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_keys_verify_sync(keys, conn, "mk-short", 8, &p), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_keys_verify_sync(keys, conn, key, strlen(key) - 1, &p), MK_EUNAUTHORIZED);

    /* the database file never holds the secret part */
    mk_store_release(store, conn);
    conn = NULL;
    mk_store_free(store);
    store = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/mayak.db", dir);
    FILE *f = fopen(path, "rb");
    char *buf = malloc(4 << 20);
    size_t n = fread(buf, 1, 4 << 20, f);
    fclose(f);
    cr_assert_null(memmem(buf, n, key + 12, MK_KEY_SECRET_CHARS), "secret found in the database");
    cr_assert_not_null(memmem(buf, n, rec.id, MK_KEY_ID_CHARS), "the id is stored");
    free(buf);
    char url[256];
    snprintf(url, sizeof url, "sqlite://%s/mayak.db", dir);
    cr_assert_eq(mk_store_open(url, NULL, &store, NULL), 0);
    cr_assert_eq(mk_store_acquire(store, &conn), 0);
}

Test(keys, secret_file_is_private_and_checked)
{
    char path[256];
    snprintf(path, sizeof path, "%s/" MK_AUTH_SECRET_FILE, dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    unsigned char a[MK_AUTH_SECRET_BYTES], b[MK_AUTH_SECRET_BYTES];
    cr_assert_eq(mk_auth_secret_load(dir, a, NULL), 0);
    cr_assert_eq(mk_auth_secret_load(dir, b, NULL), 0);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "stable across loads");
    chmod(path, 0640);
    mk_buf err = MK_BUF_INIT;
    cr_assert_eq(mk_auth_secret_load(dir, a, &err), MK_ECONFIG);
    cr_assert(err.len > 0);
    chmod(path, 0600);
    FILE *f = fopen(path, "ab");
    fputc('x', f);
    fclose(f);
    cr_assert_eq(mk_auth_secret_load(dir, a, NULL), MK_ECORRUPT);
    mk_buf_release(&err);
}

Test(keys, bad_specs)
{
    struct mk_key_record rec;
    char key[MK_KEY_STRING_BYTES];
    struct mk_key_spec s = {.tenant = "acme", .role = MK_ROLE_USER};
    const char *tenants[] = {"", "has space", "{brace}", "x/y",
                             "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof tenants / sizeof tenants[0]; i++) {
        s.tenant = tenants[i];
        cr_assert_eq(mk_keys_create(keys, conn, &s, &rec, key, NULL), MK_EINVAL, "tenant '%s'", tenants[i]);
    }
    s.tenant = "acme";
    s.models = "a,,b";
    cr_assert_eq(mk_keys_create(keys, conn, &s, &rec, key, NULL), MK_EINVAL);
    s.models = "a b";
    cr_assert_eq(mk_keys_create(keys, conn, &s, &rec, key, NULL), MK_EINVAL);
    s.models = NULL;
    s.budget_day = -1;
    cr_assert_eq(mk_keys_create(keys, conn, &s, &rec, key, NULL), MK_EINVAL);
    s.budget_day = 0;
    s.role = (enum mk_role)17;
    cr_assert_eq(mk_keys_create(keys, conn, &s, &rec, key, NULL), MK_EINVAL);
}

Test(keys, revoke_rotate_expire_list)
{
    struct mk_key_record a, b, rot;
    char ka[MK_KEY_STRING_BYTES], kb[MK_KEY_STRING_BYTES], kr[MK_KEY_STRING_BYTES];
    create("acme", MK_ROLE_USER, &a, ka);
    wall += 1000;
    create("beta", MK_ROLE_ADMIN, &b, kb);
    struct mk_principal p;
    cr_assert_eq(mk_keys_verify_sync(keys, conn, ka, strlen(ka), &p), 0);

    /* revoke: effective at once on this node even though the entry is cached */
    cr_assert_eq(mk_keys_revoke(keys, conn, a.id), 0);
    cr_assert_eq(mk_keys_verify_sync(keys, conn, ka, strlen(ka), &p), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_keys_revoke(keys, conn, a.id), MK_ENOTFOUND);
    cr_assert_eq(mk_keys_rotate(keys, conn, a.id, 0, &rot, kr), MK_ENOTFOUND, "revoked keys do not rotate");

    /* rotate without grace */
    cr_assert_eq(mk_keys_verify_sync(keys, conn, kb, strlen(kb), &p), 0);
    cr_assert_eq(mk_keys_rotate(keys, conn, b.id, 0, &rot, kr), 0);
    cr_assert_str_eq(rot.rotated_from, b.id);
    cr_assert_str_eq(rot.tenant, "beta");
    cr_assert_eq(rot.role, MK_ROLE_ADMIN);
    cr_assert_eq(mk_keys_verify_sync(keys, conn, kb, strlen(kb), &p), MK_EUNAUTHORIZED);
    cr_assert_eq(mk_keys_verify_sync(keys, conn, kr, strlen(kr), &p), 0);

    /* rotate with a grace period: the old key works until it ends */
    struct mk_key_record rot2;
    char kr2[MK_KEY_STRING_BYTES];
    cr_assert_eq(mk_keys_rotate(keys, conn, rot.id, 60000, &rot2, kr2), 0);
    cr_assert_eq(mk_keys_verify_sync(keys, conn, kr, strlen(kr), &p), 0, "inside the grace period");
    wall += 60001;
    cr_assert_eq(mk_keys_verify_sync(keys, conn, kr, strlen(kr), &p), MK_EUNAUTHORIZED, "after it");
    cr_assert_eq(mk_keys_verify_sync(keys, conn, kr2, strlen(kr2), &p), 0);

    /* expiry */
    struct mk_key_spec s = {.tenant = "acme", .role = MK_ROLE_USER, .expires_at_ms = wall + 5000};
    struct mk_key_record e;
    char ke[MK_KEY_STRING_BYTES];
    cr_assert_eq(mk_keys_create(keys, conn, &s, &e, ke, NULL), 0);
    cr_assert_eq(mk_keys_verify_sync(keys, conn, ke, strlen(ke), &p), 0);
    wall += 5000;
    cr_assert_eq(mk_keys_verify_sync(keys, conn, ke, strlen(ke), &p), MK_EUNAUTHORIZED);

    struct mk_key_record *list;
    size_t n;
    cr_assert_eq(mk_keys_list(keys, conn, false, &list, &n), 0);
    /* not revoked: the graced old key (now expired), the last rotation, the expired key */
    cr_assert_eq(n, 3);
    free(list);
    cr_assert_eq(mk_keys_list(keys, conn, true, &list, &n), 0);
    cr_assert_eq(n, 5);
    cr_assert_geq(list[0].created_at_ms, list[n - 1].created_at_ms, "newest first");
    free(list);
}

Test(keys, other_node_sees_revocation_after_cache_ttl)
{
    struct mk_keys *node_b;
    open_keys(&node_b, 40);
    struct mk_key_record rec;
    char key[MK_KEY_STRING_BYTES];
    create("acme", MK_ROLE_USER, &rec, key);
    struct mk_principal p;
    cr_assert_eq(mk_keys_verify_sync(node_b, conn, key, strlen(key), &p), 0);
    cr_assert_eq(mk_keys_revoke(keys, conn, rec.id), 0, "revoked on node A");
    /* node B still trusts its fresh cache entry (the documented delay) ... */
    int rc = mk_keys_verify_sync(node_b, conn, key, strlen(key), &p);
    struct mk_keys_stats st;
    mk_keys_get_stats(node_b, &st);
    cr_assert_eq(st.store_reads, 1, "the second check came from the cache");
    cr_assert_eq(rc, 0);
    /* ... and re-reads the store once the entry is older than cache_ttl */
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    cr_assert_eq(mk_keys_verify_sync(node_b, conn, key, strlen(key), &p), MK_EUNAUTHORIZED);
    mk_keys_free(node_b);
}

struct vwait {
    volatile bool done;
    int rc;
    struct mk_principal p;
};
static void on_verify(int rc, const struct mk_principal *p, void *arg)
{
    struct vwait *w = arg;
    w->rc = rc;
    if (p) w->p = *p;
    w->done = true;
}

Test(keys, async_verify_on_a_loop)
{
    struct mk_key_record rec;
    char key[MK_KEY_STRING_BYTES];
    create("acme", MK_ROLE_OPERATOR, &rec, key);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct vwait w = {0};
    cr_assert_eq(mk_keys_verify(keys, &loop, key, strlen(key), on_verify, &w), 0);
    cr_assert_not(w.done, "a miss goes to the thread pool");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(w.done);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.p.role, MK_ROLE_OPERATOR);
    struct vwait w2 = {0};
    cr_assert_eq(mk_keys_verify(keys, &loop, key, strlen(key), on_verify, &w2), 0);
    cr_assert(w2.done, "a hit answers before returning");
    struct vwait w3 = {0};
    cr_assert_eq(mk_keys_verify(keys, &loop, "junk", 4, on_verify, &w3), 0);
    cr_assert(w3.done);
    cr_assert_eq(w3.rc, MK_EUNAUTHORIZED);
    /* last_used_at was written by the store read */
    struct mk_key_record got;
    cr_assert_eq(mk_keys_get(keys, conn, rec.id, &got), 0);
    cr_assert_eq(got.last_used_at_ms, wall);
    uv_loop_close(&loop);
}

/* Runs the CLI with stdout captured into `out`. */
static int cli(char *out, size_t cap, int argc, const char **argv)
{
    fflush(stdout);
    char path[256];
    snprintf(path, sizeof path, "%s/cli.out", dir);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    close(fd);
    int rc = mk_keys_cli_main(argc, (char **)argv, dir);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fopen(path, "rb");
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return rc;
}

static const char *last_line(char *s)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n') s[--n] = '\0';
    char *nl = strrchr(s, '\n');
    return nl ? nl + 1 : s;
}

Test(keys, cli_create_list_rotate_revoke)
{
    /* the CLI opens its own store on <dir>/mayak.db: free ours first */
    mk_store_release(store, conn);
    conn = NULL;
    char out[16384];
    const char *create_argv[] = {"create", "--tenant", "acme", "--role", "developer", "--rpm", "90",
                                 "--budget", "3.5", "--models", "gpt,local", "--expires", "30"};
    cr_assert_eq(cli(out, sizeof out, 13, create_argv), 0, "%s", out);
    char key[MK_KEY_STRING_BYTES];
    snprintf(key, sizeof key, "%s", last_line(out));
    cr_assert(mk_keys_well_formed(key, strlen(key)), "last line is the key alone: '%s'", key);

    cr_assert_eq(mk_store_acquire(store, &conn), 0);
    struct mk_principal p;
    cr_assert_eq(mk_keys_verify_sync(keys, conn, key, strlen(key), &p), 0);
    cr_assert_eq(p.rpm, 90);
    cr_assert_gt(p.expires_at_ms, 0);
    mk_store_release(store, conn);
    conn = NULL;

    const char *list_argv[] = {"list", "--json"};
    cr_assert_eq(cli(out, sizeof out, 2, list_argv), 0);
    char id[16];
    snprintf(id, sizeof id, "%.8s", key + 3);
    cr_assert_not_null(strstr(out, id));
    cr_assert_not_null(strstr(out, "\"models\":[\"gpt\",\"local\"]"), "%s", out);
    cr_assert_null(strstr(out, key + 12), "list never shows secrets");
    const char *table_argv[] = {"keys", "list"};
    cr_assert_eq(cli(out, sizeof out, 2, table_argv), 0);
    cr_assert_not_null(strstr(out, "TENANT"));
    cr_assert_not_null(strstr(out, "acme"));

    const char *rotate_argv[] = {"rotate", id};
    cr_assert_eq(cli(out, sizeof out, 2, rotate_argv), 0, "%s", out);
    char key2[MK_KEY_STRING_BYTES];
    snprintf(key2, sizeof key2, "%s", last_line(out));
    cr_assert(mk_keys_well_formed(key2, strlen(key2)));
    char id2[16];
    snprintf(id2, sizeof id2, "mk-%.8s", key2 + 3);
    const char *revoke_argv[] = {"revoke", id2};
    cr_assert_eq(cli(out, sizeof out, 2, revoke_argv), 0, "%s", out);
    cr_assert_eq(cli(out, sizeof out, 2, revoke_argv), 1, "already revoked");

    const char *bad1[] = {"create", "--tenant", "acme"};
    cr_assert_eq(cli(out, sizeof out, 3, bad1), 2);
    const char *bad2[] = {"create", "--tenant", "acme", "--role", "root"};
    cr_assert_eq(cli(out, sizeof out, 5, bad2), 2);
    const char *bad3[] = {"create", "--tenant", "acme", "--role", "user", "--rpm", "-5"};
    cr_assert_eq(cli(out, sizeof out, 7, bad3), 2);
    const char *bad4[] = {"frobnicate"};
    cr_assert_eq(cli(out, sizeof out, 1, bad4), 2);
    const char *bad5[] = {"revoke"};
    cr_assert_eq(cli(out, sizeof out, 1, bad5), 2);
    cr_assert_eq(mk_store_acquire(store, &conn), 0);
}
