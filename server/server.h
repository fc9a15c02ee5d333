// troupe's gRPC server: the RolePlay service, gRPC health and reflection, the prompt-preparation
// workers, the session store and the metrics exposer, around one Engine.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/character/character_registry.h"
#include "engine/engine.h"
#include "engine/sampler/sampling_preset.h"
#include "engine/session/session_store.h"
#include "engine/session/turn_planner.h"
#include "server/auth/caller.h"
#include "server/auth/tls.h"
#include "server/metrics.h"
#include "server/work_queue.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace troupe {

class MemoryService;
class ModelRater;
class BertEmbedder;
class ModelEmbedder;
class ModelSummarizer;
class RolePlayService;
class HttpFront;

struct ServerOptions {
  std::string listen_address = "127.0.0.1:50051";  // host:port; port 0 picks a free port
  MetricsOptions metrics;                           // port 9400; 0 = ephemeral, -1 = off
  WorkQueueOptions prepare;                         // tokenization workers and their queue
  // The chat-turn commits (database writes), off the engine thread; a turn finishing while
  // max_queued commits wait ends RESOURCE_EXHAUSTED, uncommitted.
  WorkQueueOptions commit{.num_threads = 1, .max_queued = 1024, .name = "turn commits"};
  SessionStoreOptions sessions;
  CharacterRegistryOptions characters;  // the cache of parsed stored characters
  int64_t lore_scan_budget = kDefaultLoreScanBudget;  // key-bytes one turn's lorebook scan may search
  ConversationOptions conversation;  // long conversations: the context budget, the fold marks
  // The sampling of chat turns where the request leaves a field unset (--default-sampling
  // FILE, engine/sampler/sampling_preset.h). Generate keeps SamplingParams' plain defaults.
  SamplingParams chat_sampling = ChatSamplingPreset();
  // Where characters, durable sessions and memories are kept: a --database URL
  // (engine/store/open_store.h: sqlite:PATH, or postgresql://... shared by replicas). "" = the
  // SQLite file troupe.db in data_dir; both empty = nowhere (inline sessions only, no memory).
  std::string database_url;
  std::string data_dir;
  // all-MiniLM-L6-v2 (scripts/fetch-embedder.sh) for memory retrieval; "" or missing = the
  // served model's own hidden states (ModelEmbedder), a weaker fallback.
  std::string embedding_model_dir;
  CharacterPromptOptions prompt;  // the global system prompt and post-history instructions
  // Names each RPC's tenant (server/auth/caller.h); empty: one anonymous tenant. --api-keys
  // sets it to ApiKeys::Resolver() (server/auth/api_keys.h).
  CallerResolver resolve_caller;
  TlsOptions tls;  // TLS / mutual TLS on listen_address; default plaintext
  // The OpenAI-compatible HTTP front (server/openai/http_front.h): host:port, port 0 = any;
  // "" = off (troupe-server's --http-listen defaults to 127.0.0.1:8000).
  std::string http_listen;
  int http_threads = 64;          // HTTP connections served at once
  std::string served_model_name;  // the model's id on /v1/models; "" = the model's own name
  // In-flight RPCs get this long to finish on Shutdown; then they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(10);
};

// grpc.health.v1 services (docs/operations.md, "Probes"): kLivenessService is SERVING while the
// process serves RPCs at all; kReadinessService, "" and troupe.v1.RolePlay once the engine has
// run its first step, and NOT_SERVING again from the moment the server drains (SIGTERM).
inline constexpr char kLivenessService[] = "liveness";
inline constexpr char kReadinessService[] = "readiness";

// The database the options name: database_url, else sqlite:<data_dir>/troupe.db, else "".
std::string DatabaseUrl(const ServerOptions& options);

// Owns the engine and everything serving it. Thread-safe: Shutdown may race with itself and with
// the accessors; the accessors return objects whose own thread-safety is documented.
class Server {
 public:
  // Starts serving `engine`. kUnavailable names the address when it cannot be bound;
  // MakeServerCredentials' errors for bad TLS options.
  // REQUIRES: engine is non-null.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Server>> Start(
      std::unique_ptr<Engine> engine, const ServerOptions& options);
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }                     // the bound gRPC port
  int http_port() const;                                 // the bound HTTP port; -1 when off
  int metrics_port() const { return metrics_->port(); }  // -1 when metrics are off
  Engine& engine() { return *engine_; }
  SessionStore& sessions() { return *sessions_; }
  MemoryService* memory() { return memory_.get(); }  // null without data dir or embedder
  Metrics& metrics() { return *metrics_; }

  // Turns readiness off (kReadinessService, "" and troupe.v1.RolePlay NOT_SERVING) and keeps
  // serving every RPC, new ones included, so a gateway's health checks move traffic away before
  // Shutdown refuses it. Idempotent; a no-op after Shutdown.
  void Drain() ABSL_LOCKS_EXCLUDED(shutdown_mu_);
  // Whether readiness is on (started, first step run, not draining).
  bool ready() const { return ready_.load(); }

  // Graceful stop, in this order: readiness NOT_SERVING (liveness stays SERVING); grpc
  // Shutdown(now + shutdown_grace) (new RPCs refused, live ones, HTTP ones included, finish or
  // are cancelled through the engine); the HTTP front stopped and joined; preparation and commit
  // workers joined; queued memory writes given one more shutdown_grace, the rest dropped (the
  // next start's backfill writes them); engine shut down and joined. Blocks until
  // done. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(shutdown_mu_);

 private:
  Server() = default;

  // Declaration order is destruction order reversed: the gRPC server goes first, the engine last.
  ServerOptions options_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BertEmbedder> embedder_;
  std::unique_ptr<ModelEmbedder> fallback_embedder_;  // when embedder_ did not load
  std::unique_ptr<ModelRater> rater_;
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<CharacterRegistry> characters_;
  std::unique_ptr<MemoryService> memory_;
  std::unique_ptr<ModelSummarizer> summarizer_;
  std::unique_ptr<WorkQueue> commit_queue_;
  std::unique_ptr<WorkQueue> summary_queue_;  // the next fold's summaries, made ahead
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<WorkQueue> prepare_queue_;
  std::unique_ptr<RolePlayService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<HttpFront> http_;  // a client of grpc_server_ (its in-process channel)
  int port_ = 0;

  // Sets the readiness services' status. REQUIRES: grpc_server_ is running.
  void SetReady(bool ready);

  std::atomic<bool> ready_{false};
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace troupe
