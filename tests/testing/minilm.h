// The MiniLM sentence embedder for tests (embedding, memory, integration): where the model and
// its golden file live, and a check that it is installed. Test-thread only.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace troupe::testing {

inline std::string MiniLmDir() {
  return std::string(TROUPE_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
}

// Success when the model files are installed; otherwise a failure that says how to get them.
// The tests never skip without the model: CI fetches it (scripts/fetch-model.sh).
inline ::testing::AssertionResult MiniLmPresent() {
  for (const char* file : {"model.safetensors", "vocab.txt", "config.json"}) {
    if (!std::filesystem::exists(MiniLmDir() + "/" + file)) {
      return ::testing::AssertionFailure()
             << MiniLmDir() << "/" << file
             << " is missing: run scripts/fetch-embedder.sh (scripts/fetch-model.sh runs it)";
    }
  }
  return ::testing::AssertionSuccess();
}

// tests/testdata/embedding/minilm_golden.json (scripts/golden/make_minilm_golden.py); a null
// json when unreadable.
inline nlohmann::json LoadMiniLmGolden() {
  std::ifstream in(std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/embedding/minilm_golden.json");
  if (!in) return nlohmann::json();
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

}  // namespace troupe::testing
