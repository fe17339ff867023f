#!/usr/bin/env bash
# Benchmark: what a worker costs per weight against `quantfleet quantize`,
# measured in one run on this machine. For each type, one core runs the
# local quantization (pinned), then a coordinator and two single-thread
# workers, each pinned to its own core, run the same job with the source
# streamed and then read from a --data-root. Prints wall time and CPU
# seconds per process (user + system, from GNU time), the workers' CPU
# against the local run's, the two-worker speed-up over one local core, and
# the coordinator's CPU against the workers'. Every artifact is checked
# against the local bytes. Run after scripts/setup.sh:
#
#   bench/worker_cost_bench.sh [--markdown] [TYPE...]   (default: Q4_K_M Q6_K IQ4_XS)
set -euo pipefail
cd "$(dirname "$0")/.."

markdown=0
types=()
for a in "$@"; do
  case "$a" in
    --markdown) markdown=1 ;;
    -*) echo "usage: $0 [--markdown] [TYPE...]" >&2; exit 1 ;;
    *) types+=("$a") ;;
  esac
done
(( ${#types[@]} )) || types=(Q4_K_M Q6_K IQ4_XS)
(( $(nproc) >= 2 )) || { echo "bench: needs two cores" >&2; exit 1; }

bin=$(pwd)/build/bin
work=$(pwd)/build/bench-worker-cost
mkdir -p "$work"
model="$work/model-f16.gguf"
if [[ ! -f "$model" ]]; then
  "$bin/quantfleet-testmodel" --layers 4 --embd 2048 --ff 5632 --heads 16 --heads-kv 4 --vocab 32000 \
    --type f16 --seed 7 "$model"
fi
cat "$model" >/dev/null  # warm page cache, as for every run below
weights=$("$bin/quantfleet" inspect --json "$model" | grep '"elements"' | tr -dc '0-9')

# usage FILE: "wall cpu" from a GNU time file written with -f "%e %U %S".
usage() { awk '{printf "%s %.2f", $1, $2 + $3}' "$1"; }

# cluster TYPE MODE (stream | data-root): prints "wall coordinator_cpu worker1_cpu worker2_cpu".
cluster() {
  local type=$1 mode=$2 port coord w1 w2 extra=() start end
  port=$(( 20000 + RANDOM % 20000 ))
  [[ $mode == data-root ]] && extra=(--data-root "$work")
  rm -rf "$work/state" "$work/cluster.gguf"
  /usr/bin/time -o "$work/coord.time" -f "%e %U %S" "$bin/quantfleet-coordinator" --listen "127.0.0.1:$port" \
    --state-dir "$work/state" --allow-root "$work" 2>"$work/coordinator.log" &
  coord=$!
  /usr/bin/time -o "$work/w1.time" -f "%e %U %S" taskset -c 0 "$bin/quantfleet-worker" \
    --coordinator "127.0.0.1:$port" --name w1 --threads 1 "${extra[@]}" 2>"$work/w1.log" &
  w1=$!
  /usr/bin/time -o "$work/w2.time" -f "%e %U %S" taskset -c 1 "$bin/quantfleet-worker" \
    --coordinator "127.0.0.1:$port" --name w2 --threads 1 "${extra[@]}" 2>"$work/w2.log" &
  w2=$!
  # Both workers registered before the clock starts.
  for _ in $(seq 100); do
    [[ $("$bin/quantfleet" workers --coordinator "127.0.0.1:$port" 2>/dev/null | grep -c -E 'w1|w2') == 2 ]] && break
    sleep 0.1
  done
  start=$(date +%s.%N)
  "$bin/quantfleet" submit --coordinator "127.0.0.1:$port" --force --watch "$model" "$work/cluster.gguf" "$type" \
    >/dev/null 2>"$work/submit.log" || { cat "$work/submit.log" >&2; exit 1; }
  end=$(date +%s.%N)
  cmp -s "$work/local.gguf" "$work/cluster.gguf" || { echo "bench: $type $mode output differs" >&2; exit 1; }
  for p in "$w1" "$w2" "$coord"; do kill -TERM "$(pgrep -P "$p")" 2>/dev/null || true; done
  wait "$w1" "$w2" "$coord" 2>/dev/null || true
  awk -v s="$start" -v e="$end" -v c="$(usage "$work/coord.time" | cut -d' ' -f2)" \
    -v a="$(usage "$work/w1.time" | cut -d' ' -f2)" -v b="$(usage "$work/w2.time" | cut -d' ' -f2)" \
    'BEGIN{printf "%.2f %s %s %s", e - s, c, a, b}'
}

rows=()
for type in "${types[@]}"; do
  /usr/bin/time -o "$work/local.time" -f "%e %U %S" taskset -c 0 "$bin/quantfleet" quantize "$model" \
    "$work/local.gguf" "$type" 1 >/dev/null 2>&1
  read -r local_wall local_cpu <<<"$(usage "$work/local.time")"
  for mode in stream data-root; do
    read -r wall coord_cpu w1_cpu w2_cpu <<<"$(cluster "$type" "$mode")"
    rows+=("$(awk -v t="$type" -v m="$mode" -v lw="$local_wall" -v lc="$local_cpu" -v w="$wall" -v c="$coord_cpu" \
      -v a="$w1_cpu" -v b="$w2_cpu" 'BEGIN{
        printf "%s|%s|%.2f|%.2f|%.2f|%.2f|%.2f + %.2f|%.2f|%.2f|%.2f", t, m, lw, lc, w, c, a, b, (a + b) / lc, lw / w, c / (a + b)}')")
  done
done

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
if (( markdown )); then
  echo "| type | source | local wall (1 core) | local CPU | 2 workers wall | coordinator CPU | worker CPU | worker CPU / local | speed-up | coordinator / workers |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do
    IFS='|' read -r t m lw lc w c ab ratio speed share <<<"$r"
    echo "| $t | $m | $lw s | $lc s | $w s | $c s | $ab s | $ratio | $speed | $share |"
  done
else
  echo "model: $model ($weights weights), $cpu"
  for r in "${rows[@]}"; do
    IFS='|' read -r t m lw lc w c ab ratio speed share <<<"$r"
    echo "$t $m: local ${lw}s wall ${lc}s CPU; 2 workers ${w}s wall, coordinator ${c}s, workers ${ab}s CPU;" \
      "worker CPU / local $ratio, speed-up $speed, coordinator / workers $share"
  done
fi
rm -f "$work/local.gguf" "$work/cluster.gguf"
