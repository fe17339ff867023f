#include "core/safetensors/strict_json.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace quantfleet {

namespace {

using Json = nlohmann::json;

// Validates without building anything; returning false stops the parser.
class StrictSax : public nlohmann::json_sax<Json> {
 public:
  explicit StrictSax(int max_depth) : max_depth_(max_depth) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    keys_.emplace_back();
    return Deeper();
  }
  bool key(string_t& key) override {
    if (keys_.back().insert(key).second) return true;
    problem_ = absl::StrFormat("names '%s' twice", key);
    return false;
  }
  bool end_object() override {
    keys_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return Deeper(); }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    if (problem_.empty()) problem_ = absl::StrFormat("is not valid JSON (at byte %d)", position);
    return false;
  }
  const std::string& problem() const { return problem_; }

 private:
  bool Deeper() {
    if (++depth_ <= max_depth_) return true;
    problem_ = absl::StrFormat("nests deeper than %d levels", max_depth_);
    return false;
  }
  const int max_depth_;
  int depth_ = 0;
  std::vector<std::set<std::string>> keys_;  // per open object
  std::string problem_;
};

}  // namespace

absl::StatusOr<Json> ParseStrictJson(std::string_view text, int max_depth) {
  StrictSax sax(max_depth);
  const bool ok = Json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json,
                                  /*strict=*/true);
  if (!ok || !sax.problem().empty()) {
    return absl::InvalidArgumentError(sax.problem().empty() ? "is not valid JSON" : sax.problem());
  }
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("is not valid JSON");
  return json;
}

}  // namespace quantfleet
