// See converted_model.h.
#include "coordinator/converted_model.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/safetensors/safetensors_checkpoint.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

// The names, sizes and modification times of the folder's regular files.
std::string FolderIdentity(const std::string& dir) {
  std::vector<std::string> lines;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    struct stat st;
    if (::stat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    lines.push_back(absl::StrFormat(
        "%s %d %d", entry.path().filename().string(), static_cast<int64_t>(st.st_size),
        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + static_cast<int64_t>(st.st_mtim.tv_nsec)));
  }
  std::sort(lines.begin(), lines.end());
  std::string all = dir + "\n";
  for (const std::string& l : lines) all += l + "\n";
  return Sha256Hex(all).substr(0, 16);
}

}  // namespace

absl::StatusOr<std::string> GgufForWorkers(const std::string& model, const std::string& converted_dir) {
  if (!IsCheckpointDir(model)) return model;
  std::string folder = model;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  folder = std::filesystem::path(folder).filename().string();
  const std::string path = absl::StrFormat("%s/%s-%s.gguf", converted_dir, folder, FolderIdentity(model));
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return path;
  std::error_code ec;
  std::filesystem::create_directories(converted_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrFormat("%s: cannot create: %s", converted_dir, ec.message()));
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointConversion> plan, CheckpointConversion::Plan(model, OutType::kAuto));
  QF_RETURN_IF_ERROR(plan->Write(path, /*overwrite=*/true));
  return path;
}

}  // namespace quantfleet
