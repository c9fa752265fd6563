#!/usr/bin/env bash
# Calibrate at platform size: for each number of students, a demo lake (generated once
# under OUT/scale-N, 2000 questions, 60 days, seed 42), then `calibrate` of bank `all`
# with the default cap (max_obs 500,000) and uncapped (--max-obs 50000000, the largest allowed), each under
# /usr/bin/time -v. Prints wall time, peak RSS, students with a θ / students in the
# window, and the Stocking–Lord constants A, B of both runs.
# Usage: scale.sh IRTLAKE OUT RUN_DATE N [N ...]
set -euo pipefail
bin=$1 out=$2 run=$3
shift 3
mkdir -p "$out"
q() { "$bin" --lake "$1" sql --format csv "$2" | tail -1; }
printf '%-8s %-9s %8s %9s %19s %8s %8s  %s\n' students run wall_s peak_MiB "with θ / in window" A B sample
for n in "$@"; do
  dir=$(cd "$out" && pwd)/scale-$n
  lake=file://$dir/lake
  if [ ! -d "$dir/lake/attempts" ]; then
    rm -rf "$dir"
    "$bin" --lake "$lake" demo-data --students "$n" --items 2000 --days 60 --seed 42 \
      --truth-dir "$dir/truth" >/dev/null
  fi
  in_window=$(q "$lake" "SELECT count(DISTINCT student_id) FROM attempts WHERE dt <= '$run'")
  for mode in capped uncapped; do
    extra=()
    if [ "$mode" = uncapped ]; then extra=(--max-obs 50000000); fi
    /usr/bin/time -v -o "$dir/time-$mode.txt" \
      "$bin" --lake "$lake" calibrate --run-date "$run" "${extra[@]}" >"$dir/out-$mode.json"
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time-$mode.txt" |
      awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time-$mode.txt")
    scored=$(q "$lake" "SELECT count(*) FROM abilities WHERE run_date = '$run' AND bank = 'all'")
    ab=$(q "$lake" "SELECT round(linking_a, 3) || ' ' || round(linking_b, 3) || ' ' || coalesce(sample, '-') FROM fit_meta WHERE run_date = '$run' AND bank = 'all'")
    read -r a b sample <<<"$ab"
    printf '%-8s %-9s %8.2f %9d %19s %8s %8s  %s\n' "$n" "$mode" "$wall" $((rss / 1024)) \
      "$scored / $in_window" "$a" "$b" "$sample"
  done
done
