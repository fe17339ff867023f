// The forward pass of a llama-family model for calibration on one GPU:
// the same computation as core/model/forward_pass.h (RMSNorm, Q/K/V
// with biases or Q/K norms, RoPE, causal grouped-query attention with Q, K,
// V and the probabilities through F16, SwiGLU, residuals, the output head),
// with the weights resident in device memory, the matrix products on cuBLAS
// (F16/BF16 weights take F16/BF16 inputs, F32 accumulation) and our kernels
// for the rest. The importance statistics (per-column sums of squared
// inputs) are accumulated on the GPU, so activations never go back to the
// host; only a pipeline stage's output and the chunk's statistics do.
//
// Scope: dense models (no mixture of experts) with F32, F16 or BF16 weight
// matrices, on a range of layers (a pipeline stage) or all of them. Other
// models are refused with UNIMPLEMENTED, and the caller runs them on the
// CPU. cuBLAS is loaded when the first GpuForward is created, so binaries
// start (and run on the CPU) where it is absent. Results agree with the
// CPU path within rounding, and two runs on the same GPU agree bit for bit.
//
// Thread-safety: one chunk at a time per GpuForward; separate instances may
// run concurrently (each has its own stream and cuBLAS handle).
#ifndef QUANTFLEET_CORE_GPU_GPU_FORWARD_H_
#define QUANTFLEET_CORE_GPU_GPU_FORWARD_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/calibration/chunk_statistics.h"
#include "core/model/llama_model.h"

namespace quantfleet {

class GpuForward {
 public:
  // Uploads the weights of layers [first_layer, end_layer) (and the output
  // head when end_layer is the last) to GPU `device`. UNIMPLEMENTED for a
  // model outside the scope above or a build without CUDA; FAILED_PRECONDITION
  // when cuBLAS cannot be loaded; RESOURCE_EXHAUSTED when the weights do not
  // fit in device memory.
  static absl::StatusOr<std::unique_ptr<GpuForward>> Create(const LlamaModel& model, int device, int first_layer,
                                                            int end_layer);
  ~GpuForward();

  // RunChunkLayers (chunk_run.h) on the GPU: `hidden` holds the
  // stage's input unless it is the first, and its output unless it is the
  // last.
  absl::StatusOr<ChunkStatistics> RunChunk(absl::Span<const TokenId> tokens, std::vector<float>* hidden,
                                           bool process_output, bool perplexity);

  // Device memory the weights take.
  uint64_t weight_bytes() const;

  struct Impl;

 private:
  explicit GpuForward(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_GPU_GPU_FORWARD_H_
