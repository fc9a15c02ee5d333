// Engine: model loading, request validation, and the engine thread's step loop.
#include "engine/engine.h"

#include <algorithm>
#include <limits>
#include <cmath>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/check.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/backend/backend.h"
#include "engine/formats/gguf.h"
#include "engine/inbox.h"
#include "engine/kv/block_pool.h"
#include "engine/model/dummy_model.h"
#include "engine/model/hf_checkpoint.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"
#include "engine/model_runner.h"
#include "engine/sampler/dry.h"
#include "engine/sampler/stop_matcher.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "engine/scheduler/scheduler.h"

namespace troupe {
namespace {

// What the exception being handled says. REQUIRES: called inside a catch block.
std::string CurrentExceptionText() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

// The status a request ends with when the engine failed while serving it.
absl::Status EngineFault(RequestId id, const char* where, const std::string& what) {
  TROUPE_LOG_ERROR("request %llu failed in the engine while %s: %s; the engine goes on",
                   static_cast<unsigned long long>(id), where, what.c_str());
  return absl::InternalError(absl::StrCat("internal error in the engine while ", where, ": ", what));
}

// Everything the engine thread keeps for one request.
struct LiveRequest {
  LiveRequest(Request r, const Tokenizer& tokenizer)
      : request(std::move(r)),
        sampler(request.sampling, request.prompt, request.dry_breakers),
        detokenizer(tokenizer),
        stop(request.sampling.stop),
        device_seed(request.sampling.seed.value_or(std::random_device{}() * 0x100000001ull)) {}
  // Whether a backend that samples on the device can serve this request's draws: the device
  // path has no penalties, no DRY or XTC, no logprobs and no scored ids (backend.h
  // RowSampling).
  bool DeviceSamplable() const {
    const SamplingParams& p = request.sampling;
    const bool xtc = p.xtc_probability > 0.0f && p.xtc_threshold <= 0.5f;
    return !request.embed_only && p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
           p.frequency_penalty == 0.0f && p.dry_multiplier == 0.0f && !xtc && p.logprobs < 0 &&
           p.scored_token_ids.empty();
  }
  Request request;
  Sequence seq;
  Sampler sampler;
  StreamingDetokenizer detokenizer;
  StopMatcher stop;
  int max_tokens_total = 0;  // prompt + completion limit (max_tokens, capped by the context)
  absl::Time first_scheduled = absl::InfinitePast();
  absl::Time first_token = absl::InfinitePast();
  std::vector<float> embedding;  // embed-only requests, set when the prompt is computed
  uint64_t device_seed = 0;      // the seed of device-side draws (params.seed, or random)
};

}  // namespace

class Engine::Impl {
 public:
  explicit Impl(const EngineOptions& options) : options_(options), inbox_(options.max_waiting) {}
  ~Impl() { Shutdown(); }

  absl::Status Load();
  void Start() { thread_ = std::thread([this] { Loop(); }); }
  absl::Status Submit(Request request);
  void Cancel(RequestId id) { inbox_.PushCancel(id); }
  EngineStats Stats() const;
  void Shutdown();

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ModelInfo& model_info() const { return info_; }
  const EngineOptions& options() const { return options_; }

 private:
  // Fills file_ (gguf only), checkpoint_ (hf only), config_, weights_, dummy_weights_ (dummy
  // only), tokenizer_, chat_template_ and file_bytes_.
  absl::Status LoadModel();
  // ---- engine thread ----
  // Faults (docs/threading.md): an exception from one request's own work (Accept of it, its
  // sampling, EmitToken, its sink) ends that request with kInternal; one from the batched work
  // of a step (Schedule, the forward pass, Update) ends the requests of that step. Either way
  // Finish returns their KV blocks and the loop goes on.
  void Loop();
  void Accept(Inbox::Batch& batch);
  // Accepts one request. REQUIRES: its id is not live.
  void AcceptOne(Request request);
  void Step();
  // The batched part of a step: the forward pass of `plan`, then Scheduler::Update. Returns the
  // logits (empty when the backend sampled or the step only embeds).
  std::span<float> RunBatch(const StepPlan& plan);
  // Samples row `row` of the step for `live` and emits the token (or ends an embed request).
  void SampleRow(LiveRequest& live, std::span<float> logits, size_t row);
  // Ends every request of `ids` with `status`.
  void FailAll(const std::vector<RequestId>& ids, const absl::Status& status);
  // Streams one sampled token's text and ends the request when a stop condition holds.
  void EmitToken(LiveRequest& live, SampleResult sample);
  // Ends a request: removes it from the scheduler, flushes text, calls Finish, forgets it.
  // Never throws: a sink that throws is logged, and the request is forgotten all the same.
  void Finish(RequestId id, FinishReason reason, const absl::Status& status);
  void PublishStats();
  // Hands kv_events_ to options_.on_kv_events, when set and not empty.
  void PublishKvEvents();

