# bench/lib.sh: helpers shared by Mayak's benchmark scripts (sourced, not run).
#
# What it gives the scripts:
#   - paths: ROOT, BENCH, BUILD (MAYAK_BUILD_DIR, default build/), MAYAK_BIN, FAKE_BIN;
#   - process control: everything started with bg_start is stopped on exit (trap), each
#     by its own pid, TERM first and KILL after a grace period;
#   - CPU pinning: the gateway under test on MAYAK_CPU (default 0), the load generator
#     and the fake(s) on LOAD_CPU (default 1), as the issue asks (PIN_MAYAK, PIN_LOAD);
#   - free loopback ports, waiting for a port with a timeout, the C drivers (built by
#     CMake into $BUILD, or compiled here with cc when that build is missing or stale);
#   - reporting: `run` prints the exact command then runs it under a timeout; `say` and
#     `result` print and, when BENCH_RESULTS names a file, append it as Markdown.
# Every address used is 127.0.0.1.

set -u
set -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BUILD="${MAYAK_BUILD_DIR:-$ROOT/build}"
MAYAK_BIN="${MAYAK_BIN:-$BUILD/mayak}"
FAKE_BIN="${MAYAK_FAKE_BIN:-$BUILD/mayak-fake-provider}"
MAYAK_CPU="${MAYAK_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
BENCH_RESULTS="${BENCH_RESULTS:-}"
HOST=127.0.0.1

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/mayak-bench.XXXXXX")"
BG_PIDS=()

bench_cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + 5))
    for pid in "${BG_PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    BG_PIDS=()
    if [ -n "${BENCH_KEEP_TMP:-}" ]; then
        echo "bench: logs kept in $BENCH_TMP" >&2
    else
        rm -rf "$BENCH_TMP"
    fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }

