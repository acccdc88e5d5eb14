"""The support desk's REST API (/api/v1/desk/...) against a real mayak on the embedded
defaults: conversations, the bot's answers with citations, dedupe of resent messages,
escalation and the queue, operators claiming (one wins), the bot's silence while an
operator owns a conversation, hand-back, resolution, ratings, analytics, /metrics and
the web pages' caching. Operator calls use an operator API key made with the CLI."""
import os
import subprocess

import requests

from conftest import MAYAK_BIN, SLOW, wait_for

API = "/api/v1/desk"


def create_key(workdir, role, tenant="local"):
    out = subprocess.run([MAYAK_BIN, "keys", "create", "--tenant", tenant, "--role", role],
                         cwd=workdir, capture_output=True, text=True, timeout=60 * SLOW)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1].strip()


def test_conversation_lifecycle(mayak_factory, workdir):
    op_key = create_key(workdir, "operator")
    op2_key = create_key(workdir, "operator")
    m = mayak_factory()
    op = {"Authorization": f"Bearer {op_key}"}
    op2 = {"Authorization": f"Bearer {op2_key}"}

    r = requests.post(m.url + API + "/conversations", json={"channel": "telegram", "lang": "ru", "user": "tg:42"})
    assert r.status_code == 201, r.text
    conv, token = r.json()["conversation"], r.json()["token"]
    assert conv["state"] == "bot" and conv["channel"] == "telegram" and len(token) == 43
    cid = conv["id"]
    user = {"X-Desk-Token": token}

    # A question: the bot answers with citations.
    r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers=user,
                      json={"text": "Как подключиться к VPN?", "client_id": "m1"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"]["seq"] == 1 and body["duplicate"] is False
    assert len(body["replies"]) == 1
    bot = body["replies"][0]
    assert bot["role"] == "bot" and bot["seq"] == 2 and bot["citations"], bot
    assert body["conversation"]["agent"] == "network"

    # A resend of the same client id is recognised and not answered twice.
    r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers=user,
                      json={"text": "Как подключиться к VPN?", "client_id": "m1"})
    assert r.json()["duplicate"] is True and r.json()["replies"] == []
    assert r.json()["message"]["id"] == body["message"]["id"]

    # Bad token, unknown conversation, bad input.
    assert requests.get(f"{m.url}{API}/conversations/{cid}", headers={"X-Desk-Token": "x" * 43}).status_code == 401
    assert requests.get(f"{m.url}{API}/conversations/{cid}").status_code in (401, 403)
    assert requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers=user, json={"text": ""}).status_code == 400
    assert requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers=user, data=b"{nope").status_code == 400
    assert requests.get(f"{m.url}{API}/conversations/00000000-0000-4000-8000-000000000000", headers=op).status_code == 404

    # The user asks for a person: waiting, first in the queue, with the reason.
    r = requests.post(f"{m.url}{API}/conversations/{cid}/escalate", headers=user, json={"reason": "user_request"})
    assert r.status_code == 200 and r.json()["conversation"]["state"] == "waiting_operator"
    assert r.json()["queue_position"] == 1
    q = requests.get(f"{m.url}{API}/queue", headers=op).json()["data"]
    assert [c["id"] for c in q] == [cid] and q[0]["reason"] == "user_request"
    assert q[0]["last_user_message"] == "Как подключиться к VPN?"
    # Users may not see the queue (developer role on loopback lacks desk.operate).
    assert requests.get(f"{m.url}{API}/queue").status_code == 403

    # Two operators claim: one wins, the other gets 409.
    r1 = requests.post(f"{m.url}{API}/conversations/{cid}/claim", headers=op)
    r2 = requests.post(f"{m.url}{API}/conversations/{cid}/claim", headers=op2)
    assert r1.status_code == 200 and r2.status_code == 409, (r1.text, r2.text)
    assert r1.json()["conversation"]["state"] == "operator"

    # The bot stays silent; the other operator may not speak; the owner may.
    r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers=user, json={"text": "Жду ответа"})
    assert r.status_code == 200 and r.json()["replies"] == []
    assert requests.post(f"{m.url}{API}/conversations/{cid}/reply", headers=op2, json={"text": "hi"}).status_code == 403
    r = requests.post(f"{m.url}{API}/conversations/{cid}/reply", headers=op, json={"text": "Здравствуйте!"})
    assert r.status_code == 200 and r.json()["message"]["role"] == "operator"
    # A user token cannot act as an operator.
    assert requests.post(f"{m.url}{API}/conversations/{cid}/reply", headers=user, json={"text": "x"}).status_code == 403

    # Hand back: the bot answers again.
    assert requests.post(f"{m.url}{API}/conversations/{cid}/handback", headers=op).status_code == 200
    r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers=user, json={"text": "Как сбросить пароль?"})
    assert len(r.json()["replies"]) == 1

    # Rating before the end is refused; after resolution it is recorded.
    assert requests.post(f"{m.url}{API}/conversations/{cid}/rating", headers=user, json={"csat": 5}).status_code == 400
    assert requests.post(f"{m.url}{API}/conversations/{cid}/resolve", headers=user).status_code == 200
    assert requests.post(f"{m.url}{API}/conversations/{cid}/rating", headers=user,
                         json={"csat": 9}).status_code == 400
    r = requests.post(f"{m.url}{API}/conversations/{cid}/rating", headers=user, json={"csat": 5, "helped": True})
    assert r.status_code == 200 and r.json()["conversation"]["rating"] == {"csat": 5, "helped": True}

    # History and transitions.
    msgs = requests.get(f"{m.url}{API}/conversations/{cid}/messages?after=0", headers=user).json()["data"]
    assert [x["seq"] for x in msgs] == list(range(1, len(msgs) + 1))
    assert [x["role"] for x in msgs].count("operator") == 1
    tr = requests.get(f"{m.url}{API}/conversations/{cid}/transitions", headers=op).json()["data"]
    assert [t["to"] for t in tr] == ["bot", "waiting_operator", "operator", "bot", "resolved"]
    assert tr[2]["actor"].startswith("api:")

    # Analytics and /metrics.
    a = requests.get(f"{m.url}{API}/analytics", headers=op).json()
    assert a["overall"]["conversations"] == 1 and a["overall"]["resolved"] == 1
    assert a["overall"]["automation_rate"] == 0.0 and a["overall"]["csat_avg"] == 5.0
    assert a["reasons"] == {"user_request": 1}
    text = m.metrics()
    assert 'mayak_desk_conversations_total{channel="telegram"} 1' in text
    assert 'mayak_desk_resolutions_total{agent="network",by="human"} 1' in text
    assert 'mayak_desk_ratings_total{agent="network",csat="5"} 1' in text


