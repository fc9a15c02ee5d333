// What a caller hands the engine (Request) and how the engine talks back (TokenSink).
// The engine knows nothing of gRPC: the server implements TokenSink over a stream reactor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/sampler/sampler.h"
#include "engine/sampler/sampling_params.h"

namespace troupe {

using RequestId = uint64_t;

enum class FinishReason {
  kNone,       // still running
  kStop,       // a stop string matched
  kEos,        // the model emitted EOS / end of turn
  kLength,     // max_tokens or the context limit reached
  kCancelled,  // the caller cancelled or went away
  kError,      // see the status passed to Finish
};
const char* FinishReasonName(FinishReason reason);  // "stop", "eos", "length", "cancelled", "error"

struct Usage {
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;  // prompt tokens whose KV was reused rather than computed
  int completion_tokens = 0;
  int restored_prompt_tokens = 0;  // of cached_prompt_tokens, copied back from the host KV tier
};

// Tokens generated since the previous delta, with their text. Text is always whole UTF-8:
// bytes of a split character arrive with the token that completes it.
struct TokenDelta {
  std::vector<TokenId> token_ids;
  std::string text;
  std::vector<SampleResult> logprobs;  // one per token id when the request asked for logprobs
};

// Final report of a request, passed to TokenSink::Finish.
struct Completion {
  FinishReason finish_reason = FinishReason::kNone;
  Usage usage;
  absl::Duration queue_time;          // arrival -> first scheduled
  absl::Duration time_to_first_token; // arrival -> first token pushed
  absl::Duration e2e_latency;         // arrival -> finish
  std::vector<float> embedding;       // embed-only requests: the unit-norm pooled hidden state
};

// Receives one request's output. Push and Finish are called from the engine thread only, in
// order, and Finish exactly once (also when the request is rejected after Submit accepted it).
// Implementations must not block: queue the data and return.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // Returns false once the consumer is gone; the engine then cancels the request.
  virtual bool Push(TokenDelta delta) = 0;
  // `status` is OK for kStop/kEos/kLength; kCancelled, kUnavailable (shutdown) or an error
  // otherwise. Any text held back by the detokenizer was pushed before this call.
  virtual void Finish(const absl::Status& status, const Completion& completion) = 0;
};

struct Request {
  RequestId id = 0;                 // from Engine::NewRequestId(); unique per engine
  std::vector<TokenId> prompt;      // token ids, BOS included when the model wants it
  SamplingParams sampling;
  // DRY's sequence-breaker ids for sampling.dry_sequence_breakers; Engine::Submit fills it when
  // DRY is on and it is null.
  std::shared_ptr<const BreakerTokens> dry_breakers;
  int priority = 0;                 // larger runs first (#3 builds the policy on it)
  // Aging for background work below the clients' default priority (the memory rater's): once
  // this long has passed since arrival_time, the request runs at max(priority, 0), so a steady
  // stream of client requests cannot starve it. Infinite = never.
  absl::Duration promote_after = absl::InfiniteDuration();
  std::string cache_salt;           // tenant isolation for prefix caching (#3)
  // No generation: the prompt's last-token final-norm hidden state, L2-normalised, is returned
  // in Completion::embedding (finish reason kLength, no tokens). The memory's fallback embedder.
  bool embed_only = false;
  absl::Time arrival_time = absl::InfinitePast();  // set by Submit when left unset
  std::shared_ptr<TokenSink> sink;  // REQUIRES: non-null
};

}  // namespace troupe
