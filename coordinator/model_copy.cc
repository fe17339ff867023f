// See model_copy.h.
#include "coordinator/model_copy.h"

#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_format.h"

namespace quantfleet {

v1::ModelCopy ModelCopyOf(const GgufModel& model) {
  v1::ModelCopy copy;
  copy.set_path(model.part(0).path());
  std::string id;
  int64_t bytes = 0;
  for (int p = 0; p < model.n_parts(); ++p) {
    const MappedFile& part = model.part(p);
    bytes += static_cast<int64_t>(part.size());
    if (model.n_parts() > 1) {
      copy.add_part_names(std::filesystem::path(part.path()).filename().string());
      copy.add_part_bytes(static_cast<int64_t>(part.size()));
    }
    struct stat st;
    if (::stat(part.path().c_str(), &st) != 0) continue;
    id += absl::StrFormat(
        "%s%x-%x", p == 0 ? "" : "-", static_cast<uint64_t>(st.st_size),
        static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec));
  }
  copy.set_bytes(bytes);
  copy.set_id(id);
  return copy;
}

absl::StatusOr<SourceSpan> WholePart(const std::shared_ptr<GgufModel>& model, int part, std::string_view what) {
  if (model == nullptr) return absl::FailedPreconditionError(absl::StrFormat("%s is closed: the job has ended", what));
  if (part < 0 || part >= model->n_parts()) {
    return absl::OutOfRangeError(absl::StrFormat("%s has no part %d (it has %d)", what, part, model->n_parts()));
  }
  const MappedFile& file = model->part(part);
  SourceSpan span;
  span.file = model;
  span.split = part;
  span.data = file.data();
  span.bytes = file.size();
  return span;
}

}  // namespace quantfleet
