#include "core/io/file_ops.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace quantfleet {

ssize_t FileOps::PWrite(int fd, const void* data, size_t size, off_t offset) {
  return ::pwrite(fd, data, size, offset);
}
int FileOps::FdataSync(int fd) { return ::fdatasync(fd); }
int FileOps::FSync(int fd) { return ::fsync(fd); }
int FileOps::RenameAt(int dir_fd, const char* from, const char* to) { return ::renameat(dir_fd, from, dir_fd, to); }

FileOps* FileOps::Posix() {
  static FileOps* ops = new FileOps;
  return ops;
}

}  // namespace quantfleet
