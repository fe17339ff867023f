#include "core/gguf/gguf_model.h"

#include <unordered_set>

#include "absl/strings/str_format.h"
#include "core/safetensors/safetensors_checkpoint.h"
#include "core/util/status_macros.h"

namespace quantfleet {

absl::StatusOr<std::string> SplitPartPath(const std::string& first_path, int index, int count) {
  const std::string suffix = absl::StrFormat("-%05d-of-%05d.gguf", 1, count);
  if (first_path.size() <= suffix.size() ||
      first_path.compare(first_path.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: split model (%d parts) but the name does not end in '%s'", first_path, count, suffix));
  }
  const std::string prefix = first_path.substr(0, first_path.size() - suffix.size());
  return absl::StrFormat("%s-%05d-of-%05d.gguf", prefix, index + 1, count);
}

absl::StatusOr<GgufModel> GgufModel::Open(const std::string& path) {
  if (IsCheckpointDir(path)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s is a Hugging Face checkpoint folder, not a GGUF file, and this reads a GGUF file: convert it first "
        "(quantfleet convert %s OUT.gguf)",
        path, path));
  }
  GgufModel model;
  QF_ASSIGN_OR_RETURN(MappedFile first, MappedFile::Open(path));
  QF_ASSIGN_OR_RETURN(GgufFile header, GgufFile::Parse(first.data(), first.size(), path));
  int n_split = 1;
  if (const GgufKv* kv = FindKv(header.kv(), kSplitCountKey)) {
    std::optional<uint16_t> count = kv->GetU16();
    if (!count) return absl::InvalidArgumentError(absl::StrFormat("%s: key '%s' must be a u16", path, kSplitCountKey));
    n_split = *count;
  }
  model.files_.push_back(std::make_shared<const MappedFile>(std::move(first)));
  model.headers_.push_back(std::move(header));
  if (n_split > 1) {
    const GgufKv* no = FindKv(model.headers_[0].kv(), kSplitNoKey);
    if (!no || !no->GetU16() || *no->GetU16() != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: this is not the first part of a split model; open the -00001-of-%05d file", path, n_split));
    }
    for (int i = 1; i < n_split; ++i) {
      QF_ASSIGN_OR_RETURN(std::string part_path, SplitPartPath(path, i, n_split));
      QF_ASSIGN_OR_RETURN(MappedFile part, MappedFile::Open(part_path));
      QF_ASSIGN_OR_RETURN(GgufFile part_header, GgufFile::Parse(part.data(), part.size(), part_path));
      const GgufKv* part_no = FindKv(part_header.kv(), kSplitNoKey);
      if (!part_no || !part_no->GetU16() || *part_no->GetU16() != i) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: key '%s' is missing or is not %d", part_path, kSplitNoKey, i));
      }
      model.files_.push_back(std::make_shared<const MappedFile>(std::move(part)));
      model.headers_.push_back(std::move(part_header));
    }
  }
  std::unordered_set<std::string> names;
  for (int s = 0; s < static_cast<int>(model.headers_.size()); ++s) {
    const GgufFile& h = model.headers_[s];
    for (const GgufTensorInfo& t : h.tensors()) {
      if (!names.insert(t.name).second) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: tensor '%s' appears in more than one part", model.files_[s]->path(), t.name));
      }
      ModelTensor mt;
      mt.info = t;
      mt.split = s;
      mt.file_offset = h.data_offset() + t.offset;
      mt.data = model.files_[s]->data() + mt.file_offset;
      model.tensors_.push_back(std::move(mt));
    }
  }
  if (n_split > 1) {
    const GgufKv* count = FindKv(model.kv(), kSplitTensorsCountKey);
    std::optional<int64_t> expected = count ? count->GetIntElement(0) : std::nullopt;
    if (!expected || *expected != static_cast<int64_t>(model.tensors_.size())) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: '%s' says %d tensors but the parts hold %d", path,
                                                        kSplitTensorsCountKey, expected.value_or(-1),
                                                        model.tensors_.size()));
    }
  }
  return model;
}

GgufModel GgufModel::FromParts(std::vector<std::shared_ptr<const MappedFile>> parts, GgufFile header,
                               std::vector<ModelTensor> tensors) {
  GgufModel model;
  model.files_ = std::move(parts);
  model.headers_.push_back(std::move(header));
  model.tensors_ = std::move(tensors);
  return model;
}

uint64_t GgufModel::total_bytes() const {
  uint64_t total = 0;
  for (const ModelTensor& t : tensors_) total += t.info.nbytes;
  return total;
}

}  // namespace quantfleet
