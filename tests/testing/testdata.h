// Test data: a file under tests/testdata/ read whole, and JSON files (goldens) parsed.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace troupe::testing {

// The file tests/testdata/<relative_path> (binary-safe); a missing file fails the test.
inline std::string ReadTestData(const std::string& relative_path) {
  const std::string path = std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/" + relative_path;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The JSON file at `path` (absolute); a missing or malformed file fails the test and gives a
// null json.
inline nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(json.is_discarded()) << path << " is not valid JSON";
  return json.is_discarded() ? nlohmann::json() : json;
}

}  // namespace troupe::testing
