// GPTQ and AWQ checkpoints from a Hugging Face folder (the trained model
// of ../shared/models): read back by a dequantizer written from the
// formats' definitions (tests/tools/quantized_checkpoint_reader.h), every
// quantized matrix is exactly what the method chose, across bit widths,
// groupings and grids; the other tensors are the folder's bytes (AWQ's
// folded norms excepted); the config says how it was quantized; and,
// evaluated through our forward pass against the unquantized folder, GPTQ
// gives a lower KL divergence than rounding to nearest on the same grid.
// The command line path (`quantize --method gptq|awq|rtn --format ...`)
// as a user runs it.
#include "core/calibration/quantized_checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/calibration/calibration_chunks.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/io/mapped_file.h"
#include "core/model/runnable_model.h"
#include "core/safetensors/safetensors_file.h"
#include "nlohmann/json.hpp"
#include "tests/tools/hf_checkpoint_writer.h"
#include "tests/tools/quantized_checkpoint_reader.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

std::string Shared() { return std::string(QUANTFLEET_DEFAULT_SHARED_MODELS) + "/pystdlib-tiny"; }
std::string Bin() { return std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet"; }

class QuantizedCheckpoint : public ::testing::Test {
 protected:
  // Each test its own folder: ctest runs them as processes side by side.
  void SetUp() override {
    dir_ = new fs::path(
        fs::path(::testing::TempDir()) /
        ("quantized-checkpoint-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())));
    fs::remove_all(*dir_);
    ASSERT_TRUE(WriteHfCheckpoint(Shared() + "/model-f16.gguf", Folder(), {}).ok());
  }
  void TearDown() override {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Folder() { return (*dir_ / "pystdlib-tiny").string(); }
  // `n` chunks of `ctx` tokens of the calibration text.
  static std::vector<std::vector<TokenId>> Chunks(int n, int ctx) {
    absl::StatusOr<GgufModel> model = OpenModel(Folder());
    EXPECT_TRUE(model.ok());
    absl::StatusOr<RunnableModel> runnable = MakeRunnable(*model, Folder());
    absl::StatusOr<std::string> text = ReadRegularFile(Shared() + "/calib.txt");
    EXPECT_TRUE(runnable.ok() && text.ok());
    absl::StatusOr<std::vector<std::vector<TokenId>>> chunks =
        CutChunks(*runnable->vocab, runnable->tokenizer.Tokenize(*text, true, false), ctx, n);
    EXPECT_TRUE(chunks.ok());
    return *chunks;
  }
  // Mean KLD of the dequantized checkpoint at `dir` against the folder.
  static double Kld(const std::string& dir) {
    const std::string plain = dir + "-dequantized";
    EXPECT_TRUE(WriteDequantizedCheckpoint(dir, plain).ok());
    ProcessResult r = RunProcess({Bin(), "eval", "--base", Folder(), "--model", plain, "-f", Shared() + "/eval.txt",
                                  "-c", "256", "--chunks", "6", "-t", "2", "--json"},
                                 absl::Minutes(3));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    return j["kld"]["value"].get<double>();
  }
  static fs::path* dir_;
};
fs::path* QuantizedCheckpoint::dir_ = nullptr;

TEST_F(QuantizedCheckpoint, ReadsBackToTheSolversWeights_AcrossBitsGroupsAndGrids) {
  const std::vector<std::vector<TokenId>> chunks = Chunks(4, 128);
  struct Variant {
    CheckpointFormat format;
    int bits;
    int64_t group;
    bool symmetric, desc_act;
  };
  const CheckpointFormat gptq = CheckpointFormat::kGptq, awq = CheckpointFormat::kAwq;
  for (const Variant& v :
       {Variant{gptq, 4, 128, true, false}, Variant{gptq, 3, -1, false, false}, Variant{gptq, 8, 64, true, true},
        Variant{gptq, 2, 32, false, false}, Variant{awq, 4, 128, true, false}, Variant{awq, 4, 64, true, false}}) {
    const bool is_awq = v.format == awq;
    const std::string out =
        (*dir_ / absl::StrFormat("out-%s-%d-%d-%d", is_awq ? "awq" : "gptq", v.bits, v.group, v.symmetric)).string();
    QuantizedCheckpointOptions options;
    options.format = v.format;
    options.bits = v.bits;
    options.group_size = v.group;
    options.symmetric = v.symmetric;
    options.desc_act = v.desc_act;
    options.threads = 2;
    std::map<std::string, std::vector<float>> chosen;
    absl::StatusOr<QuantizedCheckpointReport> report = WriteQuantizedCheckpoint(
        Folder(), out, chunks, options, nullptr,
        [&](const std::string& name, const std::vector<float>& values, int64_t, int64_t) { chosen[name] = values; });
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->layers, 4);
    EXPECT_EQ(report->matrices, 28);
    absl::StatusOr<std::map<std::string, DequantizedMatrix>> read = ReadQuantizedCheckpoint(out);
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), 28u);
    for (const auto& [module, m] : *read) {
      const std::vector<float>& want = chosen[module + ".weight"];
      ASSERT_EQ(want.size(), m.values.size()) << module;
      size_t differ = 0;
      for (size_t i = 0; i < m.values.size(); ++i) differ += want[i] != m.values[i];
      EXPECT_EQ(differ, 0u) << module << " (" << v.bits << " bits, group " << v.group << ")";
    }
    // The unquantized tensors are the folder's own bytes; AWQ rewrites the
    // norms its scales fold into.
    absl::StatusOr<SafetensorsFile> in = SafetensorsFile::Open(Folder() + "/model.safetensors");
    absl::StatusOr<SafetensorsFile> written = SafetensorsFile::Open(out + "/model.safetensors");
    ASSERT_TRUE(in.ok() && written.ok());
    for (const char* name : {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                             "model.layers.2.input_layernorm.weight"}) {
      const SafetensorsTensor* a = in->Find(name);
      const SafetensorsTensor* b = written->Find(name);
      ASSERT_TRUE(a != nullptr && b != nullptr) << name;
      const bool same = std::string(reinterpret_cast<const char*>(a->data), a->nbytes) ==
                        std::string(reinterpret_cast<const char*>(b->data), b->nbytes);
      EXPECT_EQ(same, !(is_awq && absl::StrContains(name, "layernorm"))) << name;
    }
    const nlohmann::json config = nlohmann::json::parse(*ReadRegularFile(out + "/config.json"));
    const nlohmann::json& q = config["quantization_config"];
    EXPECT_EQ(q["bits"], v.bits);
    EXPECT_EQ(q["group_size"], v.group);
    if (is_awq) {
      EXPECT_EQ(q["quant_method"], "awq");
      EXPECT_EQ(q["version"], "gemm");
      EXPECT_EQ(q["zero_point"], true);
    } else {
      EXPECT_EQ(q["quant_method"], "gptq");
      EXPECT_EQ(q["checkpoint_format"], "gptq");
      EXPECT_EQ(q["sym"], v.symmetric);
      EXPECT_EQ(q["desc_act"], v.desc_act);
      EXPECT_TRUE(fs::exists(out + "/quantize_config.json"));
    }
    EXPECT_EQ(config["architectures"][0], "LlamaForCausalLM");
    EXPECT_TRUE(fs::exists(out + "/tokenizer.model"));
    EXPECT_TRUE(fs::exists(out + "/tokenizer_config.json"));
  }
}

// A mixture of experts (Mixtral's layout): every expert is its own module,
// read back to what was chosen for it; the router is copied.
TEST_F(QuantizedCheckpoint, MixtureOfExperts_EachExpertIsAModule) {
  TestModelSpec spec;
  spec.n_layer = 2;
  spec.n_embd = 64;
  spec.n_ff = 64;
  spec.n_expert = 4;
  spec.type = GgmlType::kF16;
  ASSERT_TRUE(WriteTestVocab((*dir_ / "vocab.gguf").string()).ok());
  spec.vocab_from = (*dir_ / "vocab.gguf").string();
  ASSERT_TRUE(WriteTestModel(spec, (*dir_ / "moe.gguf").string()).ok());
  const std::string folder = (*dir_ / "moe").string();
  ASSERT_TRUE(WriteHfCheckpoint((*dir_ / "moe.gguf").string(), folder, {}).ok());
  absl::StatusOr<GgufModel> model = OpenModel(folder);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<RunnableModel> runnable = MakeRunnable(*model, folder);
  ASSERT_TRUE(runnable.ok()) << runnable.status();
  const std::vector<TokenId> tokens = runnable->tokenizer.Tokenize(std::string(2000, 'a') + " bcd efg", true, false);
  absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(*runnable->vocab, tokens, 64, 4);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  for (CheckpointFormat format : {CheckpointFormat::kGptq, CheckpointFormat::kAwq}) {
    QuantizedCheckpointOptions options;
    options.format = format;
    options.group_size = 32;
    options.threads = 2;
    const std::string out = folder + (format == CheckpointFormat::kAwq ? "-awq" : "-gptq");
    std::map<std::string, std::vector<float>> chosen;
    absl::StatusOr<QuantizedCheckpointReport> report = WriteQuantizedCheckpoint(
        folder, out, *chunks, options, nullptr,
        [&](const std::string& name, const std::vector<float>& values, int64_t, int64_t) { chosen[name] = values; });
    ASSERT_TRUE(report.ok()) << report.status();
    // 2 layers x (4 attention matrices + 4 experts x 3).
    EXPECT_EQ(report->matrices, 2 * (4 + 4 * 3));
    absl::StatusOr<std::map<std::string, DequantizedMatrix>> read = ReadQuantizedCheckpoint(out);
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), chosen.size());
    EXPECT_TRUE(read->count("model.layers.1.block_sparse_moe.experts.3.w2"));
    for (const auto& [module, m] : *read) {
      const std::vector<float>& want = chosen[module + ".weight"];
      ASSERT_EQ(want, m.values) << module;
    }
    absl::StatusOr<SafetensorsFile> written = SafetensorsFile::Open(out + "/model.safetensors");
    ASSERT_TRUE(written.ok());
    const SafetensorsTensor* router = written->Find("model.layers.0.block_sparse_moe.gate.weight");
    ASSERT_NE(router, nullptr);
    EXPECT_EQ(router->shape, (std::vector<int64_t>{4, 64}));
    // AWQ folds the attention's scales only: the FFN's norm, which also
    // feeds the router, is the source's, byte for byte.
    absl::StatusOr<SafetensorsFile> source = SafetensorsFile::Open(folder + "/model.safetensors");
    ASSERT_TRUE(source.ok());
    for (int layer = 0; layer < 2; ++layer) {
      const std::string name = absl::StrFormat("model.layers.%d.post_attention_layernorm.weight", layer);
      const SafetensorsTensor* kept = written->Find(name);
      const SafetensorsTensor* original = source->Find(name);
      ASSERT_TRUE(kept != nullptr && original != nullptr) << name;
      ASSERT_EQ(kept->nbytes, original->nbytes) << name;
      EXPECT_EQ(std::memcmp(kept->data, original->data, kept->nbytes), 0) << name;
    }
  }
}

