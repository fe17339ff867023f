// The trained llama of ../shared/models for calibration tests.
//
// Thread-safety: Get is thread-safe; the object is read-only afterwards.
#ifndef QUANTFLEET_TESTS_TOOLS_TRAINED_LLAMA_H_
#define QUANTFLEET_TESTS_TOOLS_TRAINED_LLAMA_H_

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/calibration/calibration_chunks.h"
#include "core/calibration/hessian_collector.h"
#include "core/calibration/layerwise_method.h"
#include "core/gguf/gguf_model.h"
#include "core/io/mapped_file.h"
#include "core/model/runnable_model.h"

namespace quantfleet {

// A weight matrix's rows as floats.
inline std::vector<float> LinearFloats(const Linear& l) {
  std::vector<float> out(static_cast<size_t>(l.n_out) * static_cast<size_t>(l.n_in));
  l.RowsToFloat(0, l.n_out, out.data());
  return out;
}

// The trained model in ../shared/models/pystdlib-tiny with the Hessians of
// its calibration text (8 chunks of 256 tokens), loaded once per test
// process; `model` is null when it could not be loaded. For the tests of
// the calibrated quantization methods.
struct TrainedLlama {
  std::unique_ptr<GgufModel> file;
  std::unique_ptr<RunnableModel> model;
  std::vector<std::vector<TokenId>> chunks;
  HessianCollector hessians{false};

  static TrainedLlama* Get() {
    static TrainedLlama* trained = [] {
      auto t = new TrainedLlama;
      const char* env = std::getenv("QUANTFLEET_SHARED_MODELS");
      const std::string dir = std::string(env != nullptr ? env : QUANTFLEET_DEFAULT_SHARED_MODELS) + "/pystdlib-tiny";
      absl::StatusOr<GgufModel> file = GgufModel::Open(dir + "/model-f16.gguf");
      if (!file.ok()) return t;
      t->file = std::make_unique<GgufModel>(*std::move(file));
      absl::StatusOr<RunnableModel> model = MakeRunnable(*t->file, dir + "/model-f16.gguf");
      absl::StatusOr<std::string> text = ReadRegularFile(dir + "/calib.txt");
      if (!model.ok() || !text.ok()) return t;
      t->model = std::make_unique<RunnableModel>(*std::move(model));
      const std::vector<TokenId> tokens = t->model->tokenizer.Tokenize(*text, true, false);
      absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(*t->model->vocab, tokens, 256, 8);
      if (!chunks.ok()) return t;
      t->chunks = *chunks;
      absl::StatusOr<HessianCollector> hessians = CollectHessians(t->model->llama, t->chunks);
      if (hessians.ok()) t->hessians.Merge(*hessians);
      return t;
    }();
    return trained;
  }

  // Layer 1's attn_q and ffn_down with the Hessians they are solved over.
  std::vector<std::pair<const Linear*, std::string>> Weights() const {
    const LlamaLayer& layer = model->llama.layers()[1];
    return {{&layer.wq, "blk.1.attn_qkv"}, {&layer.down, "blk.1.ffn_down.weight"}};
  }
};

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_TRAINED_LLAMA_H_
