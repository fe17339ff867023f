// See eval_gate.h.
#include "core/calibration/eval_gate.h"

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace quantfleet {

namespace {

std::string Stem(const std::string& output) {
  return absl::EndsWith(output, ".gguf") ? output.substr(0, output.size() - 5) : output;
}

}  // namespace

std::string GateFailure(const EvalReport& report, double max_kld, double max_ppl_ratio) {
  if (max_kld > 0 && report.kld.value > max_kld) {
    return absl::StrFormat("mean KL divergence %.6f is over --max-kld %g", report.kld.value, max_kld);
  }
  if (max_ppl_ratio > 0 && report.ppl_ratio.value > max_ppl_ratio) {
    return absl::StrFormat("PPL(Q)/PPL(base) %.6f is over --max-ppl-ratio %g", report.ppl_ratio.value, max_ppl_ratio);
  }
  return "";
}

std::string RejectedPath(const std::string& output) { return Stem(output) + ".rejected.gguf"; }
std::string UnmeasuredPath(const std::string& output) { return Stem(output) + ".unmeasured.gguf"; }

}  // namespace quantfleet
