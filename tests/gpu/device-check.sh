#!/usr/bin/env bash
# The one script to run on a GPU machine, from the folder that
# package-device-check.sh prepared (binaries and their libraries).
# Runs the GPU kernel tests (bit-exact against the CPU reference), the GPU
# calibration tests (against the CPU path) and lists the devices; times
# quantization and calibration on the GPU against the CPU; writes a short
# summary to $OUT/summary.txt.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
[[ -d "$here/lib" ]] || tar -C "$here" -xJf "$here/lib.tar.xz"
export LD_LIBRARY_PATH="$here/lib:${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64"
export QUANTFLEET_BIN_DIR="$here"
{
  echo "== devices"
  "$here/quantfleet-worker" --list-devices
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  echo "== GPU kernels vs the CPU reference"
  timeout 300 "$here/gpu_kernels_test" --gtest_brief=1 2>&1 | tail -n 20
  echo "exit status: ${PIPESTATUS[0]}"
  echo "== calibration on the GPU vs the CPU path"
  timeout 300 "$here/gpu_forward_test" --gtest_brief=1 2>&1 | grep -E "worst relative|FAILED|PASSED|Failure|SKIPPED" \
    | head -n 20
  echo "exit status: ${PIPESTATUS[0]}"
  work=$(mktemp -d)
  echo "== calibration speed, tokens/s (8 layers x 4096, F16, 8 chunks of 512): CPU cores vs GPU"
  "$here/quantfleet-testmodel" --layers 8 --embd 4096 --ff 11008 --heads 32 --heads-kv 8 --type f16 --plain \
    --vocab-from "$here/vocab-llama-spm.gguf" "$work/cal.gguf"
  for _ in $(seq 2000); do echo "The quick brown fox jumps over the lazy dog while a home lab quantizes models."; done \
    >"$work/cal.txt"
  for where in cpu gpu; do
    flags=(); [[ $where == gpu ]] && flags=(--gpu auto)
    timeout 300 "$here/quantfleet" imatrix -m "$work/cal.gguf" -f "$work/cal.txt" -o "$work/cal-$where.gguf" \
      -c 512 --chunks 8 --no-checkpoint --json "${flags[@]}" 2>"$work/cal-$where.log" \
      | grep -E '"tokens_per_second"|"perplexity"' | tr -d ' \n'; echo " ($where)"
    tail -n 2 "$work/cal-$where.log" | grep -i "error\|cannot\|gpu" || true
  done
  "$here/quantfleet-testmodel" --layers 4 --embd 4096 --ff 11008 --heads 32 --heads-kv 8 --vocab 32000 \
    --type f16 --imatrix "$work/im.gguf" "$work/m.gguf"
  port=$(( 20000 + RANDOM % 20000 ))
  "$here/quantfleet-coordinator" --listen "127.0.0.1:$port" --state-dir "$work/state" --allow-root "$work" \
    --drain-seconds 0 2>"$work/coordinator.log" &
  coord=$!
  "$here/quantfleet-worker" --coordinator "127.0.0.1:$port" --name gpu --gpu auto --data-root "$work" \
    2>"$work/worker.log" &
  worker=$!
  sleep 1
  echo "== a GPU worker's imatrix vs quantfleet imatrix --gpu here (the same GPU: the same bytes)"
  timeout 300 "$here/quantfleet" imatrix --coordinator "127.0.0.1:$port" --gpu auto -m "$work/cal.gguf" \
    -f "$work/cal.txt" -o "$work/cal-cluster.gguf" -c 512 --chunks 8 >/dev/null 2>"$work/cal-cluster.log" \
    || tail -n 3 "$work/cal-cluster.log"
  if cmp -s "$work/cal-cluster.gguf" "$work/cal-gpu.gguf"; then echo "same bytes"; else echo "DIFFERENT"; fi
  echo "== a GPU worker's artifact vs quantfleet quantize on the CPU (seconds: cluster job, CPU quantize)"
  for t in Q4_K_M Q6_K IQ4_XS Q8_0; do
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
