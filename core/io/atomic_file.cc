#include "core/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"

namespace quantfleet {
namespace {

absl::Status ErrnoError(const std::string& path, const char* what, int err) {
  const std::string msg = absl::StrFormat("%s: %s: %s", path, what, std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

// Makes a rename into the directory of `path` durable.
absl::Status SyncDirectoryOf(const std::string& path, FileOps* ops) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return absl::OkStatus();  // nothing to sync through
  const int rc = ops->FSync(dfd);
  const int err = errno;
  ::close(dfd);
  return rc != 0 ? ErrnoError(dir, "directory fsync failed", err) : absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& destination, bool overwrite,
                                                               mode_t mode, FileOps* ops) {
  struct stat st;
  if (!overwrite && ::stat(destination.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrFormat("%s: already exists; remove it or pass --force to overwrite it", destination));
  }
  std::string temp = destination + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return ErrnoError(destination, "cannot create a temporary file beside it", errno);
  ::fchmod(fd, mode);
  return std::unique_ptr<AtomicFile>(new AtomicFile(destination, temp, fd, ops));
}

AtomicFile::AtomicFile(std::string destination, std::string temp_path, int fd, FileOps* ops)
    : destination_(std::move(destination)), temp_path_(std::move(temp_path)), fd_(fd), ops_(ops) {}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

absl::Status AtomicFile::PWrite(const void* data, size_t size, uint64_t offset) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ops_->PWrite(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(destination_, "write failed", errno);
    }
    if (n == 0) return ErrnoError(destination_, "write made no progress", EIO);
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::Truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return ErrnoError(destination_, "truncate failed", errno);
  return absl::OkStatus();
}

absl::Status AtomicFile::Commit() {
  if (ops_->FSync(fd_) != 0) return ErrnoError(destination_, "fsync failed", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return ErrnoError(destination_, "close failed", errno);
  }
  fd_ = -1;
  if (ops_->RenameAt(AT_FDCWD, temp_path_.c_str(), destination_.c_str()) != 0) {
    return ErrnoError(destination_, "rename into place failed", errno);
  }
  committed_ = true;
  return SyncDirectoryOf(destination_, ops_);
}

absl::Status RenameDurably(const std::string& from, const std::string& to, FileOps* ops) {
  if (ops->RenameAt(AT_FDCWD, from.c_str(), to.c_str()) != 0) {
    return ErrnoError(to, absl::StrFormat("renaming %s to it failed", from).c_str(), errno);
  }
  return SyncDirectoryOf(to, ops);
}

}  // namespace quantfleet
