// The input Hessians GPTQ works from: for each weight matrix the forward
// pass multiplies, the sum over calibration tokens of x x^T (x its input
// row), so that H = (2/N) sum x x^T. Matrices that read the same input
// share one sum: attn_q/attn_k/attn_v of a block ("blk.N.attn_qkv"),
// ffn_gate/ffn_up ("blk.N.ffn_gate_up"), and their expert counterparts,
// per expert ("blk.N.ffn_gate_up_exps", matrix e). An expert that gets no
// token keeps a zero sum and a zero count (the solver then falls back to
// rounding, as llama-imatrix leaves such experts without weights).
//
// diag(H) is twice the importance matrix (sums of x_i^2 over counts), which
// a test checks against ImatrixCollector on a trained model.
//
// Sums are kept in double. A collector per chunk, merged in chunk order,
// makes the total independent of how chunks were split among machines.
//
// Thread-safety: one collector belongs to one thread.
#ifndef QUANTFLEET_CORE_CALIBRATION_HESSIAN_COLLECTOR_H_
#define QUANTFLEET_CORE_CALIBRATION_HESSIAN_COLLECTOR_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model/forward_pass.h"

namespace quantfleet {

class HessianCollector : public ActivationSink {
 public:
  struct Entry {
    int64_t columns = 0;
    // columns x columns per matrix (row-major, full), matrix after matrix.
    std::vector<double> sums;
    std::vector<int64_t> counts;  // tokens seen, per matrix
  };

  explicit HessianCollector(bool process_output) : process_output_(process_output) {}

  void OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) override;
  void OnExpertInput(const Linear& weight, int slot, const int32_t* experts, const float* x, int64_t n_tokens) override;
  bool WantsOutput() const override { return process_output_; }

  // Adds `other`'s sums and counts, entry by entry in name order.
  void Merge(const HessianCollector& other);

  const std::map<std::string, Entry>& entries() const { return entries_; }
  // The entry a weight's Hessian is kept under ("blk.3.attn_v.weight" ->
  // "blk.3.attn_qkv"), or the weight's own name; empty for a weight whose
  // input repeats one already counted (k and v after q, up after gate).
  static std::string EntryOf(const std::string& weight_name, std::string* counted_by);
  // H = (2 / N) sum x x^T of matrix `matrix` of `entry` (empty when N = 0).
  std::vector<double> Hessian(const std::string& entry, int matrix = 0) const;

 private:
  Entry& EntryFor(const std::string& key, int64_t columns, int matrices);

  const bool process_output_;
  std::map<std::string, Entry> entries_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_HESSIAN_COLLECTOR_H_
