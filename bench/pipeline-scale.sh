#!/usr/bin/env bash
# The whole pipeline at platform size, one process per stage invocation, as Step
# Functions runs it: for each "STUDENTS:SHARDS" argument, a demo lake (generated once
# under OUT/scale-STUDENTS: 2000 questions, 60 days, seed 42), then for the run date:
#   calibrate (bank all; the fit, `--scoring shards`), then score_abilities, score_topics,
#   features, kpis, churn, growth, segments and reports once per shard (`--shard K
#   --shards SHARDS`), and forecast once.
# Every invocation runs as its own process under /usr/bin/time -v, one after the other,
# so "peak MiB" is the largest peak resident set (getrusage ru_maxrss of the process) of
# any one invocation of the stage: what one Lambda of that stage needs. "wall s" is the
# sum over the stage's invocations (on one machine, one at a time) and "max shard s" the
# slowest one (what a Distributed Map with enough concurrency waits for). "rows" is what
# the stage's summaries say they wrote. With two or more sizes, the growth exponent
# log(peak_2/peak_1) / log(students_2/students_1) per stage follows (1 = linear in
# students, 0 = flat).
# Usage: pipeline-scale.sh IRTLAKE OUT RUN_DATE STUDENTS:SHARDS [STUDENTS:SHARDS ...]
set -euo pipefail
bin=$1 out=$2 run=$3
shift 3
mkdir -p "$out"
out=$(cd "$out" && pwd)
run_ts="${run}T03:00:00Z"
sharded=(score_abilities score_topics features kpis churn growth segments reports)
summary=$out/pipeline-scale.tsv
: >"$summary"

# Runs one invocation under time; appends "stage wall_s peak_kib rows" to $log.
measure() {
  local stage=$1 log=$2
  shift 2
  local t json
  t=$(mktemp) json=$(mktemp)
  if ! /usr/bin/time -v -o "$t" "$@" >"$json" 2>"$json.err"; then
    echo "pipeline-scale: $stage failed: $*" >&2
    tail -5 "$json.err" >&2
    exit 1
  fi
  local wall rss rows
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$t" |
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$t")
  rows=$(python3 - "$stage" "$json" <<'PY'
import json, re, sys
stage, path = sys.argv[1], sys.argv[2]
fields = {
    "calibrate": ["n_items", "n_students"], "score_abilities": ["rows"], "score_topics": ["rows"], "features": ["rows"],
    "kpis": ["rows"], "churn": ["s_written", "churn_fit_rows"],
    "growth": ["p_written", "growth_fit_rows"], "forecast": ["forecast_rows", "anomaly_rows"],
    "segments": ["students"], "reports": ["student_reports", "cohort_reports"],
}[stage]
total = 0
for line in open(path):
    line = line.strip()
    m = re.search(r"(\d+) student report\(s\)", line)
    if stage == "reports" and m:
        total += int(m.group(1))
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        total += sum(int(doc.get(f) or 0) for f in fields if isinstance(doc.get(f), (int, float)))
print(total)
PY
  )
  echo "$stage $wall $rss $rows" >>"$log"
  rm -f "$t" "$json" "$json.err"
}

for spec in "$@"; do
  n=${spec%%:*} shards=${spec##*:}
  dir=$out/scale-$n
  lake=file://$dir/lake
  if [ ! -d "$dir/lake/attempts" ]; then
    rm -rf "$dir"
    echo "== generating $n students (2000 questions, 60 days)" >&2
    "$bin" --lake "$lake" demo-data --students "$n" --items 2000 --days 60 --seed 42 \
      --truth-dir "$dir/truth" >/dev/null
  fi
  log=$dir/invocations.txt
  : >"$log"
  echo "== $n students, $shards shards" >&2
  measure calibrate "$log" "$bin" --lake "$lake" calibrate --run-date "$run" --scoring shards
  for stage in "${sharded[@]}"; do
    for ((k = 0; k < shards; k++)); do
      if [ "$stage" = reports ]; then
        measure reports "$log" "$bin" --lake "$lake" report --run-date "$run" \
          --run-ts "$run_ts" --shard "$k" --shards "$shards"
      else
        measure "$stage" "$log" "$bin" --lake "$lake" stage "${stage//_/-}" --run-date "$run" \
          --shard "$k" --shards "$shards"
      fi
    done
  done
  measure forecast "$log" "$bin" --lake "$lake" stage forecast --run-date "$run"
  awk -v n="$n" -v s="$shards" '
    { st = $1; if (!(st in wall)) order[++k] = st
      wall[st] += $2; if ($2 > slow[st]) slow[st] = $2
      if ($3 > peak[st]) peak[st] = $3; rows[st] += $4; calls[st]++ }
    END { for (i = 1; i <= k; i++) { st = order[i]
      printf "%s\t%s\t%s\t%d\t%.2f\t%.2f\t%d\t%d\n", n, s, st, calls[st], wall[st], slow[st], peak[st] / 1024, rows[st] } }
  ' "$log" >>"$summary"
done

printf '%-9s %-6s %-16s %5s %8s %11s %9s %10s\n' students shards stage calls wall_s max_shard_s peak_MiB rows
while IFS=$'\t' read -r n s st calls wall slow peak rows; do
  printf '%-9s %-6s %-16s %5s %8s %11s %9s %10s\n' "$n" "$s" "$st" "$calls" "$wall" "$slow" "$peak" "$rows"
done <"$summary"

# Growth exponents between the first and the last size.
sizes=$(cut -f1 "$summary" | uniq)
first=$(echo "$sizes" | head -1) last=$(echo "$sizes" | tail -1)
if [ "$first" != "$last" ]; then
  echo
  echo "growth exponent per stage, $first -> $last students: log(ratio) / log($last / $first)"
  printf '%-16s %16s %22s\n' stage "peak (per call)" "wall (all calls)"
  awk -F'\t' -v a="$first" -v b="$last" '
    $1 == a { pa[$3] = $7; wa[$3] = $5; order[++k] = $3 }
    $1 == b { pb[$3] = $7; wb[$3] = $5 }
    END { r = log(b / a); for (i = 1; i <= k; i++) { st = order[i]
      if (st in pb && pa[st] > 0 && wa[st] > 0)
        printf "%-16s %16.2f %22.2f\n", st, log(pb[st] / pa[st]) / r, log(wb[st] / wa[st]) / r } }
  ' "$summary"
fi
