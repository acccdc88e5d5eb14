"""The official `openai` npm SDK, unchanged, against Mayak (tests/integration/node).

Mayak claims OpenAI compatibility; this is the client that decides whether the claim
holds. node/sdk_check.mjs lists models, chats (plain, streamed with usage, with tool
calls), embeds (the SDK's default base64 path) and expects a typed 404 error; it prints
a JSON summary and exits non-zero when any check fails.

Missing node or a missing SDK is a failure, not a skip: the suite must not go green
without having run the real client (scripts/install-deps.sh --test installs both).
"""
import json
import os
import shutil
import subprocess

from conftest import SLOW, openai_config

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
CHECKS = ["models_list", "chat", "chat_stream", "tool_calls", "tool_calls_stream", "embeddings",
          "error_unknown_model"]


def test_openai_node_sdk_works_unchanged(fake, mayak_factory):
    node = shutil.which("node")
    assert node, "node is not installed: run scripts/install-deps.sh --test"
    sdk = os.path.join(NODE_DIR, "node_modules", "openai", "package.json")
    assert os.path.isfile(sdk), (f"the openai SDK is not installed in {NODE_DIR}: "
                                 "run scripts/install-deps.sh --test (or npm ci there)")
    with open(os.path.join(NODE_DIR, "package.json")) as f:
        pinned = json.load(f)["dependencies"]["openai"]
    with open(sdk) as f:
        installed = json.load(f)["version"]
    assert installed == pinned, f"node_modules has openai {installed}, package.json pins {pinned}: run npm ci"

    m = mayak_factory(openai_config(fake.url))
    env = dict(os.environ, MAYAK_URL=m.url, MAYAK_MODEL="default")
    try:
        p = subprocess.run([node, "sdk_check.mjs"], cwd=NODE_DIR, env=env, capture_output=True,
                           timeout=120 * SLOW)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"sdk_check.mjs did not finish: {e.stdout!r} {e.stderr!r}") from None
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, f"sdk_check.mjs exited {p.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    summary = json.loads(out)
    assert summary["ok"] is True and summary["sdk_version"] == pinned, summary
    for name in CHECKS:
        assert summary["checks"].get(name, {}).get("ok") is True, f"{name}: {summary['checks'].get(name)}"
    checks = summary["checks"]
    assert "default" in checks["models_list"]["ids"]
    assert "hello from the sdk" in checks["chat"]["content"]
    assert "stream please" in checks["chat_stream"]["text"] and checks["chat_stream"]["total_tokens"] > 0
    assert checks["tool_calls"]["arguments"] == {"city": "Moscow"}
    assert "minus five and snow" in checks["tool_calls"]["answer"]
    assert all(d > 0 for d in checks["embeddings"]["dims"])
    assert checks["error_unknown_model"]["status"] == 404

    # The SDK's calls really went through Mayak to the provider.
    paths = fake.stats()["by_path"]
    assert paths.get("/v1/chat/completions", 0) >= 4 and paths.get("/v1/embeddings", 0) >= 1, paths
    sent = [json.loads(r["body"]) for r in fake.requests(last=50) if r["path"] == "/v1/embeddings"]
    assert sent and sent[-1]["model"] == "fake-model"
