"""Real servers for the integration tests: Redis, RabbitMQ and HAProxy, each started on
free loopback ports in a temporary directory of its own and stopped (with everything it
left behind) when the test is done. Missing binaries fail the test: they are part of
`scripts/install-deps.sh --test`, so a machine without them is broken, not excused.

PostgreSQL has its own helper (pg_server.py).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from conftest import SLOW, free_port, wait_for

RABBITMQ_BIN = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _require(path_or_name, package):
    exe = path_or_name if os.path.isabs(path_or_name) else shutil.which(path_or_name)
    if not exe or not os.access(exe, os.X_OK):
        pytest.fail(f"{path_or_name} is missing (Debian package {package}): run scripts/install-deps.sh --test")
    return exe


def redis_server(workdir=None, log=subprocess.DEVNULL):
    """A redis-server without persistence on a free port, answering PING: (Popen, port).
    The caller stops it (tests kill it mid-test to see Mayak without Redis)."""
    exe = _require("redis-server", "redis-server")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if workdir:
        args += ["--dir", workdir]
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def up():
        if p.poll() is not None:
            raise AssertionError(f"redis-server exited with {p.returncode}")
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    try:
        wait_for(up, what="redis-server")
    except BaseException:
        p.kill()
        p.wait()
        raise
    return p, port


class RedisServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mayak-redis-")
        self.log = open(os.path.join(self.dir, "redis.log"), "wb")
        self.proc, self.port = redis_server(self.dir, self.log)
        self.url = f"redis://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class RabbitServer:
    """A broker node of its own (own node name, ports, data and logs; no plugins)."""

    def __init__(self):
        _require(RABBITMQ_BIN, "rabbitmq-server")
        self.dir = tempfile.mkdtemp(prefix="mayak-rmq-")
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.node = f"mkit{os.getpid()}x{self.port}@localhost"
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        self.env = dict(os.environ, HOME=self.dir, RABBITMQ_NODENAME=self.node,
                        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_NODE_PORT=str(self.port),
                        RABBITMQ_DIST_PORT=str(self.dist_port), ERL_EPMD_PORT=str(self.epmd_port),
                        RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                        RABBITMQ_PID_FILE=os.path.join(self.dir, "rabbit.pid"),
                        RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
                        RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.dir, "advanced.config"),
                        RABBITMQ_CONF_ENV_FILE=os.path.join(self.dir, "rabbitmq-env.conf"))
        self.out = open(os.path.join(self.dir, "server.out"), "ab")
        # Its own session, so that stopping it (and the Erlang processes it starts)
        # is one signal to the group.
        self.proc = subprocess.Popen([RABBITMQ_BIN], env=self.env, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: self._started() or self.proc.poll() is not None, timeout=60, interval=0.1,
                     what="rabbitmq-server")
            if self.proc.poll() is not None:
                raise AssertionError("rabbitmq-server exited during startup:\n" + self.output()[-3000:])
        except BaseException:
            self.stop()
            raise
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _started(self):
        log = os.path.join(self.dir, "log", f"{self.node}.log")
        try:
            with open(log, "rb") as f:
                return b"Server startup complete" in f.read() and port_open(self.port)
        except OSError:
            return False

    def output(self):
        with open(os.path.join(self.dir, "server.out"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        if os.access(epmd, os.X_OK):
            subprocess.run([epmd, "-port", str(self.epmd_port), "-kill"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class HAProxy:
    """HAProxy in front of `backends` ((name, port) pairs): round robin, health checks
    on /readyz, WebSocket tunnels kept open."""

    def __init__(self, backends, check_ms=300):
        exe = _require("haproxy", "haproxy")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mayak-haproxy-")
        servers = "\n".join(f"    server {name} 127.0.0.1:{port} check inter {check_ms}ms fall 2 rise 1"
                            for name, port in backends)
        self.cfg_path = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg_path, "w") as f:
            f.write(f"""global
    maxconn 2000
defaults
    mode http
    option http-server-close
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    retries 2
    option redispatch
frontend mayak
    bind 127.0.0.1:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /readyz
{servers}
""")
        check = subprocess.run([exe, "-c", "-f", self.cfg_path], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([exe, "-db", "-f", self.cfg_path], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, timeout=10, what="haproxy")
        assert self.proc.poll() is None, self.output()
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        self.log.flush()
        with open(os.path.join(self.dir, "haproxy.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

