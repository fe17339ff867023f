// The activations a weight matrix's product sees in llama.cpp's CPU path:
// before a dot product with weights of type T, ggml converts the inputs to
// T's "vec_dot" type. F16 and BF16 weights see inputs rounded to F16 and
// BF16; quantized weights see inputs quantized in blocks to Q8_0 (Q4_0,
// Q5_0, Q8_0, IQ4_NL), Q8_1 (Q4_1, Q5_1) or Q8_K (the K-quants, IQ4_XS).
// Rounding the F32 inputs the same way before an F32 product over the
// dequantized weights gives llama.cpp's products up to the order of float
// additions.
//
// Q8_0 and Q8_1 follow ggml's AVX2 code (scale amax / 127 stored as F16,
// multiplier 127 / amax, round half to even); Q8_K its reference code
// (scale -127 / the signed extreme, stored as F32). Q8_1's block sums,
// which ggml keeps in F16 for the Q4_1 and Q5_1 offsets, are not modelled:
// those sources agree less closely.
//
// Thread-safety: a pure function.
#ifndef QUANTFLEET_CORE_MODEL_ACTIVATION_ROUNDING_H_
#define QUANTFLEET_CORE_MODEL_ACTIVATION_ROUNDING_H_

#include <cstdint>

#include "core/quant/ggml_type.h"

namespace quantfleet {

// Rounds `n_rows` rows of `n_in` values in place as weights of `weight_type`
// see them. F32 weights (and types without a rule) leave them unchanged.
// Precondition: n_in is a multiple of the rounding's block (32 or 256),
// which any row of a quantized weight of that type guarantees.
void RoundActivationsFor(GgmlType weight_type, float* x, int64_t n_rows, int64_t n_in);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_ACTIVATION_ROUNDING_H_
