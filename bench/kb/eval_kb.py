#!/usr/bin/env python3
"""Retrieval evaluation of the knowledge base on GNOME help (en, ru, kk).

Ingests ../shared/data/kb_gnome_help/{en,ru,kk} through the real CLI (`mayak kb add`,
or bench/kb/cli.c's kb_cli, which is the same code linked alone), then runs every query
of eval_queries.jsonl through `kb search --json` (stdin mode: the index loads once per
run) and scores the document ids it returns:

  recall@5  share of queries whose gold page is among the first 5 distinct documents
  MRR@10    mean of 1/rank of the gold page within the first 10 (0 when absent)

per language and query type (title | desc).

Tuning is honest: queries are split by a hash of their query_id into a validation half
(sha256(query_id) starts with 0-7) and a test half (8-f). The fusion constant k (and
the mode comparison) is chosen on validation only; the numbers reported are the test
half's (and, for reference, all queries with the chosen settings).

--strip-desc copies the pages to a temporary folder without their one-line italic
description (the "_..._" line under the title), which is what desc queries were built
from: the harder and fairer variant, since a real user's question is not a sentence of
the article. Dataset text is only ever written under a temporary directory.

Usage:
  bench/kb/eval_kb.py --bin build/kb_cli            # or --bin build/mayak
  bench/kb/eval_kb.py --bin build/kb_cli --strip-desc --out bench/kb/results-strip.json
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LANGS = ["en", "ru", "kk"]
TYPES = ["title", "desc"]
RRF_GRID = [1, 5, 10, 20, 40, 60, 100]


def is_valid(qid):
    return hashlib.sha256(qid.encode()).hexdigest()[0] in "01234567"


class Cli:
    def __init__(self, binary, data_dir):
        self.binary = binary
        self.data_dir = data_dir
        self.standalone = os.path.basename(binary).startswith("kb_cli")

    def cmd(self, *args):
        if self.standalone:
            return [self.binary, self.data_dir, *args]
        return [self.binary, "kb", *args, "--store", os.path.join(self.data_dir, "mayak.db")]

    def run(self, *args, stdin=None):
        p = subprocess.run(self.cmd(*args), input=stdin, capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            raise SystemExit(f"kb {' '.join(args)} failed with {p.returncode}")
        return p.stdout


def prepare_pages(src, strip_desc, tmp):
    if not strip_desc:
        return src
    dst = os.path.join(tmp, "pages")
    for lang in LANGS:
        os.makedirs(os.path.join(dst, lang))
        for name in os.listdir(os.path.join(src, lang)):
            with open(os.path.join(src, lang, name), encoding="utf-8") as f:
                lines = f.read().split("\n")
            # The description is the first italic line after the title.
            out, dropped = [], False
            for line in lines:
                s = line.strip()
                if not dropped and len(s) > 2 and s.startswith("_") and s.endswith("_"):
                    dropped = True
                    continue
                out.append(line)
            with open(os.path.join(dst, lang, name), "w", encoding="utf-8") as f:
                f.write("\n".join(out))
    return dst


def ingest(cli, pages):
    report = {}
    total_bytes = 0
    t0 = time.monotonic()
    cpu0 = os.times()
    for lang in LANGS:
        out = json.loads(cli.run("add", os.path.join(pages, lang), "--lang", lang, "--json"))
        report[lang] = {k: out[k] for k in ("files", "added", "skipped", "failed", "chunks", "bytes")}
        total_bytes += out["bytes"]
    wall = time.monotonic() - t0
    cpu1 = os.times()
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    return {"per_lang": report, "bytes": total_bytes, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "mb_per_s_wall": round(total_bytes / 1e6 / wall, 2), "mb_per_s_cpu": round(total_bytes / 1e6 / max(cpu, 1e-9), 2)}


def search(cli, queries, lang, extra):
    """Ranked distinct doc ids (up to 10) and took_ms per query, in input order."""
    text = "\n".join(q["query"].replace("\n", " ") for q in queries) + "\n"
    out = cli.run("search", "--json", "--no-text", "--k", "10", "--per-doc", "1", "--lang", lang, *extra, stdin=text)
    lines = out.strip("\n").split("\n") if out.strip() else []
    assert len(lines) == len(queries), f"{len(lines)} answers for {len(queries)} queries"
    ranked, took = [], []
    for line in lines:
        r = json.loads(line)
        ids = []
        for hit in r.get("results", []):
            if hit["doc_id"] not in ids:
                ids.append(hit["doc_id"])
        ranked.append(ids)
        took.append(r.get("took_ms", 0.0))
    return ranked, took


def score(queries, ranked):
    cells = {}
    for q, ids in zip(queries, ranked):
        rank = ids.index(q["gold_id"]) + 1 if q["gold_id"] in ids else 0
        r5 = 1.0 if 0 < rank <= 5 else 0.0
        rr = 1.0 / rank if 0 < rank <= 10 else 0.0
        for key in ((q["lang"], q["query_type"]), (q["lang"], "all"), ("all", q["query_type"]), ("all", "all")):
            c = cells.setdefault(key, [0, 0.0, 0.0])
            c[0] += 1
            c[1] += r5
            c[2] += rr
    return {f"{l}/{t}": {"n": c[0], "recall@5": round(c[1] / c[0], 4), "mrr@10": round(c[2] / c[0], 4)}
            for (l, t), c in sorted(cells.items())}


def run_config(cli, queries, extra, lang_mode):
    ranked_all, took_all = {}, []
    for lang in LANGS:
        qs = [q for q in queries if q["lang"] == lang]
        ranked, took = search(cli, qs, lang if lang_mode == "given" else "auto", extra)
        for q, r in zip(qs, ranked):
            ranked_all[q["query_id"]] = r
        took_all += took
    return ranked_all, took_all


def evaluate(queries, ranked_all):
    return score(queries, [ranked_all[q["query_id"]] for q in queries])


def objective(s):
    # Mean over languages of recall@5, then MRR as a tie-breaker.
    return (sum(s[f"{l}/all"]["recall@5"] for l in LANGS) / 3, sum(s[f"{l}/all"]["mrr@10"] for l in LANGS) / 3)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--bin", required=True, help="mayak or kb_cli binary")
    ap.add_argument("--data", default=os.path.join(here, "../../../shared/data/kb_gnome_help"))
    ap.add_argument("--strip-desc", action="store_true", help="drop each page's description line before ingesting")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()

    with open(os.path.join(args.data, "eval_queries.jsonl"), encoding="utf-8") as f:
        queries = [json.loads(l) for l in f if l.strip()]
    valid = [q for q in queries if is_valid(q["query_id"])]
    test = [q for q in queries if not is_valid(q["query_id"])]

    tmp = tempfile.mkdtemp(prefix="mayak-kb-eval-")
    try:
        pages = prepare_pages(args.data, args.strip_desc, tmp)
        cli = Cli(os.path.abspath(args.bin), os.path.join(tmp, "data"))
        ing = ingest(cli, pages)
        print(f"ingested {ing['bytes'] / 1e6:.2f} MB in {ing['wall_s']} s wall, {ing['cpu_s']} s CPU", file=sys.stderr)

        configs = {"bm25": ["--mode", "bm25", "--no-vectors"], "vector": ["--mode", "vector"]}
        for k in RRF_GRID:
            configs[f"hybrid k={k}"] = ["--mode", "hybrid", "--rrf-k", str(k)]
        runs, tune = {}, {}
        for name, extra in configs.items():
            ranked, took = run_config(cli, valid, extra, "given")
            runs[name] = extra
            tune[name] = evaluate(valid, ranked)
            print(f"valid {name:14s} recall@5 {objective(tune[name])[0]:.4f} mrr@10 {objective(tune[name])[1]:.4f}",
                  file=sys.stderr)
        best = max((n for n in configs if n.startswith("hybrid")), key=lambda n: objective(tune[n]))
        print(f"chosen on validation: {best}", file=sys.stderr)

        report = {"dataset": "kb_gnome_help", "strip_desc": args.strip_desc, "split": "sha256(query_id)[0] in 0-7 = valid",
                  "n_valid": len(valid), "n_test": len(test), "ingest": ing, "chosen": best,
                  "valid": {n: {"recall@5": objective(s)[0], "mrr@10": objective(s)[1]} for n, s in tune.items()},
                  "test": {}}
        for name in ("bm25", "vector", best):
            ranked, took = run_config(cli, test, runs[name], "given")
            report["test"][name] = evaluate(test, ranked)
        ranked, took = run_config(cli, queries, runs[best], "given")
        report["all_queries_chosen"] = evaluate(queries, ranked)
        report["latency_ms"] = {"n": len(took), "p50": round(statistics.median(took), 3), "p95": round(pct(took, 95), 3),
                                "p99": round(pct(took, 99), 3), "max": round(max(took), 3)}
        ranked, _ = run_config(cli, test, runs[best], "auto")
        report["test_detected_lang"] = evaluate(test, ranked)

        print("\nTEST split (%d queries), %s:" % (len(test), best))
        print(f"{'':10s} {'bm25 r@5':>9s} {'vec r@5':>8s} {'hyb r@5':>8s} {'hyb mrr':>8s}")
        for l in LANGS + ["all"]:
            for t in TYPES + ["all"]:
                key = f"{l}/{t}"
                b, v, h = report["test"]["bm25"][key], report["test"]["vector"][key], report["test"][best][key]
                print(f"{key:10s} {b['recall@5']:9.3f} {v['recall@5']:8.3f} {h['recall@5']:8.3f} {h['mrr@10']:8.3f}")
        print(f"latency p50 {report['latency_ms']['p50']} ms, p99 {report['latency_ms']['p99']} ms (in-process)")
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1, ensure_ascii=False)
                f.write("\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
