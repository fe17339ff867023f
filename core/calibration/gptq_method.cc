// GPTQ as a quantization method of the executor. See gptq_method.h.
#include "core/calibration/gptq_method.h"

#include "core/calibration/gptq_ggml.h"
#include "core/quant/block_levels.h"
#include "core/quant/quantize_rows.h"
#include "core/util/status_macros.h"

namespace quantfleet {

std::string GptqMethod::EntryFor(const std::string& weight_name) {
  std::string counted_by;
  const std::string entry = HessianCollector::EntryOf(weight_name, &counted_by);
  return entry.empty() ? counted_by : entry;
}

bool GptqMethod::Handles(const PlannedTensor& t) const {
  if (!t.convert || !HasBlockLevels(t.output.type) || t.output.ne[0] % BlockSize(t.output.type) != 0) return false;
  auto it = hessians_.entries().find(EntryFor(t.output.name));
  return it != hessians_.entries().end() && it->second.columns == t.output.ne[0];
}

absl::StatusOr<std::vector<uint8_t>> GptqMethod::Quantize(const PlannedTensor& t, int64_t matrix, const float* rows,
                                                          int64_t n_rows) const {
  const int64_t columns = t.output.ne[0];
  const GgmlType type = t.output.type;
  const float* given = t.imatrix ? t.imatrix->data() + matrix * columns : nullptr;
  std::vector<double> h = hessians_.Hessian(EntryFor(t.output.name), static_cast<int>(matrix));
  if (h.empty()) {
    // No calibration token reached this matrix (an expert never routed
    // to): nothing to solve over, so the type's own quantizer.
    std::vector<uint8_t> out(static_cast<size_t>(n_rows) * RowSize(type, columns));
    QuantizeRowsFast(type, rows, out.data(), n_rows, columns, given);
    return out;
  }
  std::vector<float> from_hessian;
  if (given == nullptr) {
    from_hessian.resize(static_cast<size_t>(columns));
    for (int64_t j = 0; j < columns; ++j) from_hessian[j] = static_cast<float>(h[j * columns + j] / 2);
  }
  return GptqQuantizeRows(type, rows, n_rows, columns, std::move(h), given != nullptr ? given : from_hessian.data(),
                          options_);
}

absl::StatusOr<HessianCollector> CollectHessians(const LlamaModel& model,
                                                 const std::vector<std::vector<TokenId>>& chunks,
                                                 const std::function<void(size_t, size_t)>& on_chunk) {
  HessianCollector total(false);
  for (size_t c = 0; c < chunks.size(); ++c) {
    HessianCollector one(false);
    QF_RETURN_IF_ERROR(RunForward(model, chunks[c], &one, nullptr));
    total.Merge(one);
    if (on_chunk) on_chunk(c + 1, chunks.size());
  }
  return total;
}

}  // namespace quantfleet
