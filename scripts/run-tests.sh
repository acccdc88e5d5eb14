#!/usr/bin/env bash
# Runs every test suite that `make test` built, then prints one closing line.
#   build/       unit + integration tests (RelWithDebInfo)
#   build-asan/  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   build-fuzz/  every fuzz target replays its committed corpus
# Exit status is non-zero if any suite failed.
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc)
passed=0 failed=0 status=0

run_suite() { # dir label [ctest args...]
  local dir=$1 label=$2; shift 2
  [ -d "$dir" ] || return 0
  echo "=== $label ($dir) ==="
  local log; log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure --timeout 1800 -j "$jobs" "$@") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  # ctest's summary: "100% tests passed, 0 tests failed out of 12"
  local line; line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -1)
  if [ -n "$line" ]; then
    local total fail
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    fail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed=$((passed + total - fail)); failed=$((failed + fail))
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
  fi
  [ "$rc" -eq 0 ] || status=1
  rm -f "$log"
}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
run_suite build "tests (release build)"
# The sanitizer build runs the same unit and integration tests.
ASAN_OPTIONS=detect_leaks=1 run_suite build-asan "tests (ASan + UBSan)"
run_suite build-fuzz "fuzz corpora" -L fuzz

echo
echo "mayak: ${passed} passed, ${failed} failed"
exit $status
