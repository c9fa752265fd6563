"""Peer for the IRT benchmark: Python `girth` fits a 2PL by marginal maximum likelihood
on the same data that irtlake fitted in the same run.

Usage: python bench/girth_peer.py MATRIX_CSV [SPARSE_LONG_CSV]
  MATRIX_CSV: the complete 5,000 x 60 matrix (rows = students, columns = items, 0/1);
  SPARSE_LONG_CSV: the sparse 10,000 x 400 bank, student_id,question_id,correct (each
  student answers 50), fitted with girth's missing-data tag (INVALID_RESPONSE).
Prints one JSON line per data set: the best of 3 wall times (fit + EAP ability
estimation) for the complete matrix; one run for the sparse bank (girth takes minutes).
"""
import csv
import json
import sys
import time

import numpy as np
from girth import INVALID_RESPONSE, twopl_mml, ability_eap


def sparse_matrix(path: str) -> np.ndarray:
    """items x students, INVALID_RESPONSE where a student did not answer."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    students = {s: i for i, s in enumerate(sorted({r["student_id"] for r in rows}))}
    items = {q: i for i, q in enumerate(sorted({r["question_id"] for r in rows}))}
    data = np.full((len(items), len(students)), INVALID_RESPONSE, dtype=int)
    for r in rows:
        data[items[r["question_id"]], students[r["student_id"]]] = int(r["correct"])
    return data


def main() -> None:
    data = np.loadtxt(sys.argv[1], delimiter=",", dtype=int).T  # girth: items x students
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        est = twopl_mml(data)
        ability_eap(data, est["Difficulty"], est["Discrimination"])
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"bench": "girth_2pl_complete_5000x60", "seconds": best,
                      "items": int(data.shape[0]), "students": int(data.shape[1])}), flush=True)
    if len(sys.argv) > 2:
        data = sparse_matrix(sys.argv[2])
        t0 = time.perf_counter()
        est = twopl_mml(data)
        ability_eap(data, est["Difficulty"], est["Discrimination"])
        print(json.dumps({"bench": "girth_2pl_sparse_10000x400x50",
                          "seconds": time.perf_counter() - t0,
                          "items": int(data.shape[0]), "students": int(data.shape[1])}))


if __name__ == "__main__":
    main()
