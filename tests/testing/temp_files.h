// Temporary files for tests: paths unique to this process and test case, a directory removed
// with its contents when the test ends, whole-file byte reads and writes. Test-thread only.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace troupe::testing {

// "<suite>_<case>_<pid>": names a test's files apart from every other test's and process's.
inline std::string UniqueTestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "_" + info->name() + "_" +
         std::to_string(::getpid());
}

// A path in the test temp dir unique to this process and test case; the file is not made.
inline std::string TempPath(std::string_view suffix) {
  return ::testing::TempDir() + "troupe_" + UniqueTestName() + "_" + std::string(suffix);
}

// A fresh, empty directory unique to this process and test case (what was left there by an
// earlier crashed run is removed first), removed with its contents on destruction.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(std::string_view tag)
      : path_(std::filesystem::temp_directory_path() /
              ("troupe_" + std::string(tag) + "_" + UniqueTestName())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the directory (not made).
  std::string File(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The whole file; empty when it cannot be read.
inline std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Replaces the file's contents with data[0, n).
inline void WriteFileBytes(const std::string& path, const uint8_t* data, size_t n) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

}  // namespace troupe::testing
