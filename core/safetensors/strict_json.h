// JSON from untrusted files (safetensors headers, checkpoint indexes),
// parsed strictly: a duplicate key at any level or nesting deeper than a
// bound is refused, and parsing stops at the first problem (a validating
// pass that builds nothing, then the document).
//
// Thread-safety: pure function.
#ifndef QUANTFLEET_CORE_SAFETENSORS_STRICT_JSON_H_
#define QUANTFLEET_CORE_SAFETENSORS_STRICT_JSON_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

// INVALID_ARGUMENT with what is wrong ("names 'a' twice", "nests deeper
// than 3 levels", "not valid JSON at byte 12").
absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, int max_depth);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_SAFETENSORS_STRICT_JSON_H_
