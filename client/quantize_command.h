// `quantfleet quantize`: quantizes a GGUF model on this machine, with
// llama-quantize's arguments and the same output bytes.
//
// Thread-safety: RunQuantizeCommand is called once from main.
#ifndef QUANTFLEET_CLIENT_QUANTIZE_COMMAND_H_
#define QUANTFLEET_CLIENT_QUANTIZE_COMMAND_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/quality_gate.h"
#include "client/target_size.h"
#include "core/quant/quantize_plan.h"

namespace quantfleet {

struct QuantizeCommandArgs {
  std::string input;
  std::string output;
  QuantizeOptions options;
  int threads = 0;
  bool dry_run = false;
  bool json = false;
  bool help = false;
  TargetSize target;  // --target-size / --target-bpw: a type per matrix for a size
  // "rtn": each type's own quantizer (llama-quantize's bytes); "gptq":
  // GPTQ over the Hessians of --calibration TEXT.
  std::string method = "rtn";
  double damp = 0.01;  // GPTQ's damping, of the Hessian's mean diagonal
  bool damp_given = false;
  bool act_order = false;  // GPTQ: columns by decreasing Hessian diagonal, static groups
  QualityGate gate;        // --eval TEXT: the file measured (and gated) once written
  // The flags' text, for sending the same options to a coordinator.
  std::vector<std::string> raw_tensor_types;
  std::vector<std::string> raw_kv_overrides;
};

// Parses the arguments after "quantize". Errors: INVALID_ARGUMENT naming
// the flag or argument and what is expected.
absl::StatusOr<QuantizeCommandArgs> ParseQuantizeArgs(const std::vector<std::string>& args);

// The --help text.
std::string QuantizeUsage();

// Runs the command; returns the process exit code (0 ok, 1 error).
int RunQuantizeCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_QUANTIZE_COMMAND_H_
