// Step planning for continuous batching. There is no separate prefill phase: every step gives
// each scheduled sequence some tokens so that num_computed catches up with num_tokens: a decode
// is 1 token, a prefill is the whole prompt, a chunked prefill is part of it, a recompute after
// preemption is prompt + generated tokens. All sequences of a step run in one forward pass.
//
// Prefix caching: a sequence admitted from the waiting queue first takes the longest chain of
// cached full blocks matching its tokens (always leaving its last token to compute, since
// its logits are needed), then the partly filled block an ended sequence left after that
// chain, if it continues the same tokens; num_computed starts after them. After every step, blocks that have
// become full are registered in the pool's cache, so later sequences (the next turn of a
// session, another session of the same character, this one after a preemption) reuse them.
// With a host tier attached to the pool, a block missing from the device cache is looked up
// there next, and restored into a new device block (BlockPool::Restore); the chain goes on.
//
// Not thread-safe; engine thread only. The public mutators check that in debug builds
// (TROUPE_DCHECK_ON_ENGINE_THREAD, common/thread_owner.h).
#pragma once

#include <deque>
#include <vector>

#include "common/thread_owner.h"
#include "engine/kv/block_pool.h"
#include "engine/scheduler/sequence.h"

namespace troupe {

struct SchedulerOptions {
  int max_running = 32;          // sequences in the running batch
  int max_batched_tokens = 512;  // tokens per step (decodes + prefill chunks)
  int block_size = 16;           // tokens per KV block
  bool enable_prefix_caching = true;
  // While any sequence is decoding, prefill chunks of a step add up to at most this many
  // tokens, so a long prompt arriving stretches each decode step (the streams' inter-token
  // latency) only by that much; with no decodes running, prefills use the whole budget.
  // 0 = no separate cap.
  int max_prefill_tokens_while_decoding = 0;
  // The same limit by cost rather than tokens. A step's cost is estimated in token units: each
  // token computed costs 1, and each (query, key) pair its attention computes costs
  // attention_pair_cost (the ratio of attention work per pair to the layers' matmul work per
  // token, so a prefill chunk deep into a long prompt costs more than one at its start). While
  // any sequence decodes, prefill chunks may add at most this multiple of the decodes' own
  // estimated cost to the step: 1.0 keeps a step within about twice a decode-only step, so a
  // long prompt arriving at most doubles the streams' inter-token latency. The first prefill of
  // a step always gets at least one token, so every prompt progresses. 0 = no cost limit.
  double max_prefill_cost_ratio_while_decoding = 0;
  double attention_pair_cost = 0;
};

// The estimated cost (see SchedulerOptions) of computing `num_tokens` tokens of a sequence
// that has `num_computed` tokens in its KV already: each token attends to all before it.
double ChunkCost(int num_computed, int num_tokens, double attention_pair_cost);

// Prefix-cache counters, in tokens, over first admissions (a preempted sequence's recompute
// is not counted again).
struct PrefixCacheStats {
  int64_t queries = 0;  // prompt tokens looked up
  int64_t hits = 0;     // of those, served from cached blocks
  int64_t host_hits = 0;  // of the hits, served from blocks restored from the host tier
};

struct ScheduledSeq {
  Sequence* seq = nullptr;
  int num_tokens = 0;        // tokens computed this step, from seq->num_computed on
  bool needs_logits = false; // the step reaches the sequence's last token: sample after it
};

struct StepPlan {
  std::vector<ScheduledSeq> seqs;
  std::vector<Sequence*> preempted;  // lost their KV this step; they wait to be recomputed
  int num_tokens = 0;
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  // `pool` must outlive the scheduler.
  Scheduler(const SchedulerOptions& options, BlockPool& pool);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a new sequence. REQUIRES: seq->num_computed == 0, no blocks.
  void Add(Sequence* seq);
  // Drops a sequence from whichever queue holds it and frees its blocks (finish or cancel).
  void Remove(Sequence* seq);

  // Raises the sequences whose promote_at has come to priority max(priority, 0) (aging of
  // background work) and reorders the waiting queue. Cheap when none is due to: O(1) without
  // sequences that have a promote_at. Call before Schedule.
  void PromoteAged(absl::Time now);

  // Plans the next step; allocates the blocks it needs. May preempt running sequences (lowest
  // priority, then newest first) when the block pool runs dry.
  StepPlan Schedule();
  // Records that the plan ran: num_computed advances by each entry's num_tokens, and blocks
  // that became full are registered in the prefix cache.
  void Update(const StepPlan& plan);

  const PrefixCacheStats& prefix_cache_stats() const { return prefix_stats_; }

  // True if the sequence could run were the cache empty (its blocks fit the whole pool).
  bool CanEverFit(const Sequence& seq) const;

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  const std::vector<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }

 private:
  // Ensures seq has blocks for its first `num_tokens_after` tokens; false if the pool is dry.
  bool Grow(Sequence* seq, int num_tokens_after);
  void Preempt(Sequence* seq, StepPlan& plan);
  Sequence* PickVictim(const Sequence* exclude) const;
  void InsertWaiting(Sequence* seq);
  // What prefill chunks may still take this step while streams decode.
  struct PrefillBudget {
    int tokens = 0;
    double cost = 0;
    bool any = false;  // a prefill chunk is in the plan already
  };
  void ScheduleRunning(StepPlan& plan, int& budget, PrefillBudget& prefill);
  void AdmitWaiting(StepPlan& plan, int& budget, PrefillBudget& prefill);
  // Tokens seq gets this step within the step budget and, for a prefill, the prefill budget.
  int ChunkFor(const Sequence* seq, int budget, const PrefillBudget& prefill) const;
  // Records a chunk of n tokens in the plan and charges it to the budgets.
  void Take(StepPlan& plan, Sequence* seq, int n, int& budget, PrefillBudget& prefill);
  // The cache key of full block i of seq's tokens (hashes memoised in seq->block_hashes).
  BlockKey KeyOf(Sequence* seq, int i);
  // Takes the cached blocks matching seq's leading full blocks, then a remembered partial
  // block continuing them; sets num_computed and returns it (the tokens reused).
  // REQUIRES: seq has no blocks.
  int MatchPrefix(Sequence* seq);
  void RegisterFullBlocks(Sequence* seq);
  // Releases seq's blocks (finish, cancel or preemption), first remembering a partly filled
  // last block with computed tokens for the sequence that continues them.
  void ReleaseBlocks(Sequence* seq);

  const SchedulerOptions options_;
  BlockPool& pool_;
  std::vector<Sequence*> running_;  // admission order
  std::deque<Sequence*> waiting_;   // priority desc, then arrival
  int num_promotable_ = 0;          // queued sequences with a finite promote_at
  PrefixCacheStats prefix_stats_;
  ThreadOwner engine_thread_;
};

}  // namespace troupe
