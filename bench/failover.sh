#!/usr/bin/env bash
# bench/failover.sh: how fast Mayak moves traffic to a fallback when a deployment dies.
#
#   bench/failover.sh [kill|503|all]      (default all)
#
# Two fakes, A (primary) and B (fallback), behind one Mayak model group with priority
# routing. bench/loadgen sends FAILOVER_RATE requests/s (default 1,000) for
# FAILOVER_DURATION seconds; at FAILOVER_AT seconds it
#   kill: SIGKILLs fake A (the process vanishes, its sockets reset), or
#   503:  switches fake A to answer every request with 503 (POST /_fake/mode), and the
#         clock starts when the fake has acknowledged the switch.
# Reported: time from that moment to the first reply served by B (B's model name
# "bench-b" in the body or Mayak's x-mayak-deployment header), the client-visible
# errors after it, and whether any reply came from B before (it should not).
#
# Mayak on MAYAK_CPU; fakes and loadgen on LOAD_CPU. See bench/README.md.
source "$(dirname "$0")/lib.sh"

MODE="${1:-all}"
case "$MODE" in kill|503|all) ;; *) die "usage: $0 [kill|503|all]" ;; esac

FAILOVER_RATE="${FAILOVER_RATE:-1000}"
FAILOVER_DURATION="${FAILOVER_DURATION:-8}"
FAILOVER_AT="${FAILOVER_AT:-3}"
FAILOVER_CONNECTIONS="${FAILOVER_CONNECTIONS:-64}"

need_bins
LOADGEN="$(driver loadgen)" || exit 1
BODY="$BENCH_TMP/small.json"
printf '%s' "$SMALL_BODY" >"$BODY"
AUTH='Authorization: Bearer sk-bench'

# scenario NAME: fresh fakes and Mayak (no breaker state carried over), then the run.
scenario() {
    local name="$1"
    start_fake "$name-fake-a"; local a_port="$FAKE_PORT" a_pid="$FAKE_PID"
    start_fake "$name-fake-b"; local b_port="$FAKE_PORT" b_pid="$FAKE_PID"
    local m_port; m_port="$(free_port)"
    write_mayak_config "$BENCH_TMP/$name.yaml" "$m_port" "$a_port" "$b_port"
    start_mayak "$name-mayak" "$BENCH_TMP/$name.yaml" "$m_port"
    local m_pid="$MAYAK_PID"
    check_chat "$m_port" mayak || die "Mayak does not serve chat completions yet; nothing to measure"
    if grep -q 'bench-b' "$BENCH_TMP/check-mayak.json"; then
        say "Note: before the failure Mayak already answered from the fallback (bench-b); the priority order is not what this benchmark expects."
    fi

    local trigger
    if [ "$name" = kill ]; then
        trigger=(--kill-pid "$a_pid")
    else
        trigger=(--trigger-post "$a_port" --trigger-path /_fake/mode --trigger-body '{"status":503}')
    fi
    local out="$BENCH_TMP/failover-$name.txt"
    run $((${FAILOVER_DURATION%.*} + 40)) "$out" "${PIN_LOAD[@]}" "$LOADGEN" --port "$m_port" \
        --rate "$FAILOVER_RATE" --duration "$FAILOVER_DURATION" --connections "$FAILOVER_CONNECTIONS" \
        --timeout-ms 5000 --body-file "$BODY" -H "$AUTH" --mark bench-b \
        --trigger-at "$FAILOVER_AT" "${trigger[@]}" || true
    local first
    first="$(kv "$out" failover first_marked_after_ms)"
    if [ -z "$first" ]; then
        result "failover ($name)" "not measured (the run failed; see above)"
    elif [ "$first" = "-1.000" ]; then
        result "failover ($name)" "no reply from the fallback after the failure; errors after it: $(kv "$out" failover errors_after_trigger)"
    else
        result "failover ($name): time to first reply from the fallback" "$first ms"
        local errs last window=""
        errs="$(kv "$out" failover errors_after_trigger)"
        last="$(kv "$out" failover last_error_after_ms)"
        [ "$errs" != 0 ] && [ "$last" != "-1.000" ] && window=", the last $last ms after it"
        result "failover ($name): client-visible errors" "$errs after the failure$window; $(kv "$out" result errors) in the whole run of $(kv "$out" result requests) requests"
        result "failover ($name): latency of replies in the second after the failure" "p50 $(kv "$out" after_trigger_us p50) µs, p99 $(kv "$out" after_trigger_us p99) µs, max $(kv "$out" after_trigger_us max) µs (whole run: p50 $(kv "$out" latency_us p50) µs, p99 $(kv "$out" latency_us p99) µs)"
        result "failover ($name): fallback replies before the failure" "$(kv "$out" marked before_trigger) (expect 0)"
    fi
    bg_stop "$m_pid"; bg_stop "$a_pid"; bg_stop "$b_pid"
}

rc=0
if [ "$MODE" = kill ] || [ "$MODE" = all ]; then
    section "Failover when the primary's process is killed (SIGKILL at ${FAILOVER_AT}s, ${FAILOVER_RATE} requests/s)"
    scenario kill || rc=1
fi
if [ "$MODE" = 503 ] || [ "$MODE" = all ]; then
    section "Failover when the primary starts answering 503 (at ${FAILOVER_AT}s, ${FAILOVER_RATE} requests/s)"
    scenario 503 || rc=1
fi
exit "$rc"
