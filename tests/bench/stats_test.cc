// troupe-bench's report: vLLM's metric definitions on hand-made request records.
#include "bench/load/stats.h"

#include "gtest/gtest.h"

namespace troupe::load {
namespace {

// A request sent at `start` whose messages arrive at `times` with `counts` tokens each.
RequestRecord Record(int turn, double start, std::vector<double> times, std::vector<int> counts,
                     int prompt, int cached) {
  RequestRecord r;
  r.turn = turn;
  r.start = start;
  r.token_times = std::move(times);
  r.token_counts = std::move(counts);
  r.end = r.token_times.empty() ? start : r.token_times.back();
  r.prompt_tokens = prompt;
  r.cached_prompt_tokens = cached;
  for (int c : r.token_counts) r.completion_tokens += c;
  r.ok = true;
  return r;
}

TEST(StatsTest, PercentilesInterpolateLinearly) {
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 100), 4);
  EXPECT_DOUBLE_EQ(Percentile({10, 20}, 99), 19.9);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0);
  const Distribution d = Summarize({3, 1, 2});
  EXPECT_EQ(d.count, 3);
  EXPECT_DOUBLE_EQ(d.mean, 2);
  EXPECT_DOUBLE_EQ(d.p50, 2);
  EXPECT_DOUBLE_EQ(d.max, 3);
}

TEST(StatsTest, TtftTpotItlAndE2elFollowVllmDefinitions) {
  // Sent at 1.0 s; tokens at 1.2 (1), 1.3 (2, merged in one message), 1.6 (1): 4 tokens.
  const std::vector<RequestRecord> records = {Record(0, 1.0, {1.2, 1.3, 1.6}, {1, 2, 1}, 100, 0)};
  const Report report = BuildReport(records, 2.0, Slo{});
  const GroupStats& g = report.overall;
  EXPECT_EQ(g.requests, 1);
  EXPECT_NEAR(g.ttft_ms.mean, 200, 1e-9);
  EXPECT_NEAR(g.e2el_ms.mean, 600, 1e-9);
  EXPECT_NEAR(g.tpot_ms.mean, (600.0 - 200.0) / 3, 1e-9);  // (E2EL - TTFT) / (tokens - 1)
  EXPECT_EQ(g.itl_ms.count, 2);                             // one gap per message, not per token
  EXPECT_NEAR(g.itl_ms.max, 300, 1e-9);
  EXPECT_NEAR(report.output_throughput, 2.0, 1e-12);        // 4 tokens / 2 s
  EXPECT_NEAR(report.total_throughput, 52.0, 1e-12);
  ASSERT_EQ(report.output_tokens_per_second.size(), 2u);
  EXPECT_EQ(report.output_tokens_per_second[1], 4);         // all arrived in second [1, 2)
}

TEST(StatsTest, PerTurnCacheHitRateAndFailures) {
  std::vector<RequestRecord> records = {Record(0, 0, {0.5}, {1}, 400, 0),
                                        Record(1, 1, {1.1}, {1}, 500, 480),
                                        Record(1, 1, {1.2}, {1}, 500, 470)};
  RequestRecord failed;
  failed.turn = 1;
  failed.error = "14: unavailable";
  records.push_back(failed);
  const Report report = BuildReport(records, 2.0, Slo{});
  ASSERT_EQ(report.per_turn.size(), 2u);
  EXPECT_EQ(report.per_turn[0].cache_hit_rate, 0.0);
  EXPECT_DOUBLE_EQ(report.per_turn[1].cache_hit_rate, 950.0 / 1000.0);
  EXPECT_EQ(report.per_turn[1].failed, 1);
  EXPECT_EQ(report.later_turns.requests, 2);
  EXPECT_DOUBLE_EQ(report.overall.cache_hit_rate, 950.0 / 1400.0);
  EXPECT_EQ(report.overall.failed, 1);
}

