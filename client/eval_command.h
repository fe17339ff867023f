// `quantfleet eval`: how much a quantization cost: the perplexity of both
// models over a text and the KL divergence of the quantized model's
// predictions from the base model's, with llama-perplexity's conventions
// and statistics, in one run and without a logits file; on this machine,
// or with --coordinator on the cluster's workers (cluster_eval.cc).
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_EVAL_COMMAND_H_
#define QUANTFLEET_CLIENT_EVAL_COMMAND_H_

#include <string>
#include <vector>

#include "core/calibration/eval_statistics.h"

namespace quantfleet {

// The report as `quantfleet eval` prints it, on stdout.
void PrintEvalReport(const EvalReport& r);

// `quantfleet eval --coordinator ...`: the same measurement by the
// cluster's workers; the same numbers.
int RunClusterEval(const std::vector<std::string>& args);

// Runs `quantfleet eval ARGS...`; returns the exit code.
int RunEvalCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_EVAL_COMMAND_H_
