// The importance-matrix job kind: a GGUF model and a calibration text in,
// the imatrix out (the bytes `quantfleet imatrix` writes). The text is cut
// into chunks; once the live workers can hold the model, a plan fixes its
// stages (one: data-parallel; several: a pipeline of layer ranges) and each
// task is one chunk through one stage. See job_kind.h.
//
// Thread-safety: as job_kind.h says of every kind.
#ifndef QUANTFLEET_COORDINATOR_CALIBRATION_JOB_H_
#define QUANTFLEET_COORDINATOR_CALIBRATION_JOB_H_

#include <memory>

#include "coordinator/job_kind.h"

namespace quantfleet {

std::unique_ptr<JobKind> NewCalibrationJob(const KindEnvironment& env);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_CALIBRATION_JOB_H_
