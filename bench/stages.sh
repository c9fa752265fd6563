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
