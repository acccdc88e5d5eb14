"""Routing through Mayak to several fake deployments: each policy, compliance tags,
failover before the first byte, mid-stream cuts, circuit breakers, every timeout."""
import collections
import json
import socket
import time

import requests

from conftest import sse_events, wait_for


def two_provider_config(a, b, policy, dep_a="", dep_b="", group_extra="", provider_extra_a="", provider_extra_b=""):
    return f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: a
    type: openai
    base_url: {a.url}/v1
{provider_extra_a}  - name: b
    type: openai
    base_url: {b.url}/v1
{provider_extra_b}model_groups:
  - name: default
    policy: {policy}
{group_extra}    deployments:
      - {{provider: a, model: model-a{dep_a}}}
      - {{provider: b, model: model-b{dep_b}}}
"""


def served_by(r):
    return r.headers.get("x-mayak-deployment")


def chat_calls(fake):
    """Chat requests the fake received (health checks to /v1/models not counted)."""
    return fake.stats()["by_path"].get("/v1/chat/completions", 0)


def test_priority_uses_first_and_falls_back(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    m = mayak_factory(two_provider_config(a, b, "priority"))
    for _ in range(5):
        r = m.chat("hi")
        assert r.status_code == 200 and served_by(r) == "a/model-a"
    a.mode(status=503)
    r = m.chat("hi")
    assert r.status_code == 200, r.text  # failover before the first byte: no client-visible error
    assert served_by(r) == "b/model-b"
    assert int(r.headers.get("x-mayak-attempts", "2")) >= 1


def test_weighted_follows_weights(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    m = mayak_factory(two_provider_config(a, b, "weighted", dep_a=", weight: 3", dep_b=", weight: 1"))
    counts = collections.Counter(served_by(m.chat("w")) for _ in range(200))
    # Expected 150/50; the bounds are ~5 standard deviations wide so this never flakes.
    assert 115 <= counts["a/model-a"] <= 185, counts


def test_round_robin_alternates(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    m = mayak_factory(two_provider_config(a, b, "round_robin"))
    seq = [served_by(m.chat("rr")) for _ in range(6)]
    assert all(seq[i] != seq[i + 1] for i in range(5)), seq


def test_least_latency_prefers_faster(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    a.mode(latency_ms=150)
    m = mayak_factory(two_provider_config(a, b, "least_latency"))
    seq = [served_by(m.chat("fast?")) for _ in range(12)]
    # After both are measured, the fast one wins the rest.
    assert seq[-5:].count("b/model-b") == 5, seq


def test_least_cost_prefers_cheaper(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    m = mayak_factory(two_provider_config(a, b, "least_cost",
                                          dep_a=", price: {input_per_1k: 1.0, output_per_1k: 2.0}",
                                          dep_b=", price: {input_per_1k: 0.1, output_per_1k: 0.2}"))
    assert {served_by(m.chat("cheap")) for _ in range(5)} == {"b/model-b"}
    text = m.metrics()
    assert 'mayak_cost_total{model_group="default",deployment="b/model-b"}' in text


def test_compliance_tags_restrict_deployments(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    cfg = two_provider_config(a, b, "round_robin", group_extra="    require_tags: [residency:ru]\n",
                              provider_extra_b="    tags: [residency:ru]\n")
    m = mayak_factory(cfg)
    assert {served_by(m.chat("ru only")) for _ in range(6)} == {"b/model-b"}
    b.mode(status=503)
    r = m.chat("ru only")
    # The untagged deployment is never a fallback for a residency-bound group.
    assert r.status_code in (502, 503), r.text
    assert chat_calls(a) == 0


def test_stream_cut_midway_ends_with_error_event(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    m = mayak_factory(two_provider_config(a, b, "priority"))
    r = m.chat("cut [[fake chunks=10 interval_ms=5 cut_after=3]]", stream=True)
    assert r.status_code == 200
    events = sse_events(r)
    assert events[-1] != "[DONE]"
    assert "error" in json.loads(events[-1])
    # Content already sent came from a; no silent switch to b mid-stream.
    assert chat_calls(b) == 0


def test_failover_before_first_byte_on_stream(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    m = mayak_factory(two_provider_config(a, b, "priority"))
    a.mode(cut_after=0)  # a drops every connection before sending anything
    r = m.chat("cut early", stream=True)
    events = sse_events(r)
    assert r.status_code == 200 and events[-1] == "[DONE]"
    assert served_by(r) == "b/model-b"


def test_breaker_opens_half_opens_and_closes(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    group = ("    retry: {max_attempts: 2}\n"
             "    breaker: {consecutive_failures: 3, open_ms: 400, half_open_probes: 1, min_requests: 1000}\n")
    m = mayak_factory(two_provider_config(a, b, "priority", group_extra=group))
    a.mode(status=500)
    for _ in range(3):
        assert m.chat("x").status_code == 200  # each fails over to b
    before = chat_calls(a)
    for _ in range(5):
        r = m.chat("x")
        assert served_by(r) == "b/model-b"
    assert chat_calls(a) == before, "an open breaker must not send traffic to a"
    assert 'mayak_breaker_state{deployment="a/model-a"} 1' in m.metrics()
    a.mode(status=0)
    time.sleep(0.5)
    r = m.chat("probe")  # half-open: this request is the probe, and a is healthy again
    assert served_by(r) == "a/model-a"
    assert 'mayak_breaker_state{deployment="a/model-a"} 0' in m.metrics()


def timeout_config(fake, timeouts):
    return f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: fake
    type: openai
    base_url: {fake.url}/v1
model_groups:
  - name: default
    retry: {{max_attempts: 1}}
    timeouts: {timeouts}
    deployments:
      - {{provider: fake, model: m}}
"""


