#!/usr/bin/env bash
# Benchmark: a Hugging Face checkpoint to Q4_K_M, two ways, on the same
# cores in one run: `quantfleet quantize HF_DIR out.gguf Q4_K_M` (converts
# on the fly, no intermediate file) against llama.cpp's convert_hf_to_gguf.py
# (BF16 GGUF) then llama-quantize. Prints the wall time, peak RSS and peak
# disk of both and checks the two Q4_K_M files are the same bytes. The
# checkpoint is generated: 7B-shaped rows (4096 x 11008), BF16, two shards,
# Llama's SentencePiece vocabulary. Not part of ctest; run after
# scripts/setup.sh:
#
#   bench/convert_bench.sh [--layers N] [--threads N] [--type Q4_K_M] [--markdown]
set -euo pipefail
cd "$(dirname "$0")/.."

layers=2
threads=$(nproc)
type=Q4_K_M
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options layers threads type -- "$@"

oracle=build/oracle
tests/conformance/fetch_oracle.sh "$oracle" >/dev/null
work=build/bench/convert
mkdir -p "$work"
source_gguf="$work/source-${layers}l.gguf"
checkpoint="$work/Bench-${layers}L-hf"
if [[ ! -d "$checkpoint" ]]; then
  echo "bench: generating $checkpoint ($layers layers, 4096 x 11008 FFN, Llama vocabulary, BF16, 2 shards)" >&2
  build/bin/quantfleet-testmodel --layers "$layers" --embd 4096 --ff 11008 --heads 32 --heads-kv 8 --type bf16 \
    --seed 7 --vocab-from "$oracle/llama.cpp/models/ggml-vocab-llama-spm.gguf" "$source_gguf"
  build/bin/quantfleet-hf-checkpoint --dtype BF16 --shards 2 "$source_gguf" "$checkpoint"
  rm -f "$source_gguf"
fi
cat "$checkpoint"/*.safetensors >/dev/null  # both start from a warm page cache

measure() {  # runs a command; prints "seconds max_rss_kb"
  /usr/bin/time -o "$work/time.txt" -f "%e %M" "$@" >/dev/null 2>"$work/stderr.txt" || {
    echo "bench: failed: $*" >&2
    tail -n 5 "$work/stderr.txt" >&2
    exit 1
  }
  cat "$work/time.txt"
}

rm -f "$work"/*.gguf
read -r t_convert rss_convert < <(measure env PYTHONPATH=tests/conformance/hf_standin \
  QUANTFLEET_HF_TOKENIZERS="$oracle/hf-tokenizers/package" /usr/bin/python3 \
  "$oracle/llama.cpp/convert_hf_to_gguf.py" "$checkpoint" --outfile "$work/intermediate.gguf")
read -r t_quantize rss_quantize < <(measure "$oracle/llama-quantize" "$work/intermediate.gguf" "$work/ref.gguf" \
  "$type" "$threads")
disk_ref=$(( $(stat -c %s "$work/intermediate.gguf") + $(stat -c %s "$work/ref.gguf") ))
read -r t_ours rss_ours < <(measure build/bin/quantfleet quantize "$checkpoint" "$work/ours.gguf" "$type" "$threads")
disk_ours=$(stat -c %s "$work/ours.gguf")
same=no
cmp -s "$work/ref.gguf" "$work/ours.gguf" && same=yes

t_ref=$(echo "$t_convert + $t_quantize" | bc -l)
rss_ref=$(( rss_convert > rss_quantize ? rss_convert : rss_quantize ))
ratio=$(printf "%.2f" "$(echo "$t_ref / $t_ours" | bc -l)")
mib() { echo $(( $1 / 1048576 )); }
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
checkpoint_mib=$(( $(du -sb "$checkpoint" | cut -f1) / 1048576 ))
if (( markdown )); then
  echo "| path | wall time | peak RSS | peak disk written | same bytes |"
  echo "|---|---:|---:|---:|---|"
  printf "| convert_hf_to_gguf.py (%.1f s) + llama-quantize (%.1f s) | %.1f s | %d MiB | %d MiB | |\n" \
    "$t_convert" "$t_quantize" "$t_ref" $(( rss_ref / 1024 )) "$(mib "$disk_ref")"
  printf "| quantfleet quantize HF_DIR | %.1f s (%sx) | %d MiB | %d MiB | %s |\n" \
    "$t_ours" "$ratio" $(( rss_ours / 1024 )) "$(mib "$disk_ours")" "$same"
else
  echo "checkpoint: $checkpoint ($checkpoint_mib MiB BF16), $type, $threads threads, $cpu"
  printf "convert_hf_to_gguf.py + llama-quantize: %.1f s (%.1f + %.1f), peak RSS %d MiB, peak disk %d MiB\n" \
    "$t_ref" "$t_convert" "$t_quantize" $(( rss_ref / 1024 )) "$(mib "$disk_ref")"
  printf "quantfleet quantize HF_DIR:             %.1f s, peak RSS %d MiB, peak disk %d MiB\n" \
    "$t_ours" $(( rss_ours / 1024 )) "$(mib "$disk_ours")"
  echo "speed ratio: ${ratio}x; same bytes: $same"
fi
[[ $same == yes ]]
