#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <vector>
#include <cmath>
#include <limits>

#include "common/check.h"
#include "common/thread_owner.h"

namespace troupe {

Scheduler::Scheduler(const SchedulerOptions& options, BlockPool& pool)
    : options_(options), pool_(pool) {}

void Scheduler::InsertWaiting(Sequence* seq) {
  auto before = [](const Sequence* a, const Sequence* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->arrival_order < b->arrival_order;
  };
  waiting_.insert(std::upper_bound(waiting_.begin(), waiting_.end(), seq, before), seq);
  seq->status = SeqStatus::kWaiting;
}

void Scheduler::Add(Sequence* seq) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(seq->num_computed == 0 && seq->blocks.empty());
  if (seq->promote_at != absl::InfiniteFuture()) ++num_promotable_;
  InsertWaiting(seq);
}

void Scheduler::PromoteAged(absl::Time now) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  if (num_promotable_ == 0) return;
  const auto promote = [&](Sequence* s) {
    if (s->promote_at > now) return false;
    s->promote_at = absl::InfiniteFuture();
    s->priority = std::max(s->priority, 0);
    --num_promotable_;
    return true;
  };
  for (Sequence* s : running_) promote(s);
  std::vector<Sequence*> raised;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (promote(*it)) {
      raised.push_back(*it);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  for (Sequence* s : raised) InsertWaiting(s);  // arrival order keeps FIFO among equals
}

void Scheduler::Remove(Sequence* seq) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  auto r = std::find(running_.begin(), running_.end(), seq);
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  // Counted only when Add took it (a request that failed before reaching the scheduler is not).
  if ((r != running_.end() || w != waiting_.end()) && seq->promote_at != absl::InfiniteFuture()) --num_promotable_;
  seq->promote_at = absl::InfiniteFuture();
  if (r != running_.end()) running_.erase(r);
  if (w != waiting_.end()) waiting_.erase(w);
  ReleaseBlocks(seq);
  seq->status = SeqStatus::kFinished;
}

bool Scheduler::CanEverFit(const Sequence& seq) const {
  return BlocksForTokens(seq.num_tokens() + 1, options_.block_size) <= pool_.num_blocks();
}

bool Scheduler::Grow(Sequence* seq, int num_tokens_after) {
  const int need = BlocksForTokens(num_tokens_after, options_.block_size) -
                   static_cast<int>(seq->blocks.size());
  if (need <= 0) return true;
  if (!pool_.CanAllocate(need)) return false;
  std::vector<BlockId> got = pool_.Allocate(need);
  seq->blocks.insert(seq->blocks.end(), got.begin(), got.end());
  return true;
}

Sequence* Scheduler::PickVictim(const Sequence* exclude) const {
  Sequence* victim = nullptr;
  for (Sequence* s : running_) {
    if (s == exclude) continue;
    if (!victim || s->priority < victim->priority ||
        (s->priority == victim->priority && s->arrival_order > victim->arrival_order)) {
      victim = s;
    }
  }
  return victim;
}

void Scheduler::Preempt(Sequence* seq, StepPlan& plan) {
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  ReleaseBlocks(seq);  // registered blocks stay cached until evicted
  seq->num_computed = 0;  // recompute prompt + generated tokens when readmitted
  seq->num_cached_blocks = 0;
  ++seq->num_preemptions;
  InsertWaiting(seq);
  plan.preempted.push_back(seq);
}

double ChunkCost(int num_computed, int num_tokens, double attention_pair_cost) {
  // Token i of the chunk attends to num_computed + i + 1 keys.
  const double n = num_tokens;
  const double pairs = n * num_computed + n * (n + 1) / 2;
  return n + attention_pair_cost * pairs;
}

int Scheduler::ChunkFor(const Sequence* seq, int budget, const PrefillBudget& prefill) const {
  const int uncomputed = seq->num_uncomputed();
  if (uncomputed == 1) return std::min(1, budget);  // a decode
  int n = std::min({uncomputed, budget, prefill.tokens});
  if (n <= 0 || !std::isfinite(prefill.cost)) return std::max(n, 0);
  // The most tokens whose cost fits: solve a/2 n^2 + (1 + a (c + 1/2)) n <= cost for n.
  const double a = options_.attention_pair_cost;
  const double b = 1 + a * (seq->num_computed + 0.5);
  const double fit = a > 0 ? (std::sqrt(b * b + 2 * a * prefill.cost) - b) / a : prefill.cost / b;
  int by_cost = static_cast<int>(std::floor(std::max(fit, 0.0)));
  while (by_cost > 0 && ChunkCost(seq->num_computed, by_cost, a) > prefill.cost) --by_cost;  // rounding
  if (!prefill.any) by_cost = std::max(by_cost, 1);  // every prompt progresses
  return std::min(n, by_cost);
}

