#!/usr/bin/env bash
# Benchmark: GPTQ and AWQ+GPTQ on the cluster (`quantfleet cluster`: a
# coordinator and workers on loopback, one layer task at a time, the other
# tensors as row tasks beside it) against `quantfleet quantize --method` on
# the same cores, in one run. The model is synthetic (1024 wide, seeded)
# with the trained pystdlib-tiny model's tokenizer, so the calibration text
# runs through it; the text is its calib.txt (8 chunks of 256). Prints each
# run's wall time, its ratio to the one-machine run, the one-machine run's
# peak RSS (what a worker holding a layer needs, less the mapped model),
# and checks every cluster artifact against the one-machine bytes.
#
#   bench/layerwise_bench.sh [--layers N] [--markdown]   (run after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

layers=4
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options layers -- "$@"
bin=build/bin
models=$(cd .. && pwd)/shared/models/pystdlib-tiny
[[ -f "$models/model-f16.gguf" ]] || { echo "bench: $models/model-f16.gguf is missing" >&2; exit 1; }
work=$(pwd)/build/bench-layerwise
mkdir -p "$work"
model="$work/layerwise-${layers}l-f16.gguf"
if [[ ! -f "$model" ]]; then
  "$bin/quantfleet-testmodel" --layers "$layers" --embd 1024 --ff 2816 --heads 16 --heads-kv 4 --type f16 \
    --plain --seed 11 --vocab-from "$models/model-f16.gguf" "$model"
fi
cp "$models/calib.txt" "$work/calib.txt"
cores=$(nproc)

# run NAME CMD...: wall seconds and peak RSS (KiB) of CMD into $secs and $rss.
run() {
  /usr/bin/time -o "$work/t.txt" -f "%e %M" "${@:2}" >"$work/$1.out" 2>&1 || { cat "$work/$1.out" >&2; exit 1; }
  read -r secs rss <"$work/t.txt"
}

rows=()
for method in gptq awq+gptq; do
  flags=(--method "$method" --calibration "$work/calib.txt" --chunks 8 --ctx 256)
  run local "$bin/quantfleet" quantize "${flags[@]}" "$model" "$work/local.gguf" Q4_K_M "$cores"
  local_secs=$secs
  local_rss=$((rss / 1024))
  row="$method|$local_secs s|$local_rss MiB"
  for workers in 1 2; do
    run cluster "$bin/quantfleet" cluster --workers "$workers" --threads-per-worker $((cores / workers > 0 ? cores / workers : 1)) \
      "${flags[@]}" "$model" "$work/cluster.gguf" Q4_K_M
    cmp -s "$work/local.gguf" "$work/cluster.gguf" || { echo "bench: $method on $workers workers: not the local bytes" >&2; exit 1; }
    row+="|$secs s ($(awk -v a="$secs" -v b="$local_secs" 'BEGIN{printf "%.2fx", a / b}'))"
  done
  rows+=("$row")
done

header="| method | quantize --method | its peak RSS | cluster, 1 worker | cluster, 2 workers |"
echo "Q4_K_M of a $layers-layer 1024-wide model on $cores cores; every cluster artifact equals the one-machine file."
if (( markdown )); then
  echo "$header"
  echo "|---|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
else
  for r in "${rows[@]}"; do echo "$r" | tr '|' '\t'; done
fi
