// Turns a step plan into the backend's flat batch (tokens, positions, KV slots, block tables),
// runs the forward pass and hands back one logits row per sequence that samples.
// Not thread-safe; engine thread only. The public mutators check that in debug builds
// (TROUPE_DCHECK_ON_ENGINE_THREAD, common/thread_owner.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/thread_owner.h"
#include "engine/backend/backend.h"
#include "engine/scheduler/scheduler.h"

namespace troupe {

class ModelRunner {
 public:
  // `backend` must outlive the runner.
  ModelRunner(Backend& backend, int block_size, int vocab_size, int dim)
      : backend_(backend), block_size_(block_size), vocab_size_(vocab_size), dim_(dim) {}

  // Runs plan's forward pass. Returns logits [num sampling entries, vocab], in plan order of
  // the entries with needs_logits; valid until the next Run. With `sampling` (one row per such
  // entry; REQUIRES backend.samples_on_device()) the backend samples instead: the logits are
  // not returned (empty span) and sampled_ids() holds the ids. `want_hidden` fills hidden().
  std::span<float> Run(const StepPlan& plan, std::span<const RowSampling> sampling = {},
                       bool want_hidden = true);
  // The final-norm hidden states of the same rows, [rows, dim]; valid until the next Run.
  std::span<const float> hidden() const { return hidden_; }
  // The ids sampled on the device by the last Run with `sampling`.
  std::span<const int32_t> sampled_ids() const { return sampled_ids_; }

 private:
  Backend& backend_;
  const int block_size_;
  const int vocab_size_;
  const int dim_;
  // Reused between steps to avoid allocation.
  std::vector<int32_t> tokens_, positions_, token_seq_, block_tables_, logit_rows_;
  std::vector<int64_t> slots_;
  std::vector<float> logits_, hidden_;
  std::vector<int32_t> sampled_ids_;
  ThreadOwner engine_thread_;
};

}  // namespace troupe
