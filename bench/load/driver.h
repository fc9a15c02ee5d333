// Runs conversations against a troupe server over gRPC and records every request.
//
// Each conversation is one server-side session (CreateSession with the character prompt, or a
// stored character made from it, one streamed Chat per turn, DeleteSession at the end), so the server keeps the history and a
// turn sends only the new user message, as a role-play front end would.
//   - kMultiTurn: `concurrency` clients, each running whole conversations one after another,
//     pausing `think_time_s` between a reply and the next message (closed loop).
//   - kOpenLoop: conversations start at random arrival times, `request_rate` per second, with
//     gamma-distributed gaps (burstiness 1 = Poisson, below 1 burstier, as in vLLM's bench);
//     at most `concurrency` run at once (0 = unbounded). With one-turn conversations this is
//     vLLM's single-request open loop.
// Threads: one per running conversation, blocking on its stream; timestamps are taken as each
// message arrives, on that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load/stats.h"
#include "bench/load/workload.h"

namespace troupe::load {

enum class Mode { kMultiTurn, kOpenLoop };

struct Progress {
  int done = 0;          // requests (turns) finished, ok or not
  int total = 0;
  long long output_tokens = 0;
  double elapsed_s = 0.0;
};

struct DriverOptions {
  std::string target = "127.0.0.1:50051";
  Mode mode = Mode::kMultiTurn;
  int concurrency = 16;
  double think_time_s = 0.0;
  double request_rate = std::numeric_limits<double>::infinity();  // kOpenLoop: conversations/s
  double burstiness = 1.0;
  int default_max_tokens = 48;
  bool ignore_eos = true;  // exact reply lengths, as vLLM's random dataset
  float temperature = 0.0f;
  int priority = 0;
  // Each distinct character prompt becomes a stored character (CreateCharacter, the prompt as
  // its description) and each conversation a durable session of it, with memory and lore as
  // the server has them; false: inline sessions (the prompt as their system prompt).
  bool stored_characters = false;
  std::string api_key;     // sent as x-api-key metadata when set (servers with --api-keys)
  std::string cache_salt;
  uint64_t seed = 1;       // arrival times
  double rpc_timeout_s = 600.0;
  // An RPC that fails with UNAVAILABLE (a replica gone, a gateway with no backend), or whose
  // stream a gateway reset because its replica died mid-reply (INTERNAL "Received RST_STREAM"),
  // is sent again up to this many times, after 0.5 s, 1 s, 2 s, ... (at most 8 s): what clients
  // of a fleet do while a replica dies or drains. A turn sent again is a new turn.
  int max_retries = 0;
  // Keep each conversation's session when it ends (by default it is deleted), so that its turns
  // can be checked in the database afterwards.
  bool keep_sessions = false;
  double connect_timeout_s = 10.0;
  // Called about every 250 ms from a monitor thread, and once at the end.
  std::function<void(const Progress&)> on_progress;
};

struct LoadResult {
  std::vector<RequestRecord> records;
  double duration_s = 0.0;
};

// kUnavailable when the server cannot be reached before the run starts; failures during the
// run are recorded per request (RequestRecord::ok / error), and a conversation stops at its
// first failed turn.
absl::StatusOr<LoadResult> RunLoad(const DriverOptions& options,
                                   const std::vector<Conversation>& conversations);

}  // namespace troupe::load
