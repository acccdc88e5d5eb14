"""Shared fixtures for Mayak's integration tests.

Every test drives the real binaries over loopback: `mayak` (MAYAK_BIN) and the fake
LLM provider (MAYAK_FAKE_BIN), each started on a free port chosen here and stopped
at the end of the test. Nothing here talks to anything but 127.0.0.1.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time

import pytest
import requests

SOURCE_DIR = os.environ.get("MAYAK_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
MAYAK_BIN = os.environ.get("MAYAK_BIN", os.path.join(SOURCE_DIR, "build", "mayak"))
FAKE_BIN = os.environ.get("MAYAK_FAKE_BIN", os.path.join(SOURCE_DIR, "build", "mayak-fake-provider"))
SANITIZED = os.environ.get("MAYAK_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE")
# Sanitizer builds are several times slower: waits scale with this.
SLOW = 4 if SANITIZED else 1


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as e:  # the server may not be up yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class Process:
    """A child process whose stdout+stderr go to a log file that tests can read."""

    def __init__(self, args, cwd, env=None, name="proc"):
        self.log_path = os.path.join(cwd, f"{name}.log")
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        full_env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        """Parsed JSON log lines (non-JSON lines are skipped)."""
        out = []
        for line in self.output().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Fake:
    def __init__(self, workdir, extra_args=()):
        self.port = free_port()
        self.proc = Process([FAKE_BIN, "--host", "127.0.0.1", "--port", str(self.port), *extra_args],
                            cwd=workdir, name=f"fake-{self.port}")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: requests.get(self.url + "/healthz", timeout=1).status_code in (200, 503),
                 what="the fake provider")

    def mode(self, **kw):
        r = requests.post(self.url + "/_fake/mode", json=kw, timeout=5)
        assert r.status_code == 200, r.text

    def reset(self):
        requests.post(self.url + "/_fake/reset", timeout=5)

    def stats(self):
        return requests.get(self.url + "/_fake/stats", timeout=5).json()

    def requests(self, last=10):
        return requests.get(self.url + f"/_fake/requests?last={last}", timeout=5).json()

    def stop(self):
        return self.proc.stop()


class Mayak:
    def __init__(self, workdir, config=None, args=(), env=None, listen_port=None):
        self.workdir = workdir
        self.port = listen_port or free_port()
        self.config_path = None
        cmd = [MAYAK_BIN, "serve"]
        if config is not None:
            self.config_path = os.path.join(workdir, "mayak.yaml")
            self.write_config(config)
            cmd += ["--config", self.config_path]
        else:
            cmd += ["--listen", f"127.0.0.1:{self.port}"]
        cmd += list(args)
        self.proc = Process(cmd, cwd=workdir, env=env, name=f"mayak-{self.port}")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: not self.proc.alive() or requests.get(self.url + "/healthz", timeout=1).status_code == 200,
                 what="mayak to listen")
        if not self.proc.alive():
            raise AssertionError("mayak exited at start:\n" + self.proc.output())

    def write_config(self, config):
        text = textwrap.dedent(config).replace("{port}", str(self.port))
        with open(self.config_path, "w") as f:
            f.write(text)

    def chat(self, content, model="default", stream=False, timeout=30, **extra):
        body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
        body.update(extra)
        return requests.post(self.url + "/v1/chat/completions", json=body, timeout=timeout * SLOW, stream=stream)

    def metrics(self):
        return requests.get(self.url + "/metrics", timeout=5).text

    def stop(self, timeout=20):
        return self.proc.stop(timeout)


def sse_events(response):
    """The data payloads of an SSE response, in order ("[DONE]" included)."""
    events = []
    for line in response.iter_lines(decode_unicode=False):
        if line.startswith(b"data: "):
            events.append(line[6:].decode("utf-8"))
    return events


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="mayak-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fake_factory(workdir):
    started = []

    def make(*extra_args):
        f = Fake(workdir, extra_args)
        started.append(f)
        return f

    yield make
    for f in started:
        f.stop()


@pytest.fixture
def fake(fake_factory):
    return fake_factory()


@pytest.fixture
def mayak_factory(workdir):
    started = []

    def make(config=None, args=(), env=None):
        m = Mayak(workdir, config, args, env)
        started.append(m)
        return m

    yield make
    for m in started:
        code = m.stop()
        out = m.proc.output()
        # A sanitizer report or a crash fails the test that ran the process.
        assert "ERROR: AddressSanitizer" not in out, out[-5000:]
        assert "runtime error:" not in out, out[-5000:]
        assert "ERROR: LeakSanitizer" not in out, out[-5000:]
        assert code in (0, -signal.SIGTERM, -signal.SIGKILL), f"mayak exited with {code}:\n{out[-3000:]}"


def openai_config(fake_url, policy="priority", extra_groups="", deployments=None, group_extra=""):
    """A config with one openai provider on the fake and group 'default'."""
    deployments = deployments or "      - {provider: fake, model: fake-model}\n"
    return f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: fake
    type: openai
    base_url: {fake_url}/v1
    api_key: test-key
model_groups:
  - name: default
    policy: {policy}
{group_extra}    deployments:
{deployments}{extra_groups}"""


def create_key(cwd, *args, config_path=None):
    """`mayak keys create ARGS` (with --config when given) run in cwd; returns the key,
    which the CLI prints alone on its last line."""
    cmd = [MAYAK_BIN, "keys", "create", *args] + (["--config", config_path] if config_path else [])
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60 * SLOW)
    assert res.returncode == 0, res.stdout + res.stderr
    key = res.stdout.strip().splitlines()[-1].strip()
    assert key.startswith("mk-"), res.stdout
    return key


def two_group_config(fake_url, extra="", provider_extra=""):
    """One openai provider on the fake, groups 'default' (model m) and 'other' (m2)."""
    return f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: fake
    type: openai
    base_url: {fake_url}/v1
{provider_extra}model_groups:
  - name: default
    deployments:
      - {{provider: fake, model: m}}
  - name: other
    deployments:
      - {{provider: fake, model: m2}}
{extra}"""
