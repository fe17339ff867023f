// Confines paths named by clients to the coordinator's allowed roots.
//
// Thread-safety: immutable after construction.
#ifndef QUANTFLEET_COORDINATOR_PATH_POLICY_H_
#define QUANTFLEET_COORDINATOR_PATH_POLICY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantfleet {

class PathPolicy {
 public:
  // `roots` are directories; they are resolved (symlinks followed) once.
  static absl::StatusOr<PathPolicy> Create(const std::vector<std::string>& roots);

  // An existing file to read: resolved, symlinks included, inside a root.
  // Errors: INVALID_ARGUMENT (NUL byte, '..', too long, outside the roots)
  // or NOT_FOUND, each naming the path.
  absl::StatusOr<std::string> ResolveInput(const std::string& path) const;

  // A file to create: its directory must resolve inside a root, and the
  // name itself must not be a symlink. An existing file is refused with
  // FAILED_PRECONDITION unless `overwrite`.
  absl::StatusOr<std::string> ResolveOutput(const std::string& path, bool overwrite) const;

  const std::vector<std::string>& roots() const { return roots_; }

 private:
  absl::Status CheckSyntax(const std::string& path) const;
  bool Inside(const std::string& resolved) const;
  std::vector<std::string> roots_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_PATH_POLICY_H_
