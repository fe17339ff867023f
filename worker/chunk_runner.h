// Runs calibration chunks on a worker: finds the model under the worker's
// data roots, or else in its cache (streaming it from the coordinator the
// first time), keeps it loaded (memory-mapped) across the chunks of the
// same file, and returns each chunk's statistics in the wire layout. A
// pipeline stage runs its layers only, on the activations the previous
// stage produced, and only their pages of the model are read.
//
// Thread-safety: not thread-safe; the agent runs one chunk at a time.
#ifndef QUANTFLEET_WORKER_CHUNK_RUNNER_H_
#define QUANTFLEET_WORKER_CHUNK_RUNNER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration/chunk_statistics.h"
#include "core/gguf/gguf_model.h"
#include "core/gpu/gpu_forward.h"
#include "core/model/llama_model.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

// `path` resolved inside one of `roots` (symlinks followed), or nullopt.
std::optional<std::string> PathInsideRoots(const std::string& path, const std::vector<std::string>& roots);

class ChunkRunner {
 public:
  // Streams part `part` (`bytes` long) of the model into `destination`.
  using Fetch = std::function<absl::Status(const std::string& destination, int part, int64_t bytes)>;

  // `gpu`: the GPU that runs chunks of GPU jobs (-1: none).
  ChunkRunner(std::vector<std::string> data_roots, std::string cache_dir, int gpu = -1)
      : data_roots_(std::move(data_roots)), cache_dir_(std::move(cache_dir)), gpu_(gpu) {}
  ~ChunkRunner();

  // The result of `chunk` over the model at `model_path` in the wire
  // layout (see CalibrationChunk): for a stage after the first,
  // `activations` holds its input. `fetch` streams the model into the
  // cache when no data root has it. NOT_FOUND when the model is neither
  // under a data root nor streamable (no cache folder); FAILED_PRECONDITION
  // when its entries are not the ones the coordinator expects;
  // INVALID_ARGUMENT for activations of the wrong size.
  absl::StatusOr<std::string> Run(const std::string& model_path, const quantfleet::v1::CalibrationChunk& chunk,
                                  std::string_view activations, const Fetch& fetch);

 private:
  // The cached copy of the model (its first part), fetching what is missing.
  absl::StatusOr<std::string> FetchIntoCache(const std::string& model_path,
                                             const quantfleet::v1::CalibrationChunk& chunk, const Fetch& fetch);

  // The GPU forward pass for layers [first, end) of the loaded model.
  absl::StatusOr<GpuForward*> OnGpu(int first, int end);

  std::vector<std::string> data_roots_;
  std::string cache_dir_;
  int gpu_ = -1;
  std::unique_ptr<GpuForward> gpu_forward_;  // for the loaded model and gpu_range_
  std::pair<int, int> gpu_range_{-1, -1};
  std::string loaded_path_;
  std::unique_ptr<GgufModel> file_;
  std::unique_ptr<LlamaModel> model_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_CHUNK_RUNNER_H_
