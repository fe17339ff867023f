#!/usr/bin/env bash
# The embedded default: generates a sample Llama-style model and quantizes
# it to Q4_K_M through a local cluster (a coordinator and two workers that
# `quantfleet cluster` starts and stops), then checks the bytes against the
# single-machine path and shows what it wrote.
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
echo "== quantizing to Q4_K_M with an importance matrix, on a local coordinator and 2 workers"
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
"$bin/quantfleet" cluster --workers 2 --imatrix "$(abs "$work/sample.imatrix.gguf")" \
  "$(abs "$work/sample-f16.gguf")" "$(abs "$work/sample-Q4_K_M.gguf")" Q4_K_M

echo
echo "== the same job on one machine (quantfleet quantize): same bytes?"
# (the same imatrix path too: the artifact records it in quantize.imatrix.file)
"$bin/quantfleet" quantize --imatrix "$(abs "$work/sample.imatrix.gguf")" \
  "$work/sample-f16.gguf" "$work/sample-Q4_K_M.single.gguf" Q4_K_M 2>/dev/null >/dev/null
if cmp -s "$work/sample-Q4_K_M.gguf" "$work/sample-Q4_K_M.single.gguf"; then
  echo "identical: $(sha256sum "$work/sample-Q4_K_M.gguf" | cut -c1-16)..."
else
  echo "DIFFERENT" >&2
  exit 1
fi

echo
echo "== the result"
ls -lh "$work/sample-Q4_K_M.gguf"
"$bin/quantfleet" inspect "$work/sample-Q4_K_M.gguf" | tail -n 3
