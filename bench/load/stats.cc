#include "bench/load/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace troupe::load {

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = q / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

Distribution Summarize(std::vector<double> values) {
  Distribution d;
  d.count = static_cast<int>(values.size());
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  d.p50 = Percentile(values, 50);
  d.p90 = Percentile(values, 90);
  d.p95 = Percentile(values, 95);
  d.p99 = Percentile(values, 99);
  d.max = values.back();
  return d;
}

absl::StatusOr<Slo> ParseSlo(const std::string& text) {
  Slo slo;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const std::vector<std::string> kv = absl::StrSplit(part, ':');
    double ms = 0;
    if (kv.size() != 2 || !absl::SimpleAtod(kv[1], &ms) || ms <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad SLO '", part, "': want name:milliseconds"));
    }
    if (kv[0] == "ttft") {
      slo.ttft_ms = ms;
    } else if (kv[0] == "tpot") {
      slo.tpot_ms = ms;
    } else if (kv[0] == "e2el") {
      slo.e2el_ms = ms;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown SLO '", kv[0], "': use ttft, tpot or e2el"));
    }
  }
  return slo;
}

namespace {

struct Derived {
  double ttft_ms = 0.0, e2el_ms = 0.0;
  std::optional<double> tpot_ms;
  std::vector<double> itl_ms;
};

Derived Derive(const RequestRecord& r) {
  Derived d;
  d.e2el_ms = (r.end - r.start) * 1e3;
  if (!r.token_times.empty()) d.ttft_ms = (r.token_times.front() - r.start) * 1e3;
  for (size_t i = 1; i < r.token_times.size(); ++i) {
    d.itl_ms.push_back((r.token_times[i] - r.token_times[i - 1]) * 1e3);
  }
  if (r.completion_tokens > 1) d.tpot_ms = (d.e2el_ms - d.ttft_ms) / (r.completion_tokens - 1);
  return d;
}

bool MeetsSlo(const Derived& d, const Slo& slo) {
  if (slo.ttft_ms && d.ttft_ms > *slo.ttft_ms) return false;
  if (slo.tpot_ms && d.tpot_ms && *d.tpot_ms > *slo.tpot_ms) return false;
  if (slo.e2el_ms && d.e2el_ms > *slo.e2el_ms) return false;
  return true;
}

GroupStats Group(const std::vector<const RequestRecord*>& records, const Slo& slo) {
  GroupStats g;
  std::vector<double> ttft, tpot, itl, e2el;
  for (const RequestRecord* r : records) {
    if (!r->ok) {
      ++g.failed;
      continue;
    }
    ++g.requests;
    const Derived d = Derive(*r);
    ttft.push_back(d.ttft_ms);
    e2el.push_back(d.e2el_ms);
    if (d.tpot_ms) tpot.push_back(*d.tpot_ms);
    itl.insert(itl.end(), d.itl_ms.begin(), d.itl_ms.end());
    if (!slo.empty() && MeetsSlo(d, slo)) ++g.good;
    g.prompt_tokens += r->prompt_tokens;
    g.cached_prompt_tokens += r->cached_prompt_tokens;
    g.completion_tokens += r->completion_tokens;
  }
  g.ttft_ms = Summarize(std::move(ttft));
  g.tpot_ms = Summarize(std::move(tpot));
  g.itl_ms = Summarize(std::move(itl));
  g.e2el_ms = Summarize(std::move(e2el));
  g.cache_hit_rate = g.prompt_tokens > 0 ? static_cast<double>(g.cached_prompt_tokens) / g.prompt_tokens : 0.0;
  return g;
}

nlohmann::json DistributionJson(const Distribution& d) {
  return {{"count", d.count}, {"mean", d.mean}, {"p50", d.p50}, {"p90", d.p90}, {"p95", d.p95}, {"p99", d.p99}, {"max", d.max}};
}

nlohmann::json GroupJson(const GroupStats& g) {
  return {{"requests", g.requests},
          {"failed", g.failed},
          {"good", g.good},
          {"ttft_ms", DistributionJson(g.ttft_ms)},
          {"tpot_ms", DistributionJson(g.tpot_ms)},
          {"itl_ms", DistributionJson(g.itl_ms)},
          {"e2el_ms", DistributionJson(g.e2el_ms)},
          {"prompt_tokens", g.prompt_tokens},
          {"cached_prompt_tokens", g.cached_prompt_tokens},
          {"completion_tokens", g.completion_tokens},
          {"cache_hit_rate", g.cache_hit_rate}};
}

nlohmann::json LongConversationsJson(const LongConversationStats& l) {
  return {{"later_turns", l.later_turns},
          {"folds", l.folds},
          {"fold_rate", l.fold_rate()},
          {"appended", l.appended},
          {"appended_warm", l.appended_warm},
          {"warm_share", l.warm_share()},
          {"reuse_share_mean", l.reuse_share_mean},
          {"ttft_ms", DistributionJson(l.ttft_ms)},
          {"fold_ttft_ms", DistributionJson(l.fold_ttft_ms)},
          {"restored", l.restored},
          {"restored_ttft_ms", DistributionJson(l.restored_ttft_ms)},
          {"recomputed", l.recomputed},
          {"recomputed_ttft_ms", DistributionJson(l.recomputed_ttft_ms)},
          {"max_prompt_tokens", l.max_prompt_tokens}};
}

std::string Row(const std::string& label, const GroupStats& g) {
  return absl::StrFormat("%-8s %5d %9.1f %9.1f %9.1f %8.1f %8.1f %8.1f %9.1f %8.1f %6.1f%%\n", label,
                         g.requests, g.ttft_ms.mean, g.ttft_ms.p50, g.ttft_ms.p99, g.tpot_ms.mean,
                         g.itl_ms.p50, g.itl_ms.p99, g.e2el_ms.mean, g.e2el_ms.p99,
                         100.0 * g.cache_hit_rate);
}

LongConversationStats LongConversations(const std::vector<RequestRecord>& sorted) {
  LongConversationStats out;
  std::vector<double> ttft, fold_ttft, restored_ttft, recomputed_ttft;
  double reuse_sum = 0.0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const RequestRecord& r = sorted[i];
    out.max_prompt_tokens = std::max(out.max_prompt_tokens, r.prompt_tokens);
    if (i == 0 || !r.ok || r.turn == 0) continue;
    const RequestRecord& previous = sorted[i - 1];
    if (previous.conversation != r.conversation || previous.turn != r.turn - 1 || !previous.ok) continue;
    ++out.later_turns;
    const double ttft_ms = Derive(r).ttft_ms;
    if (r.folded_turns > 0) {
      ++out.folds;
      fold_ttft.push_back(ttft_ms);
      continue;
    }
    ++out.appended;
    ttft.push_back(ttft_ms);
    const int reusable = previous.prompt_tokens + std::max(0, previous.completion_tokens - 1);
    const double share = reusable > 0 ? static_cast<double>(r.cached_prompt_tokens) / reusable : 1.0;
    reuse_sum += share;
    if (share >= LongConversationStats::kWarmShare) ++out.appended_warm;
    if (r.restored_prompt_tokens > 0) restored_ttft.push_back(ttft_ms);
    if (r.restored_prompt_tokens == 0 && share < LongConversationStats::kWarmShare) recomputed_ttft.push_back(ttft_ms);
  }
  out.restored = static_cast<int>(restored_ttft.size());
  out.recomputed = static_cast<int>(recomputed_ttft.size());
  out.restored_ttft_ms = Summarize(std::move(restored_ttft));
  out.recomputed_ttft_ms = Summarize(std::move(recomputed_ttft));
  out.reuse_share_mean = out.appended > 0 ? reuse_sum / out.appended : 0.0;
  out.ttft_ms = Summarize(std::move(ttft));
  out.fold_ttft_ms = Summarize(std::move(fold_ttft));
  return out;
}

}  // namespace

