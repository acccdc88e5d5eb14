"""`mayak ask`: the support desk from the command line, single and batch modes.

Runs the real binary on the embedded demo knowledge base (and a small knowledge base
file written here). Without providers the local responder answers; with a provider in
the config (the fake LLM, tests/fakes) the LLM answers through Mayak's own pipeline.
"""
import json
import os
import re
import subprocess

import pytest

from conftest import MAYAK_BIN, SLOW

FIELDS = {"agent", "confidence", "answer", "citations", "escalate", "reason"}


def ask(args, stdin=None, cwd=None):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    p = subprocess.run([MAYAK_BIN, "ask", *args], input=stdin, capture_output=True, timeout=60 * SLOW,
                       cwd=cwd, env=env)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def test_single_question_json(tmp_path):
    rc, out, err = ask(["How do I reset my password?", "--json"], cwd=tmp_path)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert FIELDS <= set(r)
    assert r["agent"] == "accounts"
    assert r["escalate"] is False and r["reason"] is None
    assert 0 < r["confidence"] <= 1
    assert r["citations"][0]["id"] == "password-reset"
    assert r["citations"][0]["url"] in r["answer"]
    assert "Sources:" in r["answer"]


def test_single_question_words_are_joined_and_text_mode(tmp_path):
    rc, out, err = ask(["принтер", "зажевал", "бумагу"], cwd=tmp_path)
    assert rc == 0, err
    assert "Источники:" in out
    assert "[agent: hardware" in out


def test_batch_one_json_line_per_question(tmp_path):
    questions = [
        "не могу подключиться к вайфаю в офисе",
        "",  # blank lines are skipped
        "позовите оператора",
        "What is the capital of Australia?",
        "I was charged twice this month, where is my refund?",
        "ЭТО УЖЕ ТРЕТИЙ РАЗ, ВСЁ НЕ РАБОТАЕТ!!!",
    ]
    rc, out, err = ask([], stdin="\n".join(questions).encode() + b"\n", cwd=tmp_path)
    assert rc == 0, err
    rows = [json.loads(l) for l in out.strip().splitlines()]
    assert len(rows) == 5
    for r in rows:
        assert FIELDS <= set(r)
    wifi, person, offtopic, billing, angry = rows
    assert wifi["agent"] == "network" and not wifi["escalate"]
    assert wifi["citations"][0]["id"].startswith("wifi-")
    assert wifi["lang"] == "ru"
    assert person["agent"] == "human" and person["escalate"] and person["reason"] == "user_request"
    assert offtopic["escalate"] and offtopic["reason"] in ("out_of_kb", "low_confidence")
    assert offtopic["citations"] == []
    assert billing["agent"] == "billing"
    assert angry["escalate"] and angry["reason"] == "frustration"


