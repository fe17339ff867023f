// Linked into the oracle tools built by fetch_oracle.sh (llama-imatrix,
// oracle-logits): the prebuilt libggml ships its CPU backend as one library
// per instruction-set level, and llama.cpp's own loader picks the best one
// for the host. Those variants round and add differently (AVX2 against
// AVX-512/VNNI dot products, repacked weight layouts), so an oracle that
// picked by host would give each machine its own truth. This loads exactly
// one variant, before main runs: QUANTFLEET_ORACLE_CPU names it (a suffix of
// lib/libggml-cpu-*.so), "haswell" by default, the AVX2 arithmetic that
// quantfleet's calibration follows. It says which on stderr, and exits 1
// when the variant is missing or this CPU cannot run it, rather than let
// llama.cpp fall back to another.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ggml-backend.h"

#ifndef ORACLE_LIB_DIR
#error "build with -DORACLE_LIB_DIR=\"...\""
#endif

__attribute__((constructor)) static void LoadOracleCpuBackend() {
  const char* env = std::getenv("QUANTFLEET_ORACLE_CPU");
  const std::string variant = env != nullptr && *env != '\0' ? env : "haswell";
  const std::string path = std::string(ORACLE_LIB_DIR) + "/libggml-cpu-" + variant + ".so";
  if (ggml_backend_load(path.c_str()) == nullptr) {
    std::fprintf(stderr,
                 "oracle: cannot load the ggml CPU backend '%s' (%s): the file is missing or this CPU lacks its "
                 "instructions; set QUANTFLEET_ORACLE_CPU to another variant\n",
                 variant.c_str(), path.c_str());
    std::exit(1);
  }
  std::fprintf(stderr, "oracle: ggml CPU backend %s\n", variant.c_str());
}
