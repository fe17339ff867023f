// See calibration_text.h.
#include "client/calibration_text.h"

#include "absl/strings/str_format.h"
#include "core/calibration/calibration_chunks.h"
#include "core/io/mapped_file.h"

namespace quantfleet {

absl::StatusOr<CalibrationText> LoadCalibrationText(const GgufModel& model, const std::string& model_path,
                                                    const std::string& text_path, int ctx, int max_chunks) {
  absl::StatusOr<std::string> text = ReadRegularFile(text_path);
  if (!text.ok()) return text.status();
  absl::StatusOr<RunnableModel> runnable = MakeRunnable(model, model_path);
  if (!runnable.ok()) return runnable.status();
  std::vector<TokenId> tokens = runnable->tokenizer.Tokenize(*text, /*add_special=*/true, /*parse_special=*/false);
  absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(*runnable->vocab, tokens, ctx, max_chunks);
  if (!chunks.ok()) return absl::InvalidArgumentError(absl::StrFormat("%s: %s", text_path, chunks.status().message()));
  return CalibrationText{*std::move(runnable), std::move(tokens), *std::move(chunks)};
}

}  // namespace quantfleet
