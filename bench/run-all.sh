#!/usr/bin/env bash
# bench/run-all.sh: every Mayak benchmark in one go (also `make bench`).
#
# Builds what the benchmarks need (RelWithDebInfo in $MAYAK_BUILD_DIR, default build/),
# then runs bench/gateway.sh, bench/streams.sh and bench/failover.sh. Each result is
# printed with the exact command that produced it, and everything goes to
# bench/results/<UTC date-time>.md (git-ignored) with the machine's description and a
# summary at the end. Each part has its own time limit; a part that fails is reported
# and the others still run. Exit status: 0 when every part succeeded.
#
# Knobs: BENCH_SKIP_BUILD=1, MAYAK_BUILD_DIR, MAYAK_CPU/LOAD_CPU, BENCH_PORTKEY=0, and
# each script's own (see bench/README.md).
set -u
BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BUILD="${MAYAK_BUILD_DIR:-$ROOT/build}"
export MAYAK_BUILD_DIR="$BUILD"

mkdir -p "$BENCH/results"
STAMP="$(date -u +%Y-%m-%d-%H%M%S)"
OUT="$BENCH/results/$STAMP.md"
export BENCH_RESULTS="$OUT"

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    echo "\$ cmake -S $ROOT -B $BUILD -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build $BUILD --target mayak mayak-fake-provider loadgen streams"
    if ! { timeout 300 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
           timeout 1200 cmake --build "$BUILD" -j "$(nproc)" --target mayak mayak-fake-provider loadgen streams; }; then
        echo "bench: the build failed; running with whatever binaries exist" >&2
    fi
fi

build_type="$(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD/CMakeCache.txt" 2>/dev/null)"
sanitize="$(awk -F= '/^MAYAK_SANITIZE:/ { print $2 }' "$BUILD/CMakeCache.txt" 2>/dev/null)"
{
    echo "# Mayak benchmarks, $STAMP (UTC)"
    echo
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (plus uncommitted changes)')"
    echo "- build: $BUILD (${build_type:-?}, sanitizers ${sanitize:-OFF}), $(${CC:-cc} --version 2>/dev/null | head -1)"
    echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
    echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- pinning: Mayak (and Portkey) on CPU ${MAYAK_CPU:-0}; fake provider(s) and load generator on CPU ${LOAD_CPU:-1}"
    echo "- tools: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), node $(node --version 2>/dev/null || echo 'absent')"
    echo "- open-file limit: soft $(ulimit -n), hard $(ulimit -Hn)"
    echo
    echo "Numbers from a shared or busy machine are indicative only; compare runs made on the same machine."
} >"$OUT"
if [ "${build_type:-}" = Debug ] || [ "${sanitize:-OFF}" = ON ]; then
    echo "- **warning**: this build is ${build_type} with sanitizers ${sanitize:-OFF}; use a RelWithDebInfo build for real numbers" >>"$OUT"
fi
cat "$OUT"

rc=0
part() { # LIMIT_S SCRIPT ARGS...
    local limit="$1" script="$2"; shift 2
    echo
    echo ">>> bench/$script $*"
    local prc=0
    # On the time limit the script gets SIGTERM and stops what it started (within
    # seconds); KILL only if it has not exited a minute later.
    timeout -k 60 "$limit" bash "$BENCH/$script" "$@" || prc=$?
    if [ "$prc" -ne 0 ]; then
        rc=1
        local why="exit status $prc"
        [ "$prc" -eq 124 ] && why="time limit of ${limit}s reached"
        printf '\n**bench/%s %s did not finish cleanly (%s).**\n' "$script" "$*" "$why" >>"$OUT"
        echo "bench: bench/$script $* did not finish cleanly ($why)" >&2
    fi
}
part 900 gateway.sh all
part 900 streams.sh all
part 600 failover.sh all

{
    printf '\n## Summary\n\n'
    grep -E '^- \*\*' "$OUT" | grep -v '^- \*\*warning' || echo "(no results)"
} >"$OUT.summary"
cat "$OUT.summary" >>"$OUT"
echo
echo "=== Summary (also in ${OUT#"$ROOT"/}) ==="
sed -n '3,$p' "$OUT.summary"
rm -f "$OUT.summary"
exit "$rc"
