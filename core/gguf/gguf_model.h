// A model opened for reading: one GGUF file, or every part of a split model
// (`NAME-00001-of-0000N.gguf` as gguf-split writes them) seen as one.
//
// Files are memory-mapped; tensors point into the mappings. Metadata is
// the first part's. A model can also be assembled from parts that are not
// GGUF files (a converted checkpoint: its safetensors shards and a block
// of memory), with the header it would have as a file.
// Thread-safety: immutable after Open; parts are shared read-only.
#ifndef QUANTFLEET_CORE_GGUF_GGUF_MODEL_H_
#define QUANTFLEET_CORE_GGUF_GGUF_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_file.h"
#include "core/io/mapped_file.h"

namespace quantfleet {

inline constexpr char kSplitNoKey[] = "split.no";
inline constexpr char kSplitCountKey[] = "split.count";
inline constexpr char kSplitTensorsCountKey[] = "split.tensors.count";

struct ModelTensor {
  GgufTensorInfo info;
  int split = 0;                  // which part holds the data
  const uint8_t* data = nullptr;  // info.nbytes bytes
  uint64_t file_offset = 0;       // absolute offset of the data in its part
};

class GgufModel {
 public:
  // Opens `path`; when its metadata says it is the first of N parts, opens
  // the other parts too. Errors name the part and what is wrong.
  static absl::StatusOr<GgufModel> Open(const std::string& path);
  // A model whose tensors (`tensors[i].split` indexing `parts`) lie in
  // `parts`, described by `header`.
  static GgufModel FromParts(std::vector<std::shared_ptr<const MappedFile>> parts, GgufFile header,
                             std::vector<ModelTensor> tensors);

  const GgufFile& header() const { return headers_.front(); }
  const std::vector<GgufKv>& kv() const { return headers_.front().kv(); }
  // Every tensor of every part, in file order.
  const std::vector<ModelTensor>& tensors() const { return tensors_; }
  const MappedFile& part(int i) const { return *files_[i]; }
  int n_parts() const { return static_cast<int>(files_.size()); }
  uint64_t total_bytes() const;

 private:
  std::vector<std::shared_ptr<const MappedFile>> files_;
  std::vector<GgufFile> headers_;
  std::vector<ModelTensor> tensors_;
};

// The path of part `index` (0-based) of `count` for a split model whose
// first part is `first_path`, or an error when the name does not follow
// the NAME-00001-of-0000N.gguf pattern.
absl::StatusOr<std::string> SplitPartPath(const std::string& first_path, int index, int count);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_GGUF_GGUF_MODEL_H_
