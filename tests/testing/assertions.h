// Assertion helpers shared by the tests. Test-thread only.
#pragma once

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace troupe::testing {

// EXPECT_TRUE(Contains(status.message(), "text")) prints both strings on failure.
// (absl::string_view: Debian's Abseil does not alias std::string_view, and Status::message()
// returns the absl one.)
inline ::testing::AssertionResult Contains(absl::string_view haystack, absl::string_view needle) {
  if (haystack.find(needle) != absl::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << haystack << "\" does not contain \"" << needle << "\"";
}

}  // namespace troupe::testing
