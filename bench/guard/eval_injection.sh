#!/usr/bin/env bash
# Injection guard evaluation: Mayak and npm aidefence on the same rows, same run.
#   bench/guard/eval_injection.sh BUILD_DIR [DATA_ROOT]
# BUILD_DIR holds guard_eval_injection and guard_speed_guard (a RelWithDebInfo build);
# DATA_ROOT defaults to ../shared/data next to the repository. Results go to
# bench/guard/results/ (the per-row predictions stay in a temporary directory;
# they are regenerated in seconds).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:?usage: eval_injection.sh BUILD_DIR [DATA_ROOT]}"
data_root="${2:-$root/../shared/data}"
data="$data_root/prompt_injection/combined_labeled.jsonl"
out="$here/results"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$build/guard_eval_injection" --data "$data" --split test --out "$tmp/mayak.jsonl"
"$build/guard_eval_injection" --data "$data" --split test --no-model --out "$tmp/rules.jsonl"
peers=(--pred "mayak=$tmp/mayak.jsonl" --pred "rules_only=$tmp/rules.jsonl")
if [ -d "$here/peers/node_modules/aidefence" ] || (cd "$here/peers" && npm ci --no-audit --no-fund --loglevel=error); then
  (cd "$here/peers" && node aidefence_eval.js "$data" test "$tmp/aidefence.jsonl" && rm -rf logs)
  peers+=(--pred "aidefence=$tmp/aidefence.jsonl")
fi
# Thresholds: the default policy's flag threshold (src/guard/mk_injection.c), chosen
# on out-of-fold training scores and the valid split (tune_thresholds.py).
python3 "$here/eval_injection.py" --data "$data" --split test "${peers[@]}" \
  --threshold mayak=0.50 --threshold rules_only=0.50 --json "$out/injection_eval.json" | tee "$out/injection_eval.txt"
"$build/guard_speed_guard" --data "$data" --seconds 3 | tee "$out/speed.txt"
