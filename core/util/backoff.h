// Exponential backoff between retries: doubles from `initial` up to `cap`,
// back to `initial` after a success. No clock inside, so the policy is
// tested without sleeping; callers do the waiting.
//
// Thread-safety: not thread-safe; one per retry loop.
#ifndef QUANTFLEET_CORE_UTIL_BACKOFF_H_
#define QUANTFLEET_CORE_UTIL_BACKOFF_H_

#include <algorithm>

#include "absl/time/time.h"

namespace quantfleet {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration cap) : initial_(initial), cap_(cap), next_(initial) {}

  // The delay before the next attempt; each call doubles the following one.
  absl::Duration Next() {
    const absl::Duration d = next_;
    next_ = std::min(next_ * 2, cap_);
    return d;
  }
  void Reset() { next_ = initial_; }

 private:
  absl::Duration initial_;
  absl::Duration cap_;
  absl::Duration next_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_BACKOFF_H_
