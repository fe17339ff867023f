// GpuForward in a build without CUDA: there is no GPU to run on.
#include "core/gpu/gpu_forward.h"

namespace quantfleet {

struct GpuForward::Impl {};

GpuForward::GpuForward(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuForward::~GpuForward() = default;

absl::StatusOr<std::unique_ptr<GpuForward>> GpuForward::Create(const LlamaModel&, int, int, int) {
  return absl::UnimplementedError("built without CUDA");
}

absl::StatusOr<ChunkStatistics> GpuForward::RunChunk(absl::Span<const TokenId>, std::vector<float>*, bool, bool) {
  return absl::UnimplementedError("built without CUDA");
}

uint64_t GpuForward::weight_bytes() const { return 0; }

}  // namespace quantfleet
