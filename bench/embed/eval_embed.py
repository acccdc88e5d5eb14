#!/usr/bin/python3
"""Quality of the built-in embedder, measured on public intent and QA data sets.

Proxy of embedding quality: nearest-neighbour intent accuracy. Every training text is
embedded (bench/embed/embed_dump), every test text is classified by its k nearest
training texts (cosine = dot, the vectors are unit length): k=1 takes the nearest's
intent, k=5 the majority of the five nearest (a tie goes to the intent whose votes
have the larger summed similarity). For sets without intents (QA), the score is
retrieval: question -> its own paragraph among all paragraphs (top-1, recall@5).

Sets (read from ../shared/data, never copied into the repository):
  banking77   BANKING77 train -> test (77 intents, English banking)
  clinc150    CLINC150 data_full train -> test, in-scope only (150 intents, English)
  xsid-kk     xSID Kazakh: valid (300) -> test (500), 15+ intents (no Kazakh train split exists)
  xsid-en     the same utterances in English, for a like-for-like language comparison
  xquad-ru    XQuAD Russian: question -> paragraph among 240 (parallel to xquad-en)
  xquad-en    XQuAD English
  kazqad-kk   KazQAD Kazakh reading comprehension (validation): question -> paragraph
  gnome-{en,ru,kk}  GNOME Help: page description -> page text among 317 pages per language

Tuning used only train/validation data: --dev evaluates banking77 on a held-out tenth
of train (every 10th row) and clinc150 on its val split. Reported numbers use test.

Variants (--variants) compare the design against baselines, all through embed_dump:
  default      the shipped embedder
  bow          stemmed words only (no character n-grams, no bigrams)
  bow-raw      plain bag of words: no stemming, no stop-word weighting, no n-grams, no bigrams
  no-chars / no-bigrams / no-stem / no-stopwords / no-sqrt   one design choice removed
  all-bigrams  bigrams of every word pair (the default keeps only those after a negation)
  dim256 / dim384 / dim768 / dim1024 / hashes2 / hashes3 / ngram*   size and projection choices
  idf-train    IDF fitted on each set's own training texts
  idf-kb       IDF fitted on the demo knowledge base (kb/demo/**/*.md, one doc per file)

Usage: bench/embed/eval_embed.py [--bin build/embed_dump] [--data ../shared/data]
                                 [--sets a,b] [--variants a,b] [--dev] [--markdown]
Needs python3-numpy (Debian).
"""

import argparse
import csv
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

VARIANTS = {
    "default": [],
    "bow": ["--disable", "chars,bigrams"],
    "bow-raw": ["--disable", "chars,bigrams,stem,stopwords,sqrt"],
    "no-chars": ["--disable", "chars"],
    "no-bigrams": ["--disable", "bigrams"],
    "all-bigrams": ["--disable", "+allbigrams"],
    "no-stem": ["--disable", "stem"],
    "no-stopwords": ["--disable", "stopwords"],
    "no-sqrt": ["--disable", "sqrt"],
    "dim256": ["--dim", "256"],
    "dim384": ["--dim", "384"],
    "dim768": ["--dim", "768"],
    "dim1024": ["--dim", "1024"],
    "hashes2": ["--hashes", "2"],
    "hashes3": ["--hashes", "3"],
    "ngram2-5": ["--ngram", "2-5"],
    "ngram3-4": ["--ngram", "3-4"],
    "ngram3-6": ["--ngram", "3-6"],
    "idf-train": ["@fit-train"],
    "idf-kb": ["@fit-kb"],
}


def one_line(t):
    return " ".join(t.split())


class Embedder:
    def __init__(self, binary):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="mk-embed-eval-")

    def embed(self, texts, args, fit_docs=None):
        cmd = [self.binary]
        for a in args:
            if a.startswith("@"):
                continue
            cmd.append(a)
        if fit_docs is not None:
            path = os.path.join(self.tmp, "fit.txt")
            with open(path, "w", encoding="utf-8") as f:
                for d in fit_docs:
                    f.write(one_line(d) + "\n")
            cmd += ["--fit", path]
        data = "".join(one_line(t) + "\n" for t in texts).encode("utf-8")
        out = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout
        magic, ver, dim, n, _fp = struct.unpack("<8sIIQQ", out[:32])
        if magic != b"MKEMBVEC" or ver != 1 or n != len(texts):
            raise RuntimeError("embed_dump: unexpected output header")
        return np.frombuffer(out[32:], dtype=np.float32).reshape(n, dim)


def knn_accuracy(train_vecs, train_labels, test_vecs, test_labels, ks=(1, 5)):
    labels = np.array(train_labels)
    res = {}
    correct = {k: 0 for k in ks}
    kmax = max(ks)
    for start in range(0, len(test_vecs), 1024):
        sims = test_vecs[start:start + 1024] @ train_vecs.T
        top = np.argpartition(-sims, kmax, axis=1)[:, :kmax]
        for r in range(top.shape[0]):
            idx = top[r][np.argsort(-sims[r, top[r]])]
            gold = test_labels[start + r]
            for k in ks:
                votes = {}
                for j in idx[:k]:
                    c, s = votes.get(labels[j], (0, 0.0))
                    votes[labels[j]] = (c + 1, s + float(sims[r, j]))
                pred = max(votes.items(), key=lambda kv: kv[1])[0]
                correct[k] += pred == gold
    for k in ks:
        res["k%d" % k] = correct[k] / len(test_vecs)
    return res


def retrieval(doc_vecs, query_vecs, gold):
    sims = query_vecs @ doc_vecs.T
    order = np.argsort(-sims, axis=1)[:, :5]
    top1 = float(np.mean(order[:, 0] == np.array(gold)))
    r5 = float(np.mean([g in row for g, row in zip(gold, order)]))
    return {"top1": top1, "r@5": r5}


