// `quantfleet convert` against llama.cpp's convert_hf_to_gguf.py at the
// pinned version: for each architecture family, tokenizer kind, source
// dtype, sharding and output type, both convert the same checkpoint folder
// and the two GGUF files must be the same bytes.
//
// The script runs on Debian's python3-torch, numpy and sentencepiece with
// a stand-in for `transformers` (tests/conformance/hf_standin, which says
// what it does): AutoConfig reads config.json; AutoTokenizer reads
// tokenizer.json and tokenizes with Hugging Face's tokenizers library
// (npm @huggingface/tokenizers). The checkpoints are written from GGUF
// models: the trained model of ../shared/models (SentencePiece), and
// generated ones with the real vocabularies of llama.cpp's models/ folder.
#include <cstring>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/half.h"
#include "gtest/gtest.h"
#include "tests/conformance/oracle.h"
#include "tests/tools/hf_checkpoint_writer.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

std::string SharedModels() { return EnvOr("QUANTFLEET_SHARED_MODELS", QUANTFLEET_DEFAULT_SHARED_MODELS); }
std::string TrainedModel() { return SharedModels() + "/pystdlib-tiny/model-f16.gguf"; }

struct Case {
  std::string name;
  std::string arch;   // of the generated model; "trained": the shared model
  std::string vocab;  // ggml-vocab-NAME.gguf
  int n_expert = 0;
  HfCheckpointSpec checkpoint;
  std::string outtype = "auto";
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  auto add = [&](Case c) { cases.push_back(std::move(c)); };
  {
    Case c{"llama_spm_trained_f16", "trained", "", 0, {}, "auto"};
    add(c);
  }
  {
    Case c{"llama_spm_bf16_sharded_tied_to_q8_0", "trained", "", 0, {}, "q8_0"};
    c.checkpoint.dtype = "BF16";
    c.checkpoint.shards = 3;
    c.checkpoint.drop_output = true;
    add(c);
  }
  {
    Case c{"mistral_f32_to_bf16", "trained", "", 0, {}, "bf16"};
    c.checkpoint.dtype = "F32";
    c.checkpoint.architecture = "MistralForCausalLM";
    c.checkpoint.generation_config = false;
    // A model card: license, languages (with Norway's "no"), tags, base
    // models by id, by URL and as a mapping, datasets, a tab.
    c.checkpoint.model_card =
        "---\nlicense: apache-2.0\nlicense_name: my-license\nlicense_link: LICENSE\nlanguage:\n- en\n- no\n"
        "tags:\n- code\npipeline_tag: text-generation\nbase_model:\n- meta-llama/Meta-Llama-3.1-8B-Instruct\n"
        "- https://huggingface.co/mistralai/Mixtral-8x7B-v0.1\n- name: Custom Base\n  organization: Someone\n"
        "datasets: bigcode/the-stack-v2\nmodel_creator: Team\tTiny\n---\n\n# A model\n";
    add(c);
  }
  {
    Case c{"llama3_bpe_rope_scaling", "llama", "llama-bpe", 0, {}, "auto"};
    c.checkpoint.llama3_rope = true;
    add(c);
  }
  {
    Case c{"qwen2_bpe_to_f32", "qwen2", "qwen2", 0, {}, "f32"};
    c.checkpoint.chat_template = false;
    add(c);
  }
  {
    Case c{"qwen3_bf16_sharded", "qwen3", "qwen2", 0, {}, "auto"};
    c.checkpoint.dtype = "BF16";
    c.checkpoint.shards = 2;
    add(c);
  }
  {
    Case c{"qwen3moe_sharded", "qwen3moe", "qwen2", 4, {}, "auto"};
    c.checkpoint.shards = 3;
    add(c);
  }
  {
    Case c{"mixtral_spm_tied", "llama", "llama-spm", 4, {}, "auto"};
    c.checkpoint.shards = 2;
    c.checkpoint.drop_output = true;
    add(c);
  }
  return cases;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ConvertConformance : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertConformance, SameBytesAsConvertHfToGguf) {
  const Case& c = GetParam();
  const std::string dir = ::testing::TempDir() + "/convert-" + c.name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string source = TrainedModel();
  if (c.arch != "trained") {
    TestModelSpec spec;
    spec.arch = c.arch;
    spec.n_layer = 2;
    spec.n_embd = 64;
    spec.n_ff = c.n_expert > 1 ? 64 : 128;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.n_expert = c.n_expert;
    spec.type = GgmlType::kF16;
    spec.vocab_from = OracleDir() + "/llama.cpp/models/ggml-vocab-" + c.vocab + ".gguf";
    source = dir + "/source.gguf";
    ASSERT_TRUE(WriteTestModel(spec, source).ok());
  }
  // The folder's name feeds the converter's naming heuristics too.
  const std::string checkpoint = dir + "/Tiny-" + c.name + "-v0.1";
  ASSERT_TRUE(WriteHfCheckpoint(source, checkpoint, c.checkpoint).ok());

  const std::string theirs = dir + "/theirs.gguf", ours = dir + "/ours.gguf";
  ProcessResult ref = RunProcess(
      {"/usr/bin/env", "PYTHONPATH=" + std::string(QUANTFLEET_HF_STANDIN),
       "QUANTFLEET_HF_TOKENIZERS=" + OracleDir() + "/hf-tokenizers/package", "/usr/bin/python3",
       OracleDir() + "/llama.cpp/convert_hf_to_gguf.py", checkpoint, "--outfile", theirs, "--outtype", c.outtype},
      absl::Minutes(4));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  ProcessResult mine =
      RunProcess({Bin("quantfleet"), "convert", checkpoint, ours, "--outtype", c.outtype}, absl::Minutes(2));
  ASSERT_EQ(mine.exit_code, 0) << mine.output;

  absl::StatusOr<std::string> want = ReadRegularFile(theirs);
  absl::StatusOr<std::string> got = ReadRegularFile(ours);
  ASSERT_TRUE(want.ok() && got.ok());
  ASSERT_EQ(got->size(), want->size());
  size_t first_difference = 0;
  while (first_difference < want->size() && (*want)[first_difference] == (*got)[first_difference]) ++first_difference;
  EXPECT_EQ(first_difference, want->size()) << "the files differ first at byte " << first_difference;
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, ConvertConformance, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// The trained model written as a checkpoint (F16) and converted back:
// every matrix's bytes are those of the original GGUF (F16 into F16 is
// exact), the F32 norms come back as their F16 rounding (as the checkpoint
// holds them), and the tokenizer is the same.
TEST(ConvertRoundTrip, TrainedModelComesBackBitForBit) {
  const std::string dir = ::testing::TempDir() + "/convert-roundtrip";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WriteHfCheckpoint(TrainedModel(), dir + "/pystdlib-tiny", {}).ok());
  ProcessResult r =
      RunProcess({Bin("quantfleet"), "convert", dir + "/pystdlib-tiny", dir + "/back.gguf"}, absl::Minutes(2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  absl::StatusOr<GgufModel> original = GgufModel::Open(TrainedModel());
  absl::StatusOr<GgufModel> back = GgufModel::Open(dir + "/back.gguf");
  ASSERT_TRUE(original.ok() && back.ok());
  ASSERT_EQ(original->tensors().size(), back->tensors().size());
  for (const ModelTensor& t : original->tensors()) {
    const ModelTensor* u = nullptr;
    for (const ModelTensor& b : back->tensors()) {
      if (b.info.name == t.info.name) u = &b;
    }
    ASSERT_NE(u, nullptr) << t.info.name;
    EXPECT_EQ(u->info.type, t.info.type) << t.info.name;
    ASSERT_EQ(u->info.nbytes, t.info.nbytes) << t.info.name;
    if (t.info.type == GgmlType::kF16) {
      EXPECT_EQ(std::memcmp(u->data, t.data, t.info.nbytes), 0) << t.info.name;
      continue;
    }
    ASSERT_EQ(t.info.type, GgmlType::kF32) << t.info.name;
    for (int64_t i = 0; i < t.info.n_elements(); ++i) {
      float a, b;
      std::memcpy(&a, t.data + 4 * i, 4);
      std::memcpy(&b, u->data + 4 * i, 4);
      ASSERT_EQ(b, HalfToFloat(FloatToHalf(a))) << t.info.name << "[" << i << "]";
    }
  }
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                          "llama.rope.dimension_count", "llama.attention.head_count_kv"}) {
    const GgufKv* a = FindKv(original->kv(), key);
    const GgufKv* b = FindKv(back->kv(), key);
    ASSERT_TRUE(a != nullptr && b != nullptr) << key;
    EXPECT_EQ(a->raw, b->raw) << key;
    EXPECT_EQ(a->strings, b->strings) << key;
  }
}

}  // namespace
}  // namespace quantfleet
