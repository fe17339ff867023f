// A job's text, read and cut into chunks. See job_text.h.
#include "coordinator/job_text.h"

#include <memory>

#include "absl/strings/str_format.h"
#include "core/calibration/calibration_chunks.h"
#include "core/io/mapped_file.h"
#include "core/model/tokenizer.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

constexpr size_t kMaxTextBytes = size_t{256} << 20;

}  // namespace

absl::StatusOr<JobText> ReadJobText(const PathPolicy& paths, const std::string& path) {
  JobText text;
  QF_ASSIGN_OR_RETURN(text.path, paths.ResolveInput(path));
  absl::StatusOr<std::string> content = ReadRegularFile(text.path, kMaxTextBytes);
  if (!content.ok()) return absl::InvalidArgumentError(content.status().message());
  text.content = *std::move(content);
  return text;
}

absl::StatusOr<std::vector<std::vector<TokenId>>> CutJobText(const JobText& text, const GgufModel& model,
                                                             const std::string& model_name, int ctx, int max_chunks,
                                                             bool parse_special) {
  absl::StatusOr<Vocab> vocab = Vocab::FromGguf(model.kv(), model_name);
  if (!vocab.ok()) return vocab.status();
  auto shared_vocab = std::make_shared<const Vocab>(*std::move(vocab));
  QF_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Create(shared_vocab));
  const std::vector<TokenId> tokens = tokenizer.Tokenize(text.content, /*add_special=*/true, parse_special);
  absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(*shared_vocab, tokens, ctx, max_chunks);
  if (!chunks.ok()) return absl::InvalidArgumentError(absl::StrFormat("%s: %s", text.path, chunks.status().message()));
  return chunks;
}

}  // namespace quantfleet
