#!/bin/sh
# Runs the agent-memory benchmark and its peer on the same data, same machine, one run:
#   bench/memory/run.sh BUILD_DIR [N] [QUERIES]
# BUILD_DIR holds memory_bench (a Release build). The peer is installed once with
#   (cd bench/memory/peers && npm install --ignore-scripts && npm rebuild hnswlib-node)
# Both run pinned to CPU 0 ("one core"). Redis numbers come from a redis-server started
# here on 127.0.0.1 and stopped at the end. The exported BANKING77 text lives in a
# temporary directory that is removed at the end: no dataset text is kept.
set -eu
BUILD=${1:?usage: run.sh BUILD_DIR [N] [QUERIES]}
N=${2:-100000}
Q=${3:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${MAYAK_DATA:-/work/shared/data}/banking77
TMP=$(mktemp -d /tmp/mayak-membench-XXXXXX)
REDIS_PID=
cleanup() {
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
REDIS_ARG=
if command -v redis-server >/dev/null 2>&1; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
    REDIS_PID=$!
    # wait until it accepts connections (a busy machine can take seconds to start it)
    python3 -c 'import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)' "$PORT" || { echo "redis-server did not start" >&2; exit 1; }
    REDIS_ARG="--redis redis://127.0.0.1:$PORT"
fi
echo "== mayak (memory_bench), N=$N, queries=$Q"
# shellcheck disable=SC2086
taskset -c 0 "$BUILD/memory_bench" --train "$DATA/train.csv" --test "$DATA/test.csv" --dir "$TMP/scratch" \
    --export "$TMP/export" --n "$N" --queries "$Q" $REDIS_ARG
echo "== agentdb (peers/agentdb_bench.mjs)"
(cd "$HERE/peers" && taskset -c 0 node agentdb_bench.mjs "$TMP/export" --n "$N" --queries "$Q" 2>"$TMP/agentdb.log") ||
    { tail -20 "$TMP/agentdb.log"; exit 1; }
