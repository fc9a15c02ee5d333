#include "server/metrics.h"

#include <exception>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace troupe {
namespace {

// ---- names (all of them) ----
constexpr char kTimeToFirstToken[] = "troupe:time_to_first_token_seconds";
constexpr char kInterTokenLatency[] = "troupe:inter_token_latency_seconds";
constexpr char kE2eLatency[] = "troupe:e2e_request_latency_seconds";
constexpr char kQueueTime[] = "troupe:request_queue_time_seconds";
constexpr char kRequestSuccess[] = "troupe:request_success_total";
constexpr char kRequests[] = "troupe:requests_total";
constexpr char kRejectedRequests[] = "troupe:rejected_requests_total";
// Pulled from Engine::Stats() / the session store on every scrape.
constexpr char kPrefixCacheQueries[] = "troupe:prefix_cache_queries_total";
constexpr char kPrefixCacheHits[] = "troupe:prefix_cache_hits_total";
constexpr char kStepDuration[] = "troupe:engine_step_duration_seconds";
constexpr char kIterationTokens[] = "troupe:iteration_tokens_total";
constexpr char kIterationSequences[] = "troupe:iteration_sequences";
constexpr char kNumRunning[] = "troupe:num_requests_running";
constexpr char kNumWaiting[] = "troupe:num_requests_waiting";
constexpr char kKvBlocksUsed[] = "troupe:kv_blocks_used";
constexpr char kKvBlocksTotal[] = "troupe:kv_blocks_total";
constexpr char kKvCacheUsage[] = "troupe:kv_cache_usage_perc";
// The host tier of the KV cache (--host-kv-cache-gb).
constexpr char kKvOffloadedBlocks[] = "troupe:kv_offloaded_blocks_total";
constexpr char kKvRestoredBlocks[] = "troupe:kv_restored_blocks_total";
constexpr char kKvOffloadedBytes[] = "troupe:kv_offloaded_bytes_total";
constexpr char kKvRestoredBytes[] = "troupe:kv_restored_bytes_total";
constexpr char kHostKvBlocksUsed[] = "troupe:host_kv_blocks_used";
constexpr char kHostKvBlocksTotal[] = "troupe:host_kv_blocks_total";
constexpr char kPrefixCacheHostHits[] = "troupe:prefix_cache_host_hits_total";
// vLLM's cache_config_info: the KV cache's shape as labels of a gauge of value 1, which the
// Gateway API Inference Extension's endpoint picker reads (docs/operations.md).
constexpr char kCacheConfigInfo[] = "troupe:cache_config_info";
constexpr char kReady[] = "troupe:ready";
constexpr char kPromptTokens[] = "troupe:prompt_tokens_total";
constexpr char kGenerationTokens[] = "troupe:generation_tokens_total";
constexpr char kPreemptions[] = "troupe:num_preemptions_total";
constexpr char kEngineSteps[] = "troupe:engine_steps_total";
constexpr char kSessions[] = "troupe:sessions_active";
constexpr char kMemoryWritesPending[] = "troupe:memory_writes_pending";
constexpr char kMemoryRatingsPending[] = "troupe:memory_ratings_pending";
constexpr char kMemoryRatingOldest[] = "troupe:memory_rating_oldest_seconds";
constexpr char kChatTurns[] = "troupe:chat_turns_total";
constexpr char kSessionFolds[] = "troupe:session_folds_total";
constexpr char kFoldedTurns[] = "troupe:session_folded_turns_total";
constexpr char kSummaryLatency[] = "troupe:summary_latency_seconds";
constexpr char kTurnContextTokens[] = "troupe:turn_context_tokens";
constexpr char kMemoryRetrieval[] = "troupe:memory_retrieval_seconds";

// ---- buckets (seconds; vLLM's) ----
const std::vector<double>& TimeToFirstTokenBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
      1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
  return *buckets;
}
const std::vector<double>& InterTokenBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
      0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
  return *buckets;
}
const std::vector<double>& RequestLatencyBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,   20.0,
      30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
  return *buckets;
}

prometheus::MetricFamily OneValueFamily(const char* name, const char* help,
                                        prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

prometheus::MetricFamily HistogramFamily(const char* name, const char* help,
                                         const HistogramSnapshot& snapshot) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = prometheus::MetricType::Histogram;
  prometheus::ClientMetric metric;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < snapshot.counts.size(); ++i) {
    cumulative += snapshot.counts[i];
    prometheus::ClientMetric::Bucket bucket;
    bucket.cumulative_count = cumulative;
    bucket.upper_bound = i < snapshot.upper_bounds.size() ? snapshot.upper_bounds[i]
                                                          : std::numeric_limits<double>::infinity();
    metric.histogram.bucket.push_back(bucket);
  }
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum = snapshot.sum;
  family.metric.push_back(std::move(metric));
  return family;
}

}  // namespace

