// `quantfleet imatrix` against llama-imatrix (built by fetch_oracle.sh from
// the pinned llama.cpp) on generated llama models that carry llama.cpp's own
// vocabulary files, over real text: the same entries, shapes and counts,
// values within 1e-3 relative (2e-3 for BF16 weights, see Case), the same
// metadata, and the same perplexity.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/imatrix_file.h"
#include "tests/conformance/oracle.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

struct Case {
  std::string vocab;
  GgmlType type;
  int n_embd;
  int n_head_kv;
  bool process_output;
  bool tied;
  // BF16 weights: llama.cpp rounds activations to BF16 (8 significant
  // bits) before the product, so a last-bit difference upstream moves a
  // value by up to 2^-8; sums over a few hundred tokens then agree to
  // about 1e-3, not better.
  double tolerance = 1e-3;
  std::string arch = "llama";
  int n_expert = 0;  // > 1: a mixture of experts (2 used per token)
  // Set: the model is first quantized to this file type, and both sides
  // calibrate the quantized model. llama.cpp quantizes the activations to
  // Q8_0 or Q8_K before each product, and so does quantfleet; an input a
  // hair away from a rounding boundary on one side lands a whole step
  // (1/127 of its block's largest value) away from the other's, so single
  // values agree to 1e-2 (3e-2 without modelling the rounding at all), and
  // their mean difference stays near 2e-4.
  std::string quantize_to = "";

  // Perplexity, relative to llama-imatrix's: float weights agree to 8e-6
  // under every CPU code path measured, quantized ones to 2.6e-4, since one
  // activation on the other side of a Q8 rounding step moves a chunk's
  // perplexity that much (tests/conformance/README.md has the table).
  double perplexity_tolerance() const { return quantize_to.empty() ? 1e-4 : 1e-3; }
};

// gtest prints parameters in test lists and in ctest's names.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.arch << " " << c.vocab << " " << TypeName(c.type) << (c.quantize_to.empty() ? "" : " as ") << c.quantize_to;
}

std::map<std::string, std::vector<float>> Tensors(const GgufModel& m) {
  std::map<std::string, std::vector<float>> out;
  for (const ModelTensor& t : m.tensors()) {
    std::vector<float> v(static_cast<size_t>(t.info.n_elements()));
    std::memcpy(v.data(), t.data, v.size() * 4);
    out[t.info.name] = std::move(v);
  }
  return out;
}

double Perplexity(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex(R"(Final estimate: PPL = ([0-9.]+))"))) return -1;
  return std::stod(m[1].str());
}

class ImatrixConformance : public ::testing::TestWithParam<Case> {};

