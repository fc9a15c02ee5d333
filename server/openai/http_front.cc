#include "server/openai/http_front.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/openai/openai_request.h"
#include "server/openai/openai_response.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {
namespace {

using Json = nlohmann::json;
using Endpoint = OpenAiResponder::Endpoint;

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// The request headers the RolePlay service reads, as call metadata. gRPC metadata carries
// printable ASCII only; a header with anything else is refused rather than forwarded mangled.
constexpr const char* kForwardedHeaders[] = {"authorization", "x-api-key", "x-session-id"};

absl::Status ForwardHeaders(const httplib::Request& request, grpc::ClientContext& context) {
  for (const char* name : kForwardedHeaders) {
    if (!request.has_header(name)) continue;
    const std::string value = request.get_header_value(name);
    for (unsigned char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return absl::InvalidArgumentError(absl::StrCat("header ", name, ": only printable ASCII is accepted"));
      }
    }
    context.AddMetadata(name, value);
  }
  return absl::OkStatus();
}

// A RESOURCE_EXHAUSTED with the server's retry-after-ms trailer is a key over its limits: 429
// with Retry-After. Without it (a full queue, a request larger than the KV cache) it is not
// the client's rate: 503.
void SendError(httplib::Response& response, const absl::Status& status, int64_t retry_after_ms = 0,
               std::string_view code = "") {
  int http_status = HttpStatusFor(status.code());
  if (http_status == 429) {
    if (retry_after_ms > 0) {
      response.set_header("Retry-After", absl::StrCat((retry_after_ms + 999) / 1000));
    } else {
      http_status = 503;
    }
  }
  response.status = http_status;
  response.set_content(ErrorJson(status, code, http_status), "application/json");
}

// One streaming RolePlay call (Generate or Chat), read as GenerateResponse messages: Chat's
// messages have Generate's fields 1-6 and chat-only ones the HTTP API does not show.
class CallStream {
 public:
  // REQUIRES: the metadata was forwarded into context() before Start.
  grpc::ClientContext& context() { return context_; }

  void Start(v1::RolePlay::Stub& stub, const OpenAiCall& call) {
    if (call.kind == OpenAiCall::Kind::kChat) {
      chat_ = stub.Chat(&context_, call.chat);
    } else {
      generate_ = stub.Generate(&context_, call.generate);
    }
  }

  bool Read(v1::GenerateResponse* out) {
    if (generate_ != nullptr) return generate_->Read(out);
    v1::ChatResponse chat;
    if (!chat_->Read(&chat)) return false;
    out->Clear();
    *out->mutable_token_ids() = std::move(*chat.mutable_token_ids());
    out->set_text(std::move(*chat.mutable_text()));
    *out->mutable_logprobs() = std::move(*chat.mutable_logprobs());
    out->set_finish_reason(chat.finish_reason());
    if (chat.has_usage()) *out->mutable_usage() = chat.usage();
    if (chat.has_timings()) *out->mutable_timings() = chat.timings();
    return true;
  }

  absl::Status Finish() {
    finished_ = true;
    return FromGrpc(generate_ != nullptr ? generate_->Finish() : chat_->Finish());
  }

