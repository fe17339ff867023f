#include "client/terminal_progress.h"

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace quantfleet {

std::string HumanBytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return absl::StrFormat("%.1f KiB", b / 1024.0);
  return absl::StrFormat("%d B", bytes);
}

TerminalProgress::TerminalProgress(std::FILE* out, uint64_t total_bytes, size_t total_items)
    : out_(out), total_bytes_(total_bytes), total_items_(total_items), start_(absl::Now()) {}

void TerminalProgress::Update(size_t items_done, uint64_t bytes_done, const std::string& label) {
  const absl::Time now = absl::Now();
  if (items_done < total_items_ && now - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = now;
  const double frac = total_bytes_ ? static_cast<double>(bytes_done) / static_cast<double>(total_bytes_) : 1.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  const double secs = absl::ToDoubleSeconds(now - start_);
  const double rate = secs > 0 ? static_cast<double>(bytes_done) / secs : 0;
  const double eta = rate > 0 ? static_cast<double>(total_bytes_ - bytes_done) / rate : 0;
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  absl::FPrintF(out_, "\r[%s] %3.0f%%  %d/%d tensors  %s/s  ETA %4.0fs  %-36.36s\033[K", bar, frac * 100, items_done,
                total_items_, HumanBytes(static_cast<uint64_t>(rate)), eta, label);
  std::fflush(out_);
}

void TerminalProgress::Finish() {
  absl::FPrintF(out_, "\n");
  std::fflush(out_);
}

}  // namespace quantfleet
