// GGUF reader. Design: the whole file is mapped read-only once; a Parser walks the header,
// metadata and tensor infos with a cursor whose every read is checked against the bytes left,
// so a truncated or corrupt file ends in a Status, never an out-of-bounds read. Counts and
// lengths read from the file are compared with the remaining bytes *before* anything is
// allocated for them, which bounds memory by the file size. Tensor data is never copied.
#include "engine/formats/gguf.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "kernels/ggml_types.h"

namespace troupe {
namespace {

// Debian's Abseil has its own absl::string_view, which StrCat takes; std::string_view it does not.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;
constexpr int kMaxDims = 4;        // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;  // nested metadata arrays (real files use none)
// Upper bound on metadata array elements in one file. Each element costs a GgufValue (~80 bytes)
// in memory, so this caps what a corrupt count can make us allocate at ~170 MB; the largest
// real vocabularies (262K tokens + scores + types, or 128K-151K tokens + types + merges) need
// under 1M.
constexpr uint64_t kMaxMetadataArrayElements = uint64_t{1} << 21;

// Smallest encodings, used to bound counts by the bytes left before allocating.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                  // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim, type, offset

// ggml type names by id, for error messages about types troupe does not read ("" = unused id).
constexpr std::string_view kGgmlTypeNames[] = {
    "F32",     "F16",    "Q4_0",    "Q4_1",  "",       "",      "Q5_0",  "Q5_1",
    "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
    "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
    "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16",  "",
    "",        "",       "TQ1_0",   "TQ2_0", "",       "",      "",      "MXFP4"};

std::string GgmlTypeLabel(uint32_t type) {
  if (type < std::size(kGgmlTypeNames) && !kGgmlTypeNames[type].empty()) {
    return absl::StrCat(Sv(kGgmlTypeNames[type]), " (id ", type, ")");
  }
  return absl::StrCat("id ", type);
}

// Byte size of a fixed-size scalar type; 0 for string/array/invalid.
uint64_t ScalarBytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool IsValidValueType(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

// Smallest encoded size of one element of `type` (string: its length; array: type + count).
uint64_t MinEncodedBytes(GgufValueType type) {
  if (type == GgufValueType::kString) return 8;
  if (type == GgufValueType::kArray) return 12;
  return ScalarBytes(type);
}

bool IsPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

uint32_t ByteSwap32(uint32_t x) { return __builtin_bswap32(x); }

}  // namespace

std::string_view GgufValueTypeName(GgufValueType type) {
  // Indexed by the gguf_type id.
  static constexpr std::string_view kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                "int32",  "float32", "bool",   "string", "array",
                                                "uint64", "int64",   "float64"};
  const auto id = static_cast<uint32_t>(type);
  return id < std::size(kNames) ? kNames[id] : "invalid";
}

int64_t GgufTensorInfo::num_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// ---- parser ----

// Walks the mapped bytes [0, size) with a bounds-checked cursor. Errors are kDataLoss naming the
// file, what was being read and the byte offset, except where Open() documents another code.
class GgufFile::Parser {
 public:
  explicit Parser(GgufFile& file) : f_(file) {}

  absl::Status Parse() {
    TROUPE_RETURN_IF_ERROR(ParseHeader());
    for (uint64_t i = 0; i < num_kv_; ++i) TROUPE_RETURN_IF_ERROR(ParseKv(i));
    f_.alignment_ = kDefaultAlignment;
    TROUPE_RETURN_IF_ERROR(ReadAlignment());
    // A corrupt count passes the size bound yet can be ~size/32: grow as infos actually parse.
    const uint64_t reserve = std::min<uint64_t>(num_tensors_, 4096);
    offsets_.reserve(reserve);
    f_.tensors_.reserve(reserve);
    for (uint64_t i = 0; i < num_tensors_; ++i) TROUPE_RETURN_IF_ERROR(ParseTensorInfo(i));
    return PlaceTensorData();
  }

 private:
  uint64_t left() const { return f_.mapping_.size() - pos_; }

  absl::Status Corrupt(absl::string_view what) const {
    return absl::DataLossError(
        absl::StrCat(f_.path_, ": corrupt GGUF: ", what, " (at byte ", pos_, ")"));
  }
  absl::Status Truncated(absl::string_view what, uint64_t need) const {
    return absl::DataLossError(absl::StrCat(f_.path_, ": truncated GGUF: ", what, " needs ", need,
                                            " bytes at byte ", pos_, " but only ", left(),
                                            " remain (file is ", f_.mapping_.size(), " bytes)"));
  }

