// The forward pass's results do not depend on how many threads it runs on:
// the products are cut into blocks by their shape alone.
#include "core/model/forward_pass.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/gguf/gguf_model.h"
#include "core/model/llama_model.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

TEST(ForwardPass, TheLogitsAreTheSameBitsOnOneThreadOrSeveral) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("qf-forward-" + std::to_string(getpid()) + ".gguf")).string();
  for (const GgmlType type : {GgmlType::kF16, GgmlType::kF32}) {
    TestModelSpec spec;  // wide enough that every product is cut into several blocks
    spec.n_layer = 2;
    spec.n_embd = 1024;
    spec.n_ff = 2816;
    spec.n_head = 16;
    spec.n_head_kv = 4;
    spec.type = type;
    ASSERT_TRUE(WriteTestModel(spec, path).ok());
    absl::StatusOr<GgufModel> file = GgufModel::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    absl::StatusOr<LlamaModel> model = LlamaModel::Load(*file, path);
    ASSERT_TRUE(model.ok()) << model.status();
    std::vector<TokenId> tokens;
    for (int i = 0; i < 96; ++i) tokens.push_back(static_cast<TokenId>((i * 37 + 1) % spec.n_vocab));
    std::vector<std::vector<float>> logits(3);
    const int threads[] = {1, 3, 4};
    for (size_t i = 0; i < logits.size(); ++i) {
      SetBlasThreads(threads[i]);
      ASSERT_TRUE(RunForward(*model, tokens, nullptr, &logits[i]).ok());
    }
    SetBlasThreads(0);
    ASSERT_EQ(logits[0].size(), tokens.size() * static_cast<size_t>(spec.n_vocab));
    for (size_t i = 1; i < logits.size(); ++i) {
      EXPECT_EQ(std::memcmp(logits[0].data(), logits[i].data(), logits[0].size() * sizeof(float)), 0)
          << TypeName(type) << ": " << threads[i] << " threads give other logits than 1";
    }
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace quantfleet
