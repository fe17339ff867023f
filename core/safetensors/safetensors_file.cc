#include "core/safetensors/safetensors_file.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/safetensors/strict_json.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

namespace {

using Json = nlohmann::json;

struct DtypeInfo {
  SafetensorsDtype dtype;
  std::string_view name;
  size_t bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::kBool, "BOOL", 1},       {SafetensorsDtype::kU8, "U8", 1},
    {SafetensorsDtype::kI8, "I8", 1},           {SafetensorsDtype::kF8_E4M3, "F8_E4M3", 1},
    {SafetensorsDtype::kF8_E5M2, "F8_E5M2", 1}, {SafetensorsDtype::kI16, "I16", 2},
    {SafetensorsDtype::kU16, "U16", 2},         {SafetensorsDtype::kF16, "F16", 2},
    {SafetensorsDtype::kBF16, "BF16", 2},       {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kU32, "U32", 4},         {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kI64, "I64", 8},         {SafetensorsDtype::kU64, "U64", 8},
    {SafetensorsDtype::kF64, "F64", 8},
};

const DtypeInfo& Info(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d;
  }
  return kDtypes[0];
}

// Nesting deeper than this is never a valid header (an object of entries,
// each an object of arrays of numbers).
constexpr int kMaxDepth = 3;

absl::StatusOr<uint64_t> Unsigned(const Json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return absl::InvalidArgumentError(absl::StrFormat("%s is %s, not a non-negative integer", what, v.dump()));
}

}  // namespace

std::optional<SafetensorsDtype> ParseSafetensorsDtype(std::string_view name) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

std::string_view SafetensorsDtypeName(SafetensorsDtype dtype) { return Info(dtype).name; }
size_t SafetensorsDtypeBytes(SafetensorsDtype dtype) { return Info(dtype).bytes; }

