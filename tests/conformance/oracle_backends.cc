// Linked into the oracle tools built by fetch_oracle.sh: the prebuilt
// libggml loads its CPU backend dynamically (one library per instruction
// set), which llama.cpp's tools leave to their callers; this loads the best
// one from the oracle's lib folder before main runs.
#include "ggml-backend.h"

#ifndef ORACLE_LIB_DIR
#error "build with -DORACLE_LIB_DIR=\"...\""
#endif

__attribute__((constructor)) static void LoadOracleBackends() { ggml_backend_load_all_from_path(ORACLE_LIB_DIR); }
