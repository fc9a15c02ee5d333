// Reads a file under tests/testdata/ whole (binary-safe); a missing file fails the test.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace troupe::testing {

inline std::string ReadTestData(const std::string& relative_path) {
  const std::string path = std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/" + relative_path;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace troupe::testing
