"""Agent memory through the real binary: episodes stored and searched by meaning,
tenants isolated, a session started on one Mayak process continued on another through
a real redis-server, facts whose contradiction keeps history, erasure with its
report, the CLI, and durability: kill -9 during a write burst loses no acknowledged
write (SQLite WAL, and PostgreSQL when its server binaries are installed)."""
import json
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import MAYAK_BIN, SLOW, wait_for
from servers import redis_server

API = "/api/v1/memory"


def config(extra=""):
    return f"""\
listen: 127.0.0.1:{{port}}
auth: {{required: true}}
{extra}"""


def make_key(workdir, cfg_path, tenant, role):
    res = subprocess.run([MAYAK_BIN, "keys", "create", "--config", cfg_path, "--tenant", tenant, "--role", role],
                         cwd=workdir, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1]


class Client:
    def __init__(self, m, key):
        self.url = m.url + API
        self.h = {"Authorization": f"Bearer {key}"} if key else {}

    def post(self, path, body, **kw):
        return requests.post(self.url + path, json=body, headers=self.h, timeout=30 * SLOW, **kw)

    def get(self, path, **kw):
        return requests.get(self.url + path, headers=self.h, timeout=30 * SLOW, **kw)

    def put(self, path, body):
        return requests.put(self.url + path, json=body, headers=self.h, timeout=30 * SLOW)

    def delete(self, path):
        return requests.delete(self.url + path, headers=self.h, timeout=30 * SLOW)


EPISODES = [
    ("VPN client cannot connect after the password change", "re-entered the password in the profile", 1.0),
    ("Printer on the third floor prints blank pages", "replaced the toner", 1.0),
    ("Outlook keeps asking for the password", "cleared the credential manager", 0.2),
    ("Laptop battery drains within an hour", "recalibrated the battery", 0.0),
]


def test_episodes_search_and_tenant_isolation(mayak_factory, workdir):
    m = mayak_factory(config())
    acme = Client(m, make_key(workdir, m.config_path, "acme", "developer"))
    other = Client(m, make_key(workdir, m.config_path, "other", "developer"))
    ids = []
    for task, tried, reward in EPISODES:
        r = acme.post("/episodes", {"task": task, "tried": tried, "outcome": "done", "critique": "ok",
                                    "reward": reward, "session": "s1", "tags": ["it"]})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = acme.post("/episodes/search", {"query": "my VPN won't connect since I changed the password", "k": 2})
    assert r.status_code == 200, r.text
    hits = r.json()["data"]
    assert hits[0]["id"] == ids[0] and hits[0]["score"] > 0.3
    assert hits[0]["tried"] == "re-entered the password in the profile"
    # filters: only successes
    r = acme.post("/episodes/search", {"query": "password", "k": 10, "filter": {"success": True}})
    assert {h["id"] for h in r.json()["data"]} == {ids[0], ids[1]}
    # another tenant sees nothing of acme's, by search, by id or by deletion
    assert other.post("/episodes/search", {"query": "VPN password", "k": 5}).json()["data"] == []
    assert other.get(f"/episodes/{ids[0]}").status_code == 404
    assert other.delete(f"/episodes/{ids[0]}").status_code == 404
    assert acme.get(f"/episodes/{ids[0]}").json()["task"] == EPISODES[0][0]
    # bad input gets a clear error
    r = acme.post("/episodes", {"task": "", "reward": 1})
    assert r.status_code == 400 and "task" in r.json()["error"]["message"]
    assert acme.post("/episodes", {"task": "x"}).status_code == 400  # no reward
    assert acme.post("/episodes/search", {"query": "x", "k": 0}).status_code == 400
    r = requests.post(acme.url + "/episodes", data=b"{not json", headers=acme.h, timeout=10)
    assert r.status_code == 400
    assert acme.get("/nowhere").status_code == 404
    # without a key: refused
    assert requests.post(m.url + API + "/episodes/search", json={"query": "x"}, timeout=10).status_code == 401
    # skills: versioned, search gives the current version
    assert acme.post("/skills", {"name": "vpn-reset", "description": "Reset a VPN profile",
                                 "procedure": "Delete the profile"}).status_code == 201
    r = acme.post("/skills", {"name": "vpn-reset", "description": "Reset a VPN profile",
                              "procedure": "Delete the profile, reboot, import it again"})
    assert r.json()["version"] == 2
    r = acme.post("/skills/search", {"query": "VPN profile broken", "k": 3})
    assert [s["version"] for s in r.json()["data"]] == [2]
    r = acme.post("/skills/promote", {"episode": ids[1], "name": "blank-pages"})
    assert r.status_code == 201, r.text
    assert acme.post("/skills/promote", {"episode": ids[3], "name": "battery"}).status_code == 400


