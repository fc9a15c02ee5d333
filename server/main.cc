// troupe-server: flags -> EngineOptions/ServerOptions, start, wait for SIGINT/SIGTERM, shut down.
// Wiring only; everything else lives in server/server.h and the engine.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/flag_parser.h"
#include "server/server.h"

namespace {

constexpr char kUsage[] =
    "usage: troupe-server [flags]\n"
    "Serves the troupe.v1.RolePlay gRPC API for one GGUF model.\n\nflags:\n";

int Run(int argc, char** argv) {
  troupe::EngineOptions engine_options;
  engine_options.model_path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  troupe::ServerOptions server_options;
  int kv_cache_mb = static_cast<int>(engine_options.kv_cache_bytes >> 20);
  int shutdown_grace_s = static_cast<int>(absl::ToInt64Seconds(server_options.shutdown_grace));
  bool help = false;

  troupe::FlagParser flags;
  flags.AddString("model", &engine_options.model_path, "GGUF model file");
  flags.AddString("listen", &server_options.listen_address, "gRPC host:port (port 0 = any free)");
  flags.AddInt("metrics-port", &server_options.metrics.port,
               "HTTP port for /metrics (0 = any free, -1 = off)");
  flags.AddString("metrics-host", &server_options.metrics.bind_host, "HTTP bind address");
  flags.AddInt("threads", &engine_options.num_threads, "compute threads (0 = one per core)");
  flags.AddInt("kv-cache-mb", &kv_cache_mb, "KV cache budget in MiB");
  flags.AddInt("block-size", &engine_options.block_size, "tokens per KV block");
  flags.AddInt("max-running", &engine_options.max_running, "max sequences per batch");
  flags.AddInt("max-batched-tokens", &engine_options.max_batched_tokens, "token budget per step");
  flags.AddInt("max-waiting", &engine_options.max_waiting, "waiting-queue capacity");
  flags.AddInt("max-model-len", &engine_options.max_model_len,
               "context limit in tokens (0 = the model's)");
  flags.AddInt("prepare-threads", &server_options.prepare.num_threads, "tokenization workers");
  flags.AddInt("max-sessions", &server_options.sessions.max_sessions, "chat sessions kept");
  flags.AddInt("shutdown-grace-s", &shutdown_grace_s, "seconds live RPCs get on shutdown");
  flags.AddBool("help", &help, "print this help");
  std::vector<std::string> positional;
  if (absl::Status parsed = flags.Parse(argc, argv, &positional); !parsed.ok() || help ||
                                                                   !positional.empty()) {
    if (!parsed.ok()) std::fprintf(stderr, "troupe-server: %s\n", std::string(parsed.message()).c_str());
    std::fprintf(help ? stdout : stderr, "%s%s", kUsage, flags.Help().c_str());
    return help ? 0 : 2;
  }
  engine_options.kv_cache_bytes = static_cast<int64_t>(kv_cache_mb) << 20;
  server_options.shutdown_grace = absl::Seconds(shutdown_grace_s);

  std::error_code error;
  if (!std::filesystem::is_regular_file(engine_options.model_path, error)) {
    std::fprintf(stderr,
                 "troupe-server: model file '%s' not found.\n"
                 "Pass --model PATH to a GGUF file, or run scripts/fetch-model.sh to download the "
                 "default model (SmolLM2-135M-Instruct Q4_1) into models/.\n",
                 engine_options.model_path.c_str());
    return 1;
  }

  // Block the signals before any thread starts, so every thread inherits the mask and only
  // sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<troupe::Engine>> engine = troupe::Engine::Create(engine_options);
  if (!engine.ok()) {
    std::fprintf(stderr, "troupe-server: cannot load the model: %s\n",
                 engine.status().ToString().c_str());
    return 1;
  }
  const troupe::ModelInfo info = (*engine)->model_info();
  absl::StatusOr<std::unique_ptr<troupe::Server>> server =
      troupe::Server::Start(*std::move(engine), server_options);
  if (!server.ok()) {
    std::fprintf(stderr, "troupe-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const std::string host =
      server_options.listen_address.substr(0, server_options.listen_address.rfind(':'));
  std::fprintf(stderr, "troupe-server: serving %s (%s, chat template %s, context %d) on %s:%d\n",
               info.name.c_str(), info.architecture.c_str(),
               std::string(troupe::ChatFamilyName(info.chat_family)).c_str(), info.max_model_len,
               host.c_str(), (*server)->port());
  if ((*server)->metrics_port() >= 0) {
    std::fprintf(stderr, "troupe-server: metrics on http://%s:%d/metrics\n",
                 server_options.metrics.bind_host.c_str(), (*server)->metrics_port());
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::fprintf(stderr, "troupe-server: %s received, shutting down (grace %ds)\n",
               signal_number == SIGINT ? "SIGINT" : "SIGTERM", shutdown_grace_s);
  (*server)->Shutdown();
  std::fprintf(stderr, "troupe-server: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
