// Gathers the importance matrix as llama-imatrix does: for every weight
// matrix of the transformer blocks (and output.weight when asked) the sum
// of squares of each input column over all tokens, and the token count;
// then writes it in llama.cpp's GGUF imatrix format or the legacy .dat.
//
// Thread-safety: not thread-safe; one collector per forward pass, merged
// in a fixed order (Merge) when passes run in parallel.
#ifndef QUANTFLEET_CORE_CALIBRATION_IMATRIX_COLLECTOR_H_
#define QUANTFLEET_CORE_CALIBRATION_IMATRIX_COLLECTOR_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/model/forward_pass.h"

namespace quantfleet {

class ImatrixCollector : public ActivationSink {
 public:
  struct Entry {
    std::vector<float> sums;      // per input column, matrix after matrix (experts)
    std::vector<int64_t> counts;  // tokens seen, per matrix
  };

  explicit ImatrixCollector(bool process_output) : process_output_(process_output) {}

  void OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) override;
  void OnExpertInput(const Linear& weight, int slot, const int32_t* experts, const float* x, int64_t n_tokens) override;
  bool WantsOutput() const override { return process_output_; }

  // Adds `other`'s sums and counts (entry by entry, in name order).
  void Merge(const ImatrixCollector& other);

  const std::map<std::string, Entry>& entries() const { return entries_; }
  bool process_output() const { return process_output_; }
  // Replaces the entries (statistics decoded from a worker's result).
  void Restore(std::map<std::string, Entry> entries) { entries_ = std::move(entries); }

  // Writes llama.cpp's GGUF imatrix: general.type, imatrix.datasets,
  // imatrix.chunk_count, imatrix.chunk_size, and per entry NAME.in_sum2 and
  // NAME.counts, sorted by name. Atomic: the file appears complete or not.
  absl::Status WriteGguf(const std::string& path, const std::vector<std::string>& datasets, int chunk_count,
                         int chunk_size) const;
  // The bytes WriteGguf writes.
  std::vector<uint8_t> SerializeGguf(const std::vector<std::string>& datasets, int chunk_count, int chunk_size) const;
  // Writes the legacy .dat format (sums / count * calls).
  absl::Status WriteLegacy(const std::string& path, const std::string& dataset, int chunk_count, int chunk_size) const;

 private:
  bool process_output_;
  std::map<std::string, Entry> entries_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_IMATRIX_COLLECTOR_H_
