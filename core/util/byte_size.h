// Sizes as people write them on a command line: "512MiB", "24GiB", "1.5G",
// "800M", "4096" (bytes). K, M, G, T and KiB, MiB, GiB, TiB are all powers
// of 1024, as memory is counted; a trailing "B" is optional.
//
// Thread-safety: a pure function.
#ifndef QUANTFLEET_CORE_UTIL_BYTE_SIZE_H_
#define QUANTFLEET_CORE_UTIL_BYTE_SIZE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quantfleet {

// INVALID_ARGUMENT, quoting `text`, for anything else (negative, unknown
// unit, overflow).
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_BYTE_SIZE_H_
