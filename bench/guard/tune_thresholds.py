#!/usr/bin/env python3
"""Choose the injection policy thresholds without touching the test split.

Out-of-fold scores: the training rows (train split of combined_labeled.jsonl,
src/guard/patterns/own_train.jsonl, the extra benign rows from
prep_train_data.py) are cut into K folds; for each fold a model is trained on
the other folds with the same trainer (`guard_train`) and the held-out fold is
scored with the full detector (rules + that model, `guard_eval_injection`).
Those scores, plus the valid split scored by a model trained on all training
rows, are swept for recall and false-positive rate per threshold.

    tune_thresholds.py --bin BUILD_DIR --data-root ../shared/data --extra /tmp/guard_extra.jsonl [--k 5]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def train_args(a):
    """--train-arg=--bits=16 -> ["--bits", "16"] (the trainer takes option and value apart)."""
    out = []
    for t in a.train_arg:
        out += t.split("=", 1) if t.startswith("--") and "=" in t else [t]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--extra", required=True)
    ap.add_argument("--own", default=os.path.join(os.path.dirname(__file__), "../../src/guard/patterns/own_train.jsonl"))
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--train-arg", action="append", default=[], help="passed to guard_train (repeatable, e.g. --train-arg=--features=c4,w1)")
    a = ap.parse_args()
    combined = os.path.join(a.data_root, "prompt_injection/combined_labeled.jsonl")
    rows = []
    for path in (combined, a.own, a.extra):
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if path == combined and r.get("split") != "train":
                    continue
                rows.append({"text": r["text"], "label": r["label"], "split": "train", "lang": r.get("lang", "?")})
    for i, r in enumerate(rows):
        r["id"] = i
    tmp = tempfile.mkdtemp(prefix="guard_tune_")
    oof = {}
    for k in range(a.k):
        tr = os.path.join(tmp, f"tr{k}.jsonl")
        ho = os.path.join(tmp, f"ho{k}.jsonl")
        with open(tr, "w", encoding="utf-8") as ftr, open(ho, "w", encoding="utf-8") as fho:
            for r in rows:
                (fho if r["id"] % a.k == k else ftr).write(json.dumps(r, ensure_ascii=False) + "\n")
        model = os.path.join(tmp, f"m{k}.mkgm")
        pred = os.path.join(tmp, f"p{k}.jsonl")
        run([os.path.join(a.bin, "guard_train"), "train", "--data", tr, "--out", model] + train_args(a))
        run([os.path.join(a.bin, "guard_eval_injection"), "--data", ho, "--split", "all", "--model", model, "--out", pred])
        with open(pred, encoding="utf-8") as f:
            for line in f:
                p = json.loads(line)
                oof[p["id"]] = p["score"]
    print(f"# out-of-fold: {len(oof)} training rows, {a.k} folds")
    by_id = {r["id"]: r for r in rows}

    def sweep(title, items):
        pos = sum(1 for y, _ in items if y == 1)
        neg = len(items) - pos
        print(f"## {title}: {pos} attacks, {neg} benign")
        for t in [x / 100 for x in range(30, 100, 5)]:
            tp = sum(1 for y, s in items if y == 1 and s >= t)
            fp = sum(1 for y, s in items if y == 0 and s >= t)
            print(f"t={t:.2f} recall={tp / max(pos, 1):.3f} fpr={fp / max(neg, 1):.4f}")

    sweep("out-of-fold, all", [(by_id[i]["label"], s) for i, s in oof.items()])
    sweep("out-of-fold, ru", [(by_id[i]["label"], s) for i, s in oof.items() if by_id[i]["lang"] == "ru"])
    full = os.path.join(tmp, "all.jsonl")
    with open(full, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    model = os.path.join(tmp, "all.mkgm")
    pred = os.path.join(tmp, "valid.jsonl")
    run([os.path.join(a.bin, "guard_train"), "train", "--data", full, "--out", model] + train_args(a))
    run([os.path.join(a.bin, "guard_eval_injection"), "--data", combined, "--split", "valid", "--model", model, "--out", pred])
    labels = {}
    with open(combined, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("split") == "valid":
                labels[r["id"]] = r["label"]
    items = []
    with open(pred, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            items.append((labels[p["id"]], p["score"]))
    sweep("valid split", items)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
