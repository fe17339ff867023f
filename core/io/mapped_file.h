// A read-only memory mapping of a whole file, or a block of anonymous
// memory standing in for one (bytes computed in memory, e.g. the converted
// tensors of a checkpoint): the same reads, and DropRange does nothing to
// it since its pages cannot be read back from a file.
//
// Thread-safety: immutable after Open; the mapping may be read from any
// thread. An anonymous block is written through mutable_data() by its
// creator before it is shared. Move-only; unmapped on destruction.
#ifndef QUANTFLEET_CORE_IO_MAPPED_FILE_H_
#define QUANTFLEET_CORE_IO_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace quantfleet {

class MappedFile {
 public:
  // Maps `path`. Errors: NOT_FOUND, PERMISSION_DENIED or INVALID_ARGUMENT
  // (a directory, a FIFO, a device), each naming the path. Never blocks on
  // a FIFO.
  static absl::StatusOr<MappedFile> Open(const std::string& path);
  // `size` zeroed bytes of anonymous memory; `name` stands for its path in
  // errors. RESOURCE_EXHAUSTED when the memory cannot be had.
  static absl::StatusOr<MappedFile> Anonymous(size_t size, const std::string& name);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool anonymous() const { return anonymous_; }
  // Only for an anonymous block, before it is shared.
  uint8_t* mutable_data() const { return anonymous_ ? const_cast<uint8_t*>(data_) : nullptr; }

  // Tells the kernel that [offset, offset+len) will not be read again soon,
  // so resident pages of a large input do not accumulate.
  void DropRange(size_t offset, size_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool anonymous_ = false;
};

// The whole of a regular file (text, a token, a certificate), with
// MappedFile::Open's refusals, and RESOURCE_EXHAUSTED past `max_bytes`.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, size_t max_bytes = size_t{1} << 32);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_IO_MAPPED_FILE_H_
