#include "coordinator/part_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

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
  const std::filesystem::path dest(destination);
  QF_ASSIGN_OR_RETURN(Directory dir, Directory::Open(dest.parent_path().string()));
  const std::string name = dest.filename().string();
  const std::string part_name = std::filesystem::path(PathFor(destination, job_id)).filename().string();
  const int fd = ::openat(dir.fd(), part_name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  const std::string path = dir.path() + "/" + part_name;
  if (fd < 0) return Errno(path, "cannot open the partial artifact");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    absl::Status s = Errno(path, "cannot size the partial artifact");
    ::close(fd);
    return s;
  }
  return std::unique_ptr<PartFile>(new PartFile(std::move(dir), name, part_name, fd, ops));
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

absl::Status PartFile::Truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Errno(path_, "cannot size the artifact");
  return Sync();
}

absl::Status PartFile::Finalize() {
  if (ops_->FSync(fd_) != 0) return Errno(path_, "fsync failed");
  QF_RETURN_IF_ERROR(dir_.CheckStillAtPath());
  if (ops_->RenameAt(dir_.fd(), part_name_.c_str(), name_.c_str()) != 0) {
    return Errno(dir_.path() + "/" + name_, "rename into place failed");
  }
  if (ops_->FSync(dir_.fd()) != 0) return Errno(dir_.path(), "directory fsync failed");
  return absl::OkStatus();
}

absl::Status PartFile::FinalizeWith(absl::Span<const uint8_t> content) {
  if (::ftruncate(fd_, static_cast<off_t>(content.size())) != 0) return Errno(path_, "cannot size the artifact");
  QF_RETURN_IF_ERROR(PWrite(content.data(), content.size(), 0));
  return Finalize();
}

absl::StatusOr<std::string> PartFile::Sha256() const { return Sha256Fd(fd_, path_); }

void PartFile::Remove() { ::unlinkat(dir_.fd(), part_name_.c_str(), 0); }

}  // namespace quantfleet
