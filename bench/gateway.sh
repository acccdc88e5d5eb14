#!/usr/bin/env bash
# bench/gateway.sh: what Mayak costs on the non-streaming path.
#
#   bench/gateway.sh [overhead|throughput|all]      (default all)
#
# overhead    Open-loop fixed rate (bench/loadgen, default 5,000 requests/s) with a small
#             chat request, once straight to the fake provider and once through Mayak;
#             gateway overhead = Mayak's percentile minus direct's (p50 and p99). Latency
#             counts from when each request was due, so queueing is not hidden. Also the
#             distribution of Mayak's own x-mayak-overhead-us reply header.
# throughput  wrk -t1 -c64 -d10s with bench/post.lua (keep-alive POST) direct, through
#             Mayak and through Portkey's gateway (bench/peers/portkey), and the
#             Mayak/Portkey ratio (the goal is >= 20x).
#
# Mayak (and Portkey) run on MAYAK_CPU, the fake and the load generator on LOAD_CPU.
# Knobs (environment): OVERHEAD_RATE=5000 OVERHEAD_DURATION=10 OVERHEAD_WARMUP=2
# OVERHEAD_CONNECTIONS=64 THROUGHPUT_DURATION=10s THROUGHPUT_CONNECTIONS=64
# BENCH_PORTKEY=1 (0 skips Portkey). See bench/README.md.
source "$(dirname "$0")/lib.sh"

MODE="${1:-all}"
case "$MODE" in overhead|throughput|all) ;; *) die "usage: $0 [overhead|throughput|all]" ;; esac

OVERHEAD_RATE="${OVERHEAD_RATE:-5000}"
OVERHEAD_DURATION="${OVERHEAD_DURATION:-10}"
OVERHEAD_WARMUP="${OVERHEAD_WARMUP:-2}"
OVERHEAD_CONNECTIONS="${OVERHEAD_CONNECTIONS:-64}"
THROUGHPUT_DURATION="${THROUGHPUT_DURATION:-10s}"
THROUGHPUT_CONNECTIONS="${THROUGHPUT_CONNECTIONS:-64}"
BENCH_PORTKEY="${BENCH_PORTKEY:-1}"

need_bins
LOADGEN="$(driver loadgen)" || exit 1
BODY="$BENCH_TMP/small.json"
printf '%s' "$SMALL_BODY" >"$BODY"
AUTH='Authorization: Bearer sk-bench'

start_fake fake
F_PORT="$FAKE_PORT"
M_PORT="$(free_port)"
write_mayak_config "$BENCH_TMP/mayak.yaml" "$M_PORT" "$F_PORT"
start_mayak mayak "$BENCH_TMP/mayak.yaml" "$M_PORT"
check_chat "$F_PORT" "fake provider" || die "the fake provider does not answer chat completions"
check_chat "$M_PORT" "mayak" || die "Mayak does not serve chat completions yet; nothing to measure"

overhead() {
    section "Gateway overhead at a fixed ${OVERHEAD_RATE} requests/s (non-streaming, small request)"
    say "Open-loop bench/loadgen: latency from each request's due time; Mayak on CPU $MAYAK_CPU, fake and loadgen on CPU $LOAD_CPU."
    local args=(--rate "$OVERHEAD_RATE" --duration "$OVERHEAD_DURATION" --warmup "$OVERHEAD_WARMUP"
                --connections "$OVERHEAD_CONNECTIONS" --timeout-ms 2000 --body-file "$BODY" -H "$AUTH")
    local limit=$((${OVERHEAD_DURATION%.*} + 30))
    # Warm both paths (connection pools, allocator, page cache) outside the record.
    timeout 30 "${PIN_LOAD[@]}" "$LOADGEN" --port "$F_PORT" --rate 1000 --duration 1 --body-file "$BODY" -H "$AUTH" >/dev/null 2>&1
    timeout 30 "${PIN_LOAD[@]}" "$LOADGEN" --port "$M_PORT" --rate 1000 --duration 1 --body-file "$BODY" -H "$AUTH" >/dev/null 2>&1
    local d="$BENCH_TMP/overhead-direct.txt" m="$BENCH_TMP/overhead-mayak.txt"
    say "Direct to the fake:"
    run "$limit" "$d" "${PIN_LOAD[@]}" "$LOADGEN" --port "$F_PORT" "${args[@]}" || true
    say "Through Mayak:"
    run "$limit" "$m" "${PIN_LOAD[@]}" "$LOADGEN" --port "$M_PORT" "${args[@]}" || true
    local d50 d99 m50 m99
    d50="$(kv "$d" latency_us p50)"; d99="$(kv "$d" latency_us p99)"
    m50="$(kv "$m" latency_us p50)"; m99="$(kv "$m" latency_us p99)"
    if [ -z "$d50" ] || [ -z "$m50" ]; then
        result "gateway overhead" "not measured (a run failed; see its output above)"
        return 1
    fi
    result "gateway overhead p50" "$(calc "$m50 - $d50") µs (Mayak $m50 µs − direct $d50 µs)"
    result "gateway overhead p99" "$(calc "$m99 - $d99") µs (Mayak $m99 µs − direct $d99 µs)"
    result "service time (from the actual send) p50 / p99" "Mayak $(kv "$m" service_us p50) / $(kv "$m" service_us p99) µs, direct $(kv "$d" service_us p50) / $(kv "$d" service_us p99) µs (when these are far below the latencies above, requests queued: the rate was beyond what the core could serve)"
    result "achieved rate" "direct $(kv "$d" result achieved_rps)/s, Mayak $(kv "$m" result achieved_rps)/s (target $OVERHEAD_RATE/s)"
    result "errors" "direct $(kv "$d" result errors), Mayak $(kv "$m" result errors)"
    local hn
    hn="$(kv "$m" header_us count)"
    if [ -n "$hn" ] && [ "$hn" != 0 ]; then
        result "x-mayak-overhead-us header" "p50 $(kv "$m" header_us p50) µs, p90 $(kv "$m" header_us p90), p99 $(kv "$m" header_us p99), p999 $(kv "$m" header_us p999), max $(kv "$m" header_us max) (n=$hn)"
    else
        result "x-mayak-overhead-us header" "absent from Mayak's replies"
    fi
}