// Builds the engine gauges and counters from one Engine::Stats() snapshot per scrape, so the
// values are never stale and no updater thread is needed. Runs on exposer threads.
class EngineStatsCollector : public prometheus::Collectable {
 public:
  explicit EngineStatsCollector(MetricsSources sources) : sources_(std::move(sources)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> families;
    if (sources_.engine_stats) {
      const EngineStats stats = sources_.engine_stats();
      const double usage = stats.kv_blocks_total > 0
                               ? static_cast<double>(stats.kv_blocks_used) / stats.kv_blocks_total
                               : 0.0;
      families.push_back(OneValueFamily(kNumRunning, "Requests in the running batch.",
                                        MetricType::Gauge, stats.num_running));
      families.push_back(OneValueFamily(kNumWaiting, "Requests waiting to be scheduled.",
                                        MetricType::Gauge, stats.num_waiting));
      families.push_back(OneValueFamily(kKvBlocksUsed, "KV-cache blocks held by requests.",
                                        MetricType::Gauge, stats.kv_blocks_used));
      families.push_back(OneValueFamily(kKvBlocksTotal, "KV-cache blocks in the pool.",
                                        MetricType::Gauge, stats.kv_blocks_total));
      families.push_back(OneValueFamily(kKvCacheUsage, "KV-cache usage, 0 to 1.",
                                        MetricType::Gauge, usage));
      families.push_back(OneValueFamily(kPromptTokens, "Prompt tokens computed (cache misses).",
                                        MetricType::Counter,
                                        static_cast<double>(stats.prompt_tokens_total)));
      families.push_back(OneValueFamily(kGenerationTokens, "Tokens generated.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.generation_tokens_total)));
      families.push_back(OneValueFamily(kPreemptions, "Sequences preempted for KV space.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.num_preemptions)));
      families.push_back(OneValueFamily(kEngineSteps, "Engine steps run.", MetricType::Counter,
                                        static_cast<double>(stats.num_steps)));
      families.push_back(OneValueFamily(kPrefixCacheQueries,
                                        "Prompt tokens looked up in the prefix cache.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.prefix_cache_queries_total)));
      families.push_back(OneValueFamily(kPrefixCacheHits, "Prompt tokens served from the prefix cache.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.prefix_cache_hits_total)));
      families.push_back(OneValueFamily(kPrefixCacheHostHits,
                                        "Prompt tokens served from the prefix cache after a copy back "
                                        "from the host KV tier.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.prefix_cache_host_hits_total)));
      families.push_back(OneValueFamily(kKvOffloadedBlocks,
                                        "KV blocks copied to the host tier when evicted from the KV cache.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.kv_offloaded_blocks_total)));
      families.push_back(OneValueFamily(kKvRestoredBlocks,
                                        "KV blocks copied back from the host tier for a prefix hit.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.kv_restored_blocks_total)));
      families.push_back(OneValueFamily(kKvOffloadedBytes, "Bytes copied to the host KV tier.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.kv_offloaded_bytes_total)));
      families.push_back(OneValueFamily(kKvRestoredBytes, "Bytes copied back from the host KV tier.",
                                        MetricType::Counter,
                                        static_cast<double>(stats.kv_restored_bytes_total)));
      families.push_back(OneValueFamily(kHostKvBlocksUsed, "Blocks held in the host KV tier.",
                                        MetricType::Gauge, stats.host_kv_blocks_used));
      families.push_back(OneValueFamily(kHostKvBlocksTotal,
                                        "Blocks the host KV tier holds at most (0: no tier).",
                                        MetricType::Gauge, stats.host_kv_blocks_total));
      families.push_back(HistogramFamily(kStepDuration, "Wall time of an engine step.",
                                         stats.step_seconds));
      families.push_back(HistogramFamily(kIterationTokens, "Tokens computed per engine step.",
                                         stats.step_tokens));
      families.push_back(HistogramFamily(kIterationSequences, "Sequences batched per engine step.",
                                         stats.step_sequences));
    }
    if (sources_.engine_stats && sources_.kv_block_size > 0) {
      prometheus::MetricFamily family = OneValueFamily(
          kCacheConfigInfo, "The KV cache's configuration (labels; the value is 1).", MetricType::Gauge, 1);
      family.metric.back().label = {
          {"block_size", std::to_string(sources_.kv_block_size)},
          {"num_gpu_blocks", std::to_string(sources_.engine_stats().kv_blocks_total)}};
      families.push_back(std::move(family));
    }
    if (sources_.ready) {
      families.push_back(OneValueFamily(kReady, "1 while the server is ready (grpc.health.v1 \"readiness\"), else 0.",
                                        MetricType::Gauge, sources_.ready() ? 1 : 0));
    }
    if (sources_.num_sessions) {
      families.push_back(OneValueFamily(kSessions, "Chat sessions held in memory.",
                                        MetricType::Gauge, sources_.num_sessions()));
    }
    if (sources_.memory_writes_pending) {
      families.push_back(OneValueFamily(
          kMemoryWritesPending, "Finished turns whose memory (embedding, provisional emotion) is not stored yet.",
          MetricType::Gauge, static_cast<double>(sources_.memory_writes_pending())));
    }
    if (sources_.memory_ratings_pending) {
      families.push_back(OneValueFamily(
          kMemoryRatingsPending, "Stored memories whose emotion and importance the model has not rated yet.",
          MetricType::Gauge, static_cast<double>(sources_.memory_ratings_pending())));
    }
    if (sources_.memory_rating_oldest_seconds) {
      families.push_back(OneValueFamily(kMemoryRatingOldest,
                                        "Seconds the oldest pending memory rating has waited (0: none).",
                                        MetricType::Gauge, sources_.memory_rating_oldest_seconds()));
    }
    return families;
  }

 private:
  const MetricsSources sources_;
};

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const MetricsOptions& options,
                                                         MetricsSources sources) {
  std::unique_ptr<Metrics> metrics(new Metrics());
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  metrics->collector_ = std::make_shared<EngineStatsCollector>(std::move(sources));
  prometheus::Registry& registry = *metrics->registry_;

  metrics->time_to_first_token_ =
      &prometheus::BuildHistogram()
           .Name(kTimeToFirstToken)
           .Help("Arrival to first streamed token, successful requests.")
           .Register(registry)
           .Add({}, TimeToFirstTokenBuckets());
  metrics->inter_token_latency_ = &prometheus::BuildHistogram()
                                       .Name(kInterTokenLatency)
                                       .Help("Gap between consecutive streamed tokens.")
                                       .Register(registry)
                                       .Add({}, InterTokenBuckets());
  metrics->e2e_latency_ = &prometheus::BuildHistogram()
                               .Name(kE2eLatency)
                               .Help("Arrival to finish, successful requests.")
                               .Register(registry)
                               .Add({}, RequestLatencyBuckets());
  metrics->queue_time_ = &prometheus::BuildHistogram()
                              .Name(kQueueTime)
                              .Help("Arrival to first scheduled, successful requests.")
                              .Register(registry)
                              .Add({}, RequestLatencyBuckets());
  auto& success = prometheus::BuildCounter()
                      .Name(kRequestSuccess)
                      .Help("Requests that finished OK, by finished_reason.")
                      .Register(registry);
  metrics->success_stop_ = &success.Add({{"finished_reason", "stop"}});
  metrics->success_eos_ = &success.Add({{"finished_reason", "eos"}});
  metrics->success_length_ = &success.Add({{"finished_reason", "length"}});
  metrics->requests_ = &prometheus::BuildCounter()
                            .Name(kRequests)
                            .Help("Generate and Chat RPCs by final status code.")
                            .Register(registry);
  metrics->requests_->Add({{"code", "OK"}});
  metrics->rejected_ = &prometheus::BuildCounter()
                            .Name(kRejectedRequests)
                            .Help("RPCs refused before any work, by reason (unauthenticated, rpm, "
                                  "tpm, max_streams) and, for a known key, tenant.")
                            .Register(registry);

  metrics->chat_turns_ = &prometheus::BuildCounter()
                             .Name(kChatTurns)
                             .Help("Chat turns planned (prompt built and submitted).")
                             .Register(registry)
                             .Add({});
  metrics->session_folds_ = &prometheus::BuildCounter()
                                .Name(kSessionFolds)
                                .Help("Chat turns whose prompt passed the high mark and folded old turns "
                                      "into the summary (inline sessions: dropped them).")
                                .Register(registry)
                                .Add({});
  metrics->folded_turns_ = &prometheus::BuildCounter()
                               .Name(kFoldedTurns)
                               .Help("Turns folded into summaries or dropped, in all.")
                               .Register(registry)
                               .Add({});
  metrics->summary_latency_ = &prometheus::BuildHistogram()
                                  .Name(kSummaryLatency)
                                  .Help("Time a folding turn spent waiting for its summary.")
                                  .Register(registry)
                                  .Add({}, RequestLatencyBuckets());
  metrics->memory_retrieval_ = &prometheus::BuildHistogram()
                                   .Name(kMemoryRetrieval)
                                   .Help("Time a chat turn spent recalling memories (embedding the query and "
                                         "searching the session's scopes).")
                                   .Register(registry)
                                   .Add({}, prometheus::Histogram::BucketBoundaries{
                                                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
  metrics->turn_context_tokens_ = &prometheus::BuildHistogram()
                                      .Name(kTurnContextTokens)
                                      .Help("Tokens of a chat turn's context message (memories, lore, "
                                            "post-history instructions); inline turns count 0.")
                                      .Register(registry)
                                      .Add({}, prometheus::Histogram::BucketBoundaries{
                                                   0, 32, 64, 128, 256, 512, 1024, 2048, 4096});

  if (options.port >= 0) {
    const std::string address = absl::StrCat(options.bind_host, ":", options.port);
    try {
      metrics->exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
    }
    const std::vector<int> ports = metrics->exposer_->GetListeningPorts();
    if (ports.empty()) return absl::UnavailableError(absl::StrCat("metrics exposer on ", address,
                                                                  " reports no listening port"));
    metrics->port_ = ports.front();
    metrics->exposer_->RegisterCollectable(metrics->registry_);
    metrics->exposer_->RegisterCollectable(metrics->collector_);
  }
  return metrics;
}

Metrics::~Metrics() {
  exposer_.reset();  // stop scrapes before the collector's sources go away
}

void Metrics::ObserveInterTokenGap(absl::Duration gap, int num_tokens) {
  if (num_tokens <= 0) return;
  const double per_token = absl::ToDoubleSeconds(gap) / num_tokens;
  for (int i = 0; i < num_tokens; ++i) inter_token_latency_->Observe(per_token);
}

void Metrics::ObserveSuccess(FinishReason reason, const Completion& completion) {
  switch (reason) {
    case FinishReason::kStop: success_stop_->Increment(); break;
    case FinishReason::kEos: success_eos_->Increment(); break;
    case FinishReason::kLength: success_length_->Increment(); break;
    default: break;  // not a success reason; the caller's status said OK anyway
  }
  if (completion.usage.completion_tokens > 0) {
    time_to_first_token_->Observe(absl::ToDoubleSeconds(completion.time_to_first_token));
  }
  e2e_latency_->Observe(absl::ToDoubleSeconds(completion.e2e_latency));
  queue_time_->Observe(absl::ToDoubleSeconds(completion.queue_time));
}

void Metrics::ObserveTurnPlan(int folded_turns, absl::Duration summary_time, int context_tokens,
                              std::optional<absl::Duration> recall_time) {
  chat_turns_->Increment();
  if (recall_time) memory_retrieval_->Observe(absl::ToDoubleSeconds(*recall_time));
  if (folded_turns > 0) {
    session_folds_->Increment();
    folded_turns_->Increment(folded_turns);
    if (summary_time > absl::ZeroDuration()) summary_latency_->Observe(absl::ToDoubleSeconds(summary_time));
  }
  turn_context_tokens_->Observe(context_tokens);
}

void Metrics::CountRequest(absl::StatusCode code) {
  // Family::Add returns the existing child for known labels; the code set is bounded (17).
  requests_->Add({{"code", absl::StatusCodeToString(code)}}).Increment();
}

void Metrics::CountRejection(std::string_view reason, const std::string& tenant) {
  // Bounded: four reasons, and tenants are the keys file's (set by the operator).
  if (tenant.empty()) {
    rejected_->Add({{"reason", std::string(reason)}}).Increment();
  } else {
    rejected_->Add({{"reason", std::string(reason)}, {"tenant", tenant}}).Increment();
  }
}

std::string Metrics::Serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> pulled = collector_->Collect();
  families.insert(families.end(), std::make_move_iterator(pulled.begin()),
                  std::make_move_iterator(pulled.end()));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace troupe
