// The options of one `quantfleet` subcommand, declared once and then
// parsed: short and long names (`-c`, `--ctx`), a value in the next
// argument, and errors that name the option and say what it needs
// ("-c needs a number of tokens, 16 or more"). `-h`/`--help` is known to
// every command.
//
// Thread-safety: one instance per command invocation, on one thread.
#ifndef QUANTFLEET_CLIENT_COMMAND_LINE_H_
#define QUANTFLEET_CLIENT_COMMAND_LINE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantfleet {

class CommandLine {
 public:
  // `command` names the command in errors ("quantfleet eval").
  explicit CommandLine(std::string command);

  // A switch: its presence sets *out to `value`.
  CommandLine& Flag(std::vector<std::string> names, bool* out, bool value = true);
  // A value, e.g. needs = "a file"; the optional form tells whether it
  // was given (an empty text is a text).
  CommandLine& Text(std::vector<std::string> names, std::string* out, std::string needs);
  CommandLine& Text(std::vector<std::string> names, std::optional<std::string>* out, std::string needs);
  // A value that may be given more than once; each is appended.
  CommandLine& List(std::vector<std::string> names, std::vector<std::string>* out, std::string needs);
  // One of `choices`.
  CommandLine& Choice(std::vector<std::string> names, std::string* out, std::vector<std::string> choices);
  // An integer of at least `min`, e.g. needs = "a number of tokens, 16 or more".
  CommandLine& Int(std::vector<std::string> names, int* out, int min, std::string needs);
  // A value checked and applied by `apply` (its error is the message).
  CommandLine& Value(std::vector<std::string> names, std::string needs,
                     std::function<absl::Status(const std::string& value)> apply);
  // An option that is refused with `status` whenever it is given.
  CommandLine& Refuse(std::vector<std::string> names, absl::Status status);
  // A size in bytes with an optional unit (24GiB, 14.2MB).
  CommandLine& Size(std::vector<std::string> names, uint64_t* out);
  // Arguments that are not options (a negative number such as -1 is one),
  // at most `max` of them.
  CommandLine& Positional(std::vector<std::string>* out, size_t max);
  // Everything not declared (options, their values, positionals), in
  // order, for a second parser: nothing is refused then.
  CommandLine& Rest(std::vector<std::string>* out);

  // Parses `args`; false when help was asked for (what follows it is not
  // checked). Errors: INVALID_ARGUMENT with the message to print.
  absl::StatusOr<bool> Parse(const std::vector<std::string>& args) const;
  // Parse for a command's main: nullopt to go on; otherwise the exit code,
  // after printing `usage` (help: 0) or "COMMAND: what is wrong" (1).
  std::optional<int> ParseOrExit(const std::vector<std::string>& args, const char* usage) const;

 private:
  struct Option {
    std::vector<std::string> names;
    std::string needs;  // what its value is; empty for a switch
    // Applies the value (or the switch); an error says what is wrong.
    std::function<absl::Status(const std::string& name, const std::string& value)> apply;
  };
  CommandLine& Add(std::vector<std::string> names, std::string needs,
                   std::function<absl::Status(const std::string&, const std::string&)> apply);

  std::string command_;
  std::vector<Option> options_;
  std::vector<std::string>* positional_ = nullptr;
  std::vector<std::string>* rest_ = nullptr;
  size_t max_positional_ = 0;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_COMMAND_LINE_H_
