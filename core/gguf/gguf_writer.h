// Serialises GGUF metadata (header, key-value pairs, tensor infos and the
// padding before the data section) exactly as ggml's writer lays it out.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_GGUF_GGUF_WRITER_H_
#define QUANTFLEET_CORE_GGUF_GGUF_WRITER_H_

#include <cstdint>
#include <vector>

#include "core/gguf/gguf_file.h"
#include "core/gguf/gguf_value.h"

namespace quantfleet {

// Returns the bytes of a version-3 GGUF header for `kvs` and `tensors`,
// padded with zeros to a multiple of `alignment`. Tensor offsets are taken
// as given (see LayOutTensors).
std::vector<uint8_t> SerializeGgufMeta(const std::vector<GgufKv>& kvs, const std::vector<GgufTensorInfo>& tensors,
                                       size_t alignment);

// Assigns back-to-back offsets (each tensor padded to `alignment`) and
// returns the total size of the data section.
uint64_t LayOutTensors(std::vector<GgufTensorInfo>& tensors, size_t alignment);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_GGUF_GGUF_WRITER_H_