  absl::Status ReadBytes(void* dst, uint64_t n, absl::string_view what) {
    if (n > left()) return Truncated(what, n);
    std::memcpy(dst, f_.mapping_.data() + pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  template <typename T>
  absl::Status Read(T* out, absl::string_view what) {
    return ReadBytes(out, sizeof(T), what);
  }

  absl::Status ReadString(std::string* out, absl::string_view what) {
    uint64_t len = 0;
    if (left() < sizeof(len)) return Truncated(absl::StrCat(what, " length"), sizeof(len));
    TROUPE_RETURN_IF_ERROR(Read(&len, what));
    if (len > left()) {
      return Truncated(absl::StrCat(what, " of length ", len), len);
    }
    out->assign(reinterpret_cast<const char*>(f_.mapping_.data() + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

  absl::Status ParseHeader() {
    char magic[4];
    TROUPE_RETURN_IF_ERROR(ReadBytes(magic, 4, "magic"));
    if (std::memcmp(magic, kMagic, 4) != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: not a GGUF file (magic bytes %02x %02x %02x %02x, expected \"GGUF\")", f_.path_,
          static_cast<uint8_t>(magic[0]), static_cast<uint8_t>(magic[1]),
          static_cast<uint8_t>(magic[2]), static_cast<uint8_t>(magic[3])));
    }
    uint32_t version = 0;
    TROUPE_RETURN_IF_ERROR(Read(&version, "version"));
    if (version == 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(f_.path_,
                       ": GGUF version 1 is not supported (32-bit counts; re-convert the model "
                       "with a current llama.cpp to get v3)"));
    }
    if (version != 2 && version != 3) {
      const uint32_t swapped = ByteSwap32(version);
      if (swapped >= 1 && swapped <= 3) {
        return absl::InvalidArgumentError(
            absl::StrCat(f_.path_, ": big-endian GGUF (version ", swapped, ") is not supported"));
      }
      return absl::InvalidArgumentError(absl::StrCat(f_.path_, ": unsupported GGUF version ",
                                                     version, " (troupe reads versions 2 and 3)"));
    }
    f_.version_ = version;
    TROUPE_RETURN_IF_ERROR(Read(&num_tensors_, "tensor count"));
    TROUPE_RETURN_IF_ERROR(Read(&num_kv_, "metadata count"));
    if (num_kv_ > left() / kMinKvBytes) {
      return Corrupt(absl::StrCat("metadata count ", num_kv_, " cannot fit in the ", left(),
                                  " bytes that follow"));
    }
    if (num_tensors_ > left() / kMinTensorInfoBytes) {
      return Corrupt(absl::StrCat("tensor count ", num_tensors_, " cannot fit in the ", left(),
                                  " bytes that follow"));
    }
    return absl::OkStatus();
  }

  absl::Status ParseKv(uint64_t index) {
    std::string key;
    TROUPE_RETURN_IF_ERROR(ReadString(&key, absl::StrCat("metadata key #", index)));
    uint32_t type = 0;
    TROUPE_RETURN_IF_ERROR(Read(&type, absl::StrCat("type of metadata key '", key, "'")));
    if (!IsValidValueType(type)) {
      return Corrupt(absl::StrCat("metadata key '", key, "' has invalid value type ", type));
    }
    GgufValue value;
    const absl::Status s = ReadValue(static_cast<GgufValueType>(type), 0, &value);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " [metadata key '", key, "']"));
    }
    if (!f_.metadata_.emplace(key, std::move(value)).second) {
      return Corrupt(absl::StrCat("duplicate metadata key '", key, "'"));
    }
    f_.keys_.push_back(std::move(key));
    return absl::OkStatus();
  }

  // Errors omit the key; ParseKv appends it (no per-element string building for big arrays).
  absl::Status ReadValue(GgufValueType type, int depth, GgufValue* out) {
    out->type = type;
    constexpr absl::string_view what = "metadata value";
    switch (type) {
      case GgufValueType::kUint8:
        return ReadScalar<uint8_t, uint64_t>(what, out);
      case GgufValueType::kUint16:
        return ReadScalar<uint16_t, uint64_t>(what, out);
      case GgufValueType::kUint32:
        return ReadScalar<uint32_t, uint64_t>(what, out);
      case GgufValueType::kUint64:
        return ReadScalar<uint64_t, uint64_t>(what, out);
      case GgufValueType::kInt8:
        return ReadScalar<int8_t, int64_t>(what, out);
      case GgufValueType::kInt16:
        return ReadScalar<int16_t, int64_t>(what, out);
      case GgufValueType::kInt32:
        return ReadScalar<int32_t, int64_t>(what, out);
      case GgufValueType::kInt64:
        return ReadScalar<int64_t, int64_t>(what, out);
      case GgufValueType::kFloat32:
        return ReadScalar<float, double>(what, out);
      case GgufValueType::kFloat64:
        return ReadScalar<double, double>(what, out);
      case GgufValueType::kBool: {
        uint8_t b = 0;
        TROUPE_RETURN_IF_ERROR(Read(&b, what));
        out->scalar = b != 0;
        return absl::OkStatus();
      }
      case GgufValueType::kString: {
        std::string s;
        TROUPE_RETURN_IF_ERROR(ReadString(&s, what));
        out->scalar = std::move(s);
        return absl::OkStatus();
      }
      case GgufValueType::kArray:
        return ReadArray(depth, out);
    }
    return Corrupt("invalid metadata value type");
  }

