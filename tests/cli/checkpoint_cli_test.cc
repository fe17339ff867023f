// `quantfleet inspect` on Hugging Face checkpoint folders and safetensors
// files, as a user runs it: what it shows, and the refusals of malformed
// checkpoints naming the file and what is wrong (exit 1).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"
#include "tests/tools/safetensors_writer.h"
#include "tests/tools/subprocess.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

constexpr char kConfig[] = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
  "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16,
  "torch_dtype": "bfloat16"})";

class CheckpointCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("ckpt-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
  }
  static std::vector<TestSafetensor> Tensors() {
    return {{"model.embed_tokens.weight", "BF16", {16, 8}, std::string(16 * 8 * 2, '\1')},
            {"model.layers.0.input_layernorm.weight", "F32", {8}, std::string(8 * 4, '\0')},
            {"model.layers.0.self_attn.q_proj.weight", "BF16", {8, 8}, std::string(8 * 8 * 2, '\2')},
            {"model.norm.weight", "F32", {8}, std::string(8 * 4, '\0')}};
  }
  ProcessResult Inspect(std::vector<std::string> args) {
    args.insert(args.begin(), {std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "inspect"});
    return RunProcess(args, absl::Seconds(30));
  }
  fs::path dir_;
};

TEST_F(CheckpointCli, ShardedFolder_ShowsArchitectureDtypesAndParameters) {
  ASSERT_TRUE(WriteTestCheckpoint(dir_.string(), kConfig, Tensors(), 2).ok());
  ProcessResult r = Inspect({"--tensors", dir_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Hugging Face checkpoint, LlamaForCausalLM, 2 shard(s), 4 tensors"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("tensors by dtype: BF16: 2, F32: 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[8, 8]"), std::string::npos) << r.output;

  ProcessResult j = Inspect({"--json", "--tensors", dir_.string()});
  ASSERT_EQ(j.exit_code, 0) << j.output;
  nlohmann::json doc = nlohmann::json::parse(j.output);
  EXPECT_EQ(doc["architecture"], "LlamaForCausalLM");
  EXPECT_EQ(doc["elements"], 16 * 8 + 8 + 64 + 8);
  EXPECT_EQ(doc["tensor_bytes"], (16 * 8 + 64) * 2 + 16 * 4);
  EXPECT_EQ(doc["shards"].size(), 2u);
  EXPECT_EQ(doc["tensors"].size(), 4u);
  EXPECT_EQ(doc["config"]["num_key_value_heads"], 1);
}

TEST_F(CheckpointCli, OneSafetensorsFile_IsShownToo) {
  ASSERT_TRUE(WriteTestCheckpoint(dir_.string(), kConfig, Tensors(), 1).ok());
  ProcessResult r = Inspect({(dir_ / "model.safetensors").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("safetensors, 4 tensors"), std::string::npos) << r.output;
}

TEST_F(CheckpointCli, AFolderWithoutTokenizer_IsRefusedSayingSo) {
  ASSERT_TRUE(WriteTestCheckpoint(dir_.string(), kConfig, Tensors(), 1).ok());
  ProcessResult r = RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "quantize", dir_.string(),
                                (dir_ / "out.gguf").string(), "Q4_K_M"},
                               absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no tokenizer.model and no tokenizer.json"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "out.gguf"));
}

TEST_F(CheckpointCli, MalformedCheckpoints_AreRefusedNamingTheFile) {
  ASSERT_TRUE(WriteTestCheckpoint(dir_.string(), kConfig, Tensors(), 2).ok());
  // A shard cut short: its last tensor runs past the end.
  const fs::path shard = dir_ / "model-00002-of-00002.safetensors";
  fs::resize_file(shard, fs::file_size(shard) - 1);
  ProcessResult cut = Inspect({dir_.string()});
  EXPECT_EQ(cut.exit_code, 1) << cut.output;
  EXPECT_NE(cut.output.find("model-00002-of-00002.safetensors: not a valid safetensors file: tensor"),
            std::string::npos)
      << cut.output;
  EXPECT_NE(cut.output.find("run past"), std::string::npos) << cut.output;
  fs::remove(shard);
  ProcessResult missing = Inspect({dir_.string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("lists shard model-00002-of-00002.safetensors, which is missing"), std::string::npos)
      << missing.output;
  fs::remove(dir_ / "config.json");
  ProcessResult no_config = Inspect({dir_.string()});
  EXPECT_EQ(no_config.exit_code, 1);
  EXPECT_NE(no_config.output.find("no readable config.json"), std::string::npos) << no_config.output;
}

}  // namespace
}  // namespace quantfleet
