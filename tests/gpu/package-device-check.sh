#!/usr/bin/env bash
# Builds the GPU test binaries for the device machine (sm_90: H100/H200)
# and puts them, with the shared libraries they need beyond the base
# system (compressed), into build-gpu/carry/ for the device tool to carry.
#   tests/gpu/package-device-check.sh [ARCH]   (default 90)
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-90}
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTFLEET_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build build-gpu -j"$(nproc)" --target gpu_kernels_test gpu_forward_test quantfleet quantfleet-worker \
  quantfleet-coordinator quantfleet-testmodel
tests/conformance/fetch_oracle.sh build/oracle >/dev/null  # for a real vocabulary
carry=build-gpu/carry
rm -rf "$carry"
mkdir -p "$carry/lib"
cp build-gpu/bin/gpu_kernels_test build-gpu/bin/gpu_forward_test build-gpu/bin/quantfleet \
  build-gpu/bin/quantfleet-worker build-gpu/bin/quantfleet-coordinator build-gpu/bin/quantfleet-testmodel \
  tests/gpu/device-check.sh "$carry/"
cp build/oracle/llama.cpp/models/ggml-vocab-llama-spm.gguf "$carry/vocab-llama-spm.gguf"
# cuBLAS (over 500 MB) is opened from the device machine's own CUDA toolkit.
for bin in "$carry"/gpu_kernels_test "$carry"/gpu_forward_test "$carry"/quantfleet "$carry"/quantfleet-worker \
  "$carry"/quantfleet-coordinator; do
  ldd "$bin" | awk '/=> \// { print $3 }' | while read -r lib; do
    case "$lib" in
      /lib/x86_64-linux-gnu/libc.so*|/lib/x86_64-linux-gnu/libm.so*|/lib64/*|*/libcuda.so*|*/libcublas*) ;;
      *) cp -L -n "$lib" "$carry/lib/" ;;
    esac
  done
done
# The libraries travel compressed (OpenBLAS alone is 36 MB; the device tool
# carries 64 MiB at most); device-check.sh unpacks them.
tar -C "$carry" -cJf "$carry/lib.tar.xz" lib
rm -rf "${carry:?}/lib"
echo "ready: $carry ($(du -sh "$carry" | cut -f1))"