  // ---- constant after Load ----
  const EngineOptions options_;
  std::unique_ptr<GgufFile> file_;                // gguf only
  std::unique_ptr<HfCheckpoint> checkpoint_;      // hf only
  std::string chat_template_;                     // "" = none (raw prompts)
  uint64_t file_bytes_ = 0;                       // bytes of the weight file(s)
  std::unique_ptr<DummyWeights> dummy_weights_;   // owns weights_' buffers for dummy; else null
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<DryBreakerCache> dry_breakers_;  // thread-safe; over tokenizer_
  ModelInfo info_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<BlockPool> pool_;
  std::unique_ptr<HostKvTier> host_tier_;  // null when options_.host_kv_cache_bytes is 0
  int64_t kv_block_bytes_ = 0;
  std::vector<KvEvent> kv_events_;  // the step's, recorded by pool_ (options_.on_kv_events)

  // ---- thread-safe ----
  Inbox inbox_;
  std::thread thread_;
  std::atomic<bool> shut_down_{false};
  std::atomic<int> num_running_{0}, num_waiting_{0}, kv_used_{0};
  std::atomic<int64_t> prompt_tokens_{0}, generation_tokens_{0}, steps_{0}, preemptions_{0};
  std::atomic<int64_t> prefix_queries_{0}, prefix_hits_{0}, prefix_host_hits_{0};
  std::atomic<int64_t> kv_offloaded_{0}, kv_restored_{0};
  std::atomic<int> host_kv_used_{0};
  // Written by the engine thread only.
  AtomicHistogram step_seconds_{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
                                 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0}};
  AtomicHistogram step_tokens_{{1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}};
  AtomicHistogram step_sequences_{{1, 2, 4, 8, 16, 32, 64, 128, 256}};

  // ---- engine thread only ----
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::vector<RowSampling> device_rows_;  // this step's device sampling rows (reused)
  std::unordered_map<RequestId, std::unique_ptr<LiveRequest>> live_;
  uint64_t arrival_counter_ = 0;
};

// ---- loading ----

absl::Status Engine::Impl::LoadModel() {
  std::string format = options_.load_format;
  if (format == "auto") format = IsHfCheckpointDir(options_.model_path) ? "hf" : "gguf";
  if (format == "gguf") {
    TROUPE_ASSIGN_OR_RETURN(file_, GgufFile::Open(options_.model_path));
    TROUPE_ASSIGN_OR_RETURN(config_, ModelConfigFromGguf(*file_));
    TROUPE_ASSIGN_OR_RETURN(weights_, LoadModelWeights(*file_, config_));
    TROUPE_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::FromGguf(*file_));
    chat_template_ = file_->GetString("tokenizer.chat_template").value_or("");
    file_bytes_ = file_->file_bytes();
    return absl::OkStatus();
  }
  if (format == "hf") {
    TROUPE_ASSIGN_OR_RETURN(checkpoint_, HfCheckpoint::Open(options_.model_path));
    config_ = checkpoint_->config();
    weights_ = checkpoint_->weights();
    TROUPE_ASSIGN_OR_RETURN(HfTokenizerFiles files, ReadHfTokenizerFiles(options_.model_path));
    TROUPE_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::FromVocab(std::move(files.vocab)));
    chat_template_ = std::move(files.chat_template);
    file_bytes_ = checkpoint_->file_bytes();
    return absl::OkStatus();
  }
  if (options_.load_format == "dummy") {
    TROUPE_ASSIGN_OR_RETURN(config_, DummyModelConfig(options_.model_path));
    const absl::Time start = absl::Now();
    TROUPE_ASSIGN_OR_RETURN(
        dummy_weights_, DummyWeights::Create(config_, options_.dummy_seed, options_.num_threads));
    weights_ = dummy_weights_->weights();
    TROUPE_ASSIGN_OR_RETURN(tokenizer_, DummyTokenizer(config_.vocab_size));
    TROUPE_LOG_INFO("dummy weights %s (seed %llu): %lld MiB of bf16 in %.2f s",
                    options_.model_path.c_str(),
                    static_cast<unsigned long long>(options_.dummy_seed),
                    static_cast<long long>(dummy_weights_->num_bytes() >> 20),
                    absl::ToDoubleSeconds(absl::Now() - start));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown load format '", options_.load_format,
                                                 "' (want auto, gguf, hf or dummy)"));
}

