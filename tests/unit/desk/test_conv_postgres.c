/* Desk conversations on a real PostgreSQL (one server per test binary, one schema per
 * test): the same cases as on SQLite (conv_cases.h). Skipped when the PostgreSQL
 * server binaries are not installed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conv_cases.h"
#include "pg_server.h"

static struct pg_server shared;

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
static char schema[32], url[512];

static void setup(void)
{
    const char *skip = getenv("MK_PG_SKIP");
    if (skip) cr_assert_fail("%s: run scripts/install-deps.sh --test", skip); /* never a quiet pass */
    const char *e = getenv("MK_PG_ERROR");
    if (e) cr_assert_fail("PostgreSQL did not start: %s", e);
    cr_assert_eq(pg_server_import(&srv, "MK_PG"), 0);
    snprintf(schema, sizeof schema, "desk_%d", (int)getpid());
    char sql[64], err[1024], q[160];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    cr_assert_eq(pg_server_psql(&srv, "postgres", sql, err, sizeof err), 0, "%s", err);
    snprintf(q, sizeof q, "options=-csearch_path%%3D%s", schema);
    cr_assert_eq(pg_server_url(&srv, "postgres", q, url, sizeof url), 0);
}

static void teardown(void)
{
    if (!schema[0]) return;
    char sql[64];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    pg_server_psql(&srv, "postgres", sql, NULL, 0);
}

TestSuite(desk_conv_pg, .init = setup, .fini = teardown, .timeout = 180);

Test(desk_conv_pg, lifecycle) { case_lifecycle(url); }
Test(desk_conv_pg, dedupe_and_reopen) { case_dedupe_and_reopen(url); }
Test(desk_conv_pg, validation) { case_validation(url); }
Test(desk_conv_pg, queue_order) { case_queue_order(url); }
Test(desk_conv_pg, analytics) { case_analytics(url); }
