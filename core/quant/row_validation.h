// Checks tensor bytes for NaN and infinity, as llama.cpp does before it
// reads a tensor and after it quantizes one.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_QUANT_ROW_VALIDATION_H_
#define QUANTFLEET_CORE_QUANT_ROW_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

// OK when every float and every block scale in `data` (`nbytes` long, a
// whole number of blocks of `type`) is finite. Otherwise INVALID_ARGUMENT
// naming the block index (the element index for unblocked types) and what
// was found. Types whose layout this project does not model are accepted.
absl::Status ValidateRowData(GgmlType type, const void* data, size_t nbytes);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_ROW_VALIDATION_H_
