// A text for a command that runs the model over it (--target-size,
// --method, --eval, fit --eval): the model made runnable, the text
// tokenized and cut into chunks of `ctx` tokens (at most `max_chunks`,
// each with BOS first).
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_CALIBRATION_TEXT_H_
#define QUANTFLEET_CLIENT_CALIBRATION_TEXT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "core/model/runnable_model.h"

namespace quantfleet {

struct CalibrationText {
  RunnableModel model;
  std::vector<TokenId> tokens;  // the whole text, BOS first
  std::vector<std::vector<TokenId>> chunks;
};

// Errors name `text_path` (unreadable, too short for one chunk) or the
// model (one the forward pass cannot run).
absl::StatusOr<CalibrationText> LoadCalibrationText(const GgufModel& model, const std::string& model_path,
                                                    const std::string& text_path, int ctx, int max_chunks);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_CALIBRATION_TEXT_H_
