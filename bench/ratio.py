"""Prints the benchmark summary and the peer ratio (girth time / irtlake time)."""
import json
import sys

ours = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
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