absl::Status Engine::Impl::Load() {
  TROUPE_RETURN_IF_ERROR(LoadModel());
  dry_breakers_ = std::make_unique<DryBreakerCache>(*tokenizer_);
  if (options_.block_size <= 0 || options_.max_running <= 0 || options_.max_batched_tokens <= 0) {
    return absl::InvalidArgumentError("block_size, max_running and max_batched_tokens must be > 0");
  }
  const KvCacheSpec kv_spec{.block_size = options_.block_size, .type = options_.kv_cache_type};
  const int64_t block_bytes = KvBlockBytes(config_, kv_spec);
  const int64_t num_blocks = options_.kv_cache_bytes / block_bytes;
  if (num_blocks < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache budget of ", options_.kv_cache_bytes, " bytes holds no block (one block of ",
        options_.block_size, " tokens takes ", block_bytes, " bytes)"));
  }
  BackendOptions backend_options{.device = options_.device,
                                 .num_threads = options_.num_threads,
                                 .kv = {.num_blocks = static_cast<int>(num_blocks),
                                        .block_size = options_.block_size,
                                        .type = options_.kv_cache_type}};
  TROUPE_ASSIGN_OR_RETURN(backend_,
                          CreateBackend(backend_options, config_, weights_, file_.get()));
  // Built here, on the caller's thread, but first used by Loop: their engine-thread checks
  // (common/thread_owner.h) bind on first use, so they bind to the engine thread. Load must
  // call none of their mutators.
  pool_ = std::make_unique<BlockPool>(static_cast<int>(num_blocks));
  if (options_.on_kv_events) pool_->RecordEvents(&kv_events_);
  kv_block_bytes_ = block_bytes;
  if (options_.host_kv_cache_bytes < 0) {
    return absl::InvalidArgumentError("host_kv_cache_bytes must be >= 0");
  }
  const int64_t host_slots = options_.host_kv_cache_bytes / block_bytes;
  if (options_.host_kv_cache_bytes > 0 && host_slots == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host KV tier budget of ", options_.host_kv_cache_bytes, " bytes holds no block (one block of ",
        options_.block_size, " tokens is ", block_bytes, " bytes here); raise it or set it to 0"));
  }
  if (host_slots > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("host KV tier budget of ", options_.host_kv_cache_bytes,
                                                   " bytes is ", host_slots, " blocks, over the ",
                                                   std::numeric_limits<int>::max(), " a tier can index"));
  }
  if (host_slots > 0) {
    if (!options_.enable_prefix_caching) {
      return absl::InvalidArgumentError("the host KV tier holds prefix-cache blocks; it needs prefix caching on");
    }
    TROUPE_RETURN_IF_ERROR(backend_->AllocateHostKv(host_slots));
    host_tier_ = std::make_unique<HostKvTier>(static_cast<int>(host_slots));
    if (options_.on_kv_events) host_tier_->RecordEvents(&kv_events_);
    pool_->AttachHostTier(host_tier_.get());
    TROUPE_LOG_INFO("host KV tier: %lld blocks (%lld MiB)", static_cast<long long>(host_slots),
                    static_cast<long long>(host_slots * block_bytes >> 20));
  }
  scheduler_ = std::make_unique<Scheduler>(
      SchedulerOptions{.max_running = options_.max_running,
                       .max_batched_tokens = options_.max_batched_tokens,
                       .block_size = options_.block_size,
                       .enable_prefix_caching = options_.enable_prefix_caching,
                       .max_prefill_tokens_while_decoding = options_.max_prefill_tokens_while_decoding,
                       .max_prefill_cost_ratio_while_decoding =
                           options_.max_prefill_cost_ratio_while_decoding,
                       .attention_pair_cost = AttentionPairCost(config_)},
      *pool_);
  runner_ = std::make_unique<ModelRunner>(*backend_, options_.block_size, config_.vocab_size, config_.dim);

  int max_len = config_.context_length;
  if (options_.max_model_len > 0) max_len = std::min(max_len, options_.max_model_len);
  max_len = static_cast<int>(std::min<int64_t>(max_len, num_blocks * options_.block_size));
  // Dummy weights have no chat template: raw.
  const ChatFamily chat_family = DetectChatFamily(chat_template_);
  info_ = ModelInfo{.name = config_.name,
                    .architecture = config_.architecture,
                    .vocab_size = config_.vocab_size,
                    .hidden_dim = config_.dim,
                    .max_model_len = max_len,
                    .chat_family = chat_family,
                    .num_parameters = config_.num_parameters,
                    .tied_embeddings = config_.tied_embeddings,
                    .file_bytes = file_bytes_};
  TROUPE_LOG_INFO("loaded %s on %s: %d layers, dim %d, vocab %d, context %d, chat %s; KV %lld "
                  "blocks x %d tokens (%lld MiB, %s); %lld MiB of weights owned by the backend",
                  options_.model_path.c_str(), std::string(backend_->name()).c_str(), config_.num_layers, config_.dim, config_.vocab_size,
                  max_len, std::string(ChatFamilyName(info_.chat_family)).c_str(),
                  static_cast<long long>(num_blocks), options_.block_size,
                  static_cast<long long>(num_blocks * block_bytes >> 20),
                  std::string(KvCacheTypeName(options_.kv_cache_type)).c_str(),
                  static_cast<long long>(backend_->owned_weight_bytes() >> 20));
  PublishStats();
  return absl::OkStatus();
}

