"""Two Mayak nodes behind a real HAProxy, sharing a real PostgreSQL (store), Redis (kv)
and RabbitMQ (bus), as docs/SCALING.md describes a deployment that outgrew one machine.

Checked through the load balancer and node by node:
- requests are spread over both nodes and a key made on one works on both;
- a rate limit is one budget for the whole cluster, not one per node;
- an answer cached by one node is a cache hit on the other;
- a key revoked through one node's database stops working on both;
- the support desk is live across nodes: a user chatting on node A and an operator
  whose console is on node B see each other's messages and state changes as they
  happen, the operator's console session works on either node, and logging out on
  one node ends it on the other.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time

import pytest
import requests
import websocket

from conftest import MAYAK_BIN, SLOW, Fake, Mayak, create_key, free_port, openai_config, wait_for
from pg_server import PgServer, find_bindir
from servers import HAProxy, RabbitServer, RedisServer

API = "/api/v1/desk"


def totp(secret_b32, at=None):
    """RFC 6238 code (HMAC-SHA1, 30 s, 6 digits), as an authenticator app computes it."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((at if at is not None else time.time()) // 30)
    h = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = h[-1] & 0x0F
    return f"{(struct.unpack('>I', h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000:06d}"


def node_config(port, name, pg_url, redis_url, amqp_url, fake_url):
    shared = f"""\
store: {{url: '{pg_url}'}}
kv: {{url: '{redis_url}'}}
bus: {{url: '{amqp_url}'}}
auth: {{required: true}}
audit: {{chain: {name}}}
access_log: true
"""
    return openai_config(fake_url).replace("{port}", str(port)) + shared


def cli(node_dir, *args):
    out = subprocess.run([MAYAK_BIN, *args, "--config", os.path.join(node_dir, "mayak.yaml")], cwd=node_dir,
                         capture_output=True, text=True, timeout=60 * SLOW)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def node_key(node_dir, role, tenant="acme", *extra):
    return create_key(node_dir, "--tenant", tenant, "--role", role, *extra,
                      config_path=os.path.join(node_dir, "mayak.yaml"))


def chat_lines(node):
    return [line for line in node.proc.log_lines()
            if line.get("event") == "access" and line.get("path") == "/v1/chat/completions"]


class Cluster:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="mayak-cluster-")
        self.started = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        if not find_bindir():
            pytest.fail("PostgreSQL server binaries are missing: run scripts/install-deps.sh --test")
        self.pg = PgServer().start()
        self.started.append(self.pg)
        self.pg.create_db("mayak")
        self.redis = RedisServer()
        self.started.append(self.redis)
        self.rabbit = RabbitServer()
        self.started.append(self.rabbit)
        self.fake = Fake(self.root)
        self.started.append(self.fake)
        self.dirs, ports = {}, {}
        for name in ("node-a", "node-b"):
            d = os.path.join(self.root, name)
            os.makedirs(d)
            ports[name] = free_port()
            with open(os.path.join(d, "mayak.yaml"), "w") as f:
                f.write(node_config(ports[name], name, self.pg.url("mayak"), self.redis.url, self.rabbit.url,
                                    self.fake.url))
            self.dirs[name] = d
        # Keys are made on node A's side; node B gets the same server secret, as an
        # operator copies it to every node (docs/SCALING.md).
        self.user_key = node_key(self.dirs["node-a"], "developer")
        self.limited_key = node_key(self.dirs["node-a"], "developer", "acme", "--rpm", "4")
        self.operator_key = node_key(self.dirs["node-a"], "operator")
        self.chat_key = node_key(self.dirs["node-a"], "user")
        secret_b = os.path.join(self.dirs["node-b"], "mayak-data")
        os.makedirs(secret_b, mode=0o700)
        shutil.copy2(os.path.join(self.dirs["node-a"], "mayak-data", "auth.secret"), secret_b)
        self.nodes = {}
        for name in ("node-a", "node-b"):
            m = Mayak(self.dirs[name], config=open(os.path.join(self.dirs[name], "mayak.yaml")).read(),
                      listen_port=ports[name])
            self.started.append(m)
            self.nodes[name] = m
        self.a, self.b = self.nodes["node-a"], self.nodes["node-b"]
        self.lb = HAProxy([(name, ports[name]) for name in ("node-a", "node-b")])
        self.started.append(self.lb)
        # Both nodes ready behind the balancer (their kv and bus connect in the background).
        for m in (self.a, self.b):
            wait_for(lambda m=m: requests.get(m.url + "/readyz", timeout=2).status_code == 200, timeout=30,
                     what=f"{m.url} ready")

    def stop(self):
        failures = []
        for s in reversed(self.started):
            try:
                if isinstance(s, Mayak):
                    code = s.stop()
                    out = s.proc.output()
                    for bad in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
                        if bad in out:
                            failures.append(out[-5000:])
                    if code not in (0, -signal.SIGTERM):
                        failures.append(f"mayak exited with {code}:\n{out[-3000:]}")
                else:
                    s.stop()
            except Exception as e:  # keep stopping the others
                failures.append(repr(e))
        shutil.rmtree(self.root, ignore_errors=True)
        assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.stop()


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def chat(url, key, text, timeout=30, **extra):
    body = {"model": "default", "messages": [{"role": "user", "content": text}], **extra}
    return requests.post(url + "/v1/chat/completions", headers=bearer(key), timeout=timeout * SLOW, json=body)


