"""The response cache shared across nodes through a real redis-server (docs/CACHE.md,
"Several nodes"): two mayak processes on one Redis. An answer cached by node A is an
exact and a semantic hit on node B without reaching the provider; an invalidation
through B's admin API empties A's cache; a node started later catches up on the
entries still in Redis. Each node's entry count (`mayak_cache_entries` on /metrics)
shows when it has pulled the other's operations, so the test never probes a node
before the entry is there (a probe that misses would store an answer of its own)."""
import re
import socket
import subprocess

import requests

from conftest import openai_config, wait_for
from servers import redis_server

CONFIG = """\
auth: {local_admin: true}
audit: {enabled: false}
cache: {threshold: 0.8}
kv: {url: 'redis://127.0.0.1:%d'}
"""




def redis_cmd(port, *args):
    """One command in RESP; returns the raw reply (enough for GET of a counter)."""
    out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(out)
        return s.recv(4096)


def seq(port):
    """The shared op counter (0 before the first op)."""
    reply = redis_cmd(port, "GET", "mk:cache:seq")
    return int(reply.split(b"\r\n")[1]) if reply.startswith(b"$") and not reply.startswith(b"$-1") else 0


def entries(node):
    m = re.search(r"^mayak_cache_entries (\S+)$", node.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def upstream_calls(fake):
    return len([r for r in fake.requests(last=100) if r["path"].endswith("/chat/completions")])


def answer(r):
    return r.json()["choices"][0]["message"]["content"]


def test_cache_entries_and_invalidations_are_shared_through_redis(fake, mayak_factory):
    redis, port = redis_server()
    try:
        cfg = CONFIG % port + openai_config(fake.url)
        a = mayak_factory(cfg)
        b = mayak_factory(cfg)

        # A's kv connects in the background: until then its entries stay local (sharing
        # is best effort), so warm up until one op reached Redis.
        # (plain support questions: the input guards flag odd text, and flagged requests
        # bypass the cache)
        words = iter([f"How do I {verb} my {thing}?" for verb in ("update", "find", "check", "rename")
                      for thing in ("billing address", "invoice", "username", "backup settings", "time zone")])

        def a_shares():
            r = a.chat(next(words), temperature=0)
            assert r.status_code == 200 and r.headers["x-mayak-cache"] == "miss", r.headers
            return seq(port) >= 1
        wait_for(a_shares, interval=0.2, what="node A to share a cache entry through Redis")

        # A answers from the provider and caches; the op lands in Redis.
        question = "Как включить Wi-Fi на ноутбуке?"
        shared = seq(port)
        r = a.chat(question, temperature=0)
        assert r.status_code == 200, r.text
        assert r.headers["x-mayak-cache"] == "miss"
        original = answer(r)
        wait_for(lambda: seq(port) == shared + 1, what="node A to append the entry to Redis")
        shared += 1
        calls = upstream_calls(fake)

        # B pulls A's entries into its own table and index.
        wait_for(lambda: entries(b) >= shared, what="node B to pull node A's cache entries")
        r = b.chat(question, temperature=0)
        assert r.headers["x-mayak-cache"] == "hit-exact", r.headers
        assert answer(r) == original
        r = b.chat("Как мне включить Wi-Fi на ноутбуке?", temperature=0)
        assert r.headers["x-mayak-cache"] == "hit-semantic", r.headers
        assert answer(r) == original
        # The false-hit guard works on entries that came from another node too.
        r = b.chat("Как выключить Wi-Fi на ноутбуке?", temperature=0)
        assert r.headers["x-mayak-cache"] == "miss", r.headers
        assert upstream_calls(fake) == calls + 1, "only the antonym reached the provider"

        # A node started now replays the entries still in Redis.
        c = mayak_factory(cfg)
        wait_for(lambda: entries(c) >= shared, what="a late node to catch up on the shared entries")
        r = c.chat(question, temperature=0)
        assert r.headers["x-mayak-cache"] == "hit-exact", r.headers
        assert answer(r) == original

        # Invalidation through B's admin API reaches A (and C).
        r = requests.post(b.url + "/api/v1/cache/invalidate", json={"model_group": "default"}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["invalidated"] >= shared
        wait_for(lambda: entries(a) == 0, what="node A to apply node B's invalidation")
        wait_for(lambda: entries(c) == 0, what="node C to apply node B's invalidation")
        before = upstream_calls(fake)
        r = a.chat(question, temperature=0)
        assert r.headers["x-mayak-cache"] == "miss", r.headers
        assert upstream_calls(fake) == before + 1
    finally:
        redis.terminate()
        try:
            redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            redis.kill()
            redis.wait()


def test_nodes_keep_serving_their_own_entries_when_redis_is_gone(fake, mayak_factory):
    """Sharing is best effort: with Redis down a node still caches and answers locally."""
    redis, port = redis_server()
    cfg = CONFIG % port + openai_config(fake.url)
    try:
        a = mayak_factory(cfg)
        wait_for(lambda: a.chat("How do I update my billing address?", temperature=0).status_code == 200, what="node A")
    finally:
        redis.terminate()
        redis.wait(timeout=10)
    r = a.chat("Where can I download my invoice?", temperature=0)
    assert r.status_code == 200, r.text
    assert r.headers["x-mayak-cache"] == "miss"
    r = a.chat("Where can I download my invoice?", temperature=0)
    assert r.headers["x-mayak-cache"] == "hit-exact", r.headers
