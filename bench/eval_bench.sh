#!/usr/bin/env bash
# Benchmark: quality and evaluation speed on the trained pystdlib-tiny model
# (../shared/models), in one run on this machine.
#
# Quality: each file type, quantized by quantfleet with and without an
# importance matrix (computed by `quantfleet imatrix` over calib.txt), is
# measured by `quantfleet eval` against the F16 model over eval.txt: size,
# bits per weight, perplexity, the perplexity ratio, mean KL divergence and
# how often the top token is the same.
# Speed: `quantfleet eval` (both models, side by side) against llama.cpp's
# llama-perplexity doing the same in its two runs (--kl-divergence-base,
# then --kl-divergence), on the same text, context and cores; tokens/s
# counts the tokens scored per run over its wall time.
#
#   bench/eval_bench.sh [--chunks N] [--markdown]   (run after scripts/setup.sh and one ctest run)
set -euo pipefail
cd "$(dirname "$0")/.."

chunks=100
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options chunks -- "$@"
bin=build/bin
oracle=build/oracle
models=$(cd .. && pwd)/shared/models/pystdlib-tiny
[[ -f "$models/model-f16.gguf" ]] || { echo "bench: $models/model-f16.gguf is missing" >&2; exit 1; }
tests/conformance/fetch_oracle.sh "$oracle" >/dev/null
work=$(pwd)/build/bench-eval
mkdir -p "$work"
base=$models/model-f16.gguf
ctx=256
threads=$(nproc)

"$bin/quantfleet" imatrix -m "$base" -f "$models/calib.txt" -c "$ctx" -o "$work/imatrix.gguf" >/dev/null 2>&1
weights=$("$bin/quantfleet" inspect --json "$base" | grep '"elements"' | tr -dc '0-9')

rows=()
for type in Q8_0 Q6_K Q5_K_M Q4_K_M IQ4_XS Q4_0 Q3_K_M Q2_K; do
  for im in no yes; do
    out="$work/$type-$im.gguf"
    if [[ $im == yes ]]; then
      "$bin/quantfleet" quantize --imatrix "$work/imatrix.gguf" "$base" "$out" "$type" >/dev/null 2>&1
    else
      "$bin/quantfleet" quantize "$base" "$out" "$type" >/dev/null 2>&1
    fi
    size=$(stat -c %s "$out")
    report=$("$bin/quantfleet" eval --json --base "$base" --model "$out" -f "$models/eval.txt" -c "$ctx" \
      --chunks "$chunks" 2>/dev/null)
    rows+=("$(python3 -c '
import json, sys
r = json.loads(sys.argv[1]); size = int(sys.argv[2]); weights = int(sys.argv[3])
print("%s|%s|%.2f|%.2f|%.3f|%.4f|%.6f|%.2f" % (sys.argv[4], sys.argv[5], size / 1048576, 8 * size / weights,
      r["ppl"]["value"], r["ppl_ratio"]["value"], r["kld"]["value"], 100 * r["same_top"]["value"]))
' "$report" "$size" "$weights" "$type" "$im")")
  done
done

# Speed, Q4_K_M: ours in one run, llama-perplexity in its two.
timed() { /usr/bin/time -o "$work/t.txt" -f "%e" "$@" >"$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }; cat "$work/t.txt"; }
q=$work/Q4_K_M-yes.gguf
ours=$(timed "$bin/quantfleet" eval --base "$base" --model "$q" -f "$models/eval.txt" -c "$ctx" --chunks "$chunks" -t "$threads")
ref_base=$(timed "$oracle/llama-perplexity" -m "$base" -f "$models/eval.txt" -c "$ctx" -b "$ctx" --chunks "$chunks" \
  -fa off -t "$threads" --kl-divergence-base "$work/base.logits")
logits_bytes=$(stat -c %s "$work/base.logits")
ref_kld=$(timed "$oracle/llama-perplexity" -m "$q" -c "$ctx" -b "$ctx" -fa off -t "$threads" \
  --kl-divergence-base "$work/base.logits" --kl-divergence)
rm -f "$work/base.logits"
scored=$(( chunks * (ctx - 1 - ctx / 2) ))
speed=$(awk -v o="$ours" -v a="$ref_base" -v b="$ref_kld" -v n="$scored" \
  'BEGIN{printf "%.0f|%.0f|%.2f", n / o, n / (a + b), (a + b) / o}')
IFS='|' read -r ours_tps ref_tps ratio <<<"$speed"

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
if (( markdown )); then
  echo "| type | imatrix | size | bits/weight | PPL | PPL ratio | mean KLD | same top |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do
    IFS='|' read -r t im mib bpw ppl ratio_q kld top <<<"$r"
    echo "| $t | $im | $mib MiB | $bpw | $ppl | $ratio_q | $kld | $top % |"
  done
  echo
  echo "| evaluation, Q4_K_M against F16, $chunks chunks of $ctx | wall | scored tokens/s |"
  echo "|---|---:|---:|"
  echo "| quantfleet eval (one run, no logits file) | $ours s | $ours_tps |"
  echo "| llama-perplexity --kl-divergence-base, then --kl-divergence ($((logits_bytes / 1048576)) MiB logits file) | $ref_base + $ref_kld s | $ref_tps |"
  echo "| ratio | | $ratio |"
else
  echo "model: $base ($weights weights), $chunks chunks of $ctx tokens of eval.txt, $threads threads, $cpu"
  for r in "${rows[@]}"; do
    IFS='|' read -r t im mib bpw ppl ratio_q kld top <<<"$r"
    echo "$t (imatrix: $im): $mib MiB, $bpw bpw, PPL $ppl (x$ratio_q), KLD $kld, same top $top %"
  done
  echo "eval speed: quantfleet ${ours}s ($ours_tps tokens/s) vs llama-perplexity ${ref_base}s + ${ref_kld}s ($ref_tps tokens/s, logits file $((logits_bytes / 1048576)) MiB): ratio $ratio"
fi