// ---- thread-safe surface ----

absl::Status Engine::Impl::Submit(Request request) {
  TROUPE_CHECK(request.sink != nullptr);
  const int limit = info_.max_model_len;
  if (request.prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  if (static_cast<int>(request.prompt.size()) >= limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt is ", request.prompt.size(), " tokens; the limit is ", limit - 1,
        " tokens (context length ", limit, " leaves room for at least one generated token)"));
  }
  for (TokenId id : request.prompt) {
    if (id < 0 || id >= config_.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token id ", id, " is outside the vocabulary [0, ", config_.vocab_size, ")"));
    }
  }
  TROUPE_RETURN_IF_ERROR(ValidateSamplingParams(request.sampling));
  if (request.sampling.dry_multiplier > 0.0f && request.dry_breakers == nullptr &&
      dry_breakers_ != nullptr) {
    request.dry_breakers = dry_breakers_->Get(request.sampling.dry_sequence_breakers);
  }
  if (request.arrival_time == absl::InfinitePast()) request.arrival_time = absl::Now();
  return inbox_.PushRequest(std::move(request));
}

EngineStats Engine::Impl::Stats() const {
  return EngineStats{.num_running = num_running_.load(),
                     .num_waiting = num_waiting_.load(),
                     .kv_blocks_used = kv_used_.load(),
                     .kv_blocks_total = pool_ ? pool_->num_blocks() : 0,
                     .prompt_tokens_total = prompt_tokens_.load(),
                     .generation_tokens_total = generation_tokens_.load(),
                     .num_steps = steps_.load(),
                     .num_preemptions = preemptions_.load(),
                     .prefix_cache_queries_total = prefix_queries_.load(),
                     .prefix_cache_hits_total = prefix_hits_.load(),
                     .prefix_cache_host_hits_total = prefix_host_hits_.load(),
                     .kv_offloaded_blocks_total = kv_offloaded_.load(),
                     .kv_restored_blocks_total = kv_restored_.load(),
                     .kv_offloaded_bytes_total = kv_offloaded_.load() * kv_block_bytes_,
                     .kv_restored_bytes_total = kv_restored_.load() * kv_block_bytes_,
                     .host_kv_blocks_used = host_kv_used_.load(),
                     .host_kv_blocks_total = host_tier_ ? host_tier_->num_slots() : 0,
                     .step_seconds = step_seconds_.Snapshot(),
                     .step_tokens = step_tokens_.Snapshot(),
                     .step_sequences = step_sequences_.Snapshot()};
}

