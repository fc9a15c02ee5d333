#include "server/server.h"

#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/character/character_registry.h"
#include "engine/clients/model_embedder.h"
#include "engine/clients/model_rater.h"
#include "engine/clients/summarizer.h"
#include "engine/embedding/bert_embedder.h"
#include "engine/memory/memory_service.h"
#include "engine/request/collecting_sink.h"
#include "engine/store/open_store.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/limits.h"
#include "server/openai/http_front.h"
#include "server/roleplay_service.h"

namespace troupe {
namespace {
constexpr char kServiceName[] = "troupe.v1.RolePlay";

// One token through the engine: the first step's allocations, kernels and (on a GPU) graphs
// happen here rather than in a client's first turn, and a server that cannot run a step never
// reports ready.
absl::Status WarmUp(Engine& engine) {
  Request request;
  request.id = engine.NewRequestId();
  request.prompt = engine.tokenizer().Encode("Hello", /*add_bos=*/true, /*parse_special=*/false);
  request.sampling.temperature = 0;
  request.sampling.max_tokens = 1;
  request.sampling.seed = 0;
  request.cache_salt = "troupe-internal/warm-up";
  auto sink = std::make_shared<CollectingSink>();
  request.sink = sink;
  TROUPE_RETURN_IF_ERROR(engine.Submit(std::move(request)));
  sink->Wait();
  return sink->status();
}
}  // namespace

std::string DatabaseUrl(const ServerOptions& options) {
  if (!options.database_url.empty()) return options.database_url;
  if (options.data_dir.empty()) return "";
  return "sqlite:" + (std::filesystem::path(options.data_dir) / "troupe.db").string();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(std::unique_ptr<Engine> engine,
                                                       const ServerOptions& options) {
  TROUPE_CHECK(engine != nullptr);
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->engine_ = std::move(engine);
  const std::string database = DatabaseUrl(options);
  if (!database.empty()) {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(database);
    if (!store.ok()) return store.status();
    server->store_ = *std::move(store);
    server->characters_ = std::make_unique<CharacterRegistry>(server->store_.get(), options.characters);
  }
  server->sessions_ = std::make_unique<SessionStore>(options.sessions, server->store_.get());
  if (server->store_ != nullptr && !options.embedding_model_dir.empty()) {
    absl::StatusOr<std::unique_ptr<BertEmbedder>> embedder = BertEmbedder::Load(options.embedding_model_dir);
    if (embedder.ok()) {
      server->embedder_ = *std::move(embedder);
    } else {
      TROUPE_LOG_WARNING("embedding model not loaded (%s): memory falls back to the served model's "
                         "hidden states; run scripts/fetch-embedder.sh for better recall",
                         embedder.status().ToString().c_str());
    }
  }
  if (server->store_ != nullptr && server->embedder_ == nullptr) {
    server->fallback_embedder_ = std::make_unique<ModelEmbedder>(server->engine_.get());
  }
  const TextEmbedder* embedder = server->embedder_ != nullptr
                                     ? static_cast<const TextEmbedder*>(server->embedder_.get())
                                     : server->fallback_embedder_.get();
  if (embedder != nullptr) {
    absl::StatusOr<std::unique_ptr<ModelRater>> rater = ModelRater::Create(server->engine_.get());
    if (rater.ok()) {
      server->rater_ = *std::move(rater);
    } else {
      TROUPE_LOG_WARNING("memories get neutral emotions unless clients give them: %s",
                         rater.status().ToString().c_str());
    }
    SessionStore* sessions = server->sessions_.get();
    server->memory_ = std::make_unique<MemoryService>(
        server->store_.get(), embedder, server->rater_.get(), MemoryServiceOptions{},
        [sessions](const std::string& id, const EmotionVector& mood) { sessions->SetMood(id, mood); });
    if (absl::Status loaded = server->memory_->Load(); !loaded.ok()) return loaded;
  }
  server->summarizer_ = std::make_unique<ModelSummarizer>(server->engine_.get());
  server->commit_queue_ = std::make_unique<WorkQueue>(options.commit);
  server->summary_queue_ = std::make_unique<WorkQueue>(
      WorkQueueOptions{.num_threads = 1, .max_queued = 64, .name = "background summaries"});

  Engine* engine_ptr = server->engine_.get();
  SessionStore* sessions_ptr = server->sessions_.get();
  MetricsSources sources;
  sources.engine_stats = [engine_ptr] { return engine_ptr->Stats(); };
  sources.num_sessions = [sessions_ptr] { return sessions_ptr->size(); };
  Server* server_ptr = server.get();
  sources.ready = [server_ptr] { return server_ptr->ready(); };
  sources.kv_block_size = server->engine_->options().block_size;
  if (MemoryService* memory_ptr = server->memory_.get()) {
    sources.memory_writes_pending = [memory_ptr] { return memory_ptr->num_pending_writes(); };
    if (server->rater_ != nullptr) {
      sources.memory_ratings_pending = [memory_ptr] { return memory_ptr->num_pending_ratings(); };
      sources.memory_rating_oldest_seconds = [memory_ptr] {
        return absl::ToDoubleSeconds(memory_ptr->oldest_pending_rating_age());
      };
    }
  }
  absl::StatusOr<std::unique_ptr<Metrics>> metrics =
      Metrics::Create(options.metrics, std::move(sources));
  if (!metrics.ok()) return metrics.status();
  server->metrics_ = *std::move(metrics);

  server->prepare_queue_ = std::make_unique<WorkQueue>(options.prepare);
  RolePlayDeps roleplay{.characters = server->characters_.get(),
                        .memory = server->memory_.get(),
                        .rater = server->rater_.get(),
                        .summarizer = server->summarizer_.get(),
                        .commit_queue = server->commit_queue_.get(),
                        .summary_queue = server->summary_queue_.get(),
                        .prompt_options = options.prompt,
                        .lore_scan_budget = options.lore_scan_budget,
                        .conversation = options.conversation,
                        .chat_sampling = options.chat_sampling};
  server->service_ = std::make_unique<RolePlayService>(*server->engine_, *server->sessions_,
                                                       *server->prepare_queue_, server->metrics_.get(),
                                                       std::move(roleplay),
                                                       options.resolve_caller ? options.resolve_caller
                                                                              : AnonymousCallers());

  // Both are process-wide switches read by the next ServerBuilder.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second server share a busy port and
  // split its traffic; fail to bind instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // gRPC's default (4 MiB) would refuse a PNG card long before its own 16 MiB limit; accept
  // the largest request server/limits.h allows and let gRPC refuse anything larger unparsed.
  builder.SetMaxReceiveMessageSize(MaxReceiveMessageBytes(RequestLimitsFor(server->engine_->model_info())));
  builder.AddListeningPort(options.listen_address, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->grpc_server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use or invalid; use host:port, port 0 for any",
                     options.tls.cert_file.empty() ? "" : "; or the TLS certificate and key do not load",
                     ")"));
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  TROUPE_CHECK(health != nullptr);  // enabled above
  health->SetServingStatus(kLivenessService, true);
  server->SetReady(false);
  if (!options.http_listen.empty()) {
    const Tokenizer& tokenizer = server->engine_->tokenizer();
    const ModelInfo& model = server->engine_->model_info();
    HttpFrontOptions http{
        .listen_address = options.http_listen,
        .num_threads = options.http_threads,
        .model_name = options.served_model_name.empty() ? model.name : options.served_model_name,
        // JSON escapes can take 6 bytes per byte of text; the gRPC limits apply after parsing.
        .max_body_bytes = 6 * RequestLimitsFor(model).max_prompt_bytes + kRequestOverheadBytes,
        .tls_cert_file = options.tls.cert_file,
        .tls_key_file = options.tls.key_file,
        .tls_client_ca_file = options.tls.client_ca_file,
        .chat_defaults = options.chat_sampling,
        .token_text = [&tokenizer](int32_t id) { return tokenizer.Decode({id}); },
        .ready = [server_ptr] { return server_ptr->ready(); }};
    absl::StatusOr<std::unique_ptr<HttpFront>> front =
        HttpFront::Start(http, server->grpc_server_->InProcessChannel(grpc::ChannelArguments()));
    if (!front.ok()) return front.status();
    server->http_ = *std::move(front);
  }
  if (absl::Status warm = WarmUp(*server->engine_); !warm.ok()) {
    return absl::Status(warm.code(), absl::StrCat("the engine's first step failed: ", warm.message()));
  }
  server->SetReady(true);
  return server;
}

Server::~Server() { Shutdown(); }

int Server::http_port() const { return http_ != nullptr ? http_->port() : -1; }

void Server::SetReady(bool ready) {
  grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
  for (const char* service : {kReadinessService, kServiceName, ""}) health->SetServingStatus(service, ready);
  ready_.store(ready);
}

void Server::Drain() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_ || grpc_server_ == nullptr) return;
  SetReady(false);
}

