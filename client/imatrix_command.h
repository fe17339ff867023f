// `quantfleet imatrix`: computes a model's importance matrix over a
// calibration text on this machine, as llama-imatrix does, and writes it in
// llama.cpp's GGUF imatrix format (or the legacy .dat).
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_IMATRIX_COMMAND_H_
#define QUANTFLEET_CLIENT_IMATRIX_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Runs `quantfleet imatrix ARGS...`; returns the exit code.
int RunImatrixCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_IMATRIX_COMMAND_H_
