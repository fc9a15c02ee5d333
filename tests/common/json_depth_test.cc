#include "common/json_depth.h"

#include <string>

#include "gtest/gtest.h"

namespace troupe {
namespace {

std::string Nested(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST(JsonDepthTest, CountsArraysAndObjectsUpToTheLimit) {
  EXPECT_TRUE(JsonWithinDepth("{}", 1));
  EXPECT_FALSE(JsonWithinDepth("{\"a\":[]}", 1));
  EXPECT_TRUE(JsonWithinDepth(Nested(kMaxJsonDepth)));
  EXPECT_FALSE(JsonWithinDepth(Nested(kMaxJsonDepth + 1)));
  EXPECT_FALSE(JsonWithinDepth(Nested(120000)));
  // Siblings do not add up: depth is nesting, not count.
  std::string siblings = "[";
  for (int i = 0; i < 1000; ++i) siblings += "[],";
  siblings += "[]]";
  EXPECT_TRUE(JsonWithinDepth(siblings, 2));
}

TEST(JsonDepthTest, BracketsInStringsDoNotCount) {
  const std::string in_string = "{\"k\":\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"}";
  EXPECT_TRUE(JsonWithinDepth(in_string, 1));
  // An escaped quote does not end the string.
  EXPECT_TRUE(JsonWithinDepth("[\"\\\"[[[[\"]", 1));
  EXPECT_FALSE(JsonWithinDepth("[\"\\\\\",[[]]]", 2));  // "\\" ends there; the brackets count
}

}  // namespace
}  // namespace troupe
