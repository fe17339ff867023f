#!/usr/bin/env bash
# Fetches llama.cpp as the correctness oracle and builds llama-quantize.
#
# llama.cpp comes from the npm registry, pinned: node-llama-cpp@3.21.1
# carries its source (llama/gitRelease.bundle), @node-llama-cpp/linux-x64
# the prebuilt libllama/libggml. llama-quantize is compiled from the
# bundle's own tools/quantize sources against those prebuilt libraries, so
# nothing of llama.cpp is built here but that one tool.
#
# Usage: fetch_oracle.sh DEST   (idempotent; DEST/.complete marks success)
set -euo pipefail

readonly VERSION=3.21.1
dest=${1:?usage: fetch_oracle.sh DEST}
if [[ -f "$dest/.complete" ]]; then
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
g++ -std=c++17 -O1 -w \
  -I llama.cpp/include -I llama.cpp/ggml/include -I llama.cpp/common \
  llama.cpp/tools/quantize/quantize.cpp llama.cpp/tools/quantize/main.cpp \
  -o llama-quantize \
  -L lib -l:libllama-common.so -l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so \
  -Wl,-rpath,"$dest/lib" -lpthread
./llama-quantize >/dev/null 2>&1 || [[ $? -eq 1 ]]  # usage exits 1: the binary loads its libraries
touch .complete
echo "oracle ready in $dest (llama.cpp from node-llama-cpp@$VERSION)"
