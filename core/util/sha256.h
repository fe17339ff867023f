// SHA-256 of a file, streamed (the artifact's recorded digest), or of bytes
// in memory.
//
// Thread-safety: pure function.
#ifndef QUANTFLEET_CORE_UTIL_SHA256_H_
#define QUANTFLEET_CORE_UTIL_SHA256_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace quantfleet {

// Lower-case hex digest of the file at `path`, read in 4 MiB pieces.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// The same for an open file, read from its start with pread (the
// descriptor's offset is untouched); `name` appears in errors.
absl::StatusOr<std::string> Sha256Fd(int fd, const std::string& name);

// Lower-case hex digest of `bytes`.
std::string Sha256Hex(std::string_view bytes);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_SHA256_H_
