#include "tests/tools/faulty_file_ops.h"

#include <cerrno>

namespace quantfleet {

void FaultyFileOps::set_write_budget(int64_t bytes) {
  absl::MutexLock l(&mu_);
  write_budget_ = bytes;
}
void FaultyFileOps::set_fail_sync(bool fail) {
  absl::MutexLock l(&mu_);
  fail_sync_ = fail;
}
void FaultyFileOps::set_fail_rename(bool fail) {
  absl::MutexLock l(&mu_);
  fail_rename_ = fail;
}

ssize_t FaultyFileOps::PWrite(int fd, const void* data, size_t size, off_t offset) {
  {
    absl::MutexLock l(&mu_);
    if (write_budget_ >= 0) {
      if (static_cast<int64_t>(size) > write_budget_) {
        errno = ENOSPC;
        return -1;
      }
      write_budget_ -= static_cast<int64_t>(size);
    }
  }
  return FileOps::PWrite(fd, data, size, offset);
}

int FaultyFileOps::FdataSync(int fd) {
  {
    absl::MutexLock l(&mu_);
    if (fail_sync_) {
      errno = EIO;
      return -1;
    }
  }
  return FileOps::FdataSync(fd);
}

int FaultyFileOps::FSync(int fd) {
  {
    absl::MutexLock l(&mu_);
    if (fail_sync_) {
      errno = EIO;
      return -1;
    }
  }
  return FileOps::FSync(fd);
}

int FaultyFileOps::RenameAt(int dir_fd, const char* from, const char* to) {
  {
    absl::MutexLock l(&mu_);
    if (fail_rename_) {
      errno = EIO;
      return -1;
    }
  }
  return FileOps::RenameAt(dir_fd, from, to);
}

}  // namespace quantfleet
