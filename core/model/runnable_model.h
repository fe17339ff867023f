// A GGUF model made ready to run over text: the forward pass's view of its
// weights, its vocabulary and its tokenizer, with the vocabulary checked
// against the embedding matrix. The one way the command's subcommands load
// a model to run.
//
// Thread-safety: immutable once made; the llama view points into the
// GgufModel it was made from, which must outlive it.
#ifndef QUANTFLEET_CORE_MODEL_RUNNABLE_MODEL_H_
#define QUANTFLEET_CORE_MODEL_RUNNABLE_MODEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "core/model/llama_model.h"
#include "core/model/tokenizer.h"
#include "core/model/vocab.h"

namespace quantfleet {

struct RunnableModel {
  LlamaModel llama;
  std::shared_ptr<const Vocab> vocab;
  Tokenizer tokenizer;
};

// Makes `file` (named `path` in errors) runnable. Errors: those of
// LlamaModel::Load, Vocab::FromGguf and Tokenizer::Create, and
// INVALID_ARGUMENT when the embedding's rows and the vocabulary disagree.
absl::StatusOr<RunnableModel> MakeRunnable(const GgufModel& file, const std::string& path);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_RUNNABLE_MODEL_H_
