#!/usr/bin/env bash
# Fetches llama.cpp as the correctness oracle and builds its tools.
#
# llama.cpp comes from the npm registry, pinned: node-llama-cpp@3.21.1
# carries its source (llama/gitRelease.bundle), @node-llama-cpp/linux-x64
# the prebuilt libllama/libggml. llama-quantize and llama-imatrix are
# compiled from the bundle's own tools/ sources against those prebuilt
# libraries (and llama-perplexity for the evaluation), and oracle-tokenize
# and oracle-logits (ours, beside this script) call llama_tokenize and
# llama_decode; nothing else of llama.cpp is built here.
#
# The conversion tests also run llama.cpp's convert_hf_to_gguf.py from the
# bundle; where it tokenizes (to name a byte-pair pre-tokenizer) it uses
# Hugging Face's tokenizers, here npm @huggingface/tokenizers (unpacked
# into DEST/hf-tokenizers).
#
# Usage: fetch_oracle.sh DEST   (idempotent: DEST/.fetched marks the
# download, each tool is built when missing)
set -euo pipefail

readonly VERSION=3.21.1
dest=${1:?usage: fetch_oracle.sh DEST}
here=$(cd "$(dirname "$0")" && pwd)
dest=$(mkdir -p "$dest" && cd "$dest" && pwd)

# stale OUT SOURCES...: OUT is missing, or a source file is newer than it.
stale() {
  local out=$1 src
  shift
  [[ -x "$out" ]] || return 0
  for src in "$@"; do
    [[ -f "$src" && "$src" -nt "$out" ]] && return 0
  done
  return 1
}

build_tool() {  # build_tool OUTPUT SOURCES... (run in $dest; rebuilt when stale)
  local out=$1
  shift
  (cd "$dest" && stale "$out" "$@") || return 0
  (cd "$dest" && g++ -std=c++17 -O1 -w \
    -I llama.cpp/include -I llama.cpp/ggml/include -I llama.cpp/common \
    "$@" -o "$out.tmp" \
    -L lib -l:libllama-common.so -l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so \
    -Wl,-rpath,"$dest/lib" -lpthread && mv "$out.tmp" "$out")
}

# The tools that run models load one pinned CPU backend (oracle_backends.cc).
build_tools() {
  local pinned=("$here/oracle_backends.cc" -DORACLE_LIB_DIR="\"$dest/lib\"")
  build_tool llama-imatrix llama.cpp/tools/imatrix/imatrix.cpp "${pinned[@]}"
  build_tool llama-perplexity llama.cpp/tools/perplexity/perplexity.cpp llama.cpp/tools/perplexity/main.cpp "${pinned[@]}"
  build_tool oracle-tokenize "$here/oracle_tokenize.cc"
  build_tool oracle-logits "$here/oracle_logits.cc" "${pinned[@]}"
}

readonly HF_TOKENIZERS=0.2.0
fetch_hf_tokenizers() {
  [[ -f "$dest/hf-tokenizers/package/dist/tokenizers.mjs" ]] && return 0
  mkdir -p "$dest/npm"
  local tarball="huggingface-tokenizers-$HF_TOKENIZERS.tgz"
  (cd "$dest/npm" && { [[ -f "$tarball" ]] || npm pack --silent "@huggingface/tokenizers@$HF_TOKENIZERS" >/dev/null; })
  rm -rf "$dest/hf-tokenizers"
  mkdir -p "$dest/hf-tokenizers"
  tar xzf "$dest/npm/$tarball" -C "$dest/hf-tokenizers"
}

if [[ -f "$dest/.fetched" || -f "$dest/.complete" ]]; then
  build_tools
  fetch_hf_tokenizers
  exit 0
fi
mkdir -p "$dest/npm"
cd "$dest/npm"
for pkg in "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION"; do
  tarball=$(echo "$pkg" | sed -e 's|^@||' -e 's|/|-|' -e 's|@|-|').tgz
  if [[ ! -f "$tarball" ]]; then
    npm pack --silent "$pkg" >/dev/null
  fi
done
rm -rf src prebuilt
mkdir -p src prebuilt
tar xzf "node-llama-cpp-$VERSION.tgz" -C src
tar xzf "node-llama-cpp-linux-x64-$VERSION.tgz" -C prebuilt
cd "$dest"
rm -rf llama.cpp lib
git clone --quiet npm/src/package/llama/gitRelease.bundle llama.cpp 2>/dev/null
mkdir -p lib
cp npm/prebuilt/package/bins/linux-x64/lib*.so lib/
rm -f llama-quantize llama-imatrix oracle-tokenize oracle-logits
build_tool llama-quantize llama.cpp/tools/quantize/quantize.cpp llama.cpp/tools/quantize/main.cpp
./llama-quantize >/dev/null 2>&1 || [[ $? -eq 1 ]]  # usage exits 1: the binary loads its libraries
build_tools
fetch_hf_tokenizers
touch .fetched
echo "oracle ready in $dest (llama.cpp from node-llama-cpp@$VERSION)"
