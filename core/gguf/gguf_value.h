// A GGUF metadata key-value pair: the key, its value type, and the value.
//
// Numeric and boolean values keep their little-endian bytes exactly as the
// file stores them (booleans normalised to 0/1, as ggml reads them), so a
// pair that is read and written again produces the same bytes. Strings are
// kept as std::string. Thread-safety: a value type; no shared state.
#ifndef QUANTFLEET_CORE_GGUF_GGUF_VALUE_H_
#define QUANTFLEET_CORE_GGUF_GGUF_VALUE_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quantfleet {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// Bytes of one element of a numeric or boolean type; 0 for string/array.
size_t GgufValueTypeSize(GgufValueType type);
std::string_view GgufValueTypeName(GgufValueType type);
// True for the ids 0..12 except kArray (valid element types).
bool IsGgufElementType(uint32_t id);

struct GgufKv {
  std::string key;
  GgufValueType type = GgufValueType::kUint8;  // element type for arrays
  bool is_array = false;
  std::vector<uint8_t> raw;          // numeric/bool payload, little-endian
  std::vector<std::string> strings;  // string payload

  size_t size() const;  // element count (1 for scalars)

  static GgufKv U32(std::string key, uint32_t v);
  static GgufKv I32(std::string key, int32_t v);
  static GgufKv U16(std::string key, uint16_t v);
  static GgufKv F32(std::string key, float v);
  static GgufKv Bool(std::string key, bool v);
  static GgufKv Str(std::string key, std::string v);
  static GgufKv StrArray(std::string key, std::vector<std::string> v);
  template <typename T>
  static GgufKv NumArray(std::string key, GgufValueType type, const std::vector<T>& v) {
    GgufKv kv;
    kv.key = std::move(key);
    kv.type = type;
    kv.is_array = true;
    kv.raw.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(kv.raw.data(), v.data(), kv.raw.size());
    return kv;
  }

  // Scalar readers: nullopt when the pair is an array or of another type.
  std::optional<uint32_t> GetU32() const;
  std::optional<uint16_t> GetU16() const;
  std::optional<std::string> GetString() const;
  // Element `i` of a u32/i32 scalar or array as an integer, else nullopt.
  std::optional<int64_t> GetIntElement(size_t i) const;
};

// Finds `key` in `kvs`; nullptr when absent.
const GgufKv* FindKv(const std::vector<GgufKv>& kvs, std::string_view key);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_GGUF_GGUF_VALUE_H_
