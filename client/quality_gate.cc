// See quality_gate.h.
#include "client/quality_gate.h"

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/calibration/calibration_chunks.h"
#include "core/io/atomic_file.h"
#include "core/io/mapped_file.h"
#include "core/model/runnable_model.h"
#include "core/util/status_macros.h"

namespace quantfleet {

std::string RejectedPath(const std::string& output) {
  const std::string stem = absl::EndsWith(output, ".gguf") ? output.substr(0, output.size() - 5) : output;
  return stem + ".rejected.gguf";
}

absl::StatusOr<GateOutcome> MeasureArtifact(const GgufModel& input, const std::string& input_path,
                                            const std::string& output, const QualityGate& gate) {
  QF_RETURN_IF_ERROR(CheckChunkTokens(gate.ctx));
  QF_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(gate.text));
  QF_ASSIGN_OR_RETURN(RunnableModel base, MakeRunnable(input, input_path));
  QF_ASSIGN_OR_RETURN(GgufModel file, GgufModel::Open(output));
  QF_ASSIGN_OR_RETURN(LlamaModel quantized, LlamaModel::Load(file, output));
  const std::vector<TokenId> tokens = base.tokenizer.Tokenize(text, /*add_special=*/true, /*parse_special=*/false);
  EvalOptions options;
  options.ctx = gate.ctx;
  options.max_chunks = gate.chunks;
  absl::StatusOr<EvalReport> report = RunEval(base.llama, quantized, *base.vocab, tokens, options);
  if (!report.ok())
    return absl::Status(report.status().code(), absl::StrFormat("%s: %s", gate.text, report.status().message()));
  GateOutcome outcome;
  outcome.report = *report;
  if (gate.max_kld > 0 && report->kld.value > gate.max_kld) {
    outcome.failed = absl::StrFormat("mean KL divergence %.6f is over --max-kld %g", report->kld.value, gate.max_kld);
  } else if (gate.max_ppl_ratio > 0 && report->ppl_ratio.value > gate.max_ppl_ratio) {
    outcome.failed = absl::StrFormat("PPL(Q)/PPL(base) %.6f is over --max-ppl-ratio %g", report->ppl_ratio.value,
                                     gate.max_ppl_ratio);
  }
  if (!outcome.failed.empty()) {
    outcome.kept_as = RejectedPath(output);
    if (absl::Status s = RenameDurably(output, outcome.kept_as); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrFormat("%s failed its quality gate (%s): %s", output, outcome.failed, s.message()));
    }
  }
  return outcome;
}

}  // namespace quantfleet
