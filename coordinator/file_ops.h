// The file operations behind the coordinator's artifacts, behind an
// interface so tests can inject disk faults (ENOSPC, EIO on fsync, a
// failing rename) without a real broken disk.
//
// Thread-safety: FileOps::Posix() is stateless; FaultyFileOps is guarded
// by a mutex.
#ifndef QUANTFLEET_COORDINATOR_FILE_OPS_H_
#define QUANTFLEET_COORDINATOR_FILE_OPS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace quantfleet {

// POSIX-shaped calls: return values and errno as the system calls set them.
class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual ssize_t PWrite(int fd, const void* data, size_t size, off_t offset);
  virtual int FdataSync(int fd);
  virtual int FSync(int fd);
  // Renames `from` to `to`, both in the directory `dir_fd`.
  virtual int RenameAt(int dir_fd, const char* from, const char* to);

  // The real file system.
  static FileOps* Posix();
};

// Fails on purpose: writes past a byte budget (ENOSPC), syncs (EIO),
// renames (EIO), as configured.
class FaultyFileOps : public FileOps {
 public:
  void set_write_budget(int64_t bytes);  // -1: unlimited
  void set_fail_sync(bool fail);
  void set_fail_rename(bool fail);

  ssize_t PWrite(int fd, const void* data, size_t size, off_t offset) override;
  int FdataSync(int fd) override;
  int FSync(int fd) override;
  int RenameAt(int dir_fd, const char* from, const char* to) override;

 private:
  absl::Mutex mu_;
  int64_t write_budget_ ABSL_GUARDED_BY(mu_) = -1;
  bool fail_sync_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_rename_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_FILE_OPS_H_
