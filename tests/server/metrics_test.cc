#include "server/metrics.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/http_get.h"

namespace troupe {
namespace {

// Value of the sample line that starts with `series` followed by a space; -1 when absent.
double SampleValue(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, absl::StrCat(series, " "))) {
      double value = 0;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(series.size() + 1), &value)) << line;
      return value;
    }
  }
  return -1;
}

MetricsSources FakeSources() {
  MetricsSources sources;
  sources.engine_stats = [] {
    EngineStats stats;
    stats.num_running = 3;
    stats.num_waiting = 5;
    stats.kv_blocks_used = 25;
    stats.kv_blocks_total = 100;
    stats.prompt_tokens_total = 1234;
    stats.generation_tokens_total = 567;
    stats.num_preemptions = 2;
    stats.prefix_cache_queries_total = 1000;
    stats.prefix_cache_hits_total = 960;
    stats.prefix_cache_host_hits_total = 320;
    stats.kv_offloaded_blocks_total = 30;
    stats.kv_restored_blocks_total = 20;
    stats.kv_offloaded_bytes_total = 30 * 4096;
    stats.kv_restored_bytes_total = 20 * 4096;
    stats.host_kv_blocks_used = 28;
    stats.host_kv_blocks_total = 64;
    AtomicHistogram steps({0.01, 0.1});
    steps.Observe(0.005);
    steps.Observe(0.05);
    steps.Observe(0.5);
    stats.step_seconds = steps.Snapshot();
    return stats;
  };
  sources.num_sessions = [] { return 7; };
  sources.memory_writes_pending = [] { return int64_t{4}; };
  sources.memory_ratings_pending = [] { return int64_t{7}; };
  sources.memory_rating_oldest_seconds = [] { return 2.5; };
  return sources;
}

TEST(MetricsTest, PullsEngineStatsOnEveryScrape) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics =
      Metrics::Create(MetricsOptions{.port = -1}, FakeSources());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ((*metrics)->port(), -1);
  const std::string text = (*metrics)->Serialize();
  EXPECT_EQ(SampleValue(text, "troupe:num_requests_running"), 3);
  EXPECT_EQ(SampleValue(text, "troupe:num_requests_waiting"), 5);
  EXPECT_EQ(SampleValue(text, "troupe:kv_blocks_used"), 25);
  EXPECT_EQ(SampleValue(text, "troupe:kv_blocks_total"), 100);
  EXPECT_DOUBLE_EQ(SampleValue(text, "troupe:kv_cache_usage_perc"), 0.25);
  EXPECT_EQ(SampleValue(text, "troupe:prompt_tokens_total"), 1234);
  EXPECT_EQ(SampleValue(text, "troupe:generation_tokens_total"), 567);
  EXPECT_EQ(SampleValue(text, "troupe:sessions_active"), 7);
  EXPECT_EQ(SampleValue(text, "troupe:memory_writes_pending"), 4);
  EXPECT_EQ(SampleValue(text, "troupe:memory_ratings_pending"), 7);
  EXPECT_EQ(SampleValue(text, "troupe:memory_rating_oldest_seconds"), 2.5);
  EXPECT_EQ(SampleValue(text, "troupe:num_preemptions_total"), 2);
  EXPECT_EQ(SampleValue(text, "troupe:prefix_cache_queries_total"), 1000);
  EXPECT_EQ(SampleValue(text, "troupe:prefix_cache_hits_total"), 960);
  EXPECT_EQ(SampleValue(text, "troupe:prefix_cache_host_hits_total"), 320);
  EXPECT_EQ(SampleValue(text, "troupe:kv_offloaded_blocks_total"), 30);
  EXPECT_EQ(SampleValue(text, "troupe:kv_restored_blocks_total"), 20);
  EXPECT_EQ(SampleValue(text, "troupe:kv_offloaded_bytes_total"), 30 * 4096);
  EXPECT_EQ(SampleValue(text, "troupe:kv_restored_bytes_total"), 20 * 4096);
  EXPECT_EQ(SampleValue(text, "troupe:host_kv_blocks_used"), 28);
  EXPECT_EQ(SampleValue(text, "troupe:host_kv_blocks_total"), 64);
  // Buckets are cumulative: 1 step <= 10 ms, 2 <= 100 ms, 3 in all.
  EXPECT_EQ(SampleValue(text, "troupe:engine_step_duration_seconds_bucket{le=\"0.01\"}"), 1);
  EXPECT_EQ(SampleValue(text, "troupe:engine_step_duration_seconds_bucket{le=\"0.1\"}"), 2);
  EXPECT_EQ(SampleValue(text, "troupe:engine_step_duration_seconds_bucket{le=\"+Inf\"}"), 3);
  EXPECT_EQ(SampleValue(text, "troupe:engine_step_duration_seconds_count"), 3);
  EXPECT_DOUBLE_EQ(SampleValue(text, "troupe:engine_step_duration_seconds_sum"), 0.555);
  EXPECT_EQ(SampleValue(text, "troupe:iteration_tokens_total_count"), 0);
}

