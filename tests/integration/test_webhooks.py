"""Outgoing webhooks (config `webhooks:`, docs/BUS.md) against a real mayak: a desk
conversation made through the REST API reaches a small HTTP receiver in this test as
signed POSTs of "conversation.created" and "conversation.message", each signature
recomputed here as HMAC-SHA256(secret, "<t>.<body>")."""
import hashlib
import hmac
import http.server
import json
import os
import queue
import subprocess
import threading
import time

import requests

from conftest import MAYAK_BIN, SLOW, free_port

API = "/api/v1/desk"
SECRET = "whsec-test-3f9a1c"


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers 204."""

    def __init__(self, status=204):
        self.got = queue.Queue()
        got, answer = self.got, status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                got.put((dict((k.lower(), v) for k, v in self.headers.items()), body))
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.timeout = 1
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, event_type, timeout):
        """The (headers, body) of the first POST of event_type, or an assertion failure."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event_type} webhook within {timeout}s; got {seen}")
            try:
                headers, body = self.got.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(headers.get("x-mayak-event"))
            if headers.get("x-mayak-event") == event_type:
                return headers, body

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def check_signature(headers, body, secret=SECRET):
    sig = headers.get("x-mayak-signature", "")
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    assert set(parts) >= {"t", "v1"}, sig
    t = parts["t"]
    assert t.isdigit() and abs(int(t) - time.time()) < 300, sig
    want = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, parts["v1"]), (sig, want)
    # A wrong secret must not verify (the check above is not vacuous).
    other = hmac.new(b"not-the-secret", t.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(other, parts["v1"])


def webhook_config(receiver_url, events="[\"conversation.*\"]"):
    return f"""\
    listen: 127.0.0.1:{{port}}
    bus:
      url: inproc
    webhooks:
      - name: crm
        url: {receiver_url}
        secret: {SECRET}
        events: {events}
        timeout_ms: 5000
        max_attempts: 3
        backoff_base_ms: 100
        backoff_max_ms: 500
    """


def test_desk_events_reach_the_webhook_signed(mayak_factory):
    rx = Receiver()
    try:
        m = mayak_factory(webhook_config(rx.url))
        r = requests.post(m.url + API + "/conversations", json={"channel": "web", "lang": "en", "user": "u:1"},
                          timeout=30 * SLOW)
        assert r.status_code == 201, r.text
        cid, token = r.json()["conversation"]["id"], r.json()["token"]

        headers, body = rx.wait_for("conversation.created", 20 * SLOW)
        check_signature(headers, body)
        ev = json.loads(body)
        assert ev["type"] == "conversation.created"
        assert headers["x-mayak-event-id"] == ev["id"] and len(ev["id"]) == 36
        assert headers.get("x-mayak-attempt") == "1"
        assert cid in json.dumps(ev["payload"]), ev

        r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers={"X-Desk-Token": token},
                          json={"text": "How do I connect to the VPN?", "client_id": "m1"}, timeout=30 * SLOW)
        assert r.status_code == 200, r.text
        headers, body = rx.wait_for("conversation.message", 20 * SLOW)
        check_signature(headers, body)
        ev = json.loads(body)
        assert ev["type"] == "conversation.message" and cid in json.dumps(ev["payload"]), ev
    finally:
        rx.stop()


def test_webhook_event_filter(mayak_factory):
    """A subscription to "conversation.message" only never sees "conversation.created"."""
    rx = Receiver()
    try:
        m = mayak_factory(webhook_config(rx.url, events="[\"conversation.message\"]"))
        r = requests.post(m.url + API + "/conversations", json={"channel": "web"}, timeout=30 * SLOW)
        assert r.status_code == 201, r.text
        cid, token = r.json()["conversation"]["id"], r.json()["token"]
        r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers={"X-Desk-Token": token},
                          json={"text": "hello"}, timeout=30 * SLOW)
        assert r.status_code == 200, r.text
        headers, body = rx.wait_for("conversation.message", 20 * SLOW)
        check_signature(headers, body)
        # Everything received so far (and shortly after) is a message event.
        time.sleep(0.3)
        while not rx.got.empty():
            h, _ = rx.got.get_nowait()
            assert h.get("x-mayak-event") == "conversation.message", h
    finally:
        rx.stop()


def test_bad_webhook_config_is_refused(workdir):
    """A webhook without a secret stops `mayak check` with a message naming it."""
    path = os.path.join(workdir, "bad.yaml")
    with open(path, "w") as f:
        f.write("listen: 127.0.0.1:18080\nwebhooks:\n  - url: http://127.0.0.1:9/hook\n")
    out = subprocess.run([MAYAK_BIN, "config", "check", path], cwd=workdir, capture_output=True, text=True,
                         timeout=60 * SLOW)
    assert out.returncode != 0
    assert "secret" in (out.stdout + out.stderr), out.stdout + out.stderr
