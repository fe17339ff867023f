#include "core/io/directory.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace quantfleet {

absl::StatusOr<Directory> Directory::Open(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrFormat("%s: not an absolute path", path));
  }
  int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrFormat("/: cannot open: %s", std::strerror(errno)));
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    const std::string name(part);
    const int next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int err = errno;
    ::close(fd);
    if (next < 0) {
      if (err == ENOENT) return absl::NotFoundError(absl::StrFormat("%s: '%s' does not exist", path, name));
      if (err == ELOOP || err == ENOTDIR) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: '%s' is a symlink or not a directory; refused", path, name));
      }
      return absl::InvalidArgumentError(absl::StrFormat("%s: cannot open '%s': %s", path, name, std::strerror(err)));
    }
    fd = next;
  }
  return Directory(path, fd);
}

Directory::Directory(Directory&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) { other.fd_ = -1; }

Directory& Directory::operator=(Directory&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Directory::~Directory() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status Directory::CheckStillAtPath() const {
  absl::StatusOr<Directory> now = Open(path_);
  struct stat held, found;
  if (now.ok() && ::fstat(fd_, &held) == 0 && ::fstat(now->fd(), &found) == 0 && held.st_dev == found.st_dev &&
      held.st_ino == found.st_ino) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrFormat("%s: the directory was moved or replaced while the job ran", path_));
}

}  // namespace quantfleet
