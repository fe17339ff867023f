// Synthetic Llama-style GGUF models and importance matrices for tests and
// benchmarks: seeded random weights with outlier columns and rare spikes,
// in F32, F16 or BF16, tied or untied output, grouped-query attention, any
// layer count, a shuffled tensor order, odd row lengths that force every
// fallback, optionally written as a split model.
//
// Thread-safety: pure functions writing to the paths given.
#ifndef QUANTFLEET_TESTS_TOOLS_TEST_MODEL_H_
#define QUANTFLEET_TESTS_TOOLS_TEST_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

struct TestModelSpec {
  int n_layer = 2;
  int n_embd = 256;
  int n_ff = 512;
  int n_head = 4;
  int n_head_kv = 2;
  int n_vocab = 320;
  int n_expert = 0;                // > 1: mixture-of-experts FFN (3D tensors)
  GgmlType type = GgmlType::kF32;  // F32, F16 or BF16 for 2D weights
  bool tied_output = false;        // no output.weight
  bool shuffle = false;            // tensors in random file order
  int n_split = 1;                 // > 1: NAME-0000i-of-0000N.gguf parts
  uint32_t alignment = 0;          // 0: default, no general.alignment key
  uint64_t seed = 1;
  float scale = 0.02f;
  bool outliers = true;   // outlier columns and rare spikes
  bool zero_rows = true;  // some all-zero rows and subnormals
  std::string name = "quantfleet-test";
  // "llama", "qwen2" (Q/K/V biases), "qwen3" (per-head Q/K norms) or
  // "qwen3moe" (qwen3 with n_expert experts).
  std::string arch = "llama";
  // A GGUF file whose tokenizer.* metadata the model takes (llama.cpp's
  // models/ggml-vocab-*.gguf); n_vocab then follows its token list.
  std::string vocab_from;
};

// Writes the model. For n_split > 1, `path` must end in
// "-00001-of-0000N.gguf" and names the first part.
absl::Status WriteTestModel(const TestModelSpec& spec, const std::string& path);

// Writes a metadata-only GGUF with a small SentencePiece vocabulary: the
// control tokens, the 256 byte tokens, the visible space and the lower-case
// letters, so any text tokenizes (for TestModelSpec::vocab_from).
absl::Status WriteTestVocab(const std::string& path);

enum class ImatrixFormat { kGguf, kLegacy };

// Writes an importance matrix with one entry for every weight matrix of
// the model that sees activations (attention, FFN, output).
absl::Status WriteTestImatrix(const TestModelSpec& spec, const std::string& path, ImatrixFormat format, uint64_t seed);

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_TEST_MODEL_H_
