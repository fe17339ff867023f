#include "core/gguf/gguf_file.h"

#include <cstring>
#include <limits>
#include <unordered_set>

#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace quantfleet {

int GgufTensorInfo::n_dims() const {
  for (int i = kGgufMaxDims - 1; i >= 1; --i) {
    if (ne[i] != 1) return i + 1;
  }
  return 1;
}

size_t TensorBytes(GgmlType type, const int64_t ne[kGgufMaxDims]) {
  const int64_t rows = ne[1] * ne[2] * ne[3];
  return RowSize(type, ne[0]) * static_cast<size_t>(rows);
}

namespace {

// Sequential little-endian reads with bounds checks; every error names the
// file and the offset where the bad field starts.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, std::string_view file) : data_(data), size_(size), file_(file) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  absl::Status Error(size_t at, std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrFormat("%s: offset %d: %s", file_, at, what));
  }

  template <typename T>
  absl::StatusOr<T> Read(std::string_view what) {
    if (remaining() < sizeof(T)) {
      return Error(pos_,
                   absl::StrFormat("file ends inside %s (needs %d bytes, %d left)", what, sizeof(T), remaining()));
    }
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  absl::StatusOr<std::string> ReadString(std::string_view what, uint64_t max_len) {
    const size_t at = pos_;
    QF_ASSIGN_OR_RETURN(uint64_t len, Read<uint64_t>(what));
    if (len > max_len) {
      return Error(at, absl::StrFormat("%s length %d exceeds the limit of %d bytes", what, len, max_len));
    }
    if (len > remaining()) {
      return Error(
          at, absl::StrFormat("%s length %d runs past the end of the file (%d bytes left)", what, len, remaining()));
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

  absl::Status ReadBytes(size_t n, std::vector<uint8_t>* out, std::string_view what) {
    if (n > remaining()) {
      return Error(pos_, absl::StrFormat("%s needs %d bytes but only %d are left", what, n, remaining()));
    }
    out->assign(data_ + pos_, data_ + pos_ + n);
    pos_ += n;
    return absl::OkStatus();
  }

  void Seek(size_t pos) { pos_ = pos; }

 private:
  const uint8_t* data_;
  size_t size_;
  std::string_view file_;
  size_t pos_ = 0;
};

absl::Status ReadKv(Cursor& in, const GgufParseLimits& limits, int64_t index, GgufKv* kv) {
  const size_t key_at = in.offset();
  QF_ASSIGN_OR_RETURN(kv->key, in.ReadString(absl::StrFormat("key %d", index), limits.max_string_bytes));
  if (kv->key.empty()) return in.Error(key_at, absl::StrFormat("key %d is empty", index));
  const size_t type_at = in.offset();
  QF_ASSIGN_OR_RETURN(uint32_t type_id, in.Read<uint32_t>("value type"));
  uint64_t n = 1;
  if (type_id == static_cast<uint32_t>(GgufValueType::kArray)) {
    kv->is_array = true;
    const size_t elem_at = in.offset();
    QF_ASSIGN_OR_RETURN(type_id, in.Read<uint32_t>("array element type"));
    if (type_id == static_cast<uint32_t>(GgufValueType::kArray)) {
      return in.Error(elem_at, absl::StrFormat("key '%s': nested arrays are not valid GGUF", kv->key));
    }
    const size_t n_at = in.offset();
    QF_ASSIGN_OR_RETURN(n, in.Read<uint64_t>("array length"));
    if (n > limits.max_array_elements) {
      return in.Error(n_at, absl::StrFormat("key '%s': array of %d elements exceeds the limit of %d", kv->key, n,
                                            limits.max_array_elements));
    }
  }
  if (!IsGgufElementType(type_id)) {
    return in.Error(type_at, absl::StrFormat("key '%s' has invalid value type %d", kv->key, type_id));
  }
  kv->type = static_cast<GgufValueType>(type_id);
  if (kv->type == GgufValueType::kString) {
    // Each string costs at least its 8-byte length: refuse counts that
    // cannot fit before allocating anything.
    if (n > in.remaining() / 8) {
      return in.Error(in.offset(), absl::StrFormat("key '%s': %d strings cannot fit in the %d bytes left", kv->key, n,
                                                   in.remaining()));
    }
    kv->strings.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      QF_ASSIGN_OR_RETURN(std::string s,
                          in.ReadString(absl::StrFormat("string value of '%s'", kv->key), limits.max_string_bytes));
      kv->strings.push_back(std::move(s));
    }
    return absl::OkStatus();
  }
  const size_t elem = GgufValueTypeSize(kv->type);
  if (n > in.remaining() / elem) {
    return in.Error(in.offset(),
                    absl::StrFormat("key '%s': %d values of %d bytes run past the end of the file", kv->key, n, elem));
  }
  QF_RETURN_IF_ERROR(in.ReadBytes(n * elem, &kv->raw, absl::StrFormat("value of '%s'", kv->key)));
  if (kv->type == GgufValueType::kBool) {
    for (uint8_t& b : kv->raw) b = b != 0 ? 1 : 0;
  }
  return absl::OkStatus();
}

absl::Status ReadTensorInfo(Cursor& in, const GgufParseLimits& limits, int64_t index, GgufTensorInfo* t) {
  const size_t name_at = in.offset();
  QF_ASSIGN_OR_RETURN(t->name, in.ReadString(absl::StrFormat("tensor %d name", index), limits.max_string_bytes));
  if (t->name.size() > kGgufMaxNameBytes) {
    return in.Error(name_at, absl::StrFormat("tensor %d name is %d bytes long; the limit is %d", index, t->name.size(),
                                             kGgufMaxNameBytes));
  }
  const size_t dims_at = in.offset();
  QF_ASSIGN_OR_RETURN(uint32_t n_dims, in.Read<uint32_t>("tensor dimension count"));
  if (n_dims > kGgufMaxDims) {
    return in.Error(dims_at, absl::StrFormat("tensor '%s' has %d dimensions; at most %d are allowed", t->name, n_dims,
                                             kGgufMaxDims));
  }
  for (uint32_t j = 0; j < n_dims; ++j) {
    const size_t at = in.offset();
    QF_ASSIGN_OR_RETURN(t->ne[j], in.Read<int64_t>("tensor dimension"));
    if (t->ne[j] < 0) {
      return in.Error(at, absl::StrFormat("tensor '%s' dimension %d is negative (%d)", t->name, j, t->ne[j]));
    }
  }
  const int64_t* ne = t->ne;
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const bool empty = ne[0] == 0 || ne[1] == 0 || ne[2] == 0 || ne[3] == 0;
  if (!empty && (kMax / ne[1] <= ne[0] || kMax / ne[2] <= ne[0] * ne[1] || kMax / ne[3] <= ne[0] * ne[1] * ne[2])) {
    return in.Error(dims_at, absl::StrFormat("tensor '%s' shape (%d, %d, %d, %d) has too many elements", t->name, ne[0],
                                             ne[1], ne[2], ne[3]));
  }
  const size_t type_at = in.offset();
  QF_ASSIGN_OR_RETURN(uint32_t type_id, in.Read<uint32_t>("tensor type"));
  std::optional<GgmlTypeInfo> info = LookupGgmlType(type_id);
  if (!info) {
    return in.Error(type_at, absl::StrFormat("tensor '%s' has unknown type id %d", t->name, type_id));
  }
  t->type = static_cast<GgmlType>(type_id);
  if (ne[0] % info->block_size != 0) {
    return in.Error(type_at, absl::StrFormat("tensor '%s' of type %s has %d elements per row, not a multiple of "
                                             "its block size %d",
                                             t->name, info->name, ne[0], info->block_size));
  }
  const uint64_t blocks = static_cast<uint64_t>(t->n_elements() / info->block_size);
  if (blocks > std::numeric_limits<size_t>::max() / info->type_size) {
    return in.Error(type_at, absl::StrFormat("tensor '%s' byte size overflows", t->name));
  }
  t->nbytes = blocks * info->type_size;
  QF_ASSIGN_OR_RETURN(t->offset, in.Read<uint64_t>("tensor data offset"));
  return absl::OkStatus();
}

size_t Pad(size_t x, size_t n) { return (x + n - 1) / n * n; }

}  // namespace

