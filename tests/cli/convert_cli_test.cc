// Hugging Face checkpoint folders as a user gives them to quantfleet:
// `convert` (its output, --json, --overwrite), every model-taking command
// reading the folder directly with the bytes of convert-then-run, on this
// machine and on a local cluster (quantization, the calibrated chain, an
// evaluation against the folder), and the refusals of folders it cannot
// convert, naming the file, the tensor or the architecture (exit 1, no
// output file left).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/io/mapped_file.h"
#include "nlohmann/json.hpp"
#include "tests/tools/hf_checkpoint_writer.h"
#include "tests/tools/safetensors_writer.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

std::string Bin() { return std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet"; }
std::string Trained() { return std::string(QUANTFLEET_DEFAULT_SHARED_MODELS) + "/pystdlib-tiny/model-f16.gguf"; }

ProcessResult Quantfleet(std::vector<std::string> args, absl::Duration timeout = absl::Minutes(2)) {
  args.insert(args.begin(), Bin());
  return RunProcess(args, timeout);
}

std::string Bytes(const fs::path& p) {
  absl::StatusOr<std::string> s = ReadRegularFile(p.string());
  return s.ok() ? *s : std::string("unreadable: ") + std::string(s.status().message());
}

// Whether two files hold the same bytes (without printing megabytes).
::testing::AssertionResult SameBytes(const fs::path& a, const fs::path& b) {
  if (Bytes(a) == Bytes(b)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << a << " and " << b << " differ";
}

class ConvertCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("convert-cli-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // The trained model as a checkpoint folder.
  fs::path TrainedFolder(const HfCheckpointSpec& spec = {}) {
    const fs::path folder = dir_ / "pystdlib-tiny";
    EXPECT_TRUE(WriteHfCheckpoint(Trained(), folder.string(), spec).ok());
    return folder;
  }
  fs::path dir_;
};

TEST_F(ConvertCli, Convert_WritesTheGgufAndSaysWhatItWrote) {
  const fs::path folder = TrainedFolder();
  ProcessResult help = Quantfleet({"convert", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--outtype"), std::string::npos) << help.output;

  ProcessResult r = Quantfleet({"convert", folder.string(), (dir_ / "out.gguf").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["tensors"], 39);
  EXPECT_EQ(j["bytes"], fs::file_size(dir_ / "out.gguf"));

  // An existing output is kept unless --overwrite.
  ProcessResult again = Quantfleet({"convert", folder.string(), (dir_ / "out.gguf").string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("exists"), std::string::npos) << again.output;
  ProcessResult overwrite =
      Quantfleet({"convert", folder.string(), (dir_ / "out.gguf").string(), "--overwrite", "--outtype", "q8_0"});
  EXPECT_EQ(overwrite.exit_code, 0) << overwrite.output;
  EXPECT_NE(overwrite.output.find("LlamaForCausalLM, 39 tensors"), std::string::npos) << overwrite.output;

  ProcessResult bad = Quantfleet({"convert", folder.string(), (dir_ / "x.gguf").string(), "--outtype", "q4_k"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("--outtype"), std::string::npos) << bad.output;
}

TEST_F(ConvertCli, QuantizeImatrixAndClusterTakeTheFolder_WithTheBytesOfConvertFirst) {
  HfCheckpointSpec spec;
  spec.dtype = "BF16";
  spec.shards = 2;
  const fs::path folder = TrainedFolder(spec);
  ASSERT_EQ(Quantfleet({"convert", folder.string(), (dir_ / "converted.gguf").string()}).exit_code, 0);
  const std::string text = std::string(QUANTFLEET_DEFAULT_SHARED_MODELS) + "/pystdlib-tiny/calib.txt";

  const std::vector<std::pair<std::string, std::string>> inputs = {{"folder", folder.string()},
                                                                   {"gguf", (dir_ / "converted.gguf").string()}};
  for (const auto& [tag, input] : inputs) {
    ProcessResult im = Quantfleet({"imatrix", "-m", input, "-f", text, "-c", "128", "--chunks", "3", "-t", "2", "-o",
                                   (dir_ / (tag + ".imatrix.gguf")).string()});
    ASSERT_EQ(im.exit_code, 0) << im.output;
  }
  // The quantized file names its importance matrix: both use one.
  for (const auto& [tag, input] : inputs) {
    ProcessResult q = Quantfleet({"quantize", "--imatrix", (dir_ / "gguf.imatrix.gguf").string(), input,
                                  (dir_ / (tag + ".q4km.gguf")).string(), "Q4_K_M", "2"});
    ASSERT_EQ(q.exit_code, 0) << q.output;
  }
  EXPECT_TRUE(SameBytes(dir_ / "folder.imatrix.gguf", dir_ / "gguf.imatrix.gguf"));
  EXPECT_TRUE(SameBytes(dir_ / "folder.q4km.gguf", dir_ / "gguf.q4km.gguf"));

  // A coordinator and two workers quantize the folder: the coordinator
  // serves the rows it converts, the same bytes again.
  ProcessResult cluster =
      Quantfleet({"cluster", "--workers", "2", folder.string(), (dir_ / "cluster.q3ks.gguf").string(), "Q3_K_S"});
  ASSERT_EQ(cluster.exit_code, 0) << cluster.output;
  ASSERT_EQ(Quantfleet({"quantize", folder.string(), (dir_ / "local.q3ks.gguf").string(), "Q3_K_S", "2"}).exit_code, 0);
  EXPECT_TRUE(SameBytes(dir_ / "cluster.q3ks.gguf", dir_ / "local.q3ks.gguf"));

  // Jobs whose workers copy the whole model: the coordinator converts the
  // folder once into its state directory. The calibrated chain's artifact
  // is what quantizing the folder with its importance matrix gives here.
  ProcessResult calibrated = Quantfleet({"cluster", "--workers", "2", "--calibration", text, "--ctx", "64", "--chunks",
                                         "2", folder.string(), (dir_ / "cal.gguf").string(), "Q4_K_M"});
  ASSERT_EQ(calibrated.exit_code, 0) << calibrated.output;
  ProcessResult local = Quantfleet({"quantize", "--imatrix", (dir_ / "cal.gguf.imatrix.gguf").string(), folder.string(),
                                    (dir_ / "cal-local.gguf").string(), "Q4_K_M", "2"});
  ASSERT_EQ(local.exit_code, 0) << local.output;
  EXPECT_TRUE(SameBytes(dir_ / "cal.gguf", dir_ / "cal-local.gguf"));
  // And an evaluation against the folder as the base model.
  ProcessResult evaluated = Quantfleet(
      {"cluster", "--workers", "2", "--eval", std::string(QUANTFLEET_DEFAULT_SHARED_MODELS) + "/pystdlib-tiny/eval.txt",
       "--eval-ctx", "128", "--eval-chunks", "2", folder.string(), (dir_ / "ev.gguf").string(), "Q4_K_M"});
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_NE(evaluated.output.find("mean KLD"), std::string::npos) << evaluated.output;
  EXPECT_TRUE(fs::exists(dir_ / "ev.gguf"));
  EXPECT_TRUE(fs::exists(dir_ / "ev.eval.json"));
}

TEST_F(ConvertCli, FoldersItCannotConvert_AreRefusedNamingWhatIsWrong) {
  const fs::path folder = TrainedFolder();
  auto refused = [&](const fs::path& input, const std::string& want) {
    ProcessResult r = Quantfleet({"convert", input.string(), (dir_ / "out.gguf").string()});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(want), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "out.gguf"));
    ProcessResult q = Quantfleet({"quantize", input.string(), (dir_ / "q.gguf").string(), "Q4_K_M"});
    EXPECT_EQ(q.exit_code, 1) << q.output;
    EXPECT_NE(q.output.find(want), std::string::npos) << q.output;
    EXPECT_FALSE(fs::exists(dir_ / "q.gguf"));
  };
  const std::string config = Bytes(folder / "config.json");

  // An architecture it does not convert, named.
  nlohmann::json other = nlohmann::json::parse(config);
  other["architectures"] = {"GPT2LMHeadModel"};
  std::ofstream(folder / "config.json") << other.dump();
  refused(folder, "architecture 'GPT2LMHeadModel' is not supported");
  std::ofstream(folder / "config.json") << config;

  // A truncated tokenizer.model, with the offset.
  const std::string spm = Bytes(folder / "tokenizer.model");
  std::ofstream(folder / "tokenizer.model", std::ios::binary) << spm.substr(0, spm.size() - 7);
  refused(folder, "tokenizer.model: not a SentencePiece model: at byte");
  std::ofstream(folder / "tokenizer.model", std::ios::binary) << spm;

  // A tensor the architecture has no name for (Qwen3's per-head norm in
  // a llama), and one of a type it does not convert.
  const nlohmann::json llama = nlohmann::json::parse(config);
  ASSERT_TRUE(WriteTestCheckpoint((dir_ / "extra").string(), llama.dump(),
                                  {{"model.layers.0.self_attn.q_norm.weight", "F32", {64}, std::string(64 * 4, '\0')}})
                  .ok());
  refused(dir_ / "extra", "tensor 'model.layers.0.self_attn.q_norm.weight': no llama tensor has this name");
  ASSERT_TRUE(WriteTestCheckpoint((dir_ / "int8").string(), llama.dump(),
                                  {{"model.layers.0.mlp.up_proj.weight", "I8", {4, 8}, std::string(32, '\1')}})
                  .ok());
  refused(dir_ / "int8", "tensor 'model.layers.0.mlp.up_proj.weight' is I8; only F32, F16 and BF16 are converted");
}

TEST_F(ConvertCli, MixtureOfExpertsWithAMissingExpert_IsRefused) {
  TestModelSpec spec;
  spec.n_layer = 1;
  spec.n_embd = 64;
  spec.n_ff = 64;
  spec.n_expert = 4;
  spec.type = GgmlType::kF16;
  ASSERT_TRUE(WriteTestVocab((dir_ / "vocab.gguf").string()).ok());
  spec.vocab_from = (dir_ / "vocab.gguf").string();
  ASSERT_TRUE(WriteTestModel(spec, (dir_ / "moe.gguf").string()).ok());
  const fs::path folder = dir_ / "moe";
  ASSERT_TRUE(WriteHfCheckpoint((dir_ / "moe.gguf").string(), folder.string(), {}).ok());
  ProcessResult ok = Quantfleet({"convert", folder.string(), (dir_ / "moe-ok.gguf").string()});
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  nlohmann::json config = nlohmann::json::parse(Bytes(folder / "config.json"));
  config["num_local_experts"] = 5;
  std::ofstream(folder / "config.json") << config.dump();
  ProcessResult r = Quantfleet({"convert", folder.string(), (dir_ / "moe.out.gguf").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("does not have all 5 experts"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace quantfleet
