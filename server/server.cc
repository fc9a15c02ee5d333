#include "server/server.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/check.h"
#include "engine/common/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/chat_service.h"

namespace troupe {
namespace {
constexpr char kServiceName[] = "troupe.v1.RolePlay";
}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(std::unique_ptr<Engine> engine,
                                                       const ServerOptions& options) {
  TROUPE_CHECK(engine != nullptr);
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->engine_ = std::move(engine);
  server->sessions_ = std::make_unique<SessionStore>(options.sessions);

  Engine* engine_ptr = server->engine_.get();
  SessionStore* sessions_ptr = server->sessions_.get();
  MetricsSources sources;
  sources.engine_stats = [engine_ptr] { return engine_ptr->Stats(); };
  sources.num_sessions = [sessions_ptr] { return sessions_ptr->size(); };
  absl::StatusOr<std::unique_ptr<Metrics>> metrics =
      Metrics::Create(options.metrics, std::move(sources));
  if (!metrics.ok()) return metrics.status();
  server->metrics_ = *std::move(metrics);

  server->prepare_queue_ = std::make_unique<WorkQueue>(options.prepare);
  server->service_ = std::make_unique<ChatService>(*server->engine_, *server->sessions_,
                                                   *server->prepare_queue_,
                                                   server->metrics_.get());

  // Both are process-wide switches read by the next ServerBuilder.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second server share a busy port and
  // split its traffic; fail to bind instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->grpc_server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use or invalid; use host:port, port 0 for any)"));
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  TROUPE_CHECK(health != nullptr);  // enabled above
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus("", true);
  return server;
}

Server::~Server() { Shutdown(); }

void Server::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    if (grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
    // Blocks until every RPC has finished; cancelled ones finish through the still-running engine.
    const auto deadline = std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(options_.shutdown_grace);
    grpc_server_->Shutdown(deadline);
  }
  if (prepare_queue_ != nullptr) prepare_queue_->Shutdown();
  if (engine_ != nullptr) engine_->Shutdown();
}

}  // namespace troupe
