// troupe-server: flags -> EngineOptions/ServerOptions, start, wait for signals: SIGHUP reloads
// the --api-keys file, SIGINT/SIGTERM shut down. Wiring only; everything else lives in
// server/server.h, server/auth/ and the engine.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "common/flag_parser.h"
#include "engine/engine.h"
#include "engine/sampler/sampling_preset.h"
#include "engine/model/dummy_model.h"
#include "engine/backend/backend.h"
#include "server/auth/api_keys.h"
#include "server/fleet/kv_event_publisher.h"
#include "server/server.h"

namespace {

constexpr char kUsage[] =
    "usage: troupe-server [flags]\n"
    "Serves the troupe.v1.RolePlay gRPC API, and the OpenAI-compatible HTTP API, for one GGUF model.\n\nflags:\n";

struct Flags {
  troupe::EngineOptions engine;
  troupe::ServerOptions server;
  std::string api_keys_file;  // "" = single tenant
  // SIGTERM: readiness off, every RPC still served this long, then shutdown (docs/operations.md).
  absl::Duration drain_delay = absl::ZeroDuration();
  // KV-cache events (server/fleet/kv_event_publisher.h): "" = none; the topic "" = kv@<host>@<model>.
  std::string kv_events_endpoint;
  std::string kv_events_topic;
  std::string default_sampling_file;  // "" = the built-in chat preset
};

// Fills `flags` from argv. Returns an exit code when the process should stop here.
std::optional<int> ParseFlags(int argc, char** argv, Flags& flags) {
  troupe::EngineOptions& engine = flags.engine;
  troupe::ServerOptions& server = flags.server;
  engine.model_path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  server.data_dir = "troupe-data";
  server.http_listen = "127.0.0.1:8000";
  server.embedding_model_dir = "models/all-MiniLM-L6-v2";
  engine.device = "auto";
  int kv_cache_mb = static_cast<int>(engine.kv_cache_bytes >> 20);
  double host_kv_cache_gb = static_cast<double>(engine.host_kv_cache_bytes) / (1ll << 30);
  std::string kv_cache_type(troupe::KvCacheTypeName(engine.kv_cache_type));
  int shutdown_grace_s = static_cast<int>(absl::ToInt64Seconds(server.shutdown_grace));
  int character_cache_mb = static_cast<int>(server.characters.max_cached_bytes >> 20);
  int64_t lore_scan_budget_mib = server.lore_scan_budget >> 20;
  int64_t dummy_seed = static_cast<int64_t>(engine.dummy_seed);
  bool help = false;

  troupe::FlagParser parser;
  parser.AddString("model", &engine.model_path,
                   "GGUF model file, Hugging Face model folder (config.json, safetensors, "
                   "tokenizer.json), or with --load-format dummy a model shape");
  parser.AddString("load-format", &engine.load_format,
                   "auto (a folder is a Hugging Face model, a file GGUF), gguf, hf, or dummy "
                   "(random weights of the shape named by --model: " +
                       absl::StrJoin(troupe::DummyModelShapes(), ", ") +
                       "; for benchmarks without weight files)");
  parser.AddInt64("dummy-seed", &dummy_seed, "seed of --load-format dummy weights");
  parser.AddString("listen", &server.listen_address, "gRPC host:port (port 0 = any free)");
  parser.AddString("api-keys", &flags.api_keys_file,
                   "API keys file (TENANT sha256:<hex> [max_priority=N] [rpm=N] [tpm=N] "
                   "[max_streams=N] per line; troupe-cli hash-key prints one); every RPC then "
                   "needs a key; reloaded on SIGHUP. \"\" = one anonymous tenant, no auth");
  parser.AddString("tls-cert", &server.tls.cert_file, "PEM certificate chain: serve gRPC over TLS");
  parser.AddString("tls-key", &server.tls.key_file, "PEM private key of --tls-cert");
  parser.AddString("tls-client-ca", &server.tls.client_ca_file,
                   "PEM CA bundle: require client certificates it signed (mutual TLS)");
  parser.AddString("http-listen", &server.http_listen,
                   "OpenAI-compatible HTTP host:port (/v1/chat/completions, /v1/completions, "
                   "/v1/models, /health; port 0 = any free; \"\" = off). Same keys, tenants and "
                   "limits as gRPC; HTTPS with --tls-cert/--tls-key, client certificates with "
                   "--tls-client-ca");
  parser.AddInt("http-threads", &server.http_threads,
                "HTTP connections served at once (a streamed reply holds one)");
  parser.AddString("served-model-name", &server.served_model_name,
                   "the model's id on /v1/models and in OpenAI requests (\"\" = the model's name)");
  parser.AddInt("metrics-port", &server.metrics.port,
                "HTTP port for /metrics (0 = any free, -1 = off)");
  parser.AddString("metrics-host", &server.metrics.bind_host,
                   "HTTP bind address of /metrics (plain HTTP, no auth: keep it on loopback or a "
                   "private network)");
  parser.AddString("device", &engine.device,
                   "cpu, cuda, or auto (cuda when this build has CUDA and a GPU answers)");
  parser.AddInt("threads", &engine.num_threads, "CPU compute threads (0 = one per core)");
  parser.AddInt("kv-cache-mb", &kv_cache_mb, "KV cache budget in MiB");
  parser.AddDouble("host-kv-cache-gb", &host_kv_cache_gb,
                   "host memory (GiB, pinned on cuda) that KV blocks evicted from the KV cache are "
                   "copied to and restored from, least recently used out first (0 = off)");
  parser.AddString("kv-cache-type", &kv_cache_type, "KV cache element type: f16 or f32");
  parser.AddInt("block-size", &engine.block_size, "tokens per KV block");
  parser.AddInt("max-running", &engine.max_running, "max sequences per batch");
  parser.AddInt("max-batched-tokens", &engine.max_batched_tokens, "token budget per step");
  parser.AddInt("max-prefill-tokens-while-decoding", &engine.max_prefill_tokens_while_decoding,
                "prefill tokens per step while streams decode (0 = the whole budget)");
  parser.AddDouble("max-prefill-cost-ratio-while-decoding",
                   &engine.max_prefill_cost_ratio_while_decoding,
                   "while streams decode, prefill chunks add at most this multiple of the "
                   "decodes' estimated cost to a step (0 = no limit)");
  parser.AddInt("max-waiting", &engine.max_waiting, "waiting-queue capacity");
  parser.AddBool("enable-prefix-caching", &engine.enable_prefix_caching,
                 "reuse cached KV of shared prompt prefixes (=false to switch off)");
  parser.AddInt("max-model-len", &engine.max_model_len,
                "context limit in tokens (0 = the model's)");
  parser.AddInt("prepare-threads", &server.prepare.num_threads, "tokenization workers");
  parser.AddInt("max-sessions", &server.sessions.max_sessions, "durable chat sessions kept in memory");
  parser.AddInt("max-inline-sessions", &server.sessions.max_inline_sessions,
                "inline chat sessions (name + system prompt, in memory only); more: RESOURCE_EXHAUSTED");
  parser.AddDuration("session-idle-ttl", &server.sessions.inline_idle_ttl,
                     "an inline session unused this long expires (30m, 3600s, 1h; 0 = never)");
  parser.AddInt("character-cache-size", &server.characters.max_cached,
                "stored characters kept parsed in memory (least recently used dropped first)");
  parser.AddInt("character-cache-mb", &character_cache_mb, "their estimated size in MiB, at most");
  parser.AddInt64("lore-scan-budget-mib", &lore_scan_budget_mib,
                  "Mi key-bytes (keys x bytes scanned) one turn's lorebook scan may search; "
                  "lower-priority entries past it are skipped (0 = no limit)");
  parser.AddInt("turn-context-tokens", &server.conversation.context_budget_tokens,
                "tokens a chat turn's context (memories, lore, post-history instructions) may take "
                "(0 = a sixteenth of the context)");
  parser.AddDouble("fold-high-water", &server.conversation.fold_high,
                   "a session prompt past this share of the context is re-rendered with old turns folded");
  parser.AddDouble("fold-low-water", &server.conversation.fold_low, "... down to this share");
  parser.AddString("data-dir", &server.data_dir,
                   "where characters, sessions and memories are kept, as troupe.db (\"\" = nowhere)");
  parser.AddString("database", &server.database_url,
                   "the database instead of <data-dir>/troupe.db: sqlite:PATH, or postgresql://... "
                   "shared by replicas (default: $TROUPE_DATABASE_URL when set)");
  parser.AddString("embedding-model", &server.embedding_model_dir,
                   "all-MiniLM-L6-v2 folder for memory retrieval (scripts/fetch-embedder.sh)");
  parser.AddString("system-prompt", &server.prompt.global_system_prompt,
                   "system prompt of characters without one (and their {{original}})");
  parser.AddString("post-history-instructions", &server.prompt.global_post_history,
                   "post-history instructions of characters without them");
  parser.AddString("default-sampling", &flags.default_sampling_file,
                   "JSON file of the sampling a chat turn's unset fields take (docs/sampling.md; "
                   "\"\" = the built-in chat preset: temperature 0.8, min-p 0.05, DRY 0.8)");
  parser.AddInt("shutdown-grace-s", &shutdown_grace_s, "seconds live RPCs get on shutdown");
  parser.AddString("kv-events-endpoint", &flags.kv_events_endpoint,
                   "publish KV-cache events (vLLM's ZeroMQ + msgpack format) on this tcp://HOST:PORT "
                   "(\"\" = none)");
  parser.AddString("kv-events-topic", &flags.kv_events_topic,
                   "the events' topic (\"\" = kv@<host name>@<model file name>)");
  parser.AddDuration("drain-delay", &flags.drain_delay,
                     "on SIGTERM, readiness goes off and new RPCs are still served this long before "
                     "shutdown refuses them (e.g. 5s; default 0 = refuse at once)");
  parser.AddBool("help", &help, "print this help");
  std::vector<std::string> positional;
  const absl::Status parsed = parser.Parse(argc, argv, &positional);
  if (!parsed.ok() || help || !positional.empty()) {
    if (!parsed.ok()) {
      std::fprintf(stderr, "troupe-server: %s\n", std::string(parsed.message()).c_str());
    } else if (!positional.empty()) {
      std::fprintf(stderr, "troupe-server: unexpected argument '%s'\n", positional[0].c_str());
    }
    std::fprintf(help ? stdout : stderr, "%s%s", kUsage, parser.Help().c_str());
    return help ? 0 : 2;
  }
  engine.kv_cache_bytes = static_cast<int64_t>(kv_cache_mb) << 20;
  if (!(host_kv_cache_gb >= 0) || host_kv_cache_gb > (1 << 20)) {
    std::fprintf(stderr, "troupe-server: --host-kv-cache-gb must be between 0 and 1048576, not %g\n",
                 host_kv_cache_gb);
    return 2;
  }
  engine.host_kv_cache_bytes = static_cast<int64_t>(host_kv_cache_gb * (1ll << 30));
  if (auto type = troupe::KvCacheTypeFromName(kv_cache_type)) {
    engine.kv_cache_type = *type;
  } else {
    std::fprintf(stderr, "troupe-server: --kv-cache-type must be f16 or f32, not '%s'\n",
                 kv_cache_type.c_str());
    return 2;
  }
  server.shutdown_grace = absl::Seconds(shutdown_grace_s);
  // A database URL holds a password: it may come from the environment instead of the command
  // line, where every local user could read it (/proc/PID/cmdline).
  if (const char* url = std::getenv("TROUPE_DATABASE_URL"); server.database_url.empty() && url != nullptr) {
    server.database_url = url;
  }
  if (server.characters.max_cached < 1 || character_cache_mb < 1) {
    std::fprintf(stderr, "troupe-server: --character-cache-size and --character-cache-mb must be >= 1\n");
    return 2;
  }
  server.characters.max_cached_bytes = static_cast<int64_t>(character_cache_mb) << 20;
  server.lore_scan_budget = lore_scan_budget_mib << 20;
  const troupe::ConversationOptions& conversation = server.conversation;
  if (conversation.context_budget_tokens < 0 || !(conversation.fold_low > 0) ||
      !(conversation.fold_low <= conversation.fold_high) || !(conversation.fold_high <= 1)) {
    std::fprintf(stderr, "troupe-server: need --turn-context-tokens >= 0 and "
                         "0 < --fold-low-water <= --fold-high-water <= 1\n");
    return 2;
  }
  if (dummy_seed < 0) {
    std::fprintf(stderr, "troupe-server: --dummy-seed must be >= 0\n");
    return 2;
  }
  engine.dummy_seed = static_cast<uint64_t>(dummy_seed);
  if (!flags.default_sampling_file.empty()) {
    absl::StatusOr<troupe::SamplingParams> preset = troupe::LoadSamplingPreset(flags.default_sampling_file);
    if (!preset.ok()) {
      std::fprintf(stderr, "troupe-server: --default-sampling: %s\n",
                   std::string(preset.status().message()).c_str());
      return 2;
    }
    server.chat_sampling = *std::move(preset);
  }

  // The engine checks the shape name (its error lists the known shapes).
  if (engine.load_format == "dummy") return std::nullopt;
  if (engine.load_format != "auto" && engine.load_format != "gguf" &&
      engine.load_format != "hf") {
    std::fprintf(stderr,
                 "troupe-server: --load-format must be auto, gguf, hf or dummy, not '%s'\n",
                 engine.load_format.c_str());
    return 2;
  }

  std::error_code error;
  if (!std::filesystem::is_regular_file(engine.model_path, error) &&
      !std::filesystem::is_directory(engine.model_path, error)) {
    std::fprintf(stderr,
                 "troupe-server: model '%s' not found.\n"
                 "Pass --model PATH to a GGUF file or a Hugging Face model folder, or run "
                 "scripts/fetch-model.sh to download the default model (SmolLM2-135M-Instruct "
                 "Q4_1) into models/.\n",
                 engine.model_path.c_str());
    return 1;
  }
  return std::nullopt;
}

// The publisher's options from the flags: the topic defaults to kv@<host>@<model file name>.
troupe::KvEventPublisherOptions KvEventOptions(const Flags& flags) {
  troupe::KvEventPublisherOptions options;
  options.endpoint = flags.kv_events_endpoint;
  options.topic = flags.kv_events_topic;
  if (options.topic.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    options.topic = "kv@" + std::string(host) + "@" + std::filesystem::path(flags.engine.model_path).stem().string();
  }
  options.block_size = flags.engine.block_size;
  options.medium = troupe::ResolveDevice(flags.engine.device) == "cuda" ? "GPU" : "CPU";
  options.host_medium = options.medium == "GPU" ? "CPU" : "CPU_TIER";
  return options;
}

int Serve(const Flags& flags) {
  // Block the signals before any thread starts, so every thread inherits the mask and only
  // sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The keys first: a bad file stops the server before the model loads.
  Flags options = flags;
  std::unique_ptr<troupe::ApiKeys> api_keys;
  if (!flags.api_keys_file.empty()) {
    absl::StatusOr<std::unique_ptr<troupe::ApiKeys>> loaded = troupe::ApiKeys::Load(flags.api_keys_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "troupe-server: --api-keys: %s\n", std::string(loaded.status().message()).c_str());
      return 1;
    }
    api_keys = *std::move(loaded);
    options.server.resolve_caller = api_keys->Resolver();
  }

