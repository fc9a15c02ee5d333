#include "server/proto_convert.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/character/character_card.h"
#include "engine/sampler/sampling_preset.h"
#include "gtest/gtest.h"
#include "tests/testing/assertions.h"
#include "troupe/v1/character.pb.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {
namespace {

using ::troupe::testing::Contains;

std::string Nested(int depth) {
  return "{\"a\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

TEST(ProtoConvertTest, ProfileKeepsExtensionsWithinTheDepthLimit) {
  v1::CharacterProfile proto;
  proto.set_name("Mira");
  proto.set_extensions_json(Nested(kMaxCardJsonDepth - 1));  // the object adds one level
  absl::StatusOr<CharacterProfile> profile = ProfileFromProto(proto);
  ASSERT_TRUE(profile.ok()) << profile.status();
  EXPECT_TRUE(profile->extensions.contains("a"));
}

// A hostile client's extensions_json of 120,000 levels used to overflow the worker's stack.
TEST(ProtoConvertTest, RefusesDeeplyNestedExtensions) {
  v1::CharacterProfile proto;
  proto.set_name("Mira");
  proto.set_extensions_json(Nested(120000));
  absl::StatusOr<CharacterProfile> profile = ProfileFromProto(proto);
  ASSERT_EQ(profile.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(profile.status().message(), "profile.extensions_json"));
  EXPECT_TRUE(Contains(profile.status().message(), "nested deeper than"));

  proto.set_extensions_json(Nested(kMaxCardJsonDepth));
  EXPECT_EQ(ProfileFromProto(proto).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProtoConvertTest, RefusesDeeplyNestedLorebookExtensions) {
  v1::CharacterProfile proto;
  proto.set_name("Mira");
  proto.mutable_lorebook()->set_extensions_json(Nested(120000));
  absl::StatusOr<CharacterProfile> profile = ProfileFromProto(proto);
  ASSERT_EQ(profile.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(profile.status().message(), "profile.lorebook.extensions_json"));
}

TEST(ProtoConvertTest, SamplingKeepsDryAndXtcAndTheBreakerListsPresence) {
  v1::SamplingParams proto;
  absl::StatusOr<SamplingParams> params = SamplingFromProto(proto, SamplingParams());
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->dry_multiplier, 0.0f);
  EXPECT_EQ(params->dry_sequence_breakers, (std::vector<std::string>{"\n", ":", "\"", "*"}));
  EXPECT_EQ(params->xtc_probability, 0.0f);

  proto.set_dry_multiplier(0.8f);
  proto.set_dry_base(2.0f);
  proto.set_dry_allowed_length(3);
  proto.set_dry_penalty_last_n(512);
  proto.set_xtc_probability(0.5f);
  proto.set_xtc_threshold(0.2f);
  proto.mutable_dry_sequence_breakers();  // present and empty: no breakers
  params = SamplingFromProto(proto, SamplingParams());
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->dry_multiplier, 0.8f);
  EXPECT_EQ(params->dry_base, 2.0f);
  EXPECT_EQ(params->dry_allowed_length, 3);
  EXPECT_EQ(params->dry_penalty_last_n, 512);
  EXPECT_TRUE(params->dry_sequence_breakers.empty());
  EXPECT_EQ(params->xtc_probability, 0.5f);
  EXPECT_EQ(params->xtc_threshold, 0.2f);

  proto.mutable_dry_sequence_breakers()->add_values("\n");
  proto.mutable_dry_sequence_breakers()->add_values(std::string(33, 'x'));
  params = SamplingFromProto(proto, SamplingParams());
  EXPECT_EQ(params.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(params.status().message().find("dry_sequence_breakers[1]"), std::string::npos)
      << params.status();
}

// A client has 16 stop strings; the engine allows 4 more, for the ones the server adds (the
// user's line of a chat turn).
TEST(ProtoConvertTest, AClientHasSixteenStopStrings) {
  v1::SamplingParams proto;
  for (int i = 0; i < 16; ++i) proto.add_stop("s" + std::to_string(i));
  absl::StatusOr<SamplingParams> sixteen = SamplingFromProto(proto, SamplingParams());
  ASSERT_TRUE(sixteen.ok()) << sixteen.status();
  AddStopStrings({"\nRobin:", "s3"}, *sixteen);  // s3 is there already
  EXPECT_EQ(sixteen->stop.size(), 17u);
  EXPECT_TRUE(ValidateSamplingParams(*sixteen).ok());
  proto.add_stop("one too many");
  const absl::StatusOr<SamplingParams> seventeen = SamplingFromProto(proto, SamplingParams());
  EXPECT_EQ(seventeen.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(seventeen.status().message().find("at most 16"), std::string::npos) << seventeen.status();
}

TEST(ProtoConvertTest, UnsetSamplingFieldsTakeTheDefaultsGiven) {
  v1::SamplingParams proto;
  proto.set_temperature(0.0f);
  absl::StatusOr<SamplingParams> params = SamplingFromProto(proto, ChatSamplingPreset());
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->temperature, 0.0f);  // set: the request's
  EXPECT_EQ(params->min_p, 0.05f);       // unset: the preset's
  EXPECT_EQ(params->dry_multiplier, 0.8f);
  params = SamplingFromProto(v1::SamplingParams(), SamplingParams());
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->temperature, 1.0f);
  EXPECT_EQ(params->dry_multiplier, 0.0f);
}

}  // namespace
}  // namespace troupe
