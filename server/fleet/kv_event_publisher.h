// Publishes the engine's KV-cache events (engine/kv/kv_event.h) in vLLM's wire format, for the
// routers that pick a replica by where a prompt's prefix is cached (llm-d's precise
// prefix-cache scorer, NVIDIA Dynamo's KV router; docs/operations.md "KV-cache events"):
//
//   a ZeroMQ PUB socket bound at --kv-events-endpoint (tcp://HOST:PORT), each message three
//   frames: the topic (--kv-events-topic, default kv@<host>@<model>), an 8-byte big-endian
//   sequence number (one per batch, from 0, so a subscriber sees a gap when it lost one), and a
//   msgpack EventBatch: [ts, [event, ...]] with ts in seconds since the epoch and each event an
//   array tagged by its type's name:
//     ["BlockStored", [hash, ...], parent_hash or nil, [token id, ...], block_size, nil, medium]
//     ["BlockRemoved", [hash, ...], medium]
//     ["AllBlocksCleared"]
//   Hashes are unsigned 64-bit integers, the engine's chained block hashes with the tenant's
//   cache salt folded in; a BlockStored covers consecutive blocks of one chain (its tokens are
//   the blocks' tokens in order), parent nil for a chain's first block.
//
// The engine thread hands each step's events to Publish, which queues them and returns; one
// thread of the publisher encodes and sends. Past max_queued_batches the oldest queued batch is
// dropped (its sequence number is skipped, so subscribers notice). Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/kv/kv_event.h"

namespace troupe {

struct KvEventPublisherOptions {
  std::string endpoint;  // tcp://HOST:PORT to bind (tcp://*:5557 for every interface)
  std::string topic;     // the first frame of every message
  int block_size = 16;
  std::string medium = "GPU";  // where the KV cache's blocks live: "GPU" (cuda) or "CPU"
  // Where the host tier's blocks live (--host-kv-cache-gb; events of KvEvent::Medium::kHost):
  // "CPU" beside a GPU cache, "CPU_TIER" beside the CPU backend's cache, to tell them apart.
  std::string host_medium = "CPU";
  int max_queued_batches = 4096;
};

class KvEventPublisher {
 public:
  // Binds the socket. kInvalidArgument naming the endpoint when ZeroMQ cannot bind it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KvEventPublisher>> Start(const KvEventPublisherOptions& options);
  // Sends what is queued (ZeroMQ lingers up to a second for slow subscribers), then closes.
  ~KvEventPublisher();
  KvEventPublisher(const KvEventPublisher&) = delete;
  KvEventPublisher& operator=(const KvEventPublisher&) = delete;

  // Queues one step's events as a batch. Never blocks on the network.
  void Publish(std::vector<KvEvent> events) ABSL_LOCKS_EXCLUDED(mu_);

  // The endpoint bound, with the port ZeroMQ chose for "tcp://HOST:*".
  const std::string& endpoint() const { return endpoint_; }
  int64_t num_sent() const ABSL_LOCKS_EXCLUDED(mu_);     // batches sent
  int64_t num_dropped() const ABSL_LOCKS_EXCLUDED(mu_);  // batches dropped from a full queue

 private:
  struct Batch {
    uint64_t seq = 0;
    double ts = 0;
    std::vector<KvEvent> events;
  };
  KvEventPublisher(const KvEventPublisherOptions& options, void* context, void* socket);
  void SendLoop();

  const KvEventPublisherOptions options_;
  std::string endpoint_;
  void* const context_;  // ZeroMQ's; owned
  void* const socket_;   // the PUB socket; used by the send thread only once started

  mutable absl::Mutex mu_;
  std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sender_;
};

// One batch in vLLM's msgpack EventBatch layout (above): consecutive kStored events of one chain
// and one medium become one BlockStored, consecutive kRemoved events of one medium one
// BlockRemoved. `medium` names KvEvent::Medium::kDevice, `host_medium` kHost.
std::string EncodeKvEventBatch(double ts, const std::vector<KvEvent>& events, int block_size,
                               std::string_view medium, std::string_view host_medium = "CPU");

}  // namespace troupe
