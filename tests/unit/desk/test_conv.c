/* Desk conversations on SQLite (a fresh database file per test): conv_cases.h. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conv_cases.h"

static char dir[64], url[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/mk-desk-conv-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(url, sizeof url, "sqlite://%s/desk.db", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(desk_conv, .init = setup, .fini = teardown, .timeout = 60);

Test(desk_conv, lifecycle) { case_lifecycle(url); }
Test(desk_conv, dedupe_and_reopen) { case_dedupe_and_reopen(url); }
Test(desk_conv, validation) { case_validation(url); }
Test(desk_conv, queue_order) { case_queue_order(url); }
Test(desk_conv, analytics) { case_analytics(url); }
