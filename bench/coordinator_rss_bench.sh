#!/usr/bin/env bash
# Coordinator memory on a model of several GiB: a 3.2 GiB F16 model (8 layers
# of 7B-shaped rows) goes through a coordinator and one worker twice: Q8_0
# with sources streamed, then Q4_K_M with a --data-root worker. Prints both
# wall times and the coordinator's peak RSS. Run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
w=$(pwd)/build/bench
mkdir -p "$w"
m=$w/bench-8l-f16.gguf
[[ -f $m ]] || build/bin/quantfleet-testmodel --layers 8 --embd 4096 --ff 11008 --heads 32 --heads-kv 8 \
  --vocab 32000 --type f16 --seed 9 "$m"
port=$(( 20000 + RANDOM % 20000 ))
rm -rf "$w/state-big"
/usr/bin/time -o "$w/big-rss.txt" -f "%M" build/bin/quantfleet-coordinator --listen "127.0.0.1:$port" \
  --state-dir "$w/state-big" --allow-root "$w" --drain-seconds 0 2>"$w/big-coord.log" &
coord=$!
run_job() {  # worker flags..., then: type output
  local type=$1 out=$2; shift 2
  build/bin/quantfleet-worker --coordinator "127.0.0.1:$port" --threads "$(nproc)" "$@" 2>>"$w/big-worker.log" &
  local worker=$! start end
  start=$(date +%s.%N)
  build/bin/quantfleet submit --coordinator "127.0.0.1:$port" --force --watch "$m" "$out" "$type" >/dev/null 2>&1
  end=$(date +%s.%N)
  kill -TERM "$worker"; wait "$worker" || true
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }'
}
t_stream=$(run_job Q8_0 "$w/big-q8.gguf" --name streamed)
t_local=$(run_job Q4_K_M "$w/big-q4.gguf" --name local --data-root "$w")
kill -TERM "$(pgrep -P "$coord")" || true
wait "$coord" || true
echo "model $(( $(stat -c %s "$m") / 1048576 )) MiB: Q8_0 streamed ${t_stream} s, Q4_K_M from a data root ${t_local} s," \
  "coordinator peak RSS $(( $(cat "$w/big-rss.txt") / 1024 )) MiB"
rm -f "$w/big-q8.gguf" "$w/big-q4.gguf"
