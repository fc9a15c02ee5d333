// Safetensors: header validation and float conversion over the file's mapping.
#include "engine/formats/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_depth.h"
#include "common/status_macros.h"
#include "kernels/ggml_types.h"
#include "nlohmann/json.hpp"

namespace troupe {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace {

// The safetensors project's own limit on the JSON header; a larger one is taken as corruption.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": not a valid safetensors file: ", what));
}

std::string ShapeString(std::span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

int64_t SafetensorsTensorInfo::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t SafetensorsDtypeBytes(std::string_view dtype) {
  static constexpr std::pair<std::string_view, size_t> kSizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
      {"U64", 8}, {"I32", 4}, {"U32", 4},  {"I16", 2},     {"U16", 2},
      {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
  };
  for (const auto& [name, bytes] : kSizes) {
    if (name == dtype) return bytes;
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  TROUPE_ASSIGN_OR_RETURN(MappedFile mapping, MappedFile::Open(path));
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = std::move(mapping);
  absl::Status status = file->ParseHeader();
  if (!status.ok()) return status;
  return file;
}

absl::Status SafetensorsFile::ParseHeader() {
  const uint8_t* base = mapping_.data();
  const size_t size = mapping_.size();
  // ---- 1) header length and JSON ----
  if (size < 8) return Invalid(path_, absl::StrCat("file is ", size, " bytes, under 8"));
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, base, 8);
  if (header_bytes > kMaxHeaderBytes || header_bytes > size - 8) {
    return Invalid(path_, absl::StrCat("header length ", header_bytes, " exceeds the file (", size,
                                       " bytes)"));
  }
  data_begin_ = 8 + static_cast<size_t>(header_bytes);
  const size_t data_bytes = size - data_begin_;
  const auto* text = reinterpret_cast<const char*>(base + 8);
  if (!JsonWithinDepth(std::string_view(text, static_cast<size_t>(header_bytes)))) {
    return Invalid(path_, absl::StrCat("header JSON nested deeper than ", kMaxJsonDepth, " levels"));
  }
  const nlohmann::json header = nlohmann::json::parse(text, text + header_bytes, nullptr,
                                                      /*allow_exceptions=*/false);
  if (header.is_discarded()) return Invalid(path_, "header is not valid JSON");
  if (!header.is_object()) return Invalid(path_, "header is not a JSON object");

  // ---- 2) entries ----
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return Invalid(path_, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) return Invalid(path_, "__metadata__ values must be strings");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor '", name, "': ");
    if (!entry.is_object()) return Invalid(path_, absl::StrCat(where, "entry is not an object"));
    const auto dtype = entry.find("dtype");
    const auto shape = entry.find("shape");
    const auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || !dtype->is_string()) {
      return Invalid(path_, absl::StrCat(where, "missing or non-string dtype"));
    }
    if (shape == entry.end() || !shape->is_array()) {
      return Invalid(path_, absl::StrCat(where, "missing or non-array shape"));
    }
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return Invalid(path_, absl::StrCat(where, "data_offsets must be two non-negative integers"));
    }
    SafetensorsTensorInfo info;
    info.dtype = dtype->get<std::string>();
    const size_t elem_bytes = SafetensorsDtypeBytes(info.dtype);
    if (elem_bytes == 0) return Invalid(path_, absl::StrCat(where, "unknown dtype ", info.dtype));
    uint64_t expected_bytes = elem_bytes;
    for (const auto& dim : *shape) {
      if (!dim.is_number_unsigned()) {
        return Invalid(path_, absl::StrCat(where, "shape entries must be non-negative integers"));
      }
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX) ||
          __builtin_mul_overflow(expected_bytes, d, &expected_bytes)) {
        return Invalid(path_, absl::StrCat(where, "shape overflows"));
      }
      info.shape.push_back(static_cast<int64_t>(d));
    }
    const uint64_t begin = (*offsets)[0].get<uint64_t>();
    const uint64_t end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > data_bytes) {
      return Invalid(path_, absl::StrCat(where, "data_offsets [", begin, ", ", end,
                                         ") outside the data section of ", data_bytes, " bytes"));
    }
    if (end - begin != expected_bytes) {
      return Invalid(
          path_, absl::StrCat(where, "holds ", end - begin, " bytes; dtype ", info.dtype,
                              " and shape ", ShapeString(info.shape), " need ", expected_bytes));
    }
    info.offset_bytes = static_cast<size_t>(begin);
    info.size_bytes = static_cast<size_t>(end - begin);
    tensors_.emplace(name, std::move(info));
  }

  // ---- 3) no two tensors share bytes ----
  std::vector<std::pair<size_t, const std::string*>> starts;
  for (const auto& [name, info] : tensors_) {
    if (info.size_bytes > 0) starts.emplace_back(info.offset_bytes, &name);
  }
  std::sort(starts.begin(), starts.end());
  for (size_t i = 1; i < starts.size(); ++i) {
    const SafetensorsTensorInfo& prev = tensors_.find(*starts[i - 1].second)->second;
    if (prev.offset_bytes + prev.size_bytes > starts[i].first) {
      return Invalid(path_, absl::StrCat("tensors '", *starts[i - 1].second, "' and '",
                                         *starts[i].second, "' overlap"));
    }
  }
  return absl::OkStatus();
}

const SafetensorsTensorInfo* SafetensorsFile::Find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::span<const uint8_t> SafetensorsFile::Bytes(const SafetensorsTensorInfo& info) const {
  if (info.size_bytes == 0) return {};
  return {mapping_.data() + data_begin_ + info.offset_bytes, info.size_bytes};
}

absl::StatusOr<std::vector<float>> SafetensorsFile::ReadFloat(
    std::string_view name_view, std::span<const int64_t> expected_shape) const {
  const SafetensorsTensorInfo* info = Find(name_view);
  const std::string name(name_view);  // Debian's absl::StrCat takes no std::string_view
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": missing tensor '", name, "'"));
  }
  if (!expected_shape.empty() && !std::equal(info->shape.begin(), info->shape.end(),
                                             expected_shape.begin(), expected_shape.end())) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", name, "' has shape ",
                                                   ShapeString(info->shape), ", expected ",
                                                   ShapeString(expected_shape)));
  }
  const std::span<const uint8_t> bytes = Bytes(*info);
  std::vector<float> out(static_cast<size_t>(info->num_elements()));
  if (info->dtype == "F32") {
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  } else if (info->dtype == "F16" || info->dtype == "BF16") {
    const bool f16 = info->dtype == "F16";
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      out[i] = f16 ? Fp16ToFp32(h) : Bf16ToFp32(h);
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", name, "' has dtype ",
                                                   info->dtype,
                                                   "; only F32, F16 and BF16 "
                                                   "convert to float"));
  }
  return out;
}

}  // namespace troupe
