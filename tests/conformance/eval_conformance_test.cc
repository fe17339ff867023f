// `quantfleet eval` against llama-perplexity (built by fetch_oracle.sh from
// the pinned llama.cpp), which needs two runs and a logits file for the same
// numbers: `--kl-divergence-base` over the base model, then
// `--kl-divergence` over the quantized one. On the trained pystdlib-tiny
// model (../shared/models) and on a generated one, quantized by quantfleet
// (llama-quantize's bytes): the quantized model's perplexity and the base
// model's within 1e-3 relative, the mean KL divergence within 2% relative
// (llama.cpp stores the base log-probabilities in 16 bits, which moves its
// KLD by about 1% on these models; we use them unrounded), and the same top
// token as often to within half a percentage point.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/conformance/oracle.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

std::string SharedModels() { return EnvOr("QUANTFLEET_SHARED_MODELS", QUANTFLEET_DEFAULT_SHARED_MODELS); }

struct Case {
  std::string name;
  std::string type;  // the quantization measured
  bool trained;      // pystdlib-tiny; otherwise a generated llama
  int ctx;
  int chunks;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// The number after "LABEL :" or "LABEL =" in llama-perplexity's output.
double Number(const std::string& output, const std::string& label) {
  const std::string found = FindInOutput(output, label + R"( *[:=] *([-0-9.]+))");
  return found == "unknown" ? std::nan("") : std::stod(found);
}

// llama.cpp's KL divergence takes two llama-perplexity runs: the base model
// over the text, saving its logits, then a model scored against them.
std::vector<std::string> LlamaShape(int ctx) {
  return {"-c", absl::StrCat(ctx), "-b", absl::StrCat(ctx), "-fa", "off", "-t", "2"};
}
ProcessResult LlamaSaveBaseLogits(const std::string& base, const std::string& text, int chunks, int ctx,
                                  const std::string& logits) {
  std::vector<std::string> run = {OracleDir() + "/llama-perplexity",
                                  "-m",
                                  base,
                                  "-f",
                                  text,
                                  "--chunks",
                                  absl::StrCat(chunks),
                                  "--kl-divergence-base",
                                  logits};
  for (const std::string& a : LlamaShape(ctx)) run.push_back(a);
  return RunProcess(run, absl::Minutes(3));
}
ProcessResult LlamaKldAgainst(const std::string& model, int ctx, const std::string& logits) {
  std::vector<std::string> run = {
      OracleDir() + "/llama-perplexity", "-m", model, "--kl-divergence-base", logits, "--kl-divergence"};
  for (const std::string& a : LlamaShape(ctx)) run.push_back(a);
  return RunProcess(run, absl::Minutes(3));
}

// Expects `r` to have succeeded; says whether it did.
bool Succeeded(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0;
}

// llama-perplexity's mean KL divergence of `model` against saved base logits.
double LlamaMeanKld(const std::string& model, int ctx, const std::string& logits) {
  ProcessResult r = LlamaKldAgainst(model, ctx, logits);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return Number(r.output, "Mean    KLD");
}

class EvalConformance : public ::testing::TestWithParam<Case> {};

TEST_P(EvalConformance, SameNumbersAsLlamaPerplexity) {
  const Case& c = GetParam();
  const std::string dir = ::testing::TempDir() + "/eval-" + c.name;
  std::filesystem::create_directories(dir);
  std::string base, text;
  if (c.trained) {
    base = SharedModels() + "/pystdlib-tiny/model-f16.gguf";
    text = SharedModels() + "/pystdlib-tiny/eval.txt";
    ASSERT_TRUE(std::filesystem::exists(base)) << base << " is missing: the trained model comes with ../shared";
  } else {
    TestModelSpec spec;
    spec.n_layer = 2;
    spec.n_embd = 256;
    spec.n_ff = 576;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.type = GgmlType::kF16;
    spec.outliers = false;
    spec.zero_rows = false;
    spec.scale = 0.05f;
    spec.seed = 5;
    spec.vocab_from = OracleDir() + "/llama.cpp/models/ggml-vocab-llama-spm.gguf";
    base = dir + "/base.gguf";
    ASSERT_TRUE(WriteTestModel(spec, base).ok());
    text = OracleDir() + "/llama.cpp/docs/build.md";
  }
  const std::string quantized = dir + "/model-" + c.type + ".gguf";
  ProcessResult q = RunProcess({Bin("quantfleet"), "quantize", base, quantized, c.type}, absl::Minutes(2));
  ASSERT_EQ(q.exit_code, 0) << q.output;

  ProcessResult ref_base = LlamaSaveBaseLogits(base, text, c.chunks, c.ctx, dir + "/base.logits");
  ASSERT_EQ(ref_base.exit_code, 0) << ref_base.output;
  ProcessResult ref = LlamaKldAgainst(quantized, c.ctx, dir + "/base.logits");
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  ProcessResult ours = RunProcess({Bin("quantfleet"), "eval", "--json", "--base", base, "--model", quantized, "-f",
                                   text, "-c", absl::StrCat(c.ctx), "--chunks", absl::StrCat(c.chunks)},
                                  absl::Minutes(3));
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  const nlohmann::json got = nlohmann::json::parse(ours.output.substr(ours.output.find('{')), nullptr, false);
  ASSERT_TRUE(got.is_object()) << ours.output;

  const double ppl_base = Number(ref_base.output, "Final estimate: PPL");
  const double ppl = Number(ref.output, R"(Mean PPL\(Q\))");
  const double kld = Number(ref.output, "Mean    KLD");
  const double same_top = Number(ref.output, "Same top p") / 100;
  ASSERT_FALSE(std::isnan(ppl_base) || std::isnan(ppl) || std::isnan(kld) || std::isnan(same_top))
      << ref_base.output << ref.output;
  const double got_ppl = got["ppl"]["value"], got_base = got["ppl_base"]["value"], got_kld = got["kld"]["value"];
  const double got_top = got["same_top"]["value"];
  std::printf(
      "oracle %s: PPL(Q) %.6f vs %.6f, PPL(base) %.4f vs %.4f, KLD %.6f vs %.6f (%.2f%%), same top %.4f vs %.4f\n",
      OracleCpuVariant(ref.output).c_str(), got_ppl, ppl, got_base, ppl_base, got_kld, kld,
      100 * std::fabs(got_kld / kld - 1), got_top, same_top);
  EXPECT_NEAR(got_ppl / ppl, 1.0, 1e-3);
  EXPECT_NEAR(got_base / ppl_base, 1.0, 1e-3);
  EXPECT_NEAR(got_kld / kld, 1.0, 0.02);
  // The generated model's logits are nearly uniform (its PPL is about its
  // vocabulary's size): which token is on top is decided by rounding, and
  // any two sums of the same products flip a few of its 504 positions. The
  // trained model's tops are real predictions.
  EXPECT_NEAR(got_top, same_top, c.trained ? 0.005 : 0.02);
  EXPECT_GT(got_kld, 0.0) << "a quantized model predicts differently from its base";
}

INSTANTIATE_TEST_SUITE_P(Models, EvalConformance,
                         ::testing::Values(Case{"pystdlib_tiny_Q4_K_M", "Q4_K_M", true, 256, 20},
                                           Case{"pystdlib_tiny_Q6_K", "Q6_K", true, 256, 20},
                                           Case{"pystdlib_tiny_IQ4_XS", "IQ4_XS", true, 256, 20},
                                           Case{"generated_Q4_K_M", "Q4_K_M", false, 128, 8}),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// The best mix for a size, judged by llama.cpp itself: at the size of
// llama.cpp's Q4_K_M of the trained model (same imatrix), the file that
// --target-size writes loads in llama-perplexity and has a lower mean KL
// divergence there than the recipe's file.
TEST(TargetSize, BeatsTheRecipeAtItsSizeAsLlamaPerplexityMeasuresIt) {
  const std::string dir = ::testing::TempDir() + "/target-size";
  std::filesystem::create_directories(dir);
  const std::string base = SharedModels() + "/pystdlib-tiny/model-f16.gguf";
  const std::string calib = SharedModels() + "/pystdlib-tiny/calib.txt";
  const std::string text = SharedModels() + "/pystdlib-tiny/eval.txt";
  ASSERT_TRUE(std::filesystem::exists(base)) << base << " is missing: the trained model comes with ../shared";
  ASSERT_TRUE(Succeeded(RunProcess({Bin("quantfleet"), "imatrix", "-m", base, "-f", calib, "-c", "256", "--chunks",
                                    "16", "-o", dir + "/imatrix.gguf"},
                                   absl::Minutes(3))));
  const std::string recipe = dir + "/recipe.gguf", mix = dir + "/mix.gguf";
  ASSERT_TRUE(Succeeded(RunProcess(
      {Bin("quantfleet"), "quantize", "--imatrix", dir + "/imatrix.gguf", base, recipe, "Q4_K_M"}, absl::Minutes(2))));
  const uint64_t size = std::filesystem::file_size(recipe);
  ASSERT_TRUE(Succeeded(RunProcess({Bin("quantfleet"), "quantize", "--imatrix", dir + "/imatrix.gguf", "--target-size",
                                    absl::StrCat(size), "--calibration", calib, "--chunks", "3", base, mix, "Q4_K_M"},
                                   absl::Minutes(4))));
  EXPECT_LE(std::filesystem::file_size(mix), size);

  ASSERT_TRUE(Succeeded(LlamaSaveBaseLogits(base, text, 40, 256, dir + "/base.logits")));
  const double recipe_kld = LlamaMeanKld(recipe, 256, dir + "/base.logits"),
               mix_kld = LlamaMeanKld(mix, 256, dir + "/base.logits");
  std::printf("llama-perplexity, %d bytes: Q4_K_M KLD %.6f, best mix KLD %.6f (%.2fx)\n", static_cast<int>(size),
              recipe_kld, mix_kld, mix_kld / recipe_kld);
  EXPECT_LT(mix_kld, recipe_kld);
}

// GPTQ, judged by llama.cpp itself: on the trained model, Q4_K_M by
// --method gptq is a file of the same size that llama-perplexity loads,
// and its mean KL divergence there is lower than llama.cpp's own Q4_K_M
// with an importance matrix of the same calibration text.
TEST(Gptq, BeatsTheImatrixQuantizerAtTheSameSizeAsLlamaPerplexityMeasuresIt) {
  const std::string dir = ::testing::TempDir() + "/gptq";
  std::filesystem::create_directories(dir);
  const std::string base = SharedModels() + "/pystdlib-tiny/model-f16.gguf";
  const std::string calib = SharedModels() + "/pystdlib-tiny/calib.txt";
  const std::string text = SharedModels() + "/pystdlib-tiny/eval.txt";
  ASSERT_TRUE(std::filesystem::exists(base)) << base << " is missing: the trained model comes with ../shared";
  const std::string imatrix = dir + "/imatrix.gguf", rtn = dir + "/rtn.gguf", gptq = dir + "/gptq.gguf";
  ASSERT_TRUE(Succeeded(
      RunProcess({Bin("quantfleet"), "imatrix", "-m", base, "-f", calib, "-c", "256", "--chunks", "8", "-o", imatrix},
                 absl::Minutes(3))));
  ASSERT_TRUE(Succeeded(
      RunProcess({OracleDir() + "/llama-quantize", "--imatrix", imatrix, base, rtn, "Q4_K_M"}, absl::Minutes(2))));
  ASSERT_TRUE(Succeeded(RunProcess({Bin("quantfleet"), "quantize", "--method", "gptq", "--calibration", calib, "--ctx",
                                    "256", "--chunks", "8", "--imatrix", imatrix, base, gptq, "Q4_K_M"},
                                   absl::Minutes(3))));
  EXPECT_EQ(std::filesystem::file_size(gptq), std::filesystem::file_size(rtn));

  ASSERT_TRUE(Succeeded(LlamaSaveBaseLogits(base, text, 40, 256, dir + "/base.logits")));
  const double rtn_kld = LlamaMeanKld(rtn, 256, dir + "/base.logits"),
               gptq_kld = LlamaMeanKld(gptq, 256, dir + "/base.logits");
  std::printf("llama-perplexity, Q4_K_M: llama-quantize + imatrix KLD %.6f, GPTQ KLD %.6f (%.2fx)\n", rtn_kld, gptq_kld,
              gptq_kld / rtn_kld);
  EXPECT_LT(gptq_kld, rtn_kld);
}

}  // namespace
}  // namespace quantfleet
