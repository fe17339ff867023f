// `quantfleet imatrix`: computes a model's importance matrix over a
// calibration text on this machine, as llama-imatrix does, and writes it in
// llama.cpp's GGUF imatrix format (or the legacy .dat).
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_IMATRIX_COMMAND_H_
#define QUANTFLEET_CLIENT_IMATRIX_COMMAND_H_

#include <functional>
#include <string>
#include <vector>

namespace quantfleet {

// What a test may inject: called after each chunk, once its checkpoint
// (when one was due) is written. tests/tools/crashing_imatrix_main.cc ends
// the process there, as a kill would.
struct ImatrixCommandHooks {
  std::function<void(int chunk)> after_chunk;
};

// Runs `quantfleet imatrix ARGS...`; returns the exit code.
int RunImatrixCommand(const std::vector<std::string>& args, const ImatrixCommandHooks& hooks = {});

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_IMATRIX_COMMAND_H_
