// `quantfleet quantize --eval TEXT [--max-kld X] [--max-ppl-ratio R]`: the
// file just written, measured against its input over a text as
// `quantfleet eval` measures it (perplexity of both, KL divergence of its
// predictions from the input's). The text is read and checked before
// anything is quantized; the file is written as OUTPUT.unmeasured.gguf and
// reaches OUTPUT only once measured and within its limits. A file over a
// limit, or one that could not be measured, is kept beside it as
// OUTPUT.rejected.gguf (never deleted), and the run fails saying why; a
// crash while measuring leaves OUTPUT.unmeasured.gguf, never OUTPUT.
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_QUALITY_GATE_H_
#define QUANTFLEET_CLIENT_QUALITY_GATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration/eval_gate.h"
#include "core/calibration/evaluation.h"
#include "core/gguf/gguf_model.h"
#include "core/model/runnable_model.h"

namespace quantfleet {

struct QualityGate {
  std::string text;          // empty: nothing is measured
  int ctx = 512;             // tokens per chunk
  int chunks = 16;           // at most this many chunks
  double max_kld = 0;        // > 0: the highest mean KL divergence accepted
  double max_ppl_ratio = 0;  // > 0: the highest PPL(Q) / PPL(base) accepted
};

// The text, tokenized by the input's tokenizer and checked (the chunk
// length, enough tokens for a chunk), with the input made runnable.
struct PreparedGate {
  QualityGate gate;
  RunnableModel base;
  std::vector<TokenId> tokens;
};

struct GateOutcome {
  EvalReport report;
  std::string failed;   // empty: accepted; otherwise which limit, by how much
  std::string kept_as;  // where a rejected file now is
};

// Errors name the text (unreadable, too short for one chunk) or the input
// (a model the forward pass cannot run).
absl::StatusOr<PreparedGate> PrepareGate(const GgufModel& input, const std::string& input_path,
                                         const QualityGate& gate);

// Measures the file at UnmeasuredPath(output) and moves it to `output` or,
// over a limit or when it cannot be measured, to RejectedPath(output).
// Errors: a file that cannot be measured (it is then rejected) or moved.
absl::StatusOr<GateOutcome> MeasureArtifact(const PreparedGate& prepared, const std::string& output);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_QUALITY_GATE_H_