void Server::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    SetReady(false);  // liveness stays on while live RPCs finish
    // Blocks until every RPC has finished; cancelled ones finish through the still-running engine.
    const auto deadline = std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(options_.shutdown_grace);
    grpc_server_->Shutdown(deadline);
  }
  // After gRPC's: HTTP streams end with their calls (an error event, then [DONE]) rather than
  // being cut; requests arriving meanwhile get 503 from the stopped gRPC server.
  if (http_ != nullptr) {
    http_->Stop();
    http_->Join();
  }
  if (prepare_queue_ != nullptr) prepare_queue_->Shutdown();
  if (commit_queue_ != nullptr) commit_queue_->Shutdown();
  // Summaries made ahead of a fold are a saving, not a promise: the waiting ones are dropped,
  // the one being made finishes (the engine still runs).
  if (summary_queue_ != nullptr) {
    summary_queue_->DropQueued();
    summary_queue_->Shutdown();
  }
  // Queued memory writes get one more grace period (their ratings need the engine still
  // running); the rest are dropped: their turns are stored, and the next start's backfill
  // writes their memories.
  if (memory_ != nullptr && !memory_->Flush(options_.shutdown_grace)) {
    const int64_t dropped = memory_->DropQueued();
    memory_->FlushWrites();  // the write in progress (a rating in progress is not waited for)
    TROUPE_LOG_WARNING("shutdown: %lld queued memory writes and ratings left to the next start",
                       static_cast<long long>(dropped));
  }
  if (engine_ != nullptr) engine_->Shutdown();
}

}  // namespace troupe
