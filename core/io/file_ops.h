// The file operations behind every durable write (artifacts, partial
// files, imatrix checkpoints, the worker's model cache), behind an
// interface so tests can inject disk faults (ENOSPC, EIO on fsync, a
// failing rename) without a real broken disk (see
// tests/tools/faulty_file_ops.h).
//
// Thread-safety: FileOps::Posix() is stateless.
#ifndef QUANTFLEET_CORE_IO_FILE_OPS_H_
#define QUANTFLEET_CORE_IO_FILE_OPS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace quantfleet {

// POSIX-shaped calls: return values and errno as the system calls set them.
class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual ssize_t PWrite(int fd, const void* data, size_t size, off_t offset);
  virtual int FdataSync(int fd);
  virtual int FSync(int fd);
  // Renames `from` to `to`, both in the directory `dir_fd` (AT_FDCWD:
  // paths as rename takes them).
  virtual int RenameAt(int dir_fd, const char* from, const char* to);

  // The real file system.
  static FileOps* Posix();
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_IO_FILE_OPS_H_
