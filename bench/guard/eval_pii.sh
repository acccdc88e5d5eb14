#!/bin/sh
# eval_pii.sh: builds bench/guard/eval_pii.c against a Mayak build tree, generates the
# synthetic Russian identifiers and prints recall/precision per type and speed.
#   bench/guard/eval_pii.sh [BUILD_DIR] [OUT_JSON]
# BUILD_DIR defaults to ./build (configured with cmake; mayak_guard is built here).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
OUT=${2:-$ROOT/bench/results/pii.json}
DATA=${MAYAK_PII_DATA:-$ROOT/../shared/data/pii}
cmake --build "$BUILD" --target mayak_guard >/dev/null
mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT/src" "$ROOT/bench/guard/eval_pii.c" \
   "$BUILD/libmayak_guard.a" "$BUILD/libmayak_metrics.a" "$BUILD/libmayak_config.a" "$BUILD/libmayak_core.a" \
   $(pkg-config --libs json-c libsodium) -lpthread -lm -o "$TMP/eval_pii"
python3 "$ROOT/bench/guard/gen_ru_ids.py" --count 20000 --seed 1 > "$TMP/ru_ids.jsonl"
"$TMP/eval_pii" --data "$DATA" --synthetic "$TMP/ru_ids.jsonl" --json "$OUT"
