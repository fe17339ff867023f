#include "core/model/runnable_model.h"

#include "absl/strings/str_format.h"

namespace quantfleet {

absl::StatusOr<RunnableModel> MakeRunnable(const GgufModel& file, const std::string& path) {
  absl::StatusOr<LlamaModel> llama = LlamaModel::Load(file, path);
  if (!llama.ok()) return llama.status();
  absl::StatusOr<Vocab> vocab = Vocab::FromGguf(file.kv(), path);
  if (!vocab.ok()) return vocab.status();
  auto shared = std::make_shared<const Vocab>(*std::move(vocab));
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(shared);
  if (!tokenizer.ok()) return tokenizer.status();
  if (llama->hparams().n_vocab != static_cast<int>(shared->size())) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: token_embd.weight has %d rows but the vocabulary %d tokens",
                                                      path, llama->hparams().n_vocab, shared->size()));
  }
  return RunnableModel{*std::move(llama), std::move(shared), *std::move(tokenizer)};
}

}  // namespace quantfleet
