// A whole file mapped read-only into memory (mmap PROT_READ, MAP_PRIVATE): the one place the
// model-file readers (engine/formats: GGUF, safetensors) open and map files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace troupe {

// Owns one read-only mapping of a regular file and unmaps it on destruction. Move-only.
// Thread-safety: immutable after Open(); data() and size() are safe from any thread.
class MappedFile {
 public:
  // Maps all of `path`. An empty file is not an error: it maps nothing (size() == 0,
  // data() == nullptr), and the format reader decides what an empty file means. The file
  // descriptor is closed before returning (the mapping keeps the file's contents alive).
  // Errors name the path, what failed and (for system calls) strerror:
  //   "<path>: cannot open: <strerror>"  code from errno: kNotFound (ENOENT),
  //                                       kPermissionDenied (EACCES), ...;
  //   "<path>: cannot stat: <strerror>", "<path>: cannot mmap: <strerror>"  likewise;
  //   kInvalidArgument "<path>: not a regular file" (a directory, device or socket).
  [[nodiscard]] static absl::StatusOr<MappedFile> Open(const std::string& path);

  MappedFile() = default;  // maps nothing: size() == 0, data() == nullptr
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // [size()] bytes, valid while *this lives (and is not moved from); nullptr when size() == 0.
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  void Unmap();

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace troupe