def test_batch_with_a_knowledge_base_file_and_config(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text(json.dumps({
        "id": "coffee-machine", "lang": "en", "agent": "facilities",
        "text": "# Coffee machine\n\nThe coffee machine is on the second floor.\n\n"
                "## Descaling\n\n1. Press and hold the descale button.\n2. Wait for the green light.\n",
    }) + "\n", encoding="utf-8")
    cfg = tmp_path / "mayak.yaml"
    cfg.write_text(
        "agents:\n"
        "  - id: facilities\n"
        "    examples: [\"coffee machine broken\", \"the kitchen is dirty\", \"air conditioning too cold\"]\n"
        "  - id: it\n"
        "    examples: [\"my laptop is slow\", \"printer jam\", \"forgot my password\"]\n",
        encoding="utf-8")
    rc, out, err = ask(["--no-demo", "--kb", str(kb), "--config", str(cfg)],
                       stdin="how do I descale the coffee machine\nhow do I reset my password\n".encode(),
                       cwd=tmp_path)
    assert rc == 0, err
    coffee, password = [json.loads(l) for l in out.strip().splitlines()]
    assert coffee["agent"] == "facilities" and not coffee["escalate"]
    assert coffee["citations"][0]["id"] == "coffee-machine"
    assert "descale button" in coffee["answer"]
    # The demo KB is not loaded: nothing to answer with, so it escalates honestly.
    assert password["escalate"] and password["citations"] == []


@pytest.mark.parametrize("args,code", [(["--bogus"], 2), (["--kb"], 2), (["--kb", "/nonexistent.jsonl", "x"], 1)])
def test_bad_arguments(tmp_path, args, code):
    rc, out, err = ask(args, cwd=tmp_path)
    assert rc == code
    assert err


def test_hostile_input_is_answered_not_crashed(tmp_path):
    data = b"\xff\xfe\xfd\n" + b"a" * 100000 + b"\n" + "\u202e\u200b???\n".encode()
    rc, out, err = ask([], stdin=data, cwd=tmp_path)
    assert rc == 0, err
    rows = [json.loads(l) for l in out.strip().splitlines()]
    assert len(rows) == 3


FROB = ("# Frobnicator 3000\n\nThe Frobnicator 3000 is the office's desk gadget.\n\n"
        "## Reset\n\nTo reset the Frobnicator 3000, hold the blue button for 7 seconds until the lamp blinks.\n")


def test_answers_from_documents_added_to_the_store(tmp_path):
    """`mayak kb add` persists a document under data_dir; `mayak ask` with the same config
    answers from it (not from the demo set, which only stands in for an empty store)."""
    cfg = tmp_path / "mayak.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    # Before anything is added: the demo knowledge base answers.
    rc, out, err = ask(["How do I reset my password?", "--json", "--config", str(cfg)], cwd=tmp_path)
    assert rc == 0, err
    assert json.loads(out)["citations"][0]["id"] == "password-reset"

    doc = tmp_path / "frobnicator.md"
    doc.write_text(FROB, encoding="utf-8")
    p = subprocess.run([MAYAK_BIN, "kb", "add", str(doc), "--agent", "hardware", "--config", str(cfg)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60 * SLOW)
    assert p.returncode == 0, p.stderr
    rc, out, err = ask(["How do I reset the Frobnicator 3000?", "--json", "--config", str(cfg)], cwd=tmp_path)
    assert rc == 0, err
    r = json.loads(out)
    assert not r["escalate"], r
    assert r["agent"] == "hardware"
    assert r["citations"][0]["id"] == "frobnicator"
    assert r["citations"][0]["url"] == str(doc)
    assert "blue button for 7 seconds" in r["answer"]


# ---- with an LLM provider: the answer comes through Mayak's own pipeline -------------

def llm_config(tmp_path, fake):
    cfg = tmp_path / "llm.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "providers:\n"
        "  - name: fake\n"
        "    type: openai\n"
        f"    base_url: {fake.url}/v1\n"
        "    api_key: test-key\n"
        "model_groups:\n"
        "  - name: default\n"
        "    deployments:\n"
        "      - {provider: fake, model: fake-model}\n",
        encoding="utf-8")
    return str(cfg)


def chat_requests(fake):
    return [json.loads(r["body"]) for r in fake.requests(last=50) if r["path"] == "/v1/chat/completions"]


def audit_records(tmp_path, cfg):
    p = subprocess.run([MAYAK_BIN, "audit", "export", "--format", "jsonl", "--config", cfg], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


WIFI = "How do I connect to the office Wi-Fi?"


def test_llm_answers_with_the_spotlighted_passages(tmp_path, fake):
    cfg = llm_config(tmp_path, fake)
    fake.mode(text="Open the network settings and pick Corp-WiFi.")
    rc, out, err = ask(["--config", cfg, "--json", WIFI], cwd=tmp_path)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert FIELDS <= set(r)
    assert r["llm"] is True
    assert r["agent"] == "network" and r["escalate"] is False and r["reason"] is None
    # The fake's text is the answer; the sources the desk cites follow it.
    assert r["answer"].startswith("Open the network settings and pick Corp-WiFi."), r["answer"]
    assert r["citations"] and r["citations"][0]["url"] in r["answer"]

    sent = chat_requests(fake)
    assert sent, "the fake provider was never called"
    prompt = sent[-1]
    assert prompt["model"] == "fake-model"  # the router mapped the desk's model group
    system, user = prompt["messages"][0], prompt["messages"][-1]
    assert system["role"] == "system" and user == {"role": "user", "content": WIFI}
    # The passages are spotlighted: delimited by a per-prompt random tag, datamarked.
    tag = re.search(r"<<<(mk-[0-9a-f]{16}) source=", system["content"])
    assert tag, system["content"][:500]
    assert f"<<<end-{tag.group(1)}>>>" in system["content"]
    assert "\u02c6" in system["content"]
    for c in r["citations"]:
        assert f'source="{c["url"]}"' in system["content"]
    # The call went through the pipeline: it is in the audit chain as the desk's.
    recs = [x for x in audit_records(tmp_path, cfg) if x["action"] == "internal.chat"]
    assert recs and recs[-1]["principal"] == "desk" and recs[-1]["outcome"] == "ok"
    assert recs[-1]["deployment"] == "fake/fake-model"
    assert "prompt_injection" in recs[-1]["verdicts"]  # the input guard saw it
    # Internal calls have their own request id and a digest of the prompt they sent.
    assert recs[-1]["request_id"] and len(recs[-1]["request_id"]) == 16, recs[-1]
    assert recs[-1]["prompt_digest"], recs[-1]


def test_llm_failure_escalates_with_llm_error(tmp_path, fake):
    cfg = llm_config(tmp_path, fake)
    fake.mode(status=400)
    rc, out, err = ask(["--config", cfg, "--json", WIFI], cwd=tmp_path)
    assert rc == 0, err
    r = json.loads(out)
    assert r["llm"] is True
    assert r["escalate"] is True and r["reason"] == "llm_error"
    assert "Fake answer" not in r["answer"] and r["answer"]
    assert chat_requests(fake), "the provider was asked"


def test_llm_batch_prints_one_line_per_question(tmp_path, fake):
    cfg = llm_config(tmp_path, fake)
    questions = [WIFI, "", "позовите оператора", "What is the capital of Australia?", "How do I reset my password?"]
    rc, out, err = ask(["--config", cfg], stdin="\n".join(questions).encode() + b"\n", cwd=tmp_path)
    assert rc == 0, err
    rows = [json.loads(l) for l in out.strip().splitlines()]
    assert len(rows) == 4
    wifi, person, offtopic, password = rows
    assert wifi["llm"] and wifi["answer"].startswith("Fake answer to: " + WIFI)
    # A request for a person and an off-topic question never reach the LLM.
    assert person["llm"] is False and person["reason"] == "user_request"
    assert offtopic["llm"] is False and offtopic["escalate"]
    assert password["llm"] and password["agent"] == "accounts"
    assert password["answer"].startswith("Fake answer to: How do I reset my password?")
    # Answer requests carry spotlighted passages (the off-topic question may still have
    # asked the LLM for a triage opinion, which has none).
    answered = [m["messages"][-1]["content"] for m in chat_requests(fake)
                if "<<<mk-" in m["messages"][0]["content"]]
    assert sorted(answered) == sorted([WIFI, "How do I reset my password?"])


def test_no_llm_flag_keeps_the_local_responder(tmp_path, fake):
    cfg = llm_config(tmp_path, fake)
    rc, out, err = ask(["--config", cfg, "--json", "--no-llm", WIFI], cwd=tmp_path)
    assert rc == 0, err
    r = json.loads(out)
    assert r["llm"] is False and not r["escalate"] and "Fake answer" not in r["answer"]
    assert chat_requests(fake) == []


def test_local_answers_say_llm_false(tmp_path):
    rc, out, err = ask(["--json", WIFI], cwd=tmp_path)
    assert rc == 0, err
    assert json.loads(out)["llm"] is False
