// troupe-bench: a gRPC load generator for any troupe server (docs/troupe_bench.md).
//
//   troupe-bench --target 127.0.0.1:50051 --mode multi-turn --sessions 16 --characters 2 --turns 8
//   troupe-bench --mode open-loop --rate 2 --burstiness 0.5 --conversations 200 --turns 1
//   troupe-bench --dataset conversations.jsonl --result-json out.json --plot out.png
//
// Prints a progress bar while running, then throughput and latency percentiles overall and per
// turn; writes the JSON result and the PNG when asked.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/load/driver.h"
#include "bench/load/png_chart.h"
#include "bench/load/stats.h"
#include "bench/load/workload.h"
#include "common/flag_parser.h"

namespace troupe::load {
namespace {

constexpr char kUsage[] =
    "Usage: troupe-bench [flags]\n"
    "Drives a troupe server with multi-turn role-play conversations (closed loop) or with\n"
    "open-loop arrivals, and reports TTFT, TPOT, ITL, E2E latency, throughput, goodput and the\n"
    "prefix-cache hit rate, per turn and overall.\n\n";

struct Flags {
  std::string target = "127.0.0.1:50051";
  std::string mode = "multi-turn";
  int sessions = 16;          // multi-turn clients; open-loop: max conversations in flight (0 = no cap)
  int conversations = 0;      // 0 = --sessions
  int characters = 2;
  int turns = 8;
  int character_words = 400;
  int user_words = 30;
  int max_tokens = 48;
  double think_time_ms = 0;
  double rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  bool ignore_eos = true;
  double temperature = 0;
  int priority = 0;
  bool stored_characters = false;
  int max_retries = 0;
  bool keep_sessions = false;
  std::string api_key, cache_salt;
  std::string dataset, save_dataset;
  std::string goodput;
  std::string result_json, plot, save_replies;
  int64_t seed = 1;
  bool no_progress = false;
};

void DrawProgress(const Progress& p, bool tty) {
  static int last_decile = -1;
  const double frac = p.total > 0 ? static_cast<double>(p.done) / p.total : 0.0;
  const double rate = p.elapsed_s > 0 ? p.output_tokens / p.elapsed_s : 0.0;
  if (tty) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::fprintf(stderr, "\r[%s%s] %d/%d requests  %.1f s  %.1f output tok/s ",
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), p.done,
                 p.total, p.elapsed_s, rate);
    if (p.done == p.total) std::fputc('\n', stderr);
  } else if (static_cast<int>(frac * 10) != last_decile) {  // a line per 10% in logs
    last_decile = static_cast<int>(frac * 10);
    std::fprintf(stderr, "progress: %d/%d requests, %.1f s, %.1f output tok/s\n", p.done, p.total,
                 p.elapsed_s, rate);
  }
}

absl::Status WritePlot(const std::string& path, const Report& report) {
  std::vector<double> turn_x;
  Series ttft50{"TTFT p50", {}, {}}, ttft90{"TTFT p90", {}, {}}, ttft99{"TTFT p99", {}, {}};
  Series itl50{"ITL p50", {}, {}}, itl99{"ITL p99", {}, {}};
  Series hit{"prompt tokens from cache %", {}, {}};
  for (size_t t = 0; t < report.per_turn.size(); ++t) {
    const GroupStats& g = report.per_turn[t];
    if (g.requests == 0) continue;
    const double x = static_cast<double>(t + 1);
    for (Series* s : {&ttft50, &ttft90, &ttft99, &itl50, &itl99, &hit}) s->x.push_back(x);
    ttft50.y.push_back(g.ttft_ms.p50);
    ttft90.y.push_back(g.ttft_ms.p90);
    ttft99.y.push_back(g.ttft_ms.p99);
    itl50.y.push_back(g.itl_ms.p50);
    itl99.y.push_back(g.itl_ms.p99);
    hit.y.push_back(100.0 * g.cache_hit_rate);
  }
  Series throughput{"output tokens/s", {}, {}};
  for (size_t s = 0; s < report.output_tokens_per_second.size(); ++s) {
    throughput.x.push_back(static_cast<double>(s));
    throughput.y.push_back(report.output_tokens_per_second[s]);
  }
  std::vector<Panel> panels = {
      Panel{"Time to first token by turn", "turn", "ms", {ttft50, ttft90, ttft99}},
      Panel{"Inter-token latency by turn", "turn", "ms", {itl50, itl99}},
      Panel{"Prefix-cache hit rate by turn", "turn", "%", {hit}},
      Panel{"Output throughput over time", "seconds since start", "tokens/s", {throughput}},
  };
  return WritePng(path, panels);
}

