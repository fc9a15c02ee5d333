#include "bench/load/driver.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe::load {
namespace {

namespace v1 = ::troupe::v1;
using Clock = std::chrono::steady_clock;

// State shared by the conversation threads.
class Run {
 public:
  Run(const DriverOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options), stub_(v1::RolePlay::NewStub(channel)), start_(Clock::now()) {}

  double Now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // Runs one conversation to its end or first failure; appends one record per turn sent.
  void Converse(int index, const Conversation& conv) {
    v1::Session session;
    {
      v1::CreateSessionRequest create;
      grpc::Status status;
      if (options_.stored_characters) {
        absl::StatusOr<std::string> character_id = StoredCharacterFor(conv.character);
        if (character_id.ok()) {
          create.set_character_id(*character_id);
          create.mutable_setup()->set_user_name("User");
        } else {
          status = grpc::Status(grpc::StatusCode::UNKNOWN, std::string(character_id.status().message()));
        }
      } else {
        create.mutable_character()->set_name("Character");
        create.mutable_character()->set_system_prompt(conv.character);
      }
      if (status.ok()) {
        status = WithRetries([&] {
          grpc::ClientContext context;
          Prepare(context);
          return stub_->CreateSession(&context, create, &session);
        });
      }
      if (!status.ok()) {
        RequestRecord r;
        r.conversation = index;
        r.start = r.end = Now();
        r.error = absl::StrCat("CreateSession: ", status.error_message());
        Add(std::move(r));
        done_ += static_cast<int>(conv.turns.size());
        return;
      }
    }
    for (size_t t = 0; t < conv.turns.size(); ++t) {
      if (t > 0 && options_.think_time_s > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(options_.think_time_s));
      }
      RequestRecord r = ChatTurnWithRetries(session.session_id(), conv.turns[t]);
      r.conversation = index;
      r.turn = static_cast<int>(t);
      const bool ok = r.ok;
      Add(std::move(r));
      ++done_;
      if (!ok) {
        done_ += static_cast<int>(conv.turns.size() - t - 1);
        break;
      }
    }
    if (options_.keep_sessions) return;
    v1::DeleteSessionRequest del;
    del.set_session_id(session.session_id());
    v1::DeleteSessionResponse deleted;
    (void)WithRetries([&] {
      grpc::ClientContext context;
      Prepare(context, session.session_id());
      return stub_->DeleteSession(&context, del, &deleted);
    });
  }

  std::vector<RequestRecord> TakeRecords() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(records_);
  }

  std::atomic<int> done_{0};
  std::atomic<long long> output_tokens_{0};

 private:
  // The deadline and key of every RPC; a session's RPCs also carry its id as `x-session-id`,
  // on which a gateway routes the session's turns to one replica.
  void Prepare(grpc::ClientContext& context, const std::string& session_id = "") const {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<int64_t>(options_.rpc_timeout_s * 1e3)));
    if (!options_.api_key.empty()) context.AddMetadata("x-api-key", options_.api_key);
    if (!session_id.empty()) context.AddMetadata("x-session-id", session_id);
  }

  // The stored character of a character prompt (its description), made on first use.
  absl::StatusOr<std::string> StoredCharacterFor(const std::string& prompt) {
    std::lock_guard<std::mutex> lock(characters_mu_);  // one CreateCharacter per prompt
    if (auto it = characters_.find(prompt); it != characters_.end()) return it->second;
    v1::CreateCharacterRequest create;
    v1::CharacterProfile* profile = create.mutable_profile();
    profile->set_name(absl::StrCat("Character ", characters_.size() + 1));
    profile->set_description(prompt);
    v1::StoredCharacter stored;
    grpc::ClientContext context;
    Prepare(context);
    const grpc::Status status = stub_->CreateCharacter(&context, create, &stored);
    if (!status.ok()) return absl::UnknownError(absl::StrCat("CreateCharacter: ", status.error_message()));
    characters_.emplace(prompt, stored.character_id());
    return stored.character_id();
  }

  // Whether an RPC that failed so is sent again (with max_retries): UNAVAILABLE (no replica
  // answered, or one refused the call while draining), and a stream a gateway reset because its
  // replica died mid-reply (INTERNAL "Received RST_STREAM"): both mean "try another replica".
  static bool Retryable(const grpc::Status& status) {
    return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
           (status.error_code() == grpc::StatusCode::INTERNAL &&
            status.error_message().rfind("Received RST_STREAM", 0) == 0);
  }

  // The wait before retry `retry` (0-based) of an RPC that failed with UNAVAILABLE.
  static std::chrono::milliseconds RetryBackoff(int retry) {
    return std::chrono::milliseconds(std::min(8000, 500 << std::min(retry, 4)));
  }

  // Runs `rpc` (returning its grpc::Status) again while it fails with UNAVAILABLE, up to
  // max_retries times.
  template <typename Rpc>
  grpc::Status WithRetries(Rpc rpc) {
    grpc::Status status = rpc();
    for (int retry = 0; retry < options_.max_retries && Retryable(status); ++retry) {
      std::this_thread::sleep_for(RetryBackoff(retry));
      status = rpc();
    }
    return status;
  }

  RequestRecord ChatTurnWithRetries(const std::string& session_id, const Turn& turn) {
    grpc::Status status;
    RequestRecord r = ChatTurn(session_id, turn, &status);
    for (int retry = 0; retry < options_.max_retries && Retryable(status); ++retry) {
      std::this_thread::sleep_for(RetryBackoff(retry));
      r = ChatTurn(session_id, turn, &status);
      r.retries = retry + 1;
    }
    return r;
  }

  RequestRecord ChatTurn(const std::string& session_id, const Turn& turn, grpc::Status* final_status) {
    v1::ChatRequest request;
    request.set_session_id(session_id);
    request.set_message(turn.user);
    request.set_priority(options_.priority);
    request.set_cache_salt(options_.cache_salt);
    v1::SamplingParams* sampling = request.mutable_sampling();
    sampling->set_temperature(options_.temperature);
    sampling->set_max_tokens(turn.max_tokens > 0 ? turn.max_tokens : options_.default_max_tokens);
    sampling->set_ignore_eos(options_.ignore_eos);
    grpc::ClientContext context;
    Prepare(context, session_id);
    RequestRecord r;
    r.session_id = session_id;
    r.start = Now();
    std::unique_ptr<grpc::ClientReader<v1::ChatResponse>> reader = stub_->Chat(&context, request);
    v1::ChatResponse response;
    while (reader->Read(&response)) {
      const double now = Now();
      r.reply += response.text();
      if (response.token_ids_size() > 0) {
        r.token_times.push_back(now);
        r.token_counts.push_back(response.token_ids_size());
        output_tokens_ += response.token_ids_size();
      }
      if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
        r.prompt_tokens = response.usage().prompt_tokens();
        r.cached_prompt_tokens = response.usage().cached_prompt_tokens();
        r.restored_prompt_tokens = response.usage().restored_prompt_tokens();
        r.completion_tokens = response.usage().completion_tokens();
        r.has_prompt_plan = response.has_prompt_plan();
        r.rendered_in_full = response.prompt_plan().rendered_in_full();
        r.folded_turns = response.prompt_plan().folded_turns();
        r.context_tokens = response.prompt_plan().context_tokens();
      }
    }
    const grpc::Status status = reader->Finish();
    r.end = Now();
    r.ok = status.ok();
    *final_status = status;
    if (!r.ok) r.error = absl::StrCat(status.error_code(), ": ", status.error_message());
    return r;
  }

  void Add(RequestRecord r) {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(r));
  }

  const DriverOptions& options_;
  std::unique_ptr<v1::RolePlay::Stub> stub_;
  const Clock::time_point start_;
  std::mutex mu_;
  std::vector<RequestRecord> records_;
  std::mutex characters_mu_;
  std::map<std::string, std::string> characters_;  // character prompt -> stored character id
};

