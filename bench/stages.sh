#!/usr/bin/env bash
# Times every stage of the pipeline on the demo platform (10,000 students, 400
# questions, 60 days) with the release binary. Usage: stages.sh IRTLAKE LAKE TRUTH START RUN
set -euo pipefail
bin=$1 lake=$2 truth=$3 start=$4 run=$5
# Prints the phase breakdown (`phases_ms`) of the summaries in a command's stdout ($1):
# a JSON object or array per line (several for calibrate over several banks: one line
# per summary, labelled by bank), or the `phases:` line of `irtlake report`; any other
# line is ignored.
phases() {
  printf '%s\n' "$1" | python3 -c '
import json, sys
text = sys.stdin.read()
docs, lines = [], []
try:
    docs.append(json.loads(text))
except ValueError:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("phases: "):
            lines.append(line)
            continue
        try:
            docs.append(json.loads(line))
        except ValueError:
            pass
flat = []
for d in docs:
    flat.extend(d if isinstance(d, list) else [d])
flat = [d for d in flat if isinstance(d, dict) and isinstance(d.get("phases_ms"), dict)]
ms = lambda v: "%.0f" % v if v >= 10 else "%.1f" % v
for d in flat:
    label = " [%s]" % (d.get("bank") or d.get("shard") or "") if len(flat) > 1 else ""
    parts = ", ".join("%s %s ms" % (k, ms(float(v))) for k, v in d["phases_ms"].items())
    lines.append("phases%s: %s" % (label, parts or "none"))
for line in lines:
    print("    " + line)
'
}
t() {
  local name=$1; shift
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$("$bin" --lake "$lake" "$@")
  t1=$(date +%s.%N)
  awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { printf "%-28s %8.2f s\n", n, b - a }'
  phases "$out"
}
echo "== stage wall times on the demo platform (release)"
t "demo-data (500k attempts)" demo-data --truth-dir "$truth"
t "calibrate all + 4 subjects" calibrate --run-date "$run" --bank all --all-subjects
t "score_topics" stage score-topics --run-date "$run"
t "features (60 days)" stage features --run-date "$run" --from "$start"
t "kpis (9 weeks)" stage kpis --run-date "$run" --from "$start"
for s in churn growth forecast segments; do t "$s" stage "$s" --run-date "$run"; done
# Reports: every student of the demo platform (--all-students: the 10,000 students with a
# θ, not only the week's active ones) plus the cohort report. Target: under 30 s.
t0=$(date +%s.%N)
out=$("$bin" --lake "$lake" report --week "$run" --run-date "$run" --all-students)
t1=$(date +%s.%N)
n=$(printf '%s\n' "$out" | head -1 | sed -n 's/.*: \([0-9]*\) student report(s).*/\1/p')
# Peer: copying the same report files (the I/O floor of writing them) in this script.
week=$("$bin" --lake "$lake" sql --format csv "SELECT max(week_start) FROM report_artifacts" | tail -1)
src=$("$bin" --lake "$lake" sql --format csv "SELECT url FROM report_artifacts WHERE week_start = '$week' AND student_id IS NULL" | tail -1)
src=${src#file://}
src=$(dirname "$src")
copy=$(mktemp -d)
c0=$(date +%s.%N)
cp -r "$src" "$copy/"
c1=$(date +%s.%N)
rm -rf "$copy"
awk -v n="${n:-?}" -v a="$t0" -v b="$t1" -v c="$c0" -v d="$c1" 'BEGIN {
  s = b - a; cp = d - c
  printf "%-28s %8.2f s\n", "reports (" n " students)", s
  printf "reports: %s student reports + cohort report in %.2f s (%.2f ms per report; target < 30 s: %s); %.1fx the time of copying the same files (%.2f s)\n", n, s, 1000 * s / (n > 0 ? n : 1), (s < 30 ? "met" : "NOT met"), s / (cp > 0 ? cp : 1e-9), cp
}'
phases "$out"
