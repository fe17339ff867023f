// A Hugging Face checkpoint folder converted to GGUF, as llama.cpp's
// convert_hf_to_gguf.py (at the pinned version) converts it: the same
// tensors, names, types, order, metadata and bytes.
//
// Plan reads config.json, the tokenizer files and the safetensors headers
// (the weights stay mapped, untouched) and decides everything: the
// metadata, and for each output tensor its shape, type and where its
// values come from (one checkpoint tensor, the llama Q/K row order
// undone, or the experts of one layer stacked). Produce fills one output
// tensor's bytes; Write streams the whole GGUF tensor by tensor, so no
// more than one tensor's bytes are held at a time. OpenModel presents the
// checkpoint as the GGUF model it converts to, without writing it: a
// tensor whose bytes are the checkpoint's (same type, no reordering) is
// read in place from the safetensors mapping; the others (the llama Q/K
// matrices, widened norms, stacked experts) are produced into memory.
//
// Output types (`--outtype`): auto (BF16 when the first matrix of the
// checkpoint is BF16, else F16), f32, f16, bf16, q8_0. Vectors and norms
// are F32 whatever the type, as are routers of mixtures of experts.
//
// Thread-safety: immutable after Plan; Produce may run concurrently for
// different tensors.
#ifndef QUANTFLEET_CORE_CONVERT_CHECKPOINT_CONVERSION_H_
#define QUANTFLEET_CORE_CONVERT_CHECKPOINT_CONVERSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/convert/hf_architecture.h"
#include "core/gguf/gguf_file.h"
#include "core/gguf/gguf_model.h"
#include "core/gguf/gguf_value.h"
#include "core/safetensors/safetensors_checkpoint.h"

namespace quantfleet {

enum class OutType { kAuto, kF32, kF16, kBF16, kQ8_0 };

// "auto", "f32", "f16", "bf16" or "q8_0"; INVALID_ARGUMENT otherwise.
absl::StatusOr<OutType> ParseOutType(std::string_view name);

struct ConvertedTensor {
  GgufTensorInfo info;  // name, shape (ggml order), type, offset, nbytes
  // The checkpoint tensors it is made of: one, or one per expert.
  std::vector<const SafetensorsTensor*> sources;
  // > 0: the rows are in the llama rotary order of this many heads and are
  // put back in GGUF's order. A generated tensor has no sources and its
  // bytes in `generated`.
  int permute_heads = 0;
  std::vector<uint8_t> generated;
};

class CheckpointConversion {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointConversion>> Plan(const std::string& dir, OutType out_type);

  const std::string& dir() const { return dir_; }
  const SafetensorsCheckpoint& checkpoint() const { return checkpoint_; }
  const HfArchitecture& architecture() const { return arch_; }
  const std::vector<GgufKv>& kv() const { return kv_; }
  // In file order, offsets laid out (alignment 32).
  const std::vector<ConvertedTensor>& tensors() const { return tensors_; }
  // The GGUF bytes before the first tensor's data.
  const std::vector<uint8_t>& header() const { return header_; }
  uint64_t file_size() const { return header_.size() + data_size_; }

  // Writes tensor `index`'s info.nbytes bytes at `dst`.
  absl::Status Produce(size_t index, uint8_t* dst) const;
  // Tells the kernel the checkpoint pages behind tensor `index` will not
  // be read again soon.
  void Drop(size_t index) const;

  // The converted model, as GgufModel::Open would read the written file.
  absl::StatusOr<GgufModel> ToModel() const;

  // Writes the GGUF to `path` (atomically: nothing at `path` on error).
  // `on_tensor(done, total)` after each tensor.
  absl::Status Write(const std::string& path, bool overwrite,
                     const std::function<void(size_t, size_t)>& on_tensor = nullptr) const;

 private:
  CheckpointConversion(std::string dir, SafetensorsCheckpoint checkpoint)
      : dir_(std::move(dir)), checkpoint_(std::move(checkpoint)) {}
  absl::Status PlanTensors(const nlohmann::json& hparams, OutType out_type);

  std::string dir_;
  SafetensorsCheckpoint checkpoint_;
  HfArchitecture arch_;
  std::vector<GgufKv> kv_;
  std::vector<ConvertedTensor> tensors_;
  std::vector<uint8_t> header_;
  uint64_t data_size_ = 0;
};

// The checkpoint row that row `r` of a GGUF tensor of `rows` rows comes
// from, for llama's rotary order of `heads` heads (0: the same row).
int64_t RotaryRowSource(int64_t r, int64_t rows, int heads);

// A GGUF file as GgufModel::Open reads it, or a checkpoint folder converted
// on the fly (auto output type). What every command that takes a model
// opens it with.
absl::StatusOr<GgufModel> OpenModel(const std::string& path);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CONVERT_CHECKPOINT_CONVERSION_H_