void Engine::Impl::Shutdown() {
  if (shut_down_.exchange(true)) return;
  inbox_.Close();
  if (thread_.joinable()) thread_.join();
}

// ---- engine thread ----

void Engine::Impl::PublishKvEvents() {
  if (!options_.on_kv_events || kv_events_.empty()) return;
  std::vector<KvEvent> events;
  events.swap(kv_events_);
  options_.on_kv_events(std::move(events));
}

void Engine::Impl::Loop() {
  // Whatever a subscriber knew of this replica's cache (an earlier run's) is gone.
  kv_events_.push_back(KvEvent{.kind = KvEvent::Kind::kCleared, .hash = 0, .parent = kNoParentHash, .tokens = {}});
  PublishKvEvents();
  while (true) {
    const bool idle = scheduler_->num_running() == 0 && scheduler_->num_waiting() == 0;
    Inbox::Batch batch = inbox_.Take(/*block=*/idle);
    if (batch.shutdown) {
      // Requests that never started and live ones alike end with kUnavailable.
      for (Request& r : batch.requests) {
        r.sink->Finish(absl::UnavailableError("the server is shutting down"), Completion{});
      }
      std::vector<RequestId> ids;
      for (const auto& [id, live] : live_) ids.push_back(id);
      for (RequestId id : ids) {
        Finish(id, FinishReason::kCancelled, absl::UnavailableError("the server is shutting down"));
      }
      PublishStats();
      kv_events_.push_back(KvEvent{.kind = KvEvent::Kind::kCleared, .hash = 0, .parent = kNoParentHash, .tokens = {}});
      PublishKvEvents();
      return;
    }
    Accept(batch);
    Step();
    PublishStats();
    PublishKvEvents();
  }
}

void Engine::Impl::Accept(Inbox::Batch& batch) {
  for (Request& r : batch.requests) {
    const RequestId id = r.id;
    std::shared_ptr<TokenSink> sink = r.sink;
    if (live_.count(id)) {
      sink->Finish(absl::InvalidArgumentError(absl::StrCat("duplicate request id ", id)), Completion{});
      continue;
    }
    try {
      AcceptOne(std::move(r));
    } catch (...) {
      const absl::Status fault = EngineFault(id, "accepting the request", CurrentExceptionText());
      if (live_.count(id)) {
        Finish(id, FinishReason::kError, fault);
      } else {
        try {
          sink->Finish(fault, Completion{});
        } catch (...) {
          TROUPE_LOG_ERROR("the sink of request %llu threw from Finish: %s",
                           static_cast<unsigned long long>(id), CurrentExceptionText().c_str());
        }
      }
    }
  }
  for (RequestId id : batch.cancels) {
    if (live_.count(id)) Finish(id, FinishReason::kCancelled, absl::CancelledError("request cancelled"));
  }
}

