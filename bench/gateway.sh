#!/usr/bin/env bash
# bench/gateway.sh: what Mayak costs on the non-streaming path.
#
#   bench/gateway.sh [overhead|throughput|all]      (default all)
#
# overhead    Open-loop fixed rate (bench/loadgen, default 5,000 requests/s) with a small
#             chat request, once straight to the fake provider and once through Mayak;
#             gateway overhead = Mayak's percentile minus direct's (p50 and p99). Latency
#             counts from when each request was due, so queueing is not hidden. Also the
#             distribution of Mayak's own x-mayak-overhead-us reply header. In the same
#             run: a null relay (bench/relay) on Mayak's core, which splits the overhead
#             into the hop itself and what Mayak adds, and both with busy-polling
#             (Mayak's busy_poll_us = OVERHEAD_BUSY_POLL_US, default 250; 0 skips).
# throughput  wrk -t1 -c64 -d10s with bench/post.lua (keep-alive POST) direct, through
#             Mayak and through Portkey's gateway (bench/peers/portkey), and the
#             Mayak/Portkey ratio (the goal is >= 20x).
#
# Mayak (and Portkey) run on MAYAK_CPU, the fake and the load generator on LOAD_CPU.
# Knobs (environment): OVERHEAD_RATE=5000 OVERHEAD_DURATION=10 OVERHEAD_WARMUP=2
# OVERHEAD_CONNECTIONS=64 OVERHEAD_BUSY_POLL_US=250 THROUGHPUT_DURATION=10s THROUGHPUT_CONNECTIONS=64
# BENCH_PORTKEY=1 (0 skips Portkey). See bench/README.md.
source "$(dirname "$0")/lib.sh"

MODE="${1:-all}"
case "$MODE" in overhead|throughput|all) ;; *) die "usage: $0 [overhead|throughput|all]" ;; esac

OVERHEAD_RATE="${OVERHEAD_RATE:-5000}"
OVERHEAD_DURATION="${OVERHEAD_DURATION:-10}"
OVERHEAD_WARMUP="${OVERHEAD_WARMUP:-2}"
OVERHEAD_CONNECTIONS="${OVERHEAD_CONNECTIONS:-64}"
OVERHEAD_BUSY_POLL_US="${OVERHEAD_BUSY_POLL_US:-250}"
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

# pct FILE: "p50 p99" of latency_us in a loadgen output (empty when it failed).
pct() { local a b; a="$(kv "$1" latency_us p50)"; b="$(kv "$1" latency_us p99)"; [ -n "$a" ] && [ -n "$b" ] && echo "$a $b"; }

# diff_result NAME FILE_A FILE_B WHAT: "A minus B" for p50 and p99 as a result line.
diff_result() {
    local name="$1" a="$2" b="$3" what="$4" pa pb
    pa="$(pct "$a")"; pb="$(pct "$b")"
    if [ -z "$pa" ] || [ -z "$pb" ]; then
        result "$name" "not measured (a run failed; see its output above)"
        return 1
    fi
    set -- $pa $pb
    result "$name p50" "$(calc "$1 - $3") µs ($what: $1 µs − $3 µs)"
    result "$name p99" "$(calc "$2 - $4") µs ($what: $2 µs − $4 µs)"
}

