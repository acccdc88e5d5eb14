#!/usr/bin/env bash
# bench/streams.sh: what Mayak costs on the streaming path.
#
#   bench/streams.sh [ttft|hold|all]      (default all)
#
# ttft   Added time to first token: bench/streams --ttft, stream=true, the fake's first
#        event fixed by [[fake ttft_ms=STREAMS_TTFT_MS]]; sequential requests straight to
#        the fake and through Mayak; added TTFT = Mayak's percentile minus direct's.
# hold   STREAMS_N (default 10,000) concurrent slow streams through Mayak (the fake sends
#        one event every STREAMS_INTERVAL_MS); once every stream has delivered its first
#        event, Mayak's VmRSS (from /proc/<pid>/status) and open fds are read, the
#        streams are held STREAMS_HOLD_S seconds, and we report how many stayed healthy.
#        Each stream costs Mayak two descriptors (client + upstream); when the hard
#        open-file limit cannot fit STREAMS_N, N is lowered to what fits and that is said
#        (with the RSS extrapolated to STREAMS_N from the measured kB per stream).
#
# Mayak on MAYAK_CPU; the fake and the driver on LOAD_CPU. See bench/README.md.
source "$(dirname "$0")/lib.sh"

MODE="${1:-all}"
case "$MODE" in ttft|hold|all) ;; *) die "usage: $0 [ttft|hold|all]" ;; esac

STREAMS_TTFT_MS="${STREAMS_TTFT_MS:-50}"
STREAMS_TTFT_REQUESTS="${STREAMS_TTFT_REQUESTS:-200}"
STREAMS_N="${STREAMS_N:-10000}"
STREAMS_INTERVAL_MS="${STREAMS_INTERVAL_MS:-5000}"
STREAMS_HOLD_S="${STREAMS_HOLD_S:-10}"
STREAMS_CONNECT_RATE="${STREAMS_CONNECT_RATE:-2000}"

need_bins
STREAMS="$(driver streams)" || exit 1
raise_nofile
AUTH='Authorization: Bearer sk-bench'

# start_pair NAME: a fresh fake and a Mayak in front of it -> F_PORT, M_PORT, MAYAK_PID.
start_pair() {
    start_fake "$1-fake"
    F_PORT="$FAKE_PORT"; F_PID="$FAKE_PID"
    M_PORT="$(free_port)"
    write_mayak_config "$BENCH_TMP/$1.yaml" "$M_PORT" "$F_PORT"
    start_mayak "$1-mayak" "$BENCH_TMP/$1.yaml" "$M_PORT"
    check_chat "$M_PORT" mayak || die "Mayak does not serve chat completions yet; nothing to measure"
}

ttft() {
    section "Added time to first token (stream=true, fake ttft_ms=$STREAMS_TTFT_MS)"
    say "bench/streams --ttft: one request at a time; TTFT = send to the first data event with non-empty content."
    start_pair ttft
    local body="$BENCH_TMP/stream-ttft.json"
    printf '{"model":"bench","stream":true,"messages":[{"role":"user","content":"ping [[fake ttft_ms=%s chunks=5 interval_ms=1]]"}]}' \
        "$STREAMS_TTFT_MS" >"$body"
    local args=(--ttft "$STREAMS_TTFT_REQUESTS" --warmup 20 --body-file "$body" -H "$AUTH" --timeout-ms 10000)
    local limit=$(( (STREAMS_TTFT_REQUESTS + 20) * (STREAMS_TTFT_MS + 50) / 1000 + 60 ))
    local d="$BENCH_TMP/ttft-direct.txt" m="$BENCH_TMP/ttft-mayak.txt"
    say "Direct to the fake:"
    run "$limit" "$d" "${PIN_LOAD[@]}" "$STREAMS" --port "$F_PORT" "${args[@]}" || true
    say "Through Mayak:"
    run "$limit" "$m" "${PIN_LOAD[@]}" "$STREAMS" --port "$M_PORT" "${args[@]}" || true
    local d50 d99 m50 m99
    d50="$(kv "$d" ttft_us p50)"; d99="$(kv "$d" ttft_us p99)"
    m50="$(kv "$m" ttft_us p50)"; m99="$(kv "$m" ttft_us p99)"
    if [ -z "$d50" ] || [ -z "$m50" ] || [ "$(kv "$m" ttft_us count)" = 0 ]; then
        result "added TTFT" "not measured (a run failed; see its output above)"
        bg_stop "$MAYAK_PID"; bg_stop "$F_PID"
        return 1
    fi
    result "added TTFT p50" "$(calc "$m50 - $d50") µs (Mayak $m50 µs − direct $d50 µs)"
    result "added TTFT p99" "$(calc "$m99 - $d99") µs (Mayak $m99 µs − direct $d99 µs)"
    result "stream errors" "direct $(kv "$d" result errors), Mayak $(kv "$m" result errors)"
    bg_stop "$MAYAK_PID"; bg_stop "$F_PID"
}

