/* Agent memory on a real PostgreSQL (started by the test run, one schema per test):
 * the same cases as on SQLite (memory_cases.h). Skipped when the server binaries
 * are not installed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory_cases.h"
#include "pg_server.h"

static struct pg_server shared; /* the runner process's; tests import it */

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char bindir[192], err[2048];
    if (!pg_server_find(bindir, sizeof bindir)) {
        setenv("MK_PG_SKIP", "PostgreSQL server binaries not installed", 1);
        return;
    }
    if (pg_server_start(&shared, err, sizeof err) != 0) {
        setenv("MK_PG_ERROR", err, 1);
        return;
    }
    pg_server_export(&shared, "MK_PG");
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    pg_server_stop(&shared);
}

static struct pg_server srv;
static char schema[32];
static char url[512];
static char dir[64];

static void setup(void)
{
    const char *skip = getenv("MK_PG_SKIP");
    if (skip) cr_assert_fail("%s: run scripts/install-deps.sh --test", skip); /* never a quiet pass */
    const char *e = getenv("MK_PG_ERROR");
    if (e) cr_assert_fail("PostgreSQL did not start: %s", e);
    cr_assert_eq(pg_server_import(&srv, "MK_PG"), 0);
    snprintf(schema, sizeof schema, "m_%d", (int)getpid());
    char sql[64], err[1024];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    cr_assert_eq(pg_server_psql(&srv, "postgres", sql, err, sizeof err), 0, "%s", err);
    char q[160];
    snprintf(q, sizeof q, "options=-csearch_path%%3D%s", schema);
    cr_assert_eq(pg_server_url(&srv, "postgres", q, url, sizeof url), 0);
    snprintf(dir, sizeof dir, "/tmp/mk-memory-pg-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    if (schema[0]) {
        char sql[64];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        pg_server_psql(&srv, "postgres", sql, NULL, 0);
    }
    if (dir[0]) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
}

TestSuite(memory_postgres, .init = setup, .fini = teardown, .timeout = 180);

Test(memory_postgres, episodes) { case_episodes(url); }
Test(memory_postgres, episode_validation) { case_episode_validation(url); }
Test(memory_postgres, skills) { case_skills(url); }
Test(memory_postgres, facts) { case_facts(url); }
Test(memory_postgres, links) { case_links(url); }
Test(memory_postgres, history) { case_history(url); }
Test(memory_postgres, sweep_and_erase) { case_sweep_and_erase(url); }
Test(memory_postgres, erase_hooks) { case_erase_hooks(url); }
Test(memory_postgres, sessions) { case_sessions(url); }
Test(memory_postgres, session_cache) { case_session_cache(url); }
Test(memory_postgres, search_hydration) { case_search_hydration(url); }
Test(memory_postgres, sync_and_persist) { case_sync_and_persist(url, dir); }
