// Fuzzes the safetensors reader (engine/formats/safetensors): arbitrary bytes as a file, then
// every tensor's bytes and float conversion for what Open() accepted. Open() promises each
// range lies in the data section and holds product(shape) * element size bytes; the checks
// below hold it to that.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/check.h"
#include "engine/formats/safetensors.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static troupe::fuzz::MemFile* file = new troupe::fuzz::MemFile();
  const std::string& path = file->Write(std::string_view(reinterpret_cast<const char*>(data), size));
  absl::StatusOr<std::unique_ptr<troupe::SafetensorsFile>> st = troupe::SafetensorsFile::Open(path);
  if (!st.ok()) return 0;
  for (const auto& [name, info] : (*st)->tensors()) {
    TROUPE_CHECK((*st)->Find(name) == &info);
    const std::span<const uint8_t> bytes = (*st)->Bytes(info);
    TROUPE_CHECK(bytes.size() == info.size_bytes);
    TROUPE_CHECK(bytes.size() == static_cast<size_t>(info.num_elements()) *
                                     troupe::SafetensorsDtypeBytes(info.dtype));
    uint8_t sum = 0;
    if (!bytes.empty()) sum = bytes.front() ^ bytes.back();
    (void)sum;
    if (bytes.size() <= (1u << 20)) (void)(*st)->ReadFloat(name);
  }
  return 0;
}
