// Quantizes rows with the fastest path this CPU has for the type, always
// producing the bytes of the reference (reference_kernels.h), which is what
// the fast paths are tested against.
//
// Setting QUANTFLEET_REFERENCE_KERNELS=1 in the environment forces the
// scalar reference everywhere (for comparisons and benchmarks).
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_QUANT_QUANTIZE_ROWS_H_
#define QUANTFLEET_CORE_QUANT_QUANTIZE_ROWS_H_

#include <cstddef>
#include <cstdint>

#include "core/quant/ggml_type.h"

namespace quantfleet {

// Same contract as QuantizeRows in reference_kernels.h.
size_t QuantizeRowsFast(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                        const float* imatrix);

// True when QuantizeRowsFast uses a vectorised path for `type` here.
bool HasFastPath(GgmlType type);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_QUANTIZE_ROWS_H_