def test_facts_contradiction_keeps_history(mayak_factory, workdir):
    m = mayak_factory(config())
    c = Client(m, make_key(workdir, m.config_path, "acme", "operator"))
    r = c.post("/facts", {"subject": "u1", "text": "The user's VPN client is Cisco AnyConnect",
                          "predicate": "vpn_client", "value": "Cisco AnyConnect"})
    assert r.status_code == 201 and r.json()["status"] == "new"
    first = r.json()["id"]
    r = c.post("/facts", {"subject": "u1", "text": "The user's VPN client is Cisco AnyConnect",
                          "predicate": "vpn_client", "value": "Cisco AnyConnect"})
    assert r.json() == {"id": first, "status": "duplicate", "closed": []}
    r = c.post("/facts", {"subject": "u1", "text": "The user's VPN client is OpenVPN", "predicate": "vpn_client",
                          "value": "OpenVPN"})
    assert r.status_code == 201 and r.json()["status"] == "superseded" and r.json()["closed"] == [first]
    second = r.json()["id"]
    open_facts = c.get("/facts", params={"subject": "u1"}).json()["data"]
    assert [f["id"] for f in open_facts] == [second]
    history = c.get("/facts", params={"subject": "u1", "history": "true"}).json()["data"]
    old = next(f for f in history if f["id"] == first)
    assert old["open"] is False and old["superseded_by"] == second and old["valid_to"] >= old["valid_from"]
    assert old["closed_by"] and old["asserted_by"]
    # causal links: evidence accumulates; likely causes over two hops
    c.post("/links", {"cause": "password changed", "effect": "vpn fails", "confidence": 0.5})
    r = c.post("/links", {"cause": "password changed", "effect": "vpn fails", "confidence": 0.5})
    assert abs(r.json()["confidence"] - 0.75) < 1e-9
    c.post("/links", {"cause": "password policy", "effect": "password changed", "confidence": 0.8})
    r = c.get("/links/causes", params={"effect": "vpn fails", "depth": 2})
    assert [x["cause"] for x in r.json()["data"]] == ["password changed", "password policy"]


