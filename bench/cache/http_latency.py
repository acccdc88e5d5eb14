#!/usr/bin/env python3
"""Cache hit latency through HTTP: primes one answer, then times N identical requests
(exact hits) and N paraphrases (semantic hits) against a running mayak.
usage: http_latency.py http://127.0.0.1:8080 [n] [model]"""
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlparse


def post(conn, text, model):
    body = json.dumps({"model": model, "temperature": 0, "messages": [{"role": "user", "content": text}]})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    return (time.perf_counter() - t0) * 1e3, r.getheader("x-mayak-cache")


def main():
    url = urlparse(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    model = sys.argv[3] if len(sys.argv) > 3 else "default"
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    post(conn, "Как включить Wi-Fi на ноутбуке?", model)
    for text, want in (("Как включить Wi-Fi на ноутбуке?", "hit-exact"), ("Как мне включить Wi-Fi на ноутбуке?", "hit-semantic")):
        times = []
        for _ in range(n):
            ms, kind = post(conn, text, model)
            if kind != want:
                sys.exit(f"expected {want}, got {kind}")
            times.append(ms)
        times.sort()
        print(f"{want}: n={n} p50={statistics.median(times):.3f} ms p99={times[int(0.99 * n) - 1]:.3f} ms")


if __name__ == "__main__":
    main()