def test_first_token_timeout(fake, mayak_factory):
    m = mayak_factory(timeout_config(fake, "{first_token_ms: 200}"))
    t0 = time.monotonic()
    r = m.chat("slow [[fake ttft_ms=3000 latency_ms=3000]]", stream=True)
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - t0 < 2.5


def test_chunk_gap_timeout_mid_stream(fake, mayak_factory):
    m = mayak_factory(timeout_config(fake, "{chunk_gap_ms: 300}"))
    r = m.chat("gappy [[fake chunks=5 interval_ms=2000]]", stream=True)
    events = sse_events(r)
    assert events[-1] != "[DONE]" and "error" in json.loads(events[-1])


def test_total_timeout(fake, mayak_factory):
    m = mayak_factory(timeout_config(fake, "{total_ms: 500, chunk_gap_ms: 5000}"))
    r = m.chat("long [[fake latency_ms=3000]]")
    assert r.status_code == 504


def test_connect_timeout(workdir, mayak_factory):
    # A listening socket whose backlog is full drops further SYNs, so connects hang.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.1)

    class Dead:
        url = f"http://127.0.0.1:{port}"
    m = mayak_factory(timeout_config(Dead, "{connect_ms: 300}"))
    t0 = time.monotonic()
    r = m.chat("anyone?")
    took = time.monotonic() - t0
    assert r.status_code in (502, 504), r.text
    assert took < 3, took
    for c in fillers:
        c.close()
    s.close()


def test_retry_after_backoff_when_all_tried(fake, mayak_factory):
    cfg = f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: fake
    type: openai
    base_url: {fake.url}/v1
model_groups:
  - name: default
    retry: {{max_attempts: 3, backoff_base_ms: 10, backoff_max_ms: 50}}
    deployments:
      - {{provider: fake, model: m}}
"""
    m = mayak_factory(cfg)
    fake.mode(fail_next=2, status=503)
    r = m.chat("third time lucky")
    assert r.status_code == 200, r.text
    assert chat_calls(fake) == 3


def test_active_health_checks_take_a_dead_deployment_out(fake_factory, mayak_factory):
    a, b = fake_factory(), fake_factory()
    group = "    health: {enabled: true, interval_ms: 200, timeout_ms: 150}\n"
    m = mayak_factory(two_provider_config(a, b, "priority", group_extra=group))
    assert served_by(m.chat("hi")) == "a/model-a"
    a.mode(status=503)  # its /healthz now fails too

    def a_unhealthy():
        return 'mayak_deployment_healthy{deployment="a/model-a"} 0' in m.metrics()
    wait_for(a_unhealthy, timeout=10, what="the health check to mark a unhealthy")
    before = chat_calls(a)
    for _ in range(5):
        assert served_by(m.chat("hi")) == "b/model-b"
    assert chat_calls(a) == before, "an unhealthy deployment is skipped without being tried"
    a.mode(status=0)
    wait_for(lambda: 'mayak_deployment_healthy{deployment="a/model-a"} 1' in m.metrics(), timeout=10,
             what="a to be healthy again")
    assert served_by(m.chat("hi")) == "a/model-a"
