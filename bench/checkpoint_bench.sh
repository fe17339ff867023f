#!/usr/bin/env bash
# Benchmark: GPTQ and AWQ checkpoints (the formats vLLM and transformers
# load) of the trained model in ../shared/models/pystdlib-tiny, written from
# its Hugging Face folder by `quantize --method gptq|awq --format ...`,
# against rounding to nearest on the same grid (`--method rtn`) and, for
# scale, llama.cpp's Q4_K_M with an importance matrix (the bytes
# llama-quantize writes), all in one run. Each checkpoint is read back by
# the format's definition (quantfleet-checkpoint-dequantize) and measured
# by `quantfleet eval` against the unquantized folder over the held-out
# text. Not part of ctest:
#
#   bench/checkpoint_bench.sh [--chunks N] [--markdown]
set -euo pipefail
cd "$(dirname "$0")/.."

chunks=100
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options chunks -- "$@"
shared=../shared/models/pystdlib-tiny
work=build/bench/checkpoint
rm -rf "$work"
mkdir -p "$work"
build/bin/quantfleet-hf-checkpoint "$shared/model-f16.gguf" "$work/pystdlib-tiny"
threads=$(nproc)

measure() {  # measure LABEL FOLDER_OR_GGUF BYTES
  local report
  report=$(build/bin/quantfleet eval --base "$work/pystdlib-tiny" --model "$2" -f "$shared/eval.txt" -c 256 \
    --chunks "$chunks" -t "$threads" --json 2>/dev/null)
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("%s|%s|%.3f|%.6f|%.2f" % (sys.argv[2], sys.argv[3], r["ppl"]["value"], r["kld"]["value"], 100 * r["same_top"]["value"]))
' "$report" "$1" "$3"
}

rows=()
for spec in "gptq 4 128 sym" "gptq 4 128 asym" "gptq 3 128 sym" "gptq 8 128 sym" "awq 4 128 zero" "awq 4 64 zero"; do
  read -r format bits group grid <<<"$spec"
  flags=(--bits "$bits" --group-size "$group")
  [[ $grid == asym ]] && flags+=(--asym)
  methods=(rtn "$format")
  [[ $format == awq ]] && methods=(rtn "awq --no-clip" awq)  # AWQ's scales alone, then with clipping
  for method in "${methods[@]}"; do
    out="$work/$format-${method// /}-$bits-$group-$grid"
    calibration=()
    [[ $method != rtn ]] && calibration=(--calibration "$shared/calib.txt")
    read -r -a method_flags <<<"$method"
    build/bin/quantfleet quantize --method "${method_flags[@]}" --format "$format" "${calibration[@]}" "${flags[@]}" \
      "$work/pystdlib-tiny" "$out" "$threads" >/dev/null 2>&1
    build/bin/quantfleet-checkpoint-dequantize "$out" "$out-dequantized"
    rows+=("$(measure "$format $bits-bit g$group $grid, $method" "$out-dequantized" \
      "$(stat -c %s "$out/model.safetensors")")")
  done
done
build/bin/quantfleet imatrix -m "$work/pystdlib-tiny" -f "$shared/calib.txt" -c 256 --chunks 8 -t "$threads" \
  -o "$work/imatrix.gguf" >/dev/null 2>&1
build/bin/quantfleet quantize --imatrix "$work/imatrix.gguf" "$work/pystdlib-tiny" "$work/q4km.gguf" Q4_K_M \
  "$threads" >/dev/null
rows+=("$(measure "GGUF Q4_K_M + imatrix (llama.cpp's bytes)" "$work/q4km.gguf" "$(stat -c %s "$work/q4km.gguf")")")

if (( markdown )); then
  echo "| checkpoint | file bytes | PPL | KLD | same top |"
  echo "|---|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do IFS='|' read -r a b c d e <<<"$r"; echo "| $a | $b | $c | $d | $e % |"; done
else
  printf "%-44s %12s %9s %10s %9s\n" checkpoint bytes PPL KLD same-top
  for r in "${rows[@]}"; do IFS='|' read -r a b c d e <<<"$r"; printf "%-44s %12s %9s %10s %8s%%\n" "$a" "$b" "$c" "$d" "$e"; done
fi
