// `quantfleet quantize --eval TEXT [--max-kld X] [--max-ppl-ratio R]`: the
// file just written, measured against its input over a text as
// `quantfleet eval` measures it (perplexity of both, KL divergence of its
// predictions from the input's); with a limit, a file over it is not left
// at OUTPUT, where a script would take it for good: it is renamed beside
// it as OUTPUT.rejected.gguf (never deleted), and the run fails saying why.
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_QUALITY_GATE_H_
#define QUANTFLEET_CLIENT_QUALITY_GATE_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/calibration/evaluation.h"
#include "core/gguf/gguf_model.h"

namespace quantfleet {

struct QualityGate {
  std::string text;          // empty: nothing is measured
  int ctx = 512;             // tokens per chunk
  int chunks = 16;           // at most this many chunks
  double max_kld = 0;        // > 0: the highest mean KL divergence accepted
  double max_ppl_ratio = 0;  // > 0: the highest PPL(Q) / PPL(base) accepted
};

struct GateOutcome {
  EvalReport report;
  std::string failed;   // empty: accepted; otherwise which limit, by how much
  std::string kept_as;  // where a rejected file now is
};

// Where a rejected OUTPUT goes: "model-Q4_K_M.gguf" -> "model-Q4_K_M.rejected.gguf".
std::string RejectedPath(const std::string& output);

// Measures `output` against `input` (opened from `input_path`). Errors:
// an unreadable text or a model the forward pass cannot run (the output
// then stays where it is), or a failed rename.
absl::StatusOr<GateOutcome> MeasureArtifact(const GgufModel& input, const std::string& input_path,
                                            const std::string& output, const QualityGate& gate);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_QUALITY_GATE_H_
