// The evaluation job kind: a model (the job's input) measured against its
// base model over a text, as `quantfleet eval` measures it: each task is
// one chunk, which a worker holding both models scores (or, when no worker
// can hold both, one chunk through one stage of a pipeline of layer ranges;
// see chunk_pipeline.h); the scored positions are summed in chunk order, so
// the numbers are the one-machine run's. The artifact is the report as JSON. With a gate (max_kld,
// max_ppl_ratio) a report over a limit fails the job; with accept_as the
// measured model is then moved to accept_as, or kept as its
// .rejected.gguf. See job_kind.h.
//
// Thread-safety: as job_kind.h says of every kind.
#ifndef QUANTFLEET_COORDINATOR_EVALUATION_JOB_H_
#define QUANTFLEET_COORDINATOR_EVALUATION_JOB_H_

#include <memory>

#include "coordinator/job_kind.h"

namespace quantfleet {

std::unique_ptr<JobKind> NewEvaluationJob(const KindEnvironment& env);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_EVALUATION_JOB_H_
