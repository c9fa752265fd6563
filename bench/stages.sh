#!/usr/bin/env bash
# Times every stage of the pipeline on the demo platform (10,000 students, 400
# questions, 60 days) with the release binary. Usage: stages.sh IRTLAKE LAKE TRUTH START RUN
set -euo pipefail
bin=$1 lake=$2 truth=$3 start=$4 run=$5
t() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" --lake "$lake" "$@" >/dev/null
  t1=$(date +%s.%N)
  awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { printf "%-28s %8.2f s\n", n, b - a }'
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
