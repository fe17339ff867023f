// The tokenizer of a Hugging Face checkpoint folder as GGUF metadata
// (tokenizer.ggml.*), the way llama.cpp's converter writes it at the
// pinned version:
//
// - SentencePiece (`tokenizer.model`): every piece with its score and type,
//   ids past the model padded as [PADi]; `added_tokens.json` and
//   tokenizer_config.json's `added_tokens_decoder` override pieces.
// - Byte-level BPE (`tokenizer.json`, model "gpt2"): the vocabulary with
//   added tokens marked CONTROL or USER_DEFINED, the merges, and the
//   pre-tokenizer's name, found as the converter finds it: by the SHA-256
//   of the ids of its check text, tokenized here with each pre-tokenizer
//   this project runs. A tokenizer whose hash is not one of those is
//   refused with the hash.
// - The special tokens, add_bos/add_eos, the chat template and normalizer
//   flags from tokenizer.json, tokenizer_config.json, config.json and the
//   chat_template files.
//
// Thread-safety: pure functions of the folder's files.
#ifndef QUANTFLEET_CORE_CONVERT_HF_VOCAB_H_
#define QUANTFLEET_CORE_CONVERT_HF_VOCAB_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/convert/metadata_list.h"

namespace quantfleet {

// NOT_FOUND when the folder has no tokenizer.model. `vocab_size`: the
// config's, when it has one.
absl::Status AddSentencePieceVocab(const std::string& dir, std::optional<int64_t> vocab_size, MetadataList& meta);

// NOT_FOUND when the folder has no tokenizer.json.
absl::Status AddBytePairVocab(const std::string& dir, std::optional<int64_t> vocab_size, MetadataList& meta);

// The special tokens and the rest, as gguf-py's SpecialVocab adds them.
// `n_vocab`: ids at or past it are skipped.
absl::Status AddSpecialVocab(const std::string& dir, bool load_merges, std::optional<int64_t> n_vocab,
                             MetadataList& meta);

// Whether the converter would take `token` for a control token though its
// tokenizer does not mark it special ("<|...|>", "<pad>", ...).
bool LooksSpecial(const std::string& token);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CONVERT_HF_VOCAB_H_
