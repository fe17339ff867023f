#!/usr/bin/env bash
# Benchmark: the calibrated methods (`quantfleet quantize --method gptq |
# awq | awq+gptq`) against llama.cpp's own importance-matrix quantization of
# the same type, on the trained pystdlib-tiny model (../shared/models), in
# one run. For each type: llama-imatrix's matrix of calib.txt (`quantfleet
# imatrix`, the same bytes) fed to the pinned llama-quantize, against each
# method over the same text with the same matrix; every file is evaluated
# by `quantfleet eval` against the F16 model over the held-out eval.txt
# (PPL, mean KL divergence, same top token), and must be the size of
# llama.cpp's. Times: imatrix + llama-quantize, and each method's whole run.
#
#   bench/methods_bench.sh [--chunks N] [--markdown]   (run after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

chunks=100
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options chunks -- "$@"
bin=build/bin
oracle=build/oracle
tests/conformance/fetch_oracle.sh "$oracle" >/dev/null
models=$(cd .. && pwd)/shared/models/pystdlib-tiny
[[ -f "$models/model-f16.gguf" ]] || { echo "bench: $models/model-f16.gguf is missing" >&2; exit 1; }
work=$(pwd)/build/bench-methods
mkdir -p "$work"
base=$models/model-f16.gguf
ctx=256
calib_chunks=8

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.2f", e - s}'; }

start=$(now)
"$bin/quantfleet" imatrix -m "$base" -f "$models/calib.txt" -c "$ctx" --chunks "$calib_chunks" \
  -o "$work/imatrix.gguf" >/dev/null 2>&1
imatrix_secs=$(since "$start")
# kld FILE: "PPL KLD same-top%" of FILE against the F16 model over eval.txt.
kld() {
  "$bin/quantfleet" eval --json --base "$base" --model "$1" -f "$models/eval.txt" -c "$ctx" --chunks "$chunks" \
    2>/dev/null | python3 -c 'import json, sys; r = json.load(sys.stdin)
print("%.3f %.6f %.2f" % (r["ppl"]["value"], r["kld"]["value"], 100 * r["same_top"]["value"]))'
}

rows=()
for type in Q4_0 Q3_K_M Q4_K_M IQ4_XS Q5_K_M Q6_K; do
  peer="$work/llama-$type.gguf"
  start=$(now)
  "$oracle/llama-quantize" --imatrix "$work/imatrix.gguf" "$base" "$peer" "$type" >/dev/null 2>&1
  peer_secs=$(awk -v a="$(since "$start")" -v b="$imatrix_secs" 'BEGIN{printf "%.2f", a + b}')
  read -r ppl_p kld_p top_p <<<"$(kld "$peer")"
  rows+=("$type|llama.cpp + imatrix|$(stat -c %s "$peer")|$ppl_p|$kld_p|$top_p|1.00|$peer_secs")
  for variant in awq gptq "gptq --act-order" awq+gptq; do
    read -r -a flags <<<"--method $variant"
    method=$variant
    ours="$work/${variant// /}-$type.gguf"
    start=$(now)
    "$bin/quantfleet" quantize "${flags[@]}" --calibration "$models/calib.txt" --ctx "$ctx" \
      --chunks "$calib_chunks" --imatrix "$work/imatrix.gguf" "$base" "$ours" "$type" >/dev/null 2>"$work/method.log" || {
      cat "$work/method.log" >&2
      exit 1
    }
    secs=$(since "$start")
    [[ $(stat -c %s "$peer") == $(stat -c %s "$ours") ]] || { echo "bench: $type $method: sizes differ" >&2; exit 1; }
    read -r ppl kld_m top <<<"$(kld "$ours")"
    rows+=("$type|$method|$(stat -c %s "$ours")|$ppl|$kld_m|$top|$(awk -v a="$kld_m" -v b="$kld_p" 'BEGIN{printf "%.2f", a/b}')|$secs")
  done
done
read -r ppl_base _ _ <<<"$(kld "$base")"

if (( markdown )); then
  echo "F16 PPL $ppl_base over $chunks chunks of $ctx tokens; calibration: $calib_chunks chunks of calib.txt."
  echo
  echo "| type | method | bytes | PPL | KLD | same top | KLD / llama.cpp's | time |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do
    IFS='|' read -r t m b p k top ratio secs <<<"$r"
    echo "| $t | $m | $b | $p | $k | $top % | $ratio | $secs s |"
  done
else
  for r in "${rows[@]}"; do
    IFS='|' read -r t m b p k top ratio secs <<<"$r"
    echo "$t $m ($b bytes): PPL $p KLD $k same top $top% (KLD ${ratio}x llama.cpp's) in ${secs}s"
  done
fi
