// troupe-bench's measurements: one record per request (client-side timestamps of every streamed
// message), and the report computed from them with vLLM `bench serve`'s definitions:
//   TTFT  = first message carrying a token - request sent
//   TPOT  = (E2EL - TTFT) / (completion tokens - 1), requests with more than one token
//   ITL   = every gap between consecutive token-carrying messages
//   E2EL  = last byte - request sent
// Percentiles interpolate linearly between order statistics (numpy's default). Goodput counts
// requests that meet every SLO given (DistServe's definition), per second of the run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace troupe::load {

struct RequestRecord {
  int conversation = 0;
  int turn = 0;                     // 0-based turn index within its conversation
  std::string session_id;           // the conversation's session ("" before it was created)
  int retries = 0;                  // times it was sent again after UNAVAILABLE
  double start = 0.0;               // seconds since the run started
  double end = 0.0;
  std::vector<double> token_times;  // arrival of each message that carried tokens
  std::vector<int> token_counts;    // tokens in that message
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;
  int restored_prompt_tokens = 0;   // of the cached ones, copied back from the host KV tier
  int completion_tokens = 0;
  bool ok = false;
  std::string error;                // gRPC status when !ok
  std::string reply;                // the streamed text
  // ChatResponse.prompt_plan of the last message, when the server sent one.
  bool has_prompt_plan = false;
  bool rendered_in_full = false;
  int folded_turns = 0;
  int context_tokens = 0;
};

struct Distribution {
  int count = 0;
  double mean = 0.0, p50 = 0.0, p90 = 0.0, p95 = 0.0, p99 = 0.0, max = 0.0;
};
// Linear interpolation between order statistics; q in [0, 100].
double Percentile(std::vector<double> sorted_or_not, double q);
Distribution Summarize(std::vector<double> values);

// Service-level objectives in milliseconds; unset ones are not checked.
struct Slo {
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
  bool empty() const { return !ttft_ms && !tpot_ms && !e2el_ms; }
};
// "ttft:500,tpot:100,e2el:20000" (any subset). kInvalidArgument naming the bad part.
absl::StatusOr<Slo> ParseSlo(const std::string& text);

struct GroupStats {
  int requests = 0;  // successful ones; the distributions cover only those
  int failed = 0;
  int good = 0;      // meeting every SLO
  Distribution ttft_ms, tpot_ms, itl_ms, e2el_ms;
  long long prompt_tokens = 0, cached_prompt_tokens = 0, completion_tokens = 0;
  double cache_hit_rate = 0.0;  // cached / prompt tokens
};

// How well a server keeps long conversations warm (docs/kv_cache.md, "Long conversations").
// A turn's reusable tokens are its predecessor's prompt and reply, less the reply's last token
// (never fed back, so it has no KV); a turn is warm when the prefix cache served at least
// kWarmShare of them. Folding turns come from prompt_plan (servers that send none: no folds
// known, every later turn counts).
struct LongConversationStats {
  static constexpr double kWarmShare = 0.98;
  int later_turns = 0;      // ok turns after each conversation's first, whose predecessor was ok
  int folds = 0;            // of those, turns that folded (prompt_plan.folded_turns > 0)
  int appended = 0;         // the others
  int appended_warm = 0;    // of those, warm
  double reuse_share_mean = 0.0;  // cached / reusable, mean over the non-folding turns
  Distribution ttft_ms;           // non-folding turns
  Distribution fold_ttft_ms;      // folding turns
  // The host KV tier (docs/kv_cache.md, "Host tier"): non-folding turns that restored part of
  // their prompt from host memory, and those that restored nothing and were not warm (they
  // recomputed part of what the previous turn had computed), each with its TTFT.
  int restored = 0, recomputed = 0;
  Distribution restored_ttft_ms, recomputed_ttft_ms;
  int max_prompt_tokens = 0;
  double warm_share() const { return appended > 0 ? static_cast<double>(appended_warm) / appended : 0.0; }
  double fold_rate() const { return later_turns > 0 ? static_cast<double>(folds) / later_turns : 0.0; }
};

struct Report {
  double duration_s = 0.0;
  GroupStats overall;
  GroupStats later_turns;             // turn index >= 1: what prefix caching should serve
  std::vector<GroupStats> per_turn;   // by turn index
  double request_throughput = 0.0;    // successful requests / s
  double output_throughput = 0.0;     // completion tokens / s
  double total_throughput = 0.0;      // (prompt + completion) tokens / s
  double goodput = 0.0;               // good requests / s (0 without SLOs)
  std::vector<double> output_tokens_per_second;  // completion tokens arriving in each 1 s of the run
  LongConversationStats long_conversations;
  std::vector<RequestRecord> records;  // every request, by conversation and turn (for the JSON)
};

Report BuildReport(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo);
nlohmann::json ReportToJson(const Report& report);
// A fixed-width text summary: throughput, then latency percentiles overall and per turn.
std::string FormatReport(const Report& report, const Slo& slo);

}  // namespace troupe::load
