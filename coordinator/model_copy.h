// What a worker needs to find or fetch its own copy of a model the
// coordinator serves: its path, size, parts and an id that changes when
// any part changes (see ModelCopy in quantfleet.proto).
//
// Thread-safety: pure function (reads the parts' file status).
#ifndef QUANTFLEET_COORDINATOR_MODEL_COPY_H_
#define QUANTFLEET_COORDINATOR_MODEL_COPY_H_

#include "core/gguf/gguf_model.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

// The copy description of `model`: the id is each part's size and
// modification time in hex; part names and sizes are listed for a split
// model only.
quantfleet::v1::ModelCopy ModelCopyOf(const GgufModel& model);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_MODEL_COPY_H_
