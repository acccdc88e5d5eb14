"""Config checking, SIGHUP reload and SIGTERM drain of the real binary."""
import json
import re
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import MAYAK_BIN, SLOW, Process, free_port, openai_config, sse_events, wait_for

BAD_CONFIG = """\
listen: 127.0.0.1:99999
providers:
  - name: a
    type: openia
    base_url: ftp://nowhere
model_groups:
  - name: default
    polcy: priority
    deployments:
      - {provider: missing, model: m}
"""


def test_config_check_reports_every_problem_with_position(workdir):
    path = os.path.join(workdir, "bad.yaml")
    with open(path, "w") as f:
        f.write(BAD_CONFIG)
    res = subprocess.run([MAYAK_BIN, "config", "check", path], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    lines = [l for l in res.stderr.splitlines() if l.startswith(path + ":")]
    # listen port, provider type, base_url, unknown key, unknown provider: five problems, each with line:col
    assert len(lines) >= 5, res.stderr
    assert any(l.startswith(f"{path}:4:") and "openia" in l for l in lines), res.stderr
    assert any(":8:" in l and "polcy" in l for l in lines), res.stderr
    assert any("missing" in l for l in lines), res.stderr


def test_config_check_accepts_example(workdir):
    from conftest import SOURCE_DIR
    example = os.path.join(SOURCE_DIR, "deploy", "mayak.yaml")
    # Every ${VAR} the example references, set as a deployment would.
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", open(example).read()))
    env = dict(os.environ, **{n: "set-by-test" for n in names})
    example = os.path.join(SOURCE_DIR, "deploy", "mayak.yaml")
    res = subprocess.run([MAYAK_BIN, "config", "check", example], capture_output=True, text=True, env=env, timeout=30)
    assert res.returncode == 0, res.stderr


def test_serve_refuses_bad_config(workdir):
    path = os.path.join(workdir, "bad.yaml")
    with open(path, "w") as f:
        f.write(BAD_CONFIG)
    res = subprocess.run([MAYAK_BIN, "serve", "--config", path], capture_output=True, text=True, timeout=30 * SLOW)
    assert res.returncode != 0
    assert "openia" in res.stderr and f"{path}:" in res.stderr


def test_unset_env_var_is_an_error(workdir):
    path = os.path.join(workdir, "env.yaml")
    with open(path, "w") as f:
        f.write("providers:\n  - name: a\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n"
                "    api_key: ${MAYAK_TEST_SURELY_UNSET}\n")
    env = {k: v for k, v in os.environ.items() if k != "MAYAK_TEST_SURELY_UNSET"}
    res = subprocess.run([MAYAK_BIN, "config", "check", path], capture_output=True, text=True, env=env, timeout=30)
    assert res.returncode != 0 and "MAYAK_TEST_SURELY_UNSET" in res.stderr


def test_sighup_reloads_without_dropping_streams(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    m = mayak_factory(openai_config(a.url))
    # A stream in flight across the reload.
    r = m.chat("long [[fake chunks=10 interval_ms=100]]", stream=True)
    assert r.status_code == 200
    m.write_config(openai_config(b.url).replace("name: default", "name: default\n    aliases: [after-reload]"))
    m.proc.signal(signal.SIGHUP)
    wait_for(lambda: m.chat("new", model="after-reload").status_code == 200, what="reload to take effect")
    events = sse_events(r)
    assert events[-1] == "[DONE]", "the stream that began before the reload must finish cleanly"
    assert b.stats()["requests"] >= 1
    assert 'mayak_config_reloads_total{result="ok"} 1' in m.metrics()


def test_sighup_with_broken_file_keeps_running(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    m.write_config(BAD_CONFIG)
    m.proc.signal(signal.SIGHUP)
    wait_for(lambda: 'mayak_config_reloads_total{result="error"} 1' in m.metrics(), what="failed reload counted")
    assert m.chat("still here").status_code == 200


def test_sigterm_drains_in_flight_stream(fake, workdir):
    from conftest import Mayak
    m = Mayak(workdir, openai_config(fake.url))
    r = m.chat("drain me [[fake chunks=8 interval_ms=100]]", stream=True)
    assert r.status_code == 200
    result = {}

    def read():
        result["events"] = sse_events(r)
    t = threading.Thread(target=read)
    t.start()
    time.sleep(0.15)
    m.proc.signal(signal.SIGTERM)
    time.sleep(0.2 * SLOW)
    # New connections are refused while draining.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(m.url + "/healthz", timeout=2)
    t.join(timeout=30)
    assert result["events"][-1] == "[DONE]"
    assert m.proc.proc.wait(timeout=20 * SLOW) == 0
    m.proc.log.close()
