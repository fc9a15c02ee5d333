// Prometheus metrics of the server. Every metric name lives in metrics.cc; docs/api.md lists them.
// Names follow vLLM's with the `troupe:` prefix (troupe:time_to_first_token_seconds, ...).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/request/request.h"

namespace prometheus {
class Counter;
class Exposer;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace troupe {

class EngineStatsCollector;  // metrics.cc: the pull-side collector

struct MetricsOptions {
  std::string bind_host = "127.0.0.1";
  int port = 9400;  // HTTP port of /metrics; 0 = ephemeral (see Metrics::port()), -1 = no HTTP
};

// Read on every scrape (gauges and engine counters are pulled, never pushed). Each function must
// be thread-safe and must not block; an empty function reports nothing.
struct MetricsSources {
  std::function<EngineStats()> engine_stats;
  std::function<int()> num_sessions;
  std::function<int64_t()> memory_writes_pending;  // unset: no memory service
  std::function<int64_t()> memory_ratings_pending;       // unset: no memory service or rater
  std::function<double()> memory_rating_oldest_seconds;  // the oldest pending rating's wait
  std::function<bool()> ready;  // readiness (server.h); unset: no troupe:ready
  int kv_block_size = 0;        // tokens per KV block, for troupe:cache_config_info (0: none)
};

// Owns the registry, the engine-stats collector and the HTTP exposer.
// Thread-safe: the Observe*/Count* methods may be called from any thread concurrently
// (prometheus-cpp metrics are atomic); scrapes run on the exposer's own threads.
class Metrics {
 public:
  // Registers every metric and, when options.port >= 0, starts serving /metrics on
  // bind_host:port. kUnavailable when the port cannot be bound. `sources` must stay valid
  // until this object is destroyed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Metrics>> Create(
      const MetricsOptions& options, MetricsSources sources);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The bound HTTP port, or -1 when the exposer is disabled.
  int port() const { return port_; }

  // Gaps between streamed tokens: a delta of `num_tokens` tokens that arrived `gap` after the
  // previous one counts as num_tokens observations of gap / num_tokens.
  void ObserveInterTokenGap(absl::Duration gap, int num_tokens);

  // A request that finished OK (stop, eos or length): success counter and latency histograms.
  void ObserveSuccess(FinishReason reason, const Completion& completion);

  // A chat turn's prompt plan (engine/session/turn_planner.h): turns it folded (0 = none), the
  // time it waited for a summary, its context message's tokens.
  // `recall_time`: the memory recall's, when the turn recalled memories.
  void ObserveTurnPlan(int folded_turns, absl::Duration summary_time, int context_tokens,
                       std::optional<absl::Duration> recall_time);

  // The final status of every Generate/Chat RPC, by canonical code name ("OK", "CANCELLED", ...).
  void CountRequest(absl::StatusCode code);

  // An RPC refused before any work: `reason` is "unauthenticated", "rpm", "tpm" or
  // "max_streams"; `tenant` ("" = no label) is the key's tenant when the key is known.
  void CountRejection(std::string_view reason, const std::string& tenant);

  // The text exposition format, exactly what GET /metrics returns.
  std::string Serialize() const;

 private:
  Metrics() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<EngineStatsCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // null when port < 0
  int port_ = -1;

  // Owned by registry_; stable pointers.
  prometheus::Histogram* time_to_first_token_ = nullptr;
  prometheus::Histogram* inter_token_latency_ = nullptr;
  prometheus::Histogram* e2e_latency_ = nullptr;
  prometheus::Histogram* queue_time_ = nullptr;
  prometheus::Counter* success_stop_ = nullptr;
  prometheus::Counter* success_eos_ = nullptr;
  prometheus::Counter* success_length_ = nullptr;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Counter>* rejected_ = nullptr;
  prometheus::Counter* chat_turns_ = nullptr;
  prometheus::Counter* session_folds_ = nullptr;
  prometheus::Counter* folded_turns_ = nullptr;
  prometheus::Histogram* summary_latency_ = nullptr;
  prometheus::Histogram* memory_retrieval_ = nullptr;
  prometheus::Histogram* turn_context_tokens_ = nullptr;
};

}  // namespace troupe
