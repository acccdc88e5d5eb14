"""Output checks through the real binary and the fake provider: the system-prompt
canary reaches the provider (also in the masked copy sent abroad), and the word and
pattern policy (guard.output_block / guard.output_patterns, Russian and English,
caseless) withholds whole answers and fails streams, also when a phrase is split
across chunks. The canary's own detection is unit-tested
(tests/unit/pipeline/test_output_guard.c): its value is random per request, so the
fake cannot be scripted to echo it."""
import json
import os
import re
import subprocess

import pytest
import requests

from conftest import MAYAK_BIN, SOURCE_DIR, sse_events


def config(fake, guard="", provider_extra=""):
    return f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: fake
    type: openai
    base_url: {fake.url}/v1
{provider_extra}model_groups:
  - name: default
    cache: {{enabled: false}}
    deployments:
      - {{provider: fake, model: m}}
{guard}"""


POLICY = """\
guard:
  output_block: ["Проект Сокол", "project falcon"]
  output_patterns: ['пароль\\s*:\\s*\\w+', '\\bsk-[a-z0-9]{8,}']
"""


def chat(m, messages, stream=False):
    return requests.post(m.url + "/v1/chat/completions",
                         json={"model": "default", "messages": messages, "stream": stream},
                         timeout=30, stream=stream)


def user(text):
    return [{"role": "user", "content": text}]


def streamed(r):
    """(content text, the last event parsed) of an SSE reply."""
    events = sse_events(r)
    text = ""
    for e in events:
        if e == "[DONE]":
            continue
        c = json.loads(e)
        for ch in c.get("choices") or []:
            text += (ch.get("delta") or {}).get("content") or ""
    return text, events[-1]


def blocked(r):
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "guard_violation" and err["code"] == "output_policy", err
    assert r.headers["x-mayak-guard-output"].startswith("block")
    return r.headers["x-mayak-guard-output"]


def test_canary_added_to_the_system_prompt_sent_upstream(fake, mayak_factory):
    m = mayak_factory(config(fake))
    r = chat(m, [{"role": "system", "content": "You are Mayak support."}] + user("hello"))
    assert r.status_code == 200, r.text
    sent = json.loads(fake.requests(last=1)[-1]["body"])["messages"]
    assert sent[0]["role"] == "system"
    assert sent[0]["content"].startswith("You are Mayak support.")
    first = re.search(r"mk-canary-([0-9a-f]{16})", sent[0]["content"])
    assert first, sent[0]["content"]
    assert sent[1] == {"role": "user", "content": "hello"}, "user text untouched"
    # A fresh canary per request.
    assert chat(m, [{"role": "developer", "content": "Rules."}] + user("hi again")).status_code == 200
    again = json.loads(fake.requests(last=1)[-1]["body"])["messages"][0]["content"]
    second = re.search(r"mk-canary-([0-9a-f]{16})", again)
    assert second and second.group(1) != first.group(1)
    # No system message: nothing added.
    assert chat(m, user("no system")).status_code == 200
    assert "mk-canary" not in fake.requests(last=1)[-1]["body"]


def test_canary_also_in_the_masked_copy_sent_abroad(fake, mayak_factory):
    m = mayak_factory(config(fake))  # the fake is not tagged residency:ru: the masked copy goes
    email = "ivan.petrov@example.com"
    r = chat(m, [{"role": "system", "content": f"Escalate to {email}."}] + user(f"write to {email}"))
    assert r.status_code == 200, r.text
    sent = json.loads(fake.requests(last=1)[-1]["body"])["messages"]
    assert email not in sent[0]["content"] and "<EMAIL_1>" in sent[0]["content"]
    assert re.search(r"mk-canary-[0-9a-f]{16}", sent[0]["content"]), sent[0]["content"]
    assert email in r.json()["choices"][0]["message"]["content"], "restored for the caller"


def test_word_policy_blocks_whole_answers(fake, mayak_factory, workdir):
    m = mayak_factory(config(fake, POLICY))
    ok = chat(m, user("how do I reset my router"))
    assert ok.status_code == 200 and "x-mayak-guard-output" not in ok.headers
    # The fake echoes the user's text, so the answer carries the phrase (other case).
    blocked(chat(m, user("tell me about PROJECT Falcon")))
    assert "rule=word" in blocked(chat(m, user("что такое проект сокол?")))
    assert "rule=pattern" in blocked(chat(m, user("Ваш ПАРОЛЬ: щука42")))
    assert "rule=pattern" in blocked(chat(m, user("key sk-abcdef123456")))
    # Word boundaries of the pattern hold: no false hit inside another token.
    assert chat(m, user("task-abcdef123456")).status_code == 200
    assert m.stop() == 0
    res = subprocess.run([MAYAK_BIN, "audit", "export", "--format", "jsonl"], cwd=workdir, capture_output=True,
                         text=True, timeout=60)
    records = [json.loads(l) for l in res.stdout.splitlines() if l.strip()]
    verdicts = [r["verdicts"].get("output") for r in records if r.get("verdicts", {}).get("output")]
    assert any(v["decision"] == "block" and v["rule"] == "word" for v in verdicts), verdicts
    assert any(v["decision"] == "allow" for v in verdicts), verdicts


def test_word_policy_fails_streams_even_across_chunks(fake, mayak_factory):
    m = mayak_factory(config(fake, POLICY))
    text, last = streamed(chat(m, user("all good here [[fake chunks=3]]"), stream=True))
    assert last == "[DONE]" and "all good here" in text
    # "Проект Сокол" arrives as "...Проект" + "Сокол..." in separate chunks.
    r = chat(m, user("[[fake text=наш_Проект_Сокол_стартует_завтра chunks=5]]"), stream=True)
    assert r.status_code == 200
    text, last = streamed(r)
    assert last != "[DONE]" and "error" in json.loads(last), last
    assert json.loads(last)["error"]["code"] == "output_policy"
    assert "Сокол" not in text, "the chunk completing the phrase is never forwarded"
    assert "стартует" not in text, "nothing after it either"


def test_bad_pattern_stops_the_start(fake, workdir):
    path = f"{workdir}/bad.yaml"
    with open(path, "w") as f:
        f.write(config(fake, "guard:\n  output_patterns: ['(unclosed']\n").replace("{port}", "1"))
    res = subprocess.run([MAYAK_BIN, "serve", "--config", path], cwd=workdir, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode != 0
    assert "(unclosed" in res.stdout + res.stderr
