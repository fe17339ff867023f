// `quantfleet eval`: how much a quantization cost, measured on this
// machine: the perplexity of both models over a text and the KL divergence
// of the quantized model's predictions from the base model's, with
// llama-perplexity's conventions and statistics, in one run and without a
// logits file.
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_EVAL_COMMAND_H_
#define QUANTFLEET_CLIENT_EVAL_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Runs `quantfleet eval ARGS...`; returns the exit code.
int RunEvalCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_EVAL_COMMAND_H_
