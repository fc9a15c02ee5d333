#include "engine/scheduler/scheduler.h"

#include <algorithm>

#include "engine/common/check.h"

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
  TROUPE_CHECK(seq->num_computed == 0 && seq->blocks.empty());
  InsertWaiting(seq);
}

void Scheduler::Remove(Sequence* seq) {
  auto r = std::find(running_.begin(), running_.end(), seq);
  if (r != running_.end()) running_.erase(r);
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  if (w != waiting_.end()) waiting_.erase(w);
  pool_.ReleaseAll(seq->blocks);
  seq->blocks.clear();
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
  pool_.ReleaseAll(seq->blocks);
  seq->blocks.clear();
  seq->num_computed = 0;  // recompute prompt + generated tokens when readmitted
  ++seq->num_preemptions;
  InsertWaiting(seq);
  plan.preempted.push_back(seq);
}

// Running sequences first, in admission order: each gets its next chunk (1 token when
// decoding). When the pool is dry, the lowest-priority newest sequence is preempted; if that is
// the sequence itself, it waits.
void Scheduler::ScheduleRunning(StepPlan& plan, int& budget) {
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    const int n = std::min(seq->num_uncomputed(), budget);
    TROUPE_DCHECK(n > 0);
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
    plan.seqs.push_back({seq, n, seq->num_computed + n == seq->num_tokens()});
    plan.num_tokens += n;
    budget -= n;
    ++i;
  }
}

// Then waiting sequences in priority order while there is room in the batch, in the token
// budget and in the pool. A long prompt takes what budget is left (chunked prefill).
void Scheduler::AdmitWaiting(StepPlan& plan, int& budget) {
  while (!waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) < options_.max_running) {
    Sequence* seq = waiting_.front();
    const int n = std::min(seq->num_uncomputed(), budget);
    if (!Grow(seq, seq->num_computed + n)) break;  // keep FIFO order: no overtaking
    waiting_.pop_front();
    seq->status = SeqStatus::kRunning;
    running_.push_back(seq);
    plan.seqs.push_back({seq, n, seq->num_computed + n == seq->num_tokens()});
    plan.num_tokens += n;
    budget -= n;
  }
}

StepPlan Scheduler::Schedule() {
  StepPlan plan;
  int budget = options_.max_batched_tokens;
  ScheduleRunning(plan, budget);
  AdmitWaiting(plan, budget);
  return plan;
}

void Scheduler::Update(const StepPlan& plan) {
  for (const ScheduledSeq& s : plan.seqs) {
    s.seq->num_computed += s.num_tokens;
    TROUPE_DCHECK(s.seq->num_computed <= s.seq->num_tokens());
  }
}

}  // namespace troupe
