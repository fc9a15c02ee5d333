// PackedMatrix: one-time repack of the quantized tensors into 16-row tiles
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

// A 32-element block of a 5-bit or K-quant row, as the packed layout stores it: x[e] =
// d[e / 16] * (q[e] - offset) + m[e / 16], offset 16 for Q5_0, else 0 (m = 0 without a
// minimum; d[0] == d[1] and m[0] == m[1] except for Q2_K, Q3_K and Q6_K). Scales are
// products of an fp16 and a small integer, exact in f32, and evaluated as the reference does.
struct Block32 {
  int q[kQK];  // stored values: Q5_0 / Q5_1 / Q5_K 0..31, Q4_K 0..15, Q6_K q - 32, Q3_K
               // -4..3, Q2_K 0..3
  float d[2];  // scales of elements 0..15 and 16..31
  float m[2];  // minimums likewise (Q2_K; the others' one minimum twice)
  Fp16 d_bits = 0, m_bits = 0;  // Q5_0 / Q5_1: the source's fp16 d and m
};

int FifthBit(const uint8_t* qh, int e) { return (qh[e / 8] >> (e % 8)) & 1; }

// Block b (32 elements) of a row of `t` (one of layout::IsNewType).
Block32 ReadBlock32(GgmlType t, const uint8_t* row, int64_t b) {
  Block32 out{};
  switch (t) {
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1: {
      const bool q5_1 = t == GgmlType::kQ5_1;
      const uint8_t* qs = q5_1 ? reinterpret_cast<const BlockQ5_1*>(row)[b].qs
                               : reinterpret_cast<const BlockQ5_0*>(row)[b].qs;
      const uint8_t* qh = q5_1 ? reinterpret_cast<const BlockQ5_1*>(row)[b].qh
                               : reinterpret_cast<const BlockQ5_0*>(row)[b].qh;
      for (int e = 0; e < kQK; ++e) {
        const int low = e < 16 ? (qs[e] & 0x0f) : (qs[e - 16] >> 4);
        out.q[e] = low | FifthBit(qh, e) << 4;
      }
      out.d_bits = q5_1 ? reinterpret_cast<const BlockQ5_1*>(row)[b].d
                        : reinterpret_cast<const BlockQ5_0*>(row)[b].d;
      out.m_bits = q5_1 ? reinterpret_cast<const BlockQ5_1*>(row)[b].m : 0;
      return out;
    }
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: {
      const int j = static_cast<int>(b % 8);  // sub-block of the super-block
      const uint8_t* scales;
      const uint8_t* qs;
      const uint8_t* qh = nullptr;
      Fp16 d, dmin;
      if (t == GgmlType::kQ4_K) {
        const BlockQ4_K& k = reinterpret_cast<const BlockQ4_K*>(row)[b / 8];
        scales = k.scales, qs = k.qs, d = k.d, dmin = k.dmin;
      } else {
        const BlockQ5_K& k = reinterpret_cast<const BlockQ5_K*>(row)[b / 8];
        scales = k.scales, qs = k.qs, qh = k.qh, d = k.d, dmin = k.dmin;
      }
      for (int l = 0; l < kQK; ++l) {
        const uint8_t byte = qs[32 * (j / 2) + l];
        int q = j % 2 == 0 ? (byte & 0x0f) : (byte >> 4);
        if (qh != nullptr) q |= ((qh[l] >> j) & 1) << 4;
        out.q[l] = q;
      }
      int sc = 0, m = 0;
      UnpackScaleMinK(scales, j, &sc, &m);
      out.d[0] = out.d[1] = Fp16ToFp32(d) * static_cast<float>(sc);
      out.m[0] = out.m[1] = -(Fp16ToFp32(dmin) * static_cast<float>(m));
      return out;
    }
    case GgmlType::kQ3_K: {
      const BlockQ3_K& k = reinterpret_cast<const BlockQ3_K*>(row)[b / 8];
      const int e0 = static_cast<int>(b % 8) * kQK;
      for (int i = 0; i < kQK; ++i) {
        const int e = e0 + i;
        const int half = e / 128, pair = (e % 128) / 32, l = e % 32;  // pair: bits 2 * pair
        const int low = (k.qs[32 * half + l] >> (2 * pair)) & 3;
        const bool high = (k.hmask[l] >> (4 * half + pair)) & 1;
        out.q[i] = low - (high ? 0 : 4);
      }
      const float d = Fp16ToFp32(k.d);
      out.d[0] = d * static_cast<float>(Q3KScale(k.scales, e0 / 16) - 32);
      out.d[1] = d * static_cast<float>(Q3KScale(k.scales, e0 / 16 + 1) - 32);
      return out;
    }
    case GgmlType::kQ2_K: {
      const BlockQ2_K& k = reinterpret_cast<const BlockQ2_K*>(row)[b / 8];
      const int e0 = static_cast<int>(b % 8) * kQK;
      for (int i = 0; i < kQK; ++i) {
        const int e = e0 + i;
        const int half = e / 128, pair = (e % 128) / 32, l = e % 32;
        out.q[i] = (k.qs[32 * half + l] >> (2 * pair)) & 3;
      }
      for (int s = 0; s < 2; ++s) {
        const uint8_t sc = k.scales[e0 / 16 + s];
        out.d[s] = Fp16ToFp32(k.d) * static_cast<float>(sc & 0x0f);
        out.m[s] = -(Fp16ToFp32(k.dmin) * static_cast<float>(sc >> 4));
      }
      return out;
    }
    default: {  // Q6_K
      const BlockQ6_K& k = reinterpret_cast<const BlockQ6_K*>(row)[b / 8];
      const int e0 = static_cast<int>(b % 8) * kQK;  // first element in the super-block
      for (int i = 0; i < kQK; ++i) {
        const int e = e0 + i;
        const int h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
        const uint8_t low_byte = k.ql[64 * h + 32 * (quarter % 2) + l];
        const int low = quarter < 2 ? (low_byte & 0x0f) : (low_byte >> 4);
        const int high = (k.qh[32 * h + l] >> (2 * quarter)) & 3;
        out.q[i] = (low | high << 4) - 32;
      }
      const float d = Fp16ToFp32(k.d);
      out.d[0] = d * static_cast<float>(k.scales[e0 / 16]);
      out.d[1] = d * static_cast<float>(k.scales[e0 / 16 + 1]);
      return out;
    }
  }
}