void Engine::Impl::AcceptOne(Request request) {
  const RequestId id = request.id;
  auto owned = std::make_unique<LiveRequest>(std::move(request), *tokenizer_);
  LiveRequest* live = owned.get();
  live_.emplace(id, std::move(owned));  // first, so that a fault below finds it to end it
  Sequence& seq = live->seq;
  seq.id = id;
  seq.priority = live->request.priority;
  if (live->request.promote_after != absl::InfiniteDuration() && seq.priority < 0) {
    seq.promote_at = live->request.arrival_time + live->request.promote_after;
  }
  seq.cache_salt = CacheSaltOf(live->request.cache_salt);
  seq.arrival_order = ++arrival_counter_;
  seq.tokens = live->request.prompt;
  seq.num_prompt_tokens = seq.num_tokens();
  live->max_tokens_total = static_cast<int>(std::min<int64_t>(
      info_.max_model_len, int64_t{seq.num_prompt_tokens} + live->request.sampling.max_tokens));
  scheduler_->Add(&seq);
}

void Engine::Impl::Step() {
  const absl::Time start = absl::Now();
  StepPlan plan;
  try {
    scheduler_->PromoteAged(absl::Now());
    plan = scheduler_->Schedule();
  } catch (...) {
    // The step's batch is unknown: end the running requests (the ones a step would take), or
    // the first waiting one when none runs, so that a fault that repeats cannot spin.
    const std::string what = CurrentExceptionText();
    std::vector<RequestId> ids;
    for (const Sequence* seq : scheduler_->running()) ids.push_back(seq->id);
    if (ids.empty() && scheduler_->num_waiting() > 0) ids.push_back(scheduler_->waiting().front()->id);
    TROUPE_LOG_ERROR("scheduling a step failed: %s; its %zu requests end, the engine goes on", what.c_str(),
                     ids.size());
    FailAll(ids, absl::InternalError(absl::StrCat("internal error in the engine while scheduling a step: ", what)));
    return;
  }
  preemptions_.fetch_add(static_cast<int64_t>(plan.preempted.size()));
  // Offloads of blocks the plan's allocations evicted and restores of the blocks its prefix
  // hits found in the host tier: before the forward pass, even an empty plan's (the pool has
  // already given those blocks their new contents).
  if (std::vector<KvBlockCopy> copies = pool_->TakeCopies(); !copies.empty()) backend_->CopyKvBlocks(copies);
  if (plan.empty()) {
    // Nothing could be scheduled although requests wait: the first one can never fit the cache
    // (the running set is empty, so every block is free). Fail it rather than spin.
    if (scheduler_->num_running() == 0 && scheduler_->num_waiting() > 0) {
      const Sequence* seq = scheduler_->waiting().front();
      Finish(seq->id, FinishReason::kError,
             absl::ResourceExhaustedError("the request needs more KV cache than the server has"));
    }
    return;
  }
  std::span<float> logits;
  try {
    logits = RunBatch(plan);
  } catch (...) {
    const std::string what = CurrentExceptionText();
    std::vector<RequestId> ids;
    for (const ScheduledSeq& s : plan.seqs) ids.push_back(s.seq->id);
    TROUPE_LOG_ERROR("a step of %zu requests failed in the engine: %s; they end, the engine goes on",
                     ids.size(), what.c_str());
    FailAll(ids, absl::InternalError(absl::StrCat(
                     "internal error in the engine while running a batch of ", ids.size(), " requests: ", what)));
    return;
  }

  size_t row = 0;
  for (const ScheduledSeq& s : plan.seqs) {
    if (!s.needs_logits) continue;
    const RequestId id = s.seq->id;
    try {
      SampleRow(*live_.at(id), logits, row);
    } catch (...) {
      Finish(id, FinishReason::kError, EngineFault(id, "sampling its next token", CurrentExceptionText()));
    }
    ++row;
  }
  step_seconds_.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  step_tokens_.Observe(plan.num_tokens);
  step_sequences_.Observe(static_cast<double>(plan.seqs.size()));
}

