// The progress of a one-machine importance-matrix run, kept on disk so that
// a run cut short (a crash, a reboot, Ctrl-C) resumes where it stopped:
// the canonical total of the first chunks (their statistics added in chunk
// order, and the perplexity sums), the number of chunks it covers, and an
// identity of the run (model, text, options). Continuing from it gives the
// very bytes of a run that was never interrupted.
//
// File layout: "QFIMCKP1", the identity (u32 length, bytes), chunks done
// (u32), the total in the chunk wire layout (u64 length, bytes; see
// chunk_statistics.h), and a CRC32C of everything before it; all
// little-endian. Written atomically.
//
// Thread-safety: pure functions over their arguments.
#ifndef QUANTFLEET_CORE_CALIBRATION_IMATRIX_CHECKPOINT_H_
#define QUANTFLEET_CORE_CALIBRATION_IMATRIX_CHECKPOINT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/calibration/chunk_statistics.h"

namespace quantfleet {

struct ImatrixCheckpoint {
  explicit ImatrixCheckpoint(bool process_output) : total(process_output) {}
  int chunks_done = 0;
  ChunkStatistics total;
};

absl::Status WriteImatrixCheckpoint(const std::string& path, const std::string& identity, int chunks_done,
                                    const ChunkStatistics& total, const ImatrixLayout& layout);

// nullopt when there is no file at `path`. FAILED_PRECONDITION when it
// belongs to another run (another identity); DATA_LOSS when it is damaged.
absl::StatusOr<std::optional<ImatrixCheckpoint>> ReadImatrixCheckpoint(const std::string& path,
                                                                       const std::string& identity,
                                                                       const ImatrixLayout& layout,
                                                                       bool process_output);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_IMATRIX_CHECKPOINT_H_
