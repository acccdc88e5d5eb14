#!/usr/bin/env bash
# Cache hits through the whole HTTP pipeline (docs/CACHE.md, "Through HTTP").
#
# Issue goals: exact hits >= 40,000 requests/s on one core; hit latency p99 <= 1 ms at
# a fixed 10,000 requests/s on one core.
#
# What it does: starts the fake provider and Mayak (Mayak pinned to MAYAK_CPU, the load
# generators and the fake to LOAD_CPU, both from bench/lib.sh), fills the cache with
# one answer (a miss that the fake answers), then measures
#   1. exact-hit throughput: wrk -t1 -cN (closed loop, keep-alive POST, bench/post.lua);
#   2. exact-hit latency at a fixed rate: bench/loadgen (open loop, latency counted from
#      each request's due time, so queueing is not hidden);
#   3. semantic-hit latency at the same rate: a paraphrase of the cached question, so
#      every request pays the embedding, the vector search and the false-hit guard;
#      with CACHE_ENTRIES > 0 the namespace first gets that many other entries, so the
#      search runs over a realistic index instead of one vector.
# Each run is checked: wrk's hits are counted on Mayak's /metrics (a run that served
# misses or errors says so), and loadgen counts replies carrying the expected
# x-mayak-cache value (--mark). Every command is printed before it runs.
#
# usage: bench/cache/http.sh            (MAYAK_BUILD_DIR: the build to measure; use a
#                                        Release build for numbers, Debug is -O0)
# knobs: RATE (10000), DURATION (10), WARMUP (2), CONNECTIONS (32, loadgen),
#        WRK_CONNECTIONS (64), WRK_DURATION (10s), CACHE_ENTRIES (1000),
#        BENCH_AUDIT (true: the audit chain every user gets; false to see its share),
#        BENCH_RESULTS (append Markdown results to this file).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

RATE="${RATE:-10000}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
WRK_DURATION="${WRK_DURATION:-10s}"
CACHE_ENTRIES="${CACHE_ENTRIES:-1000}"
AUTH='Authorization: Bearer sk-bench'

need_bins
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
LOADGEN="$(driver loadgen)" || exit 1
raise_nofile

start_fake fake
M_PORT="$(free_port)"
CFG="$BENCH_TMP/mayak.yaml"
write_mayak_config "$CFG" "$M_PORT" "$FAKE_PORT"
# The cache is on by default; spelled out so the run does not depend on it.
echo "cache: {enabled: true}" >>"$CFG"
start_mayak mayak "$CFG" "$M_PORT"
URL="http://$HOST:$M_PORT/v1/chat/completions"

body() { # TEXT -> a deterministic chat request (temperature 0: cacheable)
    python3 -c 'import json,sys; print(json.dumps({"model":"bench","temperature":0,"max_tokens":64,"messages":[{"role":"user","content":sys.argv[1]}]}))' "$1"
}
EXACT="$BENCH_TMP/exact.json"
SEMANTIC="$BENCH_TMP/semantic.json"
body "How do I reset the password of my home Wi-Fi router?" >"$EXACT"
body "How can I reset the password of my home Wi-Fi router?" >"$SEMANTIC"

cache_header() { # BODY_FILE -> the x-mayak-cache value of one request
    curl -sS -m 10 -o /dev/null -D - "$URL" -H 'Content-Type: application/json' -H "$AUTH" \
        --data-binary @"$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-mayak-cache" { print $2 }'
}
# Mayak's CPU time (user + system, all threads) in microseconds: with other work on
# the machine, CPU per request is steadier than wall-clock rates.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e6 / hz }' "/proc/$MAYAK_PID/stat"; }
per_request() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "?" }'; }
hits_total() { # KIND -> mayak_cache_hits_total for the bench group
    curl -sS -m 10 "http://$HOST:$M_PORT/metrics" |
        awk -v k="$1" '$1 ~ /^mayak_cache_hits_total\{/ && $1 ~ "kind=\"" k "\"" { print $2 }' | head -n1
}

section "Filling the cache"
first="$(cache_header "$EXACT")"
[ "$first" = miss ] || [ "$first" = hit-exact ] || die "the first request was '$first', not a cacheable miss"
if [ "$CACHE_ENTRIES" -gt 0 ]; then
    say "Storing $CACHE_ENTRIES other questions in the same namespace (distinct intents, no paraphrases of the probe)."
    python3 - "$HOST" "$M_PORT" "$CACHE_ENTRIES" <<'EOF'
