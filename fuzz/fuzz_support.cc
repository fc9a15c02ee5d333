// MemFile and ByteReader (fuzz_support.h).
#include "fuzz/fuzz_support.h"

#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "common/check.h"

namespace troupe::fuzz {

MemFile::MemFile() {
  fd_ = memfd_create("troupe-fuzz", MFD_CLOEXEC);
  TROUPE_CHECK_MSG(fd_ >= 0, "memfd_create failed");
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemFile::~MemFile() { close(fd_); }

const std::string& MemFile::Write(std::string_view bytes) {
  TROUPE_CHECK(ftruncate(fd_, 0) == 0);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, done);
    TROUPE_CHECK_MSG(n > 0, "pwrite to the memfd failed");
    done += static_cast<size_t>(n);
  }
  return path_;
}

uint8_t ByteReader::Byte() {
  if (rest_.empty()) return 0;
  const auto b = static_cast<uint8_t>(rest_.front());
  rest_.remove_prefix(1);
  return b;
}

std::string_view ByteReader::Until(char separator) {
  const size_t at = rest_.find(separator);
  if (at == std::string_view::npos) return Rest();
  std::string_view field = rest_.substr(0, at);
  rest_.remove_prefix(at + 1);
  return field;
}

}  // namespace troupe::fuzz
