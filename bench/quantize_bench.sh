#!/usr/bin/env bash
# Benchmark: `quantfleet quantize` against llama.cpp's llama-quantize on the
# same generated model (7B-shaped rows: 4096 x 11008), at the same thread
# count, in one run. Prints time(llama-quantize) / time(quantfleet) per type
# and the peak resident memory of both, and checks the outputs are the same
# bytes. Not part of ctest; run after scripts/setup.sh:
#
#   bench/quantize_bench.sh [--layers N] [--threads N] [--types "Q8_0 Q4_K_M"] [--markdown]
set -euo pipefail
cd "$(dirname "$0")/.."

layers=2
threads=$(nproc)
types="Q8_0 Q4_0 Q4_K_M Q6_K IQ4_XS"
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options layers threads types -- "$@"

oracle=build/oracle
tests/conformance/fetch_oracle.sh "$oracle" >/dev/null
work=build/bench
mkdir -p "$work"
model="$work/bench-${layers}l-f16.gguf"
if [[ ! -f "$model" ]]; then
  echo "bench: generating $model ($layers layers, 4096 x 11008 FFN, 32000 vocab, F16)" >&2
  build/bin/quantfleet-testmodel --layers "$layers" --embd 4096 --ff 11008 --heads 32 --heads-kv 8 \
    --vocab 32000 --type f16 --seed 7 "$model"
fi
cat "$model" >/dev/null  # both tools start from a warm page cache

measure() {  # runs a command; prints "seconds max_rss_kb"
  /usr/bin/time -o "$work/time.txt" -f "%e %M" "$@" >/dev/null 2>"$work/stderr.txt" || {
    echo "bench: failed: $*" >&2
    tail -n 5 "$work/stderr.txt" >&2
    exit 1
  }
  cat "$work/time.txt"
}

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
params=$(build/bin/quantfleet inspect --json "$model" | grep '"elements"' | tr -dc '0-9')
if (( markdown )); then
  echo "| type | llama-quantize | quantfleet | speed ratio | peak RSS llama-quantize | peak RSS quantfleet | same bytes |"
  echo "|---|---:|---:|---:|---:|---:|---|"
else
  echo "model: $model ($params weights), $threads threads, $cpu"
  printf "%-8s %16s %12s %8s %16s %12s %6s\n" type llama-quantize quantfleet ratio rss-llama rss-ours same
fi
for t in $types; do
  read -r t_ref rss_ref < <(measure "$oracle/llama-quantize" "$model" "$work/ref.gguf" "$t" "$threads")
  read -r t_ours rss_ours < <(measure build/bin/quantfleet quantize "$model" "$work/ours.gguf" "$t" "$threads")
  same=no
  cmp -s "$work/ref.gguf" "$work/ours.gguf" && same=yes
  ratio=$(awk -v a="$t_ref" -v b="$t_ours" 'BEGIN { printf "%.2f", a / b }')
  if (( markdown )); then
    printf "| %s | %.2f s | %.2f s | **%s** | %d MiB | %d MiB | %s |\n" "$t" "$t_ref" "$t_ours" "$ratio" \
      $((rss_ref / 1024)) $((rss_ours / 1024)) "$same"
  else
    printf "%-8s %14.2f s %10.2f s %8s %12d MiB %8d MiB %6s\n" "$t" "$t_ref" "$t_ours" "$ratio" \
      $((rss_ref / 1024)) $((rss_ours / 1024)) "$same"
  fi
  rm -f "$work/ref.gguf" "$work/ours.gguf"
  [[ $same == yes ]] || { echo "bench: outputs differ for $t" >&2; exit 1; }
done
