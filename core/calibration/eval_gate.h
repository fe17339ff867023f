// A quality gate on an evaluation report, and the names a gated artifact
// takes, shared by `quantfleet quantize --eval` on one machine and the
// cluster's evaluation jobs: the file is written as OUTPUT.unmeasured.gguf,
// then moved to OUTPUT when it passes, or kept as OUTPUT.rejected.gguf.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_CALIBRATION_EVAL_GATE_H_
#define QUANTFLEET_CORE_CALIBRATION_EVAL_GATE_H_

#include <string>

#include "core/calibration/eval_statistics.h"

namespace quantfleet {

// Which limit `report` is over and by how much ("mean KL divergence 0.12
// is over --max-kld 0.05"), or "" when it passes. A limit <= 0 is none.
std::string GateFailure(const EvalReport& report, double max_kld, double max_ppl_ratio);

// "model-Q4_K_M.gguf" -> "model-Q4_K_M.rejected.gguf" / ".unmeasured.gguf"
// (appended to a name without .gguf).
std::string RejectedPath(const std::string& output);
std::string UnmeasuredPath(const std::string& output);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_EVAL_GATE_H_
