// CRC32C (Castagnoli), the checksum on every chunk that crosses the network.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise;
// both give the same value. Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_UTIL_CRC32C_H_
#define QUANTFLEET_CORE_UTIL_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace quantfleet {

// Extends `crc` (0 to start) over `size` bytes at `data`.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

inline uint32_t Crc32c(const void* data, size_t size) { return Crc32cExtend(0, data, size); }

// The table implementation, exposed so tests can compare the two paths.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t size);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_CRC32C_H_
