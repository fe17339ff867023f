#include "coordinator/path_policy.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace quantfleet {
namespace {

constexpr size_t kMaxPathBytes = 1024;

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return absl::NotFoundError(absl::StrFormat("%s: does not exist on the coordinator", path));
  }
  return std::string(buf);
}

}  // namespace

absl::StatusOr<PathPolicy> PathPolicy::Create(const std::vector<std::string>& roots) {
  PathPolicy p;
  for (const std::string& r : roots) {
    absl::StatusOr<std::string> real = RealPath(r);
    if (!real.ok()) return absl::InvalidArgumentError(absl::StrFormat("--allow-root %s: no such directory", r));
    p.roots_.push_back(*real);
  }
  return p;
}

absl::Status PathPolicy::CheckSyntax(const std::string& path) const {
  if (path.empty()) return absl::InvalidArgumentError("the path is empty");
  if (path.find('\0') != std::string::npos) return absl::InvalidArgumentError("the path contains a NUL byte");
  if (path.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the path is %d bytes long; the limit is %d", path.size(), kMaxPathBytes));
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrFormat("%s: paths must be absolute paths on the coordinator", path));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return absl::InvalidArgumentError(absl::StrFormat("%s: '..' is not allowed in paths", path));
  }
  if (roots_.empty()) {
    return absl::FailedPreconditionError("the coordinator has no --allow-root; it accepts no paths");
  }
  return absl::OkStatus();
}

bool PathPolicy::Inside(const std::string& resolved) const {
  for (const std::string& root : roots_) {
    if (resolved == root || (resolved.size() > root.size() && resolved.compare(0, root.size(), root) == 0 &&
                             (root == "/" || resolved[root.size()] == '/'))) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::string> PathPolicy::ResolveInput(const std::string& path) const {
  if (absl::Status s = CheckSyntax(path); !s.ok()) return s;
  absl::StatusOr<std::string> real = RealPath(path);
  if (!real.ok()) return real.status();
  if (!Inside(*real)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s resolves to %s, outside the allowed roots (%s)", path, *real, absl::StrJoin(roots_, ", ")));
  }
  return *real;
}

absl::StatusOr<std::string> PathPolicy::ResolveOutput(const std::string& path, bool overwrite) const {
  if (absl::Status s = CheckSyntax(path); !s.ok()) return s;
  const std::filesystem::path p(path);
  absl::StatusOr<std::string> dir = RealPath(p.parent_path().string());
  if (!dir.ok()) return absl::NotFoundError(absl::StrFormat("%s: its directory does not exist", path));
  if (!Inside(*dir)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: its directory resolves to %s, outside the allowed roots (%s)", path, *dir, absl::StrJoin(roots_, ", ")));
  }
  const std::string resolved = *dir + "/" + p.filename().string();
  struct stat st;
  if (::lstat(resolved.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) return absl::InvalidArgumentError(absl::StrFormat("%s is a symlink; refused", path));
    if (!overwrite) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s already exists; remove it or submit with --force to overwrite it", path));
    }
  }
  return resolved;
}

}  // namespace quantfleet