// At most `limit` holders at once (0 = no limit).
class Slots {
 public:
  explicit Slots(int limit) : free_(limit > 0 ? limit : std::numeric_limits<int>::max()) {}
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

}  // namespace

absl::StatusOr<LoadResult> RunLoad(const DriverOptions& options,
                                   const std::vector<Conversation>& conversations) {
  if (conversations.empty()) return absl::InvalidArgumentError("no conversations to run");
  if (options.mode == Mode::kOpenLoop && !(options.request_rate > 0)) {
    return absl::InvalidArgumentError("request rate must be > 0");
  }
  if (!(options.burstiness > 0)) return absl::InvalidArgumentError("burstiness must be > 0");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(static_cast<int64_t>(options.connect_timeout_s * 1e3)))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", options.target));
  }
  int total = 0;
  for (const Conversation& c : conversations) total += static_cast<int>(c.turns.size());

  Run run(options, channel);
  std::atomic<bool> finished{false};
  auto report_progress = [&] {
    if (options.on_progress) {
      options.on_progress(Progress{run.done_.load(), total, run.output_tokens_.load(), run.Now()});
    }
  };
  std::thread monitor([&] {
    while (!finished.load()) {
      report_progress();
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });

  std::vector<std::thread> threads;
  Slots slots(options.concurrency);  // kOpenLoop; outlives the threads that use it
  // kMultiTurn: the next conversation to claim; outlives the threads that use it (declared
  // inside the branch it went out of scope while they ran: ASan's stack-use-after-scope).
  std::atomic<int> next{0};
  if (options.mode == Mode::kMultiTurn) {
    const int clients = std::max(1, std::min<int>(options.concurrency, static_cast<int>(conversations.size())));
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        for (int i = next++; i < static_cast<int>(conversations.size()); i = next++) {
          run.Converse(i, conversations[i]);
        }
      });
    }
  } else {
    // Gamma(shape = burstiness, scale = 1 / (rate * burstiness)) gaps have mean 1 / rate.
    std::mt19937_64 rng(options.seed);
    std::gamma_distribution<double> gap(options.burstiness, 1.0 / (options.request_rate * options.burstiness));
    double at = 0.0;
    for (int i = 0; i < static_cast<int>(conversations.size()); ++i) {
      if (std::isfinite(options.request_rate)) {
        if (i > 0) at += gap(rng);
        const double wait = at - run.Now();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      }
      slots.Acquire();
      threads.emplace_back([&, i] {
        run.Converse(i, conversations[i]);
        slots.Release();
      });
    }
  }
  for (std::thread& t : threads) t.join();
  LoadResult result;
  result.duration_s = run.Now();
  finished = true;
  monitor.join();
  report_progress();
  result.records = run.TakeRecords();
  return result;
}

}  // namespace troupe::load
