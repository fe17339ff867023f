// SHA-256 of a file, streamed (the artifact's recorded digest).
//
// Thread-safety: pure function.
#ifndef QUANTFLEET_CORE_UTIL_SHA256_H_
#define QUANTFLEET_CORE_UTIL_SHA256_H_

#include <string>

#include "absl/status/statusor.h"

namespace quantfleet {

// Lower-case hex digest of the file at `path`, read in 4 MiB pieces.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// The same for an open file, read from its start with pread (the
// descriptor's offset is untouched); `name` appears in errors.
absl::StatusOr<std::string> Sha256Fd(int fd, const std::string& name);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_SHA256_H_
