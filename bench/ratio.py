"""Prints the benchmark summary and the peer ratios (girth time / irtlake time).

Usage: python bench/ratio.py ENGINE_JSONL PEER_JSONL [IRT_FIT_JSONL]
"""
import json
import sys

ours = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
cli = [json.loads(l) for l in open(sys.argv[3]) if l.strip()] if len(sys.argv) > 3 else []


def phases(record):
    """'prepare 12 ms, fit 340 ms, ...' from a record's `phases_ms` object."""
    return ", ".join(f"{k} {v:.0f} ms" for k, v in record["phases_ms"].items())


sparse = next(r for r in ours if r["bench"].startswith("irtlake_2pl_sparse"))
complete = next(r for r in ours if r["bench"] == "irtlake_2pl_complete_5000x60")
girth = next(r for r in peer if r["bench"] == "girth_2pl_complete_5000x60")
print(f"2PL sparse 10,000 x 400 (50 each, {sparse['responses']} responses): "
      f"{sparse['seconds']:.3f} s incl. EAP scoring, {sparse['em_cycles']} EM cycles, "
      f"{sparse['ns_per_response_node_cycle']:.2f} ns per response x node x cycle "
      f"(target <= {sparse['target_seconds']} s: {'met' if sparse['seconds'] <= sparse['target_seconds'] else 'NOT met'})")
ratio = girth["seconds"] / complete["seconds"]
print(f"2PL complete 5,000 x 60 (parameters + EAP scores, as girth computes): irtlake {complete['seconds']:.3f} s, "
      f"girth {girth['seconds']:.3f} s -> ratio girth/irtlake = {ratio:.1f}x (target >= 20x)")
print(f"  (irtlake with full observed-information standard errors as well: {complete['seconds_with_full_se']:.3f} s)")

three = next((r for r in ours if r["bench"] == "irtlake_3pl_complete_5000x40"), None)
if three:
    print(f"3PL complete 5,000 x 40, Beta(5,17) on c, with SEs ({three['se_method']}): "
          f"{three['seconds']:.3f} s, {three['em_cycles']} EM cycles ({phases(three)}); "
          f"target <= {three['target_seconds']} s: {'met' if three['seconds'] <= three['target_seconds'] else 'NOT met'}; "
          f"mirt {three['mirt_seconds_without_se']} s without SEs -> {three['mirt_seconds_without_se'] / three['seconds']:.1f}x")
fit = next((r for r in cli if r["bench"].startswith("irtlake_irt_fit")), None)
girth_sparse = next((r for r in peer if r["bench"] == "girth_2pl_sparse_10000x400x50"), None)
if fit:
    print(f"irtlake irt fit, 2PL sparse 10,000 x 400 CSV ({fit['n_responses']} responses), end to end: "
          f"{fit['seconds']:.3f} s wall ({phases(fit)}); target <= {fit['target_seconds']} s: "
          f"{'met' if fit['seconds'] <= fit['target_seconds'] else 'NOT met'}; "
          f"mirt {fit['mirt_seconds']:.0f} s (published in the issue, not run here) -> {fit['mirt_seconds'] / fit['seconds']:.0f}x")
    if girth_sparse:
        print(f"  girth on the same sparse bank (fit + EAP, same run): {girth_sparse['seconds']:.1f} s "
              f"-> ratio girth/irtlake = {girth_sparse['seconds'] / fit['seconds']:.0f}x")