def test_tenants_do_not_mix(mayak_factory, workdir):
    other = create_key(workdir, "operator", tenant="acme")
    m = mayak_factory()
    r = requests.post(m.url + API + "/conversations", json={})
    cid = r.json()["conversation"]["id"]
    h = {"Authorization": f"Bearer {other}"}
    assert requests.get(f"{m.url}{API}/conversations/{cid}", headers=h).status_code == 404
    assert requests.post(f"{m.url}{API}/conversations/{cid}/claim", headers=h).status_code == 404
    assert requests.get(f"{m.url}{API}/queue", headers=h).json()["data"] == []


def test_console_login_needs_totp(mayak_factory, workdir):
    key = create_key(workdir, "operator")
    m = mayak_factory()
    h = {"Authorization": f"Bearer {key}"}
    r = requests.post(m.url + API + "/login", headers=h, json={})
    assert r.status_code == 200 and r.json()["status"] == "enroll", r.text
    assert r.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert requests.post(m.url + API + "/login", headers=h, json={"totp": "000000"}).status_code == 401
    assert requests.post(m.url + API + "/login", json={}).status_code == 403  # anonymous developer
    # The operator WebSocket refuses a missing session.
    r = requests.get(m.url + "/ws/operator?session=nope", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert r.status_code == 401
    # A plain GET of a WebSocket path is a clear 400.
    assert requests.get(m.url + "/ws/chat").status_code == 400


def test_web_pages_and_caching(mayak_factory):
    m = mayak_factory()
    for path, ctype in [("/", "text/html"), ("/operator", "text/html"), ("/admin", "text/html"),
                        ("/widget.js", "text/javascript"), ("/web/assets/chat.js", "text/javascript"),
                        ("/web/assets/style.css", "text/css")]:
        r = requests.get(m.url + path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith(ctype), path
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        etag = r.headers["ETag"]
        r2 = requests.get(m.url + path, headers={"If-None-Match": etag})
        assert r2.status_code == 304 and r2.content == b"", path
    assert "no-cache" in requests.get(m.url + "/").headers["Cache-Control"]
    assert "max-age" in requests.get(m.url + "/web/assets/chat.js").headers["Cache-Control"]
    assert requests.get(m.url + "/operator").headers["X-Frame-Options"] == "DENY"
    assert requests.get(m.url + "/web/../mayak-data/mayak.db").status_code == 404
    assert requests.get(m.url + "/web/index.html").status_code == 404  # pages only under their own paths
    assert requests.get(m.url + "/web/nope.js").status_code == 404
    assert requests.get(m.url + "/nope").status_code == 404


def test_bot_answers_through_the_llm_pipeline(mayak_factory, fake):
    """With an LLM provider configured, the desk's answer is a chat call through
    Mayak's own pipeline (the fake provider answers it) and is stored as the bot's."""
    from conftest import openai_config
    m = mayak_factory(openai_config(fake.url))
    r = requests.post(m.url + API + "/conversations", json={"lang": "en"})
    cid, token = r.json()["conversation"]["id"], r.json()["token"]
    r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers={"X-Desk-Token": token},
                      json={"text": "How do I connect to the office Wi-Fi network?"}, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    replies = r.json()["replies"]
    assert len(replies) == 1 and replies[0]["role"] == "bot", r.json()
    seen = fake.requests(last=5)
    bodies = [x.get("body") or x for x in (seen if isinstance(seen, list) else seen.get("requests", []))]
    assert any("Wi-Fi" in str(b) for b in bodies), seen  # the passages went to the LLM
    assert 'mayak_llm_requests_total{model_group="default"' in m.metrics()


def test_bot_answers_from_documents_added_with_the_cli(mayak_factory, workdir):
    """The desk searches the server's live knowledge base: a document `mayak kb add`
    stored for the hardware agent is what the bot answers and cites."""
    doc = os.path.join(workdir, "frobnicator.md")
    with open(doc, "w", encoding="utf-8") as f:
        f.write("# Frobnicator 3000\n\nThe Frobnicator 3000 is the office's desk gadget.\n\n## Reset\n\n"
                "To reset the Frobnicator 3000, hold the blue button for 7 seconds until the lamp blinks.\n")
    # The CLI and the server share data_dir (the server's config also names its port).
    data = os.path.join(workdir, "frob-data")
    cfg = os.path.join(workdir, "cli.yaml")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(f"data_dir: {data}\n")
    p = subprocess.run([MAYAK_BIN, "kb", "add", doc, "--agent", "hardware", "--config", cfg],
                       cwd=workdir, capture_output=True, text=True, timeout=60 * SLOW)
    assert p.returncode == 0, p.stderr
    m = mayak_factory(f"listen: 127.0.0.1:{{port}}\ndata_dir: {data}\n")
    wait_for(lambda: requests.get(m.url + "/api/v1/kb/stats", timeout=5).json().get("documents") == 1,
             timeout=30, what="the server to load the CLI's document")

    r = requests.post(m.url + API + "/conversations", json={"channel": "web", "lang": "en"}, timeout=10)
    assert r.status_code == 201, r.text
    cid, token = r.json()["conversation"]["id"], r.json()["token"]
    r = requests.post(f"{m.url}{API}/conversations/{cid}/messages", headers={"X-Desk-Token": token},
                      json={"text": "How do I reset the Frobnicator 3000?"}, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    bot = r.json()["replies"][0]
    assert bot["role"] == "bot" and bot["agent"] == "hardware", bot
    assert bot["citations"] and bot["citations"][0]["id"] == "frobnicator", bot
    assert bot["citations"][0]["url"] == doc
    assert "blue button for 7 seconds" in bot["text"]
    assert r.json()["conversation"]["state"] == "bot"
