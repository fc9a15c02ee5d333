#include "common/flag_parser.h"

#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

struct Parsed {
  std::string model = "default.gguf";
  int port = 9400;
  bool verbose = false;
  std::optional<float> temperature;
  std::vector<std::string> stop;
  std::vector<std::string> positional;
};

absl::Status ParseArgs(std::vector<const char*> args, Parsed& out) {
  FlagParser parser;
  parser.AddString("model", &out.model, "");
  parser.AddInt("metrics-port", &out.port, "");
  parser.AddBool("verbose", &out.verbose, "");
  parser.AddOptionalFloat("temperature", &out.temperature, "");
  parser.AddStrings("stop", &out.stop, "");
  args.insert(args.begin(), "prog");
  return parser.Parse(static_cast<int>(args.size()), args.data(), &out.positional);
}

TEST(FlagParserTest, AcceptsEqualsAndSeparateValuesAndBothSeparators) {
  Parsed p;
  ASSERT_TRUE(ParseArgs({"generate", "--model=m.gguf", "--metrics_port", "0", "--verbose",
                         "--stop", "a", "--stop=b", "--temperature", "0.5"},
                        p)
                  .ok());
  EXPECT_EQ(p.model, "m.gguf");
  EXPECT_EQ(p.port, 0);
  EXPECT_TRUE(p.verbose);
  ASSERT_TRUE(p.temperature.has_value());
  EXPECT_FLOAT_EQ(*p.temperature, 0.5f);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.positional, std::vector<std::string>{"generate"});
}

TEST(FlagParserTest, UnsetFlagsKeepDefaults) {
  Parsed p;
  ASSERT_TRUE(ParseArgs({}, p).ok());
  EXPECT_EQ(p.model, "default.gguf");
  EXPECT_EQ(p.port, 9400);
  EXPECT_FALSE(p.temperature.has_value());
}

TEST(FlagParserTest, ExplicitFalseForBool) {
  Parsed p;
  p.verbose = true;
  ASSERT_TRUE(ParseArgs({"--verbose=false"}, p).ok());
  EXPECT_FALSE(p.verbose);
}

TEST(FlagParserTest, ReportsUnknownFlagMissingValueAndBadValue) {
  Parsed p;
  absl::Status status = ParseArgs({"--nope=1"}, p);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--nope"), absl::string_view::npos);

  status = ParseArgs({"--model"}, p);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("needs a value"), absl::string_view::npos);

  status = ParseArgs({"--metrics-port=abc"}, p);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("abc"), absl::string_view::npos);
}

TEST(FlagParserTest, HelpShowsDefaults) {
  int port = 9400;
  std::string model = "m.gguf";
  FlagParser parser;
  parser.AddInt("metrics_port", &port, "HTTP port");
  parser.AddString("model", &model, "model file");
  EXPECT_EQ(parser.Help(), "  --metrics-port  HTTP port [9400]\n  --model  model file [m.gguf]\n");
}

TEST(FlagParserTest, DurationsTakeUnits) {
  for (const auto& [text, want] : {std::pair<const char*, absl::Duration>{"30m", absl::Minutes(30)},
                                   {"3600s", absl::Hours(1)},
                                   {"1h30m", absl::Minutes(90)},
                                   {"0", absl::ZeroDuration()}}) {
    absl::Duration ttl = absl::Hours(1);
    FlagParser parser;
    parser.AddDuration("session-idle-ttl", &ttl, "");
    const char* args[] = {"prog", "--session-idle-ttl", text};
    std::vector<std::string> positional;
    ASSERT_TRUE(parser.Parse(3, args, &positional).ok()) << text;
    EXPECT_EQ(ttl, want) << text;
  }
  for (const char* bad : {"30", "soon", "-5m"}) {
    absl::Duration ttl = absl::Hours(1);
    FlagParser parser;
    parser.AddDuration("session-idle-ttl", &ttl, "");
    const char* args[] = {"prog", "--session-idle-ttl", bad};
    std::vector<std::string> positional;
    EXPECT_EQ(parser.Parse(3, args, &positional).code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ttl, absl::Hours(1));
  }
  absl::Duration ttl = absl::Hours(1);
  FlagParser parser;
  parser.AddDuration("session-idle-ttl", &ttl, "idle inline sessions expire");
  EXPECT_EQ(parser.Help(), "  --session-idle-ttl  idle inline sessions expire [1h]\n");
}

TEST(FlagParserTest, DoubleDashEndsFlags) {
  Parsed p;
  ASSERT_TRUE(ParseArgs({"--", "--model=x"}, p).ok());
  EXPECT_EQ(p.model, "default.gguf");
  EXPECT_EQ(p.positional, std::vector<std::string>{"--model=x"});
}

}  // namespace
}  // namespace troupe