TEST_F(QuantizedCheckpoint, CommandLine_GptqAndAwqBeatRoundingToNearestOnTheSameGrid) {
  const std::string gptq = (*dir_ / "cli-gptq").string();
  ProcessResult r =
      RunProcess({Bin(), "quantize", "--method", "gptq", "--format", "gptq", "--calibration", Shared() + "/calib.txt",
                  "--chunks", "8", "--ctx", "256", "--bits", "4", "--json", Folder(), gptq, "2"},
                 absl::Minutes(5));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["matrices"], 28);
  // Each method against rounding to nearest on its format's grid, both
  // measured against the unquantized folder.
  auto versus_nearest = [&](const std::string& format, const std::string& method_dir) {
    const std::string nearest = (*dir_ / (format + "-rtn")).string();
    ProcessResult rtn = RunProcess({Bin(), "quantize", "--method", "rtn", "--format", format, Folder(), nearest, "2"},
                                   absl::Minutes(2));
    EXPECT_EQ(rtn.exit_code, 0) << rtn.output;
    const double kld = Kld(method_dir), kld_rtn = Kld(nearest);
    std::printf("%s 4-bit group 128: mean KLD %.6f, round to nearest %.6f (%.2fx)\n", format.c_str(), kld, kld_rtn,
                kld / kld_rtn);
    EXPECT_LT(kld, kld_rtn) << format;
  };
  versus_nearest("gptq", gptq);
  // AWQ's format: its scales against rounding to nearest on the same grid.
  const std::string awq = (*dir_ / "cli-awq").string();
  ProcessResult a = RunProcess({Bin(), "quantize", "--method", "awq", "--format", "awq", "--calibration",
                                Shared() + "/calib.txt", "--chunks", "8", "--ctx", "256", Folder(), awq, "2"},
                               absl::Minutes(5));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  versus_nearest("awq", awq);

  // Bad requests are refused naming the option.
  ProcessResult bits = RunProcess({Bin(), "quantize", "--method", "gptq", "--format", "gptq", "--calibration",
                                   Shared() + "/calib.txt", "--bits", "5", Folder(), gptq + "-5"},
                                  absl::Minutes(1));
  EXPECT_EQ(bits.exit_code, 1);
  EXPECT_NE(bits.output.find("--bits 5"), std::string::npos) << bits.output;
  ProcessResult gguf = RunProcess({Bin(), "quantize", "--method", "gptq", "--format", "gptq", "--calibration",
                                   Shared() + "/calib.txt", Shared() + "/model-f16.gguf", gptq + "-g"},
                                  absl::Minutes(1));
  EXPECT_EQ(gguf.exit_code, 1);
  EXPECT_NE(gguf.output.find("reads a Hugging Face checkpoint folder"), std::string::npos) << gguf.output;
}

}  // namespace
}  // namespace quantfleet
