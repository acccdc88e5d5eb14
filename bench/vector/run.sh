#!/usr/bin/env bash
# bench/vector/run.sh: Mayak's vector index against hnswlib, faiss (HNSW) and ruvector
# on the same vectors, same M / ef_construction / ef, same machine, one run.
#
#   bench/vector/run.sh [quick|100k|1m|embed|all]      (default: 100k)
#
#   quick  20k x 64-d, for checking the script itself
#   100k   100,000 x 128-d, 1,000 Gaussian clusters, 10,000 queries, L2
#   1m     1,000,000 x 96-d, 1,000 clusters, 1,000 queries (Mayak and hnswlib only
#          unless VEC_1M_ALL=1: the other two take hours here)
#   embed  BANKING77 / CLINC150 texts through the built-in embedder, cosine (runs only
#          when bench/embed/embed_dump is built: see the EMBEDDER HOOK below)
#
# Protocol (the same for every library, see the drivers' headers):
#   - data: bench/vector/vecgen.c, deterministic (fixed seed); ground truth: exact
#     k-NN by faiss's flat index (gt.py), computed once per data set and cached;
#   - build: single-threaded under `taskset -c $MAYAK_CPU`, then with 2 threads
#     unpinned; time = wall clock (and CPU time beside it);
#   - search: one thread pinned to one core, every query once per ef, k = 10; recall@10
#     against the ground truth; queries/s by wall clock and by the thread's CPU time
#     (cpu_qps: steadier when the machine is shared). Each build saves its graph; the
#     searches then run in ROUNDS rounds (default 3), each round every library in turn
#     on its saved graph, and the summary takes the median per library and ef: on a
#     shared machine one pass can land in a slow moment (a single-pass run once showed
#     Mayak 1.11x hnswlib on CLINC150 where alternating rounds give ~1.9x; the same
#     run's Mayak build took 33% more CPU time than usual for identical work). ruvector
#     cannot save its index, so its one search pass stays in its build run;
#   - memory: growth of the process's resident set over the build (Mayak also reports
#     its own count, mk_vector_memory_bytes).
# Env: VEC_DATA (data/cache dir, default $BUILD/vector-bench), M (16), EFC (200),
#      EFS (ef list), ROUNDS (3), SKIP_PEERS=1, BENCH_RESULTS (Markdown file to append to).
# Results are for people to read; nothing here asserts a number.
set -euo pipefail
VBENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$VBENCH/../lib.sh"

MODE="${1:-100k}"
DATA="${VEC_DATA:-$BUILD/vector-bench}"
M="${M:-16}"
EFC="${EFC:-200}"
ROUNDS="${ROUNDS:-3}"
K=10
PY=/usr/bin/python3 # Debian's, which has python3-hnswlib and python3-faiss
PIN=()
if [ "${#PIN_MAYAK[@]}" -gt 0 ]; then PIN=("${PIN_MAYAK[@]}"); fi
mkdir -p "$DATA"

# --- build -------------------------------------------------------------------------
# The vector library through CMake (RelWithDebInfo), the two C drivers with cc against
# it: CMake's bench glob covers bench/*.c only.
build_drivers() {
    section "vector: build"
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        run 600 "$BENCH_TMP/cmake.log" cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    fi
    run 900 "$BENCH_TMP/build.log" cmake --build "$BUILD" --target mayak_vector -j"$(nproc)"
    local cflags=(-O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -I "$ROOT/src")
    run 300 "$BENCH_TMP/cc1.log" cc "${cflags[@]}" -o "$DATA/vecgen" "$VBENCH/vecgen.c" -lm
    run 300 "$BENCH_TMP/cc2.log" cc "${cflags[@]}" -o "$DATA/vecbench" "$VBENCH/vecbench.c" \
        "$BUILD/libmayak_vector.a" "$BUILD/libmayak_core.a" -lm -lpthread
}

# dataset NAME N DIM CLUSTERS NQ METRIC: generates (once) NAME.base/.query/.gt
dataset() {
    local name="$1" n="$2" dim="$3" nc="$4" nq="$5" metric="$6"
    if [ ! -s "$DATA/$name.base" ] || [ ! -s "$DATA/$name.query" ]; then
        run 900 "$BENCH_TMP/gen-$name.log" "$DATA/vecgen" "$n" "$dim" "$nc" 42 \
            "$DATA/$name.base" "$DATA/$name.query" "$nq"
    fi
    if [ ! -s "$DATA/$name.gt" ]; then
        run 7200 "$BENCH_TMP/gt-$name.log" "$PY" "$VBENCH/gt.py" "$DATA/$name.base" "$DATA/$name.query" \
            100 "$metric" "$DATA/$name.gt"
    fi
}

