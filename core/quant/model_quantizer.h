// Executes a QuantizePlan on this machine: reads source rows, converts and
// quantizes them on a pool of threads, validates the results and writes
// them at their planned offsets into an AtomicFile.
//
// Memory stays bounded whatever the model size: work is cut into chunks of
// at most a few MiB of floats per thread, and source pages are released
// from the mapping once used. The output is the same bytes for any thread
// count, because every row is computed independently.
//
// Thread-safety: Run is called from one thread; the progress callback is
// invoked from worker threads, serialised by an internal mutex.
#ifndef QUANTFLEET_CORE_QUANT_MODEL_QUANTIZER_H_
#define QUANTFLEET_CORE_QUANT_MODEL_QUANTIZER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/quantize_plan.h"

namespace quantfleet {

struct QuantizeProgress {
  size_t tensor_index = 0;  // index into plan.tensors of a finished tensor
  size_t tensors_done = 0;
  uint64_t source_bytes_done = 0;
};

// Quantizes some tensors in another way than their type's own quantizer
// (e.g. GPTQ), one whole matrix at a time; the kernels do the others.
// Called from the pool's threads concurrently: implementations are
// thread-safe.
class TensorMethod {
 public:
  virtual ~TensorMethod() = default;
  // Whether the method writes `t` (even one the plan would copy, e.g. a
  // norm the method changes).
  virtual bool Handles(const PlannedTensor& t) const = 0;
  // The bytes of matrix `matrix` of `t` (its expert; 0 for a 2D tensor):
  // ne[1] rows of RowSize(output type, ne[0]). The method reads the source
  // itself (t.source), as much of the model at once as it needs.
  virtual absl::StatusOr<std::vector<uint8_t>> Quantize(const PlannedTensor& t, int64_t matrix) = 0;
};

struct RunOptions {
  int threads = 0;                // <= 0: all hardware threads
  bool overwrite = true;          // replace an existing destination
  size_t chunk_bytes = 4u << 20;  // f32 bytes per work item
  std::function<void(const QuantizeProgress&)> on_tensor_done;
  TensorMethod* method = nullptr;  // null: every tensor by its type's quantizer
};

// Writes the plan's artifact to `output`. On any error (bad source data,
// a produced scale that is not finite, a full disk) nothing is left at
// `output` and the error names the tensor or the file.
absl::Status RunQuantizePlan(const GgufModel& model, const QuantizePlan& plan, const std::string& output,
                             const RunOptions& options);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_MODEL_QUANTIZER_H_
