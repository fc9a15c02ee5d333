// DRY: DryPenalties against a plain quadratic reference on random windows, hand-worked cases
// (breakers, caps, the allowed length), the breaker tokens of the default model's vocabulary,
// DryBreakerCache, and DRY inside the Sampler (greedy turned away from a repeat, row restored).
#include "engine/sampler/dry.h"

#include <cfloat>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/formats/gguf.h"
#include "engine/sampler/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

// The definition, spelled out: for every earlier position i, the longest run ending at i that
// equals the run ending the window and holds no breaker; the token after i gets the longest.
std::map<TokenId, float> ReferenceDry(const std::vector<TokenId>& w, const BreakerTokens& breakers,
                                      const SamplingParams& p) {
  const auto is_breaker = [&](TokenId id) {
    return id >= 0 && static_cast<size_t>(id) < breakers.size() && breakers[id] != 0;
  };
  std::map<TokenId, int> longest;
  const int n = static_cast<int>(w.size());
  for (int i = 0; i + 1 < n; ++i) {
    int length = 0;
    while (length <= i && w[i - length] == w[n - 1 - length] && !is_breaker(w[n - 1 - length])) {
      ++length;
    }
    if (length >= p.dry_allowed_length) {
      longest[w[i + 1]] = std::max(longest[w[i + 1]], length);
    }
  }
  std::map<TokenId, float> out;
  for (const auto& [id, length] : longest) {
    const double penalty =
        p.dry_multiplier * std::pow(static_cast<double>(p.dry_base), length - p.dry_allowed_length);
    out[id] = static_cast<float>(std::min(penalty, static_cast<double>(FLT_MAX)));
  }
  return out;
}

std::map<TokenId, float> Dry(const std::vector<TokenId>& w, const BreakerTokens& breakers,
                             const SamplingParams& p) {
  std::vector<int32_t> scratch;
  std::vector<std::pair<TokenId, float>> penalties;
  DryPenalties(w, &breakers, p, &scratch, &penalties);
  std::map<TokenId, float> out;
  for (const auto& [id, penalty] : penalties) {
    EXPECT_FALSE(out.contains(id)) << "id " << id << " listed twice";
    out[id] = penalty;
  }
  return out;
}

SamplingParams DryParams(float multiplier, float base, int allowed) {
  SamplingParams p;
  p.dry_multiplier = multiplier;
  p.dry_base = base;
  p.dry_allowed_length = allowed;
  return p;
}

TEST(DryTest, MatchesTheQuadraticReferenceOnRandomWindows) {
  std::mt19937 rng(7);
  int penalised_windows = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    // Small alphabets and periodic stretches so that long repeats happen.
    const int alphabet = 2 + static_cast<int>(rng() % 6);
    const int n = 1 + static_cast<int>(rng() % 80);
    std::vector<TokenId> w;
    while (static_cast<int>(w.size()) < n) {
      if (rng() % 4 == 0 && w.size() > 3) {
        const size_t from = rng() % (w.size() - 1);
        const size_t len = 1 + rng() % (w.size() - from);
        for (size_t k = 0; k < len && static_cast<int>(w.size()) < n; ++k) w.push_back(w[from + k]);
      } else {
        w.push_back(static_cast<TokenId>(rng() % alphabet));
      }
    }
    BreakerTokens breakers(alphabet, 0);
    if (rng() % 2 == 0) breakers[rng() % alphabet] = 1;
    const SamplingParams p = DryParams(0.1f + static_cast<float>(rng() % 30) / 10.0f,
                                       1.0f + static_cast<float>(rng() % 20) / 10.0f,
                                       1 + static_cast<int>(rng() % 4));
    const std::map<TokenId, float> want = ReferenceDry(w, breakers, p);
    const std::map<TokenId, float> got = Dry(w, breakers, p);
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
    for (const auto& [id, penalty] : want) {
      ASSERT_TRUE(got.contains(id)) << "trial " << trial << " id " << id;
      EXPECT_NEAR(got.at(id), penalty, 1e-6 * penalty) << "trial " << trial << " id " << id;
    }
    penalised_windows += want.empty() ? 0 : 1;
  }
  EXPECT_GT(penalised_windows, 1000);  // the trials did exercise the penalty
}