Report BuildReport(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo) {
  Report report;
  report.duration_s = duration_s;
  std::vector<const RequestRecord*> all, later;
  int max_turn = -1;
  for (const RequestRecord& r : records) {
    all.push_back(&r);
    if (r.turn >= 1) later.push_back(&r);
    max_turn = std::max(max_turn, r.turn);
  }
  report.overall = Group(all, slo);
  report.later_turns = Group(later, slo);
  for (int t = 0; t <= max_turn; ++t) {
    std::vector<const RequestRecord*> of_turn;
    for (const RequestRecord& r : records) {
      if (r.turn == t) of_turn.push_back(&r);
    }
    report.per_turn.push_back(Group(of_turn, slo));
  }
  report.records = records;
  std::sort(report.records.begin(), report.records.end(), [](const RequestRecord& a, const RequestRecord& b) {
    return std::tie(a.conversation, a.turn) < std::tie(b.conversation, b.turn);
  });
  report.long_conversations = LongConversations(report.records);
  if (duration_s > 0) {
    report.request_throughput = report.overall.requests / duration_s;
    report.output_throughput = static_cast<double>(report.overall.completion_tokens) / duration_s;
    report.total_throughput =
        static_cast<double>(report.overall.prompt_tokens + report.overall.completion_tokens) / duration_s;
    report.goodput = slo.empty() ? 0.0 : report.overall.good / duration_s;
    report.output_tokens_per_second.assign(static_cast<size_t>(std::ceil(duration_s)), 0.0);
    for (const RequestRecord& r : records) {
      for (size_t i = 0; i < r.token_times.size(); ++i) {
        const size_t second = std::min(report.output_tokens_per_second.size() - 1,
                                       static_cast<size_t>(std::max(0.0, r.token_times[i])));
        report.output_tokens_per_second[second] += r.token_counts[i];
      }
    }
  }
  return report;
}

