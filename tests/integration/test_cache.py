"""The response cache through the real binary and the fake provider: exact and
semantic hits never reach the provider, antonyms miss, hits replay as SSE, per-request
opt-outs, per-group switch, and the invalidation API."""
import json
import os

import requests

from conftest import openai_config, sse_events

CACHE_CONFIG = """\
auth: {local_admin: true}
cache: {threshold: 0.8}
"""


def start(fake, mayak_factory, group_extra=""):
    return mayak_factory(CACHE_CONFIG + openai_config(fake.url, group_extra=group_extra))


def upstream_calls(fake):
    return len([r for r in fake.requests(last=100) if r["path"].endswith("/chat/completions")])


def test_identical_request_is_exact_hit_and_never_reaches_the_fake(fake, mayak_factory):
    m = start(fake, mayak_factory)
    r1 = m.chat("How do I reset my router password?", temperature=0)
    assert r1.status_code == 200, r1.text
    assert r1.headers["x-mayak-cache"] == "miss"
    before = upstream_calls(fake)
    r2 = m.chat("How do I reset my router password?", temperature=0)
    assert r2.status_code == 200, r2.text
    assert r2.headers["x-mayak-cache"] == "hit-exact"
    assert float(r2.headers["x-mayak-cache-similarity"]) == 1.0
    assert r2.json()["choices"][0]["message"]["content"] == r1.json()["choices"][0]["message"]["content"]
    assert upstream_calls(fake) == before
    # Key canonicalisation: the same request with another key order and spelling of 0.
    body = {"temperature": 0.0, "messages": [{"content": "How do I reset my router password?", "role": "user"}],
            "model": "default"}
    r3 = requests.post(m.url + "/v1/chat/completions", data=json.dumps(body), timeout=10)
    assert r3.headers["x-mayak-cache"] == "hit-exact"
    assert upstream_calls(fake) == before
    assert 'mayak_cache_hits_total{model_group="default",kind="exact"} 2' in m.metrics()


def test_paraphrase_is_semantic_hit_and_antonym_is_miss(fake, mayak_factory):
    m = start(fake, mayak_factory)
    assert m.chat("Как включить Wi-Fi на ноутбуке?", temperature=0).headers["x-mayak-cache"] == "miss"
    before = upstream_calls(fake)
    r = m.chat("Как мне включить Wi-Fi на ноутбуке?", temperature=0)
    assert r.status_code == 200
    assert r.headers["x-mayak-cache"] == "hit-semantic", r.headers
    assert 0.8 <= float(r.headers["x-mayak-cache-similarity"]) < 1.0
    assert upstream_calls(fake) == before
    r = m.chat("Как выключить Wi-Fi на ноутбуке?", temperature=0)
    assert r.headers["x-mayak-cache"] == "miss"
    assert upstream_calls(fake) == before + 1
    r = m.chat("Как включить Wi-Fi на телефоне?", temperature=0)  # another device
    assert r.headers["x-mayak-cache"] == "miss"


def test_other_context_never_shares_an_answer(fake, mayak_factory):
    m = start(fake, mayak_factory)
    q = [{"role": "user", "content": "what is the price?"}]
    body = {"model": "default", "temperature": 0, "messages": [{"role": "system", "content": "You sell phones."}] + q}
    assert requests.post(m.url + "/v1/chat/completions", json=body, timeout=10).headers["x-mayak-cache"] == "miss"
    body["messages"][0]["content"] = "You sell cars."
    assert requests.post(m.url + "/v1/chat/completions", json=body, timeout=10).headers["x-mayak-cache"] == "miss"


def test_streamed_hit_replays_as_sse(fake, mayak_factory):
    m = start(fake, mayak_factory)
    r1 = m.chat("how do printers work", stream=True, temperature=0)
    text1 = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                    for e in sse_events(r1)[:-1] if json.loads(e)["choices"])
    assert r1.headers["x-mayak-cache"] == "miss"
    before = upstream_calls(fake)
    r2 = m.chat("how do printers work", stream=True, temperature=0)
    assert r2.headers["content-type"].startswith("text/event-stream")
    assert r2.headers["x-mayak-cache"] == "hit-exact"
    events = sse_events(r2)
    assert events[-1] == "[DONE]"
    text2 = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                    for e in events[:-1] if json.loads(e)["choices"])
    assert text2 == text1 and text1
    assert upstream_calls(fake) == before
    # The streamed answer also serves a non-streamed caller.
    r3 = m.chat("how do printers work", temperature=0)
    assert r3.headers["x-mayak-cache"] == "hit-exact"
    assert r3.json()["choices"][0]["message"]["content"] == text1


