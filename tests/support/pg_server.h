/*
 * pg_server: a throwaway PostgreSQL server for tests (Criterion or any C test).
 *
 * pg_server_start runs initdb into a fresh temp dir and starts the server on
 * 127.0.0.1 at a free port, with its socket in the temp dir, a user "mayak" with a
 * random password (scram-sha-256 over TCP), fsync off. PostgreSQL refuses to run as
 * root, so under root the server's commands run as the "postgres" account (created
 * by Debian's postgresql package) and the temp dir is handed to it.
 *
 * Cleanup is always: pg_server_stop stops it (immediate mode) and removes the temp
 * dir; and a small watchdog process, started with the server, does the same if the
 * process that started it dies without calling stop (a crash, a timeout kill), so no
 * server outlives its test.
 *
 * Criterion runs every test in a fresh process (a re-exec: statics do not carry
 * over), so one server shared by a test binary is started in a ReportHook(PRE_ALL),
 * published with pg_server_export (environment variables, which the test processes
 * inherit), found again with pg_server_import, and stopped in ReportHook(POST_ALL).
 * Each test then works in its own database (pg_server_create_db).
 *
 * Server binaries: $MAYAK_PG_BINDIR, else the newest /usr/lib/postgresql/<v>/bin,
 * else the directory of `pg_ctl` on PATH. Commands that fail return -1 and put a
 * sentence (and the tail of the relevant log) into err when err is not NULL.
 */
#ifndef MK_TEST_PG_SERVER_H
#define MK_TEST_PG_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pg_server {
    char root[96];            /* temp dir: data/, server.log, initdb.log, pwfile */
    char bindir[192];
    int port;
    char user[16];            /* "mayak" */
    char password[33];
    bool as_other;            /* commands run as uid/gid below (we are root) */
    uid_t uid;
    gid_t gid;
    bool owner;               /* started here (stop removes it); false after import */
    bool running;
    int guard_fd;             /* write end of the watchdog's pipe; -1 when none */
    pid_t guard_pid;
};

/* True when the server binaries are found (bindir gets their directory). */
bool pg_server_find(char *bindir, size_t n);

/* Creates and starts a server. 0 or -1 (err gets why). */
int pg_server_start(struct pg_server *s, char *err, size_t errlen);
/* Stops it at once (pg_ctl stop -m immediate) and removes the temp dir. Only the
 * process that started it does anything; safe to call twice. */
void pg_server_stop(struct pg_server *s);

/* Stops the server without removing anything (clients see their connections drop),
 * then starts it again on the same port and data. 0 or -1. */
int pg_server_halt(struct pg_server *s, char *err, size_t errlen);
int pg_server_resume(struct pg_server *s, char *err, size_t errlen);

/* "postgres://mayak:<pw>@127.0.0.1:<port>/<db>?sslmode=disable[&<extra>]" into out.
 * extra may be NULL. 0, or -1 when out is too small. */
int pg_server_url(const struct pg_server *s, const char *db, const char *extra, char *out, size_t n);

/* Runs one SQL script with psql (ON_ERROR_STOP) against db. 0 or -1 (err gets psql's
 * output). */
int pg_server_psql(const struct pg_server *s, const char *db, const char *sql, char *err, size_t errlen);
/* CREATE DATABASE / DROP DATABASE ... WITH (FORCE). name: [a-z0-9_] only. */
int pg_server_create_db(const struct pg_server *s, const char *name, char *err, size_t errlen);
int pg_server_drop_db(const struct pg_server *s, const char *name);

/* Publishes the server to child processes through environment variables named
 * <prefix>_PORT and so on, and finds it again in a child. import returns -1 when no
 * server was published. An imported server is not the child's to stop. */
int pg_server_export(const struct pg_server *s, const char *prefix);
int pg_server_import(struct pg_server *s, const char *prefix);

#endif
