// The calibration forward pass on a GPU against the CPU path, on generated
// models with a small SentencePiece vocabulary: statistics and perplexity
// sums within rounding of the CPU's, the same bits on a second run and when
// run as two pipeline stages, and `quantfleet imatrix --gpu` writing a file
// that agrees with the CPU's. Where no GPU is visible, `--gpu` must be
// refused with the reason, and the comparisons skip saying so.
#include "core/gpu/gpu_forward.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "core/calibration/chunk_run.h"
#include "core/gguf/gguf_model.h"
#include "core/gpu/gpu_devices.h"
#include "core/model/llama_model.h"
#include "core/quant/imatrix_file.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

// The quantfleet binary: beside the build's, or in $QUANTFLEET_BIN_DIR (the
// device check's folder on a GPU machine).
std::string Quantfleet() {
  const char* env = std::getenv("QUANTFLEET_BIN_DIR");
  return std::string(env != nullptr ? env : QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet";
}

struct Case {
  std::string arch;
  GgmlType type;
  double tolerance;  // worst relative difference of a statistic
};

// gtest prints parameters in test lists and in ctest's names.
void PrintTo(const Case& c, std::ostream* os) { *os << c.arch << " " << TypeName(c.type); }

class GpuForwardTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / absl::StrFormat("qf-gpu-forward-%d", getpid())).string();
    fs::create_directories(dir_);
    ASSERT_TRUE(WriteTestVocab(dir_ + "/vocab.gguf").ok());
    TestModelSpec spec;
    spec.arch = GetParam().arch;
    spec.type = GetParam().type;
    spec.n_layer = 2;
    spec.n_embd = 256;
    spec.n_ff = 512;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.outliers = false;
    spec.zero_rows = false;
    spec.vocab_from = dir_ + "/vocab.gguf";
    ASSERT_TRUE(WriteTestModel(spec, Model()).ok());
    absl::StatusOr<GgufModel> file = GgufModel::Open(Model());
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::make_unique<GgufModel>(*std::move(file));
    absl::StatusOr<LlamaModel> model = LlamaModel::Load(*file_, Model());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::make_unique<LlamaModel>(*std::move(model));
    for (int i = 0; i < 128; ++i) tokens_.push_back((i * 31 + 7) % model_->hparams().n_vocab);
    tokens_[0] = 1;
    std::ofstream text(dir_ + "/text.txt");
    for (int i = 0; i < 40; ++i) text << "pack my box with five dozen liquor jugs and the quick brown fox ";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Model() const { return dir_ + "/model.gguf"; }

  std::string dir_;
  std::unique_ptr<GgufModel> file_;
  std::unique_ptr<LlamaModel> model_;
  std::vector<TokenId> tokens_;
};

double WorstRelative(const ChunkStatistics& a, const ChunkStatistics& b, std::string* where) {
  double worst = 0;
  for (const auto& [name, e] : a.imatrix.entries()) {
    auto it = b.imatrix.entries().find(name);
    if (it == b.imatrix.entries().end() || it->second.sums.size() != e.sums.size() || it->second.counts != e.counts) {
      *where = name + " missing or shaped differently";
      return INFINITY;
    }
    for (size_t i = 0; i < e.sums.size(); ++i) {
      const double x = e.sums[i], y = it->second.sums[i];
      const double rel = std::fabs(x - y) / std::max({std::fabs(x), std::fabs(y), 1e-30});
      if (rel > worst) {
        worst = rel;
        *where = absl::StrFormat("%s[%d]: CPU %g, GPU %g", name, i, x, y);
      }
    }
  }
  return worst;
}

