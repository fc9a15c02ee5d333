// Checks shared by the CPU and CUDA backends' host KV tier tests (host_kv_copy_test.cc,
// host_kv_cuda_test.cc): a block copied to a host slot and back reads exactly as the original,
// and the copies of one call run in order. stories260K (tiny) keeps the emulated CUDA run short.
// Test-thread only.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/engine.h"
#include "engine/formats/gguf.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"
#include "tests/testing/greedy.h"
#include "tests/testing/model_paths.h"

namespace troupe::testing {

// One sequence's forward pass: `tokens` at positions [start, start + n) over `blocks`
// (block_size 16), logits of the last token.
inline std::vector<float> SeqLogits(Backend& backend, const std::vector<int32_t>& tokens, int start,
                                    const std::vector<int32_t>& blocks, int vocab) {
  std::vector<int32_t> positions, token_seq;
  std::vector<int64_t> slots;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int pos = start + static_cast<int>(i);
    positions.push_back(pos);
    token_seq.push_back(0);
    slots.push_back(int64_t{blocks[pos / 16]} * 16 + pos % 16);
  }
  const std::vector<int32_t> logit_rows = {static_cast<int32_t>(tokens.size()) - 1};
  std::vector<float> logits(vocab, NAN);
  backend.Forward(ForwardBatch{.tokens = tokens, .positions = positions, .token_seq = token_seq,
                               .slots = slots, .block_tables = blocks, .n_seqs = 1,
                               .max_blocks_per_seq = static_cast<int>(blocks.size()),
                               .logit_rows = logit_rows, .hidden_out = nullptr, .sampling = {},
                               .sampled_ids = nullptr},
                  logits.data());
  return logits;
}

// Sequence A's 20 tokens fill blocks 0 and 1; its decode logits there are the reference. Both
// blocks go to host slots 0 and 1, and sequence B's prefill overwrites them. Then one call: B's
// block 0 to slot 2 (it must read B's K/V before the next copy overwrites block 0), A's blocks
// back into blocks 0 and 3. A's decode over [0, 3] must give the reference logits bit for bit,
// and B's block, restored from slot 2 into block 4, must decode as B's did over block 0.
inline void ExpectRestoredBlocksReadAsTheOriginals(const std::string& device) {
  auto file = GgufFile::Open(StoriesPath());
  ASSERT_TRUE(file.ok()) << file.status();
  auto config = ModelConfigFromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  auto weights = LoadModelWeights(**file, *config);
  ASSERT_TRUE(weights.ok()) << weights.status();
  const BackendOptions options{.device = device, .num_threads = 2,
                               .kv = {.num_blocks = 8, .block_size = 16, .type = KvCacheType::kF16}};
  auto created = CreateBackend(options, *config, *weights, file->get());
  ASSERT_TRUE(created.ok()) << created.status();
  Backend& backend = **created;
  ASSERT_TRUE(backend.AllocateHostKv(3).ok());
  const int vocab = config->vocab_size;
  std::vector<int32_t> a, b;
  for (int i = 0; i < 20; ++i) a.push_back(1 + (i * 37) % (vocab - 1));
  for (int i = 0; i < 16; ++i) b.push_back(1 + (i * 53 + 11) % (vocab - 1));
  const std::vector<int32_t> next = {7};

  SeqLogits(backend, a, 0, {0, 1}, vocab);
  const std::vector<float> want_a = SeqLogits(backend, next, 20, {0, 1}, vocab);
  using Dir = KvBlockCopy::Direction;
  const std::vector<KvBlockCopy> offload_a = {{Dir::kToHost, 0, 0}, {Dir::kToHost, 1, 1}};
  backend.CopyKvBlocks(offload_a);
  SeqLogits(backend, b, 0, {0, 1}, vocab);  // overwrites A's blocks (B's first block is 0)
  const std::vector<float> want_b = SeqLogits(backend, next, 16, {0, 1}, vocab);
  const std::vector<KvBlockCopy> mixed = {
      {Dir::kToHost, 0, 2}, {Dir::kToDevice, 0, 0}, {Dir::kToDevice, 3, 1}, {Dir::kToDevice, 4, 2}};
  backend.CopyKvBlocks(mixed);
  const std::vector<float> got_a = SeqLogits(backend, next, 20, {0, 3}, vocab);
  const std::vector<float> got_b = SeqLogits(backend, next, 16, {4, 5}, vocab);
  int a_diffs = 0, b_diffs = 0;
  for (int v = 0; v < vocab; ++v) {
    a_diffs += got_a[v] != want_a[v];
    b_diffs += got_b[v] != want_b[v];
  }
  EXPECT_EQ(a_diffs, 0) << "of " << vocab << " logits differ after A's blocks came back";
  EXPECT_EQ(b_diffs, 0) << "of " << vocab << " logits differ after B's block came back";
}

