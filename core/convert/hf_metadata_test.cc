// The converter's naming heuristics and size labels, against answers
// llama.cpp's gguf-py (the pinned version) gives for the same model ids.
#include "core/convert/hf_metadata.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

struct Expected {
  std::string id;
  int64_t params;
  std::optional<std::string> name, organization, basename, finetune, version, size_label;
};

TEST(SplitModelId, MatchesTheConvertersHeuristics) {
  const std::vector<Expected> cases = {
      {"meta-llama/Meta-Llama-3.1-8B-Instruct", 8030261248, "Meta-Llama-3.1-8B-Instruct", "meta-llama",
       "Meta-Llama-3.1", "Instruct", std::nullopt, "8B"},
      {"mistralai/Mixtral-8x7B-Instruct-v0.1", 46702792704, "Mixtral-8x7B-Instruct-v0.1", "mistralai", "Mixtral",
       "Instruct", "v0.1", "8x7B"},
      {"Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4", 7615616512, "Qwen2.5-Coder-7B-Instruct-GPTQ-Int4", "Qwen",
       "Qwen2.5-Coder", "Instruct-GPTQ-Int4", std::nullopt, "7B"},
      {"bloom-7b1", 7069016064, "bloom-7b1", std::nullopt, "bloom", std::nullopt, std::nullopt, "7.1B"},
      // 32k is far from the parameter count: a context length, kept in the finetune.
      {"Llama-2-7b-chat-hf-32k", 6738415616, "Llama-2-7b-chat-hf-32k", std::nullopt, "Llama-2", "chat-hf-32k",
       std::nullopt, "7B"},
      {"pystdlib-tiny", 20000000, "pystdlib-tiny", std::nullopt, std::nullopt, std::nullopt, std::nullopt,
       std::nullopt},
      {"./tmp", 0, "tmp", std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt},
  };
  for (const Expected& e : cases) {
    const ModelIdParts p = SplitModelId(e.id, e.params);
    EXPECT_EQ(p.name, e.name) << e.id;
    EXPECT_EQ(p.organization, e.organization) << e.id;
    EXPECT_EQ(p.basename, e.basename) << e.id;
    EXPECT_EQ(p.finetune, e.finetune) << e.id;
    EXPECT_EQ(p.version, e.version) << e.id;
    EXPECT_EQ(p.size_label, e.size_label) << e.id;
  }
}

TEST(SizeLabel, MatchesTheConvertersRounding) {
  EXPECT_EQ(SizeLabel({8030261248, 8030261248, 0, 0}), "8.0B");
  EXPECT_EQ(SizeLabel({46702792704, 1602781184, 5637144576, 8}), "8x7.2B");
  EXPECT_EQ(SizeLabel({0, 0, 0, 0}), "0.00K");
  EXPECT_EQ(SizeLabel({999, 999, 0, 0}), "1.0K");
  EXPECT_EQ(SizeLabel({20463872, 20463872, 0, 0}), "20M");
}

}  // namespace
}  // namespace quantfleet