# Pinning is skipped on a one-CPU machine (and can be turned off with BENCH_NO_PIN=1).
# PIN_MAYAK / PIN_LOAD are the words to put in front of a command.
PIN_MAYAK=()
PIN_LOAD=()
if [ -z "${BENCH_NO_PIN:-}" ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_MAYAK=(taskset -c "$MAYAK_CPU")
    PIN_LOAD=(taskset -c "$LOAD_CPU")
fi

# --- reporting -------------------------------------------------------------------

say() { # a line for the terminal and the results file
    echo "$*"
    if [ -n "$BENCH_RESULTS" ]; then echo "$*" >>"$BENCH_RESULTS"; fi
}
result() { # "name: value" as a bullet in the results file
    echo "RESULT $1: $2"
    if [ -n "$BENCH_RESULTS" ]; then echo "- **$1**: $2" >>"$BENCH_RESULTS"; fi
}
section() {
    echo
    echo "=== $* ==="
    if [ -n "$BENCH_RESULTS" ]; then printf '\n## %s\n\n' "$*" >>"$BENCH_RESULTS"; fi
}

# run TIMEOUT_S OUTFILE CMD...: prints the exact command, runs it with a timeout, keeps
# its output in OUTFILE and shows it. Returns the command's status.
run() {
    local limit="$1" out="$2"; shift 2
    local cmdline
    cmdline="$(printf '%q ' "$@")"
    echo "\$ $cmdline"
    local rc=0
    # In the background and waited for, so a signal to this script runs the cleanup at
    # once (bash defers traps until a foreground child ends) and stops this one too.
    timeout -k 5 "$limit" "$@" >"$out" 2>&1 &
    local pid=$!
    BG_PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    sed 's/^/    /' "$out"
    if [ -n "$BENCH_RESULTS" ]; then
        { echo '```'; echo "\$ $cmdline"; cat "$out"; echo '```'; } >>"$BENCH_RESULTS"
    fi
    [ "$rc" -eq 124 ] && echo "bench: timed out after ${limit}s" >&2
    return "$rc"
}

# kv FILE LINE_PREFIX KEY: value of KEY= on the first line of FILE starting "PREFIX ".
kv() {
    awk -v p="$2" -v k="$3" '$1 == p { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { print a[2]; exit } } }' "$1"
}
# Arithmetic on decimals without bc: calc "a - b".
calc() { awk "BEGIN { printf \"%.1f\", $* }"; }

# --- ports and processes ---------------------------------------------------------

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # PORT TIMEOUT_S
    local port="$1" deadline=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# bg_start NAME CMD...: starts CMD (put PIN_MAYAK/PIN_LOAD in front to pin it), output
# in $BENCH_TMP/NAME.log. Sets BG_PID: the command's own pid, since bash forks and execs
# a simple command and taskset execs what it runs. Stopped on exit.
bg_start() {
    local name="$1"; shift
    echo "\$ $(printf '%q ' "$@")&" >>"$BENCH_TMP/commands.log"
    "$@" >"$BENCH_TMP/$name.log" 2>&1 &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
    # Out of the job table, so bash prints no "Killed" line when a benchmark kills it
    # on purpose; we wait for it by polling its pid instead.
    disown "$BG_PID" 2>/dev/null || true
}

forget_pid() { # PID: no longer ours to stop at exit
    local keep=() p
    for p in "${BG_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    BG_PIDS=("${keep[@]}")
}

# bg_stop PID: stops one process we started.
bg_stop() {
    local pid="$1" deadline=$((SECONDS + 5))
    forget_pid "$pid"
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
}

# Raises this shell's open-file limit to the hard limit (children inherit it).
raise_nofile() { ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; }

# --- what is under test -----------------------------------------------------------

need_bins() {
    [ -x "$MAYAK_BIN" ] || die "no $MAYAK_BIN: run 'make' first (or set MAYAK_BUILD_DIR)"
    [ -x "$FAKE_BIN" ] || die "no $FAKE_BIN: the fake provider is not built"
}

# start_fake NAME -> FAKE_PORT, FAKE_PID
# shellcheck disable=SC2034  # FAKE_PID and MAYAK_PID are for the scripts that source this
start_fake() {
    FAKE_PORT="$(free_port)"
    bg_start "$1" "${PIN_LOAD[@]}" "$FAKE_BIN" --port "$FAKE_PORT"
    FAKE_PID="$BG_PID"
    wait_port "$FAKE_PORT" 10 || { cat "$BENCH_TMP/$1.log" >&2; die "fake provider '$1' did not start"; }
}

# write_mayak_config FILE PORT PRIMARY_FAKE_PORT [FALLBACK_FAKE_PORT]
# One model group "bench" with priority routing: deployment model "bench-a" on the
# primary fake and, when given, "bench-b" on the fallback. The fake echoes the model,
# and Mayak names the deployment in x-mayak-deployment, so replies show who served.
# Keys as in src/config/mk_config_parse.c (docs/CONFIG.md); defaults everywhere else
# (retries, breaker, health checks), since those are what users get.
write_mayak_config() {
    local file="$1" port="$2" a="$3" b="${4:-}"
    {
        cat <<EOF
# Written by bench/lib.sh for one benchmark run.
listen: "127.0.0.1:$port"
data_dir: $BENCH_TMP/mayak-data
log_level: warn
access_log: false
# The load generators call anonymously from loopback (role developer); its default
# 300 requests/min would turn a throughput run into a 429 run.
limits: {developer: {rpm: 1000000000, tpm: 4000000000}}
# Busy-poll window after network reads (docs/CONFIG.md): off by default, as users get
# it; BENCH_BUSY_POLL_US sets it (gateway.sh overhead also measures it on its own).
busy_poll_us: ${BENCH_BUSY_POLL_US:-0}
# Audit hash: streebog256 (the default users get) or sha256 (BENCH_AUDIT_HASH).
audit: {enabled: ${BENCH_AUDIT:-true}, hash: ${BENCH_AUDIT_HASH:-streebog256}}
providers:
  - name: fake-a
    type: openai
    base_url: http://127.0.0.1:$a/v1
    api_key: sk-bench
EOF
        if [ -n "$b" ]; then cat <<EOF
  - name: fake-b
    type: openai
    base_url: http://127.0.0.1:$b/v1
    api_key: sk-bench
EOF
        fi
        cat <<EOF
model_groups:
  - name: bench
    policy: priority
    deployments:
      - provider: fake-a
        model: bench-a
        priority: 0
EOF
        if [ -n "$b" ]; then cat <<EOF
      - provider: fake-b
        model: bench-b
        priority: 1
EOF
        fi
    } >"$file"
}

# start_mayak NAME CONFIG PORT -> MAYAK_PID
# shellcheck disable=SC2034
start_mayak() {
    local name="$1" cfg="$2" port="$3"
    bg_start "$name" "${PIN_MAYAK[@]}" "$MAYAK_BIN" serve --config "$cfg"
    MAYAK_PID="$BG_PID"
    if ! wait_port "$port" 15; then
        echo "--- $name log:" >&2; cat "$BENCH_TMP/$name.log" >&2
        die "mayak did not start listening on $HOST:$port (config: $cfg)"
    fi
}

# check_chat PORT NAME [extra curl args]: one small request must get a 200 with a
# chat completion, or the benchmark stops with the reply shown.
check_chat() {
    local port="$1" name="$2"; shift 2
    local out="$BENCH_TMP/check-$name.json" code
    code="$(curl -sS -m 10 -o "$out" -w '%{http_code}' "http://$HOST:$port/v1/chat/completions" \
        -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' "$@" \
        -d "$SMALL_BODY" 2>&1)" || true
    if [ "$code" != 200 ] || ! grep -q '"choices"' "$out" 2>/dev/null; then
        echo "bench: $name did not answer a chat completion (HTTP $code):" >&2
        head -c 600 "$out" >&2 2>/dev/null; echo >&2
        return 1
    fi
}

# The small non-streaming request of the overhead and throughput runs.
SMALL_BODY='{"model":"bench","messages":[{"role":"user","content":"ping"}],"max_tokens":8}'

# --- the C drivers ------------------------------------------------------------------

# driver NAME -> path of an up-to-date bench/NAME.c executable (call as
# X="$(driver NAME)" || exit 1). Prefers the CMake build;
# falls back to compiling it alone (it needs only libc and http-parser), so the
# harness works while the rest of the tree is mid-edit.
driver() {
    local name="$1" src="$BENCH/$1.c"
    local built="$BUILD/$name"
    if [ -x "$built" ] && [ "$built" -nt "$src" ] && [ "$built" -nt "$BENCH/bench_util.h" ]; then
        echo "$built"; return 0
    fi
    local own="$BENCH_TMP/bin/$name"
    mkdir -p "$BENCH_TMP/bin"
    if [ ! -x "$own" ]; then
        ${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
            -o "$own" "$src" -lhttp_parser >&2 || die "cannot compile $src"
    fi
    echo "$own"
}
