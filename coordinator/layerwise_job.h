// The layerwise quantization job kind (`submit --method gptq | awq |
// awq+gptq`): a GGUF model and a calibration text in, the bytes
// `quantfleet quantize --method` writes on one machine out. The tensors
// the method writes (layerwise_selection.h) are solved one layer per task,
// in layer order: task l starts from the activations task l - 1 left in
// the partial file and leaves its own for task l + 1, so a killed worker or
// coordinator costs at most the layer in flight. Every other tensor is a
// row-range task as in a plain quantization, taken by any worker meanwhile.
//
// The partial file: the artifact's layout (header, tensors at their
// offsets), then the layer tasks' results one after another (activations,
// then the solved tensors); Finish moves each solved tensor to its offset
// and cuts the file to the artifact's size before it is renamed into place.
//
// Thread-safety: as job_kind.h says of every kind.
#ifndef QUANTFLEET_COORDINATOR_LAYERWISE_JOB_H_
#define QUANTFLEET_COORDINATOR_LAYERWISE_JOB_H_

#include <memory>

#include "absl/status/status.h"
#include "coordinator/job_kind.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

std::unique_ptr<JobKind> NewLayerwiseJob(const KindEnvironment& env);

// INVALID_ARGUMENT naming what is wrong with a layerwise method's options.
absl::Status CheckLayerwiseMethod(const quantfleet::v1::LayerwiseMethod& method);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_LAYERWISE_JOB_H_