std::span<float> Engine::Impl::RunBatch(const StepPlan& plan) {
  const absl::Time now = absl::Now();
  int64_t prompt_tokens = 0;
  for (const ScheduledSeq& s : plan.seqs) {
    LiveRequest& live = *live_.at(s.seq->id);
    if (live.first_scheduled == absl::InfinitePast()) live.first_scheduled = now;
    const int prompt_part = std::max(0, std::min(s.seq->num_computed + s.num_tokens, s.seq->num_prompt_tokens) -
                                            s.seq->num_computed);
    prompt_tokens += prompt_part;
  }
  // Sample on the device when the backend can and every sampled row allows it: then only the
  // ids come back, not [rows, vocab] logits.
  bool want_hidden = false;
  bool on_device = backend_->samples_on_device();
  device_rows_.clear();
  for (const ScheduledSeq& s : plan.seqs) {
    if (!s.needs_logits) continue;
    const LiveRequest& live = *live_.at(s.seq->id);
    want_hidden |= live.request.embed_only;
    on_device &= live.DeviceSamplable();
    const SamplingParams& p = live.request.sampling;
    device_rows_.push_back({.temperature = p.temperature, .top_k = p.top_k, .top_p = p.top_p,
                            .min_p = p.min_p, .seed = live.device_seed,
                            .counter = static_cast<uint64_t>(live.sampler.num_generated())});
  }
  if (!on_device) device_rows_.clear();
  if (const auto& hook = options_.fault_hooks_for_testing.before_forward) {
    std::vector<RequestId> ids;
    for (const ScheduledSeq& s : plan.seqs) ids.push_back(s.seq->id);
    hook(ids);
  }
  std::span<float> logits = runner_->Run(plan, device_rows_, want_hidden);
  scheduler_->Update(plan);
  prompt_tokens_.fetch_add(prompt_tokens);
  steps_.fetch_add(1);
  return logits;
}

void Engine::Impl::SampleRow(LiveRequest& live, std::span<float> logits, size_t row) {
  if (const auto& hook = options_.fault_hooks_for_testing.before_sample) hook(live.request);
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  const size_t dim = static_cast<size_t>(config_.dim);
  if (live.request.embed_only) {
    const std::span<const float> h = runner_->hidden().subspan(row * dim, dim);
    live.embedding.assign(h.begin(), h.end());
    Finish(live.seq.id, FinishReason::kLength, absl::OkStatus());
  } else if (!device_rows_.empty()) {
    const TokenId id = runner_->sampled_ids()[row];
    live.sampler.Accept(id);
    SampleResult sample;
    sample.id = id;
    EmitToken(live, std::move(sample));
  } else {
    EmitToken(live, live.sampler.SampleReadOnly(logits.subspan(row * vocab, vocab)));
  }
}

void Engine::Impl::FailAll(const std::vector<RequestId>& ids, const absl::Status& status) {
  for (RequestId id : ids) Finish(id, FinishReason::kError, status);
}

void Engine::Impl::EmitToken(LiveRequest& live, SampleResult sample) {
  const RequestId id = live.seq.id;
  const SamplingParams& params = live.request.sampling;
  generation_tokens_.fetch_add(1);
  if (live.first_token == absl::InfinitePast()) live.first_token = absl::Now();

  if (!params.ignore_eos && tokenizer_->IsEndOfGeneration(sample.id)) {
    live.seq.tokens.push_back(sample.id);
    Finish(id, FinishReason::kEos, absl::OkStatus());
    return;
  }
  live.seq.tokens.push_back(sample.id);
  TokenDelta delta;
  delta.token_ids.push_back(sample.id);
  if (params.logprobs >= 0 || !params.scored_token_ids.empty()) delta.logprobs.push_back(std::move(sample));
  StopMatcher::Result text = live.stop.Push(live.detokenizer.Push(delta.token_ids.back()));
  delta.text = std::move(text.text);
  if (text.stopped) {
    if (!live.request.sink->Push(std::move(delta))) {
      Finish(id, FinishReason::kCancelled, absl::CancelledError("client went away"));
      return;
    }
    Finish(id, FinishReason::kStop, absl::OkStatus());
    return;
  }
  const bool at_limit = live.seq.num_tokens() >= live.max_tokens_total;
  if (!live.request.sink->Push(std::move(delta))) {
    Finish(id, FinishReason::kCancelled, absl::CancelledError("client went away"));
    return;
  }
  if (at_limit) Finish(id, FinishReason::kLength, absl::OkStatus());
}

