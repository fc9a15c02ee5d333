// PackedMatrix: one-time repack of Q4_0 / Q4_1 / Q8_0 tensors into 16-row tiles
// (kernels/cpu/packed_layout.h); float tensors are borrowed. Runs at load time.
#include "kernels/cpu/packed_matrix.h"

#include <sys/mman.h>

#include <cstring>

#include "common/check.h"
#include "kernels/cpu/packed_layout.h"

namespace troupe::cpu {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;

// Zeroed storage, 64-byte aligned; buffers of 2 MiB or more are aligned to 2 MiB and advised
// into transparent huge pages (the decode loop streams them, so fewer TLB misses).
uint8_t* AllocateTiles(size_t bytes) {
  const size_t align = bytes >= kHugePage ? kHugePage : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  TROUPE_CHECK_MSG(p != nullptr, "out of memory packing %zu bytes", rounded);
  if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);  // advisory; failure is harmless
  std::memset(p, 0, rounded);
  return static_cast<uint8_t*>(p);
}

// The source block of row r, block b, with its qs bytes and scales; m is 0 for Q4_0 / Q8_0.
struct SourceBlock {
  const uint8_t* qs;
  Fp16 d;
  Fp16 m;
};
SourceBlock ReadBlock(GgmlType t, const uint8_t* row, int64_t b) {
  switch (t) {
    case GgmlType::kQ4_0: {
      const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
      return {blk->qs, blk->d, 0};
    }
    case GgmlType::kQ4_1: {
      const auto* blk = reinterpret_cast<const BlockQ4_1*>(row) + b;
      return {blk->qs, blk->d, blk->m};
    }
    default: {
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
      return {reinterpret_cast<const uint8_t*>(blk->qs), blk->d, 0};
    }
  }
}
}  // namespace

PackedMatrix PackedMatrix::Pack(const MatrixView& w) {
  const auto traits = TraitsOf(static_cast<uint32_t>(w.type));
  TROUPE_CHECK_MSG(traits.has_value(), "unsupported GgmlType %u", static_cast<unsigned>(w.type));
  TROUPE_CHECK(w.rows >= 0 && w.cols >= 0 && w.cols % traits->block_elems == 0);
  PackedMatrix p;
  p.type_ = w.type;
  p.rows_ = w.rows;
  p.cols_ = w.cols;
  if (!layout::IsRepacked(w.type)) {
    p.borrowed_ = w.data;
    return p;
  }
  const int64_t nb = w.cols / kQK;
  const size_t row_bytes = RowBytes(*traits, w.cols);
  p.storage_bytes_ = static_cast<size_t>(layout::NumTiles(w.rows) * layout::TileBytes(w.type, nb));
  p.storage_.reset(AllocateTiles(p.storage_bytes_));
  const int qs_bytes = layout::QsBytes(w.type);
  const int num_chunks = qs_bytes / layout::kChunkBytes;
  const bool is_q8 = w.type == GgmlType::kQ8_0;
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* src_row = static_cast<const uint8_t*>(w.data) + r * row_bytes;
    const layout::TileView tile = layout::Tile(p.storage_.get(), w.type, nb, r / layout::kTileRows);
    const int lane = static_cast<int>(r % layout::kTileRows);
    for (int64_t b = 0; b < nb; ++b) {
      const SourceBlock src = ReadBlock(w.type, src_row, b);
      uint8_t* qs = const_cast<uint8_t*>(tile.qs) + b * qs_bytes + 4 * lane;
      for (int j = 0; j < num_chunks; ++j) {
        for (int k = 0; k < 4; ++k) {
          // Q8_0: int8 q + 128 as uint8 is q with its top bit flipped.
          qs[j * layout::kChunkBytes + k] = is_q8 ? src.qs[4 * j + k] ^ 0x80 : src.qs[4 * j + k];
        }
      }
      const_cast<Fp16*>(tile.d)[b * layout::kTileRows + lane] = src.d;
      if (tile.m != nullptr) const_cast<Fp16*>(tile.m)[b * layout::kTileRows + lane] = src.m;
    }
  }
  return p;
}

void PackedMatrix::GetRow(int64_t row, float* out) const {
  TROUPE_CHECK(row >= 0 && row < rows_);
  if (borrowed_ != nullptr) {
    const auto traits = TraitsOf(static_cast<uint32_t>(type_));
    DequantizeRow(type_, static_cast<const uint8_t*>(borrowed_) + row * RowBytes(*traits, cols_),
                  out, cols_);
    return;
  }
  const int64_t nb = cols_ / kQK;
  const layout::TileView tile = layout::Tile(storage_.get(), type_, nb, row / layout::kTileRows);
  const int lane = static_cast<int>(row % layout::kTileRows);
  const int qs_bytes = layout::QsBytes(type_);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* qs = tile.qs + b * qs_bytes + 4 * lane;
    const float d = Fp16ToFp32(tile.d[b * layout::kTileRows + lane]);
    float* dst = out + b * kQK;
    for (int e = 0; e < kQK; ++e) {
      if (type_ == GgmlType::kQ8_0) {
        const int q = static_cast<int>(qs[(e / 4) * layout::kChunkBytes + e % 4]) - 128;
        dst[e] = d * static_cast<float>(q);
        continue;
      }
      // Element e < 16 is the low nibble of source byte e; e >= 16 the high nibble of e - 16.
      const int byte = e % 16;
      const uint8_t v = qs[(byte / 4) * layout::kChunkBytes + byte % 4];
      const int q = e < 16 ? (v & 0x0f) : (v >> 4);
      if (type_ == GgmlType::kQ4_0) {
        dst[e] = d * static_cast<float>(q - 8);
      } else {
        dst[e] = d * static_cast<float>(q) + Fp16ToFp32(tile.m[b * layout::kTileRows + lane]);
      }
    }
  }
}

}  // namespace troupe::cpu