int64_t SafetensorsTensor::elements() const {
  uint64_t n = 1;  // Parse refused shapes whose running product passes INT64_MAX
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return static_cast<int64_t>(n);
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  QF_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::Open(path));
  auto file = std::make_shared<const MappedFile>(std::move(mapped));
  QF_ASSIGN_OR_RETURN(SafetensorsFile out,
                      Parse(path, std::string_view(reinterpret_cast<const char*>(file->data()), file->size())));
  out.file_ = std::move(file);
  return out;
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Parse(const std::string& path, std::string_view bytes) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: not a valid safetensors file: %s", path, what));
  };
  if (bytes.size() < 8) return bad(absl::StrFormat("%d bytes, shorter than the 8-byte header length", bytes.size()));
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  if (header_bytes > kMaxSafetensorsHeaderBytes) {
    return bad(absl::StrFormat("the header is %d bytes, over the format's limit of %d", header_bytes,
                               kMaxSafetensorsHeaderBytes));
  }
  if (header_bytes > bytes.size() - 8) {
    return bad(absl::StrFormat("the header is %d bytes but only %d follow the length", header_bytes, bytes.size() - 8));
  }
  const std::string_view header = bytes.substr(8, header_bytes);
  if (header.empty() || header[0] != '{') return bad("the header does not start with '{'");
  absl::StatusOr<Json> json = ParseStrictJson(header, kMaxDepth);
  if (!json.ok()) return bad(absl::StrFormat("the header %s", json.status().message()));
  if (!json->is_object()) return bad("the header is not a JSON object");

  SafetensorsFile out;
  out.path_ = path;
  const uint64_t data_start = 8 + header_bytes;
  const uint64_t buffer_bytes = bytes.size() - data_start;
  for (const auto& [name, entry] : json->items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) return bad(absl::StrFormat("__metadata__ '%s' is not a string", key));
        out.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string tensor = name;  // a structured binding cannot be captured
    auto bad_tensor = [&](const std::string& what) { return bad(absl::StrFormat("tensor '%s': %s", tensor, what)); };
    if (name.empty()) return bad("a tensor has an empty name");
    if (!entry.is_object()) return bad_tensor("its entry is not an object");
    for (const auto& [key, value] : entry.items()) {
      if (key != "dtype" && key != "shape" && key != "data_offsets") {
        return bad_tensor(absl::StrFormat("unknown field '%s'", key));
      }
    }
    if (!entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
      return bad_tensor("it needs dtype, shape and data_offsets");
    }
    SafetensorsTensor t;
    t.name = name;
    const Json& dtype = entry["dtype"];
    std::optional<SafetensorsDtype> parsed =
        dtype.is_string() ? ParseSafetensorsDtype(dtype.get<std::string>()) : std::nullopt;
    if (!parsed) return bad_tensor(absl::StrFormat("unknown dtype %s", dtype.dump()));
    t.dtype = *parsed;
    const Json& shape = entry["shape"];
    if (!shape.is_array()) return bad_tensor("shape is not an array");
    uint64_t elements = 1;
    for (const Json& d : shape) {
      absl::StatusOr<uint64_t> dim = Unsigned(d, "a dimension");
      if (!dim.ok()) return bad_tensor(std::string(dim.status().message()));
      if (__builtin_mul_overflow(elements, *dim, &elements) || elements > static_cast<uint64_t>(INT64_MAX)) {
        return bad_tensor(absl::StrFormat("shape %s overflows", shape.dump()));
      }
      t.shape.push_back(static_cast<int64_t>(*dim));
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(elements, SafetensorsDtypeBytes(t.dtype), &nbytes)) {
      return bad_tensor(absl::StrFormat("shape %s overflows", shape.dump()));
    }
    const Json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) return bad_tensor("data_offsets is not [begin, end]");
    absl::StatusOr<uint64_t> begin = Unsigned(offsets[0], "data_offsets' begin");
    absl::StatusOr<uint64_t> end = Unsigned(offsets[1], "data_offsets' end");
    if (!begin.ok()) return bad_tensor(std::string(begin.status().message()));
    if (!end.ok()) return bad_tensor(std::string(end.status().message()));
    if (*begin > *end) return bad_tensor(absl::StrFormat("data_offsets [%d, %d] run backwards", *begin, *end));
    if (*end - *begin != nbytes) {
      return bad_tensor(absl::StrFormat("data_offsets [%d, %d] hold %d bytes, but %s of shape %s is %d bytes", *begin,
                                        *end, *end - *begin, SafetensorsDtypeName(t.dtype), shape.dump(), nbytes));
    }
    if (*end > buffer_bytes) {
      return bad_tensor(absl::StrFormat("data_offsets [%d, %d] run past the %d bytes of data in the file", *begin, *end,
                                        buffer_bytes));
    }
    t.offset = data_start + *begin;
    t.nbytes = nbytes;
    t.data = reinterpret_cast<const uint8_t*>(bytes.data()) + t.offset;
    out.tensors_.push_back(std::move(t));
  }
  std::sort(out.tensors_.begin(), out.tensors_.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  uint64_t at = data_start;
  for (const SafetensorsTensor& t : out.tensors_) {
    if (t.offset < at) {
      return bad(absl::StrFormat("tensor '%s' (bytes %d-%d of the data) overlaps the tensor before it", t.name,
                                 t.offset - data_start, t.offset - data_start + t.nbytes));
    }
    if (t.offset > at) {
      return bad(absl::StrFormat("bytes %d-%d of the data belong to no tensor (the format allows no holes)",
                                 at - data_start, t.offset - data_start));
    }
    at = t.offset + t.nbytes;
  }
  if (at != bytes.size()) {
    return bad(absl::StrFormat("the last %d bytes of the file belong to no tensor (the format allows no holes)",
                               bytes.size() - at));
  }
  for (size_t i = 0; i < out.tensors_.size(); ++i) out.by_name_[out.tensors_[i].name] = i;
  return out;
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::Drop(const SafetensorsTensor& tensor) const {
  if (file_) file_->DropRange(tensor.offset, tensor.nbytes);
}

}  // namespace quantfleet
