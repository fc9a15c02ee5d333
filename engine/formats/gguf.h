// GGUF (v2/v3, little-endian) reader: maps the file read-only and exposes its metadata and
// tensor infos. Every offset and length is bounds-checked at Open(); afterwards accessors cannot
// read outside the mapping. Immutable after Open(), so safe for concurrent reads from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mapped_file.h"

namespace troupe {

// GGUF metadata value types (gguf_type).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", ...; "type#N" for an id outside the enum.
std::string_view GgufValueTypeName(GgufValueType type);

// One metadata value. Integers of every width are widened to int64/uint64 (unsigned types ->
// uint64_t, signed -> int64_t), floats to double. Arrays keep their element type and hold their
// elements in `array` (nested arrays allowed, up to a small depth).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint32;
  std::variant<uint64_t, int64_t, double, bool, std::string> scalar;
  GgufValueType array_type = GgufValueType::kUint32;  // element type when type == kArray
  std::vector<GgufValue> array;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t type = 0;              // GgmlType id (kernels/ggml_types.h); validated at Open()
  std::vector<int64_t> dims;      // ggml order: dims[0] is the contiguous (row) length; 1..4 dims
  const uint8_t* data = nullptr;  // points into the mapping, aligned to general.alignment
  uint64_t num_bytes = 0;         // dims product / block elems * block bytes
  int64_t num_elements() const;   // product of dims (no overflow: checked at Open())
};

class GgufFile {
 public:
  // Maps and parses `path`. Errors name the file and the problem:
  //   kNotFound         the file does not exist;
  //   kInvalidArgument  not a GGUF file (bad magic), unsupported version (v1, big-endian),
  //                     tensor type troupe cannot read (names the tensor and the type id);
  //   kDataLoss         truncated or corrupt: a header/string/array/tensor info running past the
  //                     end of file, bad value type, negative or overflowing dims, bad alignment,
  //                     duplicate key or tensor name, tensor data out of bounds or misaligned;
  //   kPermissionDenied / kInternal  open/stat/mmap failures (errno text included).
  // Allocation is bounded by the file size: no count or length is trusted before it is checked
  // against the bytes that remain.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_bytes() const { return mapping_.size(); }
  uint64_t alignment() const { return alignment_; }      // general.alignment, default 32
  uint64_t data_offset() const { return data_offset_; }  // file offset of the tensor data section

  // ---- metadata ----
  const GgufValue* Find(std::string_view key) const;  // nullptr if absent
  // Typed getters: kNotFound if absent, kInvalidArgument if of another kind (message names the
  // key, the file and the actual type).
  [[nodiscard]] absl::StatusOr<std::string> GetString(std::string_view key) const;
  [[nodiscard]] absl::StatusOr<uint64_t> GetUint(std::string_view key) const;  // any int type >= 0
  [[nodiscard]] absl::StatusOr<double> GetFloat(std::string_view key) const;   // any float or int
  [[nodiscard]] absl::StatusOr<bool> GetBool(std::string_view key) const;
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  // Elements of any float or int type.
  [[nodiscard]] absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;
  // Elements of any int type (uint64 values above INT64_MAX are an error).
  [[nodiscard]] absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  const std::vector<std::string>& metadata_keys() const { return keys_; }  // file order

  // ---- tensors ----
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // file order
  const GgufTensorInfo* FindTensor(std::string_view name) const;           // nullptr if absent

  // Tells the kernel the whole pages inside [data, data+bytes) are no longer needed (after a
  // tensor was repacked into another layout). Reading them again later re-faults them from the
  // file, so this never changes what the mapping reads. REQUIRES: the range lies in the mapping.
  void ReleasePages(const uint8_t* data, uint64_t bytes) const;

 private:
  GgufFile() = default;
  class Parser;

  std::string path_;
  MappedFile mapping_;  // the whole file, read-only
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Copies a 1-D-or-more F32/F16/BF16 tensor into floats [num_elements]. kInvalidArgument (naming
// the tensor, its type and the file) for any other type.
[[nodiscard]] absl::StatusOr<std::vector<float>> TensorToFloats(const GgufFile& file,
                                                                const GgufTensorInfo& info);

}  // namespace troupe
