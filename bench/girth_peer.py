"""Peer for the IRT benchmark: Python `girth` fits a 2PL by marginal maximum likelihood
on the same complete 5,000 x 60 matrix that irtlake fitted in the same run.

Usage: python bench/girth_peer.py MATRIX_CSV   (rows = students, columns = items, 0/1)
Prints one JSON line with the best of 3 wall times (fit + EAP ability estimation).
"""
import json
import sys
import time

import numpy as np
from girth import twopl_mml, ability_eap


def main() -> None:
    data = np.loadtxt(sys.argv[1], delimiter=",", dtype=int).T  # girth: items x students
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        est = twopl_mml(data)
        ability_eap(data, est["Difficulty"], est["Discrimination"])
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"bench": "girth_2pl_complete_5000x60", "seconds": best,
                      "items": int(data.shape[0]), "students": int(data.shape[1])}))


if __name__ == "__main__":
    main()
