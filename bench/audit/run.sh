#!/bin/sh
# bench/audit/run.sh: builds bench_audit against a RelWithDebInfo build of the audit and
# store libraries and runs it. Usage: bench/audit/run.sh [records]   (default 200000)
# It prints, per hash and record shape, the cost of mk_audit_append on the caller's
# thread (mean, p50, p99) apart from the writer thread's throughput (digests, chain
# hashes and SQLite commits, first append to last commit).
# BUILD_DIR (default /tmp/build-bench-audit) holds the build; the data goes to a fresh
# directory under /tmp that this script removes at the end.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-/tmp/build-bench-audit}
records=${1:-200000}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target mayak_audit -j2 >/dev/null
cc -std=c11 -O2 -D_GNU_SOURCE -I"$root/src" "$here/bench_audit.c" -o "$build/bench_audit" \
   "$build/libmayak_audit.a" "$build/libmayak_store.a" "$build/libmayak_config.a" "$build/libmayak_core.a" \
   $(pkg-config --libs libuv json-c libfyaml sqlite3 libpq libgcrypt libsodium) -lpthread -lm
data=$(mktemp -d /tmp/mayak-bench-audit-XXXXXX)
trap 'rm -rf "$data"' EXIT INT TERM
echo "# audit append: $(nproc) CPU, $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
"$build/bench_audit" "$records" "$data"
