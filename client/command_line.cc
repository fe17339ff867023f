#include "client/command_line.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/util/byte_size.h"

namespace quantfleet {

CommandLine::CommandLine(std::string command) : command_(std::move(command)) {}

CommandLine& CommandLine::Add(std::vector<std::string> names, std::string needs,
                              std::function<absl::Status(const std::string&, const std::string&)> apply) {
  options_.push_back({std::move(names), std::move(needs), std::move(apply)});
  return *this;
}

CommandLine& CommandLine::Flag(std::vector<std::string> names, bool* out, bool value) {
  return Add(std::move(names), "", [out, value](const std::string&, const std::string&) {
    *out = value;
    return absl::OkStatus();
  });
}

CommandLine& CommandLine::Text(std::vector<std::string> names, std::string* out, std::string needs) {
  return Add(std::move(names), std::move(needs), [out](const std::string&, const std::string& v) {
    *out = v;
    return absl::OkStatus();
  });
}

CommandLine& CommandLine::Text(std::vector<std::string> names, std::optional<std::string>* out, std::string needs) {
  return Add(std::move(names), std::move(needs), [out](const std::string&, const std::string& v) {
    *out = v;
    return absl::OkStatus();
  });
}

CommandLine& CommandLine::List(std::vector<std::string> names, std::vector<std::string>* out, std::string needs) {
  return Add(std::move(names), std::move(needs), [out](const std::string&, const std::string& v) {
    out->push_back(v);
    return absl::OkStatus();
  });
}

CommandLine& CommandLine::Choice(std::vector<std::string> names, std::string* out, std::vector<std::string> choices) {
  const std::string allowed = absl::StrJoin(choices, " or ");
  return Add(std::move(names), allowed, [out, choices, allowed](const std::string& name, const std::string& v) {
    if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s is %s, not '%s'", name, allowed, v));
    }
    *out = v;
    return absl::OkStatus();
  });
}

CommandLine& CommandLine::Int(std::vector<std::string> names, int* out, int min, std::string needs) {
  return Add(std::move(names), needs, [out, min, needs](const std::string& name, const std::string& v) {
    int n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < min) {
      return absl::InvalidArgumentError(absl::StrFormat("%s needs %s, not '%s'", name, needs, v));
    }
    *out = n;
    return absl::OkStatus();
  });
}

CommandLine& CommandLine::Value(std::vector<std::string> names, std::string needs,
                                std::function<absl::Status(const std::string& value)> apply) {
  return Add(std::move(names), std::move(needs),
             [apply = std::move(apply)](const std::string&, const std::string& v) { return apply(v); });
}

CommandLine& CommandLine::Refuse(std::vector<std::string> names, absl::Status status) {
  return Add(std::move(names), "", [status](const std::string&, const std::string&) { return status; });
}

CommandLine& CommandLine::Size(std::vector<std::string> names, uint64_t* out) {
  return Add(std::move(names), "a size, e.g. 24GiB", [out](const std::string& name, const std::string& v) {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(v);
    if (!bytes.ok()) return absl::InvalidArgumentError(absl::StrFormat("%s: %s", name, bytes.status().message()));
    *out = *bytes;
    return absl::OkStatus();
  });
}

CommandLine& CommandLine::Positional(std::vector<std::string>* out, size_t max) {
  positional_ = out;
  max_positional_ = max;
  return *this;
}

std::optional<int> CommandLine::ParseOrExit(const std::vector<std::string>& args, const char* usage) const {
  absl::StatusOr<bool> run = Parse(args);
  if (!run.ok()) {
    absl::FPrintF(stderr, "%s: %s\n", command_, run.status().message());
    return 1;
  }
  if (*run) return std::nullopt;
  absl::PrintF("%s", usage);
  return 0;
}

CommandLine& CommandLine::Rest(std::vector<std::string>* out) {
  rest_ = out;
  return *this;
}

absl::StatusOr<bool> CommandLine::Parse(const std::vector<std::string>& args) const {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") return false;
    auto option = std::find_if(options_.begin(), options_.end(), [&](const Option& o) {
      return std::find(o.names.begin(), o.names.end(), a) != o.names.end();
    });
    if (option != options_.end()) {
      const bool takes_value = !option->needs.empty();
      if (takes_value && i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrFormat("%s needs %s", a, option->needs));
      }
      absl::Status s = option->apply(a, takes_value ? args[++i] : "");
      if (!s.ok()) return s;
    } else if (rest_ != nullptr) {
      rest_->push_back(a);
    } else if (a.size() > 1 && a[0] == '-' && !absl::ascii_isdigit(static_cast<unsigned char>(a[1]))) {
      return absl::InvalidArgumentError(absl::StrFormat("unknown option '%s' (see %s --help)", a, command_));
    } else if (positional_ != nullptr && positional_->size() < max_positional_) {
      positional_->push_back(a);
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("unexpected argument '%s' (see %s --help)", a, command_));
    }
  }
  return true;
}

}  // namespace quantfleet
