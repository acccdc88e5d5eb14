"""The audit chain written by a running Mayak: every API request is recorded, the
chain verifies, and tampering with the stored rows is detected and named."""
import json
import os
import sqlite3
import subprocess

import requests

from conftest import MAYAK_BIN, openai_config


def run_cli(workdir, *args):
    return subprocess.run([MAYAK_BIN, *args], cwd=workdir, capture_output=True, text=True, timeout=60)


def test_requests_are_audited_and_tampering_detected(fake, mayak_factory, workdir):
    m = mayak_factory(openai_config(fake.url))
    for i in range(3):
        assert m.chat(f"audit me {i}").status_code == 200
    assert m.chat("x", model="nope").status_code == 404
    requests.get(m.url + "/metrics", timeout=5)  # scrapes are not audited
    assert m.stop() == 0

    res = run_cli(workdir, "audit", "verify")
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_cli(workdir, "audit", "export", "--format", "jsonl")
    records = [json.loads(l) for l in res.stdout.splitlines() if l.strip()]
    actions = [r["action"] for r in records]
    assert actions.count("chat.completions") == 4 and "metrics" not in actions
    assert records[-1]["status"] == 404 and records[-1]["outcome"].startswith("error:")
    assert all(r["prompt_text"] is None for r in records), "raw text is kept only on opt-in"

    db = sqlite3.connect(os.path.join(workdir, "mayak-data", "mayak.db"))
    db.execute("UPDATE audit_log SET status = 201 WHERE seq = 2")
    db.commit()
    db.close()
    res = run_cli(workdir, "audit", "verify")
    assert res.returncode == 1
    assert "2" in res.stdout + res.stderr