TEST_P(ImatrixConformance, SameEntriesCountsAndValuesAsLlamaImatrix) {
  const Case& c = GetParam();
  const std::string dir = ::testing::TempDir() + "/imatrix-" + c.arch + "-" + std::to_string(c.n_expert) + "-" +
                          c.vocab + "-" + std::string(TypeName(c.type)) + c.quantize_to;
  std::filesystem::create_directories(dir);
  TestModelSpec spec;
  spec.n_layer = 2;
  spec.n_embd = c.n_embd;
  spec.n_ff = 2 * c.n_embd + 64;
  spec.n_head = 4;
  spec.n_head_kv = c.n_head_kv;
  spec.type = c.type;
  spec.tied_output = c.tied;
  spec.outliers = false;
  spec.zero_rows = false;
  spec.seed = 7;
  spec.arch = c.arch;
  spec.n_expert = c.n_expert;
  spec.vocab_from = OracleDir() + "/llama.cpp/models/ggml-vocab-" + c.vocab + ".gguf";
  std::string model = dir + "/model.gguf";
  ASSERT_TRUE(WriteTestModel(spec, model).ok());
  if (!c.quantize_to.empty()) {
    const std::string quantized = dir + "/model-" + c.quantize_to + ".gguf";
    ProcessResult q = RunProcess({Bin("quantfleet"), "quantize", model, quantized, c.quantize_to}, absl::Minutes(2));
    ASSERT_EQ(q.exit_code, 0) << q.output;
    model = quantized;
  }
  // Real text: llama.cpp's own documentation.
  const std::string text = OracleDir() + "/llama.cpp/docs/build.md";

  std::vector<std::string> common = {"-m", model, "-f", text, "-c", "128", "--chunks", "6"};
  if (c.process_output) common.push_back("--process-output");
  std::vector<std::string> ref_args = {
      OracleDir() + "/llama-imatrix", "-o", dir + "/ref.gguf", "-b", "128", "-ub", "128", "-fa", "off", "-t", "2"};
  ref_args.insert(ref_args.end(), common.begin(), common.end());
  ProcessResult ref = RunProcess(ref_args, absl::Minutes(3));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  std::vector<std::string> our_args = {Bin("quantfleet"), "imatrix", "-o", dir + "/ours.gguf"};
  our_args.insert(our_args.end(), common.begin(), common.end());
  ProcessResult ours = RunProcess(our_args, absl::Minutes(3));
  ASSERT_EQ(ours.exit_code, 0) << ours.output;

  absl::StatusOr<GgufModel> want = GgufModel::Open(dir + "/ref.gguf");
  absl::StatusOr<GgufModel> got = GgufModel::Open(dir + "/ours.gguf");
  ASSERT_TRUE(want.ok() && got.ok());
  for (const char* key : {"general.type", "imatrix.chunk_count", "imatrix.chunk_size", "imatrix.datasets"}) {
    const GgufKv* a = FindKv(want->kv(), key);
    const GgufKv* b = FindKv(got->kv(), key);
    ASSERT_TRUE(a != nullptr && b != nullptr) << key;
    EXPECT_EQ(a->raw, b->raw) << key;
    EXPECT_EQ(a->strings, b->strings) << key;
  }
  const auto w = Tensors(*want);
  const auto g = Tensors(*got);
  ASSERT_EQ(w.size(), g.size());
  // A tied output is token_embd.weight, which llama-imatrix never collects.
  EXPECT_EQ(w.count("output.weight.in_sum2"), c.process_output && !c.tied ? 1u : 0u);
  double worst = 0, sum = 0;
  int64_t values_compared = 0;
  std::string worst_at;
  for (const auto& [name, values] : w) {
    auto it = g.find(name);
    ASSERT_NE(it, g.end()) << name << " missing";
    ASSERT_EQ(it->second.size(), values.size()) << name;
    for (size_t i = 0; i < values.size(); ++i) {
      if (name.find(".counts") != std::string::npos) {
        EXPECT_EQ(it->second[i], values[i]) << name;
        continue;
      }
      const double a = values[i], b = it->second[i];
      const double rel = std::fabs(a - b) / std::max({std::fabs(a), std::fabs(b), 1e-30});
      sum += rel;
      ++values_compared;
      if (rel > worst) {
        worst = rel;
        worst_at = absl::StrFormat("%s[%d]: llama-imatrix %g, ours %g", name, i, a, b);
      }
    }
  }
  const double mean = sum / static_cast<double>(std::max<int64_t>(values_compared, 1));
  const double ppl_want = Perplexity(ref.output), ppl_got = Perplexity(ours.output);
  ASSERT_GT(ppl_want, 0) << ref.output;
  const double ppl_off = std::fabs(ppl_got / ppl_want - 1.0);
  // One line per case for tests/conformance/variant_spread.sh.
  std::printf("spread: oracle %s | ours %s | worst %.3g | mean %.3g | perplexity %.3g | %s\n",
              OracleCpuVariant(ref.output).c_str(), FindInOutput(ours.output, R"(forward pass on ([^\n;]+))").c_str(),
              worst, mean, ppl_off, worst_at.c_str());
  RecordProperty("worst_relative_difference", absl::StrFormat("%.3g", worst));
  EXPECT_LE(worst, c.tolerance) << worst_at;
  EXPECT_LE(mean, c.tolerance / 10) << "mean relative difference";
  EXPECT_LE(ppl_off, c.perplexity_tolerance()) << "perplexity " << ppl_got << " vs " << ppl_want;

  // The legacy .dat format says the same: the weights llama-quantize would
  // use from either file agree, and quantize takes ours.
  ref_args[2] = dir + "/ref.dat";
  ref_args.insert(ref_args.end(), {"--output-format", "dat"});
  ASSERT_EQ(RunProcess(ref_args, absl::Minutes(3)).exit_code, 0);
  our_args[3] = dir + "/ours.dat";
  ASSERT_EQ(RunProcess(our_args, absl::Minutes(3)).exit_code, 0);
  absl::StatusOr<Imatrix> want_dat = LoadImatrix(dir + "/ref.dat");
  absl::StatusOr<Imatrix> got_dat = LoadImatrix(dir + "/ours.dat");
  ASSERT_TRUE(want_dat.ok() && got_dat.ok()) << want_dat.status() << got_dat.status();
  EXPECT_EQ(want_dat->chunk_count, got_dat->chunk_count);
  EXPECT_EQ(want_dat->datasets, got_dat->datasets);
  ASSERT_EQ(want_dat->weights.size(), got_dat->weights.size());
  for (const auto& [name, values] : want_dat->weights) {
    const std::vector<float>& mine = got_dat->weights.at(name);
    ASSERT_EQ(mine.size(), values.size()) << name;
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_NEAR(mine[i] / values[i], 1.0, c.tolerance) << name << "[" << i << "]";
    }
  }
  // quantize takes our file (a quantized model needs --allow-requantize).
  std::vector<std::string> quantize = {Bin("quantfleet"), "quantize", "--imatrix", dir + "/ours.gguf"};
  if (!c.quantize_to.empty()) quantize.push_back("--allow-requantize");
  quantize.insert(quantize.end(), {model, dir + "/with-imatrix-Q4_K_M.gguf", "Q4_K_M"});
  ProcessResult quantized = RunProcess(quantize, absl::Minutes(3));
  EXPECT_EQ(quantized.exit_code, 0) << quantized.output;
}