  // The server's retry-after-ms trailer (rate limits); 0 when absent. After Finish.
  int64_t RetryAfterMs() const {
    const auto& trailers = context_.GetServerTrailingMetadata();
    const auto it = trailers.find("retry-after-ms");
    int64_t ms = 0;
    if (it == trailers.end() || !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms)) {
      return 0;
    }
    return ms;
  }

  void Cancel() { context_.TryCancel(); }

  ~CallStream() {
    if (finished_ || (generate_ == nullptr && chat_ == nullptr)) return;
    Cancel();
    v1::GenerateResponse ignored;
    while (Read(&ignored)) {
    }
    Finish().IgnoreError();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> generate_;
  std::unique_ptr<grpc::ClientReader<v1::ChatResponse>> chat_;
  bool finished_ = false;
};

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--http-listen \"", address, "\": expected host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpFront>> HttpFront::Start(const HttpFrontOptions& options,
                                                             std::shared_ptr<grpc::Channel> channel) {
  absl::StatusOr<std::pair<std::string, int>> address = SplitHostPort(options.listen_address);
  if (!address.ok()) return address.status();
  std::unique_ptr<HttpFront> front(new HttpFront());
  front->options_ = options;
  front->stub_ = v1::RolePlay::NewStub(channel);
  if (options.tls_cert_file.empty()) {
    front->http_ = std::make_unique<httplib::Server>();
  } else {
    auto https = std::make_unique<httplib::SSLServer>(
        options.tls_cert_file.c_str(), options.tls_key_file.c_str(),
        options.tls_client_ca_file.empty() ? nullptr : options.tls_client_ca_file.c_str());
    if (!https->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("HTTPS: the certificate ", options.tls_cert_file, ", key ",
                                                     options.tls_key_file, " or client CA do not load"));
    }
    front->http_ = std::move(https);
  }
  const int threads = std::max(1, options.num_threads);
  front->http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  front->http_->set_payload_max_length(options.max_body_bytes);
  front->http_->set_keep_alive_max_count(100);
  front->Route();

  const auto& [host, port] = *address;
  front->port_ = port == 0 ? front->http_->bind_to_any_port(host) : (front->http_->bind_to_port(host, port) ? port : -1);
  if (front->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", options.listen_address,
                                               " (address in use or invalid; --http-listen \"\" turns HTTP off)"));
  }
  httplib::Server* http = front->http_.get();
  front->listener_ = std::thread([http] { http->listen_after_bind(); });
  // stop() before the listener runs would be lost; wait until it does.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!http->is_running() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  if (!http->is_running()) {
    http->stop();  // closes the bound socket, so a listener that starts late returns at once
    front->listener_.join();
    return absl::UnavailableError(absl::StrCat("the HTTP listener on ", options.listen_address, " did not start"));
  }
  return front;
}

HttpFront::~HttpFront() {
  Stop();
  Join();
}

void HttpFront::Stop() {
  if (http_ != nullptr) http_->stop();
}

void HttpFront::Join() {
  if (listener_.joinable()) listener_.join();
}

void HttpFront::Serve(const httplib::Request& request, httplib::Response& response, bool chat) {
  absl::StatusOr<OpenAiCall> call = chat ? ParseChatCompletion(request.body, {.chat_defaults = options_.chat_defaults})
                                         : ParseCompletion(request.body);
  if (!call.ok()) return SendError(response, call.status());
  if (!call->model.empty() && call->model != options_.model_name) {
    return SendError(response,
                     absl::NotFoundError(absl::StrCat("the model \"", call->model, "\" is not served here; this server serves \"",
                                                      options_.model_name, "\" (GET /v1/models)")),
                     0, "model_not_found");
  }
  auto stream = std::make_shared<CallStream>();
  if (absl::Status forwarded = ForwardHeaders(request, stream->context()); !forwarded.ok()) {
    return SendError(response, forwarded);
  }
  stream->Start(*stub_, *call);
  auto responder = std::make_shared<OpenAiResponder>(OpenAiResponder::Options{
      .endpoint = chat ? Endpoint::kChatCompletions : Endpoint::kCompletions,
      .model = options_.model_name,
      .include_usage = call->include_usage,
      .logprobs = call->logprobs,
      .token_text = options_.token_text});

  v1::GenerateResponse message;
  if (!call->stream) {
    while (stream->Read(&message)) responder->Add(message);
    const absl::Status status = stream->Finish();
    if (!status.ok()) return SendError(response, status, stream->RetryAfterMs());
    response.set_content(responder->Body(), "application/json");
    return;
  }
  // The first message decides between an HTTP error and a stream of events.
  if (!stream->Read(&message)) {
    absl::Status status = stream->Finish();
    if (status.ok()) status = absl::InternalError("the call ended without a message");
    return SendError(response, status, stream->RetryAfterMs());
  }
  auto pending = std::make_shared<std::string>(responder->Chunk(message));
  response.set_header("Cache-Control", "no-cache");
  response.set_header("X-Accel-Buffering", "no");  // nginx: pass events on as they come
  response.set_chunked_content_provider(
      "text/event-stream",
      [stream, responder, pending](size_t /*offset*/, httplib::DataSink& sink) {
        if (!pending->empty()) {
          const std::string events = std::move(*pending);
          pending->clear();
          return sink.write(events.data(), events.size());
        }
        v1::GenerateResponse next;
        if (stream->Read(&next)) {
          const std::string events = responder->Chunk(next);
          return sink.write(events.data(), events.size());
        }
        const absl::Status status = stream->Finish();
        const std::string tail = status.ok() ? OpenAiResponder::Done() : OpenAiResponder::StreamError(status);
        sink.write(tail.data(), tail.size());
        sink.done();
        return true;
      },
      [stream](bool success) {
        if (!success) stream->Cancel();  // the client left: the engine stops generating
      });
}

