#include "server/proto_convert.h"

#include <string>

#include "absl/status/status.h"
#include "engine/character/character_card.h"
#include "gtest/gtest.h"
#include "tests/testing/assertions.h"
#include "troupe/v1/character.pb.h"

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

}  // namespace
}  // namespace troupe