// A session whose blocks were pushed out of a small KV cache by other sessions: with a host
// tier its next turn restores them (the engine's stats say so, and its prompt counts as cached)
// and gets the greedy tokens an engine with room for everything gives; without the tier the
// same turn is recomputed, with the same tokens.
inline void ExpectRestoredTurnMatches(const std::string& device) {
  constexpr int kBlocks = 8;  // stories260K's whole context (128 tokens)
  auto make = [&](int64_t kv_bytes, int64_t host_bytes) {
    EngineOptions options;
    options.model_path = StoriesPath();
    options.device = device;
    options.num_threads = 2;
    options.kv_cache_bytes = kv_bytes;
    options.host_kv_cache_bytes = host_bytes;
    auto engine = Engine::Create(options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? std::move(*engine) : nullptr;
  };
  auto roomy = make(8ll << 20, 0);
  ASSERT_NE(roomy, nullptr);
  auto file = GgufFile::Open(StoriesPath());
  ASSERT_TRUE(file.ok()) << file.status();
  auto config = ModelConfigFromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  const int64_t block_bytes = KvBlockBytes(*config, KvCacheSpec{.block_size = 16, .type = KvCacheType::kF16});
  auto tiered = make(kBlocks * block_bytes, 64 * block_bytes);
  auto bare = make(kBlocks * block_bytes, 0);
  ASSERT_NE(tiered, nullptr);
  ASSERT_NE(bare, nullptr);
  ASSERT_EQ(tiered->Stats().kv_blocks_total, kBlocks);
  EXPECT_EQ(tiered->Stats().host_kv_blocks_total, 64);
  EXPECT_EQ(bare->Stats().host_kv_blocks_total, 0);

  const int vocab = roomy->model_info().vocab_size;
  auto tokens = [&](int seed, int n) {
    std::vector<TokenId> t = {1};  // BOS
    for (int i = 1; i < n; ++i) t.push_back(3 + (i * 97 + seed * 31) % (vocab - 3));
    return t;
  };
  auto run = [](Engine& engine, const std::vector<TokenId>& prompt, int max_tokens) {
    GreedyRun r = SubmitGreedy(engine, prompt, max_tokens);
    r.sink->Wait();
    EXPECT_TRUE(r.sink->status().ok()) << r.sink->status();
    return std::make_pair(r.sink->tokens(), r.sink->completion().usage.cached_prompt_tokens);
  };
  const std::vector<TokenId> turn1 = tokens(1, 40);
  const auto [reply1, unused1] = run(*roomy, turn1, 12);
  std::vector<TokenId> turn2 = turn1;
  turn2.insert(turn2.end(), reply1.begin(), reply1.end());
  const std::vector<TokenId> more = tokens(2, 17);
  turn2.insert(turn2.end(), more.begin() + 1, more.end());  // 40 + 12 + 16 = 68 tokens
  const auto [want2, unused2] = run(*roomy, turn2, 12);

  std::vector<std::pair<std::vector<TokenId>, int>> got2;  // tiered, bare
  for (Engine* engine : {tiered.get(), bare.get()}) {
    EXPECT_EQ(run(*engine, turn1, 12).first, reply1);
    // Two other sessions, each filling the cache: the first session's blocks are evicted.
    for (int other = 0; other < 2; ++other) run(*engine, tokens(10 + other, kBlocks * 16 - 8), 4);
    got2.push_back(run(*engine, turn2, 12));
  }
  EXPECT_EQ(got2[0].first, want2) << "restored from the host tier";
  EXPECT_EQ(got2[1].first, want2) << "recomputed";
  const EngineStats stats = tiered->Stats();
  EXPECT_GT(stats.kv_offloaded_blocks_total, 0);
  EXPECT_GT(stats.kv_restored_blocks_total, 0);
  EXPECT_EQ(stats.kv_offloaded_bytes_total, stats.kv_offloaded_blocks_total * block_bytes);
  EXPECT_EQ(stats.kv_restored_bytes_total, stats.kv_restored_blocks_total * block_bytes);
  EXPECT_GT(stats.host_kv_blocks_used, 0);
  EXPECT_LE(stats.host_kv_blocks_used, 64);
  // Turn 1's prompt and reply, in full blocks, came back from the host: they count as cached.
  const int turn1_full_blocks = static_cast<int>(turn1.size() + reply1.size() - 1) / 16;
  EXPECT_GE(got2[0].second, turn1_full_blocks * 16);
  EXPECT_EQ(stats.prefix_cache_host_hits_total, stats.kv_restored_blocks_total * 16);
  EXPECT_EQ(got2[1].second, 0) << "without the tier, nothing of turn 1 survived";
  const EngineStats bare_stats = bare->Stats();
  EXPECT_EQ(bare_stats.kv_offloaded_blocks_total, 0);
  EXPECT_EQ(bare_stats.kv_restored_blocks_total, 0);
  EXPECT_EQ(stats.kv_blocks_used, 0);
}

}  // namespace troupe::testing
