#include "engine/embedding/bert_embedder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/assertions.h"
#include "tests/testing/minilm.h"

namespace troupe {
namespace {

// Agreement with sentence-transformers (float32 PyTorch) per the task: the C++ path sums in a
// different order and uses polynomial exp/erf, so it matches to ~1e-6, well inside these.
constexpr double kMinCosine = 0.9999;
constexpr double kMaxAbsDiff = 1e-4;

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}
double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  return Dot(a, b) / std::sqrt(Dot(a, a) * Dot(b, b));
}
double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// One embedder for the whole suite: loading converts ~90 MB of weights.
class BertEmbedderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::MiniLmPresent()) return;
    auto loaded = BertEmbedder::Load(testing::MiniLmDir());
    if (loaded.ok())
      embedder_ = std::move(loaded).value().release();
    else
      load_error_ = new std::string(loaded.status().ToString());
    golden_ = new nlohmann::json(testing::LoadMiniLmGolden());
  }

  void SetUp() override {
    ASSERT_TRUE(testing::MiniLmPresent());
    ASSERT_NE(embedder_, nullptr) << *load_error_;
    ASSERT_TRUE(golden_->is_object()) << "tests/testdata/embedding/minilm_golden.json unreadable";
  }

  static std::vector<float> MustEmbed(const std::string& text) {
    auto e = embedder_->Embed(text);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : std::vector<float>();
  }

  static const BertEmbedder* embedder_;
  static const std::string* load_error_;
  static const nlohmann::json* golden_;
};

const BertEmbedder* BertEmbedderTest::embedder_ = nullptr;
const std::string* BertEmbedderTest::load_error_ = nullptr;
const nlohmann::json* BertEmbedderTest::golden_ = nullptr;

TEST_F(BertEmbedderTest, ReadsMiniLmConfig) {
  EXPECT_EQ(embedder_->dim(), 384);
  const BertConfig& c = embedder_->config();
  EXPECT_EQ(c.num_layers, 6);
  EXPECT_EQ(c.num_heads, 12);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.max_seq_length, 256);
  EXPECT_TRUE(c.normalize);
  EXPECT_FLOAT_EQ(c.layer_norm_eps, 1e-12f);
}

TEST_F(BertEmbedderTest, MatchesSentenceTransformersOnGoldenTexts) {
  ASSERT_GE((*golden_)["cases"].size(), 20u);
  double worst_cosine = 1.0;
  double worst_diff = 0.0;
  for (const auto& c : (*golden_)["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<float> want = c["embedding"].get<std::vector<float>>();
    const std::vector<float> got = MustEmbed(text);
    ASSERT_EQ(got.size(), want.size()) << text;
    EXPECT_GE(Cosine(got, want), kMinCosine) << "text: " << text;
    EXPECT_LE(MaxAbsDiff(got, want), kMaxAbsDiff) << "text: " << text;
    EXPECT_NEAR(std::sqrt(Dot(got, got)), 1.0, 1e-5) << "text: " << text;
    worst_cosine = std::min(worst_cosine, Cosine(got, want));
    worst_diff = std::max(worst_diff, MaxAbsDiff(got, want));
  }
  std::printf("worst cosine %.9f, max |diff| %.2e over %zu texts\n", worst_cosine, worst_diff,
              (*golden_)["cases"].size());
}

TEST_F(BertEmbedderTest, BatchMatchesGolden) {
  std::vector<std::string> texts;
  for (const auto& c : (*golden_)["cases"]) texts.push_back(c["text"].get<std::string>());
  const auto batch = embedder_->EmbedBatch(texts);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> want = (*golden_)["cases"][i]["embedding"].get<std::vector<float>>();
    EXPECT_GE(Cosine((*batch)[i], want), kMinCosine) << "text: " << texts[i];
    EXPECT_LE(MaxAbsDiff((*batch)[i], want), kMaxAbsDiff) << "text: " << texts[i];
  }
  EXPECT_TRUE(embedder_->EmbedBatch({}).value().empty());
}

TEST_F(BertEmbedderTest, SimilarSentencesAreCloserThanUnrelatedOnes) {
  const auto harbor = MustEmbed("I remember the day we met at the harbor; it was raining.");
  const auto docks = MustEmbed("We first met on a rainy day down by the docks.");
  const auto stocks = MustEmbed("The stock market crashed after the quarterly earnings report.");
  const auto cat = MustEmbed("My cat loves to sleep in the warm afternoon sun.");
  const auto kitten = MustEmbed("The kitten naps in a sunny spot by the window.");
  EXPECT_GT(Cosine(harbor, docks), Cosine(harbor, stocks) + 0.2);
  EXPECT_GT(Cosine(cat, kitten), Cosine(cat, stocks) + 0.2);
  EXPECT_GT(Cosine(cat, kitten), Cosine(cat, harbor));
}

TEST_F(BertEmbedderTest, TruncatesLongTextsToMaxSeqLength) {
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "the lighthouse keeper wrote in his notebook. ";
  EXPECT_EQ(embedder_->tokenizer().Encode(long_text).size(), 256u);
  // Only the first 256 tokens count: appending more text changes nothing.
  const auto a = MustEmbed(long_text);
  const auto b = MustEmbed(long_text + " Completely different words about volcanoes.");
  EXPECT_EQ(a, b);
}

TEST_F(BertEmbedderTest, ConcurrentCallsAgreeWithSerialOnes) {
  std::vector<std::string> texts;  // the short ones, to keep the test quick
  for (const auto& c : (*golden_)["cases"]) {
    if (c["ids"].size() <= 20) texts.push_back(c["text"].get<std::string>());
  }
  std::vector<std::vector<float>> serial;
  for (const std::string& t : texts) serial.push_back(MustEmbed(t));
  constexpr int kThreads = 3;
  std::vector<std::vector<std::vector<float>>> results(kThreads);
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      for (size_t i = 0; i < texts.size(); ++i) {
        const size_t j = (i + k * 7) % texts.size();  // different orders per thread
        results[k].resize(texts.size());
        results[k][j] = embedder_->Embed(texts[j]).value();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int k = 0; k < kThreads; ++k) EXPECT_EQ(results[k], serial) << "thread " << k;
}

TEST_F(BertEmbedderTest, EmbedTokenIdsValidatesIds) {
  const std::vector<int32_t> ids = embedder_->tokenizer().Encode("Hello world");
  const auto direct = embedder_->EmbedTokenIds(ids);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(*direct, MustEmbed("Hello world"));
  EXPECT_EQ(embedder_->EmbedTokenIds({}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> bad = {101, 30522, 102};
  EXPECT_EQ(embedder_->EmbedTokenIds(bad).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> too_long(513, 1000);
  EXPECT_EQ(embedder_->EmbedTokenIds(too_long).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> max_len(512, 1000);  // positions go up to 512 without truncation
  EXPECT_TRUE(embedder_->EmbedTokenIds(max_len).ok());
}

TEST(BertEmbedderLoadTest, MissingDirectoryIsNotFound) {
  const auto e = BertEmbedder::Load("/nonexistent/model");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(testing::Contains(e.status().message(), "/nonexistent/model/config.json"));
}

}  // namespace
}  // namespace troupe
