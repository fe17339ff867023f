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
} | tee "$out/summary.txt"