nlohmann::json ReportToJson(const Report& report) {
  // Per request: what a long-conversation analysis needs, turn by turn.
  nlohmann::json requests = nlohmann::json::array();
  for (const RequestRecord& r : report.records) {
    nlohmann::json j = {{"conversation", r.conversation}, {"turn", r.turn}, {"session_id", r.session_id},
                        {"retries", r.retries},
                        {"ok", r.ok},                     {"prompt_tokens", r.prompt_tokens},
                        {"cached_prompt_tokens", r.cached_prompt_tokens},
                        {"restored_prompt_tokens", r.restored_prompt_tokens},
                        {"completion_tokens", r.completion_tokens},
                        {"ttft_ms", Derive(r).ttft_ms},   {"e2el_ms", Derive(r).e2el_ms}};
    if (r.has_prompt_plan) {
      j["rendered_in_full"] = r.rendered_in_full;
      j["folded_turns"] = r.folded_turns;
      j["context_tokens"] = r.context_tokens;
    }
    if (!r.ok) j["error"] = r.error;
    requests.push_back(std::move(j));
  }
  nlohmann::json per_turn = nlohmann::json::array();
  for (const GroupStats& g : report.per_turn) per_turn.push_back(GroupJson(g));
  return {{"duration_s", report.duration_s},
          {"request_throughput", report.request_throughput},
          {"output_throughput", report.output_throughput},
          {"total_token_throughput", report.total_throughput},
          {"goodput", report.goodput},
          {"overall", GroupJson(report.overall)},
          {"turns_2_and_later", GroupJson(report.later_turns)},
          {"per_turn", per_turn},
          {"output_tokens_per_second", report.output_tokens_per_second},
          {"long_conversations", LongConversationsJson(report.long_conversations)},
          {"requests", requests}};
}

std::string FormatReport(const Report& report, const Slo& slo) {
  std::string out = absl::StrFormat(
      "duration %.1f s; %d requests ok, %d failed\n"
      "throughput: %.2f req/s, output %.1f tok/s, total %.1f tok/s",
      report.duration_s, report.overall.requests, report.overall.failed, report.request_throughput,
      report.output_throughput, report.total_throughput);
  if (!slo.empty()) absl::StrAppend(&out, absl::StrFormat(", goodput %.2f req/s", report.goodput));
  absl::StrAppend(&out, absl::StrFormat("\nprefix cache: %.1f%% of all prompt tokens, %.1f%% from turn 2 on\n\n",
                                        100.0 * report.overall.cache_hit_rate,
                                        100.0 * report.later_turns.cache_hit_rate));
  absl::StrAppend(&out, "turn      reqs  TTFT mean  TTFT p50  TTFT p99 TPOT mean  ITL p50  ITL p99 E2EL mean E2EL p99  cache\n");
  for (size_t t = 0; t < report.per_turn.size(); ++t) {
    absl::StrAppend(&out, Row(absl::StrCat(t + 1), report.per_turn[t]));
  }
  absl::StrAppend(&out, Row("all", report.overall));
  absl::StrAppend(&out, "(milliseconds; cache = prompt tokens served from the prefix cache)\n");
  const LongConversationStats& l = report.long_conversations;
  if (l.later_turns > 0) {
    absl::StrAppend(
        &out, absl::StrFormat(
                  "\nlong conversations: %d later turns, %d folded (%.1f%%); of the %d others %.1f%% took >= %.0f%% "
                  "of the previous prompt and reply from the cache (mean %.1f%%)\n"
                  "TTFT of non-folding turns p50 %.1f ms, p95 %.1f ms (%.2fx p50); folding turns p50 %.1f ms; "
                  "longest prompt %d tokens\n",
                  l.later_turns, l.folds, 100.0 * l.fold_rate(), l.appended, 100.0 * l.warm_share(),
                  100.0 * LongConversationStats::kWarmShare, 100.0 * l.reuse_share_mean, l.ttft_ms.p50,
                  l.ttft_ms.p95, l.ttft_ms.p50 > 0 ? l.ttft_ms.p95 / l.ttft_ms.p50 : 0.0, l.fold_ttft_ms.p50,
                  l.max_prompt_tokens));
    if (l.restored > 0 || l.recomputed > 0) {
      absl::StrAppend(&out, absl::StrFormat(
                                "host KV tier: %d turns restored part of their prompt, TTFT p50 %.1f ms, mean %.1f ms; "
                                "%d turns restored nothing and recomputed part of their history, TTFT p50 %.1f ms, "
                                "mean %.1f ms\n",
                                l.restored, l.restored_ttft_ms.p50, l.restored_ttft_ms.mean, l.recomputed,
                                l.recomputed_ttft_ms.p50, l.recomputed_ttft_ms.mean));
    }
  }
  return out;
}

}  // namespace troupe::load