overhead() {
    section "Gateway overhead at a fixed ${OVERHEAD_RATE} requests/s (non-streaming, small request)"
    say "Open-loop bench/loadgen: latency from each request's due time; Mayak on CPU $MAYAK_CPU, fake and loadgen on CPU $LOAD_CPU."
    say "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
    local args=(--rate "$OVERHEAD_RATE" --duration "$OVERHEAD_DURATION" --warmup "$OVERHEAD_WARMUP"
                --connections "$OVERHEAD_CONNECTIONS" --timeout-ms 2000 --body-file "$BODY" -H "$AUTH")
    local limit=$((${OVERHEAD_DURATION%.*} + 30))
    # The null relay (bench/relay.c) and, for the busy-poll arms, a relay and a second
    # Mayak with busy_poll_us set, all on Mayak's CPU in front of the same fake.
    local relay r_port="" rb_port="" mb_port="" r_pid="" rb_pid="" mb_pid=""
    relay="$(driver relay)" || relay=""
    if [ -n "$relay" ]; then
        r_port="$(free_port)"
        bg_start relay "${PIN_MAYAK[@]}" "$relay" --port "$r_port" --upstream-port "$F_PORT"
        r_pid="$BG_PID"
        wait_port "$r_port" 10 || r_port=""
    fi
    if [ "$OVERHEAD_BUSY_POLL_US" != 0 ]; then
        mb_port="$(free_port)"
        BENCH_BUSY_POLL_US="$OVERHEAD_BUSY_POLL_US" write_mayak_config "$BENCH_TMP/mayak-bp.yaml" "$mb_port" "$F_PORT"
        sed -i "s#data_dir: .*#data_dir: $BENCH_TMP/mayak-bp-data#" "$BENCH_TMP/mayak-bp.yaml"
        local keep_pid="$MAYAK_PID"
        start_mayak mayak-bp "$BENCH_TMP/mayak-bp.yaml" "$mb_port"
        mb_pid="$MAYAK_PID"; MAYAK_PID="$keep_pid"
        check_chat "$mb_port" "mayak-bp" || mb_port=""
        if [ -n "$relay" ]; then
            rb_port="$(free_port)"
            bg_start relay-bp "${PIN_MAYAK[@]}" "$relay" --port "$rb_port" --upstream-port "$F_PORT" --busy-poll-us "$OVERHEAD_BUSY_POLL_US"
            rb_pid="$BG_PID"
            wait_port "$rb_port" 10 || rb_port=""
        fi
    fi
    # Warm every path (connection pools, allocator, page cache) outside the record.
    local p
    for p in "$F_PORT" "$M_PORT" $r_port $mb_port $rb_port; do
        timeout 30 "${PIN_LOAD[@]}" "$LOADGEN" --port "$p" --rate 1000 --duration 1 --body-file "$BODY" -H "$AUTH" >/dev/null 2>&1
    done
    local d="$BENCH_TMP/overhead-direct.txt" m="$BENCH_TMP/overhead-mayak.txt" r="$BENCH_TMP/overhead-relay.txt"
    local mb="$BENCH_TMP/overhead-mayak-bp.txt" rb="$BENCH_TMP/overhead-relay-bp.txt"
    say "Direct to the fake:"
    run "$limit" "$d" "${PIN_LOAD[@]}" "$LOADGEN" --port "$F_PORT" "${args[@]}" || true
    say "Through Mayak (configuration as shipped: busy_poll_us 0):"
    run "$limit" "$m" "${PIN_LOAD[@]}" "$LOADGEN" --port "$M_PORT" "${args[@]}" || true
    if [ -n "$r_port" ]; then
        say "Through the null relay (bench/relay: copies bytes, no HTTP), on Mayak's CPU:"
        run "$limit" "$r" "${PIN_LOAD[@]}" "$LOADGEN" --port "$r_port" "${args[@]}" || true
    fi
    if [ -n "$mb_port" ]; then
        say "Through Mayak with busy_poll_us: $OVERHEAD_BUSY_POLL_US:"
        run "$limit" "$mb" "${PIN_LOAD[@]}" "$LOADGEN" --port "$mb_port" "${args[@]}" || true
    fi
    if [ -n "$rb_port" ]; then
        say "Through the null relay with --busy-poll-us $OVERHEAD_BUSY_POLL_US:"
        run "$limit" "$rb" "${PIN_LOAD[@]}" "$LOADGEN" --port "$rb_port" "${args[@]}" || true
    fi
    say "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
    local rc=0
    diff_result "gateway overhead" "$m" "$d" "Mayak − direct" || rc=1
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
    if [ -n "$r_port" ]; then
        diff_result "the hop alone (null relay − direct)" "$r" "$d" "relay − direct" || true
        diff_result "Mayak beyond the hop (Mayak − null relay)" "$m" "$r" "Mayak − relay" || true
    fi
    if [ -n "$mb_port" ]; then
        diff_result "gateway overhead with busy_poll_us $OVERHEAD_BUSY_POLL_US" "$mb" "$d" "Mayak(busy-poll) − direct" || true
        [ -n "$rb_port" ] && { diff_result "the hop alone with busy-polling" "$rb" "$d" "relay(busy-poll) − direct" || true; }
        result "errors with busy_poll_us $OVERHEAD_BUSY_POLL_US" "$(kv "$mb" result errors)"
    fi
    [ -n "$r_pid" ] && bg_stop "$r_pid"
    [ -n "$rb_pid" ] && bg_stop "$rb_pid"
    [ -n "$mb_pid" ] && bg_stop "$mb_pid"
    return "$rc"
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
