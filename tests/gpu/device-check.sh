#!/usr/bin/env bash
# The one script to run on a GPU machine, from the folder that
# package-device-check.sh prepared (binaries and their libraries).
# Runs the GPU kernel tests (bit-exact against the CPU reference) and lists
# the devices; writes a short summary to $OUT/summary.txt.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
export LD_LIBRARY_PATH="$here/lib:${LD_LIBRARY_PATH:-}"
{
  echo "== devices"
  "$here/quantfleet-worker" --list-devices
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  echo "== GPU kernels vs the CPU reference"
  timeout 300 "$here/gpu_kernels_test" --gtest_brief=1 2>&1 | tail -n 20
  echo "exit status: ${PIPESTATUS[0]}"
  echo "== a GPU worker's artifact vs quantfleet quantize on the CPU (seconds: cluster job, CPU quantize)"
  work=$(mktemp -d)
  "$here/quantfleet-testmodel" --layers 4 --embd 4096 --ff 11008 --heads 32 --heads-kv 8 --vocab 32000 \
    --type f16 --imatrix "$work/im.gguf" "$work/m.gguf"
  port=$(( 20000 + RANDOM % 20000 ))
  "$here/quantfleet-coordinator" --listen "127.0.0.1:$port" --state-dir "$work/state" --allow-root "$work" \
    --drain-seconds 0 2>"$work/coordinator.log" &
  coord=$!
  "$here/quantfleet-worker" --coordinator "127.0.0.1:$port" --name gpu --gpu auto 2>"$work/worker.log" &
  worker=$!
  sleep 1
  for t in Q4_K_M Q6_K IQ4_XS Q8_0 Q5_K_S Q3_K_M Q2_K; do
    s0=$(date +%s.%N)
    timeout 300 "$here/quantfleet" submit --coordinator "127.0.0.1:$port" --force --watch --imatrix "$work/im.gguf" \
      "$work/m.gguf" "$work/gpu-$t.gguf" "$t" >/dev/null 2>"$work/submit-$t.log" || tail -n 3 "$work/submit-$t.log"
    s1=$(date +%s.%N)
    timeout 300 "$here/quantfleet" quantize --imatrix "$work/im.gguf" "$work/m.gguf" "$work/cpu-$t.gguf" "$t" \
      >/dev/null 2>&1
    s2=$(date +%s.%N)
    same=DIFFERENT
    cmp -s "$work/gpu-$t.gguf" "$work/cpu-$t.gguf" && same="same bytes"
    echo "$t: $same ($(echo "$s1 - $s0" | bc) s, $(echo "$s2 - $s1" | bc) s)"
    rm -f "$work/gpu-$t.gguf" "$work/cpu-$t.gguf"
  done
  kill -TERM "$worker"; wait "$worker"
  kill -TERM "$coord"; wait "$coord"
  tail -n 1 "$work/worker.log"
  rm -rf "$work"
} | tee "$out/summary.txt"