# --- data sets ------------------------------------------------------------------------

def load_banking(data, dev):
    def rows(name):
        with open(os.path.join(data, "banking77", name), encoding="utf-8", newline="") as f:
            return [(r["text"], r["category"]) for r in csv.DictReader(f)]
    train = rows("train.csv")
    if dev:
        test = [r for i, r in enumerate(train) if i % 10 == 0]
        train = [r for i, r in enumerate(train) if i % 10 != 0]
    else:
        test = rows("test.csv")
    return "knn", train, test


def load_clinc(data, dev):
    with open(os.path.join(data, "clinc150", "data_full.json"), encoding="utf-8") as f:
        d = json.load(f)
    return "knn", [tuple(x) for x in d["train"]], [tuple(x) for x in d["val" if dev else "test"]]


def load_xsid(data, lang):
    def rows(name):
        with open(os.path.join(data, "multilingual", "xsid_kk_en", name), encoding="utf-8") as f:
            return [(j["text"], j["intent"]) for j in map(json.loads, f)]
    return "knn", rows(lang + ".valid.jsonl"), rows(lang + ".test.jsonl")


def load_xquad(data, lang):
    path = os.path.join(data, "multilingual", "xquad_ru_en", "xquad.%s.qa.jsonl" % lang)
    ctx, qs = {}, []
    with open(path, encoding="utf-8") as f:
        for j in map(json.loads, f):
            c = j["context"]
            if c not in ctx:
                ctx[c] = len(ctx)
            qs.append((j["question"], ctx[c]))
    return "ret", list(ctx), qs


def load_kazqad(data):
    path = os.path.join(data, "multilingual", "kazqad", "kazqad-reading-comprehension-v1.0-kk-validation.jsonl")
    ctx, qs = {}, []
    with open(path, encoding="utf-8") as f:
        for j in map(json.loads, f):
            c = j["context"]
            if c not in ctx:
                ctx[c] = len(ctx)
            qs.append((j["question"], ctx[c]))
    return "ret", list(ctx), qs


def load_gnome(data, lang):
    base = os.path.join(data, "kb_gnome_help")
    ids, docs = {}, []
    with open(os.path.join(base, "articles.jsonl"), encoding="utf-8") as f:
        for j in map(json.loads, f):
            if j["lang"] == lang:
                ids[j["id"]] = len(docs)
                docs.append(j["text"])
    qs = []
    with open(os.path.join(base, "eval_queries.jsonl"), encoding="utf-8") as f:
        for j in map(json.loads, f):
            if j["lang"] == lang and j["query_type"] == "desc" and j["gold_id"] in ids:
                qs.append((j["query"], ids[j["gold_id"]]))
    return "ret", docs, qs


SETS = {
    "banking77": lambda d, dev: load_banking(d, dev),
    "clinc150": lambda d, dev: load_clinc(d, dev),
    "xsid-kk": lambda d, dev: load_xsid(d, "kk"),
    "xsid-en": lambda d, dev: load_xsid(d, "en"),
    "xquad-ru": lambda d, dev: load_xquad(d, "ru"),
    "xquad-en": lambda d, dev: load_xquad(d, "en"),
    "kazqad-kk": lambda d, dev: load_kazqad(d),
    "gnome-en": lambda d, dev: load_gnome(d, "en"),
    "gnome-ru": lambda d, dev: load_gnome(d, "ru"),
    "gnome-kk": lambda d, dev: load_gnome(d, "kk"),
}


def kb_docs():
    docs = []
    for p in sorted(glob.glob(os.path.join(ROOT, "kb", "demo", "**", "*.md"), recursive=True)):
        with open(p, encoding="utf-8") as f:
            docs.append(f.read())
    return docs


def run(emb, kind, train, test, args):
    fit = None
    if "@fit-train" in args:
        fit = [t for t, _ in train] if kind == "knn" else train
    elif "@fit-kb" in args:
        fit = kb_docs()
    if kind == "knn":
        tv = emb.embed([t for t, _ in train], args, fit)
        qv = emb.embed([t for t, _ in test], args, fit)
        return knn_accuracy(tv, [l for _, l in train], qv, [l for _, l in test])
    dv = emb.embed(train, args, fit)
    qv = emb.embed([q for q, _ in test], args, fit)
    return retrieval(dv, qv, [g for _, g in test])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "embed_dump"))
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--variants", default="default,bow,bow-raw")
    ap.add_argument("--dev", action="store_true", help="tuning splits (banking77: train tenth, clinc150: val)")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    emb = Embedder(a.bin)
    sets = a.sets.split(",")
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            sys.exit("unknown variant %s (known: %s)" % (v, ", ".join(VARIANTS)))
    loaded = {}
    for s in sets:
        if s not in SETS:
            sys.exit("unknown set %s (known: %s)" % (s, ", ".join(SETS)))
        loaded[s] = SETS[s](a.data, a.dev)
    results = {}
    for v in variants:
        for s in sets:
            kind, train, test = loaded[s]
            t0 = time.time()
            r = run(emb, kind, train, test, VARIANTS[v])
            results[(v, s)] = r
            if not a.markdown:
                print("%-10s %-10s %s  (%.1fs)" % (v, s, "  ".join("%s=%.4f" % kv for kv in r.items()),
                                                  time.time() - t0), flush=True)
    if a.markdown:
        print("| set | metric | " + " | ".join(variants) + " |")
        print("|---|---|" + "---|" * len(variants))
        for s in sets:
            for m in results[(variants[0], s)]:
                print("| %s | %s | %s |" % (s, m, " | ".join("%.3f" % results[(v, s)][m] for v in variants)))


if __name__ == "__main__":
    main()