  template <typename Stored, typename Widened>
  absl::Status ReadScalar(absl::string_view what, GgufValue* out) {
    Stored v{};
    TROUPE_RETURN_IF_ERROR(Read(&v, what));
    out->scalar = static_cast<Widened>(v);
    return absl::OkStatus();
  }

  absl::Status ReadArray(int depth, GgufValue* out) {
    if (depth >= kMaxArrayDepth) {
      return Corrupt(absl::StrCat("metadata arrays nested deeper than ", kMaxArrayDepth));
    }
    uint32_t elem_type = 0;
    TROUPE_RETURN_IF_ERROR(Read(&elem_type, "metadata array element type"));
    if (!IsValidValueType(elem_type)) {
      return Corrupt(absl::StrCat("metadata array has invalid element type ", elem_type));
    }
    uint64_t count = 0;
    TROUPE_RETURN_IF_ERROR(Read(&count, "metadata array length"));
    const auto type = static_cast<GgufValueType>(elem_type);
    const uint64_t min_bytes = MinEncodedBytes(type);
    if (count > left() / min_bytes) {
      return Truncated(
          absl::StrCat("metadata array of ", count, " ", Sv(GgufValueTypeName(type)), " elements"),
          count > UINT64_MAX / min_bytes ? UINT64_MAX : count * min_bytes);
    }
    if (count > array_budget_) {
      return Corrupt(absl::StrCat("metadata arrays hold more than ", kMaxMetadataArrayElements,
                                  " elements in total (this one has ", count, ")"));
    }
    array_budget_ -= count;
    out->array_type = type;
    out->array.resize(count);  // bounded by the checks above
    for (uint64_t i = 0; i < count; ++i) {
      TROUPE_RETURN_IF_ERROR(ReadValue(type, depth + 1, &out->array[i]));
    }
    return absl::OkStatus();
  }

  absl::Status ReadAlignment() {
    const GgufValue* v = f_.Find("general.alignment");
    if (v == nullptr) return absl::OkStatus();
    const uint64_t* a = std::get_if<uint64_t>(&v->scalar);
    if (v->type == GgufValueType::kArray || a == nullptr || !IsPowerOfTwo(*a) ||
        *a > kMaxAlignment) {
      return absl::DataLossError(absl::StrCat(
          f_.path_,
          ": corrupt GGUF: general.alignment must be an unsigned power of two <= ", kMaxAlignment));
    }
    f_.alignment_ = *a;
    return absl::OkStatus();
  }

