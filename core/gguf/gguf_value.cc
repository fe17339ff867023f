#include "core/gguf/gguf_value.h"

namespace quantfleet {

size_t GgufValueTypeSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

std::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "u8";
    case GgufValueType::kInt8:
      return "i8";
    case GgufValueType::kUint16:
      return "u16";
    case GgufValueType::kInt16:
      return "i16";
    case GgufValueType::kUint32:
      return "u32";
    case GgufValueType::kInt32:
      return "i32";
    case GgufValueType::kFloat32:
      return "f32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "str";
    case GgufValueType::kArray:
      return "arr";
    case GgufValueType::kUint64:
      return "u64";
    case GgufValueType::kInt64:
      return "i64";
    case GgufValueType::kFloat64:
      return "f64";
  }
  return "unknown";
}

bool IsGgufElementType(uint32_t id) {
  return id <= static_cast<uint32_t>(GgufValueType::kFloat64) && id != static_cast<uint32_t>(GgufValueType::kArray);
}

size_t GgufKv::size() const {
  if (type == GgufValueType::kString) return strings.size();
  return raw.size() / GgufValueTypeSize(type);
}

namespace {
template <typename T>
GgufKv Scalar(std::string key, GgufValueType type, T v) {
  GgufKv kv;
  kv.key = std::move(key);
  kv.type = type;
  kv.raw.resize(sizeof(T));
  std::memcpy(kv.raw.data(), &v, sizeof(T));
  return kv;
}

template <typename T>
T Element(const GgufKv& kv, size_t i) {
  T v;
  std::memcpy(&v, kv.raw.data() + i * sizeof(T), sizeof(T));
  return v;
}
}  // namespace

GgufKv GgufKv::U32(std::string key, uint32_t v) { return Scalar(std::move(key), GgufValueType::kUint32, v); }
GgufKv GgufKv::I32(std::string key, int32_t v) { return Scalar(std::move(key), GgufValueType::kInt32, v); }
GgufKv GgufKv::U16(std::string key, uint16_t v) { return Scalar(std::move(key), GgufValueType::kUint16, v); }
GgufKv GgufKv::F32(std::string key, float v) { return Scalar(std::move(key), GgufValueType::kFloat32, v); }
GgufKv GgufKv::Bool(std::string key, bool v) {
  return Scalar(std::move(key), GgufValueType::kBool, static_cast<uint8_t>(v ? 1 : 0));
}
GgufKv GgufKv::Str(std::string key, std::string v) {
  GgufKv kv;
  kv.key = std::move(key);
  kv.type = GgufValueType::kString;
  kv.strings.push_back(std::move(v));
  return kv;
}
GgufKv GgufKv::StrArray(std::string key, std::vector<std::string> v) {
  GgufKv kv;
  kv.key = std::move(key);
  kv.type = GgufValueType::kString;
  kv.is_array = true;
  kv.strings = std::move(v);
  return kv;
}

std::optional<uint32_t> GgufKv::GetU32() const {
  if (is_array || type != GgufValueType::kUint32) return std::nullopt;
  return Element<uint32_t>(*this, 0);
}

std::optional<uint16_t> GgufKv::GetU16() const {
  if (is_array || type != GgufValueType::kUint16) return std::nullopt;
  return Element<uint16_t>(*this, 0);
}

std::optional<std::string> GgufKv::GetString() const {
  if (is_array || type != GgufValueType::kString) return std::nullopt;
  return strings[0];
}

std::optional<int64_t> GgufKv::GetIntElement(size_t i) const {
  if (i >= size()) return std::nullopt;
  if (type == GgufValueType::kUint32) return Element<uint32_t>(*this, i);
  if (type == GgufValueType::kInt32) return Element<int32_t>(*this, i);
  return std::nullopt;
}

const GgufKv* FindKv(const std::vector<GgufKv>& kvs, std::string_view key) {
  for (const GgufKv& kv : kvs) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}

}  // namespace quantfleet
