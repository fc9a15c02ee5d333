// Reader for the safetensors format (an 8-byte little-endian header length, a JSON header
// naming each tensor's dtype, shape and byte range, then the raw little-endian data). Used at
// load time by the embedding model; immutable after Open(), so safe for concurrent reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mapped_file.h"

namespace troupe {

// One tensor's entry in the header. Offsets are validated at Open(): the byte range lies inside
// the data section, does not overlap another tensor's and holds exactly
// product(shape) * element size bytes.
struct SafetensorsTensorInfo {
  std::string dtype;           // as spelled in the file: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;  // empty = scalar (one element)
  size_t offset_bytes = 0;     // from the start of the data section
  size_t size_bytes = 0;

  int64_t num_elements() const;
};

// A safetensors file mapped read-only. Owns the mapping; unmaps it on destruction.
// Thread-safety: immutable after Open(); every method is const and safe from any thread.
class SafetensorsFile {
 public:
  // Maps `path` and validates the header. Errors:
  //   kNotFound / kPermissionDenied / kInternal  open/stat/mmap failures (errno text included);
  //   kInvalidArgument  `path` is not a regular file (common/mapped_file.h);
  //   kInvalidArgument  a file too short for its header, a header that is not a JSON object, an
  //                     entry with an unknown dtype, a bad shape or an out-of-range, overlapping
  //                     or wrongly sized byte range. Every message names the file (and tensor).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // All tensors by name (sorted).
  const std::map<std::string, SafetensorsTensorInfo, std::less<>>& tensors() const {
    return tensors_;
  }
  // The header's optional "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The entry named `name`, or null when the file has none.
  const SafetensorsTensorInfo* Find(std::string_view name) const;

  // The raw little-endian bytes of `info`, a view into the mapping valid while *this lives.
  // REQUIRES: `info` is one of tensors()'s values.
  std::span<const uint8_t> Bytes(const SafetensorsTensorInfo& info) const;

  // Converts tensor `name` (F32, F16 or BF16) to float, row-major as stored. When
  // `expected_shape` is non-empty the tensor's shape must equal it. Errors (kInvalidArgument,
  // naming the file and tensor): missing tensor, other dtype, shape mismatch (both shown).
  [[nodiscard]] absl::StatusOr<std::vector<float>> ReadFloat(
      std::string_view name, std::span<const int64_t> expected_shape = {}) const;

 private:
  SafetensorsFile() = default;
  absl::Status ParseHeader();

  std::string path_;
  MappedFile mapping_;     // the whole file; maps nothing for an empty file
  size_t data_begin_ = 0;  // offset of the data section in the file
  std::map<std::string, SafetensorsTensorInfo, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Bytes per element of a safetensors dtype ("F32" -> 4, "BF16" -> 2, "BOOL" -> 1, ...), or 0 for
// a dtype this reader does not know.
size_t SafetensorsDtypeBytes(std::string_view dtype);

}  // namespace troupe
