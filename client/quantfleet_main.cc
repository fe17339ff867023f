// The quantfleet command: dispatches to one subcommand per file.
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "client/certs_command.h"
#include "client/cluster_commands.h"
#include "client/convert_command.h"
#include "client/eval_command.h"
#include "client/fit_command.h"
#include "client/health_command.h"
#include "client/imatrix_command.h"
#include "client/inspect_command.h"
#include "client/quantize_command.h"
#include "client/tokenize_command.h"

namespace {

constexpr char kUsage[] = R"(usage: quantfleet COMMAND [options]

Quantizes large language models in GGUF format, on this machine or on a
cluster of GPU rigs, with the same bytes as llama.cpp's llama-quantize.

commands:
  quantize   quantize a GGUF model here (a drop-in for llama-quantize)
  convert    a Hugging Face checkpoint folder to GGUF (convert_hf_to_gguf.py)
  inspect    show what a GGUF file holds (metadata, tensor types, sizes)
  imatrix    compute an importance matrix over a calibration text (llama-imatrix)
  tokenize   the tokens of a text under a model's tokenizer (llama.cpp's ids)
  eval       perplexity and KL divergence of a quantized model against its base
  fit        which quantization of a model fits a GPU's memory at a context

  cluster    run a coordinator and workers on this machine for one job
  submit     send a job to a coordinator (--coordinator HOST:PORT)
  watch      follow a job's progress until it ends
  status     show one job
  jobs       list the jobs
  workers    list the workers and what they hold
  cancel     cancel a job
  health     ask a daemon's metrics port whether it serves (/healthz)

  certs      create the CA, certificates and tokens for a cluster (certs init)
  version    print the version
  help       this text

Run 'quantfleet COMMAND --help' for a command's options.
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
    absl::PrintF("%s", kUsage);
    return args.empty() ? 1 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "quantize") return quantfleet::RunQuantizeCommand(args);
  if (command == "convert") return quantfleet::RunConvertCommand(args);
  if (command == "inspect") return quantfleet::RunInspectCommand(args);
  if (command == "certs") return quantfleet::RunCertsCommand(args);
  if (command == "tokenize") return quantfleet::RunTokenizeCommand(args);
  if (command == "imatrix") return quantfleet::RunImatrixCommand(args);
  if (command == "eval") return quantfleet::RunEvalCommand(args);
  if (command == "fit") return quantfleet::RunFitCommand(args);
  if (command == "health") return quantfleet::RunHealthCommand(args);
  if (quantfleet::IsClusterCommand(command)) return quantfleet::RunClusterCommand(command, args);
  if (command == "version" || command == "--version") {
    absl::PrintF("quantfleet %s\n", QUANTFLEET_VERSION);
    return 0;
  }
  absl::FPrintF(stderr, "quantfleet: unknown command '%s'\n\n%s", command, kUsage);
  return 1;
}
