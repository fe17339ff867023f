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
#include <vector>

#include "core/quant/ggml_type.h"

namespace quantfleet {

// Same contract as QuantizeRows in reference_kernels.h.
size_t QuantizeRowsFast(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                        const float* imatrix);

// Same contract as QuantizeRowPart in reference_kernels.h (the fast paths
// are all per-block recipes).
size_t QuantizeRowPartFast(GgmlType type, const float* x, void* dst, int64_t n, const float* imatrix,
                           float row_mean_square);

// True when QuantizeRowsFast uses a vectorised path for `type` here.
bool HasFastPath(GgmlType type);

// Converts `nrows` rows of `n_per_row` values of `src_type` (any type
// DequantizeToFloat reads) to `dst_type` (any type QuantizeRowsFast
// writes), with importance weights `imatrix` (or null) for every row.
// Rows are dequantized a slice of about 256 KiB of floats at a time into
// `scratch`, which the caller keeps between calls: a warm loop allocates
// nothing and touches only cache-sized buffers. Rows are independent, so
// the bytes are those of one whole-range call. Returns the bytes written.
size_t ConvertRows(GgmlType src_type, const void* src, GgmlType dst_type, void* dst, int64_t nrows, int64_t n_per_row,
                   const float* imatrix, std::vector<float>* scratch);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_QUANTIZE_ROWS_H_