import http.client, json, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
topics = ["invoice", "printer driver", "VPN client", "mailbox quota", "laptop battery", "monitor cable",
          "keyboard layout", "calendar sharing", "backup schedule", "disk encryption", "time zone", "webcam"]
verbs = ["configure", "remove", "update", "find", "export", "check", "rename", "share"]
c = http.client.HTTPConnection(host, port, timeout=30)
stored = 0
for i in range(n):
    text = f"How do I {verbs[i % len(verbs)]} the {topics[(i // len(verbs)) % len(topics)]} on workstation {i}?"
    body = json.dumps({"model": "bench", "temperature": 0, "max_tokens": 64,
                       "messages": [{"role": "user", "content": text}]})
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json",
                                                      "Authorization": "Bearer sk-bench"})
    r = c.getresponse(); r.read()
    stored += r.status == 200 and r.getheader("x-mayak-cache") == "miss"
print(f"stored {stored} of {n}")
EOF
fi
ex="$(cache_header "$EXACT")"
se="$(cache_header "$SEMANTIC")"
say "probe: exact request -> $ex, paraphrase -> $se"
[ "$ex" = hit-exact ] || die "the cached request is not an exact hit ($ex)"
[ "$se" = hit-semantic ] || say "WARNING: the paraphrase is not a semantic hit ($se); its latency below is not a hit's"

section "Exact hits: maximum throughput (wrk -t1 -c$WRK_CONNECTIONS -d$WRK_DURATION)"
say "Mayak on CPU $MAYAK_CPU; wrk on CPU $LOAD_CPU; audit ${BENCH_AUDIT:-true}."
timeout 30 "${PIN_LOAD[@]}" wrk -t1 -c16 -d2s -s "$BENCH/post.lua" "$URL" -- "$EXACT" "$AUTH" >/dev/null 2>&1
before="$(hits_total exact)"
c0="$(cpu_us)"
W="$BENCH_TMP/wrk-exact.txt"
run 120 "$W" "${PIN_LOAD[@]}" wrk -t1 "-c$WRK_CONNECTIONS" "-d$WRK_DURATION" --timeout 5s --latency \
    -s "$BENCH/post.lua" "$URL" -- "$EXACT" "$AUTH" || true
after="$(hits_total exact)"
c1="$(cpu_us)"
rps="$(awk '/^Requests\/sec:/ { print $2 }' "$W")"
reqs="$(awk '/requests in/ { print $1 }' "$W")"
non2xx="$(awk '/Non-2xx/ { print $NF }' "$W")"
result "exact hits, max throughput" "${rps:-?} requests/s (goal >= 40000); $(calc "${after:-0} - ${before:-0}") exact hits counted by Mayak for ${reqs:-?} requests; non-2xx: ${non2xx:-0}; Mayak CPU $(per_request "$c0" "$c1" "${reqs:-0}") µs per request"

latency_run() { # NAME BODY MARK
    local name="$1" file="$2" mark="$3" out="$BENCH_TMP/loadgen-$1.txt"
    section "$name hits at a fixed $RATE requests/s (bench/loadgen, ${DURATION}s, first ${WARMUP}s left out)"
    timeout 30 "${PIN_LOAD[@]}" "$LOADGEN" --port "$M_PORT" --rate 2000 --duration 1 --body-file "$file" \
        -H "$AUTH" >/dev/null 2>&1
    local c0 c1
    c0="$(cpu_us)"
    run $((DURATION + 30)) "$out" "${PIN_LOAD[@]}" "$LOADGEN" --port "$M_PORT" --rate "$RATE" \
        --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS" --timeout-ms 2000 \
        --body-file "$file" -H "$AUTH" --mark "$mark" || true
    c1="$(cpu_us)"
    result "$name hit latency at $RATE/s" "p50 $(kv "$out" latency_us p50) µs, p99 $(kv "$out" latency_us p99) µs, p999 $(kv "$out" latency_us p999) µs (goal p99 <= 1000 µs); achieved $(kv "$out" result achieved_rps)/s, errors $(kv "$out" result errors), replies marked '$mark': $(kv "$out" marked total) of $(kv "$out" result requests); Mayak CPU $(per_request "$c0" "$c1" "$(kv "$out" result requests)") µs per request"
}
latency_run exact "$EXACT" hit-exact
latency_run semantic "$SEMANTIC" hit-semantic
say
say "Commands and logs: $BENCH_TMP/commands.log (kept with BENCH_KEEP_TMP=1)."
