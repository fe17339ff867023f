// A generated llama-family model (F16 weights, the test vocabulary, 64 wide,
// FFN 96), written to a folder and loaded, for unit tests of the forward
// pass and of calibration. The folder goes with the object.
//
// Thread-safety: one per test.
#ifndef QUANTFLEET_TESTS_TOOLS_GENERATED_LLAMA_H_
#define QUANTFLEET_TESTS_TOOLS_GENERATED_LLAMA_H_

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "core/model/llama_model.h"
#include "core/util/status_macros.h"
#include "tests/tools/test_model.h"

namespace quantfleet {

class GeneratedLlama {
 public:
  // `dir` must be this test's own (ctest runs test processes in parallel).
  static absl::StatusOr<std::unique_ptr<GeneratedLlama>> Create(const std::string& dir, int n_layer, int n_expert) {
    std::filesystem::create_directories(dir);
    std::unique_ptr<GeneratedLlama> out(new GeneratedLlama(dir));
    QF_RETURN_IF_ERROR(WriteTestVocab(dir + "/vocab.gguf"));
    TestModelSpec spec;
    spec.n_layer = n_layer;
    spec.n_embd = 64;
    spec.n_ff = 96;
    spec.n_expert = n_expert;
    spec.type = GgmlType::kF16;
    spec.vocab_from = dir + "/vocab.gguf";
    QF_RETURN_IF_ERROR(WriteTestModel(spec, dir + "/model.gguf"));
    QF_ASSIGN_OR_RETURN(GgufModel file, GgufModel::Open(dir + "/model.gguf"));
    out->file_ = std::make_unique<GgufModel>(std::move(file));
    QF_ASSIGN_OR_RETURN(LlamaModel model, LlamaModel::Load(*out->file_, dir + "/model.gguf"));
    out->model_ = std::make_unique<LlamaModel>(std::move(model));
    return out;
  }
  ~GeneratedLlama() { std::filesystem::remove_all(dir_); }

  const GgufModel& file() const { return *file_; }
  const LlamaModel& model() const { return *model_; }
  // `n` tokens spread over the vocabulary by `seed`, BOS first.
  std::vector<TokenId> Tokens(int n, int seed) const {
    std::vector<TokenId> tokens;
    for (int i = 0; i < n; ++i) tokens.push_back((i * 37 + seed) % model_->hparams().n_vocab);
    tokens[0] = 1;
    return tokens;
  }

 private:
  explicit GeneratedLlama(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
  std::unique_ptr<GgufModel> file_;  // the model's weights stay mapped from it
  std::unique_ptr<LlamaModel> model_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_GENERATED_LLAMA_H_
