// The artifact while it is being assembled: a file with a fixed name beside
// the destination (so a restarted coordinator finds it again), written at
// precomputed offsets, then fsynced and renamed into place.
//
// The destination's directory is opened once, without following symlinks,
// and every later create, rename, sync and removal goes through that
// handle: if the directory is moved and something else (a symlink) put at
// its path, nothing is written or renamed outside it, and Finalize refuses
// instead of reporting another file as the artifact.
//
// Thread-safety: PWrite/PRead on disjoint ranges may run concurrently;
// Sync, Truncate, Finalize and Remove need exclusive access.
#ifndef QUANTFLEET_COORDINATOR_PART_FILE_H_
#define QUANTFLEET_COORDINATOR_PART_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/io/directory.h"
#include "core/io/file_ops.h"

namespace quantfleet {

class PartFile {
 public:
  // The partial file's path for `destination` and `job_id`.
  static std::string PathFor(const std::string& destination, const std::string& job_id);

  // Opens the partial file, creating it with `size` bytes if absent.
  // `destination` is an absolute path whose directory has no symlink in it
  // (INVALID_ARGUMENT otherwise). Writes, syncs and the rename go through
  // `ops`.
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
  // Cuts the file to `size` bytes (after a job moved what lay beyond into
  // place) and syncs it.
  absl::Status Truncate(uint64_t size);
  // fsync, rename over the destination, fsync the directory.
  // FAILED_PRECONDITION, with nothing renamed, when the directory is no
  // longer at its path.
  absl::Status Finalize();
  // Replaces the whole content with `content`, then Finalize: for jobs whose
  // artifact is computed from the parts (an importance matrix).
  absl::Status FinalizeWith(absl::Span<const uint8_t> content);
  // SHA-256 of the file's content, read through its own descriptor (the
  // artifact's digest, whatever its path now leads to).
  absl::StatusOr<std::string> Sha256() const;
  // Deletes the partial file (a failed or cancelled job).
  void Remove();

  const std::string& path() const { return path_; }

 private:
  PartFile(Directory dir, std::string name, std::string part_name, int fd, FileOps* ops)
      : dir_(std::move(dir)),
        name_(std::move(name)),
        part_name_(std::move(part_name)),
        path_(dir_.path() + "/" + part_name_),
        fd_(fd),
        ops_(ops) {}
  Directory dir_;          // the destination's directory, held open
  std::string name_;       // the destination's file name in it
  std::string part_name_;  // the partial file's name in it
  std::string path_;       // for messages
  int fd_;
  FileOps* ops_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_PART_FILE_H_
