// The artifact while it is being assembled: a file with a fixed name beside
// the destination (so a restarted coordinator finds it again), written at
// precomputed offsets, then fsynced and renamed into place.
//
// Thread-safety: PWrite/PRead on disjoint ranges may run concurrently;
// Sync, Finalize and Remove need exclusive access.
#ifndef QUANTFLEET_COORDINATOR_PART_FILE_H_
#define QUANTFLEET_COORDINATOR_PART_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/file_ops.h"

namespace quantfleet {

class PartFile {
 public:
  // The partial file's path for `destination` and `job_id`.
  static std::string PathFor(const std::string& destination, const std::string& job_id);

  // Opens the partial file, creating it with `size` bytes if absent.
  // Writes, syncs and the rename go through `ops`.
  static absl::StatusOr<std::unique_ptr<PartFile>> Open(const std::string& destination, const std::string& job_id,
                                                        uint64_t size, FileOps* ops = FileOps::Posix());
  ~PartFile();

  absl::Status PWrite(const void* data, size_t size, uint64_t offset);
  absl::Status PRead(void* data, size_t size, uint64_t offset) const;
  absl::Status Sync();
  // Gives the disk space of [offset, offset + size) back to the file
  // system (it then reads as zeros); best effort, for bytes no longer
  // needed, such as a pipeline's activations once the next stage is done.
  void Release(uint64_t offset, uint64_t size);
  // fsync, rename over the destination, fsync the directory.
  absl::Status Finalize();
  // Deletes the partial file (a failed or cancelled job).
  void Remove();

  const std::string& path() const { return path_; }

 private:
  PartFile(std::string destination, std::string path, int fd, FileOps* ops)
      : destination_(destination), path_(path), fd_(fd), ops_(ops) {}
  std::string destination_;
  std::string path_;
  int fd_;
  FileOps* ops_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_PART_FILE_H_
