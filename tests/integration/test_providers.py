"""GigaChat and YandexGPT through Mayak, on the fake speaking their wire formats."""
import json

from conftest import sse_events


def gigachat_config(fake):
    return f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: giga
    type: gigachat
    auth_url: {fake.url}/api/v2/oauth
    base_url: {fake.url}/api/v1
    credentials: dGVzdDpzZWNyZXQ=
    scope: GIGACHAT_API_PERS
model_groups:
  - name: default
    deployments:
      - {{provider: giga, model: GigaChat}}
"""


def yandex_config(fake):
    return f"""\
listen: 127.0.0.1:{{port}}
providers:
  - name: ya
    type: yandexgpt
    base_url: {fake.url}
    api_key: test-api-key
    folder_id: b1gtestfolder
model_groups:
  - name: default
    deployments:
      - {{provider: ya, model: yandexgpt/latest}}
  - name: emb
    deployments:
      - {{provider: ya, model: text-search-doc/latest}}
"""


def test_gigachat_token_is_fetched_once_and_reused(fake, mayak_factory):
    m = mayak_factory(gigachat_config(fake))
    for _ in range(5):
        r = m.chat("Привет, как дела?")
        assert r.status_code == 200, r.text
        assert "Привет" in r.json()["choices"][0]["message"]["content"]
    assert fake.stats()["token_requests"] == 1


def test_gigachat_stream_and_tools(fake, mayak_factory):
    m = mayak_factory(gigachat_config(fake))
    r = m.chat("расскажи [[fake chunks=4]]", stream=True, stream_options={"include_usage": True})
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["usage"]["total_tokens"] > 0
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    r = m.chat("what is the weather", tools=tools)
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Moscow"}
    sent = json.loads(fake.requests(last=1)[-1]["body"])
    assert sent["functions"][0]["name"] == "get_weather" and "tools" not in sent


def test_yandexgpt_chat_stream_and_embeddings(fake, mayak_factory):
    m = mayak_factory(yandex_config(fake))
    r = m.chat("Как настроить почту?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    sent = fake.requests(last=1)[-1]
    assert json.loads(sent["body"])["modelUri"] == "gpt://b1gtestfolder/yandexgpt/latest"
    r = m.chat("Как настроить почту? [[fake chunks=6]]", stream=True)
    chunks = [json.loads(e) for e in sse_events(r)[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == body["choices"][0]["message"]["content"] or "почту" in text
    import requests
    r = requests.post(m.url + "/v1/embeddings", json={"model": "emb", "input": ["один", "два", "три"]}, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1, 2] and len(data[0]["embedding"]) > 0
    # YandexGPT embeds one text per call.
    assert fake.stats()["by_path"].get("/foundationModels/v1/textEmbedding", 0) == 3


def test_openai_embeddings_float_and_base64(fake, mayak_factory):
    import base64
    import struct
    import requests
    from conftest import openai_config
    m = mayak_factory(openai_config(fake.url))
    r = requests.post(m.url + "/v1/embeddings", json={"model": "default", "input": "hello"}, timeout=10)
    assert r.status_code == 200, r.text
    vec = r.json()["data"][0]["embedding"]
    r = requests.post(m.url + "/v1/embeddings", json={"model": "default", "input": ["hello"],
                                                      "encoding_format": "base64"}, timeout=10)
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(decoded) == len(vec)
    assert all(abs(x - y) < 1e-6 for x, y in zip(decoded, vec))
    r = requests.post(m.url + "/v1/embeddings", json={"model": "default", "input": [[1, 2, 3]]}, timeout=10)
    assert r.status_code == 400


def test_builtin_embedder_is_served_as_mayak_embed(mayak_factory):
    """No provider needed: the built-in embedder answers as model "mayak-embed"."""
    import math
    import requests
    m = mayak_factory()
    models = {d["id"] for d in requests.get(m.url + "/v1/models", timeout=5).json()["data"]}
    assert "mayak-embed" in models
    r = requests.post(m.url + "/v1/embeddings", json={"model": "mayak-embed",
                      "input": ["Не работает принтер", "Принтер не печатает", "Как оплатить счёт"]}, timeout=10)
    assert r.status_code == 200, r.text
    vecs = [d["embedding"] for d in r.json()["data"]]
    assert len(vecs) == 3 and len(vecs[0]) == len(vecs[1]) > 0
    assert abs(math.sqrt(sum(x * x for x in vecs[0])) - 1.0) < 1e-3, "vectors are unit length"
    cos = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2]), "similar questions are closer"
    assert r.json()["usage"]["prompt_tokens"] > 0
