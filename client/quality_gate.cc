// See quality_gate.h.
#include "client/quality_gate.h"

#include "absl/strings/str_format.h"
#include "client/calibration_text.h"
#include "core/calibration/calibration_chunks.h"
#include "core/calibration/eval_gate.h"
#include "core/io/atomic_file.h"
#include "core/model/runnable_model.h"
#include "core/util/status_macros.h"

namespace quantfleet {

absl::StatusOr<PreparedGate> PrepareGate(const GgufModel& input, const std::string& input_path,
                                         const QualityGate& gate) {
  QF_RETURN_IF_ERROR(CheckChunkTokens(gate.ctx));
  QF_ASSIGN_OR_RETURN(CalibrationText text, LoadCalibrationText(input, input_path, gate.text, gate.ctx, gate.chunks));
  return PreparedGate{gate, std::move(text.model), std::move(text.tokens)};
}

absl::StatusOr<GateOutcome> MeasureArtifact(const PreparedGate& prepared, const std::string& output) {
  const QualityGate& gate = prepared.gate;
  const std::string measured = UnmeasuredPath(output);
  GateOutcome outcome;
  absl::Status s = [&]() -> absl::Status {
    QF_ASSIGN_OR_RETURN(GgufModel file, GgufModel::Open(measured));
    QF_ASSIGN_OR_RETURN(LlamaModel quantized, LlamaModel::Load(file, measured));
    EvalOptions options;
    options.ctx = gate.ctx;
    options.max_chunks = gate.chunks;
    QF_ASSIGN_OR_RETURN(outcome.report,
                        RunEval(prepared.base.llama, quantized, *prepared.base.vocab, prepared.tokens, options));
    return absl::OkStatus();
  }();
  if (!s.ok()) {
    outcome.failed = absl::StrFormat("it could not be measured: %s", s.message());
  } else {
    outcome.failed = GateFailure(outcome.report, gate.max_kld, gate.max_ppl_ratio);
  }
  const std::string destination = outcome.failed.empty() ? output : RejectedPath(output);
  if (absl::Status moved = RenameDurably(measured, destination); !moved.ok()) return moved;
  if (!outcome.failed.empty()) outcome.kept_as = destination;
  if (!s.ok())
    return absl::Status(s.code(),
                        absl::StrFormat("%s: %s; the file is kept as %s", output, outcome.failed, destination));
  return outcome;
}

}  // namespace quantfleet
