// `quantfleet fit`: which quantization of a model fits a GPU's memory at a
// context length: for each file type, the file's size (planned exactly, no
// data read), the KV cache at that context, the total with llama.cpp's
// compute buffers, and whether it fits; then the best that does, and the
// largest --target-size that would.
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_FIT_COMMAND_H_
#define QUANTFLEET_CLIENT_FIT_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Runs `quantfleet fit ARGS...`; returns the exit code.
int RunFitCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_FIT_COMMAND_H_