// Writes `blk` as row `lane`, block b of `tile` (a layout::IsNewType type).
void StoreBlock32(GgmlType t, const Block32& blk, const layout::TileView& tile, int64_t b,
                  int lane) {
  uint8_t* qs = const_cast<uint8_t*>(tile.qs) + b * layout::QsBytes(t) + 4 * lane;
  uint32_t fifth_bits = 0;
  for (int e = 0; e < kQK; ++e) {
    if (layout::IsSignedBytes(t)) {  // int8: Q6_K q - 32, Q3_K / Q2_K q
      qs[(e / 4) * layout::kChunkBytes + e % 4] = static_cast<uint8_t>(blk.q[e]);
      continue;
    }
    if (e < 16) {  // as Q4_1: element e in the low nibble of byte e, e + 16 in the high one
      qs[(e / 4) * layout::kChunkBytes + e % 4] =
          static_cast<uint8_t>((blk.q[e] & 0x0f) | (blk.q[e + 16] & 0x0f) << 4);
    }
    fifth_bits |= static_cast<uint32_t>((blk.q[e] >> 4) & 1) << layout::FifthBitPosition(e);
  }
  if (layout::IsFiveBit(t)) {
    for (int k = 0; k < 4; ++k) {
      qs[layout::kFifthBitChunk * layout::kChunkBytes + k] =
          static_cast<uint8_t>(fifth_bits >> (8 * k));
    }
  }
  const int64_t at = b * layout::kTileRows + lane;
  if (!layout::HasF32Scales(t)) {  // Q5_0, Q5_1: the source's fp16 scale (and minimum)
    const_cast<Fp16*>(tile.d)[at] = blk.d_bits;
    if (tile.m != nullptr) const_cast<Fp16*>(tile.m)[at] = blk.m_bits;
    return;
  }
  const int num_scales = layout::ScalesPerBlock(t);
  float* fd = const_cast<float*>(tile.fd) + b * num_scales * layout::kTileRows;
  for (int s = 0; s < num_scales; ++s) fd[s * layout::kTileRows + lane] = blk.d[s];
  if (tile.fm != nullptr) {
    const int num_mins = layout::MinsPerBlock(t);
    float* fm = const_cast<float*>(tile.fm) + b * num_mins * layout::kTileRows;
    for (int s = 0; s < num_mins; ++s) fm[s * layout::kTileRows + lane] = blk.m[s];
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
    if (layout::IsNewType(w.type)) {
      for (int64_t b = 0; b < nb; ++b) {
        StoreBlock32(w.type, ReadBlock32(w.type, src_row, b), tile, b, lane);
      }
      continue;
    }
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
  if (layout::IsNewType(type_)) {
    const int num_scales = layout::ScalesPerBlock(type_);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* qs = tile.qs + b * qs_bytes + 4 * lane;
      const int64_t at = b * layout::kTileRows + lane;
      for (int e = 0; e < kQK; ++e) {
        const float d = layout::HasF32Scales(type_)
                            ? tile.fd[(b * num_scales + e / 16 % num_scales) * layout::kTileRows + lane]
                            : Fp16ToFp32(tile.d[at]);
        float x = d * static_cast<float>(layout::PackedValue(type_, qs, e));
        if (tile.fm != nullptr) {
          const int num_mins = layout::MinsPerBlock(type_);
          x += tile.fm[(b * num_mins + e / 16 % num_mins) * layout::kTileRows + lane];
        }
        if (tile.m != nullptr) x += Fp16ToFp32(tile.m[at]);
        out[b * kQK + e] = x;
      }
    }
    return;
  }
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