void Engine::Impl::Finish(RequestId id, FinishReason reason, const absl::Status& status) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  std::unique_ptr<LiveRequest> live = std::move(it->second);
  live_.erase(it);
  try {
    scheduler_->Remove(&live->seq);
  } catch (...) {
    // Remove takes the sequence out of the queues, then remembers a partly filled block for the
    // prefix cache and frees the blocks; if remembering failed (an allocation), free them bare.
    TROUPE_LOG_ERROR("request %llu: freeing its KV blocks failed (%s); freed without caching",
                     static_cast<unsigned long long>(id), CurrentExceptionText().c_str());
    pool_->ReleaseAll(live->seq.blocks);
    live->seq.blocks.clear();
  }
  PublishStats();  // a caller woken by Finish sees the blocks already returned
  TokenSink& sink = *live->request.sink;
  absl::Status final_status = status;
  try {
    if (reason == FinishReason::kEos || reason == FinishReason::kLength) {
      // Text held back for a possible stop string or a split character is complete now.
      std::string tail = live->stop.Push(live->detokenizer.Flush()).text + live->stop.Flush();
      if (!tail.empty()) {
        TokenDelta delta;
        delta.text = std::move(tail);
        (void)sink.Push(std::move(delta));
      }
    }
  } catch (...) {
    reason = FinishReason::kError;
    final_status = EngineFault(id, "ending the request", CurrentExceptionText());
  }
  const absl::Time now = absl::Now();
  const absl::Time arrival = live->request.arrival_time;
  Completion completion;
  completion.finish_reason = reason;
  completion.usage.prompt_tokens = live->seq.num_prompt_tokens;
  completion.usage.cached_prompt_tokens = std::max(0, live->seq.num_cached_tokens);
  completion.usage.restored_prompt_tokens = live->seq.num_restored_tokens;
  completion.usage.completion_tokens = live->seq.num_generated();
  if (live->first_scheduled != absl::InfinitePast()) completion.queue_time = live->first_scheduled - arrival;
  if (live->first_token != absl::InfinitePast()) completion.time_to_first_token = live->first_token - arrival;
  completion.e2e_latency = now - arrival;
  if (!live->embedding.empty()) {
    double norm = 0;
    for (float v : live->embedding) norm += static_cast<double>(v) * v;
    const float scale = norm > 0 ? static_cast<float>(1 / std::sqrt(norm)) : 0.0f;
    for (float& v : live->embedding) v *= scale;
    completion.embedding = std::move(live->embedding);
  }
  try {
    sink.Finish(final_status, completion);
  } catch (...) {
    TROUPE_LOG_ERROR("the sink of request %llu threw from Finish: %s",
                     static_cast<unsigned long long>(id), CurrentExceptionText().c_str());
  }
}

void Engine::Impl::PublishStats() {
  num_running_.store(scheduler_->num_running());
  num_waiting_.store(scheduler_->num_waiting());
  kv_used_.store(pool_->num_used());
  prefix_queries_.store(scheduler_->prefix_cache_stats().queries);
  prefix_hits_.store(scheduler_->prefix_cache_stats().hits);
  prefix_host_hits_.store(scheduler_->prefix_cache_stats().host_hits);
  kv_offloaded_.store(pool_->num_offloaded());
  kv_restored_.store(pool_->num_restored());
  if (host_tier_) host_kv_used_.store(host_tier_->num_used());
  inbox_.SetEngineWaiting(scheduler_->num_waiting());
}

// ---- Engine ----

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() { impl_->Shutdown(); }

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  TROUPE_RETURN_IF_ERROR(impl->Load());
  impl->Start();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

const Tokenizer& Engine::tokenizer() const { return impl_->tokenizer(); }
const ModelInfo& Engine::model_info() const { return impl_->model_info(); }
const EngineOptions& Engine::options() const { return impl_->options(); }
absl::Status Engine::Submit(Request request) { return impl_->Submit(std::move(request)); }
void Engine::Cancel(RequestId id) { impl_->Cancel(id); }
EngineStats Engine::Stats() const { return impl_->Stats(); }
void Engine::Shutdown() { impl_->Shutdown(); }

}  // namespace troupe