def test_gateway_behind_haproxy_shares_keys_limits_and_cache(cluster):
    c = cluster
    before = {n: len(chat_lines(m)) for n, m in c.nodes.items()}
    for i in range(6):
        r = chat(c.lb.url, c.user_key, f"Spread request number {i}: how do I reset my password?")
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
    served = {n: len(chat_lines(m)) - before[n] for n, m in c.nodes.items()}
    assert served["node-a"] >= 1 and served["node-b"] >= 1, served
    assert sum(served.values()) == 6, served

    # One budget for the cluster: rpm 4 through the balancer, whichever node answers.
    codes = [chat(c.lb.url, c.limited_key, f"Limited request {i}").status_code for i in range(10)]
    assert codes.count(200) in (4, 5), codes  # 5 only if a token refilled meanwhile (one per 15 s)
    assert codes.count(429) == 10 - codes.count(200), codes
    r = chat(c.b.url, c.limited_key, "One more, straight to node B")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error" or r.json()["error"]["code"], r.text

    # Node A answers and caches; node B has the entry within its sync interval.
    text = "Which port does the corporate VPN gateway listen on?"
    r = chat(c.a.url, c.user_key, text, temperature=0)  # hotter answers are not cached
    assert r.status_code == 200 and r.headers["x-mayak-cache"] == "miss", r.headers
    answer = r.json()["choices"][0]["message"]["content"]
    hit = {}

    def b_hits():
        rb = chat(c.b.url, c.user_key, text, temperature=0)
        hit["r"] = rb
        return rb.headers.get("x-mayak-cache") == "hit-exact"
    wait_for(b_hits, timeout=10, interval=0.2, what="node B to serve node A's cached answer")
    assert hit["r"].json()["choices"][0]["message"]["content"] == answer

    # A key revoked in the shared database stops on both nodes (each re-reads within 5 s).
    key_id = c.user_key[3:].split("_")[0]
    cli(c.dirs["node-b"], "keys", "revoke", key_id)
    for m in (c.a, c.b):
        wait_for(lambda m=m: chat(m.url, c.user_key, "after revocation").status_code == 401, timeout=15,
                 interval=0.25, what=f"{m.url} to refuse the revoked key")


