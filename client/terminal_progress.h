// A one-line progress bar for a terminal, redrawn in place on stderr.
//
// Thread-safety: not thread-safe; callers serialise updates.
#ifndef QUANTFLEET_CLIENT_TERMINAL_PROGRESS_H_
#define QUANTFLEET_CLIENT_TERMINAL_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/time/time.h"

namespace quantfleet {

class TerminalProgress {
 public:
  TerminalProgress(std::FILE* out, uint64_t total_bytes, size_t total_items);

  // Redraws the bar: items and bytes done, rate and time left. `label`
  // names the item just finished.
  void Update(size_t items_done, uint64_t bytes_done, const std::string& label);

  // Ends the line so later output starts on a fresh one.
  void Finish();

 private:
  std::FILE* out_;
  uint64_t total_bytes_;
  size_t total_items_;
  absl::Time start_;
  absl::Time last_draw_ = absl::InfinitePast();
};

// "1.50 GiB", "12.0 MiB", "512 B".
std::string HumanBytes(uint64_t bytes);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_TERMINAL_PROGRESS_H_
