// The authorship and sampling metadata llama.cpp's converter derives for a
// checkpoint folder: from the model card's YAML front matter (README.md:
// names, license, tags, languages, base models and datasets), then the
// same heuristics over config.json's `_name_or_path` and the folder's name
// (name, basename, finetune, version, size label, organization), the size
// label from the parameter count of the tensors written, and
// general.sampling.* from generation_config.json. The front matter is
// read with yaml-cpp, whose scalars are strings: where YAML 1.1 would make
// a number or a boolean of a value the converter writes as text, the
// text is written.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_CONVERT_HF_METADATA_H_
#define QUANTFLEET_CORE_CONVERT_HF_METADATA_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "core/convert/metadata_list.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

struct ParameterCount {
  int64_t total = 0;
  int64_t shared = 0;
  int64_t expert = 0;  // parameters of one expert, summed over tensors
  int64_t expert_count = 0;
};

// The parts of a model id ("org/Name-7B-Instruct-v0.2") as the converter
// splits them; unset parts are nullopt.
struct ModelIdParts {
  std::optional<std::string> name, organization, basename, finetune, version, size_label;
};
ModelIdParts SplitModelId(const std::string& model_id, int64_t total_params);

// "8x7B", "1.5B", "135M": the converter's size label.
std::string SizeLabel(const ParameterCount& count);

// Adds general.sampling.*, general.name and the other authorship keys.
absl::Status AddAuthorship(const std::string& dir, const nlohmann::json& config, const ParameterCount& count,
                           MetadataList& meta);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CONVERT_HF_METADATA_H_
