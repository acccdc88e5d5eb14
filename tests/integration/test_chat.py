"""Chat completions through Mayak: the embedded local responder and the openai-type
provider on the fake, both stream modes, usage, tool calls, errors."""
import json

import requests

from conftest import openai_config, sse_events


def test_embedded_defaults_answer_from_knowledge_base(mayak_factory):
    m = mayak_factory()  # no config: embedded defaults
    r = m.chat("How do I reset my password?", model="mayak-local")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    text = body["choices"][0]["message"]["content"]
    assert "password" in text.lower()
    assert body["usage"]["total_tokens"] > 0
    assert r.headers["x-mayak-model-group"] == "mayak-local"
    assert int(r.headers["x-mayak-overhead-us"]) >= 0
    assert r.headers["x-request-id"]


def test_embedded_defaults_stream_in_russian(mayak_factory):
    m = mayak_factory()
    r = m.chat("Не могу подключиться к Wi-Fi", model="default", stream=True,
               stream_options={"include_usage": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Wi-Fi" in text or "сет" in text
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_openai_provider_non_stream(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    r = m.chat("hello there")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "hello there" in body["choices"][0]["message"]["content"]
    assert body["usage"]["prompt_tokens"] > 0
    seen = fake.requests(last=1)[-1]
    assert seen["path"] == "/v1/chat/completions"
    headers = {k.lower(): v for k, v in seen["headers"].items()} if isinstance(seen["headers"], dict) else {
        h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in seen["headers"]}
    assert headers["authorization"] == "Bearer test-key"
    assert json.loads(seen["body"])["model"] == "fake-model"


def test_openai_provider_stream_with_and_without_usage(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    r = m.chat("count [[fake chunks=5 interval_ms=5]]", stream=True)
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    # Mayak always asks upstream for usage, but only forwards it when the client asked.
    assert all(c["choices"] for c in chunks)
    r = m.chat("count [[fake chunks=5]]", stream=True, stream_options={"include_usage": True})
    chunks = [json.loads(e) for e in sse_events(r)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_tool_calls_pass_through_both_ways(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather by city",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}]
    r = m.chat("what is the weather", tools=tools)
    msg = r.json()["choices"][0]["message"]
    call = msg["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Moscow"}
    # Streamed: argument deltas arrive in pieces and concatenate to the same JSON.
    r = m.chat("what is the weather", tools=tools, stream=True)
    chunks = [json.loads(e) for e in sse_events(r)[:-1]]
    args = "".join(tc["function"].get("arguments", "") for c in chunks for tc in
                   (c["choices"][0]["delta"].get("tool_calls") or []))
    assert json.loads(args) == {"city": "Moscow"}
    # And back: the tool result message goes upstream unchanged.
    body = {"model": "default", "tools": tools, "messages": [
        {"role": "user", "content": "what is the weather"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "{\"temp\": -5}"}]}
    r = requests.post(m.url + "/v1/chat/completions", json=body, timeout=10)
    assert r.status_code == 200, r.text
    sent = json.loads(fake.requests(last=1)[-1]["body"])
    assert sent["messages"][2]["role"] == "tool" and sent["messages"][1]["tool_calls"][0]["id"] == call["id"]


def test_errors_have_openai_shape(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    r = requests.post(m.url + "/v1/chat/completions", data=b"{not json", timeout=5)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    r = m.chat("hi", model="no-such-model")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = requests.post(m.url + "/v1/chat/completions", json={"model": "default", "messages": []}, timeout=5)
    assert r.status_code == 400
    r = requests.get(m.url + "/v1/nope", timeout=5)
    assert r.status_code == 404 and "error" in r.json()
    # An upstream 400 is the client's problem: passed on, not retried.
    r = m.chat("bad [[fake status=400]]")
    assert r.status_code == 400
    assert fake.stats()["requests"] >= 1


def test_models_lists_groups_and_aliases(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url, group_extra="    aliases: [gpt-4o-mini]\n"))
    data = requests.get(m.url + "/v1/models", timeout=5).json()
    ids = {d["id"] for d in data["data"]}
    assert {"default", "gpt-4o-mini"} <= ids
    r = m.chat("via alias", model="gpt-4o-mini")
    assert r.status_code == 200


def test_usage_is_counted(fake, mayak_factory):
    m = mayak_factory(openai_config(fake.url))
    for _ in range(3):
        assert m.chat("count me").status_code == 200
    rows = requests.get(m.url + "/api/v1/usage", timeout=5).json()["data"]
    row = [r for r in rows if r["model_group"] == "default"][0]
    assert row["requests"] == 3 and row["prompt_tokens"] > 0 and row["deployment"] == "fake/fake-model"
    text = m.metrics()
    assert 'mayak_tokens_total{model_group="default",deployment="fake/fake-model",kind="prompt"}' in text
