// The OpenAI-compatible HTTP front (--http-listen): POST /v1/chat/completions and
// /v1/completions (streamed as server-sent events or whole), GET /v1/models and GET /health,
// served by cpp-httplib. Each request becomes a call of the RolePlay service over the gRPC
// server's in-process channel, carrying the HTTP request's Authorization / x-api-key /
// x-session-id headers as call metadata, so keys, tenants, limits, validation and the prefix
// cache are the gRPC API's, unchanged (docs/api.md, "OpenAI-compatible HTTP").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "engine/sampler/sampling_params.h"

#include "troupe/v1/roleplay.grpc.pb.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace troupe {

struct HttpFrontOptions {
  std::string listen_address;  // host:port ("[::1]:8000" for IPv6); port 0 picks a free port
  int num_threads = 64;        // connections served at once (a streamed reply holds one)
  std::string model_name;      // what /v1/models lists and requests may name
  size_t max_body_bytes = 16 << 20;  // larger bodies get 413; chunked or compressed ones 411/415
  // TLS, as on the gRPC port (--tls-cert, --tls-key, --tls-client-ca): HTTPS, and with a client
  // CA, client certificates required. Empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  SamplingParams chat_defaults;      // the chat preset, for fields a chat completion leaves unset
  // The text of a token id (logprobs); must be thread-safe.
  std::function<std::string(int32_t)> token_text;
  // /health: 200 while true, 503 otherwise (starting, draining).
  std::function<bool()> ready;
};

// Thread-safe. Stop, then Join, after the gRPC server has cancelled what is still running.
class HttpFront {
 public:
  // Binds and starts serving on a thread of its own. kUnavailable when the address cannot be
  // bound or the listener does not start; kInvalidArgument when it is not host:port or the TLS
  // files do not load.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpFront>> Start(const HttpFrontOptions& options,
                                                                         std::shared_ptr<grpc::Channel> channel);
  ~HttpFront();  // Stop() and Join()
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  int port() const { return port_; }

  // Stops accepting connections and ends kept-alive ones after their current request. Does
  // not wait. Idempotent.
  void Stop();
  // Waits for the requests in flight to end (streams end when their gRPC calls do).
  void Join();

 private:
  HttpFront() = default;
  void Route();
  // POST /v1/chat/completions (chat) or /v1/completions.
  void Serve(const httplib::Request& request, httplib::Response& response, bool chat);

  HttpFrontOptions options_;
  std::unique_ptr<v1::RolePlay::Stub> stub_;  // thread-safe; over the in-process channel
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  int port_ = 0;
};

}  // namespace troupe
