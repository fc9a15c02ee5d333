// Fuzzes the GGUF reader (engine/formats/gguf): arbitrary bytes as a model file, then every
// accessor a loader calls on what Open() accepted, the model config and the tokenizer built
// from its metadata. Open() promises that no accessor reads outside the mapping afterwards,
// so every tensor's bytes are read here too (ASan and the mapping's end catch a stray read).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/check.h"
#include "engine/formats/gguf.h"
#include "engine/model/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "fuzz/fuzz_support.h"

namespace troupe {
namespace {

void ExerciseMetadata(const GgufFile& file) {
  for (const std::string& key : file.metadata_keys()) {
    TROUPE_CHECK(file.Find(key) != nullptr);
    (void)file.GetString(key);
    (void)file.GetUint(key);
    (void)file.GetFloat(key);
    (void)file.GetBool(key);
    (void)file.GetStringArray(key);
    (void)file.GetFloatArray(key);
    (void)file.GetIntArray(key);
  }
}

void ExerciseTensors(const GgufFile& file) {
  for (const GgufTensorInfo& info : file.tensors()) {
    TROUPE_CHECK(file.FindTensor(info.name) != nullptr);
    TROUPE_CHECK(info.num_elements() >= 0);
    // Touch the first and last byte: Open() put [data, data + num_bytes) inside the file.
    uint8_t sum = 0;
    if (info.num_bytes > 0) sum = info.data[0] ^ info.data[info.num_bytes - 1];
    (void)sum;
    if (info.num_bytes <= (1u << 20)) (void)TensorToFloats(file, info);
  }
}

}  // namespace
}  // namespace troupe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static troupe::fuzz::MemFile* file = new troupe::fuzz::MemFile();
  const std::string& path = file->Write(std::string_view(reinterpret_cast<const char*>(data), size));
  absl::StatusOr<std::unique_ptr<troupe::GgufFile>> gguf = troupe::GgufFile::Open(path);
  if (!gguf.ok()) return 0;
  troupe::ExerciseMetadata(**gguf);
  troupe::ExerciseTensors(**gguf);
  (void)troupe::ModelConfigFromGguf(**gguf);
  (void)troupe::Tokenizer::FromGguf(**gguf);
  return 0;
}