absl::StatusOr<GgufFile> GgufFile::Parse(const uint8_t* data, size_t size, std::string_view file_name,
                                         const GgufParseLimits& limits) {
  Cursor in(data, size, file_name);
  GgufFile file;
  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) {
    return in.Error(0, "not a GGUF file (the first 4 bytes are not 'GGUF')");
  }
  in.Seek(4);
  QF_ASSIGN_OR_RETURN(file.version_, in.Read<uint32_t>("version"));
  if (file.version_ == 0 || file.version_ == 1) {
    return in.Error(4, absl::StrFormat("GGUF version %d is not supported (only versions 2 and 3)", file.version_));
  }
  if ((file.version_ & 0xFFFF) == 0) {
    return in.Error(4, absl::StrFormat("GGUF version %d looks byte-swapped (a big-endian file?)", file.version_));
  }
  if (file.version_ > kGgufVersion) {
    return in.Error(
        4, absl::StrFormat("GGUF version %d is newer than the supported version %d", file.version_, kGgufVersion));
  }
  QF_ASSIGN_OR_RETURN(int64_t n_tensors, in.Read<int64_t>("tensor count"));
  QF_ASSIGN_OR_RETURN(int64_t n_kv, in.Read<int64_t>("key-value count"));
  // Each tensor info and each pair takes well over 8 bytes, so a count
  // larger than the bytes left is impossible: refuse it before allocating.
  if (n_tensors < 0 || static_cast<uint64_t>(n_tensors) > in.remaining() / 8) {
    return in.Error(8, absl::StrFormat("tensor count %d is impossible for a file of %d bytes", n_tensors, size));
  }
  if (n_kv < 0 || static_cast<uint64_t>(n_kv) > in.remaining() / 8) {
    return in.Error(16, absl::StrFormat("key-value count %d is impossible for a file of %d bytes", n_kv, size));
  }
  std::unordered_set<std::string> keys;
  file.kv_.reserve(n_kv);
  for (int64_t i = 0; i < n_kv; ++i) {
    const size_t at = in.offset();
    GgufKv kv;
    QF_RETURN_IF_ERROR(ReadKv(in, limits, i, &kv));
    if (!keys.insert(kv.key).second) return in.Error(at, absl::StrFormat("duplicate key '%s'", kv.key));
    file.kv_.push_back(std::move(kv));
  }
  if (const GgufKv* align = FindKv(file.kv_, kGgufAlignmentKey)) {
    std::optional<uint32_t> a = align->GetU32();
    if (!a) {
      return in.Error(in.offset(),
                      absl::StrFormat("key '%s' must be a u32 but is %s%s", kGgufAlignmentKey,
                                      align->is_array ? "an array of " : "", GgufValueTypeName(align->type)));
    }
    if (*a == 0 || (*a & (*a - 1)) != 0) {
      return in.Error(in.offset(), absl::StrFormat("alignment %d is not a power of two", *a));
    }
    file.alignment_ = *a;
  }
  std::unordered_set<std::string> names;
  file.tensors_.reserve(n_tensors);
  for (int64_t i = 0; i < n_tensors; ++i) {
    const size_t at = in.offset();
    GgufTensorInfo t;
    QF_RETURN_IF_ERROR(ReadTensorInfo(in, limits, i, &t));
    if (!names.insert(t.name).second) return in.Error(at, absl::StrFormat("duplicate tensor name '%s'", t.name));
    file.tensors_.push_back(std::move(t));
  }
  file.data_offset_ = n_tensors > 0 ? Pad(in.offset(), file.alignment_) : in.offset();
  if (file.data_offset_ > size) {
    return in.Error(in.offset(), "file ends before its data section starts");
  }
  // Tensors must sit back to back, each at the aligned end of the one
  // before, all inside the file.
  uint64_t expected = 0;
  for (const GgufTensorInfo& t : file.tensors_) {
    if (t.offset != expected) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: tensor '%s' has data offset %d, expected %d (gap, overlap or misalignment)", file_name,
                          t.name, t.offset, expected));
    }
    const uint64_t avail = size - file.data_offset_;
    if (t.nbytes > avail || t.offset > avail - t.nbytes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: tensor '%s' data [%d, %d) runs past the end of the file (data section has %d bytes); the file "
          "is truncated",
          file_name, t.name, file.data_offset_ + t.offset, file.data_offset_ + t.offset + t.nbytes, avail));
    }
    expected = t.offset + Pad(t.nbytes, file.alignment_);
  }
  return file;
}

}  // namespace quantfleet
