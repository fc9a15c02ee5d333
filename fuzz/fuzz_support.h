// Helpers shared by the libFuzzer targets in fuzz/: an in-memory file for the readers that take
// a path, and the byte splitting a target uses to carve one input into several. Each fuzzer
// process is single-threaded; nothing here is synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace troupe::fuzz {

// A memfd the fuzzers rewrite for every input, so that GgufFile::Open and SafetensorsFile::Open
// read the bytes through their real open/fstat/mmap path without touching the disk.
// Move-less; one per process (a function-local static in the target).
class MemFile {
 public:
  MemFile();  // aborts if memfd_create fails: the fuzzer cannot run without it
  ~MemFile();
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  // Replaces the file's contents with `bytes` and returns a path that opens it.
  const std::string& Write(std::string_view bytes);

 private:
  int fd_ = -1;
  std::string path_;  // "/proc/self/fd/<fd_>"
};

// Reads one input as a sequence of fields, the way the targets split their bytes.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  // The next byte, or 0 when the input is used up.
  uint8_t Byte();
  // Bytes up to the next `separator` (which is consumed), or all the rest when there is none.
  std::string_view Until(char separator);
  std::string_view Rest() { return std::exchange(rest_, {}); }

 private:
  std::string_view rest_;
};

}  // namespace troupe::fuzz
