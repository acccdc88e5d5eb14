"""The PostgreSQL test helper itself (pg_server.py): a server starts on a free
loopback port with a password, survives a restart, and leaves nothing behind."""
import os
import socket

import pytest

from pg_server import PgServer, find_bindir, pg_server  # noqa: F401 (fixture)


def test_postgres_is_installed():
    assert find_bindir(), "PostgreSQL server binaries are missing: run scripts/install-deps.sh --test"


def test_start_query_restart(pg_server):  # noqa: F811
    assert pg_server.psql("SELECT 40 + 2").strip() == "42"
    assert pg_server.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    pg_server.create_db("app")
    pg_server.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (7)", db="app")
    pg_server.restart()
    assert pg_server.psql("SELECT v FROM t", db="app").strip() == "7"
    assert pg_server.url("app").startswith(f"postgres://mayak:{pg_server.password}@127.0.0.1:{pg_server.port}/app?")


def test_password_is_required():
    with PgServer() as pg:
        pg.password, real = "wrong", pg.password
        with pytest.raises(RuntimeError, match="password authentication failed"):
            pg.psql("SELECT 1")
        pg.password = real


def test_stop_removes_everything():
    pg = PgServer().start()
    root, port = pg.root, pg.port
    pg.stop()
    pg.stop()  # twice is fine
    assert not os.path.exists(root)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing listens any more"
