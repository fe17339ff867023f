#include "coordinator/part_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"

namespace quantfleet {
namespace {

absl::Status Errno(const std::string& path, const char* what) {
  const int err = errno;
  const std::string msg = absl::StrFormat("%s: %s: %s", path, what, std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

}  // namespace

std::string PartFile::PathFor(const std::string& destination, const std::string& job_id) {
  return destination + ".quantfleet-" + job_id + ".part";
}

absl::StatusOr<std::unique_ptr<PartFile>> PartFile::Open(const std::string& destination, const std::string& job_id,
                                                         uint64_t size, FileOps* ops) {
  const std::string path = PathFor(destination, job_id);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(path, "cannot open the partial artifact");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    absl::Status s = Errno(path, "cannot size the partial artifact");
    ::close(fd);
    return s;
  }
  return std::unique_ptr<PartFile>(new PartFile(destination, path, fd, ops));
}

PartFile::~PartFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status PartFile::PWrite(const void* data, size_t size, uint64_t offset) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ops_->PWrite(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno(path_, "write failed");
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PartFile::PRead(void* data, size_t size, uint64_t offset) const {
  auto* p = static_cast<uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::pread(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno(path_, "read back failed");
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

void PartFile::Release(uint64_t offset, uint64_t size) {
  // Not every file system can punch holes; the bytes then simply stay.
  (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(size));
}

absl::Status PartFile::Sync() {
  if (ops_->FdataSync(fd_) != 0) return Errno(path_, "fsync failed");
  return absl::OkStatus();
}

absl::Status PartFile::Finalize() {
  if (ops_->FSync(fd_) != 0) return Errno(path_, "fsync failed");
  if (ops_->Rename(path_.c_str(), destination_.c_str()) != 0) return Errno(destination_, "rename into place failed");
  std::string dir = std::filesystem::path(destination_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) return Errno(dir, "directory fsync failed");
  }
  return absl::OkStatus();
}

void PartFile::Remove() { ::unlink(path_.c_str()); }

}  // namespace quantfleet
