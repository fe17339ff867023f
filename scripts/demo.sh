#!/usr/bin/env bash
# The embedded default: generates a sample Llama-style model and quantizes
# it to Q4_K_M on this machine, then shows what it wrote.
# Run scripts/setup.sh first (it installs dependencies and builds).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/bin
work=${QUANTFLEET_DEMO_DIR:-build/demo}
mkdir -p "$work"

echo "== generating a sample model (8 layers, 1024 wide, F16) in $work"
"$bin/quantfleet-testmodel" --layers 8 --embd 1024 --ff 2816 --heads 16 --heads-kv 4 --vocab 4096 \
  --type f16 --imatrix "$work/sample.imatrix.gguf" "$work/sample-f16.gguf"
ls -lh "$work/sample-f16.gguf"

echo
echo "== quantizing to Q4_K_M with an importance matrix"
"$bin/quantfleet" quantize --imatrix "$work/sample.imatrix.gguf" \
  "$work/sample-f16.gguf" "$work/sample-Q4_K_M.gguf" Q4_K_M

echo
echo "== the result"
ls -lh "$work/sample-Q4_K_M.gguf"
"$bin/quantfleet" inspect "$work/sample-Q4_K_M.gguf" | tail -n 3