# wrk_rps FILE: Requests/sec from wrk's output.
wrk_rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
wrk_errors() {
    awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { for (i = 3; i <= NF; i++) { gsub(",", "", $i); if ($i ~ /^[0-9]+$/) n += $i } } END { print n + 0 }' "$1"
}

start_portkey() {
    local dir="$BENCH/peers/portkey"
    command -v node >/dev/null || { echo "bench: node is not installed" >&2; return 1; }
    if [ ! -f "$dir/node_modules/@portkey-ai/gateway/package.json" ]; then
        local how=install
        [ -f "$dir/package-lock.json" ] && how=ci # exactly the locked versions
        echo "\$ (cd bench/peers/portkey && npm $how --no-audit --no-fund)"
        (cd "$dir" && timeout 300 npm "$how" --no-audit --no-fund >"$BENCH_TMP/npm.log" 2>&1) || {
            tail -20 "$BENCH_TMP/npm.log" >&2; return 1; }
    fi
    PK_PORT="$(free_port)"
    bg_start portkey "${PIN_MAYAK[@]}" node "$dir/start.mjs" "--port=$PK_PORT"
    PK_PID="$BG_PID"
    wait_port "$PK_PORT" 30 || { cat "$BENCH_TMP/portkey.log" >&2; return 1; }
}

throughput() {
    section "Throughput with keep-alive (wrk -t1 -c$THROUGHPUT_CONNECTIONS -d$THROUGHPUT_DURATION, POST)"
    say "Gateway on CPU $MAYAK_CPU; fake and wrk on CPU $LOAD_CPU."
    local url_f="http://$HOST:$F_PORT/v1/chat/completions" url_m="http://$HOST:$M_PORT/v1/chat/completions"
    # --timeout 5s: wrk counts a reply slower than its 2 s default as a socket error.
    local wrk_args=(-t1 "-c$THROUGHPUT_CONNECTIONS" "-d$THROUGHPUT_DURATION" --timeout 5s --latency -s "$BENCH/post.lua")
    local limit=60
    local d="$BENCH_TMP/wrk-direct.txt" m="$BENCH_TMP/wrk-mayak.txt" p="$BENCH_TMP/wrk-portkey.txt"
    timeout 30 "${PIN_LOAD[@]}" wrk -t1 -c16 -d2s -s "$BENCH/post.lua" "$url_m" -- "$BODY" "$AUTH" >/dev/null 2>&1
    say "Direct to the fake (reference: the fake's own ceiling on the load CPU):"
    run "$limit" "$d" "${PIN_LOAD[@]}" wrk "${wrk_args[@]}" "$url_f" -- "$BODY" "$AUTH" || true
    say "Through Mayak:"
    run "$limit" "$m" "${PIN_LOAD[@]}" wrk "${wrk_args[@]}" "$url_m" -- "$BODY" "$AUTH" || true
    local mr pr=""
    mr="$(wrk_rps "$m")"
    result "Mayak throughput" "${mr:-?} requests/s ($(wrk_errors "$m") errors; direct to the fake: $(wrk_rps "$d") requests/s)"
    if [ "$BENCH_PORTKEY" = 1 ]; then
        if start_portkey; then
            local pk_h=("x-portkey-provider: openai" "x-portkey-custom-host: http://$HOST:$F_PORT/v1")
            local url_p="http://$HOST:$PK_PORT/v1/chat/completions"
            if check_chat "$PK_PORT" portkey -H "${pk_h[0]}" -H "${pk_h[1]}"; then
                # Let V8 compile the hot paths before measuring.
                timeout 30 "${PIN_LOAD[@]}" wrk -t1 -c16 -d3s -s "$BENCH/post.lua" "$url_p" -- "$BODY" "$AUTH" "${pk_h[@]}" >/dev/null 2>&1
                say "Through Portkey's gateway ($(node -p "require('$BENCH/peers/portkey/node_modules/@portkey-ai/gateway/package.json').version" 2>/dev/null), Node $(node --version)):"
                run "$limit" "$p" "${PIN_LOAD[@]}" wrk "${wrk_args[@]}" "$url_p" -- "$BODY" "$AUTH" "${pk_h[@]}" || true
                pr="$(wrk_rps "$p")"
                result "Portkey throughput" "${pr:-?} requests/s ($(wrk_errors "$p") errors)"
            fi
            bg_stop "$PK_PID"
        else
            result "Portkey throughput" "not measured (Portkey did not start; see above)"
        fi
        if [ -n "$mr" ] && [ -n "$pr" ]; then
            result "Mayak / Portkey" "$(calc "$mr / $pr")x (goal >= 20x)"
        fi
    fi
}

rc=0
case "$MODE" in
    overhead) overhead || rc=1 ;;
    throughput) throughput || rc=1 ;;
    all) overhead || rc=1; throughput || rc=1 ;;
esac
exit "$rc"
