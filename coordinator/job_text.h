// A job's text (calibration or evaluation): read whole from a path on the
// coordinator inside its allowed roots, then tokenized with a model's
// vocabulary (BOS first) and cut into chunks as the one-machine commands
// cut it. Two steps, so that a job reads its text (and fails on a bad one)
// before it opens or converts a model.
//
// Thread-safety: pure functions (ReadJobText reads the file).
#ifndef QUANTFLEET_COORDINATOR_JOB_TEXT_H_
#define QUANTFLEET_COORDINATOR_JOB_TEXT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/path_policy.h"
#include "core/gguf/gguf_model.h"
#include "core/model/vocab.h"

namespace quantfleet {

struct JobText {
  std::string path;     // resolved
  std::string content;  // at most 256 MiB: llama.cpp's calibration files are a few MiB
};

// The text at `path`. Errors: PathPolicy's for a path outside the roots;
// INVALID_ARGUMENT naming the file when it cannot be read or is too large.
absl::StatusOr<JobText> ReadJobText(const PathPolicy& paths, const std::string& path);

// `text` tokenized by `model`'s vocabulary (named `model_name` in errors)
// and cut into chunks of `ctx` tokens, at most `max_chunks` (0: all).
// INVALID_ARGUMENT naming the text when it is too short for one chunk.
absl::StatusOr<std::vector<std::vector<TokenId>>> CutJobText(const JobText& text, const GgufModel& model,
                                                             const std::string& model_name, int ctx, int max_chunks,
                                                             bool parse_special);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_JOB_TEXT_H_
