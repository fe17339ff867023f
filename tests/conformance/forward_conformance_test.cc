// The forward pass against llama.cpp's llama_decode (through oracle-logits,
// built against the pinned libllama) on generated llama, qwen2 and qwen3
// models with real vocabularies and F32/F16/BF16 weights: the logits of
// every position of a real text agree to a tight tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/gguf/gguf_model.h"
#include "core/model/forward_pass.h"
#include "core/model/tokenizer.h"
#include "tests/conformance/oracle.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

struct Case {
  std::string arch;
  std::string vocab;
  GgmlType type;
  // max |ours - llama.cpp| over the largest |logit|. With BF16 weights both
  // round every activation to 8 significant bits before each product, so a
  // last-bit difference upstream can move a value by 2^-8: measured 4e-3
  // to 6e-3 here, against under 1e-3 for F32 and F16 weights.
  double tolerance;
  int n_expert = 0;  // > 1: a mixture of experts (2 used per token)
  // Set: the model is quantized to this file type first. Both sides then
  // quantize activations to Q8_0 or Q8_K before each product, where a
  // last-bit difference upstream can move a value by a whole step (about
  // 1/127 of its block's largest, against 2^-11 for F16): 1.4e-2 to 1.6e-2
  // over every CPU code path measured (tests/conformance/README.md), 1.9e-2
  // to 3.1e-2 without modelling that rounding.
  std::string quantize_to = "";
};

// gtest prints parameters in test lists and in ctest's names.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.arch << " " << c.vocab << " " << TypeName(c.type) << (c.quantize_to.empty() ? "" : " as ") << c.quantize_to;
}

class ForwardConformance : public ::testing::TestWithParam<Case> {};

TEST_P(ForwardConformance, LogitsAgreeWithLlamaDecode) {
  const Case& c = GetParam();
  const std::string dir = ::testing::TempDir() + "/forward-" + c.arch + "-" + std::to_string(c.n_expert) + "-" +
                          c.vocab + "-" + std::string(TypeName(c.type)) + c.quantize_to;
  std::filesystem::create_directories(dir);
  TestModelSpec spec;
  spec.arch = c.arch;
  spec.n_expert = c.n_expert;
  spec.n_layer = 3;
  spec.n_embd = 256;
  spec.n_ff = 640;
  spec.n_head = 8;
  spec.n_head_kv = 2;
  spec.type = c.type;
  spec.outliers = false;
  spec.zero_rows = false;
  spec.seed = 11;
  spec.scale = 0.05f;  // larger weights: logits that differ across tokens
  spec.vocab_from = OracleDir() + "/llama.cpp/models/ggml-vocab-" + c.vocab + ".gguf";
  std::string model_path = dir + "/model.gguf";
  ASSERT_TRUE(WriteTestModel(spec, model_path).ok());
  if (!c.quantize_to.empty()) {
    const std::string quantized = dir + "/model-" + c.quantize_to + ".gguf";
    ProcessResult q =
        RunProcess({Bin("quantfleet"), "quantize", model_path, quantized, c.quantize_to}, absl::Minutes(2));
    ASSERT_EQ(q.exit_code, 0) << q.output;
    model_path = quantized;
  }

  absl::StatusOr<GgufModel> file = GgufModel::Open(model_path);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<Vocab> vocab = Vocab::FromGguf(file->kv(), model_path);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(std::make_shared<const Vocab>(*std::move(vocab)));
  ASSERT_TRUE(tokenizer.ok());
  std::vector<TokenId> tokens = tokenizer->Tokenize(
      "The quick brown fox jumps over the lazy dog. Quantization turns large language models into small, fast "
      "ones on the hardware people already have: 3090s, 4090s, a P40 and a NAS.",
      true, false);
  ASSERT_GE(tokens.size(), 20u);
  {
    std::ofstream out(dir + "/tokens.txt");
    for (TokenId t : tokens) out << t << " ";
  }
  ProcessResult oracle = RunProcess(
      {OracleDir() + "/oracle-logits", model_path, dir + "/tokens.txt", dir + "/logits.bin"}, absl::Minutes(2));
  ASSERT_EQ(oracle.exit_code, 0) << oracle.output;

  absl::StatusOr<LlamaModel> model = LlamaModel::Load(*file, model_path);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> ours;
  ASSERT_TRUE(RunForward(*model, tokens, nullptr, &ours).ok());
  std::vector<float> want(ours.size());
  std::ifstream in(dir + "/logits.bin", std::ios::binary);
  in.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * sizeof(float)));
  ASSERT_EQ(in.gcount(), static_cast<std::streamsize>(want.size() * sizeof(float)));

  double largest = 0, worst = 0, spread = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    largest = std::max(largest, std::fabs(static_cast<double>(want[i])));
    const double d = std::fabs(static_cast<double>(ours[i]) - want[i]);
    if (d > worst) {
      worst = d;
      worst_at = i;
    }
  }
  const int n_vocab = model->hparams().n_vocab;
  for (int v = 0; v < n_vocab; ++v) spread = std::max(spread, std::fabs(double(want[v]) - want[n_vocab + v]));
  ASSERT_GT(spread, 1e-3 * largest) << "degenerate model: positions give the same logits";
  // One line per case for tests/conformance/variant_spread.sh.
  std::printf("spread: oracle %s | ours %s | worst %.3g | %zu tokens, worst |diff| %.3g of largest |logit| %.3g\n",
              OracleCpuVariant(oracle.output).c_str(), BlasKernelName().c_str(), worst / largest, tokens.size(), worst,
              largest);
  EXPECT_LE(worst / largest, c.tolerance) << "at position " << worst_at / n_vocab << ", token " << worst_at % n_vocab
                                          << ": ours " << ours[worst_at] << ", llama.cpp " << want[worst_at];
}

INSTANTIATE_TEST_SUITE_P(Models, ForwardConformance,
                         ::testing::Values(Case{"llama", "llama-spm", GgmlType::kF32, 1e-3},
                                           Case{"llama", "llama-bpe", GgmlType::kF16, 1e-3},
                                           Case{"qwen2", "qwen2", GgmlType::kF16, 1e-3},
                                           Case{"qwen3", "qwen2", GgmlType::kF16, 1e-3},
                                           Case{"llama", "gpt-2", GgmlType::kBF16, 1e-2},
                                           Case{"llama", "llama-spm", GgmlType::kF16, 1e-3, 8},
                                           Case{"qwen3moe", "qwen2", GgmlType::kF16, 1e-3, 4},
                                           Case{"llama", "llama-spm", GgmlType::kF16, 2e-2, 0, "Q8_0"},
                                           Case{"llama", "llama-bpe", GgmlType::kF16, 2e-2, 0, "Q4_K_M"},
                                           Case{"qwen2", "qwen2", GgmlType::kF16, 2e-2, 0, "Q4_0"}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = absl::StrCat(
                               info.param.arch, info.param.n_expert > 1 && info.param.arch == "llama" ? "_moe_" : "_",
                               info.param.vocab, "_", std::string(TypeName(info.param.type)),
                               info.param.quantize_to.empty() ? "" : "_as_" + info.param.quantize_to);
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

}  // namespace
}  // namespace quantfleet