  absl::Status ParseTensorInfo(uint64_t index) {
    GgufTensorInfo info;
    TROUPE_RETURN_IF_ERROR(ReadString(&info.name, absl::StrCat("name of tensor #", index)));
    const std::string what = absl::StrCat("tensor '", info.name, "'");
    uint32_t num_dims = 0;
    TROUPE_RETURN_IF_ERROR(Read(&num_dims, absl::StrCat("dimension count of ", what)));
    if (num_dims < 1 || num_dims > kMaxDims) {
      return Corrupt(
          absl::StrCat(what, " has ", num_dims, " dimensions (must be 1..", kMaxDims, ")"));
    }
    info.dims.resize(num_dims);
    int64_t num_elements = 1;
    for (uint32_t d = 0; d < num_dims; ++d) {
      TROUPE_RETURN_IF_ERROR(Read(&info.dims[d], absl::StrCat("dimensions of ", what)));
      if (info.dims[d] < 0) {
        return Corrupt(absl::StrCat(what, " has negative dimension ", info.dims[d]));
      }
      if (__builtin_mul_overflow(num_elements, info.dims[d], &num_elements)) {
        return Corrupt(absl::StrCat(what, " has dimensions [", absl::StrJoin(info.dims, ", "),
                                    "] whose product overflows int64"));
      }
    }
    TROUPE_RETURN_IF_ERROR(Read(&info.type, absl::StrCat("type of ", what)));
    const std::optional<GgmlTypeTraits> traits = TraitsOf(info.type);
    if (!traits) {
      return absl::InvalidArgumentError(
          absl::StrCat(f_.path_, ": ", what, " has tensor type ", GgmlTypeLabel(info.type),
                       ", which troupe cannot read (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                       "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)"));
    }
    if (info.dims[0] % traits->block_elems != 0) {
      return Corrupt(absl::StrCat(what, " of type ", Sv(traits->name), " has row length ",
                                  info.dims[0], ", not a multiple of its block size ",
                                  traits->block_elems));
    }
    // num_elements <= INT64_MAX, so the block count fits; only the byte count can overflow.
    const uint64_t num_blocks = static_cast<uint64_t>(num_elements) / traits->block_elems;
    if (__builtin_mul_overflow(num_blocks, static_cast<uint64_t>(traits->block_bytes),
                               &info.num_bytes)) {
      return Corrupt(absl::StrCat(what, " byte size overflows uint64"));
    }
    uint64_t offset = 0;
    TROUPE_RETURN_IF_ERROR(Read(&offset, absl::StrCat("data offset of ", what)));
    if (offset % f_.alignment_ != 0) {
      return Corrupt(absl::StrCat(what, " data offset ", offset, " is not a multiple of the ",
                                  f_.alignment_, "-byte alignment"));
    }
    if (!f_.tensor_index_.emplace(info.name, f_.tensors_.size()).second) {
      return Corrupt(absl::StrCat("duplicate tensor name '", info.name, "'"));
    }
    f_.tensors_.push_back(std::move(info));
    offsets_.push_back(offset);
    return absl::OkStatus();
  }

  // The data section starts at the first alignment boundary after the tensor infos; each
  // tensor's [offset, offset + num_bytes) must lie inside it.
  absl::Status PlaceTensorData() {
    const uint64_t a = f_.alignment_;
    const uint64_t data_offset = (pos_ + a - 1) / a * a;  // pos_ <= file size < 2^63: no overflow
    if (data_offset > f_.mapping_.size()) {
      if (!f_.tensors_.empty()) {
        return Truncated("padding before the tensor data section", data_offset - pos_);
      }
      f_.data_offset_ = f_.mapping_.size();  // vocab-only file: no data section at all
      return absl::OkStatus();
    }
    f_.data_offset_ = data_offset;
    const uint64_t data_bytes = f_.mapping_.size() - data_offset;
    for (size_t i = 0; i < f_.tensors_.size(); ++i) {
      GgufTensorInfo& t = f_.tensors_[i];
      if (offsets_[i] > data_bytes || t.num_bytes > data_bytes - offsets_[i]) {
        return absl::DataLossError(
            absl::StrCat(f_.path_, ": truncated or corrupt GGUF: data of tensor '", t.name, "' (",
                         t.num_bytes, " bytes at data offset ", offsets_[i],
                         ") runs past the end of the ", data_bytes, "-byte data section"));
      }
      t.data = f_.mapping_.data() + data_offset + offsets_[i];
    }
    return absl::OkStatus();
  }

  GgufFile& f_;
  uint64_t pos_ = 0;
  uint64_t num_tensors_ = 0;
  uint64_t num_kv_ = 0;
  uint64_t array_budget_ = kMaxMetadataArrayElements;
  std::vector<uint64_t> offsets_;  // [num_tensors] data offsets relative to the data section
};

// ---- open ----

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  TROUPE_ASSIGN_OR_RETURN(MappedFile mapping, MappedFile::Open(path));
  if (mapping.size() == 0) {
    return absl::DataLossError(absl::StrCat(path, ": truncated GGUF: file is empty"));
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  file->mapping_ = std::move(mapping);
  TROUPE_RETURN_IF_ERROR(Parser(*file).Parse());
  return file;
}

void GgufFile::ReleasePages(const uint8_t* data, uint64_t bytes) const {
  const uint8_t* base = mapping_.data();
  const uint64_t size = mapping_.size();
  TROUPE_CHECK_MSG(
      data >= base && bytes <= size && data - base <= static_cast<int64_t>(size - bytes),
      "ReleasePages range outside the mapping of %s", path_.c_str());
  static const uint64_t kPage = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Only pages wholly inside the range: neighbours' bytes on a shared page stay resident.
  const uint64_t begin = (reinterpret_cast<uintptr_t>(data) + kPage - 1) / kPage * kPage;
  const uint64_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / kPage * kPage;
  if (begin >= end) return;
  // Advice only: on failure the pages simply stay resident.
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// ---- metadata accessors ----

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_.find(std::string(key));
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {

absl::Status NotFound(const std::string& path, absl::string_view key) {
  return absl::NotFoundError(absl::StrCat(path, ": metadata key '", key, "' not found"));
}

absl::Status WrongType(const std::string& path, absl::string_view key, const GgufValue& v,
                       absl::string_view wanted) {
  std::string actual(GgufValueTypeName(v.type));
  if (v.type == GgufValueType::kArray) {
    absl::StrAppend(&actual, " of ", Sv(GgufValueTypeName(v.array_type)));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": metadata key '", key, "' is ", actual, ", expected ", wanted));
}

// Numeric scalar as double; false for bool/string/array.
bool AsDouble(const GgufValue& v, double* out) {
  if (v.type == GgufValueType::kArray) return false;
  if (const auto* u = std::get_if<uint64_t>(&v.scalar)) {
    *out = static_cast<double>(*u);
  } else if (const auto* i = std::get_if<int64_t>(&v.scalar)) {
    *out = static_cast<double>(*i);
  } else if (const auto* d = std::get_if<double>(&v.scalar)) {
    *out = *d;
  } else {
    return false;
  }
  return true;
}

// Integer scalar as int64; false for non-integers and uint64 values above INT64_MAX.
bool AsInt64(const GgufValue& v, int64_t* out) {
  if (v.type == GgufValueType::kArray) return false;
  if (const auto* u = std::get_if<uint64_t>(&v.scalar)) {
    if (*u > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(*u);
    return true;
  }
  if (const auto* i = std::get_if<int64_t>(&v.scalar)) {
    *out = *i;
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(path_, Sv(key));
  if (v->type != GgufValueType::kString) return WrongType(path_, Sv(key), *v, "string");
  return std::get<std::string>(v->scalar);
}

absl::StatusOr<uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(path_, Sv(key));
  if (v->type != GgufValueType::kArray) {
    if (const auto* u = std::get_if<uint64_t>(&v->scalar)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v->scalar)) {
      if (*i >= 0) return static_cast<uint64_t>(*i);
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": metadata key '", Sv(key), "' is negative (", *i, ")"));
    }
  }
  return WrongType(path_, Sv(key), *v, "an unsigned integer");
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(path_, Sv(key));
  double d = 0;
  if (!AsDouble(*v, &d)) return WrongType(path_, Sv(key), *v, "a number");
  return d;
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(path_, Sv(key));
  if (v->type != GgufValueType::kBool) return WrongType(path_, Sv(key), *v, "bool");
  return std::get<bool>(v->scalar);
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(path_, Sv(key));
  if (v->type != GgufValueType::kArray || v->array_type != GgufValueType::kString) {
    return WrongType(path_, Sv(key), *v, "array of string");
  }
  std::vector<std::string> out;
  out.reserve(v->array.size());
  for (const GgufValue& e : v->array) out.push_back(std::get<std::string>(e.scalar));
  return out;
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(path_, Sv(key));
  if (v->type != GgufValueType::kArray) return WrongType(path_, Sv(key), *v, "array of numbers");
  std::vector<double> out(v->array.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!AsDouble(v->array[i], &out[i])) return WrongType(path_, Sv(key), *v, "array of numbers");
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(path_, Sv(key));
  if (v->type != GgufValueType::kArray) return WrongType(path_, Sv(key), *v, "array of integers");
  std::vector<int64_t> out(v->array.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!AsInt64(v->array[i], &out[i])) {
      return WrongType(path_, Sv(key), *v, "array of integers that fit in int64");
    }
  }
  return out;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---- tensor helpers ----

absl::StatusOr<std::vector<float>> TensorToFloats(const GgufFile& file,
                                                  const GgufTensorInfo& info) {
  const int64_t n = info.num_elements();
  std::vector<float> out;
  switch (static_cast<GgmlType>(info.type)) {
    case GgmlType::kF32:
      out.resize(n);
      // An empty tensor (a zero dim) has no data to copy, and memcpy takes no null pointer.
      if (n > 0) std::memcpy(out.data(), info.data, static_cast<size_t>(n) * sizeof(float));
      return out;
    case GgmlType::kF16:
    case GgmlType::kBF16: {
      const bool is_f16 = static_cast<GgmlType>(info.type) == GgmlType::kF16;
      out.resize(n);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, info.data + 2 * i, 2);  // data may be only 1-byte aligned
        out[i] = is_f16 ? Fp16ToFp32(h) : Bf16ToFp32(h);
      }
      return out;
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tensor '", info.name,
                                                 "' has type ", GgmlTypeLabel(info.type),
                                                 ", expected F32, F16 or BF16"));
}

}  // namespace troupe
