#!/usr/bin/env bash
# Benchmark: the best mix for a size against llama.cpp's recipes at the same
# size, on the trained pystdlib-tiny model (../shared/models), in one run.
# For Q3_K_M, Q4_K_M and Q5_K_M (with the imatrix of calib.txt), the recipe's
# file size is the target of `quantfleet quantize --target-size` (measured
# on calib.txt); both files are evaluated by `quantfleet eval` against the
# F16 model over the held-out eval.txt.
#
#   bench/budget_bench.sh [--chunks N] [--markdown]   (run after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

chunks=100
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options chunks -- "$@"
bin=build/bin
models=$(cd .. && pwd)/shared/models/pystdlib-tiny
[[ -f "$models/model-f16.gguf" ]] || { echo "bench: $models/model-f16.gguf is missing" >&2; exit 1; }
work=$(pwd)/build/bench-budget
mkdir -p "$work"
base=$models/model-f16.gguf
ctx=256

"$bin/quantfleet" imatrix -m "$base" -f "$models/calib.txt" -c "$ctx" -o "$work/imatrix.gguf" >/dev/null 2>&1
# kld FILE: "PPL KLD same-top%" of FILE against the F16 model over eval.txt.
kld() {
  "$bin/quantfleet" eval --json --base "$base" --model "$1" -f "$models/eval.txt" -c "$ctx" --chunks "$chunks" \
    2>/dev/null | python3 -c 'import json, sys; r = json.load(sys.stdin)
print("%.3f %.6f %.2f" % (r["ppl"]["value"], r["kld"]["value"], 100 * r["same_top"]["value"]))'
}

rows=()
for type in Q3_K_M Q4_K_M Q5_K_M; do
  recipe="$work/$type.gguf"
  mix="$work/$type-size.gguf"
  "$bin/quantfleet" quantize --imatrix "$work/imatrix.gguf" "$base" "$recipe" "$type" >/dev/null 2>&1
  size=$(stat -c %s "$recipe")
  start=$(date +%s.%N)
  "$bin/quantfleet" quantize --imatrix "$work/imatrix.gguf" --target-size "$size" --calibration "$models/calib.txt" \
    "$base" "$mix" "$type" >/dev/null 2>"$work/mix.log" || { cat "$work/mix.log" >&2; exit 1; }
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.0f", e - s}')
  read -r ppl_r kld_r top_r <<<"$(kld "$recipe")"
  read -r ppl_m kld_m top_m <<<"$(kld "$mix")"
  rows+=("$type|$size|$(stat -c %s "$mix")|$ppl_r|$kld_r|$top_r|$ppl_m|$kld_m|$top_m|$secs")
done

if (( markdown )); then
  echo "| size of | recipe bytes | best-mix bytes | recipe PPL | recipe KLD | recipe same top | best-mix PPL | best-mix KLD | best-mix same top | KLD ratio | choosing took |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do
    IFS='|' read -r t sr sm pr kr tr pm km tm secs <<<"$r"
    echo "| $t | $sr | $sm | $pr | $kr | $tr % | $pm | $km | $tm % | $(awk -v a="$km" -v b="$kr" 'BEGIN{printf "%.2f", a/b}') | $secs s |"
  done
else
  for r in "${rows[@]}"; do
    IFS='|' read -r t sr sm pr kr tr pm km tm secs <<<"$r"
    echo "$t: recipe $sr bytes PPL $pr KLD $kr same top $tr%; best mix $sm bytes PPL $pm KLD $km same top $tm% (chosen in ${secs}s)"
  done
fi
