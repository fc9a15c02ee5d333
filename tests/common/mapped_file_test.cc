#include "common/mapped_file.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

// A file under the test's temporary folder holding `bytes`, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& bytes)
      : path_(::testing::TempDir() + "/mapped_file_test_" + std::to_string(::getpid()) + "_" +
              name) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    EXPECT_NE(f, nullptr) << path_;
    if (f == nullptr) return;
    EXPECT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Contents(const MappedFile& m) {
  return std::string(reinterpret_cast<const char*>(m.data()), m.size());
}

TEST(MappedFileTest, MapsTheWholeFile) {
  std::string bytes = "mapped\n";
  for (int i = 0; i < 5000; ++i) bytes += static_cast<char>(i * 7);  // past one 4 KiB page
  const TempFile file("whole", bytes);
  absl::StatusOr<MappedFile> m = MappedFile::Open(file.path());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->size(), bytes.size());
  ASSERT_NE(m->data(), nullptr);
  EXPECT_EQ(Contents(*m), bytes);
}

TEST(MappedFileTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = ::testing::TempDir() + "/mapped_file_test_no_such_file";
  absl::StatusOr<MappedFile> m = MappedFile::Open(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find(path + ": cannot open"), std::string::npos) << m.status();
  EXPECT_NE(m.status().message().find("No such file"), std::string::npos) << m.status();
}

TEST(MappedFileTest, DirectoryIsNotARegularFile) {
  const std::string dir = ::testing::TempDir();
  absl::StatusOr<MappedFile> m = MappedFile::Open(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("not a regular file"), std::string::npos) << m.status();
}

TEST(MappedFileTest, EmptyFileMapsNothing) {
  const TempFile file("empty", "");
  absl::StatusOr<MappedFile> m = MappedFile::Open(file.path());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->size(), 0u);
  EXPECT_EQ(m->data(), nullptr);
}

TEST(MappedFileTest, MoveTransfersTheMapping) {
  const TempFile file("move", "0123456789");
  absl::StatusOr<MappedFile> m = MappedFile::Open(file.path());
  ASSERT_TRUE(m.ok()) << m.status();
  const uint8_t* data = m->data();
  MappedFile a = std::move(*m);
  EXPECT_EQ(m->data(), nullptr);  // moved-from maps nothing
  EXPECT_EQ(m->size(), 0u);
  EXPECT_EQ(a.data(), data);
  EXPECT_EQ(Contents(a), "0123456789");
  MappedFile b;
  b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(Contents(b), "0123456789");
}

TEST(MappedFileTest, MappingOutlivesTheFileName) {
  auto file = std::make_unique<TempFile>("unlinked", "still here");
  absl::StatusOr<MappedFile> m = MappedFile::Open(file->path());
  ASSERT_TRUE(m.ok()) << m.status();
  file.reset();  // unlinks the file; the mapping keeps its contents
  EXPECT_EQ(Contents(*m), "still here");
}

}  // namespace
}  // namespace troupe