hold() {
    local n="$STREAMS_N" hard
    hard="$(ulimit -Hn)"
    section "Concurrent slow streams held by Mayak (target $n)"
    say "Open-file limit for Mayak, the fake and the driver: $(ulimit -n) (hard $hard)."
    start_pair hold
    # Each stream costs Mayak two descriptors (client + upstream socket) on top of what
    # it holds at rest; Mayak raises its own soft limit to the hard one at start-up.
    # When the hard limit cannot fit N, hold what fits (the rest would only measure
    # EMFILE) and say so.
    local base_fds fit
    base_fds="$(find "/proc/$MAYAK_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
    if [ "$hard" != unlimited ]; then
        # 16 spare: health-check connections, the audit/store files a request may open.
        fit=$(( (hard - base_fds - 16) / 2 ))
        if [ "$fit" -lt "$n" ]; then
            say "Note: the hard open-file limit here is $hard and Mayak holds $base_fds descriptors at rest, so one Mayak process fits $fit streams (2 descriptors each), not $n; this run holds $fit. Raise the hard limit (as root with CAP_SYS_RESOURCE: ulimit -Hn, or LimitNOFILE= in systemd) for the full count."
            n="$fit"
        fi
    fi
    # The fake prepares a stream's events when the request arrives, so ask for just
    # enough of them to outlast the run (waiting for readiness, the hold, a margin):
    # thousands per stream would cost the fake megabytes and milliseconds of CPU per
    # stream on the load core, and it, not Mayak, would become what is measured.
    local ready_s=90 chunks
    chunks=$(( (ready_s + ${STREAMS_HOLD_S%.*} + 60) * 1000 / STREAMS_INTERVAL_MS + 2 ))
    local body="$BENCH_TMP/stream-hold.json"
    printf '{"model":"bench","stream":true,"messages":[{"role":"user","content":"slow [[fake ttft_ms=10 chunks=%s interval_ms=%s]]"}]}' \
        "$chunks" "$STREAMS_INTERVAL_MS" >"$body"
    local out="$BENCH_TMP/hold.txt"
    local limit=$(( n / STREAMS_CONNECT_RATE + ready_s + 30 + ${STREAMS_HOLD_S%.*} ))
    run "$limit" "$out" "${PIN_LOAD[@]}" "$STREAMS" --port "$M_PORT" --hold "$n" --connect-rate "$STREAMS_CONNECT_RATE" \
        --ready-timeout "$ready_s" --hold-s "$STREAMS_HOLD_S" --pid "$MAYAK_PID" --body-file "$body" -H "$AUTH" || true
    local ready
    ready="$(kv "$out" result ready)"
    if [ -z "$ready" ]; then
        result "streams held" "not measured (the driver failed; see above)"
        return 1
    fi
    result "streams held" "$ready of $n delivered their first event; open after ${STREAMS_HOLD_S}s hold: $(kv "$out" result open_at_end), failed $(kv "$out" result failed), ended early $(kv "$out" result ended_early)"
    result "Mayak RSS with the streams open" "$(kv "$out" rss at_ready_kb) kB (baseline $(kv "$out" rss baseline_kb) kB, max during hold $(kv "$out" rss max_during_hold_kb) kB, HWM $(kv "$out" rss hwm_kb) kB; $(kv "$out" rss per_stream_kb) kB per stream)"
    result "Mayak open fds" "$(kv "$out" rss fds_at_ready) (baseline $(kv "$out" rss fds_baseline))"
    local per base
    per="$(kv "$out" rss per_stream_kb)"; base="$(kv "$out" rss baseline_kb)"
    if [ -n "$per" ] && [ -n "$base" ] && [ "$n" != "$STREAMS_N" ]; then
        result "Mayak RSS for $STREAMS_N streams (extrapolated)" "$(calc "($base + $per * $STREAMS_N) / 1024") MB (baseline + $per kB × $STREAMS_N)"
    fi
    local why
    why="$(awk '$1 == "failures" { $1 = ""; print }' "$out")"
    [ -n "${why// /}" ] && result "failed streams by cause" "${why# } (no_status = closed before a status line)"
    [ -s "$BENCH_TMP/hold-mayak.log" ] && say "Mayak's log (warnings): $(wc -l <"$BENCH_TMP/hold-mayak.log") lines; first: $(head -c 300 "$BENCH_TMP/hold-mayak.log")"
    bg_stop "$MAYAK_PID"; bg_stop "$F_PID"
}

rc=0
case "$MODE" in
    ttft) ttft || rc=1 ;;
    hold) hold || rc=1 ;;
    all) ttft || rc=1; hold || rc=1 ;;
esac
exit "$rc"
