"""A throwaway PostgreSQL server for integration tests (the Python twin of
tests/support/pg_server.h).

    from pg_server import PgServer, pg_server   # pg_server is a pytest fixture

    with PgServer() as pg:
        url = pg.url("postgres")          # postgres://mayak:<pw>@127.0.0.1:<port>/postgres?sslmode=disable
        pg.psql("CREATE DATABASE app")
        pg.restart()                      # clients see their connections drop

start() runs initdb into a fresh temp dir and starts the server on 127.0.0.1 at a
free port, its socket in the temp dir, user "mayak" with a random password
(scram-sha-256 over TCP), fsync off. PostgreSQL refuses to run as root, so under root
the server's commands run as the "postgres" account (Debian's postgresql package
creates it) and the temp dir is handed to it.

Cleanup is always: stop() (also at exit and at the end of a `with`) stops the server
in immediate mode and removes the temp dir; a watchdog process started with the
server does the same if this process dies without stopping it (a crash, a kill).

Server binaries: $MAYAK_PG_BINDIR, else the newest /usr/lib/postgresql/<v>/bin, else
the directory of pg_ctl on PATH. Nothing here talks to anything but 127.0.0.1.
"""
import atexit
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse

import pytest

CMD_TIMEOUT = 120  # initdb on a slow, busy machine under sanitizers takes seconds

# Runs in its own session: waits for our end of the pipe to close. "q" first means we
# cleaned up; a bare end-of-file means we died, so it stops the server and removes it.
_WATCHDOG = r"""
import os, shutil, signal, subprocess, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
pg_ctl, data, root, uid, gid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
got = sys.stdin.buffer.read(1)
if got == b"q":
    sys.exit(0)
kw = {} if uid < 0 else {"user": uid, "group": gid, "extra_groups": []}
subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "60", "-s", "stop"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, **kw)
shutil.rmtree(root, ignore_errors=True)
"""


def find_bindir():
    """The directory holding initdb and pg_ctl, or None."""
    def ok(d):
        return all(os.access(os.path.join(d, n), os.X_OK) for n in ("initdb", "pg_ctl"))

    env = os.environ.get("MAYAK_PG_BINDIR")
    if env:
        return env if ok(env) else None
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        ver = os.path.basename(os.path.dirname(d))
        if ver.isdigit() and ok(d):
            found.append((int(ver), d))
    if found:
        return max(found)[1]
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(pg_ctl) if pg_ctl and ok(os.path.dirname(pg_ctl)) else None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One PostgreSQL server in a temp dir; see the module docstring."""

    user = "mayak"

    def __init__(self):
        self.bindir = find_bindir()
        self.root = None
        self.port = None
        self.password = secrets.token_hex(16)
        self.running = False
        self._watchdog = None
        self._as = {}  # subprocess user/group when we are root
        self._uid = self._gid = -1

    # --- lifecycle -------------------------------------------------------------------

    def start(self):
        if not self.bindir:
            raise RuntimeError("PostgreSQL server binaries not found (install postgresql or set MAYAK_PG_BINDIR)")
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' account to run the server as")
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            self._as = {"user": self._uid, "group": self._gid, "extra_groups": []}
        self.root = tempfile.mkdtemp(prefix="mk-pg-")
        atexit.register(self.stop)
        try:
            pwfile = os.path.join(self.root, "pwfile")
            with open(pwfile, "w") as f:
                f.write(self.password + "\n")
            if self._as:
                os.chown(self.root, self._uid, self._gid)
                os.chown(pwfile, self._uid, self._gid)
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, self._bin("pg_ctl"), self._data, self.root,
                 str(self._uid), str(self._gid)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            self._run([self._bin("initdb"), "-D", self._data, "-U", self.user, f"--pwfile={pwfile}",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "-N"],
                      log="initdb.log", what="initdb")
            last = None
            for _ in range(3):  # a free port can be taken before the server binds it
                self.port = _free_port()
                try:
                    self._ctl_start()
                    self.running = True
                    return self
                except RuntimeError as e:
                    last = e
            raise last
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Stops the server (immediate) and removes its files. Safe to call twice."""
        if self.running:
            try:
                self._ctl("stop")
            except RuntimeError:
                pass
            self.running = False
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        if self._watchdog:
            try:
                self._watchdog.stdin.write(b"q")
                self._watchdog.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            self._watchdog.wait(timeout=CMD_TIMEOUT)
            self._watchdog = None

    def halt(self):
        """Stops the server (immediate) keeping its data and port."""
        if self.running:
            self._ctl("stop")
            self.running = False

    def resume(self):
        """Starts a halted server again on the same port."""
        if not self.running:
            self._ctl_start()
            self.running = True

    def restart(self):
        self.halt()
        self.resume()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- use -------------------------------------------------------------------------

    def url(self, db="postgres", **params):
        """A postgres:// URL for db; params become query parameters."""
        q = {"sslmode": "disable", **params}
        return (f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}/{db}?"
                + urllib.parse.urlencode(q))

    def psql(self, sql, db="postgres"):
        """Runs sql with psql (ON_ERROR_STOP); returns its output, raises on failure."""
        env = dict(os.environ, PGPASSWORD=self.password)
        r = subprocess.run([self._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", self.user, "-d", db, "-c", sql],
                           capture_output=True, text=True, env=env, timeout=CMD_TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed running {sql!r}: {r.stderr.strip()}")
        return r.stdout

    def create_db(self, name):
        if not name.replace("_", "").isalnum() or not name.islower():
            raise ValueError(f"bad database name {name!r}")
        self.psql(f"CREATE DATABASE {name}")

    def log(self):
        try:
            with open(os.path.join(self.root, "server.log")) as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    # --- internals -------------------------------------------------------------------

    @property
    def _data(self):
        return os.path.join(self.root, "data")

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    def _run(self, args, log, what):
        path = os.path.join(self.root, log)
        # Our own log of the command's output; the server's account runs the command.
        r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=CMD_TIMEOUT, **self._as)
        with open(path, "a") as f:
            f.write(r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"{what} failed ({r.returncode}):\n{(r.stdout + r.stderr)[-800:]}")

    def _ctl_start(self):
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
                " -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60"
                " -c log_min_messages=warning")
        try:
            self._run([self._bin("pg_ctl"), "-D", self._data, "-l", os.path.join(self.root, "server.log"),
                       "-w", "-t", "60", "-s", "-o", opts, "start"], log="pg_ctl.log", what="pg_ctl start")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n--- server.log ---\n{self.log()[-800:]}") from None

    def _ctl(self, what):
        self._run([self._bin("pg_ctl"), "-D", self._data, "-m", "immediate", "-w", "-t", "60", "-s", what],
                  log="pg_ctl.log", what=f"pg_ctl {what}")


@pytest.fixture
def pg_server():
    """A running PgServer for one test, stopped and removed afterwards. Fails the test
    when PostgreSQL is not installed: scripts/install-deps.sh --test installs it, so a
    missing server is a broken machine, never a quiet pass."""
    if not find_bindir():
        pytest.fail("PostgreSQL server binaries are missing: run scripts/install-deps.sh --test")
    with PgServer() as pg:
        yield pg