TEST(DryTest, PenalisesTheTokenThatContinuesARepeat) {
  // a b c d ... a b c: "d" would make the repeat of "a b c" four long.
  const std::vector<TokenId> w = {1, 2, 3, 4, 9, 1, 2, 3};
  const std::map<TokenId, float> got = Dry(w, BreakerTokens(10, 0), DryParams(0.8f, 1.75f, 2));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FLOAT_EQ(got.at(4), 0.8f * 1.75f);  // length 3, one past the allowed 2
}

TEST(DryTest, RepeatsUpToTheAllowedLengthAreFree) {
  const std::vector<TokenId> w = {1, 2, 4, 9, 1, 2};
  EXPECT_TRUE(Dry(w, BreakerTokens(10, 0), DryParams(0.8f, 1.75f, 3)).empty());
  const std::map<TokenId, float> got = Dry(w, BreakerTokens(10, 0), DryParams(0.8f, 1.75f, 2));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FLOAT_EQ(got.at(4), 0.8f);  // exactly the allowed length: the multiplier alone
}

TEST(DryTest, ABreakerEndsTheRepeat) {
  // a : b c a : b c, with ':' (id 5) a breaker: only "b c" counts, not "a : b c".
  const std::vector<TokenId> w = {1, 5, 2, 3, 1, 5, 2, 3};
  BreakerTokens breakers(10, 0);
  std::map<TokenId, float> got = Dry(w, breakers, DryParams(1.0f, 2.0f, 2));
  EXPECT_FLOAT_EQ(got.at(1), 4.0f);  // no breakers: length 4, 2^2
  breakers[5] = 1;
  got = Dry(w, breakers, DryParams(1.0f, 2.0f, 2));
  EXPECT_FLOAT_EQ(got.at(1), 1.0f);  // length 2
  // A window that ends on a breaker has nothing to continue.
  EXPECT_TRUE(Dry({1, 2, 5, 1, 2, 5}, breakers, DryParams(1.0f, 2.0f, 1)).empty());
}

