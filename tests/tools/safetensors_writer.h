// Writes small .safetensors files and Hugging Face checkpoint folders for
// tests: the header in the format's layout (8-byte length, JSON, data in
// the listed order without holes).
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_TESTS_TOOLS_SAFETENSORS_WRITER_H_
#define QUANTFLEET_TESTS_TOOLS_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace quantfleet {

struct TestSafetensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  std::string bytes;  // its data, of the size dtype and shape give
};

// The bytes of a .safetensors file holding `tensors` in this order.
std::string EncodeSafetensors(const std::vector<TestSafetensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Writes `dir`/config.json and the tensors as one model.safetensors, or as
// `shards` files model-0000K-of-0000N.safetensors with their index
// (tensors dealt out in order).
absl::Status WriteTestCheckpoint(const std::string& dir, const std::string& config_json,
                                 const std::vector<TestSafetensor>& tensors, int shards = 1);

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_SAFETENSORS_WRITER_H_