int Main(int argc, char** argv) {
  Flags f;
  bool help = false;
  FlagParser parser;
  parser.AddString("target", &f.target, "server host:port");
  parser.AddString("mode", &f.mode, "multi-turn (closed loop) or open-loop (arrivals at --rate)");
  parser.AddInt("sessions", &f.sessions,
                "multi-turn: concurrent clients; open-loop: max conversations in flight (0 = no cap)");
  parser.AddInt("conversations", &f.conversations, "synthetic conversations (0 = --sessions)");
  parser.AddInt("characters", &f.characters, "synthetic characters the conversations are dealt over");
  parser.AddInt("turns", &f.turns, "synthetic turns per conversation");
  parser.AddInt("character-words", &f.character_words, "words per synthetic character prompt");
  parser.AddInt("user-words", &f.user_words, "words per synthetic user message");
  parser.AddInt("max-tokens", &f.max_tokens, "reply tokens per turn (unless the dataset says)");
  parser.AddDouble("think-time-ms", &f.think_time_ms, "multi-turn: pause before each next message");
  parser.AddDouble("rate", &f.rate, "open-loop: conversation arrivals per second (inf = all at once)");
  parser.AddDouble("burstiness", &f.burstiness, "open-loop: gamma shape of the gaps (1 = Poisson, <1 burstier)");
  parser.AddBool("ignore-eos", &f.ignore_eos, "generate exactly max-tokens per turn (=false to stop at EOS)");
  parser.AddDouble("temperature", &f.temperature, "sampling temperature (0 = greedy)");
  parser.AddInt("priority", &f.priority, "request priority");
  parser.AddBool("stored-characters", &f.stored_characters,
                 "store each character (CreateCharacter) and run durable sessions of it, with memory "
                 "(the server needs --data-dir); default: inline sessions");
  parser.AddInt("retries", &f.max_retries,
                "send an RPC that fails with UNAVAILABLE (or a stream reset by a gateway) again up to N "
                "times (0.5 s, 1 s, 2 s, ... apart): a fleet's clients while a replica dies or drains");
  parser.AddBool("keep-sessions", &f.keep_sessions,
                 "keep each conversation's session at its end (to check its turns in the database)");
  parser.AddString("api-key", &f.api_key, "API key of a server started with --api-keys (sent as x-api-key)");
  parser.AddString("cache-salt", &f.cache_salt, "request cache_salt");
  parser.AddString("dataset", &f.dataset, "JSONL conversations instead of synthetic ones");
  parser.AddString("save-dataset", &f.save_dataset, "write the conversations used as JSONL");
  parser.AddString("goodput", &f.goodput, "SLOs in ms, e.g. ttft:2000,tpot:150,e2el:20000");
  parser.AddString("result-json", &f.result_json, "write the full result as JSON");
  parser.AddString("plot", &f.plot, "write latency per turn and throughput over time as PNG");
  parser.AddString("save-replies", &f.save_replies,
                   "write every reply as JSONL {conversation, turn, reply}, in conversation order");
  parser.AddInt64("seed", &f.seed, "synthetic text and arrival times");
  parser.AddBool("no-progress", &f.no_progress, "no progress output");
  parser.AddBool("help", &help, "print this help");
  std::vector<std::string> positional;
  const absl::Status parsed = parser.Parse(argc, argv, &positional);
  if (!parsed.ok() || help || !positional.empty()) {
    if (!parsed.ok()) std::fprintf(stderr, "troupe-bench: %s\n", std::string(parsed.message()).c_str());
    std::fprintf(help ? stdout : stderr, "%s%s", kUsage, parser.Help().c_str());
    return help ? 0 : 2;
  }
  absl::StatusOr<Slo> slo = ParseSlo(f.goodput);
  if (!slo.ok()) {
    std::fprintf(stderr, "troupe-bench: --goodput: %s\n", std::string(slo.status().message()).c_str());
    return 2;
  }
  DriverOptions options;
  if (f.mode == "multi-turn") {
    options.mode = Mode::kMultiTurn;
  } else if (f.mode == "open-loop") {
    options.mode = Mode::kOpenLoop;
  } else {
    std::fprintf(stderr, "troupe-bench: --mode must be multi-turn or open-loop\n");
    return 2;
  }

  std::vector<Conversation> conversations;
  if (!f.dataset.empty()) {
    absl::StatusOr<std::vector<Conversation>> read = ReadConversationsJsonl(f.dataset);
    if (!read.ok()) {
      std::fprintf(stderr, "troupe-bench: %s\n", std::string(read.status().message()).c_str());
      return 2;
    }
    conversations = *std::move(read);
  } else {
    conversations = MakeSyntheticConversations(
        SyntheticOptions{.num_conversations = f.conversations > 0 ? f.conversations : f.sessions,
                         .num_characters = f.characters,
                         .num_turns = f.turns,
                         .character_words = f.character_words,
                         .user_words = f.user_words,
                         .max_tokens = f.max_tokens,
                         .seed = static_cast<uint64_t>(f.seed)});
  }
  if (!f.save_dataset.empty()) {
    if (absl::Status s = WriteConversationsJsonl(f.save_dataset, conversations); !s.ok()) {
      std::fprintf(stderr, "troupe-bench: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }

  options.target = f.target;
  options.concurrency = f.sessions;
  options.think_time_s = f.think_time_ms / 1e3;
  options.request_rate = f.rate;
  options.burstiness = f.burstiness;
  options.default_max_tokens = f.max_tokens;
  options.ignore_eos = f.ignore_eos;
  options.temperature = static_cast<float>(f.temperature);
  options.priority = f.priority;
  options.stored_characters = f.stored_characters;
  options.api_key = f.api_key;
  options.max_retries = f.max_retries;
  options.keep_sessions = f.keep_sessions;
  options.cache_salt = f.cache_salt;
  options.seed = static_cast<uint64_t>(f.seed);
  const bool tty = isatty(STDERR_FILENO) != 0;
  if (!f.no_progress) options.on_progress = [tty](const Progress& p) { DrawProgress(p, tty); };

  absl::StatusOr<LoadResult> result = RunLoad(options, conversations);
  if (!result.ok()) {
    std::fprintf(stderr, "troupe-bench: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  const Report report = BuildReport(result->records, result->duration_s, *slo);
  std::printf("%s", FormatReport(report, *slo).c_str());
  for (const RequestRecord& r : result->records) {
    if (!r.ok) {
      std::printf("first failure: conversation %d turn %d: %s\n", r.conversation, r.turn + 1, r.error.c_str());
      break;
    }
  }
  if (!f.result_json.empty()) {
    nlohmann::json j = ReportToJson(report);
    j["config"] = {{"target", f.target},        {"mode", f.mode},
                   {"sessions", f.sessions},    {"conversations", conversations.size()},
                   {"characters", f.characters}, {"turns", f.turns},
                   {"max_tokens", f.max_tokens}, {"think_time_ms", f.think_time_ms},
                   {"rate", std::isfinite(f.rate) ? nlohmann::json(f.rate) : nlohmann::json("inf")},
                   {"burstiness", f.burstiness}, {"dataset", f.dataset},
                   {"goodput", f.goodput},      {"seed", f.seed},
                   {"stored_characters", f.stored_characters}};
    std::ofstream out(f.result_json);
    out << j.dump(1) << '\n';
    if (!out) {
      std::fprintf(stderr, "troupe-bench: cannot write %s\n", f.result_json.c_str());
      return 1;
    }
  }
  if (!f.save_replies.empty()) {
    std::vector<const RequestRecord*> sorted;
    for (const RequestRecord& r : result->records) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](const RequestRecord* a, const RequestRecord* b) {
      return std::tie(a->conversation, a->turn) < std::tie(b->conversation, b->turn);
    });
    std::ofstream out(f.save_replies);
    for (const RequestRecord* r : sorted) {
      out << nlohmann::json{{"conversation", r->conversation}, {"turn", r->turn}, {"session_id", r->session_id},
                            {"ok", r->ok}, {"reply", r->reply}}.dump()
          << '\n';
    }
    if (!out) {
      std::fprintf(stderr, "troupe-bench: cannot write %s\n", f.save_replies.c_str());
      return 1;
    }
  }
  if (!f.plot.empty()) {
    if (absl::Status s = WritePlot(f.plot, report); !s.ok()) {
      std::fprintf(stderr, "troupe-bench: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  return report.overall.failed > 0 ? 1 : 0;
}

}  // namespace
}  // namespace troupe::load

int main(int argc, char** argv) { return troupe::load::Main(argc, argv); }
