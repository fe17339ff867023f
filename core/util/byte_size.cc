#include "core/util/byte_size.h"

#include <cmath>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace quantfleet {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a size (%s; e.g. 512MiB, 24GiB)", text, why));
  };
  absl::string_view s = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < s.size() && (absl::ascii_isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) {
    ++digits;
  }
  double number;
  if (digits == 0 || !absl::SimpleAtod(s.substr(0, digits), &number)) return bad("no number");
  std::string unit = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(s.substr(digits)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'I') unit.pop_back();
  int shift;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K") {
    shift = 10;
  } else if (unit == "M") {
    shift = 20;
  } else if (unit == "G") {
    shift = 30;
  } else if (unit == "T") {
    shift = 40;
  } else {
    return bad("unknown unit");
  }
  const double bytes = std::ldexp(number, shift);
  if (!(bytes < 18446744073709551615.0)) return bad("too large");
  return static_cast<uint64_t>(bytes);
}

}  // namespace quantfleet
