#!/usr/bin/env bash
# Installs quantfleet's build dependencies from the distribution's packages
# (Debian 12 / Ubuntu 24.04) and builds the project into ./build.
#
# Everything the build and the tests need is installed here; nothing is
# downloaded at build time. The conformance tests fetch the pinned llama.cpp
# oracle from the npm registry when they first run (see tests/conformance).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi

packages=(
  build-essential cmake ninja-build ccache git time
  clang libclang-rt-dev            # libFuzzer and sanitizers
  clang-format                     # the format check (tests/layout/format.sh)
  libabsl-dev                      # Status/StatusOr, strings, synchronization, time
  libgtest-dev libgmock-dev        # tests
  nlohmann-json3-dev               # --json output, safetensors headers
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler  # the cluster's RPC
  libsqlite3-dev                   # the coordinator's job store
  libssl-dev                       # SHA-256 of artifacts, `quantfleet certs init`
  pkg-config libcpp-httplib-dev    # the daemons' metrics port and status page
  libtomlplusplus-dev              # --config files (TOML)
  libyaml-cpp-dev                  # model cards' front matter (Hugging Face checkpoints)
  libpcre2-dev                     # tokenizers: pre-tokenizer regular expressions with Unicode classes
  libopenblas-dev                  # calibration: the forward pass's matrix products
  shellcheck systemd python3-yaml docker-compose  # checks of deploy/ and the scripts
  docker.io debootstrap            # the images built and run (tests/deploy)
  chromium fonts-liberation        # renders the status page in the tests (headless)
  # llama.cpp's convert_hf_to_gguf.py, run by the conversion conformance tests
  python3-torch python3-numpy python3-sentencepiece python3-tqdm
)
# Node.js with npm fetches the llama.cpp oracle; keep an existing install.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUANTFLEET_WERROR=ON "${launcher[@]}" >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built into ./build (binaries in build/bin)"