def test_per_request_off_and_hot_temperature_bypass(fake, mayak_factory):
    m = start(fake, mayak_factory)
    m.chat("cache me", temperature=0)
    before = upstream_calls(fake)
    r = requests.post(m.url + "/v1/chat/completions", headers={"x-mayak-cache": "off"}, timeout=10,
                      json={"model": "default", "temperature": 0, "messages": [{"role": "user", "content": "cache me"}]})
    assert r.status_code == 200 and r.headers["x-mayak-cache"] == "bypass"
    r = m.chat("cache me", temperature=0, mayak_cache=False)
    assert r.status_code == 200 and r.headers["x-mayak-cache"] == "bypass"
    assert upstream_calls(fake) == before + 2
    # Above the temperature bound (and with no temperature: the API's default 1.0).
    assert m.chat("cache me", temperature=1.2).headers["x-mayak-cache"] == "bypass"
    assert m.chat("cache me").headers["x-mayak-cache"] == "bypass"


def test_errors_are_not_cached(fake, mayak_factory):
    m = start(fake, mayak_factory)
    fake.mode(status=500)
    r = m.chat("fails once", temperature=0)
    assert r.status_code >= 500
    fake.mode(reset=True)
    r = m.chat("fails once", temperature=0)
    assert r.status_code == 200 and r.headers["x-mayak-cache"] == "miss"


def test_group_can_turn_the_cache_off(fake, mayak_factory):
    m = start(fake, mayak_factory, group_extra="    cache: {enabled: false}\n")
    assert m.chat("How do I change my password?", temperature=0).status_code == 200
    r = m.chat("How do I change my password?", temperature=0)
    assert r.status_code == 200, r.text
    assert "x-mayak-cache" not in r.headers
    assert upstream_calls(fake) == 2


def test_invalidation_api(fake, mayak_factory):
    m = start(fake, mayak_factory)
    m.chat("invalidate me", temperature=0)
    assert m.chat("invalidate me", temperature=0).headers["x-mayak-cache"] == "hit-exact"
    url = m.url + "/api/v1/cache/invalidate"
    assert requests.post(url, json={}, timeout=10).status_code == 400
    assert requests.post(url, json={"tenant": 5}, timeout=10).status_code == 400
    r = requests.post(url, json={"model_group": "other"}, timeout=10)
    assert r.status_code == 200 and r.json()["invalidated"] == 0
    assert m.chat("invalidate me", temperature=0).headers["x-mayak-cache"] == "hit-exact"
    r = requests.post(url, json={"model_group": "default"}, timeout=10)
    assert r.status_code == 200 and r.json()["invalidated"] == 1
    assert m.chat("invalidate me", temperature=0).headers["x-mayak-cache"] == "miss"
    r = requests.post(url, json={"all": True}, timeout=10)
    assert r.status_code == 200 and r.json()["invalidated"] == 1


def test_knowledge_base_change_invalidates_cached_answers(fake, mayak_factory, workdir):
    """Cached answers may quote the knowledge base: when a document changes (here
    re-ingested by the CLI, in another process) the cache forgets its answers once the
    server picks the change up."""
    import subprocess
    from conftest import MAYAK_BIN, openai_config, wait_for
    cfg = openai_config(fake.url)
    doc = os.path.join(workdir, "vpn-address.md")

    def ingest(text, config_path):
        with open(doc, "w") as f:
            f.write(text)
        res = subprocess.run([MAYAK_BIN, "kb", "add", doc, "--agent", "network", "--config", config_path],
                             cwd=workdir, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr

    m = mayak_factory(cfg)
    ingest("# VPN address\n\nConnect to vpn.example.com with the corporate client.\n", m.config_path)
    wait_for(lambda: requests.get(m.url + "/api/v1/kb/stats", timeout=5).json().get("documents", 0) >= 1,
             timeout=15, interval=0.5, what="the server to load the document")
    body = dict(temperature=0)
    m.chat("what is the VPN address?", **body)
    assert m.chat("what is the VPN address?", **body).headers["x-mayak-cache"] == "hit-exact"
    ingest("# VPN address\n\nConnect to vpn2.example.com with the new corporate client.\n", m.config_path)
    wait_for(lambda: m.chat("what is the VPN address?", **body).headers["x-mayak-cache"] == "miss",
             timeout=15, interval=0.5, what="the cache to be invalidated by the kb change")