class Socket:
    """A WebSocket client that keeps every message it received."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=10 * SLOW)
        self.seen = []

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def wait(self, pred, what, timeout=15):
        for m in self.seen:
            if pred(m):
                return m
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                m = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            self.seen.append(m)
            if pred(m):
                return m
        raise AssertionError(f"timed out waiting for {what}; received: {json.dumps(self.seen)[-3000:]}")

    def close(self):
        self.ws.close()


def console_login(url, key):
    r = requests.post(url + API + "/login", headers=bearer(key), json={}, timeout=10 * SLOW)
    assert r.status_code == 200 and r.json()["status"] == "enroll", r.text
    secret = r.json()["secret"]
    r = requests.post(url + API + "/login", headers=bearer(key), json={"totp": totp(secret)}, timeout=10 * SLOW)
    if r.status_code == 401:  # the code was of a step that ended meanwhile: the next one
        time.sleep(1)
        r = requests.post(url + API + "/login", headers=bearer(key), json={"totp": totp(secret, time.time() + 1)},
                          timeout=10 * SLOW)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    return r.json()["session"]


def ws_url(http_url, path):
    return "ws://" + http_url.split("://", 1)[1] + path


def test_desk_is_live_across_nodes(cluster):
    c = cluster
    # The operator logs in through node A and works from a console on node B.
    session = console_login(c.a.url, c.operator_key)
    assert requests.get(c.b.url + API + "/queue", headers={"X-Desk-Session": session}).status_code == 200
    op = Socket(ws_url(c.b.url, "/ws/operator?session=" + session))
    op.wait(lambda m: m.get("type") == "welcome", "the operator's welcome")

    user = Socket(ws_url(c.a.url, "/ws/chat?access_token=" + c.chat_key))
    user.send({"type": "hello", "lang": "en"})
    conv = user.wait(lambda m: m.get("type") == "welcome", "the user's welcome")["conversation"]["id"]

    # Escalated on node A: the queue on node B shows it.
    user.send({"type": "escalate", "reason": "user_request"})
    user.wait(lambda m: m.get("type") in ("state", "ack") and (m.get("conversation") or {}).get("state")
              == "waiting_operator", "the user's waiting state")
    op.wait(lambda m: m.get("type") == "queue" and any(it.get("id") == conv for it in m.get("items", [])),
            "node B's queue to list the conversation escalated on node A")

    # Claimed and answered on node B: the user on node A sees both live.
    op.send({"type": "claim", "conversation_id": conv})
    user.wait(lambda m: m.get("type") == "state" and m["conversation"]["state"] == "operator",
              "the user on node A to see the operator join on node B")
    op.send({"type": "reply", "conversation_id": conv, "text": "Hello from node B, which printer is it?"})
    msg = user.wait(lambda m: m.get("type") == "message" and m["message"]["role"] == "operator",
                    "the operator's reply on node A")
    assert msg["message"]["text"] == "Hello from node B, which printer is it?"
    # ... and the user's answer reaches the console on node B, once.
    user.send({"type": "message", "client_id": "c-1", "text": "The one on the third floor"})
    op.wait(lambda m: m.get("type") == "message" and m["message"]["role"] == "user"
            and m["message"]["text"] == "The one on the third floor", "the user's message on node B")
    time.sleep(0.5 * SLOW)
    copies = [m for m in op.seen if m.get("type") == "message" and m["message"].get("client_id") == "c-1"]
    assert len(copies) == 1, copies
    replies = [m for m in user.seen if m.get("type") == "message" and m["message"]["role"] == "operator"]
    assert len(replies) == 1, replies

    op.send({"type": "resolve", "conversation_id": conv})
    user.wait(lambda m: m.get("type") == "state" and m["conversation"]["state"] == "resolved",
              "the user on node A to see the resolution on node B")
    user.close()
    op.close()

    # A WebSocket through the balancer works too.
    via_lb = Socket(ws_url(c.lb.url, "/ws/chat?access_token=" + c.operator_key))
    via_lb.send({"type": "hello", "lang": "en"})
    via_lb.wait(lambda m: m.get("type") == "welcome", "a welcome through HAProxy")
    via_lb.close()

    # Logging out on node A ends the session on node B as well.
    r = requests.post(c.a.url + API + "/logout", headers={"X-Desk-Session": session})
    assert r.status_code == 200
    assert requests.get(c.a.url + API + "/queue", headers={"X-Desk-Session": session}).status_code == 401
    wait_for(lambda: requests.get(c.b.url + API + "/queue", headers={"X-Desk-Session": session}).status_code == 401,
             timeout=10, what="node B to end the session logged out on node A")
    # A forged session is refused everywhere.
    forged = session[:-4] + ("AAAA" if not session.endswith("AAAA") else "BBBB")
    for m in (c.a, c.b):
        assert requests.get(m.url + API + "/queue", headers={"X-Desk-Session": forged}).status_code == 401
