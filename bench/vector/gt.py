#!/usr/bin/python3
"""gt.py: exact k-nearest-neighbour ground truth for the ANN benchmark (computed once).

    gt.py base.mkvf queries.mkvf K metric out.mkvg

Uses faiss's flat (brute-force, BLAS) index: independent of every index under test.
metric: l2 | cosine | dot. Writes the "MKVG" file described in vecdata.h.
"""
import sys

import numpy as np
import faiss


def read_mkvf(path):
    with open(path, "rb") as f:
        if f.read(4) != b"MKVF":
            raise SystemExit(f"{path}: not an MKVF file")
        n, dim = np.frombuffer(f.read(8), dtype=np.uint32)
        data = np.fromfile(f, dtype=np.float32, count=int(n) * int(dim))
    return data.reshape(int(n), int(dim))


def main():
    base_path, q_path, k, metric, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    base, q = read_mkvf(base_path), read_mkvf(q_path)
    if metric == "cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    index = faiss.IndexFlatL2(base.shape[1]) if metric == "l2" else faiss.IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(base))
    _, ids = index.search(np.ascontiguousarray(q), k)
    with open(out, "wb") as f:
        f.write(b"MKVG")
        f.write(np.array([q.shape[0], k], dtype=np.uint32).tobytes())
        f.write(ids.astype(np.uint32).tobytes())


if __name__ == "__main__":
    main()
