// Sampling presets: the built-in chat preset and preset files (--default-sampling).
#include "engine/sampler/sampling_preset.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

TEST(SamplingPresetTest, TheChatPresetIsValidAndWhatTheDocsSay) {
  const SamplingParams p = ChatSamplingPreset();
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
  EXPECT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.min_p, 0.05f);
  EXPECT_EQ(p.top_p, 1.0f);
  EXPECT_EQ(p.dry_multiplier, 0.8f);
  EXPECT_EQ(p.dry_base, 1.75f);
  EXPECT_EQ(p.dry_allowed_length, 2);
  EXPECT_EQ(p.dry_penalty_last_n, -1);
  EXPECT_EQ(p.xtc_probability, 0.0f);
}

TEST(SamplingPresetTest, ReadsEveryKeyAndLeavesTheRestAtTheDefaults) {
  absl::StatusOr<SamplingParams> p = ParseSamplingPreset(R"({
    "temperature": 0.7, "top_k": 40, "top_p": 0.95, "min_p": 0.1, "repetition_penalty": 1.05,
    "presence_penalty": 0.1, "frequency_penalty": 0.2, "penalty_last_n": 128, "max_tokens": 300,
    "dry_multiplier": 1.0, "dry_base": 2, "dry_allowed_length": 3, "dry_penalty_last_n": 1024,
    "dry_sequence_breakers": ["\n", "<|im_end|>"], "xtc_probability": 0.5, "xtc_threshold": 0.15})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->temperature, 0.7f);
  EXPECT_EQ(p->top_k, 40);
  EXPECT_EQ(p->top_p, 0.95f);
  EXPECT_EQ(p->min_p, 0.1f);
  EXPECT_EQ(p->repetition_penalty, 1.05f);
  EXPECT_EQ(p->presence_penalty, 0.1f);
  EXPECT_EQ(p->frequency_penalty, 0.2f);
  EXPECT_EQ(p->penalty_last_n, 128);
  EXPECT_EQ(p->max_tokens, 300);
  EXPECT_EQ(p->dry_multiplier, 1.0f);
  EXPECT_EQ(p->dry_base, 2.0f);
  EXPECT_EQ(p->dry_allowed_length, 3);
  EXPECT_EQ(p->dry_penalty_last_n, 1024);
  EXPECT_EQ(p->dry_sequence_breakers, (std::vector<std::string>{"\n", "<|im_end|>"}));
  EXPECT_EQ(p->xtc_probability, 0.5f);
  EXPECT_EQ(p->xtc_threshold, 0.15f);

  p = ParseSamplingPreset(R"({"min_p": 0.02})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->min_p, 0.02f);
  EXPECT_EQ(p->temperature, SamplingParams().temperature);  // the file is the whole preset
  EXPECT_EQ(p->dry_multiplier, 0.0f);
}

TEST(SamplingPresetTest, RefusesWhatItCannotUseWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"temprature": 0.8})", "unknown key \"temprature\""},
      {R"({"top_k": 4.5})", "top_k must be an integer"},
      {R"({"top_k": 99999999999})", "top_k is out of range"},
      {R"({"min_p": "0.1"})", "min_p must be a number"},
      {R"({"dry_sequence_breakers": "\n"})", "dry_sequence_breakers must be an array of strings"},
      {R"({"dry_sequence_breakers": [1]})", "dry_sequence_breakers must be an array of strings"},
      {R"({"temperature": 101})", "temperature must be in [0, 100]"},
      {R"({"dry_base": 0.5})", "dry_base must be in [1, 10]"},
      {R"({"temperature": 1e300})", "temperature must be in [0, 100]"},
  };
  for (const auto& [text, want] : cases) {
    const absl::StatusOr<SamplingParams> p = ParseSamplingPreset(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(p.status().message().find(want), std::string::npos)
        << text << " -> " << p.status().message();
  }
}

TEST(SamplingPresetTest, LoadsAFileAndNamesItInErrors) {
  testing::ScopedTempDir dir("preset");
  const auto write = [](const std::string& path, const std::string& text) {
    testing::WriteFileBytes(path, reinterpret_cast<const uint8_t*>(text.data()), text.size());
  };
  const std::string good = dir.File("chat.json");
  write(good, R"({"temperature": 0.6, "min_p": 0.1})");
  absl::StatusOr<SamplingParams> p = LoadSamplingPreset(good);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->temperature, 0.6f);
  const std::string bad = dir.File("bad.json");
  write(bad, R"({"min_p": 2})");
  p = LoadSamplingPreset(bad);
  EXPECT_NE(p.status().message().find(bad + ": sampling preset: min_p must be in [0, 1]"),
            std::string::npos)
      << p.status();
  p = LoadSamplingPreset(dir.File("missing.json"));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace troupe
