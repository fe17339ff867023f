// FileOps that fail on purpose, for fault tests: writes past a byte budget
// (ENOSPC), syncs (EIO), renames (EIO), as configured.
//
// Thread-safety: configuration and calls may come from any thread; a
// mutex guards the settings.
#ifndef QUANTFLEET_TESTS_TOOLS_FAULTY_FILE_OPS_H_
#define QUANTFLEET_TESTS_TOOLS_FAULTY_FILE_OPS_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/io/file_ops.h"

namespace quantfleet {

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

#endif  // QUANTFLEET_TESTS_TOOLS_FAULTY_FILE_OPS_H_