void Scheduler::Take(StepPlan& plan, Sequence* seq, int n, int& budget, PrefillBudget& prefill) {
  const bool is_prefill = seq->num_uncomputed() > 1 || seq->status == SeqStatus::kWaiting;
  plan.seqs.push_back({seq, n, seq->num_computed + n == seq->num_tokens()});
  plan.num_tokens += n;
  budget -= n;
  if (is_prefill) {
    prefill.tokens -= n;
    prefill.cost -= ChunkCost(seq->num_computed, n, options_.attention_pair_cost);
    prefill.any = true;
  }
}

// Running sequences first: decodes (1 token each) in admission order, then the prefills still
// in progress, so a long prompt never delays a stream's next token. Each gets its next chunk.
// When the pool is dry, the lowest-priority newest sequence is preempted; if that is the
// sequence itself, it waits.
void Scheduler::ScheduleRunning(StepPlan& plan, int& budget, PrefillBudget& prefill) {
  std::stable_partition(running_.begin(), running_.end(),
                        [](const Sequence* s) { return s->num_uncomputed() == 1; });
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    const int n = ChunkFor(seq, budget, prefill);
    if (n == 0) {  // a prefill while the prefill budget is spent: next step
      ++i;
      continue;
    }
    bool ok = Grow(seq, seq->num_computed + n);
    while (!ok) {
      Sequence* victim = PickVictim(nullptr);
      const bool self = victim == seq;
      // A victim already scheduled this step would lose KV the step writes into: drop its entry.
      auto it = std::find_if(plan.seqs.begin(), plan.seqs.end(),
                             [&](const ScheduledSeq& s) { return s.seq == victim; });
      if (it != plan.seqs.end()) {
        budget += it->num_tokens;
        plan.num_tokens -= it->num_tokens;
        plan.seqs.erase(it);
        --i;
      }
      Preempt(victim, plan);
      if (self) break;
      ok = Grow(seq, seq->num_computed + n);
    }
    if (!ok) continue;  // seq itself was preempted; running_[i] is now the next one
    Take(plan, seq, n, budget, prefill);
    ++i;
  }
}

// Then waiting sequences in priority order while there is room in the batch, in the token
// budget and in the pool. A long prompt takes what budget is left (chunked prefill).
void Scheduler::AdmitWaiting(StepPlan& plan, int& budget, PrefillBudget& prefill) {
  while (!waiting_.empty() && budget > 0 && prefill.tokens > 0 && (!prefill.any || prefill.cost > 0) &&
         static_cast<int>(running_.size()) < options_.max_running) {
    Sequence* seq = waiting_.front();
    const int hit_tokens = MatchPrefix(seq);
    const int n = seq->num_uncomputed() == 1 ? 1 : ChunkFor(seq, budget, prefill);
    if (n == 0 || !Grow(seq, seq->num_computed + n)) {
      // Keep FIFO order (no overtaking); give the matched blocks back until next time.
      ReleaseBlocks(seq);  // remembers an adopted partial block again
      seq->num_computed = 0;
      seq->num_cached_blocks = 0;
      break;
    }
    if (seq->num_cached_tokens < 0) {
      seq->num_cached_tokens = hit_tokens;
      prefix_stats_.queries += seq->num_prompt_tokens;
      prefix_stats_.hits += seq->num_cached_tokens;
      seq->num_restored_tokens = std::min(hit_tokens, seq->num_restored_blocks * options_.block_size);
      prefix_stats_.host_hits += seq->num_restored_tokens;
    }
    waiting_.pop_front();
    Take(plan, seq, n, budget, prefill);  // charged as a prefill: seq is still kWaiting here
    seq->status = SeqStatus::kRunning;
    running_.push_back(seq);
  }
}

StepPlan Scheduler::Schedule() {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  StepPlan plan;
  int budget = options_.max_batched_tokens;
  PrefillBudget prefill{.tokens = budget, .cost = std::numeric_limits<double>::infinity()};
  double decode_cost = 0;
  bool decoding = false;
  for (const Sequence* s : running_) {
    if (s->num_uncomputed() != 1) continue;
    decoding = true;
    decode_cost += ChunkCost(s->num_computed, 1, options_.attention_pair_cost);
  }
  if (decoding && options_.max_prefill_tokens_while_decoding > 0) {
    prefill.tokens = options_.max_prefill_tokens_while_decoding;
  }
  if (decoding && options_.max_prefill_cost_ratio_while_decoding > 0) {
    prefill.cost = options_.max_prefill_cost_ratio_while_decoding * decode_cost;
  }
  ScheduleRunning(plan, budget, prefill);
  AdmitWaiting(plan, budget, prefill);
  return plan;
}

