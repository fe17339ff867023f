// What a worker needs to find or fetch its own copy of a model the
// coordinator serves: its path, size, parts and an id that changes when
// any part changes (see ModelCopy in quantfleet.proto), and the bytes of a
// part it streams.
//
// Thread-safety: pure function (reads the parts' file status).
#ifndef QUANTFLEET_COORDINATOR_MODEL_COPY_H_
#define QUANTFLEET_COORDINATOR_MODEL_COPY_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "coordinator/active_job.h"
#include "core/gguf/gguf_model.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

// The copy description of `model`: the id is each part's size and
// modification time in hex; part names and sizes are listed for a split
// model only.
quantfleet::v1::ModelCopy ModelCopyOf(const GgufModel& model);

// Part `part` of `model`, whole, for a worker streaming its copy (`what`
// names the model in errors: "the model", "the base model").
// FAILED_PRECONDITION once the job released it; OUT_OF_RANGE for a part
// it does not have.
absl::StatusOr<SourceSpan> WholePart(const std::shared_ptr<GgufModel>& model, int part, std::string_view what);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_MODEL_COPY_H_
