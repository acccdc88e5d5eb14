"""Knowledge base end to end: `mayak kb add|list|search|rm|reindex` against a temporary
data dir, and a running server that sees what the CLI wrote (its /api/v1/kb API)."""
import json
import os
import signal
import subprocess

import requests

from conftest import MAYAK_BIN, wait_for

DOCS = {
    "vpn-connect.md": "# Connect to the VPN\n\n## Steps\n\n1. Start the VPN client.\n"
                      "2. Sign in with your hardware token.\n3. Wait for the green shield.\n",
    "printer.html": "<html><head><title>Printers</title></head><body><h1>Printer Falcon</h1>"
                    "<p>The Falcon printer is on floor two, next to the kitchen.</p></body></html>",
    "mail-quota.txt": "Mailbox quota\n\nEvery mailbox holds two gigabytes of mail.\n",
    "parol.md": "# Сброс пароля\n\nЧтобы сбросить пароль, откройте портал самообслуживания и нажмите "
                "«Забыли пароль».\n",
}


def kb(workdir, *args, stdin=None, check=True):
    p = subprocess.run([MAYAK_BIN, "kb", *args], cwd=workdir, input=stdin, capture_output=True, text=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, f"mayak kb {' '.join(args)} -> {p.returncode}\n{p.stderr}"
    return p


def write_docs(workdir, docs=DOCS, sub="docs"):
    d = os.path.join(workdir, sub)
    os.makedirs(d, exist_ok=True)
    for name, text in docs.items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            f.write(text)
    return d


def test_cli_add_list_search_rm(workdir):
    d = write_docs(workdir)
    out = json.loads(kb(workdir, "add", d, "--agent", "helpdesk", "--json").stdout)
    assert out["added"] == 4 and out["failed"] == 0, out
    again = json.loads(kb(workdir, "add", d, "--agent", "helpdesk", "--json").stdout)
    assert again["unchanged"] == 4 and again["added"] == 0, "re-adding unchanged files does nothing"

    docs = json.loads(kb(workdir, "list", "--json").stdout)
    ids = sorted((x["id"], x["lang"]) for x in docs)
    assert ids == [("mail-quota", "en"), ("parol", "ru"), ("printer", "en"), ("vpn-connect", "en")]
    assert all(x["agent"] == "helpdesk" for x in docs)

    r = json.loads(kb(workdir, "search", "sign in with the hardware token", "--json").stdout)
    top = r["results"][0]
    assert top["doc_id"] == "vpn-connect" and top["title"] == "Connect to the VPN" and top["section"] == "Steps"
    assert top["lang"] == "en"
    assert set(top["scores"]) == {"bm25", "vector", "fused", "coverage"}
    assert top["scores"]["bm25"] > 0 and top["scores"]["vector"] > 0
    assert "3. Wait for the green shield." in top["text"], "numbered steps stay together"
    assert top["citation"].startswith("[1] Connect to the VPN")
    assert 0 < r["confidence"]["top_fused"] <= 1

    # Many queries on stdin: one JSON line each, in order, one index load.
    lines = kb(workdir, "search", "--json", "--k", "1", "--no-text",
               stdin="where is the Falcon printer\nкак сбросить пароль\n\nmailbox gigabytes\n").stdout.splitlines()
    assert len(lines) == 4
    got = [json.loads(l) for l in lines]
    assert got[0]["results"][0]["doc_id"] == "printer"
    assert got[1]["results"][0]["doc_id"] == "parol" and got[1]["lang"] == "ru"
    assert got[2]["query"] == "" and got[2]["results"] == []
    assert got[3]["results"][0]["doc_id"] == "mail-quota"

    # A changed file replaces its chunks.
    with open(os.path.join(d, "printer.html"), "w", encoding="utf-8") as f:
        f.write("<h1>Printer Heron</h1><p>The Heron printer replaced Falcon on floor three.</p>")
    out = json.loads(kb(workdir, "add", d, "--agent", "helpdesk", "--json").stdout)
    assert out["updated"] == 1 and out["unchanged"] == 3
    r = json.loads(kb(workdir, "search", "Heron", "--mode", "bm25", "--json").stdout)
    assert r["results"][0]["doc_id"] == "printer" and r["results"][0]["title"] == "Printer Heron"
    r = json.loads(kb(workdir, "search", "kitchen", "--mode", "bm25", "--json").stdout)
    assert r["results"] == [], "the old version is gone"

    assert "removed 1 document" in kb(workdir, "rm", "printer").stdout
    assert kb(workdir, "rm", "printer", check=False).returncode == 1
    docs = json.loads(kb(workdir, "list", "--json").stdout)
    assert "printer" not in [x["id"] for x in docs]

    out = json.loads(kb(workdir, "reindex", "--json").stdout)
    assert out["unchanged"] == 3 and out["failed"] == 0


def test_cli_errors_are_clear(workdir):
    p = kb(workdir, "add", os.path.join(workdir, "nope"), check=False)
    assert p.returncode == 1 and "nope" in p.stderr
    p = kb(workdir, "frobnicate", check=False)
    assert p.returncode == 2 and "unknown command" in p.stderr
    p = kb(workdir, "search", "x", "--k", "0", check=False)
    assert p.returncode == 2
    p = kb(workdir, "add", workdir, "--agent", "bad agent", check=False)
    assert p.returncode == 1 and "agent" in p.stderr
    bad = os.path.join(workdir, "latin1.txt")
    with open(bad, "wb") as f:
        f.write(b"caf\xe9 au lait\n")
    p = kb(workdir, "add", bad, "--json", check=False)
    assert p.returncode == 0
    out = json.loads(p.stdout)
    assert out["skipped"] == 1 and "UTF-8" in out["items"][0]["error"]


def test_server_sees_cli_documents(workdir, mayak_factory):
    m = mayak_factory()  # default config: data_dir ./mayak-data under workdir, loopback without keys
    d = write_docs(workdir, {"vpn-connect.md": DOCS["vpn-connect.md"]})
    kb(workdir, "add", d)
    # The server loads at its first kb request and then follows the store.
    wait_for(lambda: requests.get(m.url + "/api/v1/kb/stats", timeout=5).json().get("documents") == 1,
             timeout=30, what="the server to load the CLI's document")
    r = requests.get(m.url + "/api/v1/kb/search", params={"q": "hardware token", "k": 3}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["doc_id"] == "vpn-connect"

    write_docs(workdir, {"printer.html": DOCS["printer.html"]})
    kb(workdir, "add", d)
    r = requests.post(m.url + "/api/v1/kb/reload", timeout=10)
    assert r.status_code == 200 and r.json()["documents"] == 2
    r = requests.post(m.url + "/api/v1/kb/search", json={"query": "Falcon printer", "k": 1}, timeout=10)
    assert r.json()["results"][0]["doc_id"] == "printer"

    # SIGHUP reloads too.
    write_docs(workdir, {"mail-quota.txt": DOCS["mail-quota.txt"]})
    kb(workdir, "add", d)
    m.proc.signal(signal.SIGHUP)
    wait_for(lambda: requests.get(m.url + "/api/v1/kb/stats", timeout=5).json().get("documents") == 3,
             timeout=20, what="the reload after SIGHUP")

    # The API's own writes, and what it refuses.
    r = requests.post(m.url + "/api/v1/kb/documents", json={"name": "badge.md", "content": "# Badges\n\nAsk reception."},
                      timeout=10)
    assert r.status_code == 201, r.text
    names = [x["id"] for x in requests.get(m.url + "/api/v1/kb/documents", timeout=10).json()["data"]]
    assert "badge" in names
    assert requests.post(m.url + "/api/v1/kb/documents", json={"name": "x.md"}, timeout=10).status_code == 400
    assert requests.post(m.url + "/api/v1/kb/documents", data="{", timeout=10).status_code == 400
    assert requests.get(m.url + "/api/v1/kb/search", params={"q": "x", "k": "500"}, timeout=10).status_code == 400
    assert requests.get(m.url + "/api/v1/kb/nothing", timeout=10).status_code == 404
    r = requests.delete(m.url + "/api/v1/kb/documents/badge", timeout=10)
    assert r.status_code == 200 and r.json()["removed"] == 1
    assert requests.delete(m.url + "/api/v1/kb/documents/badge", timeout=10).status_code == 404
    # The CLI sees what the API wrote.
    listed = json.loads(kb(workdir, "list", "--json").stdout)
    assert sorted(x["id"] for x in listed) == ["mail-quota", "printer", "vpn-connect"]
