#!/usr/bin/env python3
"""Collects the extra BENIGN training rows for the default injection classifier
from ../shared/data (never committed: the rows are written to --out, e.g. /tmp).

The injection train split (deepset + BIPIA) has no Russian or Kazakh benign
text and few support-style questions, so the classifier would learn "Cyrillic
= attack" from our own Russian attack examples. These sources are ordinary
questions and help-page queries in the three languages:

  banking77/train.csv                       CC BY 4.0      English support questions (every 5th row)
  kb_gnome_help/eval_queries.jsonl          CC BY-SA 3.0   help titles/descriptions, en/ru/kk
  kb_gnome_help/articles.jsonl              CC BY-SA 3.0   help articles, en/ru/kk, cut into ~1,200-char
                                                           pieces: long benign documents (without them the
                                                           classifier learns "long text = attack")
  multilingual/rubq/RuBQ_1.0_{dev,test}.json CC BY-SA 4.0  Russian questions
  multilingual/xsid_kk_en/{kk,en}.valid.jsonl CC BY-SA 4.0 Kazakh and English assistant requests
  prompt_injection/xsafety_ru_en/xsafety_ru_en.jsonl  Apache-2.0  XSafety's harmful-content, ethics and
                                                           commonsense prompts, ru and en: chat prompts that
                                                           are NOT injections. Only the categories that are
                                                           not about injection: Goal_Hijacking (the test
                                                           split's Russian attacks), Prompt_Leaking and
                                                           Role_Play_Instruction (partly attack-like) are
                                                           never read. They teach the classifier that a
                                                           Russian chat prompt, even a nasty one, is not an
                                                           injection by itself (the other Russian benign rows
                                                           are short QA questions).

Any row whose text (lower-cased, spaces collapsed) equals a text of the test
split of prompt_injection/combined_labeled.jsonl is dropped, so no evaluation
row is trained on (RuBQ 2.0, whose dev set is in that test split, extends
RuBQ 1.0). Output rows: {"text", "label": 0, "split": "train", "source"}.

    python3 bench/guard/prep_train_data.py --data-root ../shared/data --out /tmp/guard_extra.jsonl
"""
import argparse
import csv
import json
import os
import sys


def key(t):
    return " ".join(t.lower().split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    root = a.data_root
    test = set()
    with open(os.path.join(root, "prompt_injection/combined_labeled.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("split") == "test":
                test.add(key(r["text"]))
    rows = []

    def add(text, source):
        text = (text or "").strip()
        if text and key(text) not in test:
            rows.append({"text": text, "label": 0, "split": "train", "source": source})

    with open(os.path.join(root, "banking77/train.csv"), encoding="utf-8", newline="") as f:
        for i, r in enumerate(csv.DictReader(f)):
            if i % 5 == 0:
                add(r["text"], "banking77/train")
    with open(os.path.join(root, "kb_gnome_help/eval_queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            add(r["query"], "kb_gnome_help/" + r["lang"])
    with open(os.path.join(root, "kb_gnome_help/articles.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            text = r["text"]
            for k in range(0, min(len(text), 3600), 1200):
                add(text[k:k + 1200], "kb_gnome_help/articles/" + r["lang"])
    for name in ("RuBQ_1.0_dev.json", "RuBQ_1.0_test.json"):
        with open(os.path.join(root, "multilingual/rubq", name), encoding="utf-8") as f:
            for r in json.load(f):
                add(r["question_text"], "rubq1/" + name)
    for lang in ("kk", "en"):
        with open(os.path.join(root, f"multilingual/xsid_kk_en/{lang}.valid.jsonl"), encoding="utf-8") as f:
            for line in f:
                add(json.loads(line)["text"], f"xsid/{lang}.valid")
    skip = {"Goal_Hijacking", "Prompt_Leaking", "Role_Play_Instruction"}
    with open(os.path.join(root, "prompt_injection/xsafety_ru_en/xsafety_ru_en.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["category"] not in skip:
                add(r["text"], f"xsafety/{r['lang']}/{r['category']}")
    seen = set()
    with open(a.out, "w", encoding="utf-8") as out:
        for r in rows:
            k = key(r["text"])
            if k in seen:
                continue
            seen.add(k)
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"prep_train_data: {len(seen)} benign rows -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
