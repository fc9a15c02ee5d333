#include "common/flag_parser.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace troupe {
namespace {

std::string Normalize(absl::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

}  // namespace

void FlagParser::Add(std::string name, std::string help, bool is_bool,
                     std::function<bool(absl::string_view)> set, std::string default_value) {
  flags_.push_back(Flag{Normalize(name), std::move(help), is_bool, std::move(set),
                        std::move(default_value)});
}

void FlagParser::AddString(std::string name, std::string* target, std::string help) {
  std::string current = *target;
  Add(
      std::move(name), std::move(help), false,
      [target](absl::string_view v) {
        *target = std::string(v);
        return true;
      },
      std::move(current));
}

void FlagParser::AddStrings(std::string name, std::vector<std::string>* target, std::string help) {
  Add(std::move(name), std::move(help), false, [target](absl::string_view v) {
    target->emplace_back(v);
    return true;
  });
}

void FlagParser::AddInt(std::string name, int* target, std::string help) {
  Add(
      std::move(name), std::move(help), false,
      [target](absl::string_view v) { return absl::SimpleAtoi(v, target); },
      absl::StrCat(*target));
}

void FlagParser::AddInt64(std::string name, int64_t* target, std::string help) {
  Add(
      std::move(name), std::move(help), false,
      [target](absl::string_view v) { return absl::SimpleAtoi(v, target); },
      absl::StrCat(*target));
}

void FlagParser::AddDouble(std::string name, double* target, std::string help) {
  Add(
      std::move(name), std::move(help), false,
      [target](absl::string_view v) { return absl::SimpleAtod(v, target); },
      absl::StrCat(*target));
}

void FlagParser::AddBool(std::string name, bool* target, std::string help) {
  Add(std::move(name), std::move(help), true,
      [target](absl::string_view v) { return absl::SimpleAtob(v, target); });
}

void FlagParser::AddDuration(std::string name, absl::Duration* target, std::string help) {
  Add(
      std::move(name), std::move(help), false,
      [target](absl::string_view v) {
        absl::Duration d;
        if (!absl::ParseDuration(v, &d) || d < absl::ZeroDuration()) return false;
        *target = d;
        return true;
      },
      absl::FormatDuration(*target));
}

void FlagParser::AddOptionalInt(std::string name, std::optional<int>* target, std::string help) {
  Add(std::move(name), std::move(help), false, [target](absl::string_view v) {
    int value = 0;
    if (!absl::SimpleAtoi(v, &value)) return false;
    *target = value;
    return true;
  });
}

void FlagParser::AddOptionalUint64(std::string name, std::optional<uint64_t>* target,
                                   std::string help) {
  Add(std::move(name), std::move(help), false, [target](absl::string_view v) {
    uint64_t value = 0;
    if (!absl::SimpleAtoi(v, &value)) return false;
    *target = value;
    return true;
  });
}

void FlagParser::AddOptionalFloat(std::string name, std::optional<float>* target,
                                  std::string help) {
  Add(std::move(name), std::move(help), false, [target](absl::string_view v) {
    float value = 0;
    if (!absl::SimpleAtof(v, &value)) return false;
    *target = value;
    return true;
  });
}

const FlagParser::Flag* FlagParser::Find(absl::string_view name) const {
  const std::string normalized = Normalize(name);
  for (const Flag& flag : flags_) {
    if (flag.name == normalized) return &flag;
  }
  return nullptr;
}

absl::Status FlagParser::Parse(int argc, const char* const* argv,
                               std::vector<std::string>* positional) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional->emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      positional->emplace_back(arg);
      continue;
    }
    arg.remove_prefix(2);
    absl::string_view name = arg;
    std::optional<absl::string_view> value;
    if (const size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const Flag* flag = Find(name);
    if (flag == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    if (!value.has_value()) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (!flag->set(*value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", *value, "' for flag --", flag->name));
    }
  }
  return absl::OkStatus();
}

std::string FlagParser::Help() const {
  std::string out;
  for (const Flag& flag : flags_) {
    absl::StrAppend(&out, "  --", flag.name, "  ", flag.help);
    if (!flag.default_value.empty()) absl::StrAppend(&out, " [", flag.default_value, "]");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace troupe
