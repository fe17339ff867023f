// quantfleet-testmodel: writes a synthetic Llama-style GGUF model (and
// optionally an importance matrix for it) for tests, demos and benchmarks.
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "tests/tools/test_model.h"

namespace {

constexpr char kUsage[] = R"(usage: quantfleet-testmodel [options] OUT.gguf

Writes a synthetic Llama-style model with seeded random weights.

  --layers N        transformer blocks (default 2)
  --embd N          embedding width (default 256)
  --ff N            feed-forward width (default 512)
  --heads N         attention heads (default 4)
  --heads-kv N      key/value heads (default 2)
  --vocab N         vocabulary size (default 320)
  --experts N       mixture of N experts in every FFN (default: dense)
  --type T          f32, f16 or bf16 for weight matrices (default f32)
  --tied            no output.weight (tied embeddings)
  --shuffle         tensors in random order in the file
  --split N         write N parts; OUT must end in -00001-of-0000N.gguf
  --alignment N     write general.alignment = N
  --seed N          random seed (default 1)
  --vocab-from FILE take the tokenizer (and vocabulary size) from FILE's metadata
  --plain           no outlier columns, spikes, zero rows or subnormals
  --arch A          llama (default), qwen2 (Q/K/V biases) or qwen3 (Q/K norms)
  --imatrix FILE    also write an importance matrix for the model
  --imatrix-format  gguf (default) or dat
)";

}  // namespace

int main(int argc, char** argv) {
  quantfleet::TestModelSpec spec;
  std::string out, imatrix;
  quantfleet::ImatrixFormat format = quantfleet::ImatrixFormat::kGguf;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string(); };
    auto num = [&](int* v) {
      const std::string s = next();
      if (!absl::SimpleAtoi(s, v)) {
        absl::FPrintF(stderr, "quantfleet-testmodel: %s needs a number, got '%s'\n", a, s);
        std::exit(1);
      }
    };
    int n = 0;
    if (a == "--help" || a == "-h") {
      absl::PrintF("%s", kUsage);
      return 0;
    } else if (a == "--layers") {
      num(&spec.n_layer);
    } else if (a == "--embd") {
      num(&spec.n_embd);
    } else if (a == "--ff") {
      num(&spec.n_ff);
    } else if (a == "--heads") {
      num(&spec.n_head);
    } else if (a == "--heads-kv") {
      num(&spec.n_head_kv);
    } else if (a == "--vocab") {
      num(&spec.n_vocab);
    } else if (a == "--experts") {
      num(&spec.n_expert);
    } else if (a == "--split") {
      num(&spec.n_split);
    } else if (a == "--alignment") {
      num(&n);
      spec.alignment = static_cast<uint32_t>(n);
    } else if (a == "--seed") {
      num(&n);
      spec.seed = static_cast<uint64_t>(n);
    } else if (a == "--tied") {
      spec.tied_output = true;
    } else if (a == "--vocab-from") {
      spec.vocab_from = next();
    } else if (a == "--arch") {
      spec.arch = next();
    } else if (a == "--plain") {
      spec.outliers = false;
      spec.zero_rows = false;
    } else if (a == "--shuffle") {
      spec.shuffle = true;
    } else if (a == "--imatrix") {
      imatrix = next();
    } else if (a == "--imatrix-format") {
      const std::string f = next();
      if (f != "gguf" && f != "dat") {
        absl::FPrintF(stderr, "quantfleet-testmodel: --imatrix-format is gguf or dat\n");
        return 1;
      }
      format = f == "dat" ? quantfleet::ImatrixFormat::kLegacy : quantfleet::ImatrixFormat::kGguf;
    } else if (a == "--type") {
      const std::string t = next();
      if (t == "f32")
        spec.type = quantfleet::GgmlType::kF32;
      else if (t == "f16")
        spec.type = quantfleet::GgmlType::kF16;
      else if (t == "bf16")
        spec.type = quantfleet::GgmlType::kBF16;
      else {
        absl::FPrintF(stderr, "quantfleet-testmodel: --type is f32, f16 or bf16\n");
        return 1;
      }
    } else if (!a.empty() && a[0] == '-') {
      absl::FPrintF(stderr, "quantfleet-testmodel: unknown option '%s'\n\n%s", a, kUsage);
      return 1;
    } else {
      out = a;
    }
  }
  if (out.empty()) {
    absl::FPrintF(stderr, "%s", kUsage);
    return 1;
  }
  if (spec.n_head <= 0 || spec.n_head_kv <= 0 || spec.n_embd % spec.n_head != 0 || spec.n_head % spec.n_head_kv != 0) {
    absl::FPrintF(stderr, "quantfleet-testmodel: --embd must divide by --heads, --heads by --heads-kv\n");
    return 1;
  }
  if (absl::Status s = quantfleet::WriteTestModel(spec, out); !s.ok()) {
    absl::FPrintF(stderr, "quantfleet-testmodel: %s\n", s.message());
    return 1;
  }
  if (!imatrix.empty()) {
    if (absl::Status s = quantfleet::WriteTestImatrix(spec, imatrix, format, spec.seed + 1000); !s.ok()) {
      absl::FPrintF(stderr, "quantfleet-testmodel: %s\n", s.message());
      return 1;
    }
  }
  return 0;
}