TEST_P(GpuForwardTest, AgreesWithTheCpuAndWithItself) {
  if (ListGpus().empty()) {
    // No GPU: the command must say so rather than fall back silently.
    ProcessResult r = RunProcess({Quantfleet(), "imatrix", "-m", Model(), "-f", dir_ + "/text.txt", "-o",
                                  dir_ + "/gpu.gguf", "-c", "64", "--gpu", "auto"},
                                 absl::Minutes(1));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("--gpu auto: "), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ + "/gpu.gguf"));
    GTEST_SKIP() << "no GPU here: " << NoGpuReason();
  }
  absl::StatusOr<ChunkStatistics> cpu = RunChunk(*model_, tokens_, /*process_output=*/true, /*perplexity=*/true);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  absl::StatusOr<std::unique_ptr<GpuForward>> gpu = GpuForward::Create(*model_, 0, 0, 2);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  std::vector<float> hidden;
  absl::StatusOr<ChunkStatistics> first = (*gpu)->RunChunk(tokens_, &hidden, true, true);
  ASSERT_TRUE(first.ok()) << first.status();
  std::string where;
  const double worst = WorstRelative(*cpu, *first, &where);
  std::printf("%s %s: worst relative difference %.3g (%s); nll CPU %.6f GPU %.6f\n", GetParam().arch.c_str(),
              std::string(TypeName(GetParam().type)).c_str(), worst, where.c_str(), cpu->nll, first->nll);
  EXPECT_LE(worst, GetParam().tolerance) << where;
  EXPECT_EQ(first->predictions, cpu->predictions);
  EXPECT_NEAR(first->nll / cpu->nll, 1.0, 1e-4);

  // A second run, and two pipeline stages on the GPU, give the same bits.
  absl::StatusOr<ChunkStatistics> again = (*gpu)->RunChunk(tokens_, &hidden, true, true);
  ASSERT_TRUE(again.ok()) << again.status();
  const ImatrixLayout layout = ImatrixLayoutOf(*file_, true);
  EXPECT_TRUE(*EncodeChunk(*again, layout) == *EncodeChunk(*first, layout)) << "two GPU runs differ";
  absl::StatusOr<std::unique_ptr<GpuForward>> s0 = GpuForward::Create(*model_, 0, 0, 1);
  absl::StatusOr<std::unique_ptr<GpuForward>> s1 = GpuForward::Create(*model_, 0, 1, 2);
  ASSERT_TRUE(s0.ok() && s1.ok());
  std::vector<float> between;
  absl::StatusOr<ChunkStatistics> a = (*s0)->RunChunk(tokens_, &between, true, true);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<ChunkStatistics> b = (*s1)->RunChunk(tokens_, &between, true, true);
  ASSERT_TRUE(b.ok()) << b.status();
  ChunkStatistics staged(true);
  staged.Add(*a);
  staged.Add(*b);
  EXPECT_TRUE(*EncodeChunk(staged, layout) == *EncodeChunk(*first, layout)) << "stages differ from the whole";

  // The command: a file that agrees with the CPU's.
  ProcessResult on_gpu = RunProcess({Quantfleet(), "imatrix", "-m", Model(), "-f", dir_ + "/text.txt", "-o",
                                     dir_ + "/gpu.gguf", "-c", "64", "--gpu", "auto"},
                                    absl::Minutes(2));
  ASSERT_EQ(on_gpu.exit_code, 0) << on_gpu.output;
  ProcessResult on_cpu = RunProcess(
      {Quantfleet(), "imatrix", "-m", Model(), "-f", dir_ + "/text.txt", "-o", dir_ + "/cpu.gguf", "-c", "64"},
      absl::Minutes(2));
  ASSERT_EQ(on_cpu.exit_code, 0) << on_cpu.output;
  absl::StatusOr<Imatrix> g = LoadImatrix(dir_ + "/gpu.gguf");
  absl::StatusOr<Imatrix> c = LoadImatrix(dir_ + "/cpu.gguf");
  ASSERT_TRUE(g.ok() && c.ok());
  ASSERT_EQ(g->weights.size(), c->weights.size());
  for (const auto& [name, values] : c->weights) {
    const std::vector<float>& mine = g->weights.at(name);
    ASSERT_EQ(mine.size(), values.size()) << name;
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_NEAR(mine[i] / values[i], 1.0, GetParam().tolerance) << name << "[" << i << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GpuForwardTest,
                         ::testing::Values(Case{"llama", GgmlType::kF16, 1e-3}, Case{"llama", GgmlType::kF32, 1e-3},
                                           Case{"qwen2", GgmlType::kF16, 1e-3}, Case{"qwen3", GgmlType::kF16, 1e-3},
                                           Case{"llama", GgmlType::kBF16, 2e-3}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.arch + "_" + std::string(TypeName(info.param.type));
                         });

}  // namespace
}  // namespace quantfleet
