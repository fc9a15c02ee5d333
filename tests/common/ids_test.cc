#include "common/ids.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace troupe {
namespace {

TEST(IdsTest, IsThirtyTwoLowercaseHexDigits) {
  const std::string id = NewRandomId();
  ASSERT_EQ(id.size(), 32u);
  for (char c : id) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
}

TEST(IdsTest, IdsAreDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewRandomId());
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace troupe