TEST(DryTest, HugeRepeatsCapTheirPenaltyAtFloatMax) {
  const std::vector<TokenId> w(5000, 7);  // one token over and over
  const std::map<TokenId, float> got = Dry(w, BreakerTokens(10, 0), DryParams(100.0f, 10.0f, 1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.at(7), FLT_MAX);
  const std::map<TokenId, float> flat = Dry(w, BreakerTokens(10, 0), DryParams(2.0f, 1.0f, 1));
  EXPECT_EQ(flat.at(7), 2.0f);  // base 1: the multiplier, whatever the length
}

std::unique_ptr<Tokenizer> SmolLmTokenizer() {
  auto file = GgufFile::Open(testing::SmolLmPath());
  EXPECT_TRUE(file.ok()) << file.status();
  auto tok = Tokenizer::FromGguf(**file);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return std::move(*tok);
}

TEST(DryTest, BreakerTokensAreTheIdsWhoseBytesHoldABreaker) {
  const std::unique_ptr<Tokenizer> tok = SmolLmTokenizer();
  const std::vector<std::string> breakers = {"\n", ":", "\"", "*"};
  const BreakerTokens flags = FindBreakerTokens(*tok, breakers);
  ASSERT_EQ(flags.size(), static_cast<size_t>(tok->vocab_size()));
  int flagged = 0;
  for (int id = 0; id < tok->vocab_size(); ++id) {
    const std::string bytes = tok->TokenBytes(id);
    const bool want = bytes.find_first_of("\n:\"*") != std::string::npos;
    ASSERT_EQ(flags[id] != 0, want) << "id " << id << " '" << bytes << "'";
    flagged += want ? 1 : 0;
  }
  EXPECT_GT(flagged, 20);
  // The encodings of the breakers themselves are breakers.
  for (const std::string& b : breakers) {
    for (TokenId id : tok->Encode(b, false, false)) EXPECT_NE(flags[id], 0) << b;
  }
  EXPECT_EQ(FindBreakerTokens(*tok, {}), BreakerTokens(tok->vocab_size(), 0));
}

TEST(DryTest, CacheKeepsOneScanPerListAndForgetsTheLeastRecent) {
  const std::unique_ptr<Tokenizer> tok = SmolLmTokenizer();
  DryBreakerCache cache(*tok);
  const auto first = cache.Get({"\n"});
  EXPECT_EQ(cache.Get({"\n"}), first);        // the same scan
  EXPECT_NE(cache.Get({"\n", ":"}), first);   // another list
  for (size_t i = 0; i < DryBreakerCache::kCapacity; ++i) {
    cache.Get({"x" + std::to_string(i)});
    cache.Get({"\n"});  // keeps this one recent
  }
  EXPECT_EQ(cache.Get({"\n"}), first);
  const auto newline_colon = cache.Get({"\n", ":"});  // forgotten: scanned again
  EXPECT_EQ(*newline_colon, FindBreakerTokens(*tok, std::vector<std::string>{"\n", ":"}));
}

TEST(DryTest, SamplerTurnsGreedyAwayFromARepeatAndRestoresTheRow) {
  // The prompt repeats 1 2 3 4 then 1 2 3: token 4 leads by 0.5, DRY takes 0.8 * 1.75 from it.
  const std::vector<TokenId> prompt = {1, 2, 3, 4, 0, 1, 2, 3};
  std::vector<float> logits(8, 0.0f);
  logits[4] = 2.0f;
  logits[5] = 1.5f;
  const std::vector<float> before = logits;
  SamplingParams p = DryParams(0.8f, 1.75f, 2);
  p.temperature = 0.0f;
  Sampler sampler(p, prompt, std::make_shared<const BreakerTokens>(8, 0));
  EXPECT_EQ(sampler.Sample(logits).id, 5);
  EXPECT_EQ(logits, before);
  // The same with DRY off, and read-only rows.
  p.dry_multiplier = 0.0f;
  Sampler plain(p, prompt);
  EXPECT_EQ(plain.SampleReadOnly(logits).id, 4);
  p.dry_multiplier = 0.8f;
  Sampler read_only(p, prompt, nullptr);
  EXPECT_EQ(read_only.SampleReadOnly(logits).id, 5);
  EXPECT_EQ(logits, before);
}

TEST(DryTest, SamplerSeesTheGeneratedTokensAndOnlyItsWindow) {
  SamplingParams p = DryParams(3.0f, 1.75f, 2);
  p.temperature = 0.0f;
  std::vector<float> logits(8, 0.0f);
  logits[3] = 1.0f;
  // Prompt 3 1 2, then the sampler produces 3 (leads) and Accept adds 1 2: now 3 would repeat.
  Sampler sampler(p, std::vector<TokenId>{3, 1, 2});
  EXPECT_EQ(sampler.Sample(logits).id, 3);
  sampler.Accept(1);
  sampler.Accept(2);
  EXPECT_NE(sampler.Sample(logits).id, 3);
  // A window of 3 tokens cannot see the earlier "1 2" followed by 3.
  p.dry_penalty_last_n = 3;
  Sampler windowed(p, std::vector<TokenId>{3, 1, 2, 3, 1, 2});
  EXPECT_EQ(windowed.Sample(logits).id, 3);
  // Both windows together: repetition over 2 tokens still keeps DRY's 6-token window.
  p.dry_penalty_last_n = -1;
  p.penalty_last_n = 2;
  p.repetition_penalty = 1.1f;
  Sampler both(p, std::vector<TokenId>{3, 1, 2, 3, 1, 2});
  EXPECT_NE(both.Sample(logits).id, 3);
}

}  // namespace
}  // namespace troupe
