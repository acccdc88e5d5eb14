#!/usr/bin/env python3
"""Metrics for the injection guard (and peers) from per-row predictions.

    eval_injection.py --data combined_labeled.jsonl --split test \
        --pred mayak=/tmp/mayak.jsonl [--pred aidefence=/tmp/aid.jsonl] \
        [--threshold mayak=0.7] [--tune valid] [--json OUT.json]

A prediction row is {"id", "score"} (score in [0,1], higher = attack) or
{"id", "flagged": bool}. For each detector: precision / recall / F1 overall,
per language (lang) and per source on --split, plus the false-positive rate on
the benign trigger-word sets (InjecGuard NotInject, awesome-chatgpt-prompts).
Only rows every detector scored are counted, so all columns share rows.

--tune SPLIT prints, for score-based detectors, recall and FPR at a sweep of
thresholds on SPLIT (never the test split): how the default thresholds were chosen.
"""
import argparse
import collections
import json
import sys

TRIGGER_SETS = ("InjecGuard/NotInject", "awesome-chatgpt-prompts")


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def load_preds(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                out[r["id"]] = r
    return out


def flagged(pred, thr):
    if "flagged" in pred:
        return bool(pred["flagged"])
    return pred["score"] >= thr


def table(rows, preds, names, thr, keyf):
    groups = collections.defaultdict(lambda: {n: [0, 0, 0, 0] for n in names})  # tp fp fn tn
    for r in rows:
        for k in keyf(r):
            for n in names:
                y = r["label"] == 1
                yhat = flagged(preds[n][r["id"]], thr[n])
                c = groups[k][n]
                if y and yhat: c[0] += 1
                elif not y and yhat: c[1] += 1
                elif y: c[2] += 1
                else: c[3] += 1
    return groups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--pred", action="append", required=True, help="name=path")
    ap.add_argument("--threshold", action="append", default=[], help="name=value (default 0.5)")
    ap.add_argument("--tune", help="split to sweep thresholds on (not test)")
    ap.add_argument("--json", help="write the numbers here")
    a = ap.parse_args()
    if a.tune == "test":
        sys.exit("refusing to tune on the test split")
    preds = {}
    for p in a.pred:
        n, path = p.split("=", 1)
        preds[n] = load_preds(path)
    names = list(preds)
    thr = {n: 0.5 for n in names}
    for t in a.threshold:
        n, v = t.split("=", 1)
        thr[n] = float(v)
    data = [json.loads(l) for l in open(a.data, encoding="utf-8")]

    if a.tune:
        rows = [r for r in data if r.get("split") == a.tune and all(r["id"] in preds[n] for n in names)]
        print(f"# threshold sweep on split={a.tune} ({len(rows)} rows)")
        for n in names:
            if not all("score" in preds[n][r["id"]] for r in rows):
                continue
            for t in [x / 100 for x in range(5, 100, 5)]:
                tp = sum(1 for r in rows if r["label"] == 1 and preds[n][r["id"]]["score"] >= t)
                fp = sum(1 for r in rows if r["label"] == 0 and preds[n][r["id"]]["score"] >= t)
                pos = sum(1 for r in rows if r["label"] == 1)
                neg = len(rows) - pos
                print(f"{n:10s} t={t:.2f} recall={tp / max(pos, 1):.3f} fpr={fp / max(neg, 1):.3f}")
        return

    rows = [r for r in data if (a.split == "all" or r.get("split") == a.split) and all(r["id"] in preds[n] for n in names)]
    missing = sum(1 for r in data if (a.split == "all" or r.get("split") == a.split)) - len(rows)
    result = {"split": a.split, "rows": len(rows), "rows_missing_a_prediction": missing, "thresholds": thr, "groups": {}}
    print(f"# split={a.split}: {len(rows)} rows scored by all of {', '.join(names)} ({missing} left out)")
    print("# thresholds: " + ", ".join(f"{n}={thr[n]}" for n in names))

    def show(title, groups, order):
        print(f"\n## {title}")
        hdr = f"{'group':58s} {'n':>5s} {'pos':>4s}"
        for n in names:
            hdr += f" | {n[:9]:>9s} P     R     F1    FPR "
        print(hdr)
        for k in order:
            g = groups[k]
            c0 = next(iter(g.values()))
            n_rows = sum(c0)
            pos = c0[0] + c0[2]
            line = f"{str(k)[:58]:58s} {n_rows:5d} {pos:4d}"
            result["groups"].setdefault(title, {})[str(k)] = {}
            for n in names:
                tp, fp, fn, tn = g[n]
                p, r, f = prf(tp, fp, fn)
                fpr = fp / (fp + tn) if fp + tn else 0.0
                line += f" | {'':9s} {p:.3f} {r:.3f} {f:.3f} {fpr:.3f}"
                result["groups"][title][str(k)][n] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": p,
                                                      "recall": r, "f1": f, "fpr": fpr}
            print(line)

    g = table(rows, preds, names, thr, lambda r: ["overall"])
    show("overall", g, ["overall"])
    g = table(rows, preds, names, thr, lambda r: [r["lang"]])
    show("by language", g, sorted(g))
    g = table(rows, preds, names, thr, lambda r: [r["source"]])
    show("by source", g, sorted(g))
    trig = [r for r in rows if r["source"].startswith(TRIGGER_SETS)]
    g = table(trig, preds, names, thr, lambda r: ["trigger-word benign sets (FPR)"] + [r["source"].split("/")[0]])
    show("benign trigger-word sets", g, sorted(g))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
