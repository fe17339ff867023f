// Runs calibration chunks on a worker: finds the model under the worker's
// data roots, keeps it loaded (memory-mapped) across the chunks of the
// same file, and returns each chunk's statistics in the wire layout.
//
// Thread-safety: not thread-safe; the agent runs one chunk at a time.
#ifndef QUANTFLEET_WORKER_CHUNK_RUNNER_H_
#define QUANTFLEET_WORKER_CHUNK_RUNNER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "proto/quantfleet.pb.h"
#include "worker/calibration/chunk_statistics.h"
#include "worker/calibration/llama_model.h"

namespace quantfleet {

// `path` resolved inside one of `roots` (symlinks followed), or nullopt.
std::optional<std::string> PathInsideRoots(const std::string& path, const std::vector<std::string>& roots);

class ChunkRunner {
 public:
  explicit ChunkRunner(std::vector<std::string> data_roots) : data_roots_(std::move(data_roots)) {}

  // The encoded statistics of `chunk` over the model at `model_path`.
  // NOT_FOUND when the model is not under a data root; FAILED_PRECONDITION
  // when its entries are not the ones the coordinator expects.
  absl::StatusOr<std::string> Run(const std::string& model_path, const quantfleet::v1::CalibrationChunk& chunk);

 private:
  std::vector<std::string> data_roots_;
  std::string loaded_path_;
  std::unique_ptr<GgufModel> file_;
  std::unique_ptr<LlamaModel> model_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_CHUNK_RUNNER_H_
