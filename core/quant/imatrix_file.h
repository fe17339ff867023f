// Importance matrices: llama.cpp's GGUF imatrix format (per-entry sums of
// squared activations and counts) and the legacy .dat format.
//
// LoadImatrix returns the per-column weights llama-quantize feeds to the
// quantizers: sums divided by counts, per expert. Thread-safety: value
// types and pure functions.
#ifndef QUANTFLEET_CORE_QUANT_IMATRIX_FILE_H_
#define QUANTFLEET_CORE_QUANT_IMATRIX_FILE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantfleet {

struct Imatrix {
  // Tensor name -> weights (ne0 values per expert, experts back to back).
  std::map<std::string, std::vector<float>> weights;
  std::vector<std::string> datasets;
  int32_t chunk_count = 0;
  bool is_legacy = false;
};

// Loads `path`. Errors (INVALID_ARGUMENT, naming the file and the entry or
// offset): unreadable or malformed file, sums without counts, non-F32
// data, a GGUF imatrix without its metadata keys, non-finite values.
absl::StatusOr<Imatrix> LoadImatrix(const std::string& path);

// The same for a file's bytes already in memory; `path` names it in errors.
absl::StatusOr<Imatrix> ParseImatrix(const uint8_t* data, size_t size, const std::string& path);

// Keeps only entries whose name contains one of `include` (when not
// empty), then drops entries whose name contains one of `exclude`.
void FilterImatrix(Imatrix& imatrix, const std::vector<std::string>& include, const std::vector<std::string>& exclude);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_IMATRIX_FILE_H_
