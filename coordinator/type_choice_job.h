// The type-choice job kind: the best type per weight matrix for a file
// size, as `quantfleet quantize --target-size` chooses it, with the
// measuring spread over the workers: each task measures what every
// candidate type of one layer's matrices costs (the mean KL divergence
// over the text's chunks with only that matrix quantized) on a worker that
// holds the model; the coordinator allocates the bytes. The artifact is the
// choice as JSON, and the quantization that follows gets the chosen types.
// See job_kind.h.
//
// Thread-safety: as job_kind.h says of every kind.
#ifndef QUANTFLEET_COORDINATOR_TYPE_CHOICE_JOB_H_
#define QUANTFLEET_COORDINATOR_TYPE_CHOICE_JOB_H_

#include <memory>

#include "coordinator/job_kind.h"

namespace quantfleet {

std::unique_ptr<JobKind> NewTypeChoiceJob(const KindEnvironment& env);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_TYPE_CHOICE_JOB_H_
