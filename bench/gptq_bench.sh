#!/usr/bin/env bash
# Benchmark: GPTQ GGUF against llama.cpp's own importance-matrix
# quantization of the same type, on the trained pystdlib-tiny model
# (../shared/models), in one run. For each type: llama-imatrix's matrix of
# calib.txt (`quantfleet imatrix`, the same bytes) fed to the pinned
# llama-quantize, against `quantfleet quantize --method gptq` over the same
# text with the same matrix; both files are evaluated by `quantfleet eval`
# against the F16 model over the held-out eval.txt (PPL, mean KL
# divergence, same top token). The files must be the same size. Also the
# time of imatrix + quantize against the GPTQ run (Hessians included).
#
#   bench/gptq_bench.sh [--chunks N] [--markdown]   (run after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

chunks=100
markdown=0
while (( $# )); do
  case "$1" in
    --chunks) chunks=$2; shift 2 ;;
    --markdown) markdown=1; shift ;;
    *) echo "usage: $0 [--chunks N] [--markdown]" >&2; exit 1 ;;
  esac
done
bin=build/bin
oracle=build/oracle
tests/conformance/fetch_oracle.sh "$oracle" >/dev/null
models=$(cd .. && pwd)/shared/models/pystdlib-tiny
[[ -f "$models/model-f16.gguf" ]] || { echo "bench: $models/model-f16.gguf is missing" >&2; exit 1; }
work=$(pwd)/build/bench-gptq
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
  ours="$work/gptq-$type.gguf"
  start=$(now)
  "$oracle/llama-quantize" --imatrix "$work/imatrix.gguf" "$base" "$peer" "$type" >/dev/null 2>&1
  peer_secs=$(awk -v a="$(since "$start")" -v b="$imatrix_secs" 'BEGIN{printf "%.2f", a + b}')
  start=$(now)
  "$bin/quantfleet" quantize --method gptq --calibration "$models/calib.txt" --ctx "$ctx" --chunks "$calib_chunks" \
    --imatrix "$work/imatrix.gguf" "$base" "$ours" "$type" >/dev/null 2>"$work/gptq.log" || {
    cat "$work/gptq.log" >&2
    exit 1
  }
  ours_secs=$(since "$start")
  [[ $(stat -c %s "$peer") == $(stat -c %s "$ours") ]] || { echo "bench: $type sizes differ" >&2; exit 1; }
  read -r ppl_p kld_p top_p <<<"$(kld "$peer")"
  read -r ppl_o kld_o top_o <<<"$(kld "$ours")"
  rows+=("$type|$(stat -c %s "$ours")|$ppl_p|$kld_p|$top_p|$ppl_o|$kld_o|$top_o|$peer_secs|$ours_secs")
done
read -r ppl_base _ _ <<<"$(kld "$base")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
if (( markdown )); then
  echo "F16 PPL $ppl_base over $chunks chunks of $ctx tokens; calibration: $calib_chunks chunks of calib.txt."
  echo
  echo "| type | bytes | llama.cpp + imatrix PPL | KLD | same top | GPTQ PPL | KLD | same top | KLD ratio | time imatrix + llama-quantize | time GPTQ |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do
    IFS='|' read -r t b pp kp tp po ko to sp so <<<"$r"
    echo "| $t | $b | $pp | $kp | $tp % | $po | $ko | $to % | $(ratio "$ko" "$kp") | $sp s | $so s |"
  done
else
  for r in "${rows[@]}"; do
    IFS='|' read -r t b pp kp tp po ko to sp so <<<"$r"
    echo "$t ($b bytes): llama.cpp+imatrix PPL $pp KLD $kp top $tp% (${sp}s); GPTQ PPL $po KLD $ko top $to% (${so}s); KLD ratio $(ratio "$ko" "$kp")"
  done
fi
