// The GGUF file the workers of a whole-model job (calibration, evaluation,
// type choice) copy or read, for a model a job names: the file itself, or
// for a Hugging Face checkpoint folder its conversion (the bytes `quantfleet
// convert` writes), made once under the coordinator's state directory and
// reused by later jobs on the same folder. The file is named by the folder
// and the names, sizes and modification times of the folder's files, so a
// changed checkpoint is converted again.
//
// Thread-safety: safe to call concurrently; two calls for one folder at
// once both convert, and the second rename wins with the same bytes.
#ifndef QUANTFLEET_COORDINATOR_CONVERTED_MODEL_H_
#define QUANTFLEET_COORDINATOR_CONVERTED_MODEL_H_

#include <string>

#include "absl/status/statusor.h"

namespace quantfleet {

absl::StatusOr<std::string> GgufForWorkers(const std::string& model, const std::string& converted_dir);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_CONVERTED_MODEL_H_