// A long conversation: a turn is warm when the cache served >= 98% of its predecessor's prompt
// and reply (less the reply's last token); folding turns are counted apart.
TEST(StatsTest, LongConversationsCountWarmTurnsAndFolds) {
  const auto turn = [](int conversation, int index, double ttft, int prompt, int cached, int completion,
                       int folded) {
    RequestRecord r = Record(index, 10.0 * index, {10.0 * index + ttft}, {completion}, prompt, cached);
    r.conversation = conversation;
    r.has_prompt_plan = true;
    r.folded_turns = folded;
    r.rendered_in_full = folded > 0;
    return r;
  };
  std::vector<RequestRecord> records = {
      turn(0, 0, 1.0, 500, 0, 33, 0),
      turn(0, 1, 0.2, 800, 532, 33, 0),    // reusable 500 + 32: all of it
      turn(0, 2, 0.3, 1100, 800, 33, 0),   // reusable 832: 800 = 96%, not warm
      turn(0, 3, 5.0, 600, 100, 33, 4),    // a fold
      turn(1, 1, 0.25, 700, 600, 33, 0),   // no turn 0 of its conversation: not counted
  };
  const Report report = BuildReport(records, 40.0, Slo{});
  const LongConversationStats& l = report.long_conversations;
  EXPECT_EQ(l.later_turns, 3);
  EXPECT_EQ(l.folds, 1);
  EXPECT_EQ(l.appended, 2);
  EXPECT_EQ(l.appended_warm, 1);
  EXPECT_DOUBLE_EQ(l.warm_share(), 0.5);
  EXPECT_NEAR(l.reuse_share_mean, (1.0 + 800.0 / 832.0) / 2, 1e-12);
  EXPECT_NEAR(l.ttft_ms.p50, 250, 1e-9);
  EXPECT_NEAR(l.fold_ttft_ms.p50, 5000, 1e-9);
  EXPECT_EQ(l.max_prompt_tokens, 1100);
  const nlohmann::json j = ReportToJson(report);
  EXPECT_EQ(j["long_conversations"]["folds"], 1);
  ASSERT_EQ(j["requests"].size(), 5u);
  EXPECT_EQ(j["requests"][3]["folded_turns"], 4);
  EXPECT_NE(FormatReport(report, Slo{}).find("3 later turns, 1 folded"), std::string::npos);
}

// With a host KV tier, later turns split into those that restored part of their prompt from
// host memory and those that recomputed most of it; each group gets its TTFT.
TEST(StatsTest, LongConversationsSplitRestoredAndRecomputedTurns) {
  const auto turn = [](int conversation, int index, double ttft, int prompt, int cached, int restored) {
    RequestRecord r = Record(index, 10.0 * index, {10.0 * index + ttft}, {33}, prompt, cached);
    r.conversation = conversation;
    r.restored_prompt_tokens = restored;
    return r;
  };
  std::vector<RequestRecord> records = {
      turn(0, 0, 1.0, 500, 0, 0),
      turn(0, 1, 0.2, 800, 528, 512),  // restored from the host tier
      turn(0, 2, 0.9, 1100, 700, 0),   // reusable 832, 700 cached, none restored: recomputed
      turn(0, 3, 0.1, 1400, 1132, 0),  // warm on the device: neither
  };
  const Report report = BuildReport(records, 40.0, Slo{});
  const LongConversationStats& l = report.long_conversations;
  EXPECT_EQ(l.restored, 1);
  EXPECT_EQ(l.recomputed, 1);
  EXPECT_NEAR(l.restored_ttft_ms.p50, 200, 1e-9);
  EXPECT_NEAR(l.recomputed_ttft_ms.p50, 900, 1e-9);
  const nlohmann::json j = ReportToJson(report);
  EXPECT_EQ(j["long_conversations"]["restored"], 1);
  EXPECT_EQ(j["requests"][1]["restored_prompt_tokens"], 512);
  EXPECT_NE(FormatReport(report, Slo{}).find("host KV tier: 1 turns restored"), std::string::npos);
}

TEST(StatsTest, GoodputCountsRequestsMeetingEverySlo) {
  absl::StatusOr<Slo> slo = ParseSlo("ttft:300,e2el:1000");
  ASSERT_TRUE(slo.ok());
  const std::vector<RequestRecord> records = {
      Record(0, 0, {0.2, 0.5}, {1, 1}, 10, 0),   // good
      Record(0, 0, {0.4, 0.5}, {1, 1}, 10, 0),   // TTFT 400 ms
      Record(0, 0, {0.1, 1.5}, {1, 1}, 10, 0)};  // E2EL 1500 ms
  const Report report = BuildReport(records, 4.0, *slo);
  EXPECT_EQ(report.overall.good, 1);
  EXPECT_DOUBLE_EQ(report.goodput, 0.25);
  EXPECT_EQ(ParseSlo("ttft:abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSlo("speed:3").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParseSlo("").ok());
}

TEST(StatsTest, JsonAndTextCarryTheFigures) {
  const Report report = BuildReport({Record(0, 0, {0.25, 0.5}, {1, 1}, 40, 16)}, 1.0, Slo{});
  const nlohmann::json j = ReportToJson(report);
  EXPECT_EQ(j["overall"]["requests"], 1);
  EXPECT_DOUBLE_EQ(j["overall"]["ttft_ms"]["p50"].get<double>(), 250.0);
  EXPECT_DOUBLE_EQ(j["per_turn"][0]["cache_hit_rate"].get<double>(), 0.4);
  const std::string text = FormatReport(report, Slo{});
  EXPECT_NE(text.find("output 2.0 tok/s"), std::string::npos) << text;
  EXPECT_NE(text.find("40.0%"), std::string::npos) << text;
}

}  // namespace
}  // namespace troupe::load
