#!/usr/bin/env bash
# Runs the whole test suite: unit, CLI and conformance tests (ctest), then
# the GGUF parser fuzzer for a bounded time under ASan/UBSan.
# Run scripts/setup.sh first (it installs dependencies and builds).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${QUANTFLEET_FUZZ_SECONDS:-60}
jobs=$(nproc)

cmake --build build -j"$jobs"

# The fuzzer: its own clang build with coverage and sanitizers.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUANTFLEET_FUZZ=ON -DQUANTFLEET_SANITIZE=ON -DQUANTFLEET_CUDA=OFF -DBUILD_TESTING=OFF \
  "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j"$jobs" --target gguf_fuzzer
mkdir -p build-fuzz/corpus
build/bin/quantfleet-testmodel --layers 1 --embd 32 --ff 64 --vocab 16 --heads 2 --heads-kv 1 \
  build-fuzz/corpus/seed.gguf
echo "test: fuzzing the GGUF parser for ${fuzz_seconds}s"
build-fuzz/bin/gguf_fuzzer -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix=build-fuzz/ build-fuzz/corpus 2>build-fuzz/fuzz.log || {
  tail -n 40 build-fuzz/fuzz.log
  echo "test: the fuzzer found a failure (input saved under build-fuzz/)"
  exit 1
}
tail -n 1 build-fuzz/fuzz.log

ctest --test-dir build -j"$jobs" --output-on-failure --timeout 900
