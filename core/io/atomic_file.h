// An output file that appears at its destination complete or not at all.
//
// Data is written to a temporary file beside the destination; Commit
// fsyncs it, renames it over the destination and fsyncs the directory.
// Destroying an uncommitted AtomicFile removes the temporary file, so a
// failed or cancelled job leaves nothing at the destination.
//
// Thread-safety: PWrite may be called from several threads for disjoint
// ranges; Create, Commit and destruction need exclusive access.
#ifndef QUANTFLEET_CORE_IO_ATOMIC_FILE_H_
#define QUANTFLEET_CORE_IO_ATOMIC_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/file_ops.h"

namespace quantfleet {

class AtomicFile {
 public:
  // Creates the temporary file for `destination`, with permissions `mode`
  // (0600 for secrets). Fails with ALREADY_EXISTS when the destination
  // exists and `overwrite` is false.
  static absl::StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& destination, bool overwrite,
                                                            mode_t mode = 0644, FileOps* ops = FileOps::Posix());

  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Writes `size` bytes at `offset` of the temporary file (retrying short
  // writes). Errors name the destination and the errno text (ENOSPC, EIO).
  absl::Status PWrite(const void* data, size_t size, uint64_t offset);

  // Sets the final length (the file must end exactly at the last tensor).
  absl::Status Truncate(uint64_t size);

  // fsync, rename over the destination, fsync the directory.
  absl::Status Commit();

  const std::string& destination() const { return destination_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFile(std::string destination, std::string temp_path, int fd, FileOps* ops);
  std::string destination_;
  std::string temp_path_;
  int fd_;
  FileOps* const ops_;
  bool committed_ = false;
};

// Renames the finished file `from` to `to` (same file system) and fsyncs
// the directory of `to`, so that the new name survives a crash. Errors
// name the path and the failed call.
absl::Status RenameDurably(const std::string& from, const std::string& to, FileOps* ops = FileOps::Posix());

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_IO_ATOMIC_FILE_H_