void Scheduler::Update(const StepPlan& plan) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  for (const ScheduledSeq& s : plan.seqs) {
    s.seq->num_computed += s.num_tokens;
    TROUPE_DCHECK(s.seq->num_computed <= s.seq->num_tokens());
    RegisterFullBlocks(s.seq);
  }
}

BlockKey Scheduler::KeyOf(Sequence* seq, int i) {
  const int bs = options_.block_size;
  TROUPE_DCHECK((i + 1) * bs <= seq->num_tokens());
  while (static_cast<int>(seq->block_hashes.size()) <= i) {
    const int b = static_cast<int>(seq->block_hashes.size());
    const BlockHash parent = b == 0 ? kNoParentHash : seq->block_hashes[b - 1];
    seq->block_hashes.push_back(
        HashBlock(parent, std::span<const TokenId>(seq->tokens).subspan(b * bs, bs), seq->cache_salt));
  }
  return BlockKey{.hash = seq->block_hashes[i],
                  .parent = i == 0 ? kNoParentHash : seq->block_hashes[i - 1],
                  .salt = seq->cache_salt,
                  .tokens = std::vector<TokenId>(seq->tokens.begin() + i * bs,
                                                 seq->tokens.begin() + (i + 1) * bs)};
}

int Scheduler::MatchPrefix(Sequence* seq) {
  TROUPE_CHECK(seq->blocks.empty() && seq->num_computed == 0);
  if (!options_.enable_prefix_caching) return 0;
  const int bs = options_.block_size;
  // At most the blocks before the last token: it must be computed for its logits.
  const int max_blocks = (seq->num_tokens() - 1) / bs;
  for (int i = 0; i < max_blocks; ++i) {
    const BlockKey key = KeyOf(seq, i);
    BlockId b = pool_.Lookup(key);
    if (b >= 0) {
      pool_.AddRef(b);
    } else {
      // The host tier, if any: the block comes back into a new device block, copied before
      // the step that reads it (BlockPool::TakeCopies). Only while the free blocks also hold
      // one step's worth of the tokens after it: restored blocks of a sequence whose first
      // chunk then cannot be admitted would be evicted again and restored again, step after
      // step. (Not the whole rest of the sequence: a chunked prefill grows step by step, and a
      // block restored is a block not recomputed.)
      const int after = std::min(seq->num_tokens() - (i + 1) * bs, options_.max_batched_tokens);
      if (pool_.host_tier() == nullptr || pool_.num_free() < 1 + BlocksForTokens(after, bs)) break;
      b = pool_.Restore(key);
      if (b < 0) break;
      ++seq->num_restored_blocks;
    }
    seq->blocks.push_back(b);
  }
  const int full = static_cast<int>(seq->blocks.size());
  seq->num_computed = full * bs;
  seq->num_cached_blocks = full;
  // Then a partly filled block a previous sequence left after the same chain, if it continues
  // these tokens (again leaving the last token to compute).
  const int rest = seq->num_tokens() - 1 - full * bs;
  if (rest > 0) {
    const BlockHash parent = full == 0 ? kNoParentHash : seq->block_hashes[full - 1];
    const auto [block, len] = pool_.TakePartial(
        parent, seq->cache_salt, std::span<const TokenId>(seq->tokens).subspan(full * bs), std::min(rest, bs - 1));
    if (block >= 0) {
      seq->blocks.push_back(block);
      seq->num_computed += len;
    }
  }
  return seq->num_computed;
}

void Scheduler::ReleaseBlocks(Sequence* seq) {
  const int bs = options_.block_size;
  const int full = seq->num_computed / bs;
  const int partial = seq->num_computed % bs;
  if (options_.enable_prefix_caching && partial > 0 && static_cast<int>(seq->blocks.size()) > full &&
      !pool_.is_cached(seq->blocks[full]) && pool_.ref_count(seq->blocks[full]) == 1 &&
      full <= seq->num_cached_blocks) {
    const BlockHash parent = full == 0 ? kNoParentHash : KeyOf(seq, full - 1).hash;
    pool_.RegisterPartial(seq->blocks[full],
                          BlockKey{.hash = 0, .parent = parent, .salt = seq->cache_salt,
                                   .tokens = std::vector<TokenId>(seq->tokens.begin() + full * bs,
                                                                  seq->tokens.begin() + seq->num_computed)});
  }
  pool_.ReleaseAll(seq->blocks);
  seq->blocks.clear();
}

void Scheduler::RegisterFullBlocks(Sequence* seq) {
  if (!options_.enable_prefix_caching) return;
  const int full = seq->num_computed / options_.block_size;
  for (int i = seq->num_cached_blocks; i < full; ++i) {
    pool_.Register(seq->blocks[i], KeyOf(seq, i));  // false: an equal block is cached already
  }
  seq->num_cached_blocks = std::max(seq->num_cached_blocks, full);
}

}  // namespace troupe
