// Runs chunks on a worker: calibration chunks (the statistics of one chunk
// through the model, or through a pipeline stage's layers on the
// activations the previous stage produced, reading only their pages),
// evaluation chunks (the positions a model and its base score on one
// chunk, or a stage of that), and type-choice measurements (the cost of
// each candidate type of a layer's matrices) and layers of a layerwise
// quantization (a layer's tensors solved over every chunk). Models are found under the
// worker's data roots, or else in its cache (streamed from the coordinator
// the first time), and the last two used stay loaded (memory-mapped)
// across chunks, so an evaluation holds a model and its base; a file
// rewritten since it was loaded is loaded again.
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
  // Streams part `part` (`bytes` long) of the task's model (with `base`:
  // of an evaluation's base model) into `destination`.
  using Fetch = std::function<absl::Status(const std::string& destination, int part, int64_t bytes, bool base)>;

  // `gpu`: the GPU that runs chunks of GPU jobs (-1: none); `threads`:
  // what the worker runs BLAS on (0: all cores), restored after a type
  // measurement spreads its matrices over them; `memory_bytes`: what a
  // layer's solve may hold (0: no limit).
  ChunkRunner(std::vector<std::string> data_roots, std::string cache_dir, int gpu = -1, int threads = 0,
              uint64_t memory_bytes = 0)
      : data_roots_(std::move(data_roots)),
        cache_dir_(std::move(cache_dir)),
        gpu_(gpu),
        threads_(threads),
        memory_bytes_(memory_bytes) {}
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

  // The scored positions of an evaluation chunk in the wire layout, or for
  // a pipeline stage before the last both streams leaving it (see
  // EvaluationChunk; a stage after the first starts from `activations`).
  // Errors as Run's; INVALID_ARGUMENT when the models' shapes or
  // vocabularies differ, or for activations of the wrong size.
  absl::StatusOr<std::string> Score(const quantfleet::v1::EvaluationChunk& chunk, std::string_view activations,
                                    const Fetch& fetch);

  // The measured costs of a type-choice task's matrices in the wire
  // layout (see TypeCostTask). Errors as Run's; INVALID_ARGUMENT for tokens
  // that are not whole chunks or a name that is no matrix of the model.
  absl::StatusOr<std::string> MeasureTypes(const quantfleet::v1::TypeCostTask& task, const Fetch& fetch);

  // A layer of a layerwise quantization in the wire layout (see
  // LayerSolveTask): the activations leaving it unless it is the last
  // layer, then its tensors' bytes. `activations` holds those entering it
  // (none for layer 0). Errors as Run's; INVALID_ARGUMENT for tokens that
  // are not whole chunks, activations of the wrong size, or a tensor that
  // is not one of the layer's or a type it cannot be written as.
  // `progress` hears where the solve is ("Hessians: chunk 3 of 8").
  absl::StatusOr<std::string> SolveLayer(const quantfleet::v1::LayerSolveTask& task, std::string_view activations,
                                         const Fetch& fetch, std::function<void(const std::string&)> progress = {});

 private:
  struct Loaded {
    std::string path;
    std::string identity;  // device, inode, size and modification time: a rewritten file is another model
    std::unique_ptr<GgufModel> file;
    std::unique_ptr<LlamaModel> model;
  };

  // The worker's own copy of `copy` (its first part): under a data root,
  // or in the cache, fetching what is missing.
  absl::StatusOr<std::string> LocalCopy(const quantfleet::v1::ModelCopy& copy, bool base, const Fetch& fetch);
  // The cached copy (its first part), fetching what is missing.
  absl::StatusOr<std::string> FetchIntoCache(const quantfleet::v1::ModelCopy& copy, bool base, const Fetch& fetch);
  // The model at `local`, loaded if it is not one of the last two used
  // (or the file changed since).
  absl::StatusOr<Loaded*> Load(const std::string& local);
  // Drops loaded_[i] (and the GPU copy made from it).
  void Evict(size_t i);

  // The GPU forward pass for layers [first, end) of `model`.
  absl::StatusOr<GpuForward*> OnGpu(const Loaded& model, int first, int end);

  std::vector<std::string> data_roots_;
  std::string cache_dir_;
  int gpu_ = -1;
  int threads_ = 0;
  uint64_t memory_bytes_ = 0;
  std::unique_ptr<GpuForward> gpu_forward_;  // for gpu_model_ and gpu_range_
  const Loaded* gpu_model_ = nullptr;
  std::pair<int, int> gpu_range_{-1, -1};
  std::vector<std::unique_ptr<Loaded>> loaded_;  // the most recently used last; at most two
};

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_CHUNK_RUNNER_H_