  // The publisher outlives the server, whose engine thread hands it events until shutdown.
  std::unique_ptr<troupe::KvEventPublisher> kv_events;
  if (!flags.kv_events_endpoint.empty()) {
    absl::StatusOr<std::unique_ptr<troupe::KvEventPublisher>> started =
        troupe::KvEventPublisher::Start(KvEventOptions(flags));
    if (!started.ok()) {
      std::fprintf(stderr, "troupe-server: %s\n", std::string(started.status().message()).c_str());
      return 1;
    }
    kv_events = *std::move(started);
    troupe::KvEventPublisher* publisher = kv_events.get();
    options.engine.on_kv_events = [publisher](std::vector<troupe::KvEvent> events) {
      publisher->Publish(std::move(events));
    };
  }

  absl::StatusOr<std::unique_ptr<troupe::Engine>> engine = troupe::Engine::Create(options.engine);
  if (!engine.ok()) {
    std::fprintf(stderr, "troupe-server: cannot load the model: %s\n",
                 engine.status().ToString().c_str());
    return 1;
  }
  const troupe::ModelInfo info = (*engine)->model_info();
  absl::StatusOr<std::unique_ptr<troupe::Server>> server =
      troupe::Server::Start(*std::move(engine), options.server);
  if (!server.ok()) {
    std::fprintf(stderr, "troupe-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const std::string& listen = flags.server.listen_address;
  std::fprintf(stderr, "troupe-server: serving %s (%s, chat template %s, context %d) on %s:%d\n",
               info.name.c_str(), info.architecture.c_str(),
               std::string(troupe::ChatFamilyName(info.chat_family)).c_str(), info.max_model_len,
               listen.substr(0, listen.rfind(':')).c_str(), (*server)->port());
  if (api_keys != nullptr) {
    std::fprintf(stderr,
                 "troupe-server: API keys required: %d key(s) from %s (SIGHUP reloads it)\n",
                 api_keys->num_keys(), api_keys->path().c_str());
  } else {
    std::fprintf(stderr,
                 "troupe-server: no --api-keys: single tenant, every caller is the anonymous tenant "
                 "and no key is checked\n");
  }
  std::fprintf(stderr, "troupe-server: gRPC %s\n",
               flags.server.tls.cert_file.empty() ? "in plaintext (no --tls-cert)"
               : flags.server.tls.client_ca_file.empty()
                   ? "over TLS"
                   : "over mutual TLS (client certificates required)");
  if ((*server)->http_port() >= 0) {
    const std::string& http = flags.server.http_listen;
    std::fprintf(stderr, "troupe-server: OpenAI-compatible HTTP on http://%s:%d/v1\n",
                 http.substr(0, http.rfind(':')).c_str(), (*server)->http_port());
  }
  if ((*server)->metrics_port() >= 0) {
    std::fprintf(stderr, "troupe-server: metrics on http://%s:%d/metrics\n",
                 flags.server.metrics.bind_host.c_str(), (*server)->metrics_port());
  }

  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    if (api_keys == nullptr) {
      std::fprintf(stderr, "troupe-server: SIGHUP: no --api-keys file to reload\n");
      continue;
    }
    // Admitted RPCs keep the Caller they resolved; new RPCs see the new table.
    absl::StatusOr<int> reloaded = api_keys->Reload();
    if (reloaded.ok()) {
      std::fprintf(stderr, "troupe-server: SIGHUP: reloaded %d API key(s) from %s\n", *reloaded,
                   api_keys->path().c_str());
    } else {
      std::fprintf(stderr, "troupe-server: SIGHUP: kept the previous API keys: %s\n",
                   std::string(reloaded.status().message()).c_str());
    }
  }
  std::fprintf(stderr, "troupe-server: %s received: readiness off, draining for %s, then live RPCs get %s\n",
               signal_number == SIGINT ? "SIGINT" : "SIGTERM", absl::FormatDuration(flags.drain_delay).c_str(),
               absl::FormatDuration(flags.server.shutdown_grace).c_str());
  (*server)->Drain();
  if (flags.drain_delay > absl::ZeroDuration()) absl::SleepFor(flags.drain_delay);
  (*server)->Shutdown();
  std::fprintf(stderr, "troupe-server: stopped\n");
  return 0;
}

int Run(int argc, char** argv) {
  Flags flags;
  if (std::optional<int> exit_code = ParseFlags(argc, argv, flags)) return *exit_code;
  return Serve(flags);
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
