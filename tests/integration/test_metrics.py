"""/metrics, health and the deploy/ observability files against a running Mayak:
promtool accepts the exposition, a real Prometheus scrapes it, and every metric the
Grafana dashboard queries is really exported."""
import json
import os
import re
import shutil
import subprocess

import requests

from conftest import SOURCE_DIR, Process, free_port, openai_config, wait_for

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def exported_metric_names(text):
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def drive_traffic(m):
    assert m.chat("metrics please").status_code == 200
    r = m.chat("stream please", stream=True)
    assert r.status_code == 200
    r.content  # read it all
    assert m.chat("x", model="unknown").status_code == 404


def test_promtool_accepts_metrics(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    drive_traffic(m)
    text = m.metrics()
    assert "mayak_http_requests_total" in text
    res = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()


def test_dashboard_queries_only_exported_metrics(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    drive_traffic(m)
    exported = exported_metric_names(m.metrics())
    dash = json.load(open(os.path.join(SOURCE_DIR, "deploy", "grafana", "mayak-dashboard.json")))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    used = set()
    for e in exprs:
        for name in re.findall(r"\bmayak_[a-z0-9_]+", e):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    missing = sorted(n for n in used if n not in exported)
    assert not missing, f"dashboard queries metrics Mayak does not export: {missing}"


def test_health_and_readiness(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    assert requests.get(m.url + "/healthz", timeout=5).json()["status"] == "ok"
    r = requests.get(m.url + "/readyz", timeout=5)
    assert r.status_code == 200 and r.json()["usable_deployments"]["default"] == 1


def test_real_prometheus_scrapes_mayak(fake, mayak_factory, workdir):
    m = mayak_factory(openai_config(fake.url))
    drive_traffic(m)
    port = free_port()
    cfg = os.path.join(workdir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: mayak
    static_configs:
      - targets: ['127.0.0.1:{m.port}']
""")
    prom = Process([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={workdir}/tsdb",
                    f"--web.listen-address=127.0.0.1:{port}"], cwd=workdir, name="prometheus")
    try:
        def scraped():
            r = requests.get(f"http://127.0.0.1:{port}/api/v1/query",
                             params={"query": 'mayak_http_requests_total{route="chat_completions"}'}, timeout=2)
            res = r.json()["data"]["result"]
            return len(res) > 0
        wait_for(scraped, timeout=60, interval=0.5, what="prometheus to scrape mayak")
        up = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up{job='mayak'}"},
                          timeout=5).json()["data"]["result"]
        assert up and up[0]["value"][1] == "1"
    finally:
        prom.stop()
