#!/bin/sh
# Semantic cache quality on BANKING77, CLINC150 and the Russian/Kazakh sets (docs/CACHE.md).
# usage: bench/cache/run.sh [build dir] [data dir]   (defaults: build, /work/shared/data)
# Builds bench_cache against the build's part libraries (-O2 for the driver; the
# libraries are whatever the build dir was configured with), then runs it with the
# false-hit guard and, for BANKING77, without it. Prints tables only; no dataset text
# is written anywhere.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
DATA=${2:-/work/shared/data}
OUT=$BUILD/bench_cache
cmake --build "$BUILD" --target mayak_cache >/dev/null
set -x
cc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT/src" "$ROOT/bench/cache/bench_cache.c" -o "$OUT" \
   -L"$BUILD" -lmayak_cache -lmayak_kv -lmayak_embed -lmayak_vector -lmayak_metrics -lmayak_config -lmayak_core \
   $(pkg-config --libs json-c libsodium libutf8proc libuv libfyaml hiredis) \
   -lstemmer -lm -lpthread
"$OUT" banking77 "$DATA/banking77"
"$OUT" banking77 "$DATA/banking77" --no-guard
"$OUT" clinc150 "$DATA/clinc150"
"$OUT" multilingual "$DATA/multilingual"
"$OUT" multilingual "$DATA/multilingual" --no-guard
