#!/bin/sh
# Semantic cache quality on BANKING77 and CLINC150 (docs/CACHE.md).
# usage: bench/cache/run.sh [build dir] [data dir]   (defaults: build, /work/shared/data)
# Builds bench_cache against the build's part libraries, then runs it with and without
# the false-hit guard. Prints tables only; no dataset text is written anywhere.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
DATA=${2:-/work/shared/data}
OUT=$BUILD/bench_cache
cmake --build "$BUILD" --target mayak_cache >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT/src" "$ROOT/bench/cache/bench_cache.c" -o "$OUT" \
   -L"$BUILD" -lmayak_cache -lmayak_kv -lmayak_embed -lmayak_vector -lmayak_metrics -lmayak_config -lmayak_core \
   $(pkg-config --libs json-c libsodium libutf8proc libuv libfyaml hiredis) \
   -lstemmer -lm -lpthread
for set in banking77 clinc150; do
  "$OUT" $set "$DATA/$set"
  "$OUT" $set "$DATA/$set" --no-guard
done
