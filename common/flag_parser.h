// A small command-line parser for troupe-server, troupe-cli and troupe-bench: `--name=value`, `--name value`,
// bare `--name` for booleans, and '-' and '_' interchangeable in names (`--max-tokens` ==
// `--max_tokens`). Not thread-safe; used once on the main thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace troupe {

class FlagParser {
 public:
  // Each target must outlive Parse. Optional targets stay nullopt unless the flag is given;
  // a vector target collects every occurrence.
  void AddString(std::string name, std::string* target, std::string help);
  void AddStrings(std::string name, std::vector<std::string>* target, std::string help);
  void AddInt(std::string name, int* target, std::string help);
  void AddInt64(std::string name, int64_t* target, std::string help);
  void AddDouble(std::string name, double* target, std::string help);  // also "inf"
  void AddBool(std::string name, bool* target, std::string help);
  // absl::ParseDuration's forms: "30m", "3600s", "1h30m", "250ms"; negative durations refused.
  void AddDuration(std::string name, absl::Duration* target, std::string help);
  void AddOptionalInt(std::string name, std::optional<int>* target, std::string help);
  void AddOptionalUint64(std::string name, std::optional<uint64_t>* target, std::string help);
  void AddOptionalFloat(std::string name, std::optional<float>* target, std::string help);

  // Parses argv[1..argc). Arguments that are not flags (and everything after "--") go to
  // `positional` in order. kInvalidArgument names an unknown flag, a missing value or a value
  // that does not parse.
  [[nodiscard]] absl::Status Parse(int argc, const char* const* argv,
                                   std::vector<std::string>* positional);

  // One line per flag: "  --name  help [default]", defaults as they were when the flag was
  // added.
  std::string Help() const;

 private:
  struct Flag {
    std::string name;  // with '-' separators
    std::string help;
    bool is_bool = false;
    std::function<bool(absl::string_view value)> set;  // false when the value does not parse
    std::string default_value;                          // as shown by Help(); "" = none
  };
  void Add(std::string name, std::string help, bool is_bool,
           std::function<bool(absl::string_view)> set, std::string default_value = "");
  const Flag* Find(absl::string_view name) const;

  std::vector<Flag> flags_;
};

}  // namespace troupe