def test_history_window_and_erasure_report(mayak_factory, workdir):
    m = mayak_factory(config())
    dev = Client(m, make_key(workdir, m.config_path, "acme", "developer"))
    admin = Client(m, make_key(workdir, m.config_path, "acme", "admin"))
    r = dev.post("/sessions", {"user": "alice", "agent": "triage", "state": {"step": 1}})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    turns = [{"role": "user" if i % 2 == 0 else "assistant",
              "content": f"Turn {i}: my certificate for the VPN expired on laptop {i}." if i == 2 else
              f"Turn {i}: okay, let me look into that for you right now."} for i in range(30)]
    r = dev.post(f"/sessions/{sid}/history", {"user": "alice", "messages": turns})
    assert r.status_code == 201 and len(r.json()["data"]) == 30
    w = dev.get(f"/sessions/{sid}/history", params={"budget": 120}).json()
    assert 0 < len(w["messages"]) < 30 and w["tokens"] <= 120
    assert w["summary_covers"] + len(w["messages"]) == 30 and "certificate" in w["summary"]
    dev.post("/episodes", {"task": "Alice's VPN certificate expired", "reward": 1, "user": "alice"})
    dev.post("/episodes", {"task": "Bob's printer jams", "reward": 1, "user": "bob"})
    dev.post("/facts", {"subject": "alice", "text": "Alice works remotely from Almaty"})
    dev.post("/links", {"cause": "cert expired", "effect": "vpn fails", "confidence": 0.9, "user": "alice"})
    # erasure is an admin action
    assert dev.post("/erase", {"user": "alice"}).status_code == 403
    r = admin.post("/erase", {"user": "alice"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["user"] == "alice" and rep["tenant"] == "acme"
    e = rep["erased"]
    assert e["episodes"] == 1 and e["facts"] == 1 and e["links"] == 1 and e["sessions"] == 1
    assert e["history"] == 30 and e["kv_sessions"] == 1 and e["vectors"] == 2
    assert len(rep["user_digest"]) == 64
    # gone everywhere; bob's stays
    assert dev.get(f"/sessions/{sid}").status_code == 404
    assert dev.get(f"/sessions/{sid}/history").json()["total_turns"] == 0
    found = dev.post("/episodes/search", {"query": "VPN certificate expired printer", "k": 5}).json()["data"]
    assert [f["user"] for f in found] == ["bob"]
    assert dev.get("/facts", params={"subject": "alice", "history": "1"}).json()["data"] == []




def test_session_continues_on_another_process_through_redis(mayak_factory, workdir):
    redis, port = redis_server()
    try:
        # both processes run in one workdir: one data_dir, so one database and one
        # server secret (the key works on both); the audit chain has one writer per
        # chain, so it is off here
        extra = f"kv: {{url: 'redis://127.0.0.1:{port}'}}\naudit: {{enabled: false}}\n"
        a = mayak_factory(config(extra))
        key = make_key(workdir, a.config_path, "acme", "developer")
        b = mayak_factory(config(extra))  # a second process: same redis, same database
        ca, cb = Client(a, key), Client(b, key)
        wait_for(lambda: ca.get("/sessions/none").status_code != 503, timeout=10, what="A's redis connection")
        r = ca.post("/sessions", {"agent": "triage", "state": {"lang": "ru"}})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        # B's kv connects in the background after start: until then session calls
        # answer 503 (fail fast), never a wrong answer
        wait_for(lambda: cb.get(f"/sessions/{sid}").status_code != 503, timeout=10, what="B's redis connection")
        r = cb.get(f"/sessions/{sid}")
        assert r.status_code == 200 and r.json()["state"] == {"lang": "ru"}, (r.status_code, r.text)
        r = cb.put(f"/sessions/{sid}/state", {"step": 2, "lang": None})
        assert r.status_code == 200 and r.json()["state"] == {"step": 2}
        assert ca.get(f"/sessions/{sid}").json()["state"] == {"step": 2}
        # episodes written on A are found on B once B replays the change log (~1 s)
        eid = ca.post("/episodes", {"task": "Docking station does not detect the monitor", "reward": 1}).json()["id"]
        wait_for(lambda: [h["id"] for h in cb.post("/episodes/search", {"query": "dock monitor not detected",
                                                                       "k": 1}).json()["data"]] == [eid],
                 timeout=10, what="process B to see A's episode")
        assert cb.delete(f"/sessions/{sid}").status_code == 200
        assert ca.get(f"/sessions/{sid}").status_code == 404
        # redis going away: session calls fail cleanly, and come back with it
        redis.kill()
        redis.wait()
        r = ca.get(f"/sessions/{sid}")
        assert r.status_code in (404, 503)
    finally:
        if redis.poll() is None:
            redis.kill()
            redis.wait()


def burst_then_kill(m, client, seconds=1.5, threads=6):
    """Writers post episodes until the process is killed; returns the acknowledged ids."""
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def writer(w):
        s = requests.Session()
        i = 0
        while not stop.is_set():
            try:
                r = s.post(client.url + "/episodes", json={"task": f"burst writer {w} item {i} about printers",
                                                         "reward": 1, "tags": ["burst"]},
                           headers=client.h, timeout=10)
            except requests.RequestException:
                return
            if r.status_code == 201:
                with lock:
                    acked.append(r.json()["id"])
            i += 1

    ts = [threading.Thread(target=writer, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    time.sleep(seconds)
    m.proc.proc.send_signal(signal.SIGKILL)
    m.proc.proc.wait()
    stop.set()
    for t in ts:
        t.join(30)
    return acked


def check_all_present(client, acked):
    missing = [i for i in acked if client.get(f"/episodes/{i}").status_code != 200]
    assert not missing, f"{len(missing)} acknowledged episodes lost, e.g. {missing[:5]}"
    r = client.post("/episodes/search", {"query": "burst writer about printers", "k": 5,
                                         "filter": {"tags": ["burst"]}})
    assert r.status_code == 200 and len(r.json()["data"]) == min(5, len(acked))


def test_kill9_during_write_burst_loses_nothing_sqlite(mayak_factory, workdir):
    m = mayak_factory(config())
    key = make_key(workdir, m.config_path, "acme", "developer")
    acked = burst_then_kill(m, Client(m, key))
    assert len(acked) > 20
    m2 = mayak_factory(config())  # same data_dir: the WAL is recovered
    check_all_present(Client(m2, key), acked)


def test_cli_memory(mayak_factory, workdir):
    m = mayak_factory(config())
    key = make_key(workdir, m.config_path, "acme", "developer")
    run = lambda *a: subprocess.run([MAYAK_BIN, "memory", *a, "--config", m.config_path], cwd=workdir,
                                    capture_output=True, text=True, timeout=60)
    r = run("add", "--tenant", "acme", "--task", "Badge reader rejects my card", "--reward", "1", "--user", "carol")
    assert r.returncode == 0, r.stderr
    # the server replays what the CLI wrote
    c = Client(m, key)
    wait_for(lambda: c.post("/episodes/search", {"query": "badge reader card", "k": 1}).json()["data"][0]["user"]
             == "carol", timeout=10, what="the server to see the CLI's episode")
    r = run("search", "--tenant", "acme", "--query", "card reader")
    assert r.returncode == 0 and "Badge reader" in r.stdout
    r = run("erase", "--tenant", "acme", "--user", "carol")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["erased"]["episodes"] == 1
    assert run("frobnicate").returncode == 2
    assert run("search", "--tenant", "acme").returncode == 2


def test_postgres_variant(mayak_factory, workdir):
    from pg_server import PgServer, find_bindir
    if not find_bindir():
        pytest.fail("PostgreSQL server binaries are missing: run scripts/install-deps.sh --test")
    with PgServer() as pg:
        # keys live in the store: anonymous loopback callers (tenant "local") here
        cfg = f"listen: 127.0.0.1:{{port}}\nstore: {{url: '{pg.url('postgres')}'}}\naudit: {{enabled: false}}\n"
        a = mayak_factory(cfg)
        key = None
        b = mayak_factory(cfg)
        ca, cb = Client(a, key), Client(b, key)
        eid = ca.post("/episodes", {"task": "Teams call drops after five minutes", "reward": 1}).json()["id"]
        wait_for(lambda: [h["id"] for h in cb.post("/episodes/search", {"query": "teams call drops",
                                                                       "k": 1}).json()["data"]] == [eid],
                 timeout=10, what="process B to see A's episode")
        r = cb.post("/facts", {"subject": "u1", "text": "Uses Linux", "predicate": "os", "value": "linux"})
        assert r.status_code == 201
        r = ca.post("/facts", {"subject": "u1", "text": "Uses Windows", "predicate": "os", "value": "windows"})
        assert r.json()["status"] == "superseded"
        b.stop()
        acked = burst_then_kill(a, ca)
        assert len(acked) > 10
        c = mayak_factory(cfg)
        check_all_present(Client(c, key), acked)