INSTANTIATE_TEST_SUITE_P(
    Models, ImatrixConformance,
    ::testing::Values(Case{"llama-spm", GgmlType::kF32, 256, 2, false, false},
                      Case{"llama-bpe", GgmlType::kF16, 128, 1, true, false},
                      Case{"qwen2", GgmlType::kF16, 128, 4, true, true, 1e-3, "qwen2"},
                      Case{"qwen2", GgmlType::kF16, 128, 2, false, false, 1e-3, "qwen3"},
                      Case{"gpt-2", GgmlType::kBF16, 128, 2, false, false, 2e-3},
                      Case{"llama-spm", GgmlType::kF16, 128, 2, false, false, 1e-3, "llama", 4},
                      Case{"qwen2", GgmlType::kF16, 128, 2, true, false, 1e-3, "qwen3moe", 4},
                      Case{"llama-spm", GgmlType::kF16, 256, 2, true, false, 1e-2, "llama", 0, "Q8_0"},
                      Case{"llama-bpe", GgmlType::kF16, 256, 2, false, false, 1e-2, "llama", 0, "Q4_K_M"},
                      Case{"qwen2", GgmlType::kF16, 256, 2, false, false, 1e-2, "qwen2", 0, "Q4_0"},
                      Case{"llama-spm", GgmlType::kF16, 256, 2, false, false, 1e-2, "llama", 0, "IQ4_XS"}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = absl::StrCat(
          info.param.arch, info.param.n_expert > 1 && info.param.arch == "llama" ? "_moe_" : "_", info.param.vocab, "_",
          std::string(TypeName(info.param.type)), info.param.process_output ? "_output" : "",
          info.param.tied ? "_tied" : "", info.param.quantize_to.empty() ? "" : "_as_" + info.param.quantize_to);
      for (char& ch : n) ch = ch == '-' ? '_' : ch;
      return n;
    });

}  // namespace
}  // namespace quantfleet
