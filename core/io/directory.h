// An open directory, reached from "/" one component at a time without
// following any symlink, so that what is created, renamed and synced in it
// later is in that very directory even if its path is changed meanwhile (a
// directory moved away and a symlink planted in its place).
//
// Thread-safety: immutable after Open; fd() may be used from any thread.
// Move-only; closed on destruction.
#ifndef QUANTFLEET_CORE_IO_DIRECTORY_H_
#define QUANTFLEET_CORE_IO_DIRECTORY_H_

#include <string>

#include "absl/status/statusor.h"

namespace quantfleet {

class Directory {
 public:
  // Opens the absolute path `path`. Errors: INVALID_ARGUMENT for a relative
  // path or a component that is a symlink or not a directory, NOT_FOUND,
  // each naming the path.
  static absl::StatusOr<Directory> Open(const std::string& path);

  Directory(Directory&& other) noexcept;
  Directory& operator=(Directory&& other) noexcept;
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;
  ~Directory();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // OK when `path()` still leads, without symlinks, to this directory;
  // FAILED_PRECONDITION saying it was moved or replaced otherwise.
  absl::Status CheckStillAtPath() const;

 private:
  Directory(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_IO_DIRECTORY_H_
