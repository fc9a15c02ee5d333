// Replays one fuzz target's corpus (fuzz/corpus/<target>/: the seeds and every input that
// once crashed, named regression-*) through the target's own LLVMFuzzerTestOneInput, so the
// normal build and ctest keep every crash fixed without libFuzzer or clang. A failing input
// aborts the test binary (TROUPE_CHECK or a sanitizer in sanitizer builds); the SCOPED_TRACE
// and the line printed before each input name it. Built once per target by tests/CMakeLists.txt
// with TROUPE_FUZZ_CORPUS set to the corpus folder.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace troupe {
namespace {

TEST(FuzzCorpusTest, EveryInputPassesTheTargetsChecks) {
  std::vector<std::filesystem::path> inputs;
  for (const auto& entry : std::filesystem::directory_iterator(TROUPE_FUZZ_CORPUS)) {
    if (entry.is_regular_file()) inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  ASSERT_FALSE(inputs.empty()) << "no inputs in " << TROUPE_FUZZ_CORPUS;
  for (const std::filesystem::path& path : inputs) {
    SCOPED_TRACE(path.string());
    std::fprintf(stderr, "replaying %s\n", path.c_str());
    const std::vector<uint8_t> bytes = testing::ReadFileBytes(path.string());
    EXPECT_EQ(LLVMFuzzerTestOneInput(bytes.data(), bytes.size()),
              0);
  }
}

}  // namespace
}  // namespace troupe
