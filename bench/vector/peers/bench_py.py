#!/usr/bin/python3
"""bench_py.py: hnswlib and faiss (HNSW) on the benchmark's vector files.

    bench_py.py hnswlib|faiss BASE QUERIES TRUTH --metric l2 --M 16 --efc 200
                --ef 16,32,64|none --threads 1,2 [--k 10] [--save FILE | --load FILE]
                [--rounds N]

Same protocol as vecbench.c: build once per thread count (timed; the first build is
searched), then every query once per ef, one after another on one thread (a single
library call over the query matrix with one thread, so no Python overhead), recall@k
against TRUTH and queries/s. Memory is the growth of the process's RSS over the build.
--save writes the searched index to FILE, --load searches one saved earlier instead of
building (to compare search speed on a fixed graph, alternating with vecbench --load);
--rounds N repeats the ef ladder N times. Prints "RESULT" lines like vecbench.
"""
import argparse
import time

import numpy as np


def read_file(path, magic, dtype):
    with open(path, "rb") as f:
        if f.read(4) != magic:
            raise SystemExit(f"{path}: bad magic")
        a, b = np.frombuffer(f.read(8), dtype=np.uint32)
        data = np.fromfile(f, dtype=dtype, count=int(a) * int(b))
    return data.reshape(int(a), int(b))


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def build_hnswlib(base, metric, M, efc, threads):
    import hnswlib
    space = {"l2": "l2", "cosine": "cosine", "dot": "ip"}[metric]
    index = hnswlib.Index(space=space, dim=base.shape[1])
    index.init_index(max_elements=base.shape[0], M=M, ef_construction=efc, random_seed=100)
    index.set_num_threads(threads)
    index.add_items(base, np.arange(base.shape[0]), num_threads=threads)
    return index


def search_hnswlib(index, q, k, ef):
    index.set_ef(ef)
    index.set_num_threads(1)
    # One call for all queries with one thread: the library loops over them in C++,
    # so Python's per-call overhead does not count against it.
    labels, _ = index.knn_query(q, k=k, num_threads=1)
    return labels


def build_faiss(base, metric, M, efc, threads):
    import faiss
    faiss.omp_set_num_threads(threads)
    dim = base.shape[1]
    if metric == "l2":
        index = faiss.IndexHNSWFlat(dim, M)
    else:
        index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    index.add(base)
    return index


def search_faiss(index, q, k, ef):
    import faiss
    faiss.omp_set_num_threads(1)
    index.hnsw.efSearch = ef
    _, labels = index.search(q, k)   # one call, one OpenMP thread: a C++ loop
    return labels


def save_index(impl, index, path):
    if impl == "hnswlib":
        index.save_index(path)
    else:
        import faiss
        faiss.write_index(index, path)


def load_index(impl, path, metric, dim):
    if impl == "hnswlib":
        import hnswlib
        index = hnswlib.Index(space={"l2": "l2", "cosine": "cosine", "dot": "ip"}[metric], dim=dim)
        index.load_index(path)
        return index
    import faiss
    return faiss.read_index(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("impl", choices=["hnswlib", "faiss"])
    ap.add_argument("base")
    ap.add_argument("queries")
    ap.add_argument("truth")
    ap.add_argument("--metric", default="l2")
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--ef", default="16,32,64,128")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--save")
    ap.add_argument("--load")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    base = np.ascontiguousarray(read_file(a.base, b"MKVF", np.float32))
    q = np.ascontiguousarray(read_file(a.queries, b"MKVF", np.float32))
    truth = read_file(a.truth, b"MKVG", np.uint32)[:, :a.k]
    if a.metric == "cosine" and a.impl == "faiss":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    build, search = (build_hnswlib, search_hnswlib) if a.impl == "hnswlib" else (build_faiss, search_faiss)
    index = load_index(a.impl, a.load, a.metric, base.shape[1]) if a.load else None
    for t in [] if a.load else [int(x) for x in a.threads.split(",")]:
        r0 = rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        idx = build(base, a.metric, a.M, a.efc, t)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(f"RESULT impl={a.impl} phase=build threads={t} build_s={dt:.2f} build_cpu_s={dc:.2f} "
              f"rss_mb={rss_mb() - r0:.1f}", flush=True)
        if index is None:
            index = idx
        else:
            del idx
    if a.save:
        save_index(a.impl, index, a.save)
    efs = [] if a.ef == "none" else [max(int(x), a.k) for x in a.ef.split(",")]
    for ef in efs * a.rounds:
        t0, c0 = time.perf_counter(), time.process_time()
        got = search(index, q, a.k, ef)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        hits = sum(len(set(got[i]) & set(truth[i])) for i in range(q.shape[0]))
        print(f"RESULT impl={a.impl} phase=search ef={ef} recall={hits / (q.shape[0] * a.k):.4f} "
              f"qps={q.shape[0] / dt:.0f} cpu_qps={q.shape[0] / dc:.0f}", flush=True)


if __name__ == "__main__":
    main()
