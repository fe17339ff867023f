// `quantfleet tokenize`: the token ids (and pieces) of a text under a
// model's own tokenizer, the same ids llama.cpp gives.
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_TOKENIZE_COMMAND_H_
#define QUANTFLEET_CLIENT_TOKENIZE_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Runs `quantfleet tokenize ARGS...`; returns the exit code.
int RunTokenizeCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_TOKENIZE_COMMAND_H_