void HttpFront::Route() {
  // Before any body is read: only bodies whose size is known up front (Content-Length, capped
  // by max_body_bytes) and that are not compressed, so no request can grow past the cap while
  // it is read or inflated.
  http_->set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
    const std::string encoding = request.get_header_value("Transfer-Encoding");
    if (!encoding.empty() && encoding != "identity") {
      SendError(response, absl::InvalidArgumentError("send the body with a Content-Length, not chunked"));
      response.status = 411;
      return httplib::Server::HandlerResponse::Handled;
    }
    const std::string content_encoding = request.get_header_value("Content-Encoding");
    if (!content_encoding.empty() && content_encoding != "identity") {
      SendError(response, absl::InvalidArgumentError("compressed request bodies are not accepted"));
      response.status = 415;
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_->Post("/v1/chat/completions",
              [this](const httplib::Request& request, httplib::Response& response) { Serve(request, response, true); });
  http_->Post("/v1/completions",
              [this](const httplib::Request& request, httplib::Response& response) { Serve(request, response, false); });
  http_->Get("/v1/models", [this](const httplib::Request& request, httplib::Response& response) {
    grpc::ClientContext context;
    if (absl::Status forwarded = ForwardHeaders(request, context); !forwarded.ok()) {
      return SendError(response, forwarded);
    }
    v1::ServerInfo info;
    const absl::Status status = FromGrpc(stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info));
    if (!status.ok()) return SendError(response, status);
    const Json model = {{"id", options_.model_name},
                        {"object", "model"},
                        {"created", absl::ToUnixSeconds(absl::Now())},
                        {"owned_by", "troupe"},
                        {"root", info.model_name()},
                        {"max_model_len", info.context_length()}};
    const Json list = {{"object", "list"}, {"data", Json::array({model})}};
    response.set_content(list.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
  });
  http_->Get("/health", [this](const httplib::Request&, httplib::Response& response) {
    if (options_.ready && !options_.ready()) {
      return SendError(response, absl::UnavailableError("not ready (starting or draining)"));
    }
    response.status = 200;
  });
  // Whatever httplib answers by itself (no route, a body over the limit, a malformed request)
  // gets OpenAI's error shape too.
  http_->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& request,
                                                                   httplib::Response& response) {
    if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    absl::Status status;
    if (response.status == 404) {
      status = absl::NotFoundError(absl::StrCat("no route for ", request.method, " ", request.path));
    } else if (response.status == 413) {
      status = absl::InvalidArgumentError("the request body is larger than this server accepts");
    } else {
      status = absl::InvalidArgumentError(absl::StrCat("HTTP ", response.status));
    }
    const int http_status = response.status;
    response.set_content(ErrorJson(status), "application/json");
    response.status = http_status;
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
    SendError(response, absl::InternalError("the request failed inside the server"));
  });
}

}  // namespace troupe
