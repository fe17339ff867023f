// Scalar reference quantization and dequantization: the specification.
//
// For every type this project produces, QuantizeRows writes the exact bytes
// llama.cpp (ggml) writes for the same floats, with and without importance
// weights. Each block is computed by one straight-line scalar recipe; any
// faster path (SIMD, CUDA) is tested against these functions bit for bit.
// The translation unit is built with -ffp-contract=off: no fused
// multiply-adds may change a rounding.
//
// Thread-safety: pure functions over caller-owned buffers; rows are
// independent, so callers may quantize disjoint row ranges concurrently.
#ifndef QUANTFLEET_CORE_QUANT_REFERENCE_KERNELS_H_
#define QUANTFLEET_CORE_QUANT_REFERENCE_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "core/quant/ggml_type.h"

namespace quantfleet {

// Quantizes `nrows` rows of `n_per_row` floats from `src` into `dst`.
// `imatrix` is null or holds `n_per_row` importance weights (one per column),
// used by every type that takes them (Q8_0, F16, BF16 and F32 ignore them).
// Preconditions: IsSupportedTargetType(type) and n_per_row a multiple of the
// type's block size. Returns the bytes written: nrows * RowSize(type, n_per_row).
size_t QuantizeRows(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);

// The mean square of `n` values, summed in order in float: the row
// statistic of the importance-weighted Q4_0, Q4_1, Q5_0 and Q5_1 recipes.
float RowMeanSquare(const float* x, int64_t n);

// Quantizes `n` values (whole blocks) of a row whose RowMeanSquare is
// `row_mean_square`, giving the bytes QuantizeRows writes for them when it
// quantizes the whole row (the recipes above weigh by the row's mean
// square; every other recipe sees one block or super-block at a time).
// `imatrix` is null or holds the `n` values' importance weights.
size_t QuantizeRowPart(GgmlType type, const float* x, void* dst, int64_t n, const float* imatrix,
                       float row_mean_square);

// True when DequantizeToFloat can read `type`.
bool CanDequantize(GgmlType type);

// Converts `n` elements (a multiple of the block size) of `type` to floats.
// Precondition: CanDequantize(type).
void DequantizeToFloat(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_REFERENCE_KERNELS_H_
