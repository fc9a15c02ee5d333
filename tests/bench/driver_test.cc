// troupe-bench's driver against a real troupe server (the default model, SmolLM2) on a real
// socket.
#include "bench/load/driver.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/model_paths.h"

namespace troupe::load {
namespace {

const std::string kSmolLm = testing::SmolLmPath();

class DriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions engine_options;
    engine_options.model_path = kSmolLm;
    engine_options.num_threads = 2;
    engine_options.kv_cache_bytes = 32ll << 20;  // 1,456 tokens of f16 KV
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(engine_options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.metrics.port = -1;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(*std::move(engine), options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  DriverOptions Options() const {
    DriverOptions options;
    options.target = absl::StrCat("127.0.0.1:", server_->port());
    options.default_max_tokens = 6;
    return options;
  }
  static Server* server_;
};
Server* DriverTest::server_ = nullptr;

std::vector<Conversation> Small(int conversations, int turns) {
  return MakeSyntheticConversations({.num_conversations = conversations, .num_characters = 1,
                                     .num_turns = turns, .character_words = 60, .user_words = 8,
                                     .max_tokens = 6, .seed = 7});
}

TEST_F(DriverTest, MultiTurnRunsEveryTurnAndLaterTurnsHitTheCache) {
  ASSERT_NE(server_, nullptr);
  DriverOptions options = Options();
  options.concurrency = 2;
  int progress_calls = 0;
  Progress last;
  options.on_progress = [&](const Progress& p) {
    ++progress_calls;
    last = p;
  };
  absl::StatusOr<LoadResult> result = RunLoad(options, Small(3, 3));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->records.size(), 9u);
  for (const RequestRecord& r : result->records) {
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.completion_tokens, 6);  // ignore_eos: exact lengths
    EXPECT_FALSE(r.token_times.empty());
    EXPECT_GE(r.token_times.front(), r.start);
    EXPECT_GE(r.end, r.token_times.back());
  }
  EXPECT_EQ(last.done, 9);
  EXPECT_EQ(last.total, 9);
  EXPECT_EQ(last.output_tokens, 54);
  EXPECT_GE(progress_calls, 1);
  const Report report = BuildReport(result->records, result->duration_s, Slo{});
  ASSERT_EQ(report.per_turn.size(), 3u);
  // Turn 2 extends turn 1's prompt and reply; the character prompt is shared by all.
  EXPECT_GT(report.per_turn[1].cache_hit_rate, 0.5);
  EXPECT_GT(report.per_turn[2].cache_hit_rate, 0.5);
  EXPECT_EQ(server_->sessions().size(), 0);  // every session deleted at the end
}

TEST_F(DriverTest, OpenLoopSpreadsArrivals) {
  ASSERT_NE(server_, nullptr);
  DriverOptions options = Options();
  options.mode = Mode::kOpenLoop;
  options.request_rate = 20.0;
  options.concurrency = 0;
  absl::StatusOr<LoadResult> result = RunLoad(options, Small(6, 1));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->records.size(), 6u);
  double latest_start = 0;
  for (const RequestRecord& r : result->records) {
    EXPECT_TRUE(r.ok) << r.error;
    latest_start = std::max(latest_start, r.start);
  }
  EXPECT_GT(latest_start, 0.05);  // 5 gaps of mean 50 ms: not all at t = 0
}

TEST_F(DriverTest, UnreachableServerIsUnavailable) {
  DriverOptions options;
  options.target = "127.0.0.1:1";
  options.connect_timeout_s = 0.5;
  EXPECT_EQ(RunLoad(options, Small(1, 1)).status().code(), absl::StatusCode::kUnavailable);
  options.mode = Mode::kOpenLoop;
  options.request_rate = 0;
  EXPECT_EQ(RunLoad(options, Small(1, 1)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DriverTest, FailedTurnsAreRecordedNotFatal) {
  ASSERT_NE(server_, nullptr);
  // A turn longer than the context the KV budget allows fails with INVALID_ARGUMENT; the run
  // goes on.
  std::vector<Conversation> conversations = Small(2, 1);
  conversations[0].turns[0].user.clear();
  for (int i = 0; i < 3000; ++i) conversations[0].turns[0].user += "word ";
  absl::StatusOr<LoadResult> result = RunLoad(Options(), conversations);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->records.size(), 2u);
  int failed = 0;
  for (const RequestRecord& r : result->records) {
    if (!r.ok) {
      ++failed;
      EXPECT_NE(r.error.find("3: "), std::string::npos) << r.error;  // INVALID_ARGUMENT
    }
  }
  EXPECT_EQ(failed, 1);
}

}  // namespace
}  // namespace troupe::load
