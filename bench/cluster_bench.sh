#!/usr/bin/env bash
# Benchmark: the cluster on loopback against `quantfleet quantize` on the
# same cores, in one run. Prints Q4_K_M wall time with 1, 2 and 4 local
# workers (threads split between them), the bytes that cross the wire per
# weight, the coordinator's peak RSS, and the transfer rate of a COPY job
# (download + upload, no compute). Checks every artifact against the
# single-machine bytes; then bench/worker_cost_bench.sh (CPU per process and
# the scaling row). Run after scripts/setup.sh:
#
#   bench/cluster_bench.sh [--layers N] [--markdown]
set -euo pipefail
cd "$(dirname "$0")/.."

layers=2
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options layers -- "$@"
bin=build/bin
work=$(pwd)/build/bench
mkdir -p "$work"
model="$work/bench-${layers}l-f16.gguf"
if [[ ! -f "$model" ]]; then
  "$bin/quantfleet-testmodel" --layers "$layers" --embd 4096 --ff 11008 --heads 32 --heads-kv 8 \
    --vocab 32000 --type f16 --seed 7 "$model"
fi
cat "$model" >/dev/null
cores=$(nproc)
weights=$("$bin/quantfleet" inspect --json "$model" | grep '"elements"' | tr -dc '0-9')
model_bytes=$(stat -c %s "$model")

seconds() { /usr/bin/time -o "$work/t.txt" -f "%e" "$@" >/dev/null 2>"$work/err.txt" || { cat "$work/err.txt" >&2; exit 1; }; cat "$work/t.txt"; }

single=$(seconds "$bin/quantfleet" quantize "$model" "$work/single.gguf" Q4_K_M "$cores")
rows=()
for n in 1 2 4; do
  per=$(( cores / n )); (( per >= 1 )) || per=1
  t=$(seconds "$bin/quantfleet" cluster --workers "$n" --threads-per-worker "$per" "$model" "$work/cluster.gguf" Q4_K_M)
  cmp -s "$work/single.gguf" "$work/cluster.gguf" || { echo "bench: $n-worker output differs" >&2; exit 1; }
  rows+=("$n|$per|$t|$(awk -v a="$single" -v b="$t" 'BEGIN{printf "%.2f", a/b}')")
done
out_bytes=$(stat -c %s "$work/single.gguf")
wire=$(awk -v s="$model_bytes" -v o="$out_bytes" -v w="$weights" 'BEGIN{printf "%.2f", 8*(s+o)/w}')
wire_local=$(awk -v o="$out_bytes" -v w="$weights" 'BEGIN{printf "%.2f", 8*o/w}')

# Coordinator peak RSS and a COPY job's transfer rate, with one worker.
port=$(( 20000 + RANDOM % 20000 ))
rm -rf "$work/state"
/usr/bin/time -o "$work/coord-rss.txt" -f "%M" "$bin/quantfleet-coordinator" --listen "127.0.0.1:$port" \
  --state-dir "$work/state" --allow-root "$work" 2>"$work/coordinator.log" &
coord=$!
"$bin/quantfleet-worker" --coordinator "127.0.0.1:$port" --name bench --threads "$cores" 2>"$work/worker.log" &
worker=$!
sleep 1
start=$(date +%s.%N)
"$bin/quantfleet" submit --coordinator "127.0.0.1:$port" --force --watch "$model" "$work/copy.gguf" COPY >/dev/null 2>&1
end=$(date +%s.%N)
"$bin/quantfleet" submit --coordinator "127.0.0.1:$port" --force --watch "$model" "$work/cluster.gguf" Q4_K_M >/dev/null 2>&1
kill -TERM "$worker"; wait "$worker" || true
# The same Q4_K_M job with a worker that reads sources from a data root.
"$bin/quantfleet-worker" --coordinator "127.0.0.1:$port" --name local --threads "$cores" --data-root "$work" \
  2>"$work/worker-local.log" &
worker=$!
t_local=$(seconds "$bin/quantfleet" submit --coordinator "127.0.0.1:$port" --force --watch "$model" "$work/cluster.gguf" Q4_K_M)
cmp -s "$work/single.gguf" "$work/cluster.gguf" || { echo "bench: data-root output differs" >&2; exit 1; }
kill -TERM "$worker"; wait "$worker" || true
# Signal the coordinator itself (the child of the `time` that measures it).
kill -TERM "$(pgrep -P "$coord")" || true
wait "$coord" || true
coord_rss=$(( $(cat "$work/coord-rss.txt") / 1024 ))
copy_rate=$(awk -v b="$model_bytes" -v s="$start" -v e="$end" 'BEGIN{printf "%.2f", 2*b/(e-s)/1e9}')
rm -f "$work/single.gguf" "$work/cluster.gguf" "$work/copy.gguf"

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
if (( markdown )); then
  echo "| setup | threads per worker | Q4_K_M wall time | vs quantfleet quantize ($single s) |"
  echo "|---|---:|---:|---:|"
  for r in "${rows[@]}"; do
    IFS='|' read -r n per t ratio <<<"$r"
    echo "| $n local worker(s) | $per | $t s | $ratio |"
  done
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| bytes on the wire per weight, source streamed | $wire bits ($(awk -v s="$model_bytes" -v o="$out_bytes" 'BEGIN{printf "%.0f", (s+o)/1048576}') MiB for $weights weights) |"
  echo "| bytes on the wire per weight, source read from --data-root | $wire_local bits (results only); Q4_K_M with 1 worker x $cores threads: $t_local s |"
  echo "| coordinator peak RSS, $((model_bytes / 1048576)) MiB model (COPY + Q4_K_M jobs) | $coord_rss MiB |"
  echo "| COPY job through one worker (download + upload, with CRC32C and fsync) | $copy_rate GB/s |"
else
  echo "model: $model ($weights weights, $model_bytes bytes), $cores cores, $cpu"
  echo "quantfleet quantize: $single s"
  for r in "${rows[@]}"; do IFS='|' read -r n per t ratio <<<"$r"; echo "$n workers x $per threads: $t s (ratio $ratio)"; done
  echo "wire: $wire bits per weight streamed, $wire_local from a data root ($t_local s); coordinator peak RSS: $coord_rss MiB; COPY transfer: $copy_rate GB/s"
fi

# CPU seconds per process and the scaling row: two single-thread workers,
# each pinned to its own core, against one pinned local core.
echo
if (( markdown )); then bench/worker_cost_bench.sh --markdown; else bench/worker_cost_bench.sh; fi