TEST(MetricsTest, RecordsSuccessLatencyAndRequestCodes) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics =
      Metrics::Create(MetricsOptions{.port = -1}, MetricsSources{});
  ASSERT_TRUE(metrics.ok());
  Completion completion;
  completion.finish_reason = FinishReason::kEos;
  completion.usage = Usage{.prompt_tokens = 10, .cached_prompt_tokens = 4, .completion_tokens = 3};
  completion.time_to_first_token = absl::Milliseconds(30);
  completion.e2e_latency = absl::Milliseconds(700);
  (*metrics)->ObserveSuccess(FinishReason::kEos, completion);
  (*metrics)->ObserveInterTokenGap(absl::Milliseconds(40), 2);
  (*metrics)->CountRequest(absl::StatusCode::kOk);
  (*metrics)->CountRequest(absl::StatusCode::kInvalidArgument);
  const std::string text = (*metrics)->Serialize();
  EXPECT_EQ(SampleValue(text, "troupe:request_success_total{finished_reason=\"eos\"}"), 1);
  EXPECT_EQ(SampleValue(text, "troupe:request_success_total{finished_reason=\"stop\"}"), 0);
  EXPECT_EQ(SampleValue(text, "troupe:time_to_first_token_seconds_count"), 1);
  EXPECT_DOUBLE_EQ(SampleValue(text, "troupe:time_to_first_token_seconds_sum"), 0.03);
  // 30 ms lands in the (0.02, 0.04] bucket: le="0.02" has 0, le="0.04" has 1.
  EXPECT_EQ(SampleValue(text, "troupe:time_to_first_token_seconds_bucket{le=\"0.02\"}"), 0);
  EXPECT_EQ(SampleValue(text, "troupe:time_to_first_token_seconds_bucket{le=\"0.04\"}"), 1);
  EXPECT_EQ(SampleValue(text, "troupe:inter_token_latency_seconds_count"), 2);
  EXPECT_DOUBLE_EQ(SampleValue(text, "troupe:inter_token_latency_seconds_sum"), 0.04);
  EXPECT_EQ(SampleValue(text, "troupe:e2e_request_latency_seconds_count"), 1);
  EXPECT_EQ(SampleValue(text, "troupe:requests_total{code=\"OK\"}"), 1);
  EXPECT_EQ(SampleValue(text, "troupe:requests_total{code=\"INVALID_ARGUMENT\"}"), 1);
}

TEST(MetricsTest, CountsRejectionsByReasonWithATenantLabelOnlyForKnownKeys) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics =
      Metrics::Create(MetricsOptions{.port = -1}, MetricsSources{});
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  (*metrics)->CountRejection("unauthenticated", "");
  (*metrics)->CountRejection("unauthenticated", "");
  (*metrics)->CountRejection("rpm", "acme");
  (*metrics)->CountRejection("max_streams", "beta");
  const std::string text = (*metrics)->Serialize();
  EXPECT_EQ(SampleValue(text, "troupe:rejected_requests_total{reason=\"unauthenticated\"}"), 2);
  EXPECT_EQ(SampleValue(text, "troupe:rejected_requests_total{reason=\"rpm\",tenant=\"acme\"}"), 1);
  EXPECT_EQ(SampleValue(text, "troupe:rejected_requests_total{reason=\"max_streams\",tenant=\"beta\"}"), 1);
}

TEST(MetricsTest, DefaultBindIsLoopback) { EXPECT_EQ(MetricsOptions{}.bind_host, "127.0.0.1"); }

TEST(MetricsTest, ServesTheSameTextOverHttpOnAnEphemeralPort) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics =
      Metrics::Create(MetricsOptions{.bind_host = "127.0.0.1", .port = 0}, FakeSources());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_GT((*metrics)->port(), 0);
  absl::StatusOr<std::string> body = testing::HttpGet((*metrics)->port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(SampleValue(*body, "troupe:kv_blocks_used"), 25);
  EXPECT_EQ(SampleValue(*body, "troupe:requests_total{code=\"OK\"}"), 0);
}

TEST(MetricsTest, BusyPortIsUnavailable) {
  absl::StatusOr<std::unique_ptr<Metrics>> first =
      Metrics::Create(MetricsOptions{.bind_host = "127.0.0.1", .port = 0}, MetricsSources{});
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<Metrics>> second = Metrics::Create(
      MetricsOptions{.bind_host = "127.0.0.1", .port = (*first)->port()}, MetricsSources{});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace troupe
