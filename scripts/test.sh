#!/usr/bin/env bash
# Runs the whole test suite: the fuzzers (GGUF, safetensors, SentencePiece
# models, importance matrices, tokenizers, coordinator requests) for a bounded time under ASan/UBSan, then the unit, CLI,
# integration and conformance tests (ctest).
# Run scripts/setup.sh first (it installs dependencies and builds).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${QUANTFLEET_FUZZ_SECONDS:-60}
jobs=$(nproc)

cmake --build build -j"$jobs"

# The fuzzers, one per parser of untrusted bytes: their own clang build with
# coverage and sanitizers, each run for a bounded time.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUANTFLEET_FUZZ=ON -DQUANTFLEET_SANITIZE=ON -DQUANTFLEET_CUDA=OFF -DBUILD_TESTING=OFF \
  "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j"$jobs" --target gguf_fuzzer safetensors_fuzzer imatrix_fuzzer tokenizer_fuzzer \
  coordinator_fuzzer sentencepiece_fuzzer

# Seeds: a small model, an importance matrix in each format, the
# vocabularies of llama.cpp's own test files (from the pinned oracle), and a
# script of coordinator requests that runs a job.
tests/conformance/fetch_oracle.sh build/oracle >/dev/null
vocabs=build/oracle/llama.cpp/models
export QUANTFLEET_FUZZ_VOCABS=$vocabs/ggml-vocab-llama-spm.gguf:$vocabs/ggml-vocab-llama-bpe.gguf:$vocabs/ggml-vocab-qwen2.gguf:$vocabs/ggml-vocab-gpt-2.gguf
mkdir -p build-fuzz/corpus/gguf build-fuzz/corpus/safetensors build-fuzz/corpus/imatrix build-fuzz/corpus/tokenizer \
  build-fuzz/corpus/coordinator build-fuzz/corpus/sentencepiece
build/bin/quantfleet-testmodel --layers 1 --embd 32 --ff 64 --vocab 16 --heads 2 --heads-kv 1 \
  --imatrix build-fuzz/corpus/imatrix/seed.gguf build-fuzz/corpus/gguf/seed.gguf >/dev/null
build/bin/quantfleet-testmodel --layers 1 --embd 32 --ff 64 --vocab 16 --heads 2 --heads-kv 1 \
  --imatrix build-fuzz/corpus/imatrix/seed.dat --imatrix-format dat build-fuzz/corpus/gguf/seed2.gguf >/dev/null
printf '\x00Hello world! <s> 3.14 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n\t  x' >build-fuzz/corpus/tokenizer/seed-spm
printf '\xc1 def f(x):\n    return x**2  # <|endoftext|> caf\xc3\xa9\xff\xfe' >build-fuzz/corpus/tokenizer/seed-bpe
QUANTFLEET_FUZZ_WRITE_SEED=build-fuzz/corpus/coordinator/seed build-fuzz/bin/coordinator_fuzzer
QUANTFLEET_FUZZ_WRITE_SEED=build-fuzz/corpus/safetensors/seed build-fuzz/bin/safetensors_fuzzer
QUANTFLEET_FUZZ_WRITE_SEED=build-fuzz/corpus/sentencepiece/seed build-fuzz/bin/sentencepiece_fuzzer

fuzz() {  # fuzz TARGET SECONDS MAX_LEN
  echo "test: fuzzing with $1 for $2s"
  build-fuzz/bin/"$1" -max_total_time="$2" -rss_limit_mb=2048 -max_len="$3" -timeout=20 \
    -artifact_prefix=build-fuzz/"$1"- build-fuzz/corpus/"${1%_fuzzer}" 2>build-fuzz/"$1".log || {
    tail -n 40 build-fuzz/"$1".log
    echo "test: $1 found a failure (input saved under build-fuzz/)"
    exit 1
  }
  tail -n 1 build-fuzz/"$1".log
}
fuzz gguf_fuzzer "$fuzz_seconds" 65536
fuzz safetensors_fuzzer $((fuzz_seconds / 2)) 65536
fuzz sentencepiece_fuzzer $((fuzz_seconds / 2)) 65536
fuzz imatrix_fuzzer $((fuzz_seconds / 2)) 65536
fuzz tokenizer_fuzzer "$fuzz_seconds" 4096
fuzz coordinator_fuzzer "$fuzz_seconds" 65536

ctest --test-dir build -j"$jobs" --output-on-failure --timeout 900