# bench_set NAME METRIC EFS IMPLS...: every implementation on one data set: each one's
# builds (its graph saved), then ROUNDS search rounds over the saved graphs, alternating
# the implementations within each round
bench_set() {
    local name="$1" metric="$2" efs="$3"; shift 3
    local files=("$DATA/$name.base" "$DATA/$name.query" "$DATA/$name.gt")
    local common=(--metric "$metric" --M "$M" --efc "$EFC" --k "$K")
    local out="$BENCH_TMP/$name" g="$DATA/$name.graph"
    mkdir -p "$out"
    # the filter sweep computes exact filtered answers by scanning: skipped at 1M
    local sweep=(--filters)
    [ "$name" = c1m ] && sweep=()
    : >"$out/all.txt"
    local impl searched=()
    for impl in "$@"; do
        section "vector: $name / $impl build"
        case "$impl" in
        mayak)
            run 14400 "$out/mayak-1.txt" "${PIN[@]}" "$DATA/vecbench" "${files[@]}" "${common[@]}" \
                --threads 1 --ef none --save "$g.mayak" "${sweep[@]}" && searched+=(mayak)
            run 14400 "$out/mayak-2.txt" "$DATA/vecbench" "${files[@]}" "${common[@]}" --threads 2 --ef none || true
            ;;
        mayak-int8)
            run 14400 "$out/int8.txt" "${PIN[@]}" "$DATA/vecbench" "${files[@]}" "${common[@]}" \
                --threads 1 --ef none --quant --save "$g.mayak-int8" && searched+=(mayak-int8)
            ;;
        hnswlib | faiss)
            run 14400 "$out/$impl-1.txt" "${PIN[@]}" "$PY" "$VBENCH/peers/bench_py.py" "$impl" "${files[@]}" \
                "${common[@]}" --threads 1 --ef none --save "$g.$impl" && searched+=("$impl")
            run 14400 "$out/$impl-2.txt" "$PY" "$VBENCH/peers/bench_py.py" "$impl" "${files[@]}" \
                "${common[@]}" --threads 2 --ef none || true
            ;;
        ruvector)
            if [ ! -d "$VBENCH/peers/node_modules/@ruvector/core" ]; then
                (cd "$VBENCH/peers" && npm install --no-audit --no-fund --loglevel=error) ||
                    say "ruvector: npm install failed; skipped"
            fi
            # Its insertBatch parallelises on its own, so its build is timed once,
            # pinned (one core) and reported as its single-threaded build.
            if [ -d "$VBENCH/peers/node_modules/@ruvector/core" ]; then
                run 14400 "$out/ruvector.txt" "${PIN[@]}" node "$VBENCH/peers/bench_ruvector.js" "${files[@]}" \
                    --metric "$metric" --M "$M" --efc "$EFC" --k "$K" --ef "$efs" || true
            fi
            ;;
        esac
    done
    local r
    for r in $(seq "$ROUNDS"); do
        section "vector: $name search round $r/$ROUNDS"
        for impl in "${searched[@]}"; do
            case "$impl" in
            mayak | mayak-int8)
                run 14400 "$out/search-$r-$impl.txt" "${PIN[@]}" "$DATA/vecbench" "${files[@]}" "${common[@]}" \
                    --load "$g.$impl" --ef "$efs" || true
                # a loaded index does not know it was built with --quant: name it
                sed -i "s/impl=mayak /impl=$impl /" "$out/search-$r-$impl.txt"
                ;;
            hnswlib | faiss)
                run 14400 "$out/search-$r-$impl.txt" "${PIN[@]}" "$PY" "$VBENCH/peers/bench_py.py" "$impl" \
                    "${files[@]}" "${common[@]}" --load "$g.$impl" --ef "$efs" || true
                ;;
            esac
        done
    done
    if [ -f "$g.mayak" ]; then persist_check "$name" "$metric" "$out"; fi
    rm -f "$g".*
    cat "$out"/*.txt | grep '^RESULT' >"$out/all.txt" || true
    table "$name" "$out/all.txt"
}

# persist_check NAME METRIC OUT: Mayak's save and load (mmap + verify + copy) timed on
# the saved graph, and whether the loaded copy answers identically
persist_check() {
    local name="$1" metric="$2" out="$3"
    run 600 "$out/persist.txt" "${PIN[@]}" "$DATA/vecbench" "$DATA/$name.base" "$DATA/$name.query" \
        "$DATA/$name.gt" --metric "$metric" --M "$M" --efc "$EFC" --k "$K" \
        --load "$DATA/$name.graph.mayak" --ef none --save "$DATA/$name.graph.copy" || true
    rm -f "$DATA/$name.graph.copy"
}

# table NAME FILE: the summary for one data set
table() {
    section "vector: $1 summary (M=$M, ef_construction=$EFC, k=$K)"
    awk '
    function v(k,   i, a) { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
    $1 == "RESULT" {
        impl = v("impl"); ph = v("phase")
        if (!(impl in seen)) { seen[impl] = 1; order[++n] = impl }
        if (ph == "build") {
            t = v("threads")
            if (t == "1" || impl == "ruvector") { b1[impl] = v("build_s"); b1c[impl] = v("build_cpu_s") }
            else { b2[impl] = v("build_s"); b2c[impl] = v("build_cpu_s") }
            if (t == "1" || impl == "ruvector") { mem[impl] = v("rss_mb"); own[impl] = v("mem_mb") }
        } else if (ph == "search") {
            # every round of a (impl, ef) pair is kept; the summary uses the medians
            key = impl SUBSEP v("ef")
            if (!(key in cnt)) { efs[impl] = efs[impl] " " v("ef"); rec[key] = v("recall") }
            c = ++cnt[key]; wq[key, c] = v("qps") + 0; cq[key, c] = v("cpu_qps") + 0
        } else if (ph == "filter") {
            flt = flt sprintf("| %s | %s | %s | %s | %s |\n", v("filter"), v("recall"), v("cpu_qps"), v("distances"), v("scans"))
        } else if (ph == "persist") {
            persist = sprintf("Mayak save %s s, load (mmap+verify+copy) %s s, file %s MB, identical answers %s; build (1 thread) %s s",
                              v("save_s"), v("load_s"), v("file_mb"), v("identical"), b1["mayak"])
        }
    }
    function median(arr, key, c,   i, j, t, a) {
        for (i = 1; i <= c; i++) a[i] = arr[key, i]
        for (i = 2; i <= c; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
    }
    END {
        for (i = 1; i <= n; i++) { x = order[i]
            ne = split(efs[x], el, " ")
            for (e = 1; e <= ne; e++) {
                key = x SUBSEP el[e]; q = median(cq, key, cnt[key])
                line[x] = line[x] sprintf("| %s | %s | %s | %.0f | %.0f | %d |\n", x, el[e], rec[key], median(wq, key, cnt[key]), q, cnt[key])
                if (rec[key] + 0 >= 0.95 && q > best[x]) { best[x] = q; bestef[x] = el[e]; bestr[x] = rec[key] }
            }
        }
        print "| impl | build 1 thread: wall s (CPU s) | build 2 threads: wall s (CPU s) | memory (RSS MB) | best median q/s (thread CPU) at recall>=0.95 (ef, recall) |"
        print "|---|---|---|---|---|"
        for (i = 1; i <= n; i++) { x = order[i]
            m = mem[x]; if (own[x] != "") m = m " (own count " own[x] ")"
            printf "| %s | %s (%s) | %s | %s | %s |\n", x, b1[x], b1c[x], (x in b2) ? b2[x] " (" b2c[x] ")" : "-", m,
                   (x in best) ? sprintf("%.0f (ef %s, %s)", best[x], bestef[x], bestr[x]) : "none reached 0.95"
        }
        print ""
        print "| impl | ef | recall@10 | q/s (wall), median | q/s (thread CPU), median | rounds |"
        print "|---|---|---|---|---|---|"
        for (i = 1; i <= n; i++) printf "%s", line[order[i]]
        print ""
        if ("mayak" in best && "hnswlib" in best) printf "Mayak / hnswlib queries/s at recall>=0.95: %.2fx\n", best["mayak"] / best["hnswlib"]
        if ("mayak" in best && "faiss" in best) printf "Mayak / faiss queries/s at recall>=0.95: %.2fx\n", best["mayak"] / best["faiss"]
        if ("mayak" in best && "ruvector" in best) printf "Mayak / ruvector queries/s at recall>=0.95: %.2fx\n", best["mayak"] / best["ruvector"]
        if (b1["mayak"] != "" && b1["hnswlib"] != "") printf "Mayak / hnswlib build time (1 thread): %.2fx wall, %.2fx CPU\n", b1["mayak"] / b1["hnswlib"], b1c["mayak"] / b1c["hnswlib"]
        if (b2["mayak"] != "" && b2["hnswlib"] != "") printf "Mayak / hnswlib build time (2 threads): %.2fx wall, %.2fx CPU\n", b2["mayak"] / b2["hnswlib"], b2c["mayak"] / b2c["hnswlib"]
        if (persist != "") print persist
        if (flt != "") {
            print ""
            print "Filtered search (Mayak, default ef; namespace = row % 100, predicate on row number):"
            print ""
            print "| filter | recall@10 vs exact filtered | q/s (thread CPU) | distances/query | answered by scan |"
            print "|---|---|---|---|---|"
            printf "%s", flt
        }
    }' "$2" | while IFS= read -r l; do say "$l"; done
}

# --- EMBEDDER HOOK ---------------------------------------------------------------------
# The built-in embedder (src/embed) turns the BANKING77 / CLINC150 texts into vectors
# through its benchmark tool bench/embed/embed_dump.c ("embed_dump < texts > vectors",
# output header "MKEMBVEC", version, dim, count, fingerprint, then float32 rows). This
# part runs when that tool is built: $EMBED_DUMP, default $BUILD/embed_dump. Until then
# it says so and is skipped; nothing else depends on it. Train texts are the index,
# test texts (CLINC150: with its out-of-scope queries) are the queries; cosine.
embed_sets() {
    local dump="${EMBED_DUMP:-$BUILD/embed_dump}"
    section "vector: built-in embeddings (BANKING77, CLINC150)"
    if [ ! -x "$dump" ]; then
        say "skipped: $dump not found (build bench/embed/embed_dump.c; see the EMBEDDER HOOK in bench/vector/run.sh)"
        return 0
    fi
    local shared="$ROOT/../shared/data"
    "$PY" - "$shared" "$DATA" <<'PYEOF'
import csv, json, sys
shared, out = sys.argv[1], sys.argv[2]
def write(name, texts):
    with open(f"{out}/{name}.txt", "w") as f:
        for t in texts:
            f.write(t.replace("\r", " ").replace("\n", " ").strip() + "\n")
for split, name in (("train", "banking77.base"), ("test", "banking77.query")):
    with open(f"{shared}/banking77/{split}.csv", newline="") as f:
        write(name, [row["text"] for row in csv.DictReader(f)])
with open(f"{shared}/clinc150/data_full.json") as f:
    d = json.load(f)
write("clinc150.base", [t for t, _ in d["train"] + d["val"]])
write("clinc150.query", [t for t, _ in d["test"] + d["oos_test"]])
PYEOF
    local set part
    for set in banking77 clinc150; do
        for part in base query; do
            run 600 "$BENCH_TMP/embed-$set-$part.log" sh -c "\"$dump\" < \"$DATA/$set.$part.txt\" > \"$DATA/$set.$part.emb\"" ||
                { say "embed_dump failed on $set.$part; skipped"; return 0; }
            # MKEMBVEC (32-byte header) -> MKVF (12-byte header), same float rows
            "$PY" - "$DATA/$set.$part.emb" "$DATA/$set.$part" <<'PYEOF'
import struct, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    hdr = f.read(32)
    if hdr[:8] != b"MKEMBVEC":
        raise SystemExit(f"{src}: not embed_dump output")
    _, dim, count, _ = struct.unpack("<IIQQ", hdr[8:32])
    body = f.read()
with open(dst, "wb") as f:
    f.write(b"MKVF" + struct.pack("<II", count, dim) + body)
PYEOF
        done
        rm -f "$DATA/$set.gt"
        dataset "$set" 0 0 0 0 cosine
        bench_set "$set" cosine "${EFS:-10,16,24,32,48,64}" mayak hnswlib faiss ruvector
    done
}

all_impls=(mayak mayak-int8 hnswlib faiss ruvector)
[ -n "${SKIP_PEERS:-}" ] && all_impls=(mayak mayak-int8)
say "# vector benchmark ($MODE) — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
build_drivers
case "$MODE" in
quick)
    dataset q20k 20000 64 200 1000 l2
    bench_set q20k l2 "${EFS:-10,16,32,64}" "${all_impls[@]}"
    ;;
100k)
    dataset c100k 100000 128 1000 10000 l2
    bench_set c100k l2 "${EFS:-10,16,24,32,48,64,96,128}" "${all_impls[@]}"
    ;;
1m)
    dataset c1m 1000000 96 1000 1000 l2
    if [ -n "${VEC_1M_ALL:-}" ]; then
        bench_set c1m l2 "${EFS:-16,32,64,128}" "${all_impls[@]}"
    else
        bench_set c1m l2 "${EFS:-16,32,64,128}" mayak hnswlib
    fi
    ;;
embed)
    embed_sets
    ;;
all)
    dataset c100k 100000 128 1000 10000 l2
    bench_set c100k l2 "${EFS:-10,16,24,32,48,64,96,128}" "${all_impls[@]}"
    embed_sets
    dataset c1m 1000000 96 1000 1000 l2
    bench_set c1m l2 "${EFS:-16,32,64,128}" mayak hnswlib
    ;;
*)
    die "usage: $0 [quick|100k|1m|embed|all]"
    ;;
esac
